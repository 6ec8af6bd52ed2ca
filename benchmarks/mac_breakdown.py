"""Where the xc7 LUTs of the dot product plus accumulator go, per MAC, beside issue 17's floors.

Usage::

    python -m benchmarks.mac_breakdown [--bits 6] [--block 16] [--jobs 2] [--json FILE]

synthesises, with the density report's jobs and cache (Yosys xc7 LUT-only, as ``python -m
flows.density`` counts the headline row), the dot product with ``--primitives xc7`` and the
accumulator (``--align stall``, the default), and splits their LUTs into four pieces:

* **products**: the heap's LUT tiles. Each tile is a function of at most six inputs, so each
  of its output bits is one LUT; their number is read from the heap's certificate
  (:attr:`hw.bitheap.SumOfProducts.certificate`).
* **sum**: the heap's ternary adders, the ``LUT6_2`` cells that :mod:`hw.bitheap` instantiates
  (counted in the netlist, and checked against the instances in the Verilog, so that no
  Yosys-made cell is counted as one).
* **exponent and control**: the dot product's remaining LUTs (the exponent sum, NaN, the
  handshake).
* **accumulator**: every LUT of the accumulator.

Issue 17 puts the floor of a 6-bit, block-16 MAC at about 24 LUTs for the 6 x 6 product (a
Booth array), 11 to 12 to sum the 16 products and 2 to 3 for the accumulator and exponent,
40 in all (its moonshot); the table prints those beside the measured pieces at 6-bit k16
and says which piece is furthest from its floor.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks._tool_cli import add_tool_options, check_tool_outputs, publish
from cli import interrupt
from flows.cache import ResultCache
from flows.jobs import Job, Unit, run_jobs
from hw.generate import elaborate

#: Issue 17's floors, LUTs per MAC, for 6-bit elements and block 16 (others: none).
FLOORS = {"products": (24.0, 24.0), "sum": (11.0, 12.0), "exponent and control": (0.0, 3.0),
          "accumulator": (0.0, 3.0)}
#: The exponent and the accumulator share the floor's 2-3 LUTs per MAC.
SHARED_FLOOR = ("exponent and control", "accumulator")


def measure(*, bits: int, block: int, jobs: int, cache: ResultCache | None) -> dict:
    """The four pieces' LUTs (see the module notes) and the totals, per MAC too."""
    params = {"a_bits": bits, "b_bits": bits, "exp_bits": 8, "block": block}
    dot = elaborate("dot", **params, primitives="xc7")
    acc = elaborate("accum", **params)
    tile_luts = sum(t["width"] for t in dot.component.sum_of_products.certificate["tiles"])
    instances = dot.verilog.count("LUT6_2 #(")
    units = {name: Unit(d.name, d.verilog, block) for name, d in (("dot", dot), ("accum", acc))}
    todo = {name: Job(u, "xc7", "lut", False, 0.0, 0) for name, u in units.items()}
    results = run_jobs(list(todo.values()), cache, workers=jobs)
    d, a = results[todo["dot"]], results[todo["accum"]]
    ternary = d["luts_by_kind"].get("LUT6_2", 0)
    if ternary != instances:
        raise RuntimeError(f"the netlist has {ternary} LUT6_2 cells where the Verilog "
                           f"instantiates {instances}: the sum's count would be wrong")
    other = d["luts"] - ternary - tile_luts
    if other < 0:
        raise RuntimeError(f"the dot product's {d['luts']} LUTs are fewer than its {ternary} "
                           f"ternary adders and {tile_luts} tile outputs: a tile output was "
                           "merged, so the products' count would be wrong")
    pieces = {"products": tile_luts, "sum": ternary, "exponent and control": other,
              "accumulator": a["luts"]}
    return {"bits": bits, "block": block, "dot": dot.name, "accum": acc.name,
            "luts": pieces, "per_mac": {k: v / block for k, v in pieces.items()},
            "total": d["luts"] + a["luts"], "total_per_mac": (d["luts"] + a["luts"]) / block,
            "floors": FLOORS if (bits, block) == (6, 16) else None}


def furthest(r: dict) -> str | None:
    """The piece (the exponent and accumulator as one, as the floor counts them) whose
    LUTs per MAC are furthest above its floor's upper end; None without floors."""
    if r["floors"] is None:
        return None
    per = dict(r["per_mac"])
    shared = sum(per.pop(k) for k in SHARED_FLOOR)
    gaps = {k: v - r["floors"][k][1] for k, v in per.items()}
    gaps[" + ".join(SHARED_FLOOR)] = shared - 3.0
    return max(gaps, key=gaps.get)


def render(r: dict) -> str:
    lines = [f"{r['dot']} (--primitives xc7) + {r['accum']}: {r['total']} LUTs, "
             f"{r['total_per_mac']:.1f} per MAC (xc7 LUT-only, Yosys)", "",
             "| piece | LUTs | LUTs/MAC | issue 17 floor, LUTs/MAC |", "|---|---:|---:|---:|"]
    for name, luts in r["luts"].items():
        floor = "-"
        if r["floors"] is not None:
            lo, hi = r["floors"][name]
            floor = "2-3 with the other" if name in SHARED_FLOOR else (
                f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}")
        lines.append(f"| {name} | {luts} | {r['per_mac'][name]:.1f} | {floor} |")
    far = furthest(r)
    if far is not None:
        lines += ["", f"furthest above its floor: {far}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mac_breakdown",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=6,
                        help="element bits of both operands, 2 to 8 (default: 6)")
    parser.add_argument("--block", type=int, default=16,
                        help="block size, 1 to 64 (default: 16)")
    add_tool_options(parser, jobs_help="Yosys processes at once")
    args = parser.parse_args(argv)
    for name, value, lo, hi in (("--bits", args.bits, 2, 8), ("--block", args.block, 1, 64),
                                ("--jobs", args.jobs, 1, 64)):
        if not lo <= value <= hi:
            parser.error(f"{name} must be from {lo} to {hi}, not {value}")
    check_tool_outputs(parser, args)
    r = measure(bits=args.bits, block=args.block, jobs=args.jobs, cache=ResultCache(args.cache))
    publish(render(r), r, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(interrupt.run(main))
