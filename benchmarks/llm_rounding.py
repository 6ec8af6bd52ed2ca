"""How float rounding moves SmolLM2's W6A6 k32 perplexity (engine against fake arithmetic).

Usage::

    python -m benchmarks.llm_rounding [--windows 0] [--check-layers]
    MKL_CBWR=COMPATIBLE python -m benchmarks.llm_rounding      # other float kernels

Scores the same token windows as :mod:`flows.accuracy` (``--windows 0``: the first 64
tokens of the first of the 2 windows of 128, seed 0, that ``tests/test_llm.py`` uses;
``--windows N``: the first ``N`` of those 2 windows of 128) with five models whose linear
layers differ only in how the products of the same quantised operands (MXINT6, blocks of
32, weights and activations) are summed and rounded:

* ``fp32``: the unquantised reference;
* ``fake``: :mod:`flows.accuracy`'s fake quantisation, float32 sums (``--arithmetic fake``);
* ``fake64``: the same operands summed in float64 and rounded once to float32;
* ``engine G=8``: :func:`golden.nn.quantize_model`, the engine's exact arithmetic with its
  default 8 guard bits (``--arithmetic engine``): a block sum below ``2**-8`` of the
  running maximum loses its low bits;
* ``engine G=16``: the same with 16 guard bits.

With ``--check-layers`` it also checks, on the engine's own inputs to every linear layer,
that :func:`golden.nn.mx_linear_fp32` equals its integer model (every pair through the
block sums and :func:`golden.accumulator.accumulate`) bit for bit, and prints the largest
``|engine - fake|`` of a layer relative to its output row's largest magnitude.

The versions, ``MKL_CBWR`` and the CPU capability come first, so that runs on two installs
or machines can be compared line by line.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time
from importlib import metadata

PACKAGES = ("torch", "transformers", "gguf", "tokenizers", "accelerate", "numpy")


def _windows(count: int):
    from flows import accuracy

    loaded, _, windows = accuracy._setup("smollm2", (2, 128, 0))
    return loaded, [windows[0][:64]] if count == 0 else windows[:count]


def _fake64(model) -> None:
    """The fake layers of ``model`` sum in float64 and round once to float32."""
    import torch

    for mod in model.modules():
        if type(mod).__name__ == "FakeQuantLinear":
            mod.forward = (lambda x, mod=mod: torch.nn.functional.linear(
                mod.quantize_input(x).double(), mod.weight_q.double()).float())


def perplexities(loaded, windows) -> dict[str, float]:
    """Perplexity of each variant of the module docstring over ``windows``."""
    from flows import accuracy
    from golden import MXIntFormat
    from golden.nn import quantize_model

    fmt = MXIntFormat(6, 8, 32)
    fake = accuracy.Config("mxint", 6, 6, 32, arithmetic="fake")
    out = {"fp32": loaded.model}
    out["fake"] = copy.deepcopy(loaded.model)
    accuracy._quantize(out["fake"], fake)
    out["fake64"] = copy.deepcopy(loaded.model)
    accuracy._quantize(out["fake64"], fake)
    _fake64(out["fake64"])
    for g in (8, 16):
        out[f"engine G={g}"] = copy.deepcopy(loaded.model)
        quantize_model(out[f"engine G={g}"], weights=fmt, activations=fmt, guard_bits=g)
    return {name: math.exp(accuracy._perplexity(m, windows)[0]) for name, m in out.items()}


def check_layers(loaded, windows) -> list[tuple[str, int, int, int, float]]:
    """Per linear layer of the G=8 engine model: (name, pairs, pairs on the integer path,
    pairs whose fast-path result differs from the integer model, max |engine - fake| /
    row max)."""
    import torch

    from golden import MXIntFormat, dequantize
    from golden.nn import (
        _integer_pairs,
        _pairs_fp32,
        _patterns_to_float,
        mx_linear_fp32,
        quantize_model,
    )

    fmt = MXIntFormat(6, 8, 32)
    model = copy.deepcopy(loaded.model)
    names = quantize_model(model, weights=fmt, activations=fmt)
    inputs: dict[str, list] = {n: [] for n in names}
    hooks = [model.get_submodule(n).register_forward_pre_hook(
        lambda _m, args, n=n: inputs[n].append(args[0].detach().reshape(-1, args[0].shape[-1])))
        for n in names]
    with torch.no_grad():
        for w in windows:
            model(input_ids=torch.tensor([list(w)]), use_cache=False)
    for h in hooks:
        h.remove()
    rows = []
    for name in names:
        mod = model.get_submodule(name)
        xq, wq = mod.quantize_input(torch.cat(inputs[name])), mod.w_q
        g, a = mod.guard_bits, mod.acc_width
        fast = mx_linear_fp32(wq, xq, guard_bits=g, acc_width=a)
        t, n = fast.shape
        tok, row = torch.arange(t).repeat_interleave(n), torch.arange(n).repeat(t)
        exact = _patterns_to_float(_pairs_fp32(wq, xq, tok, row, guard_bits=g, acc_width=a))
        bad = int((fast.reshape(-1).view(torch.int32) != exact.view(torch.int32)).sum())
        fake = dequantize(xq) @ dequantize(wq).T
        scale = fake.abs().amax(dim=1).clamp(min=torch.finfo(torch.float32).tiny)
        rel = float(((fast - fake).abs().amax(dim=1) / scale).max())
        rows.append((name, t * n, int(_integer_pairs(wq, xq, guard_bits=g, acc_width=a).sum()),
                     bad, rel))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.llm_rounding",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=0, choices=(0, 1, 2),
                        help="0: the first 64 tokens of window 0; 1 or 2: that many windows "
                             "of 128 (default: 0)")
    parser.add_argument("--check-layers", action="store_true",
                        help="also check every engine layer against its integer model")
    args = parser.parse_args(argv)
    import torch

    versions = ", ".join(f"{p} {metadata.version(p)}" for p in PACKAGES)
    print(f"{versions}; MKL_CBWR={os.environ.get('MKL_CBWR', '(unset)')}; "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}", flush=True)
    start = time.time()
    loaded, windows = _windows(args.windows)
    scored = sum(len(w) - 1 for w in windows)
    ppl = perplexities(loaded, windows)
    for name, value in ppl.items():
        change = "" if name in ("fp32", "fake") else \
            f"  {100 * (value / ppl['fake'] - 1):+.2f} % vs fake"
        print(f"{name:12s} {value:.6f}{change}", flush=True)
    print(f"{scored} tokens scored, {time.time() - start:.0f} s", flush=True)
    if args.check_layers:
        rows = check_layers(loaded, windows)
        worst = max(rows, key=lambda r: r[4])
        print(f"{len(rows)} layers, {sum(r[1] for r in rows)} pairs, "
              f"{sum(r[2] for r in rows)} on the integer path, "
              f"{sum(r[3] for r in rows)} differ from the integer model; largest "
              f"|engine - fake| / row max {worst[4]:.2e} ({worst[0]})")
        if any(r[3] for r in rows):
            return 1
    return 0


if __name__ == "__main__":
    from cli import interrupt

    sys.exit(interrupt.run(main))
