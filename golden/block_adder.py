"""Bit-exact integer model of the shared-exponent block adder: MXINT and OCP MX minifloat
(MXFP8/6/4) operands, one format per operand.

Two blocks ``a`` (scale code ``E_a``) and ``b`` (``E_b``) of the same ``k`` and scale width
``e`` are added element by element and the sums are renormalised to an ``m_out``-bit MXINT
block. Each element is read in its fixed-point view: an integer ``P`` with ``f`` fraction
bits, worth ``P * 2**(E - bias - f)``. An MXINT(``m``) element is its ``m``-bit two's
complement mantissa, ``f = m - 2``, ``I = 2`` integer bits (sign included); an MXFP element
is ``P = decode(code) = value * 2**f`` (:mod:`golden.minifloat`: ``f = bias_el + M - 1``;
E5M2 16, E4M3 9, E3M2 4, E2M3 3, E2M1 1), ``I = int_bits - f`` (E5M2 17, E4M3 10, E3M2 6,
E2M3 and E2M1 4). A minifloat operand has the E8M0 scale (``e = 8``). With
``F = max(f_a, f_b)``, ``G`` guard bits, ``I = max(I_a, I_b)``, the width
``W = I + F + G``, ``E_max = max(E_a, E_b)`` and ``d = |E_a - E_b|``:

1. Common scale. Both operands are widened without loss to ``F + G`` fraction bits:
   ``X_a = P_a << (F - f_a + G)``, ``X_b = P_b << (F - f_b + G)`` (``W``-bit two's
   complement). For two MXINT operands (``M = max(m_a, m_b)``) this is ``P << (M - m +
   G)``, ``W = M + G``.
2. Alignment. The block with the smaller code (``b`` when ``E_a >= E_b``) is shifted
   right ARITHMETICALLY by ``d``: ``X_small >> d``, i.e. ``floor(X_small / 2**d)``. Bits below
   the guard bits are dropped by that floor; there is no sticky bit. A shift of ``W``
   or more leaves ``0`` or ``-1`` (the sign), exactly as an arithmetic shift does.
3. Exact sums ``S_i = X_big,i + (X_small,i >> d)`` (``W + 1`` bits). One unit of ``S``
   weighs ``2**(E_max - bias - F - G)``.
4. Renormalisation, as :func:`golden.quantize.quantize` does for floats. ``L =
   floor(log2(max_i |S_i|))`` (exact), ``E = clamp(E_max + L - F - G, 0, 2**e - 2)``
   (the code for which the largest magnitude lands in ``[2**(m_out-2), 2**(m_out-1))``
   unless clamped), ``s = E - E_max + F + G + 2 - m_out`` and ``Q_i = round(S_i / 2**s)``
   in the rounding mode (:func:`golden.rounding.round_shift`; exact ``S_i << -s`` when
   ``s < 0``), saturated to ``±(2**(m_out-1) - 1)``. For two MXINT operands
   ``F + G = M + G - 2``.
5. All ``S_i == 0`` (cancellation): ``E = 0``, ``Q_i = 0``. NaN: ``E = 2**e - 1``,
   ``Q_i = 0`` when ``E_a`` or ``E_b`` is the NaN code, or when any element of either
   block is an infinity or a NaN code (E5M2 ``S.11111.xx``, E4M3 ``S.1111.111``; FP6,
   FP4 and MXINT have none), as the other units treat them (:func:`golden.dot.mx_dot_product`):
   the MXINT result has no infinity, and one flag says "not a number" for an infinity
   as for ``inf - inf``. Special elements count as 0 in ``S``, which is then discarded.
   A negative zero code is ``P = 0``.

The result is exact up to the alignment floor (step 2) and the one rounding of step 4:
when the floor drops no set bit, ``Q`` is the exact sum of the two blocks quantised once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .format import MXFPFormat, MXIntFormat, check_int
from .rounding import check_rounding, round_shift

__all__ = ["MAX_GUARD_BITS", "MAX_SUM_BITS", "BlockSum", "aligned_sum", "block_add",
           "floor_log2_int", "operand_values", "sum_bits"]

#: Most guard bits the adder accepts: keeps ``S`` (``M + G + 1`` bits) far inside int64.
MAX_GUARD_BITS = 32
#: Widest ``S`` (``W + 1`` bits): :func:`golden.rounding.round_shift` takes ``|v| < 2**61``.
#: Two MXINT operands stay far below it (``W <= 24 + 32``); an E5M2 operand with many guard
#: bits reaches it (``W = 17 + 16 + G``).
MAX_SUM_BITS = 61


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


def sum_bits(fmt_a: MXIntFormat | MXFPFormat, fmt_b: MXIntFormat | MXFPFormat,
             guard_bits: int) -> tuple[int, int]:
    """``(F + G, W)``: the fraction bits of ``X`` and ``S`` and the width ``W = I + F + G``
    of ``X`` (module notes, step 1); ``S`` has ``W + 1`` bits."""
    frac = max(fmt_a.frac_bits, fmt_b.frac_bits) + guard_bits
    return frac, max(f.int_bits - f.frac_bits for f in (fmt_a, fmt_b)) + frac


def _check_formats(fmt_a, fmt_b, guard_bits: int) -> None:
    for name, fmt in (("fmt_a", fmt_a), ("fmt_b", fmt_b)):
        if not isinstance(fmt, MXIntFormat | MXFPFormat):
            raise TypeError(f"{name} must be an MXIntFormat or MXFPFormat, not {fmt!r}")
    if fmt_a.exp_bits != fmt_b.exp_bits or fmt_a.block != fmt_b.block:
        raise ValueError(f"fmt_a and fmt_b must share exp_bits and block, not {fmt_a} and "
                         f"{fmt_b}")
    check_int("guard_bits", guard_bits, 0, MAX_GUARD_BITS)
    frac, width = sum_bits(fmt_a, fmt_b, guard_bits)
    if width + 1 > MAX_SUM_BITS:
        most = guard_bits - (width + 1 - MAX_SUM_BITS)
        raise ValueError(f"guard_bits must be from 0 to {most} with {fmt_a.family} and "
                         f"{fmt_b.family} operands (the exact sums, {width + 1 - guard_bits} "
                         f"bits plus the guard bits, must fit {MAX_SUM_BITS}), not {guard_bits}")


def operand_values(elements: torch.Tensor, fmt: MXIntFormat | MXFPFormat
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(P, special)``: the fixed-point integers (int64) of an operand's elements
    (MXINT mantissas as they are, minifloat codes decoded, specials as 0) and, per block,
    whether an element is an infinity or a NaN code (never for MXINT)."""
    if isinstance(fmt, MXFPFormat):
        codes = elements.to(torch.int64)
        return fmt.element.decode(codes), (fmt.element.kind(codes) != 0).any(dim=-1)
    return elements.to(torch.int64), torch.zeros(elements.shape[:-1], dtype=torch.bool)


def aligned_sum(a_man: torch.Tensor, a_exp: torch.Tensor, b_man: torch.Tensor,
                b_exp: torch.Tensor, fmt_a: MXIntFormat | MXFPFormat,
                fmt_b: MXIntFormat | MXFPFormat,
                guard_bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Steps 1-3 of the module notes: the exact sums of the aligned blocks.

    Returns
    -------
    sum : torch.Tensor
        int64, shape ``(..., k)``: ``S_i``, one unit weighing
        ``2**(E_max - bias - F - guard_bits)`` (:func:`sum_bits`; ``F = M - 2`` for two
        MXINT operands). Special elements count as 0.
    e_max : torch.Tensor
        int64, shape ``(...)``: ``max(E_a, E_b)``.
    """
    _check_formats(fmt_a, fmt_b, guard_bits)
    frac, width = sum_bits(fmt_a, fmt_b, guard_bits)
    ea, eb = a_exp.to(torch.int64), b_exp.to(torch.int64)
    e_max = torch.maximum(ea, eb)
    xa = operand_values(a_man, fmt_a)[0] << (frac - fmt_a.frac_bits)
    xb = operand_values(b_man, fmt_b)[0] << (frac - fmt_b.frac_bits)
    # An arithmetic shift by width or more gives the sign; clamping there keeps torch's
    # shift (undefined past 63) exact.
    da = (e_max - ea).clamp(max=width).unsqueeze(-1)
    db = (e_max - eb).clamp(max=width).unsqueeze(-1)
    return (xa >> da) + (xb >> db), e_max


def block_add(a_man: torch.Tensor, a_exp: torch.Tensor, b_man: torch.Tensor,
              b_exp: torch.Tensor, fmt_a: MXIntFormat | MXFPFormat,
              fmt_b: MXIntFormat | MXFPFormat, out_bits: int,
              *, guard_bits: int = 3, rounding: str = "even") -> BlockSum:
    """Add MX blocks element by element and renormalise to ``out_bits`` MXINT mantissas.

    Parameters
    ----------
    a_man, b_man : torch.Tensor
        Shape ``(..., k)``: two's complement mantissas of an MXINT operand (any code of
        its width), element codes (``0 .. 2**width - 1``) of a minifloat one.
    a_exp, b_exp : torch.Tensor
        Exponent (scale) codes, shape ``(...)``.
    fmt_a, fmt_b : MXIntFormat or MXFPFormat
        Formats of ``a`` and ``b``: same ``exp_bits`` (8 with a minifloat) and ``block``;
        otherwise they may differ.
    out_bits : int
        ``m_out``, result mantissa width, 2 to 24. The result is MXINT(``m_out``) with the
        inputs' ``exp_bits``.
    guard_bits : int
        ``G``, extra low bits kept by the alignment shift, 0 to 32 (with an E5M2 operand
        at most what keeps ``S`` within 61 bits: 27 for two E5M2 operands).
    rounding : {"even", "away", "zero", "floor"}
        Rounding of the renormalisation (the alignment always floors).

    Returns
    -------
    BlockSum
        Steps 1-5 of the module notes.

    Raises
    ------
    TypeError, ValueError
        Naming the argument, the value and what is allowed.
    """
    check_int("out_bits", out_bits, 2, 24)
    check_rounding(rounding)
    s, e_max = aligned_sum(a_man, a_exp, b_man, b_exp, fmt_a, fmt_b, guard_bits)
    fmt_o = MXIntFormat(out_bits, fmt_a.exp_bits, fmt_a.block)
    frac, _ = sum_bits(fmt_a, fmt_b, guard_bits)
    amax = s.abs().amax(dim=-1)
    lead = floor_log2_int(amax)
    exp = (e_max + lead - frac).clamp(0, fmt_o.max_code)
    shift = (exp - e_max + frac + 2 - out_bits).unsqueeze(-1)
    q = torch.where(shift >= 0, round_shift(s, shift.clamp(min=0), rounding),
                    s << (-shift).clamp(min=0))
    q = q.clamp(-fmt_o.max_man, fmt_o.max_man)
    nan = (a_exp == fmt_a.nan_code) | (b_exp == fmt_b.nan_code) | \
        operand_values(a_man, fmt_a)[1] | operand_values(b_man, fmt_b)[1]
    exp = torch.where(amax == 0, 0, exp)
    exp = torch.where(nan, fmt_o.nan_code, exp)
    q = torch.where(nan.unsqueeze(-1), 0, q)
    return BlockSum(mantissa=q, exponent=exp)
