"""Binary floating-point multiply-add baseline, unfused (two IEEE roundings)."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.fp_mac import FLOAT_FORMATS, FloatFormat

from .pipeline import StallPipeline
from .top import Top

__all__ = ["TOP", "FloatMultiplyAdd", "leading_zeros"]

#: Pipeline registers: multiply, product round, align, add + normalise, round + pack.
LATENCY = 5


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

    Structure (one register stage each, :attr:`latency` = 5):

    1. decode; ``P x P`` significand multiply (exact ``2P``-bit product); product
       exponent; special-value flags;
    2. round the product to the format: leading-zero count (only subnormal operands give
       more than one), shift left, or right with a sticky bit when the product is below
       the normal range, then nearest-even on ``P`` bits + guard + sticky. The increment
       is added to ``(E - 1) << f`` plus the significand, so a carry moves into the
       exponent, subnormal to normal and largest finite to infinity, by itself;
    3. compare magnitudes of the rounded product ``p`` and ``c`` and swap so ``|X| >=
       |Y|``; shift ``Y``'s significand right by the exponent difference over a window of
       ``P + 3`` bits (guard, round, sticky, the lost bits ORed into the sticky);
    4. add or subtract (never negative thanks to the swap); normalise: one bit right on a
       carry, otherwise left by the leading-zero count, at most down to the subnormal
       exponent;
    5. round to nearest-even and pack; infinities, NaN and signed zeros are selected.

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
        """Cycles from an input transfer to its result being valid: 5."""
        return LATENCY

    def elaborate(self, platform) -> Module:
        m = Module()
        fmt = self._fmt
        ew, fw = fmt.exp_bits, fmt.man_bits
        p = fw + 1
        emax = fmt.exp_max

        # Whole-pipeline stall: one enable, no skid buffers (hw/pipeline.py).
        pipe = StallPipeline(m, inputs=[self.i], output=self.o, depth=LATENCY)
        reg = pipe.register

        def decode(x, name):
            exp, frac = x[fw:fw + ew], x[:fw]
            sub = exp == 0
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

        # --- Stage 1: multiply. -------------------------------------------------------
        a, b = decode(self.i.payload.a, "a"), decode(self.i.payload.b, "b")
        prod = reg(a["sig"] * b["sig"], "prod", unsigned(2 * p))
        # Biased exponent of the product when its leading 1 is bit 2P-1 (value in [2, 4)).
        ep_lo, ep_hi = 3 - fmt.bias, 2 * (emax - 1) - fmt.bias + 1
        ep0 = reg(a["exp1"] + b["exp1"] - (fmt.bias - 1), "ep0", range(ep_lo, ep_hi + 1))
        p_sign = reg(a["sign"] ^ b["sign"], "p_sign_s1")
        p_zero = reg(a["zero"] | b["zero"], "p_zero_s1")
        p_inf = reg(a["inf"] | b["inf"], "p_inf_s1")
        p_nan = reg(a["nan"] | b["nan"] | (a["inf"] & b["zero"]) | (a["zero"] & b["inf"]),
                    "p_nan_s1")
        c = reg(self.i.payload.c, "c_s1")

        # --- Stage 2: round the product to the format. --------------------------------
        # Left by the leading zeros, but not below exponent 1 (then subnormal); right with
        # a sticky bit when even exponent 1 is above the product's (deep underflow).
        z = _lzc(m, prod, "prod_lz")
        lim = Signal(range(ep_lo - 1, ep_hi), name="prod_lim")
        m.d.comb += lim.eq(ep0 - 1)
        left = Signal(range(2 * p + 1), name="prod_left")
        right = Signal(range(p + 2), name="prod_right")
        m.d.comb += [
            left.eq(Mux(lim < 0, 0, Mux(z < lim, z, lim))),
            right.eq(Mux(lim < 0, Mux(-lim > p + 1, p + 1, -lim), 0)),
        ]
        shifted = Signal(2 * p, name="prod_shifted")
        m.d.comb += shifted.eq(prod << left)
        hi = shifted[p - 1:]                                  # P significand bits + guard
        mask = Signal(p + 1, name="prod_lost_mask")
        m.d.comb += mask.eq((Const(1, p + 2) << right) - 1)
        hi_r = Signal(p + 1, name="prod_hi")
        m.d.comb += hi_r.eq(hi >> right)
        sticky = (shifted[:p - 1] != 0) | ((hi & mask) != 0)
        ef = Signal(range(ep_hi + 1), name="prod_ef")        # result exponent, >= 1
        m.d.comb += ef.eq(Mux(lim < 0, 1, ep0 - left))
        sig, guard = hi_r[1:], hi_r[0]
        inc = guard & (sticky | sig[0])
        packed = Signal(ew + fw + 2, name="prod_packed")
        m.d.comb += packed.eq(((ef - 1) << fw) + sig + inc)
        p_ovf = packed >= (emax << fw)
        pm = Signal(ew + fw, name="prod_mag")
        m.d.comb += pm.eq(Mux(p_inf | p_ovf, emax << fw, Mux(p_zero, 0, packed)))
        pm = reg(pm, "p_mag")
        p_sign = reg(p_sign, "p_sign")
        p_nan = reg(p_nan, "p_nan")
        c = reg(c, "c_s2")

        # --- Stage 3: swap by magnitude, align the smaller significand. ---------------
        cd = decode(c, "c")
        pd = decode(Cat(pm, p_sign), "p")
        p_big = pm >= cd["mag"]
        big = {k: Mux(p_big, pd[k], cd[k]) for k in ("sign", "exp1", "sig")}
        small = {k: Mux(p_big, cd[k], pd[k]) for k in ("exp1", "sig")}
        d = Signal(ew, name="align_d")
        m.d.comb += d.eq(big["exp1"] - small["exp1"])
        dc = Signal(range(p + 4), name="align_dc")
        m.d.comb += dc.eq(Mux(d > p + 3, p + 3, d))
        y3 = Cat(Const(0, 3), small["sig"])                   # P + 3 bits
        y_mask = Signal(p + 3, name="align_mask")
        m.d.comb += y_mask.eq((Const(1, p + 4) << dc) - 1)
        y_al = Signal(p + 3, name="align_y")
        m.d.comb += y_al.eq((y3 >> dc) | ((y3 & y_mask) != 0))
        sub = pd["sign"] ^ cd["sign"]
        nan = p_nan | cd["nan"] | (pd["inf"] & cd["inf"] & sub)
        xs = reg(Cat(Const(0, 3), big["sig"]), "add_x")
        ys = reg(y_al, "add_y")
        sub = reg(sub, "add_sub")
        ex = reg(big["exp1"], "add_ex")
        sign = reg(big["sign"], "add_sign")
        zsign = reg(pd["sign"] & cd["sign"], "zero_sign_s3")
        inf = reg(pd["inf"] | cd["inf"], "inf_s3")
        inf_sign = reg(Mux(pd["inf"], pd["sign"], cd["sign"]), "inf_sign_s3")
        nan = reg(nan, "nan_s3")

        # --- Stage 4: add, normalise. --------------------------------------------------
        s = Signal(p + 4, name="add_sum")
        m.d.comb += s.eq(Mux(sub, xs - ys, xs + ys))
        zl = _lzc(m, s[:p + 3], "add_lz")
        lim2 = Signal(ew, name="add_lim")
        m.d.comb += lim2.eq(ex - 1)
        sh = Signal(range(p + 4), name="add_shift")
        m.d.comb += sh.eq(Mux(zl < lim2, zl, lim2))
        norm_l = Signal(p + 3, name="add_norm_left")
        m.d.comb += norm_l.eq(s[:p + 3] << sh)
        carry = s[p + 3]
        w = reg(Mux(carry, Cat(s[1] | s[0], s[2:]), norm_l), "norm_w", unsigned(p + 3))
        ef2 = reg(Mux(carry, ex + 1, ex - sh), "norm_ef", unsigned(ew + 1))
        zero = reg(s == 0, "zero_s4")
        sign, zsign = reg(sign, "sign_s4"), reg(zsign, "zero_sign_s4")
        inf, inf_sign, nan = reg(inf, "inf_s4"), reg(inf_sign, "inf_sign_s4"), reg(nan, "nan_s4")

        # --- Stage 5: round, pack, specials. -------------------------------------------
        sig2, guard2, sticky2 = w[3:], w[2], w[1] | w[0]
        inc2 = guard2 & (sticky2 | sig2[0])
        packed2 = Signal(ew + fw + 2, name="sum_packed")
        m.d.comb += packed2.eq(((ef2 - 1) << fw) + sig2 + inc2)
        ovf = packed2 >= (emax << fw)
        mag = Mux(inf | ovf, emax << fw, Mux(zero, 0, packed2[:ew + fw]))
        rsign = Mux(inf, inf_sign, Mux(zero, zsign, sign))
        r = reg(Mux(nan, fmt.nan, Cat(mag, rsign)), "result", unsigned(fmt.width))
        m.d.comb += self.o.payload.r.eq(r)
        return m


def _from_args(args) -> dict:
    if args.fp_preset is not None:
        fmt = FLOAT_FORMATS[args.fp_preset]
        return {"exp_bits": fmt.exp_bits, "man_bits": fmt.man_bits}
    return {"exp_bits": args.exp_bits, "man_bits": args.bits}


def _name(p: dict) -> str:
    return f"fp_mac_e{p['exp_bits']}_m{p['man_bits']}"


TOP = Top(
    key="fpmac",
    summary="floating-point baseline: r = round(round(a*b) + c), IEEE nearest-even, subnormals",
    component=FloatMultiplyAdd,
    from_args=_from_args,
    name=_name,
    options=((("--fp-preset",), {
        "choices": sorted(FLOAT_FORMATS), "default": None,
        "help": "fpmac: format preset, overrides --exp-bits and --bits (which are the "
                "exponent and fraction widths otherwise)"}),),
    flags={"exp_bits": "--exp-bits", "man_bits": "--bits"},
)
