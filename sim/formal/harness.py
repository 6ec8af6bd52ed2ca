"""Verilog harnesses that compare a generated unit with its arithmetic definition.

A harness instantiates the generated module (ports and payload fields read from its
manifest), computes the reference result combinationally from the same inputs, written from
``docs/arithmetic.md`` and independent of ``hw/``, and states the comparison as immediate
``assert`` statements that Yosys' ``sat -prove-asserts`` proves or refutes.

Two harnesses:

* :func:`streaming_harness`: inputs valid and the output ready in every cycle, reset low.
  The pipeline then moves every cycle, so the reference, delayed by the manifest's
  ``latency`` in a shift register, must equal the output whenever it is valid; and the
  output must be valid from cycle ``latency`` on (so the comparison is not vacuous).
  Every register of both is fed forward, so temporal induction proves this for all time.
* :func:`stall_harness`: input valid, output ready and reset free in every cycle. The
  reference follows transfers: each input transfer pushes the reference result into a
  queue, each output transfer pops it; the output must equal the queue's head, a result
  must be held while it is not taken, and ``a`` and ``b`` transfer together. Checked for a
  bounded number of cycles.
"""

from __future__ import annotations

import math

__all__ = ["HARNESS", "REFERENCES", "HarnessError", "stall_harness", "streaming_harness"]

#: Module name of every harness.
HARNESS = "formal_harness"


class HarnessError(ValueError):
    """The manifest does not describe a unit the harness knows how to check."""


def _field(fields: list[dict], name: str) -> dict:
    for field in fields:
        if field["name"] == name:
            return field
    raise HarnessError(f"payload has no field {name!r}; fields: "
                       f"{', '.join(f['name'] for f in fields)}")


def _slice(signal: str, offset: int, width: int) -> str:
    return f"{signal}[{offset + width - 1}:{offset}]"


def _elements(signal: str, field: dict) -> list[str]:
    """Verilog slices of each element of an array field."""
    stride = field.get("stride", field["width"])
    return [_slice(signal, field["offset"] + i * stride, field["width"])
            for i in range(field.get("count", 1))]


def _dot_reference(manifest: dict, a: str, b: str) -> tuple[list[str], list[tuple[str, int]]]:
    """Reference of ``--top dot``, from the definition (``docs/arithmetic.md``):
    ``S = sum_i P_a,i * P_b,i`` exactly, ``E_out = E_a + E_b``, ``nan = E_a or E_b is the
    all-ones code``.

    ``S`` is computed at ``a_bits + b_bits + ceil(log2 k)`` bits, wide enough for every
    input whatever width the unit chose, and compared with the unit's sum sign-extended:
    a sum too narrow to be exact fails. The products are added in pairs, level by level,
    the order in which the solver finds the proof fastest.

    Returns the Verilog lines and the reference outputs ``(name, width)`` in the order of
    :func:`_dot_outputs`.
    """
    streams = manifest["streams"]
    a_man = _field(streams["a"]["fields"], "mantissa")
    b_man = _field(streams["b"]["fields"], "mantissa")
    a_exp = _field(streams["a"]["fields"], "exponent")
    b_exp = _field(streams["b"]["fields"], "exponent")
    if not (a_man["signed"] and b_man["signed"]):
        raise HarnessError("dot: mantissas must be signed")
    if a_man["count"] != b_man["count"] or a_exp["width"] != b_exp["width"]:
        raise HarnessError("dot: a and b must share block size and exponent width")
    block = a_man["count"]
    width = a_man["width"] + b_man["width"] + max(0, math.ceil(math.log2(block)))
    pbits = a_man["width"] + b_man["width"]  # holds every product exactly
    exp_bits = a_exp["width"]
    lines = [f"  // S = sum of products, {width} bits (exact for every input), pairwise"]
    terms = []
    for i, (x, y) in enumerate(zip(_elements(a, a_man), _elements(b, b_man), strict=True)):
        lines.append(f"  wire signed [{pbits - 1}:0] ref_p{i} = $signed({x}) * $signed({y});")
        terms.append(f"ref_p{i}")
    level = 0
    while len(terms) > 1:
        level += 1
        nxt = []
        for j in range(0, len(terms) - 1, 2):
            name = f"ref_s{level}_{j // 2}"
            lines.append(f"  wire signed [{width - 1}:0] {name} = {terms[j]} + {terms[j + 1]};")
            nxt.append(name)
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
    nan_code = f"{exp_bits}'d{(1 << exp_bits) - 1}"
    ea = _slice(a, a_exp["offset"], exp_bits)
    eb = _slice(b, b_exp["offset"], exp_bits)
    lines += [
        f"  wire signed [{width - 1}:0] ref_sum = {terms[0]};",
        f"  wire [{exp_bits}:0] ref_exponent = {{1'b0, {ea}}} + {{1'b0, {eb}}};",
        f"  wire ref_nan = ({ea} == {nan_code}) || ({eb} == {nan_code});",
    ]
    return lines, [("ref_sum", width), ("ref_exponent", exp_bits + 1), ("ref_nan", 1)]


def _dot_outputs(manifest: dict, o: str, ref: list[str]) -> list[str]:
    """Conditions that the unit's output ``o`` equals the reference values ``ref``."""
    fields = manifest["streams"]["o"]["fields"]
    s, e, nan = (_field(fields, name) for name in ("sum", "exponent", "nan"))
    if not s["signed"]:
        raise HarnessError("dot: the sum must be signed")
    # Both sides signed, so the narrower one is sign-extended (the reference registers
    # that delay ref_sum are declared without a sign).
    return [f"($signed({_slice(o, s['offset'], s['width'])}) == $signed({ref[0]}))",
            f"({_slice(o, e['offset'], e['width'])} == {ref[1]})",
            f"({_slice(o, nan['offset'], 1)} == {ref[2]})"]


#: Reference builders per ``--top``: (reference lines, output comparison).
REFERENCES = {"dot": (_dot_reference, _dot_outputs)}


def _check(manifest: dict) -> tuple:
    top = manifest.get("top")
    if top not in REFERENCES:
        raise HarnessError(f"no formal reference for top {top!r}; known: "
                           f"{', '.join(sorted(REFERENCES))}")
    streams = manifest["streams"]
    if sorted(streams) != ["a", "b", "o"] or streams["o"]["direction"] != "out":
        raise HarnessError(f"{top}: expected input streams a, b and output stream o")
    known = {"clk", "rst"} | {s[k] for s in streams.values()
                              for k in ("payload", "valid", "ready")}
    extra = [p["name"] for p in manifest["ports"] if p["name"] not in known]
    if extra:
        raise HarnessError(f"{top}: ports the harness does not drive: {', '.join(extra)}")
    return REFERENCES[top]


def _instance(manifest: dict, drive: dict[str, str]) -> list[str]:
    """The unit, its ports connected to the harness nets ``drive[port]``."""
    conns = ",\n".join(f"    .{p['name']}({drive[p['name']]})" for p in manifest["ports"])
    return [f"  {manifest['module']} dut (\n{conns}\n  );"]


def _nets(manifest: dict) -> tuple[dict, dict]:
    """Harness net of each unit port (``a__payload`` -> ``a_payload``) and its width."""
    drive = {p["name"]: p["name"].replace("__", "_") for p in manifest["ports"]}
    widths = {p["name"]: p["width"] for p in manifest["ports"]}
    return drive, widths


def _decl(width: int) -> str:
    return f"[{width - 1}:0] " if width > 1 else ""


def streaming_harness(manifest: dict) -> str:
    """Harness with valid inputs, a ready output and no reset in every cycle.

    Asserted in every cycle: the output is valid from cycle ``latency`` on, and when it is
    valid it equals the reference of the inputs ``latency`` cycles earlier.

    Raises
    ------
    HarnessError
        If the manifest's unit has no reference here or unexpected ports.
    """
    reference, outputs = _check(manifest)
    streams = manifest["streams"]
    latency = manifest["latency"]
    drive, widths = _nets(manifest)
    a, b, o = (drive[streams[s]["payload"]] for s in ("a", "b", "o"))
    ins = [drive[streams[s]["payload"]] for s in ("a", "b")]
    lines = [f"module {HARNESS} (",
             "  input clk,",
             ",\n".join(f"  input {_decl(widths[streams[s]['payload']])}{n}"
                        for s, n in zip(("a", "b"), ins, strict=True)),
             ");"]
    o_valid = drive[streams["o"]["valid"]]
    fixed = {drive["rst"]: "1'b0", drive[streams["a"]["valid"]]: "1'b1",
             drive[streams["b"]["valid"]]: "1'b1", drive[streams["o"]["ready"]]: "1'b1"}
    for port in manifest["ports"]:
        net = drive[port["name"]]
        if port["direction"] == "output":
            lines.append(f"  wire {_decl(port['width'])}{net};")
        elif net in fixed:
            lines.append(f"  wire {net} = {fixed[net]};")
    lines += _instance(manifest, drive)
    ref_lines, refs = reference(manifest, a, b)
    lines += ref_lines
    # The reference travels through `latency` registers, like the unit's pipeline.
    delayed = []
    for name, width in refs:
        prev = name
        for stage in range(1, latency + 1):
            reg = f"{name}_d{stage}"
            lines.append(f"  reg {_decl(width)}{reg};")
            lines.append(f"  always @(posedge clk) {reg} <= {prev};")
            prev = reg
        delayed.append(prev)
    cbits = max(1, latency.bit_length())
    lines += [
        f"  // cycles since the start, saturating at latency = {latency}",
        f"  reg [{cbits - 1}:0] cycles;",
        f"  always @(posedge clk) if (cycles != {cbits}'d{latency}) cycles <= cycles + 1'b1;",
        "  always @* begin",
        f"    if (cycles == {cbits}'d{latency}) assert ({o_valid});",
        f"    if ({o_valid}) begin",
    ]
    lines += [f"      assert {cond};" for cond in outputs(manifest, o, delayed)]
    lines += ["    end", "  end", "endmodule", ""]
    return "\n".join(lines)


def stall_harness(manifest: dict) -> str:
    """Harness with free input valid, output ready and reset in every cycle.

    A queue of reference results (depth ``latency + 1``) is pushed on each input transfer
    and popped on each output transfer, and emptied by reset. Asserted in every cycle:
    ``a`` and ``b`` transfer together; the queue never overflows; a valid output has a
    queued result and equals it; an output not taken stays valid and unchanged.

    Raises
    ------
    HarnessError
        As :func:`streaming_harness`.
    """
    reference, outputs = _check(manifest)
    streams = manifest["streams"]
    depth = manifest["latency"] + 1
    drive, widths = _nets(manifest)
    a, b, o = (drive[streams[s]["payload"]] for s in ("a", "b", "o"))
    free = [p for p in manifest["ports"] if p["direction"] == "input"]
    lines = [f"module {HARNESS} (",
             ",\n".join(f"  input {_decl(p['width'])}{drive[p['name']]}" for p in free),
             ");"]
    for port in manifest["ports"]:
        if port["direction"] == "output":
            lines.append(f"  wire {_decl(port['width'])}{drive[port['name']]};")
    lines += _instance(manifest, drive)
    ref_lines, refs = reference(manifest, a, b)
    lines += ref_lines
    clk, rst = drive["clk"], drive["rst"]
    av, ar, bv, br, ov, orr = (drive[streams[s][k]] for s, k in (
        ("a", "valid"), ("a", "ready"), ("b", "valid"), ("b", "ready"),
        ("o", "valid"), ("o", "ready")))
    owidth = widths[streams["o"]["payload"]]
    cbits = depth.bit_length()
    lines += [
        f"  wire push = {av} && {ar};",
        f"  wire pop = {ov} && {orr};",
        f"  reg [{cbits - 1}:0] count;",
    ]
    # One queue per reference output; slot 0 is the head.
    for name, width in refs:
        for slot in range(depth):
            lines.append(f"  reg {_decl(width)}{name}_q{slot};")
    lines += [
        f"  wire [{cbits - 1}:0] tail = count - (pop ? 1'b1 : 1'b0);",
        f"  always @(posedge {clk}) begin",
        f"    if ({rst}) count <= 0;",
        "    else count <= tail + (push ? 1'b1 : 1'b0);",
    ]
    for name, _width in refs:
        for slot in range(depth):
            nxt = f"{name}_q{slot + 1}" if slot + 1 < depth else f"{name}_q{slot}"
            lines.append(f"    if (push && tail == {cbits}'d{slot}) {name}_q{slot} <= {name};"
                         f" else if (pop) {name}_q{slot} <= {nxt};")
    lines += [
        "  end",
        "  // an output not taken must be held",
        "  reg held;",
        f"  reg [{owidth - 1}:0] held_payload;",
        f"  always @(posedge {clk}) begin",
        f"    held <= !{rst} && {ov} && !{orr};",
        f"    held_payload <= {o};",
        "  end",
        "  always @* begin",
        f"    assert (({av} && {ar}) == ({bv} && {br}));",
        f"    assert (count <= {cbits}'d{depth - 1});",
        f"    if (held) assert ({ov} && {o} == held_payload);",
        f"    if ({ov}) begin",
        "      assert (count != 0);",
    ]
    lines += [f"      assert {cond};" for cond in
              outputs(manifest, o, [f"{name}_q0" for name, _ in refs])]
    lines += ["    end", "  end", "endmodule", ""]
    return "\n".join(lines)
