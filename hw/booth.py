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

from golden.format import check_int

__all__ = ["BOOTH_CHAINS", "MAX_OPERAND_BITS", "BoothChains", "booth_product"]

#: Carry chains that :class:`BoothChains` sums its rows in, side by side. For the fp32
#: 24 x 24 product on xc7, an early form (rows added, three-operand final sum) took 439
#: LUTs with two chains against 412 with one chain of 13 steps (13 registers deep) and
#: 605 with three; two keeps the latency at 8.
BOOTH_CHAINS = 2
#: Widest operand of :class:`BoothChains` (the fp32 significand is 24 bits).
MAX_OPERAND_BITS = 32


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
    as in :func:`booth_product`, ``a * b = sum_i q_i a 4**i``; the top digit's sign bit
    ``neg_{d-1}`` is always 0. Every row is *subtracted*: row ``i`` is ``-q_i a`` in ones'
    complement, the ``w = wa + 2`` bits ``r[j] = ((one_i & a[j]) | (two_i & a[j-1])) ^ n_i``
    with ``n_i = ~neg_i``, read as a signed number ``r_i = -q_i a - n_i``, so
    ``q_i a = -r_i - n_i``. A signed row is ``u + ~s 2**(w-1) - 2**(w-1)`` (``u`` its low
    ``w - 1`` bits, ``s`` its sign), so the subtrahend ``Y_i`` is ``u`` with ``~s`` above it
    at weight ``4**i``, plus ``n_{i-1}`` in the free column ``2i - 2`` below it, and
    ``a * b = K - sum_i Y_i`` with the constant ``K = sum_i 2**(2i + w - 1) - 4**(d-1)``
    (the last ``n_{d-1} = 1``), modulo ``2**(wa + wb)``: exact, as the product is below it.

    The rows are split into :data:`BOOTH_CHAINS` runs of consecutive rows (*chains*); each
    step of a chain is one subtraction ``acc - Y_i`` in one carry chain and one register.
    Yosys puts the minuend ``acc`` (a register) on the carry chain's bypass input, so each
    column's LUT computes the row bit (five inputs) and the propagate bit together: one
    6-input LUT per row bit, no adder LUTs. A step is only as wide as its operands plus one
    column ``t``: ``Cat(x, 1) - Cat(y, 0)`` (``x, y < 2**t``) keeps ``x - y + 2**t``
    exactly, its top bit the carry out, and ``-2**t`` goes into ``K`` (a step that would
    pass the product's top column is taken modulo ``2**(wa + wb)`` instead). So no column
    of a chain subtracts a constant from a lone register bit (an inverter on xc7). ``K``'s
    bits take the free columns of the chains' first minuends (constants) and, above chain
    0, the final adder's first operand, which adds the chains' results at their weights.

    Latency: a register after every chain step (``a`` and ``b`` travel beside) and after
    the final sum: :attr:`stages` registers.

    Parameters
    ----------
    wa, wb : int
        Widths of the unsigned operands, 1 to :data:`MAX_OPERAND_BITS`.

    Raises
    ------
    TypeError, ValueError
        If a width is not an integer or out of range.

    Members
    -------
    stages : int
        Registers from the operands to the product.
    """

    def __init__(self, wa: int, wb: int) -> None:
        check_int("wa", wa, 1, MAX_OPERAND_BITS)
        check_int("wb", wb, 1, MAX_OPERAND_BITS)
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

        # Every row is subtracted (see the class notes). Constant terms, collected in k:
        # each row's sign term 2**(2i + w - 1); the last row's -~neg (always 1, as b is
        # zero-extended); and -2**t for each difference's top bit t (below).
        k = sum(1 << (2 * i + w - 1) for i in range(self.digits)) - (1 << 2 * (self.digits - 1))

        def subtrahend(av, bv, i, lo, hi):
            """Columns ``lo..hi`` of Y_i: ``-q_i a``'s row with its sign bit complemented,
            and ``~neg_{i-1}`` two columns below it."""
            one, two, high = digit(bv, i)
            r = row(av, one, two, ~high)
            bits = {2 * i + j: r[j] for j in range(w - 1)}
            bits[2 * i + w - 1] = ~r[w - 1]
            if i > 0:
                bits[2 * i - 2] = ~digit(bv, i - 1)[2]
            return word(bits, lo, hi)

        # A difference is only as wide as its operands plus one column t, where
        # Cat(x, 1) - Cat(y, 0) keeps x - y + 2**t (x, y < 2**t): its top bit is the carry
        # out, and no column of a chain holds a constant or a lone inverted bit. A
        # difference that reaches the product's top column is taken modulo 2**width.
        plan = []   # per chain: (lo, [(row, top column, whether the trick is used)])
        for chain in self.chains:
            lo, top, steps = max(2 * chain[0] - 2, 0), -1, []
            for i in chain:
                want = max(top, min(2 * i + w - 1, width - 1)) + 1
                trick = want <= width - 1
                top = want if trick else width - 1
                steps.append((i, top, trick))
                if trick:
                    k -= 1 << top
            plan.append((lo, steps))
        k %= 1 << width
        # k's bits go into the first differences' spare minuends (chain c's first step
        # covers columns lo_c .. top - 1), the rest on the final adder's first operand.
        starts = [0] * len(plan)
        for q in range(width):
            if not k >> q & 1:
                continue
            for c, (lo, steps) in enumerate(plan):
                if lo <= q < steps[0][1] + (0 if steps[0][2] else 1):
                    starts[c] |= 1 << (q - lo)
                    k -= 1 << q
                    break
        accs = []
        for c, (lo, steps) in enumerate(plan):
            i, top, trick = steps[0]
            x = (Cat(Const(starts[c], top - lo), Const(1, 1)) if trick
                 else Const(starts[c], top + 1 - lo))
            diff = Signal(top + 1 - lo, name=f"{name}_ch{c}_d0")
            m.d.comb += diff.eq(x - subtrahend(a, b, i, lo, top - (1 if trick else 0)))
            accs.append(register(diff, f"{name}_ch{c}_r0"))
        av, bv = a, b
        for step in range(1, max(len(chain) for chain in self.chains)):
            # a and b travel beside the chains, one register per step
            av, bv = register(av, f"{name}_a{step}"), register(bv, f"{name}_b{step}")
            for c, (lo, steps) in enumerate(plan):
                acc = accs[c]
                if step >= len(steps):   # a shorter chain's sum waits
                    accs[c] = register(acc, f"{name}_ch{c}_r{step}")
                    continue
                i, top, trick = steps[step]
                x = (Cat(acc, Const(0, top - lo - len(acc)), Const(1, 1)) if trick
                     else Cat(acc, Const(0, top + 1 - lo - len(acc))))
                diff = Signal(top + 1 - lo, name=f"{name}_ch{c}_d{step}")
                m.d.comb += diff.eq(x - subtrahend(av, bv, i, lo, top - (1 if trick else 0)))
                accs[c] = register(diff, f"{name}_ch{c}_r{step}")
        first = accs[0]
        assert k % (1 << len(first)) == 0, "a constant bit found no free column"
        total = Cat(first, Const(k >> len(first), width - len(first)))
        for acc, (lo, _) in zip(accs[1:], plan[1:], strict=True):
            total = total + (acc << lo)
        product = Signal(width, name=f"{name}_sum")
        m.d.comb += product.eq(total[:width])
        return register(product, f"{name}_sum_r")
