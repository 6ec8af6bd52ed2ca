"""Block dot product of MXINT and OCP MX minifloat (MXFP8/6/4) operands."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden.dot import mx_dot_product

from .bitheap import DEFAULT_ARCH, SumOfProducts
from .layouts import dot_result_layout, mxfp_block_layout, mxint_block_layout
from .params import (
    a_bits_param,
    arch_param,
    arch_suffix,
    b_bits_param,
    block_param,
    check_element_scale,
    check_sum_fields,
    element_of,
    element_param,
    exp_bits_param,
    operands_name,
    out_ready_param,
    out_ready_suffix,
    primitives_param,
    sum_levels_param,
    sum_levels_suffix,
)
from .pipeline import StallPipeline
from .unit import Params, Unit, expose

__all__ = ["UNIT", "DotParams", "MXIntDotProduct"]


class MXIntDotProduct(wiring.Component):
    """Dot product of two MX blocks, exact: MXINT, OCP MX minifloat, or one of each.

    For blocks ``a`` (``k`` elements ``P_a,i``, scale code ``E_a``) and ``b`` (``P_b,i``,
    ``E_b``) it computes

    * ``sum = sum_i P_a,i * P_b,i`` exactly, in the narrowest signed width that holds every
      possible result (:attr:`sum_shape`, the range of
      :func:`golden.dot.mx_dot_sum_range`);
    * ``exponent = E_a + E_b``, ``exp_bits + 1`` bits;
    * ``nan = (E_a == 2**exp_bits - 1) | (E_b == 2**exp_bits - 1)``, or'ed, for a
      minifloat operand, with "some element code of the block is an infinity or a NaN"
      (E5M2 ``S.11111.xx``, E4M3 ``S.1111.111``; FP6 and FP4 have none).

    An MXINT operand (``a_element="int"``) carries ``a_bits``-bit two's complement
    mantissas ``P``. A minifloat operand (``a_element`` an element name) carries element
    *codes* of 4 (E2M1), 6 (E2M3, E3M2) or 8 (E4M3, E5M2) bits, read in their fixed-point
    view ``P = decode(code) = value * 2**f`` (:mod:`golden.minifloat`; specials count as
    0), and its scale is E8M0 (``exp_bits`` 8). The value is
    ``sum * 2**(exponent - 2*bias - f_a - f_b)`` with ``f = m - 2`` for MXINT; see
    :func:`golden.dot.mx_dot_product` (for two MXINT operands :func:`golden.dot_product`),
    which this unit equals bit for bit.

    Structure (``arch``, see :mod:`hw.bitheap`): ``"heap"`` cuts every product into tiles
    of at most 3 x 3 bits (one LUT per output bit), puts all tile bits of the ``k``
    products into one bit heap, reduces it with (6;3)/(1,5;3)/(3;2) counters and finishes
    with one carry-propagate adder (minifloat products enter instead as the significand
    product shifted by the exponent sum, :mod:`hw.placement`); ``"tree"`` has ``k``
    registered multipliers feeding a binary adder tree whose nodes are only as wide as the
    range of their partial sums. A pipeline register follows every ``levels_per_stage``
    logic levels and the last one.

    Throughput is one block pair per cycle. :attr:`latency` cycles pass from the transfer
    of an input pair to the output becoming valid. The pipeline stalls as a whole when
    the output is valid and not ready; ``a`` and ``b`` transfer together (each is ready
    only when the other is valid and the pipeline can accept).

    Parameters
    ----------
    a_element, b_element : str
        Element format of ``a`` and ``b``: ``"int"`` (default, MXINT of ``a_bits`` /
        ``b_bits``) or ``"e5m2"``, ``"e4m3"``, ``"e3m2"``, ``"e2m3"``, ``"e2m1"``; may
        differ. E5M2 x E5M2 gives a 70-bit ``sum`` at k = 32 (65 bits at k = 1), wider
        than int64: the golden model gives it in two limbs (:class:`golden.dot.DotResult`),
        and no unit downstream (accumulator, linear engine, tile) takes it.
    a_bits, b_bits : int
        Mantissa widths of an MXINT ``a`` and ``b`` including the sign, 2 to 24; may
        differ. Not given (None) for a minifloat operand.
    exp_bits : int
        Shared exponent width, 2 to 8; 8 (E8M0) when either operand is a minifloat.
    block : int
        Elements per block ``k``, 1 to 1024.
    arch : str
        ``"heap"`` (default) or ``"tree"``.
    primitives : str
        ``"generic"`` (default): plain logic; ``"xc7"``: the heap's adders are ternary
        adders of AMD/Xilinx 7-series ``LUT6_2`` and ``CARRY4`` cells (simulate with Yosys'
        ``xilinx/cells_sim.v``; see :attr:`cell_library`).
    levels_per_stage : int or None
        Logic levels between pipeline registers, at least 1. None (default): 2, or 1 for
        a heap of an E4M3 or E5M2 operand with a minifloat one (any of the five;
        :func:`hw.params.default_sum_levels`: at 2, their heaps' two counter levels
        between registers keep them below 150 MHz on ECP5). At 1, a final adder of more
        than 64 bits (E5M2 x E5M2) is split in two stages
        (:data:`hw.bitheap.SPLIT_ADDER_BITS`), one level and one cycle more.
    out_ready : str
        ``"direct"`` (default): ``o.ready`` reaches every register enable combinationally;
        ``"registered"``: through a skid register at the output
        (:func:`hw.pipeline.output_stage`): two flip-flops, the skid's valid bit and the
        registered enable (:class:`hw.pipeline.StallPipeline`); same latency and rate.

    Members
    -------
    a, b : ``In(stream.Signature(mxint_block_layout(...)))``
        Input blocks; ``mxfp_block_layout(...)`` (``codes`` and ``exponent``) for a
        minifloat operand.
    o : ``Out(stream.Signature(dot_result_layout(...)))``
        Result: ``sum``, ``exponent``, ``nan``.

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, *, a_element: str = "int", b_element: str = "int",
                 a_bits: int | None = None, b_bits: int | None = None, exp_bits: int = 8,
                 block: int, arch: str = DEFAULT_ARCH,
                 levels_per_stage: int | None = None, primitives: str = "generic",
                 out_ready: str = "direct") -> None:
        self.params = DotParams(a_element=a_element, b_element=b_element, a_bits=a_bits,
                                b_bits=b_bits, exp_bits=exp_bits, block=block, arch=arch,
                                levels_per_stage=levels_per_stage,
                                primitives=primitives, out_ready=out_ready)
        p = self.params
        self._elements = {"a": element_of(p, "a"), "b": element_of(p, "b")}
        self._sop = SumOfProducts(a_bits=p.a_bits, b_bits=p.b_bits, block=block, arch=arch,
                                  levels_per_stage=p.levels_per_stage, primitives=primitives,
                                  a_element=self._elements["a"],
                                  b_element=self._elements["b"])
        self._sum_shape = self._sop.shape

        def layout(side: str, bits: int | None):
            element = self._elements[side]
            if element is None:
                return mxint_block_layout(man_bits=bits, exp_bits=exp_bits, block=block)
            return mxfp_block_layout(element_bits=element.width, block=block)

        super().__init__({
            "a": In(stream.Signature(layout("a", a_bits))),
            "b": In(stream.Signature(layout("b", b_bits))),
            "o": Out(stream.Signature(dot_result_layout(
                sum_shape=self._sum_shape, exp_bits=exp_bits))),
        })

    def _elements_of(self, payload, side: str) -> list:
        """The ``k`` element fields of an input payload: mantissas or codes."""
        field = payload.mantissa if self._elements[side] is None else payload.codes
        return [field[i] for i in range(self.block)]

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
        pipe = StallPipeline(m, inputs=[self.a, self.b], output=self.o, depth=self.latency,
                             enables=self._sop.enables, out_ready=self.out_ready)
        register = pipe.register

        a, b = self.a.payload, self.b.payload
        elements = {"a": self._elements_of(a, "a"), "b": self._elements_of(b, "b")}
        total = self._sop.build(m, register, elements["a"], elements["b"], name="dot",
                                enables=self._sop.enables)
        # Exponent sum and NaN flag travel beside the sum, one register per stage.
        nan_code = (1 << self.exp_bits) - 1
        exponent = a.exponent + b.exponent
        nan = (a.exponent == nan_code) | (b.exponent == nan_code)
        for side in ("a", "b"):
            element = self._elements[side]
            if element is not None and element.specials != "none":
                # Any infinity or NaN code in the block: E5M2 exponent field all ones,
                # E4M3 S.1111.111 (the sign bit is left out).
                mag = element.width - 1
                top = (1 << mag) - (1 << element.man_bits) if element.specials == "ieee" \
                    else (1 << mag) - 1
                for code in elements[side]:
                    nan = nan | ((code[:mag] & top) == top)
        for stage in range(1, self.latency + 1):
            exponent = register(exponent, f"exp_s{stage}")
            nan = register(nan, f"nan_s{stage}")

        m.d.comb += [
            pipe.output.payload.sum.eq(total),
            pipe.output.payload.exponent.eq(exponent),
            pipe.output.payload.nan.eq(nan),
        ]
        return m


@dataclass(frozen=True, kw_only=True)
class DotParams(Params):
    """Parameters of :class:`MXIntDotProduct` (see there for their meaning)."""

    a_element: str = element_param("a", "activations", "--abits")
    b_element: str = element_param("b", "weights", "--wbits")
    a_bits: int = a_bits_param(applies=("a_element", "int"))
    b_bits: int = b_bits_param(applies=("b_element", "int"))
    exp_bits: int = exp_bits_param()
    block: int = block_param()
    arch: str = arch_param()
    levels_per_stage: int | None = sum_levels_param()
    primitives: str = primitives_param()
    out_ready: str = out_ready_param()

    def resolve(self) -> None:
        check_element_scale(self, "a", "b")
        check_sum_fields(self)

    @property
    def mxint(self) -> bool:
        """Both operands are MXINT."""
        return self.a_element == "int" and self.b_element == "int"

    @property
    def name(self) -> str:
        name = f"{operands_name('dot', self)}_k{self.block}" + arch_suffix(self)
        name += sum_levels_suffix(self)
        return name + out_ready_suffix(self)


expose(MXIntDotProduct, DotParams)

UNIT = Unit(
    key="dot",
    # The summary is in every manifest: kept as it was, so MXINT designs stay byte-identical.
    summary="MXINT block dot product: exact sum of products, exponent sum, NaN flag",
    summary_mx="MX block dot product (MXINT or OCP MX minifloat operands): exact sum of "
               "products, exponent sum, NaN flag",
    params=DotParams,
    component=MXIntDotProduct,
    golden=mx_dot_product,
    model="sim.units.dot_product:DotModel",
    reference="sim.formal.ref_dot:DOT",
    macs=lambda p: p.block,
)
