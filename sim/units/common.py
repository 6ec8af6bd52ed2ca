"""Stimulus helpers shared by the unit models: random and corner blocks of an MXINT or
minifloat format, payload dicts."""

from __future__ import annotations

import torch

from golden.format import MXFPFormat, MXIntFormat, operand_format
from golden.linear import element_field

__all__ = ["block_format", "blocks_to_dicts", "corner_blocks", "element_field",
           "most_negative", "pair_stimuli", "plus_max", "random_blocks", "random_code_blocks",
           "random_finite_blocks", "random_group_ends", "signed_full_range", "special_codes",
           "xw_operands"]


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


def xw_operands(params: dict) -> tuple[dict, MXIntFormat | MXFPFormat,
                                       MXIntFormat | MXFPFormat]:
    """The operands of a linear engine's or tile's manifest ``params`` (fields ``x_element``,
    ``x_bits``, ``w_...``, ``exp_bits``, ``block``): ``({"a_element", "a_bits",
    "b_element", "b_bits"}, format of x, format of w)``, the dict under the names of
    :func:`golden.accumulator.accum_in_width` (``a`` the activations, an absent element
    ``"int"``), the formats from :func:`golden.format.operand_format`."""
    exp_bits = params.get("exp_bits", 8)
    ops = {}
    for side, name in (("a", "x"), ("b", "w")):
        ops[f"{side}_element"] = params.get(f"{name}_element") or "int"
        ops[f"{side}_bits"] = params.get(f"{name}_bits")
    fmt_x = operand_format(ops["a_element"], ops["a_bits"], exp_bits=exp_bits,
                           block=params["block"], side="x")
    fmt_w = operand_format(ops["b_element"], ops["b_bits"], exp_bits=exp_bits,
                           block=params["block"], side="w")
    return ops, fmt_x, fmt_w


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


def corner_blocks(fmt: MXIntFormat | MXFPFormat) -> list[tuple[list[int], int]]:
    """Corner blocks of one operand, ``(elements, scale code)``, in a fixed order of
    roles so that the two operands' lists pair up (the dot product's and block adder's
    directed pairs, :class:`sim.units.dot_product.DotModel`)."""
    k = fmt.block
    if isinstance(fmt, MXIntFormat):
        top, neg = fmt.max_man, -(1 << (fmt.man_bits - 1))
        plus, minus, zero = top, neg, 0
        small = [1 if i % 2 else -1 for i in range(k)]
        special = [top] * k
        special2 = [neg] * k
    else:
        e = fmt.element
        sign = 1 << (e.width - 1)
        plus = e.finite_codes - 1                 # +max normal
        minus, zero = plus | sign, sign           # -max normal, -0
        subnormals = list(range(1, 1 << e.man_bits))
        small = [subnormals[i % len(subnormals)] | (sign if i % 2 else 0) for i in range(k)]
        if e.specials == "ieee":                  # +inf, and a NaN of each sign
            inf = ((1 << e.exp_bits) - 1) << e.man_bits
            special = [plus] * (k - 1) + [inf]
            special2 = [minus] * (k - 1) + [(inf + 1) | sign]
        elif e.specials == "nan":                 # S.1111.111, positive and negative
            nan = sign - 1
            special = [plus] * (k - 1) + [nan]
            special2 = [nan | sign] + [minus] * (k - 1)
        else:                                     # every code is a number
            special, special2 = [plus] * k, [minus] * k
    alt = [plus if i % 2 else minus for i in range(k)]
    bias, top, nan_code = fmt.bias, fmt.max_code, fmt.nan_code
    return [
        ([zero] * k, bias),      # zeros (-0 for a minifloat)
        ([plus] * k, top),       # all +max, top scale
        ([minus] * k, 0),        # all -max (most negative), scale 0
        ([minus] * k, 0),        # paired with +max: the most negative sum
        (alt, 1),                # alternating signs
        (small, bias),           # subnormals (small integers), both signs
        ([plus] * k, nan_code),  # NaN scale
        (special, top),          # an infinity or NaN code (else +max)
        (special2, 0),           # a NaN code of the other sign (else -max)
        ([minus] * k, nan_code), # NaN scale with -max
    ]


def plus_max(fmt: MXIntFormat | MXFPFormat) -> int:
    """The largest positive element: ``2**(m-1) - 1``, or the code of +max normal."""
    return fmt.element.finite_codes - 1 if isinstance(fmt, MXFPFormat) else fmt.max_man


def most_negative(fmt: MXIntFormat | MXFPFormat) -> int:
    """The most negative element: ``-2**(m-1)``, or the code of -max normal."""
    if isinstance(fmt, MXFPFormat):
        return plus_max(fmt) | (1 << (fmt.element.width - 1))
    return -(1 << (fmt.man_bits - 1))


def special_codes(fmt: MXIntFormat | MXFPFormat, *, every: bool = False) -> list[int]:
    """The special codes of a minifloat format (none for MXINT, FP6 and FP4): its
    infinities, then the first and the last NaN code (one of each sign); with ``every``,
    every infinity and NaN code."""
    if isinstance(fmt, MXIntFormat):
        return []
    e = fmt.element
    kind = e.kind(torch.arange(1 << e.width))
    if every:
        return torch.nonzero(kind != 0).flatten().tolist()
    nans = torch.nonzero(kind == 2).flatten().tolist()
    return torch.nonzero(kind == 1).flatten().tolist() + ([nans[0], nans[-1]] if nans else [])


def random_finite_blocks(gen: torch.Generator, fmt: MXIntFormat | MXFPFormat, n: int, *,
                         nan_rate: float, special_rate: float = 0.04
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random blocks of ``fmt``: MXINT as :func:`random_blocks`; minifloat codes
    uniform over the finite codes of both signs, one element of a fraction
    ``special_rate`` of the blocks replaced by a special code (:func:`special_codes`),
    scales uniform over 0 .. 254 and 255 (NaN) on a fraction ``nan_rate``."""
    if isinstance(fmt, MXIntFormat):
        return random_blocks(gen, fmt, n, nan_rate=nan_rate)
    e = fmt.element
    mag = torch.randint(0, e.finite_codes, (n, fmt.block), generator=gen, dtype=torch.int64)
    sign = torch.randint(0, 2, (n, fmt.block), generator=gen, dtype=torch.int64)
    codes = mag | (sign << (e.width - 1))
    specials = special_codes(fmt, every=True)
    if specials:
        hit = torch.rand((n,), generator=gen) < special_rate
        pick = torch.randint(0, len(specials), (n,), generator=gen)
        where = torch.randint(0, fmt.block, (n,), generator=gen)
        for b in torch.nonzero(hit).flatten().tolist():
            codes[b, where[b]] = specials[int(pick[b])]
    exp = torch.randint(0, fmt.nan_code, (n,), generator=gen, dtype=torch.int64)
    nan = torch.rand((n,), generator=gen) < nan_rate
    return codes, torch.where(nan, fmt.nan_code, exp)
