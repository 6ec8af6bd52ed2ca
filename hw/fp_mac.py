"""Binary floating-point multiply-add baseline, unfused (two IEEE roundings)."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.fp_mac import (
    FLOAT_FORMATS,
    MAX_EXP_FIELD_BITS,
    MAX_FRAC_BITS,
    SUBNORMALS,
    FloatFormat,
    fp_mac,
)

from .bitheap import DEFAULT_TILE, _apply_level, _chunks, _plan_levels, _Tile
from .booth import BoothChains
from .fp_add import PipelineStages, add_stages, at_least_inf, decode_float, leading_zeros, lzc
from .params import out_ready_param, out_ready_suffix
from .pipeline import StallPipeline
from .tables import lookup
from .unit import Params, Preset, Unit, expose, param

__all__ = ["UNIT", "FloatMacParams", "FloatMultiplyAdd", "leading_zeros"]

#: Pipeline registers, one per stage of :meth:`FloatMultiplyAdd.elaborate`, with the
#: generic multiplier and subnormals kept; flushing them takes two fewer.
LATENCY = 12
#: The significand product: LUT-tile bit heap, Yosys's ``$mul`` per chunk, or radix-4 Booth
#: rows in registered carry chains (:class:`hw.booth.BoothChains`).
FP_MULTIPLIERS = ("heap", "generic", "booth")
#: Width of the chunks of the second significand in the multiplier's partial products.
MUL_CHUNK_BITS = 4


class SignificandHeap:
    """The exact unsigned ``p`` x ``p`` product as one bit heap (:mod:`hw.bitheap`'s
    pieces): both operands cut into unsigned chunks of at most 3 bits, each chunk pair's
    product a table of at most 6 inputs (one LUT per output bit), the tile bits reduced
    by counter levels to three rows and one carry-propagate adder. A register follows
    every two levels and the last one.

    Members
    -------
    stages : int
        Registers from the operands to the product.
    """

    def __init__(self, p: int) -> None:
        chunks = [(lsb, width, False) for lsb, width, _ in _chunks(p, DEFAULT_TILE)]
        self.p = p
        self.tiles = [_Tile(ac, bc) for ac in chunks for bc in chunks]
        heights = [0] * (2 * p)
        for tile in self.tiles:              # unsigned chunks: offset 0, no constant
            for j in range(tile.width):
                heights[tile.shift + j] += 1
        self.plan = _plan_levels(heights)
        self.final = max(heights) > 1        # a final adder is needed
        self.levels = 1 + len(self.plan) + (1 if self.final else 0)
        self.stages = -(-self.levels // 2)

    def build(self, m: Module, register, a, b) -> Signal:
        """The registered product of the unsigned ``p``-bit values ``a`` and ``b``."""
        w = 2 * self.p
        columns: list[list] = [[] for _ in range(w)]
        for t, tile in enumerate(self.tiles):
            (alsb, aw, _), (blsb, bw, _) = tile.a, tile.b
            out = Signal(tile.width, name=f"mul_t{t}")
            m.d.comb += out.eq(lookup(tile.table(), Cat(a[alsb:alsb + aw], b[blsb:blsb + bw]),
                                      tile.width))
            for j in range(tile.width):
                if tile.shift + j < w:
                    columns[tile.shift + j].append(out[j])
        steps: list[dict] = []   # hw.bitheap's certificate record, not kept here

        def stage(columns, level):
            if level % 2 and level != self.levels:
                return columns
            out = []
            for c, col in enumerate(columns):
                if col:
                    reg = register(Cat(*col), f"mul_h{level}_c{c}")
                    col = [reg[j] for j in range(len(col))]
                out.append(col)
            return out

        columns = stage(columns, 1)
        for n, plan in enumerate(self.plan):
            columns = stage(_apply_level(m, columns, plan, f"mul_c{n + 2}", steps), n + 2)
        rows = [Cat(*(col[r] if r < len(col) else Const(0, 1) for col in columns))
                for r in range(max(len(col) for col in columns))]
        if not self.final:
            return rows[0]
        total = Signal(w, name="mul_sum")
        m.d.comb += total.eq(sum(rows[1:], rows[0]))
        return register(total, "mul_sum_r")


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

    Structure (one register stage each, :attr:`latency` = 12 with the generic
    multiplier and subnormals kept; every stage fits about
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

    ``multiplier="heap"`` (default): stages 1 and 2 are replaced by the significand
    product as one bit heap (:class:`SignificandHeap`: 3 x 3-bit tiles, counters, one
    adder), :attr:`SignificandHeap.stages` registers deep, the decode's results travelling
    beside it; ``"booth"``: likewise by :class:`hw.booth.BoothChains` (radix-4 Booth rows,
    each subtracted from a running sum in one registered carry chain, two chains side by
    side and one final adder; 8 registers for fp32, 4 for bf16), the fewest LUTs on xc7;
    ``"generic"``: as listed (Yosys's ``$mul`` per chunk).

    ``subnormals="flush"``: flush-to-zero as :func:`golden.fp_mac.fp_mac` defines it. An
    operand with exponent field 0 is a zero (``c`` is cleared to its signed zero in stage
    1). The product of two normals has its leading 1 at bit ``2P-1`` or ``2P-2``, so
    stages 3 to 6 become two: (3) a one-bit normalisation, the exponent ``E`` and the
    nearest-even increment; (4) the packed sum as in stage 6, and below the normal range
    a signed zero, except ``E = 0`` with all ``P`` significand bits set, which IEEE rounds
    up to the smallest normal. Stage 10 counts the sum's leading zeros without the stopper
    and stage 12 flushes a sum normalised below exponent 1 (subnormal, exact) to a zero of
    its sign.

    Throughput is one operation per cycle. The pipeline stalls as a whole when the output
    is valid and not ready.

    Parameters
    ----------
    exp_bits : int
        Exponent field width ``e``, 2 to 8 (fp32 and bf16: 8, fp16: 5, E4M3: 4).
    man_bits : int
        Fraction field width ``f``, 1 to 23 (fp32: 23, bf16: 7, fp16: 10, E4M3: 3).
    multiplier : str
        ``"heap"`` (default), ``"generic"`` or ``"booth"``.
    subnormals : str
        ``"keep"`` (default, IEEE gradual underflow) or ``"flush"``.
    out_ready : str
        ``"direct"`` (default): ``o.ready`` reaches the register enables combinationally;
        ``"registered"``: through a skid register at the output
        (:func:`hw.pipeline.output_stage`): two flip-flops, the skid's valid bit and the
        registered enable (:class:`hw.pipeline.StallPipeline`); same latency and rate.

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

    def __init__(self, *, exp_bits: int, man_bits: int, multiplier: str = "heap",
                 subnormals: str = "keep", out_ready: str = "direct") -> None:
        self.params = FloatMacParams(exp_bits=exp_bits, man_bits=man_bits,
                                     multiplier=multiplier, subnormals=subnormals,
                                     out_ready=out_ready)
        self._fmt = FloatFormat(exp_bits, man_bits)
        self._heap = (SignificandHeap(man_bits + 1) if multiplier == "heap" else
                      BoothChains(man_bits + 1, man_bits + 1) if multiplier == "booth" else None)
        # The heap's last register is stage 2's; a one-stage heap gets stage 2 after it.
        self._heap_extra = 0 if self._heap is None else max(self._heap.stages, 2) - 2
        self._latency = LATENCY - (2 if subnormals == "flush" else 0) + self._heap_extra
        layout_i, layout_o = fp_mac_layouts(self._fmt.width)
        super().__init__({
            "i": In(stream.Signature(layout_i)),
            "o": Out(stream.Signature(layout_o)),
        })

    format = property(lambda self: self._fmt, doc="The :class:`FloatFormat`.")

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to its result being valid: 12 with the generic
        multiplier, 2 fewer with subnormals flushed, plus the heap's or the Booth product's
        stages beyond 2 (fp32 Booth: 6)."""
        return self._latency

    def elaborate(self, platform) -> Module:
        m = Module()
        fmt = self._fmt
        ew, fw = fmt.exp_bits, fmt.man_bits
        p = fw + 1
        emax = fmt.exp_max

        # Whole-pipeline stall: one enable, no skid buffers (hw/pipeline.py).
        pipe = StallPipeline(m, inputs=[self.i], output=self.o, depth=self._latency,
                             out_ready=self.out_ready)
        flush = self.subnormals == "flush"
        stage = PipelineStages(pipe)

        def decode(x, sub=None):
            return decode_float(x, fmt, flush=flush, sub=sub)

        # --- Stage 1: decode; partial products of the significand multiply. -----------
        # M_b is cut into chunks of MUL_CHUNK_BITS bits; each M_a x chunk (Yosys's own
        # multiplier mapping, 4 rows deep) is registered and the chunks are summed next.
        # 4-bit chunks were the fastest and smallest of 2, 3, 4, 6, 8 for a LUT-only
        # 24 x 24 product on ECP5 (and smaller on xc7 than one unsplit multiplier).
        a, b = decode(self.i.payload.a), decode(self.i.payload.b)
        if flush:   # a zero operand's product is never used: the hidden bit is always 1
            a["sig"], b["sig"] = Cat(a["sig"][:fw], Const(1, 1)), Cat(b["sig"][:fw], Const(1, 1))
        heap_prod = None
        if self._heap is None:
            pp = {f"pp{j}": (a["sig"] * b["sig"][j:j + MUL_CHUNK_BITS],
                             unsigned(p + len(b["sig"][j:j + MUL_CHUNK_BITS])))
                  for j in range(0, p, MUL_CHUNK_BITS)}
        else:
            pp = {}
            heap_prod = self._heap.build(m, pipe.register, a["sig"], b["sig"])
        c_in, c_sub = self.i.payload.c, self.i.payload.c[fw:fw + ew] == 0
        if flush:
            c_in = Mux(c_sub, c_in & fmt.sign_bit, c_in)
        # Biased exponent of the product when its leading 1 is bit 2P-1 (value in [2, 4)).
        ep_lo, ep_hi = 3 - fmt.bias, 2 * (emax - 1) - fmt.bias + 1
        s = stage({
            **pp,
            "ep0": (a["exp1"] + b["exp1"] - (fmt.bias - 1), range(ep_lo, ep_hi + 1)),
            "p_sign": a["sign"] ^ b["sign"],
            "p_zero": a["zero"] | b["zero"],
            "p_inf": a["inf"] | b["inf"],
            "p_nan": a["nan"] | b["nan"] | (a["inf"] & b["zero"]) | (a["zero"] & b["inf"]),
            "c": (c_in, unsigned(fmt.width)),
            "c_sub": c_sub,
        }, "s1")
        flags = ("p_sign", "p_zero", "p_inf", "p_nan", "c", "c_sub")
        for k in range(self._heap_extra):   # beside the heap's stages
            s = stage(s, f"s1x{k}")
        if heap_prod is not None and self._heap.stages >= 2:
            prod_now = None                # the heap's last register is stage 2's
        elif heap_prod is not None:
            prod_now = heap_prod
        else:
            prod_now = sum(s[f"pp{j}"] << j for j in range(0, p, MUL_CHUNK_BITS))

        # --- Stage 2: sum the partial products (exact 2P-bit product). ----------------
        # The left shift is min(leading zeros, E_0 - 1) (not below exponent 1), and 0
        # below the normal range (E_0 - 1 < 0), where the product goes right instead by a
        # clamped distance. A "stopper" 1 at bit 2P-1 - (E_0 - 1) (bit 2P-1 below the
        # range, none when E_0 - 1 >= 2P) makes the leading-zero count that minimum by
        # itself; both depend on E_0 only and are ready beside the sum.
        lim = Signal(range(ep_lo - 1, ep_hi), name="prod_lim")
        lim_u = Signal(range(ep_hi), name="prod_lim_u")
        m.d.comb += [lim.eq(s["ep0"] - 1), lim_u.eq(Mux(lim < 0, 0, lim))]
        if flush:
            s = stage({
                **({} if prod_now is None else {"prod": (prod_now, unsigned(2 * p))}),
                "ep0": s["ep0"], **{k: s[k] for k in flags},
            }, "s2")
        else:
            s = stage({
                **({} if prod_now is None else {"prod": (prod_now, unsigned(2 * p))}),
                "stop": Const(1 << (2 * p - 1), 2 * p) >> lim_u,
                "ep0": s["ep0"], "under": lim < 0,
                "right": (Mux(lim < 0, Mux(-lim > p + 1, p + 1, -lim), 0), range(p + 2)),
                **{k: s[k] for k in flags},
            }, "s2")
        if prod_now is None:
            s["prod"] = heap_prod
        if flush:
            s = self._flushed_product(m, stage, s, flags)
        else:
            s = self._product(m, stage, s, flags)

        # --- Stages 7 to 12: round(p + c) (hw/fp_add.py). ---------------------------------
        r = add_stages(m, stage, fmt, a_sign=s["p_sign"], a_mag=s["pm"], a_sub=s["p_sub"],
                       a_nan=s["p_nan"], c=s["c"], c_sub=s["c_sub"], flush=flush)
        assert stage.count == self._latency
        m.d.comb += pipe.output.payload.r.eq(r)
        return m

    def _product(self, m: Module, stage, s: dict, flags: tuple) -> dict:
        """Stages 3 to 6 with subnormals kept: the rounded product ``pm``."""
        fmt = self._fmt
        ew, fw, p, emax = fmt.exp_bits, fmt.man_bits, fmt.man_bits + 1, fmt.exp_max
        ep_hi = 2 * (emax - 1) - fmt.bias + 1
        # --- Stage 3: leading-zero count of the product with its stopper. --------------
        s = stage({
            "left": lzc(m, s["prod"] | s["stop"], "prod_lz"),
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
        p_ovf = at_least_inf(packed, ew, fw)
        pm = Mux(s["p_inf"] | p_ovf, emax << fw, Mux(s["p_zero"], 0, packed))
        s = stage({
            "pm": (pm, unsigned(ew + fw)),
            "p_sub": ~(s["p_inf"] | p_ovf) & (s["p_zero"] | (packed[fw:fw + ew] == 0)),
            **{k: s[k] for k in ("p_sign", "p_nan", "c", "c_sub")},
        }, "s6")

        return s

    def _flushed_product(self, m: Module, stage, s: dict, flags: tuple) -> dict:
        """Stages 3 and 4 with subnormals flushed: the rounded product ``pm``, a signed
        zero below the normal range (see the class notes)."""
        fmt = self._fmt
        ew, fw, p, emax = fmt.exp_bits, fmt.man_bits, fmt.man_bits + 1, fmt.exp_max
        ep_lo, ep_hi = 3 - fmt.bias, 2 * (emax - 1) - fmt.bias + 1
        # --- Stage 3: one-bit normalisation; exponent; nearest-even increment. ---------
        prod = s["prod"]
        top = prod[2 * p - 1]
        sig = Mux(top, prod[p:], prod[p - 1:2 * p - 1])
        guard = Mux(top, prod[p - 1], prod[p - 2])
        sticky = Mux(top, prod[:p - 1] != 0, prod[:p - 2] != 0)
        e = Signal(range(ep_lo - 1, ep_hi + 1), name="prod_e")
        m.d.comb += e.eq(Mux(top, s["ep0"], s["ep0"] - 1))
        up = guard & (sticky | sig[0])            # nearest-even
        s = stage({
            "sig": (sig, unsigned(p)), "inc": up,
            "ef": (e, range(ep_lo - 1, ep_hi + 1)), "tiny": e < 1,
            # E = 0 with every significand bit set: IEEE rounds up to the smallest normal
            "minn": (e == 0) & (sig == (1 << p) - 1),
            **{k: s[k] for k in flags},
        }, "s3")

        # --- Stage 4: pack; overflow to infinity; below the normal range, zero. --------
        packed = Signal(ew + fw + 2, name="prod_packed")
        m.d.comb += packed.eq(((s["ef"] - 1) << fw) + s["sig"] + s["inc"])
        # (packed means nothing for a zero operand, whose significand is not cleared)
        p_ovf = ~s["tiny"] & ~s["p_zero"] & at_least_inf(packed, ew, fw)
        gone = s["p_zero"] | (s["tiny"] & ~s["minn"])
        pm = Mux(s["p_inf"] | p_ovf, emax << fw,
                 Mux(gone, 0, Mux(s["tiny"], 1 << fw, packed)))
        return stage({
            "pm": (pm, unsigned(ew + fw)),
            "p_sub": ~(s["p_inf"] | p_ovf) & gone,
            **{k: s[k] for k in ("p_sign", "p_nan", "c", "c_sub")},
        }, "s4")


@dataclass(frozen=True, kw_only=True)
class FloatMacParams(Params):
    """Parameters of :class:`FloatMultiplyAdd` (see there for their meaning)."""

    exp_bits: int = param(help="exponent field bits", lo=2, hi=MAX_EXP_FIELD_BITS)
    man_bits: int = param(help="fraction field bits, hidden bit not included", lo=1,
                          hi=MAX_FRAC_BITS, option="--frac-bits", fallback="bits")
    multiplier: str = param("heap", help="the significand product: 'heap' (LUT tiles, "
                            "counters, one adder), 'generic' (Yosys's $mul) or 'booth' (radix-4 "
                            "Booth rows subtracted in two registered carry chains; the fewest "
                            "LUTs on xc7)", choices=FP_MULTIPLIERS)
    subnormals: str = param("keep", help="'keep' (IEEE gradual underflow) or 'flush' "
                            "(to signed zero, operands and results)", choices=SUBNORMALS)
    out_ready: str = out_ready_param()

    @property
    def name(self) -> str:
        return (f"fp_mac_e{self.exp_bits}_m{self.man_bits}"
                + ("_ftz" if self.subnormals == "flush" else "")
                + ("" if self.multiplier == "heap" else f"_mul{self.multiplier}")
                + out_ready_suffix(self))


expose(FloatMultiplyAdd, FloatMacParams)


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
