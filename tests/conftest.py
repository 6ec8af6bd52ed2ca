"""Shared test settings."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sim.runner import CFLAGS_VARIABLE

# The suite's Verilator models are compiled without C++ optimisation: their builds cost
# more than their short simulations (measured: about 16 % less CPU for the adder's
# Verilator tests). A value already in the environment wins.
os.environ.setdefault(CFLAGS_VARIABLE, "-O0")

REPO = Path(__file__).resolve().parent.parent

# Verilator's makefiles put $OBJCACHE before every compiler call. With sccache (a dev
# dependency) behind tests/objcache.sh, Verilator's runtime (verilated.cpp,
# verilated_vpi.cpp, verilated_dpi.cpp, verilated_threads.cpp: about half of a small model's
# build) is compiled once per checkout rather than once per model (measured: the block
# adder's four Verilator tests, one worker, 154 s -> 75 s from an empty cache); a model's
# own files are compiled as before (they use a precompiled header, which sccache does not
# make). The cache lives in build/sccache; its server listens on this checkout's own socket
# (in the temporary folder: a socket path has a length limit), is started once before the
# workers (two compilers starting it at once race) and stopped when the session ends; it
# also stops itself after 5 idle minutes. Without sccache the builds run as before.
SCCACHE = shutil.which("sccache", path=str(Path(sys.executable).parent)) or \
    shutil.which("sccache")
OBJCACHE = str(REPO / "tests" / "objcache.sh")
if SCCACHE and "OBJCACHE" not in os.environ:
    _tag = hashlib.sha256(str(REPO).encode()).hexdigest()[:12]
    os.environ.update(
        OBJCACHE=OBJCACHE,
        MXFORGE_SCCACHE=SCCACHE,
        SCCACHE_DIR=str(REPO / "build" / "sccache"),
        SCCACHE_SERVER_UDS=str(Path(tempfile.gettempdir()) / f"mxforge-sccache-{_tag}.sock"),
        SCCACHE_IDLE_TIMEOUT="300",
        SCCACHE_CACHE_SIZE="2G",
    )


def _sccache_server(config: pytest.Config, command: str) -> None:
    """Start or stop this checkout's sccache server: in the controller (or the only
    process), never in an xdist worker, and only when the suite set ``OBJCACHE`` itself."""
    if SCCACHE and os.environ.get("OBJCACHE") == OBJCACHE and \
            not hasattr(config, "workerinput"):
        subprocess.run([SCCACHE, command], capture_output=True, check=False, timeout=60)


def pytest_configure(config: pytest.Config) -> None:
    _sccache_server(config, "--start-server")


def pytest_unconfigure(config: pytest.Config) -> None:
    _sccache_server(config, "--stop-server")


#: Verilator builds of the test matrix; reused across runs while the Verilog is unchanged.
SIM_BUILD = REPO / "build" / "test-sim"


@pytest.fixture(scope="session")
def sim_build() -> Path:
    return SIM_BUILD
