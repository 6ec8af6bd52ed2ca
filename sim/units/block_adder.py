"""Testbench model of the block adder (``--top adder``): MXINT, MXFP and mixed operands."""

from __future__ import annotations

import torch

from golden.block_adder import block_add, sum_bits
from golden.format import MXIntFormat

from .common import (
    block_format,
    blocks_to_dicts,
    corner_blocks,
    element_field,
    pair_stimuli,
    random_code_blocks,
)

__all__ = ["AdderModel"]


class AdderModel:
    """Stimuli and expected results of :class:`hw.block_adder.MXIntBlockAdder`.

    Two MXINT operands: the MXINT corners (:meth:`_directed`) and full-range random
    blocks. A minifloat operand: the dot product's corners role by role (all +max, all
    -max, -0, subnormals, infinity and NaN codes, scale codes 0, 254 and 255,
    :func:`sim.units.common.corner_blocks`), +max against -max, -max against
    -max at the top scale, both at scale 0, -max or subnormals far below +max, subnormals
    against -max with the scales ``d = 1, 2, W - 1, W, W + 1`` apart either way; then
    every code uniformly (specials included), scales uniform over 0 .. 255 with one block
    in twenty forced to 255. In both cases half of the random pairs get scales at most
    ``W + 2`` apart, so that both operands matter.
    """

    inputs = ("a", "b")
    outputs = ("o",)

    def __init__(self, params: dict) -> None:
        self.fmt_a, self.fmt_b = block_format(params, "a"), block_format(params, "b")
        self.mxint = isinstance(self.fmt_a, MXIntFormat) and isinstance(self.fmt_b, MXIntFormat)
        self.out_bits = params["out_bits"]
        self.guard_bits = params.get("guard_bits", 3)
        self.rounding = params.get("rounding", "even")

    @property
    def width(self) -> int:
        """``W`` (``M + G`` for MXINT): where the alignment shift reaches the sign."""
        return sum_bits(self.fmt_a, self.fmt_b, self.guard_bits)[1]

    def _directed_mx(self) -> list[tuple[list, int, list, int]]:
        """Corner block pairs of a design with a minifloat operand."""
        ca, cb = corner_blocks(self.fmt_a), corner_blocks(self.fmt_b)
        pairs = [(a, ea, b, eb) for (a, ea), (b, eb) in zip(ca, cb, strict=True)]
        top = self.fmt_a.max_code
        plus_a, minus_a, small_a = ca[1][0], ca[2][0], ca[5][0]
        plus_b, minus_b, small_b = cb[1][0], cb[2][0], cb[5][0]
        pairs += [
            (plus_a, top, minus_b, top),        # +max + -max: exact cancellation if equal
            (minus_a, top, minus_b, top),       # -max + -max at the top: saturation
            (plus_a, 0, plus_b, 0),             # smallest scale
            (small_a, 0, small_b, 0),           # subnormals at the smallest scale
            (minus_a, 0, plus_b, top),          # shift far beyond the width, either way
            (plus_a, top, small_b, 0),          # negative subnormals far below: -1 unit
        ]
        for d in (1, 2, self.width - 1, self.width, self.width + 1):
            if d <= top:
                pairs.append((small_a, top, minus_b, top - d))
                pairs.append((minus_a, top - d, small_b, top))
        return pairs

    def _directed(self) -> list[tuple[list, int, list, int]]:
        """Corner block pairs: (a mantissas, a exponent, b mantissas, b exponent)."""
        fa, fb = self.fmt_a, self.fmt_b
        k = fa.block
        neg_a, neg_b = -(1 << (fa.man_bits - 1)), -(1 << (fb.man_bits - 1))
        top, nan, bias = fa.max_code, fa.nan_code, fa.bias
        # Equal values in both formats, for exact cancellation.
        narrow = min(fa.man_bits, fb.man_bits)
        c = [((1 << (narrow - 1)) - 1 - i) * (1 if i % 2 else -1) for i in range(k)]
        ca = [v << (fa.man_bits - narrow) for v in c]
        cb = [-(v << (fb.man_bits - narrow)) for v in c]
        # Odd magnitudes, mostly negative: an alignment floor always drops a one bit.
        odd_a = [(1 if i % 3 == 2 else -1) * min(fa.max_man, 2 * i + 1) for i in range(k)]
        odd_b = [(1 if i % 3 == 2 else -1) * min(fb.max_man, 2 * i + 1) for i in range(k)]
        mixed_b = [fb.max_man if i % 3 else neg_b for i in range(k)]
        cases = [
            ([0] * k, bias, [0] * k, bias),                                # zeros
            (ca, bias, cb, bias),                                          # cancellation
            (ca, 0, cb, 0),                                                # cancellation, E=0
            ([fa.max_man] * k, top, [fb.max_man] * k, top),               # saturation at top
            ([neg_a] * k, top, [neg_b] * k, top),                          # all -2**(m-1), top
            ([neg_a] * k, 0, [neg_b] * k, 0),                              # all -2**(m-1), E=0
            ([neg_a] * k, bias, [neg_b] * k, bias),                        # equal exponents
            ([fa.max_man] * k, 0, [-fb.max_man] * k, 0),                   # E=0
            ([1] * k, 0, [-1] * k, 0),
            (odd_a, bias, mixed_b, bias),                                  # equal exponents
            ([fa.max_man] * k, nan, [fb.max_man] * k, 0),                  # NaN on a
            ([1] * k, 0, [-1] * k, nan),                                   # NaN on b
            ([neg_a] * k, nan, [neg_b] * k, nan),                          # NaN on both
            ([fa.max_man] * k, top, [neg_b] * k, 0),                       # shift far beyond
            ([neg_a] * k, 0, [fb.max_man] * k, top),                       # ... either way
            (odd_a, top, mixed_b, 0),
            ([-1] * k, 0, [fb.max_man] * k, top),                          # -1 >> far = -1
        ]
        # Negative odd values shifted by every distance around the width: floor, -1, 0.
        for d in (1, 2, self.width - 1, self.width, self.width + 1, self.width + 5):
            if d <= top:
                cases.append((odd_a, top - d, mixed_b, top))
                cases.append((odd_a, top, [-1] * k, top - d))
                cases.append(([-1] * k, top - d, odd_b, top))
        return cases

    def stimuli(self, gen: torch.Generator, n: int) -> dict[str, list[dict]]:
        directed = self._directed() if self.mxint else self._directed_mx()
        a_man, a_exp = random_code_blocks(gen, self.fmt_a, n)
        b_man, b_exp = random_code_blocks(gen, self.fmt_b, n)
        # Half of the random pairs get close exponents, so both operands matter.
        near = torch.rand((n,), generator=gen) < 0.5
        delta = torch.randint(-self.width - 2, self.width + 3, (n,), generator=gen)
        close = (a_exp.clamp(max=self.fmt_a.max_code) + delta).clamp(0, self.fmt_b.max_code)
        b_exp = torch.where(near & (b_exp != self.fmt_b.nan_code), close, b_exp)
        return pair_stimuli(directed, (a_man, a_exp), (b_man, b_exp), self.fmt_a, self.fmt_b)

    def expected(self, stimuli: dict[str, list[dict]]) -> dict[str, list[dict]]:
        a, b = stimuli["a"], stimuli["b"]
        fa, fb = element_field(self.fmt_a), element_field(self.fmt_b)
        r = block_add(torch.tensor([x[fa] for x in a]),
                      torch.tensor([x["exponent"] for x in a]),
                      torch.tensor([x[fb] for x in b]),
                      torch.tensor([x["exponent"] for x in b]), self.fmt_a, self.fmt_b,
                      self.out_bits, guard_bits=self.guard_bits, rounding=self.rounding)
        return {"o": blocks_to_dicts(r.mantissa, r.exponent)}


