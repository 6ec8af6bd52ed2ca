"""Shared test settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sim.runner import CFLAGS_VARIABLE

# The suite's Verilator models are compiled without C++ optimisation: their builds cost
# more than their short simulations (measured: about 16 % less CPU for the adder's
# Verilator tests). A value already in the environment wins.
os.environ.setdefault(CFLAGS_VARIABLE, "-O0")

REPO = Path(__file__).resolve().parent.parent
#: Verilator builds of the test matrix; reused across runs while the Verilog is unchanged.
SIM_BUILD = REPO / "build" / "test-sim"


@pytest.fixture(scope="session")
def sim_build() -> Path:
    return SIM_BUILD
