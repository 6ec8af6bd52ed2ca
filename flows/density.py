"""Memory and arithmetic density of MXINT arithmetic over fp32, bf16 and int8, with accuracy.

Usage::

    python -m flows.density --bits 4,6,8 --block 16,32 --target xc7,ecp5 --jobs 2 \\
                            --out reports/ [--weights model.safetensors]

writes ``density.md``, ``density.csv``, ``density.json`` and PNG plots to ``--out``. The
definitions are in :data:`DEFINITIONS` (printed by ``--help``) and ``docs/density.md``.

Each configuration (bits ``m``, block ``k``, target, mapping) is synthesised with
:func:`flows.synth.synthesize`, or on ECP5 synthesised, placed and routed with
:func:`flows.pnr.place_and_route`. Results are kept in a :class:`flows.cache.ResultCache`
keyed by the Verilog, the flow and the tool versions, so an interrupted sweep resumes
and a repeated one runs no tool.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import inspect
import io
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from golden.format import MAX_BLOCK, MAX_EXP_BITS, MAX_MAN_BITS, MXIntFormat
from hw.bitheap import ARCHS, DEFAULT_ARCH

from .cache import DEFAULT_CACHE_DIR, ResultCache, result_key, source_digest
from .pnr import nextpnr_version, place_and_route
from .synth import TARGETS, synth_command, synthesize, yosys_version

__all__ = [
    "BASELINES",
    "DEFINITIONS",
    "PAPER",
    "Sweep",
    "build_parser",
    "main",
    "paper_check",
    "run",
    "sqnr_db",
    "student_t",
    "write_reports",
]

REPO = Path(__file__).resolve().parent.parent

DEFINITIONS = """\
definitions:
  memory density      32 / (m + e/k): fp32 bits over the bits an MXINT(m, e, k)
                      element takes with its share of the block exponent, exactly as in
                      "Revisiting Block-based Quantisation" (EMNLP 2023). int8 is 32/8 = 4x.
  LUTs/MAC            LUT cells after Yosys synthesis of everything one block dot
                      product with accumulation needs: the generated dot product
                      (hw.generate.elaborate("dot", ...)) plus the accumulator
                      ("accum"), divided by the k multiply-accumulates it does per cycle
                      at full throughput. LUT cells only: LUT1..LUT6 and LUT6_2 on xc7, LUT4 on
                      ecp5. Carry cells (CARRY4, CCU2C), wide-function muxes (MUXF7/8,
                      PFUMX/L6MUX21) and flip-flops are reported, not converted to LUTs.
  arithmetic density  (LUTs/MAC of the fp32 multiply-add) / (LUTs/MAC of the design),
                      same target and mapping; likewise against bf16 and int8 MACs.
                      The primary figure is LUT-only (-nodsp). With DSPs, the same LUT
                      ratio is given and DSP blocks per MAC are reported beside it,
                      never converted to LUTs.
  Fmax                achieved clock of nextpnr-ecp5 after placement and routing (ECP5
                      only: xc7 has no open place-and-route). The chain runs at the
                      slower of the dot product and the accumulator.
  GMAC/s per kLUT     k * Fmax / LUTs (ECP5 only).
  SQNR                10 log10(sum x^2 / sum (x - dequantize(quantize(x)))^2) in dB,
                      nearest-even rounding, blocks along the last axis; x is Student-t
                      with 3 degrees of freedom (seed 0, 1024 x 1024, float32), and with
                      --weights every 2-D floating tensor of the file.
"""

#: The paper's figures (EMNLP 2023, "Revisiting Block-based Quantisation").
PAPER = {
    "memory_density_k16": {4: 7.11, 6: 4.92, 8: 3.76},
    "memory_density_int8": 4.0,
    "arith_6bit_vs_fp32": 19.0,
    "arith_6bit_vs_8bit": 2.5,
}

#: The project's goals for the paper check.
GOALS = {
    "xc7_6bit_k16_vs_fp32_min": 25.0,
    "xc7_6bit_k16_vs_int8_min": 3.0,
    "xc7_6bit_luts_per_mac_max": 40.0,
    "ecp5_fmax_dsp_min_mhz": 300.0,
    "ecp5_fmax_lut_min_mhz": 200.0,
}

#: Default nextpnr target frequency per mapping (the goals above).
DEFAULT_FREQ = {"lut": 200.0, "dsp": 300.0}

#: Synthetic data of the accuracy axis.
T_DOF, T_SEED, T_SHAPE = 3, 0, (1024, 1024)


@dataclasses.dataclass(frozen=True)
class Baseline:
    """A scalar multiply-accumulate the MXINT figures are compared against.

    Members
    -------
    name : str
        ``"fp32"``, ``"bf16"`` or ``"int8"``.
    top : str
        The ``hw.generate`` unit key, and ``module`` the hw/ module that defines it.
    candidates : tuple of dict
        Constructor arguments tried in order; the first whose names the constructor
        takes is used.
    memory_density : float
        32 / bits per element.
    """

    name: str
    top: str
    module: str
    candidates: tuple
    memory_density: float


BASELINES = (
    Baseline("fp32", "fpmac", "fp_mac",
             ({"fmt": "fp32"}, {"format": "fp32"}, {"exp_bits": 8, "man_bits": 23},
              {"exp_bits": 8, "frac_bits": 23}, {"exp_bits": 8, "mant_bits": 23}), 1.0),
    Baseline("bf16", "fpmac", "fp_mac",
             ({"fmt": "bf16"}, {"format": "bf16"}, {"exp_bits": 8, "man_bits": 7},
              {"exp_bits": 8, "frac_bits": 7}, {"exp_bits": 8, "mant_bits": 7}), 2.0),
    Baseline("int8", "intmac", "int_mac",
             ({"a_bits": 8, "b_bits": 8}, {"bits": 8}, {"width": 8}, {"man_bits": 8}), 4.0),
    Baseline("int4", "intmac", "int_mac", ({"a_bits": 4, "b_bits": 4},), 8.0),
    # k-lane integer dot products with accumulator: the MXINT unit's structure (the same
    # sum of products, bit heap, xc7 primitives on xc7) without the shared exponent.
    Baseline("int8dot", "intdot", "int_dot", ({"a_bits": 8, "b_bits": 8, "block": 16},), 4.0),
    Baseline("int4dot", "intdot", "int_dot", ({"a_bits": 4, "b_bits": 4, "block": 16},), 8.0),
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
    archs : tuple of str
        Architectures of the dot product's sum (:data:`hw.bitheap.ARCHS`), each measured
        with the same accumulator.
    primitives : bool
        On xc7, build the bit heap (of the MXINT and integer dot products) with xc7
        LUT6_2/CARRY4 primitives, as ``hw.generate --primitives xc7`` does.
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
    archs: tuple[str, ...] = (DEFAULT_ARCH,)
    primitives: bool = True

    def as_dict(self) -> dict:
        return {"bits": list(self.bits), "blocks": list(self.blocks),
                "exp_bits": self.exp_bits, "targets": list(self.targets),
                "modes": list(self.modes), "pnr": self.pnr, "freq_mhz": dict(self.freq),
                "baselines": list(self.baselines),
                "seed": self.seed, "levels_per_stage": self.levels_per_stage,
                "archs": list(self.archs), "primitives": self.primitives}

    def sop_target(self, target: str, arch: str) -> str:
        """The ``target`` parameter of a sum of products synthesised for ``target``."""
        return "xc7" if self.primitives and target == "xc7" and arch == "heap" else "generic"


# ---------------------------------------------------------------------------------------
# Accuracy


def student_t(*, dof: int = T_DOF, seed: int = T_SEED, shape: tuple[int, ...] = T_SHAPE):
    """Student-t samples, float32: ``Z0 / sqrt((Z1^2 + ... + Z_dof^2) / dof)`` with the
    ``Z`` standard normal from ``torch.Generator().manual_seed(seed)``, drawn in that
    order. The same arguments give the same tensor on every machine."""
    import torch

    g = torch.Generator().manual_seed(seed)
    z = torch.randn((dof + 1, *shape), generator=g, dtype=torch.float64)
    return (z[0] / torch.sqrt((z[1:] ** 2).sum(0) / dof)).to(torch.float32)


def _powers(x, y) -> tuple[float, float]:
    import torch

    x64, y64 = x.to(torch.float64), y.to(torch.float64)
    return float((x64 ** 2).sum()), float(((x64 - y64) ** 2).sum())


def _db(signal: float, noise: float) -> float | None:
    if noise == 0:
        return None  # exact: no finite SQNR
    return 10 * math.log10(signal / noise)


def _roundtrip(x, scheme: str | MXIntFormat):
    """``x`` quantised and brought back, for one scheme: an MXIntFormat (blocks along the
    last axis, nearest-even), ``"bf16"`` (cast, nearest-even) or ``"int8"`` (per row:
    scale = max|x| / 127, nearest-even, clamp to ±127)."""
    import torch

    from golden.quantize import dequantize, quantize

    if isinstance(scheme, MXIntFormat):
        return dequantize(quantize(x, scheme, axis=-1, rounding="even"))
    if scheme == "bf16":
        return x.to(torch.bfloat16).to(torch.float32)
    if scheme == "int8":
        x32 = x.to(torch.float32)
        scale = x32.abs().amax(dim=-1, keepdim=True) / 127
        scale = torch.where(scale > 0, scale, 1)
        return torch.round(x32 / scale).clamp(-127, 127) * scale
    raise ValueError(f"unknown scheme {scheme!r}")


def sqnr_db(tensors: Iterable, scheme: str | MXIntFormat) -> float | None:
    """SQNR in dB of ``scheme`` over ``tensors`` taken together: total signal power over
    total quantisation noise power. ``None`` if the noise is zero."""
    signal = noise = 0.0
    for x in tensors:
        s, n = _powers(x, _roundtrip(x, scheme))
        signal += s
        noise += n
    return _db(signal, noise)


class _SqnrCache:
    """:func:`sqnr_db` on the Student-t data and on the weights, through a result cache
    keyed by the scheme, the data (its recipe, or the sha256 of the weights file) and
    the sources of golden/ with the PyTorch version."""

    def __init__(self, cache: ResultCache | None, weights: Path | None) -> None:
        import torch

        self._cache = cache
        self._tools = {"golden": source_digest(REPO / "golden"), "torch": torch.__version__}
        self._weights_id = (hashlib.sha256(weights.read_bytes()).hexdigest()
                            if weights is not None and cache is not None else None)
        self._t3 = None

    def _get(self, scheme: str | MXIntFormat, data: str, compute: Callable[[], float | None]):
        name = scheme.name if isinstance(scheme, MXIntFormat) else scheme
        if self._cache is None:
            return compute()
        key = result_key(verilog="", flow=f"sqnr {name}", options={"data": data},
                         tools=self._tools)
        hit = self._cache.get(key)
        if hit is not None:
            return hit["sqnr_db"]
        value = compute()
        self._cache.put(key, {"sqnr_db": value})
        return value

    def t3(self, scheme: str | MXIntFormat) -> float | None:
        def compute() -> float | None:
            if self._t3 is None:
                self._t3 = student_t()
            return sqnr_db([self._t3], scheme)
        return self._get(scheme, f"student-t dof={T_DOF} seed={T_SEED} shape={T_SHAPE}",
                         compute)

    def weights(self, tensors: list, scheme: str | MXIntFormat) -> float | None:
        return self._get(scheme, f"weights sha256={self._weights_id}",
                         lambda: sqnr_db(tensors, scheme))


def load_weights(path: Path) -> list:
    """Every 2-D floating-point tensor of a ``.safetensors`` file or a PyTorch state dict
    (``torch.load(weights_only=True)``), as float32, in sorted name order.

    Raises
    ------
    ValueError
        If the file cannot be read or holds no 2-D floating-point tensor.
    """
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # each loader raises its own kinds
        raise ValueError(f"cannot read --weights {path}: {exc}") from None
    if isinstance(state, Mapping) and "state_dict" in state and \
            isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ValueError(f"--weights {path} holds a {type(state).__name__}, not a state dict")
    tensors = [value.detach().to(torch.float32) for _, value in sorted(state.items())
               if isinstance(value, torch.Tensor) and value.dim() == 2
               and value.is_floating_point() and value.numel()]
    if not tensors:
        raise ValueError(f"--weights {path} holds no 2-D floating-point tensor")
    return tensors


# ---------------------------------------------------------------------------------------
# Designs


@dataclasses.dataclass(frozen=True)
class _Unit:
    """A generated design to synthesise: its Verilog and MACs per cycle."""

    name: str
    verilog: str
    macs: int


def _hw_digest() -> str:
    """Digest of everything that decides generated Verilog: hw/, golden/, Amaranth."""
    return hashlib.sha256((source_digest(REPO / "hw", REPO / "golden") + "\0"
                           + importlib.metadata.version("amaranth")).encode()).hexdigest()


def _elaborate(cache: ResultCache | None, top: str, params: dict, digest: str) -> _Unit:
    """``hw.generate.elaborate(top, **params)``, through ``cache`` when given (keyed by
    the sources of hw/ and golden/ and the Amaranth version)."""
    key = result_key(verilog="", flow=f"elaborate {top}", options=params,
                     tools={"hw": digest})
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return _Unit(hit["name"], hit["verilog"], hit["macs"])
    from hw.generate import elaborate

    design = elaborate(top, **params)
    component = design.component
    macs = int(getattr(component, "macs_per_cycle", getattr(component, "lanes", 1)))
    if top in ("dot", "accum"):
        macs = params["block"]
    unit = _Unit(design.name, design.verilog, macs)
    if cache is not None:
        cache.put(key, dataclasses.asdict(unit))
    return unit


def _unit_available(top: str, module: str) -> str | None:
    """``None`` if ``hw.generate`` offers ``top``; otherwise why not."""
    from hw.generate import TOPS

    if top in TOPS:
        return None
    if importlib.util.find_spec(f"hw.{module}") is not None:
        return (f"hw/{module}.py exists but hw.generate does not offer --top {top} "
                f"(add {module!r} to hw.generate.UNIT_MODULES)")
    return f"hw/{module}.py (--top {top}) is not written yet"


def _baseline_params(baseline: Baseline) -> dict:
    from hw.generate import TOPS

    accepted = set(inspect.signature(TOPS[baseline.top].component).parameters)
    for params in baseline.candidates:
        if set(params) <= accepted:
            return dict(params)
    raise ParameterError(f"cannot map {baseline.name} onto the parameters of "
                         f"hw/{baseline.module}.py ({', '.join(sorted(accepted))})")


# ---------------------------------------------------------------------------------------
# Flow runs


@dataclasses.dataclass(frozen=True)
class _Job:
    unit: _Unit
    target: str
    mode: str
    pnr: bool
    freq: float
    seed: int

    @property
    def label(self) -> str:
        return f"{self.unit.name} {self.target} {self.mode}{' pnr' if self.pnr else ''}"


def _flow_digest() -> str:
    return source_digest(REPO / "flows" / "synth.py", REPO / "flows" / "pnr.py")


def _job_key(job: _Job, tools: Mapping, flow_digest: str) -> str:
    dsp = job.mode == "dsp"
    flow = synth_command(job.unit.name, target=job.target, dsp=dsp)
    options = {"target": job.target, "dsp": dsp, "top": job.unit.name}
    if job.pnr:
        flow += " | nextpnr-ecp5"
        options.update(freq_mhz=job.freq, seed=job.seed)
    return result_key(verilog=job.unit.verilog, flow=f"{flow} | {flow_digest}",
                      options=options, tools=tools)


def _run_job(job: _Job, folder: Path) -> dict:
    work = folder / f"{job.unit.name}-{job.target}-{job.mode}"
    work.mkdir(parents=True, exist_ok=True)
    source = work / f"{job.unit.name}.v"
    source.write_text(job.unit.verilog, encoding="utf-8")
    if job.pnr:
        return place_and_route(source, job.unit.name, dsp=job.mode == "dsp",
                               freq_mhz=job.freq, seed=job.seed, workdir=work / "pnr")
    return synthesize(source, job.unit.name, target=job.target, dsp=job.mode == "dsp",
                      workdir=work / "synth")


def _run_jobs(jobs: Sequence[_Job], cache: ResultCache | None, tools: Mapping, workers: int,
              progress: bool, stats: dict) -> dict[_Job, dict]:
    """Results of ``jobs``, from the cache or by running the tools ``workers`` at a time."""
    from tqdm import tqdm

    flow_digest = _flow_digest()
    results: dict[_Job, dict] = {}
    todo: list[tuple[_Job, str]] = []
    for job in jobs:
        key = _job_key(job, tools, flow_digest)
        hit = cache.get(key) if cache is not None else None
        if hit is not None:
            results[job] = hit
        else:
            todo.append((job, key))
    stats.update(tool_runs=len(jobs), reused=len(jobs) - len(todo))
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), unit="run",
               desc="density sweep", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    with bar, tempfile.TemporaryDirectory(prefix="mxforge-density-") as where, \
            ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        # Largest designs first, so the slowest runs do not start last.
        order = sorted(todo, key=lambda item: -len(item[0].unit.verilog))
        futures = {pool.submit(_run_job, job, Path(where)): (job, key) for job, key in order}
        try:
            for future in as_completed(futures):
                job, key = futures[future]
                result = future.result()
                results[job] = result
                if cache is not None:
                    cache.put(key, result)  # kept at once: an interrupted sweep resumes
                bar.set_postfix_str(job.label, refresh=False)
                bar.update()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results


# ---------------------------------------------------------------------------------------
# The sweep


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return num / den


def run(sweep: Sweep, *, cache: ResultCache | None = None, jobs: int = 1,
        weights: Path | None = None, progress: bool = False,
        log: Callable[[str], None] | None = None, stats: dict | None = None) -> dict:
    """Measure every configuration of ``sweep``.

    Parameters
    ----------
    sweep : Sweep
        The configurations.
    cache : ResultCache, optional
        Where results are looked up and kept; ``None`` runs every tool.
    jobs : int
        Tool processes run at once.
    weights : path, optional
        A ``.safetensors`` file or PyTorch state dict for the accuracy axis.
    progress : bool
        Show a tqdm progress bar on stderr.
    log : callable, optional
        Receives notes (missing units) as they are found.
    stats : dict, optional
        Filled with ``tool_runs`` (synthesis and place-and-route runs of the sweep) and
        ``reused`` (how many of them came from the cache).

    Returns
    -------
    dict
        ``definitions``, ``sweep``, ``tools``, ``notes``, ``baselines``, ``rows`` and
        ``paper_check``; deterministic (no paths, no times), JSON-able.

    Raises
    ------
    ParameterError
        If a parameter is invalid.
    RuntimeError
        If a tool fails.
    """
    say = log or (lambda line: None)
    tools = {"yosys": yosys_version()}
    if sweep.pnr and "ecp5" in sweep.targets:
        tools["nextpnr"] = nextpnr_version()
    notes: list[str] = []

    tensors = load_weights(weights) if weights is not None else None
    sqnr = _SqnrCache(cache, weights)

    digest = _hw_digest()
    accum_missing = _unit_available("accum", "accumulator")
    if accum_missing:
        notes.append(f"Accumulator NOT included: {accum_missing}. LUTs/MAC count the dot "
                     "product alone.")
    # units[m, k, arch][target] = {"dot": ..., "accum": ...}
    units: dict[tuple[int, int, str], dict[str, dict[str, _Unit]]] = {}
    try:
        for m in sweep.bits:
            for k in sweep.blocks:
                params = {"a_bits": m, "b_bits": m, "exp_bits": sweep.exp_bits, "block": k}
                accum = None if accum_missing else _elaborate(cache, "accum", params, digest)
                for arch in sweep.archs:
                    units[m, k, arch] = {}
                    for target in sweep.targets:
                        dot_params = {**params, "arch": arch}
                        if sweep.levels_per_stage is not None:
                            dot_params["levels_per_stage"] = sweep.levels_per_stage
                        if sweep.sop_target(target, arch) != "generic":
                            dot_params["target"] = sweep.sop_target(target, arch)
                        group = {"dot": _elaborate(cache, "dot", dot_params, digest)}
                        if accum is not None:
                            group["accum"] = accum
                        units[m, k, arch][target] = group
    except (TypeError, ValueError) as exc:
        raise ParameterError(str(exc)) from exc
    # baseline_units[name][target]
    baseline_units: dict[str, dict[str, _Unit]] = {}
    baseline_params: dict[str, dict] = {}
    for baseline in BASELINES:
        if baseline.name not in sweep.baselines:
            continue
        missing = _unit_available(baseline.top, baseline.module)
        if missing is None:
            try:
                baseline_params[baseline.name] = _baseline_params(baseline)
                baseline_units[baseline.name] = {}
                for target in sweep.targets:
                    params = dict(baseline_params[baseline.name])
                    if baseline.top == "intdot" and \
                            sweep.sop_target(target, DEFAULT_ARCH) != "generic":
                        params["target"] = sweep.sop_target(target, DEFAULT_ARCH)
                    baseline_units[baseline.name][target] = _elaborate(
                        cache, baseline.top, params, digest)
            except (TypeError, ValueError) as exc:
                baseline_units.pop(baseline.name, None)
                missing = str(exc)
        if missing:
            notes.append(f"No {baseline.name} baseline: {missing}; the ratios against "
                         f"{baseline.name} are left empty.")
    for note in notes:
        say(note)

    def mk(unit: _Unit, target: str, mode: str) -> _Job:
        pnr = sweep.pnr and target == "ecp5"
        return _Job(unit, target, mode, pnr, sweep.freq[mode] if pnr else 0.0,
                    sweep.seed if pnr else 0)

    all_jobs: dict[_Job, None] = {}
    for target in sweep.targets:
        for mode in sweep.modes:
            for per_target in units.values():
                for unit in per_target[target].values():
                    all_jobs[mk(unit, target, mode)] = None
            for per_target in baseline_units.values():
                all_jobs[mk(per_target[target], target, mode)] = None
    results = _run_jobs(list(all_jobs), cache, tools, jobs, progress,
                        stats if stats is not None else {})

    def fmax(result: dict) -> float | None:
        return result["pnr"]["fmax"] if "pnr" in result else None

    baselines = []
    base_lpm: dict[tuple[str, str, str], float] = {}
    for baseline in BASELINES:
        if baseline.name not in sweep.baselines:
            continue
        per_target = baseline_units.get(baseline.name)
        entry = {"name": baseline.name, "memory_density": baseline.memory_density,
                 "available": per_target is not None, "results": []}
        if per_target is not None:
            first = per_target[sweep.targets[0]]
            entry.update(module=first.name, parameters=baseline_params[baseline.name],
                         macs_per_cycle=first.macs)
            for target in sweep.targets:
                unit = per_target[target]
                for mode in sweep.modes:
                    r = results[mk(unit, target, mode)]
                    lpm = r["luts"] / unit.macs
                    base_lpm[baseline.name, target, mode] = lpm
                    entry["results"].append({
                        "target": target, "mode": mode, "module": unit.name,
                        "luts": r["luts"], "ffs": r["ffs"],
                        "carry": r["carry"], "dsps": r["dsps"], "luts_per_mac": lpm,
                        "fmax_mhz": fmax(r)})
        baselines.append(entry)

    sqnr_t3_base = {name: sqnr.t3(name) for name in ("bf16", "int8")}
    sqnr_w_base = ({name: sqnr.weights(tensors, name) for name in ("bf16", "int8")}
                   if tensors is not None else None)
    for entry in baselines:
        scheme = BASELINE_SCHEME.get(entry["name"])
        entry["sqnr_t3_db"] = sqnr_t3_base.get(scheme)
        entry["sqnr_weights_db"] = sqnr_w_base.get(scheme) if sqnr_w_base else None

    rows = []
    for (m, k, arch), per_target in sorted(units.items()):
        fmt = MXIntFormat(m, sweep.exp_bits, k)
        sqnr_t3 = sqnr.t3(fmt)
        sqnr_w = sqnr.weights(tensors, fmt) if tensors is not None else None
        for target in sweep.targets:
            group = per_target[target]
            for mode in sweep.modes:
                dot = results[mk(group["dot"], target, mode)]
                acc = results[mk(group["accum"], target, mode)] if "accum" in group else None
                parts = [dot] + ([acc] if acc else [])
                total = {key: sum(p[key] for p in parts)
                         for key in ("luts", "ffs", "carry", "muxes", "dsps")}
                lpm = total["luts"] / k
                fmaxes = [fmax(p) for p in parts]
                chain = min(fmaxes) if all(f is not None for f in fmaxes) else None
                row = {
                    "bits": m, "block": k, "exp_bits": sweep.exp_bits, "format": fmt.name,
                    "arch": arch, "target": target, "mode": mode,
                    "memory_density": fmt.memory_density,
                    "bits_per_element": fmt.bits_per_element,
                    "accumulator_included": acc is not None,
                    "dot_module": group["dot"].name,
                    "accum_module": group["accum"].name if "accum" in group else None,
                    "dot_luts": dot["luts"], "accum_luts": acc["luts"] if acc else None,
                    **total,
                    "luts_per_mac": lpm,
                    "ffs_per_mac": total["ffs"] / k,
                    "muxes_per_mac": total["muxes"] / k,
                    "dot_luts_per_mac": dot["luts"] / k,
                    "dsps_per_mac": total["dsps"] / k,
                    "carry_per_mac": total["carry"] / k,
                    "fmax_dot_mhz": fmaxes[0],
                    "fmax_accum_mhz": fmaxes[1] if acc else None,
                    "fmax_mhz": chain,
                    "gmacs_per_klut": (k * chain / total["luts"]
                                       if chain is not None and total["luts"] else None),
                    "device": dot["pnr"]["device"] if "pnr" in dot else None,
                    "sqnr_t3_db": sqnr_t3,
                    "sqnr_weights_db": sqnr_w,
                }
                for baseline in BASELINES:
                    row[f"density_vs_{baseline.name}"] = _ratio(
                        base_lpm.get((baseline.name, target, mode)), lpm)
                rows.append(row)
    # Against MXINT8 of the same block, target, mapping and architecture, when swept.
    lpm_of = {(r["bits"], r["block"], r["target"], r["mode"], r["arch"]): r["luts_per_mac"]
              for r in rows}
    for r in rows:
        r["density_vs_mxint8"] = _ratio(
            lpm_of.get((8, r["block"], r["target"], r["mode"], r["arch"])), r["luts_per_mac"])

    report = {
        "definitions": DEFINITIONS,
        "sweep": sweep.as_dict(),
        "tools": tools,
        "notes": notes,
        "accuracy": {"distribution": f"Student-t, {T_DOF} degrees of freedom",
                     "seed": T_SEED, "shape": list(T_SHAPE),
                     "weights": weights.name if weights is not None else None,
                     "weights_tensors": len(tensors) if tensors is not None else None},
        "baselines": baselines,
        "rows": rows,
    }
    report["paper_check"] = paper_check(report)
    return report


def paper_check(report: Mapping) -> dict:
    """The paper's figures beside ours, and the project's goals with their margins.

    Memory densities are computed for ``e = 8, k = 16`` whatever the sweep; arithmetic
    figures need the 6-bit block-16 rows (and the baselines) in ``report``.
    """
    memory = []
    for m, theirs in PAPER["memory_density_k16"].items():
        ours = MXIntFormat(m, 8, 16).memory_density
        memory.append({"format": f"W{m}A{m} k16", "ours": ours, "paper": theirs,
                       "match": round(ours, 2) == theirs})
    memory.append({"format": "int8", "ours": 32 / 8, "paper": PAPER["memory_density_int8"],
                   "match": 32 / 8 == PAPER["memory_density_int8"]})

    def row(target: str, mode: str, m: int = 6, k: int = 16) -> Mapping | None:
        """The row of the generator's default architecture, else of the densest one."""
        found = [r for r in report["rows"]
                 if (r["bits"], r["block"], r["target"], r["mode"], r["exp_bits"]) ==
                 (m, k, target, mode, 8)]
        found.sort(key=lambda r: (r.get("arch") != DEFAULT_ARCH, r["luts_per_mac"]))
        return found[0] if found else None

    arithmetic = []
    six = row("xc7", "lut")
    eight_mx = row("xc7", "lut", m=8)
    comparisons = [
        ("6-bit k16 vs fp32 (xc7, LUT-only)", six and six["density_vs_fp32"],
         PAPER["arith_6bit_vs_fp32"]),
        ("6-bit k16 vs int8 MAC (xc7, LUT-only)", six and six["density_vs_int8"],
         PAPER["arith_6bit_vs_8bit"]),
        ("6-bit k16 vs int8 k16 dot product (xc7, LUT-only)",
         six and six["density_vs_int8dot"], PAPER["arith_6bit_vs_8bit"]),
        ("6-bit k16 vs MXINT8 k16 (xc7, LUT-only)",
         six and eight_mx and _ratio(eight_mx["luts_per_mac"], six["luts_per_mac"]),
         PAPER["arith_6bit_vs_8bit"]),
    ]
    for label, ours, theirs in comparisons:
        arithmetic.append({"what": label, "ours": ours, "paper": theirs,
                           "ours_over_paper": _ratio(ours, theirs)})

    goals = []

    def goal(what: str, value: float | None, bound: float, at_least: bool, unit: str,
             why: str = "") -> None:
        if value is None:
            goals.append({"goal": what, "value": None, "bound": bound, "met": None,
                          "missed_by": None, "unit": unit,
                          "note": why or "not measured in this sweep"})
            return
        met = value >= bound if at_least else value <= bound
        goals.append({"goal": what, "value": value, "bound": bound, "met": met,
                      "missed_by": None if met else abs(value - bound), "unit": unit,
                      "note": why})

    missing_six = "" if six else "needs --bits 6 --block 16 --target xc7 --mode lut"
    goal("6-bit k16 xc7 LUT-only density vs fp32 >= 25x",
         six and six["density_vs_fp32"], GOALS["xc7_6bit_k16_vs_fp32_min"], True, "x",
         missing_six or ("" if six["density_vs_fp32"] else "no fp32 baseline"))
    goal("6-bit k16 xc7 LUT-only density vs int8 >= 3x",
         six and six["density_vs_int8"], GOALS["xc7_6bit_k16_vs_int8_min"], True, "x",
         missing_six or ("" if six["density_vs_int8"] else "no int8 baseline"))
    goal("<= 40 LUT6 per 6-bit MAC (xc7, k16, LUT-only)", six and six["luts_per_mac"],
         GOALS["xc7_6bit_luts_per_mac_max"], False, "LUTs/MAC", missing_six)
    for mode, key in (("dsp", "ecp5_fmax_dsp_min_mhz"), ("lut", "ecp5_fmax_lut_min_mhz")):
        r = row("ecp5", mode)
        label = "with DSPs" if mode == "dsp" else "LUT-only"
        if r and r["fmax_mhz"]:
            why = f"dot product {r['fmax_dot_mhz']:.1f} MHz" + (
                f", accumulator {r['fmax_accum_mhz']:.1f} MHz" if r["fmax_accum_mhz"] else
                " (no accumulator)")
        else:
            why = f"needs --target ecp5 --mode {mode} with place-and-route"
        goal(f"ECP5 placed 6-bit k16 {label} >= {GOALS[key]:g} MHz",
             r and r["fmax_mhz"], GOALS[key], True, "MHz", why)
    return {"memory_density": memory, "arithmetic_density": arithmetic, "goals": goals}


# ---------------------------------------------------------------------------------------
# Output

CSV_COLUMNS = (
    "bits", "block", "exp_bits", "format", "arch", "target", "mode", "memory_density",
    "bits_per_element", "accumulator_included", "dot_luts", "accum_luts", "luts", "ffs",
    "carry", "muxes", "dsps", "luts_per_mac", "dot_luts_per_mac", "ffs_per_mac",
    "carry_per_mac", "muxes_per_mac", "dsps_per_mac", "density_vs_fp32", "density_vs_bf16",
    "density_vs_int8", "density_vs_int4", "density_vs_int8dot", "density_vs_int4dot",
    "density_vs_mxint8",
    "fmax_dot_mhz", "fmax_accum_mhz", "fmax_mhz", "gmacs_per_klut", "device", "sqnr_t3_db",
    "sqnr_weights_db",
)


def _fmt(value: object, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def to_csv(report: Mapping) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in report["rows"]:
        writer.writerow(["" if r[c] is None else (repr(r[c]) if isinstance(r[c], float)
                                                  else r[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def _table(head: Sequence[str], rows: Iterable[Sequence[object]], align: str) -> list[str]:
    align = align.ljust(len(head), "r")[:len(head)]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines


def to_markdown(report: Mapping) -> str:
    sweep, tools = report["sweep"], report["tools"]
    lines = ["# MXINT density report", "",
             "Generated by `python -m flows.density`. Tools: "
             + ", ".join(f"{name} `{version}`" for name, version in sorted(tools.items()))
             + ".", ""]
    if report["notes"]:
        lines += ["## Not included", ""] + [f"* {note}" for note in report["notes"]] + [""]

    lines += ["## Density", ""]
    lines += _table(
        ["format", "arch", "target", "mapping", "memory ×", "LUTs (dot+acc)", "LUTs/MAC",
         "FFs/MAC", "carry/MAC", "muxes/MAC", "DSPs/MAC", "× fp32", "× bf16", "× int8",
         "× int8 dot", "× int4 dot", "× MXINT8", "Fmax MHz", "GMAC/s/kLUT",
         "SQNR t3 dB"] + (["SQNR weights dB"] if report["accuracy"]["weights"] else []),
        [[r["format"], r["arch"], r["target"], "LUT-only" if r["mode"] == "lut" else "DSP",
          _fmt(r["memory_density"]),
          f"{r['dot_luts']}+{r['accum_luts']}" if r["accumulator_included"]
          else f"{r['dot_luts']} (dot only)",
          _fmt(r["luts_per_mac"]), _fmt(r["ffs_per_mac"]), _fmt(r["carry_per_mac"]),
          _fmt(r["muxes_per_mac"]), _fmt(r["dsps_per_mac"]),
          _fmt(r["density_vs_fp32"]), _fmt(r["density_vs_bf16"]),
          _fmt(r["density_vs_int8"]), _fmt(r["density_vs_int8dot"]),
          _fmt(r["density_vs_int4dot"]), _fmt(r["density_vs_mxint8"]),
          _fmt(r["fmax_mhz"], 1), _fmt(r["gmacs_per_klut"]),
          _fmt(r["sqnr_t3_db"])]
         + ([_fmt(r["sqnr_weights_db"])] if report["accuracy"]["weights"] else [])
         for r in report["rows"]], "lllll")
    lines += [""]
    ecp5 = [r for r in report["rows"] if r["fmax_dot_mhz"] is not None]
    if ecp5:
        lines += ["Fmax on ECP5 (nextpnr, out of context, speed 6, seed "
                  f"{sweep['seed']}); the chain runs at the slower unit:", ""]
        lines += _table(["format", "arch", "mapping", "device", "dot MHz",
                         "accumulator MHz", "chain MHz"],
                        [[r["format"], r["arch"], "LUT-only" if r["mode"] == "lut" else "DSP",
                          r["device"], _fmt(r["fmax_dot_mhz"], 1),
                          _fmt(r["fmax_accum_mhz"], 1), _fmt(r["fmax_mhz"], 1)]
                         for r in ecp5], "llllrrr")
        lines += [""]
    if "xc7" in sweep["targets"]:
        lines += ["xc7 has no open place-and-route: its rows have no Fmax.", ""]

    lines += ["## Baselines", ""]
    base_rows = []
    for b in report["baselines"]:
        if not b["available"]:
            base_rows.append([b["name"], "–", "–", "not available", "–", "–", "–", "–", "–",
                              _fmt(b["sqnr_t3_db"])])
            continue
        for r in b["results"]:
            base_rows.append([b["name"], r.get("module", b["module"]), r["target"],
                              "LUT-only" if r["mode"] == "lut" else "DSP", r["luts"],
                              _fmt(r["luts_per_mac"]), _fmt(r["ffs"] / b["macs_per_cycle"]),
                              r["dsps"], _fmt(r["fmax_mhz"], 1), _fmt(b["sqnr_t3_db"])])
    lines += _table(["baseline", "module", "target", "mapping", "LUTs", "LUTs/MAC", "FFs/MAC",
                     "DSPs", "Fmax MHz",
                     "SQNR t3 dB"], base_rows, "lllllrrrr")
    lines += ["", "bf16 SQNR: a round-to-nearest-even cast; int8 SQNR: per-row absmax scale "
              "(max|x|/127), nearest-even, clamped to ±127.", ""]

    check = report["paper_check"]
    lines += ["## Paper check", "", "Memory density, e = 8, k = 16 "
              "(*Revisiting Block-based Quantisation*, EMNLP 2023):", ""]
    lines += _table(["format", "ours", "paper", "equal to 2 decimals"],
                    [[m["format"], f"{m['ours']:.4f}", f"{m['paper']:.2f}",
                      _fmt(m["match"])] for m in check["memory_density"]], "lrrl")
    lines += ["", "Arithmetic density (ours measured with Yosys on xc7 LUT-only; the paper's "
              "from its own hardware model):", ""]
    lines += _table(["comparison", "ours", "paper", "ours / paper"],
                    [[a["what"], _fmt(a["ours"]), _fmt(a["paper"]),
                      _fmt(a["ours_over_paper"])] for a in check["arithmetic_density"]],
                    "lrrr")
    lines += ["", "Goals:", ""]
    goal_rows = []
    for g in check["goals"]:
        status = ("not measured" if g["met"] is None else "met" if g["met"]
                  else f"MISSED by {g['missed_by']:.2f} {g['unit']}")
        goal_rows.append([g["goal"], _fmt(g["value"]), status, g["note"]])
    lines += _table(["goal", "measured", "status", "note"], goal_rows, "lrll")
    lines += ["", "## Definitions", "", "```", report["definitions"].rstrip(), "```", ""]
    return "\n".join(lines)


def to_json(report: Mapping) -> str:
    return json.dumps(report, sort_keys=True, indent=2) + "\n"


def write_reports(report: Mapping, out: Path, *, plots: bool = True) -> list[Path]:
    """Write ``density.md``, ``density.csv``, ``density.json`` and (``plots``) the PNGs."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("density.md", to_markdown(report)), ("density.csv", to_csv(report)),
                       ("density.json", to_json(report))):
        path = out / name
        tmp = out / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        written.append(path)
    if plots:
        from .plots import write_plots
        written += write_plots(report, out)
    return written


# ---------------------------------------------------------------------------------------
# Command line


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports a mistake in one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _int_list(lo: int, hi: int) -> Callable[[str], tuple[int, ...]]:
    def parse(text: str) -> tuple[int, ...]:
        values = []
        for part in text.split(","):
            try:
                value = int(part.strip())
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"{part.strip()!r} is not an integer") from None
            if not lo <= value <= hi:
                raise argparse.ArgumentTypeError(f"{value} is not from {lo} to {hi}")
            values.append(value)
        return tuple(sorted(set(values)))
    return parse


def _choice_list(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        names = [name.strip() for name in text.split(",")]
        for name in names:
            if name not in allowed:
                raise argparse.ArgumentTypeError(
                    f"unknown value {name!r}; choose from {', '.join(allowed)}")
        return tuple(dict.fromkeys(names))
    return parse


def _positive(kind: type) -> Callable[[str], float]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m flows.density`` argument parser."""
    parser = _Parser(
        prog="python -m flows.density",
        description="Memory density, arithmetic density (Yosys LUTs per MAC against fp32, "
                    "bf16 and\nint8 MACs), ECP5 Fmax (nextpnr) and quantisation SQNR of "
                    "MXINT dot products with\naccumulation, over a sweep of element widths "
                    "and block sizes.",
        epilog=DEFINITIONS + "\nexample:\n  python -m flows.density --bits 4,6,8 "
               "--block 16,32 --target xc7,ecp5 --jobs 2 --out reports/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bits", type=_int_list(2, MAX_MAN_BITS), required=True,
                        metavar="M[,M...]",
                        help=f"element widths m, sign included (2 to {MAX_MAN_BITS})")
    parser.add_argument("--block", type=_int_list(1, MAX_BLOCK), required=True,
                        metavar="K[,K...]", help=f"block sizes k (1 to {MAX_BLOCK})")
    parser.add_argument("--exp-bits", type=_int_list(2, MAX_EXP_BITS), default=(8,),
                        metavar="E", help="shared exponent bits (default: 8)")
    parser.add_argument("--target", type=_choice_list(list(TARGETS)), default=("xc7", "ecp5"),
                        metavar="T[,T...]",
                        help=f"families, from {', '.join(TARGETS)} (default: xc7,ecp5)")
    parser.add_argument("--mode", type=_choice_list(["lut", "dsp"]), default=("lut", "dsp"),
                        metavar="lut,dsp",
                        help="mappings: lut = DSP cells forbidden, dsp = allowed "
                             "(default: both)")
    parser.add_argument("--baseline", type=_choice_list([b.name for b in BASELINES] + ["none"]),
                        default=tuple(b.name for b in BASELINES), metavar="B[,B...]",
                        help="baselines to synthesise, from fp32, bf16, int8, or none "
                             "(default: all)")
    parser.add_argument("--no-pnr", action="store_true",
                        help="skip ECP5 place-and-route (no Fmax)")
    parser.add_argument("--freq", type=_positive(float), default=None, metavar="MHZ",
                        help="nextpnr target frequency (default: 200 LUT-only, 300 with DSPs)")
    parser.add_argument("--arch", type=_choice_list(list(ARCHS)), default=(DEFAULT_ARCH,),
                        metavar="A[,A...]",
                        help="dot-product architectures to compare, from "
                             f"{', '.join(ARCHS)} (default: {DEFAULT_ARCH})")
    parser.add_argument("--no-primitives", action="store_true",
                        help="build the xc7 bit heaps from plain logic too, instead of xc7 "
                             "LUT6_2/CARRY4 ternary adders")
    parser.add_argument("--levels-per-stage", type=_positive(int), default=None, metavar="N",
                        help="logic levels between pipeline registers of the dot "
                             "product (default: the generator's)")
    parser.add_argument("--seed", type=int, default=1, metavar="N",
                        help="nextpnr placement seed (default: 1)")
    parser.add_argument("--weights", type=Path, default=None, metavar="FILE",
                        help="also measure SQNR on every 2-D tensor of FILE (.safetensors "
                             "or a PyTorch state dict), blocks along the last axis")
    parser.add_argument("--jobs", type=_positive(int), default=min(2, os.cpu_count() or 1),
                        metavar="N", help="tool processes run at once (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("reports"), metavar="DIR",
                        help="output folder (default: %(default)s)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE_DIR, metavar="DIR",
                        help="result cache (default: %(default)s)")
    parser.add_argument("--no-cache", action="store_true",
                        help="run every tool; neither read nor write the cache")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--print", action="store_true", dest="show",
                        help="also print the Markdown report on standard output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m flows.density``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(args.exp_bits) != 1:
        parser.error("--exp-bits takes one value")
    if args.seed < 0:
        parser.error(f"--seed must be at least 0, not {args.seed}")
    if args.weights is not None and not args.weights.is_file():
        parser.error(f"--weights {args.weights} is not a file")
    freq = dict(DEFAULT_FREQ) if args.freq is None else {"lut": args.freq, "dsp": args.freq}
    sweep = Sweep(bits=args.bits, blocks=args.block, exp_bits=args.exp_bits[0],
                  targets=args.target, modes=args.mode, pnr=not args.no_pnr, freq=freq,
                  baselines=tuple(name for name in args.baseline if name != "none"),
                  seed=args.seed, levels_per_stage=args.levels_per_stage, archs=args.arch,
                  primitives=not args.no_primitives)
    cache = None if args.no_cache else ResultCache(args.cache)

    def log(line: str) -> None:
        print(f"note: {line}", file=sys.stderr, flush=True)

    stats: dict = {}
    try:
        report = run(sweep, cache=cache, jobs=args.jobs, weights=args.weights,
                     progress=not args.quiet, log=log, stats=stats)
    except ParameterError as exc:
        parser.error(str(exc))
    except ValueError as exc:  # unreadable --weights
        parser.error(str(exc))
    except (OSError, RuntimeError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    try:
        written = write_reports(report, args.out, plots=not args.no_plots)
    except OSError as exc:
        print(f"{parser.prog}: error: cannot write to --out {args.out}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    if args.show:
        md = next(p for p in written if Path(p).name == "density.md")
        print(Path(md).read_text(encoding="utf-8"))
    for path in written:
        print(f"wrote {path}")
    if cache is not None:
        print(f"cache {cache.folder}: {stats['reused']} of {stats['tool_runs']} synthesis "
              "and place-and-route runs reused", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
