"""Write a model's linear weights as MXFP4 in the gpt-oss checkpoint layout.

Usage::

    python -m models.export --model minilm --out minilm-mxfp4.safetensors
        [--scale-rounding floor|rceil] [--rounding even|away|zero|floor]

Every ``nn.Linear`` weight of the model (``<layer>.weight``, ``(out, in)``) is quantised to
MXFP4 along its in-features in blocks of 32 (:func:`golden.quantize`) and stored as
``<layer>.weight_blocks`` and ``<layer>.weight_scales`` (:mod:`golden.checkpoint`: the
layout ``transformers.integrations.mxfp4`` reads). Nothing else is stored: biases, norms
and embeddings stay in the model's own files. ``python -m flows.accuracy --weights-file``
runs the model from such a file. The file is written through a temporary file, so an
interrupted run leaves none.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from cli import interrupt
from cli.config import OneLineParser, check_outputs
from cli.files import write_atomic

__all__ = ["linear_weights", "main"]


def linear_weights(model) -> dict:
    """``{"<layer>.weight": float32 tensor}`` for every ``nn.Linear`` of ``model``, in
    module order.

    Raises
    ------
    ValueError
        A layer's in-features are not a multiple of 32 (the layout has no padding); the
        message names the layers.
    """
    import torch

    from golden.checkpoint import BLOCK

    weights = {f"{name}.weight": module.weight.detach().to(torch.float32)
               for name, module in model.named_modules()
               if isinstance(module, torch.nn.Linear) and name}
    bad = [name for name, w in weights.items() if w.shape[-1] % BLOCK]
    if bad:
        raise ValueError(f"in-features not a multiple of {BLOCK} (the MXFP4 layout has no "
                         f"padding): {', '.join(bad)}")
    return weights


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m models.export", description=__doc__.split("\n\n")[0],
        epilog="The file is what flows.accuracy --weights-file reads.")
    parser.add_argument("--model", default="minilm", metavar="minilm|smollm2|PATH",
                        help="the model whose linear weights are written (default minilm)")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE",
                        help="the safetensors file to write")
    parser.add_argument("--scale-rounding", choices=("floor", "rceil"), default="floor",
                        help="the block scale: OCP's floor (default) or rceil")
    parser.add_argument("--rounding", choices=("even", "away", "zero", "floor"),
                        default="even", help="element rounding (default nearest-even)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_outputs(parser, [("--out", args.out, False)])
    from golden.checkpoint import save_mxfp4
    from models.load import ModelError, load_model

    try:
        loaded = load_model(args.model)
        weights = linear_weights(loaded.model)
    except (ModelError, ValueError) as exc:
        print(f"{parser.prog}: error: --model {args.model}: {exc}", file=sys.stderr)
        return 1
    write_atomic(args.out, lambda tmp: save_mxfp4(tmp, weights, rounding=args.rounding,
                                                  scale_rounding=args.scale_rounding))
    size = args.out.stat().st_size
    print(f"wrote {args.out}: {len(weights)} linear weights, MXFP4 k32, "
          f"{size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(interrupt.run(main))
