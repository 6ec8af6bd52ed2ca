"""sim.runner: what every simulation is run with."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from sim import runner

SIM = Path(runner.__file__).parent


def test_cocotb_rewrites_the_assertions_of_the_test_modules_only(tmp_path, monkeypatch):
    """cocotb's default (every ``*.py``) makes the simulator compile every module it imports
    from source, torch included (8 to 10 s a run): ``run_test`` names the test modules, every
    module of ``sim/`` with a ``@cocotb.test()``, and a user's setting still wins."""
    benches = sorted(p.name for p in SIM.glob("*.py") if "@cocotb.test(" in p.read_text())
    assert sorted(runner.REWRITTEN.split()) == benches and len(benches) == 3
    seen: dict[str, str] = {}

    class Runner:
        def test(self, *, extra_env, **kwargs):
            seen.update(extra_env)
            (tmp_path / "summary_t.json").write_text(json.dumps({"checked": 1}))

    design = SimpleNamespace(name="unit")
    monkeypatch.delenv("COCOTB_REWRITE_ASSERTION_FILES", raising=False)
    summary = runner.run_test(design, tmp_path, Runner(), "sim.tb_stream", tag="t", seed=1,
                              env={})
    assert summary["checked"] == 1
    assert seen["COCOTB_REWRITE_ASSERTION_FILES"] == runner.REWRITTEN
    monkeypatch.setenv("COCOTB_REWRITE_ASSERTION_FILES", "*.py")
    runner.run_test(design, tmp_path, Runner(), "sim.tb_stream", tag="t", seed=1, env={})
    assert seen["COCOTB_REWRITE_ASSERTION_FILES"] == "*.py"
