"""What a density sweep measures: its configurations and the baselines it compares with.

:class:`Sweep` lists the configurations (element widths, block sizes, targets, mappings,
architectures, place-and-route settings); :data:`BASELINES` the scalar and integer units
every MXINT figure is divided into; :data:`DEFINITIONS` the definitions of every figure, as
``python -m flows.density --help`` prints them and the report quotes them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from hw.bitheap import DEFAULT_ARCH

__all__ = ["BASELINES", "BASELINE_SCHEME", "DEFAULT_FREQ", "DEFINITIONS", "Baseline",
           "ParameterError", "Sweep"]

DEFINITIONS = """\
definitions:
  memory density      32 / (m + e/k): fp32 bits over the bits an MXINT(m, e, k)
                      element takes with its share of the block exponent, exactly as in
                      "Revisiting Block-based Quantisation" (EMNLP 2023). int8 is 32/8 = 4x.
  LUTs/MAC            LUT cells after Yosys synthesis of everything one block dot
                      product with accumulation needs: the generated dot product
                      (hw.generate.elaborate("dot", ...)) plus the accumulator
                      ("accum"), divided by the k multiply-accumulates it does per cycle
                      at full throughput. LUT cells: LUT1..LUT6 and LUT6_2 on xc7; on ecp5
                      LUT4 sites, the LUT4 cells plus two per CCU2C carry cell (a CCU2C is
                      two LUT4s in carry mode). Carry cells (CARRY4, CCU2C), wide-function
                      muxes (MUXF7/8, PFUMX/L6MUX21) and flip-flops are also reported.
  arithmetic density  (LUTs/MAC of the fp32 multiply-add) / (LUTs/MAC of the design),
                      same target and mapping; likewise against bf16 and int8 MACs.
                      The fp32/bf16 baselines flush subnormals to zero, as vendors'
                      FP operators do, and build the significand product as a bit heap
                      (on xc7; Yosys's multiplier on ECP5 and iCE40, smaller there);
                      the int8/int4 MACs use radix-4 Booth products. fp32_generic and
                      int8_generic are the earlier baselines: Yosys's generic
                      multipliers, and fp32 with IEEE subnormals.
                      The primary figure is LUT-only (-nodsp). With DSPs, the same LUT
                      ratio is given and DSP blocks per MAC are reported beside it,
                      never converted to LUTs.
  Fmax                achieved clock of nextpnr-ecp5 after placement and routing (ECP5
                      only: xc7 has no open place-and-route). The chain's is the
                      dot product feeding the accumulator placed as one design, so
                      the back-pressure between them is timed; each unit's own
                      column is that unit placed alone.
  GMAC/s per kLUT     k * Fmax / LUTs (ECP5 only).
  SQNR                10 log10(sum x^2 / sum (x - dequantize(quantize(x)))^2) in dB,
                      nearest-even rounding, blocks along the last axis; x is Student-t
                      with 3 degrees of freedom (seed 0, 1024 x 1024, float32), and with
                      --weights every 2-D floating tensor of the file.
"""

#: Default nextpnr target frequency per mapping.
DEFAULT_FREQ = {"lut": 200.0, "dsp": 300.0}

@dataclasses.dataclass(frozen=True)
class Baseline:
    """A scalar multiply-accumulate the MXINT figures are compared against.

    Members
    -------
    name : str
        ``"fp32"``, ``"bf16"``, ``"int8"``, ... (:data:`BASELINES`).
    top : str
        The ``hw.generate`` unit key, and ``module`` the hw/ module that defines it.
    candidates : tuple of dict
        Constructor arguments tried in order; the first whose names the constructor
        takes is used.
    memory_density : float
        32 / bits per element.
    target_params : dict
        Per family, constructor arguments that replace the candidate's (the fp32 and bf16
        multiply-adds take Yosys's generic multiplier on ECP5 and iCE40, where it is
        smaller than the heap of 6-input tiles).
    """

    name: str
    top: str
    module: str
    candidates: tuple
    memory_density: float
    target_params: Mapping = dataclasses.field(default_factory=dict)


#: The fp32/bf16 multiply-adds as vendors ship them: subnormals flushed to zero. On xc7 the
#: significand product is radix-4 Booth rows subtracted in two registered carry chains
#: (hw.booth.BoothChains), one LUT per row bit: fp32 973 LUTs against 1,456 with the bit
#: heap of LUT tiles, bf16 347 against 371 (2026-12-05). On the LUT4 families the
#: multiply-adds take Yosys's generic multiplier. A family's parameters serve both modes,
#: and on ECP5 the generic multiplier is the smaller with DSPs (fp32: 976 LUT4s and 12
#: DSPs) but not LUT-only, where the Booth fp32 would be 273 LUT4 sites smaller (1,325 LUT4
#: + 337 CCU2C = 1,999 sites, against 1,800 + 236 = 2,272). bf16 on ECP5, generic: 436 +
#: 107 = 650 sites (Booth, before the flushed adder lost its stopper: 673 against 667).
#: The int8/int4 MACs take the radix-4 Booth product (hw.booth), the smallest of the three
#: for one product on both families.
_FLUSHED_BOOTH = {"multiplier": "booth", "subnormals": "flush"}
_LUT4_GENERIC = {"ecp5": {"multiplier": "generic"}, "ice40": {"multiplier": "generic"}}

BASELINES = (
    Baseline("fp32", "fpmac", "fp_mac",
             ({"exp_bits": 8, "man_bits": 23, **_FLUSHED_BOOTH},), 1.0, _LUT4_GENERIC),
    Baseline("bf16", "fpmac", "fp_mac",
             ({"exp_bits": 8, "man_bits": 7, **_FLUSHED_BOOTH},), 2.0, _LUT4_GENERIC),
    Baseline("int8", "intmac", "int_mac",
             ({"a_bits": 8, "b_bits": 8, "multiplier": "booth"},), 4.0),
    Baseline("int4", "intmac", "int_mac",
             ({"a_bits": 4, "b_bits": 4, "multiplier": "booth"},), 8.0),
    # k-lane integer dot products with accumulator: the MXINT unit's structure (the same
    # sum of products, bit heap, xc7 primitives on xc7) without the shared exponent.
    Baseline("int8dot", "intdot", "int_dot", ({"a_bits": 8, "b_bits": 8, "block": 16},), 4.0),
    Baseline("int4dot", "intdot", "int_dot", ({"a_bits": 4, "b_bits": 4, "block": 16},), 8.0),
    # The earlier baselines, kept for comparison: Yosys's generic multipliers ($mul), and
    # the fp32 multiply-add with IEEE subnormals (gradual underflow).
    Baseline("fp32_generic", "fpmac", "fp_mac",
             ({"exp_bits": 8, "man_bits": 23, "multiplier": "generic",
               "subnormals": "keep"},), 1.0),
    Baseline("int8_generic", "intmac", "int_mac",
             ({"a_bits": 8, "b_bits": 8, "multiplier": "generic"},), 4.0),
)

#: Which accuracy scheme stands for each baseline's number format.
BASELINE_SCHEME = {"bf16": "bf16", "int8": "int8", "int8dot": "int8"}


class ParameterError(ValueError):
    """A sweep parameter is invalid."""


@dataclasses.dataclass(frozen=True)
class Sweep:
    """What :func:`run` measures.

    Members
    -------
    bits, blocks : tuple of int
        Element widths ``m`` (both operands) and block sizes ``k``.
    exp_bits : int
        Shared exponent width ``e``.
    targets : tuple of str
        Families of :data:`flows.synth.TARGETS`.
    modes : tuple of str
        ``"lut"`` (DSP cells forbidden) and/or ``"dsp"``.
    pnr : bool
        Place and route ECP5 configurations for Fmax.
    baselines : tuple of str
        Names of :data:`BASELINES` to synthesise.
    freq : dict
        nextpnr target MHz per mode.
    seed : int
        nextpnr seed.
    levels_per_stage : int or None
        Logic levels per pipeline stage of the dot product; the generator's default
        if ``None``.
    out_ready : str
        ``out_ready`` of the dot product and the accumulator (:data:`hw.pipeline.
        OUT_READY_MODES`): ``"direct"`` (the default) or ``"registered"``.
    align : str
        ``align`` of the accumulator (:data:`hw.accumulator.ALIGNS`, default ``"stall"``).
        With ``"lookahead"`` and :attr:`primitives`, the ECP5 accumulator is its ECP5 build
        (``primitives="ecp5"``: the loop of CCU2C cells), as ``hw.generate --align
        lookahead --primitives ecp5`` builds it.
    archs : tuple of str
        Architectures of the dot product's sum (:data:`hw.bitheap.ARCHS`), each measured
        with the same accumulator.
    primitives : bool
        On xc7 and ecp5, build the bit heap (of the MXINT and integer dot products) with
        the family's primitives (xc7 LUT6_2/CARRY4, ecp5 CCU2C), as ``hw.generate
        --primitives xc7`` / ``ecp5`` does.
    tile : mapping or None
        The "tile" section (``--tile``): the tile's ``rows``, ``lanes``, ``k_len``,
        ``tokens``, ``output``, ``blocks_per_cycle`` (:data:`flows.tile.TILE_FIELDS`, defaults
        :data:`flows.tile.TILE_DEFAULTS`), ``bandwidth_gbs`` (external memory of the
        roofline) and ``clock_mhz`` (the compute roof's clock when the sweep places
        nothing on ECP5, else ``None``: the tile's placed Fmax). ``None``: no section.
    formats : tuple of str
        ``--format`` names (:func:`golden.parse_format`) of the format rows (``--formats``),
        each a dot product + accumulator with both operands in the format, built from
        generic logic; the MXINT format of the same element bits is measured beside each
        minifloat one. Empty: no format rows.
    """

    bits: tuple[int, ...]
    blocks: tuple[int, ...]
    exp_bits: int = 8
    targets: tuple[str, ...] = ("xc7", "ecp5")
    modes: tuple[str, ...] = ("lut", "dsp")
    pnr: bool = True
    baselines: tuple[str, ...] = tuple(b.name for b in BASELINES)
    freq: Mapping[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_FREQ))
    seed: int = 1
    levels_per_stage: int | None = None
    out_ready: str = "direct"
    align: str = "stall"
    archs: tuple[str, ...] = (DEFAULT_ARCH,)
    primitives: bool = True
    tile: Mapping | None = None
    formats: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        out = {"bits": list(self.bits), "blocks": list(self.blocks),
               "exp_bits": self.exp_bits, "targets": list(self.targets),
               "modes": list(self.modes), "pnr": self.pnr, "freq_mhz": dict(self.freq),
               "baselines": list(self.baselines),
               "seed": self.seed, "levels_per_stage": self.levels_per_stage,
               "archs": list(self.archs), "primitives": self.primitives}
        # Only when asked for, so that the reports of sweeps without them stay as they were.
        if self.tile is not None:
            out["tile"] = dict(self.tile)
        if self.formats:
            out["formats"] = list(self.formats)
        if self.out_ready != "direct":
            out["out_ready"] = self.out_ready
        if self.align != "stall":
            out["align"] = self.align
        return out

    def accum_params(self, params: Mapping, target: str) -> dict:
        """The accumulator's parameters for the family ``target``: ``params`` (widths,
        block, ``out_ready``) with :attr:`align`, and ``primitives="ecp5"`` on ecp5 for
        ``"lookahead"`` (the only ``align`` with an ECP5 build) unless
        :attr:`primitives` is off."""
        out = dict(params)
        if self.align != "stall":
            out["align"] = self.align
        if self.align == "lookahead" and self.primitives and target == "ecp5":
            out["primitives"] = "ecp5"
        return out

    def primitives_for(self, target: str, arch: str) -> str:
        """The primitive set of a sum of products synthesised for the family ``target``."""
        return target if self.primitives and target in ("xc7", "ecp5") and arch == "heap" \
            else "generic"
