"""What several units' parameter records share: help texts of common fields and the
canonical ``levels_per_stage``. One text per concept (see the glossary in docs/api.md)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from golden.format import MAX_BLOCK, MAX_EXP_BITS, MAX_MAN_BITS, SCALE_BITS
from golden.minifloat import ELEMENTS, ElementFormat
from golden.rounding import ROUNDING_MODES

from .bitheap import ARCHS, DEFAULT_ARCH, PRIMITIVES, SumOfProducts
from .pipeline import OUT_READY_MODES
from .unit import param

__all__ = ["ELEMENT_CHOICES", "a_bits_param", "arch_param", "arch_suffix", "b_bits_param",
           "out_ready_param", "out_ready_suffix", "block_param", "check_element_scale",
           "check_sum_fields", "element_of",
           "default_sum_levels", "element_param", "exp_bits_param",
           "fold_levels_per_stage", "fold_sum_levels", "guard_bits_param", "levels_param",
           "operands_name", "primitives_param", "rounding_param", "sum_levels_param",
           "sum_levels_suffix"]

BLOCK_HELP = "elements per shared exponent, k (1 to 1024)"
EXP_BITS_HELP = "shared exponent bits (2 to 8; default 8, OCP E8M0)"
ARCH_HELP = ("how the k products are summed: 'heap' (tiles of at most 3x3 bits into one bit "
             "heap, reduced by counters, one final adder) or 'tree' (k multipliers and an "
             "adder tree)")
PRIMITIVES_HELP = ("primitive set the generator may instantiate: 'xc7' lets the heap use "
                   "AMD/Xilinx 7-series LUT6_2 and CARRY4 cells (ternary adders, one LUT per "
                   "column); 'ecp5' lets it use Lattice ECP5 CCU2C cells (row-pair products and "
                   "two-row adders, one LUT4 per column; integer operands only); 'generic' "
                   "emits plain logic for any FPGA family")
LEVELS_HELP = ("logic levels (tree levels; heap: tile, counter and final-adder levels) "
               "between pipeline registers")
ROUNDING_HELP = ("rounding of the bits dropped: " + ", ".join(ROUNDING_MODES)
                 + " (nearest-even, nearest-away, toward zero, toward -inf)")
GUARD_BITS_HELP = "extra low bits kept when aligning exponents"
OUT_READY_HELP = ("how the output's ready reaches the pipeline: 'direct' (combinationally, "
                  "to every register enable) or 'registered' (through a skid register at "
                  "the output: the skid's valid bit and a registered stall enable; same "
                  "latency and rate, one payload-wide register and multiplexer more, and "
                  "with ready low one result more held; in linear, at every sub-unit's "
                  "output)")

#: Logic levels between pipeline registers when nothing else is said.
DEFAULT_LEVELS = 2
#: Operand element pairs (either order) whose bit heap has one logic level between
#: registers by default. At 2 levels, k = 32 placed at 135.2 MHz (E4M3 x E4M3) and 132.4
#: MHz (E5M2 x E4M3) on ECP5 (``python -m benchmarks.placed``, seed 1; the critical path
#: two counter levels of the heap); at 1 level at 172.7, 175.2 and 171.1 MHz (E4M3 x
#: E4M3) and 157.8, 158.9 and 155.3 MHz (E5M2 x E4M3), seeds 1 to 3; E5M2 x E5M2 at 2
#: levels 117.8 MHz (seed 1), at 1 152.3, 152.2 and 144.6 (seeds 1 to 3; the critical path
#: its final 70-bit adder, since split in two stages: hw.bitheap.SPLIT_ADDER_BITS) with
#: fewer LUTs (201.7 against 213.9 per MAC on xc7); docs/arithmetic.md.
#: The mixed pairs of an 8-bit format with an FP6 or FP4 one: at 2 levels, k = 32, 128.8 to
#: 143.8 MHz (seed 1; the critical path two counter levels, or a counter and the final
#: adder), at 1 level 168.1 to 192.2; see docs/arithmetic.md, "Mixed pairs".
ONE_LEVEL_PAIRS = frozenset({("e4m3", "e4m3"), ("e5m2", "e4m3"), ("e5m2", "e5m2"),
                             ("e4m3", "e3m2"), ("e4m3", "e2m3"), ("e4m3", "e2m1"),
                             ("e5m2", "e3m2"), ("e5m2", "e2m3"), ("e5m2", "e2m1")})
SUM_LEVELS_HELP = (LEVELS_HELP + "; default 2, or 1 for the heap of an E4M3 or E5M2 "
                   "operand with a minifloat one (which come above 150 MHz on ECP5 only so)")


def default_sum_levels(a_element: str, b_element: str, arch: str) -> int:
    """The default logic levels between pipeline registers of a sum of products of
    ``a_element`` by ``b_element`` operands (``"int"`` or a minifloat element name) built
    as ``arch``: 1 for a bit heap of a pair in :data:`ONE_LEVEL_PAIRS` (either order),
    else :data:`DEFAULT_LEVELS`."""
    pair = (a_element, b_element)
    one = arch == "heap" and (pair in ONE_LEVEL_PAIRS or pair[::-1] in ONE_LEVEL_PAIRS)
    return 1 if one else DEFAULT_LEVELS


def a_bits_param(help: str = "mantissa bits of operand a (activations), sign included", *,
                 hi: int = MAX_MAN_BITS, **kw: Any) -> Any:
    """The width of operand ``a``: ``--abits``, defaulting to ``--bits``."""
    return param(help=help, lo=2, hi=hi, option="--abits", fallback="bits", **kw)


def b_bits_param(help: str = "mantissa bits of operand b (weights), sign included", *,
                 hi: int = MAX_MAN_BITS, **kw: Any) -> Any:
    """The width of operand ``b``: ``--wbits``, defaulting to ``--bits``."""
    return param(help=help, lo=2, hi=hi, option="--wbits", fallback="bits", **kw)


def exp_bits_param() -> Any:
    """The shared exponent width, 2 to 8, default 8."""
    return param(8, help=EXP_BITS_HELP, lo=2, hi=MAX_EXP_BITS)


def block_param(help: str = BLOCK_HELP) -> Any:
    """The block size ``k``, 1 to 1024."""
    return param(help=help, lo=1, hi=MAX_BLOCK)


def guard_bits_param(default: int | None, *, hi: int | None = None, **kw: Any) -> Any:
    """Guard bits kept when aligning exponents (no ``hi``: the record's ``resolve``
    checks the range)."""
    return param(default, help=GUARD_BITS_HELP, lo=None if hi is None else 0, hi=hi, **kw)


def rounding_param() -> Any:
    """Rounding of dropped bits, default nearest-even."""
    return param("even", choices=ROUNDING_MODES, help=ROUNDING_HELP)


def arch_param() -> Any:
    """How a sum of products is built, ``heap`` or ``tree``."""
    return param(DEFAULT_ARCH, choices=ARCHS, help=ARCH_HELP)


def levels_param(help: str = LEVELS_HELP) -> Any:
    """Logic levels between pipeline registers, default 2."""
    return param(DEFAULT_LEVELS, lo=1, help=help)


def sum_levels_param() -> Any:
    """Logic levels between pipeline registers of a unit with a sum of products; the
    default (None) is resolved from the operand formats (:func:`default_sum_levels`)."""
    return param(None, lo=1, help=SUM_LEVELS_HELP)



def out_ready_param() -> Any:
    """How the output's ``ready`` reaches the pipeline, ``--out-ready``: ``"direct"``
    (default, left out of the manifest so the designs made before the field keep theirs) or
    ``"registered"`` (:func:`hw.pipeline.output_stage`)."""
    return param("direct", choices=OUT_READY_MODES, help=OUT_READY_HELP, implicit=True)


def out_ready_suffix(p) -> str:
    """Name suffix of a record's ``out_ready``: empty for ``"direct"``, ``_rready`` for
    ``"registered"``."""
    return "" if p.out_ready == "direct" else "_rready"


def primitives_param(*, implicit: bool = False) -> Any:
    """The primitive set the sum of products may instantiate, ``--primitives``
    (``implicit``: left out of the manifest while ``"generic"``, for units whose manifests
    predate the field)."""
    return param("generic", choices=PRIMITIVES, help=PRIMITIVES_HELP, implicit=implicit)


def check_sum_fields(p) -> None:
    """Checks and canonical values of a record with a sum of products: primitives only
    with the heap, ``levels_per_stage`` folded (:func:`fold_sum_levels`)."""
    primitives = getattr(p, "primitives", "generic")
    if primitives != "generic" and p.arch != "heap":
        raise ValueError(f"primitives {primitives!r} needs arch 'heap' (the tree instantiates no "
                         f"primitives), not {p.arch!r}")
    if primitives == "ecp5":
        # The ECP5 heap's tiles are row pairs of integer operands (hw.bitheap); name the
        # operands by their options, not by the record's fields.
        minifloats = [f"{ELEMENTS[e].family} ({e})" for e in
                      (getattr(p, f.name) for f in fields(p) if f.name.endswith("_element"))
                      if e != "int"]
        if minifloats:
            raise ValueError(f"primitives 'ecp5' needs MXINT operands, not "
                             f"{' and '.join(minifloats)} (--format/--aformat/--wformat); use "
                             f"primitives 'generic' or 'xc7' with an MXFP operand")
    if p.levels_per_stage is None:  # the format-aware default, resolved into the record
        p._set("levels_per_stage", default_sum_levels(*_element_names(p), p.arch))
    p._set("levels_per_stage", fold_sum_levels(p))


def _element_names(p) -> tuple[str, str]:
    """The element names of the two operands of a record with a sum of products (the
    dot product's fields ``a``/``b``, the linear engine's and tile's ``x``/``w``;
    ``"int"`` for an integer operand or a record without the field)."""
    def name(*sides: str) -> str:
        return next((getattr(p, f"{s}_element") for s in sides
                     if hasattr(p, f"{s}_element")), "int")
    return name("a", "x"), name("b", "w")


def sum_levels_suffix(p) -> str:
    """Name suffix of a record's ``levels_per_stage`` other than its formats' default
    (:func:`default_sum_levels`); empty for the default."""
    default = default_sum_levels(*_element_names(p), p.arch)
    return "" if p.levels_per_stage == default else f"_l{p.levels_per_stage}"


#: Element format choices of an operand: ``"int"`` (MXINT of the operand's bits) or an OCP
#: MX minifloat element.
ELEMENT_CHOICES = ("int", *ELEMENTS)


def element_param(side: str, role: str, bits_option: str, *, help: str | None = None,
                  **kw: Any) -> Any:
    """The element format of operand ``side`` (``"a"``, ``"x"``: activations, option
    ``--aformat``; ``"b"``, ``"w"``: weights, ``--wformat``), ``int`` (MXINT of the width
    field) by default, falling back to ``--format``. ``implicit``: MXINT records keep the
    manifests they had before the field existed. ``help`` replaces :data:`FORMAT_HELP`
    (with the same ``{side}`` and ``{bits}`` fields)."""
    option = "--aformat" if role == "activations" else "--wformat"
    return param("int", choices=ELEMENT_CHOICES, implicit=True, option=option,
                 fallback="format",
                 help=(help or FORMAT_HELP).format(side=f"{side} ({role})", bits=bits_option),
                 **kw)


FORMAT_HELP = ("format of operand {side}: mxint<m> (MXINT of m bits, or of {bits} when "
               "neither is given) or an OCP MX minifloat, mxfp8_e4m3, mxfp6_e3m2, mxfp6_e2m3, "
               "mxfp4 or mxfp8_e5m2 (element codes under an E8M0 scale; E5M2 with itself "
               "only in the dot product); the record keeps the element: int, e5m2, e4m3, "
               "e3m2, e2m3, e2m1")


def check_element_scale(p, *sides: str) -> None:
    """A minifloat operand (field ``<side>_element``) has an E8M0 scale: ``exp_bits`` must
    be 8; else a ``ValueError`` naming both fields."""
    for side in sides:
        fmt = getattr(p, f"{side}_element")
        if fmt != "int" and p.exp_bits != SCALE_BITS:
            raise ValueError(
                f"exp_bits must be {SCALE_BITS} (the E8M0 scale) when {side}_element is "
                f"a minifloat ({fmt!r}), not {p.exp_bits}")


def element_of(p, side: str) -> ElementFormat | None:
    """The minifloat element format of operand ``side`` (``"a"``/``"b"``) of record ``p``,
    None for an integer operand (or a record without the field)."""
    name = getattr(p, f"{side}_element", None)
    return None if name in (None, "int") else ELEMENTS[name]


def fold_levels_per_stage(levels_per_stage: int, levels: int) -> int:
    """The canonical ``levels_per_stage`` of a unit with ``levels`` logic levels.

    Every value from ``levels`` on gives the same design, so they are folded into
    ``levels`` (or into the default, 2, when that is larger), and the name and manifest of
    the design are the same whichever was given. The command lines refuse a typed value
    that folds, naming the largest that makes a difference.
    """
    return min(levels_per_stage, max(levels, 2))


def fold_sum_levels(p) -> int:
    """:func:`fold_levels_per_stage` of a record with the sum of products' fields
    (``a_bits``/``x_bits``, ``b_bits``/``w_bits``, ``block``, ``arch``,
    ``levels_per_stage`` and, if it has one, ``primitives``). The tree's multipliers are
    always registered: its adder levels are what count."""
    # The dot product's records name the operands a/b, the linear engine's x/w.
    a_element = element_of(p, "a") or element_of(p, "x")
    b_element = element_of(p, "b") or element_of(p, "w")
    sop = SumOfProducts(a_bits=None if a_element else getattr(p, "a_bits", None) or p.x_bits,
                        b_bits=None if b_element else getattr(p, "b_bits", None) or p.w_bits,
                        block=p.block, arch=p.arch, levels_per_stage=p.levels_per_stage,
                        primitives=getattr(p, "primitives", "generic"),
                        a_element=a_element, b_element=b_element)
    return fold_levels_per_stage(p.levels_per_stage,
                                 sop.levels - (1 if p.arch == "tree" else 0))


def arch_suffix(p) -> str:
    """Name suffix of a non-default ``arch`` and ``primitives`` (empty for the defaults)."""
    primitives = getattr(p, "primitives", "generic")
    return ("" if p.arch == DEFAULT_ARCH else f"_{p.arch}") + \
        ("" if primitives == "generic" else f"_{primitives}")


def operands_name(kind: str, p, a: str = "a", b: str = "b") -> str:
    """Module name prefix of a unit of two operands (record fields ``<a>_element``,
    ``<a>_bits``, ``<b>_...``): ``mxint_<kind>_a<m_a>_w<m_b>_e<e>`` for two MXINT operands,
    else ``mx_<kind>_a<x>_w<y>`` with each side its element name or ``i<m>``."""
    ea, eb = getattr(p, f"{a}_element"), getattr(p, f"{b}_element")
    ma, mb = getattr(p, f"{a}_bits"), getattr(p, f"{b}_bits")
    if ea == "int" and eb == "int":
        return f"mxint_{kind}_a{ma}_w{mb}_e{p.exp_bits}"
    side_a = f"i{ma}" if ea == "int" else ea
    side_b = f"i{mb}" if eb == "int" else eb
    return f"mx_{kind}_a{side_a}_w{side_b}"
