"""golden's OCP MX minifloat quantiser against an independent definition (tests/reference_mxfp).

* every bf16 and every fp16 bit pattern as a one-element block, for every element format,
  both scale roundings and every rounding mode (the vectorised integer definition);
* the vectorised definition against the plain ``Fraction`` one on a binade of fp16 (every tie
  of every format) and random values;
* multi-element blocks from hypothesis and from seeded wide-range random tensors, against the
  ``Fraction`` definition;
* the checker itself catches a wrong code and a wrong scale.
"""

from __future__ import annotations

import importlib
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from golden import ROUNDING_MODES, SCALE_ROUNDINGS, MXFPFormat, dequantize, quantize
from tests.reference_mxfp import ELEMENTS, one_element_codes, quantize_block, value

FORMATS = tuple(ELEMENTS)
FLOAT32_MAX = torch.finfo(torch.float32).max


def all_patterns(dtype: torch.dtype) -> torch.Tensor:
    """Every 16-bit pattern of ``dtype`` (bfloat16 or float16), in bit order."""
    return torch.arange(1 << 16, dtype=torch.int32).to(torch.int16).view(dtype)


def first_mismatch(x: torch.Tensor, codes: torch.Tensor, scales: torch.Tensor,
                   want_codes: torch.Tensor, want_scales: torch.Tensor) -> str | None:
    """``None`` when golden's one-element blocks equal the definition, else a replayable
    description of the first differing input (its bits, value, both answers) and the count."""
    bad = (codes.flatten().to(torch.int64) != want_codes) | \
          (scales.flatten().to(torch.int64) != want_scales)
    if not bool(bad.any()):
        return None
    i = int(bad.nonzero()[0, 0])
    bits = int(x.view(torch.int16)[i]) & 0xFFFF
    return (f"{int(bad.sum())} of {x.numel()} differ; first: {x.dtype} bits 0x{bits:04x} "
            f"= {float(x[i])!r}: golden code {int(codes.flatten()[i])} scale "
            f"{int(scales.flatten()[i])}, definition code {int(want_codes[i])} scale "
            f"{int(want_scales[i])}")


@pytest.mark.parametrize("scale_rounding", SCALE_ROUNDINGS)
@pytest.mark.parametrize("element", FORMATS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_every_16_bit_pattern(dtype, element, scale_rounding):
    x = all_patterns(dtype)
    want = one_element_codes(x, element, scale_rounding)
    fmt = MXFPFormat(element, block=1, scale_rounding=scale_rounding)
    for rounding in ROUNDING_MODES:
        q = quantize(x.reshape(-1, 1), fmt, rounding=rounding)
        problem = first_mismatch(x, q.codes, q.exponent, *want[rounding])
        assert problem is None, f"{element} {scale_rounding} {rounding}: {problem}"


def test_checker_catches_a_wrong_code_and_a_wrong_scale():
    x = all_patterns(torch.bfloat16)
    codes, scales = one_element_codes(x, "e2m1", "floor")["even"]
    q = quantize(x.reshape(-1, 1), MXFPFormat("e2m1", block=1))
    assert first_mismatch(x, q.codes, q.exponent, codes, scales) is None
    i = 0x3FC0  # bf16 1.5 = 6 * 2**-2: code 7 (6.0), scale 127 - 2
    assert (int(codes[i]), int(scales[i])) == (7, 125)
    wrong = codes.clone()
    wrong[i] = 6
    problem = first_mismatch(x, q.codes, q.exponent, wrong, scales)
    assert problem is not None and "bits 0x3fc0 = 1.5" in problem and problem.startswith("1 of")
    wrong = scales.clone()
    wrong[-1] += 1
    assert first_mismatch(x, q.codes, q.exponent, codes, wrong) is not None


def test_definition_tables():
    """The definition's element tables hold the numbers OCP v1.0 lists."""
    want = {"e5m2": (57344, 15, 16), "e4m3": (448, 8, 9), "e3m2": (28, 4, 4),
            "e2m3": (7.5, 2, 3), "e2m1": (6, 2, 1)}
    for name, (max_normal, emax, frac_bits) in want.items():
        e = ELEMENTS[name]
        assert (e.max_normal, e.emax, e.frac_bits) == (max_normal, emax, frac_bits)
    assert [float(v) for v in ELEMENTS["e2m1"].magnitudes] == [0, .5, 1, 1.5, 2, 3, 4, 6]
    assert len(ELEMENTS["e4m3"].magnitudes) == 127 and len(ELEMENTS["e5m2"].magnitudes) == 124


@pytest.mark.parametrize("scale_rounding", SCALE_ROUNDINGS)
@pytest.mark.parametrize("element", FORMATS)
def test_vectorised_definition_equals_fractions(element, scale_rounding):
    """Both forms of the definition agree: on a binade of fp16 (every tie of a format with at
    most 9 mantissa bits lies in it) and on random patterns of every kind."""
    seed = 16 + FORMATS.index(element)
    print(f"seed {seed}")
    gen = torch.Generator().manual_seed(seed)
    binade = torch.arange(0x3C00, 0x4000, 2, dtype=torch.int16)  # 1.0 .. 2.0, even mantissas
    sample = torch.randint(-(1 << 15), 1 << 15, (160,), generator=gen, dtype=torch.int32)
    x = torch.cat([binade, -binade - 1, sample.to(torch.int16)]).view(torch.float16)
    x = x[torch.isfinite(x)]
    want = one_element_codes(x, element, scale_rounding)
    for i, v in enumerate(x.tolist()):
        for rounding in ROUNDING_MODES:
            codes, scale = quantize_block([v], element, scale_rounding, rounding)
            got = int(want[rounding][0][i]), int(want[rounding][1][i])
            assert got == (codes[0], scale), f"{v!r} {rounding}: {got} != {(codes[0], scale)}"


def check_blocks(x: torch.Tensor, fmt: MXFPFormat, rounding: str) -> None:
    """golden on a 2-D ``x`` equals the Fraction definition block by block, and dequantises
    to the values the definition's codes mean."""
    q = quantize(x, fmt, rounding=rounding)
    k = fmt.block
    codes = q.codes.reshape(x.shape[0], -1, k)
    scales = q.exponent.reshape(x.shape[0], -1)
    back = dequantize(q)
    for r in range(x.shape[0]):
        row = x[r].tolist() + [0.0] * (-x.shape[1] % k)
        for b in range(len(row) // k):
            block = row[b * k:(b + 1) * k]
            want = quantize_block(block, fmt.element.name, fmt.scale_rounding, rounding)
            got = codes[r, b].tolist(), int(scales[r, b])
            assert got == want, f"row {r} block {b} {fmt.name} {rounding}: {block}"
            for j in range(min(k, x.shape[1] - b * k)):
                v = value(want[0][j], want[1], fmt.element.name)  # exact in float32 ...
                if abs(v) > FLOAT32_MAX:  # ... unless E5M2 near 2**127 overflows
                    v = math.copysign(math.inf, v)
                g = float(back[r, b * k + j])
                assert (math.isnan(v) and math.isnan(g)) or (
                    g == v and math.copysign(1, g) == math.copysign(1, v)), \
                    f"row {r} element {b * k + j}: dequantised {g} != {v}"


floats32 = st.floats(width=32, allow_subnormal=True)


@settings(max_examples=300, deadline=None)
@given(xs=st.lists(floats32 | st.sampled_from([0.0, -0.0, 2.0 ** -127, 448.0, 464.0, 6.0]),
                   min_size=1, max_size=24),
       element=st.sampled_from(FORMATS), block=st.integers(1, 9),
       scale_rounding=st.sampled_from(SCALE_ROUNDINGS), rounding=st.sampled_from(ROUNDING_MODES))
def test_blocks_match_definition(xs, element, block, scale_rounding, rounding):
    check_blocks(torch.tensor([xs], dtype=torch.float32),
                 MXFPFormat(element, block=block, scale_rounding=scale_rounding), rounding)


@pytest.mark.parametrize("scale_rounding", SCALE_ROUNDINGS)
@pytest.mark.parametrize("element", FORMATS)
def test_random_wide_range_blocks(element, scale_rounding):
    seed = 100 + 10 * FORMATS.index(element) + SCALE_ROUNDINGS.index(scale_rounding)
    print(f"seed {seed}")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 96, generator=gen) * torch.exp2(
        torch.randint(-150, 128, (4, 1), generator=gen).float()
        + torch.randint(-12, 12, (4, 96), generator=gen).float())
    x[0, :8] = 0.0
    x[1, 5] = -0.0
    for rounding in ROUNDING_MODES:
        check_blocks(x, MXFPFormat(element, block=32, scale_rounding=scale_rounding), rounding)


# --- the FP8 fast path (PyTorch's float8 conversion) equals the general path --------------

def fp32_sweep(seed: int) -> torch.Tensor:
    """Blocks of 32 float32 values: every exponent from -149 to 127 with both signs and
    random mantissas, every block's values spread over up to 2**40 of range (so elements
    land in the subnormals, on ties and at saturation), zeros, -0, and NaN/Inf blocks."""
    gen = torch.Generator().manual_seed(seed)
    n = 1 << 16
    lead = torch.randint(-149, 128, (n // 32, 1), generator=gen)
    spread = torch.randint(0, 41, (n // 32, 32), generator=gen)
    exps = (lead - spread).clamp(min=-149)
    mant = torch.randint(0, 1 << 23, (n // 32, 32), generator=gen, dtype=torch.int32)
    # One value in 8 on a tie of some element grid: low mantissa bits cleared but one.
    tie = torch.randint(0, 8, (n // 32, 32), generator=gen) == 0
    mant = torch.where(tie, (mant >> 19 << 19) | (1 << 18), mant)
    x = torch.ldexp(1.0 + mant.double() / (1 << 23), exps.double()).float()
    x = torch.where(torch.rand(x.shape, generator=gen) < 0.5, -x, x)
    x[0] = 0.0
    x[1, 3] = -0.0
    x[2, 5] = float("nan")
    x[3, 0] = float("inf")
    x[4, 31] = -float("inf")
    x[5] = -torch.finfo(torch.float32).max
    return x


@pytest.mark.parametrize("scale_rounding", SCALE_ROUNDINGS)
@pytest.mark.parametrize("element", ["e4m3", "e5m2"])
def test_float8_fast_path_equals_general_path(element, scale_rounding, monkeypatch):
    gq = importlib.import_module("golden.quantize")  # the module, not the function

    seed = 0x5EED + len(element)
    print(f"seed {seed}")
    x = fp32_sweep(seed)
    fmt = MXFPFormat(element, block=32, scale_rounding=scale_rounding)
    fast = quantize(x, fmt)
    monkeypatch.setattr(gq, "_TORCH_FLOAT8", {})
    slow = quantize(x, fmt)
    assert torch.equal(fast.exponent, slow.exponent)
    bad = (fast.codes != slow.codes).nonzero()
    assert bad.numel() == 0, (f"{len(bad)} codes differ; first at {bad[0].tolist()}: "
                              f"x={float(x[tuple(bad[0])])!r}")


def test_fast_path_check_catches_a_wrong_encoding(monkeypatch):
    """The comparison above fails when the fast path uses another FP8 encoding."""
    gq = importlib.import_module("golden.quantize")  # the module, not the function

    x = fp32_sweep(1)
    fmt = MXFPFormat("e4m3", block=32)
    monkeypatch.setattr(gq, "_TORCH_FLOAT8", {"e4m3": torch.float8_e4m3fnuz})
    wrong = quantize(x, fmt)
    monkeypatch.setattr(gq, "_TORCH_FLOAT8", {})
    assert not torch.equal(wrong.codes, quantize(x, fmt).codes)


def test_fp32_benchmark_slice_and_injected_fault(monkeypatch):
    """``benchmarks.minifloat_exhaustive`` on slices of float32 patterns (the NaNs up to
    2**31 and the negative zero and subnormals after it, the positive subnormals, the
    binade edge at 1.0), in two chunks each: no mismatch; then a golden that answers one
    pattern wrong is caught and named."""
    exhaustive = importlib.import_module("benchmarks.minifloat_exhaustive")
    assert torch.equal(exhaustive.patterns(0x7F7FFFFE, 0x7F800002).view(torch.int32),
                       torch.tensor([0x7F7FFFFE, 0x7F7FFFFF, 0x7F800000, 0x7F800001]))
    assert exhaustive.patterns(0xFFFFFFFE, 1 << 32).view(torch.int32).tolist() == [-2, -1]
    slices = [(0x7FFFFC00, 0x80000400), (0, 0x400), (0x3F7FFC00, 0x3F800400)]
    for element, scale_rounding, roundings in [("e2m1", "floor", ROUNDING_MODES),
                                               ("e4m3", "rceil", ("even",))]:
        fmt = MXFPFormat(element, block=1, scale_rounding=scale_rounding)
        for rounding in roundings:
            for lo, hi in slices:
                r = exhaustive.run(fmt, rounding, start=lo, stop=hi, chunk=0x400,
                                   progress=False)
                assert (r["values"], r["mismatches"]) == (hi - lo, 0), r["first"]

    def wrong(x, fmt, **kwargs):  # golden with code 1 where the pattern is 1.0
        q = quantize(x, fmt, **kwargs)
        q.codes[x == 1.0] = 1
        return q

    monkeypatch.setattr(exhaustive, "quantize", wrong)
    r = exhaustive.run(MXFPFormat("e2m1", block=1), "even", start=0x3F7FF000,
                       stop=0x3F801000, chunk=0x800, progress=False)
    assert r["mismatches"] == 1
    assert r["first"] == ["bits 0x3f800000 = 1.0: golden code 1 scale 125, definition code "
                          "6 scale 125"]
