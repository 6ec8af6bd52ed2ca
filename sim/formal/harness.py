"""Verilog harnesses that compare a generated unit with its arithmetic definition.

A harness instantiates the generated module (ports and payload fields read from its
manifest), computes the reference result from the same inputs, written from
``docs/arithmetic.md`` and independent of ``hw/`` (one module ``ref_<unit>.py`` per unit,
named by the unit's registry entry, ``Unit.reference``), and states the comparison as
immediate ``assert`` statements that Yosys' ``sat -prove-asserts`` proves or refutes.

A unit has one output stream ``o`` and one or more input streams, which transfer
together. A stateless unit gives one result per input; a stateful one (an accumulator)
keeps its reference state in harness registers, updated on each input transfer, and gives
a result for the inputs that close a group.

Two harnesses:

* :func:`streaming_harness`: inputs valid and the output ready in every cycle, reset low.
  Every input must be taken in every cycle, so the reference, delayed by the manifest's
  ``latency`` in a shift register, must equal the output whenever it is valid; and from
  cycle ``latency`` on the output must be valid exactly when the delayed reference says a
  result is due (so the comparison is not vacuous). For units whose input flags the end of
  a group, ``group`` bounds the group length: the harness forces the flag on the
  ``group``-th input of a group. With every register fed forward, or reloaded at each
  group's start, temporal induction proves this for all time.
* :func:`stall_harness`: input valid, output ready and reset free in every cycle. The
  reference follows transfers: each input transfer that produces a result pushes it into a
  queue, each output transfer pops it; the output must equal the queue's head, a result
  must be held while it is not taken, and the input streams transfer together. Checked for
  a bounded number of cycles.
"""

from __future__ import annotations

from hw.unit import units

from .ref_common import Context, HarnessError, Reference, decl

__all__ = ["DEFAULT_GROUP", "HARNESS", "HarnessError", "bounded_reason", "reference_of",
           "stall_harness", "streaming_harness"]

#: Module name of every harness.
HARNESS = "formal_harness"

#: Longest group the streaming proof lets through, unless told otherwise.
DEFAULT_GROUP = 3


def _check(manifest: dict) -> tuple[Reference, list[str]]:
    """The unit's reference and its input streams, in manifest order."""
    top = manifest.get("top")
    reference = reference_of(top)
    if reference is None:
        known = ", ".join(key for key, u in units().items() if u.reference is not None)
        raise HarnessError(f"no formal reference for top {top!r}; known: {known}")
    streams = manifest["streams"]
    ins = [name for name, s in streams.items() if s["direction"] == "in"]
    outs = [name for name, s in streams.items() if s["direction"] == "out"]
    if outs != ["o"] or not ins:
        raise HarnessError(f"{top}: expected input streams and one output stream o")
    known = {"clk", "rst"} | {s[k] for s in streams.values()
                              for k in ("payload", "valid", "ready")}
    extra = [p["name"] for p in manifest["ports"] if p["name"] not in known]
    if extra:
        raise HarnessError(f"{top}: ports the harness does not drive: {', '.join(extra)}")
    return reference, ins


def reference_of(top: str | None) -> Reference | None:
    """The formal reference the registry names for unit ``top``, or None."""
    u = units().get(top)
    return None if u is None or u.reference is None else u.load("reference")


def bounded_reason(manifest: dict) -> str | None:
    """``None`` if the streaming proof of this unit closes by induction, else why it is
    checked for a bounded number of cycles only.

    Raises
    ------
    HarnessError
        If the unit has no reference.
    """
    reference, _ = _check(manifest)
    return reference.bounded(manifest)


def _instance(manifest: dict, drive: dict[str, str]) -> list[str]:
    """The unit, its ports connected to the harness nets ``drive[port]``."""
    conns = ",\n".join(f"    .{p['name']}({drive[p['name']]})" for p in manifest["ports"])
    return [f"  {manifest['module']} dut (\n{conns}\n  );"]


def _nets(manifest: dict) -> tuple[dict, dict]:
    """Harness net of each unit port (``a__payload`` -> ``a_payload``) and its width."""
    drive = {p["name"]: p["name"].replace("__", "_") for p in manifest["ports"]}
    widths = {p["name"]: p["width"] for p in manifest["ports"]}
    return drive, widths


def _delay(name: str, width: int, stages: int, clk: str) -> tuple[list[str], str]:
    """``name`` through ``stages`` registers; the lines and the last register."""
    lines, prev = [], name
    for stage in range(1, stages + 1):
        reg = f"{name}_d{stage}"
        lines.append(f"  reg {decl(width)}{reg};")
        lines.append(f"  always @(posedge {clk}) {reg} <= {prev};")
        prev = reg
    return lines, prev


def streaming_harness(manifest: dict, *, group: int = DEFAULT_GROUP) -> str:
    """Harness with valid inputs, a ready output and no reset in every cycle.

    Asserted in every cycle: every input stream is ready; from cycle ``latency`` on the
    output is valid exactly when the reference, ``latency`` cycles earlier, gave a result;
    when it is valid it equals that result.

    Parameters
    ----------
    manifest : dict
        The unit's manifest.
    group : int
        For units whose input flags the end of a group: the flag is forced on the
        ``group``-th input of a group, so no group is longer.

    Raises
    ------
    HarnessError
        If the manifest's unit has no reference here or unexpected ports, or ``group`` is
        below 1.
    """
    reference, ins = _check(manifest)
    if group < 1:
        raise HarnessError(f"group must be at least 1, not {group}")
    streams = manifest["streams"]
    latency = manifest["latency"]
    drive, widths = _nets(manifest)
    clk = drive["clk"]
    payloads = {s: drive[streams[s]["payload"]] for s in ins}
    lines = ["`default_nettype none",
             f"module {HARNESS} (",
             f"  input wire {clk},",
             ",\n".join(f"  input wire {decl(widths[streams[s]['payload']])}{payloads[s]}"
                        for s in ins),
             ");"]
    fixed = {drive["rst"]: "1'b0", drive[streams["o"]["ready"]]: "1'b1"}
    fixed.update({drive[streams[s]["valid"]]: "1'b1" for s in ins})
    for port in manifest["ports"]:
        net = drive[port["name"]]
        if port["direction"] == "output":
            lines.append(f"  wire {decl(port['width'])}{net};")
        elif net in fixed:
            lines.append(f"  wire {net} = {fixed[net]};")
    if reference.last is not None:
        # The unit sees the free payload with its group flag forced on the group-th input.
        stream, name = reference.last
        flag = next(f for f in streams[stream]["fields"] if f["name"] == name)
        port = streams[stream]["payload"]
        free, seen = payloads[stream], f"{payloads[stream]}_g"
        cbits = max(1, group.bit_length())
        lines += [
            f"  // groups of at most {group} inputs: the flag is forced on the last of them",
            f"  reg [{cbits - 1}:0] group_count;",
            f"  wire force_last = group_count >= {cbits}'d{group - 1};",
            f"  wire {decl(widths[port])}{seen} = {free} | "
            f"({{{{{widths[port] - 1}{{1'b0}}}}, force_last}} << {flag['offset']});",
            f"  always @(posedge {clk}) group_count <= {seen}[{flag['offset']}] ? "
            f"{cbits}'d0 : group_count + 1'b1;",
        ]
        payloads[stream] = drive[port] = seen
    lines += _instance(manifest, drive)
    ctx = Context(clk=clk, push="1'b1", rst="1'b0")
    ref_lines, refs, due = reference.build(manifest, payloads, ctx)
    lines += ref_lines
    # The reference travels through `latency` registers, like the unit's pipeline.
    lines.append(f"  wire ref_due = {due};")
    delayed = []
    for name, width in [*refs, ("ref_due", 1)]:
        more, last = _delay(name, width, latency, clk)
        lines += more
        delayed.append(last)
    o_valid = drive[streams["o"]["valid"]]
    check_lines, conds = reference.outputs(manifest, drive[streams["o"]["payload"]],
                                           delayed[:-1])
    lines += check_lines
    cbits = max(1, latency.bit_length())
    lines += [
        f"  // cycles since the start, saturating at latency = {latency}",
        f"  reg [{cbits - 1}:0] cycles;",
        f"  always @(posedge {clk}) if (cycles != {cbits}'d{latency}) "
        f"cycles <= cycles + 1'b1;",
        "  always @* begin",
    ]
    lines += [f"    assert ({drive[streams[s]['ready']]});" for s in ins]
    lines += [
        f"    if (cycles == {cbits}'d{latency}) assert ({o_valid} == {delayed[-1]});",
        f"    if ({o_valid}) begin",
    ]
    lines += [f"      assert {cond};" for cond in conds]
    lines += ["    end", "  end", "endmodule", "`default_nettype wire", ""]
    return "\n".join(lines)


def skids(manifest: dict) -> int:
    """Skid registers between a design's input and output, each of which holds one result
    more (:func:`hw.pipeline.output_stage`): none with ``out_ready="direct"`` (the
    default, not in the manifest); with ``"registered"`` one, or in ``linear`` one per
    sub-unit of a lane (dot product, accumulator, and with ``output="fp32"`` converter)."""
    p = manifest["parameters"]
    if p.get("out_ready", "direct") == "direct":
        return 0
    if manifest["top"] == "linear":
        return 3 if p.get("output") == "fp32" else 2
    return 1


def stall_harness(manifest: dict, *, tied: bool = False) -> str:
    """Harness with free input valid, output ready and reset in every cycle, or, with
    ``tied``, inputs valid, output ready and reset low in every cycle (the streaming check
    of a unit whose result delay is not fixed: results are matched by order, not by time).

    A queue of reference results (depth ``latency + 1``, plus one per skid register of a
    design with ``out_ready="registered"``, :func:`skids`) is pushed on each input transfer
    that gives a result and popped on each output transfer, and emptied by reset (which
    also resets a stateful reference). Asserted in every cycle: the input streams transfer
    together; the queue never overflows; a valid output has a queued result and equals it;
    an output not taken stays valid and unchanged.

    Raises
    ------
    HarnessError
        As :func:`streaming_harness`.
    """
    reference, ins = _check(manifest)
    streams = manifest["streams"]
    depth = manifest["latency"] + 1 + skids(manifest)
    drive, widths = _nets(manifest)
    payloads = {s: drive[streams[s]["payload"]] for s in ins}
    o = drive[streams["o"]["payload"]]
    fixed = {}
    if tied:
        fixed = {drive["rst"]: "1'b0", drive[streams["o"]["ready"]]: "1'b1"}
        fixed.update({drive[streams[s]["valid"]]: "1'b1" for s in ins})
    free = [p for p in manifest["ports"]
            if p["direction"] == "input" and drive[p["name"]] not in fixed]
    lines = ["`default_nettype none",
             f"module {HARNESS} (",
             ",\n".join(f"  input wire {decl(p['width'])}{drive[p['name']]}" for p in free),
             ");"]
    for port in manifest["ports"]:
        net = drive[port["name"]]
        if port["direction"] == "output":
            lines.append(f"  wire {decl(port['width'])}{net};")
        elif net in fixed:
            lines.append(f"  wire {net} = {fixed[net]};")
    lines += _instance(manifest, drive)
    clk, rst = drive["clk"], drive["rst"]
    takes = [f"({drive[streams[s]['valid']]} && {drive[streams[s]['ready']]})" for s in ins]
    ov, orr = drive[streams["o"]["valid"]], drive[streams["o"]["ready"]]
    lines.append(f"  wire push = {takes[0]};")
    ref_lines, refs, due = reference.build(manifest, payloads, Context(clk, "push", rst))
    lines += ref_lines
    check_lines, conds = reference.outputs(manifest, o, [f"{name}_q0" for name, _ in refs])
    owidth = widths[streams["o"]["payload"]]
    cbits = depth.bit_length()
    lines += [
        f"  wire queue_push = push && ({due});",
        f"  wire pop = {ov} && {orr};",
        f"  reg [{cbits - 1}:0] count;",
    ]
    # One queue per reference output; slot 0 is the head.
    for name, width in refs:
        for slot in range(depth):
            lines.append(f"  reg {decl(width)}{name}_q{slot};")
    lines += [
        f"  wire [{cbits - 1}:0] tail = count - (pop ? 1'b1 : 1'b0);",
        f"  always @(posedge {clk}) begin",
        f"    if ({rst}) count <= 0;",
        "    else count <= tail + (queue_push ? 1'b1 : 1'b0);",
    ]
    for name, _width in refs:
        for slot in range(depth):
            nxt = f"{name}_q{slot + 1}" if slot + 1 < depth else f"{name}_q{slot}"
            lines.append(f"    if (queue_push && tail == {cbits}'d{slot}) {name}_q{slot} <= "
                         f"{name}; else if (pop) {name}_q{slot} <= {nxt};")
    lines += [
        "  end",
        *check_lines,
        "  // an output not taken must be held",
        "  reg held;",
        f"  reg [{owidth - 1}:0] held_payload;",
        f"  always @(posedge {clk}) begin",
        f"    held <= !{rst} && {ov} && !{orr};",
        f"    held_payload <= {o};",
        "  end",
        "  always @* begin",
    ]
    lines += [f"    assert ({takes[0]} == {take});" for take in takes[1:]]
    lines += [
        f"    assert (count <= {cbits}'d{depth - 1});",
        f"    if (held) assert ({ov} && {o} == held_payload);",
        f"    if ({ov}) begin",
        "      assert (count != 0);",
    ]
    lines += [f"      assert {cond};" for cond in conds]
    lines += ["    end", "  end", "endmodule", "`default_nettype wire", ""]
    return "\n".join(lines)
