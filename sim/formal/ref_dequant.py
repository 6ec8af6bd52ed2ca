"""Reference of ``--top dequant``, from ``docs/arithmetic.md`` ("Dequantiser").

``source="accum"``: see :func:`_accum_build`. ``source="block"``:

The reference does not compute a float32 pattern: it reads the unit's pattern back by
the IEEE definition and checks that it denotes the element's exact value
``v = P * 2**s``, ``s = E - bias - (m - 2)`` (every such ``v`` is a float32, so the pattern
is unique):

* a NaN block (``E = 2**e - 1``): every pattern is ``0x7FC00000``;
* ``P = 0``: the pattern is ``0x00000000`` (+0.0);
* ``|v| >= 2**128`` (only ``P = -2**(m-1)`` at code 254 with ``e = 8``): ``±inf`` with the
  sign of ``P``;
* otherwise the sign bit is that of ``P``, the exponent field ``ef`` is not 255, and the
  significand ``Mo = fr + 2**23`` (``ef > 0``) or ``fr`` (``ef = 0``) at scale
  ``max(ef, 1) - 150`` equals ``|P|`` at scale ``s``: ``Mo << (scale - s) == |P|`` or
  ``|P| << (s - scale) == Mo`` (shifts clamped at 25, beyond every significand).

``source="block"`` with an ``element`` (OCP MX v1.0 minifloats): see :func:`_mxfp_outputs`.
"""

from __future__ import annotations

from .ref_common import Context, Reference, elements, round_shift, slice_of, stream_field

__all__ = ["DEQUANT", "float32_of_accum", "frac_bits", "scale_offset"]

_CLAMP = 25  # significands are below 2**24


def _build(manifest: dict, ins: dict[str, str], ctx: Context):
    if manifest["parameters"].get("source", "block") == "accum":
        return _accum_build(manifest, ins)
    # The check reads the input beside the output: the reference is the input itself.
    return [], [(ins["i"], manifest["streams"]["i"]["width"])], "1'b1"


def _accum_build(manifest: dict, ins: dict[str, str]):
    params = manifest["parameters"]
    e = params["exp_bits"]
    c = scale_offset(e, params["guard_bits"], frac_bits(params, "a"), frac_bits(params, "b"))
    fs, fe = (stream_field(manifest, "i", n) for n in ("sum", "exponent"))
    i = ins["i"]
    nan = slice_of(i, stream_field(manifest, "i", "nan")["offset"], 1)
    lines, bits = float32_of_accum("dqa_", slice_of(i, fs["offset"], fs["width"]),
                                   fs["width"], slice_of(i, fe["offset"], fe["width"]),
                                   fe["width"], nan, c)
    return lines, [(bits, 32)], "1'b1"


def frac_bits(params: dict, side: str) -> int:
    """``f`` of operand ``side`` (``a``, ``b``, ``x``, ``w``) of a design's parameters, from
    ``docs/arithmetic.md``: ``m - 2`` for MXINT of ``m`` bits (``<side>_bits``), and for a
    minifloat element ``E<e>M<M>`` (``<side>_element``) its bias plus ``M - 1``, ``2**(e-1)
    - 1 + M - 1`` (its smallest subnormal is ``2**-f``)."""
    from golden.minifloat import ELEMENTS

    element = params.get(f"{side}_element") or "int"
    if element == "int":
        return params[f"{side}_bits"] - 2
    e, man = ELEMENTS[element].exp_bits, ELEMENTS[element].man_bits
    return (1 << (e - 1)) - 1 + man - 1


def scale_offset(exp_bits: int, guard_bits: int, f_a: int, f_b: int) -> int:
    """``c = G + 2*bias + f_a + f_b`` (``f``: :func:`frac_bits`): an accumulator result is
    worth ``sum * 2**(exponent - c)`` (``docs/arithmetic.md``, "Accumulator")."""
    return guard_bits + 2 * ((1 << (exp_bits - 1)) - 1) + f_a + f_b


def float32_of_accum(p: str, a: str, w: int, exponent: str, ew: int, nan: str, c: int
                     ) -> tuple[list[str], str]:
    """``A * 2**(E - c)`` rounded once to float32, nearest even, by the steps of
    ``docs/arithmetic.md`` ("Wide integer input"): the leading one ``j`` of ``|A|``,
    ``F = j + scale + 127``, ``r = max(j - 23, -149 - scale)``, ``q`` = ``|A|`` rounded by
    :func:`.ref_common.round_shift` (quotient, remainder and one half; a left shift when
    ``r < 0``), the pattern ``(max(F - 1, 0) << 23) + q``, ``±inf`` from ``0x7F800000``
    on; ``+0.0`` for ``A = 0``, ``0x7FC00000`` for NaN. Returns the lines and the pattern
    net ``{p}bits``."""
    chain = "0"
    for j in range(w):
        chain = f"{p}mag[{j}] ? {j} : ({chain})"
    smax = w + 2
    lines = [
        f"  wire signed [{w - 1}:0] {p}a = {a};",
        f"  wire [{w}:0] {p}mag = {p}a[{w - 1}] ? -$signed({{{p}a[{w - 1}], {p}a}}) : "
        f"{{1'b0, {p}a}};",
        f"  wire signed [13:0] {p}j = {chain};",
        f"  wire signed [13:0] {p}scale = $signed({{{14 - ew}'d0, {exponent}}}) - 14'sd{c};",
        f"  wire signed [13:0] {p}f = {p}j + {p}scale + 14'sd127;",
        f"  wire signed [13:0] {p}r = ({p}j - 14'sd23 > -14'sd149 - {p}scale) ? "
        f"{p}j - 14'sd23 : -14'sd149 - {p}scale;",
        f"  wire [6:0] {p}rs = ({p}r < 0) ? 7'd0 : ({p}r > 14'sd{smax}) ? 7'd{smax} : "
        f"7'd0 + {p}r;",
        f"  wire [6:0] {p}ls = ({p}r < 0) ? 7'd0 + (-{p}r) : 7'd0;",
        f"  wire signed [{w + 1}:0] {p}v = $signed({{1'b0, {p}mag}});",
    ]
    lines += round_shift(f"{p}q_", f"{p}v", w + 2, f"{p}rs", smax, "even")
    lines += [
        f"  wire [{w + 24}:0] {p}q = ({p}r < 0) ? {{{w + 25}'d0, {p}mag}} << {p}ls : "
        f"{p}q_out;",
        f"  wire [13:0] {p}field = ({p}f > 14'sd1) ? {p}f - 14'sd1 : 14'd0;",
        f"  wire [{w + 40}:0] {p}p = ({{{w + 27}'d0, {p}field}} << 23) + {p}q;",
        f"  wire [30:0] {p}m = ({p}p >= 32'h7F800000) ? 31'h7F800000 : {p}p[30:0];",
        f"  wire [31:0] {p}bits = {nan} ? 32'h7FC00000 : ({p}a == 0) ? 32'h00000000 : "
        f"{{{p}a[{w - 1}], {p}m}};",
    ]
    return lines, f"{p}bits"


def _outputs(manifest: dict, o: str, ref: list[str]) -> tuple[list[str], list[str]]:
    params = manifest["parameters"]
    if params.get("source", "block") == "accum":
        bits = stream_field(manifest, "o", "bits")
        return [], [f"({slice_of(o, bits['offset'], 32)} == {ref[0]})"]
    if params.get("element") is not None:
        return _mxfp_outputs(manifest, o, ref)
    m, e = params["man_bits"], params["exp_bits"]
    bias = (1 << (e - 1)) - 1
    man = stream_field(manifest, "i", "mantissa")
    exp = stream_field(manifest, "i", "exponent")
    bits = stream_field(manifest, "o", "bits")
    # Unique prefix per use, since the harness may call this for delayed and queued nets.
    pre = "dq_"
    lines = [
        f"  wire [{e - 1}:0] {pre}e = {slice_of(ref[0], exp['offset'], e)};",
        f"  wire {pre}nan = {pre}e == {e}'d{(1 << e) - 1};",
        f"  wire signed [11:0] {pre}s = $signed({{{12 - e}'d0, {pre}e}}) - 12'sd{bias + m - 2};",
        f"  wire signed [11:0] {pre}t = 12'sd128 - {pre}s;",
    ]
    conds = []
    for i, (pin, pout) in enumerate(zip(elements(ref[0], man), elements(o, bits),
                                        strict=True)):
        p = f"{pre}{i}_"
        lines += [
            f"  wire signed [{m - 1}:0] {p}p = {pin};",
            f"  wire [{m - 1}:0] {p}mag = {p}p[{m - 1}] ? -{p}p : {p}p;",
            f"  wire [31:0] {p}o = {pout};",
            f"  wire [7:0] {p}ef = {p}o[30:23];",
            f"  wire [23:0] {p}mo = ({p}ef != 8'd0) ? {{1'b1, {p}o[22:0]}} : "
            f"{{1'b0, {p}o[22:0]}};",
            # |v| >= 2**128: |P| >= 2**(128 - s)
            f"  wire {p}over = ({pre}t <= 0) ? ({p}mag != 0) : ({pre}t > 12'sd{m}) ? 1'b0 : "
            f"(({p}mag >> {pre}t) != 0);",
            f"  wire signed [11:0] {p}d = $signed({{4'd0, ({p}ef != 8'd0) ? {p}ef : 8'd1}}) "
            f"- 12'sd150 - {pre}s;",
            f"  wire [5:0] {p}dl = ({p}d < 0) ? 6'd0 : ({p}d > 12'sd{_CLAMP}) ? 6'd{_CLAMP} : "
            f"6'd0 + {p}d;",
            f"  wire [5:0] {p}dr = ({p}d >= 0) ? 6'd0 : (-{p}d > 12'sd{_CLAMP}) ? "
            f"6'd{_CLAMP} : 6'd0 + (-{p}d);",
            f"  wire [{24 + _CLAMP - 1}:0] {p}lhs = {{{_CLAMP}'d0, {p}mo}} << {p}dl;",
            f"  wire [{24 + _CLAMP - 1}:0] {p}rhs = {{{24 + _CLAMP - m}'d0, {p}mag}} << {p}dr;",
            f"  wire {p}ok = {pre}nan ? ({p}o == 32'h7FC00000) : "
            f"({p}p == 0) ? ({p}o == 32'h00000000) : "
            f"({p}o[31] != {p}p[{m - 1}]) ? 1'b0 : "
            f"{p}over ? ({p}o[30:0] == 31'h7F800000) : "
            f"({p}ef != 8'd255) && ({p}lhs == {p}rhs);",
        ]
        conds.append(f"({p}ok)")
    return lines, conds


def _mxfp_outputs(manifest: dict, o: str, ref: list[str]) -> tuple[list[str], list[str]]:
    """The checks of an MXFP block, from the OCP MX v1.0 definition of the element
    ``eEmM`` (``E`` exponent bits with bias ``b = 2**(E-1) - 1``, ``M`` mantissa bits):

    * scale ``X = 255``, or a NaN code (E5M2: exponent all ones and ``m != 0``; E4M3:
      ``S.1111.111``): the pattern is ``0x7FC00000``;
    * an E5M2 infinity code (exponent all ones, ``m = 0``): ``±inf`` with the code's sign;
    * otherwise the value is ``(-1)**s * sig * 2**t`` with ``sig = m``,
      ``t = 1 - b - M + X - 127`` for ``e = 0`` and ``sig = 2**M + m``,
      ``t = e - b - M + X - 127`` for ``e > 0``. ``sig = 0``: the pattern is
      ``s << 31`` (signed zero). ``|v| >= 2**128``: ``±inf``. Else the sign bit is ``s``,
      the exponent field ``ef`` is not 255 and the significand read back (``Mo``, at
      scale ``max(ef, 1) - 150``) equals ``sig`` at scale ``t`` (shifts clamped at 25).
    """
    name = manifest["parameters"]["element"]
    ew, mw = int(name[1]), int(name[3])
    width, bias = 1 + ew + mw, (1 << (ew - 1)) - 1
    codes = stream_field(manifest, "i", "codes")
    exp = stream_field(manifest, "i", "exponent")
    bits = stream_field(manifest, "o", "bits")
    pre = "dqf_"
    lines = [
        f"  wire [7:0] {pre}x = {slice_of(ref[0], exp['offset'], 8)};",
        f"  wire {pre}nanx = {pre}x == 8'd255;",
    ]
    conds = []
    for i, (cin, pout) in enumerate(zip(elements(ref[0], codes), elements(o, bits),
                                        strict=True)):
        p = f"{pre}{i}_"
        top = f"({p}e == {ew}'d{(1 << ew) - 1})"
        if name == "e5m2":
            nan, inf = f"{top} && ({p}m != 0)", f"{top} && ({p}m == 0)"
        elif name == "e4m3":
            nan, inf = f"{top} && ({p}m == {mw}'d{(1 << mw) - 1})", "1'b0"
        else:
            nan, inf = "1'b0", "1'b0"
        lines += [
            f"  wire [{width - 1}:0] {p}c = {cin};",
            f"  wire {p}s = {p}c[{width - 1}];",
            f"  wire [{ew - 1}:0] {p}e = {p}c[{width - 2}:{mw}];",
            f"  wire [{mw - 1}:0] {p}m = {p}c[{mw - 1}:0];",
            f"  wire {p}nan = {nan};",
            f"  wire {p}inf = {inf};",
            f"  wire [4:0] {p}sig = ({p}e == 0) ? {{{5 - mw}'d0, {p}m}} : "
            f"{{{4 - mw}'d0, 1'b1, {p}m}};",
            f"  wire signed [11:0] {p}t = $signed({{4'd0, {pre}x}}) + "
            f"(({p}e == 0) ? 12'sd1 : $signed({{{12 - ew}'d0, {p}e}})) - 12'sd{bias + mw + 127};",
            f"  wire signed [11:0] {p}u = 12'sd128 - {p}t;",
            f"  wire [31:0] {p}o = {pout};",
            f"  wire [7:0] {p}ef = {p}o[30:23];",
            f"  wire [23:0] {p}mo = ({p}ef != 8'd0) ? {{1'b1, {p}o[22:0]}} : "
            f"{{1'b0, {p}o[22:0]}};",
            # |v| >= 2**128: sig >= 2**(128 - t)
            f"  wire {p}over = ({p}u <= 0) ? 1'b1 : ({p}u > 12'sd5) ? 1'b0 : "
            f"(({p}sig >> {p}u) != 0);",
            f"  wire signed [11:0] {p}d = $signed({{4'd0, ({p}ef != 8'd0) ? {p}ef : 8'd1}}) "
            f"- 12'sd150 - {p}t;",
            f"  wire [5:0] {p}dl = ({p}d < 0) ? 6'd0 : ({p}d > 12'sd{_CLAMP}) ? 6'd{_CLAMP} : "
            f"6'd0 + {p}d;",
            f"  wire [5:0] {p}dr = ({p}d >= 0) ? 6'd0 : (-{p}d > 12'sd{_CLAMP}) ? "
            f"6'd{_CLAMP} : 6'd0 + (-{p}d);",
            f"  wire [{24 + _CLAMP - 1}:0] {p}lhs = {{{_CLAMP}'d0, {p}mo}} << {p}dl;",
            f"  wire [{24 + _CLAMP - 1}:0] {p}rhs = {{{24 + _CLAMP - 5}'d0, {p}sig}} << {p}dr;",
            f"  wire {p}ok = ({pre}nanx || {p}nan) ? ({p}o == 32'h7FC00000) : "
            f"{p}inf ? ({p}o == {{{p}s, 31'h7F800000}}) : "
            f"({p}sig == 0) ? ({p}o == {{{p}s, 31'd0}}) : "
            f"({p}o[31] != {p}s) ? 1'b0 : "
            f"{p}over ? ({p}o[30:0] == 31'h7F800000) : "
            f"({p}ef != 8'd255) && ({p}lhs == {p}rhs);",
        ]
        conds.append(f"({p}ok)")
    return lines, conds


#: ``--top dequant``.
DEQUANT = Reference(build=_build, outputs=_outputs, stall_cycles=3)
