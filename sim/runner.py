"""The one cocotb runner of :mod:`sim.run` (native and AXI4-Stream benches) and
:mod:`sim.model_layer`: :func:`prepare` builds a design once under an exclusive lock (an
unchanged design reuses its build), :func:`run_test` runs a test module on it under a
shared lock and returns the summary the test wrote.

The C++ model is compiled with Verilator's own optimisation flags (``-Os``) unless the
environment variable ``MXFORGE_VERILATOR_CFLAGS`` gives compiler flags that override them
(e.g. ``-O0``: the test suite sets it, since its builds take longer than its short
simulations; a long simulation wants the default).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from cli.files import write_atomic

from .tools import cell_models, verilator_env

if TYPE_CHECKING:  # the cocotb test modules import this one: keep Amaranth out of them
    from hw.generate import Design

__all__ = ["DEFAULT_BUILD", "SimulationError", "format_summary", "passed", "prepare",
           "run_test"]

#: Compiler flags for the Verilated C++ model, overriding Verilator's (see above).
CFLAGS_VARIABLE = "MXFORGE_VERILATOR_CFLAGS"

#: The files of the cocotb test modules (:mod:`sim.tb_stream`, :mod:`sim.axis_bench`,
#: :mod:`sim.model_layer`): the only ones whose assertions cocotb rewrites (pytest's
#: ``python_files`` globs, space-separated), unless ``COCOTB_REWRITE_ASSERTION_FILES`` is set.
REWRITTEN = "tb_stream.py axis_bench.py model_layer.py"
#: Where builds go unless told otherwise; one folder per generated module.
DEFAULT_BUILD = Path("build") / "sim"


class SimulationError(RuntimeError):
    """The simulator could not be built or run; the message names the log to read."""


def _write_if_changed(path: Path, text: str) -> None:
    """Keep the file (and its mtime) when the content is the same, so builds are reused."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    write_atomic(path, text)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def prepare(design: Design, build_root: Path, *, waves: bool = False):
    """Write the design's Verilog and manifest and build the Verilator model.

    Returns the folder that holds them and the runner. Verilator skips identical inputs
    and make rebuilds nothing, so an unchanged design costs about a second.
    """
    # Imported here so that generating Verilog never needs the simulator's Python side.
    from cocotb_tools.runner import Verilog, get_runner

    from hw.generate import dump_manifest

    work = Path(build_root).resolve() / design.name
    work.mkdir(parents=True, exist_ok=True)
    verilog = work / f"{design.name}.v"
    _write_if_changed(verilog, design.verilog)
    _write_if_changed(work / f"{design.name}.yaml", dump_manifest(design.manifest))
    obj = work / ("obj_waves" if waves else "obj")
    os.environ.update(verilator_env())
    runner = get_runner("verilator")
    log = work / ("build_waves.log" if waves else "build.log")
    # One build at a time per folder, when test workers share a configuration.
    with open(work / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            sources = [Verilog(verilog)]
            library = design.manifest.get("cell_library")
            args = ["-Wno-fatal", "--x-assign", "fast", "--x-initial", "fast", "-O3"]
            if library:  # primitives: Yosys' own models of the family's cells
                sources.append(Verilog(cell_models(library)))
                args.append(f"-I{cell_models(library).parent}")  # ecp5's `include files
            cflags = os.environ.get(CFLAGS_VARIABLE, "").split()
            if cflags:
                args += ["-CFLAGS", " ".join(cflags)]
            runner.build(sources=sources, hdl_toplevel=design.name,
                         build_dir=obj, waves=waves, log_file=log, build_args=args)
        except (SystemExit, Exception) as exc:  # the runner raises SystemExit on tool errors
            raise SimulationError(f"Verilator build of {design.name} failed ({exc}); see "
                                  f"{log}:\n{_tail(log)}") from None
    if not (obj / design.name).exists():
        raise SimulationError(f"Verilator build of {design.name} produced no binary; see {log}:"
                              f"\n{_tail(log)}")
    return work, runner


def run_test(design: Design, work: Path, runner, test_module: str, *, tag: str, seed: int,
             env: dict[str, str], waves: bool = False, test_args: tuple = ()) -> dict:
    """Run cocotb ``test_module`` on the build :func:`prepare` made in ``work``; return the
    summary the test wrote (``MXFORGE_SUMMARY``) plus ``module``, ``log`` and
    ``wall_seconds``. ``env`` adds to the settings every bench reads (manifest, seed,
    summary path); ``tag`` names this run's files, so that runs can share the folder.

    Raises
    ------
    SimulationError
        The simulator failed to run or wrote no summary (a failed check is a summary).
    """
    summary_path = work / f"summary_{tag}.json"
    summary_path.unlink(missing_ok=True)
    log = work / f"sim_{tag}.log"
    env = {
        "MXFORGE_MANIFEST": str(work / f"{design.name}.yaml"),
        "MXFORGE_SEED": str(seed),
        "MXFORGE_SUMMARY": str(summary_path),
        "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", ""),
        # cocotb installs pytest's assertion rewriting for every module whose file matches
        # this glob ("*.py" by default), and the rewriting hook then compiles each of them
        # from source, bytecode cache unused: ``import torch`` took 8 to 10 s in the
        # simulator against 1.5 s outside it. Only the cocotb test modules need rewriting.
        "COCOTB_REWRITE_ASSERTION_FILES": os.environ.get("COCOTB_REWRITE_ASSERTION_FILES",
                                                         REWRITTEN),
        **env,
    }
    start = time.perf_counter()
    try:
        # Shared lock: no other process rebuilds this binary while it runs.
        with open(work / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH)
            runner.test(test_module=test_module, hdl_toplevel=design.name,
                        build_dir=work / ("obj_waves" if waves else "obj"), test_dir=work,
                        extra_env=env, seed=seed, waves=waves, log_file=log,
                        results_xml=str(work / f"results_{tag}.xml"), test_args=list(test_args))
    except (SystemExit, Exception) as exc:
        # A failing check also ends here; the summary tells a failed check from a crash.
        if not summary_path.exists():
            raise SimulationError(f"simulation of {design.name} failed to run ({exc}); see "
                                  f"{log}:\n{_tail(log)}") from None
    if not summary_path.exists():
        raise SimulationError(f"simulation of {design.name} wrote no summary; see {log}:\n"
                              f"{_tail(log)}")
    summary = json.loads(summary_path.read_text())
    summary_path.unlink()
    summary.update(module=design.name, log=str(log), wall_seconds=time.perf_counter() - start)
    return summary


def passed(s: dict) -> bool:
    """Whether the run of summary ``s`` checked every output, took every input (where the
    bench counts them) and the protocol held."""
    return s["mismatches"] == 0 and s["missing"] == 0 and not s["protocol_errors"] \
        and not s["timed_out"] and s.get("inputs_sent") == s.get("inputs_expected")


def format_summary(s: dict) -> str:
    """The one-screen report of a run."""
    lines = [
        f"module      {s['module']}",
        f"parameters  {', '.join(f'{k}={v}' for k, v in s['parameters'].items())}",
        f"seed        {s['seed']}   (replay: --seed {s['seed']})",
        f"checked     {s['checked']} outputs, bit-exact against golden",
        f"mismatches  {s['mismatches']}",
        f"missing     {s['missing']}",
        f"cycles      {s['cycles']} ({s['checked'] / max(s['cycles'], 1):.2f} outputs/cycle "
        "with random idle and back-pressure)",
        f"speed       {s['checked'] / max(s['seconds'], 1e-9):.0f} outputs/s simulated",
        f"log         {s['log']}",
    ]
    if "waves" in s:
        lines.append(f"waves       {s['waves']}")
    lines += [f"  {r}" for r in s["reports"] + s["protocol_errors"]]
    lines.append("PASS" if passed(s) else "FAIL")
    return "\n".join(lines)
