"""Reference of ``--top cast``, from ``docs/arithmetic.md`` ("Quantise" and "Cast"), not
from the unit's datapath.

Per element, from its float32 pattern (a bfloat16 pattern is its upper half): sign ``s``,
exponent field ``f``, fraction ``t``; ``M = t + 2**23`` if ``f > 0`` else ``t``; the
value is ``(-1)**s * M * 2**(max(f, 1) - 150)``. Per block:

* ``f = 255`` anywhere (NaN or infinity): ``E = 2**e - 1``, every ``P = 0``; all ``M = 0``:
  ``E = 0``, every ``P = 0``.
* ``floor(log2 |x|)`` of each non-zero element, exactly: ``f - 127`` if normal, else
  ``j - 149`` with ``j`` the leading one of ``t`` (a priority chain here; ``floor(log2)``
  is monotone, so its maximum over the block is ``floor(log2(amax))``).
  ``E = clamp(max + bias, 0, 2**e - 2)``.
* ``P = round(v * 2**k)`` with ``v = ±M`` and ``k = max(f, 1) - 150 - (E - bias - (m - 2))``:
  a left shift when ``k >= 0`` (clamped at ``m``: any non-zero value shifted that far
  saturates), else :func:`.ref_common.round_shift` by ``-k`` (clamped at 26: ``|v| <
  2**24``, so beyond that only the sign is left to round) in the unit's mode, from the
  quotient, the remainder and one half; then saturation to ``±(2**(m-1) - 1)``.

With a minifloat ``element`` (``docs/arithmetic.md``, "Quantise", MXFP), from
:func:`golden.quantize`'s notes: ``amax`` is the largest 31-bit magnitude pattern;
``X = clamp(floor(log2 amax) - emax + 127, 0, 254)``, plus one with ``rceil`` when
``amax``'s significand (normalised to ``[1, 2)``) exceeds the largest normal's; NaN or
infinity anywhere: ``X = 255``, codes 0; all zero: ``X = 0``. Per element,
``y = ±M * 2**k`` with ``k = max(f, 1) - 23 + fe - X`` (``fe`` the element's fraction bits)
is rounded to a multiple of ``2**st``, ``st = max(floor(log2|y|) - Mm, 0)``: a
:func:`.ref_common.round_shift` by ``st - k`` (or an exact left shift when that is
negative), shifted back up by ``st``, clamped at the largest normal's fixed-point integer,
and looked up in the format's table of code values (a chain of comparisons with every
finite magnitude); the code's top bit is the input's sign.
"""

from __future__ import annotations

from golden.minifloat import ELEMENTS

from .ref_common import (
    Context,
    HarnessError,
    Reference,
    block_outputs,
    elements,
    round_shift,
    saturate,
    slice_of,
    stream_field,
)

__all__ = ["CAST"]

#: Right shifts at or beyond this leave only the sign of a 25-bit ``±M`` to round.
_SHIFT_CLAMP = 26


def _build(manifest: dict, ins: dict[str, str], ctx: Context):
    params = manifest["parameters"]
    if params.get("element", "int") != "int":
        return _build_mxfp(manifest, ins)
    m, e, mode = params["man_bits"], params["exp_bits"], params["rounding"]
    bias = (1 << (e - 1)) - 1
    bits = stream_field(manifest, "i", "bits")
    if bits["width"] not in (16, 32):
        raise HarnessError(f"cast: elements must be 16 or 32 bits, not {bits['width']}")
    lines = []
    names = []
    for i, el in enumerate(elements(ins["i"], bits)):
        p = f"c{i}_"
        names.append(p)
        x = el if bits["width"] == 32 else f"{{{el}, 16'h0000}}"
        lines += [
            f"  wire [31:0] {p}x = {x};",
            f"  wire {p}s = {p}x[31];",
            f"  wire [7:0] {p}f = {p}x[30:23];",
            f"  wire [22:0] {p}t = {p}x[22:0];",
            f"  wire [23:0] {p}m = ({p}f != 8'd0) ? {{1'b1, {p}t}} : {{1'b0, {p}t}};",
            f"  wire {p}special = {p}f == 8'd255;",
            f"  wire {p}nonzero = {p}m != 24'd0;",
        ]
        # floor(log2|x|) + 149, 9 bits: f + 22 if normal, else the leading one of t.
        chain = "9'd0"
        for j in range(23):
            chain = f"{p}t[{j}] ? 9'd{j} : {chain}" if j == 0 else \
                f"{p}t[{j}] ? 9'd{j} : ({chain})"
        lines.append(f"  wire [8:0] {p}lg = ({p}f != 8'd0) ? {{1'b0, {p}f}} + 9'd22 : "
                     f"({chain});")
        lines.append(f"  wire [8:0] {p}lgz = {p}nonzero ? {p}lg : 9'd0;")
    # Maximum over the block, then E = clamp(max - 149 + bias, 0, 2**e - 2).
    lines.append(f"  wire [8:0] cmax0 = {names[0]}lgz;")
    for i, p in enumerate(names[1:], start=1):
        lines.append(f"  wire [8:0] cmax{i} = ({p}lgz > cmax{i - 1}) ? {p}lgz : cmax{i - 1};")
    top = (1 << e) - 2
    last = f"cmax{len(names) - 1}"
    specials = " || ".join(f"{p}special" for p in names)
    nonzeros = " || ".join(f"{p}nonzero" for p in names)
    lines += [
        f"  wire signed [11:0] cel = $signed({{3'b000, {last}}}) - 12'sd149 + 12'sd{bias};",
        f"  wire [{e - 1}:0] cexp = (cel < 0) ? {e}'d0 : (cel > 12'sd{top}) ? {e}'d{top} : "
        f"cel[{e - 1}:0];",
        f"  wire cnan = {specials};",
        f"  wire czero = !({nonzeros});",
        f"  wire [{e - 1}:0] ref_exponent = cnan ? {e}'d{(1 << e) - 1} : czero ? {e}'d0 : "
        "cexp;",
    ]
    vw = 25 + m + 1  # ±M shifted left by up to m
    refs = []
    for i, p in enumerate(names):
        lines += [
            f"  wire signed [24:0] {p}v = {p}s ? -$signed({{1'b0, {p}m}}) : "
            f"$signed({{1'b0, {p}m}});",
            f"  wire signed [11:0] {p}k = $signed({{4'b0000, ({p}f != 8'd0) ? {p}f : 8'd1}}) "
            f"- 12'sd150 - $signed({{{12 - e}'d0, cexp}}) + 12'sd{bias + m - 2};",
            f"  wire [5:0] {p}rs = ({p}k >= 0) ? 6'd0 : (-{p}k > 12'sd{_SHIFT_CLAMP}) ? "
            f"6'd{_SHIFT_CLAMP} : 6'd0 + (-{p}k);",
            f"  wire [5:0] {p}ls = ({p}k < 0) ? 6'd0 : ({p}k > 12'sd{m}) ? 6'd{m} : "
            f"6'd0 + {p}k;",
            f"  wire signed [{vw - 1}:0] {p}left = $signed({p}v) <<< {p}ls;",
        ]
        lines += round_shift(f"{p}rnd_", f"{p}v", 25, f"{p}rs", _SHIFT_CLAMP, mode)
        lines += [
            f"  wire signed [{vw - 1}:0] {p}val = ({p}k >= 0) ? {p}left : "
            f"$signed({p}rnd_out);",
        ]
        lines += saturate(p, f"{p}val", vw, m)
        lines.append(f"  wire signed [{m - 1}:0] ref_p{i} = (cnan || czero) ? {m}'sd0 : "
                     f"{p}sat;")
        refs.append((f"ref_p{i}", m))
    return lines, [*refs, ("ref_exponent", e)], "1'b1"


def _build_mxfp(manifest: dict, ins: dict[str, str]):
    params = manifest["parameters"]
    el, mode = ELEMENTS[params["element"]], params["rounding"]
    rceil = params.get("scale_rounding", "floor") == "rceil"
    mm, fe, width = el.man_bits, el.frac_bits, el.width
    bits = stream_field(manifest, "i", "bits")
    if bits["width"] not in (16, 32):
        raise HarnessError(f"cast: elements must be 16 or 32 bits, not {bits['width']}")
    lines, names = [], []
    for i, x in enumerate(elements(ins["i"], bits)):
        p = f"c{i}_"
        names.append(p)
        x = x if bits["width"] == 32 else f"{{{x}, 16'h0000}}"
        lines += [
            f"  wire [31:0] {p}x = {x};",
            f"  wire {p}s = {p}x[31];",
            f"  wire [7:0] {p}f = {p}x[30:23];",
            f"  wire [22:0] {p}t = {p}x[22:0];",
            f"  wire [23:0] {p}m = ({p}f != 8'd0) ? {{1'b1, {p}t}} : {{1'b0, {p}t}};",
            f"  wire {p}special = {p}f == 8'd255;",
            f"  wire {p}nonzero = {p}m != 24'd0;",
        ]
        # Leading one of M (23 for a normal number), and floor(log2|x|) + 149.
        chain = "5'd0"
        for j in range(24):
            chain = f"{p}m[{j}] ? 5'd{j} : ({chain})"
        lines += [f"  wire [4:0] {p}lead = {chain};",
                  f"  wire [8:0] {p}lg = ({p}f != 8'd0) ? {{1'b0, {p}f}} + 9'd22 : "
                  f"{{4'd0, {p}lead}};",
                  f"  wire [8:0] {p}lgz = {p}nonzero ? {p}lg : 9'd0;"]
    # amax: the largest magnitude pattern (patterns order like values) and its log2.
    lines.append(f"  wire [30:0] cpat0 = {names[0]}x[30:0];")
    lines.append(f"  wire [8:0] cmax0 = {names[0]}lgz;")
    lines.append(f"  wire [4:0] clead0 = {names[0]}lead;")
    for i, p in enumerate(names[1:], start=1):
        lines += [f"  wire cbig{i} = {p}x[30:0] > cpat{i - 1};",
                  f"  wire [30:0] cpat{i} = cbig{i} ? {p}x[30:0] : cpat{i - 1};",
                  f"  wire [8:0] cmax{i} = cbig{i} ? {p}lgz : cmax{i - 1};",
                  f"  wire [4:0] clead{i} = cbig{i} ? {p}lead : clead{i - 1};"]
    last = len(names) - 1
    # rceil: amax's significand, normalised to 24 bits with its leading one at bit 23,
    # above the largest normal's (max_normal / 2**emax, times 2**23).
    top24 = (el.max_int >> (el.emax + el.bias - 1)) << (23 - mm)
    amax_m = f"(cpat{last}[30:23] != 8'd0 ? {{1'b1, cpat{last}[22:0]}} : " \
        f"{{1'b0, cpat{last}[22:0]}})"
    up = (f"((({amax_m}) << (5'd23 - clead{last})) > 24'd{top24})" if rceil else "1'b0")
    specials = " || ".join(f"{p}special" for p in names)
    nonzeros = " || ".join(f"{p}nonzero" for p in names)
    lines += [
        f"  wire signed [11:0] cel = $signed({{3'b000, cmax{last}}}) - 12'sd149 - "
        f"12'sd{el.emax} + 12'sd127 + $signed({{11'd0, {up}}});",
        "  wire [7:0] cexp = (cel < 0) ? 8'd0 : (cel > 12'sd254) ? 8'd254 : cel[7:0];",
        f"  wire cnan = {specials};",
        f"  wire czero = !({nonzeros});",
        "  wire [7:0] ref_exponent = cnan ? 8'd255 : czero ? 8'd0 : cexp;",
    ]
    # The finite magnitudes of the format, code by code: the code of a value is its index.
    values = el.table[0][: el.finite_codes].tolist()
    vw = 40
    refs = []
    for i, p in enumerate(names):
        lines += [
            f"  wire signed [24:0] {p}v = {p}s ? -$signed({{1'b0, {p}m}}) : "
            f"$signed({{1'b0, {p}m}});",
            f"  wire signed [11:0] {p}k = $signed({{4'b0000, ({p}f != 8'd0) ? {p}f : 8'd1}}) "
            f"- 12'sd23 + 12'sd{fe} - $signed({{4'd0, cexp}});",
            f"  wire signed [11:0] {p}ly = $signed({{3'b000, {p}lgz}}) - 12'sd149 + 12'sd127 "
            f"+ 12'sd{fe} - $signed({{4'd0, cexp}});",
            f"  wire signed [11:0] {p}st = ({p}ly - 12'sd{mm} > 0) ? {p}ly - 12'sd{mm} : "
            "12'sd0;",
            f"  wire signed [11:0] {p}sh = {p}st - {p}k;",
            f"  wire [5:0] {p}rs = ({p}sh < 0) ? 6'd0 : ({p}sh > 12'sd{_SHIFT_CLAMP}) ? "
            f"6'd{_SHIFT_CLAMP} : 6'd0 + {p}sh;",
            f"  wire [5:0] {p}ls = ({p}sh < 0) ? 6'd0 + (-{p}sh) : 6'd0;",
        ]
        lines += round_shift(f"{p}rnd_", f"{p}v", 25, f"{p}rs", _SHIFT_CLAMP, mode)
        lines += [
            f"  wire [25:0] {p}qa = {p}rnd_out[25] ? -{p}rnd_out : {p}rnd_out;",
            f"  wire [{vw - 1}:0] {p}mag = ({p}sh < 0) ? ({{{vw - 24}'d0, {p}m}} << {p}ls) : "
            f"({{{vw - 26}'d0, {p}qa}} << {p}st[5:0]);",
            f"  wire [{vw - 1}:0] {p}sat = ({p}mag > {vw}'d{el.max_int}) ? {vw}'d{el.max_int} "
            f": {p}mag;",
        ]
        chain = f"{width - 1}'d0"
        for code, value in reversed(list(enumerate(values))):
            chain = f"({p}sat == {vw}'d{value}) ? {width - 1}'d{code} : {chain}"
        lines += [f"  wire [{width - 2}:0] {p}code = {chain};",
                  f"  wire [{width - 1}:0] ref_p{i} = cnan ? {width}'d0 : {{{p}s, {p}code}};"]
        refs.append((f"ref_p{i}", width))
    return lines, [*refs, ("ref_exponent", 8)], "1'b1"


def _outputs(manifest: dict, o: str, ref: list[str]) -> tuple[list[str], list[str]]:
    """An MXINT block's conditions (:func:`.ref_common.block_outputs`), or an MXFP block's:
    each of its ``codes``, then its ``exponent`` (the scale)."""
    if manifest["parameters"].get("element", "int") == "int":
        return block_outputs(manifest, o, ref)
    codes = stream_field(manifest, "o", "codes")
    exp = stream_field(manifest, "o", "exponent")
    conds = [f"({el} == {r})" for el, r in zip(elements(o, codes), ref[:-1], strict=True)]
    conds.append(f"({slice_of(o, exp['offset'], exp['width'])} == {ref[-1]})")
    return [], conds


#: ``--top cast``.
CAST = Reference(build=_build, outputs=_outputs, stall_cycles=2)
