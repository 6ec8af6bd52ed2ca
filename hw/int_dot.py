"""Integer k-lane dot product with accumulator: the int8 / int4 baseline built like the
MXINT dot product."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.int_dot import check_int_dot, default_int_dot_acc_bits, int_dot
from golden.int_mac import INT_FORMATS, MAX_INT_BITS

from .bitheap import DEFAULT_ARCH, SumOfProducts
from .params import (
    a_bits_param,
    arch_param,
    arch_suffix,
    b_bits_param,
    block_param,
    check_sum_fields,
    levels_param,
    out_ready_param,
    out_ready_suffix,
    primitives_param,
)
from .pipeline import StallPipeline, output_stage
from .unit import Params, Preset, Unit, expose, param

#: Help of the integer units' wrapping accumulator width (intmac and intdot).
ACC_WIDTH_HELP = "accumulator width in bits, wrapping (default: exact width of one sum + 16)"
#: ``--int-preset``: operand widths of int8 and int4, shared by intmac and intdot.
INT_PRESET = Preset("--int-preset", {name: {"a_bits": a, "b_bits": b}
                                     for name, (a, b) in sorted(INT_FORMATS.items())},
                    help="operand preset, instead of --bits/--abits/--wbits")

__all__ = ["UNIT", "IntDotParams", "IntDotProduct"]


class IntDotProduct(wiring.Component):
    """Signed integer dot product of ``k`` lanes, one input per cycle, summed into a
    wrapping accumulator; equal bit for bit to :func:`golden.int_dot.int_dot`.

    Each input carries ``a`` (``k`` x ``signed(a_bits)``), ``b`` (``k`` x
    ``signed(b_bits)``) and ``last``. The unit computes ``S = sum_i a_i * b_i`` exactly
    (in :attr:`sum_shape`, the range of ``S``) and adds it to an ``acc_width`` two's
    complement accumulator; on an input with ``last = 1`` it emits the sum (this input
    included) on ``o`` and restarts from zero. Overflow wraps modulo ``2**acc_width``; the
    default ``acc_width = sum_shape.width + 16`` (at most 64) cannot wrap within ``2**16``
    inputs.

    Structure: ``S`` is a :class:`hw.bitheap.SumOfProducts` (``arch``): ``"heap"`` cuts
    every product into tiles of at most 3 x 3 bits, reduces all tile bits of the ``k``
    products as one bit heap with counters and one final adder; ``"tree"`` has ``k``
    registered multipliers and an adder tree. A register follows every
    ``levels_per_stage`` levels and the last. One more stage follows, as in
    :class:`hw.int_mac.IntMultiplyAccumulate`: the accumulator register and the output
    register, both loaded from one adder ``acc' + S``, where ``acc' = 0`` for the first
    input after a ``last`` (a flag masks the operand) and ``acc`` otherwise.

    :attr:`latency` cycles pass from the transfer of a ``last`` input to its sum being
    valid. Throughput: one input (``k`` products) per cycle; the pipeline stalls as a
    whole when the output is valid and not ready.

    Parameters
    ----------
    a_bits, b_bits : int
        Operand widths including the sign, 2 to 24; may differ.
    block : int
        Lanes ``k``, 1 to 1024.
    acc_width : int or None
        Accumulator and output width, ``a_bits + b_bits`` to 64; None (default) means
        ``sum_shape.width + 16``, at most 64.
    arch : str
        ``"heap"`` or ``"tree"`` (default :data:`hw.bitheap.DEFAULT_ARCH`).
    levels_per_stage : int
        Logic levels of the sum between pipeline registers, at least 1 (default 2).
    primitives : str
        ``"generic"`` (default) or ``"xc7"``: as :class:`hw.dot_product.MXIntDotProduct`.
    out_ready : str
        ``"direct"`` (default): ``o.ready`` reaches the register enables combinationally;
        ``"registered"``: through a skid register at the output
        (:func:`hw.pipeline.output_stage`), one flip-flop; same latency and rate.

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"a", "b", "last"})))``
        Inputs; ``a`` and ``b`` are ``ArrayLayout`` s of ``k`` lanes, lane 0 in the low bits.
    o : ``Out(stream.Signature(StructLayout({"sum": signed(acc_width)})))``
        One accumulated sum per ``last``.

    Raises
    ------
    TypeError
        If a parameter has the wrong type.
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, *, a_bits: int, b_bits: int, block: int, acc_width: int | None = None,
                 arch: str = DEFAULT_ARCH, levels_per_stage: int = 2,
                 primitives: str = "generic", out_ready: str = "direct") -> None:
        self.params = IntDotParams(a_bits=a_bits, b_bits=b_bits, block=block,
                                   acc_width=acc_width, arch=arch,
                                   levels_per_stage=levels_per_stage, primitives=primitives,
                                   out_ready=out_ready)
        self._sop = SumOfProducts(a_bits=a_bits, b_bits=b_bits, block=block, arch=arch,
                                  levels_per_stage=levels_per_stage, primitives=primitives)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "a": data.ArrayLayout(signed(a_bits), block),
                "b": data.ArrayLayout(signed(b_bits), block),
                "last": unsigned(1),
            }))),
            "o": Out(stream.Signature(data.StructLayout({"sum": signed(self.acc_width)}))),
        })

    sum_shape = property(lambda self: self._sop.shape, doc="Shape of one input's exact ``S``.")
    macs_per_cycle = property(lambda self: self.block,
                              doc="Multiply-accumulates per cycle at full throughput: ``k``.")
    cell_library = property(
        lambda self: None if self.primitives == "generic" else self.primitives,
        doc="Family whose Yosys ``cells_sim.v`` a simulator needs, or None.")

    @property
    def latency(self) -> int:
        """Cycles from the transfer of a ``last`` input to its sum being valid: the stages
        of the sum of products plus the accumulator stage."""
        return self._sop.stages + 1

    def elaborate(self, platform) -> Module:
        m = Module()
        o = output_stage(m, self.o, self.out_ready)

        # Whole-pipeline stall (hw/pipeline.py). Its valid chain marks every input on its
        # way through, but only inputs with `last` reach `o`, so the pipeline sees the
        # output through `end`: `o.valid = end.valid & last`, and an item without `last`
        # at the end is always taken. Thus advance = ~o.valid | o.ready.
        end = SimpleNamespace(valid=Signal(name="end_valid"), ready=Signal(name="end_ready"))
        pipe = StallPipeline(m, inputs=[self.i], output=end, depth=self.latency)
        register = pipe.register

        i = self.i.payload
        total = self._sop.build(m, register, [i.a[n] for n in range(self.block)],
                                [i.b[n] for n in range(self.block)], name="sop")
        # `valid` and `last` travel beside the sum, one register per stage.
        valid, last = pipe.fire, i.last
        for stage in range(1, self._sop.stages + 1):
            valid = register(valid, f"valid_s{stage}")
            last = register(last, f"last_s{stage}")

        # Accumulator stage, as hw/int_mac.py: one adder feeds the accumulator and the
        # output register; the sum is truncated to acc_width, i.e. wraps.
        # After a `last` the next sum starts from zero: the accumulator's operand is
        # masked (in the adder's LUTs), not the register cleared (a LUT per bit on xc7).
        acc = Signal(signed(self.acc_width))
        fresh = Signal()
        acc_next = Signal(signed(self.acc_width))
        m.d.comb += acc_next.eq(Mux(fresh, 0, acc) + total)
        with m.If(pipe.advance & valid):
            m.d.sync += [acc.eq(acc_next), fresh.eq(last)]
        out_sum = register(acc_next, "out_sum")
        out_last = register(last, "out_last")

        m.d.comb += [
            o.valid.eq(end.valid & out_last),
            end.ready.eq(o.ready | ~out_last),
            o.payload.sum.eq(out_sum),
        ]
        return m


@dataclass(frozen=True, kw_only=True)
class IntDotParams(Params):
    """Parameters of :class:`IntDotProduct` (see there for their meaning)."""

    a_bits: int = a_bits_param("bits of each a lane", hi=MAX_INT_BITS)
    b_bits: int = b_bits_param("bits of each b lane", hi=MAX_INT_BITS)
    block: int = block_param("lanes k")
    acc_width: int | None = param(None, help=ACC_WIDTH_HELP, option="--acc-width")
    arch: str = arch_param()
    levels_per_stage: int = levels_param()
    primitives: str = primitives_param()
    out_ready: str = out_ready_param()

    def resolve(self) -> None:
        self._set("acc_width", check_int_dot(self.a_bits, self.b_bits, self.block,
                                            self.acc_width))
        check_sum_fields(self)

    @property
    def name(self) -> str:
        name = f"int_dot_a{self.a_bits}_w{self.b_bits}_k{self.block}" + arch_suffix(self)
        if self.acc_width != default_int_dot_acc_bits(self.a_bits, self.b_bits, self.block):
            name += f"_acc{self.acc_width}"
        name += f"_l{self.levels_per_stage}" if self.levels_per_stage != 2 else ""
        return name + out_ready_suffix(self)


expose(IntDotProduct, IntDotParams)

UNIT = Unit(
    key="intdot",
    summary="integer baseline: k-lane signed dot product (bit heap or tree) summed into a "
            "wrapping accumulator, one sum per last",
    params=IntDotParams,
    component=IntDotProduct,
    golden=int_dot,
    model="sim.units.int_dot:IntDotModel",
    reference="sim.formal.ref_accum:INTDOT",
    macs=lambda p: p.block,
    presets=(INT_PRESET,),
    baseline=True,
)
