"""flows.density's tile section (--tile) and MX format rows (--formats): the tile's cycle
model against the Amaranth simulator, the figures from stubbed tools, the command line's
validation, and the rendering. No synthesis: the tools are tests.test_density's fakes."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch

import flows.jobs as jobs
import flows.measure as measure
import flows.tile as tile_model
from benchmarks.goals import check_goals
from flows.cache import ResultCache
from flows.density import Sweep, main, run, to_markdown
from flows.render import FORMAT_CSV_COLUMNS, TILE_CSV_COLUMNS
from tests.test_density import FakeTools, fake_versions

#: A small tile every test can generate quickly: 2-bit, k = 4, R = 8 x K = 16, P = 2, T = 2.
TILE = {"rows": 8, "lanes": 2, "k_len": 16, "tokens": 2, "output": "fp32",
        "blocks_per_cycle": 1, "bandwidth_gbs": 1.6, "clock_mhz": None}
TILE_ARGV = ["--tile", "--tile-rows", "8", "--tile-lanes", "2", "--tile-k-len", "16",
             "--tile-tokens", "2"]
SMALL = ["--bits", "2", "--block", "4", "--mode", "lut", "--baseline", "none", "--quiet",
         "--no-plots"]


class Fakes(FakeTools):
    """tests.test_density's fake tools, knowing the tile, its engine and the MX units."""

    LUTS = {**FakeTools.LUTS, "mxint_tile": 1100, "mxint_linear": 1000, "mx_dot_ae2m1": 300,
            "mx_accum_ae2m1": 60, "mxint_dot_a4": 400, "mxint_accum_a4": 80,
            "mx_dot_ae5m2": 700}

    def luts(self, top):
        return self.LUTS[max((p for p in self.LUTS if top.startswith(p)), key=len)]

    def counts(self, top, target, dsp):
        result = super().counts(top, target, dsp)
        result["brams"] = 2 if top.startswith("mxint_tile") else 0
        return result


@pytest.fixture
def fake(monkeypatch):
    tools = Fakes()
    monkeypatch.setattr(jobs, "synthesize", tools.synthesize)
    monkeypatch.setattr(jobs, "place_and_route", tools.place_and_route)
    fake_versions(monkeypatch)
    return tools


@pytest.fixture(scope="module")
def elaborations(tmp_path_factory):
    return ResultCache(tmp_path_factory.mktemp("elaborations"))


@pytest.fixture(autouse=True)
def shared_elaborations(monkeypatch, elaborations):
    """Generated designs shared by the tests of this file (the tools stay faked)."""
    real = jobs.elaborate_unit
    share = lambda cache, top, params, digest: real(elaborations, top, params, digest)  # noqa: E731
    monkeypatch.setattr(measure, "elaborate_unit", share)
    monkeypatch.setattr(tile_model, "elaborate_unit", share)


# --- the cycle model -----------------------------------------------------------------


@pytest.mark.parametrize("p", [
    {"x_bits": 2, "w_bits": 2, "exp_bits": 8, "block": 8, "k_len": 24, "rows": 4,
     "lanes": 1, "tokens": 3, "output": "fp32"},
    {"x_bits": 2, "w_bits": 2, "exp_bits": 8, "block": 4, "k_len": 10, "rows": 8,
     "lanes": 4, "tokens": 2, "output": "accum"},  # K not a multiple of k
    {"x_bits": 2, "w_bits": 2, "exp_bits": 8, "block": 4, "k_len": 16, "rows": 4,
     "lanes": 2, "tokens": 2, "output": "accum", "blocks_per_cycle": 2},
], ids=["fp32-P1", "accum-P4", "accum-P2-B2"])
def test_cycle_model_equals_the_simulator(p):
    """flows.tile.linear_cycles is the Amaranth simulator's count, from reset to the last
    result, of a linear of several weight tiles, each serving `tokens` tokens."""
    from hw.tile import MXIntTile
    from sim.units import model_for
    from tests.test_tile import measure as simulate

    model = model_for({"top": "tile", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(1), 3 * p["tokens"])
    dut = MXIntTile(**p)
    r = simulate(dut, stim, model.expected(stim))
    assert (r["mismatches"], r["missing"]) == (0, 0)
    tiles = len(stim["w"]) // dut.words
    assert r["cycles"] == tile_model.linear_cycles(
        n=tiles * p["rows"], k_len=p["k_len"], block=p["block"], rows=p["rows"],
        lanes=p["lanes"], tokens=p["tokens"], latency=dut.latency,
        blocks_per_cycle=p.get("blocks_per_cycle", 1))
    assert r["window"] == r["steps"]  # steady state: no bubble


def test_layer_figures_reproduce_the_recorded_layer_run():
    """docs/tile.md's `make layer` run (x2 w2 k32, R = 64, P = 4, T = 32, host bias adds):
    444306 cycles under Verilator, 24 per linear more than the model (the bench's start).
    That run had the dequantiser's 3-stage float32 path; its 7 stages since add 4 cycles to
    each of the six linears."""
    params = tile_model.tile_params(bits=2, exp_bits=8, block=32, choice={
        "rows": 64, "lanes": 4, "k_len": 384, "tokens": 32, "output": "fp32"})
    f = tile_model.layer_figures(block=32, rows=64, lanes=4, tokens=32,
                                 latency_of=tile_model.tile_latencies(params))
    assert f["cycles_per_token"] == 13824 and f["steady_utilisation"] == 1.0
    assert f["layer_cycles"] == 444306 + 6 * 4 - 6 * 24
    assert f["layer_utilisation"] == 32 * 1769472 / (128 * f["layer_cycles"])
    with pytest.raises(ValueError, match=r"rows \(100\) must divide the linear's outputs"):
        tile_model.linear_cycles(n=384, k_len=384, block=32, rows=100, lanes=1, tokens=1,
                                 latency=1)


def test_engine_is_the_tile_without_buffers():
    p = tile_model.tile_params(bits=4, exp_bits=6, block=8, choice={"output": "mx"},
                               arch="tree", levels_per_stage=1)
    assert tile_model.engine_params(p) == {
        "x_bits": 4, "w_bits": 4, "exp_bits": 6, "block": 8, "k_len": 384, "lanes": 1,
        "arch": "tree", "levels_per_stage": 1, "rows": 1, "align": "loop", "output": "fp32"}
    # With B blocks per lane per cycle the engine has the tile's P * B dot products and
    # accumulators: the same MACs per cycle, no buffers and no merge.
    p = tile_model.tile_params(bits=4, exp_bits=6, block=8, choice={
        "lanes": 2, "blocks_per_cycle": 2, "output": "accum"})
    engine = tile_model.engine_params(p)
    assert (engine["lanes"], engine["rows"], engine["output"]) == (4, 4, "accum")
    assert "blocks_per_cycle" not in engine


@pytest.mark.parametrize(("target", "cells", "sites"), [
    ("ecp5", {"LUT4": 100, "CCU2C": 10, "TRELLIS_DPR16X4": 3}, 100 + 2 * 10 + 6 * 3),
    ("xc7", {"LUT6": 100, "CARRY4": 10, "RAM32M": 3, "RAM64X1D": 1}, 100 + 4 * 3 + 2),
    ("xc7", {"LUT6": 100, "CARRY4": 10}, 100),
])
def test_lut_sites_count_carry_and_distributed_ram(target, cells, sites):
    """LUT sites are the LUT cells plus what carry cells (ECP5) and distributed-RAM cells
    take: a DPR16X4 is three slices (six LUT4 sites), a RAM32M four LUTs; a report that
    left the RAM out (as the tile's figures did before) fails here."""
    carry = cells.get("CCU2C", 0) + cells.get("CARRY4", 0)
    luts = cells.get("LUT4", 0) + cells.get("LUT6", 0)
    r = measure.lut_sites({"luts": luts, "carry": carry, "cells": cells}, target)
    assert (r["luts"], r["lut_cells"]) == (sites, luts)
    assert r["lutram_sites"] == sites - luts - (2 * carry if target == "ecp5" else 0)


# --- the report ----------------------------------------------------------------------


def test_tile_section(fake, tmp_path):
    sweep = Sweep(bits=(2,), blocks=(4,), targets=("xc7", "ecp5"), modes=("lut",),
                  baselines=(), tile=TILE)
    report = run(sweep, cache=ResultCache(tmp_path))
    section = report["tile"]
    assert section["parameters"] == {**{k: TILE[k] for k in tile_model.TILE_FIELDS},
                                     "bandwidth_gbs": 1.6}
    xc7, ecp5 = section["resources"]
    macs = 2 * 4
    assert xc7["target"] == "xc7" and xc7["macs_per_cycle"] == macs
    assert (xc7["luts"], xc7["brams"], xc7["fmax_mhz"]) == (1100, 2, None)
    assert xc7["luts_per_mac"] == 1100 / macs and xc7["engine_luts_per_mac"] == 1000 / macs
    assert xc7["over_engine"] == 1.1
    # Against the density table's dot + accumulator row (1000 + 200 LUTs over k = 4).
    assert xc7["dot_accum_luts_per_mac"] == 1200 / 4
    assert xc7["over_dot_accum"] == (1100 / macs) / (1200 / 4)
    # ECP5: LUT4 sites (3 carry cells, two LUT4s each), the placed clock of the tile.
    assert (ecp5["luts"], ecp5["engine_luts"], ecp5["fmax_mhz"]) == (1106, 1006, 250.0)
    (layer,) = section["layer"]
    assert layer["clock_mhz"] == 250.0 and layer["clock_source"] == "placed"
    assert layer["cycles_per_token"] == tile_model.layer_cycles_per_token(block=4, lanes=2)
    roof = tile_model.roofline(clock_mhz=250.0, block=4, lanes=2, w_bits=2, exp_bits=8,
                               tokens=2, bandwidth_gbs=1.6)
    assert layer["tokens_s"] == roof["tokens_s"] and layer["bound"] == roof["bound"]
    assert 0.99 < layer["layer_utilisation"] < 1 == layer["steady_utilisation"]
    # Only the tile's own runs were added, LUT-only: tile and engine on each target.
    # Each built with the target's primitives, as the dot product rows are.
    assert sorted(c for c in fake.calls if "tile" in c or "linear" in c) == sorted([
        f"{xc7['tile_module']} xc7 False", f"{xc7['engine_module']} xc7 False",
        f"{ecp5['tile_module']} ecp5 False", f"{ecp5['engine_module']} ecp5 False"])
    assert xc7["tile_module"].endswith("_xc7_fp32") and "_ecp5_" in ecp5["engine_module"]
    text = to_markdown(report)
    assert "## Tile" in text and "| MXINT2 k4 | heap | xc7 | 1100 | 10 | 2 | 137.50 |" in text
    assert "LFE5U-85F" in text and "1.6 GB/s" in text
    # Issue 18's targets are the project's goals (benchmarks.goals), not the report's.
    goals = {g["goal"]: g for g in check_goals(report)}
    g = goals["tile MXINT2 k4 ecp5 LUTs <= 1.25x its bare engine"]
    assert g["met"] is True and g["value"] == 1106 / 1006
    g = goals["tile MXINT2 k4 MiniLM layer MAC utilisation >= 0.75 at 32 tokens"]
    assert g["met"] is None and "needs --tile-tokens 32" in g["note"]
    assert goals["tile MXINT2 k4 steady-state MAC utilisation >= 0.9"]["met"] is True


def test_tile_section_with_two_blocks_per_cycle(fake, tmp_path):
    """B = 2: P * k * B MACs per cycle; the engine has P * B lanes (the same MACs), every
    ratio is per MAC, and the layer and roofline figures take B."""
    tile = {**TILE, "blocks_per_cycle": 2}
    sweep = Sweep(bits=(2,), blocks=(4,), targets=("ecp5",), modes=("lut",),
                  baselines=(), tile=tile)
    report = run(sweep, cache=ResultCache(tmp_path))
    section = report["tile"]
    assert section["parameters"]["blocks_per_cycle"] == 2
    (ecp5,) = section["resources"]
    macs = 2 * 4 * 2
    assert ecp5["macs_per_cycle"] == macs and "_B2_" in ecp5["tile_module"]
    assert "_P4_" in ecp5["engine_module"]
    assert (ecp5["luts"], ecp5["engine_luts"], ecp5["fmax_mhz"]) == (1106, 1006, 250.0)
    assert ecp5["luts_per_mac"] == 1106 / macs and ecp5["engine_luts_per_mac"] == 1006 / macs
    assert ecp5["over_engine"] == 1106 / 1006
    # Against the density table's dot + accumulator row (ECP5 LUT sites over k = 4).
    assert ecp5["over_dot_accum"] == (1106 / macs) / ecp5["dot_accum_luts_per_mac"]
    (layer,) = section["layer"]
    assert layer["macs_per_cycle"] == macs
    assert layer["cycles_per_token"] == tile_model.layer_cycles_per_token(
        block=4, lanes=2, blocks_per_cycle=2)
    assert layer["cycles_per_token"] * 2 == tile_model.layer_cycles_per_token(block=4,
                                                                                lanes=2)
    roof = tile_model.roofline(clock_mhz=250.0, block=4, lanes=2, w_bits=2, exp_bits=8,
                               tokens=2, bandwidth_gbs=1.6, blocks_per_cycle=2)
    assert layer["tokens_s"] == roof["tokens_s"] == min(roof["compute_tokens_s"],
                                                        roof["memory_tokens_s"])
    assert layer["steady_utilisation"] == 1
    assert sorted(c for c in fake.calls if "tile" in c or "linear" in c) == sorted([
        f"{ecp5['tile_module']} ecp5 False", f"{ecp5['engine_module']} ecp5 False"])
    text = to_markdown(report)
    assert "B = 2 block(s) per lane per cycle" in text
    assert f"| MXINT2 k4 | heap | ecp5 | 1106 | 10 | 2 | {1106 / macs:.2f} |" in text


def test_tile_without_placement_takes_the_given_clock(fake, tmp_path):
    base = Sweep(bits=(2,), blocks=(4,), targets=("xc7",), modes=("lut",), baselines=())
    import dataclasses

    report = run(dataclasses.replace(base, tile={**TILE, "clock_mhz": 50.0}),
                 cache=ResultCache(tmp_path))
    (layer,) = report["tile"]["layer"]
    assert (layer["clock_mhz"], layer["clock_source"]) == (50.0, "given")
    report = run(dataclasses.replace(base, tile=TILE), cache=ResultCache(tmp_path))
    (layer,) = report["tile"]["layer"]
    assert layer["tokens_s"] is None and "No clock" in to_markdown(report)


def test_format_rows(fake, tmp_path):
    sweep = Sweep(bits=(2,), blocks=(4,), targets=("xc7", "ecp5"), modes=("lut",),
                  baselines=(), formats=("mxfp4", "mxfp8_e5m2"))
    report = run(sweep, cache=ResultCache(tmp_path))
    section = report["formats"]
    # Each minifloat's MXINT peer is measured beside it, by element bits.
    assert section["formats"] == ["mxfp4", "mxint4", "mxfp8_e5m2", "mxint8"]
    rows = {(r["format"], r["target"]): r for r in section["rows"]}
    fp4 = rows["mxfp4", "xc7"]
    assert (fp4["luts"], fp4["luts_per_mac"], fp4["dot_luts_per_mac"]) == (360, 90, 75)
    assert fp4["memory_density"] == 32 / (4 + 8 / 4) and fp4["mxint_peer"] == "mxint4"
    assert fp4["density_vs_mxint_peer"] == (480 / 4) / 90
    assert rows["mxint4", "xc7"]["density_vs_mxint_peer"] is None
    ecp5 = rows["mxfp4", "ecp5"]
    # the chain placed as one design (the fake tools give it 90 MHz)
    assert (ecp5["fmax_dot_mhz"], ecp5["fmax_accum_mhz"], ecp5["fmax_mhz"]) == (250, 100, 90)
    # E5M2 with itself: the dot product takes it, the accumulator refuses it (70-bit
    # results): the dot product's figures alone, the refusal named, no accumulator run.
    e5m2 = rows["mxfp8_e5m2", "xc7"]
    assert e5m2["skipped"] is None and "beyond the accumulator's 62" in e5m2["accum_refused"]
    assert (e5m2["dot_luts"], e5m2["dot_luts_per_mac"]) == (700, 700 / 4)
    assert e5m2["luts_per_mac"] is None and e5m2["accum_luts"] is None
    assert e5m2["density_vs_mxint_peer"] is None
    assert any("mx_dot_ae5m2" in call for call in fake.calls)
    assert not any("mx_accum_ae5m2" in call for call in fake.calls)
    text = to_markdown(report)
    assert "| 700+– | – | 175.00 |" in text and "beyond the accumulator's 62" in text
    assert rows["mxint8", "xc7"]["skipped"] is None
    goals = {g["goal"]: g for g in check_goals({"rows": [], "formats": section})}
    g = goals["mxfp4 k4 dot product placed on ECP5 LUT-only >= 150 MHz"]
    assert g["met"] is True and g["value"] == 250
    assert not any("MX-for-FPGA" in name for name in goals)  # its figures are at k = 32


def test_formats_plot(fake, tmp_path):
    """formats.png with --formats, the same bytes twice; no such plot without."""
    from flows.plots import write_plots

    sweep = Sweep(bits=(2,), blocks=(4,), targets=("xc7",), modes=("lut",), baselines=(),
                  formats=("mxfp4",))
    report = run(sweep, cache=ResultCache(tmp_path / "cache"))
    written = write_plots(report, tmp_path)
    assert tmp_path / "formats.png" in written
    first = (tmp_path / "formats.png").read_bytes()
    write_plots(report, tmp_path)
    assert (tmp_path / "formats.png").read_bytes() == first
    del report["formats"]
    (tmp_path / "plain").mkdir()
    assert tmp_path / "plain" / "formats.png" not in write_plots(report, tmp_path / "plain")


def test_cli_writes_the_sections(fake, tmp_path, capsys):
    out = tmp_path / "out"
    argv = SMALL + TILE_ARGV + ["--formats", "MXFP4", "--target", "xc7,ecp5", "--out",
                                str(out), "--cache", str(tmp_path / "cache")]
    assert main(argv) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["density.csv", "density.json", "density.md", "density_formats.csv",
                     "density_tile.csv"]
    tile_csv = list(csv.reader(io.StringIO((out / "density_tile.csv").read_text())))
    assert tuple(tile_csv[0]) == TILE_CSV_COLUMNS and len(tile_csv) == 3
    formats_csv = list(csv.reader(io.StringIO((out / "density_formats.csv").read_text())))
    assert tuple(formats_csv[0]) == FORMAT_CSV_COLUMNS and len(formats_csv) == 5
    report = json.loads((out / "density.json").read_text())
    assert report["sweep"]["formats"] == ["mxfp4"] and report["sweep"]["tile"]["rows"] == 8
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(argv) == 0  # deterministic: the same bytes again, from the cache
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    # Without the options, no section and no key: the report is as before.
    plain = tmp_path / "plain"
    assert main(SMALL + ["--target", "xc7", "--out", str(plain), "--cache",
                         str(tmp_path / "cache")]) == 0
    report = json.loads((plain / "density.json").read_text())
    assert "tile" not in report and "formats" not in report
    assert "tile" not in report["sweep"] and "formats" not in report["sweep"]
    assert "## Tile" not in (plain / "density.md").read_text()


@pytest.fixture
def no_tools(monkeypatch):
    def reached(*args, **kwargs):
        raise AssertionError("a tool ran after a mistake in the options")

    for module in (jobs, measure):
        monkeypatch.setattr(module, "yosys_version", reached)
        monkeypatch.setattr(module, "nextpnr_version", reached)
    monkeypatch.setattr(jobs, "run_job", reached)


@pytest.mark.parametrize(("argv", "message"), [
    (["--tile-rows", "8"], "--tile-rows applies only with --tile"),
    (["--tile-bandwidth-gbs", "3"], "--tile-bandwidth-gbs applies only with --tile"),
    (["--tile", "--tile-rows", "0"], "argument --tile-rows: 0 is not from 1 to 65536"),
    (["--tile", "--tile-lanes", "x"], "argument --tile-lanes: 'x' is not an integer"),
    (["--tile", "--tile-output", "fp16"], "argument --tile-output: invalid choice: 'fp16'"),
    (["--tile", "--tile-bandwidth-gbs", "0"], "argument --tile-bandwidth-gbs: 0 is not "
                                              "above zero"),
    (["--tile", "--tile-rows", "100"], "--tile-rows must divide the outputs of every "
                                       "MiniLM linear (384, 1536) for the layer figures, "
                                       "not 100"),
    (["--tile", "--tile-rows", "6", "--tile-lanes", "4"],
     "--tile-rows must be a multiple of --tile-lanes (4), not 6"),
    (["--tile", "--tile-output", "mx", "--tile-rows", "6", "--tile-lanes", "2"],
     "--tile-rows must be a multiple of --block (4) with --tile-output 'mx', not 6"),
    (["--tile-blocks-per-cycle", "2"], "--tile-blocks-per-cycle applies only with --tile"),
    (["--tile", "--tile-blocks-per-cycle", "3"],
     "--tile-blocks-per-cycle must be 1, 2 or 4, not 3"),
    (["--tile", "--tile-blocks-per-cycle", "4", "--tile-k-len", "24"],
     "--tile-blocks-per-cycle (4) must divide the blocks per row"),
    (["--tile", "--tile-clock-mhz", "100", "--target", "ecp5"],
     "--tile-clock-mhz applies only when the sweep does not place and route on ECP5"),
    (["--formats", "mxfp5"], "argument --formats: format must be mxint2 .. mxint24 or one "
                             "of "),
    (["--formats", "mxfp4,"], "argument --formats: format must be"),
])
def test_argument_errors(capsys, no_tools, tmp_path, argv, message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(SMALL + ([] if "--target" in argv else ["--target", "xc7"]) + argv
             + ["--out", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_benchmarks_tile_uses_the_shared_code(fake, tmp_path, capsys):
    """python -m benchmarks.tile: the same tile, engine and figures as the report's section,
    through the same jobs."""
    from benchmarks.tile import main as bench

    out = tmp_path / "tile.json"
    assert bench(["--bits", "2", "--block", "4", "--rows", "8", "--lanes", "2", "--k-len", "16",
                  "--tile-tokens", "2", "--pnr", "--no-cache", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    ecp5 = result["targets"]["ecp5"]
    assert (ecp5["tile"]["luts"], ecp5["engine"]["luts"], ecp5["lut_ratio"]) == \
        (1106, 1006, 1106 / 1006)
    assert ecp5["engine"]["name"].endswith("_fp32_loop")
    assert result["pnr"]["fmax_mhz"] == 250.0
    assert result["roofline"] == {"part": tile_model.PART, "clock_mhz": 250.0,
                                  "bandwidth_gbs": 1.6, **tile_model.roofline(
                                      clock_mhz=250.0, block=4, lanes=2, w_bits=2,
                                      exp_bits=8, tokens=2, bandwidth_gbs=1.6)}
    assert "compute-bound" in capsys.readouterr().out
    # B = 2: twice the MACs per cycle, an engine of P * B lanes, half the cycles per token.
    assert bench(["--bits", "2", "--block", "4", "--rows", "8", "--lanes", "2", "--k-len", "16",
                  "--tile-tokens", "2", "--blocks-per-cycle", "2", "--clock-mhz", "100",
                  "--targets", "xc7", "--no-cache", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    xc7 = result["targets"]["xc7"]
    assert "_B2_" in xc7["tile"]["name"] and "_P4_" in xc7["engine"]["name"]
    assert xc7["tile_luts_per_mac"] == 1100 / 16 and xc7["lut_ratio"] == 1.1
    assert result["roofline"]["cycles_per_token"] == tile_model.roofline(
        clock_mhz=100.0, block=4, lanes=2, w_bits=2, exp_bits=8, tokens=2,
        bandwidth_gbs=1.6)["cycles_per_token"] // 2


def test_help_names_the_tile_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option, default in (("--tile-rows", 64), ("--tile-lanes", 1), ("--tile-k-len", 384),
                            ("--tile-tokens", 32), ("--tile-blocks-per-cycle", 1),
                            ("--tile-bandwidth-gbs", 1.6)):
        assert option in text and f"(default: {default})" in text
    assert "blocks) (default" not in text and "--formats F[,F...]" in text
