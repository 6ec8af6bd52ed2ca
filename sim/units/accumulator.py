"""Testbench model of the accumulator of dot results (``--top accum``)."""

from __future__ import annotations

import torch

from golden.accumulator import accum_in_width, accumulate_stream
from hw.accumulator import DEFAULT_ALIGN, DEFAULT_GUARD_BITS, default_acc_width, partial_sums

from .common import signed_full_range

__all__ = ["AccumModel"]


class AccumModel:
    """Stimuli and expected results of :class:`hw.accumulator.MXIntAccumulator`.

    Stimuli are groups (closed by ``last``) of directed corners first, then ``n`` random
    inputs in groups of random length (1 to 12, a quarter of them single inputs).
    """

    inputs = ("i",)
    outputs = ("o",)

    def __init__(self, params: dict) -> None:
        self.exp_bits = params.get("exp_bits", 8)
        self.in_width = accum_in_width(
            a_bits=params.get("a_bits"), b_bits=params.get("b_bits"), block=params["block"],
            a_element=params.get("a_element", "int"), b_element=params.get("b_element", "int"))
        self.guard_bits = params.get("guard_bits", DEFAULT_GUARD_BITS)
        self.acc_width = params.get("acc_width") or default_acc_width(self.in_width,
                                                                      self.guard_bits)
        self.partial_sums = partial_sums(params.get("align", DEFAULT_ALIGN))
        #: The lookahead's drains are directed at align="lookahead" only (the other aligns
        #: have no pending shift; their rises are the groups above).
        self.lookahead = params.get("align", DEFAULT_ALIGN) == "lookahead"

    @property
    def max_exponent(self) -> int:
        """Largest value of the ``exponent`` field, ``2**(exp_bits+1) - 1``."""
        return (1 << (self.exp_bits + 1)) - 1

    def _directed(self) -> list[list[tuple[int, int, int]]]:
        """Corner groups of ``(sum, exponent, nan)``."""
        hi, lo = (1 << (self.in_width - 1)) - 1, -(1 << (self.in_width - 1))
        top, g = self.max_exponent, self.guard_bits
        mid = top // 2
        span = self.in_width + g
        # Inputs of equal exponent needed to overflow W bits from the full-scale input.
        n_sat = min((1 << max(self.acc_width - self.in_width - g, 0)) + 2, 300)
        groups = [
            [(hi, 0, 0)], [(lo, top, 0)], [(0, mid, 0)], [(-1, 0, 0)],            # singles
            [(lo, 0, 0), (hi, top, 0)],                    # negative A shifted far: -1
            [(hi, top, 0), (lo, 0, 0)],                    # negative x shifted far: -1
            [(-1, top - span - 1, 0), (1, top, 0)],
            [(-3, mid, 0), (5, mid + 1, 0), (-7, mid + 2, 0), (-9, mid + 3, 0)],  # rising E
            [(-3, mid, 0), (5, mid - 1, 0), (-7, mid - 2, 0), (-9, mid - 3, 0)],  # falling E
            [(lo, mid, 0), (lo, mid - g, 0), (lo, mid - g - 1, 0), (lo, mid - span, 0),
             (lo, mid - span - 1, 0)],                      # shifts around the widths
            [(hi, mid, 0), (lo, mid, 0), (hi, mid, 0)],     # equal exponents
            [(5, 3, 1)], [(5, 3, 0), (6, 4, 1), (7, 5, 0)], [(5, 3, 0), (6, 2, 1)],  # NaN
            [(hi, 0, 1), (lo, top, 0)],
            [(hi, mid, 0)] * n_sat,                        # positive saturation
            [(lo, mid, 0)] * n_sat,                        # negative saturation
            [(hi, mid, 0)] * (n_sat - 1),                  # near or just past the bound
            [(lo, mid, 0)] * (n_sat - 2),                  # all -max: -2**(W-1), in range
            [(lo, mid, 0)] * (n_sat - 1),                  # ... one more leaves it
            [(hi, mid, 0)] * n_sat + [(lo, mid, 0)] * 3,   # back in range: still clamped
            [(lo, mid, 0)] * n_sat + [(0, top, 0)],        # A shifted back: still clamped
            [(0, 0, 0), (0, top, 0)],                      # zeros
            # Rises of the running maximum (each a stall of align="stall"): by 1 in a run,
            # by the near/far split (7, 8, 9), by W - 1 and past W, back to back and at the
            # group's end; the group after them opens with a rise of its own.
            [(lo + j, mid - 12 + j, 0) for j in range(12)],
            [(hi - j, j, 0) for j in range(12)],
            [(hi, 0, 0), (lo, 7, 0), (hi, 15, 0), (lo, 24, 0), (hi, 33, 0), (lo, 33, 0)],
            [(lo, 0, 0), (hi, 1, 0), (lo, 1 + self.acc_width - 1, 0),
             (hi, 1 + 2 * self.acc_width, 0), (-1, top, 0)],
            [(hi, mid, 0)] * (n_sat - 1) + [(hi, mid + 1, 0), (lo, mid + 2, 0)],
            [(-1, 0, 0), (hi, 9, 0), (lo, 8, 0), (hi, 17, 1), (lo, 16, 0)],
            # align="lookahead" (docs/arithmetic.md): a rise of q sets its pending shift to
            # q, the next rise, of W - 1 - q, drains it by W - 1: a drain from every value
            # 0 .. W - 2 (every second or third past W = 32; where the exponent field reaches
            # W - 1), on full-scale sums of both signs, so that the carry between the
            # loop's two adders moves in the drain.
            *([(lo if q % 2 else hi, 0, 0), (hi if q % 2 else lo, q, 0),
               (lo if q % 3 else hi, self.acc_width - 1, 0)]
              for q in (sorted(set(range(0, self.acc_width - 1,
                                         max(1, (self.acc_width - 1) // 16)))
                               | {self.acc_width - 2}) if self.lookahead else ())),
        ]
        return [[(max(lo, min(s, hi)), max(0, min(e, top)), f) for s, e, f in grp]
                for grp in groups]

    def stimuli(self, gen: torch.Generator, n: int) -> dict[str, list[dict]]:
        items = []
        for grp in self._directed():
            for j, (s, e, f) in enumerate(grp):
                items.append({"sum": s, "exponent": e, "nan": f, "last": int(j == len(grp) - 1)})
        sums = signed_full_range(gen, self.in_width, (n,)).tolist()
        spread = self.guard_bits + 4
        pos = 0
        while pos < n:
            size = 1 if torch.rand((), generator=gen) < 0.25 else \
                int(torch.randint(1, 13, (), generator=gen))
            size = min(size, n - pos)
            # Half of the groups keep exponents near a base (so terms overlap), the rest
            # spread over every code, 0 and the largest included.
            if torch.rand((), generator=gen) < 0.5:
                base = int(torch.randint(0, self.max_exponent + 1, (), generator=gen))
                exps = (base + torch.randint(-spread, spread + 1, (size,), generator=gen)
                        ).clamp(0, self.max_exponent)
            else:
                exps = torch.randint(0, self.max_exponent + 1, (size,), generator=gen)
            nans = torch.rand((size,), generator=gen) < 0.03
            for j in range(size):
                items.append({"sum": sums[pos + j], "exponent": int(exps[j]),
                              "nan": int(nans[j]), "last": int(j == size - 1)})
            pos += size
        return {"i": items}

    def expected(self, stimuli: dict[str, list[dict]]) -> dict[str, list[dict]]:
        i = stimuli["i"]
        r = accumulate_stream(torch.tensor([x["sum"] for x in i], dtype=torch.int64),
                              torch.tensor([x["exponent"] for x in i], dtype=torch.int64),
                              torch.tensor([x["nan"] for x in i], dtype=torch.bool),
                              torch.tensor([x["last"] for x in i], dtype=torch.bool),
                              guard_bits=self.guard_bits, acc_width=self.acc_width,
                              partial_sums=self.partial_sums)
        return {"o": [{"sum": s, "exponent": e, "nan": int(f)} for s, e, f in
                      zip(r.sum.tolist(), r.exponent.tolist(), r.nan.tolist(), strict=True)]}


