"""The paper check: our figures beside those of *Revisiting Block-based Quantisation*
(EMNLP 2023).

Memory densities are the paper's formula and must equal its numbers to two decimals;
arithmetic densities are ours (Yosys on xc7, LUT-only) beside the paper's own hardware
model, with ours / theirs.
"""

from __future__ import annotations

from collections.abc import Mapping

from golden.format import MXIntFormat
from hw.bitheap import DEFAULT_ARCH

__all__ = ["PAPER", "find_row", "paper_check", "ratio"]


#: The paper's figures (EMNLP 2023, "Revisiting Block-based Quantisation").
PAPER = {
    "memory_density_k16": {4: 7.11, 6: 4.92, 8: 3.76},
    "memory_density_int8": 4.0,
    "arith_6bit_vs_fp32": 19.0,
    "arith_6bit_vs_8bit": 2.5,
    "nearly_lossless": "6-bit block formats are nearly lossless on LLMs",
}


def ratio(num: float | None, den: float | None) -> float | None:
    """``num / den``, or ``None`` if either is missing or ``den`` is 0."""
    if num is None or den is None or den == 0:
        return None
    return num / den


def find_row(report: Mapping, target: str, mode: str, m: int = 6,
             k: int = 16) -> Mapping | None:
    """The row of ``report`` for ``m`` bits, block ``k``, ``e = 8``, ``target`` and
    ``mode``: that of the generator's default architecture, else of the densest one;
    ``None`` if the sweep has no such row."""
    found = [r for r in report["rows"]
             if (r["bits"], r["block"], r["target"], r["mode"], r["exp_bits"]) ==
             (m, k, target, mode, 8)]
    found.sort(key=lambda r: (r.get("arch") != DEFAULT_ARCH, r["luts_per_mac"]))
    return found[0] if found else None


def paper_check(report: Mapping) -> dict:
    """The paper's figures beside ours.

    Memory densities are computed for ``e = 8, k = 16`` whatever the sweep; arithmetic
    figures need the 6-bit block-16 rows (and the baselines) in ``report``.
    """
    memory = []
    for m, theirs in PAPER["memory_density_k16"].items():
        ours = MXIntFormat(m, 8, 16).memory_density
        memory.append({"format": f"W{m}A{m} k16", "ours": ours, "paper": theirs,
                       "match": round(ours, 2) == theirs})
    memory.append({"format": "int8", "ours": 32 / 8, "paper": PAPER["memory_density_int8"],
                   "match": 32 / 8 == PAPER["memory_density_int8"]})

    arithmetic = []
    six = find_row(report, "xc7", "lut")
    eight_mx = find_row(report, "xc7", "lut", m=8)
    comparisons = [
        ("6-bit k16 vs fp32 flush-to-zero, Booth multiplier (xc7, LUT-only)",
         six and six["density_vs_fp32"],
         PAPER["arith_6bit_vs_fp32"]),
        ("6-bit k16 vs int8 MAC, Booth multiplier (xc7, LUT-only)",
         six and six["density_vs_int8"],
         PAPER["arith_6bit_vs_8bit"]),
        ("6-bit k16 vs int8 k16 dot product (xc7, LUT-only)",
         six and six["density_vs_int8dot"], PAPER["arith_6bit_vs_8bit"]),
        ("6-bit k16 vs MXINT8 k16 (xc7, LUT-only)",
         six and eight_mx and ratio(eight_mx["luts_per_mac"], six["luts_per_mac"]),
         PAPER["arith_6bit_vs_8bit"]),
        # The earlier baselines: generic multipliers, fp32 with IEEE subnormals.
        ("6-bit k16 vs fp32 generic-multiplier IEEE (xc7, LUT-only)",
         six and six.get("density_vs_fp32_generic"), PAPER["arith_6bit_vs_fp32"]),
        ("6-bit k16 vs int8 MAC generic-multiplier (xc7, LUT-only)",
         six and six.get("density_vs_int8_generic"), PAPER["arith_6bit_vs_8bit"]),
    ]
    for label, ours, theirs in comparisons:
        arithmetic.append({"what": label, "ours": ours, "paper": theirs,
                           "ours_over_paper": ratio(ours, theirs)})

    six_any = next((r for r in report["rows"] if (r["bits"], r["block"]) == (6, 16)
                    and r.get("model_cosine_mean") is not None), None)
    base = {b["name"]: b.get("model_cosine_mean") for b in report.get("baselines", [])}
    cosine = six_any["model_cosine_mean"] if six_any else None
    lossless = {"paper": PAPER["nearly_lossless"],
                "model": report.get("accuracy", {}).get("model"),
                "cosine_mean": cosine,
                "loss_percent": None if cosine is None else 100 * (1 - cosine),
                "int8_cosine_mean": base.get("int8"), "bf16_cosine_mean": base.get("bf16")}
    return {"memory_density": memory, "arithmetic_density": arithmetic,
            "nearly_lossless": lossless}
