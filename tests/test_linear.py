"""MXIntLinear: y = W x on MXINT blocks, against golden.linear and torch.nn.Linear."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from golden import MXIntFormat, quantize
from golden.dequant import QUIET_NAN
from golden.linear import linear, linear_fp32, linear_value
from hw.linear import MXIntLinear
from sim.amaranth_bench import run_stream_sim
from sim.run import simulate
from sim.units import model_for


def params(x_bits, w_bits, exp_bits, block, k_len, rows, lanes, guard_bits=8, acc_width=None,
           output="accum"):
    return {"x_bits": x_bits, "w_bits": w_bits, "exp_bits": exp_bits, "block": block,
            "k_len": k_len, "rows": rows, "lanes": lanes, "guard_bits": guard_bits,
            "acc_width": acc_width, "levels_per_stage": 2, "output": output}


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"rows": 6, "lanes": 4}, ValueError, r"rows must be a multiple of lanes \(4\), not 6"),
    ({"lanes": 0}, ValueError, r"lanes must be from 1 to 64, not 0"),
    ({"k_len": 0}, ValueError, r"k_len must be from 1 to 1048576, not 0"),
    ({"x_bits": 1}, ValueError, r"x_bits must be from 2 to 24, not 1"),
    ({"block": "4"}, TypeError, r"block must be an integer, not '4'"),
    ({"output": "fp16"}, ValueError, r"output must be one of 'accum', 'fp32', not 'fp16'"),
    ({"align": "skid"}, ValueError,
     r"align must be one of 'loop', 'stall', 'interleave', 'lookahead', not 'skid'"),
])
def test_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        MXIntLinear(**{**params(6, 6, 8, 4, 16, 4, 2), **kwargs})


def test_latency_and_blocks():
    dut = MXIntLinear(**params(6, 6, 8, 16, 40, 4, 2))
    assert dut.blocks == 3 and dut.latency == dut._dots[0].latency + dut._accs[0].latency
    fp32 = MXIntLinear(**params(6, 6, 8, 16, 40, 4, 2, output="fp32"))
    assert fp32.latency == dut.latency + fp32._convs[0].latency == dut.latency + 7
    assert fp32.output == "fp32"
    assert fp32.o.payload.shape().size == 2 * 32


@pytest.mark.parametrize(("align", "primitives", "acc"), [
    ("lookahead", "ecp5", "ecp5"), ("stall", "ecp5", "generic"),
    ("lookahead", "xc7", "generic"), ("lookahead", "generic", "generic")])
def test_accumulators_take_the_ecp5_cells_with_lookahead(align, primitives, acc):
    """``primitives="ecp5"`` reaches the accumulators where they have a cell build
    (``align="lookahead"``), and the latency is then theirs."""
    dut = MXIntLinear(**params(2, 8, 5, 1, 3, 2, 2, guard_bits=0, acc_width=10),
                      align=align, primitives=primitives)
    assert {a.primitives for a in dut._accs} == {acc}
    assert dut.latency == dut._dots[0].latency + dut._accs[0].latency


# The largest configuration runs one seed (the slowest case of the file; the MXFP engines'
# tests in test_mxfp_linear.py took its second seed's time).
@pytest.mark.parametrize(("seed", "x_bits", "w_bits", "exp_bits", "block", "k_len", "rows",
                          "lanes", "guard_bits"), [
    (seed, *p) for p in [(2, 2, 8, 1, 3, 2, 1, 8), (6, 4, 8, 4, 10, 4, 2, 0),
                         (4, 6, 3, 3, 3, 3, 3, 2)] for seed in (1, 2)] + [
    (1, 8, 8, 5, 16, 64, 4, 4, 8),
])
def test_amaranth_sim_fp32_output_matches_golden(seed, x_bits, w_bits, exp_bits, block, k_len,
                                                 rows, lanes, guard_bits):
    p = params(x_bits, w_bits, exp_bits, block, k_len, rows, lanes, guard_bits,
               output="fp32")
    model = model_for({"top": "linear", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(seed), 8)
    want = model.expected(stim)
    r = run_stream_sim(MXIntLinear(**p), stim, want, seed=seed)
    assert (r["mismatches"], r["missing"], r["protocol_errors"], r["timed_out"]) == \
        (0, 0, [], False), f"seed {seed}: {r['reports']}"
    assert r["checked"] == len(want["o"])


def test_fp32_model_is_accum_model_through_dequantiser():
    """The fp32 expectation is the accum expectation converted lane by lane."""
    p = params(6, 4, 8, 4, 10, 4, 2)
    accum = model_for({"top": "linear", "parameters": p})
    fp32 = model_for({"top": "linear", "parameters": {**p, "output": "fp32"}})
    stim = accum.stimuli(torch.Generator().manual_seed(9), 6)
    conv = model_for({"top": "dequant", "parameters": {
        "source": "accum", "a_bits": 6, "b_bits": 4, "exp_bits": 8, "block": 4,
        "guard_bits": 8, "acc_width": accum.acc_width}})
    flat = [{"sum": s, "exponent": e, "nan": f} for o in accum.expected(stim)["o"]
            for s, e, f in zip(o["sum"], o["exponent"], o["nan"], strict=True)]
    bits = [b for o in fp32.expected(stim)["o"] for b in o["bits"]]
    assert bits == [o["bits"] for o in conv.expected({"i": flat})["o"]]
    assert QUIET_NAN in bits and len(set(bits)) > 10


@pytest.mark.parametrize(("seed", "x_bits", "w_bits", "exp_bits", "block", "k_len", "rows",
                          "lanes"), [
    (seed, *p) for p in [(2, 2, 8, 1, 3, 2, 1), (6, 4, 8, 4, 10, 4, 2), (4, 6, 8, 3, 3, 3, 3),
                         (6, 6, 8, 16, 100, 2, 1)] for seed in (1, 2)] + [
    (2, 8, 8, 5, 16, 64, 4, 4),  # the largest: one seed (as above)
])
def test_amaranth_sim_matches_golden(seed, x_bits, w_bits, exp_bits, block, k_len, rows, lanes):
    p = params(x_bits, w_bits, exp_bits, block, k_len, rows, lanes)
    model = model_for({"top": "linear", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(seed), 6)
    r = run_stream_sim(MXIntLinear(**p), stim, model.expected(stim), seed=seed)
    assert (r["mismatches"], r["missing"], r["protocol_errors"], r["timed_out"]) == \
        (0, 0, [], False), f"seed {seed}: {r['reports']}"


@pytest.mark.parametrize(("x_bits", "w_bits", "exp_bits", "block", "k_len", "rows", "lanes",
                          "output"), [
    (6, 4, 8, 4, 10, 4, 2, "accum"), (4, 6, 8, 3, 9, 3, 3, "fp32"),
])
def test_amaranth_sim_interleave_matches_golden(x_bits, w_bits, exp_bits, block, k_len, rows,
                                                lanes, output):
    """Lanes with two partial sums each: golden.linear_blocks with partial_sums=2 (which
    differs from one sum in the low bits), odd block counts (3), 2 and 3 lanes, idle inputs
    and back-pressure."""
    p = {**params(x_bits, w_bits, exp_bits, block, k_len, rows, lanes, output=output),
         "align": "interleave"}
    dut = MXIntLinear(**p)
    assert dut.latency == dut._dots[0].latency + 7 + (7 if output == "fp32" else 0)
    model = model_for({"top": "linear", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(3), 6)
    r = run_stream_sim(dut, stim, model.expected(stim), seed=3)
    assert (r["mismatches"], r["missing"], r["protocol_errors"], r["timed_out"]) == \
        (0, 0, [], False), r["reports"]


def test_golden_lossless_equals_exact_product():
    """With equal exponents nothing is dropped: golden.linear is the exact W x of the
    quantised values."""
    fw, fx = MXIntFormat(6, 8, 4), MXIntFormat(5, 8, 4)
    gen = torch.Generator().manual_seed(3)
    w = quantize(torch.randn(3, 12, generator=gen), fw)
    x = quantize(torch.randn(12, generator=gen), fx)
    w = type(w)(w.mantissa, torch.full_like(w.exponent, 127), fw, w.shape, w.axis)
    x = type(x)(x.mantissa, torch.full_like(x.exponent, 126), fx, x.shape, x.axis)
    y = linear(w, x, guard_bits=0, acc_width=40)
    for n in range(3):
        exact = sum(Fraction(int(a) * int(b)) for a, b in
                    zip(w.mantissa[n].flatten().tolist(), x.mantissa.flatten().tolist(),
                        strict=True)) * Fraction(2) ** (127 - 127 - 4 + 126 - 127 - 3)
        assert Fraction(float(linear_value(y, fw, fx, guard_bits=0)[n])) == exact


@pytest.mark.parametrize("output", ["accum", "fp32"])
@pytest.mark.parametrize(("bits", "block", "k_len"), [(4, 16, 256), (6, 16, 256), (8, 32, 96)])
def test_torch_linear_within_documented_bound(bits, block, k_len, output):
    """golden.linear of a quantised nn.Linear is within the documented bound of the float
    result: for each product a one-ULP quantisation error on each operand, plus the
    accumulator's (nb - 1) * 2**(E_out - G) alignment loss, plus for fp32 output half an
    fp32 ULP of the result (2**-24 relative, 2**-150 below the normal range)."""
    p = params(bits, bits, 8, block, k_len, 8, 2)
    model = model_for({"top": "linear", "parameters": p})
    wq, xq, ref = model.torch_linear_case(seed=bits)
    y = linear(wq, xq, guard_bits=8, acc_width=model.acc_width)
    got = linear_value(y, wq.fmt, xq.fmt, guard_bits=8)
    half_ulp = torch.zeros_like(got)
    if output == "fp32":
        bits32 = linear_fp32(y, wq.fmt, xq.fmt, guard_bits=8)
        got = bits32.to(torch.int32).view(torch.float32).double()
        half_ulp = got.abs() * 2.0 ** -24 + 2.0 ** -150
    ulp_w = torch.exp2((wq.exponent - wq.fmt.bias - wq.fmt.frac_bits).double()).repeat_interleave(
        block, dim=-1)[:, :k_len]
    ulp_x = torch.exp2((xq.exponent - xq.fmt.bias - xq.fmt.frac_bits).double()).repeat_interleave(
        block)[:k_len]
    w_hat = wq.mantissa.reshape(wq.mantissa.shape[0], -1)[:, :k_len].double() * ulp_w
    x_hat = xq.mantissa.reshape(-1)[:k_len].double() * ulp_x
    # |W - W_hat| <= ulp_w and |x - x_hat| <= ulp_x (half an ULP from rounding, up to one
    # where the block maximum saturates), so |W x - W_hat x_hat| <= |W_hat| ulp_x
    # + ulp_w (|x_hat| + ulp_x) per term.
    quant = (w_hat.abs() * ulp_x + ulp_w * (x_hat.abs() + ulp_x)).sum(-1)
    nb = -(-k_len // block)
    scale = y.exponent - 8 - 2 * wq.fmt.bias - wq.fmt.frac_bits - xq.fmt.frac_bits
    accum = (nb - 1) * torch.exp2(scale.double() + 8)  # (nb - 1) units of 2**(E_out - G)
    bound = quant + accum + half_ulp + 1e-5 * ref.abs().double()
    err = (got - ref.double()).abs()
    assert bool((err <= bound).all()), f"error {err} above bound {bound}"
    if bits == 8:
        # The check can fail: with 8-bit operands the bound is tight enough that an engine
        # with two lanes swapped (rows 0 and 1 exchanged) is caught.
        swapped = got.clone()
        swapped[[0, 1]] = got[[1, 0]]
        assert not bool(((swapped - ref.double()).abs() <= bound).all())


# (6-bit k16 lanes run under Verilator in test_model_hil's MiniLM layer, 4 lanes, K 384)
LINEAR_VERILATOR = [params(2, 8, 5, 1, 3, 2, 2),
                    params(8, 4, 8, 8, 20, 4, 4, guard_bits=4),  # K: 2.5 blocks, the last padded
                    # two lanes of align="lookahead" accumulators in lockstep, W = in_width
                    # + G = 10: the all -max product (-2 x -128 per block) saturates high
                    {**params(2, 8, 5, 1, 3, 2, 2, guard_bits=0, acc_width=10),
                     "align": "lookahead"},
                    # the same with primitives="ecp5": the dot products' heaps and the
                    # accumulators' loops from ECP5 cells (Yosys' cells_sim.v), the
                    # accumulators' split loop (four chains, the lost carry) at W = 10
                    {**params(2, 8, 5, 1, 3, 2, 2, guard_bits=0, acc_width=10),
                     "align": "lookahead", "primitives": "ecp5"},
                    # last: the fp32 engine that test_llm's hardware-in-the-loop run shares
                    params(6, 4, 8, 4, 10, 4, 2, guard_bits=0, output="fp32")]


@pytest.mark.parametrize("p", LINEAR_VERILATOR, ids=lambda p: (
    "x{x_bits}w{w_bits}e{exp_bits}k{block}K{k_len}N{rows}P{lanes}_{output}".format(**p)
    + (f"_{p['align']}" if "align" in p else "")
    + (f"_{p['primitives']}" if "primitives" in p else "")))
def test_verilator_matches_golden(p, sim_build):
    seed = 7 + p["block"]
    s = simulate("linear", p, seed=seed, vectors=30, build_root=sim_build)
    print(f"seed {seed}: {s['checked']} checked in {s['cycles']} cycles")
    assert (s["mismatches"], s["missing"], s["protocol_errors"], s["timed_out"]) == \
        (0, 0, [], False), f"replay with seed {seed}: {s['reports']}"
    if p.get("align") == "lookahead":
        model = model_for({"top": "linear", "parameters": p})
        want = model.expected(model.stimuli(torch.Generator().manual_seed(seed), 30))["o"]
        assert s["checked"] == len(want)
        assert want[1]["sum"] == [(1 << (p["acc_width"] - 1)) - 1] * p["lanes"]


@pytest.mark.parametrize("p", [LINEAR_VERILATOR[0], LINEAR_VERILATOR[-1]],
                         ids=["accum", "fp32"])
def test_verilator_fault_is_caught(p, sim_build):
    s = simulate("linear", p, seed=3, vectors=5, build_root=sim_build, fault="lsb")
    assert s["mismatches"] > 0
