"""Integer k-lane dot product with accumulator: the int8 / int4 baseline of the MXINT unit.

Each input carries ``k`` signed ``a_bits`` integers ``a_i``, ``k`` signed ``b_bits``
integers ``b_i`` and a ``last`` flag. Its exact sum of products ``S = sum_i a_i * b_i``
(in ``sum_bits`` bits, :func:`int_dot_sum_bits`) is added to an ``acc_width`` two's
complement accumulator. An input with ``last = 1`` closes one output: the sum of ``S``
over the inputs since the previous ``last`` (this one included); the next input starts a
new sum from zero.

Overflow wraps, as in :mod:`golden.int_mac`: the output is the exact sum reduced modulo
``2**acc_width`` into ``[-2**(acc_width-1), 2**(acc_width-1))``. The default
``acc_width = sum_bits + 16`` (capped at 64) never wraps for groups of up to ``2**16``
inputs; with the cap, up to ``2**(64 - sum_bits)`` inputs.

With ``k = 1`` this is :func:`golden.int_mac.int_mac`, default width included.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .dot import dot_sum_range
from .format import MAX_BLOCK, check_int
from .int_mac import DEFAULT_HEADROOM, MAX_ACC_BITS, check_int_mac, wrap

__all__ = ["check_int_dot", "default_int_dot_acc_bits", "int_dot", "int_dot_sum_bits"]


def int_dot_sum_bits(a_bits: int, b_bits: int, block: int) -> int:
    """Two's complement width of the range of one input's ``S = sum_i a_i * b_i``
    (:func:`golden.dot.dot_sum_range`), e.g. 20 for int8 with ``k = 16``."""
    lo, hi = dot_sum_range(a_bits, b_bits, block)
    return 1 + max((-lo - 1).bit_length(), hi.bit_length())


def default_int_dot_acc_bits(a_bits: int, b_bits: int, block: int) -> int:
    """``int_dot_sum_bits + 16``, at most 64."""
    return min(int_dot_sum_bits(a_bits, b_bits, block) + DEFAULT_HEADROOM, MAX_ACC_BITS)


def check_int_dot(a_bits: int, b_bits: int, block: int, acc_width: int | None) -> int:
    """Validate the parameters; return ``acc_width`` (its default when None).

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If ``a_bits`` or ``b_bits`` is outside 2 to 24, ``block`` outside 1 to 1024, or
        ``acc_width`` outside ``a_bits + b_bits`` (one full product, as
        :func:`golden.int_mac.check_int_mac`) to 64.
    """
    check_int_mac(a_bits, b_bits, None)
    check_int("block", block, 1, MAX_BLOCK)
    if acc_width is None:
        return default_int_dot_acc_bits(a_bits, b_bits, block)
    return check_int_mac(a_bits, b_bits, acc_width)


def int_dot(a: Iterable[Sequence[int]], b: Iterable[Sequence[int]], last: Iterable[int], *,
            a_bits: int, b_bits: int, block: int, acc_width: int | None = None) -> list[int]:
    """Sums of ``sum_i a[n][i] * b[n][i]`` over the inputs ``n`` of each group closed by
    ``last``, wrapped to ``acc_width`` bits; one entry per input whose ``last`` is 1
    (inputs after the final ``last`` give nothing).

    Raises
    ------
    ValueError
        If a parameter is invalid, an input does not hold ``block`` values, or a value
        does not fit its width.
    """
    acc_width = check_int_dot(a_bits, b_bits, block, acc_width)
    out, acc = [], 0
    for n, (xs, ys, end) in enumerate(zip(a, b, last, strict=True)):
        for name, vs, bits in (("a", xs, a_bits), ("b", ys, b_bits)):
            if len(vs) != block:
                raise ValueError(f"{name}[{n}] holds {len(vs)} values, not block = {block}")
            for i, v in enumerate(vs):
                if not -(1 << (bits - 1)) <= v < (1 << (bits - 1)):
                    raise ValueError(f"{name}[{n}][{i}] = {v} does not fit signed({bits})")
        acc = wrap(acc + sum(x * y for x, y in zip(xs, ys, strict=True)), acc_width)
        if end:
            out.append(acc)
            acc = 0
    return out
