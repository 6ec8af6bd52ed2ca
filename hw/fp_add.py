"""Binary floating-point addition, IEEE round-to-nearest-even: the pipeline stages shared by
:class:`hw.fp_mac.FloatMultiplyAdd` (its second rounding) and :class:`FloatAdd`."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.fp_mac import FloatFormat

from .pipeline import StallPipeline

__all__ = ["ADD_STAGES", "FloatAdd", "PipelineStages", "add_stages", "at_least_inf",
           "decode_float", "leading_zeros", "lzc"]

#: Register stages of :func:`add_stages`.
ADD_STAGES = 6


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


def lzc(m: Module, value, name: str) -> Signal:
    """Leading zeros of ``value``; ``len(value)`` when it is zero."""
    n = len(value)
    # A 1 just below the LSB makes the padded word non-zero and the count saturate at n.
    _any, count = leading_zeros(Cat(Const(1, 1), value))
    z = Signal(range(n + 1), name=name)
    m.d.comb += z.eq(count)
    return z


def at_least_inf(packed, ew: int, fw: int):
    """``packed >= (2**ew - 1) << fw`` (a rounded result that is infinity) from the bits
    above the fraction only, without a comparator's carry chain."""
    top = packed[fw:]
    return (top[ew:] != 0) | (top[:ew] == (1 << ew) - 1)


def decode_float(x, fmt: FloatFormat, *, flush: bool = False, sub=None) -> dict:
    """Fields and class flags of the pattern ``x`` of ``fmt``: ``sign``, ``mag`` (all but
    the sign), ``exp1`` (``max(E, 1)``), ``sig`` (significand with its hidden bit),
    ``zero``, ``inf``, ``nan``. ``sub`` (exponent field 0) may come precomputed, off the
    critical path; with ``flush`` a subnormal is a zero."""
    ew, fw = fmt.exp_bits, fmt.man_bits
    exp, frac = x[fw:fw + ew], x[:fw]
    sub = exp == 0 if sub is None else sub
    top = exp == fmt.exp_max
    return {
        "sign": x[fw + ew],
        "mag": x[:fw + ew],
        "exp1": Cat(exp[0] | sub, exp[1:]),      # max(E, 1)
        "sig": Cat(frac, ~sub),                  # hidden bit
        # flushed: a subnormal is a zero (and the product's significand unused)
        "zero": sub if flush else sub & (frac == 0),
        "inf": top & (frac == 0),
        "nan": top & (frac != 0),
    }


class PipelineStages:
    """Ends pipeline stages: ``stages(values, name)`` registers every value of ``values``
    (``{key: value}`` or ``{key: (value, shape)}``) as ``<key>_<name>`` on the pipeline's
    advance and returns the registers; :attr:`count` is the number of stages ended."""

    def __init__(self, pipe: StallPipeline) -> None:
        self._pipe = pipe
        self.count = 0

    def __call__(self, values: dict, name: str) -> dict:
        self.count += 1
        out = {}
        for key, v in values.items():
            v, shape = v if isinstance(v, tuple) else (v, None)
            out[key] = self._pipe.register(v, f"{key}_{name}", shape)
        return out


def add_stages(m: Module, stage, fmt: FloatFormat, *, a_sign, a_mag, a_sub, a_nan, c,
               c_sub, flush: bool = False, first: int = 7):
    """The pattern of ``round(a + c)`` after :data:`ADD_STAGES` register stages.

    ``a`` (its sign bit ``a_sign`` and the rest, ``a_mag``) and ``c`` are patterns of
    ``fmt`` (subnormals kept unless ``flush``, where an exponent field of 0 is a zero);
    ``a_sub``/``c_sub`` their "exponent field 0" flags
    (may come from a register) and ``a_nan`` whether ``a`` is NaN (a caller whose ``a``
    is a rounded product passes the product's NaN flag). ``stage`` ends a stage
    (:class:`PipelineStages`); stages are named ``s<first>`` to ``s<first + 5>``.

    1. compare magnitudes and swap so ``|X| >= |Y|``; exponent difference clamped at
       ``P + 3`` (both orders formed beside the compare);
    2. shift ``Y``'s significand right by that difference over a window of ``P + 3`` bits
       (guard, round, sticky, the lost bits ORed into the sticky);
    3. add or subtract (never negative thanks to the swap); stopper for stage 4;
    4. leading-zero count of sum | stopper: the left shift, at most down to the subnormal
       exponent (with ``flush``, no stopper: the whole count, and a sum it takes below
       exponent 1 is a zero of its sign in stage 6);
    5. normalise: one bit right on a carry, otherwise left;
    6. round to nearest-even and pack; overflow to infinity; infinities, NaN (always
       :attr:`FloatFormat.nan`) and signed zeros (``-0`` only for ``-0 + -0``) selected.
    """
    ew, fw = fmt.exp_bits, fmt.man_bits
    p = fw + 1
    emax = fmt.exp_max
    n = [f"s{first + i}" for i in range(ADD_STAGES)]

    # --- Stage 1: compare magnitudes and swap so |X| >= |Y|; exponent difference. ----
    # Both differences, and whether each exceeds the window, are formed beside the
    # compare (parallel carry chains); one is selected after it.
    cd = decode_float(c, fmt, flush=flush, sub=c_sub)
    pd = decode_float(Cat(a_mag, a_sign), fmt, flush=flush, sub=a_sub)
    p_big = a_mag >= cd["mag"]

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
        "nan": a_nan | cd["nan"] | (pd["inf"] & cd["inf"] & sub),
    }, n[0])
    flags = ("sign", "zsign", "inf", "inf_sign", "nan")

    # --- Stage 2: align Y right by the difference in a P + 3-bit window (guard, round,
    # sticky), the lost bits ORed into the sticky bit.
    y3 = Cat(Const(0, 3), s["y"])                          # P + 3 bits
    y_mask = Signal(p + 3, name="align_mask")
    m.d.comb += y_mask.eq(~(Const(-1, p + 3) << s["dc"]))      # bit i: i < dc
    s = stage({
        "xs": Cat(Const(0, 3), s["x"]),
        "ys": (y3 >> s["dc"]) | ((y3 & y_mask) != 0),
        "ex": s["ex"], "sub": s["sub"],
        **{k: s[k] for k in flags},
    }, n[1])

    # --- Stage 3: add or subtract (never negative thanks to the swap). ----------------
    # The normalisation's left shift is min(leading zeros of the sum, E_X - 1): a stopper
    # 1 at bit P+2 - (E_X - 1) of the P + 3-bit sum (none when E_X - 1 >= P + 3) gives it.
    # Flushed, the shift is the whole leading-zero count: a sum it takes below exponent 1
    # is subnormal (exact, as a sum of normals below the normal range always is) and is
    # flushed to zero in stage 6 either way.
    s = stage({
        "sum": (Mux(s["sub"], s["xs"] - s["ys"], s["xs"] + s["ys"]), unsigned(p + 4)),
        **({} if flush else {"stop": Const(1 << (p + 2), p + 3) >> (s["ex"] - 1)[:ew]}),
        **{k: s[k] for k in ("ex", *flags)},
    }, n[2])

    # --- Stage 4: leading zeros of the sum with its stopper. --------------------------
    s = stage({
        "shift": lzc(m, s["sum"][:p + 3] if flush else s["sum"][:p + 3] | s["stop"],
                     "add_lz"),
        "zero": s["sum"] == 0,
        **{k: s[k] for k in ("sum", "ex", *flags)},
    }, n[3])

    # --- Stage 5: normalise: one bit right on a carry, otherwise left. ----------------
    total, carry = s["sum"], s["sum"][p + 3]
    norm_l = Signal(p + 3, name="add_norm_left")
    m.d.comb += norm_l.eq(total[:p + 3] << s["shift"])
    # flushed, E_X - shift may go down to 1 - (P + 3)
    ef_shape = signed(max(ew, (p + 3).bit_length()) + 2) if flush else unsigned(ew + 1)
    s = stage({
        "w": (Mux(carry, Cat(total[1] | total[0], total[2:]), norm_l), unsigned(p + 3)),
        "ef": (Mux(carry, s["ex"] + 1, s["ex"] - s["shift"]), ef_shape),
        **{k: s[k] for k in ("zero", *flags)},
    }, n[4])

    # --- Stage 6: round to nearest-even, pack, specials. -----------------------------
    w = s["w"]
    sig2, guard2, sticky2 = w[3:], w[2], w[1] | w[0]
    inc2 = guard2 & (sticky2 | sig2[0])
    packed2 = Signal(ew + fw + 2, name="sum_packed")
    m.d.comb += packed2.eq(((s["ef"] - 1) << fw) + sig2 + inc2)
    ovf = at_least_inf(packed2, ew, fw)
    zero = s["zero"]
    if flush:   # a subnormal sum (exact) becomes a zero of its sign
        tiny = s["ef"] < 1
        zero, ovf = zero | tiny, ovf & ~tiny
    mag = Mux(s["inf"] | ovf, emax << fw, Mux(zero, 0, packed2[:ew + fw]))
    rsign = Mux(s["inf"], s["inf_sign"], Mux(s["zero"], s["zsign"], s["sign"]))
    s = stage({"r": (Mux(s["nan"], fmt.nan, Cat(mag, rsign)), unsigned(fmt.width))}, n[5])
    return s["r"]


def fp_add_layouts(width: int) -> tuple[data.StructLayout, data.StructLayout]:
    """Input ``{a, c}`` and output ``{r}`` payloads, unsigned bit patterns."""
    return (data.StructLayout({"a": unsigned(width), "c": unsigned(width)}),
            data.StructLayout({"r": unsigned(width)}))


class FloatAdd(wiring.Component):
    """Floating-point ``r = round(a + c)``, IEEE round-to-nearest-even, one result per
    cycle; equal bit for bit to :func:`golden.fp_mac.fp_add`.

    The addition half of :class:`hw.fp_mac.FloatMultiplyAdd` (:func:`add_stages`, the same
    gates) on its own: subnormals kept as inputs and produced as results, overflow rounds
    to infinity, an exact zero sum is ``-0`` only for ``-0 + -0``, ``inf + inf`` of one sign
    is that infinity, and every NaN result (NaN in, ``inf - inf``) is the canonical quiet NaN
    (:attr:`golden.fp_mac.FloatFormat.nan`: sign 0, exponent all ones, fraction ``10...0``;
    input payloads are not propagated).

    Latency :data:`ADD_STAGES` = 6 cycles, throughput one addition per cycle; the pipeline
    stalls as a whole when the output is valid and not ready (:class:`hw.pipeline.StallPipeline`).

    Parameters
    ----------
    exp_bits : int
        Exponent field width ``e``, 2 to 8 (fp32: 8).
    man_bits : int
        Fraction field width ``f``, 1 to 23 (fp32: 23).

    Members
    -------
    i : ``In(stream.Signature(StructLayout({"a", "c": unsigned(1 + e + f)})))``
    o : ``Out(stream.Signature(StructLayout({"r": unsigned(1 + e + f)})))``

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, *, exp_bits: int, man_bits: int) -> None:
        self._fmt = FloatFormat(exp_bits, man_bits)
        layout_i, layout_o = fp_add_layouts(self._fmt.width)
        super().__init__({"i": In(stream.Signature(layout_i)),
                          "o": Out(stream.Signature(layout_o))})

    format = property(lambda self: self._fmt, doc="The :class:`FloatFormat`.")
    latency = property(lambda self: ADD_STAGES, doc="Cycles from an input to its result.")

    def elaborate(self, platform) -> Module:
        m = Module()
        fmt = self._fmt
        pipe = StallPipeline(m, inputs=[self.i], output=self.o, depth=ADD_STAGES)
        stage = PipelineStages(pipe)
        a, c = self.i.payload.a, self.i.payload.c
        ew, fw = fmt.exp_bits, fmt.man_bits
        r = add_stages(m, stage, fmt, a_sign=a[fw + ew], a_mag=a[:fw + ew],
                       a_sub=a[fw:fw + ew] == 0,
                       a_nan=decode_float(a, fmt)["nan"], c=c, c_sub=c[fw:fw + ew] == 0,
                       first=1)
        assert stage.count == ADD_STAGES
        m.d.comb += self.o.payload.r.eq(r)
        return m
