"""Testbench model of the dequantiser (``--top dequant``): MXINT or MXFP (``element``)
blocks, or accumulator results (``source="accum"``), to float32 patterns."""

from __future__ import annotations

import torch

from golden.dequant import accum_scale_offset, dequant_accum, dequant_blocks
from golden.format import MXFPFormat, MXIntFormat

from .common import random_blocks, signed_full_range

__all__ = ["AccumDequantModel", "DequantModel", "MXFPDequantModel"]


class DequantModel:
    """Stimuli and expected results of :class:`hw.dequantizer.MXIntDequantizer`; with
    ``source="accum"`` the work is done by :class:`AccumDequantModel`, with an ``element``
    by :class:`MXFPDequantModel`."""

    inputs = ("i",)
    outputs = ("o",)

    def __new__(cls, params: dict):
        if params.get("source", "block") == "accum":
            return AccumDequantModel(params)
        if params.get("element") not in (None, "int"):
            return MXFPDequantModel(params)
        return super().__new__(cls)

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


class MXFPDequantModel:
    """Stimuli and expected results of the dequantiser of MXFP blocks.

    Directed blocks first: every code (both signs, zeros, subnormals, the largest normals,
    infinities and NaNs) at the scales in :meth:`directed_scales` (0, 1, 126, 127, 254,
    255 and those that put elements at the float32 subnormal and overflow edges), ``k``
    consecutive codes per block. Then ``n`` random blocks of uniform codes: a third with a
    scale uniform over 0 .. 255, a third near the bottom (0 .. f + 4), a third near the
    top (238 .. 254), 3 % NaN scales.
    """

    inputs = ("i",)
    outputs = ("o",)

    def __init__(self, params: dict) -> None:
        self.fmt = MXFPFormat(params["element"], block=params["block"])

    def directed_scales(self) -> list[int]:
        """The scale codes every code is tried at: 0, 1, 2, 126, 127, 128, 253, 254, 255,
        and for every leading-one position ``g`` of an element those that put its float32
        exponent ``F = X - f + g`` at 0, 1, 254 and 255 (the subnormal and overflow edges)."""
        f, el = self.fmt.frac_bits, self.fmt.element
        edges = {x for g in range((1 << el.exp_bits) + el.man_bits - 1)
                 for x in (f - g, f - g + 1, 254 + f - g, 255 + f - g) if 0 <= x <= 255}
        return sorted(edges | {0, 1, 2, 126, 127, 128, 253, 254, 255})

    def stimuli(self, gen: torch.Generator, n: int) -> dict[str, list[dict]]:
        k, width = self.fmt.block, self.fmt.element_bits
        codes = list(range(1 << width))
        blocks = [[codes[(start + i) % len(codes)] for i in range(k)]
                  for start in range(0, len(codes), k)]
        items = [{"codes": b, "exponent": x} for x in self.directed_scales() for b in blocks]
        rand = torch.randint(0, 1 << width, (n, k), generator=gen)
        third = torch.arange(n) % 3
        scale = torch.where(third == 0, torch.randint(0, 256, (n,), generator=gen),
                            torch.where(third == 1,
                                        torch.randint(0, self.fmt.frac_bits + 5, (n,),
                                                      generator=gen),
                                        torch.randint(238, 255, (n,), generator=gen)))
        scale = torch.where(torch.rand((n,), generator=gen) < 0.03, 255, scale)
        items += [{"codes": b, "exponent": x} for b, x in zip(rand.tolist(), scale.tolist(),
                                                              strict=True)]
        return {"i": items}

    def expected(self, stimuli: dict[str, list[dict]]) -> dict[str, list[dict]]:
        items = stimuli["i"]
        bits = dequant_blocks(torch.tensor([x["codes"] for x in items], dtype=torch.int64),
                              torch.tensor([x["exponent"] for x in items], dtype=torch.int64),
                              self.fmt)
        return {"o": [{"bits": b} for b in bits.tolist()]}


class AccumDequantModel:
    """Stimuli and expected results of the dequantiser of accumulator results.

    Directed inputs first: ``sum`` in ``{0, ±1, -2**(W-1), 2**(W-1) - 1}`` and every power
    of two and its negation, at exponents 0, the largest, and the codes that put the result
    at the subnormal/normal boundary and at the overflow threshold; round-to-nearest ties
    (below, at and above half an ULP, odd and even) for normal and subnormal results;
    NaN. Then ``n`` random inputs: full-range sums, every other one shifted right by a
    random amount (so every leading-one position occurs), exponents uniform over the field
    or near the two boundaries, 3 % NaN.
    """

    inputs = ("i",)
    outputs = ("o",)

    def __init__(self, params: dict) -> None:
        from golden.accumulator import accum_in_width
        from hw.accumulator import DEFAULT_GUARD_BITS, default_acc_width

        # The operands, MXINT (a_bits/b_bits) or minifloat (a_element/b_element).
        self.operands = {f"{side}_{field}": params.get(f"{side}_{field}")
                         for side in ("a", "b") for field in ("bits", "element")}
        for side in ("a", "b"):
            self.operands[f"{side}_element"] = self.operands[f"{side}_element"] or "int"
        self.exp_bits = params.get("exp_bits", 8)
        guard = params.get("guard_bits")
        self.guard_bits = DEFAULT_GUARD_BITS if guard is None else guard
        in_width = accum_in_width(block=params["block"], **self.operands)
        self.acc_width = params.get("acc_width") or default_acc_width(in_width,
                                                                      self.guard_bits)
        self.offset = accum_scale_offset(exp_bits=self.exp_bits, guard_bits=self.guard_bits,
                                         **self.operands)
        self.max_exponent = (1 << (self.exp_bits + 1)) - 1

    def _clamp_exp(self, e: int) -> int:
        return max(0, min(e, self.max_exponent))

    def boundary_exponents(self, lead: int) -> list[int]:
        """Exponents that put a leading one at bit ``lead`` at the edges of the float32
        range: ``F = j + E - c + 127`` in ``{-24, 0, 1, 254, 255}``."""
        return [self._clamp_exp(f - 127 - lead + self.offset) for f in (-24, -1, 0, 1, 254,
                                                                           255)]

    def _directed(self) -> list[tuple[int, int, int]]:
        w, top = self.acc_width, self.max_exponent
        lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
        items = []
        for s in (0, 1, -1, lo, hi):
            for e in (0, top, top // 2):
                items.append((s, e, 0))
        for j in range(w - 1):
            for e in self.boundary_exponents(j) + [0, top]:
                items += [(1 << j, e, 0), (-(1 << j), e, 0)]
        for j in range(w - 1):  # the largest magnitude with its leading one at j
            for e in self.boundary_exponents(j):
                items += [((2 << j) - 1, e, 0), (-(2 << j) + 1, e, 0)]
        # Ties: 24 significant bits + a round bit (+ a sticky bit), odd and even, at a
        # normal exponent and (shifted further) below the normal range.
        for extra in range(1, w - 24):
            for sig in ((1 << 23) + 0, (1 << 23) + 1, (1 << 24) - 1):
                for sticky in (0, 1):
                    v = ((sig << 1) | 1) << (extra - 1) | (sticky if extra > 1 else 0)
                    if v > hi:
                        continue
                    lead = v.bit_length() - 1
                    e_norm = self._clamp_exp(self.offset - lead)  # F = 127
                    e_sub = self._clamp_exp(self.offset - 127 - lead - 3)  # F = -3
                    for e in (e_norm, e_sub):
                        items += [(v, e, 0), (-v, e, 0)]
        for s in (5, -7, lo):  # small values at the subnormal edge (round bit only)
            for e in range(0, min(top, 40) + 1):
                items.append((s, self._clamp_exp(self.offset - 150 - e), 0))
        items += [(hi, top, 1), (0, 0, 1), (-1, 3, 1)]  # NaN, whatever the sum
        return items

    def stimuli(self, gen: torch.Generator, n: int) -> dict[str, list[dict]]:
        items = [{"sum": s, "exponent": e, "nan": f} for s, e, f in self._directed()]
        sums = signed_full_range(gen, self.acc_width, (n,))
        shift = torch.randint(0, self.acc_width, (n,), generator=gen)
        sums = torch.where(torch.arange(n) % 2 == 1, sums >> shift, sums)
        uniform = torch.randint(0, self.max_exponent + 1, (n,), generator=gen)
        lead = torch.randint(0, self.acc_width, (n,), generator=gen)
        edge = torch.where(torch.rand((n,), generator=gen) < 0.5, 0, 254)
        near = edge - 127 - lead + self.offset + torch.randint(-3, 4, (n,), generator=gen)
        exps = torch.where(torch.arange(n) % 3 == 0, near, uniform).clamp(0, self.max_exponent)
        nans = torch.rand((n,), generator=gen) < 0.03
        items += [{"sum": s, "exponent": e, "nan": int(f)} for s, e, f in
                  zip(sums.tolist(), exps.tolist(), nans.tolist(), strict=True)]
        return {"i": items}

    def expected(self, stimuli: dict[str, list[dict]]) -> dict[str, list[dict]]:
        items = stimuli["i"]
        bits = dequant_accum(torch.tensor([x["sum"] for x in items], dtype=torch.int64),
                             torch.tensor([x["exponent"] for x in items], dtype=torch.int64),
                             torch.tensor([x["nan"] for x in items], dtype=torch.bool),
                             exp_bits=self.exp_bits, guard_bits=self.guard_bits,
                             **self.operands)
        return {"o": [{"bits": b} for b in bits.tolist()]}


