"""Shared-exponent block adder: MXINT and OCP MX minifloat (MXFP8/6/4) operands."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden.block_adder import MAX_GUARD_BITS, MAX_SUM_BITS, block_add, sum_bits
from golden.format import MAX_MAN_BITS, MXFPFormat, MXIntFormat

from .layouts import mxfp_block_layout, mxint_block_layout
from .params import (
    a_bits_param,
    b_bits_param,
    block_param,
    check_element_scale,
    element_of,
    element_param,
    exp_bits_param,
    guard_bits_param,
    out_ready_param,
    out_ready_suffix,
    rounding_param,
)
from .pipeline import StallPipeline
from .placement import MIN_PLACED_EXP_BITS, element_fields, element_value
from .unit import Params, Unit, expose, param

__all__ = ["UNIT", "AdderParams", "MXIntBlockAdder"]


def _tree(values: list, op):
    """Balanced reduction of ``values`` with the binary operator ``op``."""
    while len(values) > 1:
        values = [op(values[i], values[i + 1]) if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


class MXIntBlockAdder(wiring.Component):
    """Element-wise sum of two MX blocks, renormalised to an MXINT block.

    Each operand is MXINT (``a_element="int"``, ``a_bits``-bit mantissas ``P``, ``f = m -
    2`` fraction bits, ``I = 2`` integer bits) or an OCP MX minifloat (element codes read
    in their fixed-point view ``P = decode(code) = value * 2**f``, :mod:`golden.minifloat`;
    specials count as 0; ``I = int_bits - f``; E8M0 scale). With ``F = max(f_a, f_b)``,
    ``G = guard_bits``, ``W = max(I_a, I_b) + F + G`` (``M + G`` for two MXINT operands,
    ``M = max(a_bits, b_bits)``), ``E_max = max(E_a, E_b)`` and ``d = |E_a - E_b|``:

    * both blocks are widened without loss to ``F + G`` fraction bits
      (``X = P << (F - f + G)``, ``W`` bits);
    * the block with the smaller exponent code is shifted right ARITHMETICALLY by ``d``
      (floor; bits below the guard bits are dropped, no sticky bit; ``d >= W`` leaves
      the sign, ``0`` or ``-1``); ``S_i = X_big,i + (X_small,i >> d)`` exactly,
      ``W + 1`` bits, one unit weighing ``2**(E_max - bias - F - G)``;
    * ``L = floor(log2(max_i |S_i|))`` (the leading one of the OR of all ``|S_i|``), result
      code ``E = clamp(E_max + L - F - G, 0, 2**exp_bits - 2)``, mantissas
      ``Q_i = round(S_i / 2**(E - E_max + F + G + 2 - out_bits))`` in mode ``rounding``,
      saturated to ``±(2**(out_bits-1) - 1)``;
    * all ``S_i == 0`` gives ``E = 0`` and zero mantissas; a NaN code on either input, or
      an infinity or NaN element code in either block (E5M2 ``S.11111.xx``, E4M3
      ``S.1111.111``), gives the NaN code and zero mantissas.

    See :func:`golden.block_adder.block_add`, which this unit equals bit for bit. No shift
    amount depends on ``2**exp_bits``: the alignment shift is clamped to ``W`` and the
    renormalisation shift lies in ``[0, W]``. A minifloat code is decoded by the
    decomposition of the dot product's placement (:mod:`hw.placement`: signed significand
    ``q`` and shift ``x``); with an E3M2, E4M3 or E5M2 operand (:attr:`fused`) each
    element's decoding and alignment are one left shift of ``q`` by ``x + c - d``.

    Structure: three pipeline stages (align and add; leading one and exponent; rounding
    shift and saturation). Throughput is one block pair per cycle; :attr:`latency` is 3.
    The pipeline stalls as a whole when the output is valid and not ready; ``a`` and ``b``
    transfer together (each is ready only when the other is valid and the pipeline can
    accept).

    Parameters
    ----------
    a_element, b_element : str
        Element format of ``a`` and ``b``: ``"int"`` (default, MXINT of ``a_bits`` /
        ``b_bits``) or ``"e5m2"``, ``"e4m3"``, ``"e3m2"``, ``"e2m3"``, ``"e2m1"``; may
        differ.
    a_bits, b_bits : int
        Mantissa widths of an MXINT ``a`` and ``b`` including the sign, 2 to 24; may
        differ. Not given (None) for a minifloat operand.
    exp_bits : int
        Shared exponent width of inputs and output, 2 to 8; 8 (E8M0) when either operand
        is a minifloat.
    block : int
        Elements per block ``k``, 1 to 1024.
    out_bits : int
        Mantissa width of the result, 2 to 24.
    guard_bits : int
        Extra low bits kept by the alignment shift, 0 to 32 (default 3); with an E5M2
        operand at most what keeps ``S`` within 61 bits
        (:data:`golden.block_adder.MAX_SUM_BITS`).
    rounding : {"even", "away", "zero", "floor"}
        Rounding of the renormalisation (default ``"even"``).
    out_ready : str
        ``"direct"`` (default): ``o.ready`` reaches the register enables combinationally;
        ``"registered"``: through a skid register at the output
        (:func:`hw.pipeline.output_stage`): two flip-flops, the skid's valid bit and the
        registered enable (:class:`hw.pipeline.StallPipeline`); same latency and rate.

    Members
    -------
    a, b : ``In(stream.Signature(mxint_block_layout(...)))``
        Input blocks; ``mxfp_block_layout(...)`` (``codes`` and ``exponent``) for a
        minifloat operand.
    o : ``Out(stream.Signature(mxint_block_layout(man_bits=out_bits, ...)))``
        Result block (``mantissa`` array first, then ``exponent``).

    Raises
    ------
    TypeError
        If an integer parameter is not an integer.
    ValueError
        If a parameter is out of range, ``rounding`` is unknown, ``exp_bits`` is not 8
        with a minifloat operand, or ``guard_bits`` makes ``S`` wider than 61 bits.
    """

    def __init__(self, *, a_element: str = "int", b_element: str = "int",
                 a_bits: int | None = None, b_bits: int | None = None, exp_bits: int = 8,
                 block: int, out_bits: int, guard_bits: int = 3,
                 rounding: str = "even", out_ready: str = "direct") -> None:
        self.params = AdderParams(a_element=a_element, b_element=b_element, a_bits=a_bits,
                                  b_bits=b_bits, exp_bits=exp_bits, block=block,
                                  out_bits=out_bits, guard_bits=guard_bits, rounding=rounding,
                                  out_ready=out_ready)
        self._elements = {"a": element_of(self.params, "a"), "b": element_of(self.params, "b")}

        def layout(side: str, bits: int | None):
            element = self._elements[side]
            if element is None:
                return mxint_block_layout(man_bits=bits, exp_bits=exp_bits, block=block)
            return mxfp_block_layout(element_bits=element.width, block=block)

        super().__init__({
            "a": In(stream.Signature(layout("a", a_bits))),
            "b": In(stream.Signature(layout("b", b_bits))),
            "o": Out(stream.Signature(mxint_block_layout(
                man_bits=out_bits, exp_bits=exp_bits, block=block))),
        })

    @property
    def sum_width(self) -> int:
        """Width of the exact aligned sums ``S_i``, ``W + 1``
        (``max(a_bits, b_bits) + guard_bits + 1`` for two MXINT operands)."""
        return self.params.sum_bits[1] + 1

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to the result being valid (3)."""
        return 3

    @property
    def fused(self) -> bool:
        """Whether stage 1 decodes and aligns each element in one shifter
        (:meth:`_fused_sums`): when an operand is a minifloat with at least
        :data:`hw.placement.MIN_PLACED_EXP_BITS` (3) exponent bits (E3M2, E4M3, E5M2),
        whose wide fixed-point integers make a decoder followed by a ``W``-bit alignment
        shifter dear. Otherwise (MXINT, E2M3, E2M1) :meth:`_aligned_sums`."""
        return any(e is not None and e.exp_bits >= MIN_PLACED_EXP_BITS
                   for e in self._elements.values())

    def _aligned_sums(self, m, register, a_ge, dist, width: int, frac: int) -> list:
        """Stage 1: ``X = P << (F - f + G)`` (``W - m`` for MXINT; a minifloat code decoded
        to ``P`` first, :func:`hw.placement.element_value`), the smaller-code block shifted
        right arithmetically by ``dist``, ``S_i`` registered."""
        values = {}
        for side in ("a", "b"):
            payload, element = getattr(self, side).payload, self._elements[side]
            if element is None:
                values[side] = [payload.mantissa[i] for i in range(self.block)]
                continue
            values[side] = []
            for i in range(self.block):
                value = Signal(signed(element.int_bits), name=f"p{side}{i}")
                m.d.comb += value.eq(element_value(element, payload.codes[i])[0])
                values[side].append(value)
        shift_a = frac - self.params.format_a.frac_bits  # F - f_a + G (W - a_bits for MXINT)
        shift_b = frac - self.params.format_b.frac_bits
        sums = []
        for i in range(self.block):
            xa = Signal(signed(width), name=f"xa{i}")
            xb = Signal(signed(width), name=f"xb{i}")
            m.d.comb += [
                xa.eq(values["a"][i] << shift_a),
                xb.eq(values["b"][i] << shift_b),
            ]
            big, small = Mux(a_ge, xa, xb), Mux(a_ge, xb, xa)
            sums.append(register(big + (small >> dist), signed(width + 1), f"sum{i}_s1"))
        return sums

    def _fused_sums(self, m, register, a_ge, dist, width: int, frac: int) -> list:
        """Stage 1 when :attr:`fused`: decoding and alignment in one shifter per element
        and operand.

        An element is ``P = q << x`` with a signed significand ``q`` (a minifloat's
        ``(-1)**s * g``, :func:`hw.placement.element_fields`, ``x = max(e - 1, 0)``; an
        MXINT mantissa with ``x = 0``), so ``X >> d = (P << c) >> d = floor(q * 2**(x + c -
        d))`` with ``c = F - f + G`` and ``d = 0`` for the block with the larger code. With
        ``q`` an ``R``-bit two's complement number, ``t = x + c + R - d`` clamped at 0
        gives it as ``(q << t) >> R``: a left shift of the narrow ``q`` and a slice (a
        right shift of ``q`` by ``R`` or more leaves its sign, as the floor does). No multiplexer
        picks the larger and smaller block, and no ``W``-bit barrel shifter follows the
        decoder (xc7 LUT-only, ``python -m flows.report``: E4M3 k32 12,006 LUTs against
        16,238 for decode, then align; but E2M1 k32 4,602 against 4,190).
        """
        sides = []
        for side, big in (("a", a_ge), ("b", ~a_ge)):
            element, payload = self._elements[side], getattr(self, side).payload
            fmt = getattr(self.params, f"format_{side}")
            c = frac - fmt.frac_bits
            if element is None:
                q_bits, x_max = fmt.man_bits, 0
            else:
                q_bits, x_max = element.man_bits + 2, max(0, element.emax + element.bias - 1)
            sides.append((side, big, element, payload, c, q_bits, x_max))
        sums = []
        for i in range(self.block):
            xs = []
            for side, big, element, payload, c, q_bits, x_max in sides:
                q = Signal(signed(q_bits), name=f"q{side}{i}")
                if element is None:
                    m.d.comb += q.eq(payload.mantissa[i])
                    x = 0
                else:
                    s, g, x, _special = element_fields(element, payload.codes[i])
                    m.d.comb += q.eq(Mux(s, -g, g))
                t = Signal(range(-width, x_max + c + q_bits + 1), name=f"t{side}{i}")
                m.d.comb += t.eq(x + (c + q_bits) - Mux(big, 0, dist))
                wide = Signal(signed(width + q_bits), name=f"x{side}{i}")
                m.d.comb += wide.eq(q << Mux(t < 0, 0, t[:len(t) - 1]))
                xs.append(wide[q_bits:].as_signed())
            sums.append(register(xs[0] + xs[1], signed(width + 1), f"sum{i}_s1"))
        return sums

    def elaborate(self, platform) -> Module:
        m = Module()
        k = self.block
        frac, width = self.params.sum_bits  # F + G, W (M - 2 + G, M + G for MXINT)
        m_out = self.out_bits
        nan_code = (1 << self.exp_bits) - 1

        # Whole-pipeline stall: one enable, no skid buffers (hw/pipeline.py).
        pipe = StallPipeline(m, inputs=[self.a, self.b], output=self.o, depth=self.latency,
                             out_ready=self.out_ready)

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
        nan = (ea == nan_code) | (eb == nan_code)
        for side in ("a", "b"):
            element = self._elements[side]
            if element is not None and element.specials != "none":
                for i in range(k):  # an infinity or NaN code makes the block NaN
                    nan = nan | element_fields(element, getattr(self, side).payload.codes[i])[3]
        nan = register(nan, 1, "nan_s1")
        if self.fused:
            sums = self._fused_sums(m, register, a_ge, dist, width, frac)
        else:
            sums = self._aligned_sums(m, register, a_ge, dist, width, frac)

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
        # E = clamp(E_max + L - F - G, 0, 2**e - 2); computed signed.
        e_raw = Signal(signed(self.exp_bits + 3 + width.bit_length()), name="e_raw")
        m.d.comb += e_raw.eq(e_max + lead + Const(-frac))
        e_clamped = Signal(unsigned(self.exp_bits), name="e_clamped")
        with m.If(e_raw < 0):
            m.d.comb += e_clamped.eq(0)
        with m.Elif(e_raw > nan_code - 1):
            m.d.comb += e_clamped.eq(nan_code - 1)
        with m.Else():
            m.d.comb += e_clamped.eq(e_raw)
        # Right shift of V = S << (m_out - 2): r = E - E_max + F + G, in [0, W] (unclamped
        # r = L <= W; clamped to 0, r = F + G - E_max; clamped to the top, 0 <= r < L).
        r_raw = Signal(signed(self.exp_bits + 3 + width.bit_length()), name="r_raw")
        m.d.comb += r_raw.eq(e_clamped - e_max + Const(frac))
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
            m.d.comb += pipe.output.payload.mantissa[i].eq(out)
        m.d.comb += pipe.output.payload.exponent.eq(
            register(exponent, unsigned(self.exp_bits), "exp_s3"))
        return m


#: ``--aformat``/``--wformat`` of the adder: every pair of formats, E5M2 with itself too.
ADDER_FORMAT_HELP = ("format of operand {side}: mxint<m> (MXINT of m bits, or of {bits} when "
                     "neither is given) or an OCP MX minifloat, mxfp8_e4m3, mxfp8_e5m2, "
                     "mxfp6_e3m2, mxfp6_e2m3 or mxfp4 (element codes under an E8M0 scale); "
                     "the record keeps the element: int, e5m2, e4m3, e3m2, e2m3, e2m1")


@dataclass(frozen=True, kw_only=True)
class AdderParams(Params):
    """Parameters of :class:`MXIntBlockAdder` (see there for their meaning)."""

    a_element: str = element_param("a", "activations", "--abits",
                                   help=ADDER_FORMAT_HELP.replace("{side}", "a"))
    b_element: str = element_param("b", "weights", "--wbits",
                                   help=ADDER_FORMAT_HELP.replace("{side}", "b"))
    a_bits: int = a_bits_param(applies=("a_element", "int"))
    b_bits: int = b_bits_param(applies=("b_element", "int"))
    exp_bits: int = exp_bits_param()
    block: int = block_param()
    out_bits: int = param(help="mantissa bits of the result block, sign included", lo=2,
                          hi=MAX_MAN_BITS, fallback="bits")
    guard_bits: int = guard_bits_param(3, hi=MAX_GUARD_BITS)
    rounding: str = rounding_param()
    out_ready: str = out_ready_param()

    def resolve(self) -> None:
        check_element_scale(self, "a", "b")
        frac, width = self.sum_bits
        if width + 1 > MAX_SUM_BITS:
            most = self.guard_bits - (width + 1 - MAX_SUM_BITS)
            raise ValueError(
                f"guard_bits must be from 0 to {most} with {self.format_a.family} and "
                f"{self.format_b.family} operands (the exact sums, {width + 1 - self.guard_bits}"
                f" bits plus the guard bits, must fit the {MAX_SUM_BITS} bits of the golden "
                f"model), not {self.guard_bits}")

    def _format(self, side: str) -> MXIntFormat | MXFPFormat:
        element = getattr(self, f"{side}_element")
        if element == "int":
            return MXIntFormat(getattr(self, f"{side}_bits"), self.exp_bits, self.block)
        return MXFPFormat(element, block=self.block)

    format_a = property(lambda self: self._format("a"), doc="The block format of ``a``.")
    format_b = property(lambda self: self._format("b"), doc="The block format of ``b``.")

    @property
    def sum_bits(self) -> tuple[int, int]:
        """``(F + G, W)`` (:func:`golden.block_adder.sum_bits`)."""
        return sum_bits(self.format_a, self.format_b, self.guard_bits)

    @property
    def mxint(self) -> bool:
        """Both operands are MXINT."""
        return self.a_element == "int" and self.b_element == "int"

    @property
    def name(self) -> str:
        tail = f"_k{self.block}_o{self.out_bits}_g{self.guard_bits}_{self.rounding}"
        tail += out_ready_suffix(self)
        if self.mxint:
            return f"mxint_add_a{self.a_bits}_b{self.b_bits}_e{self.exp_bits}{tail}"
        side_a = self.a_element if self.a_element != "int" else f"i{self.a_bits}"
        side_b = self.b_element if self.b_element != "int" else f"i{self.b_bits}"
        return f"mx_add_a{side_a}_b{side_b}{tail}"


expose(MXIntBlockAdder, AdderParams)

UNIT = Unit(
    key="adder",
    # The summary is in every manifest: kept as it was, so MXINT designs stay byte-identical.
    summary="MXINT block adder: align to the larger shared exponent, add, renormalise",
    summary_mx="MX block adder (MXINT or OCP MX minifloat operands): align to the larger "
               "shared exponent, add, renormalise to MXINT",
    params=AdderParams,
    component=MXIntBlockAdder,
    golden=block_add,
    model="sim.units.block_adder:AdderModel",
    reference="sim.formal.ref_adder:ADDER",
)
