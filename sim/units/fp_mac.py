"""Testbench model of the floating-point multiply-add baseline (``--top fpmac``)."""

from __future__ import annotations

import torch

from golden.fp_mac import FloatFormat, fp_mac, fp_mul

__all__ = ["FloatMacModel", "directed_cases", "random_operands"]


def _pow2(fmt: FloatFormat, k: int, sign: int = 0) -> int | None:
    """Pattern of ``±2**k``, or None when it is not representable."""
    if 1 - fmt.bias <= k <= fmt.bias:
        return (sign * fmt.sign_bit) | ((k + fmt.bias) << fmt.man_bits)
    pos = k - (1 - fmt.bias - fmt.man_bits)
    if 0 <= pos < fmt.man_bits:
        return (sign * fmt.sign_bit) | (1 << pos)
    return None


def directed_cases(fmt: FloatFormat) -> list[tuple[int, int, int]]:
    """Corner ``(a, b, c)`` patterns: signed zeros, subnormals, largest finite, overflow,
    infinities, NaN (canonical and with payloads), ``inf * 0``, ``inf - inf``,
    cancellation and ties in both roundings."""
    f, neg = fmt.man_bits, fmt.sign_bit
    one, two, half = _pow2(fmt, 0), _pow2(fmt, 1), _pow2(fmt, -1)
    zero, min_sub, max_sub = 0, 1, (1 << f) - 1
    min_norm, big, inf = 1 << f, fmt.max_finite, fmt.inf
    odd_nan = fmt.inf | 1                                   # a NaN with another payload
    one_half = one | (1 << (f - 1))                         # 1.1b
    half_ulp = _pow2(fmt, -f - 1)                           # half an ulp of 1.0
    cases = [
        (zero, zero, zero), (zero | neg, zero, zero | neg), (zero, zero, zero | neg),
        (zero | neg, zero | neg, zero | neg), (zero | neg, one, zero), (one, zero | neg, neg),
        (one, one, one | neg), (one | neg, one, one), (big, one, big | neg),
        (min_sub, one, min_sub), (min_sub, min_sub, zero), (min_sub, min_sub, zero | neg),
        (min_sub | neg, min_sub, zero), (max_sub, one, min_sub), (max_sub, two, zero),
        (min_norm, half, zero), (min_norm, half, min_sub | neg), (min_norm, one, max_sub | neg),
        (max_sub, max_sub, min_sub), (min_norm | neg, min_norm, zero | neg),
        (big, one, big), (big, two, zero), (big, big, big | neg), (big | neg, two, inf),
        (big, one, zero), (inf, one, zero), (inf, zero, one), (zero | neg, inf | neg, one),
        (inf, one, inf | neg), (inf | neg, one, inf | neg), (one, one, inf | neg),
        (fmt.nan, one, zero), (one, odd_nan, one), (one, one, odd_nan | neg),
        (inf, zero, fmt.nan | neg), (big, two, inf | neg),
        (one, one, half_ulp), (one + 1, one, half_ulp), (one_half, one + 1, zero),
        (one_half, one + 1, zero | neg), (one | neg, one + 1, one), (two, one, one + 1 | neg),
        # products just below the smallest normal: rounds up to it, or stays subnormal
        (min_norm | max_sub, half, zero), (min_norm | (max_sub - 1), half, zero | neg),
        (min_norm | max_sub, half, min_norm), (min_norm | max_sub, half | neg, min_sub),
    ]
    return [cs for cs in cases if all(x is not None for x in cs)]


def random_operands(gen: torch.Generator, fmt: FloatFormat,
                    n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` operand triples mixing every pattern class: uniform patterns (all exponent
    codes), exponents near the bias, subnormals, products near the subnormal range,
    infinities and NaNs (1 in 20 each operand), and ``c`` close to ``-(a * b)``
    (cancellation, equal magnitudes, exponent differences of a few bits)."""
    w, f = fmt.width, fmt.man_bits
    frac_mask = (1 << f) - 1

    def draw():
        bits = torch.randint(0, 1 << w, (n,), generator=gen, dtype=torch.int64)
        sign_frac = bits & (fmt.sign_bit | frac_mask)
        near = torch.randint(max(fmt.bias - 3, 0), min(fmt.bias + 4, fmt.exp_max), (n,),
                             generator=gen, dtype=torch.int64)
        low = torch.randint(0, min(fmt.bias + 2, fmt.exp_max), (n,), generator=gen,
                            dtype=torch.int64) // 2
        special = sign_frac | (fmt.exp_max << f)
        special = torch.where(bits & 1 == 1, special, special & ~frac_mask)  # inf or NaN
        kind = torch.randint(0, 20, (n,), generator=gen)
        return torch.where(kind < 5, bits, torch.where(
            kind < 10, sign_frac | (near << f), torch.where(
                kind < 14, sign_frac, torch.where(kind < 19, sign_frac | (low << f), special))))

    a, b, c = draw(), draw(), draw()
    close = (fp_mul(a, b, fmt) ^ fmt.sign_bit) + torch.randint(-4, 5, (n,), generator=gen)
    scaled = close + (torch.randint(-3, 4, (n,), generator=gen) << f)
    kind = torch.randint(0, 3, (n,), generator=gen)
    c = torch.where(kind == 0, close, torch.where(kind == 1, scaled, c)) % (1 << w)
    return a, b, c


class FloatMacModel:
    """Stimuli and expected results of :class:`hw.fp_mac.FloatMultiplyAdd`."""

    inputs = ("i",)
    outputs = ("o",)

    def __init__(self, params: dict) -> None:
        self.fmt = FloatFormat(params["exp_bits"], params["man_bits"])
        self.subnormals = params.get("subnormals", "keep")

    def stimuli(self, gen: torch.Generator, n: int) -> dict[str, list[dict]]:
        cases = directed_cases(self.fmt)
        a, b, c = random_operands(gen, self.fmt, n)
        a = [x[0] for x in cases] + a.tolist()
        b = [x[1] for x in cases] + b.tolist()
        c = [x[2] for x in cases] + c.tolist()
        return {"i": [{"a": x, "b": y, "c": z} for x, y, z in zip(a, b, c, strict=True)]}

    def expected(self, stimuli: dict[str, list[dict]]) -> dict[str, list[dict]]:
        items = stimuli["i"]
        r = fp_mac(torch.tensor([x["a"] for x in items], dtype=torch.int64),
                   torch.tensor([x["b"] for x in items], dtype=torch.int64),
                   torch.tensor([x["c"] for x in items], dtype=torch.int64), self.fmt,
                   subnormals=self.subnormals)
        return {"o": [{"r": v} for v in r.tolist()]}


