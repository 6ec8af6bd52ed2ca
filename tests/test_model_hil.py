"""Hardware in the loop: a real all-MiniLM-L6-v2 layer through the Verilated linear engine.

One 384x384 attention projection, 4 lanes, 2 tokens captured on real sentences, checked bit
for bit against golden.nn; then the same run with one expected value corrupted must fail.
Both runs share one Verilator build.
"""

from __future__ import annotations

import pytest

from sim.model_layer import format_layer_summary, layer_passed, run_layer
from sim.run import main as sim_main

LAYER = "encoder.layer.0.attention.self.query"
PARAMS = {"x_bits": 6, "w_bits": 6, "exp_bits": 8, "block": 16, "k_len": 384, "rows": 384,
          "lanes": 4, "guard_bits": 8, "acc_width": None, "arch": "heap",
          "levels_per_stage": 2, "output": "fp32"}
SEED = 11


def test_real_layer_matches_golden_nn(sim_build):
    print(f"seed {SEED}")
    s = run_layer(PARAMS, model="minilm", layer=LAYER, tokens=2, seed=SEED,
                  build_root=sim_build)
    print(format_layer_summary(s))
    assert s["checked"] == 2 * 384 // 4 and s["mismatches"] == 0 and s["missing"] == 0
    assert s["golden_linear_mismatches"] == 0 and not s["protocol_errors"]
    assert layer_passed(s)
    # 6-bit blocks: close to the float32 layer, not equal to it.
    assert 0 < s["max_abs_error"] < 0.05 * s["max_abs_output"]


def test_one_corrupted_value_is_caught(sim_build):
    print(f"seed {SEED}")
    s = run_layer(PARAMS, model="minilm", layer=LAYER, tokens=2, seed=SEED,
                  build_root=sim_build, fault="expected")
    assert s["mismatches"] == 1 and not layer_passed(s)
    assert "FAIL" in format_layer_summary(s)


@pytest.mark.parametrize(("argv", "message"), [
    (["--top", "dot", "--model", "minilm", "--layer", LAYER],
     "--model needs --top linear or tile, not --top dot"),
    (["--top", "linear", "--model", "minilm"], "--model and --layer go together"),
    (["--top", "linear", "--model", "minilm", "--layer", LAYER, "--tokens", "0"],
     "--tokens must be from 1 to 4096, not 0"),
    (["--top", "linear", "--model", "minilm", "--layer", LAYER, "--k-len", "100"],
     "--k-len must be 384 with --model"),
    (["--top", "linear", "--model", "minilm", "--layer", LAYER, "--output", "accum"],
     "--output must be fp32 with --model"),
    (["--top", "linear", "--model", "/nonexistent/model", "--layer", LAYER],
     "/nonexistent/model is not a folder"),
    (["--top", "tile", "--model", "minilm"], "--model and --layer go together"),
    (["--top", "tile", "--model", "minilm", "--layer", "encoder.layer.0", "--tokens", "0"],
     "--tokens must be from 1 to 512 with --top tile, not 0"),
    (["--top", "tile", "--model", "minilm", "--layer", "encoder.layer.0", "--k-len", "384"],
     "--k-len is set by the layer with --top tile --model"),
    (["--top", "tile", "--model", "minilm", "--layer", "encoder.layer.0", "--bias", "fp32"],
     "--bias is set by the layer with --top tile --model"),
    (["--top", "tile", "--model", "minilm", "--layer", "encoder.layer.0", "--wformat",
      "mxfp4"], "--top tile --model runs MXINT formats only"),
    (["--top", "tile", "--model", "minilm", "--layer", "encoder.layer.0",
      "--blocks-per-cycle", "2"], "--blocks-per-cycle does not apply with --top tile --model"),
    (["--top", "tile", "--model", "minilm", "--layer", "encoder.layer.0", "--rows", "6"],
     "rows must be a multiple of lanes (4), not 6"),
])
def test_bad_options_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        sim_main(["--bits", "6", "--block", "16", "--lanes", "4", *argv])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


# --- MXFP4 weights as stored in a gpt-oss-layout checkpoint (models.export) ---------------------


def test_mxfp4_checkpoint_layer_streams_as_stored(sim_build, tmp_path):
    """A slice of the layer (its first 4 rows and 64 columns), weights read from an MXFP4
    file written as ``python -m models.export`` writes it (here the layer's weight only),
    2 lanes, MXFP4 activations: the weight blocks streamed are the file's codes and scales,
    and every float32 result equals golden.nn's (an MXFP4 x MXFP4 MXLinear holding the
    file's weights), which equals golden.linear's. The engine is
    tests/test_mxfp_linear.py's MXFP4_K32, whose Verilator build it shares."""
    import torch

    from golden import parse_format
    from golden.checkpoint import load_mxfp4, save_mxfp4
    from golden.nn import MXLinear
    from hw.linear import LinearParams
    from models.export import linear_weights
    from models.load import load_model
    from sim.model_layer import layer_stimuli
    from tests.test_mxfp_linear import MXFP4_K32

    loaded = load_model("minilm")
    path = tmp_path / "minilm-mxfp4.safetensors"
    key = f"{LAYER}.weight"
    save_mxfp4(path, {key: linear_weights(loaded.model)[key]})
    params = LinearParams(**MXFP4_K32).kwargs()
    stored = load_mxfp4(path)[f"{LAYER}.weight"]
    data = layer_stimuli(loaded, LAYER, 2, params, weights_file=path)
    # The expectation is golden.nn's: an MXLinear that holds the file's weights.
    mx = MXLinear(torch.nn.Linear(64, 4), weights=parse_format("mxfp4"),
                  activations=parse_format("mxfp4"))
    mx.load_state_dict({**mx.state_dict(), "w_codes": stored.codes[:4, :2],
                        "w_exponent": stored.exponent[:4, :2], "bias": data["bias"]})
    raw = mx.forward_raw(data["x"]).contiguous().view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    assert [o["bits"] for o in data["expected"]["o"]] == \
        [raw[t, g * 2:g * 2 + 2].tolist() for t in range(2) for g in range(2)]
    w = data["stimuli"]["w"]
    assert [x["codes"][:32] for x in w[:2]] == stored.codes[0, :2].tolist()   # row 0
    assert [x["codes"][32:] for x in w[:2]] == stored.codes[1, :2].tolist()   # row 1
    assert [x["exponent"] for x in w[:2]] == stored.exponent[:2, :2].T.tolist()
    s = run_layer(params, model=loaded, layer=LAYER, tokens=2, seed=SEED,
                  build_root=sim_build, weights_file=path)
    print(format_layer_summary(s))
    assert (s["checked"], s["mismatches"], s["missing"], s["protocol_errors"]) == \
        (2 * 4 // 2, 0, 0, [])
    assert s["golden_linear_mismatches"] == 0 and s["formats"] == ("mxfp4_k32", "mxfp4_k32")
    assert layer_passed(s) and "as stored in" in format_layer_summary(s)
    assert "golden.nn   MXLinear (W mxfp4_k32, x mxfp4_k32) equals golden.linear on these " \
        "blocks: yes (0 mismatches)" in format_layer_summary(s)
    # MXFP4 weights and activations: near the float32 layer, not equal to it.
    assert 0 < s["max_abs_error"] < 0.5 * s["max_abs_output"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--format", "mxint6", "--block", "16"],
     "--weights-file holds MXFP4 weights in blocks of 32: give --wformat mxfp4"),
    (["--format", "mxfp4", "--block", "32"], "--weights-file /nonexistent.safetensors is not "
                                             "a file"),
])
def test_weights_file_bad_options_one_line(extra, message, capsys, tmp_path):
    f = "/nonexistent.safetensors"
    if "mxint6" in extra:
        f = str(tmp_path / "w.safetensors")
        (tmp_path / "w.safetensors").write_bytes(b"x")
    with pytest.raises(SystemExit) as exc:
        sim_main(["--top", "linear", "--lanes", "4", *extra, "--model", "minilm", "--layer",
                  LAYER, "--weights-file", f])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and len(err.strip().splitlines()) == 1
