"""Testbench model of the integer k-lane dot product with accumulator (``--top intdot``)."""

from __future__ import annotations

import torch

from golden.int_dot import check_int_dot, int_dot

from .common import random_group_ends, signed_full_range

__all__ = ["IntDotModel"]

#: Inputs of each long directed group.
LONG_GROUP = 70


class IntDotModel:
    """Stimuli and expected results of :class:`hw.int_dot.IntDotProduct`."""

    inputs = ("i",)
    outputs = ("o",)

    def __init__(self, params: dict) -> None:
        self.a_bits, self.b_bits = params["a_bits"], params["b_bits"]
        self.block = params["block"]
        self.acc_width = check_int_dot(self.a_bits, self.b_bits, self.block,
                                      params.get("acc_width"))

    def _directed(self) -> list[tuple[list[int], list[int], int]]:
        """Corner inputs ``(a, b, last)``: single-input groups of zeros, of every extreme
        product in all lanes (all ``-2**(m-1)``, all max, their mixes) and of mixed signs
        across lanes; a group of 70 all-most-negative inputs (the largest positive sum),
        one of 70 most negative sums, and a mixed group closed by zeros. The long groups
        wrap a small ``acc_width``."""
        k = self.block
        lo_a, lo_b = -(1 << (self.a_bits - 1)), -(1 << (self.b_bits - 1))
        hi_a, hi_b = -lo_a - 1, -lo_b - 1
        alt_a = [hi_a if n % 2 else lo_a for n in range(k)]
        alt_b = [hi_b if n % 3 else lo_b for n in range(k)]
        neg_b = [-1 if n % 2 else 1 for n in range(k)]

        def same(x: int, y: int, last: int = 1) -> tuple[list[int], list[int], int]:
            return [x] * k, [y] * k, last

        items = [same(0, 0), same(lo_a, 0), same(lo_a, lo_b), same(hi_a, hi_b),
                 same(lo_a, hi_b), same(hi_a, lo_b), same(-1, -1), same(1, -1),
                 (alt_a, alt_b, 1), ([1] * k, neg_b, 1)]
        items += [same(lo_a, lo_b, 0)] * (LONG_GROUP - 1) + [same(lo_a, lo_b)]
        items += [same(lo_a, hi_b, 0)] * (LONG_GROUP - 1) + [same(lo_a, hi_b)]
        items += [same(hi_a, hi_b, 0), (alt_a, alt_b, 0), same(0, 0)]
        return items

    def stimuli(self, gen: torch.Generator, n: int) -> dict[str, list[dict]]:
        """Directed inputs, then ``n`` random inputs with full-range signed lanes in groups
        of 1 to 16 inputs (one in eight groups 17 to 300 long); the final input closes its
        group."""
        a = signed_full_range(gen, self.a_bits, (n, self.block)).tolist()
        b = signed_full_range(gen, self.b_bits, (n, self.block)).tolist()
        last = random_group_ends(gen, n)
        items = self._directed() + list(zip(a, b, last, strict=True))
        return {"i": [{"a": x, "b": y, "last": e} for x, y, e in items]}

    def expected(self, stimuli: dict[str, list[dict]]) -> dict[str, list[dict]]:
        items = stimuli["i"]
        sums = int_dot([x["a"] for x in items], [x["b"] for x in items],
                       [x["last"] for x in items], a_bits=self.a_bits, b_bits=self.b_bits,
                       block=self.block, acc_width=self.acc_width)
        return {"o": [{"sum": s} for s in sums]}


