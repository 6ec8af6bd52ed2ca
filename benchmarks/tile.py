"""The tile's figures: LUTs, FFs and BRAMs against the bare engine, ECP5 placed MHz, cycles
per token of a MiniLM encoder layer, and a tokens-per-second roofline for MiniLM-L6.

Usage::

    python -m benchmarks.tile [--bits 8] [--block 32] [--lanes 1] [--rows 64] [--k-len 384]
        [--tile-tokens 32] [--bias fp32] [--pnr] [--bandwidth-gbs 1.6] [--json FILE]

1. Synthesises the tile (``hw.tile``, ``output="fp32"``) and the bare engine of the same
   format and lanes (``hw.linear``, ``rows = lanes``: dot products, accumulators, float32
   rounding, no buffers) with :func:`flows.synth.synthesize` (LUT-only, ``-nodsp``) for
   ECP5 and xc7, and prints LUTs, FFs, BRAM cells and LUTs per MAC (``P * k`` MACs) of
   each, and the tile's LUTs per MAC against the engine's.
2. With ``--pnr``: places and routes the tile on ECP5 (:func:`flows.pnr.place_and_route`,
   seed 1, the smallest device that holds it) and reports its Fmax.
3. Cycles per token of one MiniLM encoder layer on the tile: the six linears' ``N * nb /
   P`` cycles (``nb = ceil(K / k)``), the steady state that ``tests/test_tile.py``
   measures in simulation (one block per lane per cycle) and ``make layer`` measures over
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
import tempfile
from pathlib import Path

from cli import interrupt
from cli.files import write_atomic
from flows.synth import synthesize
from hw.generate import elaborate
from hw.tile import BIASES
from hw.unit import unit

#: MiniLM-L6 (all-MiniLM-L6-v2): hidden 384, FFN 1536, 6 layers; each layer's linears as
#: (N, K): Q, K, V, attention output, FFN up, FFN down.
MINILM_LINEARS = ((384, 384), (384, 384), (384, 384), (384, 384), (1536, 384), (384, 1536))
MINILM_LAYERS = 6
#: The part the estimate names: Lattice ECP5-85F (LFE5U-85F): 83 640 LUT4, 208 DP16KD
#: (18 kbit each), with a 16-bit DDR3-800 memory (1.6 GB/s peak), as on the ECP5 Versa
#: board.
PART = "LFE5U-85F (83640 LUT4, 208 DP16KD) with 16-bit DDR3-800"
DEFAULT_BANDWIDTH_GBS = 1.6


def layer_cycles_per_token(*, block: int, lanes: int) -> int:
    """Cycles of one MiniLM encoder layer's six linears per token on a tile of ``lanes``
    lanes of ``block`` elements (steady state)."""
    return sum(n * -(-k // block) // lanes for n, k in MINILM_LINEARS)


def weight_bytes_per_layer(*, w_bits: int, exp_bits: int, block: int) -> float:
    """Bytes of one layer's MX weights: ``w_bits`` per element, ``exp_bits`` per block."""
    return sum(n * (k * w_bits + -(-k // block) * exp_bits) for n, k in MINILM_LINEARS) / 8


def roofline(*, clock_mhz: float, block: int, lanes: int, w_bits: int, exp_bits: int,
             tokens: int, bandwidth_gbs: float) -> dict:
    """Tokens per second of MiniLM-L6: compute roof, weight-traffic roof and their
    minimum."""
    cycles = MINILM_LAYERS * layer_cycles_per_token(block=block, lanes=lanes)
    compute = clock_mhz * 1e6 / cycles
    per_token = MINILM_LAYERS * weight_bytes_per_layer(w_bits=w_bits, exp_bits=exp_bits,
                                                       block=block) / tokens
    memory = bandwidth_gbs * 1e9 / per_token
    return {"cycles_per_token": cycles, "compute_tokens_s": compute,
            "weight_bytes_per_token": per_token, "memory_tokens_s": memory,
            "tokens_s": min(compute, memory),
            "bound": "compute" if compute <= memory else "weight traffic"}


def _synth(top: str, params: dict, target: str) -> dict:
    design = elaborate(top, **params)
    with tempfile.TemporaryDirectory(prefix="mxforge-tile-") as tmp:
        path = Path(tmp) / f"{design.name}.v"
        path.write_text(design.verilog, encoding="utf-8")
        r = synthesize(path, design.name, target=target, dsp=False)
    return {"name": design.name, "luts": r["luts"], "ffs": r["ffs"], "brams": r["brams"],
            "carry": r["carry"]}


def measure(params: dict, *, targets: tuple[str, ...], pnr: bool) -> dict:
    """Synthesis of the tile and of its bare engine per target; with ``pnr``, the ECP5
    tile's counts come from the place-and-route run (the same ``synth_ecp5`` netlist)."""
    macs = params["lanes"] * params["block"]
    engine = {k: params[k] for k in ("x_bits", "w_bits", "exp_bits", "block", "k_len",
                                     "lanes")}
    engine.update(rows=params["lanes"], output="fp32")
    out = {"macs": macs, "targets": {}}
    placed = None
    if pnr:
        from flows.pnr import place_and_route

        design = elaborate("tile", **params)
        with tempfile.TemporaryDirectory(prefix="mxforge-tile-pnr-") as tmp:
            path = Path(tmp) / f"{design.name}.v"
            path.write_text(design.verilog, encoding="utf-8")
            placed = place_and_route(path, design.name, dsp=False, freq_mhz=200.0, seed=1)
        out["pnr"] = {"device": placed["pnr"]["device"], "fmax_mhz": placed["pnr"]["fmax"],
                      "utilization": placed["pnr"].get("utilization")}
    for target in targets:
        if target == "ecp5" and placed is not None:
            tile = {"name": unit("tile").record(**params).name,
                    **{k: placed[k] for k in ("luts", "ffs", "brams", "carry")}}
        else:
            tile = _synth("tile", params, target)
        bare = _synth("linear", engine, target)
        out["targets"][target] = {
            "tile": tile, "engine": bare,
            "tile_luts_per_mac": tile["luts"] / macs,
            "engine_luts_per_mac": bare["luts"] / macs,
            "lut_ratio": tile["luts"] / bare["luts"]}
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
    parser.add_argument("--bias", choices=BIASES, default="none",
                        help="the tile's bias add (hw.tile); the bare engine has none")
    parser.add_argument("--targets", default="ecp5,xc7")
    parser.add_argument("--pnr", action="store_true", help="also place and route on ECP5")
    parser.add_argument("--clock-mhz", type=float, default=None,
                        help="clock of the compute roof (default: the placed Fmax; "
                             "required without --pnr)")
    parser.add_argument("--bandwidth-gbs", type=float, default=DEFAULT_BANDWIDTH_GBS)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if not args.pnr and args.clock_mhz is None:
        parser.error("--clock-mhz is required without --pnr")
    params = {"x_bits": args.bits, "w_bits": args.bits, "exp_bits": args.exp_bits,
              "block": args.block, "k_len": args.k_len, "rows": args.rows,
              "lanes": args.lanes, "tokens": args.tile_tokens, "output": "fp32",
              **({"bias": args.bias} if args.bias != "none" else {})}
    result = {"parameters": params,
              **measure(params, targets=tuple(args.targets.split(",")), pnr=args.pnr)}
    clock = args.clock_mhz if args.clock_mhz is not None else result["pnr"]["fmax_mhz"]
    result["roofline"] = {"part": PART, "clock_mhz": clock,
                          "bandwidth_gbs": args.bandwidth_gbs,
                          **roofline(clock_mhz=clock, block=args.block, lanes=args.lanes,
                                     w_bits=args.bits, exp_bits=args.exp_bits,
                                     tokens=args.tile_tokens,
                                     bandwidth_gbs=args.bandwidth_gbs)}
    for target, r in result["targets"].items():
        for kind in ("tile", "engine"):
            d = r[kind]
            print(f"{target:5} {kind:6} {d['name']}: {d['luts']} LUTs, {d['ffs']} FFs, "
                  f"{d['brams']} BRAM cells, {d['luts'] / result['macs']:.1f} LUTs/MAC")
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
