"""Proof of a bit-heap dot product piece by piece, checked against a certificate.

Comparing the heap's whole sum with ``sum_i a_i * b_i`` is the hard case for a SAT solver
(two different compressor structures of many multiplications) and does not finish beyond
about 16 operand bits. This module proves the same statement in two parts:

1. **Local lemmas, by Yosys' ``sat`` on the generated Verilog.** The generator records what
   it built (:attr:`hw.bitheap.SumOfProducts.certificate`): each tile, counter, ternary
   adder, register and the final adder, by signal name, with the heap column of every bit
   it reads and writes. Every tile and adder output is made a *cut point* (``expose
   -cut``: its readers see a free input instead of it), and registers and the final sum
   are exposed as outputs; a harness then asserts, for all values of the cut inputs:

   * each tile signal equals ``A * B - lo`` of the chunks ``A``, ``B`` of the operands the
     certificate names (computed here with Verilog ``*``, from the manifest's fields);
   * each counter or adder: the weighted sum of its outputs equals the weighted sum of its
     inputs modulo ``2**(width - c)`` (``c`` its lowest column), which is the heap's
     arithmetic modulo ``2**width`` scaled by ``2**c``;
   * each register holds, one cycle later, the bits it is said to load;
   * the final adder's signal is the weighted sum of the bits left;
   * the output's ``sum`` is the result bits, sign-extended;
   * and, as in the streaming harness, ``o.valid`` from cycle ``latency`` on and the
     exponent and NaN flag equal their definitions ``latency`` cycles later.

   Each lemma involves a few signals, so the solver proves them all in seconds, for all
   time (``sat -tempinduct``, inputs valid and output ready in every cycle).
2. **The composition, in Python (:func:`check_certificate`).** The certificate is a claim,
   not a premise: the checker verifies that the chunks of each product cover its operands
   (the top chunk signed, the others unsigned), that the constant is the tiles' offsets,
   that every step consumes each bit of the heap exactly once at the column it has and
   produces bits at the columns the lemmas weigh them by, that the registers add up to the
   manifest's latency and that the result has one bit per column. With the lemmas this
   gives ``sum(t) = sum_i a_i(t - latency) * b_i(t - latency)`` modulo ``2**width``, and
   exactly, because the range of the sum fits ``width`` bits (also checked).

A wrong tile table, a wrong counter table, a bit wired to another column or dropped, or a
wrong certificate fails one of the two parts; the lemma that fails comes back with a
counterexample.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from hw.generate import Design

from .harness import HARNESS, _nets
from .ref_common import Context, HarnessError, field_of
from .ref_dot import DOT
from .yosys import READ_CELL_MODELS, ProofResult, counterexample, run_yosys, write_design

__all__ = ["CertificateError", "check_certificate", "control_harness", "identity_harness",
           "lemma_harness", "prove_chained", "prove_heap", "words_harness"]

#: Suffix of the free input that replaces a cut signal for its readers.
CUT = "__i"


class CertificateError(HarnessError):
    """The certificate does not describe a correct heap (the proof fails)."""


def _bit(ref: list) -> tuple:
    return (ref[0], int(ref[1]))


def _order(item: tuple) -> tuple:
    """Sort key of a heap item ``((signal or None, index), column)``."""
    (name, index), col = item
    return (col, name or "", index)


def _tile_bit(tile: dict, j: int) -> tuple:
    """Bit ``j`` of a tile's value: of its signal, or its ``j``-th one-bit signal when the
    certificate names them (``bits``: a chain of carry cells, one output each)."""
    return (tile["bits"][j], 0) if "bits" in tile else (tile["signal"], j)


def _tile_value(tile: dict) -> str:
    """The tile's value as a Verilog expression of the signals holding it."""
    if "bits" not in tile:
        return tile["signal"]
    return "{" + ", ".join(reversed(tile["bits"][:tile["width"]])) + "}"


def _chunks_cover(chunks: list[tuple], bits: int, what: str) -> None:
    """The chunks ``(lsb, width, signed)`` tile ``bits`` bits, only the top one signed."""
    pos = 0
    for lsb, width, signed in sorted(chunks):
        if lsb != pos or width < 1:
            raise CertificateError(f"{what}: chunks {sorted(chunks)} do not tile {bits} bits")
        pos += width
        if bool(signed) != (pos == bits):
            raise CertificateError(f"{what}: the chunk at bit {lsb} should be "
                                   f"{'signed' if pos == bits else 'unsigned'}")
    if pos != bits:
        raise CertificateError(f"{what}: chunks {sorted(chunks)} do not tile {bits} bits")


def check_certificate(cert: dict, *, a_bits: int, b_bits: int, block: int,
                      latency: int) -> list[tuple]:
    """Check that the certificate's steps compose to ``sum_i a_i * b_i`` (part 2 above)
    and list the lemmas that part 1 must prove.

    The heap is followed as a multiset of ``(bit, column)``, where a bit is ``(signal,
    index)`` or ``(None, 1)`` for a constant one. Its value, the sum of ``bit * 2**column``
    modulo ``2**width``, is what every step preserves (given its lemma).

    Returns
    -------
    list of tuple
        ``("tile", tile)``, ``("adder", inputs, outputs, lowest column)``,
        ``("register", signal, sources)``, ``("sum", signal, bits)`` and
        ``("result", bits)``, with ``bits``/``inputs``/``outputs`` lists of
        ``(bit, column)``.

    Raises
    ------
    CertificateError
        Naming the first thing that does not add up.
    """
    w = cert["width"]
    a_min, b_min = -(1 << (a_bits - 1)), -(1 << (b_bits - 1))
    a_max, b_max = -a_min - 1, -b_min - 1
    products = (a_min * b_min, a_min * b_max, a_max * b_min, a_max * b_max)
    lo_sum, hi_sum = block * min(products), block * max(products)
    if lo_sum < -(1 << (w - 1)) or hi_sum >= 1 << (w - 1):
        raise CertificateError(f"the sum's range [{lo_sum}, {hi_sum}] does not fit {w} bits")
    lemmas: list[tuple] = []
    tiles = cert["tiles"]
    offsets = 0
    for i in range(block):
        mine = [t for t in tiles if t["product"] == i]
        a_chunks = sorted({tuple(t["a"]) for t in mine})
        b_chunks = sorted({tuple(t["b"]) for t in mine})
        _chunks_cover(a_chunks, a_bits, f"product {i}, operand a")
        _chunks_cover(b_chunks, b_bits, f"product {i}, operand b")
        pairs = Counter((tuple(t["a"]), tuple(t["b"])) for t in mine)
        if sorted(pairs) != [(x, y) for x in a_chunks for y in b_chunks] or \
                max(pairs.values()) != 1:
            raise CertificateError(f"product {i}: the tiles are not every chunk pair once")
        for t in mine:
            if t["shift"] != t["a"][0] + t["b"][0]:
                raise CertificateError(f"tile {t['signal']}: shift {t['shift']} is not the "
                                       f"chunks' weight {t['a'][0] + t['b'][0]}")
            offsets += t["lo"] << t["shift"]
            lemmas.append(("tile", t))
    if any(not 0 <= t["product"] < block for t in tiles):
        raise CertificateError("a tile names a product outside the block")
    if cert["const"] % (1 << w) != offsets % (1 << w):
        raise CertificateError(f"the constant {cert['const']} is not the tiles' offsets "
                               f"{offsets % (1 << w)} (mod 2**{w})")
    heap: Counter = Counter()
    for t in tiles:
        for j in range(t["width"]):
            if t["shift"] + j < w:
                heap[(_tile_bit(t, j), t["shift"] + j)] += 1
    for c in range(w):
        if cert["const"] >> c & 1:
            heap[((None, 1), c)] += 1

    def take(ref: list, col: int, what: str) -> tuple:
        item = (_bit(ref), col)
        if heap[item] < 1:
            raise CertificateError(f"{what} reads {ref} at column {col}, which is not in the "
                                   "heap there")
        heap[item] -= 1
        return item

    registers = 0
    for step in cert["steps"]:
        kind = step["kind"]
        if kind == "adders":
            for adder in step["adders"]:
                ins = [take(ref, col, "an adder") for ref, col in adder["inputs"]
                       if ref[0] is not None or ref[1]]
                outs = [(_bit(ref), col) for ref, col in adder["outputs"]]
                if any(ref[0] is None for ref, _ in outs) or \
                        any(not 0 <= col < w for _, col in outs):
                    raise CertificateError(f"adder outputs {adder['outputs']} are not signal "
                                           f"bits within {w} columns")
                lowest = min(col for _, col in ins + outs)
                lemmas.append(("adder", ins, outs, lowest))
                heap.update(outs)
        elif kind == "registers":
            registers += 1
            loaded = []
            for reg in step["registers"]:
                sources = [take(ref, col, f"register {reg['signal']}")
                           for ref, col in reg["bits"]]
                lemmas.append(("register", reg["signal"], sources))
                loaded += [((reg["signal"], j), col) for j, (_, col) in enumerate(sources)]
            left = sorted((item for item, n in heap.items() if n and item[0][0] is not None),
                          key=_order)
            if left:
                raise CertificateError(f"bits no register loads: {left[:3]}")
            heap.update(loaded)
        elif kind == "sum":
            bits = sorted((item for item, n in heap.items() for _ in range(n)), key=_order)
            lemmas.append(("sum", step["signal"], bits))
            heap = Counter({((step["signal"], j), j): 1 for j in range(w)})
        else:
            raise CertificateError(f"unknown step {kind!r}")
    if registers != latency:
        raise CertificateError(f"{registers} register stages, but the latency is {latency}")
    result = cert["result"]
    if len(result) != w:
        raise CertificateError(f"the result has {len(result)} columns, not {w}")
    want = Counter((_bit(ref), col) for col, ref in enumerate(result)
                   if ref[0] is not None or ref[1])
    have = Counter({item: n for item, n in heap.items() if n})
    if have != want:
        raise CertificateError(f"the result {sorted(want, key=_order)[:3]}... is not the heap's "
                               f"last bits {sorted(have, key=_order)[:3]}...")
    lemmas.append(("result", sorted(want, key=_order)))
    return lemmas


def _signals(lemmas: list[tuple]) -> tuple[dict, set]:
    """Width of every signal the lemmas name, and those that are cut (tile and adder
    outputs: their readers get a free input)."""
    widths: dict[str, int] = {}
    cut: set[str] = set()

    def note(name: str, bit: int) -> None:
        widths[name] = max(widths.get(name, 0), bit + 1)

    for lemma in lemmas:
        if lemma[0] == "tile":
            t = lemma[1]
            for j in range(t["width"]):
                name, bit = _tile_bit(t, j)
                note(name, bit)
                cut.add(name)
        elif lemma[0] == "adder":
            for (name, bit), _ in lemma[2]:
                note(name, bit)
                cut.add(name)
        elif lemma[0] == "register":
            note(lemma[1], len(lemma[2]) - 1)
        elif lemma[0] == "sum":
            note(lemma[1], max((col for _, col in lemma[2]), default=0))
    return widths, cut


def _header(manifest: dict, extra_inputs: list[str]) -> tuple[list[str], dict, str, str, str]:
    """Module header and unit nets of a harness with valid inputs, a ready output and no
    reset in every cycle; the payloads and ``extra_inputs`` are free inputs."""
    streams = manifest["streams"]
    drive, port_widths = _nets(manifest)
    a, b, o = (drive[streams[s]["payload"]] for s in ("a", "b", "o"))
    inputs = ["  input clk",
              f"  input [{port_widths[streams['a']['payload']] - 1}:0] {a}",
              f"  input [{port_widths[streams['b']['payload']] - 1}:0] {b}", *extra_inputs]
    lines = [f"module {HARNESS} (", ",\n".join(inputs), ");"]
    fixed = {drive["rst"]: "1'b0", drive[streams["a"]["valid"]]: "1'b1",
             drive[streams["b"]["valid"]]: "1'b1", drive[streams["o"]["ready"]]: "1'b1"}
    for port in manifest["ports"]:
        net = drive[port["name"]]
        if port["direction"] == "output":
            lines.append(f"  wire [{port['width'] - 1}:0] {net};")
        elif net in fixed:
            lines.append(f"  wire {net} = {fixed[net]};")
    return lines, drive, a, b, o


def lemma_harness(manifest: dict, lemmas: list[tuple], heap_width: int) -> str:
    """The harness of part 1: the unit with its heap signals exposed (:func:`_script`),
    every lemma an assertion.

    Checked by :func:`prove_heap` in the second of two cycles from an arbitrary state, so
    each lemma holds in every cycle after the first: a register lemma says what the
    register holds one cycle after its sources, the others hold within a cycle.
    """
    widths, cut = _signals(lemmas)
    cut_inputs = [f"  input [{widths[n] - 1}:0] {n}{CUT}" for n in sorted(cut)]
    lines, drive, a, b, o = _header(manifest, cut_inputs)
    streams = manifest["streams"]
    for name in sorted(widths):
        lines.append(f"  wire [{widths[name] - 1}:0] {name};")
    conns = [f"    .{p['name']}({drive[p['name']]})" for p in manifest["ports"]]
    conns += [f"    .{n}({n})" for n in sorted(widths)]
    conns += [f"    .{n}{CUT}({n}{CUT})" for n in sorted(cut)]
    lines.append(f"  {manifest['module']} dut (\n" + ",\n".join(conns) + "\n  );")

    def read(bit: tuple) -> str:
        """A heap bit as its readers see it: the free input of a cut signal."""
        name, index = bit
        if name is None:
            return "1'b1"
        return f"{name}{CUT}[{index}]" if name in cut else f"{name}[{index}]"

    def drove(bit: tuple) -> str:
        """A heap bit as its driver makes it."""
        return f"{bit[0]}[{bit[1]}]"

    def weighted(items: list[tuple], lowest: int, width: int, side) -> str:
        terms = [f"(({width}'d0 + {side(bit)}) << {col - lowest})" for bit, col in items]
        return " + ".join(terms) if terms else f"{width}'d0"

    man = {s: field_of(streams[s]["fields"], "mantissa") for s in ("a", "b")}
    asserts: list[str] = []
    for n, lemma in enumerate(lemmas):
        kind = lemma[0]
        if kind == "tile":
            t = lemma[1]
            width = t["a"][1] + t["b"][1] + 3
            chunks = []
            for net, field, (lsb, cw, signed) in ((a, man["a"], t["a"]), (b, man["b"], t["b"])):
                base = field["offset"] + t["product"] * field.get("stride", field["width"])
                bits = f"{net}[{base + lsb + cw - 1}:{base + lsb}]"
                chunks.append(f"$signed({bits})" if signed else f"$signed({{1'b0, {bits}}})")
            lines += [f"  wire signed [{width - 1}:0] lemma{n}_ref = {chunks[0]} * "
                      f"{chunks[1]} - ({t['lo']});",
                      f"  wire signed [{width - 1}:0] lemma{n}_dut = "
                      f"{{1'b0, {_tile_value(t)}}};"]
            asserts.append(f"lemma{n}_dut == lemma{n}_ref")
        elif kind == "adder":
            _, ins, outs, lowest = lemma
            span = heap_width - lowest
            lines += [f"  wire [{span - 1}:0] lemma{n}_in = {weighted(ins, lowest, span, read)};",
                      f"  wire [{span - 1}:0] lemma{n}_out = "
                      f"{weighted(outs, lowest, span, drove)};"]
            asserts.append(f"lemma{n}_in == lemma{n}_out")
        elif kind == "register":
            _, signal, sources = lemma
            src = ", ".join(read(bit) for bit, _ in reversed(sources))
            lines += [f"  reg [{len(sources) - 1}:0] lemma{n}_past;",
                      f"  always @(posedge clk) lemma{n}_past <= {{{src}}};"]
            asserts.append(f"{signal} == lemma{n}_past")
        elif kind == "sum":
            _, signal, bits = lemma
            lines.append(f"  wire [{heap_width - 1}:0] lemma{n}_sum = "
                         f"{weighted(bits, 0, heap_width, read)};")
            asserts.append(f"{signal} == lemma{n}_sum")
        elif kind == "result":
            by_col = {col: bit for bit, col in lemma[1]}
            vec = ", ".join(read(by_col[c]) if c in by_col else "1'b0"
                            for c in reversed(range(heap_width)))
            field = field_of(streams["o"]["fields"], "sum")
            o_sum = f"{o}[{field['offset'] + field['width'] - 1}:{field['offset']}]"
            lines.append(f"  wire signed [{heap_width - 1}:0] lemma{n}_result = {{{vec}}};")
            asserts.append(f"$signed({o_sum}) == lemma{n}_result")
    lines += ["  always @* begin", *(f"    assert ({cond});" for cond in asserts),
              "  end", "endmodule", ""]
    return "\n".join(lines)


def control_harness(manifest: dict) -> str:
    """The streaming harness without the sum: ``o.valid`` from cycle ``latency`` on, and the
    exponent and NaN flag equal to their definitions ``latency`` cycles earlier (the heap,
    which nothing here observes, is optimised away)."""
    latency = manifest["latency"]
    lines, drive, a, b, o = _header(manifest, [])
    lines.append(f"  {manifest['module']} dut (\n" + ",\n".join(
        f"    .{p['name']}({drive[p['name']]})" for p in manifest["ports"]) + "\n  );")
    ref_lines, refs, _ = DOT.build(manifest, {"a": a, "b": b},
                                   Context(clk="clk", push="1'b1", rst="1'b0"))
    lines += ref_lines
    delayed = []
    for name, width in refs[1:]:
        prev = name
        for stage in range(1, latency + 1):
            lines += [f"  reg [{width - 1}:0] {name}_d{stage};",
                      f"  always @(posedge clk) {name}_d{stage} <= {prev};"]
            prev = f"{name}_d{stage}"
        delayed.append(prev)
    out_lines, conds = DOT.outputs(manifest, o, ["1'b0", *delayed])
    lines += out_lines
    cbits = max(1, latency.bit_length())
    o_valid = drive[manifest["streams"]["o"]["valid"]]
    lines += [f"  reg [{cbits - 1}:0] cycles;",
              f"  always @(posedge clk) if (cycles != {cbits}'d{latency}) "
              "cycles <= cycles + 1'b1;",
              "  always @* begin",
              f"    if (cycles == {cbits}'d{latency}) assert ({o_valid});",
              *(f"    if ({o_valid}) assert {cond};" for cond in conds[1:]),
              "  end", "endmodule", ""]
    return "\n".join(lines)


def _lemma_script(design: Design, widths: dict, cut: set) -> str:
    module = design.manifest["module"]
    reads = [READ_CELL_MODELS] if design.manifest.get("cell_library") else []
    cuts = " ".join(f"{module}/w:{name}" for name in sorted(cut))
    keep = " ".join(f"{module}/w:{name}" for name in sorted(set(widths) - cut))
    return "\n".join(reads + [
        "read_verilog dut.v",
        f"hierarchy -top {module}",
        "proc -norom",
        # opt_clean first: expose -cut of several wires that still have aliases can cut
        # the wrong side (seen with Yosys 0.60).
        "opt_clean",
        *([f"expose -cut -sep {CUT[:-1]} {cuts}"] if cuts else []),
        *([f"expose {keep}"] if keep else []),
        "read_verilog -sv -formal lemmas.v",
        f"hierarchy -check -top {HARNESS}",
        "proc -norom", "chformal -lower", "flatten", "opt",
        # Two cycles from an arbitrary state (no -set-init-*), asserted in the second.
        "sat -seq 2 -prove-skip 1 -prove-asserts -verify -show-inputs -dump_vcd lemmas.vcd",
    ]) + "\n"


def _control_script(design: Design, steps: int) -> str:
    reads = [READ_CELL_MODELS] if design.manifest.get("cell_library") else []
    return "\n".join(reads + [
        "read_verilog dut.v", "read_verilog -sv -formal control.v",
        f"hierarchy -check -top {HARNESS}",
        "proc -norom", "chformal -lower", "flatten", "opt",
        f"sat -tempinduct -maxsteps {steps} -prove-asserts -set-init-zero -verify "
        "-show-inputs -dump_vcd control.vcd",
    ]) + "\n"


def prove_heap(design: Design, *, timeout: float = 120.0, steps: int | None = None,
               workdir: Path) -> ProofResult:
    """Prove a heap ``dot`` unit equal to its definition for all time, in the two parts of
    the module notes (streaming: inputs valid and output ready in every cycle).

    Parameters
    ----------
    design : Design
        From :func:`hw.generate.elaborate` with ``arch="heap"`` (elaborated, so that its
        certificate exists).
    timeout : float
        Seconds for the whole proof.
    steps : int, optional
        Largest induction length of the control proof (default ``latency + 2``).
    workdir : Path
        Where the harnesses, scripts, logs and a counterexample's VCD go.

    Returns
    -------
    ProofResult
        ``PROVED``; ``FAILED`` with the reason when the certificate does not add up, or
        with a counterexample when a lemma or the control part fails; ``TIMEOUT``.

    Raises
    ------
    HarnessError
        If the design is not a heap dot product.
    ToolError
        If Yosys is missing or stops without a verdict.
    """
    manifest = design.manifest
    sop = getattr(design.component, "sum_of_products", None)
    if manifest.get("top") != "dot" or sop is None or sop.arch != "heap":
        raise HarnessError("the piecewise proof is for --top dot --arch heap")
    latency = manifest["latency"]
    if steps is None:
        steps = latency + 2
    workdir = Path(workdir)
    start = time.monotonic()
    try:
        lemmas = check_certificate(sop.certificate, a_bits=sop.a_bits, b_bits=sop.b_bits,
                                   block=sop.block, latency=latency)
    except CertificateError as exc:
        return ProofResult("FAILED", time.monotonic() - start, "streaming", steps,
                           f"streaming: the heap's certificate does not add up: {exc}")
    widths, cut = _signals(lemmas)
    write_design(design, workdir)
    (workdir / "lemmas.v").write_text(lemma_harness(manifest, lemmas, sop.width),
                                      encoding="utf-8")
    (workdir / "lemmas.ys").write_text(_lemma_script(design, widths, cut), encoding="utf-8")
    (workdir / "control.v").write_text(control_harness(manifest), encoding="utf-8")
    (workdir / "control.ys").write_text(_control_script(design, steps), encoding="utf-8")
    pieces = f"{len(lemmas)} lemmas on {len(cut)} cut signals"
    failed = _run_parts(workdir, {
        "control": "valid, exponent or NaN fails", "lemmas": "a lemma fails"},
        manifest=manifest, steps=steps, start=start, timeout=timeout)
    if failed is not None:
        return failed
    return ProofResult("PROVED", time.monotonic() - start, "streaming", steps,
                       f"streaming: for all time, piecewise ({pieces}; the certificate "
                       "adds up)", log=workdir / "lemmas.log")


def _run_parts(workdir: Path, parts: dict[str, str], *, manifest: dict, steps: int,
               start: float, timeout: float) -> ProofResult | None:
    """Run the Yosys scripts ``<part>.ys`` in order, within what is left of ``timeout``
    since ``start``; the first that fails or times out gives the proof's result (``parts``
    maps each part to what its failure means), None when every part holds."""
    for part, what in parts.items():
        left = timeout - (time.monotonic() - start)
        log_path = workdir / f"{part}.log"
        status, log = (run_yosys(workdir, f"{part}.ys", log_path, left) if left > 0
                       else ("TIMEOUT", ""))
        if status == "TIMEOUT":
            return ProofResult("TIMEOUT", time.monotonic() - start, "streaming", steps,
                               f"streaming: no verdict within {timeout:g} s ({part})",
                               log=log_path)
        if status == "FAILED":
            vcd = workdir / f"{part}.vcd"
            cex = counterexample(log, manifest) if "model found" in log else []
            detail = (f"streaming: {what}; counterexample in {len(cex)} cycles" if cex else
                      f"streaming: {what}; the induction did not close within {steps} "
                      "cycles")
            return ProofResult("FAILED", time.monotonic() - start, "streaming", steps,
                               detail, cex, log_path, vcd if vcd.exists() else None)
    return None


# Chained words (hw/placement.py notes 11-12): the proof cut at each MAC's word.


def _word_checks(cert: dict, *, block: int, latency: int) -> list[dict]:
    """The certificate's words, checked to be one per product, each within the latency."""
    words = cert.get("words")
    if not words:
        raise CertificateError("the certificate names no words (not chained words)")
    if sorted(w["product"] for w in words) != list(range(block)):
        raise CertificateError(f"the words are of products {sorted(w['product'] for w in words)}"
                               f", not each of the {block} once")
    for w in words:
        if not 0 <= w["delay"] <= latency:
            raise CertificateError(f"word {w['signal']}: delay {w['delay']} outside "
                                   f"0 .. {latency}")
    return sorted(words, key=lambda w: w["product"])


def _delayed(lines: list[str], net: str, width: int, cycles: int) -> str:
    """``net`` ``cycles`` cycles earlier, through harness registers."""
    prev = net
    for stage in range(1, cycles + 1):
        lines += [f"  reg [{width - 1}:0] {net}_d{stage};",
                  f"  always @(posedge clk) {net}_d{stage} <= {prev};"]
        prev = f"{net}_d{stage}"
    return prev


def _word_value(word: str, sign: str, width: int, total: int) -> str:
    """``y + s - s 2**F`` of a word ``y`` of ``F = width`` bits, signed at ``total`` bits."""
    return (f"($signed({{{total - width}'d0, {word}}}) + $signed({{{total - 1}'d0, {sign}}}) - "
            f"($signed({{{total - 1}'d0, {sign}}}) <<< {width}))")


def _factored(i: int, total: int) -> list[str]:
    """``chk_p{i} = (-1)**(s_a ^ s_b) (g_a g_b) << (x_a + x_b)`` of product ``i``, from the
    fields the dot reference decodes (:mod:`.ref_dot`: ``g``, ``e``, ``s``, ``sp``), 0 when
    a code is special; :func:`identity_harness` proves it equal to ``P_a * P_b``."""
    a, b = f"ref_a{i}", f"ref_b{i}"
    return [f"  wire [{total - 1}:0] chk_gg{i} = {a}_g * {b}_g;",
            f"  wire [{total - 1}:0] chk_q{i} = ({a}_sp || {b}_sp) ? {total}'d0 : "
            f"chk_gg{i} << (({a}_e == 0 ? 0 : {a}_e - 1) + ({b}_e == 0 ? 0 : {b}_e - 1));",
            f"  wire signed [{total - 1}:0] chk_p{i} = ({a}_s ^ {b}_s) ? "
            f"-$signed(chk_q{i}) : $signed(chk_q{i});"]


def identity_harness(manifest: dict, total: int) -> str:
    """No unit: for every pair of codes, the factored product of :func:`_factored` equals
    ``P_a * P_b`` of the dot reference's decoded codes. Product 0 only: every product's
    lines are the same text but for the bits they slice."""
    from .ref_dot import _operand
    lines, drive, a, b, o = _header(manifest, [])
    lines = [line for line in lines if not line.startswith("  wire ") or " = " in line]
    (la, pa, _, _), (lb, pb, _, _) = (_operand(manifest, s, n) for s, n in
                                      (("a", a), ("b", b)))
    lines += la + lb
    lines += [*_factored(0, total),
              f"  wire signed [{total - 1}:0] chk_r0 = $signed({pa[0]}) * $signed({pb[0]});",
              "  always @* begin", "    assert (chk_p0 == chk_r0);", "  end", "endmodule", ""]
    return "\n".join(lines)


def _exp_bits(manifest: dict, side: str) -> int:
    """Exponent bits of operand ``side``'s minifloat element."""
    from golden.minifloat import ELEMENTS
    return ELEMENTS[manifest["parameters"][f"{side}_element"]].exp_bits


def _total(manifest: dict, words: list[dict]) -> int:
    """Bits of the harnesses' signed sums: every product and word value, and their sum."""
    from golden.minifloat import ELEMENTS
    params = manifest.get("parameters", {})
    wa, wb = (ELEMENTS[params[f"{s}_element"]].int_bits for s in ("a", "b"))
    field = max(w["width"] for w in words)
    return max(wa + wb, field + 2) + max(1, (len(words) - 1).bit_length()) + 1


def words_harness(manifest: dict, words: list[dict], *, cut: bool) -> str:
    """A harness around the unit with its words exposed.

    ``cut=False`` (the lemmas): each word ``y_i`` is compared, ``delay`` cycles after its
    codes, with its definition: ``y_i + s_i - s_i 2**F`` equals the factored product of
    :func:`_factored` (which :func:`identity_harness` proves equal to ``P_a,i * P_b,i``),
    the fields decoded by the dot reference (:mod:`.ref_dot`), ``s_i`` the XOR of the two
    codes' sign bits. ``cut=True`` (the composition): the words' readers see free inputs, and the
    output's sum, ``latency`` cycles after the codes, must be the sum of those inputs'
    values ``y_i + s_i - s_i 2**F`` (each taken ``latency - delay`` cycles earlier), ``s_i``
    of the codes. Both asserted in the last of ``latency + 1`` cycles from any state.
    """
    from .ref_dot import _operand
    latency = manifest["latency"]
    extra = [f"  input [{w['width'] - 1}:0] {w['signal']}{CUT}" for w in words] if cut else []
    lines, drive, a, b, o = _header(manifest, extra)
    streams = manifest["streams"]
    lines += [f"  wire [{w['width'] - 1}:0] {w['signal']};" for w in words]
    conns = [f"    .{p['name']}({drive[p['name']]})" for p in manifest["ports"]]
    conns += [f"    .{w['signal']}({w['signal']})" for w in words]
    conns += [f"    .{w['signal']}{CUT}({w['signal']}{CUT})" for w in words] if cut else []
    lines.append(f"  {manifest['module']} dut (\n" + ",\n".join(conns) + "\n  );")
    (la, _, _, _), (lb, _, _, _) = (_operand(manifest, s, n) for s, n in
                                    (("a", a), ("b", b)))
    lines += la + lb
    total = _total(manifest, words)
    asserts = []
    terms = []
    for w in words:
        i = w["product"]
        sign = f"chk_s{i}"
        lines.append(f"  wire {sign} = ref_a{i}_s ^ ref_b{i}_s;")
        if cut:
            s_old = _delayed(lines, sign, 1, latency)
            y_old = _delayed(lines, f"{w['signal']}{CUT}", w["width"], latency - w["delay"])
            terms.append((y_old, s_old, w["width"]))
        else:
            # The definition, delay cycles after the codes: the word's value then.
            lines += _factored(i, total)
            s_old = _delayed(lines, sign, 1, w["delay"])
            ref = _delayed(lines, f"chk_p{i}", total, w["delay"])
            lines.append(f"  wire [{total - 1}:0] chk_v{i} = "
                         f"{_word_value(w['signal'], s_old, w['width'], total)};")
            asserts.append(f"chk_v{i} == {ref}")
    if cut:
        field_o = field_of(streams["o"]["fields"], "sum")
        o_sum = f"{o}[{field_o['offset'] + field_o['width'] - 1}:{field_o['offset']}]"
        # The words first, in the chains' order, then the signs: sum_i y_i + s_i - s_i 2**F
        # (the same value in an order the solver follows more easily).
        field = terms[0][2]
        words_sum = " + ".join(f"{{{total - wd}'d0, {y}}}" for y, _, wd in terms)
        signs = " + ".join(f"{{{total - 1}'d0, {sg}}}" for _, sg, _ in terms)
        if any(wd != field for _, _, wd in terms):
            raise HarnessError("chained words of different widths")
        lines += [f"  wire [{total - 1}:0] chk_words = {words_sum};",
                  f"  wire [{total - 1}:0] chk_signs = {signs};",
                  f"  wire signed [{total - 1}:0] chk_total = chk_words + chk_signs - "
                  f"(chk_signs << {field});"]
        asserts.append(f"$signed({o_sum}) == chk_total")
    lines += ["  always @* begin", *(f"    assert ({cond});" for cond in asserts),
              "  end", "endmodule", ""]
    return "\n".join(lines)


def _words_script(design: Design, words: list[dict], harness: str, cut: bool) -> str:
    module = design.manifest["module"]
    names = " ".join(f"{module}/w:{w['signal']}" for w in words)
    cycles = design.manifest["latency"] + 1
    return "\n".join([
        "read_verilog dut.v", f"hierarchy -top {module}", "proc -norom", "opt_clean",
        f"expose -cut -sep {CUT[:-1]} {names}" if cut else f"expose {names}",
        f"read_verilog -sv -formal {harness}.v", f"hierarchy -check -top {HARNESS}",
        "proc -norom", "chformal -lower", "flatten", "opt", "wreduce", "opt_clean",
        # latency + 1 cycles from an arbitrary state, asserted in the last: every register
        # of the unit and the harness has been loaded from the inputs by then.
        f"sat -seq {cycles} -prove-skip {cycles - 1} -prove-asserts -verify -show-inputs "
        f"-dump_vcd {harness}.vcd",
    ]) + "\n"


def prove_chained(design: Design, *, timeout: float = 120.0, steps: int | None = None,
                  workdir: Path) -> ProofResult:
    """Prove a dot product of chained words (:mod:`hw.placement` notes 11-12) equal to its
    definition for all time (streaming), cut at each MAC's word: the control part of
    :func:`prove_heap`, the word lemmas and the composition of :func:`words_harness`,
    and the unit-free identity of :func:`identity_harness`.

    Together: ``o.sum(t) = sum_i (y_i + s_i - s_i 2**F) = sum_i P_a,i * P_b,i`` of the
    codes ``latency`` cycles earlier, the first equality for every value of the words
    (the chains, their split carries, the sign counts, the heap and the final adder), the
    second per word (the MAC's product and shifter, against the factored product, which
    the identity equates with ``P_a * P_b``). Parameters and result as
    :func:`prove_heap`.
    """
    manifest = design.manifest
    sop = design.component.sum_of_products
    latency = manifest["latency"]
    steps = latency + 2 if steps is None else steps
    workdir = Path(workdir)
    start = time.monotonic()
    try:
        words = _word_checks(sop.certificate, block=sop.block, latency=latency)
    except CertificateError as exc:
        return ProofResult("FAILED", time.monotonic() - start, "streaming", steps,
                           f"streaming: the certificate's words do not add up: {exc}")
    write_design(design, workdir)
    (workdir / "control.v").write_text(control_harness(manifest), encoding="utf-8")
    (workdir / "control.ys").write_text(_control_script(design, steps), encoding="utf-8")
    (workdir / "identity.v").write_text(identity_harness(manifest, _total(manifest, words)),
                                        encoding="utf-8")
    (workdir / "identity.ys").write_text("\n".join([
        "read_verilog -sv -formal identity.v", f"hierarchy -check -top {HARNESS}",
        "proc -norom", "chformal -lower", "flatten", "opt", "wreduce", "opt_clean",
        # One proof per value of b's exponent field (its shift then a constant): 18 s for
        # E4M3 x E4M3 where the one proof took 112 s.
        *(f"sat -set ref_b0_e {e} -prove-asserts -verify -show-inputs"
          for e in range(1 << _exp_bits(manifest, "b")))]) + "\n", encoding="utf-8")
    for part, cut in (("words", False), ("compose", True)):
        (workdir / f"{part}.v").write_text(words_harness(manifest, words, cut=cut),
                                           encoding="utf-8")
        (workdir / f"{part}.ys").write_text(_words_script(design, words, part, cut),
                                            encoding="utf-8")
    # The identity last: it does not read the unit, and takes the longest.
    failed = _run_parts(workdir, {
        "control": "valid, exponent or NaN fails", "words": "a word lemma fails",
        "compose": "the sum of the cut words fails",
        "identity": "the factored product is not P_a * P_b"},
        manifest=manifest, steps=steps, start=start, timeout=timeout)
    if failed is not None:
        return failed
    return ProofResult("PROVED", time.monotonic() - start, "streaming", steps,
                       f"streaming: for all time, cut at the {len(words)} MACs' words "
                       "(word lemmas, their sum, control, the factored product's identity)",
                       log=workdir / "compose.log")
