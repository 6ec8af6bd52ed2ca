"""Hardware in the loop: one real layer of a real model through the Verilated ``linear`` engine.

Usage::

    python -m sim.run --top linear --bits 6 --block 16 --lanes 4 --model minilm \\
        --layer encoder.layer.0.attention.self.query --tokens 2
    python -m sim.run --top linear --bits 8 --block 32 --lanes 4 --model smollm2 \\
        --layer model.layers.0.mlp.down_proj --tokens 4
    python -m models.export --model minilm --out minilm-mxfp4.safetensors
    python -m sim.run --top linear --format mxfp4 --block 32 --lanes 4 --model minilm \\
        --layer encoder.layer.0.attention.self.query --weights-file minilm-mxfp4.safetensors

:func:`run_layer` loads the model (:mod:`models.load`; or takes one already loaded),
captures the inputs the layer receives (a forward pre-hook; the first ``tokens`` real
tokens) while an encoder embeds the evaluation sentences (:mod:`models.sentences`) or a
causal language model reads windows of :data:`models.text.DEFAULT_WINDOW` tokens of its
evaluation text (:func:`models.text.token_windows`, seed :data:`models.text.DEFAULT_SEED`),
and builds :class:`golden.nn.MXLinear` from the layer with the engine's formats, guard bits
and accumulator width. An engine smaller than the layer (``rows`` below ``out_features``,
``k_len`` below ``in_features``; :func:`run_layer` only, the command line runs whole
layers) runs a slice of it: the first ``rows`` rows and the first ``k_len`` columns of the
weight, the first ``rows`` biases, and the first ``k_len`` elements of each captured
input. The engine (``output="fp32"``,
``K = in_features``, ``N = out_features``) then receives exactly what MXLinear computes
with: per token and per group of ``P`` rows, the token's activation blocks on ``x`` and the
rows' weight blocks on ``w``, with random idle cycles and back-pressure. Every float32 result
is checked bit for bit against MXLinear's (0 mismatches or the run fails); MXLinear is also
checked against :func:`golden.linear.linear_blocks` / ``linear_fp32`` on the same blocks.
Finally the engine's outputs plus the bias (added in float32, as MXLinear does) are
compared with the float32 ``nn.Linear`` on the unquantised inputs: the largest absolute
error, and the largest relative error over outputs at least 1 % of the layer's largest.

With a minifloat format (``--format``, ``--aformat``/``--wformat``) the expectation is
MXLinear with those formats too; with ``--weights-file`` (``--wformat mxfp4 --block 32``)
the weight blocks are the layer's as stored in that MXFP4 file (:mod:`models.export`), read
with :func:`golden.checkpoint.load_mxfp4`, loaded into the MXLinear through its
``state_dict`` and streamed as they are.

This module is also the cocotb test module of that run (:func:`layer_matches_golden`): the
stimuli and expectations reach the simulator in a JSON file named by ``MXFORGE_HIL``.
"""

from __future__ import annotations

import functools
import json
import os
import random
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import cocotb

from .runner import DEFAULT_BUILD, SimulationError, format_summary, passed, prepare, run_test

if TYPE_CHECKING:
    from models.load import LoadedModel

__all__ = ["layer_matches_golden", "layer_stimuli", "run_cli", "run_layer"]

#: Sentences whose tokens feed the layer.
_TEXTS = 8


def layer_stimuli(model: str | LoadedModel, layer: str, tokens: int, params: dict, *,
                  weights_file: str | os.PathLike | None = None) -> dict:
    """Capture ``tokens`` inputs of ``layer`` of ``model`` (a name for
    :func:`models.load.load_model`, or a loaded model) and turn them, with the layer or its
    first ``params["rows"]`` x ``params["k_len"]`` slice, into engine stimuli.

    The expectation is :class:`golden.nn.MXLinear`'s, built from the layer with the
    engine's operand formats (MXINT or minifloat, ``x_element``/``w_element``: the same
    :func:`golden.format.operand_format` the hardware record uses), guard bits and
    accumulator width: the activations quantised by its ``quantize_input`` (nearest even,
    the OCP scale), the weights by the layer's float32 weights quantised to the weight
    format, or with a ``weights_file`` (an MXFP4 file of :mod:`models.export`) the layer's
    ``<layer>.weight`` exactly as stored there (E2M1 codes and E8M0 scales,
    :func:`golden.checkpoint.load_mxfp4`; the first ``rows`` rows and ``k_len / 32`` blocks
    of a slice), loaded into the MXLinear through its ``state_dict``.

    Returns a dict with ``stimuli`` (``x`` and ``w`` payload lists: ``mantissa`` for an
    MXINT operand, ``codes`` for a minifloat one), ``expected`` (``o``: ``{"bits": [...]}``
    per token and group), ``golden_linear_mismatches`` (MXLinear against
    :mod:`golden.linear` on the same blocks), ``formats`` (the weight and activation
    ``--format`` names), ``weights_file`` and ``weights_error`` (the largest difference
    between the file's dequantised weights and the model's float32 weights; None without a
    file), and the float tensors ``x``, ``reference`` (``nn.Linear`` in float32) and
    ``bias`` for the error figures.
    """
    import torch

    from golden.linear import linear_blocks, linear_fp32
    from golden.nn import MXLinear
    from models.load import capture_inputs, load_model
    from models.sentences import sentences
    from models.text import DEFAULT_SEED, DEFAULT_WINDOW, token_windows

    torch.set_num_threads(1)
    loaded = load_model(model) if isinstance(model, str) else model
    if loaded.causal:
        windows = token_windows(loaded.tokenizer, count=-(-tokens // DEFAULT_WINDOW),
                                length=DEFAULT_WINDOW, seed=DEFAULT_SEED)
        module, x = capture_inputs(loaded, layer, windows=windows, tokens=tokens)
    else:
        module, x = capture_inputs(loaded, layer, sentences(_TEXTS), tokens=tokens)
    k_len, rows = params["k_len"], params["rows"]
    if k_len > module.in_features or rows > module.out_features:
        raise ValueError(f"the engine is {rows}x{k_len} but layer {layer} is "
                         f"{module.out_features}x{module.in_features}: an engine may run "
                         "a slice of a layer, not more than it")
    layer_shape = (module.out_features, module.in_features)
    if (rows, k_len) != layer_shape:
        whole = module
        module = torch.nn.Linear(k_len, rows, bias=whole.bias is not None)
        with torch.no_grad():
            module.weight.copy_(whole.weight[:rows, :k_len])
            if whole.bias is not None:
                module.bias.copy_(whole.bias[:rows])
        x = x[:, :k_len].contiguous()
    fw, fx = _formats(params)
    mx = MXLinear(module, weights=fw, activations=fx, guard_bits=params["guard_bits"],
                  acc_width=params["acc_width"])
    weights_error = None
    if weights_file is not None:
        weights_error = _load_weights_file(mx, module, weights_file, layer=layer,
                                           layer_shape=layer_shape)
    xq, wq = mx.quantize_input(x), mx.w_q
    with torch.no_grad():
        raw = mx.forward_raw(x)  # (tokens, N) float32, no bias
        reference = module(x)
    bits = raw.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    (x_field, x_el), (w_field, w_el) = _elements(xq), _elements(wq)
    lanes, nb = params["lanes"], x_el.shape[1]
    xs, ws, out = [], [], []
    golden_linear_mismatches = 0
    for t in range(tokens):
        y = linear_blocks(w_el, wq.exponent, x_el[t], xq.exponent[t], fw, fx,
                          guard_bits=mx.guard_bits, acc_width=mx.acc_width)
        golden_linear_mismatches += int((linear_fp32(y, fw, fx, guard_bits=mx.guard_bits)
                                         != bits[t]).sum())
        for g in range(rows // lanes):
            sl = slice(g * lanes, (g + 1) * lanes)
            for j in range(nb):
                xs.append({x_field: x_el[t, j].tolist(), "exponent": int(xq.exponent[t, j])})
                ws.append({w_field: w_el[sl, j].reshape(-1).tolist(),
                           "exponent": wq.exponent[sl, j].tolist()})
            out.append({"bits": bits[t, sl].tolist()})
    return {"stimuli": {"x": xs, "w": ws}, "expected": {"o": out},
            "golden_linear_mismatches": golden_linear_mismatches, "x": x,
            "reference": reference, "bias": mx.bias, "lanes": lanes, "model": loaded.name,
            "layer_shape": layer_shape, "formats": (fw.name, fx.name),
            "weights_file": None if weights_file is None else os.fspath(weights_file),
            "weights_error": weights_error}


def _formats(params: dict):
    """``(weights, activations)`` block formats of the engine's record fields
    (:func:`golden.format.operand_format`, as the hardware record builds them)."""
    from golden.format import operand_format

    exp_bits, block = params.get("exp_bits", 8), params["block"]
    fmts = [operand_format(params.get(f"{side}_element") or "int", params.get(f"{side}_bits"),
                           exp_bits=exp_bits, block=block, side=side) for side in ("w", "x")]
    return fmts[0], fmts[1]


def _elements(q):
    """``(payload field, elements as int64)`` of a quantised operand
    (:func:`golden.linear.element_field`, :func:`golden.linear.elements`)."""
    import torch

    from golden.linear import element_field, elements

    return element_field(q.fmt), elements(q).to(torch.int64)


def _load_weights_file(mx, module, weights_file: str | os.PathLike, *, layer: str,
                       layer_shape: tuple[int, int]) -> float:
    """Put ``<layer>.weight`` of the MXFP4 ``weights_file`` (its first ``rows`` rows and
    ``k_len / 32`` blocks) into the MXLinear ``mx`` as stored, through its ``state_dict``;
    return the largest difference between those weights dequantised and ``module``'s
    float32 weights."""
    from golden import dequantize
    from golden.checkpoint import BLOCK, load_mxfp4
    from golden.format import MXFPFormat
    from golden.quantize import MXFPTensor

    fw, (rows, k_len) = mx.weights, (mx.out_features, mx.in_features)
    if not (isinstance(fw, MXFPFormat) and fw.element.name == "e2m1" and fw.block == BLOCK):
        raise ValueError(f"weights_file holds MXFP4 weights in blocks of {BLOCK}: the "
                         f"engine's weights must be mxfp4 at block {BLOCK}, not "
                         f"{fw.family} at block {fw.block}")
    if k_len % BLOCK:
        raise ValueError(f"a slice of the weights file must end on a block: k_len must "
                         f"be a multiple of {BLOCK}, not {k_len}")
    stored = load_mxfp4(weights_file).get(f"{layer}.weight")
    if not isinstance(stored, MXFPTensor):
        raise ValueError(f"{os.fspath(weights_file)} holds no MXFP4 weight "
                         f"{layer}.weight: write it with python -m models.export")
    if tuple(stored.shape) != tuple(layer_shape):
        raise ValueError(f"{os.fspath(weights_file)}: {layer}.weight has shape "
                         f"{tuple(stored.shape)}, the model's {tuple(layer_shape)}")
    mx.load_state_dict({**mx.state_dict(),
                        "w_codes": stored.codes[:rows, :k_len // BLOCK],
                        "w_exponent": stored.exponent[:rows, :k_len // BLOCK]})
    return float((dequantize(stored)[:rows, :k_len] - module.weight.detach()).abs().max())


def run_layer(params: dict, *, model: str | LoadedModel, layer: str, tokens: int,
              seed: int | None = None, idle: float = 0.3, backpressure: float = 0.3,
              build_root: Path | None = None, fault: str | None = None,
              weights_file: str | os.PathLike | None = None) -> dict:
    """Build the engine for ``params`` (``output`` forced to ``"fp32"``), stream the layer
    (or its first ``rows`` x ``k_len`` slice) of ``model`` (a name or a
    :class:`models.load.LoadedModel`) through it and return the summary (as
    :func:`sim.run.simulate`, plus ``golden_linear_mismatches``, ``max_abs_error``,
    ``max_rel_error``, ``tokens``, ``layer``, ``layer_shape``). ``fault="expected"`` flips
    bit 0 of the first expected float32 result, to
    show that the check catches one wrong value.

    Raises
    ------
    models.load.ModelError
        The model or layer cannot be found, or the sentences give too few tokens.
    sim.runner.SimulationError, sim.tools.ToolError
        The simulator could not be built or run.
    """
    import torch

    if fault not in (None, "expected"):
        raise ValueError(f"fault must be None or 'expected', not {fault!r}")
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 31)
    params = {**params, "output": "fp32"}
    data = layer_stimuli(model, layer, tokens, params, weights_file=weights_file)
    expected = data["expected"]
    if fault == "expected":
        first = expected["o"][0]["bits"]
        expected = {"o": [{"bits": [first[0] ^ 1, *first[1:]]}, *expected["o"][1:]]}
    design = _design(tuple(sorted(params.items())))
    work, runner = prepare(design, build_root or DEFAULT_BUILD)
    tag = f"hil_seed{seed}" + (f"_fault-{fault}" if fault else "")
    hil, out = (work / f"{name}_{tag}.json" for name in ("hil", "received"))
    out.unlink(missing_ok=True)
    hil.write_text(json.dumps({"stimuli": data["stimuli"], "expected": expected}),
                   encoding="utf-8")
    env = {"MXFORGE_IDLE": repr(idle), "MXFORGE_BACKPRESSURE": repr(backpressure),
           "MXFORGE_HIL": str(hil), "MXFORGE_RECEIVED": str(out)}
    summary = run_test(design, work, runner, "sim.model_layer", tag=tag, seed=seed, env=env)
    received = json.loads(out.read_text()) if out.exists() else []
    hil.unlink()
    out.unlink(missing_ok=True)
    summary.update(top="linear", parameters=dict(params), layer=layer, model=data["model"],
                   layer_shape=list(data["layer_shape"]), tokens=tokens)
    for key in ("golden_linear_mismatches", "weights_file", "weights_error", "formats"):
        if key in data:
            summary[key] = data[key]
    # Errors of the engine's own outputs (plus bias) against the float32 layer.
    if len(received) == len(data["expected"]["o"]):
        hw = torch.tensor([b for item in received for b in item], dtype=torch.int64)
        hw = torch.where(hw >= 1 << 31, hw - (1 << 32), hw).to(torch.int32).view(torch.float32)
        hw = hw.reshape(tokens, -1)
        if data["bias"] is not None:
            hw = hw + data["bias"]
        ref = data["reference"].to(torch.float32)
        err = (hw - ref).abs()
        big = ref.abs() >= 0.01 * float(ref.abs().max())
        summary["max_abs_error"] = float(err.max())
        summary["max_rel_error"] = float((err[big] / ref.abs()[big]).max()) if bool(big.any()) \
            else None
        summary["max_abs_output"] = float(ref.abs().max())
    return summary


@functools.lru_cache(maxsize=4)
def _design(params: tuple):
    """The engine's Verilog, elaborated once per parameter set in a process (a real layer's
    engine takes a while to convert; runs of one layer share it)."""
    from hw.generate import elaborate

    return elaborate("linear", **dict(params))


def format_layer_summary(s: dict) -> str:
    """The one-screen report of a hardware-in-the-loop run."""
    text = format_summary(s).rsplit("\n", 1)[0]
    p = s["parameters"]
    shape = s.get("layer_shape", [p["rows"], p["k_len"]])
    part = "" if list(shape) == [p["rows"], p["k_len"]] else \
        f" (its first {p['rows']}x{p['k_len']} of {shape[0]}x{shape[1]})"
    lines = [text,
             f"layer       {s['model']}: {s['layer']}{part}, {s['tokens']} tokens captured "
             f"on real text, {s['tokens'] * p['rows']} float32 results "
             f"({p['lanes']} per output)"]
    w_format, x_format = s["formats"]
    lines.append(f"golden.nn   MXLinear (W {w_format}, x {x_format}) equals golden.linear on "
                 f"these blocks: {'yes' if s['golden_linear_mismatches'] == 0 else 'NO'} "
                 f"({s['golden_linear_mismatches']} mismatches)")
    if s.get("weights_file"):
        lines.append(f"weights     {s['layer']}.weight as stored in {s['weights_file']} "
                     f"(MXFP4 codes and E8M0 scales; largest difference from the model's "
                     f"float weights {s['weights_error']:.3e})")
    if "max_abs_error" in s:
        rel = "n/a" if s["max_rel_error"] is None else f"{s['max_rel_error']:.3e}"
        lines.append(f"vs float32  largest abs error {s['max_abs_error']:.3e} (outputs up to "
                     f"{s['max_abs_output']:.3g}), largest rel error {rel} (outputs >= 1% "
                     "of the largest)")
    lines.append("PASS" if layer_passed(s) else "FAIL")
    return "\n".join(lines)


def layer_passed(s: dict) -> bool:
    return passed(s) and s.get("golden_linear_mismatches", 0) == 0


def run_cli(args, parser) -> int:
    """``sim.run`` with ``--model``: validate the options, run, print; the exit code."""
    from cli.units import GIVEN, option_message, unit_record
    from hw.unit import unit
    from models.load import ModelError

    from .tools import ToolError

    if args.top == "tile":  # a whole encoder layer on the tile
        from .tile_layer import run_cli as run_tile_cli

        return run_tile_cli(args, parser)
    if args.top != "linear":
        parser.error(f"--model needs --top linear or tile, not --top {args.top}")
    if args.model is None or args.layer is None:
        parser.error("--model and --layer go together: give both (and --tokens)")
    tokens = 2 if args.tokens is None else args.tokens
    if not 1 <= tokens <= 4096:
        parser.error(f"--tokens must be from 1 to 4096, not {tokens}")
    try:
        rows, k_len, loaded = _layer_shape(args.model, args.layer)
    except ModelError as exc:
        parser.error(f"--model/--layer: {exc}")
    # The engine takes the layer's shape and always rounds its results to float32.
    given = getattr(args, GIVEN, {})
    for dest, flag, want in (("k_len", "--k-len", k_len), ("rows", "--rows", rows),
                             ("output", "--output", "fp32"),
                             ("interface", "--interface", "native")):
        if dest in given and getattr(args, dest) != want:
            parser.error(f"{flag} must be {want} with --model ({args.layer}), not "
                         f"{getattr(args, dest)}")
    params = {**unit_record(args, parser).kwargs(), "k_len": k_len, "rows": rows,
              "output": "fp32"}
    if args.weights_file is not None:
        from golden.checkpoint import BLOCK

        if not args.weights_file.is_file():
            parser.error(f"--weights-file {args.weights_file} is not a file")
        if params.get("w_element") != "e2m1" or params["block"] != BLOCK:
            parser.error(f"--weights-file holds MXFP4 weights in blocks of {BLOCK}: give "
                         f"--wformat mxfp4 (or --format mxfp4) and --block {BLOCK}")
    try:
        unit("linear").record(**params)
    except (TypeError, ValueError) as exc:
        parser.error(option_message(unit("linear"), str(exc)))
    try:
        summary = run_layer(params, model=args.model if loaded is None else loaded,
                            layer=args.layer, tokens=tokens,
                            seed=args.seed, idle=args.idle, backpressure=args.backpressure,
                            build_root=args.build, weights_file=args.weights_file)
    except ModelError as exc:
        parser.error(f"--model/--layer: {exc}")
    except ValueError as exc:
        if args.weights_file is None:
            raise
        parser.error(f"--weights-file {args.weights_file}: {exc}")
    except (ToolError, SimulationError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    print(format_layer_summary(summary))
    return 0 if layer_passed(summary) else 1


def _layer_shape(model: str, layer: str) -> tuple[int, int, LoadedModel | None]:
    """``(out_features, in_features, loaded)`` of ``layer``: read from the model's weights
    file when it is a safetensors file (no model load, ``loaded`` None), else from the
    loaded model (a GGUF file), which is returned so that the run does not load it again."""
    from models.load import ModelError, resolve_model

    folder = resolve_model(model)
    path = folder / "model.safetensors"
    if path.is_file():
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            names = set(f.keys())
            for name in (f"{layer}.weight", f"bert.{layer}.weight", f"model.{layer}.weight"):
                if name in names:
                    shape = f.get_slice(name).get_shape()
                    if len(shape) == 2:
                        return int(shape[0]), int(shape[1]), None
    import torch

    from models.load import load_model

    loaded = load_model(model)
    module = dict(loaded.model.named_modules()).get(layer)
    if not isinstance(module, torch.nn.Linear):
        raise ModelError(f"layer {layer!r} is not an nn.Linear of the model")
    return module.out_features, module.in_features, loaded


class _Recorder:
    """Wraps a scoreboard: keeps every received payload's ``bits`` in order."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.received: list[list[int]] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def receive(self, got: dict, **kwargs) -> bool:
        self.received.append(list(got["bits"]))
        return self.inner.receive(got, **kwargs)


@cocotb.test()
async def layer_matches_golden(dut) -> None:
    """Every float32 result of the real layer equals golden.nn's, under random idle and
    back-pressure."""
    import yaml

    from .bench import StreamTestbench

    with open(os.environ["MXFORGE_MANIFEST"], encoding="utf-8") as f:
        manifest = yaml.safe_load(f)
    with open(os.environ["MXFORGE_HIL"], encoding="utf-8") as f:
        hil = json.load(f)
    seed = int(os.environ.get("MXFORGE_SEED", "1"))
    tb = StreamTestbench(dut, manifest, hil["stimuli"], hil["expected"], seed=seed,
                         idle=float(os.environ.get("MXFORGE_IDLE", "0.3")),
                         backpressure=float(os.environ.get("MXFORGE_BACKPRESSURE", "0.3")))
    recorder = _Recorder(tb.sinks[0].scoreboard)
    tb.sinks[0].scoreboard = recorder
    summary = await tb.run()
    summary["seed"] = seed
    with open(os.environ["MXFORGE_RECEIVED"], "w", encoding="utf-8") as f:
        json.dump(recorder.received, f)
    with open(os.environ["MXFORGE_SUMMARY"], "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    for line in summary["reports"] + summary["protocol_errors"]:
        dut._log.error(line)
    assert not summary["timed_out"], f"timed out after {summary['cycles']} cycles"
    assert summary["mismatches"] == 0, f"{summary['mismatches']} outputs differ from golden.nn"
    assert summary["missing"] == 0, f"{summary['missing']} expected outputs never came"
    assert not summary["protocol_errors"], "stream protocol violated"
