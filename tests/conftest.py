"""Shared test settings."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: Verilator builds of the test matrix; reused across runs while the Verilog is unchanged.
SIM_BUILD = REPO / "build" / "test-sim"


@pytest.fixture(scope="session")
def sim_build() -> Path:
    return SIM_BUILD
