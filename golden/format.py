"""The block number formats: MXINT, and the OCP MX minifloat formats (MXFP8/6/4).

An MXINT(m, e, k) block holds ``k`` elements that share one exponent:

* each element is an ``m``-bit two's complement integer ``P`` (sign included);
* the block has one ``e``-bit shared exponent code ``E`` with bias ``2**(e-1) - 1``;
* the all-ones code ``2**e - 1`` means NaN (as the OCP MX v1.0 E8M0 scale);
* element value = ``P * 2**(E - bias - (m - 2))``.

With ``m = 8, e = 8, k = 32`` this is exactly OCP MXINT8: an int8 element read as a
fixed-point number with one integer bit and six fraction bits (Q1.6), scaled by
``2**(E - 127)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .checks import check_choice, check_int
from .minifloat import ELEMENTS, ElementFormat, element_format

__all__ = ["SCALE_ROUNDINGS", "BlockFormat", "MXFPFormat", "MXIntFormat", "check_choice",
           "check_int", "operand_fields", "operand_format", "parse_format"]

#: Widest element the generator accepts. Products of two such elements still fit the
#: 64-bit integers the golden model computes with, even summed over the largest block.
MAX_MAN_BITS = 24
#: Widest shared exponent. 8 bits covers every finite float32 exponent exactly (OCP E8M0).
MAX_EXP_BITS = 8
#: Largest block size.
MAX_BLOCK = 1024


@dataclass(frozen=True)
class MXIntFormat:
    """An MXINT(m, e, k) block format.

    Parameters
    ----------
    man_bits : int
        ``m``, bits of each element including its sign, 2 to 24. ``m = 1`` is refused
        because symmetric saturation to ``±(2**(m-1) - 1)`` leaves only zero.
    exp_bits : int
        ``e``, bits of the shared exponent code, 2 to 8.
    block : int
        ``k``, elements per shared exponent, 1 to 1024.

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is out of range.
    """

    man_bits: int
    exp_bits: int = 8
    block: int = 32

    def __post_init__(self) -> None:
        check_int("man_bits", self.man_bits, 2, MAX_MAN_BITS)
        check_int("exp_bits", self.exp_bits, 2, MAX_EXP_BITS)
        check_int("block", self.block, 1, MAX_BLOCK)

    @property
    def bias(self) -> int:
        """Exponent bias, ``2**(e-1) - 1``."""
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def nan_code(self) -> int:
        """The all-ones exponent code, which marks a NaN block."""
        return (1 << self.exp_bits) - 1

    @property
    def max_code(self) -> int:
        """Largest finite exponent code, ``2**e - 2``."""
        return self.nan_code - 1

    @property
    def max_man(self) -> int:
        """Largest element magnitude after saturation, ``2**(m-1) - 1``."""
        return (1 << (self.man_bits - 1)) - 1

    @property
    def frac_bits(self) -> int:
        """Fraction bits of an element, ``m - 2``: ``P`` is read as a Q1.(m-2) number."""
        return self.man_bits - 2

    def scale_exponent(self, code: int) -> int:
        """Power of two that one unit of ``P`` weighs at exponent code ``code``."""
        return code - self.bias - self.frac_bits

    @property
    def bits_per_element(self) -> float:
        """Storage per element, ``m + e / k``."""
        return self.man_bits + self.exp_bits / self.block

    @property
    def memory_density(self) -> float:
        """Memory density over fp32 as the EMNLP 2023 paper defines it: ``32 / (m + e/k)``."""
        return 32 / self.bits_per_element

    @property
    def name(self) -> str:
        """Short name such as ``mxint6e8k16``."""
        return f"mxint{self.man_bits}e{self.exp_bits}k{self.block}"

    @property
    def int_bits(self) -> int:
        """Bits of the two's complement integer ``P``: ``m``."""
        return self.man_bits

    @property
    def element_bits(self) -> int:
        """Bits stored per element: ``m``."""
        return self.man_bits

    @property
    def family(self) -> str:
        """``--format`` name: ``mxint<m>``."""
        return f"mxint{self.man_bits}"


#: How an MXFP block's shared scale is chosen (:func:`golden.quantize`).
SCALE_ROUNDINGS = ("floor", "rceil")
#: E8M0 scale: 8 bits, bias 127, code 255 is NaN.
SCALE_BITS = 8


@dataclass(frozen=True)
class MXFPFormat:
    """An OCP MX v1.0 minifloat block format: ``k`` elements of one
    :class:`~golden.minifloat.ElementFormat` under one E8M0 scale.

    The block holds codes ``c_i`` and a scale code ``X`` (8 bits, bias 127, 255 = NaN);
    element ``i`` is worth ``decode(c_i) * 2**(X - 127)``. In the fixed-point view shared
    with MXINT, ``P_i = decode(c_i) * 2**f`` is an integer and the value is
    ``P_i * 2**(X - bias - f)`` with ``bias = 127`` and ``f`` = :attr:`frac_bits`.

    Parameters
    ----------
    element : str or ElementFormat
        ``"e5m2"``, ``"e4m3"`` (MXFP8), ``"e3m2"``, ``"e2m3"`` (MXFP6) or ``"e2m1"``
        (MXFP4).
    block : int
        ``k``, elements per scale, 1 to 1024 (OCP: 32).
    scale_rounding : {"floor", "rceil"}
        ``"floor"`` (OCP v1.0): ``X = floor(log2 amax) - emax_elem + 127``, elements
        saturate; ``"rceil"`` (NVIDIA's and torchao's round-up variant): the smallest
        ``X`` with ``amax <= max_normal * 2**(X - 127)``, so nothing saturates unless the
        scale does.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or value.
    """

    element: ElementFormat
    block: int = 32
    scale_rounding: str = "floor"

    def __post_init__(self) -> None:
        object.__setattr__(self, "element", element_format(self.element))
        check_int("block", self.block, 1, MAX_BLOCK)
        check_choice("scale_rounding", self.scale_rounding, SCALE_ROUNDINGS)

    exp_bits = SCALE_BITS
    bias = (1 << (SCALE_BITS - 1)) - 1
    nan_code = (1 << SCALE_BITS) - 1
    max_code = nan_code - 1

    @property
    def frac_bits(self) -> int:
        """``f`` of the element format: the value of ``P`` is ``P * 2**(X - 127 - f)``."""
        return self.element.frac_bits

    @property
    def max_man(self) -> int:
        """Largest fixed-point magnitude, ``max_normal * 2**f``."""
        return self.element.max_int

    @property
    def int_bits(self) -> int:
        """Bits of the two's complement fixed-point integer ``P``."""
        return self.element.int_bits

    @property
    def element_bits(self) -> int:
        """Bits stored per element (the code's width)."""
        return self.element.width

    def scale_exponent(self, code: int) -> int:
        """Power of two that one unit of ``P`` weighs at scale code ``code``."""
        return code - self.bias - self.frac_bits

    @property
    def bits_per_element(self) -> float:
        """Storage per element, ``width + 8 / k``."""
        return self.element_bits + self.exp_bits / self.block

    @property
    def memory_density(self) -> float:
        """Memory density over fp32: ``32 / (width + 8/k)``."""
        return 32 / self.bits_per_element

    @property
    def family(self) -> str:
        """``--format`` name: ``mxfp8_e4m3``, ``mxfp4``, ..."""
        return self.element.family

    @property
    def name(self) -> str:
        """Short name such as ``mxfp8_e4m3_k32`` (``_rceil`` appended for that scale)."""
        suffix = "_rceil" if self.scale_rounding == "rceil" else ""
        return f"{self.family}_k{self.block}{suffix}"


#: ``--format`` names of the minifloat formats (``mxint<m>`` names MXINT of ``m`` bits).
MXFP_NAMES = {e.family: e.name for e in ELEMENTS.values()} | {"mxfp4_e2m1": "e2m1"}


def parse_format(name: object, *, block: int = 32, scale_rounding: str = "floor"
                 ) -> MXIntFormat | MXFPFormat:
    """The block format a ``--format`` name means.

    Parameters
    ----------
    name : str
        ``mxint<m>`` (MXINT with ``m``-bit elements, 2 to 24, and an E8M0 exponent:
        ``mxint8`` is OCP MXINT8), ``mxfp8_e4m3``, ``mxfp8_e5m2``, ``mxfp6_e3m2``,
        ``mxfp6_e2m3`` or ``mxfp4`` (also ``mxfp4_e2m1``). Case is ignored.
    block : int
        Elements per shared scale.
    scale_rounding : {"floor", "rceil"}
        MXFP only (see :class:`MXFPFormat`); MXINT takes only ``"floor"``.

    Raises
    ------
    ValueError
        If ``name`` is not one of these, naming what is allowed.
    """
    if not isinstance(name, str):
        raise TypeError(f"format must be a str such as 'mxint8' or 'mxfp4', not {name!r}")
    key = name.strip().lower()
    if key in MXFP_NAMES:
        return MXFPFormat(ELEMENTS[MXFP_NAMES[key]], block=block, scale_rounding=scale_rounding)
    digits = key.removeprefix("mxint")
    if key.startswith("mxint") and digits.isdigit():
        check_int("bits of an mxint format", int(digits), 2, MAX_MAN_BITS)
        check_choice("scale_rounding", scale_rounding, ("floor",))
        return MXIntFormat(int(digits), exp_bits=SCALE_BITS, block=block)
    allowed = ", ".join(sorted(MXFP_NAMES))
    raise ValueError(f"format must be mxint2 .. mxint{MAX_MAN_BITS} or one of {allowed}; "
                     f"not {name!r}")


#: Either block format.
BlockFormat = MXIntFormat | MXFPFormat


def operand_format(element: object = "int", bits: object = None, *, exp_bits: int = SCALE_BITS,
                   block: int, side: str = "a") -> MXIntFormat | MXFPFormat:
    """The block format of one operand of a unit, from the fields its parameter record
    keeps: ``element`` (``"int"`` or an OCP MX element name) and ``bits``.

    ``"int"`` is MXINT(``bits``, ``exp_bits``, ``block``); a minifloat element is
    ``MXFPFormat(element, block)``, whose scale is E8M0, so ``exp_bits`` must be 8 and
    ``bits`` None. ``side`` names the operand in the messages (``a_bits``, ``x_element``).

    Raises
    ------
    TypeError, ValueError
        Naming the field (``<side>_element``, ``<side>_bits``, ``exp_bits``), the value
        and what is allowed.
    """
    names = ("int", *ELEMENTS)
    element = check_choice(f"{side}_element", element, names)
    if element == "int":
        return MXIntFormat(check_int(f"{side}_bits", bits, 2, MAX_MAN_BITS), exp_bits, block)
    if bits is not None:
        raise ValueError(f"{side}_bits applies only with {side}_element='int', not "
                         f"{side}_element={element!r}: leave it out (the element sets the width)")
    if exp_bits != SCALE_BITS:
        raise ValueError(f"exp_bits must be {SCALE_BITS} (the E8M0 scale) when {side}_element "
                         f"is a minifloat ({element!r}), not {exp_bits}")
    return MXFPFormat(ELEMENTS[element], block=block)


def operand_fields(fmt: MXIntFormat | MXFPFormat, side: str) -> dict[str, object]:
    """The record fields of an operand of format ``fmt``, the inverse of
    :func:`operand_format`: ``{"<side>_element": "int" or the element name,
    "<side>_bits": m or None}``."""
    if isinstance(fmt, MXFPFormat):
        return {f"{side}_element": fmt.element.name, f"{side}_bits": None}
    if isinstance(fmt, MXIntFormat):
        return {f"{side}_element": "int", f"{side}_bits": fmt.man_bits}
    raise TypeError(f"fmt must be an MXIntFormat or MXFPFormat, not {fmt!r}")
