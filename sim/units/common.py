"""Stimulus helpers shared by the unit models."""

from __future__ import annotations

import torch

from golden.format import MXFPFormat, MXIntFormat

__all__ = ["block_format", "blocks_to_dicts", "element_field", "pair_stimuli", "random_blocks",
           "random_code_blocks", "random_group_ends", "signed_full_range"]


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


def random_code_blocks(gen: torch.Generator, fmt: MXIntFormat | MXFPFormat, n: int
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random blocks of ``fmt``: MXINT as :func:`random_blocks`; a minifloat's
    element codes uniform over every code (infinities and NaNs included), scale codes
    uniform over 0 .. 255 with one block in twenty forced to 255 (NaN)."""
    if isinstance(fmt, MXIntFormat):
        return random_blocks(gen, fmt, n)
    codes = torch.randint(0, 1 << fmt.element.width, (n, fmt.block), generator=gen,
                          dtype=torch.int64)
    exp = torch.randint(0, fmt.nan_code + 1, (n,), generator=gen, dtype=torch.int64)
    nan = torch.rand((n,), generator=gen) < 0.05
    return codes, torch.where(nan, fmt.nan_code, exp)


def block_format(params: dict, side: str) -> MXIntFormat | MXFPFormat:
    """The format of operand ``side`` (``"a"`` or ``"b"``) of a manifest's ``params``:
    MXINT(``<side>_bits``, ``exp_bits``, ``block``) when ``<side>_element`` is ``"int"``
    (or absent), else that minifloat under the E8M0 scale."""
    element = params.get(f"{side}_element", "int")
    if element == "int":
        return MXIntFormat(params[f"{side}_bits"], params.get("exp_bits", 8), params["block"])
    return MXFPFormat(element, block=params["block"])


def element_field(fmt: MXIntFormat | MXFPFormat) -> str:
    """The payload field that carries a block's elements: ``"mantissa"`` (MXINT) or
    ``"codes"`` (minifloat)."""
    return "codes" if isinstance(fmt, MXFPFormat) else "mantissa"


def pair_stimuli(directed: list[tuple[list, int, list, int]],
                 a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor],
                 fmt_a: MXIntFormat | MXFPFormat, fmt_b: MXIntFormat | MXFPFormat
                 ) -> dict[str, list[dict]]:
    """The ``a`` and ``b`` streams of a two-operand block unit: the ``directed`` pairs
    ``(a elements, a exponent, b elements, b exponent)`` first, then the random blocks
    ``a = (elements, exponents)`` and ``b`` (as :func:`random_code_blocks` gives them);
    each payload ``{<element_field>: [...], "exponent": int}``."""
    streams = {}
    for name, (man, exp), col, fmt in (("a", a, 0, fmt_a), ("b", b, 2, fmt_b)):
        man = torch.cat([torch.tensor([d[col] for d in directed]), man])
        exp = torch.cat([torch.tensor([d[col + 1] for d in directed]), exp])
        items = blocks_to_dicts(man, exp)
        field = element_field(fmt)
        if field != "mantissa":
            for item in items:
                item[field] = item.pop("mantissa")
        streams[name] = items
    return streams


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
