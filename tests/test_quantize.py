"""golden.quantize / dequantize against the format's definition in exact rationals."""

from __future__ import annotations

import math
import struct

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from golden import (
    ROUNDING_MODES,
    MXFPTensor,
    MXIntFormat,
    MXIntTensor,
    dequantize,
    parse_format,
    quantize,
    round_shift,
)
from tests.reference import quantize_block, round_fraction


def f32(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def check_against_reference(x: torch.Tensor, fmt: MXIntFormat, mode: str,
                            quantizer=quantize) -> None:
    q = quantizer(x, fmt, rounding=mode)
    flat = x.reshape(-1, x.shape[-1])
    man = q.mantissa.reshape(flat.shape[0], -1, fmt.block)
    exp = q.exponent.reshape(flat.shape[0], -1)
    for r in range(flat.shape[0]):
        row = flat[r].tolist()
        row += [0.0] * (-len(row) % fmt.block)
        for b in range(len(row) // fmt.block):
            want_m, want_e = quantize_block(row[b * fmt.block:(b + 1) * fmt.block],
                                            fmt.man_bits, fmt.exp_bits, mode)
            assert (man[r, b].tolist(), int(exp[r, b])) == (want_m, want_e), \
                f"row {r} block {b}: {row[b * fmt.block:(b + 1) * fmt.block]}"


float32s = st.floats(width=32, allow_nan=False, allow_infinity=False, allow_subnormal=True)


@settings(max_examples=300, deadline=None)
@given(xs=st.lists(float32s, min_size=1, max_size=40), man_bits=st.integers(2, 24),
       exp_bits=st.integers(2, 8), block=st.integers(1, 17), mode=st.sampled_from(ROUNDING_MODES))
def test_matches_definition(xs, man_bits, exp_bits, block, mode):
    fmt = MXIntFormat(man_bits, exp_bits, block)
    check_against_reference(torch.tensor([xs], dtype=torch.float32), fmt, mode)


@pytest.mark.parametrize("mode", ROUNDING_MODES)
@pytest.mark.parametrize(("man_bits", "exp_bits", "block"), [(2, 8, 1), (4, 5, 16), (6, 8, 16),
                                                             (8, 8, 32), (24, 8, 7), (3, 2, 4)])
def test_random_wide_range(mode, man_bits, exp_bits, block):
    seed = 1000 * man_bits + block
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(8, 64, generator=gen) * torch.exp2(torch.randint(-140, 120, (8, 64),
                                                                     generator=gen).float())
    check_against_reference(x, MXIntFormat(man_bits, exp_bits, block), mode)


@pytest.mark.parametrize("power", [-126, -20, -1, 0, 1, 20, 127])
@pytest.mark.parametrize("ulps", [1, 2, 3])
def test_just_below_power_of_two(power, ulps):
    """float32 log2 rounds some of these up to ``power``; the exponent must be power - 1."""
    x = torch.tensor([2.0 ** power], dtype=torch.float32)
    below = (x.view(torch.int32) - ulps).view(torch.float32)
    q = quantize(below, MXIntFormat(8, 8, 1))
    assert q.exponent.item() == power - 1 + 127
    assert q.mantissa.item() == 127  # 1.99... * 2**(power-1) rounds to 2**7 - 1 (saturates)


def test_subnormals_kept_exactly():
    fmt = MXIntFormat(8, 8, 2)
    tiny = f32(1)  # 2**-149
    q = quantize(torch.tensor([tiny, -3 * tiny]), fmt)
    assert q.exponent.tolist() == [0]  # floor(log2) = -148 clamps to code 0
    assert q.mantissa.tolist() == [[0, 0]]
    q = quantize(torch.tensor([f32(0x00400000), -f32(0x00200000)]), fmt)  # 2**-127, -2**-128
    assert q.exponent.tolist() == [0] and q.mantissa.tolist() == [[64, -32]]


def test_zero_nan_inf_blocks():
    fmt = MXIntFormat(6, 8, 2)
    x = torch.tensor([0.0, -0.0, 1.0, math.nan, math.inf, 2.0, -math.inf, 0.0])
    q = quantize(x, fmt)
    assert q.exponent.tolist() == [0, 255, 255, 255]
    assert q.mantissa.tolist() == [[0, 0]] * 4
    assert q.nan.tolist() == [False, True, True, True]
    y = dequantize(q)
    assert y[:2].tolist() == [0.0, 0.0] and torch.isnan(y[2:]).all()


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_saturation_symmetric(mode):
    fmt = MXIntFormat(4, 8, 2)
    # 1.99 at exponent 0 is 7.96 in units of 2**-2: rounds to 8 (or 7), saturates to 7.
    q = quantize(torch.tensor([1.99, -1.99]), fmt, rounding=mode)
    assert q.mantissa.tolist() == [[7, -7]]
    # exponent clamped at the top: e=2 allows codes 0..2, bias 1, so 2**10 saturates
    q = quantize(torch.tensor([1024.0, -1024.0]), MXIntFormat(4, 2, 2), rounding=mode)
    assert q.exponent.tolist() == [2] and q.mantissa.tolist() == [[7, -7]]


def test_axis_padding_and_shape():
    fmt = MXIntFormat(8, 8, 4)
    x = torch.randn(5, 6, 3)
    q = quantize(x, fmt, axis=1)
    assert q.mantissa.shape == (5, 3, 2, 4) and q.exponent.shape == (5, 3, 2)
    assert (q.mantissa[..., 1, 2:] == 0).all()  # padding
    y = dequantize(q)
    assert y.shape == x.shape
    # representable values survive a round trip exactly
    x2 = dequantize(quantize(y, fmt, axis=1))
    assert torch.equal(x2, y)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_other_dtypes_equal_float32_path(dtype):
    x = (torch.randn(4, 32) * 100).to(dtype)
    fmt = MXIntFormat(6, 8, 16)
    a, b = quantize(x, fmt), quantize(x.float(), fmt)
    if dtype == torch.float64:  # computed in float64: equal to the exact reference instead
        check_against_reference(x, fmt, "even")
    else:
        assert torch.equal(a.mantissa, b.mantissa) and torch.equal(a.exponent, b.exponent)


@pytest.mark.parametrize(("call", "exc", "match"), [
    (lambda: quantize(torch.ones(4), MXIntFormat(4), rounding="up"), ValueError,
     r"rounding must be one of 'even', 'away', 'zero', 'floor', not 'up'"),
    (lambda: quantize(torch.ones(4), "mxint4"), TypeError, r"fmt must be an MXIntFormat"),
    (lambda: quantize(torch.ones(4, dtype=torch.int32), MXIntFormat(4)), TypeError,
     r"x must be a floating-point tensor"),
    (lambda: quantize(torch.ones(4), MXIntFormat(4), axis=2), ValueError,
     r"axis must be in \[-1, 0\] for a 1-D x, not 2"),
    (lambda: quantize(torch.tensor(1.0), MXIntFormat(4)), ValueError, r"at least one dim"),
])
def test_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@settings(max_examples=500, deadline=None)
@given(v=st.integers(-(2 ** 60), 2 ** 60), s=st.integers(0, 80),
       mode=st.sampled_from(ROUNDING_MODES))
def test_round_shift_matches_fraction(v, s, mode):
    from fractions import Fraction
    got = round_shift(torch.tensor([v]), s, mode).item()
    assert got == round_fraction(Fraction(v, 2 ** s), mode)


def test_reference_catches_a_wrong_quantiser():
    """The checker used above fails when the quantiser drops an LSB."""

    def dropped_lsb(x, fmt, rounding):
        q = quantize(x, fmt, rounding=rounding)
        return type(q)(q.mantissa & ~1, q.exponent, q.fmt, q.shape, q.axis)

    x = torch.tensor([[1.0, -0.3, 0.7, 0.01]])
    with pytest.raises(AssertionError, match="row 0 block 0"):
        check_against_reference(x, MXIntFormat(6, 8, 4), "even", quantizer=dropped_lsb)


@pytest.mark.parametrize(("name", "x", "scale", "values"), [
    # OCP v1.0: scale 2**(floor(log2 amax) - emax_elem); E2M1 emax 2, E4M3 8.
    ("mxfp4", [6.0, -0.25, 0.75, 5.0], 127, [6.0, -0.0, 1.0, 4.0]),   # ties to even
    ("mxfp4", [7.5, 1.0], 127, [6.0, 1.0]),                           # saturates at 6
    ("mxfp4", [100.0, 3.0], 131, [96.0, 0.0]),                        # scale 2**4
    ("mxfp8_e4m3", [448.0, -1.0, 2.0 ** -9], 127, [448.0, -1.0, 2.0 ** -9]),
    ("mxfp8_e4m3", [500.0, 1.0], 127, [448.0, 1.0]),                  # 500 saturates
    ("mxfp8_e5m2", [57344.0, 2.0 ** -16, 3 * 2.0 ** -17], 127,
     [57344.0, 2.0 ** -16, 2.0 ** -15]),                              # subnormal tie up
    ("mxfp6_e2m3", [7.5, 0.125, 0.0625], 127, [7.5, 0.125, 0.0]),
    ("mxfp6_e3m2", [28.0, 0.0625, -29.0], 127, [28.0, 0.0625, -28.0]),
])
def test_mxfp_values(name, x, scale, values):
    q = quantize(torch.tensor(x), parse_format(name, block=len(x)))
    assert q.exponent.tolist() == [scale]
    got = dequantize(q)
    assert got.tolist() == values
    assert torch.signbit(got).tolist() == [math.copysign(1, v) < 0 for v in values]


def test_mxfp_rceil_avoids_saturation():
    """floor puts 7.5 at scale 2**0 and saturates it to 6; rceil picks 2**1."""
    x = torch.tensor([7.5, 1.0])
    assert dequantize(quantize(x, parse_format("mxfp4", block=2))).tolist() == [6.0, 1.0]
    q = quantize(x, parse_format("mxfp4", block=2, scale_rounding="rceil"))
    assert (q.exponent.item(), dequantize(q).tolist()) == (128, [8.0, 1.0])
    # Exactly the largest normal times a power of two stays at that scale.
    q = quantize(torch.tensor([12.0]), parse_format("mxfp4", block=1, scale_rounding="rceil"))
    assert (q.exponent.item(), dequantize(q).tolist()) == (128, [12.0])


@pytest.mark.parametrize("name", ["mxfp8_e5m2", "mxfp8_e4m3", "mxfp6_e3m2", "mxfp6_e2m3",
                                  "mxfp4"])
def test_mxfp_specials_and_roundtrip(name):
    fmt = parse_format(name, block=4)
    x = torch.tensor([[1.0, torch.nan, 2.0, 3.0], [1.0, -torch.inf, 0.0, 0.0],
                      [0.0, 0.0, 0.0, 0.0], [-0.0, 0.5, -1.5, 1.0]])
    q = quantize(x, fmt)
    assert q.exponent[:, 0].tolist()[:3] == [255, 255, 0]
    assert (q.codes[:2] == 0).all()
    y = dequantize(q)
    assert torch.isnan(y[:2]).all()
    assert torch.equal(y[3], x[3]) and torch.signbit(y[3, 0])
    # Every finite code dequantises to its value and quantises back to itself.
    el = fmt.element
    codes = torch.arange(1 << el.width)
    finite = el.kind(codes) == 0
    values = el.decode(codes).double() / 2 ** el.frac_bits
    values = torch.where(codes >> (el.width - 1) == 1, -values.abs(), values)  # -0 codes
    # Beside the largest normal the scale is 2**0, so every code is representable as is.
    pairs = torch.stack([torch.full_like(values, el.max_normal), values], dim=-1)[finite]
    q = quantize(pairs.float(), parse_format(name, block=2))
    assert (q.exponent == 127).all()
    assert torch.equal(q.codes[:, 0, 1], codes[finite].to(torch.int32))


@pytest.mark.parametrize(("make", "exc", "match"), [
    (lambda f: dict(exponent=torch.tensor([[300]])), ValueError,
     r"exponent must hold values from 0 to 255, not 300"),
    (lambda f: dict(mantissa=torch.tensor([[[200, 0, 0, 0]]])), ValueError,
     r"mantissa must hold values from -128 to 127, not 200"),
    (lambda f: dict(mantissa=torch.zeros(1, 1, 4)), TypeError,
     r"mantissa must be an integer tensor, not torch.float32"),
    (lambda f: dict(mantissa=torch.zeros(1, 2, 4, dtype=torch.int32)), ValueError,
     r"elements must have shape \(1, 1, 4\) for a tensor of shape \(1, 4\)"),
    (lambda f: dict(exponent=torch.tensor([127])), ValueError,
     r"exponent must have shape \(1, 1\), not \(1,\)"),
    (lambda f: dict(axis=2), ValueError, r"axis must be from 0 to 1, not 2"),
    (lambda f: dict(fmt="mxint8"), TypeError, r"fmt must be an MXIntFormat, not 'mxint8'"),
])
def test_dequantize_refuses_bad_blocks(make, exc, match):
    """Blocks made outside mxforge are checked when the tensor is made (exponent 300 once
    came back as -6.46e-27 from a positive mantissa)."""
    fmt = MXIntFormat(8, 8, 4)
    good = dict(mantissa=torch.tensor([[[1, 2, 3, 4]]]), exponent=torch.tensor([[127]]),
                fmt=fmt, shape=torch.Size((1, 4)), axis=1)
    with pytest.raises(exc, match=match):
        dequantize(MXIntTensor(**(good | make(fmt))))


def test_mxfp_tensor_refuses_bad_codes():
    fmt = parse_format("mxfp4", block=2)
    with pytest.raises(ValueError, match=r"codes must hold values from 0 to 15, not 16"):
        MXFPTensor(codes=torch.tensor([[16, 0]]), exponent=torch.tensor([127]), fmt=fmt,
                   shape=torch.Size((2,)), axis=0)
    with pytest.raises(ValueError, match=r"x is on the meta device"):
        quantize(torch.ones(2, device="meta"), fmt)
