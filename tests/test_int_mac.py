"""Integer multiply-accumulate baseline: golden against plain Python, hardware against
golden in the Amaranth simulator and under Verilator."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from golden.int_mac import int_mac, wrap
from hw.int_mac import IntMultiplyAccumulate
from sim.amaranth_bench import run_stream_sim
from sim.run import simulate
from sim.units.int_mac import IntMacModel


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"a_bits": 1}, ValueError, r"a_bits must be from 2 to 24, not 1"),
    ({"b_bits": 25}, ValueError, r"b_bits must be from 2 to 24, not 25"),
    ({"acc_width": 15}, ValueError, r"acc_width must be from 16 to 64, not 15"),
    ({"acc_width": 65}, ValueError, r"acc_width must be from 16 to 64, not 65"),
    ({"a_bits": 8.0}, TypeError, r"a_bits must be an integer, not 8.0"),
    ({"acc_width": "32"}, TypeError, r"acc_width must be an integer, not '32'"),
    ({"multiplier": "wallace"}, ValueError,
     r"multiplier must be one of 'booth', 'heap', 'generic', not 'wallace'"),
    ({"multiplier": 1}, TypeError, r"multiplier must be"),
])
def test_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        IntMultiplyAccumulate(**{"a_bits": 8, "b_bits": 8, **kwargs})


def test_positional_parameters_refused():
    with pytest.raises(TypeError):
        IntMultiplyAccumulate(8, 8)  # type: ignore[misc]


def test_properties():
    dut = IntMultiplyAccumulate(a_bits=8, b_bits=4)
    assert (dut.a_bits, dut.b_bits, dut.acc_width, dut.latency, dut.multiplier) == \
        (8, 4, 28, 2, "booth")
    assert IntMultiplyAccumulate(a_bits=8, b_bits=4, multiplier="generic").latency == 2
    assert IntMultiplyAccumulate(a_bits=8, b_bits=4, multiplier="heap").latency == 3
    assert IntMultiplyAccumulate(a_bits=4, b_bits=4, acc_width=8).acc_width == 8


def _booth_mismatches(width_a: int, width_b: int, build) -> list[tuple[int, int, int]]:
    """Every signed pair (a, b) of the widths through ``build(m, a, b)`` in the Amaranth
    simulator (one combinational evaluation per pair); the pairs whose result is not
    ``a * b``."""
    from amaranth.hdl import Module, Signal, signed
    from amaranth.sim import Simulator

    m = Module()
    a, b = Signal(signed(width_a)), Signal(signed(width_b))
    product = build(m, a, b)
    bad = []

    async def bench(ctx):
        for x in range(-(1 << (width_a - 1)), 1 << (width_a - 1)):
            ctx.set(a, x)
            for y in range(-(1 << (width_b - 1)), 1 << (width_b - 1)):
                ctx.set(b, y)
                if ctx.get(product) != x * y:
                    bad.append((x, y, ctx.get(product)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return bad


@pytest.mark.parametrize(("width_a", "width_b"), [(2, 2), (2, 7), (7, 2), (3, 3), (5, 6),
                                                  (6, 5), (8, 8)])
def test_booth_product_exhaustive(width_a, width_b):
    """Every pair of signed operands, odd and even widths, both extremes (-2**(n-1))."""
    from hw.booth import booth_product

    assert _booth_mismatches(width_a, width_b,
                             lambda m, a, b: booth_product(m, a, b, name="p")) == []


def test_booth_checker_catches_a_wrong_product():
    from hw.booth import booth_product

    bad = _booth_mismatches(4, 4, lambda m, a, b: booth_product(m, a, b, name="p") + (b < 0))
    assert len(bad) == 16 * 8


def test_golden_groups_and_wrap():
    assert int_mac([1, 2, 3], [4, 5, 6], [0, 1, 1], a_bits=4, b_bits=4) == [14, 18]
    assert int_mac([-8, -8], [-8, -8], [0, 1], a_bits=4, b_bits=4) == [128]
    # 128 does not fit 8 bits: wraps to -128.
    assert int_mac([-8, -8], [-8, -8], [0, 1], a_bits=4, b_bits=4, acc_width=8) == [-128]
    assert int_mac([3], [3], [0], a_bits=4, b_bits=4) == []      # unclosed group: no output
    with pytest.raises(ValueError, match=r"a = 8 does not fit signed\(4\)"):
        int_mac([8], [1], [1], a_bits=4, b_bits=4)


def test_golden_default_width_never_wraps_2_16_terms():
    n = 1 << 16
    assert int_mac([-128] * n, [-128] * n, [0] * (n - 1) + [1], a_bits=8, b_bits=8) == \
        [n * 16384]
    assert int_mac([-128] * n, [127] * n, [0] * (n - 1) + [1], a_bits=8, b_bits=8) == \
        [-n * 16256]


@given(st.lists(st.tuples(st.integers(-128, 127), st.integers(-8, 7), st.booleans()),
                max_size=60), st.integers(12, 40))
def test_golden_matches_python(terms, acc_width):
    want, acc = [], 0
    for a, b, last in terms:
        acc += a * b
        if last:
            want.append((acc + (1 << (acc_width - 1))) % (1 << acc_width) - (1 << (acc_width - 1)))
            acc = 0
    got = int_mac([t[0] for t in terms], [t[1] for t in terms], [t[2] for t in terms],
                  a_bits=8, b_bits=4, acc_width=acc_width)
    assert got == want
    assert all(wrap(v, acc_width) == v for v in got)


CONFIGS = [(8, 8, None), (4, 4, None), (4, 4, 8), (2, 7, 9), (8, 4, 12), (24, 24, 64),
           (2, 2, 4)]


#: Two seeds of the default (Booth) multiplier, one of the heap and of the generic; the
#: 24 x 24-bit case, the slowest to simulate, once each.
SIM_CASES = [(*c, seed, mul) for c in CONFIGS
             for seed, mul in ((1, "booth"), (2, "booth"), (1, "heap"), (1, "generic"))
             if (c[0], seed) != (24, 2)]


@pytest.mark.parametrize(("a_bits", "b_bits", "acc_width", "seed", "multiplier"), SIM_CASES)
def test_amaranth_sim_matches_golden(seed, a_bits, b_bits, acc_width, multiplier):
    p = {"a_bits": a_bits, "b_bits": b_bits, "acc_width": acc_width, "multiplier": multiplier}
    model = IntMacModel(p)
    stim = model.stimuli(torch.Generator().manual_seed(seed), 1500)
    want = model.expected(stim)
    r = run_stream_sim(IntMultiplyAccumulate(**p), stim, want, seed=seed)
    assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), \
        f"seed {seed}: {r['reports']}"
    assert r["checked"] == len(want["o"]) > 20


def test_amaranth_sim_full_rate():
    """Without idle cycles or back-pressure the unit takes one term every cycle."""
    p = {"a_bits": 8, "b_bits": 8, "acc_width": None}
    model = IntMacModel(p)
    stim = model.stimuli(torch.Generator().manual_seed(3), 1000)
    dut = IntMultiplyAccumulate(**p)
    r = run_stream_sim(dut, stim, model.expected(stim), seed=3, idle=0.0, backpressure=0.0)
    assert r["mismatches"] == 0 and r["cycles"] <= len(stim["i"]) + dut.latency + 8


VERILATOR = [{"a_bits": 8, "b_bits": 8, "acc_width": None},
             {"a_bits": 4, "b_bits": 4, "acc_width": None},
             {"a_bits": 4, "b_bits": 4, "acc_width": 8}]


@pytest.mark.parametrize("p", VERILATOR,
                         ids=lambda p: "a{a_bits}b{b_bits}acc{acc_width}".format(**p))
def test_verilator_matches_golden(p, sim_build):
    seed = 400 + p["a_bits"]
    s = simulate("intmac", p, seed=seed, vectors=1000, build_root=sim_build)
    print(f"seed {seed}: {s['checked']} checked in {s['cycles']} cycles")
    assert (s["mismatches"], s["missing"], s["protocol_errors"], s["timed_out"]) == \
        (0, 0, [], False), f"replay with seed {seed}: {s['reports']}"
    assert s["checked"] > 20


def test_verilator_scoreboard_catches_dropped_lsb(sim_build):
    s = simulate("intmac", VERILATOR[1], seed=5, vectors=300, build_root=sim_build,
                 fault="lsb")
    assert s["mismatches"] > 0
    assert any("sum" in r for r in s["reports"])
