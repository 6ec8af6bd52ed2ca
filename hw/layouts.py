"""Payload layouts shared by the units: an MXINT block, an MXFP block and a dot-product
result."""

from __future__ import annotations

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data
from amaranth.utils import bits_for

__all__ = ["dot_result_layout", "mxfp_block_layout", "mxint_block_layout", "range_shape"]


def range_shape(lo: int, hi: int) -> Shape:
    """Smallest shape that holds every integer in ``[lo, hi]`` (what
    ``Shape.cast(range(lo, hi + 1))`` gives, also for ranges longer than ``2**63``, which
    ``range`` cannot measure: E5M2 x E5M2 sums)."""
    if hi < lo:
        return Shape(0)
    if lo == hi == 0:
        return unsigned(0)
    is_signed = lo < 0
    return Shape(max(bits_for(lo, is_signed), bits_for(hi, is_signed)), is_signed)


def mxint_block_layout(*, man_bits: int, exp_bits: int, block: int) -> data.StructLayout:
    """``block`` signed ``man_bits``-bit mantissas (element 0 in the low bits), then the
    ``exp_bits``-bit shared exponent code."""
    return data.StructLayout({
        "mantissa": data.ArrayLayout(signed(man_bits), block),
        "exponent": unsigned(exp_bits),
    })


def mxfp_block_layout(*, element_bits: int, block: int) -> data.StructLayout:
    """``block`` unsigned ``element_bits``-bit minifloat codes (element 0 in the low bits;
    sign in each code's top bit), then the 8-bit E8M0 scale code (255: NaN block)."""
    return data.StructLayout({
        "codes": data.ArrayLayout(unsigned(element_bits), block),
        "exponent": unsigned(8),
    })


def dot_result_layout(*, sum_shape: Shape, exp_bits: int) -> data.StructLayout:
    """Exact sum, the ``exp_bits + 1``-bit exponent sum and the NaN flag."""
    return data.StructLayout({
        "sum": sum_shape,
        "exponent": unsigned(exp_bits + 1),
        "nan": unsigned(1),
    })
