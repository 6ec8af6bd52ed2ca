"""Dequantiser: one MXINT block to float32 bit patterns."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden.dequant import QUIET_NAN
from golden.format import MAX_BLOCK, MAX_EXP_BITS, MAX_MAN_BITS, check_int

from .cast import float_block_layout
from .layouts import mxint_block_layout
from .top import Top

__all__ = ["TOP", "MXIntDequantizer"]

_FRAC, _FBIAS = 23, 127
_INF = 0x7F800000


class MXIntDequantizer(wiring.Component):
    """Convert an MXINT(m, e, k) block to ``k`` float32 bit patterns, equal to
    :func:`golden.dequant.dequant_blocks` (that is, :func:`golden.dequantize`).

    Element ``i`` is ``P_i * 2**s`` with ``s = E - bias - (m - 2)``, ``bias = 2**(e-1) - 1``.
    Since ``E >= 0``, ``bias <= 127`` and ``m <= 24``, ``s >= -149``: every value is a
    multiple of the smallest subnormal with at most 24 significant bits, so the conversion
    is **exact** and needs no rounding. Per element:

    * ``mag = |P|`` (``m`` bits, ``2**(m-1)`` for ``P = -2**(m-1)``), ``j`` = position of its
      leading one, ``F = j + s + 127`` the biased float exponent;
    * ``F >= 1`` (normal): pattern ``((F - 1) << 23) + (mag << (23 - j))`` — the leading one
      lands on bit 23 and carries into the exponent field;
    * ``F <= 0`` (subnormal): pattern ``mag << (s + 149)`` (below ``2**23``);
    * ``F >= 255``: infinity (only ``P = -2**(m-1)`` at code 254 with ``e = 8``);
    * the sign bit is ``P < 0``; ``P = 0`` gives ``+0.0`` (``0x00000000``: exponent field
      forced to 0);
    * a NaN block (``E = 2**e - 1``) gives ``0x7FC00000`` for every element.

    The two cases share one left shifter by ``min(23 - j, s + 149)``.

    Structure and timing: stage 1 takes the magnitude, finds the leading one and computes
    the exponent field and shift; stage 2 shifts and assembles. :attr:`latency` is 2.
    Throughput is one block per cycle; the pipeline stalls as a whole when the output is
    valid and not ready.

    Parameters
    ----------
    man_bits : int
        ``m``, element width including the sign, 2 to 24.
    exp_bits : int
        ``e``, shared exponent width, 2 to 8 (default 8).
    block : int
        ``k``, elements per block, 1 to 1024.

    Members
    -------
    i : ``In(stream.Signature(mxint_block_layout(...)))``
        Input MXINT block: ``mantissa`` (``k`` signed ``m``-bit) and ``exponent``.
    o : ``Out(stream.Signature(float_block_layout(float_format="fp32", ...)))``
        Output: field ``bits``, ``k`` float32 bit patterns, element 0 in the low bits.

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, *, man_bits: int, exp_bits: int = 8, block: int) -> None:
        self._man_bits = check_int("man_bits", man_bits, 2, MAX_MAN_BITS)
        self._exp_bits = check_int("exp_bits", exp_bits, 2, MAX_EXP_BITS)
        self._block = check_int("block", block, 1, MAX_BLOCK)
        super().__init__({
            "i": In(stream.Signature(mxint_block_layout(
                man_bits=man_bits, exp_bits=exp_bits, block=block))),
            "o": Out(stream.Signature(float_block_layout(float_format="fp32", block=block))),
        })

    man_bits = property(lambda self: self._man_bits, doc="Element width.")
    exp_bits = property(lambda self: self._exp_bits, doc="Shared exponent width.")
    block = property(lambda self: self._block, doc="Elements per block.")

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to the result being valid: 2."""
        return 2

    def elaborate(self, platform) -> Module:
        m = Module()
        man = self._man_bits
        bias = (1 << (self._exp_bits - 1)) - 1
        nan_code = (1 << self._exp_bits) - 1

        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        fire = Signal()
        m.d.comb += [fire.eq(self.i.valid & advance), self.i.ready.eq(advance)]
        valid = Signal(self.latency)
        with m.If(advance):
            m.d.sync += valid.eq((valid << 1) | fire)
        m.d.comb += self.o.valid.eq(valid[-1])

        def register(value, name):
            reg = Signal(value.shape(), name=name)
            with m.If(advance):
                m.d.sync += reg.eq(value)
            return reg

        # Stage 1: s = E - bias - (m - 2) once per block; per element the magnitude, its
        # leading one j, the biased exponent F = j + s + 127 and the left shift.
        scale = Signal(signed(10), name="scale")
        m.d.comb += scale.eq(self.i.payload.exponent - (bias + man - 2))
        nan = register(self.i.payload.exponent == nan_code, "nan_r")
        fields = []
        for n in range(self._block):
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
                "inf": register(~zero & (biased >= 255), f"inf{n}_r"),
            })

        # Stage 2: shift the magnitude into place and add the exponent field; the leading
        # one of a normal number carries into it (hence F - 1 above).
        for n, f in enumerate(fields):
            frac = Signal(_FRAC + 1, name=f"sig{n}")
            m.d.comb += frac.eq(f["mag"] << f["shift"])
            word = Signal(31, name=f"word{n}")
            m.d.comb += word.eq(Mux(f["inf"], _INF, (f["field"] << _FRAC) + frac))
            bits = Signal(unsigned(32), name=f"bits{n}")
            m.d.comb += bits.eq(Mux(nan, QUIET_NAN, Cat(word, f["sign"])))
            m.d.comb += self.o.payload.bits[n].eq(register(bits, f"bits{n}_r"))
        return m


def _from_args(args) -> dict:
    return {"man_bits": args.bits, "exp_bits": args.exp_bits, "block": args.block}


def _name(p: dict) -> str:
    return f"mxint_dequant_m{p['man_bits']}_e{p.get('exp_bits', 8)}_k{p['block']}"


TOP = Top(
    key="dequant",
    summary="dequantiser: one MXINT block to k float32 bit patterns, exact (golden.dequantize)",
    component=MXIntDequantizer,
    from_args=_from_args,
    name=_name,
)
