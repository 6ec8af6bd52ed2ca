"""The block adder with OCP MX minifloat operands (``--format``, ``--aformat``,
``--wformat``; MXINT x MXFP mixed): golden exhaustive against a Python-int model written
from the OCP definitions, parameters, the Amaranth simulator over every format, one
Verilator run and its injected fault."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
from amaranth.hdl import Fragment

from golden.block_adder import aligned_sum, block_add, sum_bits
from golden.format import MXFPFormat, MXIntFormat
from hw.block_adder import AdderParams, MXIntBlockAdder
from hw.generate import main as generate
from sim.amaranth_bench import run_stream_sim
from sim.run import simulate
from sim.units import model_for
from tests.reference import round_fraction
from tests.test_block_adder import collect_refused_components

#: (exponent field bits, mantissa field bits) of the OCP MX v1.0 elements.
FIELDS = {"e5m2": (5, 2), "e4m3": (4, 3), "e3m2": (3, 2), "e2m3": (2, 3), "e2m1": (2, 1)}


def params(a_element, b_element, block, out_bits, guard_bits=3, rounding="even", *,
           a_bits=None, b_bits=None):
    """A record's keywords; an MXINT side (``"int"``) takes ``a_bits``/``b_bits``."""
    p = {"a_element": a_element, "b_element": b_element, "block": block,
         "out_bits": out_bits, "guard_bits": guard_bits, "rounding": rounding}
    if a_element == "int":
        p["a_bits"] = a_bits
    if b_element == "int":
        p["b_bits"] = b_bits
    return p


# --- reference: the OCP definitions and the adder's specification, in Python ints -------------


def element(code: int, kind: str | int) -> tuple[int, int] | None:
    """``(n, p)``: the element is worth ``n * 2**p`` times its block scale; None for an
    infinity or a NaN code. ``kind`` is an element name or, for MXINT, the width ``m``
    (``P * 2**-(m - 2)``)."""
    if isinstance(kind, int):
        return code, -(kind - 2)
    eb, mb = FIELDS[kind]
    s, e, m = code >> (eb + mb), (code >> mb) & ((1 << eb) - 1), code & ((1 << mb) - 1)
    if (kind == "e5m2" and e == 31) or (kind == "e4m3" and e == 15 and m == 7):
        return None
    bias = (1 << (eb - 1)) - 1
    n, p = (m, 1 - bias - mb) if e == 0 else ((1 << mb) + m, e - bias - mb)
    return (-n if s else n), p


def smallest_exponent(kind: str | int) -> int:
    """``p`` of the smallest nonzero magnitude (a subnormal; MXINT: one unit)."""
    return -(kind - 2) if isinstance(kind, int) else element(1, kind)[1]


def reference_add(a, ea, b, eb, kind_a, kind_b, out_bits, guard_bits, mode):
    """The documented adder on one block pair: NaN for a NaN scale or a special element;
    else every element's value floored to a multiple of ``2**(E_max - 127 - F - G)``
    (``F`` the finer of the two operands' smallest exponents), summed, and the sums
    quantised to MXINT(``out_bits``) as golden.quantize quantises floats."""
    va = [element(c, kind_a) for c in a]
    vb = [element(c, kind_b) for c in b]
    if 255 in (ea, eb) or None in va or None in vb:
        return [0] * len(a), 255
    unit = max(ea, eb) - 127 + min(smallest_exponent(kind_a), smallest_exponent(kind_b)) \
        - guard_bits

    def floored(v, scale):
        t = v[1] + scale - 127 - unit
        return v[0] << t if t >= 0 else v[0] >> -t   # Python's >> floors

    sums = [floored(x, ea) + floored(y, eb) for x, y in zip(va, vb, strict=True)]
    amax = max(abs(s) for s in sums)
    if amax == 0:
        return [0] * len(a), 0
    e = min(max(amax.bit_length() - 1 + unit + 127, 0), 254)
    t = unit - (e - 127 - (out_bits - 2))       # S * 2**t in units of the result
    top = (1 << (out_bits - 1)) - 1
    q = [s << t if t >= 0 else round_fraction(Fraction(s, 1 << -t), mode) for s in sums]
    return [max(-top, min(top, x)) for x in q], e


def _fmt(kind, block):
    return MXIntFormat(kind, 8, block) if isinstance(kind, int) else MXFPFormat(kind,
                                                                                block=block)


def _codes(kind, every: bool = True) -> list[int]:
    """Every code of ``kind``; with ``every=False`` an 8-bit element's corners (zeros,
    subnormals, ±max, the specials of both signs) and every 9th code."""
    if isinstance(kind, int):
        return list(range(-(1 << (kind - 1)), 1 << (kind - 1)))
    if every or sum(FIELDS[kind]) < 7:
        return list(range(1 << (1 + sum(FIELDS[kind]))))
    corners = [0, 1, 2, 7, 0x7B, 0x7C, 0x7D, 0x7E, 0x7F]
    return sorted({*range(3, 256, 9), *corners, *(c | 0x80 for c in corners)})


# --- golden: exhaustive on one-element blocks ---------------------------------------------------

#: ``(kind a, kind b, out_bits, guard_bits, rounding, scale pairs)``: every code of a with
#: every code of b (an 8-bit b: its corners and every 9th code, :func:`_codes`) at each
#: pair of scale codes; the scale pairs cover equal scales, each side the larger,
#: distances around the sum width, the smallest and largest codes.
EXHAUSTIVE = [
    ("e2m1", "e2m1", 4, 0, "even", [(127, 127), (128, 127), (127, 130), (127, 134),
                                    (140, 127), (0, 0), (254, 254), (254, 0), (1, 0)]),
    ("e2m1", 4, 6, 2, "floor", [(127, 127), (127, 129), (131, 127), (0, 254), (254, 252)]),
    ("e2m3", "e2m3", 5, 1, "away", [(127, 127), (127, 128), (133, 127), (0, 0), (254, 254)]),
    ("e3m2", "e3m2", 8, 3, "zero", [(127, 127), (126, 127), (127, 140), (0, 1), (254, 254)]),
    ("e3m2", "e2m3", 6, 2, "even", [(127, 127), (130, 127), (127, 131)]),
    ("e4m3", "e4m3", 8, 3, "even", [(127, 127), (128, 127), (127, 135), (0, 0)]),
    ("e5m2", "e5m2", 6, 2, "away", [(127, 127), (127, 130), (150, 127), (254, 254)]),
    ("e5m2", "e4m3", 8, 0, "floor", [(0, 254), (127, 127)]),
    (8, "e4m3", 9, 3, "even", [(127, 127), (127, 131)]),
]


@pytest.mark.parametrize(("kind_a", "kind_b", "out_bits", "guard", "mode", "scales"),
                         EXHAUSTIVE, ids=lambda v: str(v) if not isinstance(v, list) else "")
def test_golden_exhaustive_against_python_ints(kind_a, kind_b, out_bits, guard, mode, scales):
    fa, fb = _fmt(kind_a, 1), _fmt(kind_b, 1)
    ca, cb = _codes(kind_a), _codes(kind_b, every=False)
    a = torch.tensor(ca).repeat_interleave(len(cb)).unsqueeze(-1)
    b = torch.tensor(cb).repeat(len(ca)).unsqueeze(-1)
    for ea, eb in scales:
        ta, tb = torch.full((len(a),), ea), torch.full((len(b),), eb)
        r = block_add(a, ta, b, tb, fa, fb, out_bits, guard_bits=guard, rounding=mode)
        got = list(zip(r.mantissa[:, 0].tolist(), r.exponent.tolist(), strict=True))
        for i, (x, y) in enumerate(zip(a[:, 0].tolist(), b[:, 0].tolist(), strict=True)):
            man, e = reference_add([x], ea, [y], eb, kind_a, kind_b, out_bits, guard, mode)
            assert got[i] == (man[0], e), (x, ea, y, eb)


def test_golden_blocks_against_python_ints():
    """Blocks of 3 (the shared renormalisation, NaN of one element), random codes and
    scales near each other, every rounding mode."""
    gen = torch.Generator().manual_seed(11)
    for kind_a, kind_b, mode in (("e4m3", "e2m1", "even"), ("e5m2", 7, "zero"),
                                 ("e2m3", "e3m2", "away"), (5, "e4m3", "floor")):
        fa, fb = _fmt(kind_a, 3), _fmt(kind_b, 3)
        model = model_for({"top": "adder", "parameters": {
            **params("int" if isinstance(kind_a, int) else kind_a,
                     "int" if isinstance(kind_b, int) else kind_b, 3, 7, 2, mode,
                     a_bits=kind_a if isinstance(kind_a, int) else None,
                     b_bits=kind_b if isinstance(kind_b, int) else None)}})
        assert (model.fmt_a, model.fmt_b) == (fa, fb)
        stim = model.stimuli(gen, 300)
        want = model.expected(stim)["o"]
        fields = ["mantissa" if isinstance(k, int) else "codes" for k in (kind_a, kind_b)]
        for x, y, w in zip(stim["a"], stim["b"], want, strict=True):
            got = reference_add(x[fields[0]], x["exponent"], y[fields[1]], y["exponent"],
                                kind_a, kind_b, 7, 2, mode)
            assert (w["mantissa"], w["exponent"]) == got, (x, y)


def test_golden_specials_and_signed_zero():
    f = MXFPFormat("e5m2", block=2)
    inf, nan, neg_zero, one = 0x7C, 0x7D, 0x80, 0x3C   # +inf, a NaN, -0, 1.0
    for a in ([inf, one], [one, nan], [inf | 0x80, inf]):
        r = block_add(torch.tensor([a]), torch.tensor([127]), torch.tensor([[one, one]]),
                      torch.tensor([127]), f, f, 8)
        assert (r.mantissa.tolist(), r.exponent.tolist()) == ([[0, 0]], [255])
    # -0 + -0 is a zero block (code 0); -0 + 1.0 is 1.0
    r = block_add(torch.tensor([[neg_zero, neg_zero]]), torch.tensor([127]),
                  torch.tensor([[neg_zero, one]]), torch.tensor([127]), f, f, 8)
    assert (r.mantissa.tolist(), r.exponent.tolist()) == ([[0, 64]], [127])
    e4 = MXFPFormat("e4m3", block=1)   # S.1111.111 is NaN, S.1111.110 (448) is not
    r = block_add(torch.tensor([[0x7E], [0xFF]]), torch.tensor([127, 127]),
                  torch.tensor([[0], [0]]), torch.tensor([127, 127]), e4, e4, 8)
    assert r.exponent.tolist() == [135, 255] and r.mantissa.tolist() == [[112], [0]]


def test_golden_refuses_bad_formats():
    z, e = torch.zeros(1, 4, dtype=torch.int64), torch.zeros(1, dtype=torch.int64)
    fp = MXFPFormat("e2m1", block=4)
    with pytest.raises(ValueError, match="must share exp_bits and block"):
        block_add(z, e, z, e, fp, MXIntFormat(6, 5, 4), 6)
    with pytest.raises(TypeError, match="fmt_b must be an MXIntFormat or MXFPFormat"):
        block_add(z, e, z, e, fp, "mxfp4", 6)
    e5 = MXFPFormat("e5m2", block=4)
    with pytest.raises(ValueError, match=r"guard_bits must be from 0 to 27 with mxfp8_e5m2 "
                                         r"and mxfp8_e5m2 operands .* not 28"):
        block_add(z, e, z, e, e5, e5, 6, guard_bits=28)


# --- parameters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"a_element": "e4m2"}, ValueError, r"a_element must be one of 'int', 'e5m2', .* not 'e4m2'"),
    ({"b_bits": 6}, ValueError, r"b_bits applies only with b_element='int', not "
                                r"b_element='e2m1': leave it out"),
    ({"exp_bits": 5}, ValueError, r"exp_bits must be 8 \(the E8M0 scale\) when a_element is "
                                  r"a minifloat \('e4m3'\), not 5"),
    ({"a_element": "e5m2", "b_element": "int", "b_bits": 24, "guard_bits": 24}, ValueError,
     r"guard_bits must be from 0 to 21 with mxfp8_e5m2 and mxint24 operands"),
    ({"a_element": "int"}, TypeError, r"a_bits must be an integer, not None"),
])
def test_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        MXIntBlockAdder(**{**params("e4m3", "e2m1", 4, 8), **kwargs})
    collect_refused_components()


def test_properties_names_and_layout():
    dut = MXIntBlockAdder(**params("e4m3", "int", 3, 9, 2, "zero", b_bits=5))
    Fragment.get(dut, None)
    # F = max(9, 3) + 2 = 11, I = max(19 - 9, 2) = 10: W = 21, S 22 bits
    assert (dut.a_element, dut.b_element, dut.a_bits, dut.b_bits, dut.sum_width,
            dut.latency) == ("e4m3", "int", None, 5, 22, 3)
    assert dut.params.name == "mx_add_ae4m3_bi5_k3_o9_g2_zero"
    assert dut.a.payload.shape().size == 3 * 8 + 8 and dut.b.payload.shape().size == 3 * 5 + 8
    assert dut.o.payload.shape().size == 3 * 9 + 8
    assert AdderParams(**params("e2m1", "e2m1", 4, 6)).kwargs() == {
        "a_element": "e2m1", "b_element": "e2m1", "exp_bits": 8, "block": 4, "out_bits": 6,
        "guard_bits": 3, "rounding": "even"}
    assert AdderParams(a_bits=6, b_bits=6, block=4, out_bits=6).name == \
        "mxint_add_a6_b6_e8_k4_o6_g3_even"


@pytest.mark.parametrize(("argv", "words"), [
    ("--format mxfp4 --block 4", ("--out-bits/--bits", "required")),
    ("--format mxfp8_e5m2 --out-bits 8 --guard-bits 30 --block 4",
     ("--guard-bits", "0 to 27", "not 30")),
    ("--format mxfp4 --abits 4 --out-bits 6 --block 4", ("--abits", "no difference")),
    ("--aformat mxfp6_e3m2 --wbits 6 --out-bits 6 --exp-bits 5 --block 4", ("--exp-bits", "5")),
    ("--aformat mxfp9 --bits 6 --block 4", ("--aformat", "mxfp9")),
])
def test_command_line_refuses(argv, words, capsys):
    with pytest.raises(SystemExit) as exit_:
        generate(["--top", "adder", *argv.split(), "--out", "/nonexistent-unused"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 + err[0].startswith("usage")
    assert all(w in err[-1] for w in words), err[-1]


# --- Amaranth simulator ---------------------------------------------------------------------------


@pytest.mark.parametrize("p", [
    params("e5m2", "e5m2", 2, 8, 2, "away"),
    params("e4m3", "e4m3", 3, 8, 3, "even"),
    params("e3m2", "e3m2", 3, 6, 0, "zero"),
    params("e2m3", "e2m3", 2, 5, 1, "floor"),
    params("e2m1", "e2m1", 4, 4, 3, "even"),
    params("e4m3", "e2m1", 2, 10, 2, "even"),
    params("int", "e3m2", 3, 7, 1, "away", a_bits=6),
    params("e2m1", "int", 2, 3, 0, "floor", b_bits=24),
], ids=lambda p: AdderParams(**p).name)
def test_amaranth_sim_matches_golden(p):
    model = model_for({"top": "adder", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(5), 120)
    r = run_stream_sim(MXIntBlockAdder(**p), stim, model.expected(stim), seed=5)
    assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), r["reports"]
    assert r["checked"] == len(stim["a"])


def test_amaranth_sim_catches_wrong_expectation():
    p = params("e4m3", "e2m1", 2, 8)
    model = model_for({"top": "adder", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(7), 20)
    want = model.expected(stim)
    want["o"][3]["mantissa"][1] ^= 1
    r = run_stream_sim(MXIntBlockAdder(**p), stim, want, seed=7)
    assert r["mismatches"] == 1 and "output #3" in r["reports"][0]


# --- Verilator ----------------------------------------------------------------------------------

VERILATOR = params("e4m3", "e2m1", 4, 8, 3, "even")


def test_verilator_matches_golden(sim_build):
    s = simulate("adder", VERILATOR, seed=301, vectors=300, build_root=sim_build)
    assert (s["mismatches"], s["missing"], s["protocol_errors"], s["timed_out"]) == \
        (0, 0, [], False), f"replay with seed 301: {s['reports']}"
    model = model_for({"top": "adder", "parameters": VERILATOR})
    assert s["checked"] == 300 + len(model.stimuli(torch.Generator().manual_seed(0), 0)["a"])


def test_verilator_scoreboard_catches_dropped_lsb(sim_build):
    """The same build as above (the fault is in the expectation)."""
    s = simulate("adder", VERILATOR, seed=5, vectors=50, build_root=sim_build, fault="lsb")
    assert s["mismatches"] > 0
    assert any("mantissa" in r for r in s["reports"])


def test_worked_example():
    """docs/arithmetic.md, "Minifloat operands"."""
    fa, fb = MXFPFormat("e4m3", block=4), MXFPFormat("e2m1", block=4)
    a, b = torch.tensor([[0x3C, 0xC2, 0x06, 0x3C]]), torch.tensor([[0x3, 0x5, 0xF, 0x1]])
    ea, eb = torch.tensor([127]), torch.tensor([129])
    s, e_max = aligned_sum(a, ea, b, eb, fa, fb, 3)
    assert (s.tolist(), int(e_max), sum_bits(fa, fb, 3)) == \
        ([[7680, 9728, -24564, 3584]], 129, (12, 22))
    r = block_add(a, ea, b, eb, fa, fb, 8)
    assert (r.mantissa.tolist(), r.exponent.tolist()) == ([[30, 38, -96, 14]], [131])
