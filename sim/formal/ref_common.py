"""Pieces shared by the references of :mod:`sim.formal`: manifest lookups, Verilog slices,
and the rounding of ``docs/arithmetic.md`` ("Rounding") written as Verilog.

Every reference is a function of the manifest and the harness nets that returns Verilog
lines; each net it declares starts with a prefix the caller gives, so references can be
instantiated several times (per element, per lane) in one harness.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Context", "HarnessError", "Reference", "block_outputs", "decl", "elements", "field_of",
           "round_shift", "saturate", "slice_of", "stream_field"]


class HarnessError(ValueError):
    """The manifest does not describe a unit the harness knows how to check."""


@dataclass(frozen=True)
class Context:
    """Nets a stateful reference updates its state with.

    Members
    -------
    clk : str
        The clock.
    push : str
        Verilog expression, true in a cycle in which the inputs transfer.
    rst : str
        Verilog expression, true in a cycle in which the state returns to its reset value.
    """

    clk: str
    push: str
    rst: str


@dataclass(frozen=True)
class Reference:
    """How the harness checks one ``--top``.

    Members
    -------
    build : callable
        ``build(manifest, ins, ctx) -> (lines, refs, valid)``: Verilog lines computing the
        reference from the input payload nets ``ins[stream]`` (a stateful reference keeps
        its state in registers clocked by ``ctx``); ``refs`` are the nets ``(name, width)``
        that the output is compared with (after the delay or queue of the harness);
        ``valid`` is a Verilog expression, true when the current input produces an output
        (``"1'b1"`` for a unit with one output per input).
    outputs : callable
        ``outputs(manifest, o, refs) -> (lines, conditions)``: Verilog conditions that the
        output payload ``o`` equals the (delayed) reference nets ``refs``, and the lines
        of the nets they use.
    last : tuple of str, optional
        ``(stream, field)`` of the flag that closes a group, for units whose groups the
        input stream marks: the streaming proof bounds the group length by forcing it.
    bounded : callable, optional
        ``bounded(manifest)``: ``None`` when the streaming proof closes by induction, else
        one line saying why it is only checked for a bounded number of cycles.
    stall_cycles : int
        Cycles beyond the latency that the bounded checks (stall, and a bounded streaming
        check) run unless told otherwise.
    """

    build: Callable
    outputs: Callable
    last: tuple[str, str] | None = None
    bounded: Callable[[dict], str | None] = field(default=lambda manifest: None)
    stall_cycles: int = 8


def field_of(fields: list[dict], name: str) -> dict:
    """The payload field called ``name``."""
    for f in fields:
        if f["name"] == name:
            return f
    raise HarnessError(f"payload has no field {name!r}; fields: "
                       f"{', '.join(f['name'] for f in fields)}")


def stream_field(manifest: dict, stream: str, name: str) -> dict:
    """Field ``name`` of stream ``stream`` of the manifest."""
    streams = manifest["streams"]
    if stream not in streams:
        raise HarnessError(f"{manifest.get('top')}: no stream {stream!r}; streams: "
                           f"{', '.join(sorted(streams))}")
    return field_of(streams[stream]["fields"], name)


def slice_of(signal: str, offset: int, width: int) -> str:
    """``signal[offset + width - 1:offset]``."""
    return f"{signal}[{offset + width - 1}:{offset}]"


def elements(signal: str, f: dict) -> list[str]:
    """Verilog slices of each element of field ``f`` (one for a scalar field)."""
    stride = f.get("stride", f["width"])
    return [slice_of(signal, f["offset"] + i * stride, f["width"])
            for i in range(f.get("count", 1))]


def block_outputs(manifest: dict, o: str, ref: list[str]) -> tuple[list[str], list[str]]:
    """Conditions that an MXINT block output ``o`` (its ``mantissa`` elements, then its
    ``exponent``) equals the reference nets ``ref`` (one per element, then the exponent)."""
    man = stream_field(manifest, "o", "mantissa")
    exp = stream_field(manifest, "o", "exponent")
    conds = [f"({el} == {r})" for el, r in zip(elements(o, man), ref[:-1], strict=True)]
    conds.append(f"({slice_of(o, exp['offset'], exp['width'])} == {ref[-1]})")
    return [], conds


def decl(width: int) -> str:
    """Range of a declaration: ``"[w-1:0] "``, or nothing for one bit."""
    return f"[{width - 1}:0] " if width > 1 else ""


def round_shift(p: str, v: str, vwidth: int, s: str, smax: int, mode: str) -> list[str]:
    """``golden.round_shift(v, s, mode)`` from its table in ``docs/arithmetic.md``, as
    Verilog: ``q = floor(v / 2**s)``, ``r = v - q * 2**s``, ``h = 2**(s - 1)``, and ``q``
    plus one when the mode's condition on ``r``, ``h``, ``q`` and the sign of ``v`` holds.

    ``v`` is a signed net of ``vwidth`` bits, ``s`` an unsigned net with ``0 <= s <=
    smax``; the caller clamps ``s`` at ``smax >= vwidth``, where every mode already gives
    what any larger shift gives (``|v| / 2**s < 1/2``: only the sign is left to round).
    Declares ``{p}q`` (the quotient), ``{p}r``, ``{p}h`` and ``{p}out``, signed
    ``vwidth + 1`` bits.
    """
    if smax < vwidth:
        raise HarnessError(f"round_shift: smax {smax} below the width {vwidth}")
    wide = vwidth + smax + 1  # holds q * 2**s and r exactly
    up = {
        "floor": "1'b0",
        "zero": f"({p}r != 0) && {v}[{vwidth - 1}]",
        "away": f"({s} != 0) && (({p}r > {p}h) || ({p}r == {p}h && !{v}[{vwidth - 1}]))",
        "even": f"({s} != 0) && (({p}r > {p}h) || ({p}r == {p}h && {p}q[0]))",
    }[mode]
    return [
        f"  wire signed [{vwidth - 1}:0] {p}q = $signed({v}) >>> {s};",
        f"  wire signed [{wide - 1}:0] {p}qs = $signed({p}q) <<< {s};",
        f"  wire signed [{wide - 1}:0] {p}r = $signed({v}) - {p}qs;",
        f"  wire signed [{wide - 1}:0] {p}h = ({s} == 0) ? {wide}'sd0 : "
        f"{wide}'sd1 <<< ({s} - 1'b1);",
        f"  wire {p}up = {up};",
        f"  wire signed [{vwidth}:0] {p}out = $signed({p}q) + $signed({{1'b0, {p}up}});",
    ]


def saturate(p: str, v: str, vwidth: int, bits: int) -> list[str]:
    """``{p}sat``: the signed ``vwidth``-bit ``v`` clamped to ``±(2**(bits-1) - 1)``,
    ``bits`` wide (symmetric saturation of ``docs/arithmetic.md``)."""
    top = (1 << (bits - 1)) - 1
    if vwidth <= bits - 1:
        return [f"  wire signed [{bits - 1}:0] {p}sat = $signed({v});"]
    return [
        f"  wire signed [{bits - 1}:0] {p}sat = ($signed({v}) > {vwidth}'sd{top}) ? "
        f"{bits}'sd{top} : ($signed({v}) < -{vwidth}'sd{top}) ? -{bits}'sd{top} : "
        f"{v}[{bits - 1}:0];",
    ]
