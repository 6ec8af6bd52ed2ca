"""Bit-exact integer models of the dot-product unit: MXINT blocks, and blocks whose
elements are OCP MX minifloats (MXFP8/6/4), MXINT and MXFP operands mixed."""

from __future__ import annotations

import torch

from .format import MAX_BLOCK, MXFPFormat, MXIntFormat

__all__ = ["SUM_LOW_BITS", "DotResult", "dot_product", "dot_sum_range", "element_range",
           "mx_dot_product", "mx_dot_sum_range", "mx_dot_sum_width", "wide_sum"]


#: A wide sum (:class:`DotResult`) is ``sum_high * 2**SUM_LOW_BITS + sum_low``.
SUM_LOW_BITS = 32
#: Limbs of a fixed-point operand in the wide sum: ``P = h * 2**LIMB_BITS + l``.
LIMB_BITS = 16


class DotResult:
    """Outputs of the dot-product unit, one entry per block pair.

    Parameters
    ----------
    sum : torch.Tensor
        int64, the exact ``S = sum_i P_a,i * P_b,i``; for a wide result, its low
        :data:`SUM_LOW_BITS` bits, ``S mod 2**32`` (``0 .. 2**32 - 1``).
    exponent, nan : torch.Tensor
        See Members.
    sum_high : torch.Tensor or None
        None (the default) when ``S`` fits an int64; else int64, ``floor(S / 2**32)``, so
        that ``S = sum_high * 2**32 + sum_low``.

    Raises
    ------
    ValueError
        If ``sum_high`` is given and ``sum`` (then ``sum_low``) is outside
        ``0 .. 2**32 - 1``.

    Members
    -------
    sum : torch.Tensor
        int64, the exact ``S``. Only for a result that fits int64: for a wide one (see
        :attr:`wide`) reading it raises ``ValueError``; use :meth:`sum_list`, or
        :attr:`sum_high` and :attr:`sum_low`.
    exponent : torch.Tensor
        int64, ``E_out = E_a + E_b`` (one bit wider than the inputs' codes).
    nan : torch.Tensor
        bool, true when either input block is NaN. ``sum`` and ``exponent`` are computed
        as usual and carry no meaning then.
    sum_high, sum_low : torch.Tensor
        int64 limbs of a wide ``S = sum_high * 2**32 + sum_low``, ``0 <= sum_low <
        2**32`` (:data:`SUM_LOW_BITS`); for a result that fits int64, ``sum_high`` is
        None and ``sum_low`` is ``S`` itself.
    wide : bool
        Whether ``S`` is given in two limbs: :func:`mx_dot_product` of formats whose sum
        range (:func:`mx_dot_sum_range`) leaves int64, MXFP8 E5M2 x E5M2.
    """

    __slots__ = ("exponent", "nan", "sum_high", "sum_low")

    def __init__(self, sum: torch.Tensor, exponent: torch.Tensor, nan: torch.Tensor,
                 sum_high: torch.Tensor | None = None) -> None:
        if sum_high is not None and sum.numel() and (
                int(sum.min()) < 0 or int(sum.max()) >= 1 << SUM_LOW_BITS):
            raise ValueError(f"sum_low (the sum of a wide result) must be from 0 to "
                             f"2**{SUM_LOW_BITS} - 1, not {int(sum.min())} .. {int(sum.max())}")
        for name, value in (("sum_low", sum), ("exponent", exponent), ("nan", nan),
                            ("sum_high", sum_high)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"DotResult is read-only: cannot set {name}")

    @property
    def wide(self) -> bool:
        """Whether ``S`` is given in two limbs (``sum_high`` is not None)."""
        return self.sum_high is not None

    @property
    def sum(self) -> torch.Tensor:
        """The exact ``S`` (int64) of a result that fits int64; ``ValueError`` for a wide
        one."""
        if self.sum_high is not None:
            raise ValueError("the exact sum S of this dot product is wider than int64 "
                             "(MXFP8 E5M2 x E5M2): read it as sum_high * 2**32 + sum_low, or "
                             "as Python integers with sum_list()")
        return self.sum_low

    def sum_list(self) -> list:
        """``S`` as Python integers, exact for every result, nested as ``tolist()`` nests
        the tensor's shape."""
        if self.sum_high is None:
            return self.sum_low.tolist()

        def join(high, low):
            if isinstance(high, list):
                return [join(h, lo) for h, lo in zip(high, low, strict=True)]
            return (high << SUM_LOW_BITS) + low
        return join(self.sum_high.tolist(), self.sum_low.tolist())

    def __repr__(self) -> str:
        high = "" if self.sum_high is None else f", sum_high={self.sum_high!r}"
        return (f"DotResult(sum={self.sum_low!r}, exponent={self.exponent!r}, "
                f"nan={self.nan!r}{high})")

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

    ``S`` is computed in int64 when every sum of the two formats fits it
    (:func:`mx_dot_sum_range`). Otherwise (MXFP8 E5M2 x E5M2: ``|P|`` reaches
    ``57344 * 2**16 < 2**32``, a product ``2**63.6``, a sum of 32 about ``2**68.6``) it is
    exact in limbs (:func:`wide_sum`) and the result is *wide*: ``S = sum_high * 2**32 +
    sum_low`` (:class:`DotResult`), ``DotResult.sum`` refusing to be read.

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
        If the formats differ in block or scale width.
    """
    if fmt_a.exp_bits != fmt_b.exp_bits or fmt_a.block != fmt_b.block:
        raise ValueError(f"fmt_a and fmt_b must share exp_bits and block, not {fmt_a} and "
                         f"{fmt_b}")
    pa, special_a = _fixed_point(a_codes, fmt_a)
    pb, special_b = _fixed_point(b_codes, fmt_b)
    e = a_exp.to(torch.int64) + b_exp.to(torch.int64)
    nan = (a_exp == fmt_a.nan_code) | (b_exp == fmt_b.nan_code) | special_a | special_b
    lo, hi = mx_dot_sum_range(fmt_a, fmt_b, fmt_a.block)
    if lo < -(1 << 63) or hi >= 1 << 63:
        high, low = wide_sum(pa, pb)
        return DotResult(sum=low, exponent=e, nan=nan, sum_high=high)
    return DotResult(sum=(pa * pb).sum(dim=-1), exponent=e, nan=nan)


def wide_sum(pa: torch.Tensor, pb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(high, low)`` of the exact ``S = sum_i pa_i * pb_i = high * 2**32 + low``
    (``0 <= low < 2**32``) over the last axis, computed in int64 only.

    Each operand is cut into limbs of :data:`LIMB_BITS` (16) bits, ``P = h * 2**16 + l``
    with ``l = P mod 2**16`` (``0 .. 2**16 - 1``) and ``h = floor(P / 2**16)``, so that

    ``S = H * 2**32 + M * 2**16 + L``,  ``H = sum h_a h_b``,
    ``M = sum (h_a l_b + l_a h_b)``,  ``L = sum l_a l_b``.

    With ``|P| <= 2**32`` (every element of every format: E5M2's ``|P|`` is below
    ``2**32``, MXINT's ``2**23``) and ``k <= 1024``: ``|h| <= 2**16``, so ``|H| <= 2**42``,
    ``|M| < 2**44``, ``0 <= L < 2**42``, and ``t = M * 2**16 + L`` is below ``2**61`` in
    magnitude. Then ``low = t mod 2**32`` and ``high = H + floor(t / 2**32)`` (an
    arithmetic shift), ``|high| < 2**43``: no step leaves int64.

    Parameters
    ----------
    pa, pb : torch.Tensor
        int64 fixed-point integers, ``|P| <= 2**32``, the same shape ``(..., k)``,
        ``k <= 1024``.

    Raises
    ------
    ValueError
        If an operand is beyond ``2**32`` in magnitude or ``k`` beyond 1024 (the bounds
        above would not hold).
    """
    if pa.shape != pb.shape:
        raise ValueError(f"wide_sum takes pa and pb of one shape (..., k), not "
                         f"{tuple(pa.shape)} and {tuple(pb.shape)}")
    if pa.shape[-1] > MAX_BLOCK:
        raise ValueError(f"wide_sum takes at most {MAX_BLOCK} products a sum, not "
                         f"{pa.shape[-1]}")
    for name, p in (("pa", pa), ("pb", pb)):
        if p.numel() and int(p.abs().max()) > 1 << 32:
            raise ValueError(f"{name} must be at most 2**32 in magnitude, not "
                             f"{int(p.abs().max())}")
    mask = (1 << LIMB_BITS) - 1
    ha, la = pa >> LIMB_BITS, pa & mask
    hb, lb = pb >> LIMB_BITS, pb & mask
    big = (ha * hb).sum(dim=-1)
    t = ((ha * lb + la * hb).sum(dim=-1) << LIMB_BITS) + (la * lb).sum(dim=-1)
    return big + (t >> SUM_LOW_BITS), t & ((1 << SUM_LOW_BITS) - 1)
