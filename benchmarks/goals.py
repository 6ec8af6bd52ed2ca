"""This project's density goals, checked against a density report.

Usage::

    python -m benchmarks.goals reports/density.json

prints each goal, the measured value and whether it is met or by how much it is missed.
The goals are the project's own targets, not the user's, so they live here and not in the
report ``python -m flows.density`` writes (which keeps the measurements and the paper
check). ``python -m benchmarks.density_sweep`` prints them after its timed sweep.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from cli import interrupt
from flows.paper import find_row

__all__ = ["GOALS", "SECTION_GOALS", "check_goals", "format_goals", "main"]

#: The project's goals for 6-bit, k = 16 MXINT (e = 8).
GOALS = {
    "xc7_6bit_k16_vs_fp32_min": 25.0,
    "xc7_6bit_k16_vs_int8_min": 3.0,
    "xc7_6bit_luts_per_mac_max": 40.0,
    "ecp5_fmax_dsp_min_mhz": 300.0,
    "ecp5_fmax_lut_min_mhz": 200.0,
}

#: Issue 18's targets for the tile (its section of the report, ``--tile``) and issue 16's
#: clock for every format's dot product (``--formats``).
SECTION_GOALS = {
    "luts_over_engine_max": 1.25,
    "steady_utilisation_min": 0.9,
    "layer_utilisation_min": 0.75,
    "format_fmax_min_mhz": 150.0,
}


def check_goals(report: Mapping) -> list[dict]:
    """Each goal of :data:`GOALS` against a :func:`flows.density.run` report.

    Returns
    -------
    list of dict
        ``goal`` (what), ``value`` (measured, ``None`` if the sweep did not measure it),
        ``bound``, ``met`` (``None`` if not measured), ``missed_by`` (``None`` unless
        missed), ``unit`` and ``note``.
    """
    goals = []

    def goal(what: str, value: float | None, bound: float, at_least: bool, unit: str,
             why: str = "") -> None:
        if value is None:
            goals.append({"goal": what, "value": None, "bound": bound, "met": None,
                          "missed_by": None, "unit": unit,
                          "note": why or "not measured in this sweep"})
            return
        met = value >= bound if at_least else value <= bound
        goals.append({"goal": what, "value": value, "bound": bound, "met": met,
                      "missed_by": None if met else abs(value - bound), "unit": unit,
                      "note": why})

    six = find_row(report, "xc7", "lut")
    missing_six = "" if six else "needs --bits 6 --block 16 --target xc7 --mode lut"
    goal("6-bit k16 xc7 LUT-only density vs fp32 >= 25x",
         six and six["density_vs_fp32"], GOALS["xc7_6bit_k16_vs_fp32_min"], True, "x",
         missing_six or ("" if six["density_vs_fp32"] else "no fp32 baseline"))
    goal("6-bit k16 xc7 LUT-only density vs int8 >= 3x",
         six and six["density_vs_int8"], GOALS["xc7_6bit_k16_vs_int8_min"], True, "x",
         missing_six or ("" if six["density_vs_int8"] else "no int8 baseline"))
    goal("<= 40 LUT6 per 6-bit MAC (xc7, k16, LUT-only)", six and six["luts_per_mac"],
         GOALS["xc7_6bit_luts_per_mac_max"], False, "LUTs/MAC", missing_six)
    for mode, key in (("dsp", "ecp5_fmax_dsp_min_mhz"), ("lut", "ecp5_fmax_lut_min_mhz")):
        r = find_row(report, "ecp5", mode)
        label = "with DSPs" if mode == "dsp" else "LUT-only"
        if r and r["fmax_mhz"]:
            why = (f"the chain placed as one design; placed alone, dot product "
                   f"{r['fmax_dot_mhz']:.1f} MHz, accumulator {r['fmax_accum_mhz']:.1f} MHz"
                   if r["fmax_accum_mhz"] else
                   f"dot product {r['fmax_dot_mhz']:.1f} MHz (no accumulator)")
        else:
            why = f"needs --target ecp5 --mode {mode} with place-and-route"
        goal(f"ECP5 placed 6-bit k16 {label} >= {GOALS[key]:g} MHz",
             r and r["fmax_mhz"], GOALS[key], True, "MHz", why)
    # Issue 18's tile targets, when the report has a tile section (--tile).
    tile = report.get("tile")
    for r in tile["resources"] if tile else ():
        goal(f"tile MXINT{r['bits']} k{r['block']} {r['target']} LUTs <= "
             f"{SECTION_GOALS['luts_over_engine_max']:g}x its bare engine",
             r["over_engine"], SECTION_GOALS["luts_over_engine_max"], False, "x",
             f"{r['luts_per_mac']:.1f} against {r['engine_luts_per_mac']:.1f} LUTs/MAC")
    for r in tile["layer"] if tile else ():
        name = f"tile MXINT{r['bits']} k{r['block']}"
        goal(f"{name} steady-state MAC utilisation >= "
             f"{SECTION_GOALS['steady_utilisation_min']:g}", r["steady_utilisation"],
             SECTION_GOALS["steady_utilisation_min"], True, "", "cycle model")
        goal(f"{name} MiniLM layer MAC utilisation >= "
             f"{SECTION_GOALS['layer_utilisation_min']:g} at 32 tokens",
             r["layer_utilisation"] if r["tokens"] == 32 else None,
             SECTION_GOALS["layer_utilisation_min"], True, "",
             "cycle model" if r["tokens"] == 32 else
             f"measured at {r['tokens']} tokens; needs --tile-tokens 32")
    # Issue 16's format targets, when the report has format rows (--formats): the quoted
    # peer's density at k = 32 on xc7, and the minifloat dot products' ECP5 clock.
    from .formats import PEER_LUTS_PER_MAC, TARGET_RATIO

    for r in report.get("formats", {}).get("rows", ()):
        if r["skipped"] or r["mode"] != "lut":
            continue
        peer = PEER_LUTS_PER_MAC.get(r["format"])
        if r["target"] == "xc7" and r["block"] == 32 and peer is not None:
            goal(f"{r['format']} k32 xc7 dot product >= {TARGET_RATIO:g}x denser than "
                 "MX-for-FPGA", peer / r["dot_luts_per_mac"], TARGET_RATIO, True, "x",
                 f"{r['dot_luts_per_mac']:.1f} against {peer} LUTs/MAC (quoted)")
        if r["target"] == "ecp5" and r["fmax_dot_mhz"] is not None and \
                r["format"].startswith("mxfp"):
            goal(f"{r['format']} k{r['block']} dot product placed on ECP5 LUT-only >= "
                 f"{SECTION_GOALS['format_fmax_min_mhz']:g} MHz", r["fmax_dot_mhz"],
                 SECTION_GOALS["format_fmax_min_mhz"], True, "MHz")
    return goals


def format_goals(goals: Sequence[Mapping]) -> str:
    """The goals as a Markdown table: goal, measured, status (met / MISSED by ... / not
    measured), note."""
    lines = ["| goal | measured | status | note |", "|---|---:|---|---|"]
    for g in goals:
        status = ("not measured" if g["met"] is None else "met" if g["met"]
                  else f"MISSED by {g['missed_by']:.2f} {g['unit']}")
        value = "–" if g["value"] is None else f"{g['value']:.2f}"
        lines.append(f"| {g['goal']} | {value} | {status} | {g['note']} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m benchmarks.goals``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.goals",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, metavar="DENSITY_JSON",
                        help="a density.json written by python -m flows.density")
    args = parser.parse_args(argv)
    try:
        report = json.loads(args.report.read_text(encoding="utf-8"))
        goals = check_goals(report)
    except OSError as exc:
        print(f"{parser.prog}: error: cannot read {args.report}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    except (ValueError, KeyError, TypeError) as exc:
        print(f"{parser.prog}: error: {args.report} is not a density.json of "
              f"python -m flows.density ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    print(format_goals(goals), end="")
    return 0


if __name__ == "__main__":
    sys.exit(interrupt.run(main))
