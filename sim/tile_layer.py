"""A whole encoder layer on the Verilated tile: the six linears on the hardware, the rest on
the host, bit for bit against :mod:`golden.nn`.

Usage::

    python -m sim.run --top tile --bits 8 --block 32 --lanes 4 --rows 64 \\
        --model minilm --layer encoder.layer.0 --tokens 32 --idle 0 --backpressure 0

:func:`run_encoder_layer` embeds the first ``tokens`` tokens of the evaluation sentences
(:mod:`models.sentences`, joined into one sequence, so that attention needs no mask) with
the model's own embeddings, and runs the layer twice on them:

* **golden**: a copy of the layer whose six ``nn.Linear`` (Q, K, V, attention output, FFN
  up, FFN down) are :class:`golden.nn.MXLinear` (:func:`golden.nn.quantize_model` with the
  tile's formats, guard bits and accumulator width); everything else (softmax, GELU,
  residual adds, LayerNorm) is the model's own float32 code, and each linear's bias is
  added in float32 after its product (``MXLinear.forward``). This is what :mod:`golden.nn`
  says the layer computes.
* **hardware**: another such copy whose linears' outputs (``MXLinear.forward``, product and
  bias) come from the Verilated tile instead: for each linear, the tile (``output="fp32"``,
  ``bias="fp32"`` when the linear has a bias, ``K`` the linear's input width,
  ``T = tokens``, ``rows`` ``R`` per weight tile) receives the linear's ``N / R`` weight
  tiles on ``w``, their biases on ``b`` and, for each, the ``tokens`` quantised inputs on
  ``x``; its float32 results (the tile's bias add, :func:`golden.tile.tile_bias`) are
  checked against golden in the simulator (the scoreboard of :mod:`sim.model_layer`) and
  handed back to the host, which goes on with them: the host adds no bias.

Compared: every linear's float32 outputs (bias included) and every linear's MX input
tensor (mantissas and exponents, the quantised activations the host sends) against the
golden run's, and the layer's output bit for bit. Reported: those mismatch counts (0 to
pass), the tile's cycles per linear and in all, and MAC utilisation, useful MACs
(``tokens * N * K``) over
``P * k`` times the cycles the bench ran (from reset until the last result, load of the
first weight tile included; with ``--idle 0 --backpressure 0`` the tile's own figure).
"""

from __future__ import annotations

import copy
import functools
import json
import random
import sys
from pathlib import Path

from .runner import DEFAULT_BUILD, prepare, run_test

__all__ = ["LINEARS", "format_layer_summary", "layer_passed", "run_cli", "run_encoder_layer"]

#: The six linears of a BERT encoder layer, in the order the layer calls them.
LINEARS = ("attention.self.query", "attention.self.key", "attention.self.value",
           "attention.output.dense", "intermediate.dense", "output.dense")
#: Sentences joined into the token sequence.
_TEXTS = 64


def layer_tokens(loaded, tokens: int):
    """The embeddings ``(1, tokens, hidden)`` of the first ``tokens`` tokens of the
    evaluation sentences joined into one text."""
    import torch

    from models.load import ModelError
    from models.sentences import sentences

    ids = loaded.tokenizer(" ".join(sentences(_TEXTS)), return_tensors="pt", truncation=True,
                           max_length=tokens)["input_ids"]
    if ids.shape[1] < tokens:
        raise ModelError(f"the evaluation sentences give {ids.shape[1]} tokens, fewer than "
                         f"{tokens}")
    with torch.no_grad():
        return loaded.model.embeddings(input_ids=ids[:, :tokens]).to(torch.float32)


def _tile_run(mx, x, params: dict, *, seed: int, idle: float, backpressure: float,
              build_root: Path) -> tuple:
    """Run one linear ``mx`` (an MXLinear) on the Verilated tile for the inputs ``x``
    ``(tokens, K)``, its bias (if any) added by the tile; return its float32 results
    ``(tokens, N)`` as the tile sent them and the run's summary."""
    import torch

    from golden.tile import tile_bias
    from sim.units.tile import tile_bias_words, tile_stimuli

    T = x.shape[0]
    R, P = params["rows"], params["lanes"]
    xq, wq = mx.quantize_input(x), mx.w_q
    golden = type(mx).forward_raw(mx, x)  # the class's, not the patched one
    want = golden.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    bias = None
    if mx.bias is not None:
        bias = mx.bias.to(torch.float32).view(torch.int32).to(torch.int64) & 0xFFFFFFFF
        want = tile_bias(want, bias)
    N, K = mx.out_features, mx.in_features
    if N % R:
        raise ValueError(f"the tile's rows ({R}) must divide every linear's outputs, not "
                         f"{N}")
    xs, ws, bs, expected = [], [], [], []
    for r0 in range(0, N, R):
        w, xx = tile_stimuli(wq.mantissa[r0:r0 + R], wq.exponent[r0:r0 + R], xq.mantissa,
                             xq.exponent, P)
        ws += w
        xs += xx
        if bias is not None:
            bs += tile_bias_words(bias[r0:r0 + R], P)
        expected += [{"bits": want[t, r0 + g * P:r0 + (g + 1) * P].tolist()}
                     for t in range(T) for g in range(R // P)]
    design = _design(tuple(sorted({**params, "k_len": K, "tokens": T, "output": "fp32",
                                   "bias": "none" if bias is None else "fp32"}.items())))
    work, runner = prepare(design, build_root)
    tag = f"tile_layer_seed{seed}"
    hil, out = (work / f"{name}_{tag}.json" for name in ("hil", "received"))
    out.unlink(missing_ok=True)
    stimuli = {"x": xs, "w": ws, **({"b": bs} if bias is not None else {})}
    hil.write_text(json.dumps({"stimuli": stimuli, "expected": {"o": expected}}),
                   encoding="utf-8")
    env = {"MXFORGE_IDLE": repr(idle), "MXFORGE_BACKPRESSURE": repr(backpressure),
           "MXFORGE_HIL": str(hil), "MXFORGE_RECEIVED": str(out)}
    summary = run_test(design, work, runner, "sim.model_layer", tag=tag, seed=seed, env=env)
    received = json.loads(out.read_text()) if out.exists() else []
    hil.unlink()
    out.unlink(missing_ok=True)
    got = torch.zeros((T, N), dtype=torch.int64)
    for i, bits in enumerate(received[:len(expected)]):
        tile, rest = divmod(i, T * (R // P))
        t, g = divmod(rest, R // P)
        c0 = tile * R + g * P
        got[t, c0:c0 + P] = torch.tensor(bits)
    summary.update(macs=T * N * K, macs_per_cycle=P * params["block"], shape=(N, K))
    return got, summary


@functools.lru_cache(maxsize=4)
def _design(params: tuple):
    from hw.generate import elaborate

    return elaborate("tile", **dict(params))


def run_encoder_layer(params: dict, *, model: str = "minilm", layer: str = "encoder.layer.0",
                      tokens: int = 32, seed: int | None = None, idle: float = 0.0,
                      backpressure: float = 0.0, build_root: Path | None = None,
                      fault: str | None = None) -> dict:
    """Run ``layer`` of ``model`` on the tile for ``tokens`` tokens (see the module notes).

    ``params`` are the tile's (``k_len``, ``tokens`` and ``output`` are set per linear).
    ``fault="expected"`` flips bit 22 (the top fraction bit) of the first float32 result
    the tile hands back to the host, to show that the comparisons catch one wrong value.

    Returns a summary: ``linears`` (per linear: name, shape, cycles, MACs, simulator
    mismatches and missing results, float32 product mismatches against golden, MX input
    mismatches), ``output_mismatches`` (the layer's output elements that differ from
    golden), ``cycles``, ``utilisation``, ``seed``, ``tokens``.
    """
    import torch

    from models.load import ModelError, load_model

    if fault not in (None, "expected"):  # before the model loads
        raise ValueError(f"fault must be None or 'expected', not {fault!r}")
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 31)
    torch.set_num_threads(1)
    loaded = load_model(model)
    modules = dict(loaded.model.named_modules())
    base = layer if layer in modules else f"encoder.layer.{layer}"
    if base not in modules or not all(f"{base}.{n}" in modules for n in LINEARS):
        raise ModelError(f"{layer!r} is not an encoder layer of {model} with the linears "
                         f"{', '.join(LINEARS)}")
    hidden = layer_tokens(loaded, tokens)
    summary = layer_on_tile(modules[base], hidden, params, seed=seed, idle=idle,
                            backpressure=backpressure, build_root=build_root, fault=fault)
    return {"model": loaded.name, "layer": base, **summary}


def layer_on_tile(module, hidden, params: dict, *, seed: int, idle: float = 0.0,
                  backpressure: float = 0.0, build_root: Path | None = None,
                  fault: str | None = None) -> dict:
    """Run the encoder layer ``module`` (a BERT layer: the :data:`LINEARS` inside) on the
    tile for the hidden states ``hidden`` ``(1, tokens, hidden)``; the summary of
    :func:`run_encoder_layer` without ``model`` and ``layer``."""
    import torch

    from golden.format import MXIntFormat
    from golden.nn import MXLinear, quantize_model

    if fault not in (None, "expected"):
        raise ValueError(f"fault must be None or 'expected', not {fault!r}")
    tokens = hidden.shape[1]
    fw = MXIntFormat(params["w_bits"], params["exp_bits"], params["block"])
    fx = MXIntFormat(params["x_bits"], params["exp_bits"], params["block"])

    def quantised():
        copy_ = copy.deepcopy(module)
        quantize_model(copy_, weights=fw, activations=fx, include=list(LINEARS),
                       guard_bits=params.get("guard_bits", 8),
                       acc_width=params.get("acc_width"))
        return copy_

    record: dict[str, dict] = {}

    def recorder(name, where):
        def hook(mx, args, out):
            q = mx.quantize_input(args[0])
            record.setdefault(name, {})[where] = {
                "mantissa": q.mantissa, "exponent": q.exponent,
                "out": out if where == "golden" else None}
        return hook

    golden = quantised()
    for name in LINEARS:
        golden.get_submodule(name).register_forward_hook(recorder(name, "golden"))
    with torch.no_grad():
        want = golden(hidden)[0]

    hardware = quantised()
    runs: dict[str, tuple] = {}
    root = build_root or DEFAULT_BUILD

    def on_tile(name, mx):
        def forward(x):
            flat = x.reshape(-1, mx.in_features)
            got, summary = _tile_run(mx, flat, params, seed=seed, idle=idle,
                                     backpressure=backpressure, build_root=root)
            if fault == "expected" and name == LINEARS[0]:
                got[0, 0] ^= 1 << 22
            runs[name] = (got, summary)
            y = torch.where(got >= 1 << 31, got - (1 << 32), got).to(torch.int32) \
                .view(torch.float32)
            return y.reshape(*x.shape[:-1], mx.out_features)
        return forward

    for name in LINEARS:
        mx = hardware.get_submodule(name)
        assert isinstance(mx, MXLinear)
        mx.forward = on_tile(name, mx)   # product and bias on the tile
        mx.register_forward_hook(recorder(name, "hardware"))
    with torch.no_grad():
        got = hardware(hidden)[0]

    linears = []
    for name in LINEARS:
        g, h = record[name]["golden"], record[name]["hardware"]
        bits, s = runs[name]
        want_bits = g["out"].reshape(bits.shape).view(torch.int32).to(torch.int64) & 0xFFFFFFFF
        linears.append({
            "name": name, "shape": s["shape"], "cycles": s["cycles"],
            "macs": s["macs"], "sim_mismatches": s["mismatches"], "missing": s["missing"],
            "protocol_errors": len(s["protocol_errors"]), "timed_out": s["timed_out"],
            "product_mismatches": int((bits != want_bits).sum()),
            "input_mismatches": int((g["mantissa"] != h["mantissa"]).sum()
                                    + (g["exponent"] != h["exponent"]).sum()),
            "log": s["log"], "module": s["module"], "seconds": s.get("wall_seconds")})
    cycles = sum(r["cycles"] for r in linears)
    per_cycle = params["lanes"] * params["block"]
    return {
        "tokens": tokens, "seed": seed,
        "parameters": dict(params), "linears": linears, "cycles": cycles,
        "utilisation": sum(r["macs"] for r in linears) / (per_cycle * cycles),
        "output_mismatches": int((got.view(torch.int32) != want.view(torch.int32)).sum()),
        "idle": idle, "backpressure": backpressure,
    }


def layer_passed(s: dict) -> bool:
    return s["output_mismatches"] == 0 and all(
        r[key] == 0 for r in s["linears"] for key in (
            "sim_mismatches", "missing", "protocol_errors", "product_mismatches",
            "input_mismatches")) and not any(r["timed_out"] for r in s["linears"])


def format_layer_summary(s: dict) -> str:
    p = s["parameters"]
    where = f"{s['model']}: {s['layer']}" if "model" in s else "a layer"
    lines = [f"layer       {where} on the Verilated tile, {s['tokens']} "
             f"tokens, x{p['x_bits']} w{p['w_bits']} e{p['exp_bits']} k{p['block']}, "
             f"R={p['rows']} P={p['lanes']} ({p['lanes'] * p['block']} MACs/cycle)",
             f"seed        {s['seed']}   (replay: --seed {s['seed']}; idle {s['idle']}, "
             f"back-pressure {s['backpressure']})",
             "linear                                  N x K       cycles  util   sim-mm  "
             "fp32-mm  MX-in-mm"]
    for r in s["linears"]:
        n, k = r["shape"]
        util = r["macs"] / (p["lanes"] * p["block"] * r["cycles"])
        name = f"{s.get('layer', 'layer')}.{r['name']}"
        lines.append(f"{name:<38} {n:>4} x {k:<5} {r['cycles']:>8}  {util:5.1%}  "
                     f"{r['sim_mismatches'] + r['missing']:>6}  {r['product_mismatches']:>7}  "
                     f"{r['input_mismatches']:>8}")
    lines += [f"cycles      {s['cycles']} in all, {s['cycles'] / s['tokens']:.0f} per token",
              f"utilisation {s['utilisation']:.1%} of the tile's MACs over the six linears",
              f"output      {s['output_mismatches']} mismatches of the layer's output against "
              "golden.nn (bit for bit)",
              "PASS" if layer_passed(s) else "FAIL"]
    return "\n".join(lines)


def run_cli(args, parser) -> int:
    """``sim.run --top tile --model ...``: validate, run, print; the exit code."""
    from cli.units import GIVEN, option_message, unit_record
    from hw.unit import unit
    from models.load import ModelError

    from .runner import SimulationError
    from .tools import ToolError

    if args.model is None or args.layer is None:
        parser.error("--model and --layer go together: give both (and --tokens)")
    tokens = 2 if args.tokens is None else args.tokens
    if not 1 <= tokens <= 512:
        parser.error(f"--tokens must be from 1 to 512 with --top tile, not {tokens}")
    given = getattr(args, GIVEN, {})
    for dest, flag in (("k_len", "--k-len"), ("tokens", "--tile-tokens"),
                       ("output", "--output"), ("bias", "--bias"),
                       ("interface", "--interface")):
        if dest in given:
            parser.error(f"{flag} is set by the layer with --top tile --model (K per linear, "
                         f"T = --tokens, float32 output, a float32 bias add for a linear "
                         f"with a bias, native interface): leave it out")
    if "blocks_per_cycle" in given:
        parser.error("--blocks-per-cycle does not apply with --top tile --model: the layer is "
                     "compared with golden.nn, which sums each row in one running sum "
                     "(blocks per cycle 1)")
    params = {**unit_record(args, parser).kwargs(), "output": "fp32"}
    if any(params.get(f"{side}_element", "int") != "int" for side in ("x", "w")):
        parser.error("--top tile --model runs MXINT formats only (the layer program's "
                     "stimuli carry MXINT mantissas): leave out --format/--aformat/--wformat")
    params.pop("k_len", None)
    params.pop("tokens", None)
    try:
        unit("tile").record(**params, k_len=384, tokens=tokens)
    except (TypeError, ValueError) as exc:
        parser.error(option_message(unit("tile"), str(exc)))
    try:
        summary = run_encoder_layer(params, model=args.model, layer=args.layer, tokens=tokens,
                                    seed=args.seed, idle=args.idle,
                                    backpressure=args.backpressure, build_root=args.build)
    except (ModelError, ValueError) as exc:
        parser.error(f"--model/--layer: {exc}")
    except (ToolError, SimulationError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    print(format_layer_summary(summary))
    return 0 if layer_passed(summary) else 1

