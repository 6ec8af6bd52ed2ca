"""Integer k-lane dot product with accumulator: golden against plain Python, hardware
against golden in the Amaranth simulator and under Verilator."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from golden.int_dot import default_int_dot_acc_bits, int_dot, int_dot_sum_bits
from golden.int_mac import int_mac
from hw.bitheap import ARCHS, SumOfProducts
from hw.int_dot import IntDotParams, IntDotProduct
from sim.amaranth_bench import run_stream_sim
from sim.run import simulate
from sim.units.int_dot import IntDotModel


def params(a_bits, b_bits, block, acc_width=None, arch="heap", levels_per_stage=2):
    return {"a_bits": a_bits, "b_bits": b_bits, "block": block, "acc_width": acc_width,
            "arch": arch, "levels_per_stage": levels_per_stage}


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"a_bits": 1}, ValueError, r"a_bits must be from 2 to 24, not 1"),
    ({"b_bits": 25}, ValueError, r"b_bits must be from 2 to 24, not 25"),
    ({"a_bits": 8.0}, TypeError, r"a_bits must be an integer, not 8.0"),
    ({"block": 0}, ValueError, r"block must be from 1 to 1024, not 0"),
    ({"block": 1025}, ValueError, r"block must be from 1 to 1024, not 1025"),
    ({"block": 2.0}, TypeError, r"block must be an integer, not 2.0"),
    ({"acc_width": 15}, ValueError, r"acc_width must be from 16 to 64, not 15"),
    ({"acc_width": 65}, ValueError, r"acc_width must be from 16 to 64, not 65"),
    ({"acc_width": "32"}, TypeError, r"acc_width must be an integer, not '32'"),
    ({"arch": "wallace"}, ValueError, r"arch must be one of 'heap', 'tree', not 'wallace'"),
    ({"arch": None}, TypeError, r"arch must be a str, one of 'heap', 'tree'; not None"),
    ({"levels_per_stage": 0}, ValueError, r"levels_per_stage must be at least 1, not 0"),
])
def test_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=f"^{match}$"):
        IntDotProduct(**{**params(8, 8, 16), **kwargs})


def test_positional_parameters_refused():
    with pytest.raises(TypeError):
        IntDotProduct(8, 8, 16)  # type: ignore[misc]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize(("a_bits", "b_bits", "block", "sum_bits", "acc_width"), [
    (8, 8, 16, 20, 36), (4, 4, 32, 13, 29), (8, 4, 1, 12, 28), (2, 2, 1, 4, 20),
    (2, 2, 33, 9, 25), (24, 24, 1, 48, 64), (24, 24, 1024, 58, 64),
])
def test_widths_and_latency(a_bits, b_bits, block, sum_bits, acc_width, arch):
    """Default ``acc_width`` is the exact sum's width + 16, capped at 64; latency is the sum
    of products' stages plus the accumulator stage."""
    dut = IntDotProduct(a_bits=a_bits, b_bits=b_bits, block=block, arch=arch)
    sop = SumOfProducts(a_bits=a_bits, b_bits=b_bits, block=block, arch=arch)
    assert (dut.sum_shape.width, dut.sum_shape.signed) == (sum_bits, True)
    assert int_dot_sum_bits(a_bits, b_bits, block) == sop.width == sum_bits
    assert dut.acc_width == default_int_dot_acc_bits(a_bits, b_bits, block) == acc_width
    assert dut.latency == sop.stages + 1
    assert (dut.a_bits, dut.b_bits, dut.block, dut.arch, dut.levels_per_stage) == \
        (a_bits, b_bits, block, arch, 2)
    assert IntDotProduct(a_bits=a_bits, b_bits=b_bits, block=block, acc_width=50).acc_width == 50


@pytest.mark.parametrize(("p", "name"), [
    ({"a_bits": 8, "b_bits": 8, "block": 16}, "int_dot_a8_w8_k16"),
    (params(8, 8, 16, acc_width=36), "int_dot_a8_w8_k16"),          # the default, spelled out
    (params(4, 4, 32, arch="tree"), "int_dot_a4_w4_k32_tree"),
    (params(2, 3, 1, acc_width=6, levels_per_stage=1), "int_dot_a2_w3_k1_acc6_l1"),
])
def test_name_encodes_parameters(p, name):
    assert IntDotParams(**p).name == name


@pytest.mark.parametrize(("args", "name"), [
    (["--int-preset", "int4", "--block", "4"], "int_dot_a4_w4_k4"),
    (["--abits", "3", "--wbits", "5", "--block", "2", "--arch", "tree", "--acc-bits", "9",
      "--levels-per-stage", "1"], "int_dot_a3_w5_k2_tree_acc9_l1"),
])
def test_generates_deterministically_from_command_line(args, name):
    from cli.units import unit_record
    from hw.generate import build_parser, dump_manifest, emit
    from hw.unit import unit

    def design():
        parser = build_parser()
        ns = parser.parse_args(["--top", "intdot", *args])
        return emit(unit("intdot"), unit_record(ns, parser))

    first, second = design(), design()
    assert first.name == second.name == name and first.verilog == second.verilog
    assert dump_manifest(first.manifest) == dump_manifest(second.manifest)
    assert f"module {name}(" in first.verilog
    assert first.manifest["latency"] == first.component.latency


def test_golden_groups_and_wrap():
    kw = {"a_bits": 4, "b_bits": 4, "block": 2}
    assert int_dot([[1, 2], [3, 4], [5, 6]], [[7, -8], [1, 1], [2, -2]], [0, 1, 1], **kw) == \
        [7 - 16 + 3 + 4, 10 - 12]
    assert int_dot([[-8, -8]] * 2, [[-8, -8]] * 2, [0, 1], **kw) == [256]
    # 256 does not fit 8 bits: wraps to 0; 3 * 64 = 192 wraps to -64.
    assert int_dot([[-8, -8]] * 2, [[-8, -8]] * 2, [0, 1], **kw, acc_width=8) == [0]
    assert int_dot([[-8, -8]] * 3, [[-8, 0]] * 3, [0, 0, 1], **kw, acc_width=8) == [-64]
    assert int_dot([[3, 3]], [[3, 3]], [0], **kw) == []      # unclosed group: no output
    with pytest.raises(ValueError, match=r"^a\[1\]\[0\] = 8 does not fit signed\(4\)$"):
        int_dot([[1, 1], [8, 1]], [[1, 1], [1, 1]], [0, 1], **kw)
    with pytest.raises(ValueError, match=r"^b\[0\] holds 3 values, not block = 2$"):
        int_dot([[1, 1]], [[1, 1, 1]], [1], **kw)


def test_golden_default_width_never_wraps_2_16_inputs():
    n, k = 1 << 16, 2
    kw = {"a_bits": 8, "b_bits": 8, "block": k}
    assert int_dot([[-128] * k] * n, [[-128] * k] * n, [0] * (n - 1) + [1], **kw) == \
        [n * k * 16384]
    assert int_dot([[-128] * k] * n, [[127] * k] * n, [0] * (n - 1) + [1], **kw) == \
        [-n * k * 16256]


@given(st.integers(1, 5).flatmap(lambda k: st.lists(st.tuples(
    st.lists(st.integers(-128, 127), min_size=k, max_size=k),
    st.lists(st.integers(-8, 7), min_size=k, max_size=k), st.booleans()), max_size=40)),
    st.integers(12, 40))
def test_golden_matches_python(inputs, acc_width):
    if not inputs:
        return
    k = len(inputs[0][0])
    want, acc = [], 0
    for a, b, last in inputs:
        for x, y in zip(a, b, strict=True):
            acc += x * y
        if last:
            want.append((acc + (1 << (acc_width - 1))) % (1 << acc_width) - (1 << (acc_width - 1)))
            acc = 0
    got = int_dot([t[0] for t in inputs], [t[1] for t in inputs], [t[2] for t in inputs],
                  a_bits=8, b_bits=4, block=k, acc_width=acc_width)
    assert got == want


@given(st.lists(st.tuples(st.integers(-32, 31), st.integers(-4, 3), st.booleans()),
                max_size=40))
def test_golden_one_lane_is_int_mac(terms):
    """With ``k = 1`` the unit is the scalar MAC, default width included."""
    a, b, last = ([t[i] for t in terms] for i in range(3))
    assert int_dot([[x] for x in a], [[y] for y in b], last, a_bits=6, b_bits=3, block=1) == \
        int_mac(a, b, last, a_bits=6, b_bits=3)


# Amaranth simulator: both architectures, widths from 2 bits, unequal a/b, small wrapping
# accumulators, k from 1 to odd and large.
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("block", [1, 2, 16, 33])
@pytest.mark.parametrize(("a_bits", "b_bits", "acc_width", "lps"), [
    (2, 2, None, 1), (8, 8, None, 2), (4, 7, 11, 2), (8, 3, 12, 3),
])
def test_amaranth_sim_matches_golden(a_bits, b_bits, acc_width, lps, block, arch):
    p = params(a_bits, b_bits, block, acc_width, arch, lps)
    model = IntDotModel(p)
    seed = a_bits * 100 + block
    stim = model.stimuli(torch.Generator().manual_seed(seed), 100)
    want = model.expected(stim)
    r = run_stream_sim(IntDotProduct(**p), stim, want, seed=seed)
    assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), \
        f"seed {seed}: {r['reports']}"
    assert r["checked"] == len(want["o"]) > 12


def test_amaranth_sim_full_rate():
    """Without idle cycles or back-pressure the unit takes one input every cycle."""
    p = params(8, 8, 4)
    model = IntDotModel(p)
    stim = model.stimuli(torch.Generator().manual_seed(3), 200)
    dut = IntDotProduct(**p)
    r = run_stream_sim(dut, stim, model.expected(stim), seed=3, idle=0.0, backpressure=0.0)
    assert r["mismatches"] == 0 and r["cycles"] <= len(stim["i"]) + 3 * dut.latency + 4


def test_amaranth_sim_catches_wrong_expectation():
    p = params(4, 4, 3, acc_width=10, arch="tree")
    model = IntDotModel(p)
    stim = model.stimuli(torch.Generator().manual_seed(7), 20)
    want = model.expected(stim)
    want["o"][3]["sum"] ^= 1
    r = run_stream_sim(IntDotProduct(**p), stim, want, seed=7)
    assert r["mismatches"] == 1 and "output #3" in r["reports"][0]


# Verilator: the density-report configurations (int8 k16, int4 k32) in both architectures,
# and a 2-bit single-lane unit whose 5-bit accumulator wraps. One build each (about 8 s).
VERILATOR = [params(8, 8, 16), params(8, 8, 16, arch="tree"), params(4, 4, 8),
             params(4, 4, 32, arch="tree"), params(2, 2, 1, acc_width=5)]


@pytest.mark.parametrize("p", VERILATOR, ids=lambda p: IntDotParams(**p).name)
def test_verilator_matches_golden(p, sim_build):
    seed = 500 + p["a_bits"] * 10 + p["block"]
    s = simulate("intdot", p, seed=seed, vectors=600, build_root=sim_build)
    print(f"seed {seed}: {s['checked']} checked in {s['cycles']} cycles")
    assert (s["mismatches"], s["missing"], s["protocol_errors"], s["timed_out"]) == \
        (0, 0, [], False), f"replay with seed {seed}: {s['reports']}"
    assert s["checked"] > 20


def test_verilator_scoreboard_catches_dropped_lsb(sim_build):
    """The same run with the expectation's LSB dropped must fail: the check can fail."""
    s = simulate("intdot", VERILATOR[-1], seed=5, vectors=300, build_root=sim_build,
                 fault="lsb")
    assert s["mismatches"] > 0
    assert any("sum" in r for r in s["reports"])
