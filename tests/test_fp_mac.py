"""Floating-point multiply-add baseline: golden against torch and exact rationals, hardware
against golden in the Amaranth simulator and under Verilator."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from golden.fp_mac import FLOAT_FORMATS, FloatFormat, flush_subnormal, fp_add, fp_mac, fp_mul
from hw.fp_mac import FloatMultiplyAdd
from sim.amaranth_bench import run_stream_sim
from sim.run import simulate
from sim.units.fp_mac import FloatMacModel, random_operands

FP32, BF16, FP16, E4M3 = (FLOAT_FORMATS[k] for k in ("fp32", "bf16", "fp16", "e4m3"))


# ----------------------------------------------------------------------------------------
# Parameters.

@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"exp_bits": 1}, ValueError, r"exp_bits must be from 2 to 8, not 1"),
    ({"exp_bits": 9}, ValueError, r"exp_bits must be from 2 to 8, not 9"),
    ({"man_bits": 0}, ValueError, r"man_bits must be from 1 to 23, not 0"),
    ({"man_bits": 24}, ValueError, r"man_bits must be from 1 to 23, not 24"),
    ({"man_bits": 7.0}, TypeError, r"man_bits must be an integer, not 7.0"),
    ({"exp_bits": True}, TypeError, r"exp_bits must be an integer, not True"),
    ({"multiplier": "dsp"}, ValueError,
     r"multiplier must be one of 'heap', 'generic', 'booth', not 'dsp'"),
    ({"subnormals": "ftz"}, ValueError, r"subnormals must be one of 'keep', 'flush', not 'ftz'"),
    ({"subnormals": 0}, TypeError, r"subnormals must be"),
])
def test_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        FloatMultiplyAdd(**{"exp_bits": 8, "man_bits": 7, **kwargs})


def test_positional_parameters_refused():
    with pytest.raises(TypeError):
        FloatMultiplyAdd(8, 23)  # type: ignore[misc]


def test_properties():
    dut = FloatMultiplyAdd(exp_bits=5, man_bits=10)
    assert (dut.exp_bits, dut.man_bits, dut.latency, dut.format) == (5, 10, 12, FP16)
    assert (dut.multiplier, dut.subnormals) == ("heap", "keep")
    # fp32's 24 x 24 heap takes three registers, one more than the generic multiplier
    assert [FloatMultiplyAdd(exp_bits=8, man_bits=23, multiplier=mul, subnormals=sub).latency
            for mul in ("heap", "generic") for sub in ("keep", "flush")] == [13, 11, 12, 10]
    # the Booth product's two chains of 7 and 6 rows: 8 registers, 6 more than stage 2
    assert [FloatMultiplyAdd(exp_bits=8, man_bits=m, multiplier="booth", subnormals=sub).latency
            for m in (23, 7) for sub in ("keep", "flush")] == [18, 16, 14, 12]
    assert [FloatMultiplyAdd(exp_bits=8, man_bits=23, multiplier=mul, subnormals="flush")
            .params.name for mul in ("heap", "generic", "booth")] == [
        "fp_mac_e8_m23_ftz", "fp_mac_e8_m23_ftz_mulgeneric", "fp_mac_e8_m23_ftz_mulbooth"]
    assert FP32.nan == 0x7FC00000 and BF16.nan == 0x7FC0 and FP16.nan == 0x7E00
    assert E4M3.nan == 0x7C and E4M3.inf == 0x78 and E4M3.max_finite == 0x77


# ----------------------------------------------------------------------------------------
# Golden model against torch (the reference) and against exact rationals.

_INT_VIEW = {32: torch.int32, 16: torch.int16}


def _to_torch(bits: torch.Tensor, dtype: torch.dtype, width: int) -> torch.Tensor:
    signed = torch.where(bits >= 1 << (width - 1), bits - (1 << width), bits)
    return signed.to(_INT_VIEW[width]).view(dtype)


def _from_torch(t: torch.Tensor, width: int) -> torch.Tensor:
    return t.view(_INT_VIEW[width]).to(torch.int64) & ((1 << width) - 1)


def _agree(ours: torch.Tensor, theirs: torch.Tensor, fmt: FloatFormat) -> torch.Tensor:
    """Bit-equal, or both NaN (torch's NaN payloads are not canonical)."""
    nan = torch.isnan(theirs)
    ours_nan = (ours & ~fmt.sign_bit) == fmt.nan
    return torch.where(nan, ours_nan, ours == _from_torch(theirs, fmt.width))


@pytest.mark.parametrize(("name", "dtype", "n"), [
    ("fp32", torch.float32, 100_000), ("bf16", torch.bfloat16, 50_000),
    ("fp16", torch.float16, 50_000),
])
def test_golden_equals_torch(name, dtype, n):
    """``fp_mul``, ``fp_add`` and ``fp_mac`` equal torch's ``a * b``, ``a + b`` and
    ``(a * b) + c`` (two ops, each rounded to ``dtype``) bit for bit on random patterns of
    every class: subnormals, NaN, infinities, cancellation. NaN compares as "is NaN"."""
    fmt = FLOAT_FORMATS[name]
    gen = torch.Generator().manual_seed(2024)
    a, b, c = random_operands(gen, fmt, n)
    ta, tb, tc = (_to_torch(x, dtype, fmt.width) for x in (a, b, c))
    prod = ta * tb
    mac = fp_mac(a, b, c, fmt)
    assert bool(_agree(fp_mul(a, b, fmt), prod, fmt).all())
    assert bool(_agree(fp_add(a, c, fmt), ta + tc, fmt).all())
    ok = _agree(mac, prod + tc, fmt)
    bad = (~ok).nonzero().flatten()[:3].tolist()
    assert bool(ok.all()), [(hex(a[i]), hex(b[i]), hex(c[i]), hex(mac[i])) for i in bad]
    # The sample covers what it claims to.
    e = (a >> fmt.man_bits) & fmt.exp_max
    assert int((e == 0).sum()) > n // 10 and int((e == fmt.exp_max).sum()) > n // 100
    r = _from_torch(prod + tc, fmt.width)
    assert int((((r >> fmt.man_bits) & fmt.exp_max) == 0).sum()) > n // 50  # tiny results
    assert int(torch.isnan(prod + tc).sum()) > n // 500


def _flush_torch(t: torch.Tensor) -> torch.Tensor:
    """Subnormals of a torch tensor replaced by zeros of their sign, by hand."""
    tiny = torch.finfo(t.dtype).tiny
    return torch.where((t != 0) & (t.abs() < tiny), torch.copysign(torch.zeros_like(t), t), t)


@pytest.mark.parametrize(("name", "dtype", "n"), [
    ("fp32", torch.float32, 50_000), ("bf16", torch.bfloat16, 30_000),
])
def test_golden_flush_equals_torch(name, dtype, n):
    """``fp_mac(..., subnormals="flush")`` equals torch's ``(a * b) + c`` in ``dtype`` with
    every operand, the product and the sum flushed by hand (NaN compares as "is NaN")."""
    fmt = FLOAT_FORMATS[name]
    a, b, c = random_operands(torch.Generator().manual_seed(2025), fmt, n)
    ta, tb, tc = (_flush_torch(_to_torch(x, dtype, fmt.width)) for x in (a, b, c))
    prod = ta * tb
    want = _flush_torch(_flush_torch(prod) + tc)
    got = fp_mac(a, b, c, fmt, subnormals="flush")
    ok = _agree(got, want, fmt)
    bad = (~ok).nonzero().flatten()[:3].tolist()
    assert bool(ok.all()), [(hex(a[i]), hex(b[i]), hex(c[i]), hex(got[i])) for i in bad]
    # The sample flushes operands, products and sums, and differs from IEEE where it must.
    assert int((_flush_torch(prod) != prod).sum()) > n // 100
    keep = fp_mac(a, b, c, fmt)
    assert int((keep != got).sum()) > n // 100


@pytest.mark.parametrize(("a", "b", "c", "r"), [
    (0x00000001, 0x3F800000, 0x3F800000, 0x3F800000),   # subnormal operand is 0: 0 + 1
    (0x80000001, 0x3F800000, 0x00000000, 0x00000000),   # -0 + +0 = +0
    (0x80000001, 0x3F800000, 0x80000000, 0x80000000),   # -0 + -0 = -0
    (0x3F800000, 0x3F800000, 0x00000005, 0x3F800000),   # subnormal c is 0
    (0x00FFFFFF, 0x3F000000, 0x00000000, 0x00800000),   # rounds up to the smallest normal
    (0x00FFFFFE, 0x3F000000, 0x00000000, 0x00000000),   # stays subnormal: flushed
    (0x80FFFFFE, 0x3F000000, 0x00000000, 0x00000000),   # -0 (flushed) + +0 = +0
    (0x80FFFFFE, 0x3F000000, 0x00800000, 0x00800000),   # the flushed product adds as 0
    (0x00800001, 0x3F800000, 0x80800000, 0x00000000),   # exact subnormal sum: flushed
    (0x80800001, 0x3F800000, 0x00800000, 0x80000000),   # ... to a zero of its sign
])
def test_golden_fp32_flush_corners(a, b, c, r):
    got = int(fp_mac(torch.tensor([a]), torch.tensor([b]), torch.tensor([c]), FP32,
                     subnormals="flush")[0])
    assert got == r, hex(got)
    assert int(flush_subnormal(torch.tensor([0x807FFFFF]), FP32)[0]) == 0x80000000


def test_golden_subnormals_validated():
    with pytest.raises(ValueError, match=r"subnormals must be one of 'keep', 'flush', not 'x'"):
        fp_mac(torch.tensor([0]), torch.tensor([0]), torch.tensor([0]), FP32, subnormals="x")


def _value(x: int, fmt: FloatFormat):
    """Exact value of a pattern: Fraction, or ``"nan"``, ``"+inf"``, ``"-inf"``."""
    f = fmt.man_bits
    sign = -1 if x & fmt.sign_bit else 1
    e, frac = (x >> f) & fmt.exp_max, x & ((1 << f) - 1)
    if e == fmt.exp_max:
        return "nan" if frac else ("+inf" if sign > 0 else "-inf")
    sig = frac if e == 0 else frac | (1 << f)
    return sign * sig * Fraction(2) ** (max(e, 1) - fmt.bias - f)


def _round(v: Fraction, zero_sign: int, fmt: FloatFormat) -> int:
    """Pattern of exact ``v`` rounded nearest-even (Python's ``round`` of a Fraction)."""
    f = fmt.man_bits
    sign = fmt.sign_bit if v < 0 or (v == 0 and zero_sign) else 0
    mag = abs(v)
    if mag == 0:
        return sign
    k = mag.numerator.bit_length() - mag.denominator.bit_length()
    if Fraction(2) ** k > mag:
        k -= 1
    q = max(k, 1 - fmt.bias) - f
    n = round(mag / Fraction(2) ** q)
    if n == 1 << (f + 1):
        n, q = n >> 1, q + 1
    e = q + f + fmt.bias if n >> f else 0
    if e >= fmt.exp_max:
        return sign | fmt.inf
    return sign | (e << f) | (n & ((1 << f) - 1))


def _ref_op(x: int, y: int, op: str, fmt: FloatFormat) -> int:
    """IEEE ``x * y`` or ``x + y`` rounded once, from the exact rational result."""
    vx, vy = _value(x, fmt), _value(y, fmt)
    sx, sy = bool(x & fmt.sign_bit), bool(y & fmt.sign_bit)
    if "nan" in (vx, vy):
        return fmt.nan
    inf_x, inf_y = isinstance(vx, str), isinstance(vy, str)
    if op == "mul":
        if (inf_x and vy == 0) or (inf_y and vx == 0):
            return fmt.nan
        if inf_x or inf_y:
            return (fmt.sign_bit if sx != sy else 0) | fmt.inf
        return _round(vx * vy, sx != sy, fmt)
    if inf_x and inf_y and sx != sy:
        return fmt.nan
    if inf_x or inf_y:
        return x if inf_x else y
    return _round(vx + vy, sx and sy, fmt)


def _ref_mac(a: int, b: int, c: int, fmt: FloatFormat) -> int:
    return _ref_op(_ref_op(a, b, "mul", fmt), c, "add", fmt)


@pytest.mark.parametrize("fmt", [E4M3, FloatFormat(2, 1), FloatFormat(3, 2)],
                         ids=lambda f: f"e{f.exp_bits}m{f.man_bits}")
def test_golden_exhaustive_small_formats(fmt):
    """Every product and every sum of a small format equals the exact-rational reference;
    then 20000 random triples of the multiply-add."""
    pats = torch.arange(1 << fmt.width, dtype=torch.int64)
    x, y = torch.cartesian_prod(pats, pats).unbind(1)
    for op, fn in (("mul", fp_mul), ("add", fp_add)):
        got = fn(x, y, fmt).tolist()
        want = [_ref_op(i, j, op, fmt) for i, j in zip(x.tolist(), y.tolist(), strict=True)]
        assert got == want, op
    a, b, c = random_operands(torch.Generator().manual_seed(5), fmt, 20_000)
    got = fp_mac(a, b, c, fmt).tolist()
    assert got == [_ref_mac(*t, fmt) for t in zip(a.tolist(), b.tolist(), c.tolist(),
                                                   strict=True)]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([FP32, BF16, FP16, FloatFormat(8, 1), FloatFormat(2, 23)]),
       st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 32) - 1),
       st.integers(0, (1 << 32) - 1))
def test_golden_mac_matches_rationals(fmt, a, b, c):
    mask = (1 << fmt.width) - 1
    a, b, c = a & mask, b & mask, c & mask
    got = int(fp_mac(torch.tensor([a]), torch.tensor([b]), torch.tensor([c]), fmt)[0])
    assert got == _ref_mac(a, b, c, fmt)


@pytest.mark.parametrize(("a", "b", "c", "r"), [
    (0x80000000, 0x00000000, 0x80000000, 0x80000000),   # -0 * +0 + -0 = -0
    (0x00000000, 0x00000000, 0x80000000, 0x00000000),   # +0 + -0 = +0
    (0x3F800000, 0x40000000, 0xC0000000, 0x00000000),   # 1 * 2 - 2 = +0
    (0xBF800000, 0x40000000, 0x40000000, 0x00000000),   # -2 + 2 = +0
    (0x7F800000, 0x00000000, 0x3F800000, 0x7FC00000),   # inf * 0 = NaN
    (0x7F800000, 0x3F800000, 0xFF800000, 0x7FC00000),   # inf - inf = NaN
    (0xFFC00001, 0x3F800000, 0x00000000, 0x7FC00000),   # NaN payload not propagated
    (0x7F7FFFFF, 0x40000000, 0xFF7FFFFF, 0x7F800000),   # product overflows: inf - max = inf
    (0x7F7FFFFF, 0x40000000, 0xFF800000, 0x7FC00000),   # overflowed product - inf = NaN
    (0x7F7FFFFF, 0x3F800000, 0x7F7FFFFF, 0x7F800000),   # max + max = inf
    (0x00000001, 0x3F000000, 0x00000000, 0x00000000),   # min subnormal / 2: tie to even 0
    (0x00000003, 0x3F000000, 0x00000000, 0x00000002),   # 1.5 min subnormal: tie to 2
    (0x007FFFFF, 0x3F800000, 0x00000001, 0x00800000),   # max subnormal + min = min normal
    (0x3F800000, 0x3F800000, 0x33800000, 0x3F800000),   # 1 + 2**-24: tie to even 1
    (0x3F800001, 0x3F800000, 0x33800000, 0x3F800002),   # tie rounds up to even
])
def test_golden_fp32_corners(a, b, c, r):
    got = int(fp_mac(torch.tensor([a]), torch.tensor([b]), torch.tensor([c]), FP32)[0])
    assert got == r, hex(got)


def test_golden_e4m3_is_ieee_style():
    """E4M3 here has infinities (largest finite 240), not OCP's 448 and no infinity."""
    assert _value(E4M3.max_finite, E4M3) == 240
    assert int(fp_mul(torch.tensor([0x77]), torch.tensor([0x40]), E4M3)[0]) == E4M3.inf


# ----------------------------------------------------------------------------------------
# Hardware in the Amaranth simulator.

FORMATS = [(8, 23), (8, 7), (5, 10), (4, 3), (2, 1), (3, 2), (6, 4), (2, 23), (8, 1)]


#: (seed, multiplier, subnormals, random vectors): the default twice, flush-to-zero with
#: the heap once; the generic multiplier (unchanged) only for the formats of GENERIC; the
#: Booth product (the xc7 baseline) with both subnormal modes for the formats of BOOTH.
VARIANTS = [(1, "heap", "keep", 600), (2, "heap", "keep", 300), (3, "heap", "flush", 300)]
GENERIC = [(8, 23), (8, 7), (2, 1)]
BOOTH = [(8, 23), (8, 7), (4, 3), (2, 1), (2, 23)]


SIM_CASES = [(*fmt, *v) for fmt in FORMATS for v in VARIANTS] + [
    (*fmt, 4, "generic", sub, 300) for fmt in GENERIC for sub in ("keep", "flush")] + [
    (*fmt, 5, "booth", sub, 300) for fmt in BOOTH for sub in ("keep", "flush")]


@pytest.mark.parametrize(("exp_bits", "man_bits", "seed", "multiplier", "subnormals", "n"),
                         SIM_CASES)
def test_amaranth_sim_matches_golden(seed, exp_bits, man_bits, multiplier, subnormals, n):
    p = {"exp_bits": exp_bits, "man_bits": man_bits, "multiplier": multiplier,
         "subnormals": subnormals}
    model = FloatMacModel(p)
    stim = model.stimuli(torch.Generator().manual_seed(seed), n)
    r = run_stream_sim(FloatMultiplyAdd(**p), stim, model.expected(stim), seed=seed)
    assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), \
        f"seed {seed}: {r['reports']}"
    assert r["checked"] == len(stim["i"])


def test_amaranth_sim_flush_exhaustive_e2m1():
    """Every (a, b, c) of the 4-bit format e = 2, f = 1, flushed, Booth product: each
    flush, rounding, overflow and cancellation case the format has (4,096 triples)."""
    p = {"exp_bits": 2, "man_bits": 1, "multiplier": "booth", "subnormals": "flush"}
    stim = {"i": [{"a": a, "b": b, "c": c} for a in range(16) for b in range(16)
                  for c in range(16)]}
    r = run_stream_sim(FloatMultiplyAdd(**p), stim, FloatMacModel(p).expected(stim), seed=1)
    assert (r["mismatches"], r["missing"], r["protocol_errors"], r["checked"]) == \
        (0, 0, [], 4096), r["reports"]


def test_amaranth_sim_booth_ftz_matches_torch():
    """The fp32 baseline as flows.sweep builds it on xc7 (Booth product, flush-to-zero)
    against torch's own float32 ``a * b + c`` (operands, product and sum flushed by hand;
    a NaN expected as the canonical NaN), not through golden: directed specials and random
    patterns."""
    p = {"exp_bits": 8, "man_bits": 23, "multiplier": "booth", "subnormals": "flush"}
    model = FloatMacModel(p)
    stim = model.stimuli(torch.Generator().manual_seed(17), 300)
    a, b, c = (torch.tensor([x[k] for x in stim["i"]], dtype=torch.int64) for k in "abc")
    ta, tb, tc = (_flush_torch(_to_torch(x, torch.float32, 32)) for x in (a, b, c))
    want = _flush_torch(_flush_torch(ta * tb) + tc)
    bits = torch.where(torch.isnan(want), FP32.nan, _from_torch(want, 32))
    r = run_stream_sim(FloatMultiplyAdd(**p), stim, {"o": [{"r": int(v)} for v in bits]},
                       seed=17)
    assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), r["reports"]
    assert r["checked"] == len(stim["i"]) and bool(torch.isnan(want).any())


def test_amaranth_sim_catches_wrong_expectation():
    p = {"exp_bits": 8, "man_bits": 23}
    model = FloatMacModel(p)
    stim = model.stimuli(torch.Generator().manual_seed(7), 20)
    want = model.expected(stim)
    want["o"][3]["r"] ^= 1
    r = run_stream_sim(FloatMultiplyAdd(**p), stim, want, seed=7)
    assert r["mismatches"] == 1 and "output #3" in r["reports"][0]


# ----------------------------------------------------------------------------------------
# Verilator (one build of about 10 s per format, reused).

VERILATOR_FORMATS = ["fp32", "bf16", "fp16", "e4m3"]


@pytest.mark.parametrize("name", VERILATOR_FORMATS)
def test_verilator_matches_golden(name, sim_build):
    fmt = FLOAT_FORMATS[name]
    p = {"exp_bits": fmt.exp_bits, "man_bits": fmt.man_bits}
    seed = 300 + fmt.man_bits
    s = simulate("fpmac", p, seed=seed, vectors=1000, build_root=sim_build)
    print(f"seed {seed}: {s['checked']} checked in {s['cycles']} cycles")
    assert (s["mismatches"], s["missing"], s["protocol_errors"], s["timed_out"]) == \
        (0, 0, [], False), f"replay with seed {seed}: {s['reports']}"
    assert s["checked"] == 1000 + len(FloatMacModel(p).stimuli(torch.Generator(), 0)["i"])


def test_verilator_scoreboard_catches_dropped_lsb(sim_build):
    s = simulate("fpmac", {"exp_bits": 4, "man_bits": 3}, seed=5, vectors=100,
                 build_root=sim_build, fault="lsb")
    assert s["mismatches"] > 0
    assert any("r" in r for r in s["reports"])
