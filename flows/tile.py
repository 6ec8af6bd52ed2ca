"""The weight-stationary tile's figures: what it costs beside its bare engine, its cycles on a
MiniLM encoder layer, and a tokens-per-second roofline for MiniLM-L6.

Shared by the "tile" section of ``python -m flows.density --tile`` (:mod:`flows.measure`)
and by ``python -m benchmarks.tile``.

* :func:`tile_params`, :func:`engine_params`: the tile (``hw.tile``) and the bare engine it
  is compared with (``hw.linear`` with ``rows = lanes``: the same dot products,
  ``align="loop"`` accumulators and output stage, no buffers, no control).
* :func:`linear_cycles`, :func:`layer_figures`: the tile's cycle model. With inputs always
  valid and the output always ready, one linear of ``N`` outputs and ``K`` inputs over
  ``tokens`` tokens takes, from reset to its last result,
  ``(N / R) * tokens * (R / P) * nb / B + D + latency`` cycles (``nb = ceil(K / k)``, ``B``
  the blocks per lane per cycle, ``D = (R / P) * nb`` the first weight tile's load,
  ``latency`` the tile's): equal to the Amaranth simulator's count
  (``tests/test_density_tile.py``, B = 1 and 2), and 24 cycles per linear under the
  Verilator bench of ``make layer`` (its start after reset, B = 1).
* :func:`roofline`: MiniLM-L6's tokens per second, the smaller of the compute roof and the
  weight-traffic roof. The assumptions are in ``docs/tile.md`` and ``docs/density.md``.
"""

from __future__ import annotations

from collections.abc import Mapping

from .cache import ResultCache
from .jobs import Unit, elaborate_unit

__all__ = ["DEFAULT_BANDWIDTH_GBS", "MINILM_LAYERS", "MINILM_LINEARS", "PART",
           "TILE_DEFAULTS", "TILE_FIELDS", "compare", "engine_params", "layer_cycles_per_token",
           "layer_figures", "linear_cycles", "roofline", "tile_latencies", "tile_params",
           "tile_units", "weight_bytes_per_layer"]

#: MiniLM-L6 (all-MiniLM-L6-v2): hidden 384, FFN 1536, 6 layers; each layer's linears as
#: (N, K): Q, K, V, attention output, FFN up, FFN down.
MINILM_LINEARS = ((384, 384), (384, 384), (384, 384), (384, 384), (1536, 384), (384, 1536))
MINILM_LAYERS = 6
#: The part the estimate names: Lattice ECP5-85F (LFE5U-85F): 83 640 LUT4, 208 DP16KD
#: (18 kbit each), with a 16-bit DDR3-800 memory (1.6 GB/s peak), as on the ECP5 Versa
#: board.
PART = "LFE5U-85F (83640 LUT4, 208 DP16KD) with 16-bit DDR3-800"
DEFAULT_BANDWIDTH_GBS = 1.6

#: The tile's fields a report chooses (``hw.tile.TileParams``), with their report
#: defaults: an R = 64 x K = 384 weight tile (MiniLM's hidden width) on one lane, reused
#: for 32 tokens, float32 results (what the layer program hands the host), one block per
#: lane per cycle.
TILE_DEFAULTS = {"rows": 64, "lanes": 1, "k_len": 384, "tokens": 32, "output": "fp32",
                 "blocks_per_cycle": 1}
TILE_FIELDS = tuple(TILE_DEFAULTS)


def tile_params(*, bits: int, exp_bits: int, block: int, choice: Mapping | None = None,
                arch: str | None = None, levels_per_stage: int | None = None) -> dict:
    """``hw.generate`` parameters of the tile with ``bits``-bit activations and weights.

    ``choice`` overrides :data:`TILE_DEFAULTS` (fields of :data:`TILE_FIELDS`); ``arch``
    and ``levels_per_stage`` are left to the generator's defaults when ``None``.
    """
    p = {"x_bits": bits, "w_bits": bits, "exp_bits": exp_bits, "block": block,
         **TILE_DEFAULTS, **(choice or {})}
    if arch is not None:
        p["arch"] = arch
    if levels_per_stage is not None:
        p["levels_per_stage"] = levels_per_stage
    return p


def engine_params(tile: Mapping) -> dict:
    """The bare engine of ``tile`` (``hw.tile`` parameters): ``hw.linear`` with the same
    format, ``K``, architecture and output, ``lanes = rows = P * B`` (one group: the
    tile's ``P * B`` dot products and ``align="loop"`` accumulators, so the same ``P * k *
    B`` MACs per cycle), no weight or activation buffers and, with ``B > 1``, no merge of
    the partial sums. ``output="mx"`` has no engine counterpart: it is compared with
    ``fp32``, the cast left out."""
    engine = {k: tile[k] for k in ("x_bits", "w_bits", "exp_bits", "block", "k_len",
                                   "arch", "levels_per_stage", "guard_bits", "acc_width",
                                   "primitives")
              if k in tile}
    output = tile.get("output", "accum")
    lanes = tile["lanes"] * tile.get("blocks_per_cycle", 1)
    return {**engine, "lanes": lanes, "rows": lanes, "align": "loop",
            "output": "fp32" if output == "mx" else output}


def layer_cycles_per_token(*, block: int, lanes: int, blocks_per_cycle: int = 1) -> int:
    """Cycles of one MiniLM encoder layer's six linears per token on a tile of ``lanes``
    lanes of ``block`` elements, ``blocks_per_cycle`` B blocks per lane per cycle (steady
    state: ``sum(N * ceil(K / k)) / (P * B)``)."""
    return sum(n * -(-k // block) // (lanes * blocks_per_cycle) for n, k in MINILM_LINEARS)


def weight_bytes_per_layer(*, w_bits: int, exp_bits: int, block: int) -> float:
    """Bytes of one layer's MX weights: ``w_bits`` per element, ``exp_bits`` per block."""
    return sum(n * (k * w_bits + -(-k // block) * exp_bits) for n, k in MINILM_LINEARS) / 8


def linear_cycles(*, n: int, k_len: int, block: int, rows: int, lanes: int, tokens: int,
                  latency: int, blocks_per_cycle: int = 1) -> int:
    """Cycles from reset to the last result of one ``n x k_len`` linear over ``tokens``
    tokens on the tile (``rows`` R, ``lanes`` P, ``blocks_per_cycle`` B, weight tiles
    reused for all ``tokens``), inputs always valid, output always ready: ``(n / R) *
    tokens * (R / P) * nb / B`` cycles of compute, plus the first weight tile's load ``D =
    (R / P) * nb`` (one word per cycle on ``w``, whatever B) and the tile's ``latency``;
    later loads hide behind compute when ``tokens >= B`` (a tile's ``D`` words arrive in
    ``D`` cycles behind its ``tokens * D / B`` of compute) and ``R / P >= B`` (a token's
    ``nb`` blocks behind its ``(R / P) * nb / B``).

    Raises
    ------
    ValueError
        If ``rows`` does not divide ``n`` (the layer program needs whole tiles), or, with
        ``B > 1``, the loads do not hide (``tokens`` or ``R / P`` below ``B``: the model
        does not cover that).
    """
    if n % rows:
        raise ValueError(f"rows ({rows}) must divide the linear's outputs, not {n}")
    B = blocks_per_cycle
    if B > 1 and (tokens < B or rows // lanes < B):
        raise ValueError(f"the cycle model needs tokens ({tokens}) and rows / lanes "
                         f"({rows // lanes}) of at least blocks_per_cycle ({B}), where the "
                         f"loads hide behind compute")
    nb = -(-k_len // block)
    words = rows // lanes * nb
    return n // rows * tokens * words // B + words + latency


def layer_figures(*, block: int, rows: int, lanes: int, tokens: int,
                  latency_of: Mapping[int, int], blocks_per_cycle: int = 1) -> dict:
    """MAC utilisation and cycles of one MiniLM encoder layer on the tile, from
    :func:`linear_cycles`.

    Parameters
    ----------
    block, rows, lanes : int
        The tile's ``k``, ``R``, ``P``.
    blocks_per_cycle : int
        The tile's ``B`` (default 1); MAC units are ``P * k * B``.
    tokens : int
        Tokens of the layer, each weight tile reused for all of them (``T = tokens``, as
        ``make layer`` runs it).
    latency_of : mapping
        The tile's latency for each ``K`` of :data:`MINILM_LINEARS` (384, 1536).

    Returns
    -------
    dict
        ``cycles_per_token`` (steady state, :func:`layer_cycles_per_token`),
        ``steady_utilisation`` (useful MACs over ``P * k`` per cycle while the lanes run:
        1.0, since a weight tile loads in ``D`` cycles behind ``T * D`` of compute and a
        token in ``nb`` behind ``(R / P) * nb``), ``layer_cycles`` (the six linears from
        reset, :func:`linear_cycles`) and ``layer_utilisation`` (``tokens * sum(N * K)``
        over ``P * k * layer_cycles``; below 1 by the first load and the latency per
        linear, and by padding when ``k`` does not divide ``K``).
    """
    B = blocks_per_cycle
    cycles = sum(linear_cycles(n=n, k_len=k, block=block, rows=rows, lanes=lanes,
                               tokens=tokens, latency=latency_of[k], blocks_per_cycle=B)
                 for n, k in MINILM_LINEARS)
    useful = tokens * sum(n * k for n, k in MINILM_LINEARS)
    per_token = layer_cycles_per_token(block=block, lanes=lanes, blocks_per_cycle=B)
    steady = sum(n * k for n, k in MINILM_LINEARS) / (lanes * block * B * per_token)
    return {"tokens": tokens, "cycles_per_token": per_token,
            "steady_utilisation": steady, "layer_cycles": cycles,
            "layer_utilisation": useful / (lanes * block * B * cycles)}


def roofline(*, clock_mhz: float, block: int, lanes: int, w_bits: int, exp_bits: int,
             tokens: int, bandwidth_gbs: float, blocks_per_cycle: int = 1) -> dict:
    """Tokens per second of MiniLM-L6 (:data:`MINILM_LAYERS` layers): the compute roof
    (``clock_mhz`` over the cycles per token of every layer), the weight-traffic roof
    (``bandwidth_gbs`` over the weight bytes per token: every layer's MX weights read once
    per ``tokens`` tokens) and the smaller of the two, with which one binds."""
    cycles = MINILM_LAYERS * layer_cycles_per_token(block=block, lanes=lanes,
                                                    blocks_per_cycle=blocks_per_cycle)
    compute = clock_mhz * 1e6 / cycles
    per_token = MINILM_LAYERS * weight_bytes_per_layer(w_bits=w_bits, exp_bits=exp_bits,
                                                       block=block) / tokens
    memory = bandwidth_gbs * 1e9 / per_token
    return {"cycles_per_token": cycles, "compute_tokens_s": compute,
            "weight_bytes_per_token": per_token, "memory_tokens_s": memory,
            "tokens_s": min(compute, memory),
            "bound": "compute" if compute <= memory else "weight traffic"}


def tile_units(cache: ResultCache | None, params: Mapping, digest: str) -> dict[str, Unit]:
    """The generated tile (``params``) and its bare engine (:func:`engine_params`), through
    ``cache`` (:func:`flows.jobs.elaborate_unit`).

    Raises
    ------
    TypeError, ValueError
        If the generator refuses the parameters.
    """
    return {"tile": elaborate_unit(cache, "tile", dict(params), digest),
            "engine": elaborate_unit(cache, "linear", engine_params(params), digest)}


def tile_latencies(params: Mapping) -> dict[int, int]:
    """The latency of the tile ``params`` at each ``K`` of :data:`MINILM_LINEARS` (the
    layer program builds one tile per input width)."""
    import gc
    import warnings

    from amaranth.hdl import UnusedElaboratable

    from hw.unit import unit

    spec = unit("tile")
    latencies = {}
    # The components are built for their latency only, never elaborated: Amaranth's
    # warning about that is expected here, and silenced while they are collected.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        for k in sorted({k for _, k in MINILM_LINEARS}):
            latencies[k] = spec.component(**spec.record(**{**params, "k_len": k}).kwargs()
                                          ).latency
        gc.collect()
    return latencies


def compare(tile: Mapping, engine: Mapping, macs: int) -> dict:
    """The tile's synthesis result beside its engine's: ``luts`` (LUT sites on ECP5, see
    :func:`flows.measure.lut_sites`), ``ffs``, ``brams``, ``carry`` of each, per MAC
    (``macs`` per cycle, ``P * k * B``, the engine's too: :func:`engine_params`), and
    ``lut_ratio`` (tile LUTs over engine LUTs, equal to their ratio per MAC)."""
    out = {}
    for kind, r in (("tile", tile), ("engine", engine)):
        out[kind] = {key: r[key] for key in ("luts", "ffs", "brams", "carry")}
        out[f"{kind}_luts_per_mac"] = r["luts"] / macs
        out[f"{kind}_ffs_per_mac"] = r["ffs"] / macs
    out["lut_ratio"] = tile["luts"] / engine["luts"] if engine["luts"] else None
    return out
