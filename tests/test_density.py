"""flows.density, flows.cache and flows.plots: formulas, caching and resume, the command
line, and one small real sweep."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
import torch

import flows.density as density
import hw.generate
from flows.cache import ResultCache, result_key
from flows.density import (
    PAPER,
    Sweep,
    main,
    paper_check,
    sqnr_db,
    student_t,
    to_csv,
    to_markdown,
)
from flows.plots import pareto_front
from golden import MXIntFormat


@pytest.fixture
def baselines(monkeypatch):
    """Offer the fp32/bf16 and int8 baseline units through hw.generate, whether or not
    hw.generate.UNIT_MODULES lists them yet."""
    import importlib

    for module in ("fp_mac", "int_mac", "int_dot"):
        top = importlib.import_module(f"hw.{module}").TOP
        monkeypatch.setitem(hw.generate.TOPS, top.key, top)


class FakeTools:
    """Stands in for flows.synth.synthesize and flows.pnr.place_and_route: LUTs are a
    fixed function of the module name, and every call is counted."""

    LUTS = {"mxint_dot": 1000, "mxint_accum": 200, "fp_mac_e8_m23": 2400, "fp_mac_e8_m7": 600,
            "int_mac_a8": 240, "int_mac_a4": 100, "int_dot_a8": 2000, "int_dot_a4": 640}

    def __init__(self, fail_after: int | None = None):
        self.calls: list[str] = []
        self.fail_after = fail_after

    def luts(self, top: str) -> int:
        for prefix, luts in self.LUTS.items():
            if top.startswith(prefix):
                return luts
        raise AssertionError(top)

    def counts(self, top: str, target: str, dsp: bool) -> dict:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("tool killed")
        self.calls.append(f"{top} {target} {dsp}")
        luts = self.luts(top) // (4 if dsp else 1)
        return {"target": target, "dsp": dsp, "top": top, "synth_command": "fake",
                "yosys_version": "fake", "cells": {"LUT": luts}, "luts": luts, "ffs": 10,
                "carry": 3, "muxes": 0, "dsps": 2 if dsp else 0, "brams": 0,
                "luts_by_kind": {"LUT": luts}, "other": {}}

    def synthesize(self, verilog, top, *, target, dsp, workdir=None):
        assert "module" in verilog.read_text()
        return self.counts(top, target, dsp)

    def place_and_route(self, verilog, top, *, dsp, freq_mhz, seed=1, device=None,
                        workdir=None):
        result = self.counts(top, "ecp5", dsp)
        fmax = 100.0 if "accum" in top else 250.0
        result["pnr"] = {"device": "LFE5U-25F", "fmax": fmax, "fmax_mhz": {"clk": fmax},
                         "constraint_mhz": {"clk": freq_mhz}, "utilization": {}}
        return result


@pytest.fixture
def fake(monkeypatch):
    tools = FakeTools()
    monkeypatch.setattr(density, "synthesize", tools.synthesize)
    monkeypatch.setattr(density, "place_and_route", tools.place_and_route)
    return tools


SWEEP = Sweep(bits=(6,), blocks=(16,), targets=("xc7", "ecp5"), modes=("lut", "dsp"))


# --- formulas ------------------------------------------------------------------------


def test_memory_density_reproduces_the_paper():
    check = paper_check({"rows": []})
    assert [m["format"] for m in check["memory_density"]] == ["W4A4 k16", "W6A6 k16",
                                                              "W8A8 k16", "int8"]
    assert all(m["match"] for m in check["memory_density"])
    assert check["memory_density"][0]["ours"] == 32 / (4 + 8 / 16)
    assert check["memory_density"][3]["ours"] == 4.0
    for m, theirs in PAPER["memory_density_k16"].items():
        assert round(MXIntFormat(m, 8, 16).memory_density, 2) == theirs


def test_arithmetic_density_formula(fake, baselines, tmp_path):
    report = density.run(SWEEP, cache=ResultCache(tmp_path))
    rows = {(r["target"], r["mode"]): r for r in report["rows"]}
    lut = rows["xc7", "lut"]
    # (dot + accumulator) / k MACs; baselines do one MAC per cycle.
    assert lut["accumulator_included"] is True
    assert lut["luts"] == 1200 and lut["luts_per_mac"] == 1200 / 16
    assert lut["dot_luts_per_mac"] == 1000 / 16
    assert lut["density_vs_fp32"] == 2400 / (1200 / 16)
    assert lut["density_vs_bf16"] == 600 / (1200 / 16)
    assert lut["density_vs_int8"] == 240 / (1200 / 16)
    dsp = rows["xc7", "dsp"]
    assert dsp["luts"] == 250 + 50 and dsp["dsps_per_mac"] == 4 / 16
    assert dsp["density_vs_fp32"] == 600 / (300 / 16)
    assert lut["memory_density"] == 32 / 6.5
    # Fmax: ECP5 only, the slower unit of the chain.
    assert lut["fmax_mhz"] is None
    ecp5 = rows["ecp5", "lut"]
    assert (ecp5["fmax_dot_mhz"], ecp5["fmax_accum_mhz"], ecp5["fmax_mhz"]) == (250, 100, 100)
    assert ecp5["gmacs_per_klut"] == 16 * 100 / 1200
    goals = {g["goal"]: g for g in report["paper_check"]["goals"]}
    g = goals["6-bit k16 xc7 LUT-only density vs fp32 >= 25x"]
    assert g["met"] is True and g["value"] == 32.0
    g = goals["<= 40 LUT6 per 6-bit MAC (xc7, k16, LUT-only)"]
    assert g["met"] is False and g["missed_by"] == 75 - 40
    g = goals["ECP5 placed 6-bit k16 LUT-only >= 200 MHz"]
    assert g["missed_by"] == 100 and "accumulator 100.0 MHz" in g["note"]
    arith = report["paper_check"]["arithmetic_density"][0]
    assert arith["ours_over_paper"] == 32.0 / 19


def test_missing_accumulator_and_baselines_are_stated(fake, monkeypatch, tmp_path):
    real = density._unit_available
    monkeypatch.setattr(density, "_unit_available",
                        lambda top, module: "not written yet" if top in ("accum", "fpmac",
                                                                        "intmac")
                        else real(top, module))
    report = density.run(SWEEP, cache=ResultCache(tmp_path))
    assert report["notes"][0].startswith("Accumulator NOT included")
    assert any(n.startswith("No fp32 baseline") for n in report["notes"])
    row = report["rows"][0]
    assert row["accumulator_included"] is False and row["luts"] == 1000
    assert row["density_vs_fp32"] is None
    text = to_markdown(report)
    assert "Accumulator NOT included" in text and "1000 (dot only)" in text
    assert not any("accum" in call for call in fake.calls)


def test_student_t_is_fixed_and_heavy_tailed():
    x = student_t()
    assert x.shape == (1024, 1024) and x.dtype == torch.float32
    assert torch.equal(x, student_t())
    kurtosis = float(((x - x.mean()) ** 4).mean() / x.var() ** 2)
    assert kurtosis > 10  # a Gaussian has 3


def test_sqnr():
    x = student_t(shape=(64, 256))
    values = [sqnr_db([x], MXIntFormat(m, 8, 16)) for m in (4, 6, 8)]
    assert values == sorted(values)
    # Each extra element bit buys about 6 dB.
    assert 10 < values[2] - values[1] < 14
    assert sqnr_db([torch.ones(4, 16)], MXIntFormat(4, 8, 16)) is None  # exact
    signal = float((x.double() ** 2).sum())
    noise = float(((x.double() - x.to(torch.bfloat16).double()) ** 2).sum())
    assert sqnr_db([x], "bf16") == pytest.approx(10 * math.log10(signal / noise))


def test_weights_files(tmp_path):
    from safetensors.torch import save_file

    w = {"b.weight": torch.randn(8, 32), "a.bias": torch.randn(8), "c": torch.arange(4.)}
    save_file(w, tmp_path / "m.safetensors")
    torch.save(w, tmp_path / "m.pt")
    for name in ("m.safetensors", "m.pt"):
        tensors = density.load_weights(tmp_path / name)
        assert len(tensors) == 1 and torch.equal(tensors[0], w["b.weight"])
    torch.save({"x": torch.randn(3)}, tmp_path / "none.pt")
    with pytest.raises(ValueError, match="holds no 2-D floating-point tensor"):
        density.load_weights(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="cannot read --weights"):
        density.load_weights(tmp_path / "junk.pt")


def test_pareto_front():
    points = [(10, 5), (20, 3), (15, 4), (12, 2), (20, 1), (5, 6)]
    assert pareto_front(points) == [(5, 6), (10, 5), (15, 4), (20, 3)]


# --- caching and resume --------------------------------------------------------------


def test_cache_key_and_store(tmp_path):
    args = {"verilog": "module a; endmodule", "flow": "synth", "options": {"x": 1},
            "tools": {"yosys": "0.60"}}
    key = result_key(**args)
    assert key == result_key(**{**args, "options": {"x": 1}})
    for change in ({"verilog": "module b; endmodule"}, {"flow": "synth2"},
                   {"options": {"x": 2}}, {"tools": {"yosys": "0.61"}}):
        assert result_key(**{**args, **change}) != key
    cache = ResultCache(tmp_path / "c")
    assert cache.get(key) is None
    cache.put(key, {"luts": 3})
    assert cache.get(key) == {"luts": 3}
    assert (cache.hits, cache.misses) == (1, 1)
    path = tmp_path / "c" / key[:2] / f"{key}.json"
    path.write_text("{broken")
    assert cache.get(key) is None  # a damaged entry is a miss, not an error
    with pytest.raises(ValueError, match="key must be 64 lowercase hex digits"):
        cache.get("../x")


def test_second_identical_run_does_no_synthesis(fake, baselines, tmp_path):
    first = density.run(SWEEP, cache=ResultCache(tmp_path))
    # dot + accum + 6 baselines, 2 targets x 2 modes
    assert len(fake.calls) == 8 * 4
    fake.calls.clear()
    second = density.run(SWEEP, cache=ResultCache(tmp_path))
    assert fake.calls == []
    assert second == first


def test_interrupted_sweep_resumes(fake, baselines, tmp_path):
    fake.fail_after = 7
    with pytest.raises(RuntimeError, match="tool killed"):
        density.run(SWEEP, cache=ResultCache(tmp_path), jobs=1)
    done = len(fake.calls)
    assert done == 7
    fake.fail_after = None
    fake.calls.clear()
    density.run(SWEEP, cache=ResultCache(tmp_path))
    assert len(fake.calls) == 32 - done


def test_changed_option_reruns_only_what_changed(fake, baselines, tmp_path):
    density.run(SWEEP, cache=ResultCache(tmp_path))
    fake.calls.clear()
    density.run(Sweep(bits=(6,), blocks=(16,), targets=("xc7", "ecp5"), modes=("lut", "dsp"),
                      freq={"lut": 150.0, "dsp": 300.0}), cache=ResultCache(tmp_path))
    # Only the ECP5 LUT-only place-and-route runs depend on the LUT-only frequency.
    assert sorted(fake.calls) == sorted(f"{top} ecp5 False" for top in (
        "mxint_dot_a6_w6_e8_k16", "mxint_accum_a6_w6_e8_k16_g8_acc32",
        "fp_mac_e8_m23", "fp_mac_e8_m7", "int_mac_a8_b8_acc32", "int_mac_a4_b4_acc24",
        "int_dot_a8_w8_k16", "int_dot_a4_w4_k16"))


# --- output ---------------------------------------------------------------------------


def test_outputs(fake, baselines, tmp_path):
    report = density.run(SWEEP, cache=ResultCache(tmp_path / "cache"))
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert len(rows) == 4 and rows[0]["format"] == "mxint6e8k16"
    assert float(rows[0]["luts_per_mac"]) == 75.0
    written = density.write_reports(report, tmp_path / "out")
    names = sorted(p.name for p in written)
    assert names == ["arithmetic_density.png", "density.csv", "density.json", "density.md",
                     "fmax.png", "memory_density.png", "pareto.png"]
    text = (tmp_path / "out" / "density.md").read_text()
    assert "## Paper check" in text and "| W6A6 k16 | 4.9231 | 4.92 | yes |" in text
    assert "MISSED by 35.00 LUTs/MAC" in text
    assert "xc7 has no open place-and-route" in text
    first = {p.name: p.read_bytes() for p in written}
    written = density.write_reports(report, tmp_path / "out")
    assert {p.name: p.read_bytes() for p in written} == first  # deterministic, PNGs too
    assert json.loads(first["density.json"]) == json.loads(json.dumps(report))


# --- command line -------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "message"), [
    (["--bits", "1", "--block", "16"], "argument --bits: 1 is not from 2 to 24"),
    (["--bits", "6,x", "--block", "16"], "argument --bits: 'x' is not an integer"),
    (["--bits", "6", "--block", "0"], "argument --block: 0 is not from 1 to 1024"),
    (["--bits", "6", "--block", "16", "--target", "xc9"],
     "argument --target: unknown value 'xc9'; choose from ecp5, ice40, xc7"),
    (["--bits", "6", "--block", "16", "--mode", "fast"], "argument --mode: unknown value"),
    (["--bits", "6", "--block", "16", "--jobs", "0"], "argument --jobs: must be above 0"),
    (["--bits", "6", "--block", "16", "--freq", "-5"], "argument --freq: must be above 0"),
    (["--bits", "6", "--block", "16", "--seed", "-1"], "--seed must be at least 0, not -1"),
    (["--bits", "6", "--block", "16", "--baseline", "fp64"], "argument --baseline: unknown"),
    (["--bits", "6", "--block", "16", "--weights", "/nonexistent.pt"],
     "--weights /nonexistent.pt is not a file"),
    (["--block", "16"], "the following arguments are required: --bits"),
])
def test_argument_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert err.startswith("python -m flows.density: error: ")


def test_help_explains_the_definitions(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for text in ("32 / (m + e/k)", "LUTs/MAC", "arithmetic density", "Fmax", "SQNR",
                 "Student-t"):
        assert text in out


def test_real_small_sweep(tmp_path, monkeypatch, capsys):
    """Real Yosys and nextpnr on the 2-bit block-2 dot product, its accumulator and the
    int8 baseline; then the same sweep again runs no tool."""
    import importlib

    top = importlib.import_module("hw.int_mac").TOP
    monkeypatch.setitem(hw.generate.TOPS, top.key, top)
    argv = ["--bits", "2", "--block", "2", "--target", "ecp5,xc7", "--mode", "lut",
            "--baseline", "int8", "--out", str(tmp_path / "out"), "--cache",
            str(tmp_path / "cache"), "--quiet", "--no-plots"]
    assert main(argv) == 0
    report = json.loads((tmp_path / "out" / "density.json").read_text())
    ecp5 = next(r for r in report["rows"] if r["target"] == "ecp5")
    assert ecp5["accumulator_included"] and ecp5["luts"] > 0
    assert ecp5["fmax_mhz"] == min(ecp5["fmax_dot_mhz"], ecp5["fmax_accum_mhz"]) > 0
    assert report["tools"]["nextpnr"].startswith("nextpnr-")
    first = (tmp_path / "out" / "density.json").read_bytes()
    capsys.readouterr()

    calls = []
    real_synth, real_pnr = density.synthesize, density.place_and_route
    monkeypatch.setattr(density, "synthesize",
                        lambda *a, **k: calls.append("synth") or real_synth(*a, **k))
    monkeypatch.setattr(density, "place_and_route",
                        lambda *a, **k: calls.append("pnr") or real_pnr(*a, **k))
    assert main(argv) == 0
    assert calls == []
    assert (tmp_path / "out" / "density.json").read_bytes() == first
    assert ": 6 of 6 synthesis and place-and-route runs reused" in capsys.readouterr().err
