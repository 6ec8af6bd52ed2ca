"""Memory density and FPGA resource report of an MXINT dot product.

Usage::

    python -m flows.report --bits 6 --block 16 [--exp-bits 8] [--abits N --wbits N]
                           [--target ecp5,xc7] [--json FILE] [--out DIR]

prints

* the memory density of the operand formats over fp32, ``32 / (m + e/k)``
  (:attr:`golden.format.MXIntFormat.memory_density`);
* the Yosys resource counts (LUT, flip-flop, carry, wide mux, DSP, block RAM cells) of the
  generated dot product (:func:`hw.generate.elaborate`) for each target, once LUT-only
  (DSP cells forbidden) and once with DSP cells allowed, and the LUTs per multiply-
  accumulate, ``LUTs / block``.

The counts come from :func:`flows.synth.synthesize`: technology mapping, before placement.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from golden.format import MAX_BLOCK, MAX_EXP_BITS, MAX_MAN_BITS, MXIntFormat, check_int
from hw.config import add_config_arguments, parse_args

from .cache import DEFAULT_CACHE_DIR, ResultCache
from .jobs import synthesize_design
from .synth import TARGETS, yosys_version

__all__ = ["ParameterError", "build_parser", "format_report", "main", "run"]

#: Targets reported when ``--targets`` is not given.
DEFAULT_TARGETS = ("ecp5", "xc7")

#: Resource columns of the table: (result key, heading).
COLUMNS = (("luts", "LUTs"), ("ffs", "FFs"), ("carry", "carry"), ("muxes", "muxes"),
           ("dsps", "DSPs"), ("brams", "BRAMs"))


class ParameterError(ValueError):
    """A report parameter is invalid: out of range, of the wrong type, or refused by the
    generator."""


def _density(man_bits: int, exp_bits: int, block: int) -> dict:
    fmt = MXIntFormat(man_bits, exp_bits, block)
    return {"format": fmt.name, "bits_per_element": fmt.bits_per_element,
            "memory_density": fmt.memory_density}


def run(*, a_bits: int, b_bits: int, exp_bits: int = 8, block: int,
        targets: Sequence[str] = DEFAULT_TARGETS, levels_per_stage: int | None = None,
        workdir: Path | None = None, jobs: int = 1,
        progress: Callable[[str], None] | None = None) -> dict:
    """Generate the dot product, synthesise it for ``targets`` and collect the results.

    Parameters
    ----------
    a_bits, b_bits : int
        Mantissa bits of the activation operand ``a`` and weight operand ``b``,
        sign included.
    exp_bits : int
        Shared exponent bits.
    block : int
        Elements per block, ``k``: the number of multiply-accumulates per cycle.
    targets : sequence of str
        Families from :data:`flows.synth.TARGETS`; each is synthesised LUT-only and with
        DSP cells.
    levels_per_stage : int, optional
        Adder-tree levels per pipeline stage; the generator's default if ``None``.
    workdir : path-like, optional
        Folder that keeps the Verilog and, in ``<target>-<lut|dsp>/``, each Yosys script,
        log and report. By default a temporary folder, removed afterwards.
    jobs : int
        Yosys processes run at once.
    progress : callable, optional
        Called with a short line as each synthesis finishes.

    Returns
    -------
    dict
        ``design`` (module name and parameters), ``memory_density`` (for ``a`` and
        ``b``: format name, bits per element, density), ``yosys_version`` and
        ``synthesis``: per target, LUT-only then with DSPs, the dict of
        :func:`flows.synth.synthesize` plus ``luts_per_mac``. No paths or times.

    Raises
    ------
    ParameterError
        If a parameter is invalid, including those :func:`hw.generate.elaborate` refuses.
    RuntimeError
        If synthesis fails.
    """
    from hw.generate import elaborate  # deferred: it imports Amaranth and the golden model

    params = {"a_bits": a_bits, "b_bits": b_bits, "exp_bits": exp_bits, "block": block}
    if levels_per_stage is not None:
        params["levels_per_stage"] = levels_per_stage
    try:
        if not targets:
            raise ValueError(f"targets must name at least one of {', '.join(TARGETS)}")
        for target in targets:
            if target not in TARGETS:
                raise ValueError(f"targets must be from {', '.join(TARGETS)}, not {target!r}")
        check_int("jobs", jobs, 1)
        densities = {"a": _density(a_bits, exp_bits, block),
                     "b": _density(b_bits, exp_bits, block)}
        design = elaborate("dot", **params)
        folded = design.component.levels_per_stage
        if levels_per_stage is not None and folded != levels_per_stage:
            design.component._MustUse__silence = True
            raise ValueError(f"levels_per_stage {levels_per_stage} gives the same design as "
                             f"{folded}: use 1 to {folded}")
    except (TypeError, ValueError) as exc:
        raise ParameterError(str(exc)) from exc

    configs = [(target, dsp) for target in targets for dsp in (False, True)]

    def done(result: dict) -> None:
        if progress is not None:
            progress(f"synthesised {design.name} for {result['target']} "
                     f"({'with DSPs' if result['dsp'] else 'LUT-only'}): {result['luts']} LUTs")

    # One configuration of python -m flows.density's flow: the same jobs, the same cache.
    synthesis = synthesize_design(design.name, design.verilog, configs,
                                  cache=ResultCache(DEFAULT_CACHE_DIR), workers=jobs,
                                  workdir=None if workdir is None else Path(workdir), done=done)
    for result in synthesis:
        result["luts_per_mac"] = result["luts"] / block

    return {
        "design": {"name": design.name, **params},
        "memory_density": densities,
        "yosys_version": yosys_version(),
        "synthesis": synthesis,
    }


def format_report(report: dict) -> str:
    """The text that ``python -m flows.report`` prints for a :func:`run` result."""
    d = report["design"]
    lines = [f"MXINT dot product {d['name']}: a {d['a_bits']} bits, b {d['b_bits']} bits, "
             f"shared exponent {d['exp_bits']} bits, block k = {d['block']}", ""]

    lines.append("Memory density over fp32, 32 / (m + e/k):")
    dens = report["memory_density"]
    operands = [("a, b", dens["a"])] if dens["a"] == dens["b"] else [("a", dens["a"]),
                                                                        ("b", dens["b"])]
    for label, item in operands:
        lines.append(f"  {label:5s} {item['format']:14s} {item['bits_per_element']:8.4f} "
                     f"bits/element   density {item['memory_density']:.4f}x")
    lines.append("")

    lines.append(f"Resources after Yosys synthesis ({report['yosys_version']}):")
    heading = ["target", "mode"] + [title for _, title in COLUMNS] + ["LUTs/MAC"]
    rows = [heading]
    for r in report["synthesis"]:
        rows.append([r["target"], "DSP" if r["dsp"] else "LUT-only"]
                    + [str(r[key]) for key, _ in COLUMNS] + [f"{r['luts_per_mac']:.2f}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(heading))]
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:], strict=True)]
        lines.append("  " + "  ".join(cells))
    lines.append("")
    lines.append(f"LUTs/MAC = LUTs / k ({d['block']} multiply-accumulates per cycle).")
    lines.append("LUTs: LUT4 (ecp5, ice40), LUT1..LUT6 (xc7). muxes: PFUMX/L6MUX21 (ecp5), "
                 "MUXF7/MUXF8 (xc7),")
    lines.append("which join the LUTs of a slice into wider functions.")
    lines.append("Counts are cells after technology mapping, before placement.")
    for r in report["synthesis"]:
        if r["other"]:
            other = ", ".join(f"{kind} {count}" for kind, count in r["other"].items())
            lines.append(f"Other cells, {r['target']} "
                         f"{'DSP' if r['dsp'] else 'LUT-only'}: {other}")
    return "\n".join(lines) + "\n"


def _output_problem(path: Path, *, folder: bool) -> str | None:
    from hw.generate import output_problem  # deferred: it imports Amaranth

    return output_problem(path, folder=folder)


def _as_option(message: str) -> str:
    """Name the command-line option, not the constructor parameter, in an error."""
    param, _, rest = message.partition(" ")
    option = {"a_bits": "--abits/--bits", "b_bits": "--wbits/--bits", "exp_bits": "--exp-bits",
              "block": "--block", "levels_per_stage": "--levels-per-stage"}.get(param)
    return f"{option} {rest}" if option else message


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports a mistake in one line, without the usage text."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _targets(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    for name in names:
        if name not in TARGETS:
            raise argparse.ArgumentTypeError(
                f"unknown target {name!r}; choose from {', '.join(TARGETS)}")
    return list(dict.fromkeys(names))


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m flows.report`` argument parser."""
    targets = "\n".join(f"  {name:6s} {description}" for name, description in TARGETS.items())
    parser = _Parser(
        prog="python -m flows.report",
        description="Report the memory density of an MXINT format over fp32 and the FPGA\n"
                    "resources (Yosys cell counts: LUTs, flip-flops, carry, DSPs) of the\n"
                    "generated MXINT dot product, LUT-only and with DSP cells.",
        epilog=f"targets:\n{targets}\n\nexample:\n"
               "  python -m flows.report --bits 6 --block 16 --json build/report.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bits", type=int, metavar="N", default=None,
                        help=f"mantissa bits per element, sign included (2 to {MAX_MAN_BITS}); "
                             "required unless both --abits and --wbits are given")
    parser.add_argument("--block", type=int, metavar="N", required=True,
                        help=f"elements per shared exponent, k (1 to {MAX_BLOCK})")
    parser.add_argument("--exp-bits", type=int, metavar="N", default=8,
                        help=f"shared exponent bits (2 to {MAX_EXP_BITS}; default: "
                             "%(default)s, OCP E8M0)")
    parser.add_argument("--abits", type=int, metavar="N", default=None,
                        help="mantissa bits of the activation operand a (default: --bits)")
    parser.add_argument("--wbits", type=int, metavar="N", default=None,
                        help="mantissa bits of the weight operand b (default: --bits)")
    parser.add_argument("--levels-per-stage", type=int, metavar="N", default=None,
                        help="adder-tree levels between pipeline registers "
                             "(default: the generator's)")
    parser.add_argument("--target", dest="targets", type=_targets,
                        default=list(DEFAULT_TARGETS), metavar="T[,T...]",
                        help=f"comma-separated targets (default: {','.join(DEFAULT_TARGETS)}; "
                             "--targets is the old spelling)")
    # The old spelling, kept apart so that its errors name it as typed.
    parser.add_argument("--targets", dest="targets", type=_targets, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also write the results to FILE as JSON (sorted keys)")
    parser.add_argument("--out", "--workdir", dest="workdir", type=Path, default=None,
                        metavar="DIR",
                        help="output folder: keep the Verilog and the Yosys scripts, logs and "
                             "reports in DIR (default: a temporary folder; --workdir is the "
                             "old spelling)")
    parser.add_argument("--jobs", type=int, metavar="N", default=min(4, os.cpu_count() or 1),
                        help="Yosys processes run at once (default: %(default)s)")
    add_config_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m flows.report``; returns the exit code."""
    parser = build_parser()
    args = parse_args(parser, argv)  # --config FILE first, the command line over it
    a_bits = args.abits if args.abits is not None else args.bits
    b_bits = args.wbits if args.wbits is not None else args.bits
    if args.bits is not None and args.abits is not None and args.wbits is not None:
        parser.error("--bits makes no difference when both --abits and --wbits are given; "
                     "drop it")
    if a_bits is None or b_bits is None:
        parser.error("--bits is required unless both --abits and --wbits are given")
    try:
        for flag, value, lo, hi in [("--abits" if args.abits is not None else "--bits",
                                     a_bits, 2, MAX_MAN_BITS),
                                    ("--wbits" if args.wbits is not None else "--bits",
                                     b_bits, 2, MAX_MAN_BITS),
                                    ("--exp-bits", args.exp_bits, 2, MAX_EXP_BITS),
                                    ("--block", args.block, 1, MAX_BLOCK),
                                    ("--jobs", args.jobs, 1, None)]:
            check_int(flag, value, lo, hi)
        if args.levels_per_stage is not None:
            check_int("--levels-per-stage", args.levels_per_stage, 1)
    except ValueError as exc:
        parser.error(str(exc))
    for flag, path, folder in [("--out/--workdir", args.workdir, True),
                               ("--json", args.json, False)]:
        problem = None if path is None else _output_problem(path, folder=folder)
        if problem:
            print(f"{parser.prog}: error: {flag} {path} {problem}", file=sys.stderr)
            return 1

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        report = run(a_bits=a_bits, b_bits=b_bits, exp_bits=args.exp_bits, block=args.block,
                     targets=args.targets, levels_per_stage=args.levels_per_stage,
                     workdir=args.workdir, jobs=args.jobs, progress=progress)
    except ParameterError as exc:
        parser.error(f"cannot generate the dot product: {_as_option(str(exc))}")
    except (OSError, RuntimeError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1

    print(format_report(report), end="")
    if args.json is not None:
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, sort_keys=True, indent=2) + "\n",
                                 encoding="utf-8")
        except OSError as exc:
            print(f"{parser.prog}: error: cannot write --json {args.json}: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
