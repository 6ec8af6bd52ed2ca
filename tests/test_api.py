"""The Python API of docs/api.md: ``hw.generate.generate`` takes the command line's option
names and gives its files byte for byte."""

from __future__ import annotations

import pytest

from hw.generate import generate, main
from hw.unit import unit


@pytest.mark.parametrize(("options", "argv"), [
    ({"bits": 6, "block": 16}, ["--bits", "6", "--block", "16"]),
    ({"top": "cast", "bits": 4, "block": 8, "rounding": "floor", "float_format": "bf16"},
     ["--top", "cast", "--bits", "4", "--block", "8", "--rounding", "floor",
      "--float-format", "bf16"]),
    ({"top": "accum", "bits": 5, "block": 2, "interface": "axis"},
     ["--top", "accum", "--bits", "5", "--block", "2", "--interface", "axis"]),
    ({"top": "linear", "abits": 4, "wbits": 3, "block": 4, "lanes": 2, "output": "fp32"},
     ["--top", "linear", "--abits", "4", "--wbits", "3", "--block", "4", "--lanes", "2",
      "--output", "fp32"]),
])
def test_generate_equals_the_command_line(tmp_path, options, argv):
    options = dict(options)
    design = generate(options.pop("top", "dot"), out=tmp_path / "api", **options)
    assert main([*argv, "--out", str(tmp_path / "cli")]) == 0
    api = sorted((tmp_path / "api").iterdir())
    cli = sorted((tmp_path / "cli").iterdir())
    assert [p.name for p in api] == [p.name for p in cli]
    assert {p.suffix for p in api} == {".v", ".yaml", ".core"}
    for a, c in zip(api, cli, strict=True):
        assert a.read_bytes() == c.read_bytes(), a.name
    assert (tmp_path / "api" / f"{design.name}.v").read_text().endswith(design.verilog[-200:])


@pytest.mark.parametrize(("top", "options", "message"), [
    ("dot", {"bits": 6}, "--block is required for --top dot"),
    ("dot", {"bits": 6, "block": 16, "rounding": "floor"},
     "--rounding does not apply to --top dot"),
    ("dot", {"bits": "six", "block": 2}, "argument --bits: invalid int value: 'six'"),
    ("dot", {"bitz": 3}, "unknown option 'bitz'"),
    ("nope", {"bits": 3}, "argument --top: invalid choice: 'nope'"),
    ("dot", {"bits": 6, "block": 2, "config": "x.yaml"}, "config and version are"),
])
def test_generate_bad_options(top, options, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        generate(top, **options)


def test_generate_out_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="out .*f"):
        generate("dot", bits=4, block=2, out=tmp_path / "f")
    assert (tmp_path / "f").read_text() == "x"


def test_design_prints_a_summary():
    """print(design) shows what it is, not the whole Verilog text."""
    from hw.generate import elaborate

    d = elaborate("dot", a_bits=4, b_bits=4, block=2)
    text = repr(d)
    assert text.startswith("Design('mxint_dot_a4_w4_e8_k2', top='dot', latency=")
    assert "a in 16b, b in 16b, o out" in text and "lines of Verilog)" in text
    assert "module" not in text and len(text) < 200


def test_large_designs_are_announced():
    """hw.generate says up front when a design will take a while to elaborate."""
    from hw.generate import size_note
    from hw.unit import unit

    dot = unit("dot")
    assert size_note(dot, dot.record(a_bits=8, b_bits=8, block=64)) is None
    note = size_note(dot, dot.record(a_bits=8, b_bits=8, block=1024))
    assert note == ("mxint_dot_a8_w8_e8_k1024 is a large design (1024 MACs of 8 x 8 bits); "
                    "elaborating and converting it takes about 160 s or more")


@pytest.mark.parametrize(("top", "mxint", "minifloat"), [
    ("dot", {"bits": 4, "block": 2}, {"aformat": "mxfp4", "wformat": "mxint4", "block": 2}),
    ("adder", {"bits": 4, "out_bits": 4, "block": 2},
     {"aformat": "mxint4", "wformat": "mxfp4", "out_bits": 4, "block": 2}),
    # the dequantiser's block format is its field ``element`` (no side prefix)
    ("dequant", {"bits": 4, "block": 2}, {"format": "mxfp4", "block": 2}),
    ("dequant", {"source": "accum", "bits": 4, "block": 2},
     {"source": "accum", "aformat": "mxfp4", "wformat": "mxint4", "block": 2}),
])
def test_manifest_summary_names_the_operands(tmp_path, top, mxint, minifloat):
    """A manifest's summary says MXINT only for an MXINT design; a design with a minifloat
    operand gets the unit's MX line (``Unit.summary_mx``)."""
    spec = unit(top)
    plain = generate(top, out=tmp_path / "mxint", **mxint).manifest["summary"]
    mixed = generate(top, out=tmp_path / "mx", **minifloat).manifest["summary"]
    assert plain == spec.summary and "MXINT" in plain and "minifloat" not in plain
    assert mixed == spec.summary_mx and "minifloat" in mixed
