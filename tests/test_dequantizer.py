# amaranth: UnusedElaboratable=no
"""MXIntDequantizer: parameters, golden helpers against golden.dequantize, torch float64 ->
float32 conversion and Fractions, Amaranth-simulator and Verilator runs, for both sources
(MXINT and MXFP blocks, and accumulator results)."""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from golden.dequant import (
    QUIET_NAN,
    accum_scale_offset,
    dequant_accum,
    dequant_blocks,
    float32_bits,
)
from golden.format import MXFPFormat, MXIntFormat
from golden.minifloat import ELEMENTS
from golden.quantize import MXFPTensor, MXIntTensor, dequantize, quantize
from hw.dequantizer import MXIntDequantizer
from hw.generate import main as generate
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


@pytest.mark.parametrize("man_bits", [2, 3, 8])
def test_amaranth_sim_every_mantissa_at_every_exponent(man_bits):
    """Block 1, e = 8: every ``P`` at every exponent code, NaN code and infinity included
    (``P = -2**(m-1)`` at code 254 is the only infinity; the dequantiser builds no separate
    case for it, see its docstring). 8 bits: the extreme mantissas and their neighbours."""
    half = 1 << (man_bits - 1)
    mans = range(-half, half) if man_bits < 8 else (-half, -half + 1, -1, 0, 1, half - 1)
    stim = {"i": [{"mantissa": [p], "exponent": x} for x in range(256) for p in mans]}
    p = params(man_bits, 8, 1)
    model = model_for({"top": "dequant", "parameters": p})
    want = model.expected(stim)
    assert sum(o["bits"] == [0xFF800000] for o in want["o"]) == 1  # the infinity is there
    r = run_stream_sim(MXIntDequantizer(**p), stim, want, seed=man_bits)
    assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), r["reports"]
    assert r["checked"] == len(stim["i"])


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


# === Accumulator results (source="accum") ===================================================

def accum_params(a_bits, b_bits, exp_bits, block, guard_bits=8, acc_width=None):
    return {"source": "accum", "a_bits": a_bits, "b_bits": b_bits, "exp_bits": exp_bits,
            "block": block, "guard_bits": guard_bits, "acc_width": acc_width}


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"source": "fp32"}, ValueError, r"source must be one of 'block', 'accum', not 'fp32'"),
    ({"man_bits": 8}, ValueError, r"man_bits applies only with source='block', not source='accum'"),
    ({"a_bits": None}, TypeError, r"a_bits must be an integer, not None"),
    ({"b_bits": 25}, ValueError, r"b_bits must be from 2 to 24, not 25"),
    ({"guard_bits": 47}, ValueError, r"guard_bits must be from 0 to 46, not 47"),
    ({"acc_width": 23}, ValueError, r"acc_width must be from 24 to 62, not 23"),
    ({"acc_width": 63}, ValueError, r"acc_width must be from 24 to 62, not 63"),
    ({"exp_bits": 1}, ValueError, r"exp_bits must be from 2 to 8, not 1"),
])
def test_accum_bad_parameters(kwargs, exc, match):
    # 6 x 6 bits, k = 16: the dot sum has 16 bits, so G <= 46 and W >= 16 + G.
    with pytest.raises(exc, match=match):
        MXIntDequantizer(**{**accum_params(6, 6, 8, 16), **kwargs})


def test_block_source_refuses_accum_parameters():
    with pytest.raises(ValueError, match=r"acc_width applies only with source='accum', not "
                                         r"source='block'"):
        MXIntDequantizer(man_bits=8, block=4, acc_width=40)


def test_accum_latency_widths_and_defaults():
    dut = MXIntDequantizer(**accum_params(6, 6, 8, 16))
    assert (dut.latency, dut.source, dut.guard_bits, dut.acc_width) == (7, "accum", 8, 32)
    assert dut.man_bits is None
    assert dut.i.payload.shape().size == 32 + 9 + 1
    assert dut.o.payload.shape().size == 32
    assert MXIntDequantizer(man_bits=8, block=4).source == "block"


def test_cli_generates_accum_source(tmp_path):
    assert generate(["--top", "dequant", "--source", "accum", "--abits", "4", "--wbits", "6",
                     "--block", "8", "--exp-bits", "5", "--guard-bits", "0",
                     "--out", str(tmp_path)]) == 0
    name = "mxint_dequant_accum_a4_w6_e5_k8_g0_acc21"
    assert (tmp_path / f"{name}.v").read_text().count(f"module {name}(") == 1


# --- golden: float32_bits / dequant_accum -----------------------------------------------------

def float32_pattern(x: float) -> int:
    """torch's float64 -> float32 conversion (one rounding, nearest even) as a pattern."""
    return int(torch.tensor(x, dtype=torch.float64).to(torch.float32).view(torch.int32)) \
        & 0xFFFFFFFF


def pattern_value(bits: int) -> Fraction:
    """Exact magnitude of a float32 pattern; the infinity pattern counts as 2**128, the
    value IEEE rounding treats as the next step above the largest finite number."""
    field, frac = (bits >> 23) & 0xFF, bits & 0x7FFFFF
    if field == 255:
        return Fraction(2) ** 128
    if field == 0:
        return frac * Fraction(2) ** -149
    return (frac + (1 << 23)) * Fraction(2) ** (field - 150)


def fraction_reference(v: int, scale: int) -> int:
    """Nearest float32 pattern of ``v * 2**scale`` by exact comparison: the magnitude patterns
    are ordered like their values, so the answer is the nearer of the two patterns around
    the value (ties: the even pattern)."""
    x = abs(v) * Fraction(2) ** scale
    lo, hi = 0, 0x7F800000
    while hi - lo > 1:  # pattern_value(lo) <= x < pattern_value(hi), or x >= 2**128
        mid = (lo + hi) // 2
        if pattern_value(mid) <= x:
            lo = mid
        else:
            hi = mid
    if pattern_value(hi) <= x:
        best = hi
    else:
        below, above = x - pattern_value(lo), pattern_value(hi) - x
        best = lo if below < above or (below == above and lo % 2 == 0) else hi
    return best | (int(v < 0) << 31) if v else 0


WIDE = 1 << 61


@settings(max_examples=600, deadline=None)
@given(value=st.one_of(st.integers(-WIDE, WIDE), st.integers(-(1 << 30), 1 << 30),
                       st.builds(lambda m, t: m << t, st.integers(-(1 << 26), 1 << 26),
                                 st.integers(0, 35)),
                       st.sampled_from([0, 1, -1, WIDE, -WIDE, WIDE - 1, (1 << 53) - 1])),
       scale=st.one_of(st.integers(-420, 520), st.integers(-180, -120), st.integers(60, 130)))
def test_float32_bits_is_one_correct_rounding(value, scale):
    got = int(float32_bits(torch.tensor([value]), torch.tensor([scale]))[0])
    assert got == fraction_reference(value, scale), (value, scale, hex(got))
    if abs(value) < 1 << 53:  # exact in float64: torch's conversion rounds once
        assert got == float32_pattern(math.ldexp(float(value), scale))


@pytest.mark.parametrize(("value", "scale", "want"), [
    (0, 0, 0x00000000), (-1, -149, 0x80000001), (1, -150, 0x00000000),   # half of 2**-149: even
    (3, -151, 0x00000001), (-3, -150, 0x80000002),                        # 0.75 -> 1, 1.5 -> 2
    ((1 << 24) + 1, 0, 0x4B800000), ((1 << 24) + 3, 0, 0x4B800002),       # ties to even
    ((1 << 24) - 1, -150, 0x00800000),             # largest subnormal rounds up to 2**-126
    ((1 << 24) - 1, 104, 0x7F7FFFFF), ((1 << 25) - 1, 103, 0x7F800000),   # 2**128 - 2**103
    (-(1 << 61), 100, 0xFF800000), (-(1 << 61), -211, 0x80000000),        # -inf and -0.0
])
def test_float32_bits_corners(value, scale, want):
    assert int(float32_bits(torch.tensor([value]), torch.tensor([scale]))[0]) == want


def test_dequant_accum_scale_and_nan():
    # c = G + 2*bias + (a - 2) + (b - 2) = 8 + 254 + 4 + 4 = 270: (3, 270) is 3.0.
    assert accum_scale_offset(a_bits=6, b_bits=6, exp_bits=8, guard_bits=8) == 270
    got = dequant_accum(torch.tensor([3, 3, -5, 7]), torch.tensor([270, 268, 271, 0]),
                        torch.tensor([False, False, False, True]), a_bits=6, b_bits=6,
                        exp_bits=8, guard_bits=8)
    assert got.tolist() == [0x40400000, 0x3F400000, 0xC1200000, QUIET_NAN]
    with pytest.raises(ValueError, match=r"exponent must be non-negative"):
        dequant_accum(torch.tensor([1]), torch.tensor([-1]), torch.tensor([False]),
                      a_bits=6, b_bits=6, exp_bits=8, guard_bits=8)
    with pytest.raises(ValueError, match=r"value must be at most 2\*\*61 in magnitude"):
        float32_bits(torch.tensor([WIDE + 1]), torch.tensor([0]))


@pytest.mark.parametrize("p", [accum_params(6, 6, 8, 16), accum_params(2, 2, 2, 1, 0),
                               accum_params(24, 24, 8, 1024, 2, 62)],
                         ids=["a6w6e8", "a2w2e2", "a24w24e8W62"])
def test_accum_stimuli_match_reference_and_reach_every_case(p):
    """The model's expectations equal the Fraction reference, and the stimuli reach
    subnormals, ±inf, ±0, NaN and exact ties (for e = 8)."""
    model = model_for({"top": "dequant", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(4), 400)["i"]
    out = [o["bits"] for o in model.expected({"i": stim})["o"]]
    ties = 0
    for x, got in zip(stim, out, strict=True):
        scale = x["exponent"] - model.offset
        want = QUIET_NAN if x["nan"] else fraction_reference(x["sum"], scale)
        assert got == want, (x, hex(got))
        mag = abs(x["sum"]) * Fraction(2) ** scale
        if not x["nan"] and mag and got & 0x7FFFFFFF < 0x7F800000:
            ulp = Fraction(2) ** (max((got >> 23) & 0xFF, 1) - 150)
            ties += (mag / ulp).denominator == 2
    out_t = torch.tensor(out)
    field = (out_t >> 23) & 0xFF
    assert (out_t == QUIET_NAN).any() and (out_t == 0).any()
    assert ((field > 0) & (field < 255)).sum() > 100
    if p["exp_bits"] == 8:
        assert ((field == 0) & ((out_t & 0x7FFFFF) != 0)).sum() > 20   # subnormals
        assert (out_t == 0x7F800000).any() and (out_t == 0xFF800000).any()
        assert (out_t == 0x80000000).any()                               # -0.0 by underflow
        assert ties > 20


# --- Amaranth simulator (accum source) --------------------------------------------------------

ACCUM_SIM_MATRIX = [
    accum_params(2, 2, 2, 1, 0),             # W = 4, everything normal
    accum_params(3, 5, 3, 3, 8),
    accum_params(6, 6, 8, 16, 8),            # W = 32
    accum_params(6, 6, 8, 16, 0, 62),
    accum_params(4, 4, 7, 2, 0),
    accum_params(6, 4, 6, 8, 8, 62),
    accum_params(8, 8, 5, 4, 0, 62),
    accum_params(24, 24, 8, 1024, 2, 62),    # W = 62, in_width 58
    accum_params(24, 24, 4, 1, 8),
]


@pytest.mark.parametrize("seed", [1])
@pytest.mark.parametrize("p", ACCUM_SIM_MATRIX, ids=lambda p: (
    "a{a_bits}w{b_bits}e{exp_bits}k{block}g{guard_bits}acc{acc_width}".format(**p)))
def test_accum_amaranth_sim_matches_golden(seed, p):
    model = model_for({"top": "dequant", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(seed), 300)
    r = run_stream_sim(MXIntDequantizer(**p), stim, model.expected(stim), seed=seed)
    assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), \
        f"seed {seed}: {r['reports']}"
    assert r["checked"] == len(stim["i"])


# --- Verilator (accum source) -----------------------------------------------------------------

ACCUM_VERILATOR = [accum_params(6, 6, 8, 16), accum_params(24, 24, 8, 1024, 2, 62),
                   accum_params(2, 2, 2, 1, 0)]


@pytest.mark.parametrize("p", ACCUM_VERILATOR, ids=lambda p: (
    "a{a_bits}w{b_bits}e{exp_bits}k{block}g{guard_bits}".format(**p)))
def test_accum_verilator_matches_golden(p, sim_build):
    seed = 500 + p["a_bits"] + p["block"]
    s = simulate("dequant", p, seed=seed, vectors=3000, build_root=sim_build)
    print(f"seed {seed}: {s['checked']} results checked in {s['cycles']} cycles")
    assert (s["mismatches"], s["missing"], s["protocol_errors"], s["timed_out"]) == \
        (0, 0, [], False), f"replay with seed {seed}: {s['reports']}"
    assert s["checked"] >= 3000


def test_accum_verilator_scoreboard_catches_dropped_lsb(sim_build):
    s = simulate("dequant", ACCUM_VERILATOR[0], seed=6, vectors=100, build_root=sim_build,
                 fault="lsb")
    assert s["mismatches"] > 0
    assert any("bits" in r for r in s["reports"])


# === MXFP blocks (element="e5m2" ... "e2m1") =================================================

ELEMENT_NAMES = list(ELEMENTS)


def ocp_value(code: int, name: str) -> Fraction | str:
    """The value of an element code by the OCP MX v1.0 table, written from the
    specification (not from golden.minifloat): a Fraction, or "inf", "-inf", "nan"."""
    exp_bits, man_bits = int(name[1]), int(name[3])
    bias = (1 << (exp_bits - 1)) - 1
    sign = -1 if code >> (exp_bits + man_bits) else 1
    e = (code >> man_bits) & ((1 << exp_bits) - 1)
    m = code & ((1 << man_bits) - 1)
    top = e == (1 << exp_bits) - 1
    if name == "e5m2" and top:
        return "nan" if m else ("-inf" if sign < 0 else "inf")
    if name == "e4m3" and top and m == (1 << man_bits) - 1:
        return "nan"
    if e == 0:
        return sign * m * Fraction(2) ** (1 - bias - man_bits)
    return sign * ((1 << man_bits) + m) * Fraction(2) ** (e - bias - man_bits)


def mxfp_reference_bits(code: int, scale: int, name: str) -> int:
    """float32 pattern of ``value(code) * 2**(scale - 127)`` from exact rationals."""
    value = ocp_value(code, name)
    negative = code >> (int(name[1]) + int(name[3])) == 1
    if scale == 255 or value == "nan":
        return QUIET_NAN
    if value in ("inf", "-inf"):
        return 0xFF800000 if negative else 0x7F800000
    v = value * Fraction(2) ** (scale - 127)
    if abs(v) >= 2 ** 128:
        return 0xFF800000 if negative else 0x7F800000
    bits = struct.unpack("<I", struct.pack("<f", float(v)))[0] | (negative << 31)
    assert Fraction(struct.unpack("<f", struct.pack("<I", bits))[0]) == v, "exact"
    return bits


@pytest.mark.parametrize("name", ELEMENT_NAMES)
def test_mxfp_dequant_blocks_every_code_and_scale(name):
    """Every code at every scale code (0 .. 255) equals the Fraction reference."""
    fmt = MXFPFormat(name, block=1)
    n = 1 << fmt.element_bits
    codes = torch.arange(n).repeat(256)
    scales = torch.arange(256).repeat_interleave(n)
    got = dequant_blocks(codes.unsqueeze(1), scales, fmt)[:, 0].tolist()
    want = [mxfp_reference_bits(c, x, name) for c, x in zip(codes.tolist(), scales.tolist(),
                                                             strict=True)]
    assert got == want
    field = (torch.tensor(got) >> 23) & 0xFF
    assert ((field == 0) & (torch.tensor(got) & 0x7FFFFF != 0)).any()  # float32 subnormals
    assert 0x80000000 in got and 0xFF800000 in got


@pytest.mark.parametrize("name", ELEMENT_NAMES)
def test_mxfp_dequant_blocks_is_golden_dequantize(name):
    """Blocks of 32 quantised from random floats: equal to golden.dequantize, NaN blocks
    and NaN codes aside (those are QUIET_NAN)."""
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(64, 32, generator=gen) * torch.exp2(torch.randint(-140, 130, (64, 1),
                                                                      generator=gen))
    x[3, 5] = float("nan")
    q = quantize(x, MXFPFormat(name, block=32), axis=1)
    codes, exp = q.codes.reshape(64, 32), q.exponent.reshape(64)
    got = dequant_blocks(codes, exp, q.fmt)
    want = dequantize(q).view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    finite = (exp != 255).unsqueeze(1) & (q.special.reshape(64, 32) != 2)
    assert torch.equal(got[finite], want[finite])
    assert (got[~finite] == QUIET_NAN).all() and (~finite).any()
    q2 = MXFPTensor(codes=codes.reshape(64, 1, 32), exponent=exp.reshape(64, 1), fmt=q.fmt,
                    shape=torch.Size((64, 32)), axis=1)
    assert torch.equal(dequantize(q2).view(torch.int32), dequantize(q).view(torch.int32))


def test_mxfp_dequant_blocks_corners():
    fmt = MXFPFormat("e5m2", block=4)
    # -0, the smallest subnormal at X = 0 (2**-16 * 2**-127 = 2**-143), +inf, NaN code
    got = dequant_blocks(torch.tensor([[0x80, 0x01, 0x7C, 0xFD]]), torch.tensor([0]), fmt)
    assert got.tolist() == [[0x80000000, 1 << 6, 0x7F800000, QUIET_NAN]]
    # E2M1 6.0 at X = 254: 6 * 2**127 overflows; 0.5 at X = 0 is 2**-128, a subnormal
    e2m1 = MXFPFormat("e2m1", block=2)
    assert dequant_blocks(torch.tensor([[0xF, 0x1]]), torch.tensor([254]), e2m1).tolist() == \
        [[0xFF800000, 0x3F000000 + (127 << 23)]]
    assert dequant_blocks(torch.tensor([[0x1, 0x9]]), torch.tensor([0]), e2m1).tolist() == \
        [[1 << 21, 0x80000000 | 1 << 21]]
    with pytest.raises(TypeError, match=r"fmt must be an MXIntFormat or MXFPFormat, not 3"):
        dequant_blocks(torch.zeros(1, 1), torch.zeros(1), 3)


# --- parameters (MXFP) ------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"element": "e4m4"}, ValueError,
     r"element must be one of 'int', 'e5m2', 'e4m3', 'e3m2', 'e2m3', 'e2m1', not 'e4m4'"),
    ({"element": "e4m3", "man_bits": 8}, ValueError,
     r"man_bits applies only with element='int', not element='e4m3': leave it out"),
    ({"element": "e2m1", "exp_bits": 5}, ValueError,
     r"exp_bits must be 8 \(the E8M0 scale\) with element='e2m1', not 5"),
    ({"element": "int"}, TypeError, r"man_bits must be an integer, not None"),
    ({"element": "e5m2", "source": "accum", "a_bits": 4, "b_bits": 4}, ValueError,
     r"element applies only with source='block', not source='accum'"),
])
def test_mxfp_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        MXIntDequantizer(**{"block": 4, **kwargs})


def test_mxfp_latency_widths_and_names():
    dut = MXIntDequantizer(element="e2m1", block=32)
    assert (dut.latency, dut.element, dut.man_bits, dut.exp_bits) == (2, "e2m1", None, 8)
    assert dut.i.payload.shape().size == 32 * 4 + 8
    assert dut.o.payload.shape().size == 32 * 32
    assert dut.params.name == "mxfp_dequant_e2m1_k32"
    # element="int" is MXINT, and the record keeps no element: the manifest is unchanged
    mxint = MXIntDequantizer(element="int", man_bits=8, block=4)
    assert mxint.params == MXIntDequantizer(man_bits=8, block=4).params
    assert "element" not in mxint.params.kwargs()


def test_cli_generates_mxfp(tmp_path):
    assert generate(["--top", "dequant", "--format", "mxfp6_e3m2", "--block", "4",
                     "--out", str(tmp_path)]) == 0
    assert (tmp_path / "mxfp_dequant_e3m2_k4.v").read_text().count(
        "module mxfp_dequant_e3m2_k4(") == 1


# --- Amaranth simulator (MXFP) ----------------------------------------------------------------

def mxfp_sim(p: dict, stim: dict, seed: int) -> None:
    model = model_for({"top": "dequant", "parameters": p})
    r = run_stream_sim(MXIntDequantizer(**p), stim, model.expected(stim), seed=seed)
    assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), \
        f"seed {seed}: {r['reports']}"
    assert r["checked"] == len(stim["i"])


@pytest.mark.parametrize("block", [1, 3, 32])
@pytest.mark.parametrize("name", ELEMENT_NAMES)
def test_mxfp_amaranth_sim_matches_golden(name, block):
    """Every code at every scale that puts some element at a float32 edge (subnormal,
    overflow) and at 0, 1, 126, 127, 254, 255, then random blocks; with back-pressure."""
    p = {"element": name, "block": block}
    model = model_for({"top": "dequant", "parameters": p})
    mxfp_sim(p, model.stimuli(torch.Generator().manual_seed(block), 100), seed=block)


@pytest.mark.parametrize("name", ["e2m1"])
def test_mxfp_amaranth_sim_every_code_at_every_scale(name):
    n = 1 << ELEMENTS[name].width
    stim = {"i": [{"codes": [c], "exponent": x} for x in range(256) for c in range(n)]}
    mxfp_sim({"element": name, "block": 1}, stim, seed=3)


@pytest.mark.parametrize("name", ELEMENT_NAMES)
def test_mxfp_stimuli_reach_every_case(name):
    model = model_for({"top": "dequant", "parameters": {"element": name, "block": 4}})
    out = torch.tensor([o["bits"] for o in model.expected(
        model.stimuli(torch.Generator().manual_seed(1), 100))["o"]]).flatten()
    field, frac = (out >> 23) & 0xFF, out & 0x7FFFFF
    assert ((field == 0) & (frac != 0)).sum() > 10          # float32 subnormals
    assert ((field > 0) & (field < 255)).sum() > 100         # normals
    for pattern in (0, 0x80000000, 0x7F800000, 0xFF800000, QUIET_NAN):
        assert (out == pattern).any(), hex(pattern)
    assert (field == 1).any() and (field == 254).any()       # both edges of the normals


# --- Verilator (MXFP) -------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "block"), [("e4m3", 8), ("e5m2", 2)])
def test_mxfp_verilator_matches_golden(name, block, sim_build):
    seed = 700 + block
    p = {"element": name, "block": block}
    s = simulate("dequant", p, seed=seed, vectors=1000, build_root=sim_build)
    print(f"seed {seed}: {s['checked']} blocks checked in {s['cycles']} cycles")
    assert (s["mismatches"], s["missing"], s["protocol_errors"], s["timed_out"]) == \
        (0, 0, [], False), f"replay with seed {seed}: {s['reports']}"
    assert s["checked"] >= 1000


def test_report_memory_density_of_mxfp():
    """flows.report names the MXFP block format and its density (4 + 8/32 bits)."""
    from flows.report import _densities
    from hw.dequantizer import DequantParams

    assert _densities(DequantParams(element="e2m1", block=32)) == {"a": {
        "format": "mxfp4_k32", "bits_per_element": 4.25, "memory_density": 32 / 4.25}}
