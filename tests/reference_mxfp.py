"""Independent definition of the OCP MX v1.0 minifloat block formats, for tests and benchmarks.

Written from the specification, not from ``golden/``: nothing here calls golden or shares its
code path. Two forms of the same definition:

* :func:`quantize_block`: one block of floats in exact rationals (``fractions.Fraction``),
  line by line as OCP MX v1.0 section 6.3 and the element tables state it; slow and plain.
* :func:`one_element_codes`: every float of a tensor as a one-element block, vectorised over
  ``int64`` integers: the input's bits give its exact value ``N * 2**E``, the scale and the
  rounding come from exact integer comparisons against a sorted table of the element's
  representable magnitudes and the midpoints between them (no float arithmetic, no
  ``frexp``, no ``round``). The test
  checks it against :func:`quantize_block` on a sample, then uses it exhaustively.

Conventions (the ones golden documents): elements round in ``"even"`` (nearest, ties to the
even code), ``"away"``, ``"zero"`` or ``"floor"`` (toward minus infinity) and saturate to
plus or minus the largest normal; the code keeps the input's sign, so a negative that rounds
to zero is ``-0``; a block holding a NaN or an infinity has scale code 255 and codes 0; an
all-zero block has scale code 0.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

import torch

#: E8M0 scale: bias 127, codes 0 .. 254 finite, 255 NaN.
SCALE_BIAS = 127
SCALE_NAN = 255
SCALE_MAX = 254


@dataclass(frozen=True)
class Element:
    """An OCP element format: ``E`` exponent bits, ``M`` mantissa bits and its specials
    (``"ieee"``: the top exponent is Inf/NaN; ``"nan"``: only ``S.1..1.1..1`` is NaN;
    ``"none"``)."""

    name: str
    E: int
    M: int
    specials: str

    @property
    def width(self) -> int:
        return 1 + self.E + self.M

    @property
    def bias(self) -> int:
        return 2 ** (self.E - 1) - 1

    def value(self, code: int) -> Fraction | None:
        """The value of a code as OCP v1.0 defines it; ``None`` for Inf and NaN codes."""
        s = code >> (self.E + self.M)
        e = (code >> self.M) % 2 ** self.E
        m = code % 2 ** self.M
        if self.specials == "ieee" and e == 2 ** self.E - 1:
            return None
        if self.specials == "nan" and e == 2 ** self.E - 1 and m == 2 ** self.M - 1:
            return None
        if e == 0:
            v = Fraction(m, 2 ** self.M) * Fraction(2) ** (1 - self.bias)
        else:
            v = (1 + Fraction(m, 2 ** self.M)) * Fraction(2) ** (e - self.bias)
        return -v if s else v

    @cached_property
    def magnitudes(self) -> list[Fraction]:
        """Finite non-negative values in code order ``0, 1, 2, ...`` (increasing)."""
        out = []
        for code in range(2 ** (self.width - 1)):
            v = self.value(code)
            if v is None:
                break
            out.append(v)
        assert out == sorted(out)
        return out

    @property
    def max_normal(self) -> Fraction:
        return self.magnitudes[-1]

    @property
    def emax(self) -> int:
        """Exponent of the largest normal, OCP's ``emax_elem``."""
        return floor_log2(self.max_normal)

    @property
    def frac_bits(self) -> int:
        """``f`` with the smallest subnormal ``2**-f``."""
        return -floor_log2(self.magnitudes[1])


ELEMENTS = {
    "e5m2": Element("e5m2", 5, 2, "ieee"),
    "e4m3": Element("e4m3", 4, 3, "nan"),
    "e3m2": Element("e3m2", 3, 2, "none"),
    "e2m3": Element("e2m3", 2, 3, "none"),
    "e2m1": Element("e2m1", 2, 1, "none"),
}


def floor_log2(v: Fraction) -> int:
    """Largest ``s`` with ``2**s <= v``, for ``v > 0``."""
    s = v.numerator.bit_length() - v.denominator.bit_length()
    while Fraction(2) ** s > v:
        s -= 1
    while Fraction(2) ** (s + 1) <= v:
        s += 1
    return s


def scale_code(amax: Fraction, elem: Element, scale_rounding: str) -> int:
    """E8M0 code of a finite block with ``max |x| = amax``.

    ``floor``: ``floor(log2 amax) - emax_elem`` (OCP v1.0); ``rceil``: the smallest scale
    ``s`` with ``amax <= max_normal * 2**s``. Both biased by 127 and clamped to 0 .. 254;
    ``amax = 0`` gives 0.
    """
    if amax == 0:
        return 0
    if scale_rounding == "floor":
        s = floor_log2(amax) - elem.emax
    else:
        s = floor_log2(amax / elem.max_normal)
        if elem.max_normal * Fraction(2) ** s < amax:
            s += 1
    return min(max(s + SCALE_BIAS, 0), SCALE_MAX)


def round_magnitude(y: Fraction, negative: bool, elem: Element, rounding: str) -> int:
    """Index (the unsigned code) of the magnitude ``|x| / scale = y >= 0`` rounded to the
    element grid: nearest (ties to the even code, or away from zero), toward zero or toward
    minus infinity, saturating to the largest normal."""
    mags = elem.magnitudes
    if y >= mags[-1]:
        return len(mags) - 1
    i = bisect.bisect_right(mags, y) - 1  # mags[i] <= y < mags[i + 1]
    lo, hi = mags[i], mags[i + 1]
    if y == lo:
        return i
    if rounding == "zero":
        return i
    if rounding == "floor":
        return i + 1 if negative else i
    mid = (lo + hi) / 2
    if y != mid:
        return i if y < mid else i + 1
    if rounding == "away":
        return i + 1
    return i if i % 2 == 0 else i + 1


def quantize_block(xs: list[float], element: str, scale_rounding: str, rounding: str
                   ) -> tuple[list[int], int]:
    """``(codes, scale code)`` of one block of Python floats, from the definition."""
    elem = ELEMENTS[element]
    if any(math.isnan(x) or math.isinf(x) for x in xs):
        return [0] * len(xs), SCALE_NAN
    vals = [Fraction(x) for x in xs]
    scale = scale_code(max(abs(v) for v in vals), elem, scale_rounding)
    unit = Fraction(2) ** (scale - SCALE_BIAS)
    codes = []
    for x, v in zip(xs, vals, strict=True):
        negative = math.copysign(1.0, x) < 0
        index = round_magnitude(abs(v) / unit, v < 0, elem, rounding)
        codes.append(index | (int(negative) << (elem.width - 1)))
    return codes, scale


def value(code: int, scale: int, element: str) -> float:
    """The float a code and scale code mean (NaN for the NaN scale or a NaN code)."""
    if scale == SCALE_NAN:
        return math.nan
    elem = ELEMENTS[element]
    v = elem.value(code)
    if v is None:
        e_all_ones = (code >> elem.M) % 2 ** elem.E == 2 ** elem.E - 1
        if elem.specials == "ieee" and e_all_ones and code % 2 ** elem.M == 0:
            return -math.inf if code >> (elem.width - 1) else math.inf
        return math.nan
    v *= Fraction(2) ** (scale - SCALE_BIAS)
    return math.copysign(float(v), -1.0 if code >> (elem.width - 1) else 1.0)


# --- the same definition, vectorised over int64, for one-element blocks ---------------------

#: Extra fraction bits of the common integer unit (see :func:`one_element_codes`).
_K = 26


def _exact(x: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """``(N, E, negative, special, w)`` with ``|x| = N * 2**E`` exactly and ``N < 2**w``
    (``w`` = 24 for float32: the significand with its hidden bit), from the IEEE bits of
    float32, bfloat16 or float16 ``x``."""
    layout = {torch.float32: (torch.int32, 8, 23), torch.bfloat16: (torch.int16, 8, 7),
              torch.float16: (torch.int16, 5, 10)}
    int_dtype, ebits, mbits = layout[x.dtype]
    bits = x.view(int_dtype).to(torch.int64) & ((1 << (1 + ebits + mbits)) - 1)
    negative = bits >= 1 << (ebits + mbits)
    e = (bits >> mbits) & ((1 << ebits) - 1)
    m = bits & ((1 << mbits) - 1)
    bias = (1 << (ebits - 1)) - 1
    special = e == (1 << ebits) - 1
    normal = e != 0
    n = m | (normal.to(torch.int64) << mbits)  # the hidden bit of a normal number
    exp = e.clamp_(min=1).sub_(bias + mbits)  # a subnormal has the exponent of e = 1
    return n, exp, negative, special, mbits + 1


def _bit_length(n: torch.Tensor, width: int) -> torch.Tensor:
    """Bits of each non-negative ``n < 2**width`` (0 for 0): ``width`` where the top bit is
    set (every normal significand), else by comparison with the powers of two (only the
    subnormals and zero are searched)."""
    out = torch.full_like(n, width)
    short = n < (1 << (width - 1))
    if bool(short.any()):
        powers = torch.tensor([1 << i for i in range(width)], dtype=torch.int64)
        out[short] = torch.searchsorted(powers, n[short], right=True)
    return out


#: The rounding modes of the definition, in the order golden lists them.
ROUNDINGS = ("even", "away", "zero", "floor")


def one_element_codes(x: torch.Tensor, element: str, scale_rounding: str,
                      roundings: tuple[str, ...] = ROUNDINGS
                      ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Every element of ``x`` (1-D, float32/bfloat16/float16) as a one-element block:
    ``{rounding: (codes, scale codes)}`` for the rounding modes ``roundings`` (all four by
    default), ``int64``.

    Exact integer arithmetic: with ``|x| = N * 2**E`` and scale ``2**s``, ``|x| / 2**s`` in
    units of ``2**-(f + K)`` is the integer ``T = N << (E - s + f + K)``. For a one-element
    block ``|x| / 2**s < 2 * max_normal`` (also where the scale is clamped), so
    ``T < 2**(emax + 1 + f + K) <= 2**58``, and the shift is never negative because
    ``E - s >= emax - 24`` while ``f + K >= 26``. Every representable magnitude
    ``P * 2**-f`` is ``A = P << K``.

    The rounding compares ``2 T`` with the sorted decision table ``D`` of the doubled
    magnitudes and the midpoints between neighbours, ``2 A_0 < A_0 + A_1 < 2 A_1 < ... <
    2 A_last``: with ``D[j] <= 2 T < D[j + 1]``, ``T`` lies between the magnitudes
    ``i = j >> 1`` and ``i + 1``, below their midpoint for even ``j`` and at or above it for
    odd ``j`` (a tie when ``2 T = D[j]``); it is a magnitude exactly when ``j`` is even and
    ``2 T = D[j]``; and ``T`` past the largest magnitude gives the last ``j``, whose
    magnitude is the saturation.
    """
    unknown = [r for r in roundings if r not in ROUNDINGS]
    if unknown:
        raise ValueError(f"roundings must be among {ROUNDINGS}, not {unknown[0]!r}")
    elem = ELEMENTS[element]
    f = elem.frac_bits
    mags = [int(m * 2 ** f) << _K for m in elem.magnitudes]
    decisions = [v for a, b in zip(mags, mags[1:], strict=False) for v in (2 * a, a + b)]
    decisions = torch.tensor(decisions + [2 * mags[-1]], dtype=torch.int64)
    last = len(mags) - 1
    n, exp, negative, special, width = _exact(x)
    n = n.masked_fill_(special, 0)  # Inf and NaN give the NaN scale whatever their payload
    zero = n == 0
    # floor(log2 |x|) = E + bitlength(N) - 1
    log2 = exp + (_bit_length(n, width) - 1)
    if scale_rounding == "floor":
        s = log2 - elem.emax
    else:
        # smallest s with N * 2**E <= Pmax * 2**(s - f): try s0 = floor(log2|x|) - emax,
        # then one more (|x| < 2**(log2 + 1) <= 2 * max_normal * 2**s0).
        pmax = int(elem.max_normal * 2 ** f)
        s0 = log2 - elem.emax
        # N * 2**E <= Pmax * 2**(s0 - f)  <=>  N << (E - s0 + f + K) <= Pmax << K
        t0 = n << (exp - s0 + f + _K)
        s = s0 + (t0 > (pmax << _K))
    scale = (s + SCALE_BIAS).clamp_(0, SCALE_MAX).masked_fill_(zero, 0)
    # shift = E - (scale - bias) + f + K; never negative, and T < 2**(emax + 1 + f + K) <=
    # 2**58: see the docstring. Zero includes the specials (N set to 0 above).
    shift = (exp + (SCALE_BIAS + f + _K)).sub_(scale).masked_fill_(zero, 0)
    assert int(shift.min()) >= 0, "a shift went negative: the definition's bound is wrong"
    twice = (n << shift).mul_(2)
    j = torch.searchsorted(decisions, twice, right=True).sub_(1)
    on_decision = twice == decisions[j]
    odd = (j & 1) == 1
    sign = negative.to(torch.int64) << (elem.width - 1)
    nan_scale = scale.masked_fill(special, SCALE_NAN)
    out = {}
    for rounding in roundings:
        if rounding == "zero":
            index = j >> 1
        elif rounding == "floor":  # one up for a negative that is not a magnitude
            index = ((j >> 1) + (negative & (odd | ~on_decision))).clamp_(max=last)
        else:  # nearest: the upper magnitude from the midpoint up ...
            index = (j + 1) >> 1
            if rounding == "even":  # ... except a tie whose upper magnitude is odd
                index = index - (odd & on_decision & ((index & 1) == 1)).to(torch.int64)
        out[rounding] = ((index | sign).masked_fill_(special, 0), nan_scale)
    return out
