"""The generator parameters of a unit with both operands in one block format, by its
``--format`` name (``golden.parse_format``'s vocabulary: ``mxint<m>``, ``mxfp8_e4m3``,
``mxfp8_e5m2``, ``mxfp6_e3m2``, ``mxfp6_e2m3``, ``mxfp4``).

Shared by the format rows of ``python -m flows.density --formats`` (:mod:`flows.measure`)
and by ``python -m benchmarks.formats``.
"""

from __future__ import annotations

from collections.abc import Iterable

from golden.format import MXFPFormat, parse_format
from hw.params import default_sum_levels

__all__ = ["TOPS", "check_formats", "dot_params", "element_bits", "mxint_peer", "params_for_top",
           "unit_params"]

#: The units a format can be measured on: the dot product, its accumulator, the linear
#: engine.
TOPS = ("dot", "accum", "linear")


def check_formats(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` as ``--format`` names, lower case, stripped, repeats dropped, in order.

    Raises
    ------
    ValueError
        Naming the first name ``golden.parse_format`` does not know, and what is allowed.
    """
    out = []
    for name in names:
        parse_format(name)
        out.append(name.strip().lower())
    return tuple(dict.fromkeys(out))


def element_bits(name: str) -> int:
    """Bits stored per element of the format ``name`` (without the shared scale)."""
    fmt = parse_format(name)
    return fmt.element_bits if isinstance(fmt, MXFPFormat) else fmt.man_bits


def mxint_peer(name: str) -> str:
    """The MXINT format with as many element bits as ``name``: ``mxfp6_e2m3`` ->
    ``mxint6``."""
    return f"mxint{element_bits(name)}"


def dot_params(name: str, block: int, levels_per_stage: int | None = None) -> dict:
    """``hw.generate`` parameters of the dot product with both operands in format ``name``
    (an E8M0 scale; ``levels_per_stage`` only when given and not the format's default,
    :func:`hw.params.default_sum_levels`, so default designs keep their cache keys)."""
    fmt = parse_format(name, block=block)
    element = fmt.element.name if isinstance(fmt, MXFPFormat) else "int"
    extra = ({} if levels_per_stage in (None, default_sum_levels(element, element, "heap"))
             else {"levels_per_stage": levels_per_stage})
    if isinstance(fmt, MXFPFormat):
        return {"a_element": fmt.element.name, "b_element": fmt.element.name, "block": block,
                **extra}
    return {"a_bits": fmt.man_bits, "b_bits": fmt.man_bits, "block": block, **extra}


def unit_params(top: str, name: str, block: int, levels_per_stage: int | None = None) -> dict:
    """``hw.generate`` parameters of unit ``top`` with both operands in format ``name``:
    :func:`dot_params` for the dot product and the accumulator (without its
    ``levels_per_stage``), the same operands as ``x``/``w`` for the linear engine at the
    command line's defaults (4 rows, 2 lanes)."""
    return params_for_top(top, dot_params(name, block, levels_per_stage))


def params_for_top(top: str, p: dict) -> dict:
    """The dot product's parameters ``p`` as unit ``top`` takes them: as they are for the
    dot product, without ``levels_per_stage`` for the accumulator, as ``x``/``w`` operands
    at the command line's defaults (4 rows, 2 lanes) for the linear engine.

    Raises
    ------
    ValueError
        If ``top`` is not one of :data:`TOPS`.
    """
    if top == "dot":
        return p
    if top == "accum":
        return {k: v for k, v in p.items() if k != "levels_per_stage"}
    if top != "linear":
        raise ValueError(f"top must be one of {', '.join(TOPS)}, not {top!r}")
    renamed = {"a_element": "x_element", "b_element": "w_element", "a_bits": "x_bits",
               "b_bits": "w_bits"}
    return {renamed.get(k, k): v for k, v in p.items()} | {"rows": 4, "lanes": 2}
