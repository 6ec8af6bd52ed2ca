"""Testbench model of the dequantiser (``--top dequant``): MXINT blocks to float32 patterns."""

from __future__ import annotations

import torch

from golden.dequant import dequant_blocks
from golden.format import MXIntFormat

from .common import random_blocks

__all__ = ["MODEL", "DequantModel"]


class DequantModel:
    """Stimuli and expected results of :class:`hw.dequantizer.MXIntDequantizer`."""

    key = "dequant"

    inputs = ("i",)
    outputs = ("o",)

    def __init__(self, params: dict) -> None:
        self.fmt = MXIntFormat(params["man_bits"], params.get("exp_bits", 8), params["block"])

    def _directed(self) -> list[tuple[list[int], int]]:
        """Corner blocks ``(mantissas, code)``; lists shorter than ``k`` are repeated."""
        fmt = self.fmt
        most_neg, top, nan = -(1 << (fmt.man_bits - 1)), fmt.max_code, fmt.nan_code
        powers = [1 << j for j in range(fmt.man_bits - 1)]
        powers += [-p for p in powers]
        return [
            ([0], 0), ([0], top), ([0], fmt.bias),                        # zeros
            ([fmt.max_man], top), ([-fmt.max_man], top),                  # largest values
            ([most_neg], top),                                            # -inf when e = 8
            ([most_neg], 0), ([-fmt.max_man], 0),                         # all -max, code 0
            ([1, -1, 0], 0),                                              # smallest values
            ([1, -1, min(3, fmt.max_man), most_neg, fmt.max_man], 1),     # code 1
            (powers, fmt.bias), (powers, top - 1),                        # every leading one
            ([fmt.max_man, most_neg, 0, 1], nan), ([0], nan),                   # NaN blocks
        ]

    def stimuli(self, gen: torch.Generator, n: int) -> dict[str, list[dict]]:
        k = self.fmt.block
        blocks = []
        for values, code in self._directed():
            for start in range(0, len(values), k):
                chunk = values[start:start + k]
                blocks.append(([chunk[i % len(chunk)] for i in range(k)], code))
        man, exp = random_blocks(gen, self.fmt, n)
        # Half the random blocks get small mantissas, so every leading-one position occurs.
        shift = torch.randint(0, self.fmt.man_bits, (n, 1), generator=gen)
        man = torch.where(torch.arange(n).unsqueeze(1) % 2 == 1, man >> shift, man)
        items = [{"mantissa": b, "exponent": c} for b, c in blocks]
        items += [{"mantissa": b, "exponent": c} for b, c in zip(man.tolist(), exp.tolist(),
                                                                 strict=True)]
        return {"i": items}

    def expected(self, stimuli: dict[str, list[dict]]) -> dict[str, list[dict]]:
        items = stimuli["i"]
        bits = dequant_blocks(torch.tensor([x["mantissa"] for x in items], dtype=torch.int64),
                              torch.tensor([x["exponent"] for x in items], dtype=torch.int64),
                              self.fmt)
        return {"o": [{"bits": b} for b in bits.tolist()]}


MODEL = DequantModel
