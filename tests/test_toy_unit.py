"""A unit defined in this file alone proves the registry: ``--help`` lists it, ``hw.generate``
writes it, Verilator runs it against its golden function, and ``flows.report`` reports it,
without a line of it anywhere else.

The toy unit negates an MXINT block: ``o.mantissa[i] = sat(-a.mantissa[i])``, exponent
unchanged; ``-(-2**(m-1))`` saturates to ``2**(m-1) - 1``. One register stage.

Other processes (the simulator's) find it through ``MXFORGE_UNITS=tests.test_toy_unit``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pytest
import torch
from amaranth.hdl import Module, Mux, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden.format import MAX_BLOCK, MAX_EXP_BITS, MAX_MAN_BITS, MXIntFormat
from hw.layouts import mxint_block_layout
from hw.pipeline import StallPipeline
from hw.unit import Params, Unit, param, register, units
from sim.units.common import blocks_to_dicts, random_blocks
from tests.conftest import REPO

# --- the unit: golden function, record, component, model -------------------------------


def negate_block(mantissa: torch.Tensor, man_bits: int) -> torch.Tensor:
    """``-mantissa``, saturated to the ``man_bits``-bit signed range."""
    return (-mantissa).clamp(max=(1 << (man_bits - 1)) - 1)


@dataclass(frozen=True, kw_only=True)
class NegateParams(Params):
    man_bits: int = param(help="mantissa bits, sign included", lo=2, hi=MAX_MAN_BITS,
                          option="--bits")
    exp_bits: int = param(8, help="shared exponent bits", lo=2, hi=MAX_EXP_BITS)
    block: int = param(help="elements per block", lo=1, hi=MAX_BLOCK)

    @property
    def name(self) -> str:
        return f"toy_negate_m{self.man_bits}_e{self.exp_bits}_k{self.block}"


class BlockNegate(wiring.Component):
    def __init__(self, *, man_bits: int, exp_bits: int = 8, block: int) -> None:
        self._p = NegateParams(man_bits=man_bits, exp_bits=exp_bits, block=block)
        layout = mxint_block_layout(man_bits=man_bits, exp_bits=exp_bits, block=block)
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})

    latency = property(lambda self: 1)

    def elaborate(self, platform) -> Module:
        m = Module()
        p = self._p
        pipe = StallPipeline(m, inputs=[self.i], output=self.o, depth=self.latency)
        top = (1 << (p.man_bits - 1)) - 1
        for j in range(p.block):
            x = self.i.payload.mantissa[j]
            negated = Mux(x == -top - 1, top, -x)
            m.d.comb += self.o.payload.mantissa[j].eq(
                pipe.register(negated, f"neg{j}", signed(p.man_bits)))
        m.d.comb += self.o.payload.exponent.eq(pipe.register(self.i.payload.exponent, "exp"))
        return m


class NegateModel:
    inputs = ("i",)
    outputs = ("o",)

    def __init__(self, params: dict) -> None:
        self.fmt = MXIntFormat(params["man_bits"], params["exp_bits"], params["block"])

    def stimuli(self, gen: torch.Generator, n: int) -> dict[str, list[dict]]:
        fmt = self.fmt
        man, exp = random_blocks(gen, fmt, n)
        corners = torch.tensor([[-(1 << (fmt.man_bits - 1))] * fmt.block,
                                [fmt.max_man] * fmt.block, [0] * fmt.block])
        man = torch.cat([corners, man])
        exp = torch.cat([torch.tensor([0, fmt.max_code, fmt.nan_code]), exp])
        return {"i": blocks_to_dicts(man, exp)}

    def expected(self, stimuli: dict[str, list[dict]]) -> dict[str, list[dict]]:
        man = torch.tensor([x["mantissa"] for x in stimuli["i"]])
        exp = torch.tensor([x["exponent"] for x in stimuli["i"]])
        return {"o": blocks_to_dicts(negate_block(man, self.fmt.man_bits), exp)}


UNIT = Unit(key="toyneg", summary="toy: saturating negation of an MXINT block",
            params=NegateParams, component=BlockNegate, golden=negate_block,
            model=NegateModel, macs=lambda p: p.block)


# --- the tests --------------------------------------------------------------------------


@pytest.fixture
def toy(monkeypatch):
    """The toy unit registered, here and in the processes this test starts."""
    monkeypatch.setenv("MXFORGE_UNITS", __name__)
    monkeypatch.setenv("PYTHONPATH", f"{REPO}:{os.environ.get('PYTHONPATH', '')}")
    register(UNIT)
    yield UNIT
    units().pop(UNIT.key)


def test_listed_by_help(toy):
    from hw.generate import build_parser

    text = build_parser().format_help()
    assert "toyneg" in text and UNIT.summary in text


def test_generated(toy, tmp_path):
    from hw.generate import generate

    design = generate("toyneg", bits=4, exp_bits=5, block=3, out=tmp_path)
    assert design.name == "toy_negate_m4_e5_k3"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"{design.name}.{ext}" for ext in ("core", "v", "yaml")]
    assert design.manifest["parameters"] == {"man_bits": 4, "exp_bits": 5, "block": 3}
    assert design.manifest["top"] == "toyneg" and design.manifest["latency"] == 1
    with pytest.raises(ValueError, match=r"^--rounding does not apply to --top toyneg"):
        generate("toyneg", bits=4, block=3, rounding="floor")


@pytest.mark.parametrize("man_bits, block", [(2, 1)])  # (5, 4): out of the CI budget
def test_simulated_against_golden(toy, sim_build, man_bits, block):
    from sim.run import simulate

    seed = 1000 + man_bits
    print(f"seed {seed}")
    params = {"man_bits": man_bits, "exp_bits": 4, "block": block}
    good = simulate("toyneg", params, seed=seed, vectors=300, build_root=sim_build)
    assert good["checked"] == 303 and good["mismatches"] == 0 and good["missing"] == 0
    bad = simulate("toyneg", params, seed=seed, vectors=20, build_root=sim_build,
                   fault="lsb")  # a wrong expectation must be caught
    assert bad["mismatches"] > 0


def test_reported(toy, tmp_path, capsys):
    from flows.report import main

    out = tmp_path / "report.json"
    assert main(["--top", "toyneg", "--bits", "4", "--block", "3", "--target", "ecp5",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["design"]["name"] == "toy_negate_m4_e5_k3".replace("e5", "e8")
    lut_only = report["synthesis"][0]
    assert lut_only["luts"] > 0 and lut_only["luts_per_mac"] == lut_only["luts"] / 3
    assert "toy_negate_m4_e8_k3" in capsys.readouterr().out
