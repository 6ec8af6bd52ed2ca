"""golden.checkpoint: MXFP4 weights in gpt-oss's safetensors layout, against transformers' own
dequantiser, and MiniLM's linear weights through a file and back."""

from __future__ import annotations

import math

import pytest
import torch

from golden import MXFPFormat, MXFPTensor, dequantize, load_mxfp4, quantize, save_mxfp4
from golden.checkpoint import from_blocks, to_blocks


def wide(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    e = torch.randint(-135, 125, (*shape[:-1], shape[-1] // 32, 1), generator=gen)
    x = torch.randn(*shape[:-1], shape[-1] // 32, 32, generator=gen) * torch.exp2(e.float())
    return x.reshape(shape)


def assert_same_q(a: MXFPTensor, b: MXFPTensor) -> None:
    assert a.fmt == b.fmt and a.shape == b.shape and a.axis == b.axis
    assert torch.equal(a.codes, b.codes) and torch.equal(a.exponent, b.exponent)
    da, db = dequantize(a), dequantize(b)
    assert torch.equal(da.view(torch.int32), db.view(torch.int32))


def test_layout_and_round_trip(tmp_path):
    from safetensors.torch import load_file
    weights = {"experts.gate_up_proj": wide((4, 6, 64), 1), "dense.weight": wide((5, 96), 2)}
    bias = torch.randn(5)
    path = tmp_path / "w.safetensors"
    written = save_mxfp4(path, weights, others={"dense.bias": bias}, scale_rounding="rceil")
    raw = load_file(path)
    assert sorted(raw) == ["dense.bias", "dense.weight_blocks", "dense.weight_scales",
                           "experts.gate_up_proj_blocks", "experts.gate_up_proj_scales"]
    assert raw["experts.gate_up_proj_blocks"].shape == (4, 6, 2, 16)
    assert raw["experts.gate_up_proj_scales"].shape == (4, 6, 2)
    assert raw["dense.weight_blocks"].dtype == raw["dense.weight_scales"].dtype == torch.uint8
    loaded = load_mxfp4(path)
    assert torch.equal(loaded["dense.bias"], bias)
    for name, w in weights.items():
        q = quantize(w, MXFPFormat("e2m1", scale_rounding="rceil"))
        assert_same_q(written[name], q)
        assert_same_q(loaded[name], q)
        assert torch.equal(raw[name + "_scales"].to(torch.int32), q.exponent)
        # byte j of a block holds elements 2j (low nibble) and 2j + 1 (high nibble)
        b = raw[name + "_blocks"].flatten(0, -2).to(torch.int32)
        c = q.codes.flatten(0, -2)
        assert torch.equal(b & 0xF, c[:, 0::2]) and torch.equal(b >> 4, c[:, 1::2])
    floats = load_mxfp4(path, dequantized=True)
    assert torch.equal(floats["dense.weight"], dequantize(loaded["dense.weight"]))


def transformers_dequantize(blocks: torch.Tensor, scales: torch.Tensor, dtype: torch.dtype
                            ) -> torch.Tensor:
    """transformers' gpt-oss dequantiser on a 2-D weight's blocks. It takes expert weights
    ``(E, R, G, 16)`` and returns ``(E, G * 32, R)`` (transposed for gpt-oss's matmul), so a
    2-D weight goes in with a leading axis of 1 and comes back transposed again."""
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors
    out = convert_moe_packed_tensors(blocks[None], scales[None], dtype=dtype)
    return out[0].transpose(0, 1)


def every_scale_and_code() -> torch.Tensor:
    """Blocks, 32 codes each, with every E8M0 scale code 0 .. 254 and all 16 E2M1 codes."""
    codes = torch.arange(32, dtype=torch.int32) % 16
    return codes.repeat(255, 1), torch.arange(255, dtype=torch.int32)


def test_transformers_dequantizer_equals_golden_float32():
    """Bit for bit in float32 over every scale code 0 .. 254 and every code, and on
    quantised random weights: each value is a 3-bit significand times a power of two, exact
    in float32 down to 2**-128, overflowing to the same infinities at the top scales."""
    codes, scales = every_scale_and_code()
    every = MXFPTensor(codes=codes[:, None, :], exponent=scales[:, None],
                       fmt=MXFPFormat("e2m1"), shape=torch.Size((255, 32)), axis=1)
    for q in (every, quantize(wide((64, 256), 3), MXFPFormat("e2m1"))):
        blocks, sc = to_blocks(q)
        theirs = transformers_dequantize(blocks, sc, torch.float32)
        ours = dequantize(q)
        assert theirs.dtype == torch.float32
        assert torch.equal(theirs.view(torch.int32), ours.view(torch.int32))


def test_transformers_dequantizer_equals_golden_bfloat16():
    """transformers' default output dtype, bfloat16: golden's float32 values rounded to
    bfloat16 (exact: every value has at most 3 significant bits and bfloat16 has float32's
    exponent range, its subnormals reaching 2**-133)."""
    codes, scales = every_scale_and_code()
    q = MXFPTensor(codes=codes[:, None, :], exponent=scales[:, None],
                   fmt=MXFPFormat("e2m1"), shape=torch.Size((255, 32)), axis=1)
    blocks, sc = to_blocks(q)
    theirs = transformers_dequantize(blocks, sc, torch.bfloat16)
    ours = dequantize(q)
    assert torch.equal(theirs.view(torch.int16), ours.to(torch.bfloat16).view(torch.int16))
    assert torch.equal(theirs.float(), ours)  # no rounding happened


def test_transformers_reads_the_nan_scale_as_two_to_the_128():
    """Departure: scale code 255 is NaN in OCP (golden dequantises the whole block to NaN);
    transformers computes the exact ``ldexp(value, 255 - 127)``: +-0.5 becomes +-2**127,
    zero codes stay signed zeros, larger codes overflow to infinities."""
    q = MXFPTensor(codes=torch.tensor([[[1, 9, 0, 8, 7, 15] + [0] * 26]], dtype=torch.int32),
                   exponent=torch.tensor([[255]], dtype=torch.int32), fmt=MXFPFormat("e2m1"),
                   shape=torch.Size((1, 32)), axis=1)
    blocks, scales = to_blocks(q)
    theirs = transformers_dequantize(blocks, scales, torch.float32)
    assert dequantize(q).isnan().all()
    assert theirs[0, :6].tolist() == [2.0 ** 127, -2.0 ** 127, 0.0, -0.0, math.inf, -math.inf]
    assert math.copysign(1, theirs[0, 3]) < 0 and not theirs.isnan().any()


@pytest.fixture(scope="module")
def minilm_linear() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    from models.load import resolve_model
    weights = load_file(str(resolve_model("minilm") / "model.safetensors"))
    linear = {k: v for k, v in weights.items()
              if k.startswith("encoder.") and k.endswith(".weight") and v.dim() == 2}
    others = {k: v for k, v in weights.items() if k not in linear}
    return linear, others


def test_minilm_end_to_end(minilm_linear, tmp_path):
    """Every linear weight of all-MiniLM-L6-v2 (36 matrices, 10.6 M values) to MXFP4, written
    in the gpt-oss layout with the other tensors, read back: the same codes and scales, the
    same dequantised bits, and transformers' dequantiser agrees on one matrix."""
    linear, others = minilm_linear
    assert len(linear) == 36
    path = tmp_path / "minilm-mxfp4.safetensors"
    written = save_mxfp4(path, linear, others=others)
    loaded = load_mxfp4(path)
    assert set(loaded) == set(linear) | set(others)
    for name in linear:
        a, b = written[name], loaded[name]
        assert a.fmt == b.fmt and a.shape == b.shape and a.axis == b.axis
        assert torch.equal(a.codes, b.codes) and torch.equal(a.exponent, b.exponent)
    for name in ("encoder.layer.0.attention.self.query.weight",
                 "encoder.layer.5.output.dense.weight"):  # written is golden's quantisation
        assert_same_q(loaded[name], quantize(linear[name], MXFPFormat("e2m1")))
    for name, t in others.items():
        assert torch.equal(loaded[name], t)
    floats = load_mxfp4(path, dequantized=True)
    for name in linear:
        assert torch.equal(floats[name].view(torch.int32),
                           dequantize(written[name]).view(torch.int32)), name
    name = "encoder.layer.2.intermediate.dense.weight"
    blocks, scales = to_blocks(loaded[name])
    theirs = transformers_dequantize(blocks, scales, torch.float32)
    assert torch.equal(theirs, dequantize(loaded[name]))
    assert path.stat().st_size < 0.3 * sum(t.numel() * 4 for t in linear.values()) + \
        sum(t.numel() * t.element_size() for t in others.values())


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda p: save_mxfp4(p, {"w": torch.ones(4, 33)}), ValueError,
     "weight 'w' must have a last axis a multiple of 32 long, not shape (4, 33)"),
    (lambda p: save_mxfp4(p, {"w": torch.ones(4, 32, dtype=torch.int32)}), TypeError,
     "weight 'w' must be a float tensor, not torch.int32"),
    (lambda p: save_mxfp4(p, {"w": [1.0]}), TypeError,
     "weight 'w' must be a torch.Tensor or MXFPTensor, not list"),
    (lambda p: save_mxfp4(p, {"w": quantize(torch.ones(64), MXFPFormat("e4m3"))}), ValueError,
     "weight 'w': q must be MXFP4 in blocks of 32 (e2m1, k = 32), not mxfp8_e4m3_k32"),
    (lambda p: save_mxfp4(p, {"w": quantize(torch.ones(64, 2), MXFPFormat("e2m1"), axis=0)}),
     ValueError, "weight 'w': q must be quantised along its last axis (1), not axis 0"),
    (lambda p: save_mxfp4(p, {"w": torch.ones(32)}, others={"w_blocks": torch.ones(1)}),
     ValueError, "others['w_blocks'] has the name of a quantised weight's tensor"),
    (lambda p: from_blocks(torch.zeros(2, 16, dtype=torch.uint8),
                           torch.zeros(3, dtype=torch.uint8)), ValueError,
     "scales must have shape (2,) to match blocks (2, 16), not (3,)"),
    (lambda p: from_blocks(torch.zeros(2, 8, dtype=torch.uint8),
                           torch.zeros(2, dtype=torch.uint8)), ValueError,
     "blocks must have shape (..., G, 16), not (2, 8)"),
    (lambda p: from_blocks(torch.zeros(2, 16), torch.zeros(2, dtype=torch.uint8)), TypeError,
     "blocks must be a uint8 tensor, not torch.float32"),
])
def test_bad_arguments(tmp_path, call, error, message):
    with pytest.raises(error) as info:
        call(tmp_path / "x.safetensors")
    assert message in str(info.value)


def test_load_refuses_an_unpaired_tensor(tmp_path):
    from safetensors.torch import save_file
    path = tmp_path / "x.safetensors"
    save_file({"w_blocks": torch.zeros(2, 16, dtype=torch.uint8)}, path)
    with pytest.raises(ValueError, match="w_blocks has no w_scales"):
        load_mxfp4(path)
    save_file({"w_scales": torch.zeros(2, dtype=torch.uint8)}, path)
    with pytest.raises(ValueError, match="w_scales has no w_blocks"):
        load_mxfp4(path)
