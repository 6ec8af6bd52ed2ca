"""MXINT shared-exponent block adder."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden.block_adder import MAX_GUARD_BITS, block_add
from golden.format import MAX_MAN_BITS

from .layouts import mxint_block_layout
from .params import (
    a_bits_param,
    b_bits_param,
    block_param,
    exp_bits_param,
    guard_bits_param,
    rounding_param,
)
from .pipeline import StallPipeline
from .unit import Params, Unit, expose, param

__all__ = ["UNIT", "AdderParams", "MXIntBlockAdder"]


def _tree(values: list, op):
    """Balanced reduction of ``values`` with the binary operator ``op``."""
    while len(values) > 1:
        values = [op(values[i], values[i + 1]) if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


class MXIntBlockAdder(wiring.Component):
    """Element-wise sum of two MXINT blocks, renormalised to an MXINT block.

    With ``M = max(a_bits, b_bits)``, ``G = guard_bits``, ``E_max = max(E_a, E_b)`` and
    ``d = |E_a - E_b|``:

    * both blocks are widened without loss to ``M - 2`` fraction bits plus ``G`` guard bits
      (``X = P << (M - m + G)``, ``M + G`` bits);
    * the block with the smaller exponent code is shifted right ARITHMETICALLY by ``d``
      (floor; bits below the guard bits are dropped, no sticky bit; ``d >= M + G`` leaves
      the sign, ``0`` or ``-1``); ``S_i = X_big,i + (X_small,i >> d)`` exactly,
      ``M + G + 1`` bits, one unit weighing ``2**(E_max - bias - (M - 2) - G)``;
    * ``L = floor(log2(max_i |S_i|))`` (the leading one of the OR of all ``|S_i|``), result
      code ``E = clamp(E_max + L - (M - 2) - G, 0, 2**exp_bits - 2)``, mantissas
      ``Q_i = round(S_i / 2**(E - E_max + M + G - out_bits))`` in mode ``rounding``,
      saturated to ``±(2**(out_bits-1) - 1)``;
    * all ``S_i == 0`` gives ``E = 0`` and zero mantissas; a NaN code on either input gives
      the NaN code and zero mantissas.

    See :func:`golden.block_adder.block_add`, which this unit equals bit for bit. No shift
    amount depends on ``2**exp_bits``: the alignment shift is clamped to ``M + G`` and the
    renormalisation shift lies in ``[0, M + G]``.

    Structure: three pipeline stages (align and add; leading one and exponent; rounding
    shift and saturation). Throughput is one block pair per cycle; :attr:`latency` is 3.
    The pipeline stalls as a whole when the output is valid and not ready; ``a`` and ``b``
    transfer together (each is ready only when the other is valid and the pipeline can
    accept).

    Parameters
    ----------
    a_bits, b_bits : int
        Mantissa widths of ``a`` and ``b`` including the sign, 2 to 24; may differ.
    exp_bits : int
        Shared exponent width of inputs and output, 2 to 8.
    block : int
        Elements per block ``k``, 1 to 1024.
    out_bits : int
        Mantissa width of the result, 2 to 24.
    guard_bits : int
        Extra low bits kept by the alignment shift, 0 to 32 (default 3).
    rounding : {"even", "away", "zero", "floor"}
        Rounding of the renormalisation (default ``"even"``).

    Members
    -------
    a, b : ``In(stream.Signature(mxint_block_layout(...)))``
        Input blocks.
    o : ``Out(stream.Signature(mxint_block_layout(man_bits=out_bits, ...)))``
        Result block (``mantissa`` array first, then ``exponent``).

    Raises
    ------
    TypeError
        If an integer parameter is not an integer.
    ValueError
        If a parameter is out of range or ``rounding`` is unknown.
    """

    def __init__(self, *, a_bits: int, b_bits: int, exp_bits: int = 8, block: int,
                 out_bits: int, guard_bits: int = 3, rounding: str = "even") -> None:
        self.params = AdderParams(a_bits=a_bits, b_bits=b_bits, exp_bits=exp_bits, block=block,
                                  out_bits=out_bits, guard_bits=guard_bits, rounding=rounding)
        super().__init__({
            "a": In(stream.Signature(mxint_block_layout(
                man_bits=a_bits, exp_bits=exp_bits, block=block))),
            "b": In(stream.Signature(mxint_block_layout(
                man_bits=b_bits, exp_bits=exp_bits, block=block))),
            "o": Out(stream.Signature(mxint_block_layout(
                man_bits=out_bits, exp_bits=exp_bits, block=block))),
        })

    @property
    def sum_width(self) -> int:
        """Width of the exact aligned sums ``S_i``, ``max(a_bits, b_bits) + guard_bits + 1``."""
        return max(self.a_bits, self.b_bits) + self.guard_bits + 1

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to the result being valid (3)."""
        return 3

    def elaborate(self, platform) -> Module:
        m = Module()
        k = self.block
        width = max(self.a_bits, self.b_bits) + self.guard_bits  # M + G
        m_out = self.out_bits
        nan_code = (1 << self.exp_bits) - 1

        # Whole-pipeline stall: one enable, no skid buffers (hw/pipeline.py).
        pipe = StallPipeline(m, inputs=[self.a, self.b], output=self.o, depth=self.latency)

        def register(value, shape, name):
            return pipe.register(value, name, shape)

        # Stage 1: align the block with the smaller code and add. The shift is arithmetic
        # (``>>`` of a signed value) and clamped to ``width``, where it has already reached
        # the sign, so its multiplexer does not grow with 2**exp_bits.
        ea, eb = self.a.payload.exponent, self.b.payload.exponent
        a_ge = Signal(name="a_ge")
        m.d.comb += a_ge.eq(ea >= eb)
        diff = Signal(self.exp_bits, name="diff")
        m.d.comb += diff.eq(Mux(a_ge, ea - eb, eb - ea))
        dist = Signal(range(width + 1), name="dist")
        m.d.comb += dist.eq(Mux(diff > width, width, diff))
        e_max = register(Mux(a_ge, ea, eb), unsigned(self.exp_bits), "e_max_s1")
        nan = register((ea == nan_code) | (eb == nan_code), 1, "nan_s1")
        sums = []
        for i in range(k):
            xa = Signal(signed(width), name=f"xa{i}")
            xb = Signal(signed(width), name=f"xb{i}")
            m.d.comb += [
                xa.eq(self.a.payload.mantissa[i] << (width - self.a_bits)),
                xb.eq(self.b.payload.mantissa[i] << (width - self.b_bits)),
            ]
            big, small = Mux(a_ge, xa, xb), Mux(a_ge, xb, xa)
            sums.append(register(big + (small >> dist), signed(width + 1), f"sum{i}_s1"))

        # Stage 2: the leading one of max |S_i| is the leading one of the OR of all |S_i|.
        mags = []
        for i, s in enumerate(sums):
            mag = Signal(unsigned(width + 1), name=f"mag{i}")
            m.d.comb += mag.eq(Mux(s < 0, -s, s))
            mags.append(mag)
        any_bits = Signal(unsigned(width + 1), name="any_bits")
        m.d.comb += any_bits.eq(_tree(mags, lambda x, y: x | y))
        lead = Signal(range(width + 1), name="lead")
        for bit in range(width + 1):  # the highest set bit wins (last assignment)
            with m.If(any_bits[bit]):
                m.d.comb += lead.eq(bit)
        # E = clamp(E_max + L - (M - 2) - G, 0, 2**e - 2); computed signed.
        e_raw = Signal(signed(self.exp_bits + 3 + width.bit_length()), name="e_raw")
        m.d.comb += e_raw.eq(e_max + lead + Const(-(width - 2)))
        e_clamped = Signal(unsigned(self.exp_bits), name="e_clamped")
        with m.If(e_raw < 0):
            m.d.comb += e_clamped.eq(0)
        with m.Elif(e_raw > nan_code - 1):
            m.d.comb += e_clamped.eq(nan_code - 1)
        with m.Else():
            m.d.comb += e_clamped.eq(e_raw)
        # Right shift of V = S << (m_out - 2): r = E - E_max + (M - 2) + G, in [0, M + G].
        r_raw = Signal(signed(self.exp_bits + 3 + width.bit_length()), name="r_raw")
        m.d.comb += r_raw.eq(e_clamped - e_max + Const(width - 2))
        zero = any_bits == 0
        e_out = Mux(nan, nan_code, Mux(zero, 0, e_clamped))
        exponent = register(e_out, unsigned(self.exp_bits), "exp_s2")
        shift = register(r_raw[:len(lead)], unsigned(len(lead)), "shift_s2")
        kill = register(nan, 1, "kill_s2")
        sums = [register(s, signed(width + 1), f"sum{i}_s2") for i, s in enumerate(sums)]

        # Stage 3: Q_i = round(V_i / 2**r), saturated. The masks are shared by the block.
        vwidth = width + 1 + max(m_out - 2, 0)
        mask = Signal(unsigned(vwidth), name="mask")
        half = Signal(unsigned(vwidth), name="half")
        m.d.comb += [
            mask.eq((Const(1, vwidth + 1) << shift) - 1),
            half.eq((Const(1, vwidth + 1) << shift) >> 1),
        ]
        nonzero_shift = shift != 0
        top = (1 << (m_out - 1)) - 1
        for i, s in enumerate(sums):
            v = Signal(signed(vwidth), name=f"v{i}")
            m.d.comb += v.eq(s << (m_out - 2))
            q = Signal(signed(vwidth), name=f"q{i}")
            rem = Signal(unsigned(vwidth), name=f"rem{i}")
            m.d.comb += [q.eq(v >> shift), rem.eq(v.as_unsigned() & mask)]
            if self.rounding == "floor":
                inc = Const(0, 1)
            elif self.rounding == "zero":
                inc = (rem != 0) & (v < 0)
            elif self.rounding == "away":
                inc = nonzero_shift & ((rem > half) | ((rem == half) & (v >= 0)))
            else:
                inc = nonzero_shift & ((rem > half) | ((rem == half) & q[0]))
            rounded = Signal(signed(vwidth + 1), name=f"rounded{i}")
            m.d.comb += rounded.eq(q + inc)
            sat = Signal(signed(m_out), name=f"sat{i}")
            with m.If(kill):
                m.d.comb += sat.eq(0)
            with m.Elif(rounded > top):
                m.d.comb += sat.eq(top)
            with m.Elif(rounded < -top):
                m.d.comb += sat.eq(-top)
            with m.Else():
                m.d.comb += sat.eq(rounded)
            out = register(sat, signed(m_out), f"man{i}_s3")
            m.d.comb += self.o.payload.mantissa[i].eq(out)
        m.d.comb += self.o.payload.exponent.eq(
            register(exponent, unsigned(self.exp_bits), "exp_s3"))
        return m


@dataclass(frozen=True, kw_only=True)
class AdderParams(Params):
    """Parameters of :class:`MXIntBlockAdder` (see there for their meaning)."""

    a_bits: int = a_bits_param()
    b_bits: int = b_bits_param()
    exp_bits: int = exp_bits_param()
    block: int = block_param()
    out_bits: int = param(help="mantissa bits of the result block, sign included", lo=2,
                          hi=MAX_MAN_BITS, fallback="bits")
    guard_bits: int = guard_bits_param(3, hi=MAX_GUARD_BITS)
    rounding: str = rounding_param()

    @property
    def name(self) -> str:
        return (f"mxint_add_a{self.a_bits}_b{self.b_bits}_e{self.exp_bits}_k{self.block}"
                f"_o{self.out_bits}_g{self.guard_bits}_{self.rounding}")


expose(MXIntBlockAdder, AdderParams)

UNIT = Unit(
    key="adder",
    summary="MXINT block adder: align to the larger shared exponent, add, renormalise",
    params=AdderParams,
    component=MXIntBlockAdder,
    golden=block_add,
    model="sim.units.block_adder:AdderModel",
    reference="sim.formal.ref_adder:ADDER",
)
