"""Command line of :mod:`sim.formal`; see the package docstring."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from cli import interrupt
from cli.config import (
    OneLineParser,
    add_config_arguments,
    bounded_int,
    check_outputs,
    parse_args,
    positive_float,
)
from cli.units import add_unit_arguments, unit_record
from hw.generate import elaborate, size_note
from hw.unit import units

from ..tools import ToolError
from .harness import DEFAULT_GROUP, HarnessError, reference_of
from .prove import MODES, is_chained_dot, is_heap_dot, prove
from .yosys import ProofResult


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m sim.formal",
        description="Prove with Yosys' SAT solver that a generated unit equals its "
                    "arithmetic definition for every input.",
        epilog="example:\n  python -m sim.formal --top dot --bits 6 --block 16",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_unit_arguments(parser)
    parser.add_argument("--mode", choices=(*MODES, "both"), default="both",
                        help="streaming: for all time with inputs valid and output ready in "
                             "every cycle (temporal induction); stall: free valid, ready and "
                             "reset, bounded; both (default)")
    parser.add_argument("--steps", default=None,
                        type=bounded_int(1, 200, "each step unrolls the design once more "
                                                 "into the SAT problem"),
                        help="streaming: largest induction length (default: latency + 2); "
                             "stall: cycles checked (default: latency + 8)")
    parser.add_argument("--group", default=None,
                        type=bounded_int(1, 16, "each input more a group may hold lengthens "
                                                "the induction"),
                        help="streaming, a unit whose input closes groups (accum): the "
                             f"longest group the proof covers, in inputs (default: "
                             f"{DEFAULT_GROUP})")
    parser.add_argument("--timeout", default=600.0,
                        type=positive_float("give a large number of seconds for no limit"),
                        help="seconds per proof before Yosys is stopped (default: "
                             "%(default)s)")
    parser.add_argument("--out", "--workdir", dest="workdir", type=Path, default=None,
                        help="output folder for the harness, the Yosys log and a "
                             "counterexample's VCD (default: a temporary folder, kept only on "
                             "failure; --workdir is the old spelling)")
    add_config_arguments(parser)
    return parser


#: Input bits (all input streams' payloads) above which a proof is announced as large:
#: from about 200 on, docs/formal.md measures anything from seconds (the tree dot product,
#: 6-bit k16: 3 s) to many minutes (the bit heap: 6-bit k16 about a minute piece by piece,
#: 8-bit k32 about 15 minutes).
LARGE_PROOF_BITS = 200


def proof_note(design, timeout: float) -> str | None:
    """A line that says up front that proving ``design`` may take long, or None."""
    bits = sum(s["width"] for s in design.manifest["streams"].values()
               if s["direction"] == "in")
    if bits <= LARGE_PROOF_BITS:
        return None
    return (f"{design.name} is a large proof ({bits} input bits): it may take minutes "
            f"(docs/formal.md lists the times measured); --timeout {timeout:g} s stops each "
            "proof")


def _print_counterexample(result: ProofResult) -> None:
    for step in result.counterexample:
        items = ", ".join(f"{k}={v}" for k, v in step.items() if k != "step")
        print(f"  cycle {step['step']}: {items}")
    if result.vcd:
        print(f"  waveform: {result.vcd}")
    print(f"  log: {result.log}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, argv)  # --config FILE first, the command line over it
    if units()[args.top].reference is None:
        known = ", ".join(key for key, u in units().items() if u.reference is not None)
        parser.error(f"--top {args.top} has no formal reference yet; known: {known}")
    if getattr(args, "interface", "native") != "native":
        parser.error(f"--interface {args.interface} does not apply to sim.formal: the proofs "
                     "read the units' native streams")
    record = unit_record(args, parser)
    check_outputs(parser, [("--out/--workdir", args.workdir, True)])
    note = size_note(units()[args.top], record)  # elaboration, as hw.generate says it
    if note:
        print(f"{parser.prog}: {note}", file=sys.stderr, flush=True)
    design = elaborate(args.top, **record.kwargs())
    if args.group is not None:
        reference = reference_of(design.manifest.get("top"))
        if args.mode == "stall" or reference is None or reference.last is None:
            parser.error(f"--group applies only to the streaming proof of a unit whose input "
                         f"closes groups (accum), not to --top {args.top} --mode {args.mode}")
    note = proof_note(design, args.timeout)
    if note:
        print(f"{parser.prog}: {note}", file=sys.stderr, flush=True)
    modes = MODES if args.mode == "both" else (args.mode,)
    if args.mode == "both" and (is_heap_dot(design) or is_chained_dot(design)):
        # The stall check compares the whole sum: for the heap it finishes only at small
        # sizes (docs/formal.md), so it runs only when asked for.
        modes = ("streaming",)
        print(f"NOT RUN {design.name} stall: the bit heap's stall check compares the whole "
              "sum and finishes only at small sizes; ask for it with --mode stall")
    keep = args.workdir is not None
    root = args.workdir or Path(tempfile.mkdtemp(prefix="mxforge-formal-"))
    failed = False
    try:
        for mode in modes:
            try:
                result = prove(design, mode=mode, steps=args.steps, timeout=args.timeout,
                               group=args.group or DEFAULT_GROUP, workdir=root / mode)
            except (ToolError, HarnessError, OSError) as exc:
                keep = True  # the message may name a log in it
                print(f"{parser.prog}: error: {exc}", file=sys.stderr)
                return 1
            if result.status == "TIMEOUT":  # one line: what expired, and what to do
                failed = keep = True
                print(f"TIMEOUT {design.name} {result.detail}: --timeout {args.timeout:g} s "
                      f"expired; give a larger one or prove a smaller size (log: "
                      f"{result.log})", flush=True)
                continue
            print(f"{result.status} {design.name} {result.detail} ({result.seconds:.1f} s)")
            if not result.proved:
                failed = keep = True
                _print_counterexample(result)
    finally:  # the temporary folder goes on every way out, Ctrl-C included
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(interrupt.run(main))
