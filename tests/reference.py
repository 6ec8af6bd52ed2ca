"""Independent reference arithmetic for tests: Python Fractions, no torch shortcuts."""

from __future__ import annotations

import math
from fractions import Fraction


def round_fraction(q: Fraction, mode: str) -> int:
    """Round an exact rational to an integer."""
    fl = math.floor(q)
    rem = q - fl
    if mode == "floor":
        return fl
    if mode == "zero":
        return fl if q >= 0 else math.ceil(q)
    if rem > Fraction(1, 2):
        return fl + 1
    if rem < Fraction(1, 2):
        return fl
    if mode == "away":
        return fl + 1 if q > 0 else fl
    return fl if fl % 2 == 0 else fl + 1  # even


def floor_log2(v: Fraction) -> int:
    """Largest s with 2**s <= v, for v > 0."""
    s = v.numerator.bit_length() - v.denominator.bit_length()
    while Fraction(2) ** s > v:
        s -= 1
    while Fraction(2) ** (s + 1) <= v:
        s += 1
    return s


def quantize_block(xs: list[float], man_bits: int, exp_bits: int, mode: str
                   ) -> tuple[list[int], int]:
    """One MXINT block of floats, straight from the format's definition."""
    bias = (1 << (exp_bits - 1)) - 1
    nan_code = (1 << exp_bits) - 1
    if any(math.isnan(x) or math.isinf(x) for x in xs):
        return [0] * len(xs), nan_code
    vals = [Fraction(x) for x in xs]
    amax = max(abs(v) for v in vals)
    if amax == 0:
        return [0] * len(xs), 0
    e = min(max(floor_log2(amax) + bias, 0), nan_code - 1)
    scale = Fraction(2) ** (e - bias - (man_bits - 2))
    top = (1 << (man_bits - 1)) - 1
    return [max(-top, min(top, round_fraction(v / scale, mode))) for v in vals], e
