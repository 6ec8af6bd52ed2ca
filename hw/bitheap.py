"""Sums of ``k`` signed products, as an adder tree or as one bit heap.

Both architectures compute ``S = sum_i a_i * b_i`` exactly for signed ``a_bits``-bit ``a_i``
and ``b_bits``-bit ``b_i``, in the two's complement width of the range of ``S``. They are
plain planners, not components: a unit builds one in its constructor (so that
:attr:`SumOfProducts.stages` is known for its ``latency``) and calls
:meth:`SumOfProducts.build` from ``elaborate`` with its stall-enabled ``register``.

``tree``
    ``k`` multipliers (Yosys ``$mul``), registered, then a binary adder tree whose nodes are
    only as wide as the range of their partial sum; a register after every
    ``levels_per_stage`` tree levels and after the last.

``heap``
    Every product is split into *tiles*: ``a`` and ``b`` are cut into chunks of at most
    ``tile`` bits (the top chunk signed, the others unsigned) and each chunk pair's product,
    offset by the smallest value it can take, is a function of at most ``2*tile`` input bits
    given as a table, so synthesis maps each of its output bits to a single LUT (3 x 3 tiles
    on 6-input LUTs; FloPoCo's ``BaseMultiplierLUT`` costs them the same way). The offsets
    of all tiles make one constant. All tile bits of all ``k`` products and the constant's
    bits go into one heap of columns by weight, which a compressor tree reduces, one
    *level* (one LUT deep) at a time, with generalised parallel counters:

    * ``(6;3)``: six bits of one column -> their 3-bit count (three 6-input LUTs, three bits
      removed);
    * ``(1,5;3)``: five bits of column ``c`` and one of ``c + 1`` -> a 3-bit count (same cost);
    * ``(n;3)`` for four or five bits and ``(3;2)`` (a full adder) where a column must still
      come down to the level's target height (half the tallest column);

    until no column holds more than :data:`FINAL_ROWS` (three) bits; one carry-propagate
    adder then adds the rows modulo ``2**width`` (exact, since ``S`` fits ``width`` bits).
    With ``primitives="xc7"`` the counters are replaced by ternary adders of ``LUT6_2`` and
    ``CARRY4`` cells (three rows into one, one LUT per column; see ``_ternary_add``) until
    one row is left. With ``primitives="ecp5"`` (integer operands only) the tiles are row
    pairs: ``a`` whole against two-bit chunks of ``b``, each one chain of Lattice ECP5
    ``CCU2C`` cells whose LUT4 per column adds two partial-product bits (``_RowPairTile``);
    then chains of CCU2C cells add the rows two at a time (``_binary_level``) until one
    row is left: one LUT4 per column and bit removed, where a 6-input tile or counter
    output bit takes four LUT4s and two muxes on ECP5. With a register after every level
    (``levels_per_stage=1``) each row is kept whole, one chain's output, and the rows are
    added as a tree of chains (``_row_level``: row pairs of one chunk and neighbouring
    products first; columns below the pair's first common column pass by the chain, and
    the constant's bits are folded into one adder), so that every adder reads two chains
    and nothing else: the placer can put it beside them; an adder level of at most
    :data:`RELAY_ROWS` rows (the top of the tree, whose inputs come from far apart) is
    preceded by a relay level of registers only. Each subtree's registers load on their
    own copy of the pipeline's enable (:data:`ROWS_PER_ENABLE`). The tile level, each counter or
    adder level and the final adder each count as one level; a register follows every
    ``levels_per_stage`` levels and the last.

    Building a heap also records :attr:`SumOfProducts.certificate`: every tile, counter,
    adder and register by the name of its signal, with the heap column of each bit it reads
    and writes. ``sim.formal`` checks that record (it is a claim, not a premise) and proves
    each piece on the generated Verilog, which is how the heap is proven at sizes where
    comparing the whole sum with a reference is beyond a SAT solver (``docs/formal.md``).

Minifloat operands (OCP MX elements, ``a_element``/``b_element``) enter as their element
*codes*; each code ``c`` stands for its fixed-point integer ``P = decode(c)``
(:mod:`golden.minifloat`; specials count as 0), so ``S`` is the same exact integer sum.
How such an operand is cut:

* when both operands are minifloats, or either has three or more exponent bits (E3M2,
  E4M3), no tiles: each product is the product of the significands shifted by the sum of
  the elements' exponents (for E2M1 x E2M1 one table of the two magnitudes), entered as
  one word per MAC (*exponent-sum placement*, :mod:`hw.placement`;
  :attr:`SumOfProducts.placement`), which takes the product plus one level per shifter
  stage;
* otherwise (the partner is an integer) a code of at most :data:`CODE_DIGIT_BITS` (four)
  bits (E2M1) is one *digit* of the tiles: a tile's table reads the whole code and gives
  ``decode(c) * partner chunk`` directly, so the partner is cut into chunks of at most
  ``6 - 4 = 2`` bits (a 6-input function);
* and a wider code with two exponent bits (E2M3) is first decoded, one table per
  element, to its ``int_bits``-bit two's complement ``P``, which is then cut like an
  integer. The decode is one more level, before the tiles.

The width of ``S`` is that of its true range (:func:`golden.dot.mx_dot_sum_range`), so a
minifloat operand's width is that of ``P``, not of its code.

Parameters
----------
a_bits, b_bits : int
    Operand widths including the sign, 2 to 24; ignored (may be None) for a minifloat
    operand.
a_element, b_element : ElementFormat or None
    The operand's OCP MX element format, or None (default) for a two's complement integer.
block : int
    Number of products ``k``, 1 to 1024.
arch : str
    ``"tree"`` or ``"heap"``.
levels_per_stage : int
    Levels between pipeline registers, at least 1.
tile : int
    Heap only: largest chunk width of a tile, 1 to 3.
primitives : str
    Heap only: ``"generic"`` (plain logic), ``"xc7"`` (AMD/Xilinx 7-series primitives) or
    ``"ecp5"`` (Lattice ECP5 CCU2C cells; integer operands only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from amaranth.hdl import Cat, Const, Instance, Module, Signal, Value, signed

from golden.dot import dot_sum_range
from golden.format import MAX_BLOCK, MAX_MAN_BITS, check_choice, check_int
from golden.minifloat import ElementFormat

from .layouts import range_shape
from .placement import Placement, placed
from .tables import ELEMENT_VALUES
from .tables import lookup as _lookup

__all__ = ["ARCHS", "CODE_DIGIT_BITS", "DEFAULT_ARCH", "FINAL_ROWS", "PRIMITIVES",
           "SumOfProducts"]

#: Architectures of :class:`SumOfProducts`.
ARCHS = ("heap", "tree")
#: The default: fewer LUTs per MAC without DSPs on both families measured (README).
DEFAULT_ARCH = "heap"
#: Default largest tile chunk: 3 x 3 tiles are 6-input functions, one LUT6 per output bit.
DEFAULT_TILE = 3

Register = Callable[[Value, str], Value]


#: Primitive sets the heap may instantiate: none, AMD/Xilinx 7-series LUT6_2 and CARRY4, or
#: Lattice ECP5 CCU2C.
PRIMITIVES = ("generic", "xc7", "ecp5")
#: ``primitives="ecp5"`` with a register after every level: entry rows (chains) per copy
#: of the pipeline's enable (:class:`hw.pipeline.StallPipeline`), each copy driving the
#: registers of one subtree of the tree of chains (the first copy is the unit's own).
ROWS_PER_ENABLE = 8
#: ``primitives="ecp5"`` with a register after every level: an adder level whose inputs
#: are at most this many rows (sums of many chains, each spread over its subtree: the
#: longest routes) is preceded by a level of registers only (a *relay*), which the placer
#: puts beside the adders.
RELAY_ROWS = 3
#: Widest minifloat code that a tile reads whole (E2M1); wider codes are decoded first.
CODE_DIGIT_BITS = 4
#: Inputs of a tile's table when one side is a whole code: a 6-input LUT.
LUT_INPUTS = 6


def _chunks(bits: int, tile: int) -> list[tuple[int, int, bool]]:
    """``(lsb, width, signed)`` chunks of a signed ``bits``-bit operand, low to high, as
    even as possible and at most ``tile`` wide; the top chunk carries the sign."""
    n = -(-bits // tile)
    base, extra = divmod(bits, n)
    out, lsb = [], 0
    for i in range(n):
        width = base + (1 if i < extra else 0)
        out.append((lsb, width, i == n - 1))
        lsb += width
    return out


def _chunk_range(width: int, signed: bool) -> tuple[int, int]:
    return (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)


def _chunk_values(chunk: tuple) -> list[int]:
    """The value of each code of a chunk ``(lsb, width, signed)``, or of a whole minifloat
    code ``(0, width, element name)`` (its fixed-point integer)."""
    _, width, kind = chunk
    if isinstance(kind, str):
        return ELEMENT_VALUES[kind]
    return [c - (1 << width) if kind and c >> (width - 1) else c for c in range(1 << width)]




class _Tile:
    """One chunk pair: its weight, value offset and output width."""

    def __init__(self, a_chunk: tuple, b_chunk: tuple):
        self.a, self.b = a_chunk, b_chunk
        self.shift = a_chunk[0] + b_chunk[0]
        a_vals, b_vals = _chunk_values(a_chunk), _chunk_values(b_chunk)
        products = [av * bv for av in (min(a_vals), max(a_vals))
                    for bv in (min(b_vals), max(b_vals))]
        self.lo, hi = min(products), max(products)
        self.width = max(1, (hi - self.lo).bit_length())

    def table(self) -> list[int]:
        """``a * b - lo`` for every index ``b_code << a_width | a_code``."""
        a_vals, b_vals = _chunk_values(self.a), _chunk_values(self.b)
        return [av * bv - self.lo for bv in b_vals for av in a_vals]


# Counters: (inputs per column from the lowest, outputs); the count of the inputs, weighted
# by column, is written in `outputs` bits from the lowest column up.
#: Rows left for the final carry-propagate adder.
FINAL_ROWS = 3
#: At one level per stage (``levels_per_stage=1``, generic primitives) a final adder of
#: more columns is split in two halves, one stage each (``_build_split_sum``). On ECP5 the
#: 56-bit final adder of E5M2 x E4M3 (k = 32) placed at 155.3 MHz or more (seeds 1 to 3),
#: the 70-bit one of E5M2 x E5M2 limited it to 144.6 MHz (``benchmarks.placed``); no other
#: sum is wider than 57 bits (MXINT24 x MXINT24, k = 1024), so only E5M2 x E5M2 is split.
SPLIT_ADDER_BITS = 64
#: Rows left for the final adder of a heap of chained words (hw/placement.py note 11).
CHAINED_FINAL_ROWS = 2
_GPC_153 = ((5, 1), 3)
_GPC_32 = ((3,), 2)


class SumOfProducts:
    """Planner and builder of ``sum_i a_i * b_i``; see the module notes.

    Members
    -------
    width : int
        Two's complement width of the result (the range of ``S``).
    stages : int
        Pipeline registers from the operands to the result, at least 1.
    enables : int
        Copies of the pipeline's stall enable the heap can use (:meth:`build`): 1, or for
        ``primitives="ecp5"`` at one level per stage one more than the entry's chains
        over :data:`ROWS_PER_ENABLE`.
    """

    def __init__(self, *, a_bits: int | None, b_bits: int | None, block: int,
                 arch: str = DEFAULT_ARCH, levels_per_stage: int = 2, tile: int = DEFAULT_TILE,
                 primitives: str = "generic", a_element: ElementFormat | None = None,
                 b_element: ElementFormat | None = None) -> None:
        self.a_element, self.b_element = a_element, b_element
        self.a_bits = a_element.int_bits if a_element is not None else \
            check_int("a_bits", a_bits, 2, MAX_MAN_BITS)
        self.b_bits = b_element.int_bits if b_element is not None else \
            check_int("b_bits", b_bits, 2, MAX_MAN_BITS)
        self.block = check_int("block", block, 1, MAX_BLOCK)
        self.arch = check_choice("arch", arch, ARCHS)
        self.levels_per_stage = check_int("levels_per_stage", levels_per_stage, 1)
        self.tile = check_int("tile", tile, 1, 3)
        self.primitives = check_choice("primitives", primitives, PRIMITIVES)
        self.enables = 1
        self._split_final = False
        if a_element is None and b_element is None:
            self.shape = range_shape(*dot_sum_range(self.a_bits, self.b_bits, block))
        else:
            a_range, b_range = _operand_range(a_element, a_bits), _operand_range(b_element, b_bits)
            products = [x * y for x in a_range for y in b_range]
            self.shape = range_shape(block * min(products), block * max(products))
        self.width = self.shape.width
        # Elements with 3+ exponent bits: placed by their exponent sum (hw/placement.py).
        self._placement = Placement(a_element=a_element, a_bits=self.a_bits,
                                    b_element=b_element, b_bits=self.b_bits,
                                    levels_per_stage=self.levels_per_stage, block=block) \
            if arch == "heap" and placed(a_element, b_element) else None
        # A minifloat code too wide to be a tile's digit is decoded first: one more level.
        self._decode = {"a": _decoded(a_element), "b": _decoded(b_element)}
        decode_level = 1 if arch == "heap" and any(self._decode.values()) else 0
        if self._placement is not None:
            decode_level = 0
        if arch == "tree":
            tree_levels = (block - 1).bit_length()
            self.levels = 1 + tree_levels
            self.stages = 1 + -(-tree_levels // levels_per_stage)
        elif self.primitives == "ecp5":
            if a_element is not None or b_element is not None:
                raise ValueError("primitives 'ecp5' needs integer operands (a_element and "
                                 f"b_element None), not {a_element and a_element.name!r} and "
                                 f"{b_element and b_element.name!r}")
            # Row pairs of b against the whole a, one CCU2C chain each, then CCU2C row
            # adders until one row is left.
            self._tiles = [_RowPairTile(self.a_bits, bc) for bc in _chunks(self.b_bits, 2)]
            self._plan = []
            # A register after every level: the rows are added as a tree of whole chains
            # (``_row_level``), so that every adder reads two chains and nothing else.
            self._row_tree = self.levels_per_stage == 1
            if self._row_tree:
                self.enables = 1 + max(1, len(self._tiles) * block // ROWS_PER_ENABLE)
            self.levels = 1 + (_row_tree_levels(len(self._tiles) * block, self._constant() != 0)
                               if self._row_tree else _binary_levels(self._heap_heights()))
            self._decode_level = 0
            self.stages = self._heap_stages()
        else:
            self._tiles = [] if self._placement is not None else [
                _Tile(ac, bc) for ac, bc in _tile_pairs(
                    self._digits(a_element, self.a_bits, b_element),
                    self._digits(b_element, self.b_bits, a_element))]
            heights = self._heap_heights()
            # Levels of the heap's entry: the tiles (one), or the placement's.
            entry = 1 if self._placement is None else self._placement.levels
            if self.primitives == "xc7":
                # Levels: tiles, then ternary adders until one row is left.
                self._plan = []
                self.levels = entry + _ternary_levels(heights)
            else:
                self._plan = _plan_levels(heights)
                if self._placement is not None and self._placement.chain > 1:
                    # Chained words (hw/placement.py note 11): down to two rows, so that
                    # the final adder has no 3:2 level before its carry chain, unless
                    # that takes more than one more level (in short heaps the carries
                    # of (3;2) counters ripple up a column a level).
                    two = _plan_levels(heights, CHAINED_FINAL_ROWS)
                    if len(two) <= len(self._plan) + 1:
                        self._plan = two
                if self._placement is not None and self._placement.chain_carries(block):
                    # Split chains (hw/placement.py note 12): each chain's registers on
                    # a copy of the stall enable of its own,
                    # and the heap after them (and the sign counts) on one more.
                    self.enables = 2 + len(self._placement.chains(block))
                final = max(_reduce_heights(heights, self._plan), default=0) > 1
                # A final adder too long for one stage is split in two halves (one level
                # more): only at one level per stage, where it is alone in its stage.
                self._split_final = final and self.levels_per_stage == 1 and \
                    self.width > SPLIT_ADDER_BITS
                # Levels: tiles, each counter level, the final adder (if rows remain).
                self.levels = entry + len(self._plan) + final + self._split_final
            self._decode_level = decode_level
            self.levels += decode_level
            self.stages = self._heap_stages()

    def _digits(self, element: ElementFormat | None, bits: int, partner: ElementFormat | None
                ) -> list[tuple]:
        """The chunks of one operand: a whole narrow code, or chunks of the integer (or of
        the decoded ``P``), at most :data:`LUT_INPUTS` minus the partner's code bits wide
        when the partner is a whole code."""
        if element is not None and not _decoded(element):
            return [(0, element.width, element.name)]
        tile = self.tile
        if partner is not None and not _decoded(partner):
            tile = min(tile, LUT_INPUTS - partner.width)
        return _chunks(bits, tile)

    # -- heap planning ------------------------------------------------------------------

    def _constant(self) -> int:
        """The tiles' offsets, ``sum`` of ``lo << shift`` over all tiles, mod ``2**width``."""
        if self._placement is not None:
            return self._placement.constant(self.block) % (1 << self.width)
        total = self.block * sum(t.lo << t.shift for t in self._tiles)
        return total % (1 << self.width)

    def _heap_heights(self) -> list[int]:
        heights = [0] * self.width
        if self._placement is not None and self._placement.chain > 1:
            for chain in self._placement.chains(self.block):
                for c in range(min(self._placement.row_width(len(chain)), self.width)):
                    heights[c] += 1
            for c in self._placement.chain_carries(self.block):
                if c < self.width:
                    heights[c] += 1
        elif self._placement is not None:
            for c in self._placement.columns_of():
                if c < self.width:
                    heights[c] += self.block
        if self._placement is not None:
            for c in self._placement.sign_columns(self.block):
                if c < self.width:
                    heights[c] += 1
        for t in self._tiles:
            for j in range(t.width):
                if t.shift + j < self.width:
                    heights[t.shift + j] += self.block
        const = self._constant()
        for c in range(self.width):
            heights[c] += (const >> c) & 1
        return heights

    def _heap_stages(self) -> int:
        """Registers: after every ``levels_per_stage`` levels and after the last level."""
        return -(-self.levels // self.levels_per_stage)

    def _registered_after(self, level: int) -> bool:
        """Whether a register follows level ``level`` (1-based)."""
        return level % self.levels_per_stage == 0 or level == self.levels

    # -- building -----------------------------------------------------------------------

    @property
    def placement(self) -> Placement | None:
        """How a heap enters products of minifloats with 3+ exponent bits
        (:mod:`hw.placement`), or None when it enters tiles."""
        return self._placement

    @property
    def certificate(self) -> dict:
        """What the last :meth:`build` of a heap made, for ``sim.formal``.

        A dict of plain data: ``width``; ``const`` (the offsets' constant, mod
        ``2**width``); ``tiles``, each ``{"signal", "product", "a", "b", "lo", "shift",
        "width"}`` with ``a``/``b`` the chunk ``[lsb, width, signed]`` and the signal holding
        ``a_chunk * b_chunk - lo`` (``primitives="ecp5"``: also ``"bits"``, the one-bit
        signals that hold it, low first, in place of the signal); ``steps`` in order, each
        ``{"kind": "adders", "adders": [{"inputs": [[ref, col], ...], "outputs": [[ref,
        col], ...]}]}`` (counters, ternary and CCU2C adders: the outputs' weighted sum
        equals the inputs' modulo the heap),
        ``{"kind": "registers", "registers": [{"signal", "bits": [[ref, col], ...]}]}``
        (bit ``j`` of the register loads ``bits[j]``) or ``{"kind": "sum", "signal"}``
        (the final adder of all bits left); and ``result``, the bit of each column at the
        end. A ``ref`` is ``[signal name, bit]`` or ``[None, 0 or 1]`` for a constant.
        With chained words (:mod:`hw.placement` note 11) also ``words``, each ``{"signal",
        "product", "delay", "width"}``: MAC ``product``'s word ``y`` of ``width`` bits,
        standing for ``y + s - s 2**width`` (``s`` the product's sign), ``delay``
        registers after its codes (``sim.formal`` cuts the proof at these words).

        Raises
        ------
        RuntimeError
            If no heap has been built yet.
        """
        if getattr(self, "_certificate", None) is None:
            raise RuntimeError("the sum of products has not been built as a heap yet")
        return self._certificate

    def build(self, m: Module, register: Register, a: Sequence[Value], b: Sequence[Value],
              *, name: str = "sop", enables: int = 1) -> Value:
        """The registered sum of ``a[i] * b[i]``, :attr:`stages` registers after ``a, b``.

        ``register(value, name)`` must return a register of ``value`` that loads when the
        pipeline advances; with ``enables`` above 1, ``register(value, name, enable=k)``
        one that loads on copy ``k < enables`` of that enable
        (:class:`hw.pipeline.StallPipeline`): the heap then spreads its registers over
        copies 1 to ``min(enables, self.enables) - 1`` and leaves copy 0 (the one that
        also drives the pipeline's control) to the rest of the unit.
        """
        self._enables = min(enables, self.enables)
        if self.arch == "tree":
            a = [self._decoded_value(m, "a", x, f"{name}_da{i}") for i, x in enumerate(a)]
            b = [self._decoded_value(m, "b", x, f"{name}_db{i}") for i, x in enumerate(b)]
            return self._build_tree(m, register, a, b, name)
        return self._build_heap(m, register, a, b, name)

    def _decoded_value(self, m: Module, side: str, code: Value, name: str) -> Value:
        """The fixed-point integer ``P`` of a minifloat code (a table of the code), the
        operand itself when it is an integer."""
        element = self.a_element if side == "a" else self.b_element
        if element is None:
            return code
        out = Signal(signed(element.int_bits), name=name)
        values = ELEMENT_VALUES[element.name]
        m.d.comb += out.eq(_lookup([v % (1 << element.int_bits) for v in values], code,
                                   element.int_bits))
        return out

    def _build_tree(self, m, register, a, b, name):
        lo, hi = _product_range(self.a_element, self.a_bits, self.b_element, self.b_bits)
        nodes = [register(a[i] * b[i], f"{name}_prod{i}") for i in range(self.block)]
        tree_levels = (self.block - 1).bit_length()
        for level in range(1, tree_levels + 1):
            shape = range_shape(lo << level, hi << level)
            nxt = []
            for j in range(0, len(nodes), 2):
                pair = nodes[j:j + 2]
                s = Signal(shape, name=f"{name}_l{level}_{j // 2}")
                m.d.comb += s.eq(pair[0] + pair[1] if len(pair) == 2 else pair[0])
                nxt.append(s)
            nodes = nxt
            if level % self.levels_per_stage == 0 or level == tree_levels:
                nodes = [register(s, f"{s.name}_r") for s in nodes]
        return nodes[0]

    def _build_heap(self, m, register, a, b, name):
        w = self.width
        steps: list[dict] = []
        cert = {"width": w, "const": self._constant(), "tiles": [], "steps": steps}
        if self._decode_level:
            # Level 1: wide minifloat codes to their fixed-point integers.
            a = [self._decoded_value(m, "a", x, f"{name}_da{i}") if self._decode["a"] else x
                 for i, x in enumerate(a)]
            b = [self._decoded_value(m, "b", x, f"{name}_db{i}") if self._decode["b"] else x
                 for i, x in enumerate(b)]
            if self._registered_after(1):  # both operands, to keep them in step
                a = [register(x, f"{name}_ra{i}") for i, x in enumerate(a)]
                b = [register(x, f"{name}_rb{i}") for i, x in enumerate(b)]
        columns: list[list[Value]] = [[] for _ in range(w)]
        if self._placement is not None and self._placement.chain > 1:
            cert["words"] = self._enter_chained(m, register, a, b, name, columns)
        elif self._placement is not None:
            self._enter_placed(m, register, a, b, name, columns)
        # ecp5: chunk outer, product inner, so that row r of the heap (bit r of each column)
        # is product r's chains from the lowest chunk up: an adder reads two products' cells.
        rows: list[dict[int, Value]] = []  # ecp5: each chain as a row, column -> bit
        for t, tile in enumerate(self._tiles if self.primitives == "ecp5" else []):
            for i in range(self.block):
                out = _ccu2c_chain(m, tile.halves(a[i].as_unsigned(), b[i].as_unsigned()),
                                   f"{name}_t{i}_{t}")[:tile.width]
                cert["tiles"].append({"signal": f"{name}_t{i}_{t}", "product": i,
                                      "a": list(tile.a), "b": list(tile.b), "lo": tile.lo,
                                      "shift": tile.shift, "width": tile.width,
                                      "bits": [bit.name for bit in out]})
                for j in range(tile.width):
                    if tile.shift + j < w:
                        columns[tile.shift + j].append(out[j])
                rows.append({tile.shift + j: out[j] for j in range(tile.width)
                             if tile.shift + j < w})
        if self.primitives == "ecp5" and self._row_tree:
            return self._build_row_tree(m, register, rows, name, cert)
        for i in range(self.block if self.primitives != "ecp5" else 0):
            for t, tile in enumerate(self._tiles):
                (alsb, aw, _), (blsb, bw, _) = tile.a, tile.b
                index = Cat(a[i].as_unsigned()[alsb:alsb + aw], b[i].as_unsigned()[blsb:blsb + bw])
                out = Signal(tile.width, name=f"{name}_t{i}_{t}")
                m.d.comb += out.eq(_lookup(tile.table(), index, tile.width))
                cert["tiles"].append({"signal": out.name, "product": i, "a": list(tile.a),
                                      "b": list(tile.b), "lo": tile.lo, "shift": tile.shift,
                                      "width": tile.width})
                for j in range(tile.width):
                    if tile.shift + j < w:
                        columns[tile.shift + j].append(out[j])
        const = self._constant()
        for c in range(w):
            if (const >> c) & 1:
                columns[c].append(Const(1, 1))

        if self._placement is None:
            level = 1 + self._decode_level
            columns = self._stage(register, columns, level, name, steps)
        else:  # registered inside the entry's levels
            level = self._placement.levels
        if self.primitives in ("xc7", "ecp5"):
            adder_level = _ternary_level if self.primitives == "xc7" else _binary_level
            while max(len(col) for col in columns) > 1:
                level += 1
                columns = adder_level(m, columns, f"{name}_a{level}", steps)
                columns = self._stage(register, columns, level, name, steps)
            bits = [col[0] if col else Const(0, 1) for col in columns]
            self._certificate = {**cert, "result": [_ref(bit) for bit in bits]}
            return Cat(*bits).as_signed()
        for plan in self._plan:
            level += 1
            columns = _apply_level(m, columns, plan, f"{name}_c{level}", steps)
            columns = self._stage(register, columns, level, name, steps)
        rows = [Cat(*(col[r] if r < len(col) else Const(0, 1) for col in columns))
                for r in range(max(len(col) for col in columns))]
        if len(rows) > 1 and self._split_final:
            bits = self._build_split_sum(m, register, columns, level, name, steps)
        elif len(rows) > 1:
            level += 1
            total = Signal(w, name=f"{name}_sum")
            m.d.comb += total.eq(sum(rows[1:], rows[0]))
            steps.append({"kind": "sum", "signal": total.name})
            result = register(total, f"{name}_sum_r")
            steps.append({"kind": "registers", "registers": [
                {"signal": result.name, "bits": [[[total.name, j], j] for j in range(w)]}]})
            bits = [result[j] for j in range(w)]
        else:
            bits = [col[0] if col else Const(0, 1) for col in columns]
        self._certificate = {**cert, "result": [_ref(bit) for bit in bits]}
        return Cat(*bits).as_signed()

    def _build_split_sum(self, m, register, columns, level, name, steps) -> list[Value]:
        """The final adder in two halves, two levels (each followed by a register) after
        level ``level``; the result's bits, low column first.

        Level ``level + 1``: a carry-save level over every column (a column's bits, up to
        three, become their sum bit ``fs[c]`` at ``c`` and their carry ``fc[c]`` at
        ``c + 1``; ``fc[w - 1]`` is dropped, the sum being modulo ``2**w``), and the low
        ``h = ceil(w / 2)`` columns of the two rows ``fs`` and ``fc`` added into ``lo``,
        ``h + 1`` bits (its top bit the carry into column ``h``). Level ``level + 2``: the
        columns from ``h`` up (``fs``, ``fc`` and that carry) added into ``hi``,
        ``w - h`` bits; ``lo`` waits in a register. The result is ``lo[:h]`` then ``hi``,
        the sum of the columns modulo ``2**w`` as the one adder gave it.
        """
        w, h = self.width, (self.width + 1) // 2
        zero = Const(0, 1)
        fs, fc = Signal(w, name=f"{name}_fs"), Signal(w, name=f"{name}_fc")
        csa, s_row, c_row = [], {}, {}
        for c, col in enumerate(columns):
            if len(col) > 3:
                raise AssertionError(f"column {c} holds {len(col)} bits for the final adder")
            if not col:
                continue
            x, y, z = (list(col) + [zero, zero])[:3]
            m.d.comb += [fs[c].eq(x ^ y ^ z), fc[c].eq((x & y) | (x & z) | (y & z))]
            s_row[c] = fs[c]
            outputs = [[_ref(fs[c]), c]]
            if len(col) > 1 and c + 1 < w:
                c_row[c + 1] = fc[c]
                outputs.append([_ref(fc[c]), c + 1])
            csa.append({"inputs": [[_ref(bit), c] for bit in col], "outputs": outputs})
        lo = Signal(h + 1, name=f"{name}_sum_lo")
        m.d.comb += lo.eq(Cat(*(s_row.get(c, zero) for c in range(h))) +
                          Cat(*(c_row.get(c, zero) for c in range(h))))
        low = {"inputs": [[_ref(row[c]), c] for row in (s_row, c_row) for c in range(h)
                          if c in row],
               "outputs": [[_ref(lo[j]), j] for j in range(h + 1)]}
        steps.append({"kind": "adders", "adders": csa})
        steps.append({"kind": "adders", "adders": [low]})
        columns = [[lo[c]] for c in range(h)] + [
            [bit for bit in (lo[h] if c == h else None, s_row.get(c), c_row.get(c))
             if bit is not None] for c in range(h, w)]
        columns = self._stage(register, columns, level + 1, name, steps)
        # Level + 2: the high half, the low carry its third row (one bit, column h).
        rows = [Cat(*(columns[c][r] if r < len(columns[c]) else zero for c in range(h, w)))
                for r in range(max(len(columns[c]) for c in range(h, w)))]
        hi = Signal(w - h, name=f"{name}_sum_hi")
        m.d.comb += hi.eq(sum(rows[1:], rows[0]))
        steps.append({"kind": "adders", "adders": [{
            "inputs": [[_ref(bit), c] for c in range(h, w) for bit in columns[c]],
            "outputs": [[_ref(hi[j]), h + j] for j in range(w - h)]}]})
        columns = columns[:h] + [[hi[j]] for j in range(w - h)]
        columns = self._stage(register, columns, level + 2, name, steps)
        return [col[0] for col in columns]

    def _enter_placed(self, m, register, a, b, name, columns) -> None:
        """Exponent-sum placement (:mod:`hw.placement`): per MAC the significand product and
        the shift (two levels), one level per shifter stage, a register after every
        ``levels_per_stage`` levels; the final words' bits into ``columns``."""
        place = self._placement
        pairs = [place.product(m, a[i], b[i], f"{name}_p{i}") for i in range(self.block)]
        first = place.levels - len(place.stages) + 1  # the first shifter stage's level
        counts = []
        for level in range(1, place.levels + 1):
            if level >= first:
                pairs = [(place.shift(m, q, x, level - first, f"{name}_p{i}"), x)
                         for i, (q, x) in enumerate(pairs)]
            if level == place.count_level and place.counted:
                # The negation bits counted after the first shifter stage (note 9).
                counts = place.count_signs(m, [x for _, x in pairs], name)
            elif level == place.count_level + 1 and place.counted:
                counts = place.count_again(m, counts, name)
            if self._registered_after(level):
                # X is not needed after the last stage, its sign and kill bits are unless
                # they are counted.
                last = level == place.levels and (place.counted or not place.sign_last)
                pairs = [(register(q, f"{q.name}_r"),
                          x if last else register(x, f"{x.name}_r{level}"))
                         for q, x in pairs]
                counts = [(lsb, register(c, f"{c.name}_r{level}")) for lsb, c in counts]
        for i, (q, x) in enumerate(pairs):
            bits = place.bits(q, x)
            for j, (c, bit) in enumerate(zip(place.columns_of(), bits, strict=True)):
                if j >= place.field:  # a sign bit (not a bit of the word): a signal of its own
                    s = Signal(name=f"{name}_p{i}_c{c}")
                    m.d.comb += s.eq(bit)
                    bit = s
                if c < len(columns):
                    columns[c].append(bit)
        for n, (c, bit) in enumerate(place.count_bits(counts)):
            s = Signal(name=f"{name}_n_c{c}_{n}")  # a signal of its own, as the sign bits
            m.d.comb += s.eq(bit)
            if c < len(columns):
                columns[c].append(s)

    def _enter_chained(self, m, register, a, b, name, columns) -> list[dict]:
        """Chained words (:mod:`hw.placement` note 11), a register after every level: the
        MAC at position ``d`` of its chain runs its shifter stages after the first ``d``
        levels late (its first stage's word held in registers), and its last stage is
        not registered but added to the chain's row, ``row + y`` (the row the carry
        chain's plain operand, so that the stage's multiplexer goes into the adder's
        LUTs); the rows' bits into ``columns``.

        Returns the certificate's ``words`` (:attr:`certificate`): per MAC its last
        stage's word ``y`` (``F`` bits, standing for ``y + s - s 2**F``, ``s`` the
        product's sign), by signal name, and the registers between the codes and it."""
        place = self._placement
        w = self.width
        pairs = [place.product(m, a[i], b[i], f"{name}_p{i}") for i in range(self.block)]
        position = {i: d for chain in place.chains(self.block) for d, i in enumerate(chain)}
        first = place.product_levels + 1  # the first shifter stage's level
        last = place.levels  # the level of the last chain adder
        counts = []
        rows: dict[int, Value] = {}
        carries: dict[int, Value] = {}  # the saved carry of each split chain (note 12)
        chains = place.chains(self.block)
        splits = {c: place.split_at(len(chain)) for c, chain in enumerate(chains)}
        ends = {i: first + len(place.stages) - 1 + d  # the level of each MAC's last stage
                for chain in chains for d, i in enumerate(chain)}
        of = {i: c for c, chain in enumerate(chains) for i in chain}

        def hold(value: Value, reg_name: str, c: int) -> Signal:
            """A register of chain ``c`` (the heap's, ``len(chains)``): on its own copy of
            the enable, if any."""
            if self._enables < 2:
                return register(value, reg_name)
            return register(value, reg_name,
                            enable=1 + c * (self._enables - 2) // len(chains))

        for level in range(1, last + 1):
            for i, (q, x) in enumerate(pairs):
                stage = 0 if level == first else level - first - position[i]
                if level >= first and (level == first or stage >= 1) and level <= ends[i]:
                    pairs[i] = (place.shift(m, q, x, stage, f"{name}_p{i}"), x)
            if level == place.count_level:
                counts = place.count_signs(m, [x for _, x in pairs], name)
            elif level == place.count_level + 1:
                counts = place.count_again(m, counts, name)
            for c, chain in enumerate(chains):
                for d, i in enumerate(chain):
                    if level == ends[i] and d:
                        width = min(place.row_width(d + 1), w)
                        row = Signal(width, name=f"{name}_r{c}_{d}")
                        # row + y + 1 as row - ~y: the row is the carry chain's plain
                        # operand (a subtraction's operands keep their order), so the last
                        # stage's multiplexer goes into the adder's LUTs; the +1 is in the
                        # constant (note 11).
                        y = pairs[i][0]
                        h = splits[c]
                        if h is None:
                            inverse = Signal(width, name=f"{name}_r{c}_{d}_inv")
                            m.d.comb += [inverse.eq(~Cat(y, Const(0, max(0, width - len(y))))),
                                         row.eq(rows[c] - inverse)]
                        else:
                            carries[c] = self._split_chain_adder(
                                m, row, rows[c], y, h, carries.get(c), f"{name}_r{c}_{d}")
                        rows[c] = row
                    elif level == ends[i]:
                        rows[c] = pairs[i][0]
            pairs = [(q, x) if level >= ends[i] else
                     (hold(q, f"{q.name}_r", of[i]), hold(x, f"{x.name}_r{level}", of[i]))
                     for i, (q, x) in enumerate(pairs)]
            rows = {c: hold(r, f"{r.name}_r", c) for c, r in rows.items()}
            carries = {c: hold(k, f"{k.name}_r", c) for c, k in carries.items()}
            counts = [(lsb, hold(cnt, f"{cnt.name}_r{level}", len(chains)))
                      for lsb, cnt in counts]
        for r in rows.values():
            for j in range(min(len(r), w)):
                columns[j].append(r[j])
        words = [{"signal": f"{name}_p{i}_y", "product": i, "delay": ends[i] - 1,
                  "width": place.field} for i in range(self.block)]
        for c, carry in carries.items():  # the last saved carry of each split chain
            if splits[c] < w:
                columns[splits[c]].append(carry)
        for n, (c, bit) in enumerate(place.count_bits(counts)):
            s = Signal(name=f"{name}_n_c{c}_{n}")  # a signal of its own, as the sign bits
            m.d.comb += s.eq(bit)
            if c < len(columns):
                columns[c].append(s)
        return words

    @staticmethod
    def _split_chain_adder(m, row: Signal, prev: Value, y: Value, h: int,
                           carry: Value | None, name: str) -> Signal:
        """A chain adder in two halves (:mod:`hw.placement` note 12): ``row`` (its bits)
        is ``prev + y + 1`` but for the carry into column ``h``, which is returned (a bit
        of weight ``2**h`` the next adder or the heap adds), and the saved ``carry`` of
        the adder before (weight ``2**h``, None for the chain's first adder), added in.

        The low half is ``prev[:h] - ~y[:h]`` over ``h + 1`` bits (``prev + y + 1``, its
        top bit the carry out); the high half is ``{prev[h:], carry} - {~y[h:], 1}``,
        whose bits above the lowest are ``prev[h:] + y[h:] + carry`` (the lowest column's
        carry is ``carry`` itself). Both keep the row as the minuend, so that the last
        shifter stage folds into either adder's LUTs as in one adder (note 11).
        """
        width = len(row)
        ext = Cat(y, Const(0, max(0, width - len(y))))[:width]
        lo = Signal(h + 1, name=f"{name}_lo")
        lo_inv = Signal(h + 1, name=f"{name}_lo_inv")
        hi = Signal(width - h + 1, name=f"{name}_hi")
        hi_inv = Signal(width - h + 1, name=f"{name}_hi_inv")
        low = Cat(prev, Const(0, max(0, width - len(prev))))[:width]
        m.d.comb += [lo_inv.eq(~Cat(ext[:h], Const(0, 1))),
                     lo.eq(Cat(low[:h], Const(0, 1)) - lo_inv),
                     hi_inv.eq(Cat(Const(1, 1), ~ext[h:])),
                     hi.eq(Cat(Const(0, 1) if carry is None else carry, low[h:]) - hi_inv),
                     row.eq(Cat(lo[:h], hi[1:]))]
        out = Signal(name=f"{name}_c")
        m.d.comb += out.eq(lo[h])
        return out

    def _build_row_tree(self, m, register, rows, name, cert):
        """``primitives="ecp5"``, a register after every level: the entry's chains, one row
        each (chunk outer, product inner), are added in pairs, each pair by one CCU2C chain
        (:func:`_row_level`) whose result is again one row, until one row is left. The
        constant joins the last row of the first level with an odd number of rows (or
        the last row), added by the same chains with its bits folded into the tables.
        Before an adder level of at most :data:`RELAY_ROWS` rows, a relay level registers
        them again (no logic)."""
        w, steps = self.width, cert["steps"]
        const = self._constant()
        pending = {c: Const(1, 1) for c in range(w) if const >> c & 1}
        level = 1
        groups = self._enables - 1
        rows = _stage_rows(register, rows, f"{name}_h{level}", steps, groups)
        while len(rows) > 1 or pending:
            if 1 < len(rows) <= RELAY_ROWS:
                level += 1  # a relay: registers only
                rows = _stage_rows(register, rows, f"{name}_h{level}", steps, groups)
            level += 1
            if len(rows) % 2 and pending:
                rows, pending = rows + [pending], {}
            rows = _row_level(m, rows, w, f"{name}_a{level}", steps)
            rows = _stage_rows(register, rows, f"{name}_h{level}", steps, groups)
        bits = [rows[0].get(c, Const(0, 1)) for c in range(w)]
        self._certificate = {**cert, "result": [_ref(bit) for bit in bits]}
        return Cat(*bits).as_signed()

    def _stage(self, register, columns, level, name, steps):
        if not self._registered_after(level):
            return columns
        out = []
        registers = []
        for c, col in enumerate(columns):
            bits = [bit for bit in col if not isinstance(bit, Const)]
            consts = [bit for bit in col if isinstance(bit, Const)]
            if bits and self._enables > 1 and self._placement is not None:
                # Split chains (note 12 of hw/placement.py): the heap's registers on the
                # last copy of the enable, copy 0 left to the unit's control.
                reg = register(Cat(*bits), f"{name}_h{level}_c{c}", enable=self._enables - 1)
            elif bits:
                reg = register(Cat(*bits), f"{name}_h{level}_c{c}")
            if bits:
                registers.append({"signal": reg.name, "bits": [[_ref(bit), c] for bit in bits]})
                bits = [reg[j] for j in range(len(bits))]
            out.append(bits + consts)
        steps.append({"kind": "registers", "registers": registers})
        return out


def _plan_levels(heights: list[int], final: int = FINAL_ROWS) -> list[list[tuple]]:
    """Counter placements, one list per level, until no column holds more than ``final``
    bits.

    Each level has a target height ``t``, half the tallest column (at least ``final``).
    Columns are visited from the lowest; a column's height at the next level is its
    unassigned bits plus the outputs that counters of this and the two columns below put
    into it. While that is above ``t``, a counter takes ``n = min(free, excess + 1, 6)``
    bits (it lowers the column by ``n - 1``): ``(1,5;3)`` for five bits when the column
    above has a spare bit, otherwise ``(n;3)`` or, for three bits, ``(3;2)``; two bits are
    left alone (a half adder only moves a bit up a column).
    """
    plans = []
    heights = list(heights)
    w = len(heights)
    while max(heights, default=0) > final:
        t = max(final, -(-max(heights) // 2))
        used = [0] * (w + 1)
        incoming = [0] * (w + 2)
        plan = []
        for c in range(w):
            while True:
                free = heights[c] - used[c]
                excess = free + incoming[c] - t
                if excess <= 0 or free < 3:
                    break
                n = min(free, excess + 1, 6)
                if n < 3:
                    n = 3
                nxt_free = heights[c + 1] - used[c + 1] if c + 1 < w else 0
                if n == 5 and nxt_free >= 1:
                    gpc = _GPC_153
                elif n == 3:
                    gpc = _GPC_32
                else:
                    gpc = ((n,), 3)
                plan.append((gpc, c))
                for j, count in enumerate(gpc[0]):
                    used[c + j] += count
                for j in range(gpc[1]):
                    incoming[c + j] += 1
        if not plan:
            raise AssertionError(f"bit heap does not shrink: {heights}")
        heights = _reduce_heights(heights, [plan])
        plans.append(plan)
    return plans


def _reduce_heights(heights: list[int], plans: list[list[tuple]]) -> list[int]:
    for plan in plans:
        new = list(heights)
        for (ins, outs), c in plan:
            for j, n in enumerate(ins):
                new[c + j] -= n
            for j in range(outs):
                if c + j < len(new):
                    new[c + j] += 1
        heights = new
    return heights


def _ref(bit: Value) -> list:
    """``[signal name, bit]`` of a one-bit slice of a signal, ``[None, value]`` of a
    constant bit (the certificate's reference to a heap bit)."""
    if isinstance(bit, Const):
        return [None, bit.value & 1]
    if isinstance(bit, Signal):
        return [bit.name, 0]
    return [bit.value.name, bit.start]


def _apply_level(m: Module, columns: list[list[Value]], plan: list[tuple], name: str,
                 steps: list[dict]) -> list[list[Value]]:
    """One counter level: every placement of ``plan`` replaces its input bits by its count;
    other bits pass through. Counts are truncated at the heap's width (arithmetic is
    modulo ``2**width``)."""
    w = len(columns)
    remaining = [list(col) for col in columns]
    out: list[list[Value]] = [[] for _ in range(w)]
    adders = []
    for n, ((ins, outs), c) in enumerate(plan):
        bits, weights, inputs = [], [], []
        for j, count in enumerate(ins):
            take, remaining[c + j] = remaining[c + j][:count], remaining[c + j][count:]
            bits += take
            weights += [1 << j] * len(take)
            inputs += [[_ref(bit), c + j] for bit in take]
        width = min(outs, w - c)
        # The count as a table of its inputs, so synthesis maps each output bit to one LUT
        # rather than to a carry chain.
        table = [sum(wt for j, wt in enumerate(weights) if index >> j & 1) % (1 << width)
                 for index in range(1 << len(bits))]
        s = Signal(width, name=f"{name}_{n}")
        m.d.comb += s.eq(_lookup(table, Cat(*bits), width))
        for j in range(width):
            out[c + j].append(s[j])
        adders.append({"inputs": inputs, "outputs": [[[s.name, j], c + j]
                                                     for j in range(width)]})
    for c in range(w):
        out[c] = remaining[c] + out[c]
    steps.append({"kind": "adders", "adders": adders})
    return out


def _decoded(element: ElementFormat | None) -> bool:
    """Whether a minifloat operand is decoded to ``P`` before the tiles (its code is wider
    than :data:`CODE_DIGIT_BITS`)."""
    return element is not None and element.width > CODE_DIGIT_BITS


def _operand_range(element: ElementFormat | None, bits: int) -> tuple[int, int]:
    """Smallest and largest value of an operand: ``-max_int .. max_int`` of a minifloat,
    the full two's complement range of an integer."""
    if element is not None:
        return -element.max_int, element.max_int
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def _product_range(a_element, a_bits, b_element, b_bits) -> tuple[int, int]:
    products = [x * y for x in _operand_range(a_element, a_bits)
                for y in _operand_range(b_element, b_bits)]
    return min(products), max(products)


def _tile_pairs(a_digits: list[tuple], b_digits: list[tuple]) -> list[tuple]:
    """Every (a chunk, b chunk) pair, ``a`` outer."""
    return [(ac, bc) for ac in a_digits for bc in b_digits]


# -- AMD/Xilinx 7-series: ternary adders of LUT6_2 and CARRY4 --------------------------------
#
# A ternary adder adds three rows x, y, z in one carry chain with one LUT per column: LUT6_2
# column j (I5 tied high) gives O5 = m_j = maj(x_j, y_j, z_j) and O6 = x_j ^ y_j ^ z_j ^ m_{j-1};
# the chain adds P = x ^ y ^ z and Q = m << 1, whose propagate bit P_j ^ Q_j is O6 and whose
# generate input may be Q_j = m_{j-1} (P_j = Q_j whenever the propagate bit is 0). Three rows
# become one row two columns wider for one LUT per column, where a generic full-adder layer
# and adder need two.

#: O5 = maj(I0, I1, I2) in INIT[31:0]; O6 = I0 ^ I1 ^ I2 ^ I3 in INIT[63:32].
_TERNARY_INIT = sum(
    ((1 if (i & 1) + (i >> 1 & 1) + (i >> 2 & 1) >= 2 else 0) << i) |
    ((bin(i & 0xF).count("1") & 1) << (32 + i)) for i in range(32))


def _rows(heights: list[int]) -> list[tuple[int, int]]:
    """Spans ``[lo, hi]`` of the rows of a heap: row ``r`` holds bit ``r`` of each column."""
    spans = []
    for r in range(max(heights, default=0)):
        cols = [c for c, h in enumerate(heights) if h > r]
        spans.append((cols[0], cols[-1]))
    return spans


def _ternary_levels(heights: list[int]) -> int:
    """Ternary-adder levels until one row is left."""
    w = len(heights)
    levels = 0
    while max(heights, default=0) > 1:
        spans = _rows(heights)
        new = [0] * w
        for t in range(0, len(spans) - len(spans) % 3 if len(spans) > 2 else 0, 3):
            lo = min(sp[0] for sp in spans[t:t + 3])
            hi = max(sp[1] for sp in spans[t:t + 3])
            for c in range(lo, min(hi + 2, w - 1) + 1):
                new[c] += 1
        rest = len(spans) % 3 if len(spans) > 2 else len(spans)
        if len(spans) == 2:
            lo, hi = min(sp[0] for sp in spans), max(sp[1] for sp in spans)
            for c in range(lo, min(hi + 1, w - 1) + 1):
                new[c] += 1
            rest = 0
        for lo, hi in spans[len(spans) - rest:]:
            for c in range(lo, hi + 1):
                new[c] += 1
        heights = new
        levels += 1
    return levels


def _ternary_level(m: Module, columns: list[list[Value]], name: str, steps: list[dict]
                   ) -> list[list[Value]]:
    """Rows of three (row ``r`` = bit ``r`` of each column) become one row each; a last
    pair is added too when only two rows are left; other rows pass through."""
    w = len(columns)
    height = max(len(col) for col in columns)
    rows = [{c: col[r] for c, col in enumerate(columns) if len(col) > r} for r in range(height)]
    groups = [rows[t:t + 3] for t in range(0, height - height % 3, 3)] if height > 2 else []
    rest = rows[len(groups) * 3:] if height > 2 else []
    if height == 2:
        groups = [rows]
    out: list[list[Value]] = [[] for _ in range(w)]
    adders = []
    for n, group in enumerate(groups):
        lo = min(min(row) for row in group)
        hi = max(max(row) for row in group)
        top = min(hi + (2 if len(group) == 3 else 1), w - 1)
        bits = _ternary_add(m, group, lo, top, f"{name}_{n}")
        for c in range(lo, top + 1):
            out[c].append(bits[c - lo])
        adders.append({"inputs": [[_ref(bit), c] for row in group for c, bit in row.items()],
                       "outputs": [[_ref(bits[c - lo]), c] for c in range(lo, top + 1)]})
    for row in rest:
        for c, bit in row.items():
            out[c].append(bit)
    steps.append({"kind": "adders", "adders": adders})
    return out


def _ternary_add(m: Module, rows: list[dict], lo: int, top: int, name: str) -> list[Value]:
    """Bits ``lo..top`` of the sum of up to three rows (column -> bit), by LUT6_2 and
    CARRY4 instances."""
    n = top - lo + 1
    zero = Const(0, 1)
    maj_prev: Value = zero
    props, gens = [], []
    for j in range(n):
        c = lo + j
        ins = [row.get(c, zero) for row in rows] + [zero] * (3 - len(rows))
        o6, o5 = Signal(name=f"{name}_p{j}"), Signal(name=f"{name}_m{j}")
        m.submodules[f"{name}_lut{j}"] = Instance(
            "LUT6_2", p_INIT=Const(_TERNARY_INIT, 64),
            i_I0=ins[0], i_I1=ins[1], i_I2=ins[2], i_I3=maj_prev, i_I4=zero,
            i_I5=Const(1, 1), o_O6=o6, o_O5=o5)
        props.append(o6)
        gens.append(maj_prev)
        maj_prev = o5
    bits: list[Value] = []
    carry: Value = zero
    for q in range(0, n, 4):
        s4, d4 = props[q:q + 4], gens[q:q + 4]
        s4 += [zero] * (4 - len(s4))
        d4 += [zero] * (4 - len(d4))
        o, co = Signal(4, name=f"{name}_o{q // 4}"), Signal(4, name=f"{name}_co{q // 4}")
        m.submodules[f"{name}_carry{q // 4}"] = Instance(
            "CARRY4", i_CI=carry, i_CYINIT=zero, i_DI=Cat(*d4), i_S=Cat(*s4), o_O=o, o_CO=co)
        bits += [o[i] for i in range(4)]
        carry = co[3]
    return bits[:n]


# -- Lattice ECP5: row adders of CCU2C carry cells ---------------------------------------------
#
# A CCU2C holds two LUT4s on a fast carry chain. Half h of it (inputs A, B, C, D, carry in
# ci) gives S = P ^ ci and carry out P ? ci : G, where P = LUT4(A, B, C, D) with its INIT
# and G = INIT[B << 1 | A] (the LUT4's entries with C = D = 0, read as a LUT2 of A, B).
# P = u(A, B) ^ v(C, D) with v(0, 0) = 0 makes the half one column of the sum u + v: when
# P = 0, u = v and the carry out is u = G. So one LUT4 adds two partial-product bits
# u = a_i & b_j (or its complement) and v = a_k & b_l of one column, a whole row pair of a
# multiplier in one chain (the *entry*), and two heap bits x + y in every later level
# (``_binary_level``): one LUT4 per column and bit removed, where a 6-input counter on
# ECP5 is four LUT4s and two muxes per output bit.

#: Bits of a partial-product term: "and" = a_i & b_j, "nand" = its complement.
_TERMS = {"and": lambda p, q: p & q, "nand": lambda p, q: 1 - (p & q)}


class _RowPairTile:
    """The product of the whole operand ``a`` (``a_bits``, signed) and one chunk of ``b``
    of one or two bits (``(lsb, width, signed)``), as one CCU2C chain.

    Every partial-product bit ``a_i & b_r`` of weight ``+-2**k`` (``k = i + r - lsb``) is a
    term of column ``k``; a bit of negative weight ``-z * 2**k`` enters as ``~z`` at ``k``
    minus ``2**k`` (or, in the signed chunk's lower row, as ``z`` at ``k`` plus ``~z`` at
    ``k + 1`` minus ``2**(k+1)``, so that no column holds two complemented terms). The
    chain's value is ``a * chunk - lo``, ``lo`` the sum of those ``-2**k``; it is in
    ``[0, 2**width)``.

    Members
    -------
    columns : list of list of tuple
        Per column, up to two terms ``(kind, i, r)``, at most one ``"nand"``.
    """

    def __init__(self, a_bits: int, b_chunk: tuple[int, int, bool]):
        n = a_bits
        lsb, width, sgn = b_chunk
        self.a, self.b = (0, n, True), b_chunk
        self.shift = lsb
        rows = list(range(lsb, lsb + width))
        k_max = n + width - 1
        columns: list[list[tuple]] = [[] for _ in range(k_max + 1)]
        lo = 0
        for r in rows:
            row_negative = sgn and r == rows[-1]
            for i in range(n):
                k = i + r - lsb
                negative = row_negative != (i == n - 1)
                if not negative:
                    columns[k].append(("and", i, r))
                elif width == 2 and sgn and r == rows[0]:  # the a sign bit of the lower row
                    columns[k].append(("and", i, r))
                    columns[k + 1].append(("nand", i, r))
                    lo -= 1 << (k + 1)
                else:
                    columns[k].append(("nand", i, r))
                    lo -= 1 << k
        for k, col in enumerate(columns):
            if len(col) > 2 or sum(t[0] == "nand" for t in col) > 1:
                raise AssertionError(f"column {k} of the row pair {b_chunk}: {col}")
        self.columns = columns
        self.lo = lo
        a_vals = _chunk_values(self.a)
        b_vals = _chunk_values(b_chunk)
        values = [av * bv - lo for av in (a_vals[0], a_vals[-1], min(a_vals), max(a_vals))
                  for bv in (min(b_vals), max(b_vals))]
        if min(values) < 0:
            raise AssertionError(f"row pair {b_chunk}: negative value {min(values)}")
        self.width = max(1, max(values).bit_length())
        if self.width > len(columns) + 1:
            raise AssertionError(f"row pair {b_chunk}: {self.width} bits from "
                                 f"{len(columns)} columns")

    def halves(self, a: Value, b: Value) -> list[tuple[int, tuple]]:
        """``(INIT, (A, B, C, D))`` of each half of the chain, low column first: the
        complemented term (if any) on ``A, B``, the other on ``C, D``; a last half with
        INIT 0 gives the carry out when :attr:`width` needs it."""
        out = []
        zero = Const(0, 1)
        for col in self.columns:
            terms = sorted(col, key=lambda t: t[0] != "nand")  # "nand" first: A, B
            fns = [_TERMS[kind] for kind, _, _ in terms] + [lambda p, q: 0] * (2 - len(terms))
            ins = []
            for _, i, r in terms:
                ins += [a[i], b[r]]
            ins += [zero] * (4 - len(ins))
            init = 0
            for idx in range(16):
                bit = fns[0](idx & 1, idx >> 1 & 1) ^ fns[1](idx >> 2 & 1, idx >> 3 & 1)
                init |= bit << idx
            out.append((init, tuple(ins)))
        if self.width > len(self.columns):
            out.append((0, (zero,) * 4))
        return out


def _ccu2c_chain(m: Module, halves: list[tuple[int, tuple]], name: str) -> list[Signal]:
    """The sum bits of a chain of CCU2C cells, two halves per cell, carry in 0: one
    signal per half, each driven by its cell's port (a cut point of the proof)."""
    zero = Const(0, 1)
    halves = halves + [(0, (zero,) * 4)] * (len(halves) % 2)
    carry: Value = zero
    bits: list[Signal] = []
    for q in range(0, len(halves), 2):
        (init0, in0), (init1, in1) = halves[q], halves[q + 1]
        s0, s1 = Signal(name=f"{name}_s{q}"), Signal(name=f"{name}_s{q + 1}")
        bits += [s0, s1]
        co = Signal(name=f"{name}_co{q // 2}")
        m.submodules[f"{name}_ccu{q // 2}"] = Instance(
            "CCU2C", p_INIT0=Const(init0, 16), p_INIT1=Const(init1, 16),
            p_INJECT1_0="NO", p_INJECT1_1="NO", i_CIN=carry,
            i_A0=in0[0], i_B0=in0[1], i_C0=in0[2], i_D0=in0[3],
            i_A1=in1[0], i_B1=in1[1], i_C1=in1[2], i_D1=in1[3],
            o_S0=s0, o_S1=s1, o_COUT=co)
        carry = co
    return bits


def _binary_levels(heights: list[int]) -> int:
    """Levels of :func:`_binary_level` until one row is left."""
    w = len(heights)
    levels = 0
    while max(heights, default=0) > 1:
        spans = _rows(heights)
        new = [0] * w
        for t in range(0, len(spans) - 1, 2):
            lo = min(sp[0] for sp in spans[t:t + 2])
            hi = max(sp[1] for sp in spans[t:t + 2])
            for c in range(lo, min(hi + 1, w - 1) + 1):
                new[c] += 1
        if len(spans) % 2:
            lo, hi = spans[-1]
            for c in range(lo, hi + 1):
                new[c] += 1
        heights = new
        levels += 1
    return levels


def _binary_level(m: Module, columns: list[list[Value]], name: str, steps: list[dict]
                  ) -> list[list[Value]]:
    """Rows in pairs (row ``r`` = bit ``r`` of each column), each pair added by one CCU2C
    chain over its columns plus a carry-out column; an odd last row passes through."""
    w = len(columns)
    height = max(len(col) for col in columns)
    # Constant bits first, into the longest rows, so that they share a column of an adder
    # with a signal bit (a half of constants alone, Yosys rewrites as a LUT4 after the chain).
    columns = [[bit for bit in col if isinstance(bit, Const)] +
               [bit for bit in col if not isinstance(bit, Const)] for col in columns]
    rows = [{c: col[r] for c, col in enumerate(columns) if len(col) > r} for r in range(height)]
    out: list[list[Value]] = [[] for _ in range(w)]
    adders = []
    for n, t in enumerate(range(0, height - 1, 2)):
        x, y = rows[t], rows[t + 1]
        lo = min(min(x), min(y))
        top = min(max(max(x), max(y)) + 1, w - 1)
        halves = [_pair_half([bit for bit in (x.get(c), y.get(c)) if bit is not None])
                  for c in range(lo, top + 1)]
        s = _ccu2c_chain(m, halves, f"{name}_{n}")
        for c in range(lo, top + 1):
            out[c].append(s[c - lo])
        adders.append({"inputs": [[_ref(bit), c] for row in (x, y) for c, bit in row.items()],
                       "outputs": [[_ref(s[c - lo]), c] for c in range(lo, top + 1)]})
    if height % 2:
        for c, bit in rows[-1].items():
            out[c].append(bit)
    steps.append({"kind": "adders", "adders": adders})
    return out


def _pair_half(pair: list[Value]) -> tuple[int, tuple]:
    """``(INIT, (A, B, C, D))`` of the CCU2C half that adds the (up to two) bits of one
    column of two rows, with the carry in."""
    zero, one = Const(0, 1), Const(1, 1)
    consts = sum(1 for bit in pair if isinstance(bit, Const))
    real = [bit for bit in pair if not isinstance(bit, Const)] + [zero] * 2
    # D tied high: P = INIT[8 | C << 2 | A] = x ^ y, G = INIT[A] = x (the carry when
    # x = y); a constant one is folded into the table.
    init = 0
    for av in (0, 1):
        for cv in (0, 1):
            xs = [av, cv][:len(pair) - consts] + [1] * consts
            xs += [0] * (2 - len(xs))
            init |= (xs[0] ^ xs[1]) << (8 | cv << 2 | av)
        g = ([av] + [1] * consts)[0] if len(pair) - consts >= 1 else \
            (1 if consts else 0)
        init |= g << av
    return init, (real[0], zero, real[1], one)


def _row_tree_levels(rows: int, const: bool) -> int:
    """Levels of :func:`_row_level` until one row is left, the constant (if any) joining
    the last row of the first level with an odd number of rows, and a relay level before
    each one of at most :data:`RELAY_ROWS` rows."""
    levels = 0
    while rows > 1 or const:
        if 1 < rows <= RELAY_ROWS:
            levels += 1
        if rows % 2 and const:
            rows, const = rows + 1, False
        rows = rows // 2 + rows % 2
        levels += 1
    return levels


def _row_level(m: Module, rows: list[dict], w: int, name: str, steps: list[dict]
               ) -> list[dict]:
    """Rows (column -> bit) in pairs, each pair one row: the columns below the first that
    both rows hold pass through, the rest is one CCU2C chain up to a carry-out column
    (at most ``w - 1``; the sum is modulo ``2**w``); an odd last row passes through."""
    out: list[dict] = []
    adders = []
    for t in range(0, len(rows) - 1, 2):
        x, y = rows[t], rows[t + 1]
        both = set(x) & set(y)
        row = {c: bit for r in (x, y) for c, bit in r.items() if not both or c < min(both)}
        if both:
            lo, top = min(both), min(max(max(x), max(y)) + 1, w - 1)
            halves = [_pair_half([bit for bit in (x.get(c), y.get(c)) if bit is not None])
                      for c in range(lo, top + 1)]
            s = _ccu2c_chain(m, halves, f"{name}_{len(adders)}")
            row.update({c: s[c - lo] for c in range(lo, top + 1)})
            adders.append({"inputs": [[_ref(bit), c] for r in (x, y) for c, bit in r.items()
                                      if c >= lo],
                           "outputs": [[_ref(s[c - lo]), c] for c in range(lo, top + 1)]})
        out.append(row)
    if len(rows) % 2:
        out.append(rows[-1])
    steps.append({"kind": "adders", "adders": adders})
    return out


def _stage_rows(register: Register, rows: list[dict], name: str, steps: list[dict],
                groups: int = 0) -> list[dict]:
    """A register per row (its signal bits, low column first; constants stay). With
    ``groups`` of at least 1, row ``n`` of ``R`` loads on enable copy
    ``1 + n * groups // R``: the rows of one subtree of the tree of chains share an
    enable."""
    out = []
    registers = []
    for n, row in enumerate(rows):
        new = {c: bit for c, bit in row.items() if isinstance(bit, Const)}
        bits = [(c, bit) for c, bit in sorted(row.items()) if not isinstance(bit, Const)]
        if bits:
            value, reg_name = Cat(*(bit for _, bit in bits)), f"{name}_r{n}"
            reg = register(value, reg_name) if groups < 1 else \
                register(value, reg_name, enable=1 + n * groups // len(rows))
            registers.append({"signal": reg.name,
                              "bits": [[_ref(bit), c] for c, bit in bits]})
            new.update({c: reg[j] for j, (c, _) in enumerate(bits)})
        out.append(new)
    steps.append({"kind": "registers", "registers": registers})
    return out
