"""MXIntBlockAdder: golden model against exact rationals, Amaranth-simulator and Verilator
runs against golden."""

from __future__ import annotations

import gc
import math
import warnings
from fractions import Fraction

import pytest
import torch
from amaranth.hdl import Fragment, UnusedElaboratable
from hypothesis import given, settings
from hypothesis import strategies as st

from golden.block_adder import aligned_sum, block_add, floor_log2_int
from golden.format import MXIntFormat
from golden.rounding import ROUNDING_MODES
from hw.block_adder import MXIntBlockAdder
from sim.amaranth_bench import run_stream_sim
from sim.run import simulate
from sim.units import model_for
from tests.reference import floor_log2, round_fraction


def params(a_bits, b_bits, exp_bits, block, out_bits, guard_bits=3, rounding="even"):
    return {"a_bits": a_bits, "b_bits": b_bits, "exp_bits": exp_bits, "block": block,
            "out_bits": out_bits, "guard_bits": guard_bits, "rounding": rounding}


# --- reference: the documented arithmetic, on exact rationals --------------------------------


def element_value(p: int, code: int, fmt: MXIntFormat) -> Fraction:
    return p * Fraction(2) ** fmt.scale_exponent(code)


def quantize_values(vals: list[Fraction], out: MXIntFormat, mode: str) -> tuple[list[int], int]:
    """MXINT block of exact values, as golden.quantize defines it for floats."""
    amax = max(abs(v) for v in vals)
    if amax == 0:
        return [0] * len(vals), 0
    e = min(max(floor_log2(amax) + out.bias, 0), out.max_code)
    scale = Fraction(2) ** out.scale_exponent(e)
    return [max(-out.max_man, min(out.max_man, round_fraction(v / scale, mode)))
            for v in vals], e


def reference_add(a_man, a_exp, b_man, b_exp, fa, fb, out_bits, guard_bits, mode):
    """The adder from its specification: the value of the smaller-exponent block is floored
    to a multiple of the unit ``2**(E_max - bias - (M - 2) - G)``, the exact sums are
    quantised like golden.quantize."""
    out = MXIntFormat(out_bits, fa.exp_bits, fa.block)
    if fa.nan_code in (a_exp, b_exp):
        return [0] * fa.block, out.nan_code
    big = max(fa.man_bits, fb.man_bits)
    unit = Fraction(2) ** (max(a_exp, b_exp) - fa.bias - (big - 2) - guard_bits)
    sums = []
    for pa, pb in zip(a_man, b_man, strict=True):
        va = math.floor(element_value(pa, a_exp, fa) / unit) * unit
        vb = math.floor(element_value(pb, b_exp, fb) / unit) * unit
        sums.append(va + vb)
    return quantize_values(sums, out, mode)


# --- parameters --------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"a_bits": 1}, ValueError, r"a_bits must be from 2 to 24, not 1"),
    ({"b_bits": 25}, ValueError, r"b_bits must be from 2 to 24, not 25"),
    ({"exp_bits": 1}, ValueError, r"exp_bits must be from 2 to 8, not 1"),
    ({"block": 1025}, ValueError, r"block must be from 1 to 1024, not 1025"),
    ({"out_bits": 0}, ValueError, r"out_bits must be from 2 to 24, not 0"),
    ({"guard_bits": -1}, ValueError, r"guard_bits must be from 0 to 32, not -1"),
    ({"guard_bits": 33}, ValueError, r"guard_bits must be from 0 to 32, not 33"),
    ({"guard_bits": True}, TypeError, r"guard_bits must be an integer, not True"),
    ({"block": "4"}, TypeError, r"block must be an integer, not '4'"),
    ({"rounding": "nearest"}, ValueError, r"rounding must be one of 'even', .* not 'nearest'"),
])
def test_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        MXIntBlockAdder(**{**params(6, 6, 8, 4, 6), **kwargs})
    collect_refused_components()


def collect_refused_components() -> None:
    """A constructor that raised leaves a half-built component (Amaranth registers it as
    must-use on creation); collect it now, so the warning does not surface in a later test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        gc.collect()


def test_positional_parameters_refused():
    with pytest.raises(TypeError):
        MXIntBlockAdder(6, 6, 8, 4, 6)  # type: ignore[misc]
    collect_refused_components()


def test_properties_and_layout():
    dut = MXIntBlockAdder(a_bits=4, b_bits=7, exp_bits=5, block=3, out_bits=9, guard_bits=2,
                          rounding="zero")
    Fragment.get(dut, None)  # elaborated, so that Amaranth does not report it unused
    assert (dut.a_bits, dut.b_bits, dut.exp_bits, dut.block, dut.out_bits, dut.guard_bits,
            dut.rounding, dut.latency, dut.sum_width) == (4, 7, 5, 3, 9, 2, "zero", 3, 10)
    assert dut.o.payload.shape().size == 3 * 9 + 5


def test_golden_rejects_bad_arguments():
    fa, fb = MXIntFormat(6, 8, 4), MXIntFormat(6, 5, 4)
    z = torch.zeros(1, 4, dtype=torch.int64)
    e = torch.zeros(1, dtype=torch.int64)
    with pytest.raises(ValueError, match="must share exp_bits and block"):
        block_add(z, e, z, e, fa, fb, 6)
    with pytest.raises(ValueError, match="guard_bits must be from 0 to 32, not 40"):
        block_add(z, e, z, e, fa, fa, 6, guard_bits=40)
    with pytest.raises(ValueError, match="out_bits must be from 2 to 24, not 1"):
        block_add(z, e, z, e, fa, fa, 1)
    with pytest.raises(ValueError, match="rounding must be one of"):
        block_add(z, e, z, e, fa, fa, 6, rounding="up")


# --- golden model: directed ----------------------------------------------------------------------


def add1(pa, ea, pb, eb, fa, fb, out_bits, guard_bits=3, rounding="even"):
    r = block_add(torch.tensor([pa]), torch.tensor([ea]), torch.tensor([pb]),
                  torch.tensor([eb]), fa, fb, out_bits, guard_bits=guard_bits,
                  rounding=rounding)
    return r.mantissa[0].tolist(), int(r.exponent[0])


F6 = MXIntFormat(6, 8, 4)


def test_floor_log2_int_exact_near_powers_of_two():
    v = torch.tensor([1, 2, 3, 4, (1 << 53) + 1, (1 << 54) - 1, (1 << 60), (1 << 61) - 1])
    assert floor_log2_int(v).tolist() == [0, 1, 1, 2, 53, 53, 60, 60]


def test_worked_example():
    # docs/units/block_adder.md: MXINT6 (bias 127), G = 3, even.
    man, exp = add1([20, -7, 31, 0], 130, [-9, 13, 30, 1], 128, F6, F6, 6)
    s, e_max = aligned_sum(torch.tensor([[20, -7, 31, 0]]), torch.tensor([130]),
                           torch.tensor([[-9, 13, 30, 1]]), torch.tensor([128]), F6, F6, 3)
    assert (s.tolist(), int(e_max)) == ([[142, -30, 308, 2]], 130)
    assert (man, exp) == ([9, -2, 19, 0], 131)


def test_equal_exponents_add_exactly():
    man, exp = add1([10, -3, 4, 0], 127, [5, -3, -4, 1], 127, F6, F6, 6)
    # sums 15, -6, 0, 1 at the inputs' scale: max 15 < 2**(m-2), so one code lower, exact
    assert (man, exp) == ([30, -12, 0, 2], 126)


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
def test_shift_beyond_width_is_arithmetic(rounding):
    # b is 200 codes below a: far beyond M + G = 9 bits. A negative element leaves -1 (one
    # unit of the guard LSB), a positive one leaves 0; a logical shift would leave a huge
    # positive number.
    man, exp = add1([0, 0, 16, 16], 220, [-1, 1, -31, 31], 20, F6, F6, 6, rounding=rounding)
    # S = [-1, 0, 128 - 1, 128]: L = 7, E = 220 + 7 - 4 - 3 = 220, shift 3
    want = {"even": [0, 0, 16, 16], "away": [0, 0, 16, 16], "zero": [0, 0, 15, 16],
            "floor": [-1, 0, 15, 16]}[rounding]
    assert (man, exp) == (want, 220)
    # Only the negative residue: it renormalises to -2**(m-2) at E = E_max - 7.
    assert add1([0] * 4, 220, [-1, 1, 0, 0], 20, F6, F6, 6) == ([-16, 0, 0, 0], 213)


def test_shift_amounts_around_the_width():
    f = MXIntFormat(4, 5, 1)
    for d in range(0, 12):
        for p in (-8, -7, -1, 1, 7):
            s, _ = aligned_sum(torch.tensor([[0]]), torch.tensor([20]), torch.tensor([[p]]),
                               torch.tensor([20 - d]), f, f, 2)
            assert int(s) == math.floor(p * 4 / 2 ** d), (d, p)


def test_cancellation_to_zero():
    assert add1([5, -31, 0, 1], 200, [-5, 31, 0, -1], 200, F6, F6, 6) == ([0] * 4, 0)
    # cancellation with unequal widths: 3 in MXINT4 equals 12 in MXINT6 at the same code
    f4 = MXIntFormat(4, 8, 4)
    assert add1([3, -3, 1, 0], 77, [-12, 12, -4, 0], 77, f4, F6, 5) == ([0] * 4, 0)


def test_partial_cancellation_lowers_the_exponent():
    man, exp = add1([31, 1, 0, 0], 140, [-30, 0, 0, 0], 140, F6, F6, 6)
    assert (man, exp) == ([16, 16, 0, 0], 136)


@pytest.mark.parametrize("nan_on", ["a", "b", "both"])
def test_nan(nan_on):
    ea = 255 if nan_on in ("a", "both") else 3
    eb = 255 if nan_on in ("b", "both") else 250
    assert add1([31, -32, 1, 0], ea, [-32, 31, 0, 5], eb, F6, F6, 8) == ([0] * 4, 255)


def test_extreme_exponents():
    # E = 0: results below the smallest code stay at code 0 with rounding
    assert add1([1, -1, 2, 0], 0, [1, 0, 0, 0], 0, F6, F6, 6) == ([2, -1, 2, 0], 0)
    # all -2**(m-1) at E = 0 sums to -4 * 2**-127: code 2 with -16 (exact)
    assert add1([-32] * 4, 0, [-32] * 4, 0, F6, F6, 6) == ([-16] * 4, 2)
    # at E = 2**e - 2 the same sum clamps the exponent and saturates
    assert add1([-32] * 4, 254, [-32] * 4, 254, F6, F6, 6) == ([-31] * 4, 254)
    assert add1([31] * 4, 254, [31] * 4, 254, F6, F6, 6) == ([31] * 4, 254)
    # S = 372, 132, 124, 116 at shift 3: saturated, tie to even, tie to even, tie to even
    assert add1([31, 1, 0, -1], 254, [31] * 4, 253, F6, F6, 6) == ([31, 16, 16, 14], 254)


def test_rounding_ties():
    # out_bits 4: S = 10, 11, -10, -11 at shift 1 (ties on the odd ones)
    f = MXIntFormat(6, 8, 4)
    got = {m: add1([10, 11, -10, -11], 127, [0] * 4, 0, f, f, 4, guard_bits=0, rounding=m)[0]
           for m in ROUNDING_MODES}
    assert got == {"even": [5, 6, -5, -6], "away": [5, 6, -5, -6], "zero": [5, 5, -5, -5],
                   "floor": [5, 5, -5, -6]}


# --- golden model: properties against exact rationals ------------------------------------------


@st.composite
def adder_case(draw):
    exp_bits = draw(st.integers(2, 8))
    block = draw(st.integers(1, 5))
    fa = MXIntFormat(draw(st.integers(2, 24)), exp_bits, block)
    fb = MXIntFormat(draw(st.integers(2, 24)), exp_bits, block)
    out_bits = draw(st.integers(2, 24))
    guard = draw(st.integers(0, 32))
    mode = draw(st.sampled_from(ROUNDING_MODES))
    codes = st.integers(0, fa.nan_code)
    ea = draw(codes)
    eb = draw(st.one_of(codes, st.integers(ea - 3 - guard, ea + 3 + guard).map(
        lambda e: min(max(e, 0), fa.max_code))))

    def mans(f):
        return draw(st.lists(st.integers(-(1 << (f.man_bits - 1)), f.max_man),
                             min_size=block, max_size=block))
    return fa, fb, out_bits, guard, mode, mans(fa), ea, mans(fb), eb


@settings(max_examples=400, deadline=None)
@given(adder_case())
def test_golden_matches_rational_reference(case):
    fa, fb, out_bits, guard, mode, pa, ea, pb, eb = case
    got = add1(pa, ea, pb, eb, fa, fb, out_bits, guard, mode)
    assert got == reference_add(pa, ea, pb, eb, fa, fb, out_bits, guard, mode)


@settings(max_examples=300, deadline=None)
@given(adder_case())
def test_golden_equals_quantised_exact_sum_when_alignment_is_lossless(case):
    """When the shift drops no bit (d <= G + M - m_small), the adder rounds the exact sum
    of the two blocks once, exactly as quantize does: the floor spec adds no error there."""
    fa, fb, out_bits, guard, mode, pa, ea, pb, eb = case
    if fa.nan_code in (ea, eb):
        return
    big = max(fa.man_bits, fb.man_bits)
    small = fb if ea >= eb else fa
    if abs(ea - eb) > guard + big - small.man_bits:
        return
    out = MXIntFormat(out_bits, fa.exp_bits, fa.block)
    exact = [element_value(x, ea, fa) + element_value(y, eb, fb) for x, y in zip(pa, pb,
                                                                               strict=True)]
    man, exp = quantize_values(exact, out, mode)
    assert add1(pa, ea, pb, eb, fa, fb, out_bits, guard, mode) == (man, exp)


def test_golden_batched_matches_rowwise():
    gen = torch.Generator().manual_seed(3)
    model = model_for({"top": "adder", "parameters": params(5, 9, 4, 6, 7, 2, "away")})
    stim = model.stimuli(gen, 200)
    want = model.expected(stim)["o"]
    for x, y, w in zip(stim["a"], stim["b"], want, strict=True):
        got = reference_add(x["mantissa"], x["exponent"], y["mantissa"], y["exponent"],
                            model.fmt_a, model.fmt_b, 7, 2, "away")
        assert (w["mantissa"], w["exponent"]) == got


def test_directed_stimuli_expose_a_logical_shift():
    """A logical right shift of the negative, smaller operand (the bug of the earlier open
    design) gives a different result on the directed corners."""
    p = params(6, 6, 8, 4, 6)
    model = model_for({"top": "adder", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(0), 0)
    a_man = torch.tensor([x["mantissa"] for x in stim["a"]])
    b_man = torch.tensor([x["mantissa"] for x in stim["b"]])
    a_exp = torch.tensor([x["exponent"] for x in stim["a"]])
    b_exp = torch.tensor([x["exponent"] for x in stim["b"]])
    s, _ = aligned_sum(a_man, a_exp, b_man, b_exp, model.fmt_a, model.fmt_b, 3)
    width = 9
    mask = (1 << width) - 1
    xb = b_man << 3
    d = (a_exp - b_exp).clamp(min=0, max=width).unsqueeze(-1)
    logical = torch.where(a_exp.unsqueeze(-1) >= b_exp.unsqueeze(-1),
                          (a_man << 3) + ((xb & mask) >> d), s)
    assert bool((logical != s).any())


# --- Amaranth simulator ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize(("a_bits", "b_bits", "exp_bits", "block", "out_bits", "guard",
                          "rounding"), [
    (2, 2, 2, 1, 2, 0, "even"),
    (6, 6, 8, 4, 6, 3, "even"),
    (4, 7, 5, 3, 5, 0, "away"),
    (8, 3, 3, 5, 12, 2, "zero"),
    (5, 5, 8, 16, 3, 1, "floor"),
    (24, 24, 8, 2, 24, 32, "even"),
    (3, 12, 4, 7, 8, 6, "away"),
])
def test_amaranth_sim_matches_golden(seed, a_bits, b_bits, exp_bits, block, out_bits, guard,
                                     rounding):
    p = params(a_bits, b_bits, exp_bits, block, out_bits, guard, rounding)
    model = model_for({"top": "adder", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(seed), 80)
    r = run_stream_sim(MXIntBlockAdder(**p), stim, model.expected(stim), seed=seed)
    assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), \
        f"seed {seed}: {r['reports']}"
    assert r["checked"] == len(stim["a"])


def test_amaranth_sim_one_block_pair_per_cycle():
    p = params(5, 7, 4, 3, 6, 2, "even")
    model = model_for({"top": "adder", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(3), 200)
    r = run_stream_sim(MXIntBlockAdder(**p), stim, model.expected(stim), seed=3, idle=0,
                       backpressure=0)
    assert r["mismatches"] == 0 and r["missing"] == 0
    assert r["cycles"] <= len(stim["a"]) + 3 * 3 + 4  # latency 3, then the drain


def test_amaranth_sim_catches_wrong_expectation():
    p = params(6, 6, 8, 4, 6)
    model = model_for({"top": "adder", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(7), 20)
    want = model.expected(stim)
    want["o"][5]["exponent"] ^= 1
    r = run_stream_sim(MXIntBlockAdder(**p), stim, want, seed=7)
    assert r["mismatches"] == 1 and "output #5" in r["reports"][0]


# --- Verilator --------------------------------------------------------------------------------

VERILATOR_MATRIX = [
    params(6, 6, 8, 16, 6, 3, "even"),
    params(4, 4, 5, 2, 4, 0, "away"),
    params(2, 8, 3, 1, 6, 2, "zero"),
    params(8, 8, 8, 32, 8, 3, "floor"),
]
# (The injected fault of this checker runs on the minifloat adder's build, in
# tests/test_mxfp_adder.py, which took this matrix's fifth entry's time: a = 8, b = 4 bits,
# out 10, guard 5; the Amaranth simulator keeps a wider a than b, 8 and 3 bits.)


@pytest.mark.parametrize("p", VERILATOR_MATRIX, ids=lambda p: (
    "a{a_bits}b{b_bits}e{exp_bits}k{block}o{out_bits}g{guard_bits}{rounding}".format(**p)))
def test_verilator_matches_golden(p, sim_build):
    seed = 200 + p["a_bits"] * 10 + p["block"]
    s = simulate("adder", p, seed=seed, vectors=400, build_root=sim_build)
    print(f"seed {seed}: {s['checked']} checked in {s['cycles']} cycles")
    assert (s["mismatches"], s["missing"], s["protocol_errors"], s["timed_out"]) == \
        (0, 0, [], False), f"replay with seed {seed}: {s['reports']}"
    model = model_for({"top": "adder", "parameters": p})
    assert s["checked"] == 400 + len(model.stimuli(torch.Generator().manual_seed(0), 0)["a"])
