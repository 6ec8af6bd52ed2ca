"""Reference of ``--top adder``, from ``docs/arithmetic.md`` ("Block adder").

Each element is a fixed-point integer ``P`` with ``f`` fraction bits: an MXINT mantissa
(``f = m - 2``) or a minifloat code decoded as the dot product's reference decodes it
(:func:`sim.formal.ref_dot._operand`, from the OCP definition; ``f = bias + M - 1``).
``F = max(f_a, f_b)``, ``I = max(int_bits - f)``, ``W = I + F + G`` (``M + G`` for MXINT);
``X = P << (F - f + G)`` for both blocks; the block with the smaller code is shifted right
arithmetically (floor) by ``d = |E_a - E_b|``; ``S_i`` is the exact sum.
``L = floor(log2(max_i |S_i|))`` (the largest magnitude by comparisons, then its leading
one); ``E = clamp(E_max + L - F - G, 0, 2**e - 2)``, ``s = E - E_max + F + G + 2 - m_out``,
``Q_i = round_shift(S_i, s)`` (a left shift when ``s < 0``), saturated to
``±(2**(m_out-1) - 1)``. All ``S_i = 0``: ``E = 0``, ``Q = 0``; a NaN code in either input,
or an infinity or NaN element code: ``E = 2**e - 1``, ``Q = 0``.
"""

from __future__ import annotations

from golden.minifloat import ELEMENTS

from .ref_common import (
    Context,
    Reference,
    block_outputs,
    round_shift,
    saturate,
    slice_of,
    stream_field,
)
from .ref_dot import _operand

__all__ = ["ADDER"]


def _fraction_bits(params: dict, side: str) -> int:
    """``f`` of an operand: ``m - 2`` for MXINT, ``bias + M - 1`` for a minifloat."""
    element = params.get(f"{side}_element", "int")
    if element == "int":
        return params[f"{side}_bits"] - 2
    return ELEMENTS[element].frac_bits


def _plus(value: int) -> str:
    """``+ 12'sd<value>`` or ``- 12'sd<-value>``: a 12-bit signed constant term."""
    return f"+ 12'sd{value}" if value >= 0 else f"- 12'sd{-value}"


def _build(manifest: dict, ins: dict[str, str], ctx: Context):
    params = manifest["parameters"]
    e = params["exp_bits"]
    mo, g, mode = params["out_bits"], params["guard_bits"], params["rounding"]
    (la, na, wa, sa), (lb, nb, wb, sb) = (_operand(manifest, s, ins[s]) for s in ("a", "b"))
    fa_bits, fb_bits = _fraction_bits(params, "a"), _fraction_bits(params, "b")
    frac = max(fa_bits, fb_bits) + g                  # F + G (M - 2 + G for MXINT)
    xw = max(wa - fa_bits, wb - fb_bits) + frac       # W: X_a, X_b
    sw = xw + 1           # S_i, exact
    nan = (1 << e) - 1
    top = (1 << e) - 2
    ea = slice_of(ins["a"], stream_field(manifest, "a", "exponent")["offset"], e)
    eb = slice_of(ins["b"], stream_field(manifest, "b", "exponent")["offset"], e)
    specials = "".join(f" || {x}" for x in (sa, sb) if x)
    lines = la + lb + [
        f"  wire [{e - 1}:0] ad_ea = {ea};",
        f"  wire [{e - 1}:0] ad_eb = {eb};",
        "  wire ad_a_big = ad_ea >= ad_eb;",
        f"  wire [{e - 1}:0] ad_emax = ad_a_big ? ad_ea : ad_eb;",
        f"  wire [{e - 1}:0] ad_d = ad_a_big ? ad_ea - ad_eb : ad_eb - ad_ea;",
    ]
    for i, (pa, pb) in enumerate(zip(na, nb, strict=True)):
        p = f"ad{i}_"
        lines += [
            f"  wire signed [{xw - 1}:0] {p}xa = $signed({pa}) <<< {frac - fa_bits};",
            f"  wire signed [{xw - 1}:0] {p}xb = $signed({pb}) <<< {frac - fb_bits};",
            f"  wire signed [{sw - 1}:0] {p}s = ad_a_big ? "
            f"$signed({p}xa) + ($signed({p}xb) >>> ad_d) : "
            f"$signed({p}xb) + ($signed({p}xa) >>> ad_d);",
            f"  wire [{sw - 1}:0] {p}mag = {p}s[{sw - 1}] ? -{p}s : {p}s;",
        ]
    k = len(na)
    lines.append(f"  wire [{sw - 1}:0] ad_max0 = ad0_mag;")
    for i in range(1, k):
        lines.append(f"  wire [{sw - 1}:0] ad_max{i} = (ad{i}_mag > ad_max{i - 1}) ? "
                     f"ad{i}_mag : ad_max{i - 1};")
    chain = "0"
    for j in range(sw):
        chain = f"ad_max{k - 1}[{j}] ? {j} : ({chain})"
    # Signed arithmetic on exponents, 12 bits: E_max + L - F - G.
    lines += [
        f"  wire signed [11:0] ad_l = {chain};",
        f"  wire ad_zero = ad_max{k - 1} == {sw}'d0;",
        f"  wire ad_nan = (ad_ea == {e}'d{nan}) || (ad_eb == {e}'d{nan}){specials};",
        f"  wire signed [11:0] ad_eu = $signed({{{12 - e}'d0, ad_emax}}) + ad_l "
        f"- 12'sd{frac};",
        f"  wire [{e - 1}:0] ad_e = (ad_eu < 0) ? {e}'d0 : (ad_eu > 12'sd{top}) ? {e}'d{top} "
        f": ad_eu[{e - 1}:0];",
        f"  wire signed [11:0] ad_sh = $signed({{{12 - e}'d0, ad_e}}) "
        f"- $signed({{{12 - e}'d0, ad_emax}}) {_plus(frac + 2 - mo)};",
        f"  wire [{e - 1}:0] ref_exponent = ad_nan ? {e}'d{nan} : ad_zero ? {e}'d0 : ad_e;",
    ]
    # s >= 2 - m_out: a left shift by at most m_out - 2; s <= W + 2 - m_out < sw.
    smax = sw
    lw = sw + mo
    refs = []
    for i in range(k):
        p = f"ad{i}_"
        lines += [
            f"  wire [5:0] {p}rs = (ad_sh < 0) ? 6'd0 : 6'd0 + ad_sh;",
            f"  wire [5:0] {p}ls = (ad_sh < 0) ? 6'd0 + (-ad_sh) : 6'd0;",
            f"  wire signed [{lw - 1}:0] {p}left = $signed({p}s) <<< {p}ls;",
        ]
        lines += round_shift(f"{p}r_", f"{p}s", sw, f"{p}rs", smax, mode)
        lines.append(f"  wire signed [{lw - 1}:0] {p}val = (ad_sh < 0) ? {p}left : "
                     f"$signed({p}r_out);")
        lines += saturate(p, f"{p}val", lw, mo)
        lines.append(f"  wire signed [{mo - 1}:0] ref_q{i} = (ad_nan || ad_zero) ? {mo}'sd0 : "
                     f"{p}sat;")
        refs.append((f"ref_q{i}", mo))
    return lines, [*refs, ("ref_exponent", e)], "1'b1"


#: ``--top adder``.
ADDER = Reference(build=_build, outputs=block_outputs, stall_cycles=2)
