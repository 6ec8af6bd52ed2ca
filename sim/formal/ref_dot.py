"""Reference of ``--top dot``, from ``docs/arithmetic.md`` ("Dot product"):
``S = sum_i P_a,i * P_b,i`` exactly, ``E_out = E_a + E_b``, ``nan = E_a or E_b is the
all-ones code``. Also the exact sum of products that the references of ``linear`` and
``intdot`` build on."""

from __future__ import annotations

import math

from .ref_common import Context, HarnessError, Reference, elements, slice_of, stream_field

__all__ = ["DOT", "sum_of_products"]


def sum_of_products(p: str, xs: list[str], xbits: int, ys: list[str], ybits: int
                    ) -> tuple[list[str], str, int]:
    """``{p}sum = sum_i x_i * y_i`` of signed elements, exactly.

    The sum has ``xbits + ybits + ceil(log2 k)`` bits, wide enough for every input. The
    products are added in pairs, level by level, the order in which the solver finds the
    proof fastest (the value does not depend on it).

    Returns the lines, the net and its width.
    """
    block = len(xs)
    width = xbits + ybits + max(0, math.ceil(math.log2(block)))
    pbits = xbits + ybits  # holds every product exactly
    lines = [f"  // {p}sum = sum of products, {width} bits (exact for every input), pairwise"]
    terms = []
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        lines.append(f"  wire signed [{pbits - 1}:0] {p}p{i} = $signed({x}) * $signed({y});")
        terms.append(f"{p}p{i}")
    level = 0
    while len(terms) > 1:
        level += 1
        nxt = []
        for j in range(0, len(terms) - 1, 2):
            name = f"{p}s{level}_{j // 2}"
            lines.append(f"  wire signed [{width - 1}:0] {name} = {terms[j]} + {terms[j + 1]};")
            nxt.append(name)
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
    lines.append(f"  wire signed [{width - 1}:0] {p}sum = {terms[0]};")
    return lines, f"{p}sum", width


def _minifloat(p: str, signal: str, f: dict, element
               ) -> tuple[list[str], list[str], int, str]:
    """Each code's fixed-point integer, from the definition in docs/arithmetic.md
    ("Minifloat operands"): ``P = (-1)**s * g << x``, ``g = (e != 0) * 2**M + m``,
    ``x = max(e - 1, 0)``, 0 for an infinity or NaN code; and whether any code is one.

    Returns the lines, the nets, their width and the "some code is special" net."""
    man, eb, w = element.man_bits, element.exp_bits, element.int_bits
    top = (1 << eb) - 1
    lines, nets, specials = [], [], []
    stride = f.get("stride", f["width"])
    for i in range(f["count"]):
        n, lsb = f"{p}{i}", f["offset"] + i * stride
        lines += [
            f"  wire [{eb - 1}:0] {n}_e = {slice_of(signal, lsb + man, eb)};",
            f"  wire [{man - 1}:0] {n}_m = {slice_of(signal, lsb, man)};",
            f"  wire {n}_s = {signal}[{lsb + man + eb}];",
            f"  wire [{w - 1}:0] {n}_g = {{{w - man - 1}'d0, {n}_e != 0, {n}_m}};",
            f"  wire [{w - 1}:0] {n}_mag = {n}_e == 0 ? {n}_g : {n}_g << ({n}_e - 1);",
        ]
        if element.specials == "ieee":
            lines.append(f"  wire {n}_sp = {n}_e == {eb}'d{top};")
        elif element.specials == "nan":
            lines.append(f"  wire {n}_sp = {n}_e == {eb}'d{top} && {n}_m == {man}'d"
                         f"{(1 << man) - 1};")
        else:
            lines.append(f"  wire {n}_sp = 1'b0;")
        lines.append(f"  wire signed [{w - 1}:0] {n}_p = {n}_sp ? {w}'sd0 : "
                     f"({n}_s ? -$signed({n}_mag) : $signed({n}_mag));")
        nets.append(f"{n}_p")
        specials.append(f"{n}_sp")
    return lines, nets, w, " || ".join(specials)


def _operand(manifest: dict, side: str, signal: str):
    """``(lines, element nets, width, special net or None)`` of one operand."""
    from golden.minifloat import ELEMENTS

    element = manifest.get("parameters", {}).get(f"{side}_element", "int")
    if element == "int":
        f = stream_field(manifest, side, "mantissa")
        if not f["signed"]:
            raise HarnessError("dot: mantissas must be signed")
        return [], elements(signal, f), f["width"], None
    f = stream_field(manifest, side, "codes")
    return _minifloat(f"ref_{side}", signal, f, ELEMENTS[element])


def _build(manifest: dict, ins: dict[str, str], ctx: Context):
    a, b = ins["a"], ins["b"]
    (la, xa, wa, sa), (lb, xb, wb, sb) = (_operand(manifest, s, ins[s]) for s in ("a", "b"))
    a_exp, b_exp = (stream_field(manifest, s, "exponent") for s in ("a", "b"))
    if len(xa) != len(xb) or a_exp["width"] != b_exp["width"]:
        raise HarnessError("dot: a and b must share block size and exponent width")
    lines, total, width = sum_of_products("ref_", xa, wa, xb, wb)
    lines = la + lb + lines
    exp_bits = a_exp["width"]
    nan_code = f"{exp_bits}'d{(1 << exp_bits) - 1}"
    ea = slice_of(a, a_exp["offset"], exp_bits)
    eb = slice_of(b, b_exp["offset"], exp_bits)
    specials = "".join(f" || {x}" for x in (sa, sb) if x)
    lines += [
        f"  wire [{exp_bits}:0] ref_exponent = {{1'b0, {ea}}} + {{1'b0, {eb}}};",
        f"  wire ref_nan = ({ea} == {nan_code}) || ({eb} == {nan_code}){specials};",
    ]
    return lines, [(total, width), ("ref_exponent", exp_bits + 1), ("ref_nan", 1)], "1'b1"


def _outputs(manifest: dict, o: str, ref: list[str]) -> tuple[list[str], list[str]]:
    s, e, nan = (stream_field(manifest, "o", name) for name in ("sum", "exponent", "nan"))
    if not s["signed"]:
        raise HarnessError("dot: the sum must be signed")
    # Both sides signed, so the narrower one is sign-extended (the reference registers
    # that delay the sum are declared without a sign).
    return [], [f"($signed({slice_of(o, s['offset'], s['width'])}) == $signed({ref[0]}))",
                f"({slice_of(o, e['offset'], e['width'])} == {ref[1]})",
                f"({slice_of(o, nan['offset'], 1)} == {ref[2]})"]


#: ``--top dot``.
DOT = Reference(build=_build, outputs=_outputs)
