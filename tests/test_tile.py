"""MXIntTile: the weight-stationary tile against golden.tile / golden.linear, under random
gaps and back-pressure, with its double buffer swapping while it loads, and its MAC
utilisation measured in the Amaranth simulator."""

from __future__ import annotations

import inspect
import sys
import types

import pytest
import torch
from amaranth.sim import Simulator

import hw.tile
from golden import MXIntFormat, quantize
from golden.linear import linear, linear_fp32
from golden.tile import tile_bias, tile_blocks, tile_mx
from hw.manifest import describe_ports
from hw.tile import MXIntTile
from sim.amaranth_bench import run_stream_sim
from sim.fields import pack, unpack
from sim.scoreboard import Scoreboard
from sim.units import model_for


def params(x_bits=4, w_bits=4, exp_bits=8, block=4, k_len=10, rows=4, lanes=2, tokens=3,
           output="accum", **kw):
    return {"x_bits": x_bits, "w_bits": w_bits, "exp_bits": exp_bits, "block": block,
            "k_len": k_len, "rows": rows, "lanes": lanes, "tokens": tokens, "output": output,
            **kw}


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"rows": 6, "lanes": 4}, ValueError, r"rows must be a multiple of lanes \(4\), not 6"),
    ({"tokens": 0}, ValueError, r"tokens must be from 1 to 65536, not 0"),
    ({"tokens": 2.0}, TypeError, r"tokens must be an integer, not 2.0"),
    ({"lanes": 65}, ValueError, r"lanes must be from 1 to 64, not 65"),
    ({"k_len": 0}, ValueError, r"k_len must be from 1 to 65536, not 0"),
    ({"output": "fp16"}, ValueError, r"output must be one of 'accum', 'fp32', 'mx', not 'fp16'"),
    ({"out_bits": 4}, ValueError, r"out_bits applies only with output='mx', not output='accum'"),
    ({"output": "mx", "out_bits": 1}, ValueError, r"out_bits must be from 2 to 24, not 1"),
    ({"output": "mx", "rows": 6}, ValueError,
     r"rows must be a multiple of block \(4\) with output 'mx', not 6"),
    ({"output": "mx", "block": 6, "rows": 12, "lanes": 4}, ValueError,
     r"lanes must divide block \(6\) or be a multiple of it with output 'mx', not 4"),
    ({"bias": "fp32"}, ValueError,
     r"bias 'fp32' needs output 'fp32' or 'mx', not output 'accum'"),
    ({"output": "fp32", "bias": "bf16"}, ValueError,
     r"bias must be one of 'none', 'fp32', not 'bf16'"),
    ({"x_element": "e9m9", "x_bits": None}, ValueError,
     r"x_element must be one of 'int', 'e5m2', 'e4m3', 'e3m2', 'e2m3', 'e2m1', not 'e9m9'"),
    ({"w_element": "e2m1"}, ValueError,
     r"w_bits applies only with w_element='int', not w_element='e2m1': leave it out"),
    ({"w_element": "e2m1", "w_bits": None, "exp_bits": 5}, ValueError,
     r"exp_bits must be 8 \(the E8M0 scale\) when w_element is a minifloat \('e2m1'\), "
     r"not 5"),
    ({"x_element": "e5m2", "w_element": "e5m2", "x_bits": None, "w_bits": None,
      "block": 32, "k_len": 64}, ValueError,
     r"w_element 'e5m2' with E5M2 activations at block 32: the dot results are \d+ bits "
     r"wide, beyond the accumulator's \d+; E5M2 pairs with every other format"),
    ({"x_element": "e4m3", "x_bits": None, "output": "mx", "rows": 8}, ValueError,
     r"out_bits must be given with output 'mx' when x_element is a minifloat \('e4m3'\): "
     r"the MX output is MXINT"),
    ({"output": "fp32", "bias": True}, TypeError,
     r"bias must be a str, one of 'none', 'fp32'; not True"),
    ({"blocks_per_cycle": 3, "k_len": 12}, ValueError,
     r"blocks_per_cycle must be 1, 2 or 4, not 3"),
    ({"blocks_per_cycle": 5}, ValueError, r"blocks_per_cycle must be from 1 to 4, not 5"),
    ({"blocks_per_cycle": 2.0}, TypeError, r"blocks_per_cycle must be an integer, not 2.0"),
    ({"blocks_per_cycle": 2, "k_len": 12}, ValueError,
     r"blocks_per_cycle \(2\) must divide the blocks per row, ceil\(k_len / block\) = 3, "
     r"not leave 1"),
    ({"blocks_per_cycle": 4, "k_len": 64, "acc_width": 19}, ValueError,
     r"acc_width must be at least 20 with blocks_per_cycle 4 and 4 blocks per partial sum "
     r"\(dot results, guard bits and ceil\(log2 4\): no partial sum may saturate\), not 19"),
])
def test_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        MXIntTile(**{**params(), **kwargs})


def test_properties():
    dut = MXIntTile(**params(block=4, k_len=10, rows=8, lanes=2, tokens=5))
    assert (dut.blocks, dut.groups, dut.words, dut.cycles_per_token, dut.macs_per_cycle) == \
        (3, 4, 12, 12, 8)
    assert dut.latency == 2 + dut._dots[0].latency + dut._accs[0].latency
    assert all(acc.align == "loop" for acc in dut._accs)
    fp32 = MXIntTile(**params(output="fp32"))
    assert fp32.latency == dut.latency + fp32._convs[0].latency == dut.latency + 7
    mx = MXIntTile(**params(output="mx", rows=8))
    assert mx.out_bits == 4 and mx.casts == 1
    assert mx.latency == fp32.latency + mx._casts[0].latency
    assert MXIntTile(**params(output="mx", block=2, lanes=4, rows=8)).casts == 2
    assert MXIntTile(**params(tokens=7)).params.name.endswith("_R4_P2_T7_g8")
    biased = MXIntTile(**params(output="fp32", bias="fp32"))
    assert biased.latency == fp32.latency + 6 and biased.params.name.endswith("_fp32_biasfp32")
    assert "bias" not in MXIntTile(**params(output="fp32")).params.kwargs()  # old manifests
    assert not hasattr(fp32, "b") and len(biased.b.payload.bits) == 2
    two = MXIntTile(**params(block=4, k_len=16, rows=8, lanes=2, tokens=5, blocks_per_cycle=2))
    assert (two.blocks, two.words, two.cycles_per_token, two.macs_per_cycle) == (4, 16, 8, 16)
    assert len(two._dots) == len(two._accs) == 4 and len(two._merges) == 2
    assert two.latency == 2 + two._dots[0].latency + two._accs[0].latency + 3
    assert two.params.name.endswith("_R8_P2_T5_B2_g8")
    assert "blocks_per_cycle" not in dut.params.kwargs()  # B = 1: the manifest as before
    assert two.params.kwargs()["blocks_per_cycle"] == 2


CASES = [
    params(),                                                     # K not a multiple of k
    params(x_bits=8, w_bits=6, exp_bits=5, block=8, k_len=16, rows=4, lanes=2, tokens=3),
    params(x_bits=2, w_bits=2, block=1, k_len=3, rows=2, lanes=1, tokens=2),  # block 1, P=1
    params(x_bits=6, w_bits=4, block=4, k_len=4, rows=3, lanes=3, tokens=1),   # R = P, nb = 1
    params(x_bits=5, w_bits=7, exp_bits=3, block=3, k_len=7, rows=4, lanes=4, tokens=2,
           guard_bits=2),
]


def _run(p, seed, n=6, **kw):
    model = model_for({"top": "tile", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(seed), n)
    want = model.expected(stim)
    r = run_stream_sim(MXIntTile(**p), stim, want, seed=seed, **kw)
    return r, want


@pytest.mark.parametrize("output", ["accum", "fp32"])
@pytest.mark.parametrize("p", CASES, ids=lambda p: "x{x_bits}w{w_bits}e{exp_bits}k{block}"
                         "K{k_len}R{rows}P{lanes}T{tokens}".format(**p))
def test_amaranth_sim_matches_golden(p, output):
    """Several tiles in a row (3 directed, then random), random gaps on both inputs and
    back-pressure on the output: every result equals golden, bit for bit."""
    for seed in (1, 2) if p["k_len"] < 16 else (1,):
        r, want = _run({**p, "output": output}, seed, n=4)
        assert (r["mismatches"], r["missing"], r["protocol_errors"], r["timed_out"]) == \
            (0, 0, [], False), f"seed {seed}: {r['reports']}"
        assert r["checked"] == len(want["o"]) > 0


BLOCKS_CASES = [
    # B = 2, guard bits 2 and exponents over the whole range: the partial sums' floors
    # differ from one sum's
    params(x_bits=5, w_bits=3, exp_bits=3, block=3, k_len=12, rows=4, lanes=2, tokens=2,
           guard_bits=2, blocks_per_cycle=2),
    params(block=4, k_len=16, rows=4, lanes=1, tokens=3, output="fp32", blocks_per_cycle=4),
]


@pytest.mark.parametrize("p", BLOCKS_CASES, ids=lambda p: "B{blocks_per_cycle}_{output}"
                         .format(**p))
def test_amaranth_sim_blocks_per_cycle_matches_golden(p):
    """B blocks per lane per cycle: golden.tile_blocks with blocks_per_cycle=B (B partial
    sums per row), random gaps and back-pressure; and the expectation of one running sum
    would not pass (the case tells the arithmetics apart)."""
    r, want = _run(p, 5, n=4)
    assert (r["mismatches"], r["missing"], r["protocol_errors"], r["timed_out"]) == \
        (0, 0, [], False), r["reports"]
    assert r["checked"] == len(want["o"]) > 0
    if p["output"] == "accum":
        model = model_for({"top": "tile", "parameters": {**p, "blocks_per_cycle": 1}})
        assert model.expected(model.stimuli(torch.Generator().manual_seed(5), 4)) != want


def test_blocks_per_cycle_fault_is_caught():
    """Injected fault: every dot product of a lane fed the first block of the read (not
    block q of B) gives mismatches."""
    bad = _mutant("dot.a.payload.eq(x_data[q]),", "dot.a.payload.eq(x_data[0]),")
    p = BLOCKS_CASES[0]
    model = model_for({"top": "tile", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(5), 2)
    r = run_stream_sim(bad.MXIntTile(**p), stim, model.expected(stim), seed=5)
    assert r["mismatches"] > 0


MX_CASES = [
    params(block=4, k_len=10, rows=8, lanes=2, tokens=3),          # 2 groups per block
    params(block=4, k_len=8, rows=8, lanes=4, tokens=2, out_bits=6),  # 1 group per block
    params(block=1, k_len=3, rows=4, lanes=2, tokens=2),           # 2 casts
    params(x_bits=8, w_bits=8, block=8, k_len=16, rows=8, lanes=1, tokens=2, out_bits=3),
]


@pytest.mark.parametrize("p", MX_CASES, ids=lambda p: "k{block}R{rows}P{lanes}".format(**p))
def test_amaranth_sim_mx_output_matches_golden(p):
    for seed in (3, 4) if p["k_len"] < 16 else (3,):
        r, want = _run({**p, "output": "mx"}, seed, n=4)
        assert (r["mismatches"], r["missing"], r["protocol_errors"], r["timed_out"]) == \
            (0, 0, [], False), f"seed {seed}: {r['reports']}"
        assert r["checked"] == len(want["o"]) > 0


BIAS_CASES = [
    params(output="fp32"),                                          # K not a multiple of k
    params(x_bits=2, w_bits=2, block=1, k_len=3, rows=2, lanes=1, tokens=1, output="fp32"),
    params(rows=8, output="mx"),                                    # 2 groups per block
    params(block=1, k_len=3, rows=4, lanes=2, tokens=2, output="mx"),  # 2 casts
]


@pytest.mark.parametrize("p", BIAS_CASES, ids=lambda p: "{output}_k{block}R{rows}P{lanes}T{tokens}"
                         .format(**p))
def test_amaranth_sim_bias_matches_golden(p):
    """bias="fp32": several tiles, random gaps on x, w and b, back-pressure on o; every
    result (float32 or MX) equals golden.tile_bias (then tile_mx), bit for bit. The biases
    include signed zeros, subnormals, infinities, NaNs with payloads, the largest finite
    values and exact and near cancellations (sim.units.tile.tile_biases)."""
    r, want = _run({**p, "bias": "fp32"}, seed=1, n=4)
    assert (r["mismatches"], r["missing"], r["protocol_errors"], r["timed_out"]) == \
        (0, 0, [], False), r["reports"]
    assert r["checked"] == len(want["o"]) > 0


def test_bias_stimuli_reach_the_special_results():
    """The fp32 bias run's expected results hold NaN, both infinities, zero, subnormals
    and normal values: the directed biases reach every class (-0 needs a -0 result of the
    engine, which gives +0 for an exact zero sum; tests/test_fp_add.py covers -0 + -0)."""
    p = {**BIAS_CASES[0], "bias": "fp32"}
    model = model_for({"top": "tile", "parameters": p})
    want = model.expected(model.stimuli(torch.Generator().manual_seed(1), 4))
    bits = {v for o in want["o"] for v in o["bits"]}
    assert {0x7FC00000, 0x7F800000, 0xFF800000, 0} <= bits
    assert any(0 < v < 0x00800000 or 0x80000000 < v < 0x80800000 for v in bits)
    assert sum(0x00800000 <= v & 0x7FFFFFFF < 0x7F800000 for v in bits) > len(bits) // 3


def test_tile_bias_is_golden_nn_mxlinear():
    """golden.tile with the bias add is golden.nn.MXLinear's forward (engine float32 result
    plus the float32 bias in torch) bit for bit, on a real nn.Linear with its bias, and with
    special biases; only NaN payloads may differ (canonical here)."""
    from golden.nn import MXLinear

    fw, fx = MXIntFormat(6, 8, 8), MXIntFormat(8, 8, 8)
    gen = torch.Generator().manual_seed(7)
    lin = torch.nn.Linear(40, 16)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(16, 40, generator=gen) / 40 ** 0.5)
        lin.bias.copy_(torch.randn(16, generator=gen))
        lin.bias[:4] = torch.tensor([float("inf"), -0.0, 1e-45, 3.0e38])
    x = torch.randn(5, 40, generator=gen) * 30
    mx = MXLinear(lin, weights=fw, activations=fx)
    want = mx(x)
    wq, xq = mx.w_q, mx.quantize_input(x)
    y = tile_blocks(wq.mantissa, wq.exponent, xq.mantissa, xq.exponent, fw, fx,
                    guard_bits=mx.guard_bits, acc_width=mx.acc_width)
    bits = linear_fp32(y, fw, fx, guard_bits=mx.guard_bits)
    b = mx.bias.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    got = tile_bias(bits, b)
    ref = want.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    assert torch.equal(got, ref)
    assert not torch.isnan(want).any() and torch.isinf(want).any()
    nan_bias = torch.tensor([0x7F800001, 0xFFC00000])
    assert tile_bias(bits[:, :2], nan_bias).eq(0x7FC00000).all()


MXFP_CASES = [
    params(x_element="e2m1", w_element="e2m1", x_bits=None, w_bits=None),  # MXFP4
    params(x_element="e4m3", w_element="e2m1", x_bits=None, w_bits=None, output="fp32"),
    params(x_element="e4m3", w_element="e2m1", x_bits=None, w_bits=None, rows=8, output="mx",
           out_bits=6, bias="fp32"),
    params(x_bits=6, w_element="e5m2", w_bits=None, block=2, k_len=3, rows=2, lanes=1,
           tokens=2, output="fp32", bias="fp32"),                  # MXINT6 x, E5M2 w
]


@pytest.mark.parametrize("p", MXFP_CASES, ids=lambda p: "{}_{}_{}{}".format(
    p.get("x_element", "int"), p.get("w_element", "int"), p["output"],
    "_bias" if p.get("bias") else ""))
def test_amaranth_sim_mxfp_matches_golden(p):
    """MXFP element formats (codes in the weight words and activation blocks, E8M0
    scales): several tiles under gaps and back-pressure, every result equal to
    golden.tile_blocks (golden.linear's MXFP path), then float32, bias and MX cast."""
    r, want = _run(p, seed=2, n=4)
    assert (r["mismatches"], r["missing"], r["protocol_errors"], r["timed_out"]) == \
        (0, 0, [], False), r["reports"]
    assert r["checked"] == len(want["o"]) > 0
    if p["output"] == "fp32":  # the minifloats' specials reached the results
        assert any(v == 0x7FC00000 for o in want["o"] for v in o["bits"])


def test_mxfp_tile_is_golden_linear_per_token():
    """For MXFP operands golden.tile.tile_blocks is golden.linear.linear of the quantised
    tensors, token by token (W mxfp4, x mxfp8_e4m3)."""
    from golden.format import operand_format

    fw = operand_format("e2m1", None, exp_bits=8, block=8, side="w")
    fx = operand_format("e4m3", None, exp_bits=8, block=8, side="x")
    gen = torch.Generator().manual_seed(3)
    w = quantize(torch.randn(4, 20, generator=gen), fw)
    xs = [quantize(torch.randn(20, generator=gen), fx) for _ in range(3)]
    y = tile_blocks(w.codes, w.exponent, torch.stack([x.codes for x in xs]),
                    torch.stack([x.exponent for x in xs]), fw, fx, guard_bits=8, acc_width=40)
    for t, x in enumerate(xs):
        one = linear(w, x, guard_bits=8, acc_width=40)
        assert torch.equal(one.sum, y.sum[t]) and torch.equal(one.exponent, y.exponent[t])
    name = MXIntTile(**params(x_element="e4m3", w_element="e2m1", x_bits=None, w_bits=None))
    assert name.params.name.startswith("mx_tile_ae4m3_we2m1_k4_K10_R4_P2_T3")
    assert name.w.payload.shape().members.keys() == {"codes", "exponent"}


def test_mx_output_is_quantize_of_the_float32_outputs():
    """golden.tile.tile_mx is golden.quantize of each token's float32 output row vector, so
    a tile's MX output is exactly what the next layer's quantiser would make of it."""
    fw, fx, fo = MXIntFormat(6, 8, 4), MXIntFormat(6, 8, 4), MXIntFormat(5, 8, 4)
    gen = torch.Generator().manual_seed(5)
    w = quantize(torch.randn(8, 12, generator=gen), fw)
    xs = [quantize(torch.randn(12, generator=gen), fx) for _ in range(3)]
    y = tile_blocks(w.mantissa, w.exponent, torch.stack([x.mantissa for x in xs]),
                    torch.stack([x.exponent for x in xs]), fw, fx, guard_bits=8, acc_width=30)
    bits = linear_fp32(y, fw, fx, guard_bits=8)
    man, exp = tile_mx(bits, fo)
    for t, x in enumerate(xs):
        one = linear(w, x, guard_bits=8, acc_width=30)
        assert torch.equal(one.sum, y.sum[t]) and torch.equal(one.exponent, y.exponent[t])
        f = bits[t].to(torch.int32).view(torch.float32)
        q = quantize(f, fo)
        assert torch.equal(q.mantissa, man[t]) and torch.equal(q.exponent, exp[t])
    with pytest.raises(ValueError, match=r"rows \(6\) must be a multiple of the block \(4\)"):
        tile_mx(bits[:, :6], fo)


def _mutant(old: str, new: str) -> types.ModuleType:
    source = inspect.getsource(hw.tile)
    assert source.count(old) == 1, old
    copy = types.ModuleType("hw.tile_mutant")
    copy.__package__ = "hw"
    copy.__file__ = hw.tile.__file__
    sys.modules[copy.__name__] = copy
    try:
        exec(compile(source.replace(old, new), "<mutant of hw/tile.py>", "exec"), copy.__dict__)
    finally:
        del sys.modules[copy.__name__]
    return copy


@pytest.mark.parametrize(("old", "new"), [
    ("w_rd.addr.eq(Mux(r_bank, r_idx + D, r_idx))", "w_rd.addr.eq(r_idx)"),   # one bank
    ("x_rd.addr.eq(Mux(r_slot, r_blk + nb, r_blk))", "x_rd.addr.eq(r_blk)"),  # one slot
    ("self.w, w_wrs, full=w_full,", "self.w, w_wrs, full=Signal(2),"),  # overwrite
    ("b_rd.addr.eq(Mux(nxt_bank, nxt_grp + G, nxt_grp))", "b_rd.addr.eq(nxt_grp)"),
    ("self.b, [b_wr], full=b_full,", "self.b, [b_wr], full=Signal(2),"),
    ("add.i.payload.c.eq(b_rd.data.bits[p])", "add.i.payload.c.eq(0)"),
], ids=["bank", "slot", "overwrite", "bias-bank", "bias-overwrite", "no-bias"])
def test_broken_double_buffer_is_caught(old, new):
    """The checks fail on a tile that reads one bank only, one activation slot only, or
    loads over a bank still in use; and, with a bias, on one that reads one bias bank only,
    loads biases over a bank in use, or adds none."""
    bad = _mutant(old, new)
    p = params(rows=4, lanes=2, tokens=2)
    if "b_rd" in old or "self.b" in old or "add." in old:
        p = {**p, "output": "fp32", "bias": "fp32"}
    model = model_for({"top": "tile", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(1), 4)
    r = run_stream_sim(bad.MXIntTile(**p), stim, model.expected(stim), seed=1)
    assert r["mismatches"] > 0


def measure(dut: MXIntTile, stimuli: dict, expected: dict, *, max_cycles: int = 20000,
            withhold: dict[str, int] | None = None) -> dict:
    """Run ``dut`` with its inputs always valid (each stream in ``withhold`` only from that
    cycle on) and ``o`` always ready; count the cycles in which the lanes take a block (each
    a ``P * k``-MAC step), from the first to the last such cycle (``window``) and from
    reset to the last output (``cycles``); ``first_out`` is the first output's cycle."""
    _, streams = describe_ports(dut)
    names = list(stimuli)
    words = {n: [pack(streams[n]["fields"], v) for v in stimuli[n]] for n in names}
    board = Scoreboard("o", expected["o"])
    state = {"steps": [], "cycles": 0, "last_out": 0, "first_out": None}
    withhold = withhold or {}

    async def bench(ctx):
        sent = dict.fromkeys(names, 0)
        ctx.set(dut.o.ready, 1)
        for cycle in range(max_cycles):
            for n in sent:
                port = getattr(dut, n)
                if sent[n] < len(words[n]):
                    ctx.set(port.payload.as_value(), words[n][sent[n]])
                ctx.set(port.valid, sent[n] < len(words[n]) and cycle >= withhold.get(n, 0))
            lane = dut._dots[0].a
            _, _, ov, op, lv, lr, *readies = await ctx.tick().sample(
                dut.o.valid, dut.o.payload.as_value(), lane.valid, lane.ready,
                *(getattr(dut, n).ready for n in names))
            for n, ready in zip(names, readies, strict=True):
                if ready and sent[n] < len(words[n]) and cycle >= withhold.get(n, 0):
                    sent[n] += 1
            if lv and lr:
                state["steps"].append(cycle)
            if ov:
                board.receive(unpack(streams["o"]["fields"], op))
                state["last_out"] = cycle + 1
                if state["first_out"] is None:
                    state["first_out"] = cycle
            if board.pending == 0:
                break
        state["cycles"] = cycle + 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    steps = state["steps"]
    return {"mismatches": board.mismatches, "missing": board.pending, "steps": len(steps),
            "window": steps[-1] - steps[0] + 1, "cycles": state["last_out"],
            "first_out": state["first_out"]}


@pytest.mark.parametrize("p", [
    params(x_bits=4, w_bits=4, block=8, k_len=32, rows=8, lanes=4, tokens=4),
    params(x_bits=4, w_bits=4, block=4, k_len=16, rows=2, lanes=2, tokens=2),  # R = P
    params(x_bits=4, w_bits=4, block=4, k_len=16, rows=4, lanes=2, tokens=2,
           blocks_per_cycle=2),                                                    # B = 2
], ids=["R8P4T4", "R2P2T2", "R4P2T2B2"])
def test_steady_state_mac_utilisation(p):
    """With T >= P, inputs always valid and no back-pressure, the lanes take a block in
    every cycle from the first to the last (the loads of the next weight tile and token hide
    behind compute): steady-state utilisation useful MACs / (P * k * cycles) >= 90 %
    (measured: 100 %, K a multiple of k)."""
    model = model_for({"top": "tile", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(1), 4 * p["tokens"])
    want = model.expected(stim)
    dut = MXIntTile(**p)
    r = measure(dut, stim, want)
    assert (r["mismatches"], r["missing"]) == (0, 0)
    tiles = len(stim["w"]) // dut.words
    assert r["steps"] == tiles * p["tokens"] * dut.cycles_per_token
    useful = tiles * p["tokens"] * p["rows"] * p["k_len"]
    steady = useful / (dut.macs_per_cycle * r["window"])
    overall = useful / (dut.macs_per_cycle * r["cycles"])
    print(f"{tiles} tiles: steady-state utilisation {steady:.3f}, from reset to the last "
          f"output {overall:.3f} ({r['cycles']} cycles)")
    assert steady >= 0.9
    assert r["window"] == r["steps"]  # no bubble at all


@pytest.mark.parametrize("mutant", [False, True], ids=["tile", "bias-before-load"])
def test_results_wait_for_their_biases(mutant):
    """With the biases withheld until cycle 150 (long after the first results), no result
    leaves before its tile's biases are loaded and every one is right; a tile whose bias
    read is trusted before the bank is full (injected fault) gives wrong results."""
    p = params(output="fp32", bias="fp32", rows=4, lanes=2, tokens=2)
    model = model_for({"top": "tile", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(1), 4)
    want = model.expected(stim)
    tile = _mutant("b_ok.eq(b_full.bit_select(nxt_bank, 1))", "b_ok.eq(1)").MXIntTile \
        if mutant else MXIntTile
    dut = tile(**p)
    r = measure(dut, stim, want, withhold={"b": 150})
    if mutant:
        assert r["mismatches"] > 0
        return
    assert (r["mismatches"], r["missing"]) == (0, 0)
    assert r["first_out"] >= 150 + dut.groups


def test_double_buffers_proved_bounded(tmp_path):
    """Bounded proof (Yosys sat, first 16 cycles from reset, every valid/ready/reset
    pattern) that the lane computes with the right weight word and activation block; not
    vacuous: within the bound some trace takes more than two tiles' blocks (three weight
    handovers)."""
    from sim.formal.tile_buffer import prove_tile_buffers, reach

    assert prove_tile_buffers(workdir=tmp_path / "proof") == "PROVED"
    assert reach(taken=2 * 2 * 2, workdir=tmp_path / "reach")


@pytest.mark.parametrize(("old", "new"), [
    ("w_rd.addr.eq(Mux(r_bank, r_idx + D, r_idx))", "w_rd.addr.eq(r_idx)"),
    ("with m.If(r_tok == T - 1):", "with m.If(1):"),  # hands over after one token
], ids=["bank", "early-handover"])
def test_double_buffer_proof_fails_on_a_broken_tile(tmp_path, old, new):
    from sim.formal.tile_buffer import prove_tile_buffers

    assert prove_tile_buffers(workdir=tmp_path, component=_mutant(old, new).MXIntTile) == \
        "FAILED"


def test_double_buffers_proved_bounded_with_two_blocks_per_cycle(tmp_path):
    """The same bounded proof with B = 2 (each read two blocks, one from each of the two
    weight and two activation memories, into the lane's two partial sums); not vacuous:
    within the bound some trace takes 5 reads, the third tile's first."""
    from sim.formal.tile_buffer import prove_tile_buffers, reach

    assert prove_tile_buffers(workdir=tmp_path / "proof", blocks_per_cycle=2) == "PROVED"
    assert reach(taken=2 * 2, workdir=tmp_path / "reach", blocks_per_cycle=2)


def test_two_blocks_per_cycle_proof_fails_on_swapped_memories(tmp_path):
    """Activation block i written to memory 1 - i mod 2: each partial sum takes the other's
    activation block with its own weight word. Refused options: B with --bias."""
    from sim.formal.tile_buffer import prove_tile_buffers

    bad = _mutant("self._loader(m, self.x, x_wrs,", "self._loader(m, self.x, x_wrs[::-1],")
    assert prove_tile_buffers(workdir=tmp_path, component=bad.MXIntTile,
                              blocks_per_cycle=2) == "FAILED"
    from sim.formal.tile_buffer import main

    with pytest.raises(SystemExit) as exc:
        main(["--bias", "--blocks-per-cycle", "2", "--workdir", str(tmp_path / "no")])
    assert exc.value.code == 2 and not (tmp_path / "no").exists()


def test_bias_buffer_proved_bounded(tmp_path):
    """Bounded proof (first 16 cycles, every valid/ready/reset pattern of the result
    source, b and o) that each result entering the bias adder comes with its group's bias
    of its tile; not vacuous: within the bound the adder takes results of three tiles."""
    from sim.formal.tile_buffer import prove_tile_buffers, reach

    assert prove_tile_buffers(workdir=tmp_path / "proof", bias=True) == "PROVED"
    assert reach(taken=2 * 2 * 2, workdir=tmp_path / "reach", bias=True)


@pytest.mark.parametrize(("old", "new"), [
    ("b_ok.eq(b_full.bit_select(nxt_bank, 1))", "b_ok.eq(1)"),  # read before loaded
    ("b_rd.addr.eq(Mux(nxt_bank, nxt_grp + G, nxt_grp))", "b_rd.addr.eq(nxt_grp)"),
    ("b_clr.eq(Mux(take & end_tile,", "b_clr.eq(Mux(take & end_tok,"),  # freed too early
], ids=["before-load", "bank", "early-release"])
def test_bias_buffer_proof_fails_on_a_broken_tile(tmp_path, old, new):
    from sim.formal.tile_buffer import prove_tile_buffers

    assert prove_tile_buffers(workdir=tmp_path, component=_mutant(old, new).MXIntTile,
                              bias=True) == "FAILED"


def test_roofline_arithmetic():
    """benchmarks.tile's MiniLM figures: a layer is 1769472 MACs per token, so 13824 cycles
    on 4 lanes of 32; its MXINT8 weights are 1769472 bytes plus one byte per block."""
    from benchmarks.tile import layer_cycles_per_token, roofline, weight_bytes_per_layer

    assert layer_cycles_per_token(block=32, lanes=4) == 1769472 // 128
    assert weight_bytes_per_layer(w_bits=8, exp_bits=8, block=32) == 1769472 * (1 + 1 / 32)
    r = roofline(clock_mhz=100.0, block=32, lanes=4, w_bits=8, exp_bits=8, tokens=32,
                 bandwidth_gbs=1.6)
    assert r["cycles_per_token"] == 6 * 13824
    assert r["compute_tokens_s"] == 100e6 / (6 * 13824)
    assert r["weight_bytes_per_token"] == 6 * 1769472 * (1 + 1 / 32) / 32
    assert r["tokens_s"] == min(r["compute_tokens_s"], r["memory_tokens_s"])
    assert r["bound"] == "compute"


@pytest.mark.parametrize("parts", [2, 4])
def test_accum_merge_is_goldens_combination(parts):
    """hw.accum_merge alone, in the Amaranth simulator with random gaps and back-pressure:
    B results (A_q, E_q, nan_q) merged equal golden.accumulate with partial_sums=B of B
    inputs at G = 0 (each input is then its own partial sum, A_q = S_q), i.e. golden's
    combination: the largest exponent, floor shifts clamped far past the width (exponents
    0 to 31 past a 4-bit amount, W = 10), the sum's range check on both sides."""
    from golden.accumulator import accumulate
    from hw.accum_merge import MXIntAccumMerge

    W, seed = 10, 40 + parts
    print(f"seed {seed}")
    gen = torch.Generator().manual_seed(seed)
    n = 120
    sums = torch.randint(-(1 << (W - 1)), 1 << (W - 1), (n, parts), generator=gen)
    sums[:8] = (1 << (W - 1)) - 1            # every partial at the top: T far above
    sums[8:16] = -(1 << (W - 1))             # and at the bottom
    exps = torch.randint(0, 32, (n, parts), generator=gen)
    exps[:16] = 3                            # equal exponents, so that T leaves the range
    nans = torch.rand((n, parts), generator=gen) < 0.05
    want = accumulate(sums, exps, nans, guard_bits=0, acc_width=W, partial_sums=parts)
    assert int((want.sum == (1 << (W - 1)) - 1).sum()) >= 8   # the bounds are reached
    assert int((want.sum == -(1 << (W - 1))).sum()) >= 8
    dut = MXIntAccumMerge(parts=parts, acc_width=W, exp_bits=4)
    got = []

    async def bench(ctx):
        sent = 0
        for _ in range(20 * n):
            gap = bool(torch.rand(1, generator=gen) < 0.3)
            ctx.set(dut.o.ready, bool(torch.rand(1, generator=gen) >= 0.3))
            if sent < n:
                for q in range(parts):
                    ctx.set(dut.i.payload[q].sum, int(sums[sent, q]))
                    ctx.set(dut.i.payload[q].exponent, int(exps[sent, q]))
                    ctx.set(dut.i.payload[q].nan, int(nans[sent, q]))
            ctx.set(dut.i.valid, sent < n and not gap)
            _, _, iv, ir, ov, orr, s, e, f = await ctx.tick().sample(
                dut.i.valid, dut.i.ready, dut.o.valid, dut.o.ready, dut.o.payload.sum,
                dut.o.payload.exponent, dut.o.payload.nan)
            sent += bool(iv and ir)
            if ov and orr:
                got.append((int(s), int(e), bool(f)))
            if len(got) == n:
                break

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == list(zip(want.sum.tolist(), want.exponent.tolist(), want.nan.tolist(),
                           strict=True))


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"parts": 3}, ValueError, r"parts must be 2 or 4, not 3"),
    ({"parts": True}, ValueError, r"parts must be 2 or 4, not True"),
    ({"acc_width": 63}, ValueError, r"acc_width must be from 1 to 62, not 63"),
    ({"exp_bits": 9}, ValueError, r"exp_bits must be from 2 to 8, not 9"),
])
def test_accum_merge_bad_parameters(kwargs, exc, match):
    from hw.accum_merge import MXIntAccumMerge

    with pytest.raises(exc, match=match):
        MXIntAccumMerge(**{"parts": 2, "acc_width": 10, "exp_bits": 3, **kwargs})
