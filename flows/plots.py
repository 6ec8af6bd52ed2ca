"""PNG plots of a :func:`flows.density.run` report, drawn with matplotlib's Agg back end.

:func:`write_plots` draws, each to its own file in the output folder:

* ``arithmetic_density.png``: density against fp32 (LUTs/MAC when there is no fp32
  baseline) against element bits, one line per block size and target, LUT-only;
* ``memory_density.png``: ``32 / (m + e/k)`` against element bits, one line per block;
* ``fmax.png``: placed ECP5 Fmax of the chain against element bits, per block and mapping;
* ``pareto.png``: arithmetic (or LUTs/MAC) against SQNR on Student-t data, every
  configuration a point, the Pareto front (no other point both denser and more accurate)
  joined by a line;
* ``pareto_model.png`` (with ``--model``): the same against the real model's mean cosine
  similarity to its fp32 embeddings;
* ``formats.png`` (with ``--formats``): LUTs per MAC of the dot product + accumulator
  against element bits, LUT-only, one line per family (MXFP, MXINT), block and target,
  each point named by its format.

The files hold no timestamp (``metadata={"Software": None}``), so the same report gives
the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from cli.files import write_atomic

__all__ = ["pareto_front", "write_plots"]

_META = {"Software": None}


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats in both coordinates (larger is better in both),
    sorted by the first coordinate."""
    front = []
    for p in sorted(set(points), key=lambda p: (-p[0], -p[1])):
        if not front or p[1] > front[-1][1]:
            front.append(p)
    return sorted(front)


def _lines(rows, key, *, group, x="bits"):
    series: dict[tuple, list[tuple[float, float]]] = {}
    for r in rows:
        if r[key] is None:
            continue
        series.setdefault(tuple(r[g] for g in group), []).append((r[x], r[key]))
    return {name: sorted(points) for name, points in sorted(series.items())}


def write_plots(report: Mapping, out: Path) -> list[Path]:
    """Draw the plots of ``report`` into ``out``; returns the files written (a plot
    without data is skipped)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    lut_rows = [r for r in rows if r["mode"] == "lut"]
    have_fp32 = any(r["density_vs_fp32"] is not None for r in rows)
    arith_key, arith_label = (("density_vs_fp32", "arithmetic density over fp32 (×)")
                              if have_fp32 else ("luts_per_mac", "LUTs per MAC (no fp32 "
                                                                 "baseline)"))
    written = []

    def save(fig, name: str) -> None:
        path = out / name
        fig.tight_layout()
        write_atomic(path, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=110,
                                                            metadata=_META))
        plt.close(fig)
        written.append(path)

    def line_plot(data, title, ylabel, name, label) -> None:
        if not data:
            return
        fig, ax = plt.subplots(figsize=(6, 4))
        for key, points in data.items():
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=label(key))
        ax.set_xlabel("element bits m")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        save(fig, name)

    line_plot(_lines(lut_rows, arith_key, group=("block", "target", "arch")),
              "Arithmetic density, LUT-only", arith_label, "arithmetic_density.png",
              lambda key: f"k={key[0]} {key[1]} {key[2]}")
    seen = {}
    for r in rows:
        seen[(r["block"], r["bits"])] = r
    line_plot(_lines(seen.values(), "memory_density", group=("block",)),
              "Memory density over fp32, 32 / (m + e/k)", "memory density (×)",
              "memory_density.png", lambda key: f"k={key[0]}")
    line_plot(_lines([r for r in rows if r["target"] == "ecp5"], "fmax_mhz",
                     group=("block", "mode", "arch")),
              "ECP5 placed Fmax (dot product + accumulator)", "Fmax (MHz)", "fmax.png",
              lambda key: f"k={key[0]} {'LUT-only' if key[1] == 'lut' else 'DSP'} {key[2]}")

    def pareto_plot(accuracy_key: str, xlabel: str, name: str) -> None:
        points = [(r[accuracy_key], r[arith_key], r) for r in lut_rows
                  if r.get(accuracy_key) is not None and r[arith_key] is not None]
        if not points:
            return
        fig, ax = plt.subplots(figsize=(6, 4))
        for target in sorted({p[2]["target"] for p in points}):
            mine = [p for p in points if p[2]["target"] == target]
            ax.scatter([p[0] for p in mine], [p[1] for p in mine], label=target)
            for sqnr, value, r in mine:
                ax.annotate(f"{r['bits']}b k{r['block']} {r['arch']}", (sqnr, value),
                            fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
            sign = 1 if have_fp32 else -1  # fewer LUTs/MAC is better
            front = pareto_front([(p[0], sign * p[1]) for p in mine])
            ax.plot([f[0] for f in front], [sign * f[1] for f in front], linestyle="--",
                    alpha=0.6)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(arith_label)
        ax.set_title("Density against accuracy (LUT-only), Pareto front dashed")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        save(fig, name)

    formats = [r for r in report.get("formats", {}).get("rows", [])
               if r["mode"] == "lut" and not r["skipped"] and r["luts_per_mac"] is not None]
    if formats:
        fig, ax = plt.subplots(figsize=(6, 4))
        series: dict[tuple, list] = {}
        for r in formats:
            family = "MXINT" if r["format"].startswith("mxint") else "MXFP"
            series.setdefault((family, r["block"], r["target"]), []).append(r)
        for (family, k, target), points in sorted(series.items()):
            points.sort(key=lambda r: (r["element_bits"], r["format"]))
            ax.plot([r["element_bits"] for r in points], [r["luts_per_mac"] for r in points],
                    marker="o" if family == "MXFP" else "s",
                    linestyle="-" if family == "MXFP" else "--",
                    label=f"{family} k={k} {target}")
            for r in points:
                ax.annotate(r["format"], (r["element_bits"], r["luts_per_mac"]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("element bits")
        ax.set_ylabel("LUTs per MAC (dot product + accumulator)")
        ax.set_title("MX formats, LUT-only, generic logic")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        save(fig, "formats.png")

    pareto_plot("sqnr_t3_db", "SQNR on Student-t (3 dof) data (dB)", "pareto.png")
    model = report["accuracy"].get("model")
    pareto_plot("model_cosine_mean",
                f"{model}: mean cosine of sentence embeddings against fp32",
                "pareto_model.png")
    return written
