"""Dequantiser: one MXINT or MXFP block, or one accumulator result, to float32 bit patterns."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.accumulator import DEFAULT_GUARD_BITS
from golden.dequant import QUIET_NAN, accum_scale_offset, dequant_blocks
from golden.format import MAX_MAN_BITS, SCALE_BITS, operand_format
from golden.minifloat import ELEMENTS

from .accumulator import ACC_WIDTH_HELP, accum_output_layout, check_acc_fields, operands
from .cast import float_block_layout
from .layouts import mxfp_block_layout, mxint_block_layout
from .params import (
    a_bits_param,
    b_bits_param,
    block_param,
    exp_bits_param,
    guard_bits_param,
    out_ready_param,
    out_ready_suffix,
)
from .pipeline import StallPipeline
from .unit import Params, Unit, expose, param

__all__ = ["ELEMENT_CHOICES", "SOURCES", "UNIT", "DequantParams", "MXIntDequantizer",
           "float32_layout"]

_FRAC, _FBIAS = 23, 127
_INF = 0x7F800000

#: What the dequantiser converts: an MXINT or MXFP block, or an accumulator result.
SOURCES = ("block", "accum")
#: Element formats of a block: ``int`` (MXINT, ``man_bits`` wide) or an OCP MX minifloat.
ELEMENT_CHOICES = ("int", *ELEMENTS)


def float32_layout() -> data.StructLayout:
    """One float32 bit pattern, field ``bits``."""
    return data.StructLayout({"bits": unsigned(32)})


def leading_one(m: Module, bits: Value, name: str) -> tuple[Value, Value]:
    """``(nonzero, position)`` of the highest set bit of ``bits``: a balanced tree of
    2:1 priority merges, ``ceil(log2(width))`` levels (``position`` is 0 when ``bits`` is 0).
    """
    width = len(bits)
    size = 1
    while size < width:
        size *= 2
    size = max(size, 2)
    padded = Cat(bits, Signal(size - width))  # zero-extended to a power of two
    # Level 1: pairs of bits; a node is (any bit set, index of its highest set bit).
    nodes = [(padded[i] | padded[i + 1], padded[i + 1]) for i in range(0, size, 2)]
    level = 1
    while len(nodes) > 1:
        merged = []
        for n in range(0, len(nodes), 2):
            (lo_any, lo_pos), (hi_any, hi_pos) = nodes[n], nodes[n + 1]
            pos = Signal(level + 1, name=f"{name}_l{level}_{n // 2}")
            m.d.comb += pos.eq(Mux(hi_any, Cat(hi_pos, 1), Cat(lo_pos, 0)))
            merged.append((lo_any | hi_any, pos))
        nodes, level = merged, level + 1
    return nodes[0]


class MXIntDequantizer(wiring.Component):
    """Convert an MXINT(m, e, k) or OCP MXFP block to ``k`` float32 bit patterns, equal to
    :func:`golden.dequant.dequant_blocks` (that is, :func:`golden.dequantize`); or, with
    ``source="accum"``, one accumulator result to one float32 pattern, equal to
    :func:`golden.dequant.dequant_accum`.

    **source="block"** (the default), ``element="int"`` (the default): MXINT.

    Element ``i`` is ``P_i * 2**s`` with ``s = E - bias - (m - 2)``, ``bias = 2**(e-1) - 1``.
    Since ``E >= 0``, ``bias <= 127`` and ``m <= 24``, ``s >= -149``: every value is a
    multiple of the smallest subnormal with at most 24 significant bits, so the conversion
    is **exact** and needs no rounding. Per element:

    * ``mag = |P|`` (``m`` bits, ``2**(m-1)`` for ``P = -2**(m-1)``), ``j`` = position of its
      leading one, ``F = j + s + 127`` the biased float exponent;
    * ``F >= 1`` (normal): pattern ``((F - 1) << 23) + (mag << (23 - j))`` — the leading one
      lands on bit 23 and carries into the exponent field;
    * ``F <= 0`` (subnormal): pattern ``mag << (s + 149)`` (below ``2**23``);
    * ``F >= 255``: infinity. It happens only for ``P = -2**(m-1)`` at code 254 with
      ``e = 8`` (``F = 255``), where the normal case's pattern is already ``0x7F800000``
      (``mag`` is a power of two: field 254 plus the carry of the leading one), so no
      separate case is built;
    * the sign bit is ``P < 0``; ``P = 0`` gives ``+0.0`` (``0x00000000``: exponent field
      forced to 0);
    * a NaN block (``E = 2**e - 1``) gives ``0x7FC00000`` for every element.

    The two cases share one left shifter by ``min(23 - j, s + 149)``. Stage 1 takes the
    magnitude, finds the leading one and computes the exponent field and shift; stage 2
    shifts and assembles. :attr:`latency` is 2.

    **source="block", element** one of ``e5m2``, ``e4m3``, ``e3m2``, ``e2m3``, ``e2m1``:
    an OCP MX block of ``k`` codes (sign ``s``, exponent field ``e`` of ``E`` bits with
    bias ``b``, mantissa field ``m`` of ``M`` bits) under an E8M0 scale ``X``. The value
    ``(-1)**s * P * 2**(X - 127 - f)``, ``f = b + M - 1``, is **exact** in float32 or
    beyond its range: ``P`` has at most ``M + 1 <= 4`` significant bits and its last one
    weighs at least ``2**(-127 - f) >= 2**-143`` (``f <= 16``), a multiple of the smallest
    subnormal ``2**-149``. Per element:

    * ``g``, the leading-one position of ``P``: ``e + M - 1`` for a normal code
      (``e > 0``), the leading one ``j`` of ``m`` (at most 3 bits) for a subnormal one;
      ``frac``, the ``M`` bits below that leading one (``m``, or ``m`` shifted up by
      ``M - j``);
    * ``F = X - f + g``, the biased float32 exponent (``X - f`` once per block, then one
      small adder per element): ``1 <= F <= 254`` is a normal result,
      ``(F << 23) | (frac << (23 - M))``; ``F >= 255`` is ``±inf``; ``F <= 0`` (never
      below ``-f``) a subnormal one, ``(2**M + frac) << (22 - M + F)``, a shift by one of
      ``f + 1`` amounts selected by the low 5 bits of ``F``;
    * the sign bit is ``s`` (``-0`` codes give ``0x80000000``); zero codes give ``±0``;
      E5M2 infinity codes give ``±inf``; NaN codes (E5M2, E4M3) and a NaN block
      (``X = 255``) give ``0x7FC00000``.

    Stage 1 decodes each code and adds ``F``; stage 2 selects the case and assembles the
    pattern. :attr:`latency` is 2.

    **source="accum"**: the input is the ``o`` stream of
    :class:`hw.accumulator.MXIntAccumulator` with the same parameters: ``sum`` (``A``,
    signed ``W = acc_width`` bits), ``exponent`` (``E``, ``e + 1`` bits) and ``nan``. The
    value ``A * 2**(E - c)``, ``c = G + 2*bias + f_a + f_b`` (``f = m - 2`` for an MXINT
    operand, the element's ``bias + M - 1`` for a minifloat one;
    :func:`golden.dequant.accum_scale_offset`), is rounded once to float32, nearest with
    ties to even:

    * ``mag = |A|`` (``W`` bits), ``j`` its leading one (a balanced priority tree),
      ``F = j + E - c + 127`` the biased exponent of the leading one;
    * right shift ``r' = max(j, c - 126 - E)`` (clamped to ``W + 25``) of ``mag << 23``:
      ``j`` leaves 24 significant bits (normal, ``F >= 1``), ``c - 126 - E`` the multiples
      of ``2**-149`` (subnormal, gradual underflow); the shifter is logarithmic and keeps a
      round bit; the sticky bit, the OR of everything below the round bit, is the OR of
      the bits ``i`` of ``mag`` with ``i + 25 <= r'`` (a mask, beside the shifter);
    * the significand ``q`` (< ``2**24``) is incremented by ``R & (S | q[0])`` and added to
      the exponent field ``max(F - 1, 0) << 23``, so a rounding carry moves into the
      exponent by itself; the sum is ``>= 0x7F800000`` (``±inf``) exactly when
      ``field + ((q + inc) >> 23) >= 255``, decided from ``field`` compared with 253, 254
      and 255 a stage earlier and the top bits of ``q`` and ``inc``;
    * bit 31 is the sign of ``A`` (a negative value that underflows is ``-0.0``),
      ``A = 0`` gives ``+0.0``, ``nan`` gives ``0x7FC00000``.

    Seven stages, each at most one carry chain or one tree of a few LUT levels, so that a
    float32 output does not limit the clock of the accumulator before it: 1. ``|A|``, and
    ``c - 126 - E``, ``E + 126 - c`` and ``u = c - 151 - E`` from the exponent alone; 2. the
    leading one, the subnormal shift clamped to ``[0, W + 25]``, and the sticky mask (bit
    ``i`` set when ``u >= i`` or ``mag`` has a one at ``i + 25`` or above: ``i + 25 <= r'``
    without ``r'``); 3. the shift ``r'`` (one comparison), the exponent field (one add) and
    the sticky bit (mask AND ``mag``, an OR tree); 4. the shifter's low levels
    (``ceil(b / 2)`` of the ``b`` bits of ``r'``), the field comparisons; 5. the shifter's
    high levels and the rounding increment; 6. the 31-bit add and the overflow test; 7. the
    zero/infinity/sign/NaN select. :attr:`latency` is 7 for every width.

    Either source: throughput is one input per cycle. With ``"block"`` the pipeline stalls
    as a whole when the output is valid and not ready. With ``"accum"`` it has an enable per
    stage (:class:`hw.pipeline.StallPipeline` with ``elastic``): a stage loads when it is
    empty or the stage after it loads, so the empty stages between the results of an
    accumulator (one per group of its inputs) fill while the output is not taken, and the
    seven stages hold seven results. Same latency and rate.

    Parameters
    ----------
    source : str
        ``"block"`` (default) or ``"accum"``.
    element : str or None
        ``source="block"`` only: ``"int"`` (the default; also ``None``) for MXINT, or an
        OCP MX minifloat element, ``"e5m2"``, ``"e4m3"`` (MXFP8), ``"e3m2"``, ``"e2m3"``
        (MXFP6) or ``"e2m1"`` (MXFP4). The record keeps ``None`` for MXINT, so that MXINT
        designs and their manifests stay as they were.
    man_bits : int
        ``m``, element width including the sign, 2 to 24 (``source="block"`` with MXINT
        elements only, and required there).
    exp_bits : int
        ``e``, shared exponent width, 2 to 8 (default 8; 8, E8M0, for MXFP).
    block : int
        ``k``, elements per block, 1 to 1024 (for ``"accum"``: of the dot unit).
    a_element, b_element : str or None
        ``source="accum"`` only: element formats of the dot unit's operands, ``"int"``
        (the default; also ``None``, which the record keeps) or a minifloat element name.
    a_bits, b_bits : int
        ``source="accum"`` only: mantissa widths of the dot unit's MXINT operands, 2 to 24.
    guard_bits, acc_width : int or None
        ``source="accum"`` only: of the accumulator (same ranges and defaults as
        :class:`hw.accumulator.MXIntAccumulator`: ``G`` default 8, ``W`` default
        ``min(in_width + G + 8, 62)``).
    out_ready : str
        ``"direct"`` (default): ``o.ready`` reaches the register enables combinationally;
        ``"registered"``: through a skid register at the output
        (:func:`hw.pipeline.output_stage`): two flip-flops, the skid's valid bit and the
        registered enable (:class:`hw.pipeline.StallPipeline`); same latency and rate.

    Members
    -------
    i : ``In(stream.Signature(...))``
        ``"block"``: ``mxint_block_layout`` (``mantissa``, ``k`` signed ``m``-bit, and
        ``exponent``); MXFP: ``mxfp_block_layout`` (``codes``, ``k`` unsigned
        ``1 + E + M``-bit, and the 8-bit scale ``exponent``). ``"accum"``:
        ``accum_output_layout`` (``sum``, ``exponent``, ``nan``).
    o : ``Out(stream.Signature(...))``
        ``"block"``: field ``bits``, ``k`` float32 bit patterns, element 0 in the low bits.
        ``"accum"``: field ``bits``, one float32 bit pattern.

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is out of range, or given for the other source.
    """

    def __init__(self, *, source: str = "block", element: str | None = None,
                 man_bits: int | None = None, exp_bits: int = 8, block: int,
                 a_element: str | None = None, b_element: str | None = None,
                 a_bits: int | None = None, b_bits: int | None = None,
                 guard_bits: int | None = None, acc_width: int | None = None,
                 out_ready: str = "direct") -> None:
        self.params = DequantParams(source=source, element=element, man_bits=man_bits,
                                    exp_bits=exp_bits, block=block, a_element=a_element,
                                    b_element=b_element, a_bits=a_bits, b_bits=b_bits,
                                    guard_bits=guard_bits, acc_width=acc_width,
                                    out_ready=out_ready)
        if self.element is not None:
            super().__init__({
                "i": In(stream.Signature(mxfp_block_layout(
                    element_bits=ELEMENTS[self.element].width, block=block))),
                "o": Out(stream.Signature(float_block_layout(float_format="fp32",
                                                             block=block))),
            })
            return
        if source == "block":
            super().__init__({
                "i": In(stream.Signature(mxint_block_layout(
                    man_bits=man_bits, exp_bits=exp_bits, block=block))),
                "o": Out(stream.Signature(float_block_layout(float_format="fp32",
                                                             block=block))),
            })
            return
        super().__init__({
            "i": In(stream.Signature(accum_output_layout(acc_width=self.acc_width,
                                                         exp_bits=exp_bits))),
            "o": Out(stream.Signature(float32_layout())),
        })

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to the result being valid: 2 for a block, 7 for
        an accumulator result (whatever the widths)."""
        return 2 if self.source == "block" else 7

    def elaborate(self, platform) -> Module:
        if self.source == "accum":
            return self._elaborate_accum()
        if self.element is not None:
            return self._elaborate_mxfp()
        m = Module()
        man = self.man_bits
        bias = (1 << (self.exp_bits - 1)) - 1
        nan_code = (1 << self.exp_bits) - 1

        # Whole-pipeline stall: one enable, no skid buffers (hw/pipeline.py).
        pipe = StallPipeline(m, inputs=[self.i], output=self.o, depth=self.latency,
                             out_ready=self.out_ready)
        register = pipe.register

        # Stage 1: s = E - bias - (m - 2) once per block; per element the magnitude, its
        # leading one j, the biased exponent F = j + s + 127 and the left shift.
        scale = Signal(signed(10), name="scale")
        m.d.comb += scale.eq(self.i.payload.exponent - (bias + man - 2))
        nan = register(self.i.payload.exponent == nan_code, "nan_r")
        fields = []
        for n in range(self.block):
            p = self.i.payload.mantissa[n]
            mag = Signal(man, name=f"mag{n}")
            m.d.comb += mag.eq(Mux(p < 0, -p, p))
            lead = Signal(range(man), name=f"lead{n}")
            for j in range(man):  # later assignments win: the highest set bit
                with m.If(mag[j]):
                    m.d.comb += lead.eq(j)
            biased = Signal(signed(11), name=f"f{n}")
            m.d.comb += biased.eq(lead + scale + _FBIAS)
            zero = mag == 0
            normal = biased > 0
            shift = Signal(range(_FRAC + 1), name=f"shift{n}")
            m.d.comb += shift.eq(Mux(normal, _FRAC - lead, scale + (_FBIAS + _FRAC - 1)))
            field = Signal(8, name=f"field{n}")
            m.d.comb += field.eq(Mux(normal & ~zero, biased - 1, 0))
            fields.append({
                "sign": register(p < 0, f"sign{n}_r"),
                "mag": register(mag, f"mag{n}_r"),
                "shift": register(shift, f"shift{n}_r"),
                "field": register(field, f"field{n}_r"),
            })

        # Stage 2: shift the magnitude into place and add the exponent field; the leading
        # one of a normal number carries into it (hence F - 1 above).
        for n, f in enumerate(fields):
            frac = Signal(_FRAC + 1, name=f"sig{n}")
            m.d.comb += frac.eq(f["mag"] << f["shift"])
            word = Signal(31, name=f"word{n}")
            # F = 255 (the one infinity, see above) needs no case: the carry of the
            # leading one of |P| = 2**(m-1) turns field 254 into 255 over a zero fraction.
            m.d.comb += word.eq((f["field"] << _FRAC) + frac)
            bits = Signal(unsigned(32), name=f"bits{n}")
            m.d.comb += bits.eq(Mux(nan, QUIET_NAN, Cat(word, f["sign"])))
            m.d.comb += pipe.output.payload.bits[n].eq(register(bits, f"bits{n}_r"))
        return m

    def _elaborate_mxfp(self) -> Module:
        m = Module()
        el = ELEMENTS[self.element]
        ew, mw, f = el.exp_bits, el.man_bits, el.frac_bits
        top_e = (1 << ew) - 1

        # Whole-pipeline stall: one enable, no skid buffers (hw/pipeline.py).
        pipe = StallPipeline(m, inputs=[self.i], output=self.o, depth=self.latency,
                             out_ready=self.out_ready)
        register = pipe.register

        # Stage 1, once per block: X - f (10 bits signed: -16 .. 255) and the NaN scale.
        x = self.i.payload.exponent
        x_f = Signal(signed(10), name="x_f")
        m.d.comb += x_f.eq(x - f)
        nan_block = register(x == (1 << SCALE_BITS) - 1, "nan_r")
        # Per element: decode the code to the leading-one position g of P and the M bits
        # below it, and add F = X - f + g. g <= 2**E - 1 + M - 1 (an E5M2 special: 32).
        fields = []
        for n in range(self.block):
            code = self.i.payload.codes[n]
            man, exp, sign = code[:mw], code[mw:mw + ew], code[-1]
            lead = Signal(range(top_e + mw), name=f"g{n}")
            frac = Signal(mw, name=f"frac{n}")
            with m.If(exp != 0):
                m.d.comb += [lead.eq(exp + (mw - 1)), frac.eq(man)]
            with m.Else():  # subnormal: normalise m; later assignments win (highest one)
                for j in range(mw):
                    with m.If(man[j]):
                        m.d.comb += [lead.eq(j), frac.eq(man << (mw - j))]
            biased = Signal(signed(10), name=f"f{n}")
            m.d.comb += biased.eq(x_f + lead)
            if el.specials == "ieee":  # E5M2: the all-ones exponent is inf (m = 0) or NaN
                inf = (exp == top_e) & (man == 0)
                nan = (exp == top_e) & (man != 0)
            elif el.specials == "nan":  # E4M3: S.1111.111 only
                inf, nan = Const(0), code[:-1].all()
            else:
                inf, nan = Const(0), Const(0)
            fields.append({
                "sign": register(sign, f"sign{n}_r"),
                "frac": register(frac, f"frac{n}_r"),
                "f": register(biased, f"f{n}_r"),
                "zero": register(code[:-1] == 0, f"zero{n}_r"),
                "inf": register(inf, f"inf{n}_r"),
                "nan": register(nan, f"nan{n}_r"),
            })

        # Stage 2: normal (1 <= F <= 254), subnormal (-f <= F <= 0: the significand
        # 2**M + frac shifted left by 22 - M + F, one case per value of F's low 5 bits),
        # infinite (F >= 255 or an inf code), zero, NaN.
        for n, e in enumerate(fields):
            biased = e["f"]
            sub = Signal(_FRAC, name=f"sub{n}")
            with m.Switch(biased[:5]):
                for v in range(-f, 1):
                    with m.Case(v & 0x1F):
                        m.d.comb += sub.eq(Cat(e["frac"], 1) << (_FRAC - 1 - mw + v))
            magnitude = Signal(31, name=f"magnitude{n}")
            with m.If(e["zero"]):
                m.d.comb += magnitude.eq(0)
            with m.Elif(e["inf"] | (biased >= 255)):
                m.d.comb += magnitude.eq(_INF)
            with m.Elif(biased <= 0):
                m.d.comb += magnitude.eq(sub)
            with m.Else():
                m.d.comb += magnitude.eq(Cat(Const(0, _FRAC - mw), e["frac"], biased[:8]))
            bits = Signal(unsigned(32), name=f"bits{n}")
            m.d.comb += bits.eq(Mux(nan_block | e["nan"], QUIET_NAN,
                                    Cat(magnitude, e["sign"])))
            m.d.comb += pipe.output.payload.bits[n].eq(register(bits, f"bits{n}_r"))
        return m

    def _elaborate_accum(self) -> Module:
        m = Module()
        w = self.acc_width
        fields = operands(self.params)
        del fields["block"]
        c = accum_scale_offset(exp_bits=self.exp_bits, guard_bits=self.guard_bits, **fields)
        top = w + 25  # a right shift of mag << 23 by this much leaves nothing, round included

        # An enable per stage (hw/pipeline.py, elastic): results arrive at most one per
        # group of the accumulator in front, and the stages between them fill while the
        # output is not taken.
        pipe = StallPipeline(m, inputs=[self.i], output=self.o, depth=self.latency,
                             out_ready=self.out_ready, elastic=True)

        stages = []

        def stage(n: int, *keep: str, **values) -> dict:
            """Stage ``n``'s registers (1 the first), named ``<key>_r<n>``: the previous
            stage's ``keep``, then ``values``."""
            values = {**{key: stages[-1][key] for key in keep}, **values}
            stages.append({key: pipe.register(value, f"{key}_r{n}", stage=n - 1)
                           for key, value in values.items()})
            return stages[-1]

        # Every stage below holds at most one carry chain or one tree of a few LUT levels,
        # so that the float32 output clocks as fast as the accumulator before it.
        # Stage 1: the magnitude (W bits hold 2**(W-1) for A = -2**(W-1)), and from E alone
        # the subnormal shift c - 126 - E and the exponent-field base E + 126 - c. Values:
        # E < 2**9, c <= 312, so 12 signed bits hold both.
        p = self.i.payload
        mag = Signal(unsigned(w), name="mag")
        m.d.comb += mag.eq(Mux(p.sum < 0, -p.sum, p.sum))
        sub_shift = Signal(signed(12), name="sub_shift")
        m.d.comb += sub_shift.eq(c - 126 - p.exponent)
        field_base = Signal(signed(12), name="field_base")
        m.d.comb += field_base.eq(p.exponent + (_FBIAS - 1 - c))
        # For the sticky mask of stage 2: u = (c - 126 - E) - 25, its own register.
        mask_shift = Signal(signed(12), name="mask_shift")
        m.d.comb += mask_shift.eq(c - 151 - p.exponent)
        s1 = stage(1, sign=p.sum < 0, nan=p.nan, mag=mag, sub_shift=sub_shift,
                   field_base=field_base, mask_shift=mask_shift)

        # Stage 2: the leading one j of mag (a balanced priority tree), and the subnormal
        # shift clamped to [0, W + 25] (a negative one never wins against j >= 0 below).
        nonzero, lead = leading_one(m, s1["mag"], "lead")
        sub_clamped = Signal(range(top + 1), name="sub_clamped")
        with m.If(s1["sub_shift"] < 0):
            m.d.comb += sub_clamped.eq(0)
        with m.Elif(s1["sub_shift"] > top):
            m.d.comb += sub_clamped.eq(top)
        with m.Else():
            m.d.comb += sub_clamped.eq(s1["sub_shift"])
        # The sticky mask: bit i set when i + 25 <= r' = max(c - 126 - E, j) (stage 3), that
        # is when either reaches it: c - 126 - E >= i + 25 (clamping changes no such test,
        # 1 <= i + 25 <= W + 25), or mag has a one at i + 25 or above (j >= i + 25). From
        # stage 1's registers, beside the leading-one tree rather than behind it.
        # With u = c - 151 - E: bit i of the first is u >= i, for 0 <= i < W: none if u < 0,
        # all if u >= 2**b (b = ceil(log2 W)), else a thermometer code of u's low b bits,
        # a table rather than comparisons (each bit a function of b bits).
        u = s1["mask_shift"]
        b = max(1, (w - 1).bit_length())
        thermometer = Signal(w, name="sticky_thermometer")
        with m.Switch(u[:b]):
            for v in range(1 << b):
                with m.Case(v):
                    m.d.comb += thermometer.eq((1 << min(v + 1, w)) - 1)
        above = Signal(w, name="sticky_above")
        m.d.comb += above.eq(Mux(u[-1], 0, Mux(u[b:].any(), (1 << w) - 1, thermometer)))
        mask = Signal(w, name="sticky_mask")
        m.d.comb += mask.eq(above | Cat(s1["mag"][i + 25:].any() for i in range(w)))
        s2 = stage(2, "sign", "nan", "mag", "field_base", nonzero=nonzero, lead=lead,
                   sub_shift=sub_clamped, sticky_mask=mask)

        # Stage 3: the right shift r' of mag << 23 keeps 24 significant bits (r' = j) or
        # the multiples of 2**-149 (r' = c - 126 - E), whichever keeps fewer: the larger,
        # clamped to W + 25. The exponent field is max(F - 1, 0) with F = j + E - c + 127.
        shift = Signal(range(top + 1), name="shift")
        m.d.comb += shift.eq(Mux(s2["sub_shift"] > s2["lead"], s2["sub_shift"], s2["lead"]))
        field_raw = Signal(signed(12), name="field_raw")
        m.d.comb += field_raw.eq(s2["lead"] + s2["field_base"])
        field = Signal(unsigned(11), name="field")
        m.d.comb += field.eq(Mux(field_raw < 0, 0, field_raw))
        # The sticky bit (see stages 4 and 5), from stage 2's mask: an AND and an OR tree.
        sticky = Signal(name="sticky")
        m.d.comb += sticky.eq((s2["mag"] & s2["sticky_mask"]).any())
        s3 = stage(3, "sign", "nan", "mag", "nonzero", shift=shift, sticky=sticky, field=field)

        # Stages 4 and 5: mag << 23, with a round bit below it (width W + 24), shifted right
        # by r' in a logarithmic shifter, its low levels in stage 4 and its high ones in
        # stage 5. The sticky bit, the OR of every bit below the round bit, is the OR of
        # mag's bits i with i + 25 <= r' (mag << 25 shifted by r' drops its r' + 1 lowest
        # bits past the round bit): made beside the shifter, a mask in stage 2 and its AND
        # with mag and an OR tree in stage 3. Stage 4 also compares the exponent field with
        # 253, 254 and 255 for the overflow test of stage 6.
        amount = s3["shift"]
        split = (len(amount) + 1) // 2
        cur = Cat(Signal(_FRAC + 1), s3["mag"])
        cur = self._shift_right(m, cur, amount, range(split))
        field = s3["field"]
        s4 = stage(4, "sign", "nan", "nonzero", "sticky", shifted=cur, shift_high=amount[split:],
                   field=field[:8], over255=field >= 255, at254=field == 254, at253=field == 253)
        # Stage 5 also decides the rounding increment (round to nearest even), so that
        # stage 6 starts with its adder: inc = R & (S | q[0]).
        high = Cat(Const(0, split), s4["shift_high"])
        cur = self._shift_right(m, s4["shifted"], high, range(split, len(amount)))
        inc = Signal(name="inc")
        m.d.comb += inc.eq(cur[0] & (s4["sticky"] | cur[1]))
        s5 = stage(5, "sign", "nan", "nonzero", "field", "over255", "at254", "at253",
                   sig=cur[1:1 + _FRAC + 1], inc=inc)

        # Stage 6: round to nearest even; the carry of q + 1 and the leading one of a
        # normal q move into the exponent field by the addition. The sum is >= 0x7F800000
        # (inf) exactly when field + ((q + inc) >> 23) >= 255, and (q + inc) >> 23 is 2
        # when q + inc = 2**24, at least 1 when q >= 2**23 or q + inc = 2**23: so the
        # overflow test needs no second comparator after the adder, and the adder needs
        # only the 31 bits of a finite result.
        inc = s5["inc"]
        sig = s5["sig"]
        overflow = (s5["over255"]
                    | (s5["at254"] & (sig[_FRAC] | (sig[:_FRAC].all() & inc)))
                    | (s5["at253"] & sig.all() & inc))
        word = Signal(unsigned(31), name="word")
        m.d.comb += word.eq((s5["field"] << _FRAC) + sig + inc)
        s6 = stage(6, "sign", "nan", "nonzero", overflow=overflow, word=word)

        # Stage 7: zero, infinity, NaN or the sum (a select per bit).
        magnitude = Signal(31, name="magnitude")
        with m.If(~s6["nonzero"]):
            m.d.comb += magnitude.eq(0)
        with m.Elif(s6["overflow"]):
            m.d.comb += magnitude.eq(_INF)
        with m.Else():
            m.d.comb += magnitude.eq(s6["word"])
        bits = Signal(unsigned(32), name="bits")
        m.d.comb += bits.eq(Mux(s6["nan"], QUIET_NAN, Cat(magnitude, s6["sign"])))
        m.d.comb += pipe.output.payload.bits.eq(stage(7, bits=bits)["bits"])
        return m

    @staticmethod
    def _shift_right(m: Module, value: Value, amount: Value, levels: range) -> Signal:
        """``value`` shifted right by ``2**b`` at each level ``b`` of ``levels`` where bit
        ``b`` of ``amount`` is set (zeros shifted in; the bits shifted out are dropped)."""
        cur = value
        for b in levels:
            nxt = Signal(len(value), name=f"shifted_l{b + 1}")
            m.d.comb += nxt.eq(Mux(amount[b], cur >> (1 << b), cur))
            cur = nxt
        return cur


_ACCUM = ("source", "accum")


@dataclass(frozen=True, kw_only=True)
class DequantParams(Params):
    """Parameters of :class:`MXIntDequantizer` (see there for their meaning)."""

    source: str = param("block", choices=SOURCES,
                        help="convert an MXINT or MXFP block (block) or an accumulator result "
                             "(accum: --abits/--wbits/--bits, --block, --exp-bits, "
                             "--guard-bits, --acc-width as for --top accum)")
    element: str | None = param(None, choices=ELEMENT_CHOICES, applies=("source", "block"),
                                option="--format",
                                help="format of the block: mxint<m> (MXINT of m bits, or of "
                                     "--bits), or an OCP MX minifloat under an E8M0 scale: "
                                     "mxfp8_e5m2, mxfp8_e4m3, mxfp6_e3m2, mxfp6_e2m3, mxfp4; "
                                     "the record keeps the element (int, e5m2, ..., e2m1)")
    man_bits: int | None = param(None, help="mantissa bits of the block, sign included (MXINT)",
                                 lo=2, hi=MAX_MAN_BITS, option="--bits",
                                 applies=("source", "block"))
    exp_bits: int = exp_bits_param()
    block: int = block_param()
    a_element: str | None = param(None, choices=ELEMENT_CHOICES, applies=_ACCUM,
                                  option="--aformat",
                                  help="element format of operand a of the accumulated dot "
                                       "products (as --top accum)")
    b_element: str | None = param(None, choices=ELEMENT_CHOICES, applies=_ACCUM,
                                  option="--wformat",
                                  help="element format of operand b of the accumulated dot "
                                       "products (as --top accum)")
    # Not required by the field: a minifloat operand has no width (checked in resolve).
    a_bits: int | None = a_bits_param(applies=_ACCUM, default=None)
    b_bits: int | None = b_bits_param(applies=_ACCUM, default=None)
    guard_bits: int | None = guard_bits_param(None, applies=_ACCUM)
    acc_width: int | None = param(None, help=ACC_WIDTH_HELP, applies=_ACCUM)
    out_ready: str = out_ready_param()

    def resolve(self) -> None:
        if self.element == "int":  # one record per design: MXINT keeps no element field
            self._set("element", None)
        if self.source == "block" and self.element is None:
            spec = next(s for s in self.specs() if s.name == "man_bits")
            spec.check(self.man_bits)  # required for MXINT: "... not None"
        elif self.element is not None:
            if self.man_bits is not None:
                raise ValueError(f"man_bits applies only with element='int', not "
                                 f"element={self.element!r}: leave it out (the element "
                                 f"format sets the width)")
            if self.exp_bits != SCALE_BITS:
                raise ValueError(f"exp_bits must be {SCALE_BITS} (the E8M0 scale) with "
                                 f"element={self.element!r}, not {self.exp_bits}")
        if self.source == "accum":
            if self.guard_bits is None:
                self._set("guard_bits", DEFAULT_GUARD_BITS)
            for side in ("a", "b"):  # one record per design: MXINT keeps no element field
                if getattr(self, f"{side}_element") == "int":
                    self._set(f"{side}_element", None)
            fields = operands(self)
            for side in ("a", "b"):
                operand_format(fields[f"{side}_element"], fields[f"{side}_bits"],
                               exp_bits=self.exp_bits, block=self.block, side=side)
            check_acc_fields(self)

    @property
    def name(self) -> str:
        return self._base_name + out_ready_suffix(self)

    @property
    def _base_name(self) -> str:
        if self.element is not None:
            return f"mxfp_dequant_{self.element}_k{self.block}"
        if self.source == "block":
            return f"mxint_dequant_m{self.man_bits}_e{self.exp_bits}_k{self.block}"
        if self.a_element is not None or self.b_element is not None:
            a = f"i{self.a_bits}" if self.a_element is None else self.a_element
            b = f"i{self.b_bits}" if self.b_element is None else self.b_element
            return (f"mx_dequant_accum_a{a}_w{b}_k{self.block}_g{self.guard_bits}"
                    f"_acc{self.acc_width}")
        return (f"mxint_dequant_accum_a{self.a_bits}_w{self.b_bits}_e{self.exp_bits}"
                f"_k{self.block}_g{self.guard_bits}_acc{self.acc_width}")


expose(MXIntDequantizer, DequantParams)

UNIT = Unit(
    key="dequant",
    # The summary is in every manifest and core file: MXINT designs' files stay the same.
    summary="dequantiser: one MXINT block to k float32 patterns (exact), or one accumulator "
            "result to float32 (--source accum, nearest even)",
    summary_mx="dequantiser: one MX block (MXINT or OCP MX minifloat elements) to k float32 "
               "patterns (exact), or one accumulator result to float32 (--source accum, "
               "nearest even)",
    params=DequantParams,
    component=MXIntDequantizer,
    golden=dequant_blocks,
    model="sim.units.dequantizer:DequantModel",
    reference="sim.formal.ref_dequant:DEQUANT",
)
