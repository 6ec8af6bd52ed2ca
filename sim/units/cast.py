"""Testbench model of the cast unit (``--top cast``): IEEE bit patterns to MXINT or MXFP
blocks."""

from __future__ import annotations

import torch

from golden.cast import FLOAT_FORMATS, cast_blocks, float_to_bits
from golden.format import MXFPFormat, MXIntFormat

from .common import blocks_to_dicts

__all__ = ["CastModel", "random_float_bits"]

_SIGN = 1 << 31
_INF, _QNAN, _SNAN, _MAXF = 0x7F800000, 0x7FC00000, 0x7F800001, 0x7F7FFFFF


def _pow2(p: int) -> int:
    """float32 pattern of ``2**p`` for ``-149 <= p <= 127``."""
    return (p + 127) << 23 if p >= -126 else 1 << (p + 149)


def random_float_bits(gen: torch.Generator, n: int, k: int) -> torch.Tensor:
    """``n`` blocks of ``k`` float32 bit patterns (int64), five kinds taking turns:

    0. uniform over all 2**32 patterns (NaN and infinity included);
    1. normal values scaled by a random power of two in ``[-160, 130]`` per block (so
       underflow to subnormals and zero, and overflow to infinity, occur);
    2. random fractions with exponent fields within 3 of a random base field (dense
       rounding decisions);
    3. subnormals (exponent field 0, some field 1);
    4. powers of two and one ulp below and above them, random signs.
    """
    kind = torch.arange(n) % 5
    sign = torch.randint(0, 2, (n, k), generator=gen, dtype=torch.int64) << 31
    frac = torch.randint(0, 1 << 23, (n, k), generator=gen, dtype=torch.int64)
    uniform = torch.randint(0, 1 << 32, (n, k), generator=gen, dtype=torch.int64)
    scale = torch.randint(-160, 131, (n, 1), generator=gen, dtype=torch.int32)
    normal = torch.ldexp(torch.randn((n, k), generator=gen), scale.float())
    normal = float_to_bits(normal.to(torch.float32))
    base = torch.randint(0, 255, (n, 1), generator=gen, dtype=torch.int64)
    field = (base - torch.randint(0, 4, (n, k), generator=gen, dtype=torch.int64)).clamp(min=0)
    dense = sign | (field << 23) | frac
    sub_field = (torch.rand((n, k), generator=gen) < 0.1).to(torch.int64)
    frac_sub = frac >> torch.randint(0, 23, (n, 1), generator=gen, dtype=torch.int64)
    subnormal = sign | (sub_field << 23) | frac_sub
    pfield = torch.randint(1, 255, (n, k), generator=gen, dtype=torch.int64)
    delta = torch.randint(-1, 2, (n, k), generator=gen, dtype=torch.int64)
    powers = sign | ((pfield << 23) + delta)
    kinds = torch.stack([uniform, normal, dense, subnormal, powers])
    return kinds.gather(0, kind.view(1, n, 1).expand(1, n, k)).squeeze(0)


class CastModel:
    """Stimuli and expected results of :class:`hw.cast.MXIntCast`, MXINT or MXFP."""

    inputs = ("i",)
    outputs = ("o",)

    def __init__(self, params: dict) -> None:
        element = params.get("element", "int")
        if element == "int":
            self.fmt = MXIntFormat(params["man_bits"], params.get("exp_bits", 8),
                                   params["block"])
        else:
            self.fmt = MXFPFormat(element, params["block"],
                                  params.get("scale_rounding", "floor"))
        self.rounding = params.get("rounding", "even")
        self.float_format = params.get("float_format", "fp32")

    def _directed(self) -> list[list[int]]:
        """Corner blocks as float32 patterns; a list longer than ``k`` spans several blocks
        (each filled up by repeating the list)."""
        common = self._directed_common()
        return common + (self._directed_mxfp() if isinstance(self.fmt, MXFPFormat) else [])

    def _directed_mxfp(self) -> list[list[int]]:
        """Minifloat corners: every rounding tie and every value one ulp of the input away
        from a code, at the scale of the largest normal (``X = 127``) and one binade below
        it (element subnormals of the next scale); values just above the largest normal
        (saturation, and rceil's step up); subnormal inputs under the smallest scales,
        where they are element normals."""
        el = self.fmt.element
        values, _ = el.table
        finite = sorted(set(values[: el.finite_codes].tolist()))
        top = float_to_bits(torch.tensor(el.max_normal, dtype=torch.float32)).item()
        blocks = []
        for lift in (0, -1):   # amax = max normal: X = 127; amax one binade lower
            unit = 2.0 ** (-el.frac_bits + lift)
            mids = [(a + b) / 2 * unit for a, b in zip(finite, finite[1:], strict=False)]
            near = [float_to_bits(torch.tensor(v * unit, dtype=torch.float32)).item()
                    for v in finite[1:]]
            row = [float_to_bits(torch.tensor(v, dtype=torch.float32)).item() for v in mids]
            row += [b + d for b in near for d in (-1, 1)]
            row += [v | _SIGN for v in row]
            head = float_to_bits(torch.tensor(el.max_normal * 2.0 ** lift,
                                              dtype=torch.float32)).item()
            k = self.fmt.block
            if k == 1:      # every element is its own block: no head to set the scale
                blocks += [[v] for v in row]
                continue
            for start in range(0, len(row), k - 1):
                blocks.append([head] + row[start:start + k - 1])
        blocks += [
            [top + 1, top - 1 | _SIGN],                     # just above and below max normal
            [top | 0x7FFFFF & ~(top & 0x7FFFFF) | _SIGN],   # top field, all-ones fraction
            [(top & ~0x7FFFFF) + 0x3FFFFF],                 # fraction just below 1.5
        ]
        for p in range(-127, -95, 3):   # X from 0 up: subnormal inputs become element normals
            blocks.append([_pow2(p) | 0x2AAAAA, 0x007FFFFF | _SIGN, 0x00400001, 0x00012345,
                           0x00200000 | _SIGN, 0x0000FFFF, 0x00000001 | _SIGN, 0x00700000])
        return blocks

    def _directed_common(self) -> list[list[int]]:
        """Corner blocks of both kinds of element (the MXINT unit's set)."""
        fmt = self.fmt
        # Ties at every rounding position: max 1.0, elements (j + 1/2) units, both signs.
        unit = -fmt.frac_bits
        ties = [_pow2(0)] + [float_to_bits(torch.tensor((j + 0.5) * 2.0 ** unit)).item()
                             for j in range(7)]
        ties += [v | _SIGN for v in ties[1:]]
        bias, top = fmt.bias, fmt.max_code
        return [
            [0],                                                    # zeros
            [0, _SIGN],                                             # +0 and -0
            [_MAXF | _SIGN],                                        # all -max
            [_MAXF],                                                # all +max
            [_pow2(p) for p in range(-149, 128, 7)],                # powers of two
            [_pow2(p) - 1 for p in range(-125, 128, 9)],            # ulps below powers
            [_pow2(0) - 1, _pow2(-1), (_pow2(-2) - 1) | _SIGN],     # max 1 - ulp: E = bias-1
            [1],                                                    # smallest subnormal
            [1 | _SIGN, 0, 1],                                      # +-smallest subnormal
            [0x007FFFFF, 0x00000001 | _SIGN, 0x00400000, 0x00012345 | _SIGN],  # subnormals
            [0x00800000, 0x007FFFFF | _SIGN],                      # min normal, max subnormal
            [_pow2(-140), _pow2(-145) | _SIGN, 3],                  # tiny: E clamps at 0
            [_pow2(-100), _pow2(-101) | _SIGN, _pow2(-127)],        # tiny for e < 8
            [_pow2(100), _pow2(0), _pow2(99) | _SIGN, 0x3FC00000],  # huge: clamps at top
            [_pow2(top - bias) | _SIGN, 0x3F800001],                # exactly the top code
            [_pow2(-bias) | _SIGN, _pow2(-bias - 1)],               # exactly code 0
            [_pow2(-bias - 1) | _SIGN],                             # code -1 clamps to 0
            ties,                                                   # rounding ties
            [_QNAN, _pow2(0)],                                      # NaN
            [_pow2(0), _INF | _SIGN],                               # -Inf
            [_INF, 0],                                              # +Inf
            [_SNAN | _SIGN, _MAXF],                                 # negative signalling NaN
        ]

    def _to_format(self, bits: torch.Tensor) -> torch.Tensor:
        """float32 patterns to the input format (bf16: the upper half, truncated)."""
        return bits >> (32 - FLOAT_FORMATS[self.float_format])

    def stimuli(self, gen: torch.Generator, n: int) -> dict[str, list[dict]]:
        k = self.fmt.block
        blocks = []
        for values in self._directed():
            for start in range(0, len(values), k):
                chunk = values[start:start + k]
                blocks.append([chunk[i % len(chunk)] for i in range(k)])
        bits = torch.cat([torch.tensor(blocks, dtype=torch.int64),
                          random_float_bits(gen, n, k)])
        return {"i": [{"bits": b} for b in self._to_format(bits).tolist()]}

    def expected(self, stimuli: dict[str, list[dict]]) -> dict[str, list[dict]]:
        bits = torch.tensor([x["bits"] for x in stimuli["i"]], dtype=torch.int64)
        man, exp = cast_blocks(bits, self.fmt, self.rounding, self.float_format)
        if isinstance(self.fmt, MXFPFormat):
            return {"o": [{"codes": c, "exponent": e}
                          for c, e in zip(man.tolist(), exp.tolist(), strict=True)]}
        return {"o": blocks_to_dicts(man, exp)}


