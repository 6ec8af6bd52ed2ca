"""The layer program (sim.tile_layer): an encoder layer's six linears on the tile, the host
ops in golden.nn between them. A tiny BERT layer under Verilator here; MiniLM's layer 0 is
``make layer``."""

from __future__ import annotations

import pytest
import torch

import sim.tile_layer
from sim.tile_layer import LINEARS, format_layer_summary, layer_on_tile, layer_passed

#: A tile for the tiny layer: every linear has K = 32 (one design), N = 32 (two tiles).
PARAMS = {"x_bits": 4, "w_bits": 4, "exp_bits": 8, "block": 8, "rows": 16, "lanes": 2,
          "guard_bits": 8, "acc_width": None}


def tiny_layer():
    """A BERT encoder layer of hidden size 32 (2 heads, FFN 32), seeded, and 2 tokens."""
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertLayer

    torch.manual_seed(0)
    config = BertConfig(hidden_size=32, num_attention_heads=2, intermediate_size=32,
                        hidden_act="gelu")
    config._attn_implementation = "sdpa"  # as the loaded MiniLM
    layer = BertLayer(config).eval()
    return layer, torch.randn(1, 2, 32, generator=torch.Generator().manual_seed(1))


def _golden_tile_run(mx, x, params, **_):
    """The tile's job done by golden (no simulator): what the Verilated run returns when
    it matches (the product, then the bias add of golden.tile)."""
    from golden.tile import tile_bias

    bits = type(mx).forward_raw(mx, x).view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    bits = tile_bias(bits, mx.bias.view(torch.int32).to(torch.int64) & 0xFFFFFFFF)
    return bits, {"cycles": 1, "mismatches": 0, "missing": 0, "protocol_errors": [],
                  "timed_out": False, "macs": x.shape[0] * mx.out_features * mx.in_features,
                  "shape": (mx.out_features, mx.in_features), "log": "", "module": ""}


def test_comparisons_catch_one_wrong_value(monkeypatch):
    """With golden standing in for the tile everything matches; one flipped bit (the top
    fraction bit) in one float32 result handed back to the host is one product mismatch,
    and it reaches the layer's output and the MX inputs of the linears after it."""
    monkeypatch.setattr(sim.tile_layer, "_tile_run", _golden_tile_run)
    layer, hidden = tiny_layer()
    good = layer_on_tile(layer, hidden, PARAMS, seed=1)
    assert layer_passed(good) and [r["name"] for r in good["linears"]] == list(LINEARS)
    bad = layer_on_tile(layer, hidden, PARAMS, seed=1, fault="expected")
    assert not layer_passed(bad)
    # Q's one wrong value; K and V untouched; the linears after attention get other inputs
    # (and so other products) than golden's
    products = [r["product_mismatches"] for r in bad["linears"]]
    inputs = [r["input_mismatches"] for r in bad["linears"]]
    assert products[:3] == [1, 0, 0] and min(products[3:]) > 0
    assert inputs[:3] == [0, 0, 0] and min(inputs[3:]) > 0
    assert bad["output_mismatches"] > 0
    assert "FAIL" in format_layer_summary(bad)
    with pytest.raises(ValueError, match="fault must be None or 'expected', not 'lsb'"):
        layer_on_tile(layer, hidden, PARAMS, seed=1, fault="lsb")


def test_verilator_tiny_layer_matches_golden(sim_build):
    """The six linears on the Verilated tile (random idle and back-pressure), their biases
    added by the tile (bias="fp32"): every float32 output, every MX input and the layer's
    output equal golden.nn's bit for bit."""
    layer, hidden = tiny_layer()
    s = layer_on_tile(layer, hidden, PARAMS, seed=3, idle=0.3, backpressure=0.3,
                      build_root=sim_build)
    assert layer_passed(s), format_layer_summary(s)
    assert all(r["sim_mismatches"] == 0 and r["cycles"] > 0 for r in s["linears"])
    assert all(r["module"].endswith("_fp32_biasfp32") for r in s["linears"])
    assert 0 < s["utilisation"] <= 1
