"""Memory density and FPGA resource report of one generated unit (the dot product by
default).

Usage::

    python -m flows.report --bits 6 --block 16 [--top dot] [unit options]
                           [--target ecp5,xc7] [--json FILE] [--out DIR]

prints

* for an MX unit, the memory density of its operand formats over fp32, ``32 / (m + e/k)``
  (:attr:`golden.format.MXIntFormat.memory_density`), for a minifloat operand (the dot
  product's ``--a-format``/``--b-format``) ``32 / (code bits + 8/k)``
  (:attr:`golden.format.MXFPFormat.memory_density`);
* the Yosys resource counts (LUT, flip-flop, carry, wide mux, DSP, block RAM cells) of the
  generated unit (:func:`hw.generate.emit`) for each target, once LUT-only (DSP cells
  forbidden) and once with DSP cells allowed, and the LUTs per multiply-accumulate,
  ``LUTs / MACs``, with the unit's MACs per transfer from its registry entry.

The unit options are every unit's, as for ``python -m hw.generate``. The counts come from
:func:`flows.synth.synthesize`: technology mapping, before placement.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from cli import interrupt
from cli.config import (
    JOBS_WHY,
    add_config_arguments,
    bounded_int,
    check_outputs,
    command_parser,
    parse_args,
)
from cli.files import write_atomic
from cli.units import add_unit_arguments, unit_epilog, unit_record
from golden.format import MXFPFormat, MXIntFormat, check_int

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
    return _density_of(MXIntFormat(man_bits, exp_bits, block))


def _density_of(fmt: MXIntFormat | MXFPFormat) -> dict:
    return {"format": fmt.name, "bits_per_element": fmt.bits_per_element,
            "memory_density": fmt.memory_density}


#: Record fields of an MX unit's operands: (operand, field).
_OPERANDS = (("a", "a_bits"), ("b", "b_bits"), ("a", "x_bits"), ("b", "w_bits"),
             ("a", "man_bits"))


def _densities(record) -> dict:
    """Memory density of each operand format of an MX record (``{}`` for others)."""
    if getattr(record, "exp_bits", None) is None or getattr(record, "block", None) is None:
        return {}
    element = getattr(record, "element", None)
    if element not in (None, "int"):  # the cast's output or the dequantiser's input
        return {"a": _density_of(MXFPFormat(element, record.block,
                                            getattr(record, "scale_rounding", "floor")))}
    found = {}
    for operand in ("a", "b"):  # a minifloat operand of the dot product
        element = getattr(record, f"{operand}_element", None)
        if element not in (None, "int"):
            found[operand] = _density_of(MXFPFormat(element, block=record.block))
    for operand, name in _OPERANDS:
        bits = getattr(record, name, None)
        if bits is not None and operand not in found:
            found[operand] = _density(bits, record.exp_bits, record.block)
    return found


def run(*, top: str = "dot", targets: Sequence[str] = DEFAULT_TARGETS,
        workdir: Path | None = None, jobs: int = 1,
        progress: Callable[[str], None] | None = None, **params) -> dict:
    """Generate unit ``top`` with ``params``, synthesise it for ``targets`` and collect the
    results.

    Parameters
    ----------
    top : str
        A registered unit (:func:`hw.unit.units`), ``"dot"`` by default.
    targets : sequence of str
        Families from :data:`flows.synth.TARGETS`; each is synthesised LUT-only and with
        DSP cells.
    workdir : path-like, optional
        Folder that keeps the Verilog and, in ``<target>-<lut|dsp>/``, each Yosys script,
        log and report. By default a temporary folder, removed afterwards.
    jobs : int
        Yosys processes run at once.
    progress : callable, optional
        Called with a short line as each synthesis finishes.
    **params
        The unit's parameters (its record's fields, e.g. ``a_bits=6, b_bits=6, block=16``).

    Returns
    -------
    dict
        ``design`` (``top``, module ``name``, ``macs`` per transfer and the parameters),
        ``memory_density`` (MX units: per operand ``a``/``b``, format name, bits per
        element, density), ``yosys_version`` and ``synthesis``: per target, LUT-only then
        with DSPs, the dict of :func:`flows.synth.synthesize` plus ``luts_per_mac``.

    Raises
    ------
    ParameterError
        If a parameter is invalid, including a value that gives the same design as a
        smaller one (``levels_per_stage`` beyond the logic depth).
    RuntimeError
        If synthesis fails.
    """
    from hw.generate import emit  # deferred: it imports Amaranth and the golden model
    from hw.unit import unit

    try:
        if not targets:
            raise ValueError(f"targets must name at least one of {', '.join(TARGETS)}")
        for target in targets:
            if target not in TARGETS:
                raise ValueError(f"targets must be from {', '.join(TARGETS)}, not {target!r}")
        check_int("jobs", jobs, 1)
        spec = unit(top)
        record = spec.record(**params)
        for name, value in params.items():
            folded = getattr(record, name)
            if isinstance(value, int) and folded != value:
                raise ValueError(f"{name} {value} gives the same design as {folded}: use 1 "
                                 f"to {folded}")
    except (TypeError, ValueError) as exc:
        raise ParameterError(str(exc)) from exc
    design = emit(spec, record)
    macs = spec.macs(record)
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
        result["luts_per_mac"] = result["luts"] / macs

    return {
        "design": {"top": top, "name": design.name, "summary": spec.summary_of(record),
                   "macs": macs, **record.kwargs()},
        "memory_density": _densities(record),
        "yosys_version": yosys_version(),
        "synthesis": synthesis,
    }


def format_report(report: dict) -> str:
    """The text that ``python -m flows.report`` prints for a :func:`run` result."""
    d = report["design"]
    params = {k: v for k, v in d.items() if k not in ("top", "name", "summary", "macs")}
    lines = [f"{d.get('summary', d['name'])}", f"{d['name']}: "
             + ", ".join(f"{k} {v}" for k, v in params.items()), ""]
    dens = report["memory_density"]
    if dens:
        lines.append("Memory density over fp32, 32 / (m + e/k):")
        operands = [("a, b", dens["a"])] if dens.get("b", dens["a"]) == dens["a"] else \
            [("a", dens["a"]), ("b", dens["b"])]
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
    macs = d.get("macs", d.get("block"))
    lines.append(f"LUTs/MAC = LUTs / {macs} (multiply-accumulates per transfer).")
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
    parser = command_parser(
        "python -m flows.report",
        description="Report the memory density of an MX unit's formats over fp32 and the "
                    "FPGA\nresources (Yosys cell counts: LUTs, flip-flops, carry, DSPs) of "
                    "the generated\nunit, LUT-only and with DSP cells.",
        epilog=f"{unit_epilog()}\n\ntargets:\n{targets}\n\nexample:\n"
               "  python -m flows.report --bits 6 --block 16 --json build/report.json")
    add_unit_arguments(parser, interface=False)
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
    parser.add_argument("--jobs", type=bounded_int(1, 64, JOBS_WHY), metavar="N",
                        default=min(4, os.cpu_count() or 1),
                        help="Yosys processes run at once (default: %(default)s)")
    add_config_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m flows.report``; returns the exit code."""
    parser = build_parser()
    args = parse_args(parser, argv)  # --config FILE first, the command line over it
    record = unit_record(args, parser)
    check_outputs(parser, [("--out/--workdir", args.workdir, True), ("--json", args.json, False)])

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        report = run(top=args.top, targets=args.targets, workdir=args.workdir, jobs=args.jobs,
                     progress=progress, **record.kwargs())
    except (OSError, RuntimeError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1

    print(format_report(report), end="")
    if args.json is not None:
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(args.json, json.dumps(report, sort_keys=True, indent=2) + "\n")
        except OSError as exc:
            print(f"{parser.prog}: error: cannot write --json {args.json}: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(interrupt.run(main))
