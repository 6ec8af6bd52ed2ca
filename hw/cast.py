"""Cast (quantiser): a block of IEEE floats to one MXINT block or one OCP MX minifloat
(MXFP8, MXFP6, MXFP4) block."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.cast import FLOAT_FORMATS, cast_blocks
from golden.format import MAX_MAN_BITS, SCALE_BITS, SCALE_ROUNDINGS
from golden.minifloat import ELEMENTS

from .layouts import mxfp_block_layout, mxint_block_layout
from .params import (
    block_param,
    exp_bits_param,
    fold_levels_per_stage,
    levels_param,
    out_ready_param,
    out_ready_suffix,
    rounding_param,
)
from .pipeline import StallPipeline
from .unit import Params, Unit, expose, param

__all__ = ["ELEMENT_CHOICES", "UNIT", "CastParams", "MXIntCast", "float_block_layout",
           "round_increment"]

#: float32 fields: 23 fraction bits, 8 exponent bits, bias 127.
_FRAC, _EXPF, _FBIAS = 23, 8, 127
_EXP_ONES = (1 << _EXPF) - 1
#: ``element`` choices: ``int`` (MXINT) or an OCP MX minifloat element format.
ELEMENT_CHOICES = ("int", *ELEMENTS)


def float_block_layout(*, float_format: str, block: int) -> data.StructLayout:
    """``block`` IEEE bit patterns (element 0 in the low bits), 32 bits each for ``fp32``,
    16 for ``bf16``."""
    return data.StructLayout({
        "bits": data.ArrayLayout(unsigned(FLOAT_FORMATS[float_format]), block),
    })


class MXIntCast(wiring.Component):
    """Quantise ``k`` IEEE floats to one MXINT(m, e, k) block, or to one OCP MX minifloat
    block (``element`` one of e5m2, e4m3, e3m2, e2m3, e2m1), equal to :func:`golden.quantize`.

    Each input element is a float32 (``fp32``) or bfloat16 (``bf16``, read as the float32
    whose upper half it is) bit pattern: sign ``s``, exponent field ``f`` (8 bits), fraction
    ``t`` (23 bits). Its magnitude is the integer ``M = t + 2**23`` (``f > 0``) or ``M = t``
    (subnormal, ``f = 0``) times ``2**(max(f, 1) - 150)``.

    **MXINT** (``element="int"``), per block, with ``bias = 2**(e-1) - 1``:

    1. **Largest exponent.** ``E`` below depends on ``amax`` only through its exponent
       field, so a comparator tree over the 8-bit fields ``f_i`` finds ``F = max f_i``.
       ``F = 255`` exactly when some element is NaN or infinite: then ``E = 2**e - 1`` and
       every ``P_i = 0``. An all-zero block gives ``E = 0`` and ``P_i = 0``.
    2. **Shared exponent.** ``E = clamp(L + bias, 0, 2**e - 2)`` with ``L = floor(log2(amax))``
       exact. ``L = F - 127`` for a normal ``amax``. A subnormal ``amax`` (``F = 0``) has
       ``L = j - 149 <= -127`` (``j <= 22`` the position of the leading one of its fraction),
       so ``L + bias <= 0`` and ``E = 0`` whatever ``j`` is: the exact ``L`` is never needed.
    3. **Alignment.** ``P_i = round(x_i / 2**(E - bias - (m - 2)))`` is computed on the
       magnitude: ``X_i = M_i << (m - 1)`` is shifted right by
       ``r_i = E - bias + 151 - max(f_i, 1)``, keeping the round bit (the last bit shifted
       out) and a sticky bit (OR of all bits below it). ``r_i < 23`` means
       ``|x_i| >= 2**m`` units for a normal ``x_i`` (a subnormal one always has
       ``r_i >= 23``), which saturates (it happens only when ``E`` was clamped at the top).
       Otherwise the first 23 places of the shift are a fixed slice (their bits go to the
       sticky bit) and only ``r_i - 23``, clamped at ``m + 1`` (everything out), is a
       shifter of ``m + 1`` bits.
    4. **Rounding** of the magnitude ``q`` with round bit ``R``, sticky ``S``, sign ``s``:
       ``even`` adds ``R & (S | q[0])``, ``away`` adds ``R``, ``zero`` adds nothing,
       ``floor`` adds ``s & (R | S)`` (a negative number rounds its magnitude up).
    5. **Saturation** to ``2**(m-1) - 1`` in magnitude, then the sign is applied, so
       ``P_i`` is in ``[-(2**(m-1) - 1), 2**(m-1) - 1]`` (symmetric). Saturation is decided
       from ``q`` and the increment (``q > max``, or ``q = max`` rounding up), and the
       signed result is one adder, ``(q ^ s) + (inc ^ s)``.

    **MXFP** (an element format with ``Em`` exponent bits, bias ``b``, ``Mm`` mantissa bits
    and largest normal exponent ``emax``; the E8M0 scale has bias 127):

    1. **Largest exponent.** ``floor(log2(amax))`` needs only the largest exponent field
       ``F = max f_i`` (a subnormal ``amax`` clamps the scale to 0 whatever its leading one),
       so the comparator tree is over the 8-bit fields, not the 31-bit patterns. With
       ``scale_rounding="rceil"`` the key is ``f_i`` with one more low bit ``g_i = t_i > T``
       (``T`` the fraction of the largest normal's significand): the tree's maximum carries
       ``g`` of ``amax``, the element with the largest fraction among those of field ``F``.
       ``F = 255``: NaN block, scale 255 and every code 0.
    2. **Scale.** ``X = max(F - emax + g, 0)`` (``g = 0`` for ``floor``). It never reaches
       254: ``F <= 254`` and ``emax >= 2``.
    3. **Element exponent** (in parallel with the tree, independent of ``X``): a normal input
       has significand ``S = 2**23 + t`` and exponent ``F_i = f_i``. A subnormal one is
       normalised by ``n = min(leading zeros of the 24-bit t, b)`` bits: ``S = t << n``,
       ``F_i = 1 - n``. ``n`` is capped at ``b`` because a larger one would only ever give
       an element-subnormal result (below), for which a fixed grid needs no normalisation.
       Only the ``Mm + 2`` top bits of ``S`` (hidden bit, mantissa, round bit) and the OR
       of the rest (sticky) are kept.
    4. **Element code.** ``e_i = F_i - X + b`` is the biased element exponent; it is at
       most ``emax + b`` (the largest element's), so nothing overflows the exponent field
       before rounding. ``e_i >= 1``: the code is ``e_i : S[22:23-Mm]`` with round bit
       ``S[22-Mm]``. ``e_i <= 0``: the element is subnormal and the window is shifted right
       by ``r_i = 1 - e_i`` (at most ``Mm + 2``: beyond that only the sticky bit is left),
       its exponent field 0. The exponent field and mantissa form one integer, so the
       rounding increment (the same four rules as MXINT, with the code's last bit) carries
       from the mantissa into the exponent, subnormal to normal included.
    5. **Saturation** of the magnitude code to the largest normal's (``0x7E`` for E4M3,
       ``0x7B`` for E5M2, all ones for FP6 and FP4), then the input's sign is the code's top
       bit, so a negative input that rounds to zero is ``-0``.

    Every step is exact integer arithmetic; see ``docs/units/cast.md``.

    Structure and timing: the comparator tree has a pipeline register after every
    ``levels_per_stage`` levels (at least one stage, also for ``k = 1``), then one stage
    computes ``E`` (``X``), one the per-element shift amounts (one add and a clamp each),
    and one stage shifts, rounds and saturates. :attr:`latency` is ``tree_stages + 3`` for
    either kind of output.
    Throughput is one block per cycle; the pipeline stalls as a whole when the output is
    valid and not ready.

    Parameters
    ----------
    element : {"int", "e5m2", "e4m3", "e3m2", "e2m3", "e2m1"}
        Output element format: ``int`` (MXINT, default) or an OCP MX minifloat.
    man_bits : int
        ``m``, output mantissa width including the sign, 2 to 24 (MXINT only; required
        there).
    exp_bits : int
        ``e``, shared exponent width, 2 to 8 (default 8; MXFP: 8, the E8M0 scale).
    block : int
        ``k``, elements per block, 1 to 1024.
    rounding : {"even", "away", "zero", "floor"}
        Element rounding mode (default ``"even"``).
    float_format : {"fp32", "bf16"}
        Input element format (default ``"fp32"``).
    scale_rounding : {"floor", "rceil"}
        MXFP scale choice (default ``"floor"``, OCP v1.0; see
        :class:`golden.format.MXFPFormat`); MXINT takes only ``"floor"``.
    levels_per_stage : int
        Comparator-tree levels between pipeline registers, at least 1 (default 2).
    out_ready : str
        ``"direct"`` (default): ``o.ready`` reaches the register enables combinationally;
        ``"registered"``: through a skid register at the output
        (:func:`hw.pipeline.output_stage`): two flip-flops, the skid's valid bit and the
        registered enable (:class:`hw.pipeline.StallPipeline`); same latency and rate.

    Members
    -------
    i : ``In(stream.Signature(float_block_layout(...)))``
        Input block: field ``bits``, ``k`` IEEE bit patterns.
    o : ``Out(stream.Signature(...))``
        Output block. MXINT (:func:`~hw.layouts.mxint_block_layout`): ``mantissa`` (``k``
        signed ``m``-bit) and ``exponent``. MXFP (:func:`~hw.layouts.mxfp_block_layout`):
        ``codes`` (``k`` unsigned codes of 8, 6 or 4 bits) and ``exponent`` (the 8-bit
        scale).

    Raises
    ------
    TypeError
        If an integer parameter is not an integer.
    ValueError
        If a parameter is out of range or not one of the allowed names, or applies only to
        the other kind of element.
    """

    def __init__(self, *, element: str = "int", man_bits: int | None = None,
                 exp_bits: int = 8, block: int, rounding: str = "even",
                 float_format: str = "fp32", scale_rounding: str = "floor",
                 levels_per_stage: int = 2, out_ready: str = "direct") -> None:
        self.params = CastParams(element=element, man_bits=man_bits, exp_bits=exp_bits,
                                 block=block, rounding=rounding, float_format=float_format,
                                 scale_rounding=scale_rounding,
                                 levels_per_stage=levels_per_stage, out_ready=out_ready)
        if element == "int":
            out = mxint_block_layout(man_bits=man_bits, exp_bits=exp_bits, block=block)
        else:
            out = mxfp_block_layout(element_bits=ELEMENTS[element].width, block=block)
        super().__init__({
            "i": In(stream.Signature(float_block_layout(float_format=float_format,
                                                        block=block))),
            "o": Out(stream.Signature(out)),
        })

    @property
    def tree_levels(self) -> int:
        """Levels of the comparator tree, ``ceil(log2(block))``."""
        return tree_levels(self.block)

    @property
    def tree_stages(self) -> int:
        """Pipeline stages of the comparator tree, at least 1."""
        return max(1, -(-self.tree_levels // self.levels_per_stage))

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to the block being valid at the output:
        :attr:`tree_stages` plus one for the exponent, one for the shift amounts and one
        for the rounding."""
        return self.tree_stages + 3

    def elaborate(self, platform) -> Module:
        if self.element == "int":
            return self._elaborate_mxint()
        return self._elaborate_mxfp()

    def _elaborate_mxint(self) -> Module:
        m = Module()
        man, k = self.man_bits, self.block
        bias = (1 << (self.exp_bits - 1)) - 1
        nan_code = (1 << self.exp_bits) - 1
        max_man = (1 << (man - 1)) - 1

        # Whole-pipeline stall: one enable, no skid buffers (hw/pipeline.py).
        pipe = StallPipeline(m, inputs=[self.i], output=self.o, depth=self.latency,
                             out_ready=self.out_ready)
        register = pipe.register

        # Every element as a float32 pattern; bf16 is the upper half of one.
        pad = 32 - FLOAT_FORMATS[self.float_format]
        elems = []
        for n in range(k):
            e = Signal(32, name=f"x{n}")
            m.d.comb += e.eq(Cat(Const(0, pad), self.i.payload.bits[n]) if pad else
                             self.i.payload.bits[n])
            elems.append(e)

        # Stage group 1: comparator tree over the 8-bit exponent fields (E depends on amax
        # only through its field: see stage 2). The element patterns travel alongside, one
        # register per tree stage.
        nodes = [e[_FRAC:31] for e in elems]
        stage = 0
        for level in range(1, self.tree_levels + 1):
            nxt = []
            for j in range(0, len(nodes), 2):
                s = Signal(_EXPF, name=f"max_l{level}_{j // 2}")
                if j + 1 < len(nodes):
                    a, b = nodes[j], nodes[j + 1]
                    m.d.comb += s.eq(Mux(a > b, a, b))
                else:
                    m.d.comb += s.eq(nodes[j])
                nxt.append(s)
            nodes = nxt
            if level % self.levels_per_stage == 0 or level == self.tree_levels:
                stage += 1
                nodes = [register(s, f"{s.name}_r") for s in nodes]
                elems = [register(e, f"x{n}_t{stage}") for n, e in enumerate(elems)]
        if stage == 0:  # k = 1: still one register stage, so latency does not depend on k
            nodes = [register(nodes[0], "max_r")]
            elems = [register(elems[0], "x0_t1")]
        amax_field = nodes[0]

        # Stage 2: shared exponent E = clamp(floor(log2(amax)) + bias, 0, 2**e - 2). For a
        # normal amax, floor(log2) is its exponent field minus 127. A subnormal amax (field
        # 0) has floor(log2) = j - 149 <= -127 (j <= 22 the position of its leading one), so
        # floor(log2) + bias <= 0 for every bias <= 127 and E clamps to 0: no leading-one
        # detector is needed, the exact value can only ever clamp to 0. Beside E, the same
        # clamp of E + 128 - bias (= field + 1 in range), for the shifts of stage 3.
        e_raw = Signal(signed(10), name="e_raw")
        m.d.comb += e_raw.eq(amax_field - _FBIAS + bias)
        e_code = Signal(self.exp_bits, name="e_code")
        e_plus = Signal(9, name="e_plus")  # E + 128 - bias: 1 to 381
        with m.If((amax_field == 0) | (e_raw < 0)):
            m.d.comb += [e_code.eq(0), e_plus.eq(128 - bias)]
        with m.Elif(e_raw > nan_code - 1):
            m.d.comb += [e_code.eq(nan_code - 1), e_plus.eq(nan_code - 1 + 128 - bias)]
        with m.Else():
            m.d.comb += [e_code.eq(e_raw), e_plus.eq(amax_field + 1)]
        nan = register(amax_field == _EXP_ONES, "nan_r")
        e_code = register(e_code, "e_code_r")
        e_plus = register(e_plus, "e_plus_r")
        elems = [register(e, f"x{n}_e") for n, e in enumerate(elems)]

        # Stage 3: right shift of X_i = M_i << (m-1): r_i = E - bias + 151 - max(f_i, 1).
        # Only r_i >= 23 can leave a value in range: below, a normal M_i >= 2**23 is at
        # least 2**(22 + m - r_i) >= 2**m units and saturates, and a subnormal one always
        # has r_i >= 23 (E - bias >= -127). So the fixed part of the shift, 23, is a slice,
        # and only s_i = r_i - 23 = (E + 128 - bias) - max(f_i, 1), clamped at m + 1
        # (everything shifted out), is a shifter; s_i < 0 saturates.
        span = man + 1                       # bits of M << m above its lowest 23
        shift_bits = span.bit_length()
        shifts, sats = [], []
        for n, e in enumerate(elems):
            field = e[_FRAC:31]
            t = Signal(signed(11), name=f"t{n}")
            m.d.comb += t.eq(e_plus - Mux(field == 0, 1, field))
            sh = Signal(shift_bits, name=f"shift{n}")
            m.d.comb += sh.eq(Mux(t < 0, 0, Mux(t > span, span, t)))
            shifts.append(register(sh, f"shift{n}_r"))
            sats.append(register(t < 0, f"over{n}_r"))
        elems = [register(e, f"x{n}_s") for n, e in enumerate(elems)]
        e_code = register(e_code, "e_code_s")
        nan = register(nan, "nan_s")

        # Stage 4: per element, shift right with round and sticky bits, round the magnitude,
        # saturate, apply the sign.
        mantissas = []
        for n, e in enumerate(elems):
            field, frac, sign = e[_FRAC:31], e[:_FRAC], e[31]
            mag = Cat(frac, field != 0)                     # M, 24 bits
            full = Cat(Const(0, man), mag)                  # X << 1 = M << m
            v = full[_FRAC:]                                # (X << 1) >> 23, m + 1 bits
            sticky = full[:_FRAC].any()
            for b in range(shift_bits):                     # logarithmic shifter
                amount = 1 << b
                out = v[:amount].any() if amount < span else v.any()
                nv = Signal(span, name=f"v{n}_s{b}")
                ns = Signal(name=f"sticky{n}_s{b}")
                m.d.comb += [nv.eq(Mux(shifts[n][b], v >> amount, v)),
                             ns.eq(sticky | (shifts[n][b] & out))]
                v, sticky = nv, ns
            q, rnd = v[1:], v[0]                            # q: m bits
            inc = round_increment(self.rounding, rnd=rnd, sticky=sticky, lsb=q[0], sign=sign)
            # Saturation is decided before the increment: q + inc > 2**(m-1) - 1 exactly when
            # q is above it or equal to it and rounds up. In range, the signed result is one
            # adder: (q ^ s) + (inc ^ s) is q + inc for s = 0 and -(q + inc) for s = 1.
            over = sats[n] & (mag != 0)
            saturate = Signal(name=f"sat{n}")
            m.d.comb += saturate.eq(over | (q > max_man) | ((q == max_man) & inc))
            signed_mag = Signal(man, name=f"mag{n}")
            m.d.comb += signed_mag.eq((q[:man] ^ sign.replicate(man)) + (inc ^ sign))
            p = Signal(signed(man), name=f"p{n}")
            m.d.comb += p.eq(Mux(nan, 0, Mux(saturate, Mux(sign, -max_man, max_man),
                                             signed_mag)))
            mantissas.append(register(p, f"p{n}_r"))
        exponent = register(Mux(nan, nan_code, e_code), "exponent_r")

        for n, p in enumerate(mantissas):
            m.d.comb += pipe.output.payload.mantissa[n].eq(p)
        m.d.comb += pipe.output.payload.exponent.eq(exponent)
        return m

    def _elaborate_mxfp(self) -> Module:
        m = Module()
        el = ELEMENTS[self.element]
        ebits, mbits, k = el.exp_bits, el.man_bits, self.block
        ebias = el.bias
        rceil = self.scale_rounding == "rceil"
        # Magnitude code of the largest normal (the codes order like their magnitudes).
        max_code = el.finite_codes - 1
        # Fraction of the largest normal's significand, as a 23-bit float32 fraction.
        top_frac = (el.max_int >> (el.emax + ebias - 1)) - (1 << mbits)
        frac_limit = top_frac << (_FRAC - mbits)
        win = mbits + 2                     # kept significand bits: hidden, mantissa, round

        pipe = StallPipeline(m, inputs=[self.i], output=self.o, depth=self.latency,
                             out_ready=self.out_ready)
        register = pipe.register

        pad = 32 - FLOAT_FORMATS[self.float_format]
        keys, elems = [], []
        for n in range(k):
            x = Signal(32, name=f"x{n}")
            m.d.comb += x.eq(Cat(Const(0, pad), self.i.payload.bits[n]) if pad else
                             self.i.payload.bits[n])
            sign, field, frac = x[31], x[_FRAC:31], x[:_FRAC]
            # Tree key: the exponent field; for rceil one more low bit, whether the fraction
            # exceeds the largest normal's (a tie on the field then keeps the larger flag).
            if rceil:
                key = Signal(_EXPF + 1, name=f"key{n}")
                m.d.comb += key.eq(Cat(frac > frac_limit, field))
            else:
                key = field
            keys.append(key)
            # Element exponent F_i and significand window, independent of the scale: a
            # subnormal input is normalised by n = min(leading zeros, bias) bits (F_i = 1 - n).
            sig = Cat(frac, field != 0)                                 # S, 24 bits
            exp_i = Signal(signed(_EXPF + 1), name=f"f{n}")
            window = Signal(win, name=f"w{n}")
            sticky = Signal(name=f"st{n}")
            with m.If(field != 0):
                m.d.comb += [exp_i.eq(field), window.eq(sig[_FRAC + 1 - win:]),
                             sticky.eq(sig[:_FRAC + 1 - win].any())]
            for shift in range(1, ebias + 1):
                low = _FRAC + 1 - win - shift     # bits of S below the shifted window
                cond = m.Elif(frac[_FRAC - shift]) if shift < ebias else m.Else()
                with cond:
                    m.d.comb += [exp_i.eq(1 - shift), window.eq(sig[low:low + win]),
                                 sticky.eq(sig[:low].any())]
            packed = Signal(1 + _EXPF + 1 + win + 1, name=f"n{n}")
            m.d.comb += packed.eq(Cat(sticky, window, exp_i, sign))
            elems.append(packed)

        # Stage group 1: comparator tree over the keys, the normalised elements alongside.
        nodes = keys
        stage = 0
        for level in range(1, self.tree_levels + 1):
            nxt = []
            for j in range(0, len(nodes), 2):
                s = Signal(len(nodes[0]), name=f"max_l{level}_{j // 2}")
                if j + 1 < len(nodes):
                    a, b = nodes[j], nodes[j + 1]
                    m.d.comb += s.eq(Mux(a > b, a, b))
                else:
                    m.d.comb += s.eq(nodes[j])
                nxt.append(s)
            nodes = nxt
            if level % self.levels_per_stage == 0 or level == self.tree_levels:
                stage += 1
                nodes = [register(s, f"{s.name}_r") for s in nodes]
                elems = [register(e, f"n{n}_t{stage}") for n, e in enumerate(elems)]
        if stage == 0:
            nodes = [register(nodes[0], "max_r")]
            elems = [register(elems[0], "n0_t1")]
        top = nodes[0]
        amax_field = top[1:] if rceil else top
        up = top[0] if rceil else Const(0, 1)

        # Stage 2: scale X = max(F - emax + g, 0) (F <= 254, so X <= 253: no top clamp)
        # and bias - X; stage 3: per element, e_i = F_i - X + bias, kept as the exponent
        # field (e_i >= 1) and the right shift of an element-subnormal result,
        # r_i = clamp(1 - e_i, 0, Mm + 2).
        x_raw = Signal(signed(_EXPF + 2), name="x_raw")
        m.d.comb += x_raw.eq(amax_field - el.emax + up)
        scale = Signal(SCALE_BITS, name="scale")
        m.d.comb += scale.eq(Mux(x_raw < 0, 0, x_raw[:SCALE_BITS]))
        nan = amax_field == _EXP_ONES
        # b - X, from the field directly (not from X), so that its subtraction runs beside
        # the clamp's comparison instead of after it.
        offset = Signal(signed(_EXPF + 2), name="offset")
        m.d.comb += offset.eq(Mux(amax_field + up < el.emax, ebias,
                                  ebias + el.emax - amax_field - up))
        scale = register(scale, "scale_r")
        nan = register(nan, "nan_r")
        offset = register(offset, "offset_r")
        elems = [register(e, f"n{n}_e") for n, e in enumerate(elems)]

        # Stage 3: per element, e_i = F_i - X + bias (one add), the exponent field and the
        # right shift.
        fields, shifts, rest = [], [], []
        for n, e in enumerate(elems):
            exp_i = e[1 + win:2 + win + _EXPF].as_signed()
            e_i = Signal(signed(_EXPF + 3), name=f"e{n}")
            m.d.comb += e_i.eq(exp_i + offset)
            ee = Signal(ebits, name=f"ee{n}")
            m.d.comb += ee.eq(Mux(e_i > 0, e_i[:ebits], 0))
            r = Signal(range(win + 1), name=f"r{n}")
            m.d.comb += r.eq(Mux(e_i > 0, 0, Mux(e_i < 1 - win, win, 1 - e_i)))
            fields.append(register(ee, f"ee{n}_r"))
            shifts.append(register(r, f"r{n}_r"))
            rest.append(register(Cat(e[:1 + win], e[-1]), f"w{n}_r"))
        scale = register(scale, "scale_s")
        nan = register(nan, "nan_s")

        # Stage 4: per element, shift the window right by r_i with a sticky bit, form the
        # code (exponent field only when the hidden bit is still in place), round, saturate.
        codes = []
        for n in range(k):
            sticky, v, sign = rest[n][0], rest[n][1:1 + win], rest[n][-1]
            for b in range(len(shifts[n])):
                amount = 1 << b
                out = v[:amount].any() if amount < win else v.any()
                nv = Signal(win, name=f"v{n}_s{b}")
                ns = Signal(name=f"sticky{n}_s{b}")
                m.d.comb += [nv.eq(Mux(shifts[n][b], v >> amount, v)),
                             ns.eq(sticky | (shifts[n][b] & out))]
                v, sticky = nv, ns
            q, rnd = v[1:], v[0]
            base = Cat(q[:mbits], Mux(q[mbits], fields[n], 0))
            inc = round_increment(self.rounding, rnd=rnd, sticky=sticky, lsb=q[0], sign=sign)
            total = Signal(ebits + mbits + 1, name=f"code{n}")
            m.d.comb += total.eq(base + inc)
            mag = Mux(total > max_code, max_code, total[:ebits + mbits])
            c = Signal(el.width, name=f"c{n}")
            m.d.comb += c.eq(Mux(nan, 0, Cat(mag, sign)))
            codes.append(register(c, f"c{n}_r"))
        exponent = register(Mux(nan, (1 << SCALE_BITS) - 1, scale), "exponent_r")

        for n, c in enumerate(codes):
            m.d.comb += pipe.output.payload.codes[n].eq(c)
        m.d.comb += pipe.output.payload.exponent.eq(exponent)
        return m


def round_increment(mode: str, *, rnd, sticky, lsb, sign):
    """What rounding adds to a magnitude whose last kept bit is ``lsb``, with round bit
    ``rnd`` (the first bit dropped) and ``sticky`` (the OR of the rest), of a number of
    sign ``sign``: ``even`` ``rnd & (sticky | lsb)``, ``away`` ``rnd``, ``zero`` nothing,
    ``floor`` ``sign & (rnd | sticky)`` (a negative number's magnitude rounds up)."""
    if mode == "even":
        return rnd & (sticky | lsb)
    if mode == "away":
        return rnd
    if mode == "zero":
        return Const(0, 1)
    return sign & (rnd | sticky)


def tree_levels(block: int) -> int:
    """Levels of the comparator tree over ``block`` exponents, ``ceil(log2(block))``."""
    return (block - 1).bit_length()


@dataclass(frozen=True, kw_only=True)
class CastParams(Params):
    """Parameters of :class:`MXIntCast` (see there for their meaning).

    ``element`` and ``scale_rounding`` are left out of :meth:`kwargs` (the manifest's
    parameters) of an MXINT record, so that MXINT designs are described as they were
    before the minifloat elements.
    """

    element: str = param("int", choices=ELEMENT_CHOICES, option="--format",
                         help="format of the output block: mxint<m> (MXINT of m bits, or "
                              "of --bits) or an OCP MX minifloat under an E8M0 scale: "
                              "mxfp8_e5m2, mxfp8_e4m3, mxfp6_e3m2, mxfp6_e2m3, mxfp4; the "
                              "record keeps the element (int, e5m2, ..., e2m1)")
    man_bits: int = param(help="mantissa bits of the output block, sign included", lo=2,
                          hi=MAX_MAN_BITS, option="--bits", applies=("element", "int"))
    exp_bits: int = exp_bits_param()
    block: int = block_param()
    rounding: str = rounding_param()
    float_format: str = param("fp32", choices=tuple(FLOAT_FORMATS),
                              help="input element format")
    scale_rounding: str = param("floor", choices=SCALE_ROUNDINGS,
                                help="MXFP scale: 'floor' (OCP v1.0, floor(log2 amax) - "
                                     "emax) or 'rceil' (the smallest scale at which amax "
                                     "does not saturate)")
    levels_per_stage: int = levels_param("comparator-tree levels between pipeline registers")
    out_ready: str = out_ready_param()

    def resolve(self) -> None:
        if self.element != "int" and self.exp_bits != SCALE_BITS:
            raise ValueError(f"exp_bits must be {SCALE_BITS} (the E8M0 scale) with element "
                             f"{self.element!r}, not {self.exp_bits}")
        if self.element == "int" and self.scale_rounding != "floor":
            raise ValueError(f"scale_rounding {self.scale_rounding!r} needs a minifloat "
                             f"element ({', '.join(ELEMENTS)}); MXINT takes only 'floor'")
        self._set("levels_per_stage",
                  fold_levels_per_stage(self.levels_per_stage, tree_levels(self.block)))

    def kwargs(self) -> dict[str, Any]:
        found = super().kwargs()
        if self.element == "int":
            del found["element"], found["scale_rounding"]
        return found

    @property
    def name(self) -> str:
        if self.element == "int":
            name = (f"mxint_cast_{self.float_format}_m{self.man_bits}_e{self.exp_bits}"
                    f"_k{self.block}_{self.rounding}")
        else:
            name = (f"mxfp_cast_{self.float_format}_{self.element}_k{self.block}"
                    f"_{self.rounding}" + ("_rceil" if self.scale_rounding == "rceil" else ""))
        name += f"_l{self.levels_per_stage}" if self.levels_per_stage != 2 else ""
        return name + out_ready_suffix(self)


expose(MXIntCast, CastParams)

UNIT = Unit(
    key="cast",
    summary="cast: k fp32/bf16 bit patterns to one MXINT or MXFP block, equal to "
            "golden.quantize",
    params=CastParams,
    component=MXIntCast,
    golden=cast_blocks,
    model="sim.units.cast:CastModel",
    reference="sim.formal.ref_cast:CAST",
)
