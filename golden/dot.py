"""Bit-exact integer model of the MXINT dot-product unit."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .format import MXIntFormat

__all__ = ["DotResult", "dot_product", "dot_sum_range"]


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
