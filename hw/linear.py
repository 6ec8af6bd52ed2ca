"""MX matrix-vector engine (MXINT and OCP MX minifloat operands): ``y = W x`` with P
output lanes."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.accumulator import DEFAULT_GUARD_BITS, default_guard_bits, resolve_acc_width
from golden.linear import linear_blocks
from golden.minifloat import ELEMENTS

from .accumulator import (
    ACC_WIDTH_HELP,
    ALIGN_HELP,
    ALIGNS,
    DEFAULT_ALIGN,
    MXIntAccumulator,
    check_acc_fields,
    operands,
)
from .bitheap import DEFAULT_ARCH
from .dequantizer import MXIntDequantizer
from .dot_product import MXIntDotProduct
from .layouts import mxfp_block_layout, mxint_block_layout
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
    operands_name,
    out_ready_param,
    out_ready_suffix,
    primitives_param,
    sum_levels_param,
    sum_levels_suffix,
)
from .unit import Params, Unit, expose, param

__all__ = ["OUTPUTS", "UNIT", "LinearParams", "MXIntLinear", "lane_operands", "weight_field",
           "weight_layout", "x_block_layout"]

#: Largest K and N the generator accepts (the counters are sized from them).
MAX_LENGTH = 1 << 20
#: Result formats: the accumulators' (sum, exponent, nan), or float32 bit patterns.
OUTPUTS = ("accum", "fp32")


def lane_operands(p: Params) -> dict:
    """The operand keyword arguments of the lanes' dot products, accumulators and
    converters for record ``p`` (fields ``x_element``, ``x_bits``, ``w_...``), under their
    names ``a_...`` (activations) and ``b_...`` (weights): a minifloat's element, an MXINT
    operand's width; MXINT operands are passed as the sub-units always took them, so
    their Verilog does not depend on the element fields."""
    ops = operands(p, "x", "w")
    del ops["block"]
    elements = {k: v for k, v in ops.items() if k.endswith("_element") and v != "int"}
    widths = {k: v for k, v in ops.items() if k.endswith("_bits") and v is not None}
    return {**elements, **widths}


def x_block_layout(p: Params) -> data.StructLayout:
    """One activation block of record ``p``: ``mxint_block_layout`` (``mantissa``) or for a
    minifloat ``mxfp_block_layout`` (``codes``)."""
    if p.x_element == "int":
        return mxint_block_layout(man_bits=p.x_bits, exp_bits=p.exp_bits, block=p.block)
    return mxfp_block_layout(element_bits=ELEMENTS[p.x_element].width, block=p.block)


def weight_field(p: Params) -> tuple[str, int, object]:
    """The weights' element field of record ``p``: ``("mantissa", w_bits, signed)`` or for a
    minifloat ``("codes", width, unsigned)``."""
    if p.w_element == "int":
        return "mantissa", p.w_bits, signed(p.w_bits)
    width = ELEMENTS[p.w_element].width
    return "codes", width, unsigned(width)


def weight_layout(p: Params) -> data.StructLayout:
    """One weight word of record ``p``: block ``j`` of ``P`` rows, lane ``q`` in elements
    ``q*k .. q*k+k-1`` of the element field (:func:`weight_field`) and in ``exponent[q]``."""
    field, _, shape = weight_field(p)
    return data.StructLayout({
        field: data.ArrayLayout(shape, p.lanes * p.block),
        "exponent": data.ArrayLayout(unsigned(p.exp_bits), p.lanes),
    })


class MXIntLinear(wiring.Component):
    """``y = W x`` for an ``N x K`` MX weight matrix and a ``K``-vector of MX activations,
    blocks of ``k`` along ``K``, ``P`` output rows computed in parallel. Each operand is
    MXINT or an OCP MX minifloat format (``x_element``, ``w_element``), independently.

    The ``nb = ceil(K / k)`` activation blocks stream in on ``x``, once per group of ``P``
    rows (``N / P`` times in all); with each activation block, ``w`` brings the matching
    block of each of the ``P`` rows. Lane ``p`` is a :class:`~hw.dot_product.MXIntDotProduct`
    (exact block dot product, exponent sum, NaN flag) feeding a
    :class:`~hw.accumulator.MXIntAccumulator` (alignment to the running maximum exponent with
    ``guard_bits`` guard bits, ``acc_width`` bits, saturating). After the ``nb``-th block of
    a group, ``o`` carries the ``P`` accumulated results: lane ``p`` of group ``g`` is row
    ``n = g * P + p`` with value ``sum * 2**(exponent - G - 2*bias - f_w - f_x)`` (``f = m -
    2`` for MXINT, the element's ``bias + M - 1`` for a minifloat), exactly
    :func:`golden.linear.linear_blocks`. A NaN scale code, an E4M3 NaN code or an E5M2
    infinity or NaN code in any block of a row makes the row's result NaN (the dot
    product's flag, sticky in the accumulator). With ``output="fp32"``
    each lane's result then passes through a :class:`~hw.dequantizer.MXIntDequantizer`
    (``source="accum"``): that value rounded once to float32 (nearest even, subnormals,
    overflow to ``±inf``, ``+0.0`` for a zero sum, ``0x7FC00000`` for NaN), exactly
    :func:`golden.linear.linear_fp32`; this adds the converter's latency, 7 cycles.

    Throughput: with ``align="interleave"``, ``"lookahead"`` (or ``"loop"``), one activation
    block (``P * k`` multiply-accumulates) per cycle whatever the data: every lane takes one
    block per cycle and never stalls on its own (``interleave`` sums each lane's blocks
    into two interleaved partial sums, :func:`golden.accumulator.accumulate` with
    ``partial_sums=2``). With ``align="stall"`` (the default) a lane stalls 2 cycles on
    every block that raises its running maximum, and holds the other lanes meanwhile.
    Latency: :attr:`latency` cycles from the last block of a group to its result.
    All lanes share one handshake: ``x`` and ``w`` transfer together, and the lanes'
    blocks enter their accumulators together, so they stall together.

    Parameters
    ----------
    x_element, w_element : str
        Element formats of activations and weights: ``"int"`` (default, MXINT of
        ``x_bits``/``w_bits``) or ``"e5m2"``, ``"e4m3"``, ``"e3m2"``, ``"e2m3"``,
        ``"e2m1"`` (as :class:`~hw.dot_product.MXIntDotProduct`).
    x_bits, w_bits : int
        Mantissa widths of MXINT activations and weights, 2 to 24 (None for a minifloat).
    exp_bits : int
        Shared exponent width, 2 to 8; 8 (E8M0) with a minifloat operand.
    block : int
        ``k``, 1 to 1024.
    k_len : int
        ``K``, the length of ``x``, 1 to 2**20 (the last block is zero-padded, as
        :func:`golden.quantize` pads).
    rows : int
        ``N``, rows of ``W``, a multiple of ``lanes``, up to 2**20.
    lanes : int
        ``P``, rows computed in parallel, 1 to 64.
    guard_bits : int or None
        Of the accumulators. Default (None): :func:`golden.accumulator.default_guard_bits`,
        8 or, when the dot results are wider than 54 bits (an E5M2 operand), 62 minus their
        width (6 for E5M2 x E4M3 at k = 32); resolved into the record, so that an explicit
        value and the default it equals name the same design.
    acc_width : int or None
        Of the accumulators (default as :class:`~hw.accumulator.MXIntAccumulator`).
    align : str
        Of the accumulators: ``"stall"`` (default), ``"loop"``, ``"interleave"`` or
        ``"lookahead"`` (:class:`~hw.accumulator.MXIntAccumulator`); ``"interleave"``
        changes the results' low bits as :func:`golden.linear.linear_blocks` with
        ``partial_sums=2`` states.
    arch, levels_per_stage, primitives
        Of the dot products (as :class:`~hw.dot_product.MXIntDotProduct`; with
        ``primitives`` other than ``"generic"`` a simulator needs that family's cell models,
        :attr:`cell_library`). ``primitives="ecp5"`` with ``align="lookahead"`` also
        builds the accumulators' loops from ECP5 cells (their ECP5 build, :attr:`latency`
        of :class:`~hw.accumulator.MXIntAccumulator`).
    output : str
        ``"accum"`` (default): the accumulators' results; ``"fp32"``: float32 patterns.
    out_ready : str
        ``"direct"`` (default): every sub-unit stalls as a whole on its output's ``ready``,
        which reaches back through the chain to the dot products' enables combinationally;
        ``"registered"``: every dot product, accumulator and converter has a skid register
        at its output (:func:`hw.pipeline.output_stage`), so ``o.ready`` reaches two
        flip-flops per lane (the last sub-unit's skid valid bit and registered enable)
        and no sub-unit's enable reads a later one's ``ready``; same latency and rate, and
        with ``o.ready`` low one result more per sub-unit is held. Either way the float32
        converters have an enable per stage (:class:`~hw.dequantizer.MXIntDequantizer`),
        so with ``o.ready`` low their stages fill with results instead of holding the
        bubbles between them; the dot products and accumulators stall as a whole.

    Members
    -------
    x : ``In(stream.Signature(mxint_block_layout(x_bits)))``
        (``mxfp_block_layout``, field ``codes``, for minifloat activations)
    w : ``In(stream.Signature(...))``
        ``mantissa``: ``P * k`` signed ``w_bits`` (lane ``p`` in elements ``p*k .. p*k+k-1``),
        or for minifloat weights ``codes``: ``P * k`` unsigned element codes;
        ``exponent``: ``P`` codes.
    o : ``Out(stream.Signature(...))``
        ``output="accum"``: ``sum``: ``P`` signed ``acc_width``, ``exponent``: ``P`` of
        ``exp_bits + 1``, ``nan``: ``P`` flags. ``output="fp32"``: ``bits``: ``P`` float32
        patterns, lane 0 in the low bits.

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, *, x_element: str = "int", w_element: str = "int",
                 x_bits: int | None = None, w_bits: int | None = None, exp_bits: int = 8,
                 block: int, k_len: int | None = None, rows: int, lanes: int = 1,
                 guard_bits: int | None = None, acc_width: int | None = None,
                 arch: str = DEFAULT_ARCH, levels_per_stage: int | None = None,
                 output: str = "accum", align: str = DEFAULT_ALIGN,
                 primitives: str = "generic", out_ready: str = "direct") -> None:
        self.params = LinearParams(x_element=x_element, w_element=w_element, x_bits=x_bits,
                                   w_bits=w_bits, exp_bits=exp_bits, block=block,
                                   k_len=k_len, rows=rows, lanes=lanes, guard_bits=guard_bits,
                                   acc_width=acc_width, arch=arch,
                                   levels_per_stage=levels_per_stage, output=output,
                                   align=align, primitives=primitives,
                                   out_ready=out_ready)
        # The sub-units take the operands under their own names (a: activations, b:
        # weights); MXINT operands are passed as before, so their Verilog is unchanged.
        ops = lane_operands(self.params)
        self._dots = [MXIntDotProduct(**ops, exp_bits=exp_bits,
                                      block=block, arch=arch,
                                      levels_per_stage=self.params.levels_per_stage,
                                      primitives=primitives, out_ready=out_ready)
                      for _ in range(lanes)]
        # The accumulators take the ECP5 cells too where they have a cell build
        # (align="lookahead"), as benchmarks.placed's and flows.density's chains do.
        acc_primitives = "ecp5" if primitives == "ecp5" and align == "lookahead" \
            else "generic"
        self._accs = [MXIntAccumulator(**ops, exp_bits=exp_bits,
                                       block=block, guard_bits=self.params.guard_bits,
                                       acc_width=acc_width, align=align,
                                       primitives=acc_primitives, out_ready=out_ready)
                      for _ in range(lanes)]
        self._convs = []
        if output == "fp32":
            self._convs = [MXIntDequantizer(source="accum", **ops,
                                            exp_bits=exp_bits, block=block,
                                            guard_bits=self.guard_bits,
                                            acc_width=self.acc_width,
                                            out_ready=out_ready)
                           for _ in range(lanes)]
            out_layout = data.StructLayout({"bits": data.ArrayLayout(unsigned(32), lanes)})
        else:
            out_layout = data.StructLayout({
                "sum": data.ArrayLayout(signed(self.acc_width), lanes),
                "exponent": data.ArrayLayout(unsigned(exp_bits + 1), lanes),
                "nan": data.ArrayLayout(unsigned(1), lanes),
            })
        # The weights' element field: MXINT mantissas or minifloat codes, and its width.
        self._w_field, self._w_width, _ = weight_field(self.params)
        super().__init__({
            "x": In(stream.Signature(x_block_layout(self.params))),
            "w": In(stream.Signature(weight_layout(self.params))),
            "o": Out(stream.Signature(out_layout)),
        })

    cell_library = property(lambda self: self._dots[0].cell_library,
                            doc="Family whose Yosys ``cells_sim.v`` a simulator needs, or None.")

    @property
    def blocks(self) -> int:
        """Blocks per row, ``ceil(K / k)``."""
        return -(-self.k_len // self.block)

    @property
    def latency(self) -> int:
        """Cycles from the transfer of a group's last block to its result being valid."""
        latency = self._dots[0].latency + self._accs[0].latency
        return latency + (self._convs[0].latency if self._convs else 0)

    def elaborate(self, platform) -> Module:
        m = Module()
        k = self.block
        for p, (dot, acc) in enumerate(zip(self._dots, self._accs, strict=True)):
            m.submodules[f"dot{p}"] = dot
            m.submodules[f"acc{p}"] = acc

        # Input side: x and w transfer together into every lane. The lanes see identical
        # valid/ready histories, so they hold identical pipeline state; the AND of their
        # readies is the readiness of each of them.
        both = Signal()
        m.d.comb += both.eq(self.x.valid & self.w.valid)
        ready = Signal()
        field, bits = self._w_field, self._w_width
        for p, dot in enumerate(self._dots):
            m.d.comb += [
                dot.a.payload.eq(self.x.payload),
                getattr(dot.b.payload, field).as_value().eq(
                    getattr(self.w.payload, field).as_value()[p * k * bits:
                                                              (p + 1) * k * bits]),
                dot.b.payload.exponent.eq(self.w.payload.exponent[p]),
                dot.a.valid.eq(both),
                dot.b.valid.eq(both),
            ]
        m.d.comb += ready.eq(all_of([dot.a.ready & dot.b.ready for dot in self._dots]))
        m.d.comb += [self.x.ready.eq(ready & self.w.valid), self.w.ready.eq(ready & self.x.valid)]

        # Between dot and accumulator: count blocks as they enter the accumulators to mark
        # the last block of each row (results leave the dot products in order). The dot
        # products stay in lockstep; the accumulators need not (with align="stall" each
        # stalls on its own rises of the maximum), so a join makes every lane's block
        # transfer together: a lane's input is valid when every other lane is ready, and
        # the dot products are taken when all are. No accumulator's ready depends on its
        # valid, so the join has no combinational loop.
        count = Signal(range(self.blocks))
        last = Signal()
        m.d.comb += last.eq(count == self.blocks - 1)
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
            with m.If(last):
                m.d.sync += count.eq(0)
            with m.Else():
                m.d.sync += count.eq(count + 1)

        if self._convs:
            # Output side, fp32: each lane's result is rounded to float32; the converters
            # see identical handshakes, so they stay in lockstep like the lanes.
            for p, (acc, conv) in enumerate(zip(self._accs, self._convs, strict=True)):
                m.submodules[f"fp32_{p}"] = conv
                m.d.comb += [
                    conv.i.payload.eq(acc.o.payload),
                    conv.i.valid.eq(acc.o.valid),
                    acc.o.ready.eq(conv.i.ready),
                    self.o.payload.bits[p].eq(conv.o.payload.bits),
                ]
            join_outputs(m, self.o, [conv.o for conv in self._convs])
            return m

        # Output side: the lanes' results leave together.
        for p, acc in enumerate(self._accs):
            m.d.comb += [
                self.o.payload.sum[p].eq(acc.o.payload.sum),
                self.o.payload.exponent[p].eq(acc.o.payload.exponent),
                self.o.payload.nan[p].eq(acc.o.payload.nan),
            ]
        join_outputs(m, self.o, [acc.o for acc in self._accs])
        return m


def join_outputs(m: Module, o, lanes: list) -> None:
    """``o`` is valid when every lane is; a lane is taken when ``o`` is, so lanes that finish
    at different cycles wait for each other (also :mod:`hw.tile`'s output join)."""
    valid = [lane.valid for lane in lanes]
    m.d.comb += o.valid.eq(all_of(valid))
    for p, lane in enumerate(lanes):
        others = valid[:p] + valid[p + 1:]
        m.d.comb += lane.ready.eq(o.ready & all_of(others) if others else o.ready)


def all_of(values):
    """The AND of ``values`` (one or more signals)."""
    out = values[0]
    for v in values[1:]:
        out = out & v
    return out


#: ``--guard-bits`` of the linear engine: its default depends on the operands.
LINEAR_GUARD_BITS_HELP = (f"extra low bits kept when aligning exponents (default "
                          f"{DEFAULT_GUARD_BITS}, or 62 minus the dot results' width when "
                          f"that is less: 6 for E5M2 x E4M3 at k 32)")


@dataclass(frozen=True, kw_only=True)
class LinearParams(Params):
    """Parameters of :class:`MXIntLinear` (see there for their meaning)."""

    x_element: str = element_param("x", "activations", "--abits")
    w_element: str = element_param("w", "weights", "--wbits")
    x_bits: int = a_bits_param(applies=("x_element", "int"))
    w_bits: int = b_bits_param(applies=("w_element", "int"))
    exp_bits: int = exp_bits_param()
    block: int = block_param()
    k_len: int | None = param(None, help="length K of x (default: 4 blocks)", lo=1,
                              hi=MAX_LENGTH)
    rows: int = param(help="rows N of W", lo=1, hi=MAX_LENGTH)
    lanes: int = param(1, help="rows computed in parallel, P", lo=1, hi=64)
    guard_bits: int | None = param(None, help=LINEAR_GUARD_BITS_HELP)
    acc_width: int | None = param(None, help=ACC_WIDTH_HELP)
    arch: str = arch_param()
    levels_per_stage: int | None = sum_levels_param()
    primitives: str = primitives_param(implicit=True)
    output: str = param("accum", choices=OUTPUTS,
                        help="result format, the accumulators' (sum, exponent, nan) or "
                             "float32 patterns")
    align: str = param(DEFAULT_ALIGN, choices=ALIGNS, help=ALIGN_HELP)
    out_ready: str = out_ready_param()

    def resolve(self) -> None:
        if self.rows % self.lanes:
            raise ValueError(f"rows must be a multiple of lanes ({self.lanes}), not {self.rows}")
        if self.k_len is None:
            self._set("k_len", 4 * self.block)
        check_element_scale(self, "x", "w")
        if self.guard_bits is None:  # the format-aware default, resolved into the record
            self._set("guard_bits", default_guard_bits(**operands(self, "x", "w")))
        check_acc_fields(self, "x", "w")
        check_sum_fields(self)

    @property
    def name(self) -> str:
        name = operands_name("linear", self, "x", "w")
        name += (f"_k{self.block}_K{self.k_len}_N{self.rows}_P{self.lanes}"
                 f"_g{self.guard_bits}")
        if self.acc_width != resolve_acc_width(guard_bits=self.guard_bits, acc_width=None,
                                               **operands(self, "x", "w")):
            name += f"_acc{self.acc_width}"  # only a width other than the default
        name += arch_suffix(self)
        name += sum_levels_suffix(self)
        name += "" if self.output == "accum" else f"_{self.output}"
        name += "" if self.align == DEFAULT_ALIGN else f"_{self.align}"
        return name + out_ready_suffix(self)


expose(MXIntLinear, LinearParams)

UNIT = Unit(
    key="linear",
    summary="MXINT matrix-vector engine y = W x: P lanes of dot product + accumulator "
            "(+ float32 rounding with --output fp32)",
    summary_mx="MX matrix-vector engine y = W x (MXINT or OCP MX minifloat operands): P "
               "lanes of dot product + accumulator (+ float32 rounding with --output fp32)",
    params=LinearParams,
    component=MXIntLinear,
    golden=linear_blocks,
    model="sim.units.linear:LinearModel",
    reference="sim.formal.ref_accum:LINEAR",
    macs=lambda p: p.lanes * p.block,
    packets=lambda p: {"o": p.rows // p.lanes},
    command_defaults={"rows": 4, "lanes": 2},
)
