"""Exponent-sum placement: the bit-heap entry of a product of two minifloat elements, or of
one with three or more exponent bits (E3M2, E4M3) and any partner, used by
:class:`hw.bitheap.SumOfProducts`.

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
heap bit costs about one LUT.

4. *Sign last.* When both operands are minifloats, the last shifter stage is a 2:1
   multiplexer (when ``X`` has an even number of bits, the last 4:1 stage is split in two),
   ``q = g_a * g_b`` is shifted unsigned
   (one bit narrower) and the last stage's LUT (2:1 mux, sign ``s = s_a ^ s_b`` and
   ``kill``, five inputs) gives ``(x ^ s) & ~kill`` for each bit of the ``F``-bit word
   ``x = q << X``; with ``n = s & ~kill``, the two's complement ``(-1)**s x = (x ^ s) + n -
   n 2**F`` enters as the word, ``n`` at column 0, ``~n`` at column ``F`` and the constant
   ``-2**F``. A special code (``kill``) enters as 0, so its significand needs no gating.
5. *Magnitude table.* When the two magnitudes (codes without their sign) have at most six
   bits together (E2M1 x E2M1), ``|P_a| * |P_b|`` is one 6-input table per bit and the word
   is that product XOR ``s``, entered as in note 4 with no shifter.

6. *Tiled significand product.* With the sign last, ``g_a * g_b`` (unsigned) is one table
   when the two significands have at most six bits together (E3M2, E5M2: one 6-input LUT
   per bit); otherwise (E2M3, E4M3: 4 x 4 bits) the wider is cut into chunks of
   ``6 - len(g_b)`` bits, each chunk times ``g_b`` is a 6-input table, and the tables are
   added (``g_a[0:2] * g_b + (g_a[2:4] * g_b << 2)``, one carry-chain adder): two tables of
   6 bits and a 6-bit adder where the 8-input product took about twice as many LUTs.
7. *Shift per operand.* When both operands have two exponent bits (E2M3 with E2M3 or
   E2M1), ``x = max(e - 1, 0)`` takes three values, so the shifter is two stages of 3:1
   multiplexers, the first by ``x_a`` selected by ``e_a`` itself, the second by ``x_b``
   (with the sign and ``kill``: six inputs at most), and ``X = x_a + x_b`` is never formed.
8. *Sign first.* When both operands are minifloats and ``X`` has an odd number of bits,
   three or more (E4M3 with E4M3, E3M2, E2M3 or E2M1; E5M2 with E2M3 or E2M1), or six
   (E5M2 with E5M2, E4M3 or E3M2: stages 2:1, 2:1, 4:1, 4:1), the first
   stage is the 2:1 multiplexer on ``X``'s bit 0 and applies the sign and ``kill``
   (``(q << X[0]) ^ s`` and ``~kill``: five inputs); the later stages are 4:1
   multiplexers on two bits each whose vacated low bits and new high bits are filled
   with ``n = s & ~kill``, so the last word is ``(x ^ s) & ~kill`` as in note 4 and enters
   the same way. The 2:1 stage is then on the narrowest word rather than the widest
   (E4M3: stages of 9, 15 and 36 bits against 11, 23 and 36).
9. *Counted signs.* With the sign last, each MAC's value ``(x ^ s) + n - n 2**F`` puts
   ``n`` into the heap twice, at columns 0 and ``F``. With three or more shifter stages
   and ``n = s`` (no special codes: E3M2 with E3M2, E2M3 or E2M1; or zeroed specials,
   note 10: E4M3 or E5M2 with a minifloat, sign first, one level per stage), the ``n``
   are
   instead counted beside the later stages, from the registered signs: 6:3 counters over
   groups of six MACs, then over the first counts' bits of each weight, and each count
   ``c`` (``b`` bits, weight ``2**w``) enters as ``c`` at column ``w`` and as ``~c`` at
   ``F + w`` with the constant ``-(2**b - 1) 2**(F + w)``: k = 32 puts 18 bits into the
   heap for 64, for 26 counter LUTs. (E4M3 counted with ``n = s & ~kill``, twelve
   inputs a counter, measured slower on ECP5, 115.0 MHz against 135.2; note 10 removed
   the ``kill``.)
10. *Zeroed specials.* Where an operand has special codes (E4M3, E5M2), the sign comes
    first and a register follows every level (``levels_per_stage`` 1, the default of
    E4M3 x E4M3 and E5M2 x E4M3), the first stage zeroes a special's magnitude before
    applying the sign,
    ``((q << X[0]) & ~kill) ^ s`` (five inputs still), and the later stages fill with
    ``s``: a special then enters as ``(0 ^ s) + s - s 2**F = 0`` whatever its sign, so
    ``n = s`` and the signs are counted as in note 9 (E4M3 k32 at ``levels_per_stage`` 1:
    140.1 -> 134.3 LUTs/MAC, 168.0 -> 130.2 FFs/MAC). The block's ``nan`` is the OR of
    the codes' special tests beside the heap (:class:`hw.dot_product.MXIntDotProduct`).
    At two levels per stage the counted signs placed slower (E5M2 x E4M3 k32 100.5 MHz
    on ECP5, seed 1, against 132.4 with ``n`` per MAC; E4M3 x E2M1 was smaller, 90.2 ->
    85.6 LUTs/MAC on xc7, its clock not measured), so there ``n = s & ~kill`` stays.
11. *Chained words.* With zeroed specials and counted signs (note 10) for the pairs of
    :data:`CHAINED_PAIRS` (E4M3 x E4M3, E5M2 x E4M3, E5M2 x E5M2: its adders split, note
    12), the MACs go in chains of :data:`CHAIN_MACS`: the first MAC's word is registered as
    the chain's row, and the MAC at position ``d`` runs its later shifter stages ``d``
    levels late (its first stage's word held in registers) so that its last stage meets the
    row: the new row is ``row + y + 1``, written ``row - ~y`` (``~y`` over the row's width).
    The last stage is a 5-input function (two candidate bits, two select bits and the fill
    ``s``) and a carry-chain adder's LUT computes ``row_j ^ y_j`` with the plain ``row_j``
    as the carry chain's ``DI`` input (Yosys' xc7 map feeds ``DI`` from the minuend, and a
    subtraction keeps its operands' order, where an addition's were swapped), so the stage's
    multiplexer goes into the adder's LUTs: a chained MAC costs its last stage's LUTs and no
    heap bits. The ``+1`` of each adder is taken off the constant. The heap then holds ``k /
    CHAIN_MACS`` rows of ``F + log2(CHAIN_MACS)`` bits rather than ``k`` words of ``F``, and
    is reduced to two rows (the final adder then has no 3:2 level before its carry chain).
    E4M3 x E4M3 k32 at one level per stage: 134.3 -> 104.1 LUTs/MAC, 130.2 -> 153.7 FFs/MAC
    (the held words and the rows' registers), ECP5 172.7 -> 170.1 MHz (seed 1; its critical
    path a chain adder). Chains of four were 108.6 LUTs/MAC and 127.0 FFs/MAC, measured
    while the heap's plan left the sign counts out (so its final adder summed five rows:
    140.1 MHz), not re-measured.
12. *Split chain adders.* A chain whose row is wider than :data:`CHAIN_SPLIT_BITS`
    (E5M2 x E5M2: ``F = 64``, rows of 65 to 67 bits) has each adder in two halves at
    column ``h`` (half the chain's last row, rounded up; 34 at k = 32): the low half is
    ``row[:h] - ~y[:h]`` over ``h + 1`` bits, its top bit the carry into column ``h``,
    which is not propagated but registered beside the row and added as the carry into
    the next adder's high half, written ``{row[h:], c} - {~y[h:], 1}`` (the bits above
    the lowest are ``row[h:] + y[h:] + c``; the row stays the minuend, so the last
    shifter stage still folds into both halves' LUTs); the chain's last carry enters the
    heap as one bit at column ``h``. Each adder is then at most ``h + 1`` bits long, with
    no level or register more; the constant is unchanged (each adder still adds one, at
    column 0). The registers of each such chain load on a copy of the stall enable of
    their own, and the heap's registers after the chains (and the sign counts') on one
    more (:class:`hw.pipeline.StallPipeline` ``enables``), copy 0 left to the unit's
    control: with one enable the 6,800 enabled flip-flops' net was the critical path on
    ECP5 (``o.valid`` to ``advance``, ``b.ready``, ``fire``: 139.7 MHz, seed 1), and with
    the heap's columns spread over the chains' copies a copy's net was (134.4 MHz).
    Figures: docs/arithmetic.md ("E5M2 × E5M2").

Measured (xc7 LUT-only generic, k = 32, ``python -m benchmarks.formats``): see
docs/arithmetic.md.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Mux, Signal, Value, signed, unsigned

from golden.minifloat import ElementFormat

from .tables import ELEMENT_VALUES
from .tables import lookup as _lookup

__all__ = ["MIN_PLACED_EXP_BITS", "TABLE_INPUTS", "Placement", "element_fields",
           "element_value", "placed"]

#: Elements with at least this many exponent bits are placed by their exponent sum.
MIN_PLACED_EXP_BITS = 3
#: Largest number of inputs of the significand product's table.
TABLE_INPUTS = 8
#: Inputs of a LUT.
LUT_INPUTS = 6
#: Element pairs whose placed words are added in chains (note 11), either order.
CHAINED_PAIRS = frozenset({("e4m3", "e4m3"), ("e5m2", "e4m3"), ("e5m2", "e5m2")})
#: MACs per chain (note 11).
CHAIN_MACS = 8
#: A chain whose row is wider than this many bits has its adders split in two halves with
#: the carry between them saved in the row (note 12).
CHAIN_SPLIT_BITS = 64


def placed(a_element: ElementFormat | None, b_element: ElementFormat | None) -> bool:
    """Whether a product of these operands is entered by exponent-sum placement: one of
    them is a minifloat with at least :data:`MIN_PLACED_EXP_BITS` exponent bits."""
    if a_element is not None and b_element is not None:
        return True
    return any(e is not None and e.exp_bits >= MIN_PLACED_EXP_BITS
               for e in (a_element, b_element))


def element_fields(element: ElementFormat, code: Value
                   ) -> tuple[Value, Value, Value, Value]:
    """``(s, g, x, special)`` of a minifloat ``code``: its fixed-point integer is
    ``P = (-1)**s * g << x`` (module notes; ``g = 0`` for an infinity or NaN code, ``g``
    ``M + 1`` bits, ``x`` at most ``emax + bias - 1``), and whether the code is such a
    special code. The decomposition is the one the placed products use
    (:meth:`_Side.split`)."""
    side = _Side(element, element.width)
    index, x = side.split(code)
    return index[0], index[1:], x, side.special(code)


def element_value(element: ElementFormat, code: Value) -> tuple[Value, Value]:
    """``(P, special)`` of a minifloat ``code``: its fixed-point integer
    ``P = (-1)**s * g << x`` (signed, at most ``element.int_bits`` bits; 0 for an infinity
    or NaN code) and whether it is such a special code (:func:`element_fields`)."""
    s, g, x, special = element_fields(element, code)
    mag = g << x
    return Mux(s, -mag, mag), special


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

    def special(self, code: Value) -> Value:
        """Whether a minifloat code is an infinity or a NaN (it counts as 0)."""
        element = self.element
        man, eb = element.man_bits, element.exp_bits
        m, e = code[:man], code[man:man + eb]
        top = (1 << eb) - 1
        if element.specials == "ieee":      # infinities and NaNs: exponent field all ones
            return e == top
        if element.specials == "nan":       # NaN: S.1..1.1..1
            return (e == top) & (m == (1 << man) - 1)
        return Value.cast(0)

    def exponent(self, code: Value) -> Value:
        """The exponent field ``e`` of a minifloat code."""
        man, eb = self.element.man_bits, self.element.exp_bits
        return code[man:man + eb]

    def significand(self, code: Value) -> Value:
        """``g``: the mantissa field with the implicit bit (``e != 0``) above it."""
        man, eb = self.element.man_bits, self.element.exp_bits
        return Cat(code[:man], code[man:man + eb] != 0)

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
        Logic levels: the product (``product_levels``, one or two), then one per shifter
        stage, then one per chained MAC after a chain's first (note 11).
    chain : int
        MACs per chain of chained words (note 11), 1 when the words are not chained.

    ``block`` (the ``k`` products of the sum, default 1) bounds the chain's length.
    """

    def __init__(self, *, a_element: ElementFormat | None, a_bits: int,
                 b_element: ElementFormat | None, b_bits: int, levels_per_stage: int = 2,
                 block: int = 1):
        self.a, self.b = _Side(a_element, a_bits), _Side(b_element, b_bits)
        products = [x * y for x in (self.a.lo, self.a.hi) for y in (self.b.lo, self.b.hi)]
        lo, hi = min(products), max(products)
        self.q_shape = signed(max((-lo - 1).bit_length(), hi.bit_length()) + 1)
        both = a_element is not None and b_element is not None
        # Two minifloats whose magnitudes (code without the sign) make at most six bits
        # (E2M1 x E2M1): the magnitude product is one table, a 6-input LUT per bit (note 5).
        self.magnitude = both and a_element.width + b_element.width - 2 <= LUT_INPUTS
        self.x_max = 0 if self.magnitude else self.a.x_max + self.b.x_max
        self.x_bits = 0 if self.magnitude else max(1, self.x_max.bit_length())
        xb = self.x_max.bit_length()
        self.stages = [(j, min(2, xb - j)) for j in range(0, xb, 2)]
        if both and not self.magnitude and xb >= 2 and xb % 2 == 0:
            # Two minifloats: the last 4:1 stage split into two 2:1 stages so that the sign
            # goes last (note 4; E3M2 k32 88.4 -> 67.8 LUTs/MAC, the unsigned 3 x 3 product
            # being one 6-input LUT per bit where the signed one was an 8-input table;
            # 2:1, 4:1, 2:1 measured 77.1, 159.8 MHz on ECP5 against 149.5).
            self.stages = self.stages[:-1] + [(xb - 2, 1), (xb - 1, 1)]
        # Two minifloats of two exponent bits each (E2M3 with E2M3 or E2M1): shifted by x_a,
        # then by x_b, each stage a 3:1 multiplexer selected by the exponent field itself
        # (note 7): no exponent adder.
        self.per_operand = both and not self.magnitude and \
            a_element.exp_bits == 2 and b_element.exp_bits == 2
        if self.per_operand:
            self.x_bits = a_element.exp_bits + b_element.exp_bits
            self.stages = [(0, a_element.exp_bits), (a_element.exp_bits, b_element.exp_bits)]
        # Two minifloats whose X has an odd number of bits (3 or more): a first 2:1 stage
        # applies the sign, then 4:1 stages fill with it (note 8).
        self.sign_first = both and not self.magnitude and not self.per_operand and \
            (xb >= 3 and xb % 2 == 1 or xb >= 6)
        if self.sign_first:
            odd = (xb - 1) % 2
            self.stages = [(0, 1)] + [(1, 1)] * odd + \
                [(j, 2) for j in range(1 + odd, xb, 2)]
        # Two minifloats whose last stage is a 2:1 mux: the unsigned product is shifted and
        # the sign (and a special's zero) applied in the last stage's LUTs (note 4).
        self.sign_last = both and (self.magnitude or self.per_operand or self.sign_first or
                                   self.stages[-1][1] == 1)
        # A special code's magnitude is zeroed before the sign is applied, so that its
        # entry (0 ^ s) + s - s 2**F is 0 with n = s (note 10): E4M3, E5M2 with a
        # minifloat, with a register after every level (at two levels per stage the
        # counted signs measured slower: E5M2 x E4M3 100.5 MHz on ECP5 against 132.4).
        self.zeroed = levels_per_stage == 1 and both and self.sign_first and \
            not self.magnitude and any(e.specials != "none" for e in (a_element, b_element))
        if self.magnitude:
            self.q_shape = unsigned(max(a_element.max_int * b_element.max_int, 1).bit_length())
        elif self.sign_last:
            self.q_shape = unsigned(self.q_shape.width - 1)
        self.field = self.q_shape.width + self.x_max
        # E2M1 x E2M1's table and the sign's XOR count as two levels (a register after them
        # at levels_per_stage 2: ECP5 k32 150 -> 179 MHz, xc7 LUTs 28.8 -> 27.9 per MAC);
        # a product before a shifter as one (two: E4M3 k32 143 -> 133 MHz, 147.9 -> 155.6;
        # with the tiled product of note 6 and sign first, two was also the larger).
        self.product_levels = 2 if self.magnitude else 1
        self.levels = self.product_levels + len(self.stages)
        self.table = self.a.inputs + self.b.inputs <= TABLE_INPUTS
        # With the sign last, three or more shifter stages and no special codes (E3M2 with
        # E3M2, E2M3 or E2M1), the MACs' negation bits are counted beside the shifter, in
        # two levels of 6:3 counters, and the counts enter the heap (note 9; E3M2 k32 67.8
        # -> 66.2 LUTs/MAC, 47.0 -> 40.8 FFs, ECP5 149.5 -> 155.5 MHz). With one level,
        # E2M3 56.2 -> 56.4 and E2M1 27.9 -> 28.4, so those keep a bit per MAC. E4M3
        # with n = s & ~kill, counted over six MACs, measured 132.5 LUTs/MAC, 115.0 MHz
        # (over three: 133.5, 123.3 MHz, against 134.3, 135.2); with its specials zeroed
        # (note 10), n = s, at levels_per_stage 1: 140.1 -> 134.3 LUTs/MAC.
        self.counted = self.sign_last and len(self.stages) >= 3 and \
            (self.zeroed or all(e.specials == "none" for e in (a_element, b_element)))
        #: MACs per first-level counter (six signs, one 6-input LUT per count bit).
        self.sign_group = LUT_INPUTS
        #: Levels of the two counter levels: after the first shifter stage's level.
        self.count_level = self.levels - len(self.stages) + 2
        # Chained words (note 11): the pairs of CHAINED_PAIRS with their specials zeroed,
        # one level per stage: MACs in chains of CHAIN_MACS (at most the block), each
        # later MAC's last shifter stage folded into the carry-chain adder that adds its
        # word to the chain's row; one more level per MAC of a chain after the first.
        self.chain = min(CHAIN_MACS, block) if self.zeroed and self.counted and \
            ((a_element.name, b_element.name) in CHAINED_PAIRS or
             (b_element.name, a_element.name) in CHAINED_PAIRS) else 1
        self.levels += self.chain - 1

    def chains(self, block: int) -> list[list[int]]:
        """The MACs of each chain (note 11), in order: one MAC each unless chained."""
        return [list(range(lo, min(lo + self.chain, block)))
                for lo in range(0, block, self.chain)]

    def split_at(self, macs: int) -> int | None:
        """The column ``h`` at which the adders of a chain of ``macs`` words are split in
        two halves (note 12): half its row's width, rounded up, when that row is wider than
        :data:`CHAIN_SPLIT_BITS` (and the chain has an adder), else None."""
        width = self.row_width(macs)
        return (width + 1) // 2 if macs > 1 and width > CHAIN_SPLIT_BITS else None

    def chain_carries(self, block: int) -> list[int]:
        """Columns of the saved carries of the split chains (note 12), one bit each."""
        return [h for chain in self.chains(block)
                if (h := self.split_at(len(chain))) is not None]

    def row_width(self, macs: int) -> int:
        """Bits of the row of a chain of ``macs`` words of :attr:`field` bits each: their
        unsigned sum."""
        return self.field + (macs - 1).bit_length()

    def constant(self, block: int) -> int:
        """The entries' constant, ``-block * 2**(F - 1)`` (``-block * 2**F`` with the sign
        last; with the signs counted, ``-(2**b - 1) * 2**F`` per group of ``b``-bit count;
        unreduced)."""
        if self.counted:
            # Each chain adder adds one (note 11).
            adders = sum(len(chain) - 1 for chain in self.chains(block))
            return -(sum(((1 << w) - 1) << lsb for lsb, w in self.sign_counts(block))
                     << self.field) - adders
        return -block << (self.field if self.sign_last else self.field - 1)

    def columns_of(self) -> list[int]:
        """Columns of one MAC's heap bits (one bit each), low to high."""
        extra = [0, self.field] if self.sign_last and not self.counted else []
        return list(range(self.field)) + extra

    def sign_groups(self, block: int) -> list[int]:
        """Sizes of the groups of MACs whose negation bits ``n`` are counted together
        (note 9): :attr:`sign_group` each, the last the remainder; none unless counted."""
        if not self.counted:
            return []
        return [min(self.sign_group, block - lo) for lo in range(0, block, self.sign_group)]

    def sign_counts(self, block: int) -> list[tuple[int, int]]:
        """``(weight, bits)`` of the counts that enter the heap after the two counter
        levels (note 9): the first counts the groups of :meth:`sign_groups`, the second
        the first's bits of each weight in groups of :data:`LUT_INPUTS` (k = 32: six
        counts of 3, 3, 3, 3, 3 and 2 bits, then three counts of 3 bits, of the 6, 6 and 5
        bits of weights 1, 2 and 4)."""
        shapes = [(0, size.bit_length()) for size in self.sign_groups(block)]
        if shapes:  # the second level
            by_weight: dict[int, int] = {}
            for lsb, width in shapes:
                for j in range(width):
                    by_weight[lsb + j] = by_weight.get(lsb + j, 0) + 1
            shapes = [(w, min(LUT_INPUTS, n - lo).bit_length())
                      for w, n in sorted(by_weight.items()) for lo in range(0, n, LUT_INPUTS)]
        return shapes

    def sign_columns(self, block: int) -> list[int]:
        """Columns of the sign counts' heap bits: each count ``c`` (``b`` bits, weight
        ``2**w``) at columns ``w .. w + b - 1`` and its complement at ``F + w ..``."""
        columns = []
        for lsb, bits in self.sign_counts(block):
            columns += [lsb + j for j in range(bits)] + [self.field + lsb + j for j in range(bits)]
        return columns

    def count_signs(self, m, xs: list[Value], name: str) -> list[tuple[int, Value]]:
        """The first counter level: ``(0, count)`` of the negation bits ``n = s & ~kill``
        of the MACs whose shifts (with sign and kill) are ``xs``, one per group of
        :meth:`sign_groups` (a 6:3 counter: one 6-input LUT per count bit)."""
        n = [self._negation(x) for x in xs]
        counts = []
        for g, size in enumerate(self.sign_groups(len(xs))):
            part = n[g * self.sign_group:g * self.sign_group + size]
            width = size.bit_length()
            count = Signal(width, name=f"{name}_n{g}")
            m.d.comb += count.eq(_lookup([bin(i).count("1") for i in range(1 << size)],
                                         Cat(*part), width))
            counts.append((0, count))
        return counts

    def count_again(self, m, counts: list[tuple[int, Value]], name: str
                ) -> list[tuple[int, Value]]:
        """The second counter level: the bits of the counts ``(weight, count)`` of each
        weight counted in groups of :data:`LUT_INPUTS`, in the order of
        :meth:`sign_counts`."""
        by_weight: dict[int, list[Value]] = {}
        for lsb, count in counts:
            for j in range(len(count)):
                by_weight.setdefault(lsb + j, []).append(count[j])
        out = []
        for w in sorted(by_weight):
            bits = by_weight[w]
            for g, lo in enumerate(range(0, len(bits), LUT_INPUTS)):
                part = bits[lo:lo + LUT_INPUTS]
                width = len(part).bit_length()
                count = Signal(width, name=f"{name}_m{w}_{g}")
                m.d.comb += count.eq(_lookup([bin(i).count("1") for i in range(1 << len(part))],
                                             Cat(*part), width))
                out.append((w, count))
        return out

    def count_bits(self, counts: list[tuple[int, Value]]) -> list[tuple[int, Value]]:
        """``(column, bit)`` of the counts' heap bits: each count ``c`` of weight ``2**w``
        and ``~c`` (``-c 2**F = ~c 2**F - (2**b - 1) 2**F``, the constant's part)."""
        out = []
        for lsb, count in counts:
            out += [(lsb + j, count[j]) for j in range(len(count))]
            out += [(self.field + lsb + j, ~count[j]) for j in range(len(count))]
        return out

    def product(self, m, a_code: Value, b_code: Value, name: str) -> tuple[Value, Value]:
        """Levels 1 and 2: the significand product ``q`` and the shift ``X`` (with the sign last,
        ``q`` unsigned and ``X`` followed by the product's sign ``s`` and ``kill``, a special
        code's zero)."""
        ai, xa = self.a.split(a_code)
        bi, xb = self.b.split(b_code)
        q = Signal(self.q_shape, name=f"{name}_q")
        if self.magnitude:
            # |P_a| * |P_b| from the two magnitudes (0 for a special), then the sign.
            wa, wb = self.a.element.width - 1, self.b.element.width - 1
            va = [abs(v) for v in ELEMENT_VALUES[self.a.element.name][:1 << wa]]
            vb = [abs(v) for v in ELEMENT_VALUES[self.b.element.name][:1 << wb]]
            p = Signal(self.q_shape, name=f"{name}_mag")
            m.d.comb += p.eq(_lookup([va[i & ((1 << wa) - 1)] * vb[i >> wa]
                                      for i in range(1 << (wa + wb))],
                                     Cat(a_code[:wa], b_code[:wb]), self.q_shape.width))
            sign = a_code[-1] ^ b_code[-1]
            x = Signal(2, name=f"{name}_x")
            m.d.comb += [q.eq(p ^ sign.replicate(self.field)), x.eq(Cat(sign, 0))]
            return q, x
        if self.sign_last:
            x = Signal(unsigned(self.x_bits + 2), name=f"{name}_x")
            ga, gb = self.a.significand(a_code), self.b.significand(b_code)
            kill = self.a.special(a_code) | self.b.special(b_code)
            sign = a_code[-1] ^ b_code[-1]
            shift = Cat(self.a.exponent(a_code), self.b.exponent(b_code)) \
                if self.per_operand else (xa + xb)[:self.x_bits]
            m.d.comb += [q.eq(self._unsigned_product(m, ga, gb, name)),
                         x.eq(Cat(shift, sign, kill))]
            return q, x
        if self.table:
            w = self.q_shape.width
            values = [self.a.value_of(i & ((1 << self.a.inputs) - 1)) *
                      self.b.value_of(i >> self.a.inputs)
                      for i in range(1 << (self.a.inputs + self.b.inputs))]
            m.d.comb += q.eq(_lookup([v % (1 << w) for v in values], Cat(ai, bi), w))
        else:
            m.d.comb += q.eq(self._signed(ai, self.a) * self._signed(bi, self.b))
        x = Signal(unsigned(self.x_bits), name=f"{name}_x")
        m.d.comb += x.eq(xa + xb)
        return q, x

    @staticmethod
    def _unsigned_product(m, ga: Value, gb: Value, name: str) -> Value:
        """``g_a * g_b`` of two significands (note 6): one table when they have at most
        :data:`LUT_INPUTS` bits together, else the sum of the tables of ``g_b`` times
        chunks of ``g_a`` of ``LUT_INPUTS - len(g_b)`` bits."""
        if len(ga) < len(gb):
            ga, gb = gb, ga
        if len(ga) + len(gb) <= LUT_INPUTS:
            return ga * gb
        chunk = LUT_INPUTS - len(gb)
        total = None
        for n, lsb in enumerate(range(0, len(ga), chunk)):
            part = ga[lsb:lsb + chunk]
            width = (((1 << len(part)) - 1) * ((1 << len(gb)) - 1)).bit_length()
            tile = Signal(width, name=f"{name}_g{n}")
            m.d.comb += tile.eq(_lookup([(i & ((1 << len(part)) - 1)) * (i >> len(part))
                                         for i in range(1 << (len(part) + len(gb)))],
                                        Cat(part, gb), width))
            total = tile if total is None else total + (tile << lsb)
        return total

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
        if self.sign_first:
            return self._shift_filled(m, word, x, stage, name)
        if self.per_operand:  # note 7: by x = max(e - 1, 0) of operand a, then of b
            reach = self.a.x_max if stage == 0 else self.x_max
            options = [word << max(v - 1, 0) for v in range(1 << n)]
        else:
            reach = min(self.x_max, ((1 << (lsb + n)) - 1))
            options = [(word << (v << lsb)) for v in range(1 << n)]
        shape = unsigned if self.sign_last else signed
        out = Signal(shape(self.q_shape.width + reach), name=f"{name}_s{stage}")
        sel = x[lsb:lsb + n]
        value = options[0]
        for v in range(1, 1 << n):
            value = Mux(sel == v, options[v], value)
        if stage == len(self.stages) - 1 and self.sign_last:  # note 4
            out = Signal(unsigned(self.field), name=f"{name}_y")
            sign, kill = x[self.x_bits], x[self.x_bits + 1]
            value = (value ^ sign.replicate(self.field)) & (~kill).replicate(self.field)
        elif stage == len(self.stages) - 1:  # the last: its sign bit complemented (note 3)
            out = Signal(unsigned(self.field), name=f"{name}_y")
            value = value ^ (1 << (self.field - 1))
        m.d.comb += out.eq(value)
        return out

    def _shift_filled(self, m, word: Value, x: Value, stage: int, name: str) -> Value:
        """Note 8: every stage shifts the word left by its part of ``X``, the vacated low
        bits and the new high bits filled with ``n = s & ~kill``; the first stage's word is
        the unsigned product, and it applies ``(. ^ s) & ~kill``."""
        sign, kill = x[self.x_bits], x[self.x_bits + 1]
        last = stage == len(self.stages) - 1
        lsb, n = self.stages[stage]
        fill = Value.cast(0) if stage == 0 else self._negation(x)
        width = self.field if last else \
            self.q_shape.width + min(self.x_max, (1 << (lsb + n)) - 1)
        options = [Cat(fill.replicate(v << lsb), word,
                       fill.replicate(max(0, width - len(word))))[:width]
                   for v in range(1 << n)]
        sel = x[lsb:lsb + n]
        value = options[0]
        for v in range(1, 1 << n):
            value = Mux(sel == v, options[v], value)
        if stage == 0 and self.zeroed:  # note 10
            value = (value & (~kill).replicate(width)) ^ sign.replicate(width)
        elif stage == 0:
            value = (value ^ sign.replicate(width)) & (~kill).replicate(width)
        out = Signal(unsigned(width), name=f"{name}_y" if last else f"{name}_s{stage}")
        m.d.comb += out.eq(value)
        return out

    def bits(self, word: Value, x: Value) -> list[Value]:
        """The heap bits of the last stage's word, in the columns of :meth:`columns_of`:
        the word (its sign bit already complemented); with the sign last, the word then
        ``s & ~kill`` and its complement."""
        bits = [word[j] for j in range(self.field)]
        if self.sign_last and not self.counted:
            neg = self._negation(x)
            bits += [neg, ~neg]
        return bits

    def _negation(self, x: Value) -> Value:
        """``n`` of a MAC whose shift (with sign and kill) is ``x``: ``s & ~kill``, or
        ``s`` where a special's magnitude is zeroed before the sign (note 10)."""
        sign, kill = x[self.x_bits], x[self.x_bits + 1]
        return sign if self.zeroed else sign & ~kill
