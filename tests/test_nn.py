"""golden.nn: MXLinear and quantize_model against the engine's golden model, golden.linear."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import golden.nn as gnn
from golden import MXFPTensor, MXIntFormat, quantize
from golden.linear import linear_blocks, linear_fp32
from golden.nn import (
    DEFAULT_GUARD_BITS,
    MXLinear,
    default_acc_width,
    mx_linear_fp32,
    quantize_model,
)
from hw.linear import LinearParams


def elements(q) -> torch.Tensor:
    """What golden.linear takes of a quantised tensor: MXFP codes or MXINT mantissas."""
    return q.codes if isinstance(q, MXFPTensor) else q.mantissa


def engine_patterns(wq, xq, *, guard_bits, acc_width) -> torch.Tensor:
    """The independent reference: golden.linear row by row, token by token (int64 patterns,
    shape (T, N)); MXINT or MXFP operands."""
    rows = []
    w_el, x_el = elements(wq), elements(xq)
    for t in range(x_el.shape[0]):
        y = linear_blocks(w_el, wq.exponent, x_el[t], xq.exponent[t], wq.fmt,
                          xq.fmt, guard_bits=guard_bits, acc_width=acc_width)
        rows.append(linear_fp32(y, wq.fmt, xq.fmt, guard_bits=guard_bits))
    return torch.stack(rows)


def patterns(y: torch.Tensor) -> torch.Tensor:
    return y.contiguous().view(torch.int32).to(torch.int64) & 0xFFFFFFFF


def mismatches(got: torch.Tensor, want: torch.Tensor) -> int:
    return int((patterns(got) != want).sum())


def wide_case(seed: int, n: int, k_len: int, tokens: int, spread: int):
    """Weights and activations whose block exponents spread over ``spread`` octaves each,
    with zero blocks, a zero token and a zero row."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(n, k_len, generator=gen) * torch.exp2(
        torch.randint(-spread, spread + 1, (n, k_len), generator=gen).float())
    x = torch.randn(tokens, k_len, generator=gen) * torch.exp2(
        torch.randint(-spread, spread + 1, (tokens, k_len), generator=gen).float())
    x[0] = 0.0
    w[1] = 0.0
    x[1, : k_len // 2] = 0.0
    return w, x


def test_defaults_are_the_engines():
    for w_bits, x_bits, block in [(6, 6, 16), (4, 8, 32), (8, 8, 32), (2, 3, 1), (16, 16, 1024)]:
        engine = LinearParams(x_bits=x_bits, w_bits=w_bits, block=block, rows=1)
        assert engine.guard_bits == DEFAULT_GUARD_BITS
        assert default_acc_width(w_bits=w_bits, x_bits=x_bits, block=block) == engine.acc_width


@pytest.mark.parametrize(("w_bits", "x_bits", "block", "guard_bits", "spread"), [
    (6, 6, 16, 8, 6), (4, 8, 32, 8, 4), (8, 8, 32, 8, 8), (3, 5, 8, 2, 3), (8, 4, 16, 0, 2),
    (12, 16, 4, 8, 6),  # partial sums beyond 2**24: the int64 path
])
def test_mx_linear_fp32_equals_golden_linear(w_bits, x_bits, block, guard_bits, spread):
    seed = 1000 + w_bits * 100 + block
    print(f"seed {seed}")
    w, x = wide_case(seed, 24, 100, 12, spread)
    fw, fx = MXIntFormat(w_bits, 8, block), MXIntFormat(x_bits, 8, block)
    wq, xq = quantize(w, fw, axis=1), quantize(x, fx, axis=1)
    acc = default_acc_width(w_bits=w_bits, x_bits=x_bits, block=block, guard_bits=guard_bits)
    lossy = gnn._lossy(wq, xq, guard_bits=guard_bits)
    got = mx_linear_fp32(wq, xq, guard_bits=guard_bits, acc_width=acc)
    assert mismatches(got, engine_patterns(wq, xq, guard_bits=guard_bits, acc_width=acc)) == 0
    if spread >= 3 and w_bits <= 8:  # both paths ran
        assert 0 < int(lossy.sum()) < lossy.numel()


def test_mx_linear_fp32_dense_tokens_nan_and_saturation():
    """A token with outliers (every row lossy: the block-wise matrix path), NaN blocks, and
    a narrow accumulator that saturates (every pair on the integer path)."""
    w, x = wide_case(7, 32, 64, 6, 1)
    x[2, 5] = 4096.0  # an outlier block far above the others
    x[3, 40] = float("nan")
    w[4, 3] = float("inf")
    fmt = MXIntFormat(6, 8, 16)
    wq, xq = quantize(w, fmt, axis=1), quantize(x, fmt, axis=1)
    lossy = gnn._lossy(wq, xq, guard_bits=8)
    live = torch.arange(32) != 1  # row 1 is zero: nothing to lose
    assert bool(lossy[2, live].all()) and bool(lossy[3].all()) and bool(lossy[:, 4].all())
    for acc in (default_acc_width(w_bits=6, x_bits=6, block=16), 25):
        got = mx_linear_fp32(wq, xq, guard_bits=8, acc_width=acc)
        assert mismatches(got, engine_patterns(wq, xq, guard_bits=8, acc_width=acc)) == 0


def test_checker_catches_one_wrong_value():
    w, x = wide_case(3, 8, 48, 4, 4)
    fmt = MXIntFormat(6, 8, 16)
    wq, xq = quantize(w, fmt, axis=1), quantize(x, fmt, axis=1)
    want = engine_patterns(wq, xq, guard_bits=8, acc_width=32)
    got = mx_linear_fp32(wq, xq, guard_bits=8, acc_width=32)
    got[2, 5] = torch.nextafter(got[2, 5], torch.tensor(float("inf")))
    assert mismatches(got, want) == 1


def make_linear(k: int, n: int, seed: int, bias: bool = True) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(k, n, bias=bias)


@pytest.mark.parametrize("grad", [True, False])
def test_mx_linear_forward_is_engine_plus_bias(grad):
    layer = make_linear(40, 12, 5)
    fw, fx = MXIntFormat(4, 8, 8), MXIntFormat(6, 8, 8)
    mx = MXLinear(layer, weights=fw, activations=fx)
    x = torch.randn(3, 5, 40, generator=torch.Generator().manual_seed(2))
    with torch.set_grad_enabled(grad):
        y = mx(x)
    assert y.shape == (3, 5, 12) and y.dtype == torch.float32 and not y.requires_grad
    wq = quantize(layer.weight.detach(), fw, axis=1)
    xq = quantize(x.reshape(-1, 40), fx, axis=1)
    raw = engine_patterns(wq, xq, guard_bits=8, acc_width=mx.acc_width)
    assert mismatches(mx.forward_raw(x).reshape(15, 12), raw) == 0
    expect = raw.to(torch.int32).view(torch.float32).reshape(3, 5, 12) + layer.bias.detach()
    assert torch.equal(y, expect)
    # The original layer is untouched and still trains.
    assert layer.weight.requires_grad and isinstance(layer.weight, nn.Parameter)


def test_mx_linear_bfloat16_input_and_no_bias():
    layer = make_linear(16, 4, 6, bias=False)
    fmt = MXIntFormat(8, 8, 16)
    mx = MXLinear(layer, weights=fmt, activations=fmt)
    x = torch.randn(2, 16).to(torch.bfloat16)
    y = mx(x)
    assert y.dtype == torch.bfloat16 and mx.bias is None
    assert torch.equal(y, mx.forward_raw(x).to(torch.bfloat16))


def test_mx_linear_empty_input():
    mx = MXLinear(make_linear(16, 4, 1), weights=MXIntFormat(6, 8, 16),
                  activations=MXIntFormat(6, 8, 16))
    assert mx(torch.zeros(0, 16)).shape == (0, 4)
    assert mx(torch.zeros(2, 0, 16)).shape == (2, 0, 4)


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"weights": 6}, TypeError, r"weights must be an MXIntFormat or MXFPFormat .*, not 6"),
    ({"activations": MXIntFormat(6, 8, 32)}, ValueError,
     r"weights and activations must share block, not 16 \(mxint6e8k16\) and 32 "
     r"\(mxint6e8k32\)"),
    ({"activations": MXIntFormat(6, 5, 16)}, ValueError,
     r"weights and activations must share exp_bits .*, not 8 \(mxint6e8k16\) and 5 "
     r"\(mxint6e5k16\)"),
    ({"rounding": "up"}, ValueError, r"rounding"),
    # The engine's limits (6-bit k16 dot results are 16 bits): the hardware's own rule.
    ({"guard_bits": -1}, ValueError, r"guard_bits must be from 0 to 46, not -1"),
    ({"acc_width": 70}, ValueError, r"acc_width must be from 24 to 62, not 70"),
    ({"acc_width": 2}, ValueError, r"acc_width must be from 24 to 62, not 2"),
])
def test_mx_linear_bad_parameters(kwargs, exc, match):
    fmt = MXIntFormat(6, 8, 16)
    args = {"weights": fmt, "activations": fmt, **kwargs}
    with pytest.raises(exc, match=match):
        MXLinear(make_linear(16, 4, 1), **args)


def test_mx_linear_bad_layer_and_input():
    fmt = MXIntFormat(6, 8, 16)
    with pytest.raises(TypeError, match=r"linear must be a torch.nn.Linear or a transformers "
                                        r"Conv1D, not Conv1d"):
        MXLinear(nn.Conv1d(1, 1, 1), weights=fmt, activations=fmt)
    mx = MXLinear(make_linear(16, 4, 1), weights=fmt, activations=fmt)
    with pytest.raises(ValueError, match=r"x must end in in_features=16, not shape \(2, 8\)"):
        mx(torch.zeros(2, 8))


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.ModuleDict({"q": nn.Linear(16, 16), "k": nn.Linear(16, 16)})
        self.act = nn.GELU()
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.act(self.enc["q"](x) + self.enc["k"](x)))


def test_quantize_model_patterns_and_result():
    torch.manual_seed(0)
    model = Tiny()
    ref = Tiny()
    ref.load_state_dict(model.state_dict())
    fmt = MXIntFormat(6, 8, 16)
    names = quantize_model(model, weights=fmt, activations=fmt, exclude="head")
    assert names == ["enc.q", "enc.k"]
    assert isinstance(model.enc["q"], MXLinear) and isinstance(model.head, nn.Linear)
    x = torch.randn(4, 16)
    with torch.no_grad():
        y = model(x)
        by_hand = ref.head(ref.act(MXLinear(ref.enc["q"], weights=fmt, activations=fmt)(x)
                                   + MXLinear(ref.enc["k"], weights=fmt, activations=fmt)(x)))
    assert torch.equal(y, by_hand)
    other = Tiny()
    assert quantize_model(other, weights=fmt, activations=fmt, include=["enc.*"],
                          exclude=["*.k"]) == ["enc.q"]


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"include": "nothing*"}, ValueError,
     r"include matches no nn.Linear, Conv1D, Conv1d or Conv2d of the model"),
    ({"include": 3}, TypeError, r"include must be a string or a sequence of strings, not 3"),
    ({"exclude": [1]}, TypeError, r"exclude must be a string or a sequence of strings"),
    ({"weights": None}, TypeError, r"weights must be an MXIntFormat or MXFPFormat .*, not "
                                   r"None"),
])
def test_quantize_model_bad_parameters(kwargs, exc, match):
    fmt = MXIntFormat(6, 8, 16)
    args = {"weights": fmt, "activations": fmt, **kwargs}
    with pytest.raises(exc, match=match):
        quantize_model(Tiny(), **args)
    with pytest.raises(TypeError, match=r"model must be a torch.nn.Module, not int"):
        quantize_model(3, weights=fmt, activations=fmt)


@pytest.mark.parametrize("rounding", ["even", "away", "zero", "floor"])
def test_quantize_parameter_that_requires_grad(rounding):
    layer = make_linear(40, 8, 3)
    fmt = MXIntFormat(6, 8, 16)
    q = quantize(layer.weight, fmt, rounding=rounding)
    plain = quantize(layer.weight.detach().clone(), fmt, rounding=rounding)
    assert torch.equal(q.mantissa, plain.mantissa) and torch.equal(q.exponent, plain.exponent)
    assert not q.mantissa.requires_grad


@pytest.mark.parametrize(("shape", "axis"), [((0,), 0), ((0, 5), 0), ((0, 5), 1), ((5, 0), 1),
                                             ((3, 0, 4), 2), ((3, 0, 4), 1)])
def test_quantize_empty(shape, axis):
    from golden import dequantize

    fmt = MXIntFormat(6, 8, 4)
    q = quantize(torch.zeros(shape), fmt, axis=axis)
    assert q.mantissa.numel() == 0
    assert dequantize(q).shape == shape
