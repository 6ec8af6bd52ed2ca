"""Testbench model of the MXINT dot product (``--top dot``)."""

from __future__ import annotations

import torch

from golden.dot import dot_product
from golden.format import MXIntFormat

from .common import blocks_to_dicts, random_blocks

__all__ = ["DotModel"]


class DotModel:
    """Stimuli and expected results of :class:`hw.dot_product.MXIntDotProduct`."""

    inputs = ("a", "b")
    outputs = ("o",)

    def __init__(self, params: dict) -> None:
        self.fmt_a = MXIntFormat(params["a_bits"], params["exp_bits"], params["block"])
        self.fmt_b = MXIntFormat(params["b_bits"], params["exp_bits"], params["block"])

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

    def stimuli(self, gen: torch.Generator, n: int) -> dict[str, list[dict]]:
        directed = self._directed()
        a_man, a_exp = random_blocks(gen, self.fmt_a, n)
        b_man, b_exp = random_blocks(gen, self.fmt_b, n)
        a_man = torch.cat([torch.tensor([d[0] for d in directed]), a_man])
        a_exp = torch.cat([torch.tensor([d[1] for d in directed]), a_exp])
        b_man = torch.cat([torch.tensor([d[2] for d in directed]), b_man])
        b_exp = torch.cat([torch.tensor([d[3] for d in directed]), b_exp])
        return {"a": blocks_to_dicts(a_man, a_exp), "b": blocks_to_dicts(b_man, b_exp)}

    def expected(self, stimuli: dict[str, list[dict]]) -> dict[str, list[dict]]:
        a, b = stimuli["a"], stimuli["b"]
        r = dot_product(torch.tensor([x["mantissa"] for x in a]),
                        torch.tensor([x["exponent"] for x in a]),
                        torch.tensor([x["mantissa"] for x in b]),
                        torch.tensor([x["exponent"] for x in b]), self.fmt_a, self.fmt_b)
        return {"o": [{"sum": s, "exponent": e, "nan": int(f)} for s, e, f in
                      zip(r.sum.tolist(), r.exponent.tolist(), r.nan.tolist(), strict=True)]}


