"""The density report as Markdown, CSV and JSON, and the files ``python -m flows.density``
writes.

Every output is a pure function of the :func:`flows.density.run` report: no paths, no
times, so the same report gives the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from cli.files import write_atomic

__all__ = ["CSV_COLUMNS", "FORMAT_CSV_COLUMNS", "TILE_CSV_COLUMNS", "to_csv", "to_json",
           "to_markdown", "write_reports"]

CSV_COLUMNS = (
    "bits", "block", "exp_bits", "format", "arch", "target", "mode", "memory_density",
    "bits_per_element", "accumulator_included", "dot_luts", "accum_luts", "luts", "ffs",
    "carry", "muxes", "dsps", "luts_per_mac", "dot_luts_per_mac", "ffs_per_mac",
    "carry_per_mac", "muxes_per_mac", "dsps_per_mac", "density_vs_fp32", "density_vs_bf16",
    "density_vs_int8", "density_vs_int4", "density_vs_int8dot", "density_vs_int4dot",
    "density_vs_mxint8", "density_vs_fp32_generic", "density_vs_int8_generic",
    "fmax_dot_mhz", "fmax_accum_mhz", "fmax_mhz", "gmacs_per_klut", "device", "sqnr_t3_db",
    "sqnr_weights_db", "model_cosine_mean", "model_cosine_min", "model_top1",
)


#: ``density_tile.csv`` (with ``--tile``): one row per tile configuration and target, its
#: layer and roofline figures repeated on each.
TILE_CSV_COLUMNS = (
    "bits", "block", "arch", "target", "tile_module", "engine_module", "macs_per_cycle",
    "luts", "ffs", "brams", "luts_per_mac", "ffs_per_mac", "engine_luts",
    "engine_luts_per_mac", "over_engine", "dot_accum_luts_per_mac", "over_dot_accum",
    "fmax_mhz", "device", "tokens", "cycles_per_token", "steady_utilisation",
    "layer_cycles", "layer_utilisation", "clock_mhz", "clock_source", "compute_tokens_s",
    "memory_tokens_s", "weight_bytes_per_token", "tokens_s", "bound",
)
#: ``density_formats.csv`` (with ``--formats``): one row per format, block, target, mapping.
FORMAT_CSV_COLUMNS = (
    "format", "element_bits", "block", "target", "mode", "memory_density",
    "bits_per_element", "skipped", "dot_module", "accum_module", "dot_luts", "accum_luts",
    "luts", "ffs", "dsps", "luts_per_mac", "dot_luts_per_mac", "ffs_per_mac",
    "dot_ffs_per_mac", "mxint_peer", "density_vs_mxint_peer", "fmax_dot_mhz",
    "fmax_accum_mhz", "fmax_mhz", "accum_refused",
)


def _fmt(value: object, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _csv(rows: Iterable[Mapping], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else (repr(r[c]) if isinstance(r[c], float)
                                                      else r[c]) for c in columns])
    return out.getvalue()


def to_csv(report: Mapping) -> str:
    """``density.csv``: one line per row of the density table."""
    return _csv(report["rows"], CSV_COLUMNS)


def tile_rows(report: Mapping) -> list[dict]:
    """The tile section as flat rows: each target's resources with its configuration's
    layer and roofline figures (:data:`TILE_CSV_COLUMNS`)."""
    section = report["tile"]
    layer = {(r["bits"], r["block"], r["arch"]): r for r in section["layer"]}
    return [{**layer[r["bits"], r["block"], r["arch"]], **r} for r in section["resources"]]


def _tile_markdown(section: Mapping, sweep: Mapping) -> list[str]:
    p = section["parameters"]
    lines = ["## Tile", "",
             f"The weight-stationary tile (`hw.tile`, `--top tile`): an R = {p['rows']} x "
             f"K = {p['k_len']} weight tile in block RAM, reused for T = {p['tokens']} "
             f"tokens, P = {p['lanes']} lane(s) of dot product + accumulator, "
             f"B = {p.get('blocks_per_cycle', 1)} block(s) per lane per cycle (P x k x B "
             f"MACs per cycle), `{p['output']}` output; synthesised LUT-only. The bare "
             "engine is `hw.linear` with rows = lanes = P x B (the same dot products, "
             "accumulators and output stage, no buffers, no merge of partial sums); dot + acc "
             "is the density table's LUT-only row of the same format; both ratios are of "
             "LUTs per MAC; all three heaps are built with the family's primitives unless "
             "`--no-primitives`.", ""]
    lines += _table(["format", "arch", "target", "LUTs", "FFs", "BRAMs", "LUTs/MAC",
                     "FFs/MAC", "engine LUTs/MAC", "× engine", "dot + acc LUTs/MAC",
                     "× dot + acc", "Fmax MHz", "device"],
                    [[f"MXINT{r['bits']} k{r['block']}", r["arch"], r["target"], r["luts"],
                      r["ffs"], r["brams"], _fmt(r["luts_per_mac"]), _fmt(r["ffs_per_mac"]),
                      _fmt(r["engine_luts_per_mac"]), _fmt(r["over_engine"], 3),
                      _fmt(r["dot_accum_luts_per_mac"]), _fmt(r["over_dot_accum"], 3),
                      _fmt(r["fmax_mhz"], 1), _fmt(r["device"])]
                     for r in section["resources"]], "lll")
    linears = ", ".join(f"{n}x{k}" for n, k in section["linears"])
    lines += ["", f"{section['model']} on {section['part']}, {p['bandwidth_gbs']} GB/s for "
              f"weights; a layer is the six linears {linears} (N x K), "
              f"{section['layers']} layers; attention scores, softmax, LayerNorm and "
              "GELU run on the host and are not counted. Utilisation and cycles come from "
              "the tile's cycle model (`flows.tile.linear_cycles`, equal to the Amaranth "
              "simulator's count), the layer's tokens being T. The clock is the tile's placed "
              "Fmax on ECP5 (nextpnr seed "
              f"{sweep['seed']}), or `--tile-clock-mhz`.", ""]
    lines += _table(["format", "arch", "MACs/cycle", "cycles/token/layer",
                     "steady-state util.", f"layer util. ({p['tokens']} tokens)", "clock MHz",
                     "compute roof tokens/s", "weight roof tokens/s", "tokens/s", "bound"],
                    [[f"MXINT{r['bits']} k{r['block']}", r["arch"], r["macs_per_cycle"],
                      r["cycles_per_token"], f"{100 * r['steady_utilisation']:.1f} %",
                      f"{100 * r['layer_utilisation']:.1f} %",
                      _fmt(r["clock_mhz"], 1) + (" (given)" if r["clock_source"] == "given"
                                                 else ""),
                      _fmt(r["compute_tokens_s"], 0), _fmt(r["memory_tokens_s"], 0),
                      _fmt(r["tokens_s"], 0), _fmt(r["bound"])]
                     for r in section["layer"]], "ll")
    if any(r["clock_mhz"] is None for r in section["layer"]):
        lines += ["", "No clock: the sweep placed nothing on ECP5 and no --tile-clock-mhz "
                  "was given, so the tokens/s columns are empty."]
    return lines + [""]


def _formats_markdown(section: Mapping) -> list[str]:
    lines = ["## MX formats", "",
             "Dot product + accumulator with both operands in the format (E8M0 scale), "
             "generic logic on every target, the MXINT of the same element bits built the "
             "same way beside each minifloat (`× MXINT same bits`: its LUTs/MAC over the "
             "format's). Memory density 32 / (element bits + 8/k).", ""]
    rows = []
    for r in section["rows"]:
        head = [r["format"], r["block"], r["target"],
                "LUT-only" if r["mode"] == "lut" else "DSP", _fmt(r["memory_density"])]
        if r["skipped"]:
            rows.append(head + [f"not generated: {r['skipped']}"] + ["–"] * 7)
            continue
        if r["accum_luts"] is None:  # the dot product alone (accum_refused)
            rows.append(head + [f"{r['dot_luts']}+–", "–", _fmt(r["dot_luts_per_mac"]), "–",
                                "–", _fmt(r["fmax_dot_mhz"], 1), "–", "–"])
            continue
        rows.append(head + [f"{r['dot_luts']}+{r['accum_luts']}", _fmt(r["luts_per_mac"]),
                            _fmt(r["dot_luts_per_mac"]), _fmt(r["ffs_per_mac"]),
                            _fmt(r["density_vs_mxint_peer"]), _fmt(r["fmax_dot_mhz"], 1),
                            _fmt(r["fmax_accum_mhz"], 1), _fmt(r["fmax_mhz"], 1)])
    lines += _table(["format", "k", "target", "mapping", "memory ×", "LUTs (dot+acc)",
                     "LUTs/MAC", "dot LUTs/MAC", "FFs/MAC", "× MXINT same bits",
                     "dot MHz", "acc MHz", "chain MHz"], rows, "lrlll")
    refused = sorted({r["accum_refused"] for r in section["rows"] if r.get("accum_refused")})
    if refused:
        lines += ["", "`+–`: the dot product alone, since the accumulator refuses the format ("
                  + "; ".join(refused) + ")."]
    return lines + [""]


def _table(head: Sequence[str], rows: Iterable[Sequence[object]], align: str) -> list[str]:
    align = align.ljust(len(head), "r")[:len(head)]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines


def to_markdown(report: Mapping) -> str:
    """``density.md``: the tables, notes, the tile and format sections when asked for, the
    paper check and the definitions."""
    sweep, tools = report["sweep"], report["tools"]
    model = report["accuracy"].get("model")
    lines = ["# MXINT density report", "",
             "Generated by `python -m flows.density`. Tools: "
             + ", ".join(f"{name} `{version}`" for name, version in sorted(tools.items()))
             + ".", ""]
    if report["notes"]:
        lines += ["## Not included", ""] + [f"* {note}" for note in report["notes"]] + [""]

    lines += ["## Density", ""]
    lines += _table(
        ["format", "arch", "target", "mapping", "memory ×", "LUTs (dot+acc)", "LUTs/MAC",
         "FFs/MAC", "carry/MAC", "muxes/MAC", "DSPs/MAC", "× fp32", "× bf16", "× int8",
         "× int8 dot", "× int4 dot", "× MXINT8", "× fp32 generic", "× int8 generic",
         "Fmax MHz", "GMAC/s/kLUT",
         "SQNR t3 dB"] + (["SQNR weights dB"] if report["accuracy"]["weights"] else [])
        + (["model cos mean"] if model else []),
        [[r["format"], r["arch"], r["target"], "LUT-only" if r["mode"] == "lut" else "DSP",
          _fmt(r["memory_density"]),
          f"{r['dot_luts']}+{r['accum_luts']}" if r["accumulator_included"]
          else f"{r['dot_luts']} (dot only)",
          _fmt(r["luts_per_mac"]), _fmt(r["ffs_per_mac"]), _fmt(r["carry_per_mac"]),
          _fmt(r["muxes_per_mac"]), _fmt(r["dsps_per_mac"]),
          _fmt(r["density_vs_fp32"]), _fmt(r["density_vs_bf16"]),
          _fmt(r["density_vs_int8"]), _fmt(r["density_vs_int8dot"]),
          _fmt(r["density_vs_int4dot"]), _fmt(r["density_vs_mxint8"]),
          _fmt(r["density_vs_fp32_generic"]), _fmt(r["density_vs_int8_generic"]),
          _fmt(r["fmax_mhz"], 1), _fmt(r["gmacs_per_klut"]),
          _fmt(r["sqnr_t3_db"])]
         + ([_fmt(r["sqnr_weights_db"])] if report["accuracy"]["weights"] else [])
         + ([_fmt(r["model_cosine_mean"], 4)] if model else [])
         for r in report["rows"]], "lllll")
    if model:
        lines += ["", f"model cos mean: {model} with every linear layer's weights and "
                  "activations in the format (blocks along the inner dimension), mean cosine "
                  "similarity of its sentence embeddings to the fp32 model's over the "
                  "evaluation set of `flows.accuracy`; `python -m flows.accuracy` gives the "
                  "minimum, retrieval agreement and per-layer SQNR."]
    lines += [""]
    ecp5 = [r for r in report["rows"] if r["fmax_dot_mhz"] is not None]
    if ecp5:
        lines += ["Fmax on ECP5 (nextpnr, out of context, speed 6, seed "
                  f"{sweep['seed']}); the chain is the two units placed as one design:", ""]
        lines += _table(["format", "arch", "mapping", "device", "dot MHz",
                         "accumulator MHz", "chain MHz"],
                        [[r["format"], r["arch"], "LUT-only" if r["mode"] == "lut" else "DSP",
                          r["device"], _fmt(r["fmax_dot_mhz"], 1),
                          _fmt(r["fmax_accum_mhz"], 1), _fmt(r["fmax_mhz"], 1)]
                         for r in ecp5], "llllrrr")
        lines += [""]
    if "xc7" in sweep["targets"]:
        lines += ["xc7 has no open place-and-route: its rows have no Fmax.", ""]

    lines += ["## Baselines", ""]
    base_rows = []
    for b in report["baselines"]:
        if not b["available"]:
            base_rows.append([b["name"], "–", "–", "not available", "–", "–", "–", "–", "–",
                              _fmt(b["sqnr_t3_db"])]
                             + ([_fmt(b.get("model_cosine_mean"), 4)] if model else []))
            continue
        for r in b["results"]:
            base_rows.append([b["name"], r.get("module", b["module"]), r["target"],
                              "LUT-only" if r["mode"] == "lut" else "DSP", r["luts"],
                              _fmt(r["luts_per_mac"]), _fmt(r["ffs"] / b["macs_per_cycle"]),
                              r["dsps"], _fmt(r["fmax_mhz"], 1), _fmt(b["sqnr_t3_db"])]
                             + ([_fmt(b.get("model_cosine_mean"), 4)] if model else []))
    lines += _table(["baseline", "module", "target", "mapping", "LUTs", "LUTs/MAC", "FFs/MAC",
                     "DSPs", "Fmax MHz",
                     "SQNR t3 dB"] + (["model cos mean"] if model else []),
                    base_rows, "lllllrrrr")
    lines += ["", "fp32 and bf16: multiply-add with subnormals flushed to zero (as vendors' "
              "FP operators), the significand product radix-4 Booth rows in registered "
              "carry chains on xc7 (hw.booth.BoothChains) and Yosys's multiplier on ECP5 "
              "and iCE40 (smaller there with DSPs); int8 and int4: the "
              "product a radix-4 Booth multiplier (hw/booth.py). fp32 generic and int8 "
              "generic: the earlier baselines, Yosys's generic multipliers, fp32 with IEEE "
              "subnormals.", "",
              "bf16 SQNR: a round-to-nearest-even cast; int8 SQNR: per-row absmax scale "
              "(max|x|/127), nearest-even, clamped to ±127.", ""]

    if "tile" in report:
        lines += _tile_markdown(report["tile"], sweep)
    if "formats" in report:
        lines += _formats_markdown(report["formats"])

    check = report["paper_check"]
    lines += ["## Paper check", "", "Memory density, e = 8, k = 16 "
              "(*Revisiting Block-based Quantisation*, EMNLP 2023):", ""]
    lines += _table(["format", "ours", "paper", "equal to 2 decimals"],
                    [[m["format"], f"{m['ours']:.4f}", f"{m['paper']:.2f}",
                      _fmt(m["match"])] for m in check["memory_density"]], "lrrl")
    lines += ["", "Arithmetic density (ours measured with Yosys on xc7 LUT-only; the paper's "
              "from its own hardware model):", ""]
    lines += _table(["comparison", "ours", "paper", "ours / paper"],
                    [[a["what"], _fmt(a["ours"]), _fmt(a["paper"]),
                      _fmt(a["ours_over_paper"])] for a in check["arithmetic_density"]],
                    "lrrr")
    lossless = check["nearly_lossless"]
    lines += ["", f"6-bit nearly lossless (the paper: {lossless['paper']}): "
              + (f"ours, {lossless['model']} W6A6 k16 against fp32: mean cosine "
                 f"{lossless['cosine_mean']:.4f} (a loss of {lossless['loss_percent']:.2f} %), "
                 f"int8 per-row {_fmt(lossless['int8_cosine_mean'], 4)}, bf16 "
                 f"{_fmt(lossless['bf16_cosine_mean'], 4)}."
                 if lossless["cosine_mean"] is not None else
                 "not measured here; run with --model minilm and the 6-bit k16 "
                 "configuration.")]
    lines += ["", "## Definitions", "", "```", report["definitions"].rstrip(), "```", ""]
    return "\n".join(lines)


def to_json(report: Mapping) -> str:
    return json.dumps(report, sort_keys=True, indent=2) + "\n"


def write_reports(report: Mapping, out: Path, *, plots: bool = True) -> list[Path]:
    """Write ``density.md``, ``density.csv``, ``density.json``, with a tile section
    ``density_tile.csv``, with format rows ``density_formats.csv``, and (``plots``) the
    PNGs."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    files = [("density.md", to_markdown(report)), ("density.csv", to_csv(report)),
             ("density.json", to_json(report))]
    if "tile" in report:
        files.append(("density_tile.csv", _csv(tile_rows(report), TILE_CSV_COLUMNS)))
    if "formats" in report:
        files.append(("density_formats.csv",
                      _csv(report["formats"]["rows"], FORMAT_CSV_COLUMNS)))
    for name, text in files:
        written.append(write_atomic(out / name, text))
    if plots:
        from .plots import write_plots
        written += write_plots(report, out)
    return written
