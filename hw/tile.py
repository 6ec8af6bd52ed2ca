"""Weight-stationary MX tile (MXINT or OCP MX minifloat operands): ``y_t = W x_t`` for ``T``
tokens per weight tile, weights and activations in block RAM, ``P`` lanes of dot product +
accumulator, optional float32 bias add."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.accumulator import DEFAULT_GUARD_BITS, PARTIAL_SUMS, accum_in_width, resolve_acc_width
from golden.tile import tile_blocks

from .accum_merge import MXIntAccumMerge
from .accumulator import ACC_WIDTH_HELP, MXIntAccumulator, check_acc_fields, operands
from .bitheap import DEFAULT_ARCH
from .cast import MXIntCast
from .dequantizer import MXIntDequantizer
from .dot_product import MXIntDotProduct
from .fp_add import FloatAdd
from .layouts import mxint_block_layout
from .linear import (
    all_of,
    join_outputs,
    lane_operands,
    weight_field,
    weight_layout,
    x_block_layout,
)
from .params import (
    a_bits_param,
    arch_param,
    arch_suffix,
    b_bits_param,
    block_param,
    check_element_scale,
    check_sum_fields,
    element_param,
    exp_bits_param,
    guard_bits_param,
    operands_name,
    primitives_param,
    sum_levels_param,
    sum_levels_suffix,
)
from .unit import Params, Unit, expose, param

__all__ = ["BIASES", "OUTPUTS", "UNIT", "MXIntTile", "TileParams", "tile_bias_layout",
           "tile_weight_layout"]

#: Largest K and R the generator accepts (the counters and memories are sized from them).
MAX_LENGTH = 1 << 16
#: Largest number of tokens per weight tile.
MAX_TOKENS = 1 << 16
#: Result formats: the accumulators' (sum, exponent, nan), float32 bit patterns, or MXINT
#: blocks along the output rows (through the cast unit).
OUTPUTS = ("accum", "fp32", "mx")
#: Bias adds: none, or a float32 bias per output row added to the float32 results.
BIASES = ("none", "fp32")


def tile_weight_layout(p: TileParams) -> data.StructLayout:
    """One weight word: block ``j`` of the ``P`` rows of one group, lane ``p`` in elements
    ``p*k .. p*k+k-1`` (``mantissa``, or minifloat ``codes``) and exponent ``p``:
    :func:`hw.linear.weight_layout`, the linear engine's ``w`` word."""
    return weight_layout(p)


def tile_bias_layout(*, lanes: int) -> data.StructLayout:
    """One bias word: the float32 biases of the ``P`` rows of one group, lane ``p`` in
    ``bits[p]``."""
    return data.StructLayout({"bits": data.ArrayLayout(unsigned(32), lanes)})


class MXIntTile(wiring.Component):
    """``y_t = W x_t`` for an ``R x K`` MXINT weight tile held on chip and reused for ``T``
    tokens ``x_t``, blocks of ``k`` along ``K``, ``P`` output rows computed in parallel.

    **Weights.** A tile is ``R/P`` groups of ``P`` rows, each row ``nb = ceil(K / k)``
    blocks. It arrives on ``w`` as ``D = (R/P) * nb`` words, group by group and within a
    group block by block (word ``g * nb + j`` holds block ``j`` of rows ``g*P .. g*P+P-1``),
    and is written into one bank of a two-bank weight memory (``2 * D`` words, one write
    port, one synchronous read port: block RAM). Bank ``b ^ 1`` loads while bank ``b``
    computes. Each bank has a full flag: the loader fills the bank it points at when that
    bank is not full, and sets its flag after the ``D``-th word; the compute side uses the
    bank it points at when that bank is full, and after the reads of ``T`` tokens clears the
    flag and moves to the other bank. So a handover happens exactly when the next tile is
    loaded and the current one has served its ``T`` tokens, whichever comes last.

    **Activations.** Each token's ``nb`` blocks arrive once on ``x`` into one of two
    activation slots (``2 * nb`` blocks, block RAM), with the same full-flag handshake: slot
    ``s ^ 1`` loads while slot ``s`` is read ``R/P`` times, once per group, every lane fed
    from the same read.

    **Compute.** Every cycle in which the current bank and slot are full and the lanes take
    an input, one weight word and one activation block are read (addresses ``g * nb + j``
    and ``j``, in that order for ``g = 0 .. R/P - 1``, ``j = 0 .. nb - 1``); two cycles
    later (the memories' read registers, then fabric registers) lane ``p`` gets activation
    block ``j`` and block ``j`` of row ``g*P + p``. Lane ``p`` is
    a :class:`~hw.dot_product.MXIntDotProduct` (exact block dot product, exponent sum, NaN
    flag) feeding a :class:`~hw.accumulator.MXIntAccumulator` (``align="loop"``: the lanes
    run in lockstep, no data-dependent stall; alignment to the running maximum exponent with
    ``guard_bits`` guard bits, ``acc_width`` bits, saturating). After block ``nb - 1`` of a
    group, ``o`` carries that group's results.

    **Arithmetic.** For token ``t`` (in the order the tokens arrived) and row ``n`` of the
    tile, the result is :func:`golden.linear.linear_blocks` of row ``n`` and ``x_t``
    (:func:`golden.tile.tile_blocks` per token): ``sum * 2**(exponent - G - 2*bias -
    (w_bits - 2) - (x_bits - 2))``. With ``output="fp32"`` each lane's result is rounded
    once to float32 by a :class:`~hw.dequantizer.MXIntDequantizer` (``source="accum"``),
    exactly :func:`golden.linear.linear_fp32`. With ``output="mx"`` those float32 values are
    then cast (:class:`~hw.cast.MXIntCast`, ``rounding="even"``) into MXINT(``out_bits``,
    ``exp_bits``, ``k``) blocks along the output rows, rows ``i*k .. i*k+k-1`` of a token
    forming block ``i``: exactly :func:`golden.tile.tile_mx`, i.e. :func:`golden.quantize`
    of the token's float32 output row vector, so that the output is the next tile's ``x``.

    **Bias.** With ``bias="fp32"`` (``output`` ``"fp32"`` or ``"mx"``) each float32 result
    ``y`` of row ``n`` becomes ``round(y + b_n)`` before the output (and before the cast):
    an IEEE float32 addition, nearest even, subnormals kept, overflow to infinity, ``-0``
    only for ``-0 + -0``, every NaN the canonical quiet NaN ``0x7fc00000``
    (:class:`~hw.fp_add.FloatAdd` per lane, :func:`golden.tile.tile_bias`): what
    ``golden.nn.MXLinear`` does with ``y + bias`` in torch float32, NaN payloads aside. The
    biases of a weight tile arrive on ``b`` as ``R/P`` words (one per group, in group
    order) into one bank of a two-bank bias memory (``2 * R/P`` words of ``32 * P`` bits),
    with its own full flags: the loader fills a bank that is not full; the output side
    reads the bank of the tile whose results it is adding, and frees it after the tile's
    last result (``T`` tokens), so a tile's biases are held exactly as long as its results
    need them, and the next tile's load hides behind the current one. Results wait (the
    lanes stall) until their tile's biases are loaded.

    **Order of outputs.** Per weight tile, per token, per group (``accum``/``fp32``: one
    transfer of ``P`` results per group; ``mx``: one transfer of ``C = max(1, P / k)``
    blocks per ``C * k`` rows).

    **Throughput and latency.** In steady state one block per lane per cycle (``P * k``
    multiply-accumulates; ``B`` blocks and ``P * k * B`` with ``blocks_per_cycle=B``, whose
    loads below hide when ``T >= B`` and ``R/P >= B``): a token takes
    :attr:`cycles_per_token` ``= (R/P) * nb / B`` cycles and a tile ``T`` times that.
    Loading a tile takes ``D`` cycles of ``w`` and a token's activations ``nb`` cycles of
    ``x``; both hide behind compute (``D <= T * D`` and
    ``nb <= (R/P) * nb``), so only the first tile's load and first token are exposed. The
    steady state needs ``w`` to deliver one word per ``T`` compute cycles on average, i.e.
    ``P * k`` weights per ``T`` cycles: the reuse ``T`` divides the weight bandwidth.
    :attr:`latency` cycles pass from the read of a group's last block to its result (two
    read cycles, the dot product, the accumulator, the merge's 3 with ``B > 1``, plus the
    dequantiser's (6) for
    ``fp32``, plus those and
    the cast's for ``mx``, where a block's result waits for its ``k / P`` groups; plus 6
    for the bias add). The lanes, their converters, adders and casts share one handshake and
    stall together on ``o.ready``; ``w``, ``x`` and ``b`` are independent streams.

    **Element formats.** Each operand is MXINT or an OCP MX minifloat (``x_element``,
    ``w_element``, as :class:`~hw.linear.MXIntLinear`): weight words and activation blocks
    then hold element codes (``codes``) instead of mantissas, the scale is E8M0, and the
    lanes' dot products, accumulators and converters take the formats as in the linear
    engine; the arithmetic is :func:`golden.linear.linear_blocks` of those formats
    (``f = m - 2`` for MXINT, the element's ``bias + M - 1`` for a minifloat, in the scale
    factor below). The MX output (``output="mx"``) is MXINT(``out_bits``) blocks whatever
    the inputs.

    Parameters
    ----------
    x_element, w_element : str
        ``"int"`` (default, MXINT of ``x_bits``/``w_bits``) or ``"e5m2"``, ``"e4m3"``,
        ``"e3m2"``, ``"e2m3"``, ``"e2m1"`` (``--aformat``/``--wformat``/``--format``).
    x_bits, w_bits : int
        Mantissa widths of MXINT activations and weights, 2 to 24 (None for a minifloat).
    exp_bits : int
        Shared exponent width, 2 to 8; 8 (E8M0) with a minifloat operand.
    block : int
        ``k``, 1 to 1024.
    k_len : int
        ``K``, 1 to 65536 (the last block zero-padded, as :func:`golden.quantize` pads);
        default ``4 * k``.
    rows : int
        ``R``, rows of the weight tile, a multiple of ``lanes``, up to 65536.
    lanes : int
        ``P``, rows computed in parallel, 1 to 64.
    tokens : int
        ``T``, tokens each weight tile serves, 1 to 65536.
    blocks_per_cycle : int
        ``B``, blocks of its row each lane takes per cycle: 1 (default), 2 or 4, dividing
        ``nb``. Lane ``p`` then has ``B`` dot products and ``B`` accumulators, partial sum
        ``q`` taking blocks ``q, q + B, ...`` of the row, and a
        :class:`~hw.accum_merge.MXIntAccumMerge` combining them at the row's end
        (:func:`golden.tile.tile_blocks` with ``blocks_per_cycle=B``, i.e.
        :func:`golden.accumulator.accumulate` with ``partial_sums=B``); the weights and
        activations are ``B`` memories each (item ``i`` of a bank in memory ``i mod B`` at
        ``i // B``), read together. ``acc_width`` must be at least ``in_width + G +
        ceil(log2(nb / B))`` (no partial sum saturates). ``w`` and ``x`` still take one word
        or block per transfer.
    guard_bits, acc_width : int or None
        Of the accumulators (defaults as :class:`~hw.accumulator.MXIntAccumulator`).
    arch, levels_per_stage, primitives
        Of the dot products (as :class:`~hw.dot_product.MXIntDotProduct`; with
        ``primitives`` other than ``"generic"`` a simulator needs that family's cell models,
        :attr:`cell_library`).
    output : str
        ``"accum"`` (default), ``"fp32"`` or ``"mx"`` (then ``rows`` must be a multiple of
        ``block``, and ``block`` a multiple of ``lanes`` or ``lanes`` of ``block``).
    out_bits : int or None
        ``output="mx"`` only: mantissa bits of the output blocks, 2 to 24 (default
        ``x_bits``; required when the activations are a minifloat).
    bias : str
        ``"none"`` (default) or ``"fp32"`` (a float32 bias per row; ``output`` ``"fp32"``
        or ``"mx"``).

    Members
    -------
    x : ``In(stream.Signature(mxint_block_layout(x_bits)))``
        (``mxfp_block_layout``, field ``codes``, for minifloat activations)
    w : ``In(stream.Signature(tile_weight_layout(...)))``
    b : ``In(stream.Signature(tile_bias_layout(lanes=P)))``
        With ``bias="fp32"`` only: float32 bias patterns, one word per group.
    o : ``Out(stream.Signature(...))``
        ``accum``: ``sum``: ``P`` signed ``acc_width``, ``exponent``: ``P`` of ``exp_bits +
        1``, ``nan``: ``P`` flags. ``fp32``: ``bits``: ``P`` float32 patterns, lane 0 in the
        low bits. ``mx`` with ``C = 1``: ``mxint_block_layout(out_bits)``; with ``C > 1``:
        ``mantissa``: ``C * k`` signed ``out_bits``, ``exponent``: ``C`` codes.

    Raises
    ------
    TypeError
        If a parameter is not an integer (or a string, for ``arch`` and ``output``).
    ValueError
        If a parameter is out of range or the parameters contradict each other.
    """

    def __init__(self, *, x_element: str = "int", w_element: str = "int",
                 x_bits: int | None = None, w_bits: int | None = None, exp_bits: int = 8,
                 block: int,
                 k_len: int | None = None, rows: int, lanes: int = 1, tokens: int = 1,
                 blocks_per_cycle: int = 1, guard_bits: int = DEFAULT_GUARD_BITS,
                 acc_width: int | None = None,
                 arch: str = DEFAULT_ARCH, levels_per_stage: int | None = None,
                 output: str = "accum", out_bits: int | None = None, bias: str = "none",
                 primitives: str = "generic") -> None:
        self.params = TileParams(x_element=x_element, w_element=w_element, x_bits=x_bits,
                                 w_bits=w_bits, exp_bits=exp_bits, block=block,
                                 k_len=k_len, rows=rows, lanes=lanes, tokens=tokens,
                                 blocks_per_cycle=blocks_per_cycle, guard_bits=guard_bits,
                                 acc_width=acc_width, arch=arch,
                                 levels_per_stage=levels_per_stage, output=output,
                                 out_bits=out_bits, bias=bias, primitives=primitives)
        # The lanes take the operands as in hw/linear.py (MXINT ones as they always did).
        # B = blocks_per_cycle dot products and accumulators per lane, lane p's partial sum
        # q at index p * B + q, and with B > 1 a merge of the B partial sums per lane.
        B = self.blocks_per_cycle
        ops = lane_operands(self.params)
        self._dots = [MXIntDotProduct(**ops, exp_bits=exp_bits, block=block, arch=arch,
                                      levels_per_stage=self.params.levels_per_stage,
                                      primitives=primitives)
                      for _ in range(lanes * B)]
        self._accs = [MXIntAccumulator(**ops, exp_bits=exp_bits, block=block,
                                       guard_bits=self.guard_bits, acc_width=self.acc_width,
                                       align="loop")
                      for _ in range(lanes * B)]
        self._merges = [MXIntAccumMerge(parts=B, acc_width=self.acc_width, exp_bits=exp_bits)
                        for _ in range(lanes)] if B > 1 else []
        self._convs = []
        self._casts = []
        self._adds = [FloatAdd(exp_bits=8, man_bits=23) for _ in range(lanes)] \
            if bias == "fp32" else []
        if output in ("fp32", "mx"):
            self._convs = [MXIntDequantizer(source="accum", **ops,
                                            exp_bits=exp_bits, block=block,
                                            guard_bits=self.guard_bits,
                                            acc_width=self.acc_width)
                           for _ in range(lanes)]
        if output == "mx":
            self._casts = [MXIntCast(man_bits=self.out_bits, exp_bits=exp_bits, block=block)
                           for _ in range(self.casts)]
            if self.casts == 1:
                out_layout = mxint_block_layout(man_bits=self.out_bits, exp_bits=exp_bits,
                                                block=block)
            else:
                out_layout = data.StructLayout({
                    "mantissa": data.ArrayLayout(signed(self.out_bits), self.casts * block),
                    "exponent": data.ArrayLayout(unsigned(exp_bits), self.casts),
                })
        elif output == "fp32":
            out_layout = data.StructLayout({"bits": data.ArrayLayout(unsigned(32), lanes)})
        else:
            out_layout = data.StructLayout({
                "sum": data.ArrayLayout(signed(self.acc_width), lanes),
                "exponent": data.ArrayLayout(unsigned(exp_bits + 1), lanes),
                "nan": data.ArrayLayout(unsigned(1), lanes),
            })
        ports = {
            "x": In(stream.Signature(x_block_layout(self.params))),
            "w": In(stream.Signature(tile_weight_layout(self.params))),
        }
        if self._adds:
            ports["b"] = In(stream.Signature(tile_bias_layout(lanes=lanes)))
        super().__init__({**ports, "o": Out(stream.Signature(out_layout))})

    cell_library = property(lambda self: self._dots[0].cell_library,
                            doc="Family whose Yosys ``cells_sim.v`` a simulator needs, or None.")

    @property
    def blocks(self) -> int:
        """Blocks per row, ``nb = ceil(K / k)``."""
        return -(-self.k_len // self.block)

    @property
    def groups(self) -> int:
        """Groups of ``P`` rows in a tile, ``R / P``."""
        return self.rows // self.lanes

    @property
    def words(self) -> int:
        """Weight words per tile (one bank), ``D = (R / P) * nb``."""
        return self.groups * self.blocks

    @property
    def casts(self) -> int:
        """Cast units with ``output="mx"``, ``C = max(1, P / k)`` (0 otherwise)."""
        return max(1, self.lanes // self.block) if self.output == "mx" else 0

    @property
    def cycles_per_token(self) -> int:
        """Steady-state cycles per token, ``(R / P) * nb / B``."""
        return self.words // self.blocks_per_cycle

    @property
    def macs_per_cycle(self) -> int:
        """Multiply-accumulate units, ``P * k * B``."""
        return self.lanes * self.block * self.blocks_per_cycle

    @property
    def latency(self) -> int:
        """Cycles from the read of a group's last block to its result being valid (for
        ``mx``: of the last group of a block)."""
        latency = 2 + self._dots[0].latency + self._accs[0].latency
        latency += self._merges[0].latency if self._merges else 0
        latency += self._convs[0].latency if self._convs else 0
        latency += self._adds[0].latency if self._adds else 0
        return latency + (self._casts[0].latency if self._casts else 0)

    def elaborate(self, platform) -> Module:
        m = Module()
        # With B blocks per cycle, nb and D count reads (B blocks, B words each): the
        # memories are B wide (B of each, item i in memory i mod B at address i // B).
        B = self.blocks_per_cycle
        k, P, nb, D, T = self.block, self.lanes, self.blocks // B, self.words // B, self.tokens
        for i, (dot, acc) in enumerate(zip(self._dots, self._accs, strict=True)):
            name = f"{i}" if B == 1 else f"{i // B}_{i % B}"
            m.submodules[f"dot{name}"] = dot
            m.submodules[f"acc{name}"] = acc

        # Memories: weights in two banks of D words (bank b at b*D), activations in two
        # slots of nb blocks. One write port and one synchronous read port each, no
        # transparency (a word is never written while it can be read: the loaders write
        # only banks and slots that are not full, the compute side reads only full ones).
        w_layout = tile_weight_layout(self.params)
        x_layout = x_block_layout(self.params)
        # (Plain loops, no comprehensions over the locals: a local that a comprehension
        # reads becomes a cell, and Amaranth then cannot name the signals assigned with it.)
        w_wrs, w_rds, x_wrs, x_rds = [], [], [], []
        for q in range(B):
            w_mem = Memory(shape=w_layout, depth=2 * D, init=[])
            x_mem = Memory(shape=x_layout, depth=2 * nb, init=[])
            m.submodules["w_mem" if B == 1 else f"w_mem{q}"] = w_mem
            m.submodules["x_mem" if B == 1 else f"x_mem{q}"] = x_mem
            w_wr, w_rd = w_mem.write_port(), w_mem.read_port()
            x_wr, x_rd = x_mem.write_port(), x_mem.read_port()
            w_wrs.append(w_wr)
            w_rds.append(w_rd)
            x_wrs.append(x_wr)
            x_rds.append(x_rd)

        # Full flags of the two weight banks and the two activation slots: set by the
        # loaders, cleared by the compute side (never the same bit in one cycle: a loader
        # sets the flag of a bank that is not full, the compute side clears a full one).
        w_full, x_full = Signal(2), Signal(2)
        w_set, w_clr, x_set, x_clr = Signal(2), Signal(2), Signal(2), Signal(2)
        m.d.sync += [w_full.eq((w_full & ~w_clr) | w_set),
                     x_full.eq((x_full & ~x_clr) | x_set)]

        # Weight loader: word `w_idx` of the bank `w_bank` being loaded.
        w_bank, w_idx = Signal(), Signal(range(D * B))
        self._loader(m, self.w, w_wrs, full=w_full, loaded=w_set, bank=w_bank, index=w_idx,
                     depth=D)
        # Activation loader: block `x_idx` of the slot `x_slot` being loaded.
        x_slot, x_idx = Signal(), Signal(range(nb * B))
        self._loader(m, self.x, x_wrs, full=x_full, loaded=x_set, bank=x_slot, index=x_idx,
                     depth=nb)

        # Compute side: word `r_idx` of bank `r_bank` with block `r_blk` of slot `r_slot`,
        # for token `r_tok` of the tile. Two stages: the memories' read registers
        # (`staged`: they hold a read), then a copy in fabric registers, the lanes' input
        # (`held`), so that no logic follows the block RAM's slow clock-to-out. Both stall
        # together: the read ports' enable and the copy's are the advance, so a read that
        # is not taken is held (stable payload while valid and not ready).
        r_bank, r_slot = Signal(), Signal()
        r_idx, r_blk, r_tok = Signal(range(D)), Signal(range(nb)), Signal(range(T))
        staged, held = Signal(), Signal()
        w_data, x_data = [], []
        for q in range(B):  # (with B = 1 the names they always had)
            w_data.append(Signal(w_layout, name=None if B == 1 else f"w_data{q}"))
            x_data.append(Signal(x_layout, name="x_data" if B == 1 else f"x_data{q}"))
        take = Signal()
        advance = Signal()
        issue = Signal()
        m.d.comb += [
            take.eq(all_of([dot.a.ready & dot.b.ready for dot in self._dots])),
            advance.eq(~held | take),
            issue.eq(advance & w_full.bit_select(r_bank, 1) & x_full.bit_select(r_slot, 1)),
        ]
        for w_rd in w_rds:
            m.d.comb += w_rd.addr.eq(Mux(r_bank, r_idx + D, r_idx))
        for x_rd in x_rds:
            m.d.comb += x_rd.addr.eq(Mux(r_slot, r_blk + nb, r_blk))
        for w_rd, x_rd in zip(w_rds, x_rds, strict=True):
            m.d.comb += [w_rd.en.eq(advance), x_rd.en.eq(advance)]
        with m.If(advance):
            m.d.sync += [staged.eq(issue), held.eq(staged)]
            for w_rd, x_rd, w_reg, x_reg in zip(w_rds, x_rds, w_data, x_data, strict=True):
                m.d.sync += [w_reg.eq(w_rd.data), x_reg.eq(x_rd.data)]
        with m.If(issue):
            m.d.sync += r_blk.eq(Mux(r_blk == nb - 1, 0, r_blk + 1))
            with m.If(r_idx == D - 1):  # the token's last read: its slot is free
                m.d.sync += [r_idx.eq(0), r_slot.eq(~r_slot)]
                m.d.comb += x_clr.eq(Mux(r_slot, 0b10, 0b01))
                with m.If(r_tok == T - 1):  # the tile's last token: its bank is free
                    m.d.sync += [r_tok.eq(0), r_bank.eq(~r_bank)]
                    m.d.comb += w_clr.eq(Mux(r_bank, 0b10, 0b01))
                with m.Else():
                    m.d.sync += r_tok.eq(r_tok + 1)
            with m.Else():
                m.d.sync += r_idx.eq(r_idx + 1)

        field, wbits, _ = weight_field(self.params)
        for i, dot in enumerate(self._dots):
            p, q = divmod(i, B)  # lane p, partial sum q: block q of each read
            m.d.comb += [
                dot.a.payload.eq(x_data[q]),
                getattr(dot.b.payload, field).as_value().eq(
                    getattr(w_data[q], field).as_value()[p * k * wbits:(p + 1) * k * wbits]),
                dot.b.payload.exponent.eq(w_data[q].exponent[p]),
                dot.a.valid.eq(held),
                dot.b.valid.eq(held),
            ]

        # Dot products to accumulators, as in hw/linear.py: a block count marks the last
        # block of each row; the accumulators (align="loop") run in lockstep, joined anyway
        # so that no lane can run ahead.
        count = Signal(range(nb))
        last = Signal()
        m.d.comb += last.eq(count == nb - 1)
        acc_ready = [acc.i.ready for acc in self._accs]
        for p, (dot, acc) in enumerate(zip(self._dots, self._accs, strict=True)):
            others = acc_ready[:p] + acc_ready[p + 1:]
            m.d.comb += [
                acc.i.payload.sum.eq(dot.o.payload.sum),
                acc.i.payload.exponent.eq(dot.o.payload.exponent),
                acc.i.payload.nan.eq(dot.o.payload.nan),
                acc.i.payload.last.eq(last),
                acc.i.valid.eq(dot.o.valid & all_of(others) if others else dot.o.valid),
                dot.o.ready.eq(all_of(acc_ready)),
            ]
        with m.If(self._accs[0].i.valid & self._accs[0].i.ready):
            m.d.sync += count.eq(Mux(last, 0, count + 1))

        # With B > 1 each lane's B partial sums are merged (largest exponent, floor shifts,
        # add, range check) into its result; the merges run in lockstep too.
        sums = [acc.o for acc in self._accs]
        if self._merges:
            for p, merge in enumerate(self._merges):
                m.submodules[f"merge{p}"] = merge
                parts = sums[p * B:(p + 1) * B]
                for q, part in enumerate(parts):
                    m.d.comb += merge.i.payload[q].eq(part.payload)
                join_outputs(m, merge.i, parts)
            sums = [merge.o for merge in self._merges]

        if not self._convs:
            for p, out in enumerate(sums):
                m.d.comb += [
                    self.o.payload.sum[p].eq(out.payload.sum),
                    self.o.payload.exponent[p].eq(out.payload.exponent),
                    self.o.payload.nan[p].eq(out.payload.nan),
                ]
            join_outputs(m, self.o, sums)
            return m

        # float32: each lane's result rounded once; the converters stay in lockstep.
        for p, (out, conv) in enumerate(zip(sums, self._convs, strict=True)):
            m.submodules[f"fp32_{p}"] = conv
            m.d.comb += [conv.i.payload.eq(out.payload), conv.i.valid.eq(out.valid),
                         out.ready.eq(conv.i.ready)]
        # The float32 results: the converters', or with a bias the adders'.
        results = [(conv.o, conv.o.payload.bits) for conv in self._convs]
        if self._adds:
            results = self._bias_add(m, results)
        if not self._casts:
            for p, (_, bits) in enumerate(results):
                m.d.comb += self.o.payload.bits[p].eq(bits)
            join_outputs(m, self.o, [out for out, _ in results])
            return m

        # MX output: the P float32 results of a group, joined into one stream `f`.
        f = stream.Signature(data.ArrayLayout(unsigned(32), P)).flip().create()
        for p, (_, bits) in enumerate(results):
            m.d.comb += f.payload[p].eq(bits)
        join_outputs(m, f, [out for out, _ in results])
        for c, cast in enumerate(self._casts):
            m.submodules[f"cast{c}"] = cast
        if k >= P:
            # One cast; a block is k/P groups: the first k/P - 1 are held in registers, the
            # block goes to the cast with the last one (no extra cycle).
            cast, per = self._casts[0], k // P
            held = Signal(32 * P * (per - 1)) if per > 1 else None
            pos = Signal(range(per))
            m.d.comb += cast.i.payload.bits.as_value().eq(
                Cat(held, f.payload) if held is not None else f.payload)
            m.d.comb += [cast.i.valid.eq(f.valid & (pos == per - 1)),
                         f.ready.eq((pos != per - 1) | cast.i.ready)]
            with m.If(f.valid & f.ready):
                m.d.sync += pos.eq(Mux(pos == per - 1, 0, pos + 1))
                if held is not None:
                    for q in range(per - 1):
                        with m.If(pos == q):
                            m.d.sync += held[32 * P * q:32 * P * (q + 1)].eq(f.payload)
        else:
            # P/k casts, one per block of the group, in lockstep.
            for c, cast in enumerate(self._casts):
                m.d.comb += [
                    cast.i.payload.bits.as_value().eq(
                        f.payload.as_value()[32 * k * c:32 * k * (c + 1)]),
                    cast.i.valid.eq(f.valid),
                ]
            m.d.comb += f.ready.eq(all_of([cast.i.ready for cast in self._casts]))
        mb = self.out_bits * k
        for c, cast in enumerate(self._casts):
            if self.casts == 1:
                m.d.comb += self.o.payload.eq(cast.o.payload)
            else:
                m.d.comb += [
                    self.o.payload.mantissa.as_value()[mb * c:mb * (c + 1)].eq(
                        cast.o.payload.mantissa.as_value()),
                    self.o.payload.exponent[c].eq(cast.o.payload.exponent),
                ]
        join_outputs(m, self.o, [cast.o for cast in self._casts])
        return m

    @staticmethod
    def _loader(m: Module, source, ports: list, *, full, loaded, bank, index,
                depth: int) -> None:
        """The loader of a double-buffered memory: item ``index`` of the bank ``bank`` that
        ``source`` fills, taken while that bank is not ``full``; at the bank's last item
        ``loaded`` raises its full flag and the other bank is next. One write port per
        memory: with ``B = len(ports)`` (a power of 2) item ``i`` goes to memory
        ``i mod B`` at address ``i // B``, bank 1 at ``depth`` and above; a bank holds
        ``depth * B`` items."""
        B = len(ports)
        low = B.bit_length() - 1
        addr, sel = (index, None) if B == 1 else (index[low:], index[:low])
        take = source.valid & source.ready
        m.d.comb += source.ready.eq(~full.bit_select(bank, 1))
        for q, wr in enumerate(ports):
            m.d.comb += [
                wr.addr.eq(Mux(bank, addr + depth, addr)),
                wr.data.eq(source.payload),
                wr.en.eq(take if sel is None else take & (sel == q)),
            ]
        with m.If(take):
            with m.If(index == depth * B - 1):
                m.d.sync += [index.eq(0), bank.eq(~bank)]
                m.d.comb += loaded.eq(Mux(bank, 0b10, 0b01))
            with m.Else():
                m.d.sync += index.eq(index + 1)

    def _bias_add(self, m: Module, results: list) -> list:
        """``round(y + b)`` of the float32 results ``[(stream, bits), ...]`` of a group with
        their rows' biases: the bias memory, its loader and the adders."""
        P, G, T = self.lanes, self.groups, self.tokens
        m.submodules.b_mem = b_mem = Memory(shape=tile_bias_layout(lanes=P), depth=2 * G,
                                            init=[])
        b_wr, b_rd = b_mem.write_port(), b_mem.read_port()

        # Full flags of the two bias banks: set by the loader, cleared by the output side
        # after the last result of the tile's T tokens.
        b_full, b_set, b_clr = Signal(2), Signal(2), Signal(2)
        m.d.sync += b_full.eq((b_full & ~b_clr) | b_set)
        b_bank, b_idx = Signal(), Signal(range(G))
        self._loader(m, self.b, [b_wr], full=b_full, loaded=b_set, bank=b_bank, index=b_idx,
                     depth=G)

        # Output side: the results of group `o_grp` of token `o_tok` of the tile in bank
        # `o_bank`, joined into one stream `y`. The read port is addressed with the counters'
        # next values, so its data is the current group's from the cycle after a transfer
        # (no bubble); it is good (`b_ok`) when the bank was full at that read (a full bank
        # is not written).
        y = stream.Signature(data.ArrayLayout(unsigned(32), P)).flip().create()
        for p, (_, bits) in enumerate(results):
            m.d.comb += y.payload[p].eq(bits)
        join_outputs(m, y, [out for out, _ in results])
        o_bank, o_grp, o_tok = Signal(), Signal(range(G)), Signal(range(T))
        nxt_bank, nxt_grp, nxt_tok = Signal(), Signal(range(G)), Signal(range(T))
        b_ok, take = Signal(), Signal()
        end_tok = o_grp == G - 1
        end_tile = end_tok & (o_tok == T - 1)
        m.d.comb += [
            take.eq(y.valid & y.ready),
            nxt_grp.eq(Mux(take, Mux(end_tok, 0, o_grp + 1), o_grp)),
            nxt_tok.eq(Mux(take & end_tok, Mux(end_tile, 0, o_tok + 1), o_tok)),
            nxt_bank.eq(Mux(take & end_tile, ~o_bank, o_bank)),
            b_clr.eq(Mux(take & end_tile, Mux(o_bank, 0b10, 0b01), 0)),
            b_rd.addr.eq(Mux(nxt_bank, nxt_grp + G, nxt_grp)),
        ]
        m.d.sync += [o_bank.eq(nxt_bank), o_grp.eq(nxt_grp), o_tok.eq(nxt_tok),
                     b_ok.eq(b_full.bit_select(nxt_bank, 1))]

        # The adders, in lockstep (one StallPipeline each, the same ready).
        add_ready = [add.i.ready for add in self._adds]
        for p, add in enumerate(self._adds):
            m.submodules[f"bias{p}"] = add
            others = add_ready[:p] + add_ready[p + 1:]
            m.d.comb += [
                add.i.payload.a.eq(y.payload[p]),
                add.i.payload.c.eq(b_rd.data.bits[p]),
                add.i.valid.eq(y.valid & b_ok & all_of(others) if others else y.valid & b_ok),
            ]
        m.d.comb += y.ready.eq(b_ok & all_of(add_ready))
        return [(add.o, add.o.payload.r) for add in self._adds]


@dataclass(frozen=True, kw_only=True)
class TileParams(Params):
    """Parameters of :class:`MXIntTile` (see there for their meaning)."""

    x_element: str = element_param("x", "activations", "--abits")
    w_element: str = element_param("w", "weights", "--wbits")
    x_bits: int = a_bits_param(applies=("x_element", "int"))
    w_bits: int = b_bits_param(applies=("w_element", "int"))
    exp_bits: int = exp_bits_param()
    block: int = block_param()
    k_len: int | None = param(None, help="length K of x and of the weight rows (default: 4 "
                                         "blocks)", lo=1, hi=MAX_LENGTH)
    rows: int = param(help="rows R of the weight tile", lo=1, hi=MAX_LENGTH)
    lanes: int = param(1, help="rows computed in parallel, P", lo=1, hi=64)
    tokens: int = param(1, help="tokens T each weight tile serves (its reuse)", lo=1,
                        hi=MAX_TOKENS, option="--tile-tokens")
    blocks_per_cycle: int = param(1, lo=1, hi=max(PARTIAL_SUMS), implicit=True,
                                  help="blocks B of its row each lane takes per cycle, 1, 2 or "
                                       "4 (dividing ceil(K / k)): B dot products and "
                                       "accumulators per lane, block j into partial sum j "
                                       "mod B, merged at the row's end")
    guard_bits: int = guard_bits_param(DEFAULT_GUARD_BITS)
    acc_width: int | None = param(None, help=ACC_WIDTH_HELP)
    arch: str = arch_param()
    levels_per_stage: int | None = sum_levels_param()
    primitives: str = primitives_param(implicit=True)
    output: str = param("accum", choices=OUTPUTS,
                        help="result format: the accumulators' (sum, exponent, nan), float32 "
                             "patterns, or MXINT blocks of out_bits along the output rows")
    out_bits: int | None = param(None, lo=2, hi=24, applies=("output", "mx"),
                                 help="mantissa bits of the MX output blocks, sign included "
                                      "(default: x_bits)")
    bias: str = param("none", choices=BIASES, implicit=True,
                      help="'fp32': add a float32 bias per output row (stream b, one word of P "
                           "biases per group, double-buffered) to the float32 results, one more "
                           "IEEE rounding, before the output or the MX cast")

    def resolve(self) -> None:
        if self.rows % self.lanes:
            raise ValueError(f"rows must be a multiple of lanes ({self.lanes}), not {self.rows}")
        if self.k_len is None:
            self._set("k_len", 4 * self.block)
        B, nb = self.blocks_per_cycle, -(-self.k_len // self.block)
        if B not in PARTIAL_SUMS:
            raise ValueError(f"blocks_per_cycle must be 1, 2 or 4, not {B}")
        if nb % B:
            raise ValueError(f"blocks_per_cycle ({B}) must divide the blocks per row, "
                             f"ceil(k_len / block) = {nb}, not leave {nb % B}")
        if self.output == "mx":
            if self.out_bits is None and self.x_element != "int":
                raise ValueError(f"out_bits must be given with output 'mx' when x_element is "
                                 f"a minifloat ({self.x_element!r}): the MX output is MXINT")
            if self.out_bits is None:
                self._set("out_bits", self.x_bits)
            if self.rows % self.block:
                raise ValueError(f"rows must be a multiple of block ({self.block}) with "
                                 f"output 'mx', not {self.rows}")
            if self.block % self.lanes and self.lanes % self.block:
                raise ValueError(f"lanes must divide block ({self.block}) or be a multiple of "
                                 f"it with output 'mx', not {self.lanes}")
        if self.bias != "none" and self.output == "accum":
            raise ValueError(f"bias {self.bias!r} needs output 'fp32' or 'mx', not output "
                             f"{self.output!r}")
        check_element_scale(self, "x", "w")
        check_acc_fields(self, "x", "w")
        check_sum_fields(self)
        if B > 1:
            # A partial sum's result does not say when it saturated, so the merge could not
            # tell which of two opposite excursions came first (golden's rule): the
            # partial sums must not saturate at all, n / B inputs of in_width bits.
            need = accum_in_width(**operands(self, "x", "w")) + self.guard_bits + \
                (nb // B - 1).bit_length()
            if self.acc_width < need:
                raise ValueError(f"acc_width must be at least {need} with blocks_per_cycle "
                                 f"{B} and {nb // B} blocks per partial sum (dot results, "
                                 f"guard bits and ceil(log2 {nb // B}): no partial sum may "
                                 f"saturate), not {self.acc_width}")

    @property
    def name(self) -> str:
        name = operands_name("tile", self, "x", "w")
        name += (f"_k{self.block}_K{self.k_len}_R{self.rows}_P{self.lanes}_T{self.tokens}"
                 + (f"_B{self.blocks_per_cycle}" if self.blocks_per_cycle > 1 else "")
                 + f"_g{self.guard_bits}")
        if self.acc_width != resolve_acc_width(guard_bits=self.guard_bits, acc_width=None,
                                               **operands(self, "x", "w")):
            name += f"_acc{self.acc_width}"
        name += arch_suffix(self)
        name += sum_levels_suffix(self)
        bias = "" if self.bias == "none" else f"_bias{self.bias}"
        if self.output == "mx":
            return name + f"_mx{self.out_bits}" + bias
        return name + ("" if self.output == "accum" else f"_{self.output}") + bias


expose(MXIntTile, TileParams)


def _packets(p: TileParams) -> dict[str, int]:
    """Output transfers per token."""
    if p.output == "mx":
        return {"o": p.rows // (p.block * max(1, p.lanes // p.block))}
    return {"o": p.rows // p.lanes}


UNIT = Unit(
    key="tile",
    summary="MX weight-stationary tile (MXINT or MXFP operands): R x K weights "
            "double-buffered in block RAM, reused for T tokens, P lanes of dot product + "
            "accumulator (+ float32 or MX output with --output fp32/mx, + a float32 bias "
            "add with --bias fp32)",
    params=TileParams,
    component=MXIntTile,
    golden=tile_blocks,
    model="sim.units.tile:TileModel",
    macs=lambda p: p.lanes * p.block * p.blocks_per_cycle,
    packets=_packets,
    command_defaults={"rows": 4, "lanes": 2, "tokens": 2},
)
