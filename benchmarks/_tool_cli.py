"""What the benchmarks that run the density report's tool jobs share on the command line:
``--jobs``, ``--cache`` and ``--json``, and printing (and saving) the result."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.config import check_outputs
from cli.files import write_atomic
from flows.cache import DEFAULT_CACHE_DIR


def add_tool_options(parser: argparse.ArgumentParser, *, jobs_help: str) -> None:
    """``--jobs`` (default 2), ``--cache`` (the density report's cache) and ``--json``."""
    parser.add_argument("--jobs", type=int, default=2, help=jobs_help)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE_DIR,
                        help=f"result cache (default: {DEFAULT_CACHE_DIR})")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")


def check_tool_outputs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse (``parser.error``) a ``--json`` file or ``--cache`` folder that cannot be
    written, before any tool runs."""
    check_outputs(parser, [("--json", args.json, False), ("--cache", args.cache, True)])


def publish(text: str, result: dict, path: Path | None) -> None:
    """Print ``text``; with ``path``, also write ``result`` there as JSON (sorted keys)."""
    print(text)
    if path is not None:
        write_atomic(path, json.dumps(result, indent=2, sort_keys=True) + "\n")
