"""The tile's figures: LUTs, FFs and BRAMs against the bare engine, ECP5 placed MHz, cycles
per token of a MiniLM encoder layer, and a tokens-per-second roofline for MiniLM-L6.

Usage::

    python -m benchmarks.tile [--bits 8] [--block 32] [--lanes 1] [--rows 64] [--k-len 384]
        [--tile-tokens 32] [--blocks-per-cycle 1] [--bias fp32] [--pnr] [--bandwidth-gbs 1.6]
        [--json FILE]

1. Synthesises the tile (``hw.tile``, ``output="fp32"``) and the bare engine of the same
   format and MACs (:func:`flows.tile.engine_params`: ``hw.linear``, ``rows = lanes = P *
   B``,
   dot products, ``align="loop"`` accumulators, float32 rounding, no buffers) with
   :func:`flows.synth.synthesize` (LUT-only, ``-nodsp``) for ECP5 and xc7, through the
   jobs and result cache of ``flows.density`` (``build/cache``; ``--no-cache``), and
   prints LUTs (LUT4 sites on ECP5), FFs, BRAM cells and LUTs per MAC (``P * k * B`` MACs) of
   each, and the tile's LUTs per MAC against the engine's. ``python -m flows.density
   --tile`` gives the same figures in its report.
2. With ``--pnr``: places and routes the tile on ECP5 (:func:`flows.pnr.place_and_route`,
   seed 1, 200 MHz target, the smallest device that holds it) and reports its Fmax.
3. Cycles per token of one MiniLM encoder layer on the tile: the six linears' ``N * nb /
   (P * B)`` cycles (``nb = ceil(K / k)``), the steady state that ``tests/test_tile.py``
   measures in simulation (``B`` blocks per lane per cycle) and ``make layer`` measures over
   a whole layer.
4. Tokens per second for MiniLM-L6 (6 such layers; attention, softmax, LayerNorm and GELU
   on the host, not counted), the smaller of two roofs: compute, the clock (the placed
   Fmax, or ``--clock-mhz``) over the cycles per token of 6 layers; weight traffic, the
   external memory bandwidth (``--bandwidth-gbs``) over the weight bytes each token costs,
   the six layers' MX weights (``w_bits`` per element plus ``exp_bits`` per block) read
   once per ``T`` tokens. Assumptions are in ``docs/tile.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cli import interrupt
from cli.files import write_atomic
from flows.cache import DEFAULT_CACHE_DIR, ResultCache
from flows.jobs import Job, hw_digest, run_jobs
from flows.measure import lut_sites
from flows.tile import (
    DEFAULT_BANDWIDTH_GBS,
    MINILM_LAYERS,
    MINILM_LINEARS,
    PART,
    compare,
    layer_cycles_per_token,
    roofline,
    tile_units,
    weight_bytes_per_layer,
)
from golden.accumulator import PARTIAL_SUMS
from hw.tile import BIASES

__all__ = ["DEFAULT_BANDWIDTH_GBS", "MINILM_LAYERS", "MINILM_LINEARS", "PART",
           "layer_cycles_per_token", "main", "measure", "roofline", "weight_bytes_per_layer"]


def measure(params: dict, *, targets: tuple[str, ...], pnr: bool,
            cache: ResultCache | None = None) -> dict:
    """Synthesis of the tile and of its bare engine (:func:`flows.tile.engine_params`) per
    target, LUT-only, through the jobs and cache of ``flows.density``; with ``pnr``, the
    ECP5 tile's counts come from the place-and-route run (the same ``synth_ecp5``
    netlist). ECP5 LUTs are LUT4 sites (:func:`flows.measure.lut_sites`)."""
    units = tile_units(cache, params, hw_digest())
    macs = units["tile"].macs
    jobs = {}
    for target in targets:
        placed = pnr and target == "ecp5"
        jobs[target] = (Job(units["tile"], target, "lut", placed, 200.0 if placed else 0.0,
                            1 if placed else 0),
                        Job(units["engine"], target, "lut", False, 0.0, 0))
    results = run_jobs([j for pair in jobs.values() for j in pair], cache, workers=2)
    out = {"macs": macs, "targets": {}}
    for target, (tile_job, engine_job) in jobs.items():
        tile, engine = (lut_sites(results[j], target) for j in (tile_job, engine_job))
        if "pnr" in tile:
            out["pnr"] = {"device": tile["pnr"]["device"], "fmax_mhz": tile["pnr"]["fmax"],
                          "utilization": tile["pnr"].get("utilization")}
        figures = compare(tile, engine, macs)
        figures["tile"]["name"] = units["tile"].name
        figures["engine"]["name"] = units["engine"].name
        out["targets"][target] = figures
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tile",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--bits", type=int, default=8, help="x and w mantissa bits")
    parser.add_argument("--exp-bits", type=int, default=8)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--lanes", type=int, default=1)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--k-len", type=int, default=384)
    parser.add_argument("--tile-tokens", type=int, default=32)
    parser.add_argument("--blocks-per-cycle", type=int, choices=PARTIAL_SUMS, default=1,
                        help="B, blocks of its row each lane takes per cycle (hw.tile)")
    parser.add_argument("--bias", choices=BIASES, default="none",
                        help="the tile's bias add (hw.tile); the bare engine has none")
    parser.add_argument("--targets", default="ecp5,xc7")
    parser.add_argument("--pnr", action="store_true", help="also place and route on ECP5")
    parser.add_argument("--clock-mhz", type=float, default=None,
                        help="clock of the compute roof (default: the placed Fmax; "
                             "required without --pnr)")
    parser.add_argument("--bandwidth-gbs", type=float, default=DEFAULT_BANDWIDTH_GBS)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-cache", action="store_true",
                        help=f"run every tool; neither read nor write {DEFAULT_CACHE_DIR}")
    args = parser.parse_args(argv)
    if not args.pnr and args.clock_mhz is None:
        parser.error("--clock-mhz is required without --pnr")
    params = {"x_bits": args.bits, "w_bits": args.bits, "exp_bits": args.exp_bits,
              "block": args.block, "k_len": args.k_len, "rows": args.rows,
              "lanes": args.lanes, "tokens": args.tile_tokens, "output": "fp32",
              **({"blocks_per_cycle": args.blocks_per_cycle}
                 if args.blocks_per_cycle > 1 else {}),
              **({"bias": args.bias} if args.bias != "none" else {})}
    result = {"parameters": params,
              **measure(params, targets=tuple(args.targets.split(",")), pnr=args.pnr,
                         cache=None if args.no_cache else ResultCache(DEFAULT_CACHE_DIR))}
    clock = args.clock_mhz if args.clock_mhz is not None else result["pnr"]["fmax_mhz"]
    result["roofline"] = {"part": PART, "clock_mhz": clock,
                          "bandwidth_gbs": args.bandwidth_gbs,
                          **roofline(clock_mhz=clock, block=args.block, lanes=args.lanes,
                                     w_bits=args.bits, exp_bits=args.exp_bits,
                                     tokens=args.tile_tokens,
                                     bandwidth_gbs=args.bandwidth_gbs,
                                     blocks_per_cycle=args.blocks_per_cycle)}
    for target, r in result["targets"].items():
        for kind in ("tile", "engine"):
            d = r[kind]
            print(f"{target:5} {kind:6} {d['name']}: {d['luts']} LUTs, {d['ffs']} FFs, "
                  f"{d['brams']} BRAM cells, {r[kind + '_luts_per_mac']:.1f} LUTs/MAC")
        print(f"{target:5} tile/engine LUTs {r['lut_ratio']:.3f}")
    if "pnr" in result:
        print(f"ecp5  placed on {result['pnr']['device']}: {result['pnr']['fmax_mhz']} MHz")
    rf = result["roofline"]
    print(f"MiniLM layer: {rf['cycles_per_token'] // MINILM_LAYERS} cycles per token; "
          f"MiniLM-L6 on {PART}: compute roof {rf['compute_tokens_s']:.0f} tokens/s at "
          f"{clock} MHz, weight roof {rf['memory_tokens_s']:.0f} tokens/s "
          f"({rf['weight_bytes_per_token']:.0f} B/token at {args.bandwidth_gbs} GB/s, "
          f"T = {args.tile_tokens}): {rf['tokens_s']:.0f} tokens/s, {rf['bound']}-bound")
    if args.json:
        write_atomic(args.json, json.dumps(result, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(interrupt.run(main))
