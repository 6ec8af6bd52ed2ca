"""golden.nn as a drop-in: MXLinear reads like nn.Linear, and quantize_model leaves
torch's and Hugging Face's transformers working, with a report of what it did."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from golden import MXIntFormat, dequantize, quantize
from golden.nn import (
    LayerReport,
    MXConv,
    MXLinear,
    QuantizeReport,
    _fused_kernels_off,
    quantize_model,
)
from tests.test_nn import engine_patterns, patterns

FMT8 = MXIntFormat(8, 8, 16)
FMT6 = MXIntFormat(6, 8, 16)


def engine_output(mx: MXLinear, x: torch.Tensor) -> torch.Tensor:
    """What the engine gives for ``x`` (golden.linear, token by token) plus the bias in
    float32: the independent reference for an MXLinear's forward."""
    xq = quantize(x.reshape(-1, mx.in_features), mx.activations, axis=1, rounding=mx.rounding)
    raw = engine_patterns(mx.w_q, xq, guard_bits=mx.guard_bits, acc_width=mx.acc_width)
    y = raw.to(torch.int32).view(torch.float32)
    if mx.bias is not None:
        y = y + mx.bias.to(torch.float32)
    return y.reshape(*x.shape[:-1], mx.out_features)


def capture(model: nn.Module) -> list[tuple[MXLinear, torch.Tensor, torch.Tensor]]:
    """Record (layer, input, output) of every MXLinear call (the hooks stay attached)."""
    calls = []
    for m in model.modules():
        if isinstance(m, MXLinear):
            m.register_forward_hook(lambda mod, args, out: calls.append((mod, args[0], out)))
    return calls


def assert_engine_exact(calls) -> None:
    assert calls
    for mx, x, y in calls:
        assert torch.equal(patterns(y), patterns(engine_output(mx, x)))


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got - want).norm() / want.norm())


# --- MXLinear reads like nn.Linear ---------------------------------------------------

def test_mx_linear_attributes():
    torch.manual_seed(1)
    layer = nn.Linear(40, 12)
    mx = MXLinear(layer, weights=FMT6, activations=FMT8)
    want = dequantize(quantize(layer.weight, FMT6, axis=1))
    assert torch.equal(mx.weight, want) and mx.weight.dtype == torch.float32
    assert mx.weight.shape == layer.weight.shape == (12, 40)
    assert not torch.equal(mx.weight, layer.weight.detach())  # it is quantised
    assert torch.equal(mx.bias, layer.bias.detach())
    assert (mx.in_features, mx.out_features, mx.source) == (40, 12, "Linear")
    assert repr(mx) == ("MXLinear(in_features=40, out_features=12, bias=True, "
                        "weights=mxint6e8k16, activations=mxint8e8k16, rounding='even', "
                        "guard_bits=8, acc_width=34)")
    # What the layer computes is x @ weight.T up to the activations' rounding.
    x = torch.randn(5, 40)
    xd = dequantize(quantize(x, FMT8))
    assert torch.allclose(mx.forward_raw(x), xd @ mx.weight.T, rtol=1e-5, atol=1e-6)
    for value in (torch.zeros(12, 40), nn.Parameter(torch.zeros(12, 40))):
        with pytest.raises(AttributeError, match=r"MXLinear.weight is read-only"):
            mx.weight = value
    assert torch.equal(mx.weight, want)


def test_state_dict_round_trip():
    torch.manual_seed(2)
    a = nn.Sequential(nn.Linear(32, 16), nn.GELU(), nn.Linear(16, 4, bias=False))
    b = nn.Sequential(nn.Linear(32, 16), nn.GELU(), nn.Linear(16, 4, bias=False))
    quantize_model(a, weights=FMT6, activations=FMT8)
    quantize_model(b, weights=FMT6, activations=FMT8)
    x = torch.randn(3, 32)
    assert not torch.equal(a(x), b(x))
    state = a.state_dict()
    assert sorted(state) == ["0.bias", "0.w_exponent", "0.w_mantissa", "2.w_exponent",
                             "2.w_mantissa"]
    b.load_state_dict(state)
    assert torch.equal(a(x), b(x))
    assert torch.equal(a[0].weight, b[0].weight) and torch.equal(a[2].weight, b[2].weight)


def test_state_dict_of_another_format_is_refused():
    torch.manual_seed(3)
    a, c = nn.Sequential(nn.Linear(32, 16)), nn.Sequential(nn.Linear(32, 16))
    quantize_model(a, weights=FMT8, activations=FMT8)
    quantize_model(c, weights=MXIntFormat(4, 8, 16), activations=FMT8)
    before = c[0].w_mantissa.clone()
    with pytest.raises(RuntimeError, match=r"0.w_mantissa holds values outside -7 .. 7 of "
                                           r"mxint4e8k16: -\d+ .. \d+"):
        c.load_state_dict(a.state_dict())
    assert torch.equal(c[0].w_mantissa, before)
    bad = a.state_dict()
    bad["0.w_exponent"] = bad["0.w_exponent"].float()
    with pytest.raises(RuntimeError, match=r"0.w_exponent must be an integer tensor, not "
                                           r"torch.float32"):
        a.load_state_dict(bad)


def test_to_dtype_and_device():
    torch.manual_seed(4)
    layer = nn.Linear(32, 8)
    mx = MXLinear(layer, weights=FMT8, activations=FMT8)
    x = torch.randn(4, 32)
    y, w = mx(x), mx.weight.clone()
    assert mx.to("cpu") is mx and torch.equal(mx(x), y)
    mx.to(torch.float64)
    assert mx.weight.dtype == mx.bias.dtype == torch.float64
    assert mx.w_mantissa.dtype == mx.w_exponent.dtype == torch.int32
    assert torch.equal(mx.weight, w.double()) and torch.equal(mx(x), y)
    assert mx(x.double()).dtype == torch.float64
    mx.to(torch.bfloat16)
    assert mx.weight.dtype == mx.bias.dtype == torch.bfloat16
    assert torch.equal(mx.weight.float(), w)  # 8-bit mantissas are exact in bfloat16
    bias_bf16 = layer.bias.detach().to(torch.bfloat16).float()
    assert torch.equal(mx(x), mx.forward_raw(x) + bias_bf16)
    assert mx(x.bfloat16()).dtype == torch.bfloat16


def test_transformers_conv1d_is_the_transposed_linear():
    from transformers.pytorch_utils import Conv1D

    torch.manual_seed(5)
    conv = Conv1D(12, 40)  # nf = 12 outputs, nx = 40 inputs, weight (40, 12)
    conv.bias.data.normal_()
    linear = nn.Linear(40, 12)
    with torch.no_grad():
        linear.weight.copy_(conv.weight.T)
        linear.bias.copy_(conv.bias)
    a = MXLinear(conv, weights=FMT6, activations=FMT6)
    b = MXLinear(linear, weights=FMT6, activations=FMT6)
    assert a.source == "Conv1D" and a.weight.shape == (12, 40)
    assert torch.equal(a.w_mantissa, b.w_mantissa) and torch.equal(a.weight, b.weight)
    x = torch.randn(2, 3, 40)
    assert torch.equal(a(x), b(x))
    assert torch.equal(patterns(a(x)), patterns(engine_output(a, x)))
    assert relative_error(a(x), conv(x).detach()) < 0.05


# --- Convolutions: the engine on the unfolded input -------------------------------------

def conv_reference(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """An MX convolution written out: pad as the layer pads, ``F.unfold``, then the golden
    linear engine (:func:`engine_output`) with the weight as an ``(out, in * kernel)``
    matrix, one token per output position."""
    one_d = isinstance(conv, nn.Conv1d)
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    xp = nn.functional.pad(x, conv._reversed_padding_repeated_twice, mode=mode)
    k, d, s = conv.kernel_size, conv.dilation, conv.stride
    if one_d:
        xp, k, d, s = xp.unsqueeze(2), (1, *k), (1, *d), (1, *s)
    cols = nn.functional.unfold(xp, k, dilation=d, stride=s).transpose(1, 2)
    linear = nn.Linear(cols.shape[-1], conv.out_channels, bias=conv.bias is not None)
    with torch.no_grad():
        linear.weight.copy_(conv.weight.reshape(conv.out_channels, -1))
        if conv.bias is not None:
            linear.bias.copy_(conv.bias)
    y = engine_output(MXLinear(linear, weights=FMT6, activations=FMT8), cols).transpose(1, 2)
    size = [(n - dd * (kk - 1) - 1) // ss + 1 for n, kk, dd, ss in
            zip(xp.shape[2:], k, d, s, strict=True)]
    return y.reshape(x.shape[0], conv.out_channels, *size[1:] if one_d else size)


@pytest.mark.parametrize("conv", [
    nn.Conv2d(3, 5, 3),
    nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(2, 1), bias=False),
    nn.Conv2d(2, 3, 3, padding="same", padding_mode="reflect"),
    nn.Conv1d(4, 6, 5, stride=2, padding=3, padding_mode="circular"),
    nn.Conv1d(6, 2, 4, padding="same", dilation=2, padding_mode="replicate"),
], ids=["plain", "stride-pad-dilation", "same-reflect", "1d-circular", "1d-same-replicate"])
def test_conv_is_the_engine_on_the_unfolded_input(conv):
    torch.manual_seed(11)
    x = torch.randn(2, conv.in_channels, *([9, 8] if isinstance(conv, nn.Conv2d) else [13]))
    mx = MXConv(conv, weights=FMT6, activations=FMT8)
    y = mx(x)
    assert y.shape == conv(x).shape
    assert torch.equal(patterns(y), patterns(conv_reference(conv, x)))
    assert relative_error(y, conv(x).detach()) < 0.05
    assert torch.equal(mx(x[1]), y[1])  # unbatched input, as the layer takes it


def test_conv_reads_like_the_layer():
    torch.manual_seed(12)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv1d(8, 4, 1))
    conv = model[0]
    report = quantize_model(model, weights=FMT6, activations=FMT6)
    assert report == ["0", "2"] and [r.status for r in report.layers] == ["engine", "engine"]
    mx = model[0]
    assert isinstance(mx, MXConv) and isinstance(mx, MXLinear)
    assert (mx.in_channels, mx.out_channels, mx.kernel_size, mx.stride, mx.padding,
            mx.dilation, mx.groups, mx.padding_mode) == (3, 8, (3, 3), (1, 1), (1, 1), (1, 1),
                                                        1, "zeros")
    assert mx.weight.shape == conv.weight.shape and (mx.in_features, mx.out_features) == (27, 8)
    assert torch.equal(mx.weight.reshape(8, -1), dequantize(mx.w_q))
    assert torch.equal(mx.bias, conv.bias.detach())
    assert "kernel_size=(3, 3)" in repr(mx) and "weights=mxint6e8k16" in repr(mx)
    with pytest.raises(AttributeError, match="read-only"):
        mx.weight = conv.weight
    # state_dict round trip into another quantised model of the same shape and formats
    other = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv1d(8, 4, 1))
    quantize_model(other, weights=FMT6, activations=FMT6)
    other.load_state_dict(model.state_dict())
    assert sorted(model.state_dict()) == ["0.bias", "0.w_exponent", "0.w_mantissa",
                                          "2.bias", "2.w_exponent", "2.w_mantissa"]
    x = torch.randn(2, 3, 6, 6)
    assert torch.equal(other[0](x), model[0](x)) and torch.equal(other[0].weight, mx.weight)
    assert model[0](x.to(torch.bfloat16)).dtype == torch.bfloat16
    with pytest.raises(ValueError, match=r"x must be \(N, 3, \.\.\.\) or \(3, \.\.\.\) with "
                                         r"2 spatial axes for in_channels=3, not shape "
                                         r"\(2, 4, 6, 6\)"):
        mx(torch.randn(2, 4, 6, 6))


def test_conv_kinds_not_computed_are_reported_by_name():
    model = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.Conv3d(2, 2, 1),
                          nn.ConvTranspose2d(2, 2, 3))
    report = quantize_model(model, weights=FMT6, activations=FMT6)
    assert report == [] and [(r.name, r.kind, r.note) for r in report.skipped] == [
        ("0", "Conv2d", GROUPS_NOTE),
        ("1", "Conv3d", "only Conv1d and Conv2d are computed"),
        ("2", "ConvTranspose2d", "only Conv1d and Conv2d are computed"),
    ]
    with pytest.raises(ValueError, match=r"conv.groups must be 1, not 2"):
        MXConv(model[0], weights=FMT6, activations=FMT6)
    with pytest.raises(TypeError, match=r"conv must be a torch.nn.Conv1d or Conv2d, not Conv3d"):
        MXConv(model[1], weights=FMT6, activations=FMT6)


# --- quantize_model: the report -------------------------------------------------------

class Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)
        self.proj = nn.Conv1d(4, 4, 1, groups=2)
        self.fc = nn.Linear(16, 16)
        self.head = nn.Linear(16, 3)


GROUPS_NOTE = ("groups=2: only groups=1 is computed (the engine's blocks run along all "
               "in-channels x kernel)")


def test_report_is_a_table_and_the_old_list():
    report = quantize_model(Mixed(), weights=FMT6, activations=FMT6, exclude="head")
    assert isinstance(report, QuantizeReport)
    assert report == ["conv", "fc"] and report == ("conv", "fc")
    assert len(report) == 2 and report[1] == "fc" and "fc" in report and "head" not in report
    assert report.layers == (
        LayerReport("conv", "Conv2d", "engine", ""),
        LayerReport("proj", "Conv1d", "skipped", GROUPS_NOTE),
        LayerReport("fc", "Linear", "engine", ""),
        LayerReport("head", "Linear", "skipped", "matches exclude pattern 'head'"),
    )
    assert [r.name for r in report.skipped] == ["proj", "head"]
    assert repr(report) == "QuantizeReport(replaced=['conv', 'fc'], skipped=['proj', 'head'])"
    assert str(report) == "\n".join([
        "layer  kind    status   note",
        "-----  ------  -------  ----",
        "conv   Conv2d  engine",
        f"proj   Conv1d  skipped  {GROUPS_NOTE}",
        "fc     Linear  engine",
        "head   Linear  skipped  matches exclude pattern 'head'",
        "weights mxint6e8k16, activations mxint6e8k16, rounding 'even', guard_bits 8, "
        "acc_width 32",
        "2 computed by the engine's arithmetic, 0 weights only (MX weights, float product), "
        "2 skipped",
    ])
    included = quantize_model(Mixed(), weights=FMT6, activations=FMT6, include="h*")
    assert included == ["head"]
    assert included.layers[2] == LayerReport("fc", "Linear", "skipped",
                                             "matches no include pattern ['h*']")


def test_bare_layer_is_refused():
    from transformers.pytorch_utils import Conv1D

    for layer, kind in ((nn.Linear(4, 4), "Linear"), (Conv1D(4, 4), "Conv1D"),
                        (nn.Conv2d(4, 4, 3), "Conv2d")):
        with pytest.raises(ValueError, match=rf"model must be a module that contains the "
                                             rf"layers to replace, not a bare {kind}, .*pass "
                                             rf"torch.nn.Sequential\(layer\)"):
            quantize_model(layer, weights=FMT6, activations=FMT6)
    assert quantize_model(nn.Sequential(nn.Linear(4, 4)), weights=FMT6,
                          activations=FMT6) == ["0"]


def test_shared_layer_and_tied_weights():
    torch.manual_seed(6)
    shared = nn.Linear(16, 16)
    model = nn.Module()
    model.a, model.b = shared, shared  # one layer under two names
    model.c, model.d, model.e = nn.Linear(16, 8), nn.Linear(16, 8), nn.Linear(16, 8)
    model.d.weight = model.c.weight  # tied, both replaced: stay tied
    model.e.weight = model.c.weight
    emb = nn.Embedding(8, 16)
    model.emb, model.out = emb, nn.Linear(16, 8, bias=False)
    model.out.weight = emb.weight  # tied to a module that is not replaced: untied
    report = quantize_model(model, weights=FMT6, activations=FMT6, exclude="e")
    assert report == ["a", "c", "d", "out"]
    assert model.a is model.b and isinstance(model.a, MXLinear)
    assert model.c.w_mantissa is model.d.w_mantissa and model.c.weight is model.d.weight
    assert isinstance(model.e, nn.Linear) and isinstance(model.emb.weight, nn.Parameter)
    notes = {r.name: r.note for r in report.layers}
    assert notes["a"] == "also named b"
    assert notes["c"] == ("weight was tied to e.weight, which keeps the float weight: "
                          "now untied")
    assert notes["out"] == ("weight was tied to emb.weight, which keeps the float weight: "
                            "now untied")
    # With every sharer replaced, the layers stay tied.
    tied = nn.Module()
    tied.c, tied.d = nn.Linear(16, 8), nn.Linear(16, 8)
    tied.d.weight = tied.c.weight
    report = quantize_model(tied, weights=FMT6, activations=FMT6)
    assert report.layers[1].note == "weight tied to c.weight: they share one set of MX weights"
    assert tied.c.w_exponent is tied.d.w_exponent and not torch.equal(tied.c.bias, tied.d.bias)


# --- torch's attention ------------------------------------------------------------------

def test_multihead_attention_reads_the_dequantised_out_proj():
    torch.manual_seed(7)
    mha = nn.MultiheadAttention(32, 4, batch_first=True)
    ref = copy.deepcopy(mha)
    report = quantize_model(mha, weights=FMT6, activations=FMT6)
    assert report == ["out_proj"]
    assert [(r.name, r.status) for r in report.layers] == [("in_proj_weight", "skipped"),
                                                            ("out_proj", "weights only")]
    # The report says the MX arithmetic is not applied there, and why.
    assert report.layers[1].note.startswith(
        "weight only: read directly by MultiheadAttention (F.multi_head_attention_forward "
        "never calls out_proj), so the MX arithmetic is not applied")
    assert str(report).splitlines()[-1] == ("0 computed by the engine's arithmetic, 1 weights "
                                            "only (MX weights, float product), 1 skipped")
    calls = capture(mha)
    with torch.no_grad():
        ref.out_proj.weight.copy_(mha.out_proj.weight)
    x = torch.randn(2, 5, 32)
    y, att = mha(x, x, x)
    y_ref, att_ref = ref(x, x, x)
    assert torch.equal(y, y_ref) and torch.equal(att, att_ref)
    mha.eval(), ref.eval()
    with torch.no_grad():  # the fused fast path reads out_proj.weight too
        assert torch.equal(mha(x, x, x)[0], ref(x, x, x)[0])
    assert calls == []  # out_proj itself is never called
    other = nn.MultiheadAttention(32, 4, kdim=16, vdim=8, batch_first=True)
    report = quantize_model(nn.Sequential(other), weights=FMT6, activations=FMT6)
    assert [r.name for r in report.skipped] == ["0.q_proj_weight", "0.k_proj_weight",
                                                "0.v_proj_weight"]
    assert other(x, torch.randn(2, 5, 16), torch.randn(2, 5, 8))[0].shape == (2, 5, 32)


def test_transformer_encoder_layer_runs_the_mx_layers():
    torch.manual_seed(8)
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    ref = copy.deepcopy(layer)
    report = quantize_model(layer, weights=FMT8, activations=FMT8)
    assert report == ["self_attn.out_proj", "linear1", "linear2"]
    layer.eval(), ref.eval()
    x = torch.randn(3, 6, 32)
    with torch.no_grad():
        y = layer(x)
        # The plain path, written out: attention (float, with the dequantised out_proj),
        # then the MX feed-forward layers.
        h = layer.norm1(x + layer._sa_block(x, None, None))
        by_hand = layer.norm2(h + layer.linear2(layer.activation(layer.linear1(h))))
        assert torch.equal(y, by_hand)
        assert relative_error(y, ref(x)) < 0.02
        # Without the pre-hook, the fused kernel would multiply by linear1/2.weight and
        # never quantise the activations: the hook is what makes the equality above hold.
        for m in (layer.self_attn.out_proj, layer.linear1, layer.linear2):
            m._forward_pre_hooks.clear()
        assert not torch.equal(layer(x), y)
        for m in (layer.self_attn.out_proj, layer.linear1, layer.linear2):
            m.register_forward_pre_hook(_fused_kernels_off)
    calls = capture(layer)
    layer(x)
    assert_engine_exact(calls)


def test_transformer_encoder_with_padding_mask():
    torch.manual_seed(9)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0,
                                                           batch_first=True), 2)
    ref = copy.deepcopy(enc)
    ref.use_nested_tensor = False  # the float model's nested path warns (prototype)
    report = quantize_model(enc, weights=FMT8, activations=FMT8)
    assert report.notes == ("model: nested-tensor fast path turned off (use_nested_tensor = "
                            "False), as it would bypass MXLinear",)
    assert enc.use_nested_tensor is False
    enc.eval(), ref.eval()
    x = torch.randn(3, 6, 32)
    mask = torch.zeros(3, 6, dtype=torch.bool)
    mask[0, 4:] = True
    calls = capture(enc)
    with torch.no_grad():
        y = enc(x, src_key_padding_mask=mask)
        keep = ~mask
        assert relative_error(y[keep], ref(x, src_key_padding_mask=mask)[keep]) < 0.02
    assert len(calls) == 4
    assert_engine_exact(calls)


# --- Hugging Face BERT and GPT-2, from small random configs (no download) -------------

def test_bert():
    from transformers import BertConfig, BertModel

    torch.manual_seed(10)
    model = BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=64, vocab_size=100,
                                 max_position_embeddings=32)).eval()
    ref = copy.deepcopy(model)
    report = quantize_model(model, weights=FMT8, activations=FMT8)
    assert len(report) == 13 and not report.skipped
    assert {r.status for r in report.layers} == {"engine"}
    assert model.dtype == torch.float32
    ids = torch.randint(0, 100, (2, 7))
    calls = capture(model)
    with torch.no_grad():
        out = model(ids, attention_mask=torch.ones_like(ids))
        want = ref(ids, attention_mask=torch.ones_like(ids))
    assert relative_error(out.last_hidden_state, want.last_hidden_state) < 0.02
    assert len(calls) == 13
    assert_engine_exact(calls)


def test_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.pytorch_utils import Conv1D

    torch.manual_seed(11)
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100,
                                       n_positions=32, bos_token_id=0,
                                       eos_token_id=0)).eval()
    ref = copy.deepcopy(model)
    assert model.lm_head.weight is model.transformer.wte.weight
    report = quantize_model(model, weights=FMT8, activations=FMT8)
    kinds = [(r.name, r.kind) for r in report.layers]
    assert kinds[:4] == [("transformer.h.0.attn.c_attn", "Conv1D"),
                         ("transformer.h.0.attn.c_proj", "Conv1D"),
                         ("transformer.h.0.mlp.c_fc", "Conv1D"),
                         ("transformer.h.0.mlp.c_proj", "Conv1D")]
    assert kinds[-1] == ("lm_head", "Linear") and len(report) == 9
    assert report.layers[-1].note == ("weight was tied to transformer.wte.weight, which keeps "
                                      "the float weight: now untied")
    assert not any(isinstance(m, Conv1D) for m in model.modules())
    assert isinstance(model.transformer.wte.weight, nn.Parameter)
    assert torch.equal(model.lm_head.weight,
                       dequantize(quantize(model.transformer.wte.weight, FMT8, axis=1)))
    ids = torch.randint(0, 100, (2, 7))
    calls = capture(model)
    with torch.no_grad():
        logits = model(ids).logits
        want = ref(ids).logits
    assert relative_error(logits, want) < 0.05
    assert len(calls) == 9
    assert_engine_exact(calls)
    with pytest.raises(AttributeError, match=r"MXLinear.weight is read-only"):
        model.tie_weights()
