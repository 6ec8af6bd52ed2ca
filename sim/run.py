"""Simulate a generated unit under Verilator against the golden model.

Usage::

    python -m sim.run --top dot --bits 6 --block 16 [--seed N] [--vectors N] [--waves]

generates (or reuses) the Verilog, builds it with Verilator (once per parameter set),
drives directed corners plus random vectors with random idle cycles and back-pressure,
checks every output bit-exactly and prints a one-screen summary. Exit code 0 means every
output matched.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import sys
import time
from pathlib import Path

from cli.config import OneLineParser, add_config_arguments, output_problem, parse_args
from cli.units import add_unit_arguments, unit_epilog, unit_record
from hw.generate import Design, dump_manifest, elaborate

from .tools import ToolError, cell_models, verilator_env

__all__ = ["SimulationError", "main", "simulate"]

#: Where builds go unless told otherwise; one folder per generated module.
DEFAULT_BUILD = Path("build") / "sim"


class SimulationError(RuntimeError):
    """The simulator could not be built or run; the message names the log to read."""


def _write_if_changed(path: Path, text: str) -> None:
    """Keep the file (and its mtime) when the content is the same, so builds are reused."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, path)


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
    from cocotb_tools.runner import get_runner

    work = Path(build_root).resolve() / design.name
    work.mkdir(parents=True, exist_ok=True)
    verilog = work / f"{design.name}.v"
    _write_if_changed(verilog, design.verilog)
    _write_if_changed(work / f"{design.name}.yaml", dump_manifest(design.manifest))
    obj = work / ("obj_waves" if waves else "obj")
    binary = obj / design.name
    os.environ.update(verilator_env())
    runner = get_runner("verilator")
    log = work / ("build_waves.log" if waves else "build.log")
    # One build at a time per folder, when test workers share a configuration.
    with open(work / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _build(runner, design, verilog, obj, log, waves)
    if not binary.exists():
        raise SimulationError(f"Verilator build of {design.name} produced no binary; see {log}:"
                              f"\n{_tail(log)}")
    return work, runner


def _build(runner, design: Design, verilog: Path, obj: Path, log: Path, waves: bool) -> None:
    from cocotb_tools.runner import Verilog

    try:
        sources = [Verilog(verilog)]
        library = design.manifest.get("cell_library")
        if library:  # primitives: Yosys' own models of the family's cells
            sources.append(Verilog(cell_models(library)))
        runner.build(sources=sources, hdl_toplevel=design.name,
                     build_dir=obj, waves=waves, log_file=log,
                     build_args=["-Wno-fatal", "--x-assign", "fast", "--x-initial", "fast",
                                 "-O3"])
    except (SystemExit, Exception) as exc:  # the runner raises SystemExit on tool errors
        raise SimulationError(f"Verilator build of {design.name} failed ({exc}); see {log}:\n"
                              f"{_tail(log)}") from None


def simulate(top: str, params: dict, *, seed: int | None = None, vectors: int = 200,
             idle: float = 0.3, backpressure: float = 0.3, waves: bool = False,
             build_root: Path = DEFAULT_BUILD, fault: str | None = None,
             interface: str = "native") -> dict:
    """Generate, build and simulate unit ``top`` with ``params``; return the summary.

    The summary holds ``checked`` (outputs compared), ``mismatches``, ``missing``,
    ``protocol_errors``, ``cycles``, ``seconds``, ``seed``, ``module``, ``log`` and, with
    ``waves``, ``waves`` (the VCD path). ``fault="lsb"`` corrupts the expectation on purpose.
    ``interface="axis"`` simulates the AXI4-Stream wrapper (:mod:`sim.axis_bench`).

    Raises
    ------
    ToolError
        Verilator is missing.
    SimulationError
        The build or the simulator failed to run.
    ValueError, TypeError
        Bad parameters.
    """
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 31)
    design = elaborate(top, interface=interface, **params)
    work, runner = prepare(design, build_root, waves=waves)
    obj = work / ("obj_waves" if waves else "obj")
    # Files of this run only, so that runs of one configuration can share its folder.
    tag = f"seed{seed}" + (f"_fault-{fault}" if fault else "")
    summary_path = work / f"summary_{tag}.json"
    if summary_path.exists():
        summary_path.unlink()
    log = work / f"sim_{tag}.log"
    waves_path = work / f"waves_{tag}.vcd"  # one per seed, as the logs
    env = {
        "MXFORGE_MANIFEST": str(work / f"{design.name}.yaml"),
        "MXFORGE_SEED": str(seed),
        "MXFORGE_VECTORS": str(vectors),
        "MXFORGE_IDLE": repr(idle),
        "MXFORGE_BACKPRESSURE": repr(backpressure),
        "MXFORGE_SUMMARY": str(summary_path),
        "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", ""),
    }
    if fault:
        env["MXFORGE_FAULT"] = fault
    start = time.perf_counter()
    try:
        # Shared lock: no other process rebuilds this binary while it runs.
        with open(work / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH)
            runner.test(test_module="sim.axis_bench" if interface == "axis" else "sim.tb_stream",
                        hdl_toplevel=design.name, build_dir=obj,
                        test_dir=work, extra_env=env, seed=seed, waves=waves, log_file=log,
                        results_xml=str(work / f"results_{tag}.xml"),
                        test_args=["--trace-file", str(waves_path)] if waves else [])
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
    summary.update(module=design.name, top=top, log=str(log),
                   parameters=dict(design.manifest["parameters"]),  # resolved, no None
                   wall_seconds=time.perf_counter() - start)
    if waves:
        summary["waves"] = str(waves_path)
    return summary


def format_summary(s: dict) -> str:
    """The one-screen report of a run."""
    ok = s["mismatches"] == 0 and s["missing"] == 0 and not s["protocol_errors"] \
        and not s["timed_out"]
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
    lines.append("PASS" if ok else "FAIL")
    return "\n".join(lines)


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), not {text!r}")
    return value


#: ``--seed`` range: what the simulator's random generator is seeded with.
MAX_SEED = (1 << 32) - 1


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m sim.run",
        description="Generate a unit, simulate it under Verilator with random idle cycles and "
                    "back-pressure, and check every output bit-exactly against golden/.",
        epilog=f"{unit_epilog()}\n\nexample:\n  python -m sim.run --top dot --bits 6 "
               "--block 16 --seed 1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_unit_arguments(parser)
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed (default: a fresh one, printed for replay)")
    parser.add_argument("--vectors", type=int, default=1000,
                        help="random vectors after the directed corners (default: %(default)s)")
    parser.add_argument("--idle", type=_probability, default=0.3,
                        help="probability of an idle input cycle (default: %(default)s)")
    parser.add_argument("--backpressure", type=_probability, default=0.3,
                        help="probability of ready low on an output (default: %(default)s)")
    parser.add_argument("--waves", action="store_true",
                        help="write a VCD waveform file per seed, waves_seed<N>.vcd")
    parser.add_argument("--out", "--build", dest="build", type=Path, default=DEFAULT_BUILD,
                        help="output folder: one subfolder per design with its Verilog, "
                             "Verilator build, logs and waves (default: %(default)s; "
                             "--build is the old spelling)")
    # Hardware in the loop (sim/model_layer.py): one real layer of a real model.
    parser.add_argument("--model", default=None, metavar="minilm|PATH",
                        help="linear: stream a real layer of this model (minilm or a local "
                             "Hugging Face folder) instead of random vectors")
    parser.add_argument("--layer", default=None, metavar="NAME",
                        help="with --model: the nn.Linear, as named_modules() names it")
    parser.add_argument("--tokens", type=int, default=None, metavar="N",
                        help="with --model: tokens captured on real sentences (default: 2)")
    add_config_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, argv)  # --config FILE first, the command line over it
    if args.vectors < 0:
        parser.error(f"--vectors must be at least 0, not {args.vectors}")
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        parser.error(f"--seed must be from 0 to {MAX_SEED}, not {args.seed}")
    problem = output_problem(args.build)  # before any tool runs
    if problem:
        print(f"{parser.prog}: error: --out/--build {args.build} {problem}", file=sys.stderr)
        return 1
    if args.model is not None or args.layer is not None or args.tokens is not None:
        from .model_layer import run_cli

        return run_cli(args, parser)
    params = unit_record(args, parser).kwargs()
    try:
        summary = simulate(args.top, params, seed=args.seed, vectors=args.vectors,
                           idle=args.idle, backpressure=args.backpressure, waves=args.waves,
                           build_root=args.build, interface=args.interface)
    except (ToolError, SimulationError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    print(format_summary(summary))
    return 0 if summary["mismatches"] == 0 and summary["missing"] == 0 and not \
        summary["protocol_errors"] and not summary["timed_out"] else 1


if __name__ == "__main__":
    sys.exit(main())
