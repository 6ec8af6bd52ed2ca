"""``benchmarks.mac_breakdown``: its attribution checks, its verdict and its arguments.

The synthesis itself is replaced here by made-up cell counts (the benchmark's figures come
from running it, not from a timed test): the checks that guard the attribution must refuse
counts that do not add up, and the verdict must name the piece furthest above its floor.
"""

from __future__ import annotations

import pytest

import benchmarks.mac_breakdown as mb

#: The 6-bit k16 dot product's tiles (4 a product: 5 + 6 + 6 + 6 bits) and ternary adders.
TILES = 16 * 23


def _fake_jobs(dot_luts: int, lut6_2: int | None, accum_luts: int):
    def run_jobs(jobs, cache, workers):
        out = {}
        for job in jobs:
            if "dot" in job.unit.name:
                n = job.unit.verilog.count("LUT6_2 #(") if lut6_2 is None else lut6_2
                out[job] = {"luts": dot_luts, "luts_by_kind": {"LUT6_2": n, "LUT6": 1}}
            else:
                out[job] = {"luts": accum_luts, "luts_by_kind": {"LUT6": accum_luts}}
        return out
    return run_jobs


def test_pieces_add_up_and_the_verdict(monkeypatch):
    monkeypatch.setattr(mb, "run_jobs", _fake_jobs(649, None, 294))
    r = mb.measure(bits=6, block=16, jobs=1, cache=None)
    assert r["luts"]["products"] == TILES
    assert sum(r["luts"].values()) == r["total"] == 649 + 294
    assert r["luts"]["exponent and control"] == 649 - TILES - r["luts"]["sum"] >= 0
    assert mb.furthest(r) == "exponent and control + accumulator"
    text = mb.render(r)
    assert "furthest above its floor: exponent and control + accumulator" in text
    assert f"| products | {TILES} | 23.0 | 24 |" in text


def test_sum_far_from_its_floor_is_named(monkeypatch):
    monkeypatch.setattr(mb, "run_jobs", _fake_jobs(649 + 400, None, 20))
    r = mb.measure(bits=6, block=16, jobs=1, cache=None)
    # the other LUTs now hold 400 more: exponent + accumulator 25 + 1.25 above 3 per MAC
    assert mb.furthest(r) == "exponent and control + accumulator"
    r["luts"]["sum"] += 1000
    r["per_mac"]["sum"] += 1000 / 16
    assert mb.furthest(r) == "sum"


@pytest.mark.parametrize(("dot_luts", "lut6_2", "match"), [
    (649, 265, r"the netlist has 265 LUT6_2 cells where the Verilog instantiates 266"),
    (600, None, r"the dot product's 600 LUTs are fewer than its 266 ternary adders and 368 "
                r"tile outputs"),
])
def test_counts_that_do_not_add_up_are_refused(monkeypatch, dot_luts, lut6_2, match):
    monkeypatch.setattr(mb, "run_jobs", _fake_jobs(dot_luts, lut6_2, 294))
    with pytest.raises(RuntimeError, match=match):
        mb.measure(bits=6, block=16, jobs=1, cache=None)


def test_no_floors_beyond_6_bit_k16(monkeypatch):
    monkeypatch.setattr(mb, "run_jobs", _fake_jobs(2000, None, 300))
    r = mb.measure(bits=4, block=4, jobs=1, cache=None)
    assert r["floors"] is None and mb.furthest(r) is None
    assert "furthest" not in mb.render(r)


@pytest.mark.parametrize(("argv", "message"), [
    (["--bits", "9"], "--bits must be from 2 to 8, not 9"),
    (["--block", "0"], "--block must be from 1 to 64, not 0"),
    (["--jobs", "0"], "--jobs must be from 1 to 64, not 0"),
])
def test_bad_arguments(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        mb.main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err
