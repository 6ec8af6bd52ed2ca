"""The accumulator and the linear engine with OCP MX minifloat operands (MXFP8/6/4, mixed
with each other and with MXINT): widths and offsets from the element formats, golden
against the exact values, Amaranth-simulator runs against golden (specials, back-pressure),
and one Verilator run."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from golden import quantize
from golden.accumulator import accum_in_width, check_acc_widths
from golden.dequant import QUIET_NAN, accum_scale_offset
from golden.dot import mx_dot_sum_width
from golden.format import MXFPFormat, MXIntFormat, operand_format
from golden.linear import linear, linear_fp32, linear_value
from golden.minifloat import ELEMENTS
from hw.accumulator import AccumParams, MXIntAccumulator
from hw.bitheap import SumOfProducts
from hw.dequantizer import MXIntDequantizer
from hw.linear import LinearParams, MXIntLinear
from sim.amaranth_bench import run_stream_sim
from sim.run import simulate
from sim.units import model_for

PAIRS = [(a, b) for a in ("int", *ELEMENTS) for b in ("int", *ELEMENTS)
         if (a, b) != ("e5m2", "e5m2")]


def _bits(element: str, bits: int = 6) -> int | None:
    return bits if element == "int" else None


# --- golden: widths and offsets from the element formats ---------------------------------------


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_accumulator_input_is_the_dot_products_sum(a, b):
    """One width, from the formats: the accumulator's input is the dot product's sum."""
    sop = SumOfProducts(a_bits=_bits(a), b_bits=_bits(b, 5), block=8,
                        a_element=None if a == "int" else ELEMENTS[a],
                        b_element=None if b == "int" else ELEMENTS[b])
    width = accum_in_width(a_element=a, b_element=b, a_bits=_bits(a), b_bits=_bits(b, 5),
                           block=8)
    assert width == sop.shape.width
    fa = operand_format(a, _bits(a), block=8)
    fb = operand_format(b, _bits(b, 5), block=8, side="b")
    assert width == mx_dot_sum_width(fa, fb)
    # c = G + 2*127 + f_a + f_b, f the smallest subnormal's exponent (m - 2 for MXINT)
    assert accum_scale_offset(exp_bits=8, guard_bits=3, a_element=a, b_element=b,
                              a_bits=_bits(a), b_bits=_bits(b, 5)) == \
        3 + 254 + fa.frac_bits + fb.frac_bits


def test_offsets_and_widths_of_named_formats():
    # E2M1: f = 1 + 1 - 1 = 1; E4M3: 7 + 3 - 1 = 9; E5M2: 15 + 2 - 1 = 16.
    assert accum_scale_offset(exp_bits=8, guard_bits=0, a_element="e2m1",
                              b_element="e2m1") == 256
    assert accum_scale_offset(exp_bits=8, guard_bits=8, a_element="e4m3",
                              b_element="e5m2") == 8 + 254 + 9 + 16
    # MXFP4 x MXFP4, k 32: |P| <= 12, 32 * 144 = 4608 -> 14 bits
    assert accum_in_width(a_element="e2m1", b_element="e2m1", block=32) == 14
    assert check_acc_widths(a_element="e2m1", b_element="e2m1", block=32, guard_bits=8,
                            acc_width=None) == (8, 30)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"a_element": "e5m2", "b_element": "e5m2"},
     r"b_element 'e5m2' with E5M2 activations at block 4: the dot results are 67 bits wide, "
     r"beyond the accumulator's 62; E5M2 pairs with every other format"),
    ({"a_element": "e2m1", "exp_bits": 5},
     r"exp_bits must be 8 \(the E8M0 scale\) when a_element is a minifloat \('e2m1'\), not 5"),
    ({"a_element": "e2m1", "a_bits": 4},
     r"a_bits applies only with a_element='int', not a_element='e2m1': leave it out"),
    ({"b_element": "e3m3"}, r"b_element must be one of 'int', 'e5m2', .*not 'e3m3'"),
    ({"a_element": "e4m3", "b_element": "e5m2", "block": 32, "guard_bits": 20},
     r"guard_bits must be from 0 to 6, not 20"),
])
def test_accumulator_bad_parameters(kwargs, match):
    p = {"a_bits": 6, "b_bits": 6, "block": 4, **kwargs}
    for side in ("a", "b"):
        if p.get(f"{side}_element", "int") != "int" and f"{side}_bits" not in kwargs:
            del p[f"{side}_bits"]
    with pytest.raises(ValueError, match=match):
        AccumParams(**p)


def test_golden_refuses_dot_results_wider_than_the_accumulator():
    with pytest.raises(ValueError, match=r"the dot results of E5M2 x E5M2 at block 4 are 67 "
                                         r"bits wide, beyond the accumulator's 62"):
        check_acc_widths(a_element="e5m2", b_element="e5m2", block=4, guard_bits=0,
                         acc_width=None)


def test_linear_bad_parameters():
    with pytest.raises(ValueError, match=r"exp_bits must be 8 \(the E8M0 scale\) when "
                                         r"w_element is a minifloat \('e2m1'\), not 6"):
        LinearParams(x_bits=4, w_element="e2m1", exp_bits=6, block=4, rows=2)
    with pytest.raises(ValueError, match=r"x_bits applies only with x_element='int'"):
        LinearParams(x_element="e4m3", x_bits=8, w_bits=4, block=4, rows=2)


def test_mxint_records_keep_their_fields_and_names():
    """MXINT designs keep their manifests' parameters and names (the element fields are
    left out at their default)."""
    acc = AccumParams(a_bits=6, b_bits=4, block=16)
    assert "a_element" not in acc.kwargs() and acc.name == "mxint_accum_a6_w4_e8_k16_g8_acc30"
    lin = LinearParams(x_bits=4, w_bits=4, block=2, rows=4)
    assert "x_element" not in lin.kwargs() and lin.name.startswith("mxint_linear_a4_w4_e8_k2")
    mx = LinearParams(x_element="e4m3", w_element="e2m1", block=32, rows=4, lanes=2)
    assert mx.name == "mx_linear_ae4m3_we2m1_k32_K128_N4_P2_g8"
    assert AccumParams(a_bits=8, b_element="e2m1", block=32).name == \
        "mx_accum_ai8_we2m1_k32_g8_acc33"


def test_golden_linear_is_the_exact_product_of_the_values():
    """Equal scales and enough guard bits: nothing is dropped, and golden.linear's value is
    the exact sum of the decoded minifloat products (MXFP4 weights x MXFP8 activations)."""
    fw, fx = MXFPFormat("e2m1", block=8), MXFPFormat("e4m3", block=8)
    gen = torch.Generator().manual_seed(4)
    w = quantize(torch.randn(3, 24, generator=gen), fw)
    x = quantize(torch.randn(24, generator=gen), fx)
    w = type(w)(w.codes, torch.full_like(w.exponent, 120), fw, w.shape, w.axis)
    x = type(x)(x.codes, torch.full_like(x.exponent, 130), fx, x.shape, x.axis)
    y = linear(w, x, guard_bits=0, acc_width=40)
    values = linear_value(y, fw, fx, guard_bits=0)
    bits = linear_fp32(y, fw, fx, guard_bits=0)
    wv = fw.element.values[w.codes.long()].double().reshape(3, -1)
    xv = fx.element.values[x.codes.long()].double().reshape(-1)
    for n in range(3):
        exact = sum(Fraction(float(a)) * Fraction(float(b))
                    for a, b in zip(wv[n].tolist(), xv.tolist(), strict=True)) \
            * Fraction(2) ** (120 - 127 + 130 - 127)
        assert Fraction(float(values[n])) == exact
        assert float(torch.tensor(int(bits[n]), dtype=torch.int64).to(torch.int32)
                     .view(torch.float32)) == float(exact)  # exact in float32 too


@pytest.mark.parametrize(("x_element", "w_element", "code", "nan"), [
    ("e4m3", "e2m1", 0x7F, True), ("e4m3", "e2m1", 0xFF, True),   # E4M3 NaN, both signs
    ("e4m3", "e2m1", 0x7E, False),                                # 448: a number
    ("e5m2", "e2m1", 0x7C, True), ("e5m2", "e2m1", 0xFC, True),   # E5M2 +-inf: NaN
    ("e5m2", "e2m1", 0x7D, True),                                 # E5M2 NaN
])
def test_golden_special_activation_codes_make_every_row_nan(x_element, w_element, code, nan):
    fx, fw = MXFPFormat(x_element, block=4), MXFPFormat(w_element, block=4)
    x_c = torch.tensor([[1, 2, 3, 4], [code, 0, 0, 0]])
    w_c = torch.tensor([[[1, 1, 1, 1], [2, 2, 2, 2]]] * 2)
    from golden.linear import linear_blocks
    y = linear_blocks(w_c, torch.full((2, 2), 127), x_c, torch.tensor([127, 127]), fw, fx,
                      guard_bits=8, acc_width=40)
    bits = linear_fp32(y, fw, fx, guard_bits=8)
    assert (bits == QUIET_NAN).tolist() == [nan, nan]


# --- Amaranth simulator ---------------------------------------------------------------------


def _check(run: dict, want: dict) -> None:
    assert (run["mismatches"], run["missing"], run["protocol_errors"], run["timed_out"]) == \
        (0, 0, [], False), run["reports"]
    assert run["checked"] == len(want["o"])


@pytest.mark.parametrize(("a", "b", "guard", "align"), [
    ("e2m1", "e2m1", 8, "stall"), ("e4m3", "e5m2", 2, "loop"), ("int", "e3m2", 4, "stall"),
])
def test_amaranth_sim_accumulator(a, b, guard, align):
    p = {"a_element": a, "b_element": b, "a_bits": _bits(a, 8), "b_bits": None,
         "block": 4, "guard_bits": guard, "align": align}
    p = {k: v for k, v in p.items() if v is not None}
    model = model_for({"top": "accum", "parameters": p})
    dut = MXIntAccumulator(**p)
    assert model.in_width == dut.in_width
    stim = model.stimuli(torch.Generator().manual_seed(3), 60)
    want = model.expected(stim)
    _check(run_stream_sim(dut, stim, want, seed=3), want)


def linear_params(x, w, *, block=4, k_len=10, rows=4, lanes=2, output="fp32", **kw):
    p = {"x_element": x, "w_element": w, "x_bits": _bits(x, 6), "w_bits": _bits(w, 4),
         "block": block, "k_len": k_len, "rows": rows, "lanes": lanes, "output": output, **kw}
    return {k: v for k, v in p.items() if v is not None}


@pytest.mark.parametrize("p", [
    linear_params("e2m1", "e2m1"),                                    # MXFP4
    linear_params("e2m3", "e2m3", output="accum"),                    # MXFP6
    linear_params("e3m2", "e3m2", block=3, k_len=7, rows=2, lanes=1),
    # MXFP8 E4M3 (its NaN codes) as gpt-oss runs it: MXFP4 weights, MXFP8 activations;
    # E5M2 (infinities, NaNs) in test_amaranth_sim_linear_specials_and_heavy_backpressure
    linear_params("e4m3", "e2m1"),
    linear_params("int", "e2m1", lanes=1, rows=2),                    # MXINT6 x MXFP4
    linear_params("e2m3", "int", output="accum"),                     # MXFP6 x MXINT4
], ids=lambda p: LinearParams(**p).name)
def test_amaranth_sim_linear(p):
    model = model_for({"top": "linear", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(5), 6)
    want = model.expected(stim)
    _check(run_stream_sim(MXIntLinear(**p), stim, want, seed=5), want)
    if p["output"] == "fp32":
        bits = [b for o in want["o"] for b in o["bits"]]
        assert QUIET_NAN in bits and len(set(bits)) > 5


def test_amaranth_sim_linear_specials_and_heavy_backpressure():
    """E5M2 infinities and NaNs in activations and weights, NaN scales, under more idle
    cycles and back-pressure than the default; a flipped expectation is caught."""
    p = linear_params("e5m2", "e2m1", block=2, k_len=4, guard_bits=6)
    model = model_for({"top": "linear", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(8), 4)
    want = model.expected(stim)
    codes = {c for x in stim["x"] for c in x["codes"]}
    assert {0x7C, 0xFC, 0x7D, 0xFF} <= codes  # +-inf, a NaN of each sign
    _check(run_stream_sim(MXIntLinear(**p), stim, want, seed=8, idle=0.6,
                          backpressure=0.7), want)
    bad = {"o": [{"bits": [want["o"][0]["bits"][0] ^ 1, *want["o"][0]["bits"][1:]]},
                 *want["o"][1:]]}
    assert run_stream_sim(MXIntLinear(**p), stim, bad, seed=8)["mismatches"] == 1


def test_amaranth_sim_dequantiser_of_mxfp_accumulator_results():
    p = {"source": "accum", "a_element": "e4m3", "b_element": "e2m1", "block": 8,
         "guard_bits": 3}
    model = model_for({"top": "dequant", "parameters": p})
    dut = MXIntDequantizer(**p)
    assert model.acc_width == dut.acc_width == 3 + accum_in_width(
        a_element="e4m3", b_element="e2m1", block=8) + 8
    stim = model.stimuli(torch.Generator().manual_seed(2), 40)
    stim = {"i": stim["i"][::7]}  # every seventh directed and random input: a quick check
    want = model.expected(stim)
    _check(run_stream_sim(dut, stim, want, seed=2), want)


def test_linear_fp32_model_is_accum_model_through_dequantiser():
    p = linear_params("e4m3", "e2m1", output="accum")
    accum = model_for({"top": "linear", "parameters": p})
    fp32 = model_for({"top": "linear", "parameters": {**p, "output": "fp32"}})
    stim = accum.stimuli(torch.Generator().manual_seed(9), 4)
    conv = model_for({"top": "dequant", "parameters": {
        "source": "accum", "a_element": "e4m3", "b_element": "e2m1", "block": 4,
        "guard_bits": 8, "acc_width": accum.acc_width}})
    flat = [{"sum": s, "exponent": e, "nan": f} for o in accum.expected(stim)["o"]
            for s, e, f in zip(o["sum"], o["exponent"], o["nan"], strict=True)]
    bits = [b for o in fp32.expected(stim)["o"] for b in o["bits"]]
    assert bits == [o["bits"] for o in conv.expected({"i": flat})["o"]]


# --- Verilator: one representative engine ------------------------------------------------------


#: The engine of the hardware-in-the-loop test of an MXFP4 checkpoint
#: (tests/test_model_hil.py), which shares this Verilator build: MXFP4 at k32, the
#: checkpoint layout's block, two lanes.
MXFP4_K32 = linear_params("e2m1", "e2m1", block=32, k_len=64, rows=4, lanes=2)


def test_verilator_linear_mxfp4_k32(sim_build):
    p = LinearParams(**MXFP4_K32).kwargs()
    s = simulate("linear", p, seed=11, vectors=6, build_root=sim_build)
    assert (s["mismatches"], s["missing"], s["protocol_errors"], s["timed_out"]) == \
        (0, 0, [], False), s["reports"]
    assert s["checked"] == 2 * (5 + 6)  # directed and random products, 2 groups each


def test_mxint_format_is_the_mxint_record():
    """``operand_format("int", m)`` is MXINT(m): the engine's MXINT path is the one it had."""
    assert operand_format("int", 6, exp_bits=5, block=4) == MXIntFormat(6, 5, 4)


@pytest.mark.parametrize("top", ["dot", "accum", "linear"])
def test_formats_benchmark_builds_each_unit_record(top):
    """benchmarks.formats --top: each format's record of each unit (no synthesis here)."""
    from benchmarks.formats import unit_params
    from hw.unit import unit

    names = {n: unit(top).record(**unit_params(top, n, 32)).name
             for n in ("mxfp4", "mxfp8_e4m3", "mxint8")}
    assert len(set(names.values())) == 3 and names["mxint8"].startswith("mxint_")
    assert unit_params("accum", "mxfp4", 32, levels_per_stage=3) == \
        {"a_element": "e2m1", "b_element": "e2m1", "block": 32}
    # levels_per_stage only when it is not the format's default (E4M3: 1, others 2).
    assert "levels_per_stage" not in unit_params("dot", "mxfp8_e4m3", 32, 1)
    assert unit_params("dot", "mxfp8_e4m3", 32, 2)["levels_per_stage"] == 2
    assert "levels_per_stage" not in unit_params("linear", "mxint8", 32, 2)
    with pytest.raises(ValueError, match="top must be one of dot, accum, linear, not 'adder'"):
        unit_params("adder", "mxfp4", 32)


@pytest.mark.parametrize("top", ["dot", "accum", "linear"])
def test_formats_benchmark_builds_mixed_pairs(top):
    """benchmarks.formats --formats A:B: operand a in A, b in B, the pair's default levels
    left out, each unit's record built (no synthesis here)."""
    from benchmarks.formats import pair_params, unit_params
    from hw.unit import unit

    p = pair_params(top, "mxfp8_e4m3:mxfp4", 32, levels_per_stage=2)
    record = unit(top).record(**p)
    a, b = ("x", "w") if top == "linear" else ("a", "b")
    assert (getattr(record, f"{a}_element"), getattr(record, f"{b}_element")) == \
        ("e4m3", "e2m1")
    assert pair_params(top, "mxfp4", 32) == unit_params(top, "mxfp4", 32)
    assert pair_params("dot", "mxint8:mxfp4", 32) == \
        {"a_element": "int", "a_bits": 8, "b_element": "e2m1", "block": 32}
    assert pair_params("dot", "mxfp8_e4m3:mxfp4", 32, 2)["levels_per_stage"] == 2
    assert "levels_per_stage" not in pair_params("dot", "mxfp8_e4m3:mxfp4", 32, 1)
    assert pair_params("dot", "mxint8:mxfp4", 32, 1)["levels_per_stage"] == 1
    assert "levels_per_stage" not in pair_params("dot", "mxfp8_e5m2:mxfp8_e4m3", 32, 1)


@pytest.mark.parametrize(("text", "message"), [
    ("mxfp4:fp4", "not 'fp4'"), ("mxfp4:mxfp4:mxfp4", "a pair of formats is A:B"),
    ("mxfp8_e4m3:", "not ''")])
def test_formats_benchmark_refuses_a_bad_pair(text, message, capsys):
    """A bad --formats pair: exit 2, one line naming it."""
    from benchmarks.formats import main

    with pytest.raises(SystemExit) as exc:
        main(["--formats", text, "--no-pnr"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and "Traceback" not in err
