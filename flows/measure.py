"""One density sweep measured: designs generated, tool jobs run, rows assembled.

:func:`run` elaborates every MXINT configuration of a :class:`flows.sweep.Sweep` (its dot
product and accumulator) and every baseline, runs their synthesis and place-and-route jobs
(:mod:`flows.jobs`), measures SQNR (:mod:`flows.sqnr`) and returns one JSON-able report with
the densities, ratios and the paper check (:mod:`flows.paper`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from pathlib import Path

from golden.format import MXIntFormat, parse_format
from hw.bitheap import DEFAULT_ARCH

from . import tile as tile_model
from .cache import ResultCache
from .formats import element_bits, mxint_peer, unit_params
from .jobs import Job, Unit, elaborate_chain, elaborate_unit, hw_digest, run_jobs, unit_available
from .paper import paper_check, ratio
from .pnr import nextpnr_version
from .sqnr import T_DOF, T_SEED, T_SHAPE, SqnrCache, load_weights
from .sweep import BASELINE_SCHEME, BASELINES, DEFINITIONS, Baseline, ParameterError, Sweep
from .synth import yosys_version

__all__ = ["baseline_params", "run"]


def baseline_params(baseline: Baseline) -> dict:
    from hw.unit import unit

    accepted = {spec.name for spec in unit(baseline.top).params.specs()}
    for params in baseline.candidates:
        if set(params) <= accepted:
            return dict(params)
    raise ParameterError(f"cannot map {baseline.name} onto the parameters of "
                         f"hw/{baseline.module}.py ({', '.join(sorted(accepted))})")


def _model_name(model: str | None) -> str | None:
    """How the report names ``--model``: the built-in name, or the folder's name (no
    machine-specific path, so reports stay comparable)."""
    if model is None:
        return None
    from models.load import BUILTIN_MODELS

    return model if model in BUILTIN_MODELS else Path(model).name


def _model_accuracy(model: str | None, units: Mapping, exp_bits: int,
                    cache: ResultCache | None, jobs: int, progress: bool) -> dict:
    """Real-model accuracy per ``(bits, block)`` of the sweep and per baseline scheme
    (``"int8"``, ``"bf16"``); empty without a model."""
    if model is None:
        return {}
    from .accuracy import accuracy_rows

    shapes = sorted({(m, k) for (m, k, _arch) in units})
    rows = accuracy_rows(model, [(m, m, k) for m, k in shapes], baselines=("int8", "bf16"),
                         exp_bits=exp_bits, cache=cache, jobs=jobs, progress=progress)
    found = {shape: row for shape, row in zip(shapes, rows, strict=False)}
    for row in rows[len(shapes):]:
        found[row["scheme"]] = row
    return found


#: LUT sites a carry cell takes beside the LUT cells Yosys counts: an ECP5 CCU2C is two LUT4s
#: in carry mode (one slice), so a design that moves logic into CCU2C cells does not look
#: smaller than one that keeps it in LUT4s. xc7's CARRY4 and iCE40's SB_CARRY sit beside
#: LUTs that are counted already.
CARRY_LUT_SITES = {"ecp5": 2}

#: LUT sites a distributed-RAM (or LUT shift-register) cell takes, per cell type: the LUTs
#: it is built from, which no logic can use. nextpnr packs an ECP5 TRELLIS_DPR16X4 into
#: three slices (two of RAM, one for the write port): six LUT4 sites. On xc7 a RAM32M or
#: RAM64M is the four LUTs of a SLICEM, RAMnX1D two, RAMnX1S one to four by depth, an SRL
#: one. Only the tile has such cells today (its activation slots).
LUTRAM_LUT_SITES = {
    "ecp5": {"TRELLIS_DPR16X4": 6},
    "xc7": {"RAM32M": 4, "RAM64M": 4, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4,
            "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "SRL16E": 1,
            "SRLC32E": 1},
}


def lut_sites(result: dict, target: str) -> dict:
    """``result`` (a synthesis result) with ``luts`` counted as LUT sites: the LUT cells
    plus :data:`CARRY_LUT_SITES` per carry cell and :data:`LUTRAM_LUT_SITES` per
    distributed-RAM cell; the LUT cells alone stay in ``lut_cells``, the distributed RAM's
    sites in ``lutram_sites``."""
    extra = CARRY_LUT_SITES.get(target, 0) * result["carry"]
    per_cell = LUTRAM_LUT_SITES.get(target, {})
    ram = sum(per_cell.get(kind, 0) * count
              for kind, count in result.get("cells", {}).items())
    return {**result, "lut_cells": result["luts"], "lutram_sites": ram,
            "luts": result["luts"] + extra + ram}


def run(sweep: Sweep, *, cache: ResultCache | None = None, jobs: int = 1,
        executor: Executor | None = None, weights: Path | None = None,
        model: str | None = None, progress: bool = False, log: Callable[[str], None] | None = None,
        stats: dict | None = None) -> dict:
    """Measure every configuration of ``sweep``.

    Parameters
    ----------
    sweep : Sweep
        The configurations.
    cache : ResultCache, optional
        Where results are looked up and kept; ``None`` runs every tool.
    jobs : int
        Tool processes run at once on this machine, when ``executor`` is not given.
    executor : concurrent.futures.Executor, optional
        Where the tool jobs run instead, for example a Dask cluster's
        (:func:`flows.jobs.dask_executor`); results come back into ``cache``.
    weights : path, optional
        A ``.safetensors`` file or PyTorch state dict for the accuracy axis.
    model : str, optional
        ``"minilm"`` or a local Hugging Face model folder: its sentence embeddings with
        every linear layer in each format (weights and activations alike), against fp32,
        on the accuracy axis beside SQNR (:func:`flows.accuracy.accuracy_rows`).
    progress : bool
        Show a tqdm progress bar on stderr.
    log : callable, optional
        Receives notes (missing units) as they are found.
    stats : dict, optional
        Filled with ``tool_runs`` (synthesis and place-and-route runs of the sweep) and
        ``reused`` (how many of them came from the cache).

    Returns
    -------
    dict
        ``definitions``, ``sweep``, ``tools``, ``notes``, ``baselines``, ``rows`` and
        ``paper_check``; deterministic (no paths, no times), JSON-able.

    Raises
    ------
    ParameterError
        If a parameter is invalid.
    RuntimeError
        If a tool fails.
    """
    say = log or (lambda line: None)
    notes: list[str] = []

    tensors = (load_weights(weights, warn=notes.append) if weights is not None
               else None)
    sqnr = SqnrCache(cache, weights)

    digest = hw_digest()
    accum_missing = unit_available("accum", "accumulator")
    if accum_missing:
        notes.append(f"Accumulator NOT included: {accum_missing}. LUTs/MAC count the dot "
                     "product alone.")
    # units[m, k, arch][target] = {"dot": ..., "accum": ...}
    units: dict[tuple[int, int, str], dict[str, dict[str, Unit]]] = {}
    try:
        for m in sweep.bits:
            for k in sweep.blocks:
                params = {"a_bits": m, "b_bits": m, "exp_bits": sweep.exp_bits, "block": k}
                if sweep.out_ready != "direct":
                    params["out_ready"] = sweep.out_ready
                for arch in sweep.archs:
                    units[m, k, arch] = {}
                    for target in sweep.targets:
                        acc_params = sweep.accum_params(params, target)
                        accum = (None if accum_missing
                                 else elaborate_unit(cache, "accum", acc_params, digest))
                        dot_params = {**params, "arch": arch}
                        if sweep.levels_per_stage is not None:
                            dot_params["levels_per_stage"] = sweep.levels_per_stage
                        if sweep.primitives_for(target, arch) != "generic":
                            dot_params["primitives"] = sweep.primitives_for(target, arch)
                        group = {"dot": elaborate_unit(cache, "dot", dot_params, digest)}
                        if accum is not None:
                            group["accum"] = accum
                            if sweep.pnr and target == "ecp5":  # placed as one design
                                group["chain"] = elaborate_chain(cache, dot_params,
                                                                 acc_params, digest)
                        units[m, k, arch][target] = group
    except (TypeError, ValueError) as exc:
        raise ParameterError(str(exc)) from exc
    # baseline_units[name][target]
    baseline_units: dict[str, dict[str, Unit]] = {}
    base_params: dict[str, dict] = {}
    for baseline in BASELINES:
        if baseline.name not in sweep.baselines:
            continue
        missing = unit_available(baseline.top, baseline.module)
        if missing is None:
            try:
                base_params[baseline.name] = baseline_params(baseline)
                baseline_units[baseline.name] = {}
                for target in sweep.targets:
                    params = {**base_params[baseline.name],
                              **baseline.target_params.get(target, {})}
                    if baseline.top == "intdot" and \
                            sweep.primitives_for(target, DEFAULT_ARCH) != "generic":
                        params["primitives"] = sweep.primitives_for(target, DEFAULT_ARCH)
                    baseline_units[baseline.name][target] = elaborate_unit(
                        cache, baseline.top, params, digest)
            except (TypeError, ValueError) as exc:
                baseline_units.pop(baseline.name, None)
                missing = str(exc)
        if missing:
            notes.append(f"No {baseline.name} baseline: {missing}; the ratios against "
                         f"{baseline.name} are left empty.")
    tiles = _tile_units(sweep, cache, digest)
    format_units = _format_units(sweep, cache, digest)
    for note in notes:
        say(note)
    # Asked only now, so that a parameter the generator refuses runs no tool.
    tools = {"yosys": yosys_version()}
    if sweep.pnr and "ecp5" in sweep.targets:
        tools["nextpnr"] = nextpnr_version()

    def mk(unit: Unit, target: str, mode: str) -> Job:
        pnr = sweep.pnr and target == "ecp5"
        return Job(unit, target, mode, pnr, sweep.freq[mode] if pnr else 0.0,
                    sweep.seed if pnr else 0)

    all_jobs: dict[Job, None] = {}
    for target in sweep.targets:
        for mode in sweep.modes:
            for per_target in units.values():
                for unit in per_target[target].values():
                    all_jobs[mk(unit, target, mode)] = None
            for per_target in baseline_units.values():
                all_jobs[mk(per_target[target], target, mode)] = None
            for group in format_units.values():
                if isinstance(group, dict):
                    for unit in (group["dot"], group["accum"]):
                        if unit is not None:
                            all_jobs[mk(unit, target, mode)] = None
                    if "chain" in group and target == "ecp5":
                        all_jobs[mk(group["chain"], target, mode)] = None
        for pair in tiles.values():  # LUT-only, whatever --mode
            all_jobs[mk(pair["tile"][target], target, "lut")] = None
            all_jobs[Job(pair["engine"][target], target, "lut", False, 0.0, 0)] = None
    results = run_jobs(list(all_jobs), cache, workers=jobs, executor=executor,
                       progress=progress, stats=stats)

    def fmax(result: dict) -> float | None:
        return result["pnr"]["fmax"] if "pnr" in result else None

    baselines = []
    base_lpm: dict[tuple[str, str, str], float] = {}
    for baseline in BASELINES:
        if baseline.name not in sweep.baselines:
            continue
        per_target = baseline_units.get(baseline.name)
        entry = {"name": baseline.name, "memory_density": baseline.memory_density,
                 "available": per_target is not None, "results": []}
        if per_target is not None:
            first = per_target[sweep.targets[0]]
            entry.update(module=first.name, parameters=base_params[baseline.name],
                         macs_per_cycle=first.macs)
            for target in sweep.targets:
                unit = per_target[target]
                for mode in sweep.modes:
                    r = lut_sites(results[mk(unit, target, mode)], target)
                    lpm = r["luts"] / unit.macs
                    base_lpm[baseline.name, target, mode] = lpm
                    entry["results"].append({
                        "target": target, "mode": mode, "module": unit.name,
                        "luts": r["luts"], "ffs": r["ffs"],
                        "carry": r["carry"], "dsps": r["dsps"], "luts_per_mac": lpm,
                        "fmax_mhz": fmax(r)})
        baselines.append(entry)

    model_rows = _model_accuracy(model, units, sweep.exp_bits, cache, jobs, progress)
    for entry in baselines:
        scheme = BASELINE_SCHEME.get(entry["name"])
        entry["model_cosine_mean"] = model_rows.get(scheme, {}).get("cosine_mean")

    sqnr_t3_base = {name: sqnr.t3(name) for name in ("bf16", "int8")}
    sqnr_w_base = ({name: sqnr.weights(tensors, name) for name in ("bf16", "int8")}
                   if tensors is not None else None)
    for entry in baselines:
        scheme = BASELINE_SCHEME.get(entry["name"])
        entry["sqnr_t3_db"] = sqnr_t3_base.get(scheme)
        entry["sqnr_weights_db"] = sqnr_w_base.get(scheme) if sqnr_w_base else None

    rows = []
    for (m, k, arch), per_target in sorted(units.items()):
        fmt = MXIntFormat(m, sweep.exp_bits, k)
        sqnr_t3 = sqnr.t3(fmt)
        sqnr_w = sqnr.weights(tensors, fmt) if tensors is not None else None
        for target in sweep.targets:
            group = per_target[target]
            for mode in sweep.modes:
                dot = lut_sites(results[mk(group["dot"], target, mode)], target)
                acc = (lut_sites(results[mk(group["accum"], target, mode)], target)
                       if "accum" in group else None)
                parts = [dot] + ([acc] if acc else [])
                total = {key: sum(p[key] for p in parts)
                         for key in ("luts", "ffs", "carry", "muxes", "dsps")}
                lpm = total["luts"] / k
                fmaxes = [fmax(p) for p in parts]
                # The chain's clock: the two units placed as one design, so that the
                # back-pressure between them is timed (flows.chain), not the slower unit.
                chain = (fmax(results[mk(group["chain"], target, mode)])
                         if "chain" in group else None)
                row = {
                    "bits": m, "block": k, "exp_bits": sweep.exp_bits, "format": fmt.name,
                    "arch": arch, "target": target, "mode": mode,
                    "memory_density": fmt.memory_density,
                    "bits_per_element": fmt.bits_per_element,
                    "accumulator_included": acc is not None,
                    "dot_module": group["dot"].name,
                    "accum_module": group["accum"].name if "accum" in group else None,
                    "dot_luts": dot["luts"], "accum_luts": acc["luts"] if acc else None,
                    **total,
                    "luts_per_mac": lpm,
                    "ffs_per_mac": total["ffs"] / k,
                    "muxes_per_mac": total["muxes"] / k,
                    "dot_luts_per_mac": dot["luts"] / k,
                    "dsps_per_mac": total["dsps"] / k,
                    "carry_per_mac": total["carry"] / k,
                    "fmax_dot_mhz": fmaxes[0],
                    "fmax_accum_mhz": fmaxes[1] if acc else None,
                    "fmax_mhz": chain,
                    "gmacs_per_klut": (k * chain / total["luts"]
                                       if chain is not None and total["luts"] else None),
                    "device": dot["pnr"]["device"] if "pnr" in dot else None,
                    "sqnr_t3_db": sqnr_t3,
                    "sqnr_weights_db": sqnr_w,
                    "model_cosine_mean": model_rows.get((m, k), {}).get("cosine_mean"),
                    "model_cosine_min": model_rows.get((m, k), {}).get("cosine_min"),
                    "model_top1": model_rows.get((m, k), {}).get("top1_agreement"),
                }
                for baseline in BASELINES:
                    row[f"density_vs_{baseline.name}"] = ratio(
                        base_lpm.get((baseline.name, target, mode)), lpm)
                rows.append(row)
    # Against MXINT8 of the same block, target, mapping and architecture, when swept.
    lpm_of = {(r["bits"], r["block"], r["target"], r["mode"], r["arch"]): r["luts_per_mac"]
              for r in rows}
    for r in rows:
        r["density_vs_mxint8"] = ratio(
            lpm_of.get((8, r["block"], r["target"], r["mode"], r["arch"])), r["luts_per_mac"])

    report = {
        "definitions": DEFINITIONS,
        "sweep": sweep.as_dict(),
        "tools": tools,
        "notes": notes,
        "accuracy": {"distribution": f"Student-t, {T_DOF} degrees of freedom",
                     "seed": T_SEED, "shape": list(T_SHAPE),
                     "weights": weights.name if weights is not None else None,
                     "weights_tensors": len(tensors) if tensors is not None else None,
                     "model": _model_name(model)},
        "baselines": baselines,
        "rows": rows,
    }
    if sweep.tile is not None:
        report["tile"] = _tile_section(sweep, tiles, rows, results, mk)
    if sweep.formats:
        report["formats"] = _format_rows(sweep, format_units, results, mk)
    report["paper_check"] = paper_check(report)
    return report


def _tile_units(sweep: Sweep, cache: ResultCache | None, digest: str) -> dict:
    """``{(m, k, arch): {"tile": {target: Unit}, "engine": {target: Unit}, "params": dict,
    "layer": dict}}`` of the sweep's tile section (empty without one): generated, and the
    layer's cycle model computed, before any tool runs. On each target the tile and its
    engine take the primitives the sweep's dot product takes there
    (:meth:`flows.sweep.Sweep.primitives_for`), so that the tile is compared with the
    density row built as it is.

    Raises
    ------
    ParameterError
        If the generator refuses the tile, or its rows do not divide MiniLM's linears.
    """
    if sweep.tile is None:
        return {}
    choice = {k: sweep.tile.get(k, tile_model.TILE_DEFAULTS[k])
              for k in tile_model.TILE_FIELDS}
    out = {}
    for m in sweep.bits:
        for k in sweep.blocks:
            for arch in sweep.archs:
                params = tile_model.tile_params(
                    bits=m, exp_bits=sweep.exp_bits, block=k, choice=choice,
                    arch=None if arch == DEFAULT_ARCH else arch,
                    levels_per_stage=sweep.levels_per_stage)
                try:
                    units = {"tile": {}, "engine": {}}
                    for target in sweep.targets:
                        primitives = sweep.primitives_for(target, arch)
                        built = tile_model.tile_units(
                            cache, {**params, **({"primitives": primitives}
                                                 if primitives != "generic" else {})},
                            digest)
                        units["tile"][target] = built["tile"]
                        units["engine"][target] = built["engine"]
                    layer = tile_model.layer_figures(
                        block=k, rows=params["rows"], lanes=params["lanes"],
                        tokens=params["tokens"],
                        blocks_per_cycle=params["blocks_per_cycle"],
                        latency_of=tile_model.tile_latencies(params))
                except (TypeError, ValueError) as exc:
                    raise ParameterError(str(exc)) from exc
                out[m, k, arch] = {**units, "params": params, "layer": layer}
    return out


def _tile_section(sweep: Sweep, tiles: Mapping, rows: list, results: Mapping, mk) -> dict:
    """The report's ``tile`` section: per configuration and target the tile's resources
    beside its bare engine's and the sweep's dot + accumulator row; per configuration
    the MiniLM layer's cycles and utilisation and the MiniLM-L6 roofline."""
    lpm_of = {(r["bits"], r["block"], r["arch"], r["target"]): r["luts_per_mac"]
              for r in rows if r["mode"] == "lut"}
    resources, layers = [], []
    for (m, k, arch), group in sorted(tiles.items()):
        macs = next(iter(group["tile"].values())).macs
        fmax = None
        for target in sweep.targets:
            tile_unit, engine_unit = group["tile"][target], group["engine"][target]
            tile = lut_sites(results[mk(tile_unit, target, "lut")], target)
            engine = lut_sites(results[Job(engine_unit, target, "lut", False, 0.0, 0)],
                               target)
            figures = tile_model.compare(tile, engine, macs)
            dot_acc = lpm_of.get((m, k, arch, target))
            if "pnr" in tile:
                fmax = tile["pnr"]["fmax"]
            resources.append({
                "bits": m, "block": k, "arch": arch, "target": target,
                "tile_module": tile_unit.name, "engine_module": engine_unit.name,
                "macs_per_cycle": macs,
                "luts": tile["luts"], "ffs": tile["ffs"], "brams": tile["brams"],
                "luts_per_mac": figures["tile_luts_per_mac"],
                "ffs_per_mac": figures["tile_ffs_per_mac"],
                "engine_luts": engine["luts"], "engine_luts_per_mac":
                    figures["engine_luts_per_mac"],
                "over_engine": figures["lut_ratio"],
                "dot_accum_luts_per_mac": dot_acc,
                "over_dot_accum": ratio(figures["tile_luts_per_mac"], dot_acc),
                "fmax_mhz": tile["pnr"]["fmax"] if "pnr" in tile else None,
                "device": tile["pnr"]["device"] if "pnr" in tile else None})
        clock = fmax if fmax is not None else sweep.tile.get("clock_mhz")
        p = group["params"]
        roof = (tile_model.roofline(clock_mhz=clock, block=k, lanes=p["lanes"], w_bits=m,
                                    exp_bits=sweep.exp_bits, tokens=p["tokens"],
                                    bandwidth_gbs=sweep.tile["bandwidth_gbs"],
                                    blocks_per_cycle=p["blocks_per_cycle"])
                if clock is not None else None)
        layers.append({
            "bits": m, "block": k, "arch": arch, "macs_per_cycle": macs, **group["layer"],
            "clock_mhz": clock,
            "clock_source": ("placed" if fmax is not None else
                             "given" if clock is not None else None),
            **({key: roof[key] for key in ("compute_tokens_s", "memory_tokens_s",
                                           "weight_bytes_per_token", "tokens_s", "bound")}
               if roof else dict.fromkeys(("compute_tokens_s", "memory_tokens_s",
                                           "weight_bytes_per_token", "tokens_s", "bound")))})
    return {"parameters": {**{k: sweep.tile.get(k, tile_model.TILE_DEFAULTS[k])
                              for k in tile_model.TILE_FIELDS},
                           "bandwidth_gbs": sweep.tile["bandwidth_gbs"]},
            "part": tile_model.PART, "model": "MiniLM-L6 (all-MiniLM-L6-v2)",
            "layers": tile_model.MINILM_LAYERS,
            "linears": [list(nk) for nk in tile_model.MINILM_LINEARS],
            "resources": resources, "layer": layers}


def _format_names(sweep: Sweep) -> tuple[str, ...]:
    """The formats of the format rows: those asked for, and beside each minifloat the
    MXINT of its element bits, by element bits, then minifloats before MXINT."""
    names = list(sweep.formats)
    for name in sweep.formats:
        if name.startswith("mxfp") and mxint_peer(name) not in names:
            names.append(mxint_peer(name))
    return tuple(sorted(names, key=lambda n: (element_bits(n), n.startswith("mxint"), n)))


def _format_units(sweep: Sweep, cache: ResultCache | None, digest: str) -> dict:
    """``{(format, k): {"dot": Unit, "accum": Unit or None} or the generator's reason for
    refusing the dot product (str)}``; empty without ``--formats``. ``"accum"`` is None,
    and ``"accum_refused"`` the generator's reason, when only the accumulator refuses the
    format (MXFP8 E5M2 with itself: its dot results are wider than the accumulator)."""
    out: dict = {}
    for name in _format_names(sweep) if sweep.formats else ():
        for k in sweep.blocks:
            try:
                dot_params = unit_params("dot", name, k, sweep.levels_per_stage)
                acc_params = unit_params("accum", name, k)
                group = {"dot": elaborate_unit(cache, "dot", dot_params, digest)}
            except (TypeError, ValueError) as exc:
                out[name, k] = str(exc)
                continue
            try:
                group["accum"] = elaborate_unit(cache, "accum", acc_params, digest)
            except (TypeError, ValueError) as exc:  # mxfp8_e5m2 with itself
                group["accum"], group["accum_refused"] = None, str(exc)
            else:
                if sweep.pnr and "ecp5" in sweep.targets:  # placed as one design
                    group["chain"] = elaborate_chain(cache, dot_params, acc_params, digest)
            out[name, k] = group
    return out


def _format_rows(sweep: Sweep, format_units: Mapping, results: Mapping, mk) -> dict:
    """The report's ``formats`` section: one row per format, block, target and mapping."""
    rows = []
    for (name, k), group in format_units.items():
        fmt = parse_format(name, block=k)
        for target in sweep.targets:
            for mode in sweep.modes:
                row = {"format": name, "element_bits": element_bits(name), "block": k,
                       "target": target, "mode": mode,
                       "memory_density": fmt.memory_density,
                       "bits_per_element": fmt.bits_per_element,
                       "mxint_peer": None if name.startswith("mxint") else mxint_peer(name)}
                if isinstance(group, str):
                    rows.append({**row, "skipped": group})
                    continue
                dot = lut_sites(results[mk(group["dot"], target, mode)], target)
                fmax_dot = dot["pnr"]["fmax"] if "pnr" in dot else None
                row.update({"skipped": None, "dot_module": group["dot"].name,
                            "dot_luts": dot["luts"], "dot_luts_per_mac": dot["luts"] / k,
                            "dot_ffs_per_mac": dot["ffs"] / k, "fmax_dot_mhz": fmax_dot,
                            "accum_refused": group.get("accum_refused")})
                if group["accum"] is None:  # the dot product alone: no chain figures
                    rows.append({**row, **dict.fromkeys(
                        ("accum_module", "accum_luts", "luts", "ffs", "dsps", "luts_per_mac",
                         "ffs_per_mac", "fmax_accum_mhz", "fmax_mhz"))})
                    continue
                acc = lut_sites(results[mk(group["accum"], target, mode)], target)
                chain = (results[mk(group["chain"], target, mode)]
                         if "chain" in group and target == "ecp5" else {})
                rows.append({
                    **row, "accum_module": group["accum"].name, "accum_luts": acc["luts"],
                    "luts": dot["luts"] + acc["luts"], "ffs": dot["ffs"] + acc["ffs"],
                    "dsps": dot["dsps"] + acc["dsps"],
                    "luts_per_mac": (dot["luts"] + acc["luts"]) / k,
                    "ffs_per_mac": (dot["ffs"] + acc["ffs"]) / k,
                    "fmax_accum_mhz": acc["pnr"]["fmax"] if "pnr" in acc else None,
                    "fmax_mhz": chain["pnr"]["fmax"] if "pnr" in chain else None})
    lpm_of = {(r["format"], r["block"], r["target"], r["mode"]): r.get("luts_per_mac")
              for r in rows}
    for r in rows:
        peer = lpm_of.get((r["mxint_peer"], r["block"], r["target"], r["mode"]))
        r["density_vs_mxint_peer"] = (None if r["skipped"] or r["luts_per_mac"] is None
                                      else ratio(peer, r["luts_per_mac"]))
    return {"formats": list(_format_names(sweep)), "rows": rows}
