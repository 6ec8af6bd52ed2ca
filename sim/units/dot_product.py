"""Testbench model of the block dot product (``--top dot``): MXINT, MXFP and mixed."""

from __future__ import annotations

import torch

from golden.dot import dot_product, mx_dot_product
from golden.format import MXIntFormat

from .common import (
    block_format,
    corner_blocks,
    element_field,
    pair_stimuli,
    random_code_blocks,
)

__all__ = ["DotModel"]


class DotModel:
    """Stimuli and expected results of :class:`hw.dot_product.MXIntDotProduct`.

    Two MXINT operands: the MXINT corners (:meth:`_directed`) and full-range random
    blocks. A minifloat operand: every code uniformly (specials included) and scale codes
    uniform over 0 .. 255 with one block in twenty forced to 255, after the corners of
    :meth:`_directed_mx` (all +max, all -max, -0, subnormals, NaN and infinity codes,
    scale codes 0, 254 and 255).
    """

    inputs = ("a", "b")
    outputs = ("o",)

    def __init__(self, params: dict) -> None:
        self.fmt_a, self.fmt_b = block_format(params, "a"), block_format(params, "b")
        self.mxint = isinstance(self.fmt_a, MXIntFormat) and isinstance(self.fmt_b, MXIntFormat)

    def _directed(self) -> tuple[list, list, list, list]:
        """Corner block pairs: (a mantissas, a exponent, b mantissas, b exponent)."""
        fa, fb = self.fmt_a, self.fmt_b
        k = fa.block
        most_neg_a, most_neg_b = -(1 << (fa.man_bits - 1)), -(1 << (fb.man_bits - 1))
        alt_a = [fa.max_man if i % 2 else -fa.max_man for i in range(k)]
        alt_b = [fb.max_man if i % 3 else most_neg_b for i in range(k)]
        top, nan = fa.max_code, fa.nan_code
        return [
            ([0] * k, fa.bias, [0] * k, fb.bias),                           # zeros
            ([fa.max_man] * k, top, [fb.max_man] * k, top),                 # all +max, top exp
            ([most_neg_a] * k, 0, [most_neg_b] * k, 0),                     # all -2**(m-1)
            ([-fa.max_man] * k, 0, [fb.max_man] * k, top),                  # all -max * +max
            ([most_neg_a] * k, top, [fb.max_man] * k, 0),                   # most negative sum
            (alt_a, 1, alt_b, top - 1),                                     # mixed signs
            ([fa.max_man] * k, nan, [fb.max_man] * k, 0),                   # NaN on a
            ([1] * k, 0, [-1] * k, nan),                                    # NaN on b
            ([most_neg_a] * k, nan, [most_neg_b] * k, nan),                 # NaN on both
        ]

    def _directed_mx(self) -> list[tuple[list, int, list, int]]:
        """Corner block pairs of a design with a minifloat operand: the two operands'
        corners role by role, then all-+max against the other's all-most-negative."""
        ca, cb = corner_blocks(self.fmt_a), corner_blocks(self.fmt_b)
        pairs = [(a, ea, b, eb) for (a, ea), (b, eb) in zip(ca, cb, strict=True)]
        pairs[3] = (ca[3][0], ca[3][1], cb[1][0], cb[1][1])   # -max x +max
        pairs.append((ca[1][0], 254, cb[2][0], 254))          # +max x -max at the top scale
        pairs.append((ca[2][0], 254, cb[7][0], 0))            # -max x (inf or NaN) codes
        return pairs

    def stimuli(self, gen: torch.Generator, n: int) -> dict[str, list[dict]]:
        directed = self._directed() if self.mxint else self._directed_mx()
        a = random_code_blocks(gen, self.fmt_a, n)
        b = random_code_blocks(gen, self.fmt_b, n)
        return pair_stimuli(directed, a, b, self.fmt_a, self.fmt_b)

    def expected(self, stimuli: dict[str, list[dict]]) -> dict[str, list[dict]]:
        a, b = stimuli["a"], stimuli["b"]
        fa, fb = element_field(self.fmt_a), element_field(self.fmt_b)
        golden = dot_product if self.mxint else mx_dot_product
        r = golden(torch.tensor([x[fa] for x in a]), torch.tensor([x["exponent"] for x in a]),
                   torch.tensor([x[fb] for x in b]), torch.tensor([x["exponent"] for x in b]),
                   self.fmt_a, self.fmt_b)
        return {"o": [{"sum": s, "exponent": e, "nan": int(f)} for s, e, f in
                      zip(r.sum_list(), r.exponent.tolist(), r.nan.tolist(), strict=True)]}
