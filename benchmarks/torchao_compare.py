"""golden's MXFP quantiser against torchao 0.18's ``to_mx`` at scale, and the speed of both.

Usage::

    python -m benchmarks.torchao_compare [--values 10000000] [--formats e4m3,e2m1]
        [--speed-size 2048] [--repeats 7] [--no-compare] [--no-speed]

* **Compare**: per element format and scale rounding (FLOOR, RCEIL), at least ``--values``
  values: MiniLM's weight matrices (a third of ``--values``; all 22.7 M of them from 68 M),
  the adversarial blocks of ``tests/torchao_reference.py`` and random wide-range signed
  float32 values, in chunks. Every block is equal in codes, scale and dequantised bits, or
  exactly one of torchao's named departures from OCP; anything else is a mismatch (printed,
  and the exit status is 1).
* **Speed**: quantise + dequantise of a ``--speed-size`` square float32 matrix, golden
  (``quantize`` then ``dequantize``) against torchao (``to_mx`` then ``to_dtype``): the best
  of ``--repeats`` runs of each, interleaved, in the same process, on the CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import torch

from golden import SCALE_ROUNDINGS, MXFPFormat, dequantize, quantize
from tests.torchao_reference import (
    TORCHAO_DTYPES,
    Comparison,
    _torchao,
    adversarial,
    compare,
)

CHUNK_ROWS = 1 << 14  # 524288 values


def minilm_rows() -> torch.Tensor:
    """Every 2-D float weight of all-MiniLM-L6-v2, as rows of 32."""
    from safetensors.torch import load_file

    from models.load import resolve_model
    weights = load_file(str(resolve_model("minilm") / "model.safetensors"))
    rows = [w.reshape(-1, 32) for w in weights.values()
            if w.dtype == torch.float32 and w.dim() == 2 and w.shape[-1] % 32 == 0]
    return torch.cat(rows)


def corpus(values: int, element: str, seed: int):
    """Chunks of rows of 32 float32 values: MiniLM weights for the first third (all of them
    when ``values`` is 68 M or more), then adversarial and random ones until ``values``."""
    given = 0
    for chunk in minilm_rows().split(CHUNK_ROWS):
        if given >= values // 3:
            break
        yield "minilm", chunk
        given += chunk.numel()
    gen = torch.Generator().manual_seed(seed)
    step = 0
    while given < values:
        step += 1
        if step % 8 == 1:
            x = adversarial(element, seed + step, repeats=4)
            yield "adversarial", x
        else:
            e = torch.randint(-135, 122, (CHUNK_ROWS, 1), generator=gen) + \
                torch.randint(-20, 5, (CHUNK_ROWS, 32), generator=gen)
            x = torch.randn(CHUNK_ROWS, 32, generator=gen) * torch.exp2(e.float())
            yield "random", x
        given += x.numel()


def run_compare(values: int, formats: Sequence[str], seed: int) -> int:
    failed = 0
    print(f"{'format':8} {'scale':6} {'values':>11} {'mismatches':>10} {'seconds':>8}  "
          "blocks per class")
    for element in formats:
        for scale_rounding in SCALE_ROUNDINGS:
            total, count = Comparison(), 0
            began = time.perf_counter()
            for _, x in corpus(values, element, seed):
                total.add(compare(x.contiguous(), element, scale_rounding))
                count += x.numel()
            seconds = time.perf_counter() - began
            classes = ", ".join(f"{k} {v}" for k, v in total.classes.items() if v)
            print(f"{element:8} {scale_rounding:6} {count:11d} {total.mismatch_count:10d} "
                  f"{seconds:8.1f}  {classes}", flush=True)
            for line in total.mismatches[:5]:
                print("    " + line[:300])
            failed += total.mismatch_count
    return failed


def _best_seconds(fns, repeats: int) -> list[float]:
    """The fastest of ``repeats`` runs of each function, the functions interleaved run by
    run so that a change in the machine's load falls on all of them alike."""
    for fn in fns:
        fn()  # warm up
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            began = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - began)
    return best


def run_speed(size: int, formats: Sequence[str], repeats: int) -> None:
    to_mx, to_dtype, mode = _torchao()
    x = torch.randn(size, size, generator=torch.Generator().manual_seed(0))
    n = x.numel()
    print(f"\nquantise + dequantise, {size} x {size} float32 ({n / 1e6:.1f} M values), "
          f"{torch.get_num_threads()} threads, best of {repeats} interleaved runs; "
          f"M values/s")
    print(f"{'format':8} {'scale':6} {'golden':>8} {'torchao':>8} {'golden/torchao':>15}")
    for element in formats:
        for scale_rounding in SCALE_ROUNDINGS:
            fmt = MXFPFormat(element, scale_rounding=scale_rounding)
            dtype = TORCHAO_DTYPES[element]
            scaling = getattr(mode, scale_rounding.upper())

            def ours(fmt=fmt):
                return dequantize(quantize(x, fmt))

            def theirs(dtype=dtype, scaling=scaling):
                scale, data = to_mx(x, dtype, 32, scaling)
                return to_dtype(data, scale, dtype, 32, torch.float32)

            g, t = _best_seconds([ours, theirs], repeats)
            print(f"{element:8} {scale_rounding:6} {n / g / 1e6:8.1f} {n / t / 1e6:8.1f} "
                  f"{t / g:15.2f}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.torchao_compare",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--values", type=int, default=10_000_000,
                        help="values compared per format and scale rounding (default 10M)")
    parser.add_argument("--formats", default=",".join(TORCHAO_DTYPES),
                        help="element formats, comma-separated (default: all five)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed-size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-compare", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    args = parser.parse_args(argv)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    for f in formats:
        if f not in TORCHAO_DTYPES:
            parser.error(f"--formats: {f!r} is not one of {', '.join(TORCHAO_DTYPES)}")
    if args.values < 1 or args.speed_size < 32 or args.speed_size % 32 or args.repeats < 1:
        parser.error("--values and --repeats must be at least 1, --speed-size a multiple "
                     "of 32")
    failed = 0
    if not args.no_compare:
        failed = run_compare(args.values, formats, args.seed)
        print(f"\n{failed} mismatches")
    if not args.no_speed:
        run_speed(args.speed_size, formats, args.repeats)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
