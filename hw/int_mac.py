"""Integer multiply-accumulate baseline."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.int_mac import MAX_INT_BITS, check_int_mac, int_mac

from .booth import booth_product
from .int_dot import ACC_WIDTH_HELP, INT_PRESET, IntDotProduct
from .params import a_bits_param, b_bits_param
from .unit import Params, Unit, expose, param

__all__ = ["INT_MULTIPLIERS", "INT_PRESET", "MULTIPLIERS", "UNIT", "IntMacParams",
           "IntMultiplyAccumulate"]

#: How a product is built: the bit heap of :mod:`hw.bitheap`, or Yosys's ``$mul`` (the
#: floating-point baseline takes these).
MULTIPLIERS = ("heap", "generic")
#: The integer MAC also takes a radix-4 Booth product (:mod:`hw.booth`), its default: for
#: one product it is the smallest of the three (docs/density.md).
INT_MULTIPLIERS = ("booth", *MULTIPLIERS)

#: Pipeline registers: product, accumulator/output.
LATENCY = 2


class IntMultiplyAccumulate(wiring.Component):
    """Signed integer multiply-accumulate, one term per cycle; equal bit for bit to
    :func:`golden.int_mac.int_mac`.

    Each input carries ``a`` (``signed(a_bits)``), ``b`` (``signed(b_bits)``) and ``last``.
    The unit sums ``a * b`` (exact, ``a_bits + b_bits`` bits) into an ``acc_width`` two's
    complement accumulator; on a term with ``last = 1`` it emits the sum (this term
    included) on ``o`` and restarts from zero. Overflow wraps modulo ``2**acc_width``; the
    default ``acc_width = a_bits + b_bits + 16`` cannot wrap within ``2**16`` terms.

    Structure, ``multiplier="booth"`` (default): stage 1 registers the radix-4 Booth product
    of :func:`hw.booth.booth_product` (one LUT per bit of each of ``ceil(b_bits / 2)``
    recoded rows, the rows summed by a tree of carry-chain adders); stage 2 is the
    accumulator stage, one adder ``acc + product`` loading the accumulator and the output
    register. :attr:`latency` = 2. ``multiplier="heap"``: the one-lane integer dot product
    :class:`hw.int_dot.IntDotProduct` (``block=1``, ``arch="heap"``, generic primitives):
    ``a`` and ``b`` are cut into chunks of at most 3 bits, each chunk pair's product is a
    table of at most 6 inputs (one LUT per output bit), the tile bits are reduced as one
    bit heap by counters to three rows and one adder; a register follows every two
    levels; then the accumulator stage, one adder ``acc + product`` loading the
    accumulator and the output register. :attr:`latency` is the dot product's, 3 for
    8 x 8 bits. ``multiplier="generic"``: as ``"booth"``, with Yosys's ``$mul`` for the
    product.

    The first term after a ``last`` starts a new sum: a flag masks the accumulator operand
    of the adder to zero (Booth and generic multipliers).
    :attr:`latency` counts the cycles from the transfer of a ``last`` term to its sum
    being valid. Throughput: one term per cycle; the pipeline stalls as a whole when the
    output is valid and not ready.

    Parameters
    ----------
    a_bits, b_bits : int
        Operand widths including the sign, 2 to 24.
    acc_width : int or None
        Accumulator and output width, ``a_bits + b_bits`` to 64; None (default) means
        ``a_bits + b_bits + 16``.
    multiplier : str
        ``"booth"`` (default), ``"heap"`` or ``"generic"``.

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"a", "b", "last"})))``
        Terms.
    o : ``Out(stream.Signature(StructLayout({"sum": signed(acc_width)})))``
        One accumulated sum per ``last``.

    Raises
    ------
    TypeError
        If a parameter has the wrong type.
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, *, a_bits: int, b_bits: int, acc_width: int | None = None,
                 multiplier: str = "booth") -> None:
        self.params = IntMacParams(a_bits=a_bits, b_bits=b_bits, acc_width=acc_width,
                                   multiplier=multiplier)
        self._dot = None
        if multiplier == "heap":
            self._dot = IntDotProduct(a_bits=a_bits, b_bits=b_bits, block=1,
                                      acc_width=self.acc_width, arch="heap")
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({
                "a": signed(a_bits), "b": signed(b_bits), "last": unsigned(1)}))),
            "o": Out(stream.Signature(data.StructLayout({"sum": signed(self.acc_width)}))),
        })

    @property
    def latency(self) -> int:
        """Cycles from the transfer of a ``last`` term to its sum being valid: 2 with the
        Booth or generic multiplier, that of the one-lane dot product with the heap (3 for 8 x 8
        bits)."""
        return LATENCY if self._dot is None else self._dot.latency

    def elaborate(self, platform) -> Module:
        m = Module()
        if self._dot is not None:
            m.submodules.dot = dot = self._dot
            m.d.comb += [
                dot.i.valid.eq(self.i.valid),
                dot.i.payload.a[0].eq(self.i.payload.a),
                dot.i.payload.b[0].eq(self.i.payload.b),
                dot.i.payload.last.eq(self.i.payload.last),
                self.i.ready.eq(dot.i.ready),
                self.o.valid.eq(dot.o.valid),
                self.o.payload.sum.eq(dot.o.payload.sum),
                dot.o.ready.eq(self.o.ready),
            ]
            return m
        advance = Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]

        a, b = self.i.payload.a, self.i.payload.b
        product = booth_product(m, a, b, name="booth") if self.multiplier == "booth" \
            else a * b
        prod = Signal(signed(self.a_bits + self.b_bits))
        valid1, last1 = Signal(), Signal()
        acc = Signal(signed(self.acc_width))
        # After a `last` the next sum starts from zero: the accumulator's operand is masked
        # (in the adder's LUTs) rather than the register cleared, which on xc7 would take
        # a LUT per bit beside the reset.
        fresh = Signal()
        total = Signal(signed(self.acc_width))
        m.d.comb += total.eq(Mux(fresh, 0, acc) + prod)      # wraps to acc_width
        with m.If(advance):
            m.d.sync += [
                valid1.eq(self.i.valid),
                last1.eq(self.i.payload.last),
                prod.eq(product),
                # The output register is free whenever the pipeline advances.
                self.o.valid.eq(valid1 & last1),
                self.o.payload.sum.eq(total),
            ]
            with m.If(valid1):
                m.d.sync += [acc.eq(total), fresh.eq(last1)]
        return m


MULTIPLIER_HELP = ("the product: 'booth' (radix-4 Booth rows added by carry chains; the "
                   "smallest for one product), 'heap' (the one-lane bit heap dot product: "
                   "LUT tiles, counters, one adder) or 'generic' (Yosys's $mul)")


@dataclass(frozen=True, kw_only=True)
class IntMacParams(Params):
    """Parameters of :class:`IntMultiplyAccumulate` (see there for their meaning)."""

    a_bits: int = a_bits_param("bits of operand a", hi=MAX_INT_BITS)
    b_bits: int = b_bits_param("bits of operand b", hi=MAX_INT_BITS)
    acc_width: int | None = param(None, help=ACC_WIDTH_HELP, option="--acc-width")
    multiplier: str = param("booth", help=MULTIPLIER_HELP, choices=INT_MULTIPLIERS)

    def resolve(self) -> None:
        self._set("acc_width", check_int_mac(self.a_bits, self.b_bits, self.acc_width))

    @property
    def name(self) -> str:
        name = f"int_mac_a{self.a_bits}_b{self.b_bits}_acc{self.acc_width}"
        return name + ("" if self.multiplier == "booth" else f"_mul{self.multiplier}")


expose(IntMultiplyAccumulate, IntMacParams)


UNIT = Unit(
    key="intmac",
    summary="integer baseline: signed a*b summed into a wrapping accumulator, one sum per last",
    params=IntMacParams,
    component=IntMultiplyAccumulate,
    golden=int_mac,
    model="sim.units.int_mac:IntMacModel",
    reference="sim.formal.ref_accum:INTMAC",
    presets=(INT_PRESET,),
    baseline=True,
)
