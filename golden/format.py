"""The MXINT block number format.

An MXINT(m, e, k) block holds ``k`` elements that share one exponent:

* each element is an ``m``-bit two's complement integer ``P`` (sign included);
* the block has one ``e``-bit shared exponent code ``E`` with bias ``2**(e-1) - 1``;
* the all-ones code ``2**e - 1`` means NaN (as the OCP MX v1.0 E8M0 scale);
* element value = ``P * 2**(E - bias - (m - 2))``.

With ``m = 8, e = 8, k = 32`` this is exactly OCP MXINT8: an int8 element read as a
fixed-point number with one integer bit and six fraction bits (Q1.6), scaled by
``2**(E - 127)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MXIntFormat", "check_choice", "check_int"]

#: Widest element the generator accepts. Products of two such elements still fit the
#: 64-bit integers the golden model computes with, even summed over the largest block.
MAX_MAN_BITS = 24
#: Widest shared exponent. 8 bits covers every finite float32 exponent exactly (OCP E8M0).
MAX_EXP_BITS = 8
#: Largest block size.
MAX_BLOCK = 1024


def check_int(name: str, value: object, lo: int, hi: int | None = None) -> int:
    """Validate an integer parameter and return it.

    Raises
    ------
    TypeError
        If ``value`` is not an ``int`` (``bool`` is refused too).
    ValueError
        If ``value`` is outside ``[lo, hi]``.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        allowed = f"at least {lo}" if hi is None else f"from {lo} to {hi}"
        raise ValueError(f"{name} must be {allowed}, not {value}")
    return value


def check_choice(name: str, value: object, allowed: Sequence[str]) -> str:
    """Validate a choice parameter and return it.

    Raises
    ------
    TypeError
        If ``value`` is not a ``str``.
    ValueError
        If ``value`` is not one of ``allowed``.
    """
    choices = ", ".join(repr(a) for a in allowed)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, one of {choices}; not {value!r}")
    if value not in allowed:
        raise ValueError(f"{name} must be one of {choices}, not {value!r}")
    return value


@dataclass(frozen=True)
class MXIntFormat:
    """An MXINT(m, e, k) block format.

    Parameters
    ----------
    man_bits : int
        ``m``, bits of each element including its sign, 2 to 24. ``m = 1`` is refused
        because symmetric saturation to ``±(2**(m-1) - 1)`` leaves only zero.
    exp_bits : int
        ``e``, bits of the shared exponent code, 2 to 8.
    block : int
        ``k``, elements per shared exponent, 1 to 1024.

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is out of range.
    """

    man_bits: int
    exp_bits: int = 8
    block: int = 32

    def __post_init__(self) -> None:
        check_int("man_bits", self.man_bits, 2, MAX_MAN_BITS)
        check_int("exp_bits", self.exp_bits, 2, MAX_EXP_BITS)
        check_int("block", self.block, 1, MAX_BLOCK)

    @property
    def bias(self) -> int:
        """Exponent bias, ``2**(e-1) - 1``."""
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def nan_code(self) -> int:
        """The all-ones exponent code, which marks a NaN block."""
        return (1 << self.exp_bits) - 1

    @property
    def max_code(self) -> int:
        """Largest finite exponent code, ``2**e - 2``."""
        return self.nan_code - 1

    @property
    def max_man(self) -> int:
        """Largest element magnitude after saturation, ``2**(m-1) - 1``."""
        return (1 << (self.man_bits - 1)) - 1

    @property
    def frac_bits(self) -> int:
        """Fraction bits of an element, ``m - 2``: ``P`` is read as a Q1.(m-2) number."""
        return self.man_bits - 2

    def scale_exponent(self, code: int) -> int:
        """Power of two that one unit of ``P`` weighs at exponent code ``code``."""
        return code - self.bias - self.frac_bits

    @property
    def bits_per_element(self) -> float:
        """Storage per element, ``m + e / k``."""
        return self.man_bits + self.exp_bits / self.block

    @property
    def memory_density(self) -> float:
        """Memory density over fp32 as the EMNLP 2023 paper defines it: ``32 / (m + e/k)``."""
        return 32 / self.bits_per_element

    @property
    def name(self) -> str:
        """Short name such as ``mxint6e8k16``."""
        return f"mxint{self.man_bits}e{self.exp_bits}k{self.block}"
