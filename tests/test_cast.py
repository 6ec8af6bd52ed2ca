# amaranth: UnusedElaboratable=no
"""MXIntCast: parameters, golden helper against Fractions, Amaranth and Verilator runs.

The issue's acceptance criterion — the cast unit equals ``golden.quantize`` on at least
10**5 random fp32 values per configuration, subnormals, powers of two and ulps below them
included — is met by the two Verilator runs marked ``100k`` (6 250 blocks of 16 and
25 000 blocks of 4, about 2 s of simulation each once built).
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from golden.cast import bits_to_float, cast_blocks, float_to_bits
from golden.format import SCALE_ROUNDINGS, MXFPFormat, MXIntFormat
from golden.minifloat import ELEMENTS
from golden.rounding import ROUNDING_MODES
from hw.cast import MXIntCast
from sim.amaranth_bench import run_stream_sim
from sim.run import simulate
from sim.units import model_for


def params(man_bits, exp_bits, block, rounding="even", float_format="fp32",
           levels_per_stage=2):
    return {"man_bits": man_bits, "exp_bits": exp_bits, "block": block, "rounding": rounding,
            "float_format": float_format, "levels_per_stage": levels_per_stage}


# --- parameters -----------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"man_bits": 1}, ValueError, r"man_bits must be from 2 to 24, not 1"),
    ({"man_bits": 25}, ValueError, r"man_bits must be from 2 to 24, not 25"),
    ({"exp_bits": 1}, ValueError, r"exp_bits must be from 2 to 8, not 1"),
    ({"block": 1025}, ValueError, r"block must be from 1 to 1024, not 1025"),
    ({"block": True}, TypeError, r"block must be an integer, not True"),
    ({"rounding": "up"}, ValueError, r"rounding must be one of 'even', .*, not 'up'"),
    ({"float_format": "fp16"}, ValueError,
     r"float_format must be one of 'fp32', 'bf16', not 'fp16'"),
    ({"levels_per_stage": 0}, ValueError, r"levels_per_stage must be at least 1, not 0"),
])
def test_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        MXIntCast(**{**params(8, 8, 16), **kwargs})


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"element": "fp8"}, ValueError,
     r"element must be one of 'int', 'e5m2', 'e4m3', 'e3m2', 'e2m3', 'e2m1', not 'fp8'"),
    ({"man_bits": 8}, ValueError,
     r"man_bits applies only with element='int', not element='e4m3': leave it out"),
    ({"exp_bits": 5}, ValueError,
     r"exp_bits must be 8 \(the E8M0 scale\) with element 'e4m3', not 5"),
    ({"scale_rounding": "ceil"}, ValueError,
     r"scale_rounding must be one of 'floor', 'rceil', not 'ceil'"),
    ({"element": "int", "man_bits": 8, "scale_rounding": "rceil"}, ValueError,
     r"scale_rounding 'rceil' needs a minifloat element \(e5m2, .*\); MXINT takes only"),
    ({"element": "int"}, TypeError, r"man_bits must be an integer, not None"),
])
def test_bad_mxfp_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        MXIntCast(**{"element": "e4m3", "block": 4, **kwargs})


def test_mxint_records_keep_their_parameters():
    """element and scale_rounding stay out of an MXINT design's parameters (manifest)."""
    dut = MXIntCast(man_bits=8, block=4)
    assert dut.element == "int" and dut.scale_rounding == "floor"
    assert list(dut.params.kwargs()) == ["man_bits", "exp_bits", "block", "rounding",
                                         "float_format", "levels_per_stage"]
    fp = MXIntCast(element="e2m1", block=32, scale_rounding="rceil", float_format="bf16")
    assert fp.params.name == "mxfp_cast_bf16_e2m1_k32_even_rceil"
    assert fp.params.kwargs() == {"element": "e2m1", "exp_bits": 8, "block": 32,
                                  "rounding": "even", "float_format": "bf16",
                                  "scale_rounding": "rceil", "levels_per_stage": 2}


def test_report_gives_the_mxfp_memory_density():
    """flows.report's density of an MXFP cast is its output format's, 32 / (width + 8/k)."""
    from flows.report import _densities
    from hw.cast import CastParams
    assert _densities(CastParams(element="e2m1", block=32)) == {"a": {
        "format": "mxfp4_k32", "bits_per_element": 4.25, "memory_density": 32 / 4.25}}


def test_positional_parameters_refused():
    with pytest.raises(TypeError):
        MXIntCast(8, 8, 16)  # type: ignore[misc]


@pytest.mark.parametrize(("block", "lps", "latency"), [
    (1, 2, 4), (2, 2, 4), (16, 2, 5), (32, 2, 6), (32, 1, 8), (1024, 4, 6),
])
def test_latency(block, lps, latency):
    assert MXIntCast(man_bits=8, block=block, levels_per_stage=lps).latency == latency


def test_payload_widths():
    dut = MXIntCast(man_bits=6, exp_bits=5, block=4, float_format="bf16")
    assert dut.i.payload.shape().size == 4 * 16
    assert dut.o.payload.shape().size == 4 * 6 + 5


@pytest.mark.parametrize(("element", "width"), [("e5m2", 8), ("e4m3", 8), ("e3m2", 6),
                                                ("e2m3", 6), ("e2m1", 4)])
def test_mxfp_payload_and_latency(element, width):
    dut = MXIntCast(element=element, block=32)
    assert dut.o.payload.shape().size == 32 * width + 8
    assert dut.latency == MXIntCast(man_bits=8, block=32).latency == 6


# --- golden helper against an independent Fraction reference --------------------------------

def _value(bits: int, float_format: str) -> float:
    word = bits << 16 if float_format == "bf16" else bits
    return struct.unpack("<f", struct.pack("<I", word))[0]


def _round(q: Fraction, mode: str) -> int:
    fl = math.floor(q)
    rem = q - fl
    if mode == "floor" or (mode == "zero" and q >= 0):
        return fl
    if mode == "zero":
        return math.ceil(q)
    if rem != Fraction(1, 2):
        return fl + (rem > Fraction(1, 2))
    if mode == "away":
        return fl + (q > 0)
    return fl + (fl % 2)


def reference_block(bits: list[int], fmt: MXIntFormat, mode: str, float_format: str
                    ) -> tuple[list[int], int]:
    """One block straight from the format's definition, in exact rationals."""
    xs = [_value(b, float_format) for b in bits]
    if any(math.isnan(x) or math.isinf(x) for x in xs):
        return [0] * len(xs), fmt.nan_code
    vals = [Fraction(x) for x in xs]
    amax = max(abs(v) for v in vals)
    if amax == 0:
        return [0] * len(xs), 0
    log2 = amax.numerator.bit_length() - amax.denominator.bit_length()
    log2 -= Fraction(2) ** log2 > amax                  # now exactly floor(log2(amax))
    code = min(max(log2 + fmt.bias, 0), fmt.max_code)
    unit = Fraction(2) ** fmt.scale_exponent(code)
    return [max(-fmt.max_man, min(fmt.max_man, _round(v / unit, mode))) for v in vals], code


SPECIAL = [0, 1 << 31, 1, 0x007FFFFF, 0x00800000, 0x3F800000, 0x3F7FFFFF, 0x3FFFFFFF,
           0x7F7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0x00400000, 0x80000001]


def _patterns(width: int):
    mask = (1 << width) - 1
    shift = 32 - width
    field = st.integers(0, 254)
    return st.one_of(
        st.integers(0, mask),
        st.sampled_from([s >> shift for s in SPECIAL]),
        st.builds(lambda s, f: ((s << 31) | f) >> shift, st.integers(0, 1),
                  st.integers(0, (1 << 23) - 1)),                         # subnormals
        st.builds(lambda s, f, d: ((s << 31) | ((f << 23) + d)) >> shift & mask,
                  st.integers(0, 1), field, st.integers(-1, 1)),          # powers, +-ulp
    )


@settings(max_examples=400, deadline=None)
@given(data=st.data(), man_bits=st.integers(2, 24), exp_bits=st.integers(2, 8),
       block=st.integers(1, 6), mode=st.sampled_from(ROUNDING_MODES),
       float_format=st.sampled_from(["fp32", "bf16"]))
def test_cast_blocks_matches_fraction_reference(data, man_bits, exp_bits, block, mode,
                                                float_format):
    fmt = MXIntFormat(man_bits, exp_bits, block)
    width = 32 if float_format == "fp32" else 16
    rows = data.draw(st.lists(st.lists(_patterns(width), min_size=block, max_size=block),
                              min_size=1, max_size=4))
    man, exp = cast_blocks(torch.tensor(rows), fmt, mode, float_format)
    for row, got_man, got_exp in zip(rows, man.tolist(), exp.tolist(), strict=True):
        assert (got_man, got_exp) == reference_block(row, fmt, mode, float_format), row


def test_bits_round_trip():
    bits = torch.tensor([0, 1, 0x7F7FFFFF, 0x80000000, 0xFFFFFFFF, 0x3F800000])
    assert float_to_bits(bits_to_float(bits)).tolist() == bits.tolist()
    half = torch.tensor([0, 1, 0x7F7F, 0x8000, 0xFFFF, 0x3F80])
    assert float_to_bits(bits_to_float(half, "bf16")).tolist() == half.tolist()
    assert bits_to_float(half, "bf16").float().tolist()[5] == 1.0


def test_cast_blocks_is_quantize():
    """The helper is golden.quantize on the reinterpreted floats, nothing more."""
    from golden.quantize import quantize
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(3))
    fmt = MXIntFormat(6, 5, 8)
    q = quantize(x, fmt, rounding="floor")
    man, exp = cast_blocks(float_to_bits(x), fmt, "floor")
    assert torch.equal(man, q.mantissa.squeeze(1)) and torch.equal(exp, q.exponent.squeeze(1))


@pytest.mark.parametrize("element", list(ELEMENTS))
@pytest.mark.parametrize("scale_rounding", SCALE_ROUNDINGS)
def test_cast_blocks_mxfp_is_quantize(element, scale_rounding):
    """With an MXFPFormat the helper returns quantize's codes and scale codes."""
    from golden.quantize import quantize
    gen = torch.Generator().manual_seed(5)
    x = torch.ldexp(torch.randn(6, 8, generator=gen), torch.randint(-140, 120, (6, 1),
                                                                     generator=gen).float())
    x[0, 3], x[1, 0], x[2, 5] = -0.0, float("nan"), -1e-40
    fmt = MXFPFormat(element, 8, scale_rounding)
    q = quantize(x, fmt, rounding="away")
    codes, scale = cast_blocks(float_to_bits(x), fmt, "away")
    assert codes.dtype == torch.int32 and scale.dtype == torch.int32
    assert torch.equal(codes, q.codes.squeeze(1)) and torch.equal(scale, q.exponent.squeeze(1))
    assert scale[1] == 255 and codes[1].eq(0).all() and codes[0, 3] == 1 << (fmt.element_bits - 1)


def test_cast_blocks_rejects_other_formats():
    with pytest.raises(TypeError, match=r"fmt must be an MXIntFormat or MXFPFormat, not 8"):
        cast_blocks(torch.zeros(2, 4, dtype=torch.int64), 8)


def test_cast_blocks_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"bits must have shape \(n, 4\), not \(2, 3\)"):
        cast_blocks(torch.zeros(2, 3, dtype=torch.int64), MXIntFormat(8, 8, 4))


# --- testbench model ------------------------------------------------------------------------

def test_stimuli_cover_the_corners():
    """Directed and random stimuli hold every kind of input and reach every kind of output."""
    p = params(6, 4, 4)
    model = model_for({"top": "cast", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(1), 500)
    bits = torch.tensor([x["bits"] for x in stim["i"]]).flatten()
    field, frac = (bits >> 23) & 0xFF, bits & 0x7FFFFF
    assert ((field == 0) & (frac != 0)).sum() > 100                    # subnormals
    assert ((field > 0) & (field < 255) & (frac == 0)).sum() > 100     # powers of two
    assert ((frac == 0x7FFFFF) & (field < 255)).sum() > 50             # ulps below
    assert ((field == 255) & (frac == 0)).sum() >= 2                   # infinities
    assert ((field == 255) & (frac != 0)).sum() >= 2                   # NaNs
    assert {0, 1 << 31} <= set(bits.tolist())                          # +-0
    out = model.expected(stim)["o"]
    fmt = MXIntFormat(6, 4, 4)
    codes = {o["exponent"] for o in out}
    assert {0, fmt.max_code, fmt.nan_code} <= codes
    mans = [v for o in out for v in o["mantissa"]]
    assert fmt.max_man in mans and -fmt.max_man in mans
    # code 0 reached both by clamping (tiny blocks) and with non-zero mantissas
    assert any(o["exponent"] == 0 and any(o["mantissa"]) for o in out)


# --- Amaranth simulator -----------------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize(("man_bits", "exp_bits", "block", "float_format", "lps"), [
    (2, 2, 1, "fp32", 2), (4, 3, 3, "bf16", 1), (8, 8, 4, "fp32", 2),
    (13, 5, 5, "fp32", 1), (24, 8, 2, "fp32", 2), (24, 2, 2, "bf16", 3),
])
def test_amaranth_sim_matches_golden(seed, rounding, man_bits, exp_bits, block, float_format,
                                     lps):
    p = params(man_bits, exp_bits, block, rounding, float_format, lps)
    model = model_for({"top": "cast", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(seed), 150)
    r = run_stream_sim(MXIntCast(**p), stim, model.expected(stim), seed=seed)
    assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), \
        f"seed {seed}: {r['reports']}"
    assert r["checked"] == len(stim["i"])


def test_amaranth_sim_large_block():
    p = params(8, 8, 33, "even", "fp32", 2)
    model = model_for({"top": "cast", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(4), 40)
    r = run_stream_sim(MXIntCast(**p), stim, model.expected(stim), seed=4)
    assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), r["reports"]


def test_amaranth_sim_catches_wrong_rounding():
    """Hardware built for one mode fails against another mode's golden: ties are reached."""
    p = params(8, 8, 4, "even")
    model = model_for({"top": "cast", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(7), 100)
    r = run_stream_sim(MXIntCast(**{**p, "rounding": "away"}), stim, model.expected(stim),
                       seed=7)
    assert r["mismatches"] > 0


def _mxfp(element, block, rounding="even", float_format="fp32", scale_rounding="floor",
          levels_per_stage=2):
    return {"element": element, "block": block, "rounding": rounding,
            "float_format": float_format, "scale_rounding": scale_rounding,
            "levels_per_stage": levels_per_stage}


def _mxfp_sim_matrix() -> list[tuple[str, str, int, str]]:
    """(element, float format, block, scale rounding): every element at blocks 1 and 2 with
    both scale roundings, the input format alternating with element and block (each element
    meets both); at block 32 one case per element, the input format and scale rounding
    taking turns so that both of each are met (a k32 case takes 5 to 30 s)."""
    cases = []
    for i, element in enumerate(ELEMENTS):
        for block in (1, 2):
            for scale_rounding in SCALE_ROUNDINGS:
                cases.append((element, ("fp32", "bf16")[(i + block) % 2], block,
                              scale_rounding))
        cases.append((element, ("fp32", "bf16")[i % 2], 32,
                      SCALE_ROUNDINGS[(i // 2) % len(SCALE_ROUNDINGS)]))
    return cases


@pytest.mark.parametrize(("element", "float_format", "block", "scale_rounding"),
                         _mxfp_sim_matrix())
def test_amaranth_sim_mxfp_matches_golden(element, float_format, block, scale_rounding):
    """Every element format, both input formats, block sizes 1, 2 and 32 and both scale
    choices, each rounding mode: directed corners (every tie and ulp neighbour of every
    code, saturation, subnormal inputs under the smallest scales, specials) and random
    blocks, with back-pressure."""
    for seed, rounding in enumerate(ROUNDING_MODES, start=11):
        p = _mxfp(element, block, rounding, float_format, scale_rounding)
        model = model_for({"top": "cast", "parameters": p})
        stim = model.stimuli(torch.Generator().manual_seed(seed), 24)
        r = run_stream_sim(MXIntCast(**p), stim, model.expected(stim), seed=seed)
        assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), \
            f"{rounding}, seed {seed}: {r['reports']}"
        assert r["checked"] == len(stim["i"])


def test_mxfp_stimuli_reach_every_case():
    """The MXFP stimuli reach every code, -0, saturation, both scale clamps' neighbourhood
    (code 0 with non-zero codes), the NaN scale and subnormal inputs."""
    for element in ELEMENTS:
        p = _mxfp(element, 4, scale_rounding="rceil")
        model = model_for({"top": "cast", "parameters": p})
        stim = model.stimuli(torch.Generator().manual_seed(1), 200)
        out = model.expected(stim)["o"]
        el = ELEMENTS[element]
        codes = {c for o in out if o["exponent"] != 255 for c in o["codes"]}
        finite = el.finite_codes
        half = 1 << (el.width - 1)
        assert set(range(finite)) | {half + c for c in range(finite)} <= codes, element
        scales = {o["exponent"] for o in out}
        assert {0, 255} <= scales and any(o["exponent"] == 0 and any(c % half for c in
                                                                     o["codes"]) for o in out)
        bits = torch.tensor([x["bits"] for x in stim["i"]]).flatten()
        assert (((bits >> 23) & 0xFF) == 0).logical_and(bits & 0x7FFFFF != 0).sum() > 100


def test_amaranth_sim_mxfp_catches_wrong_scale_rounding():
    """Hardware built with floor fails against rceil's golden: the step up is reached."""
    p = _mxfp("e4m3", 4, scale_rounding="rceil")
    model = model_for({"top": "cast", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(3), 100)
    r = run_stream_sim(MXIntCast(**{**p, "scale_rounding": "floor"}), stim,
                       model.expected(stim), seed=3)
    assert r["mismatches"] > 0


# --- Verilator --------------------------------------------------------------------------------

# (params, random blocks): the first two carry 10**5 random values each.
VERILATOR_MATRIX = [
    (params(8, 8, 16, "even"), 100_000 // 16),
    (params(24, 8, 4, "floor"), 100_000 // 4),
    (params(4, 3, 8, "away", "bf16"), 2000),
    (params(2, 2, 1, "zero"), 2000),
    (params(12, 5, 5, "even", "bf16", 1), 2000),
]


@pytest.mark.parametrize(("p", "vectors"), VERILATOR_MATRIX, ids=[
    "m{man_bits}e{exp_bits}k{block}_{rounding}_{float_format}".format(**p) +
    ("_100k" if v * p["block"] >= 100_000 else "") for p, v in VERILATOR_MATRIX])
def test_verilator_matches_golden(p, vectors, sim_build):
    seed = 200 + p["man_bits"] * 10 + p["block"]
    s = simulate("cast", p, seed=seed, vectors=vectors, build_root=sim_build)
    print(f"seed {seed}: {s['checked']} blocks checked in {s['cycles']} cycles, "
          f"{s['wall_seconds']:.1f} s")
    assert (s["mismatches"], s["missing"], s["protocol_errors"], s["timed_out"]) == \
        (0, 0, [], False), f"replay with seed {seed}: {s['reports']}"
    assert s["checked"] >= vectors


MXFP_VERILATOR = [
    _mxfp("e2m1", 32, "even", "bf16"),
    _mxfp("e4m3", 4, "floor", "fp32", "rceil"),
    _mxfp("e5m2", 2, "away", "bf16"),
    _mxfp("e2m3", 3, "zero", "fp32", "rceil", levels_per_stage=1),
]


@pytest.mark.parametrize("p", MXFP_VERILATOR, ids=[
    "{element}_k{block}_{rounding}_{float_format}_{scale_rounding}".format(**p)
    for p in MXFP_VERILATOR])
def test_verilator_mxfp_matches_golden(p, sim_build):
    seed = 300 + p["block"]
    s = simulate("cast", p, seed=seed, vectors=2000 // p["block"] + 200, build_root=sim_build)
    assert (s["mismatches"], s["missing"], s["protocol_errors"], s["timed_out"]) == \
        (0, 0, [], False), f"replay with seed {seed}: {s['reports']}"


def test_verilator_mxfp_scoreboard_catches_dropped_lsb(sim_build):
    """A wrong code (bit 0 cleared in the expectation) is caught on the codes field."""
    s = simulate("cast", MXFP_VERILATOR[1], seed=5, vectors=50, build_root=sim_build,
                 fault="lsb")
    assert s["mismatches"] > 0
    assert any("codes" in r for r in s["reports"])


def test_verilator_scoreboard_catches_dropped_lsb(sim_build):
    s = simulate("cast", params(8, 8, 16, "even"), seed=5, vectors=100, build_root=sim_build,
                 fault="lsb")
    assert s["mismatches"] > 0
    assert any("mantissa" in r for r in s["reports"])
