"""Bit-exact integer model of the MXINT shared-exponent block adder.

Two MXINT blocks ``a`` (``m_a``-bit mantissas, code ``E_a``) and ``b`` (``m_b`` bits, code
``E_b``) of the same ``k`` and ``e`` are added element by element and the sums are
renormalised to an ``m_out``-bit MXINT block. With ``M = max(m_a, m_b)``, ``G`` guard bits,
``E_max = max(E_a, E_b)`` and ``d = |E_a - E_b|``:

1. Common scale. Both mantissas are widened without loss to ``M - 2`` fraction bits and
   given ``G`` guard bits: ``X_a = P_a << (M - m_a + G)``, ``X_b = P_b << (M - m_b + G)``
   (``M + G``-bit two's complement).
2. Alignment. The block with the smaller code (``b`` when ``E_a >= E_b``) is shifted
   right ARITHMETICALLY by ``d``: ``X_small >> d``, i.e. ``floor(X_small / 2**d)``. Bits below
   the guard bits are dropped by that floor; there is no sticky bit. A shift of ``M + G``
   or more leaves ``0`` or ``-1`` (the sign), exactly as an arithmetic shift does.
3. Exact sums ``S_i = X_big,i + (X_small,i >> d)`` (``M + G + 1`` bits). One unit of ``S``
   weighs ``2**(E_max - bias - (M - 2) - G)``.
4. Renormalisation, as :func:`golden.quantize.quantize` does for floats. ``L =
   floor(log2(max_i |S_i|))`` (exact), ``E = clamp(E_max + L - (M - 2) - G, 0, 2**e - 2)``
   (the code for which the largest magnitude lands in ``[2**(m_out-2), 2**(m_out-1))``
   unless clamped), ``s = E - E_max + M + G - m_out`` and ``Q_i = round(S_i / 2**s)`` in the
   rounding mode (:func:`golden.rounding.round_shift`; exact ``S_i << -s`` when ``s < 0``),
   saturated to ``±(2**(m_out-1) - 1)``.
5. All ``S_i == 0`` (cancellation): ``E = 0``, ``Q_i = 0``. ``E_a`` or ``E_b`` the NaN code:
   ``E = 2**e - 1``, ``Q_i = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .format import MXIntFormat, check_int
from .rounding import check_rounding, round_shift

__all__ = ["MAX_GUARD_BITS", "BlockSum", "aligned_sum", "block_add", "floor_log2_int"]

#: Most guard bits the adder accepts: keeps ``S`` (``M + G + 1`` bits) far inside int64.
MAX_GUARD_BITS = 32


@dataclass(frozen=True)
class BlockSum:
    """Result blocks of the adder.

    Members
    -------
    mantissa : torch.Tensor
        int64, shape ``(..., k)``, each in ``[-(2**(m_out-1) - 1), 2**(m_out-1) - 1]``.
    exponent : torch.Tensor
        int64, shape ``(...)``: shared exponent codes, the NaN code for NaN results.
    """

    mantissa: torch.Tensor
    exponent: torch.Tensor


def floor_log2_int(v: torch.Tensor) -> torch.Tensor:
    """``floor(log2(v))`` of positive int64 values, exact (no float conversion); 0 for
    ``v <= 1``."""
    v = v.to(torch.int64)
    out = torch.zeros_like(v)
    for bit in range(1, 63):
        out += (v >= (1 << bit)).to(torch.int64)
    return out


def _check_formats(fmt_a: MXIntFormat, fmt_b: MXIntFormat, guard_bits: int) -> None:
    for name, fmt in (("fmt_a", fmt_a), ("fmt_b", fmt_b)):
        if not isinstance(fmt, MXIntFormat):
            raise TypeError(f"{name} must be an MXIntFormat, not {fmt!r}")
    if fmt_a.exp_bits != fmt_b.exp_bits or fmt_a.block != fmt_b.block:
        raise ValueError(f"fmt_a and fmt_b must share exp_bits and block, not {fmt_a} and "
                         f"{fmt_b}")
    check_int("guard_bits", guard_bits, 0, MAX_GUARD_BITS)


def aligned_sum(a_man: torch.Tensor, a_exp: torch.Tensor, b_man: torch.Tensor,
                b_exp: torch.Tensor, fmt_a: MXIntFormat, fmt_b: MXIntFormat,
                guard_bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Steps 1-3 of the module notes: the exact sums of the aligned blocks.

    Returns
    -------
    sum : torch.Tensor
        int64, shape ``(..., k)``: ``S_i``, one unit weighing
        ``2**(E_max - bias - (M - 2) - guard_bits)`` with ``M = max(m_a, m_b)``.
    e_max : torch.Tensor
        int64, shape ``(...)``: ``max(E_a, E_b)``.
    """
    _check_formats(fmt_a, fmt_b, guard_bits)
    width = max(fmt_a.man_bits, fmt_b.man_bits) + guard_bits
    ea, eb = a_exp.to(torch.int64), b_exp.to(torch.int64)
    e_max = torch.maximum(ea, eb)
    xa = a_man.to(torch.int64) << (width - fmt_a.man_bits)
    xb = b_man.to(torch.int64) << (width - fmt_b.man_bits)
    # An arithmetic shift by width or more gives the sign; clamping there keeps torch's
    # shift (undefined past 63) exact.
    da = (e_max - ea).clamp(max=width).unsqueeze(-1)
    db = (e_max - eb).clamp(max=width).unsqueeze(-1)
    return (xa >> da) + (xb >> db), e_max


def block_add(a_man: torch.Tensor, a_exp: torch.Tensor, b_man: torch.Tensor,
              b_exp: torch.Tensor, fmt_a: MXIntFormat, fmt_b: MXIntFormat, out_bits: int,
              *, guard_bits: int = 3, rounding: str = "even") -> BlockSum:
    """Add MXINT blocks element by element and renormalise to ``out_bits`` mantissas.

    Parameters
    ----------
    a_man, b_man : torch.Tensor
        Integer mantissas, shape ``(..., k)``, any two's complement code of their width.
    a_exp, b_exp : torch.Tensor
        Exponent codes, shape ``(...)``.
    fmt_a, fmt_b : MXIntFormat
        Formats of ``a`` and ``b``: same ``exp_bits`` and ``block``, mantissa widths may
        differ.
    out_bits : int
        ``m_out``, result mantissa width, 2 to 24. The result shares ``exp_bits``.
    guard_bits : int
        ``G``, extra low bits kept by the alignment shift, 0 to 32.
    rounding : {"even", "away", "zero", "floor"}
        Rounding of the renormalisation (the alignment always floors).

    Returns
    -------
    BlockSum
        Steps 1-5 of the module notes.
    """
    check_int("out_bits", out_bits, 2, 24)
    check_rounding(rounding)
    s, e_max = aligned_sum(a_man, a_exp, b_man, b_exp, fmt_a, fmt_b, guard_bits)
    fmt_o = MXIntFormat(out_bits, fmt_a.exp_bits, fmt_a.block)
    width = max(fmt_a.man_bits, fmt_b.man_bits) + guard_bits
    amax = s.abs().amax(dim=-1)
    lead = floor_log2_int(amax)
    exp = (e_max + lead - (width - 2)).clamp(0, fmt_o.max_code)
    shift = (exp - e_max + width - out_bits).unsqueeze(-1)
    q = torch.where(shift >= 0, round_shift(s, shift.clamp(min=0), rounding),
                    s << (-shift).clamp(min=0))
    q = q.clamp(-fmt_o.max_man, fmt_o.max_man)
    nan = (a_exp == fmt_a.nan_code) | (b_exp == fmt_b.nan_code)
    exp = torch.where(amax == 0, 0, exp)
    exp = torch.where(nan, fmt_o.nan_code, exp)
    q = torch.where(nan.unsqueeze(-1), 0, q)
    return BlockSum(mantissa=q, exponent=exp)
