"""Binary floating-point multiply-add baseline, unfused (two IEEE roundings)."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.fp_mac import FLOAT_FORMATS, MAX_EXP_FIELD_BITS, MAX_FRAC_BITS, FloatFormat, fp_mac

from .pipeline import StallPipeline
from .unit import Params, Preset, Unit, param

__all__ = ["UNIT", "FloatMacParams", "FloatMultiplyAdd", "leading_zeros"]

#: Pipeline registers, one per stage of :meth:`FloatMultiplyAdd.elaborate`.
LATENCY = 12
#: Width of the chunks of the second significand in the multiplier's partial products.
MUL_CHUNK_BITS = 4


def leading_zeros(value) -> tuple:
    """Leading-zero count of an Amaranth value as a balanced tree of 2:1 muxes.

    Returns ``(any, count)``: ``any`` is 1 when a bit is set; ``count`` (``ceil(log2)``
    bits of the width padded to a power of two) is meaningful only when ``any`` is 1.
    """
    bits = [value[i] for i in range(len(value))]
    size = 1 << max(1, (len(bits) - 1).bit_length())
    bits = [Const(0, 1)] * (size - len(bits)) + bits  # pad below the LSB

    def tree(lo: int, n: int):
        if n == 2:
            return bits[lo + 1] | bits[lo], ~bits[lo + 1]
        any_hi, cnt_hi = tree(lo + n // 2, n // 2)
        any_lo, cnt_lo = tree(lo, n // 2)
        return any_hi | any_lo, Mux(any_hi, Cat(cnt_hi, Const(0, 1)), Cat(cnt_lo, Const(1, 1)))

    return tree(0, size)


def _lzc(m: Module, value, name: str) -> Signal:
    """Leading zeros of ``value``; ``len(value)`` when it is zero."""
    n = len(value)
    # A 1 just below the LSB makes the padded word non-zero and the count saturate at n.
    _any, count = leading_zeros(Cat(Const(1, 1), value))
    z = Signal(range(n + 1), name=name)
    m.d.comb += z.eq(count)
    return z


def _at_least_inf(packed, ew: int, fw: int):
    """``packed >= (2**ew - 1) << fw`` (a rounded result that is infinity) from the bits
    above the fraction only, without a comparator's carry chain."""
    top = packed[fw:]
    return (top[ew:] != 0) | (top[:ew] == (1 << ew) - 1)


def fp_mac_layouts(width: int) -> tuple[data.StructLayout, data.StructLayout]:
    """Input ``{a, b, c}`` and output ``{r}`` payloads, unsigned bit patterns."""
    return (data.StructLayout({"a": unsigned(width), "b": unsigned(width), "c": unsigned(width)}),
            data.StructLayout({"r": unsigned(width)}))


class FloatMultiplyAdd(wiring.Component):
    """Floating-point ``r = round(round(a * b) + c)``, IEEE round-to-nearest-even after
    each operation, one result per cycle; equal bit for bit to :func:`golden.fp_mac.fp_mac`.

    Operands and result are bit patterns of the binary format with ``e = exp_bits``
    exponent bits, ``f = man_bits`` fraction bits and bias ``2**(e-1) - 1`` (see
    :mod:`golden.fp_mac`); significands are ``P = f + 1`` bits with the hidden bit.
    Subnormals are kept as inputs and produced as results (gradual underflow), overflow
    rounds to infinity, an exact zero sum is ``-0`` only for ``-0 + -0``, and every NaN
    result (NaN in, ``inf * 0``, ``inf - inf``) is the canonical quiet NaN: sign 0,
    exponent all ones, fraction ``10...0``.

    Structure (one register stage each, :attr:`latency` = 12; every stage fits about
    seven LUT4 levels or one carry chain plus a few, >= 100 MHz on ECP5 for fp32):

    1. decode; partial products ``M_a x (chunk of MUL_CHUNK_BITS = 4 bits of M_b)``;
       product exponent; special-value flags;
    2. sum of the partial products (exact ``2P``-bit product); from the exponent alone,
       the right-shift distance below the normal range and a "stopper" bit that clamps
       the leading-zero count of stage 3 at the subnormal exponent;
    3. leading-zero count of product | stopper: the left shift, ``min(lz, E_0 - 1)``;
    4. shift the product left (only subnormal operands give more than one leading zero);
    5. below the normal range, shift right with the lost bits in a sticky bit; the
       nearest-even increment from ``P`` bits + guard + sticky;
    6. add the increment to ``(E - 1) << f`` plus the significand, so a carry moves into
       the exponent, subnormal to normal and largest finite to infinity, by itself;
    7. compare magnitudes of the rounded product ``p`` and ``c`` and swap so ``|X| >=
       |Y|``; exponent difference clamped at ``P + 3`` (both orders formed beside the
       compare);
    8. shift ``Y``'s significand right by that difference over a window of ``P + 3``
       bits (guard, round, sticky, the lost bits ORed into the sticky);
    9. add or subtract (never negative thanks to the swap); stopper for stage 10;
    10. leading-zero count of sum | stopper: the left shift, at most down to the subnormal
        exponent;
    11. normalise: one bit right on a carry, otherwise left;
    12. round to nearest-even and pack; infinities, NaN and signed zeros are selected.

    Throughput is one operation per cycle. The pipeline stalls as a whole when the output
    is valid and not ready.

    Parameters
    ----------
    exp_bits : int
        Exponent field width ``e``, 2 to 8 (fp32 and bf16: 8, fp16: 5, E4M3: 4).
    man_bits : int
        Fraction field width ``f``, 1 to 23 (fp32: 23, bf16: 7, fp16: 10, E4M3: 3).

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"a", "b", "c": unsigned(1 + e + f)})))``
        Operand patterns.
    o : ``Out(stream.Signature(StructLayout({"r": unsigned(1 + e + f)})))``
        Result pattern.

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, *, exp_bits: int, man_bits: int) -> None:
        self._fmt = FloatFormat(exp_bits, man_bits)
        layout_i, layout_o = fp_mac_layouts(self._fmt.width)
        super().__init__({
            "i": In(stream.Signature(layout_i)),
            "o": Out(stream.Signature(layout_o)),
        })

    exp_bits = property(lambda self: self._fmt.exp_bits, doc="Exponent field width.")
    man_bits = property(lambda self: self._fmt.man_bits, doc="Fraction field width.")
    format = property(lambda self: self._fmt, doc="The :class:`FloatFormat`.")

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to its result being valid: 12."""
        return LATENCY

    def elaborate(self, platform) -> Module:
        m = Module()
        fmt = self._fmt
        ew, fw = fmt.exp_bits, fmt.man_bits
        p = fw + 1
        emax = fmt.exp_max

        # Whole-pipeline stall: one enable, no skid buffers (hw/pipeline.py).
        pipe = StallPipeline(m, inputs=[self.i], output=self.o, depth=LATENCY)
        stages = 0

        def stage(values: dict, name: str) -> dict:
            """Register every value of ``values`` (a ``{key: value}`` or ``{key: (value,
            shape)}`` dict) as ``<key>_<name>``: the end of one pipeline stage."""
            nonlocal stages
            stages += 1
            out = {}
            for key, v in values.items():
                v, shape = v if isinstance(v, tuple) else (v, None)
                out[key] = pipe.register(v, f"{key}_{name}", shape)
            return out

        def decode(x, sub=None):
            """Fields and class flags of pattern ``x``; ``sub`` (exponent field 0) may
            come precomputed, off the critical path."""
            exp, frac = x[fw:fw + ew], x[:fw]
            sub = exp == 0 if sub is None else sub
            top = exp == emax
            return {
                "sign": x[fw + ew],
                "mag": x[:fw + ew],
                "exp1": Cat(exp[0] | sub, exp[1:]),      # max(E, 1)
                "sig": Cat(frac, ~sub),                  # hidden bit
                "zero": sub & (frac == 0),
                "inf": top & (frac == 0),
                "nan": top & (frac != 0),
            }

        # --- Stage 1: decode; partial products of the significand multiply. -----------
        # M_b is cut into chunks of MUL_CHUNK_BITS bits; each M_a x chunk (Yosys's own
        # multiplier mapping, 4 rows deep) is registered and the chunks are summed next.
        # 4-bit chunks were the fastest and smallest of 2, 3, 4, 6, 8 for a LUT-only
        # 24 x 24 product on ECP5 (and smaller on xc7 than one unsplit multiplier).
        a, b = decode(self.i.payload.a), decode(self.i.payload.b)
        pp = {f"pp{j}": (a["sig"] * b["sig"][j:j + MUL_CHUNK_BITS],
                         unsigned(p + len(b["sig"][j:j + MUL_CHUNK_BITS])))
              for j in range(0, p, MUL_CHUNK_BITS)}
        # Biased exponent of the product when its leading 1 is bit 2P-1 (value in [2, 4)).
        ep_lo, ep_hi = 3 - fmt.bias, 2 * (emax - 1) - fmt.bias + 1
        s = stage({
            **pp,
            "ep0": (a["exp1"] + b["exp1"] - (fmt.bias - 1), range(ep_lo, ep_hi + 1)),
            "p_sign": a["sign"] ^ b["sign"],
            "p_zero": a["zero"] | b["zero"],
            "p_inf": a["inf"] | b["inf"],
            "p_nan": a["nan"] | b["nan"] | (a["inf"] & b["zero"]) | (a["zero"] & b["inf"]),
            "c": self.i.payload.c,
            "c_sub": self.i.payload.c[fw:fw + ew] == 0,
        }, "s1")
        flags = ("p_sign", "p_zero", "p_inf", "p_nan", "c", "c_sub")

        # --- Stage 2: sum the partial products (exact 2P-bit product). ----------------
        # The left shift is min(leading zeros, E_0 - 1) (not below exponent 1), and 0
        # below the normal range (E_0 - 1 < 0), where the product goes right instead by a
        # clamped distance. A "stopper" 1 at bit 2P-1 - (E_0 - 1) (bit 2P-1 below the
        # range, none when E_0 - 1 >= 2P) makes the leading-zero count that minimum by
        # itself; both depend on E_0 only and are ready beside the sum.
        lim = Signal(range(ep_lo - 1, ep_hi), name="prod_lim")
        lim_u = Signal(range(ep_hi), name="prod_lim_u")
        m.d.comb += [lim.eq(s["ep0"] - 1), lim_u.eq(Mux(lim < 0, 0, lim))]
        s = stage({
            "prod": (sum(s[f"pp{j}"] << j for j in range(0, p, MUL_CHUNK_BITS)),
                     unsigned(2 * p)),
            "stop": Const(1 << (2 * p - 1), 2 * p) >> lim_u,
            "ep0": s["ep0"], "under": lim < 0,
            "right": (Mux(lim < 0, Mux(-lim > p + 1, p + 1, -lim), 0), range(p + 2)),
            **{k: s[k] for k in flags},
        }, "s2")

        # --- Stage 3: leading-zero count of the product with its stopper. --------------
        s = stage({
            "left": _lzc(m, s["prod"] | s["stop"], "prod_lz"),
            **{k: s[k] for k in ("prod", "ep0", "under", "right", *flags)},
        }, "s3")

        # --- Stage 4: normalise left. ---------------------------------------------------
        s = stage({
            "shifted": (s["prod"] << s["left"], unsigned(2 * p)),
            "ef": (Mux(s["under"], 1, s["ep0"] - s["left"]), range(ep_hi + 1)),  # >= 1
            **{k: s[k] for k in ("right", *flags)},
        }, "s4")

        # --- Stage 5: right shift below the normal range (lost bits sticky); rounding
        # increment, nearest-even on P bits + guard + sticky. ---------------------------
        hi = s["shifted"][p - 1:]                              # P significand bits + guard
        mask = Signal(p + 1, name="prod_lost_mask")
        m.d.comb += mask.eq(~(Const(-1, p + 1) << s["right"]))   # bit i: i < right
        hi_r = Signal(p + 1, name="prod_hi")
        m.d.comb += hi_r.eq(hi >> s["right"])
        sticky = (s["shifted"][:p - 1] != 0) | ((hi & mask) != 0)
        sig, guard = hi_r[1:], hi_r[0]
        s = stage({
            "sig": sig, "inc": guard & (sticky | sig[0]), "ef": s["ef"],
            **{k: s[k] for k in flags},
        }, "s5")

        # --- Stage 6: add the increment to ``(E - 1) << f`` plus the significand, so a
        # carry moves into the exponent by itself; overflow to infinity. ----------------
        packed = Signal(ew + fw + 2, name="prod_packed")
        m.d.comb += packed.eq(((s["ef"] - 1) << fw) + s["sig"] + s["inc"])
        p_ovf = _at_least_inf(packed, ew, fw)
        pm = Mux(s["p_inf"] | p_ovf, emax << fw, Mux(s["p_zero"], 0, packed))
        s = stage({
            "pm": (pm, unsigned(ew + fw)),
            "p_sub": ~(s["p_inf"] | p_ovf) & (s["p_zero"] | (packed[fw:fw + ew] == 0)),
            **{k: s[k] for k in ("p_sign", "p_nan", "c", "c_sub")},
        }, "s6")

        # --- Stage 7: compare magnitudes and swap so |X| >= |Y|; exponent difference. --
        # Both differences, and whether each exceeds the window, are formed beside the
        # compare (parallel carry chains); one is selected after it.
        cd = decode(s["c"], s["c_sub"])
        pd = decode(Cat(s["pm"], s["p_sign"]), s["p_sub"])
        p_big = s["pm"] >= cd["mag"]

        def clamped(x, y):
            d = Signal(ew)
            beyond = Signal(signed(max(ew, (p + 4).bit_length()) + 2))
            m.d.comb += [d.eq(x - y), beyond.eq(x - y - (p + 4))]
            return Mux(beyond[-1], d, p + 3)

        sub = pd["sign"] ^ cd["sign"]
        s = stage({
            "x": Mux(p_big, pd["sig"], cd["sig"]),
            "y": Mux(p_big, cd["sig"], pd["sig"]),
            "dc": (Mux(p_big, clamped(pd["exp1"], cd["exp1"]), clamped(cd["exp1"], pd["exp1"])),
                   range(p + 4)),
            "ex": Mux(p_big, pd["exp1"], cd["exp1"]),
            "sign": Mux(p_big, pd["sign"], cd["sign"]),
            "sub": sub,
            "zsign": pd["sign"] & cd["sign"],
            "inf": pd["inf"] | cd["inf"],
            "inf_sign": Mux(pd["inf"], pd["sign"], cd["sign"]),
            "nan": s["p_nan"] | cd["nan"] | (pd["inf"] & cd["inf"] & sub),
        }, "s7")
        flags = ("sign", "zsign", "inf", "inf_sign", "nan")

        # --- Stage 8: align Y right by the difference in a P + 3-bit window (guard, round,
        # sticky), the lost bits ORed into the sticky bit.
        y3 = Cat(Const(0, 3), s["y"])                          # P + 3 bits
        y_mask = Signal(p + 3, name="align_mask")
        m.d.comb += y_mask.eq(~(Const(-1, p + 3) << s["dc"]))      # bit i: i < dc
        s = stage({
            "xs": Cat(Const(0, 3), s["x"]),
            "ys": (y3 >> s["dc"]) | ((y3 & y_mask) != 0),
            "ex": s["ex"], "sub": s["sub"],
            **{k: s[k] for k in flags},
        }, "s8")

        # --- Stage 9: add or subtract (never negative thanks to the swap). -------------
        # The normalisation's left shift is min(leading zeros of the sum, E_X - 1): as in
        # stage 2, a stopper 1 at bit P+2 - (E_X - 1) of the P + 3-bit sum (none when
        # E_X - 1 >= P + 3) gives it.
        s = stage({
            "sum": (Mux(s["sub"], s["xs"] - s["ys"], s["xs"] + s["ys"]), unsigned(p + 4)),
            "stop": Const(1 << (p + 2), p + 3) >> (s["ex"] - 1)[:ew],
            **{k: s[k] for k in ("ex", *flags)},
        }, "s9")

        # --- Stage 10: leading zeros of the sum with its stopper. ----------------------
        s = stage({
            "shift": _lzc(m, s["sum"][:p + 3] | s["stop"], "add_lz"),
            "zero": s["sum"] == 0,
            **{k: s[k] for k in ("sum", "ex", *flags)},
        }, "s10")

        # --- Stage 11: normalise: one bit right on a carry, otherwise left. -----------
        total, carry = s["sum"], s["sum"][p + 3]
        norm_l = Signal(p + 3, name="add_norm_left")
        m.d.comb += norm_l.eq(total[:p + 3] << s["shift"])
        s = stage({
            "w": (Mux(carry, Cat(total[1] | total[0], total[2:]), norm_l), unsigned(p + 3)),
            "ef": (Mux(carry, s["ex"] + 1, s["ex"] - s["shift"]), unsigned(ew + 1)),
            **{k: s[k] for k in ("zero", *flags)},
        }, "s11")

        # --- Stage 12: round to nearest-even, pack, specials. --------------------------
        w = s["w"]
        sig2, guard2, sticky2 = w[3:], w[2], w[1] | w[0]
        inc2 = guard2 & (sticky2 | sig2[0])
        packed2 = Signal(ew + fw + 2, name="sum_packed")
        m.d.comb += packed2.eq(((s["ef"] - 1) << fw) + sig2 + inc2)
        ovf = _at_least_inf(packed2, ew, fw)
        mag = Mux(s["inf"] | ovf, emax << fw, Mux(s["zero"], 0, packed2[:ew + fw]))
        rsign = Mux(s["inf"], s["inf_sign"], Mux(s["zero"], s["zsign"], s["sign"]))
        s = stage({"r": (Mux(s["nan"], fmt.nan, Cat(mag, rsign)), unsigned(fmt.width))},
                  "s12")
        assert stages == LATENCY
        m.d.comb += self.o.payload.r.eq(s["r"])
        return m


@dataclass(frozen=True, kw_only=True)
class FloatMacParams(Params):
    """Parameters of :class:`FloatMultiplyAdd` (see there for their meaning)."""

    exp_bits: int = param(help="exponent field bits", lo=2, hi=MAX_EXP_FIELD_BITS)
    man_bits: int = param(help="fraction field bits, hidden bit not included", lo=1,
                          hi=MAX_FRAC_BITS, option="--frac-bits", fallback="bits")

    @property
    def name(self) -> str:
        return f"fp_mac_e{self.exp_bits}_m{self.man_bits}"


UNIT = Unit(
    key="fpmac",
    summary="floating-point baseline: r = round(round(a*b) + c), IEEE nearest-even, subnormals",
    params=FloatMacParams,
    component=FloatMultiplyAdd,
    golden=fp_mac,
    model="sim.units.fp_mac:FloatMacModel",
    presets=(Preset("--fp-preset", {name: {"exp_bits": f.exp_bits, "man_bits": f.man_bits}
                                    for name, f in sorted(FLOAT_FORMATS.items())},
                    help="format preset, instead of --exp-bits and --bits"),),
    command_defaults={"exp_bits": 8},
    baseline=True,
)
