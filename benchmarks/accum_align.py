"""The accumulator's alignment modes measured, alone and chained behind the dot product.

Usage::

    python -m benchmarks.accum_align [--bits 6] [--block 16] [--freq 200] [--seed 1]
                                     [--jobs 2] [--json FILE]

elaborates ``--top accum`` once per ``align`` (:data:`hw.accumulator.ALIGNS`) and the dot
product of the same operands (the default heap), runs the density report's jobs on them
(:mod:`flows.jobs`: Yosys xc7 LUT-only, the dot product with and without the xc7
primitives; nextpnr ECP5 LUT-only, placed and routed at ``--freq`` with ``--seed``) and
prints, per ``align``: the accumulator's LUTs, flip-flops and ECP5 Fmax, and the chain's
(dot product plus accumulator: LUTs and FFs per MAC summed, Fmax the lower of the two), as
``python -m flows.density`` counts them; and ECP5 alone for ``align="lookahead"`` with
``primitives="ecp5"`` (its loop of CCU2C cells, which xc7 does not have). Results go
through the density report's cache.
Goals (issue 17): one input per cycle whatever the data; the chain at 250 MHz or more on
ECP5, at most 58.9 LUTs per MAC on xc7 with the primitives (68.1 generic), at most 45 FFs
per MAC.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks._tool_cli import add_tool_options, check_tool_outputs, publish
from cli import interrupt
from flows.cache import ResultCache
from flows.jobs import Job, elaborate_unit, hw_digest, run_jobs
from hw.accumulator import ALIGNS

#: Issue 17's goals for the 6-bit, block-16 chain.
GOAL_MHZ = 250.0
GOAL_LUTS_PER_MAC = {"xc7-primitives": 58.9, "xc7-generic": 68.1}
GOAL_FFS_PER_MAC = 45.0


def measure(*, bits: int, block: int, freq: float, seed: int, jobs: int,
            cache: ResultCache | None) -> dict:
    """Per ``align``, the accumulator alone and the chain (see the module notes)."""
    digest = hw_digest()
    params = {"a_bits": bits, "b_bits": bits, "exp_bits": 8, "block": block}
    dot = {"generic": elaborate_unit(cache, "dot", params, digest),
           "primitives": elaborate_unit(cache, "dot", {**params, "primitives": "xc7"}, digest)}
    accs = {align: elaborate_unit(cache, "accum", {**params, "align": align}, digest)
            for align in ALIGNS}
    # The lookahead loop of ECP5 CCU2C cells: ECP5 only (xc7 has no such cell).
    ecp5_only = {"lookahead+ecp5": elaborate_unit(
        cache, "accum", {**params, "align": "lookahead", "primitives": "ecp5"}, digest)}

    def synth(unit):
        return Job(unit, "xc7", "lut", False, 0.0, 0)

    def pnr(unit):
        return Job(unit, "ecp5", "lut", True, freq, seed)

    todo = [synth(dot["generic"]), synth(dot["primitives"]), pnr(dot["generic"])]
    for unit in accs.values():
        todo += [synth(unit), pnr(unit)]
    todo += [pnr(unit) for unit in ecp5_only.values()]
    results = run_jobs(todo, cache, workers=jobs)
    d_gen, d_prim = results[synth(dot["generic"])], results[synth(dot["primitives"])]
    d_mhz = results[pnr(dot["generic"])]["pnr"]["fmax"]
    out = {"bits": bits, "block": block, "freq_mhz": freq, "seed": seed,
           "dot": {"module": dot["generic"].name, "xc7_luts": d_gen["luts"],
                   "xc7_luts_primitives": d_prim["luts"], "xc7_ffs": d_gen["ffs"],
                   "ecp5_lut4": results[pnr(dot["generic"])]["luts"], "ecp5_mhz": d_mhz},
           "accum": {}}
    for align, unit in accs.items():
        a, p = results[synth(unit)], results[pnr(unit)]
        mhz = p["pnr"]["fmax"]
        out["accum"][align] = {
            "module": unit.name, "xc7_luts": a["luts"], "xc7_ffs": a["ffs"],
            "xc7_carry": a["carry"], "ecp5_lut4": p["luts"], "ecp5_mhz": mhz,
            "chain_luts_per_mac_primitives": (d_prim["luts"] + a["luts"]) / block,
            "chain_luts_per_mac_generic": (d_gen["luts"] + a["luts"]) / block,
            "chain_ffs_per_mac": (d_gen["ffs"] + a["ffs"]) / block,
            "chain_mhz": min(mhz, d_mhz),
        }
    for name, unit in ecp5_only.items():
        p = results[pnr(unit)]
        out["accum"][name] = {"module": unit.name, "ecp5_lut4": p["luts"],
                              "ecp5_mhz": p["pnr"]["fmax"],
                              "chain_mhz": min(p["pnr"]["fmax"], d_mhz)}
    return out


def render(r: dict) -> str:
    d = r["dot"]
    lines = [f"dot product {d['module']}: xc7 {d['xc7_luts']} LUTs ({d['xc7_luts_primitives']} "
             f"with primitives), {d['xc7_ffs']} FFs; ECP5 {d['ecp5_lut4']} LUT4, "
             f"{d['ecp5_mhz']:.1f} MHz (--freq {r['freq_mhz']:g}, seed {r['seed']})", "",
             "| align | xc7 LUTs | xc7 FFs | CARRY4 | ECP5 LUT4 | ECP5 MHz | chain LUTs/MAC "
             "(primitives / generic) | chain FFs/MAC | chain MHz |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for align, a in r["accum"].items():
        if "xc7_luts" not in a:   # ECP5 cells: no xc7 figures
            lines.append(f"| {align} | - | - | - | {a['ecp5_lut4']} | {a['ecp5_mhz']:.1f} | - | "
                         f"- | {a['chain_mhz']:.1f} |")
            continue
        lines.append(f"| {align} | {a['xc7_luts']} | {a['xc7_ffs']} | {a['xc7_carry']} | "
                     f"{a['ecp5_lut4']} | {a['ecp5_mhz']:.1f} | "
                     f"{a['chain_luts_per_mac_primitives']:.1f} / "
                     f"{a['chain_luts_per_mac_generic']:.1f} | {a['chain_ffs_per_mac']:.1f} | "
                     f"{a['chain_mhz']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.accum_align",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=6, help="operand widths (default: 6)")
    parser.add_argument("--block", type=int, default=16, help="block size (default: 16)")
    parser.add_argument("--freq", type=float, default=200.0,
                        help="nextpnr target frequency in MHz (default: 200, as the density "
                             "report's LUT-only runs)")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr seed (default: 1)")
    add_tool_options(parser, jobs_help="tool processes at once")
    args = parser.parse_args(argv)
    check_tool_outputs(parser, args)
    r = measure(bits=args.bits, block=args.block, freq=args.freq, seed=args.seed,
                jobs=args.jobs, cache=ResultCache(args.cache))
    publish(render(r), r, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(interrupt.run(main))
