"""LUT cost of the AXI4-Stream wrapper (``--interface axis``) on the 6-bit, block-16 dot product.

Usage::

    python -m benchmarks.axis_overhead [--target xc7] [--json FILE]

synthesises the dot product (``--bits 6 --block 16``, the default heap, once with generic
logic and once with the xc7 primitives) with its native ports and behind the wrapper, with
the same Yosys flow as the density report (:func:`flows.synth.synthesize`, LUT-only), and
prints LUTs, flip-flops and the wrapper's share. Goal (issue 10): at most 2 % more LUTs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from cli import interrupt
from cli.config import check_outputs
from cli.files import write_atomic
from flows.synth import synthesize
from hw.generate import elaborate

#: Goal of issue 10: the wrapper adds at most this fraction of the native unit's LUTs.
GOAL_LUT_FRACTION = 0.02

#: The designs measured: the headline 6-bit k16 dot product, generic and xc7-primitive heap.
CONFIGS = {
    "heap": {"a_bits": 6, "b_bits": 6, "exp_bits": 8, "block": 16},
    "heap-xc7": {"a_bits": 6, "b_bits": 6, "exp_bits": 8, "block": 16, "primitives": "xc7"},
}


def measure(params: dict, *, target: str) -> dict:
    """LUTs and FFs of the dot product with ``params``, native and wrapped, on ``target``."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="mxforge-axis-") as tmp:
        for interface in ("native", "axis"):
            design = elaborate("dot", interface=interface, **params)
            path = Path(tmp) / f"{design.name}.v"
            path.write_text(design.verilog, encoding="utf-8")
            stat = synthesize(path, design.name, target=target, dsp=False,
                              workdir=Path(tmp) / interface)
            out[interface] = {"module": design.name, "luts": stat["luts"], "ffs": stat["ffs"],
                              "carry": stat["carry"]}
    native, axis = out["native"]["luts"], out["axis"]["luts"]
    out["extra_luts"] = axis - native
    out["extra_fraction"] = (axis - native) / native
    out["meets_goal"] = out["extra_fraction"] <= GOAL_LUT_FRACTION
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.axis_overhead",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("xc7", "ecp5"), default="xc7",
                        help="FPGA family (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    check_outputs(parser, [("--json", args.json, False)])  # before the syntheses
    results = {}
    print(f"{'design':10s} {'native LUTs':>11s} {'axis LUTs':>9s} {'extra':>6s} "
          f"{'native FFs':>10s} {'axis FFs':>8s}  goal <= {GOAL_LUT_FRACTION:.0%}")
    for label, params in CONFIGS.items():
        if args.target != "xc7" and params.get("primitives") == "xc7":
            continue
        r = results[label] = measure(params, target=args.target)
        print(f"{label:10s} {r['native']['luts']:11d} {r['axis']['luts']:9d} "
              f"{r['extra_fraction']:6.2%} {r['native']['ffs']:10d} {r['axis']['ffs']:8d}  "
              f"{'met' if r['meets_goal'] else 'MISSED'}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(args.json, json.dumps(results, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(interrupt.run(main))
