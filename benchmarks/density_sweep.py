"""Wall time of a 24-configuration density sweep, fresh and cached.

Usage::

    python -m benchmarks.density_sweep [--jobs 2] [--keep DIR]

runs ``python -m flows.density --bits 4,6,8 --block 16,32 --target xc7,ecp5 --mode lut,dsp``
(3 widths x 2 blocks x 2 targets x 2 mappings = 24 configurations, each a dot product and
its accumulator, plus the fp32, bf16 and int8 baselines; ECP5 placed and routed) twice in
fresh processes: first with an empty cache, then again with the cache it filled. Goals:
under 10 minutes on 2 cores, and under 5 s cached. Then it prints the project's density
goals (:mod:`benchmarks.goals`) against the sweep's report.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.goals import check_goals, format_goals
from cli import interrupt

SWEEP = ["--bits", "4,6,8", "--block", "16,32", "--target", "xc7,ecp5", "--mode", "lut,dsp"]
GOAL_FRESH_S = 600.0
GOAL_CACHED_S = 5.0


def _timed(command: Sequence[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit code {result.returncode}):\n"
                           f"{result.stderr[-3000:]}")
    return elapsed


def run(*, jobs: int, folder: Path, command: Sequence[str] | None = None) -> dict:
    """Time the sweep with an empty cache in ``folder``, then cached. Returns seconds."""
    base = list(command or [sys.executable, "-m", "flows.density"])
    argv = base + SWEEP + ["--jobs", str(jobs), "--out", str(folder / "reports"),
                           "--cache", str(folder / "cache"), "--quiet"]
    fresh = _timed(argv)
    cached = _timed(argv)
    return {"fresh_s": fresh, "cached_s": cached}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.density_sweep",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="tool processes (default: 2)")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="keep the cache and reports in DIR (must be empty or new)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, not {args.jobs}")
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep {args.keep} is not empty; the first run needs an empty cache")
    with tempfile.TemporaryDirectory(prefix="mxforge-density-bench-") as where:
        folder = args.keep or Path(where)
        folder.mkdir(parents=True, exist_ok=True)
        times = run(jobs=args.jobs, folder=folder)
        report = json.loads((folder / "reports" / "density.json").read_text(encoding="utf-8"))
    print(f"density sweep, 24 configurations, --jobs {args.jobs}:")
    print(f"  fresh cache   {times['fresh_s']:8.1f} s   (goal < {GOAL_FRESH_S:.0f} s)")
    print(f"  cached rerun  {times['cached_s']:8.1f} s   (goal < {GOAL_CACHED_S:.0f} s)")
    print("\ndensity goals (benchmarks/goals.py):")
    print(format_goals(check_goals(report)), end="")
    return 0


if __name__ == "__main__":
    sys.exit(interrupt.run(main))
