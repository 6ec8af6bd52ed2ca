"""Speed of golden.nn's exact engine arithmetic per operand format, on a MiniLM-shaped layer.

Usage::

    python -m benchmarks.nn_formats [--tokens 128] [--repeat 5] [--threads 2]

One 384 x 384 ``nn.Linear`` (weights ~ N(0, 0.05)) and ``tokens`` activations shaped like a
BERT layer's input (four outlier channels 30x larger, token 0 with outliers 8x larger
still: :func:`tests.test_nn_mxfp.minilm_like`'s recipe, seed 3) go through
:class:`golden.nn.MXLinear` for each (weights, activations) pair. For each the table gives
the best of ``repeat`` forward calls (quantising the input included), and the share of
(token, row) pairs that take the integer path of :func:`golden.nn.mx_linear_fp32` instead
of the exact float64 product (``golden.nn._integer_pairs``).
"""

from __future__ import annotations

import argparse
import time

#: (weights, activations) ``--format`` names, all at block 32 except where named.
PAIRS = (("mxint6", "mxint6", 16), ("mxint8", "mxint8", 32), ("mxfp4", "mxfp4", 32),
         ("mxfp4", "mxfp8_e4m3", 32), ("mxfp6_e2m3", "mxfp6_e2m3", 32),
         ("mxfp8_e4m3", "mxfp8_e4m3", 32), ("mxfp8_e4m3", "mxfp8_e5m2", 32))


def layer(tokens: int, seed: int = 3):
    """The float layer and its input, built as the docstring says."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(384, 384, generator=gen) * 0.05
    x = torch.randn(tokens, 384, generator=gen)
    outliers = torch.randperm(384, generator=gen)[:4]
    x[:, outliers] *= 30.0
    x[0, outliers] *= 8.0
    lin = torch.nn.Linear(384, 384)
    with torch.no_grad():
        lin.weight.copy_(w)
    return lin, x


def measure(tokens: int, repeat: int) -> list[dict]:
    import torch

    import golden.nn as gnn
    from golden import parse_format

    lin, x = layer(tokens)
    rows = []
    for w_name, x_name, block in PAIRS:
        mx = gnn.MXLinear(lin, weights=parse_format(w_name, block=block),
                          activations=parse_format(x_name, block=block))
        best = float("inf")
        with torch.no_grad():
            for _ in range(repeat):
                start = time.perf_counter()
                mx(x)
                best = min(best, time.perf_counter() - start)
        slow = float(gnn._integer_pairs(mx.w_q, mx.quantize_input(x), guard_bits=mx.guard_bits,
                                        acc_width=mx.acc_width).float().mean())
        rows.append({"weights": mx.weights.name, "activations": mx.activations.name,
                     "guard_bits": mx.guard_bits, "ms": best * 1e3, "integer_path": slow})
    return rows


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(prog="python -m benchmarks.nn_formats",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=128, help="tokens (default: 128)")
    parser.add_argument("--repeat", type=int, default=5, help="calls per pair, best taken "
                                                              "(default: 5)")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch CPU threads (default: 2)")
    args = parser.parse_args(argv)
    for name in ("tokens", "repeat", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, not {getattr(args, name)}")
    torch.set_num_threads(args.threads)
    print(f"MXLinear 384x384, {args.tokens} tokens, best of {args.repeat}, "
          f"{args.threads} threads")
    print("| weights | activations | guard bits | ms per call | integer-path pairs |")
    print("|---|---|--:|--:|--:|")
    for r in measure(args.tokens, args.repeat):
        print(f"| {r['weights']} | {r['activations']} | {r['guard_bits']} | {r['ms']:.1f} | "
              f"{100 * r['integer_path']:.1f} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
