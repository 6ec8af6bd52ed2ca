"""flows.accuracy: the real-model accuracy sweep, its reports, cache and command line."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

import golden.format
import golden.rounding
from flows import accuracy
from flows.accuracy import Config, accuracy_rows, main
from flows.cache import ResultCache

SMALL = ["--model", "minilm", "--bits", "8", "--block", "32", "--sentences", "6",
         "--jobs", "1", "--baseline", "bf16", "--quiet"]


def test_constants_are_goldens():
    assert (accuracy.MAX_MAN_BITS, accuracy.MAX_EXP_BITS, accuracy.MAX_BLOCK) == \
        (golden.format.MAX_MAN_BITS, golden.format.MAX_EXP_BITS, golden.format.MAX_BLOCK)
    assert accuracy.ROUNDING_MODES == golden.rounding.ROUNDING_MODES
    assert set(accuracy.MXFP_FORMATS) | {"mxfp4_e2m1"} == set(golden.format.MXFP_NAMES)
    for name, width in accuracy.MXFP_FORMATS.items():
        assert golden.format.parse_format(name).element_bits == width


def test_small_sweep_reports_cache_and_determinism(tmp_path, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert main([*SMALL, "--out", str(out), "--cache", str(cache)]) == 0
    assert "0 of 2 configurations reused" in capsys.readouterr().err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["accuracy.csv", "accuracy.json", "accuracy.md", "accuracy.png"]
    report = json.loads((out / "accuracy.json").read_text())
    rows = report["rows"]
    assert [r["label"] for r in rows] == ["W8A8 k32", "bf16"]
    mx, bf16 = rows
    for key in ("weight_bits", "act_bits", "block", "cosine_mean", "cosine_min",
                "top1_agreement"):
        assert key in mx
    assert (mx["weight_bits"], mx["act_bits"], mx["block"]) == (8, 8, 32)
    assert 0.99 < mx["cosine_min"] <= mx["cosine_mean"] < 1.0
    assert bf16["cosine_min"] > 0.9999 and bf16["block"] is None
    assert len(mx["layers"]) == 37 and all(layer["weight_sqnr_db"] > 30
                                           for layer in mx["layers"])
    assert "| W8A8 k32 | 8 | 8 | 32 | engine |" in (out / "accuracy.md").read_text()
    assert (mx["arithmetic"], bf16["arithmetic"]) == ("engine", "fake")
    first = {n: (out / n).read_bytes() for n in names}
    # Cached: nothing recomputed, byte-identical files.
    assert main([*SMALL, "--out", str(out), "--cache", str(cache)]) == 0
    assert "2 of 2 configurations reused" in capsys.readouterr().err
    assert {n: (out / n).read_bytes() for n in names} == first


def test_rows_api_for_other_flows(tmp_path):
    cache = ResultCache(tmp_path / "cache")
    stats: dict = {}
    rows = accuracy_rows("minilm", [(8, 8, 32)], baselines=(), count=6, cache=cache,
                         stats=stats)
    assert stats == {"computed": 1, "cached": 0} and rows[0]["label"] == "W8A8 k32"
    again = accuracy_rows("minilm", [Config("mxint", 8, 8, 32)], baselines=(), count=6,
                          cache=cache, stats=stats)
    assert stats == {"computed": 0, "cached": 1} and again == rows


@pytest.mark.parametrize(("args", "match", "exc"), [
    (([(8, 8)],), r"a configuration must be an mxint or mxfp Config or a", TypeError),
    (([Config("mxfp", 4, 4, 32, weight_format="mxfp5", act_format="mxfp4")],),
     r"weight format must be one of mxfp8_e5m2, .*, not 'mxfp5'", ValueError),
    (([(1, 8, 32)],), r"weight_bits must be from 2 to 24, not 1", ValueError),
    (([(8, 8, 0)],), r"block must be from 1 to 1024, not 0", ValueError),
    (([], ), r"baseline must be one of int8, bf16, not 'fp8'", ValueError),
    (([Config("mxfp", 8, 8, 32, weight_format="mxfp8_e5m2", act_format="mxfp8_e5m2")],),
     r"arithmetic 'engine' cannot compute weights mxfp8_e5m2 with activations mxfp8_e5m2: "
     r"the dot results of MXFP8 E5M2 x E5M2 \(70 bits at k32\) are wider than the engine's "
     r"62-bit accumulator; use 'auto' or 'fake'", ValueError),
    (([Config("mxfp", 4, 16, 32, weight_format="mxfp4", act_format="bf16",
              arithmetic="exact")],),
     r"arithmetic must be one of auto, engine, fake, not 'exact'", ValueError),
])
def test_rows_api_bad_parameters(args, match, exc):
    kwargs = {"baselines": ("fp8",)} if "fp8" in match else {"baselines": ()}
    with pytest.raises(exc, match=match):
        accuracy_rows("minilm", *args, **kwargs)
    with pytest.raises(ValueError, match=r"jobs must be from 1 to 64, not 0"):
        accuracy_rows("minilm", [(8, 8, 32)], jobs=0)


@pytest.mark.parametrize(("argv", "message"), [
    (["--block", "16"], "--bits is required unless both --wbits and --abits, or --formats, "
                        "are given"),
    (["--formats", "mxfp4:fp16", "--block", "16"], "argument --formats: activation format "
     "must be one of mxfp8_e5m2, mxfp8_e4m3, mxfp6_e3m2, mxfp6_e2m3, mxfp4, bf16, not "
     "'fp16' (in 'mxfp4:fp16')"),
    (["--bits", "x", "--block", "16"], "argument --bits: 'x' is not an integer"),
    (["--bits", "6", "--block", "0"], "argument --block: 0 is not from 1 to 1024"),
    (["--bits", "25", "--block", "16"], "argument --bits: 25 is not from 2 to 24"),
    (["--bits", "6", "--block", "16", "--baseline", "fp8"],
     "argument --baseline: unknown value 'fp8'; choose from int8, bf16, none"),
    (["--bits", "6", "--block", "16", "--sentences", "0"],
     "argument --sentences: 0 is not from 1 to 4096 (the evaluation set holds"),
    (["--bits", "6", "--block", "16", "--jobs", "0"], "argument --jobs: 0 is not from 1 to 64"),
    (["--bits", "6", "--block", "16", "--model", "/no/such/model"],
     "--model: model '/no/such/model': /no/such/model is not a folder"),
    (["--bits", "6", "--block", "16", "--exp-bits", "4,8"], "--exp-bits takes one value"),
    (["--formats", "mxfp4,mxfp4:bf16", "--block", "32", "--arithmetic", "engine"],
     "--arithmetic engine cannot compute --formats mxfp4:bf16: bf16 activations are not an "
     "MX block format, and the linear engine multiplies MX blocks; use --arithmetic auto "
     "(fake for this row) or fake"),
    (["--formats", "mxfp8_e5m2", "--block", "32", "--arithmetic", "engine"],
     "--arithmetic engine cannot compute --formats mxfp8_e5m2:mxfp8_e5m2: the dot results "
     "of MXFP8 E5M2 x E5M2"),
    (["--formats", "mxfp4", "--block", "32", "--arithmetic", "exact"],
     "argument --arithmetic: invalid choice: 'exact'"),
])
def test_bad_options_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_configurations_from_options():
    parser = accuracy.build_parser()
    args = parser.parse_args(["--wbits", "4,6", "--abits", "8", "--block", "16,32"])
    got = [(c.weight_bits, c.act_bits, c.block)
           for c in accuracy.configs_from_args(args, parser)]
    assert got == [(4, 8, 16), (4, 8, 32), (6, 8, 16), (6, 8, 32)]
    args = parser.parse_args(["--bits", "6,4", "--block", "32"])
    got = [(c.weight_bits, c.act_bits, c.block)
           for c in accuracy.configs_from_args(args, parser)]
    assert got == [(4, 4, 32), (6, 6, 32)]
    args = parser.parse_args(["--formats", "mxfp4,MXFP4:bf16,mxfp4", "--block", "32"])
    got = [(c.label, c.weight_bits, c.act_bits, c.arithmetic)
           for c in accuracy.configs_from_args(args, parser)]
    assert got == [("mxfp4 k32", 4, 4, "auto"), ("W mxfp4 A bf16 k32", 4, 16, "auto")]
    args = parser.parse_args(["--formats", "mxfp4:bf16", "--block", "32", "--arithmetic",
                              "fake"])
    assert [c.arithmetic for c in accuracy.configs_from_args(args, parser)] == ["fake"]


def test_auto_arithmetic_is_the_engine_where_golden_nn_computes_the_pair():
    """``auto``: the engine for every MXINT row and every MXFP pair golden.nn takes on an
    encoder; fake for bf16 activations and E5M2 x E5M2, and for everything on a causal
    model. engine_refusal's rule (no torch) is golden.nn's, pair by pair."""
    from torch import nn

    from golden import parse_format
    from golden.nn import MXLinear

    resolve = accuracy.resolve_arithmetic
    for w in accuracy.MXFP_FORMATS:
        for a in [*accuracy.MXFP_FORMATS, "bf16"]:
            why = accuracy.engine_refusal(w, a)
            if a == "bf16":
                assert why.startswith("bf16 activations are not an MX block format")
            else:
                for block in (16, 32):
                    try:
                        MXLinear(nn.Linear(block, 1), weights=parse_format(w, block=block),
                                 activations=parse_format(a, block=block))
                        golden_refuses = False
                    except ValueError as exc:
                        assert "beyond the accumulator's 62" in str(exc)
                        golden_refuses = True
                    assert golden_refuses == bool(why), (w, a, block)
            got = resolve(accuracy.mxfp_config(w, a, 32), causal=False).arithmetic
            assert got == ("fake" if why else "engine")
            assert resolve(accuracy.mxfp_config(w, a, 32), causal=True).arithmetic == "fake"
    assert accuracy.engine_refusal("mxfp8_e5m2", "mxfp8_e5m2")
    assert resolve(Config("mxint", 4, 4, 32, arithmetic="auto"), causal=False).arithmetic \
        == "engine"
    assert resolve(accuracy.mxfp_config("mxfp4", "mxfp4", 32, arithmetic="fake"),
                   causal=False).arithmetic == "fake"
    baseline = Config("bf16", 16, 16)
    assert resolve(baseline, causal=True) is baseline


def _tiny_model():
    """Two linear layers, in-features 64 (two blocks of 32) and 8 (one padded block)."""
    import torch
    from torch import nn

    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 4))


def _tiny_input():
    """Four tokens whose first block is 2**16 times their second: the block sums are
    aligned across 16 exponents, beyond the accumulator's 8 guard bits, where float32
    products and sums round differently from the engine."""
    import torch

    torch.manual_seed(4)
    x = torch.randn(4, 64)
    x[:, :32] *= 2.0 ** 16
    return x


@pytest.mark.parametrize(("w", "a"), [("mxfp4", "mxfp8_e4m3"), ("mxfp6_e2m3", "mxfp6_e2m3")])
def test_mxfp_engine_row_is_golden_nn_and_differs_from_fake(w, a):
    """An MXFP engine row computes what golden.nn.quantize_model computes, bit for bit; the
    fake row of the same formats (same quantised operands, same weight SQNR) does not, so
    a row built with the wrong arithmetic is caught."""
    import copy

    import torch

    from golden import parse_format
    from golden.nn import quantize_model

    model, x = _tiny_model(), _tiny_input()
    direct = copy.deepcopy(model)
    report = quantize_model(direct, weights=parse_format(w, block=32),
                            activations=parse_format(a, block=32))
    assert list(report) == ["0", "2"]
    got = {}
    for arithmetic in ("engine", "fake"):
        m = copy.deepcopy(model)
        layers = accuracy._quantize(m, accuracy.mxfp_config(w, a, 32, arithmetic=arithmetic))
        got[arithmetic] = (m(x), m[0](x), [sqnr for _, sqnr, _ in layers])
    with torch.no_grad():
        assert torch.equal(got["engine"][0], direct(x))
        assert not torch.equal(got["fake"][1], got["engine"][1])  # the first layer's sums
    assert got["engine"][2] == got["fake"][2]


def test_weights_file_engine_rows_take_the_files_codes(tmp_path):
    """With --weights-file an engine row's layers hold the file's element codes and scales
    (not a requantisation of the model's own weights)."""
    import torch

    from golden import MXFPTensor, dequantize, parse_format, quantize
    from golden.checkpoint import save_mxfp4
    from models.load import file_sha256

    model = _tiny_model()
    # Not the model's weights: the file's must win.
    stored = {"0.weight": quantize(torch.randn(8, 64), parse_format("mxfp4"), axis=-1)}
    path = tmp_path / "w.safetensors"
    save_mxfp4(path, stored)
    config = replace(accuracy.mxfp_config("mxfp4", "mxfp8_e4m3", 32, arithmetic="engine"),
                     keep=("2",), weights_file=str(path), weights_sha256=file_sha256(path))
    layers = accuracy._quantize(model, config)
    assert [name for name, _, _ in layers] == ["0"]
    q = model[0].w_q
    assert isinstance(q, MXFPTensor) and torch.equal(q.codes, stored["0.weight"].codes)
    assert torch.equal(q.exponent, stored["0.weight"].exponent)
    assert torch.equal(model[0].weight, dequantize(stored["0.weight"]))


def test_mxfp_rows(tmp_path):
    """MXFP rows run and rank as the formats' precision says: E4M3 (3 mantissa bits) keeps
    more than E2M1 (1 bit), and bf16 activations keep more than MXFP4 ones."""
    rows = accuracy_rows("minilm", [accuracy.mxfp_config(w, a, 32) for w, a in
                                    [("mxfp8_e4m3", "mxfp8_e4m3"), ("mxfp4", "mxfp4"),
                                     ("mxfp4", "bf16")]], baselines=(), count=6)
    e4m3, fp4, fp4_bf16 = (r["cosine_mean"] for r in rows)
    assert 0.99 < e4m3 < 1.0 and fp4 < fp4_bf16 < e4m3
    assert [r["arithmetic"] for r in rows] == ["engine", "engine", "fake"]
    assert [r["label"] for r in rows] == ["mxfp8_e4m3 k32", "mxfp4 k32", "W mxfp4 A bf16 k32"]
    assert rows[2]["act_format"] == "bf16" and rows[2]["act_bits"] == 16


def test_unwritable_out_is_refused_before_the_model(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as exc:
        main([*SMALL, "--out", str(blocker / "sub"), "--cache", str(tmp_path / "c")])
    assert exc.value.code == 2
    assert capsys.readouterr().err == (f"python -m flows.accuracy: error: --out "
                                       f"{blocker / 'sub'} cannot be created: {blocker} is a "
                                       "file, not a folder\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # no cache: nothing ran


def test_weights_file_runs_the_model_from_an_mxfp4_checkpoint(tmp_path, capsys):
    """MiniLM's linear weights written as MXFP4 (gpt-oss layout) and read back by
    ``--weights-file`` give exactly the rows of quantising them in place: the file holds
    what golden.quantize gives, and every layer took its weight from it."""
    from golden import dequantize
    from golden.checkpoint import load_mxfp4, save_mxfp4
    from models.export import main as export

    path = tmp_path / "minilm-mxfp4.safetensors"
    assert export(["--model", "minilm", "--out", str(path)]) == 0
    assert "37 linear weights" in capsys.readouterr().out
    configs = [accuracy.mxfp_config("mxfp4", a, 32) for a in ("mxfp4", "bf16")]
    parser = accuracy.build_parser()
    from_file = accuracy.weights_file_configs(path, configs, parser)
    assert {c.weights_sha256 for c in from_file} != {None}
    want = accuracy_rows("minilm", configs, baselines=(), count=6, jobs=1)
    got = accuracy_rows("minilm", from_file, baselines=(), count=6, jobs=1)
    for g, w in zip(got, want, strict=True):
        assert g["label"] == w["label"] + " (weights from file)"
        assert (g["cosine_mean"], g["cosine_min"]) == (w["cosine_mean"], w["cosine_min"])

    # A file that lacks a layer, or whose weights differ, is caught.
    stored = load_mxfp4(path)
    name = "encoder.layer.0.attention.self.query.weight"
    partial = tmp_path / "partial.safetensors"
    save_mxfp4(partial, {k: v for k, v in stored.items() if k != name})
    short = accuracy.weights_file_configs(partial, configs[:1], parser)
    with pytest.raises(accuracy.ModelError, match=f"holds no {name}"):
        accuracy_rows("minilm", short, baselines=(), count=6, jobs=1, cache=None)
    wrong = tmp_path / "wrong.safetensors"
    save_mxfp4(wrong, {k: -dequantize(v) if k == name else v for k, v in stored.items()})
    other = accuracy.weights_file_configs(wrong, configs[:1], parser)
    assert accuracy_rows("minilm", other, baselines=(), count=6, jobs=1)[0]["cosine_mean"] \
        != want[0]["cosine_mean"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--bits", "8"], "every row must be --formats mxfp4[:ACT] --block 32, and W8A8 k32"),
    (["--formats", "mxfp8_e4m3"], "and mxfp8_e4m3 k32 is not"),
])
def test_weights_file_rows_must_be_mxfp4_k32(tmp_path, capsys, extra, message):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"")
    with pytest.raises(SystemExit) as exc:
        main(["--model", "minilm", "--block", "32", *extra, "--weights-file", str(path),
              "--out", str(tmp_path / "o"), "--no-cache", "--quiet"])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_weights_file_must_be_a_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--model", "minilm", "--block", "32", "--formats", "mxfp4", "--weights-file",
              str(tmp_path), "--out", str(tmp_path / "o"), "--no-cache", "--quiet"])
    assert exc.value.code == 2
    assert f"--weights-file {tmp_path} is not a file" in capsys.readouterr().err
