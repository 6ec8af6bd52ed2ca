"""Formal proofs (Yosys ``sat``) that the dot product equals its definition; see
docs/formal.md for what each proves and the configurations too slow for the test suite."""

from __future__ import annotations

import re

import pytest

from hw.generate import Design, elaborate
from sim.formal import prove
from sim.formal.__main__ import main

#: (a_bits = b_bits, block, arch, primitives) proven for all time in the test suite.
STREAMING = [
    (4, 2, "tree", "generic"),
    (4, 3, "tree", "generic"),  # odd k: the unit's sum is narrower than the reference's
    (6, 16, "tree", "generic"),
    (8, 32, "tree", "generic"),
    (4, 2, "heap", "generic"),
    (4, 2, "heap", "xc7"),
]


def _design(bits: int, block: int, arch: str, target: str) -> Design:
    return elaborate("dot", a_bits=bits, b_bits=bits, exp_bits=8, block=block, arch=arch,
                     target=target, levels_per_stage=2)


@pytest.mark.parametrize(("bits", "block", "arch", "target"), STREAMING)
def test_streaming_proved(tmp_path, bits, block, arch, target):
    result = prove(_design(bits, block, arch, target), mode="streaming", timeout=120,
                   workdir=tmp_path)
    assert result.status == "PROVED", f"{result.detail}; log {result.log}"


@pytest.mark.parametrize(("bits", "block", "arch", "target", "extra"), [
    (4, 2, "tree", "generic", 8),
    (4, 2, "heap", "generic", 1),
    (4, 2, "heap", "xc7", 1),
])
def test_stall_bounded(tmp_path, bits, block, arch, target, extra):
    design = _design(bits, block, arch, target)
    steps = design.manifest["latency"] + extra
    result = prove(design, mode="stall", steps=steps, timeout=120, workdir=tmp_path)
    assert result.status == "PROVED", f"{result.detail}; log {result.log}"


def _with_design(design: Design, verilog: str) -> Design:
    return Design(name=design.name, verilog=verilog, manifest=design.manifest,
                  component=design.component)


def test_corrupt_tile_table_fails(tmp_path):
    # The first case table of the heap is a tile of product 0: its value is one summand of
    # S, so changing one entry changes S by a nonzero multiple of a power of two below the
    # sum's width for the inputs that select it.
    design = _design(4, 2, "heap", "generic")
    text = design.verilog
    table = text.index("casez")
    entry = re.compile(r"= (\d+)'h([0-9a-f]+);")
    match = next(m for m in entry.finditer(text, table) if int(m[2], 16) != 0)
    flipped = f"= {match[1]}'h{int(match[2], 16) ^ 1:x};"
    bad = text[:match.start()] + flipped + text[match.end():]
    result = prove(_with_design(design, bad), mode="streaming", timeout=120, workdir=tmp_path)
    assert result.status == "FAILED"
    assert result.counterexample, result.detail
    assert result.vcd is not None and result.vcd.exists()
    assert all("a_payload" in step and "b_payload" in step for step in result.counterexample)


def test_corrupt_exponent_sum_fails_under_stalls(tmp_path):
    # E_a - E_b differs from E_a + E_b (mod 2**(e + 1)) whenever 0 < E_b < 2**e.
    design = _design(4, 2, "tree", "generic")
    pattern = re.compile(r"(a__payload\[15:8\]) \+ (b__payload\[15:8\])")
    bad, count = pattern.subn(r"\1 - \2", design.verilog)
    assert count == 1
    result = prove(_with_design(design, bad), mode="stall", timeout=120, workdir=tmp_path)
    assert result.status == "FAILED"
    assert result.counterexample
    assert "o_ready" in result.counterexample[0]


def test_timeout_stops_yosys(tmp_path):
    result = prove(_design(4, 2, "heap", "generic"), mode="streaming", timeout=0.2,
                   workdir=tmp_path)
    assert result.status == "TIMEOUT" and not result.proved


def test_cli_proves(tmp_path, capsys):
    assert main(["--top", "dot", "--bits", "4", "--block", "2", "--arch", "tree",
                 "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["PROVED", "PROVED"]
    assert "streaming: for all time" in out[0] and "stall: for the first 10 cycles" in out[1]


@pytest.mark.parametrize(("argv", "message"), [
    (["--bits", "4", "--block", "0"], "--block must be from 1 to 1024, not 0"),
    (["--bits", "4", "--block", "2", "--arch", "tree", "--primitives", "xc7"],
     "--primitives 'xc7' needs arch 'heap'"),
    (["--top", "cast", "--bits", "4", "--block", "2"], "--top cast has no formal reference"),
    (["--bits", "4", "--block", "2", "--timeout", "0"], "--timeout must be positive"),
    (["--bits", "4", "--block", "2", "--steps", "0"], "--steps must be at least 1"),
])
def test_cli_bad_options(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(["--top", "dot", *argv] if argv[0] != "--top" else argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
