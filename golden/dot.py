"""Bit-exact integer models of the dot-product unit: MXINT blocks, and blocks whose
elements are OCP MX minifloats (MXFP8/6/4), MXINT and MXFP operands mixed."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .format import MXFPFormat, MXIntFormat

__all__ = ["DotResult", "dot_product", "dot_sum_range", "element_range", "mx_dot_product",
           "mx_dot_sum_range", "mx_dot_sum_width"]


@dataclass(frozen=True)
class DotResult:
    """Outputs of the dot-product unit, one entry per block pair.

    Members
    -------
    sum : torch.Tensor
        int64, the exact ``S = sum_i P_a,i * P_b,i``.
    exponent : torch.Tensor
        int64, ``E_out = E_a + E_b`` (one bit wider than the inputs' codes).
    nan : torch.Tensor
        bool, true when either input block is NaN. ``sum`` and ``exponent`` are computed
        as usual and carry no meaning then.
    """

    sum: torch.Tensor
    exponent: torch.Tensor
    nan: torch.Tensor

    def scale_exponent(self, fmt_a: MXIntFormat, fmt_b: MXIntFormat) -> torch.Tensor:
        """Power of two that one unit of ``sum`` weighs:
        ``E_out - 2*bias - (m_a - 2) - (m_b - 2)``."""
        return self.exponent - 2 * fmt_a.bias - fmt_a.frac_bits - fmt_b.frac_bits


def dot_sum_range(a_bits: int, b_bits: int, block: int) -> tuple[int, int]:
    """Smallest and largest ``S`` over all ``a_bits``/``b_bits`` two's complement inputs.

    The hardware accepts every code, -2**(m-1) included, so the range is that of the
    full two's complement operands, not only of saturated ones.
    """
    a_lo, a_hi = -(1 << (a_bits - 1)), (1 << (a_bits - 1)) - 1
    b_lo, b_hi = -(1 << (b_bits - 1)), (1 << (b_bits - 1)) - 1
    products = (a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi)
    return block * min(products), block * max(products)


def dot_sum_width(a_bits: int, b_bits: int, block: int) -> int:
    """Bits of the narrowest two's complement integer that holds every sum of
    :func:`dot_sum_range` (the width of the dot product's ``sum`` field)."""
    lo, hi = dot_sum_range(a_bits, b_bits, block)
    return max(hi.bit_length(), (-lo - 1).bit_length()) + 1


def dot_product(
    a_man: torch.Tensor,
    a_exp: torch.Tensor,
    b_man: torch.Tensor,
    b_exp: torch.Tensor,
    fmt_a: MXIntFormat,
    fmt_b: MXIntFormat,
) -> DotResult:
    """Exact dot product of MXINT block pairs.

    Parameters
    ----------
    a_man, b_man : torch.Tensor
        Integer mantissas, shape ``(..., k)``.
    a_exp, b_exp : torch.Tensor
        Biased exponent codes, shape ``(...)``.
    fmt_a, fmt_b : MXIntFormat
        Formats of the two operands; they must share exponent bits and block size.

    Returns
    -------
    DotResult
        ``S = sum_i P_a,i * P_b,i`` (exact), ``E_out = E_a + E_b``, ``nan`` if either
        exponent is the NaN code. The value is
        ``S * 2**(E_out - 2*bias - (m_a - 2) - (m_b - 2))``.
    """
    if fmt_a.exp_bits != fmt_b.exp_bits or fmt_a.block != fmt_b.block:
        raise ValueError(f"fmt_a and fmt_b must share exp_bits and block, not {fmt_a} and "
                         f"{fmt_b}")
    s = (a_man.to(torch.int64) * b_man.to(torch.int64)).sum(dim=-1)
    e = a_exp.to(torch.int64) + b_exp.to(torch.int64)
    nan = (a_exp == fmt_a.nan_code) | (b_exp == fmt_b.nan_code)
    return DotResult(sum=s, exponent=e, nan=nan)


def element_range(fmt: MXIntFormat | MXFPFormat) -> tuple[int, int]:
    """Smallest and largest fixed-point integer ``P`` an element of ``fmt`` can carry.

    MXINT: every ``m``-bit two's complement code, ``-2**(m-1)`` included (the hardware
    accepts it). MXFP: ``-max_int .. max_int`` of the element format; specials decode to 0.
    """
    if isinstance(fmt, MXFPFormat):
        return -fmt.element.max_int, fmt.element.max_int
    return -(1 << (fmt.man_bits - 1)), (1 << (fmt.man_bits - 1)) - 1


def mx_dot_sum_range(fmt_a: MXIntFormat | MXFPFormat, fmt_b: MXIntFormat | MXFPFormat,
                     block: int) -> tuple[int, int]:
    """Smallest and largest ``S = sum_i P_a,i * P_b,i`` over every element of the two
    formats (:func:`element_range`); for two MXINT formats this is :func:`dot_sum_range`."""
    (a_lo, a_hi), (b_lo, b_hi) = element_range(fmt_a), element_range(fmt_b)
    products = (a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi)
    return block * min(products), block * max(products)


def mx_dot_sum_width(fmt_a: MXIntFormat | MXFPFormat, fmt_b: MXIntFormat | MXFPFormat
                     ) -> int:
    """Bits of the narrowest two's complement integer that holds every sum of
    :func:`mx_dot_sum_range` over blocks of ``fmt_a.block`` elements: the width of the dot
    product's ``sum`` field and of the accumulator's input. For two MXINT formats this is
    :func:`dot_sum_width`."""
    lo, hi = mx_dot_sum_range(fmt_a, fmt_b, fmt_a.block)
    return max(hi.bit_length(), (-lo - 1).bit_length()) + 1


def _fixed_point(codes: torch.Tensor, fmt: MXIntFormat | MXFPFormat
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(P, special)``: the fixed-point integers of an operand's elements and, per block,
    whether an element is an infinity or a NaN (never for MXINT)."""
    if isinstance(fmt, MXFPFormat):
        codes = codes.to(torch.int64)
        return fmt.element.decode(codes), (fmt.element.kind(codes) != 0).any(dim=-1)
    return codes.to(torch.int64), torch.zeros(codes.shape[:-1], dtype=torch.bool)


def mx_dot_product(
    a_codes: torch.Tensor,
    a_exp: torch.Tensor,
    b_codes: torch.Tensor,
    b_exp: torch.Tensor,
    fmt_a: MXIntFormat | MXFPFormat,
    fmt_b: MXIntFormat | MXFPFormat,
) -> DotResult:
    """Exact dot product of block pairs whose operands are MXINT or OCP MX minifloat.

    An MXFP element is read in its fixed-point view (:mod:`golden.minifloat`): code ``c``
    is the integer ``P = decode(c) = value * 2**f``, ``f`` = ``fmt.frac_bits``, so that an
    MXFP block is worth ``P_i * 2**(X - 127 - f)`` exactly as an MXINT block is worth
    ``P_i * 2**(E - bias - (m - 2))``. Then

    * ``S = sum_i P_a,i * P_b,i``, exact (the products of two fixed-point integers);
    * ``E_out = X_a + X_b``;
    * ``nan`` when either scale code is the NaN code (255 for E8M0, ``2**e - 1`` for
      MXINT) **or** any element of either block is an infinity or a NaN code (E5M2
      ``S.11111.00`` and ``S.11111.xx``, E4M3 ``S.1111.111``; FP6 and FP4 have none). An
      infinity makes the block NaN rather than infinite: a dot product of an infinity
      with a zero or with an opposite infinity is NaN, and one result flag says "not a
      number" for every such case. Special elements count as 0 in ``S``, which carries
      no meaning then.

    The value is ``S * 2**(E_out - 2*127 - f_a - f_b)``
    (:meth:`DotResult.scale_exponent`). For two MXINT formats this is
    :func:`dot_product`.

    Parameters
    ----------
    a_codes, b_codes : torch.Tensor
        Shape ``(..., k)``: element codes (``0 .. 2**width - 1``) of an MXFP operand,
        two's complement mantissas of an MXINT one.
    a_exp, b_exp : torch.Tensor
        Scale codes, shape ``(...)``.
    fmt_a, fmt_b : MXIntFormat or MXFPFormat
        Formats of the two operands: the same block size and scale width (8 bits when
        either is MXFP).

    Raises
    ------
    ValueError
        If the formats differ in block or scale width, or if ``S`` could exceed the
        int64 this model computes in (E5M2 x E5M2: ``P`` reaches ``2**32``, a product
        ``2**64``).
    """
    if fmt_a.exp_bits != fmt_b.exp_bits or fmt_a.block != fmt_b.block:
        raise ValueError(f"fmt_a and fmt_b must share exp_bits and block, not {fmt_a} and "
                         f"{fmt_b}")
    lo, hi = mx_dot_sum_range(fmt_a, fmt_b, fmt_a.block)
    if lo < -(1 << 63) or hi >= 1 << 63:
        raise ValueError(f"the exact sum of {fmt_a} x {fmt_b} reaches {hi}, beyond the int64 "
                         "this model computes in")
    pa, special_a = _fixed_point(a_codes, fmt_a)
    pb, special_b = _fixed_point(b_codes, fmt_b)
    s = (pa * pb).sum(dim=-1)
    e = a_exp.to(torch.int64) + b_exp.to(torch.int64)
    nan = (a_exp == fmt_a.nan_code) | (b_exp == fmt_b.nan_code) | special_a | special_b
    return DotResult(sum=s, exponent=e, nan=nan)
