"""References of the units that hold state across a group: ``--top accum`` and ``linear``
(``docs/arithmetic.md``, "Accumulator" and "Matrix-vector engine"), and the integer
baselines ``intmac`` and ``intdot`` ("Integer multiply-accumulate baseline",
``golden/int_dot.py``).

The state lives in harness registers, updated on each input transfer (``ctx.push``) and
reset by ``ctx.rst``; a register ``open`` (0 after reset) says that the next input
continues a group. The result of the input that closes a group is computed from the state
and that input.

Accumulator, with ``x = S << G``: a group's first input loads ``A = x``, ``E_max = E``,
``nan``; a later one gives ``A = (A >> (E - E_max)) + x`` if ``E > E_max``, else
``A + (x >> (E_max - E))`` (``>>`` arithmetic, a floor), ``E_max = max``, ``nan |= nan_j``.
The first ``A`` outside ``[-2**(W-1), 2**(W-1) - 1]`` saturates the group toward that
side for good (``A`` is then frozen and the sum is the bound). ``A`` is computed at
``W + 1`` bits, which holds the sum of two in-range terms exactly.

With ``align="interleave"`` (two interleaved partial sums): input ``j`` of a group runs the
recurrence above on partial sum ``j mod 2`` only, with that sum's own running maximum; the
first excursion of either partial sum saturates the group; the closing input's result is
``T = (A_0 >> (E - E_0)) + (A_1 >> (E - E_1))``, ``E = max(E_0, E_1)`` (``A_1`` absent for a
group of one input), or a bound: the group's, else ``T``'s side if ``T`` is out of range.

Integer baselines: ``sum = wrap(sum of the group's products, acc_width)``.
"""

from __future__ import annotations

from .ref_common import Context, Reference, elements, slice_of, stream_field
from .ref_dequant import float32_of_accum, frac_bits, scale_offset
from .ref_dot import _minifloat, sum_of_products

__all__ = ["ACCUM", "INTDOT", "INTMAC", "LINEAR"]


def _on_push(p: str, last: str, ctx: Context, updates: list[str]) -> list[str]:
    """The clocked block of a group's state: ``{p}open`` (0 after reset) becomes
    ``!last`` on each input transfer, together with ``updates`` (statements)."""
    return [
        f"  always @(posedge {ctx.clk}) begin",
        f"    if ({ctx.rst}) {p}open <= 1'b0;",
        f"    else if ({ctx.push}) begin",
        f"      {p}open <= !({last});",
        *(f"      {u}" for u in updates),
        "    end",
        "  end",
    ]


def _step(p: str, s: str, sw: int, e: str, ew: int, *, g: int, w: int, emax: str,
          fresh: str) -> list[str]:
    """One input ``(s, e)`` (``s`` signed ``sw`` bits, ``e`` ``ew`` bits) against the sum
    ``{p}a`` of running maximum ``emax``, which it opens when ``fresh`` holds: ``{p}next``
    (``W + 1`` bits) is ``x = s << g`` if it opens it, else ``(A >> (e - emax)) + x`` if
    ``{p}up`` (``e > emax``), else ``A + (x >> (emax - e))``; ``{p}satn`` says the group
    is saturated after it (``{p}was``, already before it, needs ``{p}open``, ``{p}sat``)
    and ``{p}aboven`` toward which side (``{p}above``, the first excursion's)."""
    xw = sw + g
    hi, lo = (1 << (w - 1)) - 1, 1 << (w - 1)
    return [
        f"  wire signed [{xw - 1}:0] {p}x = $signed({s}) <<< {g};",
        f"  wire [{ew - 1}:0] {p}e = {e};",
        f"  wire {p}up = {p}e > {emax};",
        f"  wire [{ew - 1}:0] {p}rise = {p}e - {emax};",
        f"  wire [{ew - 1}:0] {p}fall = {emax} - {p}e;",
        f"  wire signed [{w}:0] {p}next = {fresh} ? $signed({p}x) : "
        f"{p}up ? ($signed({p}a) >>> {p}rise) + $signed({p}x) : "
        f"$signed({p}a) + ($signed({p}x) >>> {p}fall);",
        f"  wire {p}was = {p}open && {p}sat;",
        f"  wire {p}hi = {p}next > {w + 1}'sd{hi};",
        f"  wire {p}lo = {p}next < -{w + 1}'sd{lo};",
        f"  wire {p}satn = {p}was || {p}hi || {p}lo;",
        f"  wire {p}aboven = {p}was ? {p}above : {p}hi;",
    ]


#: The updates of the NaN flag and the sticky saturation, on every input.
_STICKY = ("{p}nanq <= {p}nan;", "{p}sat <= {p}satn;", "{p}above <= {p}aboven;")


def _accumulate(p: str, s: str, sw: int, e: str, ew: int, nan: str, last: str, *, g: int,
                w: int, ctx: Context) -> tuple[list[str], list[tuple[str, int]]]:
    """One accumulator: the input ``(s, e, nan, last)`` (``s`` signed ``sw`` bits, ``e``
    ``ew`` bits) against the state; returns the lines and the result nets ``{p}sum``
    (``w`` bits), ``{p}exponent``, ``{p}nan``."""
    hi, lo = (1 << (w - 1)) - 1, 1 << (w - 1)
    lines = [
        f"  reg {p}open;",
        f"  reg signed [{w - 1}:0] {p}a;",
        f"  reg [{ew - 1}:0] {p}emax;",
        f"  reg {p}nanq;",
        f"  reg {p}sat, {p}above;",
        *_step(p, s, sw, e, ew, g=g, w=w, emax=f"{p}emax", fresh=f"!{p}open"),
        f"  wire [{ew - 1}:0] {p}exponent = (!{p}open || {p}up) ? {p}e : {p}emax;",
        f"  wire {p}nan = {nan} || ({p}open && {p}nanq);",
        f"  wire [{w - 1}:0] {p}sum = !{p}satn ? {p}next[{w - 1}:0] : "
        f"{p}aboven ? {w}'d{hi} : {w}'d{lo};",
        *_on_push(p, last, ctx, [
            f"if (!{p}was) {p}a <= {p}next[{w - 1}:0];",
            f"{p}emax <= {p}exponent;",
            *(u.format(p=p) for u in _STICKY),
        ]),
    ]
    return lines, [(f"{p}sum", w), (f"{p}exponent", ew), (f"{p}nan", 1)]


def _accumulate_interleaved(p: str, s: str, sw: int, e: str, ew: int, nan: str, last: str, *,
                            g: int, w: int, ctx: Context
                            ) -> tuple[list[str], list[tuple[str, int]]]:
    """As :func:`_accumulate`, with two partial sums: ``{p}odd`` says the input joins
    partial sum 1 (the group's inputs alternate, starting with 0)."""
    hi, lo = (1 << (w - 1)) - 1, 1 << (w - 1)
    lines = [
        f"  reg {p}open, {p}odd;",
        f"  reg {p}second_seen;",
        f"  reg signed [{w - 1}:0] {p}a0, {p}a1;",
        f"  reg [{ew - 1}:0] {p}e0, {p}e1;",
        f"  reg {p}nanq;",
        f"  reg {p}sat, {p}above;",
        f"  wire {p}q = {p}open && {p}odd;",
        # the partial sum this input joins, and whether it opens it (a group's first two)
        f"  wire signed [{w - 1}:0] {p}a = {p}q ? {p}a1 : {p}a0;",
        f"  wire [{ew - 1}:0] {p}em = {p}q ? {p}e1 : {p}e0;",
        f"  wire {p}fresh = !{p}open || ({p}q && !{p}second_seen);",
        *_step(p, s, sw, e, ew, g=g, w=w, emax=f"{p}em", fresh=f"{p}fresh"),
        f"  wire [{ew - 1}:0] {p}enew = ({p}fresh || {p}up) ? {p}e : {p}em;",
        # the combination: the other partial sum exists once the group is open
        f"  wire signed [{w - 1}:0] {p}oa = {p}q ? {p}a0 : {p}a1;",
        f"  wire [{ew - 1}:0] {p}oe = {p}q ? {p}e0 : {p}e1;",
        f"  wire [{ew - 1}:0] {p}exponent = ({p}open && {p}oe > {p}enew) ? {p}oe : {p}enew;",
        f"  wire signed [{w - 1}:0] {p}own = {p}next[{w - 1}:0];",
        f"  wire signed [{w + 1}:0] {p}t = ($signed({p}own) >>> ({p}exponent - {p}enew)) + "
        f"({p}open ? ($signed({p}oa) >>> ({p}exponent - {p}oe)) : {w + 2}'sd0);",
        f"  wire {p}thi = {p}t > {w + 2}'sd{hi};",
        f"  wire {p}tlo = {p}t < -{w + 2}'sd{lo};",
        f"  wire {p}nan = {nan} || ({p}open && {p}nanq);",
        f"  wire [{w - 1}:0] {p}sum = {p}satn ? ({p}aboven ? {w}'d{hi} : {w}'d{lo}) : "
        f"{p}thi ? {w}'d{hi} : {p}tlo ? {w}'d{lo} : {p}t[{w - 1}:0];",
        *_on_push(p, last, ctx, [
            f"{p}odd <= !{p}q;",
            f"{p}second_seen <= {p}q || ({p}open && {p}second_seen);",
            f"if (!{p}was && {p}q) {p}a1 <= {p}own;",
            f"if (!{p}was && !{p}q) {p}a0 <= {p}own;",
            f"if ({p}q) {p}e1 <= {p}enew; else {p}e0 <= {p}enew;",
            *(u.format(p=p) for u in _STICKY),
        ]),
    ]
    return lines, [(f"{p}sum", w), (f"{p}exponent", ew), (f"{p}nan", 1)]


def _accumulator(params: dict):
    """:func:`_accumulate_interleaved` for ``align="interleave"``, else :func:`_accumulate`."""
    return _accumulate_interleaved if params.get("align") == "interleave" else _accumulate


def _wrap_sum(p: str, s: str, sw: int, last: str, *, w: int, ctx: Context
              ) -> tuple[list[str], list[tuple[str, int]]]:
    """Wrapping integer accumulator: ``{p}sum`` = the group's sum of ``s`` mod
    ``2**w``."""
    return [
        f"  reg {p}open;",
        f"  reg [{w - 1}:0] {p}acc;",
        f"  wire signed [{max(w, sw) - 1}:0] {p}term = $signed({s});",
        f"  wire [{w - 1}:0] {p}sum = ({p}open ? {p}acc : {w}'d0) + {p}term[{w - 1}:0];",
        *_on_push(p, last, ctx, [f"{p}acc <= {p}sum;"]),
    ], [(f"{p}sum", w)]


def _scalar(ins: dict[str, str], manifest: dict, stream: str, name: str) -> str:
    f = stream_field(manifest, stream, name)
    return slice_of(ins[stream], f["offset"], f["width"])


def _accum_build(manifest: dict, ins: dict[str, str], ctx: Context):
    params = manifest["parameters"]
    s = stream_field(manifest, "i", "sum")
    e = stream_field(manifest, "i", "exponent")
    last = _scalar(ins, manifest, "i", "last")
    w = stream_field(manifest, "o", "sum")["width"]
    lines, refs = _accumulator(params)("acc_", _scalar(ins, manifest, "i", "sum"), s["width"],
                                       _scalar(ins, manifest, "i", "exponent"), e["width"],
                                       _scalar(ins, manifest, "i", "nan"), last,
                                       g=params["guard_bits"], w=w, ctx=ctx)
    return lines, refs, last


def _triple_outputs(manifest: dict, o: str, ref: list[str]) -> tuple[list[str], list[str]]:
    """``sum``, ``exponent``, ``nan`` of each lane (``ref`` in that order per lane)."""
    fields = [stream_field(manifest, "o", n) for n in ("sum", "exponent", "nan")]
    conds = []
    for lane in range(fields[0].get("count", 1)):
        for k, f in enumerate(fields):
            conds.append(f"({elements(o, f)[lane]} == {ref[3 * lane + k]})")
    return [], conds


def _accum_bounded(manifest: dict) -> str | None:
    if manifest["parameters"].get("align", "loop") == "stall":
        return ("align 'stall' takes inputs at a data-dependent rate, so the result's "
                "delay is not fixed and no induction closes without the unit's internals")
    return None


def _linear_build(manifest: dict, ins: dict[str, str], ctx: Context):
    params = manifest["parameters"]
    fp32 = params.get("output", "accum") == "fp32"
    block, lanes = params["block"], params["lanes"]
    nb = -(-params["k_len"] // block)
    xe, we = (stream_field(manifest, s, "exponent") for s in ("x", "w"))
    e = xe["width"]
    nan = f"{e}'d{(1 << e) - 1}"
    w = params["acc_width"]
    cbits = max(1, (nb - 1).bit_length())
    # Blocks of a group: the nb-th closes it.
    lines = [
        f"  reg [{cbits - 1}:0] lin_block;",
        f"  wire lin_last = lin_block == {cbits}'d{nb - 1};",
        f"  always @(posedge {ctx.clk}) begin",
        f"    if ({ctx.rst}) lin_block <= 0;",
        f"    else if ({ctx.push}) lin_block <= lin_last ? {cbits}'d0 : lin_block + 1'b1;",
        "  end",
    ]
    # Each operand's elements: MXINT mantissas, or minifloat codes decoded to their
    # fixed-point integers (the dot product's reference) with a "some code is an infinity
    # or NaN" net, per lane for the weights.
    more, xs, x_width, x_special = _operand(manifest, params, ins, "x", 0, block)
    lines += more
    ex = slice_of(ins["x"], xe["offset"], e)
    refs = []
    for lane in range(lanes):
        p = f"lin{lane}_"
        more, ws, w_width, w_special = _operand(manifest, params, ins, "w", lane * block, block)
        lines += more
        more, total, width = sum_of_products(p, xs, x_width, ws, w_width)
        ew = elements(ins["w"], we)[lane]
        specials = "".join(f" || {x}" for x in (x_special, w_special) if x)
        lines += more
        lines += [
            f"  wire [{e}:0] {p}e = {{1'b0, {ex}}} + {{1'b0, {ew}}};",
            f"  wire {p}n = ({ex} == {nan}) || ({ew} == {nan}){specials};",
        ]
        more, lane_refs = _accumulator(params)(f"{p}acc_", total, width, f"{p}e", e + 1,
                                               f"{p}n", "lin_last", g=params["guard_bits"],
                                               w=w, ctx=ctx)
        lines += more
        if fp32:  # each lane's result rounded once to float32
            c = scale_offset(e, params["guard_bits"], frac_bits(params, "x"),
                             frac_bits(params, "w"))
            (s, _), (ex, _), (n, _) = lane_refs
            more, bits = float32_of_accum(f"{p}f32_", s, w, ex, e + 1, n, c)
            lines += more
            lane_refs = [(bits, 32)]
        refs += lane_refs
    return lines, refs, "lin_last"


def _operand(manifest: dict, params: dict, ins: dict[str, str], side: str, first: int,
             count: int) -> tuple[list[str], list[str], int, str | None]:
    """``(lines, element nets, width, special net or None)`` of elements ``first ..
    first + count - 1`` of operand ``side`` (``x`` or ``w``)."""
    from golden.minifloat import ELEMENTS

    element = params.get(f"{side}_element") or "int"
    if element == "int":
        f = stream_field(manifest, side, "mantissa")
        return [], elements(ins[side], f)[first:first + count], f["width"], None
    f = stream_field(manifest, side, "codes")
    stride = f.get("stride", f["width"])
    lane = {**f, "offset": f["offset"] + first * stride, "count": count}
    return _minifloat(f"lin_{side}{first}_", ins[side], lane, ELEMENTS[element])


def _linear_outputs(manifest: dict, o: str, ref: list[str]) -> tuple[list[str], list[str]]:
    if manifest["parameters"].get("output", "accum") != "fp32":
        return _triple_outputs(manifest, o, ref)
    bits = stream_field(manifest, "o", "bits")
    return [], [f"({el} == {r})" for el, r in zip(elements(o, bits), ref, strict=True)]


def _linear_bounded(manifest: dict) -> str:
    return ("the unit counts the blocks of a group inside; the induction step starts its "
            "counter and the reference's from unrelated states, which no induction length "
            "reconciles without the unit's internals")


def _intmac_build(manifest: dict, ins: dict[str, str], ctx: Context):
    a, b = (stream_field(manifest, "i", n) for n in ("a", "b"))
    pw = a["width"] + b["width"]
    last = _scalar(ins, manifest, "i", "last")
    lines = [f"  wire signed [{pw - 1}:0] mac_p = $signed({_scalar(ins, manifest, 'i', 'a')}) "
             f"* $signed({_scalar(ins, manifest, 'i', 'b')});"]
    more, refs = _wrap_sum("mac_", "mac_p", pw, last,
                           w=stream_field(manifest, "o", "sum")["width"], ctx=ctx)
    return lines + more, refs, last


def _intdot_build(manifest: dict, ins: dict[str, str], ctx: Context):
    a, b = (stream_field(manifest, "i", n) for n in ("a", "b"))
    last = _scalar(ins, manifest, "i", "last")
    lines, total, width = sum_of_products("idot_", elements(ins["i"], a), a["width"],
                                          elements(ins["i"], b), b["width"])
    more, refs = _wrap_sum("idot_acc_", total, width, last,
                           w=stream_field(manifest, "o", "sum")["width"], ctx=ctx)
    return lines + more, refs, last


def _sum_outputs(manifest: dict, o: str, ref: list[str]) -> tuple[list[str], list[str]]:
    s = stream_field(manifest, "o", "sum")
    return [], [f"({slice_of(o, s['offset'], s['width'])} == {ref[0]})"]


#: ``--top accum``.
ACCUM = Reference(build=_accum_build, outputs=_triple_outputs, last=("i", "last"),
                  bounded=_accum_bounded, stall_cycles=3)
#: ``--top linear``.
LINEAR = Reference(build=_linear_build, outputs=_linear_outputs, bounded=_linear_bounded,
                   stall_cycles=3)
#: ``--top intmac``.
INTMAC = Reference(build=_intmac_build, outputs=_sum_outputs, last=("i", "last"))
#: ``--top intdot``.
INTDOT = Reference(build=_intdot_build, outputs=_sum_outputs, last=("i", "last"))
