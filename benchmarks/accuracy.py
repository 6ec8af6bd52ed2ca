"""Wall time of the 6-configuration accuracy sweep on all-MiniLM-L6-v2, fresh and cached.

Usage::

    python -m benchmarks.accuracy [--jobs 2] [--keep DIR]

runs ``python -m flows.accuracy --model minilm --bits 4,6,8 --block 16,32`` (3 widths x 2
blocks, plus the int8 and bf16 baselines, 256 sentences) twice in fresh processes: first
with an empty cache, then again with the cache it filled, and prints both times and the
table it measured. Goals: under 3 minutes on 2 cores, and under 5 s cached.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from cli import interrupt

SWEEP = ["--model", "minilm", "--bits", "4,6,8", "--block", "16,32"]
GOAL_FRESH_S = 180.0
GOAL_CACHED_S = 5.0


def _timed(command: Sequence[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit code {result.returncode}):\n"
                           f"{result.stderr[-3000:]}")
    return elapsed


def run(*, jobs: int, folder: Path) -> dict:
    """Time the sweep with an empty cache in ``folder``, then cached. Returns seconds."""
    argv = [sys.executable, "-m", "flows.accuracy", *SWEEP, "--jobs", str(jobs),
            "--out", str(folder / "reports"), "--cache", str(folder / "cache"), "--quiet"]
    fresh = _timed(argv)
    cached = _timed(argv)
    return {"fresh_s": fresh, "cached_s": cached,
            "table": (folder / "reports" / "accuracy.md").read_text(encoding="utf-8")}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.accuracy",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default: 2)")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="keep the cache and reports in DIR (must be empty or new)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, not {args.jobs}")
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep {args.keep} is not empty; the first run needs an empty cache")
    with tempfile.TemporaryDirectory(prefix="mxforge-accuracy-bench-") as where:
        folder = args.keep or Path(where)
        folder.mkdir(parents=True, exist_ok=True)
        times = run(jobs=args.jobs, folder=folder)
    print(f"accuracy sweep, 6 configurations + 2 baselines, --jobs {args.jobs}:")
    print(f"  fresh cache   {times['fresh_s']:8.1f} s   (goal < {GOAL_FRESH_S:.0f} s)")
    print(f"  cached rerun  {times['cached_s']:8.1f} s   (goal < {GOAL_CACHED_S:.0f} s)")
    print()
    table = times["table"].splitlines()
    start = next(i for i, line in enumerate(table) if line.startswith("|"))
    end = next((i for i in range(start, len(table)) if not table[i].startswith("|")),
               len(table))
    print("\n".join(table[start:end]))
    return 0


if __name__ == "__main__":
    sys.exit(interrupt.run(main))
