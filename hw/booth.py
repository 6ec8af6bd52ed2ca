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

__all__ = ["BOOTH_CHAINS", "BoothChains", "booth_product"]

#: Carry chains that :class:`BoothChains` sums its rows in, side by side: two were the
#: fewest LUTs for the fp32 24 x 24 product on xc7 (439 LUTs, against 412 for one chain
#: of 13 steps and 605 for three).
BOOTH_CHAINS = 2


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


class BoothChains:
    """The exact unsigned ``wa`` x ``wb``-bit product ``a * b`` as radix-4 Booth rows summed
    by a few registered carry chains, one row per chain step: the significand product of
    :class:`hw.fp_mac.FloatMultiplyAdd` (``multiplier="booth"``).

    Arithmetic. ``b`` (zero-extended) is recoded into ``d = (wb + 2) // 2`` digits ``q_i``
    as in :func:`booth_product`, ``a * b = sum_i q_i a 4**i``. Row ``i`` is ``n_i``-complemented
    ``|q_i| a``: the ``w = wa + 2`` bits ``r[j] = ((one_i & a[j]) | (two_i & a[j-1])) ^ n_i``,
    read as a signed number, ``r = (1 - 2 n_i) |q_i| a - n_i``. The digits are split into
    :data:`BOOTH_CHAINS` runs of consecutive rows (a *chain*). A chain's first row is
    added (``n = neg_i``, so ``r = q_i a - neg_i``), every later row subtracted
    (``n = ~neg_i``, so ``r = -q_i a - ~neg_i``), each in one carry chain: ``acc - Y``,
    whose LUT per column computes the row bit and the propagate bit together (Yosys maps
    ``A - B`` with ``A`` = the registered ``acc`` on the carry chain's bypass input, so the
    row bit, a function of five inputs, and ``acc``'s bit fit one 6-input LUT). A
    signed row enters as ``u + ~s 2**(w-1) - 2**(w-1)`` (``u`` its low ``w - 1`` bits,
    ``s`` its sign): the ``-2**(w-1)`` at its weight (``+`` for a subtracted row) goes
    into one constant ``K``. The ``- n_{i-1}`` term of the row before (``+neg_{i-1}`` for a
    chain's first row, written ``-~neg_{i-1} + 1`` with the ``1`` in ``K``) sits in row
    ``i``'s two free columns below it, and the chain's last one is added at the end:
    ``a * b = K + sum_c acc_c 4**i0_c - sum_c ~neg_{last_c} 4**last_c (mod 2**(wa + wb))``,
    exact because the product is below ``2**(wa + wb)``.

    Latency: a register after each chain's first row (with ``a`` and ``b``), after every
    chain step, and after the final sum: :attr:`stages` registers.

    Parameters
    ----------
    wa, wb : int
        Widths of the unsigned operands, at least 1.

    Members
    -------
    stages : int
        Registers from the operands to the product.
    """

    def __init__(self, wa: int, wb: int) -> None:
        self.wa, self.wb = wa, wb
        self.digits = (wb + 2) // 2
        per = -(-self.digits // BOOTH_CHAINS)
        self.chains = [list(range(c, min(c + per, self.digits)))
                       for c in range(0, self.digits, per)]
        self.stages = max(len(chain) for chain in self.chains) + 1

    def build(self, m: Module, register, a: Value, b: Value, name: str = "mul") -> Value:
        """The registered product of the unsigned ``wa``-bit ``a`` and ``wb``-bit ``b``;
        ``register(value, name)`` makes one pipeline register."""
        wa, wb, width = self.wa, self.wb, self.wa + self.wb
        w = wa + 2
        zero = Const(0, 1)

        def digit(bv, i):
            bx = [zero] + [bv[j] for j in range(wb)] + [zero] * (2 * self.digits - wb)
            low, mid, high = bx[2 * i], bx[2 * i + 1], bx[2 * i + 2]
            return mid ^ low, (high & ~mid & ~low) | (~high & mid & low), high

        def row(av, one, two, n):
            ax = [zero] + [av[j] for j in range(wa)] + [zero] * 2
            return [((one & ax[j + 1]) | (two & ax[j])) ^ n for j in range(w)]

        def word(bits: dict, lo: int, hi: int) -> Value:
            return Cat(*(bits.get(c, zero) for c in range(lo, hi + 1)))

        k = 0
        accs, lasts = [], []
        for c, chain in enumerate(self.chains):
            i0 = chain[0]
            one, two, high = digit(b, i0)
            r = row(a, one, two, high)
            bits = {2 * i0 + j: r[j] for j in range(w - 1)}
            bits[2 * i0 + w - 1] = ~r[w - 1]
            k += (1 << 2 * i0) - (1 << (2 * i0 + w - 1))
            acc = register(word(bits, 2 * i0, width - 1), f"{name}_ch{c}_r0")
            accs.append((acc, 2 * i0))
            lasts.append(i0)
        steps = max(len(chain) for chain in self.chains)
        av, bv = a, b
        for step in range(1, steps):
            # a and b travel beside the chains, one register per step
            av, bv = register(av, f"{name}_a{step}"), register(bv, f"{name}_b{step}")
            for c, chain in enumerate(self.chains):
                if step >= len(chain):   # a shorter chain's sum waits
                    acc, lo = accs[c]
                    accs[c] = (register(acc, f"{name}_ch{c}_r{step}"), lo)
                    continue
                i = chain[step]
                one, two, high = digit(bv, i)
                r = row(av, one, two, ~high)
                bits = {2 * i + j: r[j] for j in range(w - 1)}
                bits[2 * i + w - 1] = ~r[w - 1]
                bits[2 * i - 2] = ~digit(bv, lasts[c])[2]
                k += 1 << (2 * i + w - 1)
                acc, lo = accs[c]
                y = word(bits, lo, width - 1)
                diff = Signal(width - lo, name=f"{name}_ch{c}_d{step}")
                m.d.comb += diff.eq(acc - y)
                accs[c] = (register(diff, f"{name}_ch{c}_r{step}"), lo)
                lasts[c] = i
        bv = register(bv, f"{name}_b{steps}")
        total = Const(k % (1 << width), width)
        for acc, lo in accs:
            total = total + (acc << lo)
        for i in lasts:
            total = total - ((~digit(bv, i)[2]).as_unsigned() << 2 * i)
        product = Signal(width, name=f"{name}_sum")
        m.d.comb += product.eq(total[:width])
        return register(product, f"{name}_sum_r")
