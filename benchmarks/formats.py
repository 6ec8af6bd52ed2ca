"""Every OCP MX format's dot product (or accumulator, or linear engine), measured in one run:
``python -m benchmarks.formats``.

Usage::

    python -m benchmarks.formats [--top dot|accum|linear] [--block 32,16]
                                 [--formats mxfp4,mxint8,...] [--levels-per-stage L]
                                 [--no-pnr] [--jobs 2] [--json FILE]

For each format and block it generates the dot product (``--top dot`` with both operands
in that format: ``--aformat``/``--wformat`` for a minifloat, ``--bits`` for MXINT; a name
``A:B``, e.g. ``mxfp8_e4m3:mxfp4``, is a mixed pair, ``a`` in ``A`` and ``b`` in ``B``; with
``--top accum`` the accumulator of those dot products, with ``--top linear`` the engine at
its command-line defaults, 4 rows, 2 lanes, K = 4 blocks, accumulator results) and
measures, through the jobs and cache of ``flows.density``:

* LUTs and flip-flops per MAC on xc7, LUT-only (``-nodsp``), generic logic (no xc7
  primitives), after Yosys synthesis, divided by the ``k`` MACs per cycle;
* the ECP5 clock after nextpnr placement and routing, LUT-only, at a 200 MHz target
  (unless ``--no-pnr``);
* the memory density over fp32, ``32 / (element bits + 8 / k)``.

Beside each k = 32 row of the dot product it prints the figure the one other open MX FPGA library
(MX-for-FPGA, FPL 2024) reaches in the same flow, as issue 16 quotes it (its dot products
synthesised with Yosys 0.60, xc7 LUT-only, k = 32, exact in-block sum, no scale addition,
no NaN, combinational), and the ratio. Those figures are quoted, not measured here: the
library is not part of this repository.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from cli import interrupt
from cli.config import (
    add_config_arguments,
    check_outputs,
    command_parser,
    int_list,
    parse_args,
)
from cli.files import write_atomic
from flows.cache import DEFAULT_CACHE_DIR, ResultCache
from flows.formats import TOPS, check_formats, dot_params, params_for_top, unit_params
from flows.jobs import Job, elaborate_unit, hw_digest, run_jobs
from golden.format import MAX_BLOCK, parse_format
from hw.params import default_sum_levels

__all__ = ["FORMATS", "PEER_LUTS_PER_MAC", "TOPS", "check_names", "dot_params", "main",
           "measure", "pair_params", "unit_params"]

#: The formats measured by default: the OCP MX family, then MXINT at the same widths.
FORMATS = ("mxfp8_e5m2", "mxfp8_e4m3", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "mxint8",
           "mxint6", "mxint4")

#: MX-for-FPGA's dot products, LUTs per MAC at k = 32 in our flow (issue 16).
PEER_LUTS_PER_MAC = {"mxfp4": 88.2, "mxfp6_e2m3": 147.7, "mxfp6_e3m2": 167.6,
                     "mxfp8_e4m3": 270.7, "mxfp8_e5m2": 388.6, "mxint8": 229.1}
#: Issue 16's target: at least this many times denser than the peer.
TARGET_RATIO = 2.5
#: nextpnr target clock, MHz.
FREQ_MHZ = 200.0


def measure(formats: Sequence[str], blocks: Sequence[int], *, pnr: bool = True,
            jobs: int = 2, cache: ResultCache | None = None,
            levels_per_stage: int | None = None, top: str = "dot") -> list[dict]:
    """One row per (format, block): LUTs, FFs per MAC on xc7 LUT-only, ECP5 MHz, memory
    density, and the peer's figure where there is one (the dot product at k = 32)."""
    digest = hw_digest()
    rows, work = [], []
    for name in formats:
        for k in blocks:
            try:
                unit = elaborate_unit(cache, top, pair_params(top, name, k, levels_per_stage),
                                      digest)
            except (TypeError, ValueError) as exc:  # accum, linear: E5M2 x E5M2
                rows.append({"format": name, "block": k, "skipped": str(exc)})
                continue
            xc7 = Job(unit, "xc7", "lut", False, 0.0, 0)
            ecp5 = Job(unit, "ecp5", "lut", True, FREQ_MHZ, 1) if pnr else None
            work += [j for j in (xc7, ecp5) if j is not None]
            rows.append({"format": name, "block": k, "module": unit.name, "macs": unit.macs,
                         "_jobs": (xc7, ecp5)})
    results = run_jobs(work, cache, workers=jobs)
    for row in rows:
        jobs_of = row.pop("_jobs", None)
        if jobs_of is None:
            continue
        xc7, ecp5 = jobs_of
        r = results[xc7]
        row.update(luts_per_mac=round(r["luts"] / row["macs"], 2),
                   ffs_per_mac=round(r["ffs"] / row["macs"], 2))
        if ":" not in row["format"]:  # a pair's operands have two densities: none shown
            fmt = parse_format(row["format"], block=row["block"])
            row["memory_density"] = round(fmt.memory_density, 3)
        if ecp5 is not None:
            row["ecp5_mhz"] = results[ecp5]["pnr"]["fmax"]
        peer = PEER_LUTS_PER_MAC.get(row["format"]) \
            if row["block"] == 32 and top == "dot" else None
        if peer is not None:
            row.update(peer_luts_per_mac=peer,
                       ratio_to_peer=round(peer / row["luts_per_mac"], 2))
    return rows


def to_markdown(rows: Sequence[dict]) -> str:
    lines = ["| format | k | LUTs/MAC | FFs/MAC | ECP5 MHz | memory density | "
             "MX-for-FPGA LUTs/MAC | denser by |",
             "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['format']} | {r['block']} | not generated: {r['skipped']} "
                         "| | | | | |")
            continue
        mhz = f"{r['ecp5_mhz']:.1f}" if "ecp5_mhz" in r else "–"
        density = f"{r['memory_density']:.2f}x" if "memory_density" in r else "–"
        peer = f"{r['peer_luts_per_mac']}" if "peer_luts_per_mac" in r else "–"
        ratio = f"{r['ratio_to_peer']:.2f}x" if "ratio_to_peer" in r else "–"
        lines.append(f"| {r['format']} | {r['block']} | {r['luts_per_mac']:.1f} | "
                     f"{r['ffs_per_mac']:.1f} | {mhz} | {density} | {peer} "
                     f"| {ratio} |")
    return "\n".join(lines) + "\n"


def check_names(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` as format names or ``A:B`` pairs of them, lower case, stripped, repeats
    dropped, in order.

    Raises
    ------
    ValueError
        Naming the first name that is not a ``--format`` name or a pair of two, and what
        is allowed.
    """
    out = []
    for name in names:
        sides = name.split(":")
        if len(sides) > 2:
            raise ValueError(f"a pair of formats is A:B (two --format names), not {name!r}")
        out.append(":".join(check_formats(sides) if len(sides) == 1 else
                            (check_formats([sides[0]]) + check_formats([sides[1]]))))
    return tuple(dict.fromkeys(out))


def pair_params(top: str, name: str, block: int, levels_per_stage: int | None = None
                ) -> dict:
    """:func:`flows.formats.unit_params` of a format name, or of a pair ``A:B`` (operand
    ``a`` in format ``A``, ``b`` in ``B``; ``levels_per_stage`` only when given and not
    the pair's default, :func:`hw.params.default_sum_levels`)."""
    if ":" not in name:
        return unit_params(top, name, block, levels_per_stage)
    a, b = (dot_params(side, block) for side in name.split(":"))
    p = {"a_element": a.get("a_element", "int"), "b_element": b.get("b_element", "int"),
         "block": block}
    p.update({k: v for k, v in (("a_bits", a.get("a_bits")), ("b_bits", b.get("b_bits")))
              if v is not None})
    if levels_per_stage not in (None, default_sum_levels(p["a_element"], p["b_element"],
                                                         "heap")):
        p["levels_per_stage"] = levels_per_stage
    return params_for_top(top, p)


def _format_list(text: str) -> tuple[str, ...]:
    try:
        return check_names(text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser(
        "python -m benchmarks.formats",
        description="LUTs and FFs per MAC (xc7, LUT-only, generic) and ECP5 MHz of the dot "
                    "product in every OCP MX format, beside MXINT and the peer library's "
                    "figures.",
        epilog="example:\n  python -m benchmarks.formats --block 32 --no-pnr")
    parser.add_argument("--top", choices=TOPS, default="dot",
                        help="the unit measured: the dot product (default), its accumulator, "
                             "or the linear engine (4 rows, 2 lanes)")
    parser.add_argument("--formats", type=_format_list, default=FORMATS, metavar="F[,F...]",
                        help="--format names, or A:B for a (A) and b (B) in two formats "
                             "(default: " + ",".join(FORMATS) + ")")
    parser.add_argument("--block", type=int_list(1, MAX_BLOCK), default=(32, 16),
                        metavar="K[,K...]", help="block sizes (default: 32,16)")
    parser.add_argument("--levels-per-stage", type=int, default=None, choices=range(1, 65),
                        metavar="L", help="logic levels between the dot product's pipeline "
                                          "registers, 1 to 64 (default: each format's, "
                                          "hw.params.default_sum_levels: 2, 1 for E4M3 "
                                          "or E5M2 with a minifloat)")
    parser.add_argument("--no-pnr", action="store_true", help="skip ECP5 place and route")
    parser.add_argument("--jobs", type=int, default=2, choices=range(1, 65), metavar="N",
                        help="tool runs at once, 1 to 64 (default: 2)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also write the rows to this JSON file")
    parser.add_argument("--no-cache", action="store_true",
                        help=f"run every tool; neither read nor write {DEFAULT_CACHE_DIR}")
    add_config_arguments(parser)
    args = parse_args(parser, argv)
    if args.json is not None:
        check_outputs(parser, [("--json", args.json, False)])
    cache = None if args.no_cache else ResultCache(DEFAULT_CACHE_DIR)
    rows = measure(args.formats, args.block, pnr=not args.no_pnr, jobs=args.jobs, cache=cache,
                   levels_per_stage=args.levels_per_stage, top=args.top)
    print(to_markdown(rows), end="")
    if args.json is not None:
        write_atomic(args.json, json.dumps(rows, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(interrupt.run(main))
