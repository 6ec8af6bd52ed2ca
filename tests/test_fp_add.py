"""FloatAdd (hw/fp_add.py, the addition half of FloatMultiplyAdd) against
golden.fp_mac.fp_add and torch's float32 addition, under random gaps and back-pressure."""

from __future__ import annotations

import inspect
import sys
import types

import pytest
import torch

import hw.fp_add
from golden.fp_mac import FLOAT_FORMATS, FloatFormat, fp_add
from hw.fp_add import ADD_STAGES, FloatAdd
from sim.amaranth_bench import run_stream_sim
from sim.units.fp_mac import directed_cases, random_operands


def _stimuli(fmt: FloatFormat, n: int, seed: int) -> list[dict]:
    """The (a, c) of fpmac's directed cases (and (b, c): a product's other operand) and
    random operand pairs with c near -a (cancellation)."""
    cases = directed_cases(fmt)
    pairs = [(a, c) for a, _, c in cases] + [(b, c) for _, b, c in cases]
    a, _, c = random_operands(torch.Generator().manual_seed(seed), fmt, n)
    near = ((a ^ fmt.sign_bit) + torch.randint(-4, 5, (n,), generator=torch.Generator()
                                               .manual_seed(seed))) % (1 << fmt.width)
    c = torch.where(torch.arange(n) % 2 == 0, near, c)
    return [{"a": x, "c": y} for x, y in pairs + list(zip(a.tolist(), c.tolist(), strict=True))]


def _expected(fmt: FloatFormat, items: list[dict]) -> list[dict]:
    r = fp_add(torch.tensor([v["a"] for v in items]), torch.tensor([v["c"] for v in items]), fmt)
    return [{"r": v} for v in r.tolist()]


@pytest.mark.parametrize("name", ["fp32", "e4m3"])
def test_amaranth_sim_matches_golden(name):
    fmt = FLOAT_FORMATS[name]
    dut = FloatAdd(exp_bits=fmt.exp_bits, man_bits=fmt.man_bits)
    assert dut.latency == ADD_STAGES == 6
    items = _stimuli(fmt, 200, seed=1)
    r = run_stream_sim(dut, {"i": items}, {"o": _expected(fmt, items)}, seed=1)
    assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), r["reports"]
    assert r["checked"] == len(items)


def test_golden_fp_add_is_torch_float32_addition():
    """fp_add on fp32 patterns is torch's float32 ``+`` bit for bit (subnormals kept), except
    that every NaN result is the canonical quiet NaN 0x7fc00000 (torch keeps an input's
    payload, or makes its own, which depends on the CPU)."""
    fmt = FLOAT_FORMATS["fp32"]
    items = _stimuli(fmt, 2000, seed=2)
    a = torch.tensor([v["a"] for v in items], dtype=torch.int64)
    c = torch.tensor([v["c"] for v in items], dtype=torch.int64)
    ours = fp_add(a, c, fmt)
    f = (a.to(torch.int32).view(torch.float32) + c.to(torch.int32).view(torch.float32))
    theirs = f.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    nan = torch.isnan(f)
    assert nan.any() and torch.equal(ours[nan], torch.full_like(ours[nan], 0x7FC00000))
    assert torch.equal(ours[~nan], theirs[~nan])


def test_a_broken_adder_is_caught():
    """Ties rounded down instead of to even: the same check fails."""
    source = inspect.getsource(hw.fp_add)
    old = "inc2 = guard2 & (sticky2 | sig2[0])"
    assert source.count(old) == 1
    bad = types.ModuleType("hw.fp_add_mutant")
    bad.__package__ = "hw"
    sys.modules[bad.__name__] = bad
    try:
        exec(compile(source.replace(old, "inc2 = guard2 & sticky2"), "<mutant>", "exec"),
             bad.__dict__)
    finally:
        del sys.modules[bad.__name__]
    fmt = FLOAT_FORMATS["e4m3"]
    items = _stimuli(fmt, 200, seed=1)
    r = run_stream_sim(bad.FloatAdd(exp_bits=4, man_bits=3), {"i": items},
                       {"o": _expected(fmt, items)}, seed=1)
    assert r["mismatches"] > 0


def test_bad_parameters():
    with pytest.raises(ValueError, match="exp_bits must be from 2 to 8, not 9"):
        FloatAdd(exp_bits=9, man_bits=23)
    with pytest.raises(TypeError, match="man_bits must be an integer"):
        FloatAdd(exp_bits=8, man_bits=2.5)
