"""Stimulus helpers shared by the unit models."""

from __future__ import annotations

import torch

from golden.format import MXIntFormat

__all__ = ["blocks_to_dicts", "random_blocks", "random_group_ends", "signed_full_range"]


def signed_full_range(gen: torch.Generator, bits: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Uniform two's complement integers over the whole ``bits``-bit range, -2**(bits-1)
    included."""
    return torch.randint(-(1 << (bits - 1)), 1 << (bits - 1), shape, generator=gen,
                         dtype=torch.int64)


def random_blocks(gen: torch.Generator, fmt: MXIntFormat, n: int, *,
                  nan_rate: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random blocks: full-range mantissas, exponent codes uniform over every code,
    NaN code forced on a fraction ``nan_rate`` of blocks."""
    man = signed_full_range(gen, fmt.man_bits, (n, fmt.block))
    exp = torch.randint(0, fmt.nan_code + 1, (n,), generator=gen, dtype=torch.int64)
    nan = torch.rand((n,), generator=gen) < nan_rate
    return man, torch.where(nan, fmt.nan_code, exp)


def blocks_to_dicts(man: torch.Tensor, exp: torch.Tensor) -> list[dict]:
    """Payload dicts ``{"mantissa": [...], "exponent": int}`` of a batch of blocks."""
    return [{"mantissa": m, "exponent": e} for m, e in zip(man.tolist(), exp.tolist(),
                                                            strict=True)]


def random_group_ends(gen: torch.Generator, n: int) -> list[int]:
    """``last`` flags of ``n`` inputs in groups of 1 to 16 (one in eight groups 17 to 300
    long); the final input closes its group."""
    last = [0] * n
    pos = 0
    while pos < n:
        long = int(torch.randint(0, 8, (1,), generator=gen)) == 0
        size = int(torch.randint(17, 301, (1,), generator=gen)) if long else \
            int(torch.randint(1, 17, (1,), generator=gen))
        pos += size
        last[min(pos, n) - 1] = 1
    return last
