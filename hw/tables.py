"""Constant tables as logic, shared by the bit heap (:mod:`hw.bitheap`) and exponent-sum
placement (:mod:`hw.placement`): the fixed-point integer of every minifloat code, and a
table read by an index."""

from __future__ import annotations

from amaranth.hdl import Array, Const, Value

from golden.minifloat import ELEMENTS

__all__ = ["ELEMENT_VALUES", "lookup"]


def _element_values(name: str) -> list[int]:
    return [int(v) for v in ELEMENTS[name].table[0].tolist()]


class _ElementValues(dict):
    """Fixed-point integer of every code, per element format name, computed on first use."""

    def __missing__(self, name: str) -> list[int]:
        self[name] = _element_values(name)
        return self[name]


ELEMENT_VALUES = _ElementValues()


def lookup(table: list[int], index: Value, width: int) -> Value:
    """``table[index]`` as combinational logic of ``index``'s bits (``width``-bit entries)."""
    return Array(Const(v, width) for v in table)[index]
