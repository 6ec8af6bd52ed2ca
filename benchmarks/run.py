"""Benchmarks of issue 2, measured (not asserted): ``python -m benchmarks.run``.

* wall time of ``python -m hw.generate --bits 6 --block 16`` (a fresh process each run);
* block pairs checked per second through cocotb + Verilator (6-bit, block 16, no idle,
  no back-pressure, after the build);
* ``golden.quantize`` elements per second on a 4096 x 4096 fp32 tensor beside a plain
  PyTorch MX quantiser (``log2``-based, as common emulation libraries write it), measured in
  the same run, and how many blocks the plain one gets wrong.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from cli import interrupt
from cli.config import add_config_arguments, parse_args
from cli.files import write_atomic
from golden import MXIntFormat, quantize


def plain_quantize(x: torch.Tensor, fmt: MXIntFormat) -> tuple[torch.Tensor, torch.Tensor]:
    """The usual emulation: exponent from float32 log2, divide, round, clamp."""
    b = x.reshape(-1, fmt.block)
    amax = b.abs().amax(dim=-1, keepdim=True)
    e = torch.floor(torch.log2(amax)).clamp(-fmt.bias, fmt.bias)
    scale = torch.exp2(e - fmt.frac_bits)
    m = torch.round(b / scale).clamp(-fmt.max_man, fmt.max_man)
    return m, e + fmt.bias


def bench_generate(repeats: int) -> dict:
    times = []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(repeats):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "hw.generate", "--bits", "6", "--block", "16",
                            "--out", out], check=True, capture_output=True)
            times.append(time.perf_counter() - t)
    return {"generate_seconds_median": statistics.median(times), "runs": repeats}


def bench_quantize(repeats: int) -> dict:
    fmt = MXIntFormat(6, 8, 16)
    x = torch.randn(4096, 4096, generator=torch.Generator().manual_seed(0))
    quantize(x, fmt), plain_quantize(x, fmt)  # warm up
    ours, plain = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        q = quantize(x, fmt)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        m, e = plain_quantize(x, fmt)
        plain.append(time.perf_counter() - t)
    wrong = int((e.flatten().to(torch.int32) != q.exponent.flatten()).sum())
    n = x.numel()
    return {"elements": n, "golden_elements_per_s": n / statistics.median(ours),
            "plain_elements_per_s": n / statistics.median(plain),
            "speedup_vs_plain": statistics.median(plain) / statistics.median(ours),
            "plain_blocks_with_wrong_exponent": wrong, "threads": torch.get_num_threads()}


def bench_verilator(vectors: int) -> dict:
    from sim.run import simulate
    p = {"a_bits": 6, "b_bits": 6, "exp_bits": 8, "block": 16, "levels_per_stage": 2}
    simulate("dot", p, seed=1, vectors=10, idle=0, backpressure=0)  # build outside the timing
    s = simulate("dot", p, seed=1, vectors=vectors, idle=0, backpressure=0)
    return {"block_pairs_checked": s["checked"], "block_pairs_per_s": s["checked"] / s["seconds"],
            "cycles": s["cycles"], "mismatches": s["mismatches"]}


def main(argv: list[str] | None = None) -> int:
    from cli.config import OneLineParser, check_outputs

    parser = OneLineParser(prog="python -m benchmarks.run", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (default: 5)")
    parser.add_argument("--vectors", type=int, default=20000,
                        help="Verilator block pairs (default: 20000)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    add_config_arguments(parser)
    args = parse_args(parser, argv)  # --config FILE first, the command line over it
    for flag, value in (("--repeats", args.repeats), ("--vectors", args.vectors)):
        if value < 1:
            parser.error(f"{flag} must be at least 1, not {value}")
    check_outputs(parser, [("--json", args.json, False)])  # before minutes of measuring
    results = {"generate": bench_generate(args.repeats), "quantize": bench_quantize(args.repeats),
               "verilator": bench_verilator(args.vectors)}
    text = json.dumps(results, indent=2, sort_keys=True)
    print(text)
    if args.json:
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(args.json, text + "\n")
        except OSError as exc:
            print(f"{parser.prog}: error: cannot write --json {args.json}: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(interrupt.run(main))
