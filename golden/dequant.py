"""The dequantiser unit's golden models: float32 bit patterns of MXINT and MXFP blocks
(:func:`golden.dequantize`) and of accumulator results (a wide integer sum with an exponent,
rounded once to nearest even)."""

from __future__ import annotations

import torch

from .accumulator import MAX_ACC_WIDTH
from .format import MAX_EXP_BITS, MXFPFormat, MXIntFormat, check_int, operand_format
from .quantize import MXFPTensor, MXIntTensor, dequantize
from .rounding import round_shift

__all__ = ["QUIET_NAN", "accum_scale_offset", "dequant_accum", "dequant_blocks",
           "float32_bits"]

#: The float32 pattern of every NaN the dequantiser gives (each element of a NaN block, and
#: an MXFP NaN element code whatever its sign): the positive canonical quiet NaN.
QUIET_NAN = 0x7FC00000
#: float32 +infinity; with bit 31 set, -infinity.
FLOAT32_INF = 0x7F800000


def dequant_blocks(mantissa: torch.Tensor, exponent: torch.Tensor,
                   fmt: MXIntFormat | MXFPFormat) -> torch.Tensor:
    """float32 bit patterns of MXINT or MXFP blocks, exactly :func:`golden.dequantize`
    with one NaN pattern.

    Parameters
    ----------
    mantissa : torch.Tensor
        Integer tensor, shape ``(n, k)``. MXINT: m-bit two's complement elements
        (``-2**(m-1)`` allowed). MXFP: unsigned element codes, ``0 .. 2**width - 1``.
    exponent : torch.Tensor
        Integer tensor, shape ``(n,)``: exponent (MXFP: E8M0 scale) codes,
        ``fmt.nan_code`` for NaN blocks.
    fmt : MXIntFormat or MXFPFormat
        Block format.

    Returns
    -------
    torch.Tensor
        ``int64``, shape ``(n, k)``: unsigned float32 patterns.

        MXINT: ``P * 2**(E - bias - (m - 2))`` as a float32 — always exact, since the value
        is a multiple of ``2**-149`` with at most 24 significant bits; only
        ``-2**(m-1) * 2**(127 - (m - 2))`` (code 254, ``e = 8``) exceeds the range and is
        ``-inf``. ``P = 0`` gives ``+0.0``; NaN blocks give :data:`QUIET_NAN`.

        MXFP: ``P * 2**(X - 127 - f)`` (``P`` the code's fixed-point integer,
        :meth:`golden.minifloat.ElementFormat.decode`) as a float32, with the code's sign:
        ``-0`` codes give ``0x80000000``. Always exact or infinite: ``P`` has at most 4
        significant bits and weighs at least ``2**(-127 - f) >= 2**-143`` (``f <= 16``),
        a multiple of ``2**-149``; values of ``2**128`` and more (large elements at large
        scales) give ``±inf``. E5M2 infinity codes give ``0x7F800000`` / ``0xFF800000``;
        NaN element codes (E5M2, E4M3) and NaN blocks (``X = 255``) give
        :data:`QUIET_NAN`, whatever the sign.
    """
    if not isinstance(fmt, MXIntFormat | MXFPFormat):
        raise TypeError(f"fmt must be an MXIntFormat or MXFPFormat, not {fmt!r}")
    k = fmt.block
    if mantissa.dim() != 2 or mantissa.shape[1] != k:
        raise ValueError(f"mantissa must have shape (n, {k}), not {tuple(mantissa.shape)}")
    n = mantissa.shape[0]
    if tuple(exponent.shape) != (n,):
        raise ValueError(f"exponent must have shape ({n},), not {tuple(exponent.shape)}")
    members = {"exponent": exponent.to(torch.int32).reshape(n, 1), "fmt": fmt,
               "shape": torch.Size((n, k)), "axis": 1}
    nan = (exponent == fmt.nan_code).unsqueeze(-1)
    if isinstance(fmt, MXFPFormat):
        q = MXFPTensor(codes=mantissa.to(torch.int32).reshape(n, 1, k), **members)
        nan = nan | (fmt.element.kind(mantissa) == 2)
    else:
        q = MXIntTensor(mantissa=mantissa.to(torch.int32).reshape(n, 1, k), **members)
    bits = dequantize(q).view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    return torch.where(nan, QUIET_NAN, bits)


def float32_bits(value: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """float32 bit patterns of ``value * 2**scale``, rounded once to nearest, ties to even.

    Integer arithmetic only. With ``mag = |value|``, ``j`` the position of its leading one
    and ``F = j + scale + 127`` the biased float exponent of the leading one:

    * the significand is ``q = round_even(mag / 2**r)`` with
      ``r = max(j - 23, -149 - scale)``: ``j - 23`` keeps 24 significant bits (normal,
      ``F >= 1``), ``-149 - scale`` keeps the multiples of ``2**-149`` (subnormal,
      ``F <= 0``, gradual underflow); ``r < 0`` is an exact left shift (at most 23);
    * the magnitude pattern is ``(max(F - 1, 0) << 23) + q``: a normal ``q`` has its
      leading one at bit 23, which carries into the exponent field, and a rounding carry to
      ``2**24`` (or from the largest subnormal to ``2**23``) moves into the exponent by
      itself;
    * a pattern ``>= 0x7F800000`` is infinity (overflow);
    * bit 31 is the sign of ``value``; ``value == 0`` gives ``+0.0``, a negative value
      that rounds to zero gives ``-0.0``.

    Parameters
    ----------
    value : torch.Tensor
        Integers, ``|value| <= 2**61``.
    scale : torch.Tensor
        Integer exponents, broadcastable to ``value``.

    Returns
    -------
    torch.Tensor
        ``int64``, unsigned 32-bit patterns.
    """
    v = value.to(torch.int64)
    scale = torch.as_tensor(scale, dtype=torch.int64)
    if bool((v.abs() > 1 << MAX_ACC_WIDTH - 1).any()):
        raise ValueError(f"value must be at most 2**{MAX_ACC_WIDTH - 1} in magnitude")
    sign = (v < 0).to(torch.int64)
    mag = v.abs()
    # Leading-one position: the bit length minus one (0 for mag = 0, masked below).
    lead = torch.zeros_like(mag)
    for t in range(1, MAX_ACC_WIDTH):
        lead += ((mag >> t) != 0).to(torch.int64)
    biased = lead + scale + 127
    r = torch.maximum(lead - 23, -149 - scale)
    sig = torch.where(r >= 0, round_shift(mag, r.clamp(min=0), "even"),
                      mag << (-r).clamp(min=0, max=23))
    word = ((biased - 1).clamp(min=0) << 23) + sig
    word = torch.where(word >= FLOAT32_INF, FLOAT32_INF, word)
    word = torch.where(mag == 0, 0, word)
    return word | (sign << 31)


def accum_scale_offset(*, a_bits: int | None = None, b_bits: int | None = None,
                       exp_bits: int, guard_bits: int, a_element: str = "int",
                       b_element: str = "int") -> int:
    """``c = G + 2*bias + f_a + f_b``: an accumulator result ``(sum, exponent)`` is worth
    ``sum * 2**(exponent - c)``.

    ``bias = 2**(exp_bits - 1) - 1`` (127 for E8M0) and ``f`` is an operand's fraction
    bits (:attr:`golden.MXIntFormat.frac_bits`, ``m - 2``, for MXINT ``a_bits``/``b_bits``;
    the element's ``bias + M - 1``, its smallest subnormal ``2**-f``, for a minifloat
    ``a_element``/``b_element``, :func:`golden.format.operand_format`)."""
    check_int("exp_bits", exp_bits, 2, MAX_EXP_BITS)
    check_int("guard_bits", guard_bits, 0, MAX_ACC_WIDTH)
    fmt_a = operand_format(a_element, a_bits, exp_bits=exp_bits, block=1, side="a")
    fmt_b = operand_format(b_element, b_bits, exp_bits=exp_bits, block=1, side="b")
    return guard_bits + 2 * fmt_a.bias + fmt_a.frac_bits + fmt_b.frac_bits


def dequant_accum(sum: torch.Tensor, exponent: torch.Tensor, nan: torch.Tensor, *,
                  a_bits: int | None = None, b_bits: int | None = None, exp_bits: int,
                  guard_bits: int, a_element: str = "int", b_element: str = "int"
                  ) -> torch.Tensor:
    """float32 bit patterns of accumulator results (:mod:`golden.accumulator`).

    Parameters
    ----------
    sum, exponent, nan : torch.Tensor
        Same shape: the accumulated sum ``A`` (``|A| <= 2**61``), the exponent code sum
        ``E_max`` (non-negative) and the NaN flag.
    a_bits, b_bits, exp_bits, guard_bits : int
        Of the dot unit and the accumulator that produced them (``a_bits``/``b_bits``
        for MXINT operands only).
    a_element, b_element : str
        The operands' element formats, ``"int"`` (default) or a minifloat element name.

    Returns
    -------
    torch.Tensor
        ``int64`` patterns: ``sum * 2**(exponent - c)``, ``c`` from
        :func:`accum_scale_offset`, rounded once to float32 by :func:`float32_bits`
        (nearest even, subnormals, overflow to ``±inf``, ``+0.0`` for ``sum == 0``);
        :data:`QUIET_NAN` where ``nan`` is set.
    """
    c = accum_scale_offset(a_bits=a_bits, b_bits=b_bits, exp_bits=exp_bits,
                           guard_bits=guard_bits, a_element=a_element, b_element=b_element)
    e = exponent.to(torch.int64)
    if bool((e < 0).any()):
        raise ValueError("exponent must be non-negative")
    bits = float32_bits(sum, e - c)
    return torch.where(nan.to(torch.bool), QUIET_NAN, bits)
