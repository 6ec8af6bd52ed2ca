"""Formal proofs (Yosys ``sat``) that each unit equals its definition; see docs/formal.md
for what each proves and the configurations too slow for the test suite."""

from __future__ import annotations

import copy
import re

import pytest

from hw.generate import Design, elaborate
from sim.formal import prove
from sim.formal.__main__ import main

#: (a_bits = b_bits, block, arch, primitives) proven for all time in the test suite.
STREAMING = [
    (4, 2, "tree", "generic"),
    (4, 3, "tree", "generic"),  # odd k: the unit's sum is narrower than the reference's
    (6, 16, "tree", "generic"),  # 8-bit k32: `make prove` (26 s, out of the CI budget)
    (4, 2, "heap", "generic"),
    (4, 2, "heap", "xc7"),
]


def _design(bits: int, block: int, arch: str, primitives: str) -> Design:
    return elaborate("dot", a_bits=bits, b_bits=bits, exp_bits=8, block=block, arch=arch,
                     primitives=primitives, levels_per_stage=2)


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


def test_cli_timeout_is_one_line(tmp_path, capsys):
    assert main(["--top", "dot", "--bits", "4", "--block", "2", "--arch", "tree",
                 "--mode", "streaming", "--timeout", "0.01", "--workdir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert len(out) == 1 and captured.err == ""
    assert out[0].startswith("TIMEOUT mxint_dot_a4_w4_e8_k2_tree streaming: no verdict within "
                             "0.01 s: --timeout 0.01 s expired; give a larger one or prove a "
                             "smaller size (log: ")


def test_cli_says_up_front_that_a_proof_is_large(tmp_path, capsys, monkeypatch):
    import sim.formal.__main__ as cli
    from sim.formal.yosys import ProofResult

    monkeypatch.setattr(cli, "prove", lambda design, **kw: ProofResult(
        "PROVED", 0.0, kw["mode"], 1, f"{kw['mode']}: stub"))
    argv = ["--top", "dot", "--block", "16", "--arch", "tree", "--mode", "streaming",
            "--workdir", str(tmp_path)]
    assert main(["--bits", "6", *argv]) == 0
    err = capsys.readouterr().err
    assert err == ("python -m sim.formal: mxint_dot_a6_w6_e8_k16_tree is a large proof (208 "
                   "input bits): it may take minutes (docs/formal.md lists the times "
                   "measured); --timeout 600 s stops each proof\n")
    assert main(["--bits", "2", *argv]) == 0  # 2 x (2 x 16 + 8) = 80 bits: no note
    assert capsys.readouterr().err == ""


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
    (["--top", "fpmac", "--fp-preset", "e4m3", "--block", "1"],
     "--top fpmac has no formal reference"),
    (["--bits", "4", "--block", "2", "--timeout", "0"],
     "argument --timeout: 0 is not above zero"),
    (["--bits", "4", "--block", "2", "--timeout", "inf"],
     "argument --timeout: inf is not a finite number (give a large"),
    (["--bits", "4", "--block", "2", "--steps", "0"],
     "argument --steps: 0 is not from 1 to 200 (each step unrolls"),
    (["--bits", "4", "--block", "2", "--group", "0"],
     "argument --group: 0 is not from 1 to 16 (each input more a group"),
    (["--bits", "4", "--block", "2", "--group", "4"],
     "--group applies only to the streaming proof of a unit whose input closes groups "
     "(accum), not to --top dot --mode both"),
    (["--top", "accum", "--bits", "4", "--block", "2", "--mode", "stall", "--group", "4"],
     "not to --top accum --mode stall"),
])
def test_cli_bad_options(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(["--top", "dot", *argv] if argv[0] != "--top" else argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


# --- the other units: each reference of sim/formal/ref_*.py, proven at small sizes ------

def _proved(design: Design, mode: str, tmp_path, **options) -> None:
    result = prove(design, mode=mode, timeout=120, workdir=tmp_path, **options)
    assert result.status == "PROVED", f"{result.detail}; log {result.log}"


def _cast(rounding: str = "even", float_format: str = "fp32", bits: int = 4,
          block: int = 2) -> Design:
    return elaborate("cast", man_bits=bits, exp_bits=8, block=block, rounding=rounding,
                     float_format=float_format)


@pytest.mark.parametrize("float_format", ["fp32", "bf16"])
@pytest.mark.parametrize("rounding", ["even", "away", "zero", "floor"])
def test_cast_streaming_proved(tmp_path, rounding, float_format):
    _proved(_cast(rounding, float_format), "streaming", tmp_path)


@pytest.mark.parametrize("params", [
    # e = 3: the shared exponent clamps at both ends, so elements saturate (left shifts)
    {"exp_bits": 3, "rounding": "floor"},
    {"man_bits": 8, "block": 4},
])
def test_cast_other_sizes_proved(tmp_path, params):
    design = elaborate("cast", **{"man_bits": 4, "exp_bits": 8, "block": 2,
                                  "rounding": "even", "float_format": "fp32", **params})
    _proved(design, "streaming", tmp_path)


def _mxfp_cast(element: str, rounding: str = "even", float_format: str = "fp32",
               scale_rounding: str = "floor", block: int = 2) -> Design:
    return elaborate("cast", element=element, block=block, rounding=rounding,
                     float_format=float_format, scale_rounding=scale_rounding)


#: Each minifloat element once, the four modes, both input formats and both scale choices
#: spread over them; e2m1 also with floor rounding of a floor scale.
MXFP_PROOFS = [("e5m2", "even", "fp32", "floor"), ("e4m3", "floor", "bf16", "rceil"),
               ("e3m2", "away", "fp32", "rceil"), ("e2m3", "zero", "bf16", "floor"),
               ("e2m1", "even", "fp32", "rceil"), ("e2m1", "floor", "fp32", "floor")]


@pytest.mark.parametrize("case", MXFP_PROOFS, ids=["_".join(c) for c in MXFP_PROOFS])
def test_cast_mxfp_streaming_proved(tmp_path, case):
    _proved(_mxfp_cast(*case), "streaming", tmp_path)


def _adder(**params) -> Design:
    return elaborate("adder", **{"a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 2,
                                 "out_bits": 4, "guard_bits": 3, "rounding": "even", **params})


@pytest.mark.parametrize("params", [
    {},
    # unequal widths, a narrower result, few guard bits, small e (clamping reachable)
    {"a_bits": 3, "b_bits": 4, "out_bits": 3, "guard_bits": 1, "exp_bits": 3,
     "rounding": "floor"},
])
def test_adder_streaming_proved(tmp_path, params):
    _proved(_adder(**params), "streaming", tmp_path)


def test_mxfp_adder_streaming_proved(tmp_path):
    """MXINT2 + MXFP8 E4M3, one element: the decoded codes (subnormals, 448, the NaN code
    S.1111.111) against the reference's own decoder, every scale pair."""
    _proved(elaborate("adder", a_element="int", a_bits=2, b_element="e4m3", exp_bits=8,
                      block=1, out_bits=4, guard_bits=0, rounding="even"), "streaming",
            tmp_path)


def _dequant(**params) -> Design:
    return elaborate("dequant", **{"man_bits": 4, "exp_bits": 8, "block": 2, **params})


@pytest.mark.parametrize("params", [{}, {"man_bits": 3, "exp_bits": 3}])
def test_dequant_streaming_proved(tmp_path, params):
    _proved(_dequant(**params), "streaming", tmp_path)


def _mxfp_dot() -> Design:
    return elaborate("dot", a_element="e2m1", b_element="e2m1", block=2)


def test_dot_mxfp_streaming_proved(tmp_path):
    """E2M1 x E2M1 (exponent-sum placement's magnitude table, hw/placement.py) against a
    reference that decodes each code from its definition and multiplies; proven whole (the
    piecewise heap proof is for tiles). E4M3, E2M3 and E3M2 x MXINT take minutes or more
    at k = 2 (docs/formal.md)."""
    _proved(_mxfp_dot(), "streaming", tmp_path)


@pytest.mark.parametrize(("a_element", "b_element"), [
    ("e3m2", "e3m2"),  # three shifter stages' structure, sign last
    ("e2m3", "e2m3"),  # a shift per operand, the 4 x 4 significand product of two tables
    ("e5m2", "e2m1"),  # the widest exponent range against the narrowest element, sign first
])
def test_dot_mxfp_k1_streaming_proved(tmp_path, a_element, b_element):
    """The other placed structures at one product per block (seconds each; E4M3 x E4M3 k1
    takes about a minute and is in ``make prove``). E5M2 x E2M1 at one level per stage:
    its specials zeroed before the sign and its signs counted (hw/placement.py note 10)."""
    lps = 1 if a_element == "e5m2" else 2
    _proved(elaborate("dot", a_element=a_element, b_element=b_element, block=1,
                      levels_per_stage=lps), "streaming", tmp_path)


@pytest.mark.parametrize("element", ["e5m2", "e4m3", "e3m2", "e2m3", "e2m1"])
def test_dequant_mxfp_streaming_proved(tmp_path, element):
    _proved(elaborate("dequant", element=element, block=2), "streaming", tmp_path)


def _dequant_accum() -> Design:
    # e = 8 and W = 28: ties, subnormals, underflow to ±0 and overflow to ±inf all occur
    return elaborate("dequant", source="accum", a_bits=2, b_bits=2, block=1, exp_bits=8,
                     guard_bits=0, acc_width=28)


def test_dequant_accum_streaming_proved(tmp_path):
    _proved(_dequant_accum(), "streaming", tmp_path)


def _accum(**params) -> Design:
    # acc_width = in_width + guard_bits, the narrowest: groups of two can saturate
    return elaborate("accum", **{"a_bits": 2, "b_bits": 2, "exp_bits": 2, "block": 1,
                                 "guard_bits": 0, "acc_width": 4, "align": "loop", **params})


@pytest.mark.parametrize("params", [
    {},
    {"a_bits": 4, "b_bits": 4, "block": 2, "exp_bits": 3, "guard_bits": 2, "acc_width": 11},
])
def test_accum_loop_streaming_proved(tmp_path, params):
    _proved(_accum(**params), "streaming", tmp_path, group=2)


def test_accum_interleave_streaming_proved(tmp_path):
    """Two partial sums, groups of at most 3 inputs: the combination alone (groups of 1 and
    2) and a partial sum's own recurrence through the loop's two stages (groups of 3)."""
    _proved(_accum(align="interleave"), "streaming", tmp_path, group=3)


@pytest.mark.parametrize("primitives", ["generic", "ecp5"])
def test_accum_lookahead_streaming_proved(tmp_path, primitives):
    """``align="lookahead"`` against the one-sum reference, for all time, groups of at most
    3 inputs: at ``W = 4`` the pending shift ``p`` takes 0 .. 2, every rise from the
    second input on can drain it (``p + d >= W - 1``) and a group can drain twice; the
    low adder's carry meets a drain, a group's first input clears the loop, and sums
    saturate. With ``primitives="ecp5"`` the loop's CCU2C cells are Yosys' own models
    (``cells_sim.v``, read as logic): the INIT values are what is proven, whole (the cells
    are few; the piecewise method of the bit heap is for its tiles), for groups of at
    most 4 inputs: a group can then drain with the lost carry of the drain before still
    pending (the loop's chains split, :func:`hw.accumulator._lookahead_ecp5`)."""
    group = 4 if primitives == "ecp5" else 3
    _proved(_accum(align="lookahead", primitives=primitives), "streaming", tmp_path,
            group=group)


def test_accum_lookahead_coarse_streaming_proved(tmp_path):
    """``W = 12`` (``p`` in 0 .. 10: the coarse stages of the input's left shift and of the
    output's right shift, which ``W = 4`` does not have), groups of at most 2 inputs."""
    _proved(_accum(align="lookahead", a_bits=4, b_bits=4, block=2, exp_bits=3, guard_bits=2,
                   acc_width=12), "streaming", tmp_path, group=2)


def _lookahead_mutant(monkeypatch, name: str, **params) -> Design:
    """``align="lookahead"``'s design (:func:`_accum` with ``params``) built by the code of
    mutant ``name`` of :mod:`benchmarks.mutation`, which must change its Verilog."""
    from hw.accumulator import MXIntAccumulator
    from tests.mutants import mutated_module

    good = _accum(align="lookahead", **params)
    monkeypatch.setattr(MXIntAccumulator, "_elaborate_lookahead",
                        mutated_module(name).MXIntAccumulator._elaborate_lookahead)
    bad = _accum(align="lookahead", **params)
    assert bad.verilog != good.verilog, name
    return bad


@pytest.mark.parametrize(("name", "params", "mode", "options"), [
    # a drain drops the carry pending between the loop's two adders
    ("accum-lookahead-drain-carry", {}, "streaming", {"group": 3}),
    # ecp5: a group's first input adds to the last group's low bits and carry
    ("accum-lookahead-ecp5-clear", {"primitives": "ecp5"}, "streaming", {"group": 3}),
    # ecp5: E_max's compare, made a cycle ahead, forgets that the input before opened a group
    ("accum-lookahead-ecp5-ahead", {"primitives": "ecp5"}, "streaming", {"group": 3}),
    # ecp5: a drain drops the carry out of the bits it drops
    ("accum-lookahead-ecp5-lost", {"primitives": "ecp5"}, "streaming", {"group": 3}),
    # ecp5: a drain drops the lost carry still pending from the drain before (groups of 4)
    ("accum-lookahead-ecp5-lost-up", {"primitives": "ecp5"}, "streaming", {"group": 4}),
    # the enable copies ignore back-pressure: only a free o.ready shows it
    ("accum-lookahead-enable-copy", {}, "stall", {"steps": 12}),
], ids=["drain_carry", "ecp5_clear", "ecp5_ahead", "ecp5_lost", "ecp5_lost_up",
        "enable_copy"])
def test_accum_lookahead_mutant_fails(tmp_path, monkeypatch, name, params, mode, options):
    _fails(_lookahead_mutant(monkeypatch, name, **params), mode, tmp_path, **options)


def test_accum_stall_align_bounded(tmp_path):
    # data-dependent input rate: results matched by order, a bounded check
    design = _accum(align="stall")
    _proved(design, "streaming", tmp_path, steps=design.manifest["latency"] + 5)


def test_intmac_streaming_proved(tmp_path):
    _proved(elaborate("intmac", a_bits=4, b_bits=4, acc_width=10), "streaming", tmp_path,
            group=2)


def test_intdot_streaming_proved(tmp_path):
    design = elaborate("intdot", a_bits=3, b_bits=3, block=2, acc_width=10, arch="tree")
    _proved(design, "streaming", tmp_path, group=2)


@pytest.mark.parametrize(("params", "extra"), [
    ({"exp_bits": 3, "acc_width": 7}, 7),
    # each lane's result rounded to float32
    ({"exp_bits": 8, "output": "fp32"}, 3),
])
def test_linear_bounded(tmp_path, params, extra):
    design = elaborate("linear", **{"x_bits": 3, "w_bits": 3, "block": 2, "k_len": 4,
                                    "rows": 2, "lanes": 1, "guard_bits": 0, "arch": "tree",
                                    **params})
    _proved(design, "streaming", tmp_path, steps=design.manifest["latency"] + extra)


#: Free valid, ready and reset: latency + 8 cycles (the issue's depth) where that finishes
#: in seconds, else as many as do (one or more results through any stall pattern).
@pytest.mark.parametrize(("design", "extra"), [
    (lambda: _cast(), 1),
    (lambda: _adder(), 1),
    (lambda: _dequant(), 2),
    (lambda: _accum(), 3),
    (lambda: _accum(align="stall"), 3),
    # latency 9 + 3 = 12 cycles: 1.7 s; 13 take 13 s and 14 over two minutes
    (lambda: _accum(align="lookahead"), 3),
    (lambda: _accum(align="lookahead", primitives="ecp5"), 3),
    (lambda: elaborate("intmac", a_bits=4, b_bits=4, acc_width=10), 8),
    # registered back-pressure: the skid register at the output (hw.pipeline.output_stage)
    (lambda: elaborate("cast", man_bits=4, exp_bits=8, block=2, out_ready="registered"),
     2),
    (lambda: _accum(out_ready="registered"), 4),
], ids=["cast", "adder", "dequant", "accum_loop", "accum_stall", "accum_lookahead",
        "accum_lookahead_ecp5", "intmac", "cast_registered", "accum_loop_registered"])
def test_stall_bounded_units(tmp_path, design, extra):
    unit = design()
    _proved(unit, "stall", tmp_path, steps=unit.manifest["latency"] + extra)


def _corrupt(design: Design, pattern: str, replacement: str) -> Design:
    """``design`` with the first match of ``pattern`` in its Verilog replaced."""
    bad, count = re.subn(pattern, replacement, design.verilog, count=1)
    assert count == 1, pattern
    return _with_design(design, bad)


def _fails(design: Design, mode: str, tmp_path, **options) -> None:
    result = prove(design, mode=mode, timeout=120, workdir=tmp_path, **options)
    assert result.status == "FAILED", result.detail
    assert result.counterexample, result.detail
    assert result.vcd is not None and result.vcd.exists()


#: Chained words (hw/placement.py notes 11-12), proven cut at each MAC's word
#: (sim.formal.heap.prove_chained): E4M3 x E4M3 k4 (a chain of four MACs). E5M2 x E5M2 k2
#: (its chain adder split in two halves, the carry saved; 45 s) is in `make prove`; here
#: its proof must fail with the saved carry dropped (below).
CHAINED = [("e4m3", 4)]


def _chained(element: str, block: int) -> Design:
    return elaborate("dot", a_element=element, b_element=element, block=block)


@pytest.mark.parametrize(("element", "block"), CHAINED)
def test_dot_chained_streaming_proved(tmp_path, element, block):
    result = prove(_chained(element, block), mode="streaming", timeout=300,
                   workdir=tmp_path)
    assert result.status == "PROVED", f"{result.detail}; log {result.log}"
    assert f"cut at the {block} MACs' words" in result.detail


@pytest.mark.parametrize(("element", "block", "pattern", "replacement", "part"), [
    # a chain adder's +1 dropped (row - ~y - 1 = row + y): the sum of the words fails
    ("e4m3", 3, r"(= dot_p0_y_r - dot_r0_1_inv);", r"\1 - 1'h1;", "the sum of the cut"),
    # a word's last shifter stage no longer fills with the sign (E4M3 k2): its lemma fails
    ("e4m3", 2,
     r"(assign dot_p1_y = \\\$\d+  \? \{ dot_p1_s1_r\[11:0\]), dot_p1_x_r1_r2_r3_r4\[5\]",
     r"\1, 1'h0", "a word lemma"),
], ids=["chain_plus_one", "word_fill"])
def test_dot_chained_corrupt_fails(tmp_path, element, block, pattern, replacement, part):
    result = prove(_corrupt(_chained(element, block), pattern, replacement),
                   mode="streaming", timeout=300, workdir=tmp_path)
    assert result.status == "FAILED", result.detail
    assert part in result.detail, result.detail
    assert result.counterexample and result.vcd is not None and result.vcd.exists()


def test_dot_chained_split_carry_dropped_fails(tmp_path):
    """E5M2 x E5M2 k2: the carry out of the chain adder's low half (the bit the row saves
    and the heap adds at column h) replaced by 0 wherever it is read."""
    design = _chained("e5m2", 2)
    carry = re.search(r"assign dot_r0_1_c = (\\\$\d+ \[\d+\]);", design.verilog).group(1)
    bad = design.verilog.replace(f"= {carry};", "= 1'h0;")
    assert bad.count("1'h0;") >= design.verilog.count("1'h0;") + 2
    result = prove(_with_design(design, bad), mode="streaming", timeout=300,
                   workdir=tmp_path)
    assert result.status == "FAILED", result.detail
    assert "the sum of the cut" in result.detail and result.counterexample, result.detail


@pytest.mark.parametrize("change", ["delay", "missing"])
def test_dot_chained_wrong_certificate_fails(tmp_path, change):
    """A word's delay off by one fails its lemma; a word missing is refused."""
    design = _chained("e4m3", 2)
    sop = design.component.sum_of_products
    cert = copy.deepcopy(sop.certificate)
    if change == "delay":
        cert["words"][1]["delay"] -= 1
    else:
        del cert["words"][1]
    sop._certificate = cert
    result = prove(design, mode="streaming", timeout=300, workdir=tmp_path)
    assert result.status == "FAILED", result.detail
    if change == "delay":
        assert "a word lemma" in result.detail and result.counterexample, result.detail
    else:
        assert "not each of the 2 once" in result.detail, result.detail


@pytest.mark.parametrize(("make", "pattern", "replacement", "options"), [
    # cast, nearest-even: a tie no longer looks at the quotient's last bit (ties go down)
    (lambda: _cast(), r"(assign \S+\s+= sticky0_s\d+) \| v0_s\d+\[1\];", r"\1;", {}),
    # MXFP cast, nearest-even: the same single-point change on the minifloat path
    (lambda: _mxfp_cast("e4m3"), r"(assign \S+\s+= sticky0_s\d+) \| v0_s\d+\[1\];", r"\1;",
     {}),
    # MXFP cast, rceil: the scale's step up dropped (floor's scale under rceil's name)
    (lambda: _mxfp_cast("e2m1", scale_rounding="rceil"),
     r" \+ \$signed\(\{ 1'h0, max_l1_0_r\[0\] \}\)", "", {}),
    # adder: the alignment shift of element 0 loses its sign (logical, not arithmetic)
    (lambda: _adder(), r"\$signed\((\\\$\d+ )\) >>> ", r"\1 >> ", {}),
    # MXFP dot: product 0's sign correction at column F not complemented
    (_mxfp_dot, r"(assign dot_p0_c8 = )~ ", r"\1", {}),
    # MXFP dot, E3M2 k1 (negation bits counted): the count's complement at column F dropped
    (lambda: elaborate("dot", a_element="e3m2", b_element="e3m2", block=1),
     r"(assign dot_n_c18_1 = )~ dot_n_c0_0;", r"\g<1>dot_n_c0_0;", {}),
    # MXFP dot, E5M2 k1 at one level per stage (specials zeroed, signs counted): an
    # infinity's or NaN's magnitude no longer zeroed before the sign (the kill mask of the
    # first shifter stage dropped)
    (lambda: elaborate("dot", a_element="e5m2", b_element="e2m1", block=1,
                       levels_per_stage=1),
     r"(assign \\\$\d+\s+= \\\$\d+)\s+& \{ (?:\\\$\d+ , ){5}\\\$\d+\s+\};", r"\1 ;", {}),
    # dequant: element 0's sign bit dropped
    (lambda: _dequant(), r"\{ sign0_r, ", "{ 1'h0, ", {}),
    # dequant of MXFP blocks: F = 255 is no longer infinite (the overflow edge moves up)
    (lambda: elaborate("dequant", element="e2m1", block=2),
     r"(\$signed\(f0_r\)) >= (\$signed\(9'h0ff\))", r"\1 > \2", {}),
    # dequant of accumulator results: a tie no longer looks at the quotient's last bit
    (_dequant_accum, r"(assign \S+\s+= )sticky_r4 \| (shifted_l\d+\[1\]);", r"\1sticky_r4;",
     {}),
    # accum: the shift of A in the loop loses its sign (logical, not arithmetic)
    (lambda: _accum(), r"\$signed\((acc\[\d+:0\])\) >>> ", r"\1 >> ", {"group": 2}),
    # intmac: the accumulator subtracts the product
    (lambda: elaborate("intmac", a_bits=4, b_bits=4, acc_width=10),
     r"(= \$signed\(\\\$\d+ \)) \+ (\$signed\(prod\))", r"\1 - \2",
     {"group": 2}),
    # accum, two partial sums: their combination subtracts the lower one
    (lambda: _accum(align="interleave"), r"\$signed\(comb_high_s6\) \+ ",
     "$signed(comb_high_s6) - ", {"group": 2}),
], ids=["cast_tie", "mxfp_cast_tie", "mxfp_cast_rceil", "adder_shift_sign", "mxfp_dot_sign",
         "mxfp_e3m2_dot_negate", "mxfp_e5m2_dot_zeroed", "dequant_sign",
         "dequant_mxfp_overflow",
     "dequant_accum_tie", "accum_shift_sign", "intmac_sub", "accum_interleave_sub"])
def test_corrupt_unit_fails(tmp_path, make, pattern, replacement, options):
    _fails(_corrupt(make(), pattern, replacement), "streaming", tmp_path, **options)


@pytest.mark.parametrize(("pattern", "replacement"), [
    # the skid bypassed: o shows the pipeline's newer result while the skid holds one
    (r"assign o__payload = out_skid_valid \? out_skid : out__payload;",
     "assign o__payload = out__payload;"),
    # the skid's result dropped: o no longer valid while only the skid holds a result
    (r"assign o__valid = out_skid_valid \| ", "assign o__valid = "),
], ids=["skid_bypassed", "skid_dropped"])
def test_corrupt_skid_fails_stall_check(tmp_path, pattern, replacement):
    """The stall check (free valid, ready and reset) catches a broken skid register of
    ``out_ready="registered"`` (hw.pipeline.output_stage)."""
    design = elaborate("cast", man_bits=4, exp_bits=8, block=2, out_ready="registered")
    _fails(_corrupt(design, pattern, replacement), "stall", tmp_path,
           steps=design.manifest["latency"] + 2)


def test_cli_proves_other_units(tmp_path, capsys):
    assert main(["--top", "cast", "--bits", "4", "--block", "2", "--rounding", "away",
                 "--float-format", "bf16", "--mode", "streaming",
                 "--workdir", str(tmp_path / "cast")]) == 0
    # align 'stall' (the default): the streaming check is bounded and says why
    assert main(["--top", "accum", "--bits", "2", "--block", "1", "--exp-bits", "2",
                 "--guard-bits", "0", "--acc-width", "4", "--mode", "streaming",
                 "--steps", "6", "--workdir", str(tmp_path / "accum")]) == 0
    # --group reaches the proof (align 'lookahead': by induction, its groups bounded)
    assert main(["--top", "accum", "--bits", "2", "--block", "1", "--exp-bits", "2",
                 "--guard-bits", "0", "--acc-width", "4", "--align", "lookahead",
                 "--mode", "streaming", "--group", "2",
                 "--workdir", str(tmp_path / "lookahead")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["PROVED", "PROVED", "PROVED"]
    assert "streaming: for all time" in out[0]
    assert "streaming: for the first 6 cycles (bounded: align 'stall'" in out[1]
    assert "groups of at most 2 inputs" in out[2]
