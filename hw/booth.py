"""Radix-4 Booth product of two signed integers, as rows added by carry chains.

The integer baselines' multiplier (:class:`hw.int_mac.IntMultiplyAccumulate`,
``multiplier="booth"``). For one product it is smaller than the bit heap of
:mod:`hw.bitheap`, whose tiles and counters pay off when many products share one heap.

Arithmetic. ``b`` (``n`` bits, signed) is sign-extended to an even width ``2d`` and
recoded into ``d`` digits ``q_i = -2 b[2i+1] + b[2i] + b[2i-1]`` in ``{-2, ..., 2}``
(``b[-1] = 0``), so that ``b = sum_i q_i 4**i`` and ``a * b = sum_i q_i a 4**i``. Row ``i``
is ``q_i a`` in ones' complement: the ``m + 2`` bits (``m`` the width of ``a``, sign
extended by two) ``r_i[j] = ((one_i & a[j]) | (two_i & a[j-1])) ^ neg_i`` with
``one_i = b[2i] ^ b[2i-1]`` (``|q_i| = 1``), ``two_i`` (``|q_i| = 2``) and
``neg_i = b[2i+1]``, read as a signed number: ``r_i = q_i a - neg_i`` (for ``q_i = 0``
with ``neg_i = 1``, ``r_i = -1``). So ``a * b = sum_i (r_i + neg_i) 4**i``. Each bit of
``r_i`` is a function of five inputs (one LUT). The ``+ neg_i`` goes into the two free
low columns of the next row: row ``i + 1`` enters as the number ``Cat(neg_i, 0, r_{i+1})``
at weight ``4**i``; the last ``neg`` is added by itself. The rows are then summed by a
balanced tree of two-input adders (carry chains), each only as wide as its operands.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, Value, signed

__all__ = ["booth_product"]


def booth_product(m: Module, a: Value, b: Value, *, name: str) -> Value:
    """``a * b`` exactly (``len(a) + len(b)`` bits, signed) for signed ``a`` and ``b``,
    built as described in the module docstring; combinational, in ``m``.

    Parameters
    ----------
    m : Module
        Where the rows and adders go.
    a, b : Value
        Signed operands of at least 2 bits; ``b`` is the recoded one.
    name : str
        Prefix of the signals made.
    """
    width_a, width_b = len(a), len(b)
    digits = (width_b + 1) // 2
    ax = [Const(0, 1)] + [a[j] for j in range(width_a)] + [a[-1]] * 2
    bx = [Const(0, 1)] + [b[j] for j in range(width_b)] + [b[-1]] * (2 * digits - width_b)
    rows, negs = [], []
    for i in range(digits):
        low, mid, high = bx[2 * i], bx[2 * i + 1], bx[2 * i + 2]
        one = Signal(name=f"{name}_one{i}")
        two = Signal(name=f"{name}_two{i}")
        m.d.comb += [one.eq(mid ^ low), two.eq((high & ~mid & ~low) | (~high & mid & low))]
        row = Signal(signed(width_a + 2), name=f"{name}_row{i}")
        m.d.comb += row.eq(Cat(*(((one & ax[j + 1]) | (two & ax[j])) ^ high
                                 for j in range(width_a + 2))))
        rows.append(row)
        negs.append(high)
    # Terms (value, weight exponent): row 0, then row i with neg_{i-1} below it.
    terms: list[tuple[Value, int]] = [(rows[0], 0)]
    terms += [(Cat(negs[i - 1], Const(0, 1), rows[i]).as_signed(), 2 * (i - 1))
              for i in range(1, digits)]
    terms.append((negs[-1].as_unsigned(), 2 * (digits - 1)))
    level = 0
    while len(terms) > 1:
        paired = []
        for t in range(0, len(terms) - 1, 2):
            (x, wx), (y, wy) = terms[t], terms[t + 1]
            low_weight = min(wx, wy)
            total = (x << (wx - low_weight)) + (y << (wy - low_weight))
            node = Signal(signed(len(total)), name=f"{name}_sum{level}_{t // 2}")
            m.d.comb += node.eq(total)
            paired.append((node, low_weight))
        if len(terms) % 2:
            paired.append(terms[-1])
        terms = paired
        level += 1
    value, weight = terms[0]
    product = Signal(signed(width_a + width_b), name=f"{name}_product")
    m.d.comb += product.eq(value << weight)
    return product
