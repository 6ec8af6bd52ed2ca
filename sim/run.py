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
import random
import sys
from pathlib import Path

from cli import interrupt
from cli.config import (
    OneLineParser,
    add_config_arguments,
    bounded_int,
    check_outputs,
    parse_args,
)
from cli.units import add_unit_arguments, unit_epilog, unit_record
from hw.generate import elaborate

from .runner import DEFAULT_BUILD, SimulationError, format_summary, passed, prepare, run_test
from .tools import ToolError

__all__ = ["SimulationError", "main", "simulate"]


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
    # Files of this run only, so that runs of one configuration can share its folder.
    tag = f"seed{seed}" + (f"_fault-{fault}" if fault else "")
    waves_path = work / f"waves_{tag}.vcd"  # one per seed, as the logs
    env = {"MXFORGE_VECTORS": str(vectors), "MXFORGE_IDLE": repr(idle),
           "MXFORGE_BACKPRESSURE": repr(backpressure)}
    if fault:
        env["MXFORGE_FAULT"] = fault
    summary = run_test(design, work, runner,
                       "sim.axis_bench" if interface == "axis" else "sim.tb_stream", tag=tag,
                       seed=seed, env=env, waves=waves,
                       test_args=("--trace-file", str(waves_path)) if waves else ())
    summary.update(top=top, parameters=dict(design.manifest["parameters"]))  # resolved
    if waves:
        summary["waves"] = str(waves_path)
    return summary


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
    parser.add_argument("--vectors", default=1000,
                        type=bounded_int(0, 1_000_000, "a million take hours under Verilator"),
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
    parser.add_argument("--model", default=None, metavar="minilm|smollm2|PATH",
                        help="linear: stream a real layer of this model (minilm, smollm2, a "
                             "local Hugging Face folder or .gguf file) instead of random "
                             "vectors")
    parser.add_argument("--layer", default=None, metavar="NAME",
                        help="with --model: the nn.Linear, as named_modules() names it")
    parser.add_argument("--tokens", type=int, default=None, metavar="N",
                        help="with --model: tokens captured on real text: the evaluation "
                             "sentences of an encoder, the evaluation text of a causal LM "
                             "(default: 2)")
    parser.add_argument("--weights-file", type=Path, default=None, metavar="FILE",
                        help="with --model and --wformat/--format mxfp4 --block 32: the "
                             "layer's weights as stored in this MXFP4 file (python -m "
                             "models.export), not quantised from the model")
    add_config_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, argv)  # --config FILE first, the command line over it
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        parser.error(f"--seed must be from 0 to {MAX_SEED}, not {args.seed}")
    check_outputs(parser, [("--out/--build", args.build, True)])  # before any tool runs
    if args.model is not None or args.layer is not None or args.tokens is not None or \
            args.weights_file is not None:
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
    return 0 if passed(summary) else 1


if __name__ == "__main__":
    sys.exit(interrupt.run(main))
