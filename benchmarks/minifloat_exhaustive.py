"""Every float32 bit pattern as a one-element block, golden against the OCP definition.

Usage::

    python -m benchmarks.minifloat_exhaustive --format mxfp4 [--scale-rounding floor]
        [--rounding even] [--chunk 262144] [--threads 1] [--start 0 --stop 4294967296]

quantises all 2**32 float32 patterns (in chunks, with a progress bar) with
``golden.quantize`` (block 1) and compares codes and scale codes with the independent
vectorised definition in ``tests/reference_mxfp.py`` (exact int64 comparisons against the
element's sorted table of magnitudes and the midpoints between them;
``tests/test_minifloat.py`` checks that definition against a plain ``Fraction`` one).
Prints the mismatch count, the first mismatches and the time. ``make test`` covers every
bf16 and fp16 pattern; this is the fp32 breadth.

Every one of the 2**32 patterns goes through ``golden.quantize`` and through the definition;
nothing is skipped or derived by symmetry. The speed comes from the process, not from
checking less: chunks of 2**18 patterns (their int64 temporaries stay in the caches) on one
thread (OpenMP threads spin-waiting on a shared machine cost more than they gave), only
the requested rounding mode computed by the definition, and freed memory kept by the
allocator (:func:`keep_freed_memory`).
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import time
from collections.abc import Sequence

import torch
from tqdm import tqdm

from golden import ROUNDING_MODES, SCALE_ROUNDINGS, MXFPFormat, parse_format, quantize
from tests.reference_mxfp import one_element_codes


def keep_freed_memory() -> bool:
    """Ask glibc's allocator to keep freed memory in the process (no trimming, no ``mmap``
    for blocks up to 32 MiB); ``False`` where that is not glibc.

    Each chunk allocates and frees dozens of tensors of a few MiB. By default glibc returns
    such blocks to the kernel at once, and the next allocation faults every page in again;
    on the shared virtual machine that page-faulting was most of the time (a 2**24 chunk of
    MXFP4: 3.6 s of user time against 9.6 s of system time). Only this process's allocator
    changes; the computed values do not.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_trim_threshold, 1 << 30)) and \
            bool(libc.mallopt(m_mmap_threshold, 1 << 25))
    except (OSError, AttributeError):
        return False


def patterns(lo: int, hi: int) -> torch.Tensor:
    """The float32 values whose bit patterns are ``lo .. hi - 1`` (``0 <= lo < hi <=
    2**32``), in order."""
    if hi <= 1 << 31:
        return torch.arange(lo, hi, dtype=torch.int32).view(torch.float32)
    if lo >= 1 << 31:  # the same bits as the negative int32 values
        return torch.arange(lo - (1 << 32), hi - (1 << 32), dtype=torch.int32).view(
            torch.float32)
    bits = torch.arange(lo, hi, dtype=torch.int64)
    return (bits - ((bits >> 31) << 32)).to(torch.int32).view(torch.float32)


def run(fmt: MXFPFormat, rounding: str, *, start: int, stop: int, chunk: int,
        progress: bool = True) -> dict:
    """Compare the patterns ``start .. stop - 1``; returns counts, mismatches and seconds."""
    mismatches, shown = 0, []
    began = time.perf_counter()
    bar = tqdm(total=stop - start, unit="value", unit_scale=True, disable=not progress,
               desc=f"{fmt.name} {rounding}")
    for lo in range(start, stop, chunk):
        hi = min(lo + chunk, stop)
        x = patterns(lo, hi)
        codes, scales = one_element_codes(x, fmt.element.name, fmt.scale_rounding,
                                          (rounding,))[rounding]
        q = quantize(x.reshape(-1, 1), fmt, rounding=rounding)
        bad = (q.codes.flatten() != codes).logical_or_(q.exponent.flatten() != scales)
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
    parser.add_argument("--chunk", type=int, default=1 << 18, help="patterns per step")
    parser.add_argument("--threads", type=int, default=1,
                        help="PyTorch threads (default 1: a chunk is too small to share, and "
                             "on a loaded machine a second thread mostly waits)")
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
    if not 1 <= args.threads <= 256:
        parser.error(f"--threads must be from 1 to 256, not {args.threads}")
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    r = run(fmt, args.rounding, start=args.start, stop=args.stop, chunk=args.chunk)
    print(f"{r['format']} rounding {r['rounding']}: {r['values']} float32 patterns, "
          f"{r['mismatches']} mismatches, {r['seconds']:.1f} s "
          f"({r['values'] / r['seconds'] / 1e6:.2f} M values/s)")
    for line in r["first"]:
        print("  " + line)
    return 1 if r["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
