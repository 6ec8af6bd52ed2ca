"""Testbench model of the integer multiply-accumulate baseline (``--top intmac``)."""

from __future__ import annotations

import torch

from golden.int_mac import check_int_mac, int_mac

from .common import random_group_ends, signed_full_range

__all__ = ["IntMacModel"]


class IntMacModel:
    """Stimuli and expected results of :class:`hw.int_mac.IntMultiplyAccumulate`."""

    inputs = ("i",)
    outputs = ("o",)

    def __init__(self, params: dict) -> None:
        self.a_bits, self.b_bits = params["a_bits"], params["b_bits"]
        self.acc_width = check_int_mac(self.a_bits, self.b_bits, params.get("acc_width"))

    def _directed(self) -> list[tuple[int, int, int]]:
        """Corner terms: single-term groups of zero and of every extreme product, a group
        of 70 most-negative squares (the largest positive sum) and one of 70 most
        negative products (the most negative sum)."""
        lo_a, lo_b = -(1 << (self.a_bits - 1)), -(1 << (self.b_bits - 1))
        hi_a, hi_b = -lo_a - 1, -lo_b - 1
        terms = [(0, 0, 1), (lo_a, 0, 1), (lo_a, lo_b, 1), (hi_a, hi_b, 1), (lo_a, hi_b, 1),
                 (hi_a, lo_b, 1), (-1, -1, 1), (1, -1, 1)]
        terms += [(lo_a, lo_b, 0)] * 69 + [(lo_a, lo_b, 1)]
        terms += [(lo_a, hi_b, 0)] * 69 + [(lo_a, hi_b, 1)]
        terms += [(hi_a, hi_b, 0), (lo_a, hi_b, 0), (0, 0, 1)]
        return terms

    def stimuli(self, gen: torch.Generator, n: int) -> dict[str, list[dict]]:
        """Directed terms, then ``n`` random full-range terms in groups of 1 to 16 (one in
        eight groups 17 to 300 long); the final term closes its group."""
        a = signed_full_range(gen, self.a_bits, (n,)).tolist()
        b = signed_full_range(gen, self.b_bits, (n,)).tolist()
        last = random_group_ends(gen, n)
        items = self._directed() + list(zip(a, b, last, strict=True))
        return {"i": [{"a": x, "b": y, "last": e} for x, y, e in items]}

    def expected(self, stimuli: dict[str, list[dict]]) -> dict[str, list[dict]]:
        items = stimuli["i"]
        sums = int_mac([x["a"] for x in items], [x["b"] for x in items],
                       [x["last"] for x in items], a_bits=self.a_bits, b_bits=self.b_bits,
                       acc_width=self.acc_width)
        return {"o": [{"sum": s} for s in sums]}


