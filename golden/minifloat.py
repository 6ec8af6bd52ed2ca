"""The OCP MX v1.0 minifloat element formats: FP8 E5M2 and E4M3, FP6 E3M2 and E2M3, FP4 E2M1.

An element code of ``1 + E + M`` bits is a sign ``s``, an exponent field ``e`` of ``E``
bits with bias ``2**(E-1) - 1`` and a mantissa field ``m`` of ``M`` bits:

* ``e = 0`` is a subnormal: ``(-1)**s * m * 2**(1 - bias - M)``;
* ``e > 0`` is a normal: ``(-1)**s * (2**M + m) * 2**(e - bias - M)``;
* specials: E5M2 has infinities (``e = 31, m = 0``) and NaNs (``e = 31, m != 0``) as
  IEEE 754 does; E4M3 has no infinity and one NaN per sign (``S.1111.111``); FP6 and FP4
  have neither, so every code is a number.

Every finite value is an integer multiple of the smallest subnormal ``2**-f`` with
``f = bias + M - 1`` (:attr:`ElementFormat.frac_bits`). This module describes a value by that
integer, its *fixed-point integer* ``P``: ``value = P * 2**-f``. E2M1 values times 2 are the
integers ``0, 1, 2, 3, 4, 6, 8, 12``, E2M3 values times 8 a subset of the 7-bit integers.
A dot product of two such elements is then an integer product, which is how the golden
models and the hardware compute exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from .checks import check_choice

__all__ = ["ELEMENTS", "ElementFormat", "element_format"]


@dataclass(frozen=True)
class ElementFormat:
    """A minifloat element format of OCP MX v1.0.

    Parameters
    ----------
    name : str
        ``"e5m2"``, ``"e4m3"``, ``"e3m2"``, ``"e2m3"`` or ``"e2m1"``.
    exp_bits, man_bits : int
        ``E`` and ``M``.
    specials : str
        ``"ieee"`` (the all-ones exponent holds infinities and NaNs), ``"nan"`` (only the
        all-ones code ``S.1...1.1...1`` is NaN) or ``"none"``.
    """

    name: str
    exp_bits: int
    man_bits: int
    specials: str

    @property
    def width(self) -> int:
        """Bits of a code, ``1 + E + M``."""
        return 1 + self.exp_bits + self.man_bits

    @property
    def bias(self) -> int:
        """Exponent bias, ``2**(E-1) - 1``."""
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def frac_bits(self) -> int:
        """``f = bias + M - 1``: the smallest subnormal is ``2**-f``."""
        return self.bias + self.man_bits - 1

    @property
    def emax(self) -> int:
        """Exponent of the largest normal number (OCP's ``emax_elem``)."""
        top = (1 << self.exp_bits) - 1
        return (top - 1 if self.specials == "ieee" else top) - self.bias

    @property
    def max_int(self) -> int:
        """Fixed-point integer of the largest finite magnitude (``max normal * 2**f``)."""
        top_man = (1 << self.man_bits) - 1
        if self.specials == "nan":  # the all-ones mantissa at the top exponent is NaN
            top_man -= 1
        return ((1 << self.man_bits) + top_man) << (self.emax + self.bias - 1)

    @property
    def max_normal(self) -> float:
        """Largest finite magnitude (448 for E4M3, 57344 for E5M2, 6 for E2M1)."""
        return self.max_int / (1 << self.frac_bits)

    @property
    def int_bits(self) -> int:
        """Bits of the two's complement fixed-point integer that holds every finite value."""
        return self.max_int.bit_length() + 1

    @cached_property
    def table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(P, kind)`` for every code ``0 .. 2**width - 1``: the signed fixed-point integer
        (``int64``; 0 for specials) and the kind (``int8``: 0 finite, 1 infinity, 2 NaN)."""
        codes = torch.arange(1 << self.width, dtype=torch.int64)
        sign = codes >> (self.exp_bits + self.man_bits)
        e = (codes >> self.man_bits) & ((1 << self.exp_bits) - 1)
        m = codes & ((1 << self.man_bits) - 1)
        mag = torch.where(e == 0, m, ((1 << self.man_bits) + m) << (e - 1).clamp(min=0))
        top_e = e == (1 << self.exp_bits) - 1
        kind = torch.zeros_like(codes, dtype=torch.int8)
        if self.specials == "ieee":
            kind = torch.where(top_e, torch.where(m == 0, 1, 2), 0).to(torch.int8)
        elif self.specials == "nan":
            kind = torch.where(top_e & (m == (1 << self.man_bits) - 1), 2, 0).to(torch.int8)
        value = torch.where(kind == 0, torch.where(sign == 1, -mag, mag), 0)
        return value, kind

    @cached_property
    def values(self) -> torch.Tensor:
        """float32 value of every code (exact): ``-0.0`` for the negative zero, ``±inf`` and
        NaN for the specials."""
        value, kind = self.table
        negative = torch.arange(1 << self.width) >> (self.width - 1) == 1
        out = value.to(torch.float64) / (1 << self.frac_bits)
        out = torch.where(negative, -out.abs(), out)
        out = torch.where(kind == 1, torch.where(negative, -torch.inf, torch.inf), out)
        return torch.where(kind == 2, torch.nan, out).to(torch.float32)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Signed fixed-point integers ``P`` (``int64``) of ``codes``; 0 for specials."""
        return self.table[0][codes.to(torch.int64)]

    def kind(self, codes: torch.Tensor) -> torch.Tensor:
        """0 finite, 1 infinity, 2 NaN (``int8``), per code."""
        return self.table[1][codes.to(torch.int64)]

    def encode(self, value: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        """Codes (``int32``) of representable fixed-point integers ``value``; the sign bit
        is ``negative`` (so that a negative input that rounds to zero keeps ``-0``).

        ``value`` must be exactly representable (``|value| <= max_int`` and on the grid):
        :func:`golden.quantize` guarantees it.
        """
        mag = value.abs().to(torch.int64)
        # Inverse of the magnitude table: the positive codes hold every finite magnitude
        # once, in increasing order, so a search finds the code.
        table = self.table[0][: self.finite_codes]
        code = torch.searchsorted(table, mag.contiguous())
        return (code | (negative.to(torch.int64) << (self.width - 1))).to(torch.int32)

    @property
    def finite_codes(self) -> int:
        """Number of non-negative finite codes: ``0 .. finite_codes - 1`` (the specials
        are the top codes of each sign)."""
        return int((self.table[1][: 1 << (self.width - 1)] == 0).sum())

    @property
    def family(self) -> str:
        """``--format`` name: ``mxfp8_e4m3``, ``mxfp6_e2m3``, ``mxfp4``, ..."""
        return "mxfp4" if self.width == 4 else f"mxfp{self.width}_{self.name}"


#: The OCP MX v1.0 element formats by name.
ELEMENTS = {
    "e5m2": ElementFormat("e5m2", 5, 2, "ieee"),
    "e4m3": ElementFormat("e4m3", 4, 3, "nan"),
    "e3m2": ElementFormat("e3m2", 3, 2, "none"),
    "e2m3": ElementFormat("e2m3", 2, 3, "none"),
    "e2m1": ElementFormat("e2m1", 2, 1, "none"),
}


def element_format(name: object) -> ElementFormat:
    """The :class:`ElementFormat` called ``name`` (a key of :data:`ELEMENTS`), or a
    ``ValueError`` that lists them; an ``ElementFormat`` is returned as it is."""
    if isinstance(name, ElementFormat):
        return name
    return ELEMENTS[check_choice("element", name, tuple(ELEMENTS))]
