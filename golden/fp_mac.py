"""Binary floating-point multiply-add, unfused: ``r = round(round(a * b) + c)``.

The baseline the MXINT units are compared against. Every function works on the *bit
patterns* of an IEEE-754-style binary format with ``e`` exponent bits and ``f`` fraction
bits (:class:`FloatFormat`), with integer arithmetic only, so any width pair is modelled
the same way:

* pattern = sign (1 bit) | biased exponent ``E`` (``e`` bits) | fraction ``F`` (``f`` bits);
  bias ``2**(e-1) - 1``;
* ``E = 0``: zero or subnormal, value ``(-1)**s * F * 2**(1 - bias - f)``;
* ``0 < E < 2**e - 1``: normal, value ``(-1)**s * (2**f + F) * 2**(E - bias - f)``;
* ``E = 2**e - 1``: infinity (``F = 0``) or NaN (``F != 0``).

Rounding is IEEE round-to-nearest, ties to even, after each operation, with gradual
underflow (subnormals are kept, never flushed) and overflow to infinity. Special cases:

* any NaN operand, ``inf * 0`` and ``inf - inf`` give the canonical quiet NaN
  :attr:`FloatFormat.nan` = ``0 | 1...1 | 10...0`` (sign 0, top fraction bit set); no
  payload is propagated;
* an exact zero sum is ``-0`` only when both addends are ``-0``; otherwise ``+0``
  (``x - x = +0``); a zero or underflowed product has the sign ``s_a ^ s_b``;
* the product's rounding happens before the addition (two roundings), as
  ``torch`` float32 ``a * b + c`` evaluated as two operations.

With ``subnormals="flush"`` (flush-to-zero, as FPGA vendors' floating-point operators
work) the arithmetic is the IEEE arithmetic above with every subnormal replaced by a zero
of the same sign, at four places and nowhere else: the three operands before use, the
product after its rounding, and the sum after its rounding. That is, with ``flush(x)``
the pattern ``x`` with its fraction cleared when its exponent field is 0 (a subnormal
becomes ``±0``, a zero stays as it is)::

    fp_mac(a, b, c, subnormals="flush")
        = flush(fp_add(flush(fp_mul(flush(a), flush(b))), flush(c)))

So a product or sum is rounded exactly as IEEE rounds it, gradual underflow included,
and flushed only if the rounded result is subnormal: a value just below the smallest
normal ``2**(1 - bias)`` that rounds up to it stays that normal. The sign of a flushed
result is the sign of the IEEE result, and a flushed product then adds as a zero of that
sign (``-0 + -0 = -0``; ``±0 + x = x``). A sum of two normals or zeros that is below the
normal range is exact in IEEE arithmetic, so the final flush never hides a rounding.

The 4-exponent-bit, 3-fraction-bit preset ``e4m3`` is the IEEE-style E4M3 (infinity and
NaN in exponent code 15, largest finite 240), *not* OCP FP8 E4M3 (no infinity, largest
finite 448, a single NaN pattern).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .format import check_choice, check_int
from .rounding import round_shift

__all__ = ["FLOAT_FORMATS", "SUBNORMALS", "FloatFormat", "flush_subnormal", "fp_add", "fp_mac",
           "fp_mul", "round_pack"]

#: Subnormal handling of :func:`fp_mac`: IEEE gradual underflow, or flush to signed zero.
SUBNORMALS = ("keep", "flush")

#: Widest fraction: the aligned sum of two significands, ``2 * (f + 1) + 3`` bits, stays
#: within the 62-bit integers of :func:`golden.rounding.round_shift`.
MAX_FRAC_BITS = 23
#: Widest exponent field.
MAX_EXP_FIELD_BITS = 8


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format with ``exp_bits`` exponent and ``man_bits`` fraction
    bits (the hidden bit not counted).

    Parameters
    ----------
    exp_bits : int
        Exponent field width ``e``, 2 to 8.
    man_bits : int
        Fraction field width ``f``, 1 to 23.

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is out of range.
    """

    exp_bits: int
    man_bits: int

    def __post_init__(self) -> None:
        check_int("exp_bits", self.exp_bits, 2, MAX_EXP_FIELD_BITS)
        check_int("man_bits", self.man_bits, 1, MAX_FRAC_BITS)

    @property
    def width(self) -> int:
        """Bits of a pattern, ``1 + e + f``."""
        return 1 + self.exp_bits + self.man_bits

    @property
    def bias(self) -> int:
        """Exponent bias ``2**(e-1) - 1``."""
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def exp_max(self) -> int:
        """The all-ones exponent code ``2**e - 1`` of infinities and NaNs."""
        return (1 << self.exp_bits) - 1

    @property
    def inf(self) -> int:
        """Pattern of ``+inf``."""
        return self.exp_max << self.man_bits

    @property
    def nan(self) -> int:
        """Pattern of the canonical quiet NaN: sign 0, exponent all ones, fraction
        ``10...0``."""
        return self.inf | (1 << (self.man_bits - 1))

    @property
    def sign_bit(self) -> int:
        """Mask of the sign bit."""
        return 1 << (self.exp_bits + self.man_bits)

    @property
    def max_finite(self) -> int:
        """Pattern of the largest finite value."""
        return self.inf - 1


#: Presets: name -> format. ``e4m3`` is IEEE-style (has infinities), not OCP E4M3.
FLOAT_FORMATS = {
    "fp32": FloatFormat(8, 23),
    "bf16": FloatFormat(8, 7),
    "fp16": FloatFormat(5, 10),
    "e4m3": FloatFormat(4, 3),
}


def _bit_length(v: torch.Tensor) -> torch.Tensor:
    """Bits of non-negative int64 ``v`` (0 for 0)."""
    n = torch.zeros_like(v)
    for step in (32, 16, 8, 4, 2, 1):
        high = (v >> step) != 0
        n += high * step
        v = torch.where(high, v >> step, v)
    return n + (v != 0)


def _decode(x: torch.Tensor, fmt: FloatFormat):
    """Sign, significand ``M``, exponent ``q`` (value ``M * 2**q``) and class flags."""
    f = fmt.man_bits
    sign = (x >> (fmt.exp_bits + f)) & 1
    e = (x >> f) & fmt.exp_max
    frac = x & ((1 << f) - 1)
    sig = torch.where(e != 0, frac | (1 << f), frac)
    q = torch.clamp(e, min=1) - fmt.bias - f
    special = e == fmt.exp_max
    return sign, sig, q, special & (frac == 0), special & (frac != 0), (e == 0) & (frac == 0)


def round_pack(sign: torch.Tensor, mag: torch.Tensor, q: torch.Tensor,
               fmt: FloatFormat) -> torch.Tensor:
    """Pattern of ``(-1)**sign * mag * 2**q`` rounded to ``fmt``, nearest-even.

    ``mag`` is a non-negative int64 tensor below ``2**61``. With ``L`` the bit length of
    ``mag``, the result's exponent is ``q_r = max(L - 1 + q, 1 - bias) - f``; the
    significand ``round_even(mag / 2**(q_r - q))`` (a left shift when ``q_r < q``), a
    carry to ``2**(f+1)`` moves to the next binade, and a biased exponent of ``2**e - 1``
    or more becomes infinity. A zero ``mag`` gives a zero with the given sign.
    """
    f = fmt.man_bits
    mag, q, sign = mag.to(torch.int64), q.to(torch.int64), sign.to(torch.int64)
    length = _bit_length(mag)
    q_r = torch.clamp(length - 1 + q, min=1 - fmt.bias) - f
    shift = q_r - q
    sig = torch.where(shift >= 0, round_shift(mag, shift.clamp(min=0), "even"),
                      mag << (-shift).clamp(min=0))
    carry = sig >> (f + 1) != 0
    sig = torch.where(carry, sig >> 1, sig)
    q_r = q_r + carry.to(torch.int64)
    e = torch.where(sig >> f != 0, q_r + f + fmt.bias, torch.zeros_like(q_r))
    body = torch.where(e >= fmt.exp_max, torch.full_like(e, fmt.inf),
                       (e << f) | (sig & ((1 << f) - 1)))
    return (sign << (fmt.exp_bits + f)) | body


def fp_mul(a: torch.Tensor, b: torch.Tensor, fmt: FloatFormat) -> torch.Tensor:
    """Pattern of ``a * b`` rounded to ``fmt`` (nearest-even), from patterns ``a``, ``b``.

    The exact product ``M_a * M_b * 2**(q_a + q_b)`` is rounded once by
    :func:`round_pack`. NaN in, or ``inf * 0``, gives :attr:`FloatFormat.nan`; otherwise an
    infinite operand gives infinity with sign ``s_a ^ s_b``.
    """
    a, b = torch.as_tensor(a, dtype=torch.int64), torch.as_tensor(b, dtype=torch.int64)
    sa, ma, qa, inf_a, nan_a, zero_a = _decode(a, fmt)
    sb, mb, qb, inf_b, nan_b, zero_b = _decode(b, fmt)
    sign = sa ^ sb
    r = round_pack(sign, ma * mb, qa + qb, fmt)
    r = torch.where(inf_a | inf_b, (sign << (fmt.exp_bits + fmt.man_bits)) | fmt.inf, r)
    nan = nan_a | nan_b | (inf_a & zero_b) | (zero_a & inf_b)
    return torch.where(nan, torch.full_like(r, fmt.nan), r)


def fp_add(x: torch.Tensor, y: torch.Tensor, fmt: FloatFormat) -> torch.Tensor:
    """Pattern of ``x + y`` rounded to ``fmt`` (nearest-even), from patterns ``x``, ``y``.

    Both values are put on a common grid: with ``d = |q_x - q_y|``, if ``d <= f + 3`` the
    sum ``±M_x * 2**(q_x - q_min) ± M_y * 2**(q_y - q_min)`` is exact; otherwise the
    larger operand is shifted left by ``f + 3`` and the smaller one (whose magnitude is
    below a quarter of the result's smallest possible ulp) is replaced by one unit of
    that grid with its sign, which rounds identically (a "sticky" bit). The signed sum is
    rounded by :func:`round_pack`. An exact zero is ``-0`` only for ``-0 + -0``. NaN in,
    or ``inf - inf``, gives :attr:`FloatFormat.nan`; otherwise an infinite operand wins.
    """
    x, y = torch.as_tensor(x, dtype=torch.int64), torch.as_tensor(y, dtype=torch.int64)
    f = fmt.man_bits
    sx, mx, qx, inf_x, nan_x, _ = _decode(x, fmt)
    sy, my, qy, inf_y, nan_y, _ = _decode(y, fmt)
    vx = torch.where(sx == 1, -mx, mx)
    vy = torch.where(sy == 1, -my, my)
    near = (qx - qy).abs() <= f + 3
    q_min = torch.minimum(qx, qy)
    exact = (vx << (qx - q_min).clamp(max=f + 3)) + (vy << (qy - q_min).clamp(max=f + 3))
    x_big = qx > qy
    far = torch.where(x_big, (vx << (f + 3)) + vy.sign(), (vy << (f + 3)) + vx.sign())
    total = torch.where(near, exact, far)
    q = torch.where(near, q_min, torch.maximum(qx, qy) - (f + 3))
    sign = torch.where(total == 0, sx & sy, (total < 0).to(torch.int64))
    r = round_pack(sign, total.abs(), q, fmt)
    r = torch.where(inf_x, x, torch.where(inf_y, y, r))
    nan = nan_x | nan_y | (inf_x & inf_y & (sx != sy))
    return torch.where(nan, torch.full_like(r, fmt.nan), r)


def flush_subnormal(x: torch.Tensor, fmt: FloatFormat) -> torch.Tensor:
    """``x`` with its fraction cleared where its exponent field is 0: a subnormal pattern
    becomes the zero of its sign; every other pattern is returned unchanged."""
    x = torch.as_tensor(x, dtype=torch.int64)
    sub = ((x >> fmt.man_bits) & fmt.exp_max) == 0
    return torch.where(sub, x & fmt.sign_bit, x)


def fp_mac(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, fmt: FloatFormat, *,
           subnormals: str = "keep") -> torch.Tensor:
    """Pattern of ``round(round(a * b) + c)``: :func:`fp_mul` then :func:`fp_add`.

    ``subnormals``: ``"keep"`` (default, IEEE gradual underflow) or ``"flush"``: every
    operand, the rounded product and the rounded sum flushed by :func:`flush_subnormal`
    (see the module notes).

    Raises
    ------
    TypeError, ValueError
        If ``subnormals`` is not one of :data:`SUBNORMALS`.
    """
    check_choice("subnormals", subnormals, SUBNORMALS)
    if subnormals == "keep":
        return fp_add(fp_mul(a, b, fmt), c, fmt)
    a, b, c = (flush_subnormal(x, fmt) for x in (a, b, c))
    p = flush_subnormal(fp_mul(a, b, fmt), fmt)
    return flush_subnormal(fp_add(p, c, fmt), fmt)
