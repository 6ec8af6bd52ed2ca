"""MXINT block dot product."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden.dot import dot_product

from .bitheap import DEFAULT_ARCH, SumOfProducts
from .layouts import dot_result_layout, mxint_block_layout
from .params import (
    a_bits_param,
    arch_param,
    arch_suffix,
    b_bits_param,
    block_param,
    check_sum_fields,
    exp_bits_param,
    levels_param,
    primitives_param,
)
from .pipeline import StallPipeline
from .unit import Params, Unit, expose

__all__ = ["UNIT", "DotParams", "MXIntDotProduct"]


class MXIntDotProduct(wiring.Component):
    """Dot product of two MXINT blocks, exact.

    For blocks ``a`` (``k`` mantissas ``P_a,i`` of ``a_bits``, code ``E_a``) and ``b``
    (``P_b,i`` of ``b_bits``, code ``E_b``) it computes

    * ``sum = sum_i P_a,i * P_b,i`` exactly, in the narrowest signed width that holds every
      possible result (:attr:`sum_shape`);
    * ``exponent = E_a + E_b``, ``exp_bits + 1`` bits;
    * ``nan = (E_a == 2**exp_bits - 1) | (E_b == 2**exp_bits - 1)``.

    The value is ``sum * 2**(exponent - 2*bias - (a_bits - 2) - (b_bits - 2))``; see
    :func:`golden.dot_product`, which this unit equals bit for bit.

    Structure (``arch``, see :mod:`hw.bitheap`): ``"heap"`` cuts every product into tiles
    of at most 3 x 3 bits (one LUT per output bit), puts all tile bits of the ``k``
    products into one bit heap, reduces it with (6;3)/(1,5;3)/(3;2) counters and finishes
    with one carry-propagate adder; ``"tree"`` has ``k`` registered multipliers feeding a
    binary adder tree whose nodes are only as wide as the range of their partial sums. A
    pipeline register follows every ``levels_per_stage`` logic levels and the last one.

    Throughput is one block pair per cycle. :attr:`latency` cycles pass from the transfer
    of an input pair to the output becoming valid. The pipeline stalls as a whole when
    the output is valid and not ready; ``a`` and ``b`` transfer together (each is ready
    only when the other is valid and the pipeline can accept).

    Parameters
    ----------
    a_bits, b_bits : int
        Mantissa widths of ``a`` and ``b`` including the sign, 2 to 24; may differ.
    exp_bits : int
        Shared exponent width, 2 to 8.
    block : int
        Elements per block ``k``, 1 to 1024.
    arch : str
        ``"heap"`` (default) or ``"tree"``.
    primitives : str
        ``"generic"`` (default): plain logic; ``"xc7"``: the heap's adders are ternary
        adders of AMD/Xilinx 7-series ``LUT6_2`` and ``CARRY4`` cells (simulate with Yosys'
        ``xilinx/cells_sim.v``; see :attr:`cell_library`).
    levels_per_stage : int
        Logic levels between pipeline registers, at least 1 (default 2).

    Members
    -------
    a, b : ``In(stream.Signature(mxint_block_layout(...)))``
        Input blocks.
    o : ``Out(stream.Signature(dot_result_layout(...)))``
        Result: ``sum``, ``exponent``, ``nan``.

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, *, a_bits: int, b_bits: int, exp_bits: int = 8, block: int,
                 arch: str = DEFAULT_ARCH, levels_per_stage: int = 2,
                 primitives: str = "generic") -> None:
        self.params = DotParams(a_bits=a_bits, b_bits=b_bits, exp_bits=exp_bits, block=block,
                                arch=arch, levels_per_stage=levels_per_stage, primitives=primitives)
        self._sop = SumOfProducts(a_bits=a_bits, b_bits=b_bits, block=block, arch=arch,
                                  levels_per_stage=levels_per_stage, primitives=primitives)
        self._sum_shape = self._sop.shape
        super().__init__({
            "a": In(stream.Signature(mxint_block_layout(
                man_bits=a_bits, exp_bits=exp_bits, block=block))),
            "b": In(stream.Signature(mxint_block_layout(
                man_bits=b_bits, exp_bits=exp_bits, block=block))),
            "o": Out(stream.Signature(dot_result_layout(
                sum_shape=self._sum_shape, exp_bits=exp_bits))),
        })

    cell_library = property(
        lambda self: None if self.primitives == "generic" else self.primitives,
        doc="Family whose Yosys ``cells_sim.v`` a simulator needs, or None.")
    sum_shape = property(lambda self: self._sum_shape, doc="Shape of the exact sum.")

    @property
    def levels(self) -> int:
        """Logic levels of the sum: tree: multipliers plus ``ceil(log2(block))`` adder
        levels; heap: tiles, counter levels and the final adder."""
        return self._sop.levels

    @property
    def sum_of_products(self) -> SumOfProducts:
        """The planner of the sum; after elaboration, a heap's
        :attr:`~hw.bitheap.SumOfProducts.certificate` tells ``sim.formal`` how it was built."""
        return self._sop

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to the result being valid: one register after
        every ``levels_per_stage`` levels and after the last (tree: the multipliers are
        always registered)."""
        return self._sop.stages

    def elaborate(self, platform) -> Module:
        m = Module()

        # Whole-pipeline stall: one enable, no skid buffers (hw/pipeline.py).
        pipe = StallPipeline(m, inputs=[self.a, self.b], output=self.o, depth=self.latency)
        register = pipe.register

        a, b = self.a.payload, self.b.payload
        total = self._sop.build(m, register, [a.mantissa[i] for i in range(self.block)],
                                [b.mantissa[i] for i in range(self.block)], name="dot")
        # Exponent sum and NaN flag travel beside the sum, one register per stage.
        nan_code = (1 << self.exp_bits) - 1
        exponent = a.exponent + b.exponent
        nan = (a.exponent == nan_code) | (b.exponent == nan_code)
        for stage in range(1, self.latency + 1):
            exponent = register(exponent, f"exp_s{stage}")
            nan = register(nan, f"nan_s{stage}")

        m.d.comb += [
            self.o.payload.sum.eq(total),
            self.o.payload.exponent.eq(exponent),
            self.o.payload.nan.eq(nan),
        ]
        return m


@dataclass(frozen=True, kw_only=True)
class DotParams(Params):
    """Parameters of :class:`MXIntDotProduct` (see there for their meaning)."""

    a_bits: int = a_bits_param()
    b_bits: int = b_bits_param()
    exp_bits: int = exp_bits_param()
    block: int = block_param()
    arch: str = arch_param()
    levels_per_stage: int = levels_param()
    primitives: str = primitives_param()

    def resolve(self) -> None:
        check_sum_fields(self)

    @property
    def name(self) -> str:
        name = f"mxint_dot_a{self.a_bits}_w{self.b_bits}_e{self.exp_bits}_k{self.block}"
        name += arch_suffix(self)
        if self.levels_per_stage != 2:
            name += f"_l{self.levels_per_stage}"
        return name


expose(MXIntDotProduct, DotParams)

UNIT = Unit(
    key="dot",
    summary="MXINT block dot product: exact sum of products, exponent sum, NaN flag",
    params=DotParams,
    component=MXIntDotProduct,
    golden=dot_product,
    model="sim.units.dot_product:DotModel",
    reference="sim.formal.ref_dot:DOT",
    macs=lambda p: p.block,
)
