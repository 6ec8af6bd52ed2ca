"""Exponent-sum placement: the bit-heap entry of a product of minifloat elements with three
or more exponent bits (E3M2, E4M3), used by :class:`hw.bitheap.SumOfProducts`.

An element code ``(s, e, m)`` (sign, ``E``-bit exponent field, ``M``-bit mantissa) stands
for the fixed-point integer (:mod:`golden.minifloat`)

    ``P = (-1)**s * g << x``,  ``g = (e != 0) * 2**M + m``,  ``x = max(e - 1, 0)``,

(``g`` the significand with its implicit bit, ``x`` the shift; a subnormal, ``e = 0``, has
the shift of ``e = 1`` and no implicit bit; a special code has ``g = 0``). An integer
operand is ``g`` itself (two's complement) with ``x = 0``. So a product is

    ``P_a * P_b = q << X``,  ``q = (-1)**(s_a ^ s_b) * g_a * g_b``,  ``X = x_a + x_b``,

and its entry into the heap costs, per MAC:

1. ``q``, a signed integer of ``(M_a + 1) + (M_b + 1) + 1`` bits, a table of the two sign
   bits and significands when that is at most :data:`TABLE_INPUTS` inputs (each output bit
   is then one small LUT network that ABC optimises whole), otherwise a multiplication;
   ``X`` beside it, from the two exponent fields;
2. a logarithmic shifter: stage ``j`` shifts by ``0, 1, 2 or 3`` times ``4**j`` as ``X``'s
   bits ``2j, 2j + 1`` say (a 4:1 multiplexer, one 6-input LUT per output bit; a last
   stage of one select bit is a 2:1 multiplexer), the word sign-extended and cut at the
   width the largest ``X`` can reach;
3. the shifted word ``y`` (``F`` bits, two's complement) enters the heap as its ``F - 1``
   low bits and the complement of its sign bit at column ``F - 1``, with the constant
   ``-2**(F - 1)`` (``y = low - y_top 2**(F-1) = low + (1 - y_top) 2**(F-1) - 2**(F-1)``).

``F = w_q + X_max`` bits per MAC is the fewest a MAC can put into one heap whose columns
must hold any of its ``X_max + 1`` placements; weight *buckets* (a one-hot of ``X``'s top
bits gating copies of the word into offset columns) would replace the last multiplexer
stage by more heap bits, each still one LUT, so they cost more in our compressor, where a
heap bit costs about one LUT (measured: docs/arithmetic.md).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Mux, Signal, Value, signed, unsigned

from golden.minifloat import ElementFormat

__all__ = ["MIN_PLACED_EXP_BITS", "TABLE_INPUTS", "Placement", "placed"]

#: Elements with at least this many exponent bits are placed by their exponent sum.
MIN_PLACED_EXP_BITS = 3
#: Largest number of inputs of the significand product's table.
TABLE_INPUTS = 10


def placed(a_element: ElementFormat | None, b_element: ElementFormat | None) -> bool:
    """Whether a product of these operands is entered by exponent-sum placement: one of
    them is a minifloat with at least :data:`MIN_PLACED_EXP_BITS` exponent bits."""
    return any(e is not None and e.exp_bits >= MIN_PLACED_EXP_BITS
               for e in (a_element, b_element))


class _Side:
    """One operand's decomposition: the significand (with sign) and the shift range."""

    def __init__(self, element: ElementFormat | None, bits: int):
        self.element = element
        if element is None:
            self.inputs = bits          # the two's complement integer itself
            self.lo, self.hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
            self.x_max = 0
        else:
            man = element.man_bits
            self.inputs = man + 2       # sign and significand
            self.hi = (2 << man) - 1
            self.lo = -self.hi
            self.x_max = max(0, element.emax + element.bias - 1)

    def value_of(self, index: int) -> int:
        """The signed significand a table index part stands for."""
        if self.element is None:
            return index - (1 << self.inputs) if index >> (self.inputs - 1) else index
        g = index >> 1
        return -g if index & 1 else g

    def split(self, code: Value) -> tuple[Value, Value]:
        """``(table input, shift x)`` of one element: ``Cat(sign, g)`` and ``x`` for a
        minifloat (``g = 0`` for a special code), the integer and 0 otherwise."""
        element = self.element
        if element is None:
            return code.as_unsigned(), Value.cast(0)
        man, eb = element.man_bits, element.exp_bits
        m, e, s = code[:man], code[man:man + eb], code[man + eb]
        top = (1 << eb) - 1
        if element.specials == "ieee":      # infinities and NaNs: exponent field all ones
            special = e == top
        elif element.specials == "nan":     # NaN: S.1..1.1..1
            special = (e == top) & (m == (1 << man) - 1)
        else:
            special = Value.cast(0)
        g = Mux(special, 0, Cat(m, e != 0))
        x = Mux(e == 0, 0, e - 1)
        return Cat(s, g[:man + 1]), x[:max(1, self.x_max.bit_length())]


class Placement:
    """Plan and build of the placed entry of ``k`` products (see the module notes).

    Members
    -------
    q_shape : Shape
        The signed significand product.
    x_max : int
        Largest shift ``X``.
    field : int
        ``F``, the bits of the shifted word (``w_q + x_max``).
    stages : list of (int, int)
        Shifter stages, each ``(first select bit, select bits)``.
    levels : int
        Logic levels: the product (one), then one per shifter stage.
    """

    def __init__(self, *, a_element: ElementFormat | None, a_bits: int,
                 b_element: ElementFormat | None, b_bits: int):
        self.a, self.b = _Side(a_element, a_bits), _Side(b_element, b_bits)
        products = [x * y for x in (self.a.lo, self.a.hi) for y in (self.b.lo, self.b.hi)]
        lo, hi = min(products), max(products)
        self.q_shape = signed(max((-lo - 1).bit_length(), hi.bit_length()) + 1)
        self.x_max = self.a.x_max + self.b.x_max
        self.field = self.q_shape.width + self.x_max
        xb = self.x_max.bit_length()
        self.stages = [(j, min(2, xb - j)) for j in range(0, xb, 2)]
        self.levels = 1 + len(self.stages)
        self.table = self.a.inputs + self.b.inputs <= TABLE_INPUTS

    def constant(self, block: int) -> int:
        """The entries' constant, ``-block * 2**(F - 1)`` (unreduced)."""
        return -block << (self.field - 1)

    def columns_of(self) -> list[int]:
        """Columns of one MAC's heap bits (one bit each), low to high."""
        return list(range(self.field))

    def product(self, m, a_code: Value, b_code: Value, name: str) -> tuple[Value, Value]:
        """Level 1: the signed significand product ``q`` and the shift ``X``."""
        ai, xa = self.a.split(a_code)
        bi, xb = self.b.split(b_code)
        q = Signal(self.q_shape, name=f"{name}_q")
        if self.table:
            from .bitheap import _lookup
            w = self.q_shape.width
            values = [self.a.value_of(i & ((1 << self.a.inputs) - 1)) *
                      self.b.value_of(i >> self.a.inputs)
                      for i in range(1 << (self.a.inputs + self.b.inputs))]
            m.d.comb += q.eq(_lookup([v % (1 << w) for v in values], Cat(ai, bi), w))
        else:
            m.d.comb += q.eq(self._signed(ai, self.a) * self._signed(bi, self.b))
        x = Signal(unsigned(max(1, self.x_max.bit_length())), name=f"{name}_x")
        m.d.comb += x.eq(xa + xb)
        return q, x

    @staticmethod
    def _signed(index: Value, side: _Side) -> Value:
        if side.element is None:
            return index.as_signed()
        g = index[1:].as_unsigned()
        return Mux(index[0], -g, g)

    def shift(self, m, word: Value, x: Value, stage: int, name: str) -> Value:
        """One shifter stage: ``word << (x[lsb:lsb+n] << lsb)``, sign-extended, cut at the
        width the largest shift so far can reach."""
        lsb, n = self.stages[stage]
        reach = min(self.x_max, ((1 << (lsb + n)) - 1))
        out = Signal(signed(self.q_shape.width + reach), name=f"{name}_s{stage}")
        options = [(word << (v << lsb)) for v in range(1 << n)]
        sel = x[lsb:lsb + n]
        value = options[0]
        for v in range(1, 1 << n):
            value = Mux(sel == v, options[v], value)
        if stage == len(self.stages) - 1:  # the last: its sign bit complemented (note 3)
            out = Signal(unsigned(self.field), name=f"{name}_y")
            value = value ^ (1 << (self.field - 1))
        m.d.comb += out.eq(value)
        return out

    def bits(self, word: Value) -> list[Value]:
        """The heap bits of the last stage's word (its sign bit already complemented)."""
        return [word[j] for j in range(self.field)]
