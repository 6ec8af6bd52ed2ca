"""Integer multiply-accumulate: the int8 / int4 baseline.

Signed ``a_bits`` x ``b_bits`` two's complement products are summed into an ``acc_width``
two's complement accumulator. A ``last`` flag on an input term closes one output: the
output is the sum of the terms since the previous ``last`` (inclusive of this one), and
the next term starts a new sum from zero.

Overflow wraps: the output is the exact sum reduced modulo ``2**acc_width`` into
``[-2**(acc_width-1), 2**(acc_width-1))``, which is what a two's complement adder of that
width computes. The default ``acc_width = a_bits + b_bits + 16`` never wraps for groups of
up to ``2**16`` terms (the largest product magnitude is ``2**(a_bits+b_bits-2)``).
"""

from __future__ import annotations

from collections.abc import Iterable

from .format import check_int

__all__ = ["INT_FORMATS", "MAX_ACC_BITS", "MAX_INT_BITS", "check_int_mac", "default_acc_bits",
           "int_mac", "wrap"]

#: Widest operand.
MAX_INT_BITS = 24
#: Widest accumulator.
MAX_ACC_BITS = 64
#: Extra accumulator bits of the default: 2**16 terms never wrap.
DEFAULT_HEADROOM = 16

#: Presets: name -> (a_bits, b_bits).
INT_FORMATS = {"int8": (8, 8), "int4": (4, 4)}


def default_acc_bits(a_bits: int, b_bits: int) -> int:
    """``a_bits + b_bits + 16``."""
    return a_bits + b_bits + DEFAULT_HEADROOM


def check_int_mac(a_bits: int, b_bits: int, acc_width: int | None) -> int:
    """Validate the widths; return ``acc_width`` (its default when None).

    Raises
    ------
    TypeError
        If a width is not an integer.
    ValueError
        If ``a_bits`` or ``b_bits`` is outside 2 to 24, or ``acc_width`` outside
        ``a_bits + b_bits`` (one full product) to 64.
    """
    check_int("a_bits", a_bits, 2, MAX_INT_BITS)
    check_int("b_bits", b_bits, 2, MAX_INT_BITS)
    if acc_width is None:
        return default_acc_bits(a_bits, b_bits)
    return check_int("acc_width", acc_width, a_bits + b_bits, MAX_ACC_BITS)


def wrap(value: int, bits: int) -> int:
    """``value`` reduced modulo ``2**bits`` to the signed range."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def int_mac(a: Iterable[int], b: Iterable[int], last: Iterable[int], *, a_bits: int,
            b_bits: int, acc_width: int | None = None) -> list[int]:
    """Sums of products ``a * b`` over each group closed by ``last``, wrapped to
    ``acc_width`` bits; one entry per term whose ``last`` is 1 (terms after the final
    ``last`` give nothing).

    Raises
    ------
    ValueError
        If a width is invalid or an operand does not fit its width.
    """
    acc_width = check_int_mac(a_bits, b_bits, acc_width)
    out, acc = [], 0
    for x, y, end in zip(a, b, last, strict=True):
        for name, v, bits in (("a", x, a_bits), ("b", y, b_bits)):
            if not -(1 << (bits - 1)) <= v < (1 << (bits - 1)):
                raise ValueError(f"{name} = {v} does not fit signed({bits})")
        acc = wrap(acc + x * y, acc_width)
        if end:
            out.append(acc)
            acc = 0
    return out
