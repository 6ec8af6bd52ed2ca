"""golden.nn on OCP MX minifloat operands (issue 16): MXLinear, MXConv and quantize_model
with MXFP weights and/or activations, against the engine's golden model, golden.linear."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import golden.nn as gnn
from golden import MXFPTensor, dequantize, parse_format, quantize
from golden.nn import MXConv, MXLinear, mx_linear_fp32, quantize_model
from tests.test_nn import engine_patterns, mismatches, patterns, wide_case
from tests.test_nn_dropin import assert_engine_exact, capture, engine_output, relative_error

#: (weights, activations, block, guard_bits, spread): every element format on one side or
#: the other, W != A pairs, MXINT x MXFP both ways, the widest pairs (E5M2, whose exact sums
#: exceed 2**53 and take the integer path) and the rceil scale.
PAIRS = [
    ("mxfp4", "mxfp4", 32, 8, 6),
    ("mxfp4", "mxfp8_e4m3", 32, 8, 6),         # gpt-oss: MXFP4 weights, MXFP8 activations
    ("mxfp6_e2m3", "mxfp6_e3m2", 16, 8, 4),
    ("mxfp8_e4m3", "mxfp8_e4m3", 32, 3, 5),
    ("mxint8", "mxfp8_e5m2", 32, 8, 6),
    ("mxfp4", "mxint6", 16, 8, 4),
    ("mxfp8_e5m2", "mxfp4", 8, 8, 6),
    ("mxfp8_e4m3", "mxfp8_e5m2", 32, 6, 6),      # 56-bit dot results: at most 6 guard bits
    ("mxfp6_e3m2:rceil", "mxfp8_e4m3:rceil", 32, 8, 6),
]


def fmt(name: str, block: int):
    name, _, scale = name.partition(":")
    return parse_format(name, block=block, scale_rounding=scale or "floor")


@pytest.mark.parametrize(("w_name", "x_name", "block", "guard_bits", "spread"), PAIRS)
def test_mx_linear_fp32_equals_golden_linear(w_name, x_name, block, guard_bits, spread):
    seed = 16000 + block + guard_bits + spread
    print(f"seed {seed}")
    w, x = wide_case(seed, 20, 100, 10, spread)
    fw, fx = fmt(w_name, block), fmt(x_name, block)
    wq, xq = quantize(w, fw, axis=1), quantize(x, fx, axis=1)
    _, acc = gnn._acc_widths(fw, fx, guard_bits=guard_bits, acc_width=None)
    got = mx_linear_fp32(wq, xq, guard_bits=guard_bits, acc_width=acc)
    want = engine_patterns(wq, xq, guard_bits=guard_bits, acc_width=acc)
    assert mismatches(got, want) == 0
    lossy = gnn._lossy(wq, xq, guard_bits=guard_bits)
    assert 0 < int(lossy.sum()) < lossy.numel()  # both paths are candidates


def minilm_like(seed: int, *, tokens: int = 12, k_len: int = 384, rows: int = 48):
    """Weights ~ N(0, 0.05) and activations like a BERT layer's input: LayerNorm-scale
    values, a few outlier channels 30x larger, a [CLS] token with larger outliers still."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, k_len, generator=gen) * 0.05
    x = torch.randn(tokens, k_len, generator=gen)
    outliers = torch.randperm(k_len, generator=gen)[:4]
    x[:, outliers] *= 30.0
    x[0, outliers] *= 8.0
    return w, x


@pytest.mark.parametrize(("w_name", "x_name"), [("mxfp4", "mxfp8_e4m3"), ("mxfp4", "mxfp4"),
                                                ("mxfp6_e2m3", "mxint8")])
def test_minilm_like_layer_equals_golden_linear(w_name, x_name):
    w, x = minilm_like(3)
    layer = nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        layer.weight.copy_(w)
    mx = MXLinear(layer, weights=fmt(w_name, 32), activations=fmt(x_name, 32))
    with torch.no_grad():
        y = mx(x)
    assert torch.equal(patterns(y), patterns(engine_output(mx, x)))
    # Near the float layer: the quantisation error of 4- to 8-bit elements.
    assert relative_error(y, layer(x).detach()) < 0.2


def special_tensor(fmt_name: str, codes: torch.Tensor, scale: int = 127) -> MXFPTensor:
    f = parse_format(fmt_name, block=codes.shape[-1])
    return MXFPTensor(codes=codes.reshape(codes.shape[0], 1, -1), exponent=torch.full(
        (codes.shape[0], 1), scale, dtype=torch.int32), fmt=f,
        shape=torch.Size((codes.shape[0], codes.shape[-1])), axis=1)


def specials_case():
    """E5M2 activations with an infinity code (token 1) and a NaN code (token 2), E4M3
    weights with a NaN code (row 2) and a NaN scale (row 3): those tokens' and rows'
    results are NaN, the others numbers."""
    gen = torch.Generator().manual_seed(7)
    x_codes = torch.randint(0, 0x7B, (4, 8), generator=gen, dtype=torch.int32)
    x_codes[1, 3], x_codes[2, 5] = 0x7C, 0xFE     # +inf, a NaN
    w_codes = torch.randint(0, 0x7E, (4, 8), generator=gen, dtype=torch.int32)
    w_codes[2, 0] = 0xFF                           # E4M3 NaN
    xq, wq = special_tensor("mxfp8_e5m2", x_codes), special_tensor("mxfp8_e4m3", w_codes)
    wq.exponent[3, 0] = 255                        # NaN scale
    return wq, xq


def test_special_codes_make_results_nan():
    wq, xq = specials_case()
    _, acc = gnn._acc_widths(wq.fmt, xq.fmt, guard_bits=6, acc_width=None)
    got = mx_linear_fp32(wq, xq, guard_bits=6, acc_width=acc)
    assert mismatches(got, engine_patterns(wq, xq, guard_bits=6, acc_width=acc)) == 0
    nan = torch.zeros(4, 4, dtype=torch.bool)
    nan[1:3, :] = True
    nan[:, 2:] = True
    assert torch.equal(got.isnan(), nan)
    assert int((patterns(got[nan]) != 0x7FC00000).sum()) == 0


def test_injected_faults_are_caught(monkeypatch):
    """A golden.nn that forgets the element specials (only the NaN scale makes a block
    NaN), and one flipped expected bit, must both show as mismatches."""
    wq, xq = specials_case()
    _, acc = gnn._acc_widths(wq.fmt, xq.fmt, guard_bits=6, acc_width=None)
    want = engine_patterns(wq, xq, guard_bits=6, acc_width=acc)
    got = mx_linear_fp32(wq, xq, guard_bits=6, acc_width=acc)
    flipped = want.clone()
    flipped[0, 0] ^= 1
    assert mismatches(got, flipped) == 1
    monkeypatch.setattr(gnn, "_nan_blocks", lambda q: q.exponent == q.fmt.nan_code)
    assert mismatches(mx_linear_fp32(wq, xq, guard_bits=6, acc_width=acc), want) > 0


def double_rounding_case():
    """E5M2 activations x E4M3 weights, two blocks at scale 127: in units of the smallest
    product the exact sum is V = 32 * 2**31 * 2**17 + 2**12 * 2**17 + 1 * 1
    = 2**53 + 2**29 + 1, just above a float32 tie (half an ulp of 2**53 is 2**29). float64
    holds it only as 2**53 + 2**29, which float32 then rounds down to even: the float64
    product would be wrong by one float32 ulp, so the pair must take the integer path."""
    fx, fw = parse_format("mxfp8_e5m2"), parse_format("mxfp8_e4m3")
    x = torch.zeros(1, 64, dtype=torch.int32)
    w = torch.zeros(1, 64, dtype=torch.int32)
    x[0, :32], w[0, :32] = 0x78, 0x78        # P = 2**31 and 2**17
    x[0, 32], w[0, 32] = 0x2C, 0x78          # P = 2**12 and 2**17
    x[0, 33], w[0, 33] = 0x01, 0x01          # P = 1 and 1
    assert fx.element.decode(torch.tensor([0x78, 0x2C, 0x01])).tolist() == [2**31, 2**12, 1]
    assert fw.element.decode(torch.tensor([0x78, 0x01])).tolist() == [2**17, 1]

    def tensor(codes, f):
        return MXFPTensor(codes=codes.reshape(1, 2, 32), exponent=torch.full(
            (1, 2), 127, dtype=torch.int32), fmt=f, shape=torch.Size((1, 64)), axis=1)

    return tensor(w, fw), tensor(x, fx)


def test_sums_beyond_float64_take_the_integer_path(monkeypatch):
    """The pair of :func:`double_rounding_case` is lossless and within the accumulator, so
    only the per-pair float64 bound (golden.nn._too_wide) sends it to the integer path;
    with that bound disabled (an injected fault) the result is one ulp off."""
    wq, xq = double_rounding_case()
    guard, acc = gnn._acc_widths(wq.fmt, xq.fmt, guard_bits=None, acc_width=None)
    assert (guard, acc) == (6, 62)
    want = engine_patterns(wq, xq, guard_bits=guard, acc_width=acc)
    assert not bool(gnn._lossy(wq, xq, guard_bits=guard).any())
    assert bool(gnn._integer_pairs(wq, xq, guard_bits=guard, acc_width=acc).all())
    got = mx_linear_fp32(wq, xq, guard_bits=guard, acc_width=acc)
    assert mismatches(got, want) == 0
    assert float(got[0, 0]) == (2.0**53 + 2.0**30) * 2.0**-25  # rounded up, as exact
    monkeypatch.setattr(gnn, "_too_wide", lambda w, x, **kw: torch.zeros(
        (x.exponent.shape[0], w.exponent.shape[0]), dtype=torch.bool))
    assert mismatches(mx_linear_fp32(wq, xq, guard_bits=guard, acc_width=acc), want) == 1


def test_e5m2_pairs_mostly_take_the_float64_path():
    """MiniLM-like data with E5M2 activations: the per-pair bound keeps most pairs on the
    fast path (the formats' widths alone would send every pair to the integer path), and
    the results still equal golden.linear."""
    w, x = minilm_like(4, tokens=16, rows=24)
    layer = nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        layer.weight.copy_(w)
    mx = MXLinear(layer, weights=parse_format("mxfp8_e4m3"),
                  activations=parse_format("mxfp8_e5m2"))
    xq = mx.quantize_input(x)
    integer = gnn._integer_pairs(mx.w_q, xq, guard_bits=mx.guard_bits, acc_width=mx.acc_width)
    assert float(integer.float().mean()) < 0.5
    with torch.no_grad():
        assert torch.equal(patterns(mx(x)), patterns(engine_output(mx, x)))


def test_mx_linear_attributes_and_state_dict():
    torch.manual_seed(5)
    fp4, fp8 = parse_format("mxfp4", block=32), parse_format("mxfp8_e4m3", block=32)
    a = nn.Sequential(nn.Linear(64, 16), nn.GELU(), nn.Linear(16, 4, bias=False))
    b = copy.deepcopy(a)
    for m in (a, b):
        for p in m.parameters():
            nn.init.normal_(p)
    report = quantize_model(a, weights=fp4, activations=fp8, guard_bits=4)
    quantize_model(b, weights=fp4, activations=fp8, guard_bits=4)
    assert list(report) == ["0", "2"]
    mx = a[0]
    assert repr(mx) == ("MXLinear(in_features=64, out_features=16, bias=True, "
                        "weights=mxfp4_k32, activations=mxfp8_e4m3_k32, rounding='even', "
                        "guard_bits=4, acc_width=40)")
    assert isinstance(mx.w_q, MXFPTensor) and mx.w_q.fmt == fp4
    assert torch.equal(mx.weight, dequantize(mx.w_q))
    state = a.state_dict()
    assert sorted(state) == ["0.bias", "0.w_codes", "0.w_exponent", "2.w_codes",
                             "2.w_exponent"]
    assert int(state["0.w_codes"].max()) <= 15
    x = torch.randn(3, 64)
    assert not torch.equal(a(x), b(x))
    b.load_state_dict(state)
    assert torch.equal(patterns(a(x)), patterns(b(x)))
    assert torch.equal(a[0].weight, b[0].weight)
    # MXFP8 codes do not load into MXFP4 weights; a float tensor does not load either.
    c = nn.Sequential(nn.Linear(64, 16))
    quantize_model(c, weights=fp8, activations=fp8)
    with pytest.raises(RuntimeError, match=r"0.w_codes holds values outside 0 .. 15 of "
                                           r"mxfp4_k32: \d+ .. \d+; was it saved from an "
                                           r"MXLinear of another format\?"):
        b.load_state_dict({**c.state_dict(), "2.w_codes": state["2.w_codes"],
                           "2.w_exponent": state["2.w_exponent"]})
    assert torch.equal(b[0].w_codes, a[0].w_codes)
    with pytest.raises(RuntimeError, match=r"0.w_codes must be an integer tensor"):
        b.load_state_dict({**state, "0.w_codes": state["0.w_codes"].float()})


def test_conv_with_mxfp_operands():
    torch.manual_seed(6)
    conv = nn.Conv2d(4, 6, 3, padding=1)
    mx = MXConv(conv, weights=parse_format("mxfp6_e2m3", block=16),
                activations=parse_format("mxfp8_e4m3", block=16))
    x = torch.randn(2, 4, 5, 5)
    cols, _ = mx.unfold(x)
    want = engine_output(mx, cols).transpose(1, 2).reshape(2, 6, 5, 5)
    assert torch.equal(patterns(mx(x)), patterns(want))


def test_bert_with_mxfp_formats():
    from transformers import BertConfig, BertModel

    torch.manual_seed(12)
    model = BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=64, vocab_size=100,
                                 max_position_embeddings=32)).eval()
    ref = copy.deepcopy(model)
    report = quantize_model(model, weights=parse_format("mxfp4", block=32),
                            activations=parse_format("mxfp8_e4m3", block=32))
    assert len(report) == 13 and {r.status for r in report.layers} == {"engine"}
    assert "weights mxfp4_k32, activations mxfp8_e4m3_k32" in str(report)
    ids = torch.randint(0, 100, (2, 7))
    calls = capture(model)
    with torch.no_grad():
        out = model(ids, attention_mask=torch.ones_like(ids))
        want = ref(ids, attention_mask=torch.ones_like(ids))
    assert len(calls) == 13
    assert_engine_exact(calls)
    assert relative_error(out.last_hidden_state, want.last_hidden_state) < 0.2


@pytest.mark.parametrize(("weights", "activations", "kwargs", "match"), [
    ("mxfp8_e5m2", "mxfp8_e5m2", {}, r"the dot results of E5M2 x E5M2 at block 32 are 70 "
                                     r"bits wide, beyond the accumulator's 62"),
    ("mxfp8_e5m2", "mxfp8_e4m3", {"guard_bits": 7}, r"guard_bits must be from 0 to 6, not 7"),
])
def test_pairs_the_engine_refuses(weights, activations, kwargs, match):
    with pytest.raises(ValueError, match=match):
        MXLinear(nn.Linear(32, 4), weights=parse_format(weights),
                 activations=parse_format(activations), **kwargs)
    with pytest.raises(ValueError, match=match):
        quantize_model(nn.Sequential(nn.Linear(32, 4)), weights=parse_format(weights),
                       activations=parse_format(activations), **kwargs)



# --- The format-aware default of guard_bits (E5M2 operands) ------------------------------

@pytest.mark.parametrize(("x", "w", "block", "guard"), [
    ("int", "int", 32, 8), ("e4m3", "e2m1", 32, 8), ("e4m3", "e5m2", 32, 6),
    ("e5m2", "e4m3", 16, 7), ("e5m2", "e2m1", 32, 8), ("e5m2", "e3m2", 32, 8),
    ("e5m2", "int", 32, 8),
])
def test_guard_bits_default_fits_the_accumulator(x, w, block, guard):
    from golden.accumulator import MAX_ACC_WIDTH, accum_in_width, default_guard_bits
    from golden.minifloat import ELEMENTS
    from hw.linear import LinearParams

    ops = {"a_element": x, "b_element": w, "block": block,
           "a_bits": 8 if x == "int" else None, "b_bits": 8 if w == "int" else None}
    assert default_guard_bits(**ops) == guard == min(8, MAX_ACC_WIDTH - accum_in_width(**ops))
    fields = {"x_element": x, "w_element": w, "block": block, "rows": 4,
              **({"x_bits": 8} if x == "int" else {}), **({"w_bits": 8} if w == "int" else {})}
    record = LinearParams(**fields)
    assert record.guard_bits == guard and record.kwargs()["guard_bits"] == guard
    # The default and the explicit value it equals are one design; another value is kept.
    assert LinearParams(**fields, guard_bits=guard).name == record.name
    assert LinearParams(**fields, guard_bits=guard - 1).guard_bits == guard - 1
    with pytest.raises(ValueError, match=rf"guard_bits must be from 0 to "
                                         rf"{MAX_ACC_WIDTH - accum_in_width(**ops)}, not 63"):
        LinearParams(**fields, guard_bits=63)
    # golden.nn's default is the engine's.
    fmts = [parse_format("mxint8" if e == "int" else ELEMENTS[e].family, block=block)
            for e in (w, x)]
    mx = MXLinear(nn.Linear(block, 4), weights=fmts[0], activations=fmts[1])
    assert (mx.guard_bits, mx.acc_width) == (record.guard_bits, record.acc_width)


def test_e5m2_linear_from_the_command_line_without_guard_bits():
    """``--aformat mxfp8_e4m3 --wformat mxfp8_e5m2`` needed ``--guard-bits 0..6`` before;
    the default now fits, and an explicit value is kept."""
    from cli.units import unit_record
    from hw.generate import build_parser

    parser = build_parser()
    base = ["--top", "linear", "--aformat", "mxfp8_e4m3", "--wformat", "mxfp8_e5m2",
            "--block", "32", "--rows", "4"]
    assert unit_record(parser.parse_args(base), parser).guard_bits == 6
    assert unit_record(parser.parse_args([*base, "--guard-bits", "3"]),
                       parser).guard_bits == 3


def test_tied_mxfp_weights_share_codes_and_scales():
    a, b = nn.Linear(32, 32), nn.Linear(32, 32)
    b.weight = a.weight
    model = nn.Sequential(a, b)
    quantize_model(model, weights=parse_format("mxfp4"), activations=parse_format("mxfp4"))
    assert model[0].w_codes is model[1].w_codes
    assert model[0].w_exponent is model[1].w_exponent
    assert model[0].w_dequantized is model[1].w_dequantized
