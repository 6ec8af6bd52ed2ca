"""Every float32 bit pattern as a one-element block, golden against the OCP definition.

Usage::

    python -m benchmarks.minifloat_exhaustive --format mxfp4 [--scale-rounding floor]
        [--rounding even] [--chunk 16777216] [--start 0 --stop 4294967296]

quantises all 2**32 float32 patterns (in chunks, with a progress bar) with
``golden.quantize`` (block 1) and compares codes and scale codes with the independent
vectorised definition in ``tests/reference_mxfp.py`` (exact int64 comparisons against the
element's sorted table of magnitudes; ``tests/test_minifloat.py`` checks that definition
against a plain ``Fraction`` one). Prints the mismatch count, the first mismatches and the
time. ``make test`` covers every bf16 and fp16 pattern; this is the fp32 breadth.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import torch
from tqdm import tqdm

from golden import ROUNDING_MODES, SCALE_ROUNDINGS, MXFPFormat, parse_format, quantize
from tests.reference_mxfp import one_element_codes


def run(fmt: MXFPFormat, rounding: str, *, start: int, stop: int, chunk: int,
        progress: bool = True) -> dict:
    """Compare the patterns ``start .. stop - 1``; returns counts, mismatches and seconds."""
    mismatches, shown = 0, []
    began = time.perf_counter()
    bar = tqdm(total=stop - start, unit="value", unit_scale=True, disable=not progress,
               desc=f"{fmt.name} {rounding}")
    for lo in range(start, stop, chunk):
        hi = min(lo + chunk, stop)
        bits = torch.arange(lo, hi, dtype=torch.int64)
        x = (bits - ((bits >> 31) << 32)).to(torch.int32).view(torch.float32)
        codes, scales = one_element_codes(x, fmt.element.name, fmt.scale_rounding)[rounding]
        q = quantize(x.reshape(-1, 1), fmt, rounding=rounding)
        bad = (q.codes.flatten().to(torch.int64) != codes) | \
              (q.exponent.flatten().to(torch.int64) != scales)
        count = int(bad.sum())
        if count:
            mismatches += count
            for i in bad.nonzero().flatten()[:max(0, 10 - len(shown))].tolist():
                shown.append(f"bits 0x{lo + i:08x} = {float(x[i])!r}: golden code "
                             f"{int(q.codes.flatten()[i])} scale {int(q.exponent.flatten()[i])}"
                             f", definition code {int(codes[i])} scale {int(scales[i])}")
        bar.update(hi - lo)
    bar.close()
    return {"format": fmt.name, "rounding": rounding, "values": stop - start,
            "mismatches": mismatches, "first": shown,
            "seconds": time.perf_counter() - began}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.minifloat_exhaustive",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", default="mxfp4",
                        help="mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3 or mxfp4")
    parser.add_argument("--scale-rounding", default="floor", choices=SCALE_ROUNDINGS)
    parser.add_argument("--rounding", default="even", choices=ROUNDING_MODES)
    parser.add_argument("--chunk", type=int, default=1 << 24, help="patterns per step")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--stop", type=int, default=1 << 32)
    args = parser.parse_args(argv)
    try:
        fmt = parse_format(args.format, block=1, scale_rounding=args.scale_rounding)
    except ValueError as exc:
        parser.error(f"--format: {exc}")
    if not isinstance(fmt, MXFPFormat):
        parser.error(f"--format must be an MXFP format, not {args.format!r}")
    if not 1 <= args.chunk <= 1 << 28:
        parser.error(f"--chunk must be from 1 to {1 << 28}, not {args.chunk}")
    if not 0 <= args.start < args.stop <= 1 << 32:
        parser.error(f"--start and --stop must satisfy 0 <= start < stop <= 2**32, not "
                     f"{args.start} and {args.stop}")
    r = run(fmt, args.rounding, start=args.start, stop=args.stop, chunk=args.chunk)
    print(f"{r['format']} rounding {r['rounding']}: {r['values']} float32 patterns, "
          f"{r['mismatches']} mismatches, {r['seconds']:.1f} s "
          f"({r['values'] / r['seconds'] / 1e6:.2f} M values/s)")
    for line in r["first"]:
        print("  " + line)
    return 1 if r["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
