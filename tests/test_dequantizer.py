# amaranth: UnusedElaboratable=no
"""MXIntDequantizer: parameters, golden helper against golden.dequantize and Fractions,
Amaranth-simulator and Verilator runs."""

from __future__ import annotations

import struct
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from golden.dequant import QUIET_NAN, dequant_blocks
from golden.format import MXIntFormat
from golden.quantize import MXIntTensor, dequantize
from hw.dequantizer import MXIntDequantizer
from sim.amaranth_bench import run_stream_sim
from sim.run import simulate
from sim.units import model_for
from sim.units.common import random_blocks


def params(man_bits, exp_bits, block):
    return {"man_bits": man_bits, "exp_bits": exp_bits, "block": block}


# --- parameters -----------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"man_bits": 1}, ValueError, r"man_bits must be from 2 to 24, not 1"),
    ({"man_bits": 25}, ValueError, r"man_bits must be from 2 to 24, not 25"),
    ({"exp_bits": 9}, ValueError, r"exp_bits must be from 2 to 8, not 9"),
    ({"block": 0}, ValueError, r"block must be from 1 to 1024, not 0"),
    ({"block": "4"}, TypeError, r"block must be an integer, not '4'"),
])
def test_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        MXIntDequantizer(**{**params(8, 8, 16), **kwargs})


def test_positional_parameters_refused():
    with pytest.raises(TypeError):
        MXIntDequantizer(8, 8, 16)  # type: ignore[misc]


def test_latency_and_widths():
    dut = MXIntDequantizer(man_bits=6, exp_bits=5, block=4)
    assert dut.latency == 2
    assert dut.i.payload.shape().size == 4 * 6 + 5
    assert dut.o.payload.shape().size == 4 * 32


# --- golden helper --------------------------------------------------------------------------

def reference_bits(p: int, code: int, fmt: MXIntFormat) -> int:
    """float32 pattern of ``P * 2**(E - bias - (m-2))`` from exact rationals."""
    if code == fmt.nan_code:
        return QUIET_NAN
    value = p * Fraction(2) ** fmt.scale_exponent(code)
    if abs(value) >= 2 ** 128:
        return 0xFF800000 if value < 0 else 0x7F800000
    bits = struct.unpack("<I", struct.pack("<f", float(value)))[0]
    got = Fraction(struct.unpack("<f", struct.pack("<I", bits))[0])
    assert got == value, "every MXINT value is exact in float32"
    return bits


@settings(max_examples=300, deadline=None)
@given(data=st.data(), man_bits=st.integers(2, 24), exp_bits=st.integers(2, 8),
       block=st.integers(1, 5))
def test_dequant_blocks_matches_fraction_reference(data, man_bits, exp_bits, block):
    fmt = MXIntFormat(man_bits, exp_bits, block)
    lo, hi = -(1 << (man_bits - 1)), (1 << (man_bits - 1)) - 1
    rows = data.draw(st.lists(st.tuples(
        st.lists(st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi, 0, 1, -1])),
                 min_size=block, max_size=block),
        st.one_of(st.integers(0, fmt.nan_code), st.sampled_from([0, fmt.max_code]))),
        min_size=1, max_size=4))
    bits = dequant_blocks(torch.tensor([r[0] for r in rows]), torch.tensor([r[1] for r in rows]),
                          fmt)
    for (man, code), got in zip(rows, bits.tolist(), strict=True):
        assert got == [reference_bits(p, code, fmt) for p in man], (man, code)


@pytest.mark.parametrize(("man_bits", "exp_bits", "block"), [(2, 8, 3), (8, 8, 32), (24, 2, 4),
                                                             (24, 8, 16), (5, 4, 1)])
def test_dequant_blocks_is_golden_dequantize(man_bits, exp_bits, block):
    """Equal to golden.dequantize(...).view(int32) on non-NaN blocks, quiet NaN elsewhere."""
    fmt = MXIntFormat(man_bits, exp_bits, block)
    man, exp = random_blocks(torch.Generator().manual_seed(man_bits), fmt, 2000)
    bits = dequant_blocks(man, exp, fmt)
    q = MXIntTensor(mantissa=man.to(torch.int32).unsqueeze(1),
                    exponent=exp.to(torch.int32).unsqueeze(1), fmt=fmt,
                    shape=torch.Size((2000, block)), axis=1)
    want = dequantize(q).view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    finite = exp != fmt.nan_code
    assert finite.sum() > 1000 and (~finite).sum() > 20
    assert torch.equal(bits[finite], want[finite])
    assert (bits[~finite] == QUIET_NAN).all()


def test_dequant_blocks_corners():
    fmt = MXIntFormat(24, 8, 4)
    bits = dequant_blocks(torch.tensor([[0, 1, -1, -(1 << 23)]]), torch.tensor([0]), fmt)
    # P = 0 is +0.0; one unit at code 0 is the smallest subnormal 2**-149
    assert bits.tolist() == [[0, 1, 0x80000001, 0x80800000]]  # -2**23 units: -2**-126
    top = dequant_blocks(torch.tensor([[-(1 << 23), (1 << 23) - 1, 0, 0]]), torch.tensor([254]),
                         fmt)
    assert top.tolist()[0][:2] == [0xFF800000, 0x7F7FFFFE]   # -2**128 overflows to -inf


def test_dequant_blocks_rejects_wrong_shapes():
    fmt = MXIntFormat(8, 8, 4)
    with pytest.raises(ValueError, match=r"mantissa must have shape \(n, 4\), not \(2, 3\)"):
        dequant_blocks(torch.zeros(2, 3, dtype=torch.int64), torch.zeros(2), fmt)
    with pytest.raises(ValueError, match=r"exponent must have shape \(2,\), not \(3,\)"):
        dequant_blocks(torch.zeros(2, 4, dtype=torch.int64), torch.zeros(3), fmt)


# --- Amaranth simulator -----------------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize(("man_bits", "exp_bits", "block"), [
    (2, 2, 1), (2, 8, 3), (4, 5, 2), (8, 8, 16), (13, 3, 5), (24, 8, 3), (24, 2, 4),
])
def test_amaranth_sim_matches_golden(seed, man_bits, exp_bits, block):
    p = params(man_bits, exp_bits, block)
    model = model_for({"top": "dequant", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(seed), 200)
    r = run_stream_sim(MXIntDequantizer(**p), stim, model.expected(stim), seed=seed)
    assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), \
        f"seed {seed}: {r['reports']}"
    assert r["checked"] == len(stim["i"])


def test_stimuli_reach_subnormals_infinity_and_nan():
    p = params(24, 8, 4)
    model = model_for({"top": "dequant", "parameters": p})
    out = torch.tensor([o["bits"] for o in model.expected(
        model.stimuli(torch.Generator().manual_seed(1), 300))["o"]]).flatten()
    field, frac = (out >> 23) & 0xFF, out & 0x7FFFFF
    assert ((field == 0) & (frac != 0)).sum() > 10        # subnormal results
    assert (out == 0xFF800000).any() and (out == QUIET_NAN).any() and (out == 0).any()
    assert ((field > 0) & (field < 255)).sum() > 500      # normal results


# --- Verilator --------------------------------------------------------------------------------

VERILATOR_MATRIX = [params(8, 8, 16), params(24, 8, 4), params(2, 2, 1), params(5, 4, 8)]


@pytest.mark.parametrize("p", VERILATOR_MATRIX,
                         ids=lambda p: "m{man_bits}e{exp_bits}k{block}".format(**p))
def test_verilator_matches_golden(p, sim_build):
    seed = 300 + p["man_bits"] * 10 + p["block"]
    s = simulate("dequant", p, seed=seed, vectors=3000, build_root=sim_build)
    print(f"seed {seed}: {s['checked']} blocks checked in {s['cycles']} cycles")
    assert (s["mismatches"], s["missing"], s["protocol_errors"], s["timed_out"]) == \
        (0, 0, [], False), f"replay with seed {seed}: {s['reports']}"
    assert s["checked"] >= 3000


def test_verilator_scoreboard_catches_dropped_lsb(sim_build):
    # Bit 0 of a float32 pattern is set only for results with 24 significant bits, which
    # here are subnormals: m = 24 at code 0 (the directed block [1, -1, 0] at code 0).
    s = simulate("dequant", params(24, 8, 4), seed=5, vectors=100, build_root=sim_build,
                 fault="lsb")
    assert s["mismatches"] > 0
    assert any("bits" in r for r in s["reports"])
