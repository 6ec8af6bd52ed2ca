"""The dot product with OCP MX minifloat operands (``--format``, ``--aformat``, ``--wformat``):
golden model, parameters, Amaranth simulator over every format pair, Verilator on a few."""

from __future__ import annotations

import itertools

import pytest
import torch

from golden.dot import dot_product, mx_dot_product
from golden.format import MXFPFormat, MXIntFormat
from golden.minifloat import ELEMENTS
from hw.dot_product import DotParams, MXIntDotProduct
from hw.generate import main as generate
from sim.amaranth_bench import run_stream_sim
from sim.run import simulate
from sim.units import model_for

#: The element formats the hardware takes (E5M2 is refused for now), and MXINT.
FORMATS = ("int", "e4m3", "e3m2", "e2m3", "e2m1")


def params(a_element, b_element, block, *, a_bits=5, b_bits=4, arch="heap", lps=2, **kw):
    """A record's keywords: MXINT operands get ``a_bits``/``b_bits``."""
    p = {"a_element": a_element, "b_element": b_element, "block": block, "arch": arch,
         "levels_per_stage": lps, **kw}
    if a_element == "int":
        p["a_bits"] = a_bits
    if b_element == "int":
        p["b_bits"] = b_bits
    return p


# --- golden ----------------------------------------------------------------------------------

def _fmt(name, block):
    return MXIntFormat(6, 8, block) if name == "int" else MXFPFormat(name, block=block)


def _random_codes(gen, fmt, n):
    if isinstance(fmt, MXIntFormat):
        return torch.randint(-32, 32, (n, fmt.block), generator=gen)
    return torch.randint(0, 1 << fmt.element.width, (n, fmt.block), generator=gen)


@pytest.mark.parametrize(("a", "b"), [*itertools.product(("e5m2", *FORMATS), repeat=2)])
def test_golden_equals_the_values(a, b):
    """``S * 2**(E_out - 254 - f_a - f_b)`` is the sum of the decoded values' products
    (float64 is exact here: at most 53 significant bits), ``nan`` the rule of the
    docstring; E5M2 x E5M2 is refused (its sum leaves int64)."""
    fa, fb = _fmt(a, 4), _fmt(b, 4)
    gen = torch.Generator().manual_seed(3)
    ca, cb = _random_codes(gen, fa, 500), _random_codes(gen, fb, 500)
    ea, eb = torch.randint(0, 256, (500,), generator=gen), torch.randint(0, 256, (500,),
                                                                          generator=gen)
    if a == b == "e5m2":
        with pytest.raises(ValueError, match="beyond the int64"):
            mx_dot_product(ca, ea, cb, eb, fa, fb)
        return
    r = mx_dot_product(ca, ea, cb, eb, fa, fb)

    def values(codes, fmt):
        if isinstance(fmt, MXIntFormat):
            return codes.double(), torch.zeros(codes.shape[0], dtype=torch.bool)
        p = fmt.element.decode(codes).double()
        return p, (fmt.element.kind(codes) != 0).any(-1)

    (pa, sa), (pb, sb) = values(ca, fa), values(cb, fb)
    assert torch.equal(r.sum.double(), (pa * pb).sum(-1))
    assert torch.equal(r.exponent, ea + eb)
    assert torch.equal(r.nan, (ea == 255) | (eb == 255) | sa | sb)
    if a == b == "int":
        assert torch.equal(r.sum, dot_product(ca, ea, cb, eb, fa, fb).sum)


@pytest.mark.parametrize(("element", "code", "nan"), [
    ("e4m3", 0x7F, True), ("e4m3", 0xFF, True), ("e4m3", 0x7E, False), ("e4m3", 0x80, False),
    ("e5m2", 0x7C, True), ("e5m2", 0xFC, True), ("e5m2", 0x7D, True), ("e5m2", 0x7B, False),
    ("e3m2", 0x3F, False), ("e2m3", 0x3F, False), ("e2m1", 0xF, False),
])
def test_golden_special_codes_make_the_block_nan(element, code, nan):
    """One infinity or NaN element makes the block NaN; every FP6/FP4 code is a number."""
    fmt, other = MXFPFormat(element, block=3), MXFPFormat("e2m1", block=3)
    codes = torch.tensor([[1, code, 2]])
    r = mx_dot_product(codes, torch.tensor([127]), torch.tensor([[2, 2, 2]]),
                       torch.tensor([127]), fmt, other)
    assert bool(r.nan[0]) is nan
    r = mx_dot_product(torch.tensor([[2, 2, 2]]), torch.tensor([127]), codes,
                       torch.tensor([127]), other, fmt)
    assert bool(r.nan[0]) is nan


# --- parameters ------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"a_element": "e2m1", "a_bits": 4}, ValueError,
     r"a_bits applies only with a_element='int', not a_element='e2m1': leave it out"),
    ({"a_element": "e5m2", "b_element": "e5m2"}, ValueError,
     r"a_element 'e5m2' with an E5M2 operand at block 4: the exact sum reaches "
     r"\d+, beyond the 64 bits"),
    ({"a_element": "e5m2", "b_bits": 24, "block": 1024}, ValueError,
     r"a_element 'e5m2' with an MXINT24 operand at block 1024: the exact sum reaches"),
    ({"b_element": "e4m3", "exp_bits": 5}, ValueError,
     r"exp_bits must be 8 \(the E8M0 scale\) when b_element is a minifloat \('e4m3'\), not 5"),
    ({"a_element": "fp4"}, ValueError,
     r"a_element must be one of 'int', 'e5m2', 'e4m3', 'e3m2', 'e2m3', 'e2m1', not 'fp4'"),
])
def test_bad_parameters(kwargs, exc, match):
    base = {"block": 4, "a_bits": 4, "b_bits": 4}
    for side in ("a", "b"):
        if kwargs.get(f"{side}_element", "int") != "int" and f"{side}_bits" not in kwargs:
            base.pop(f"{side}_bits")
    with pytest.raises(exc, match=match):
        MXIntDotProduct(**{**base, **kwargs})


def test_mxint_records_keep_their_parameters_and_names():
    """``a_element="int"`` is implicit: the manifest of an MXINT design does not change."""
    p = DotParams(a_bits=6, b_bits=6, block=16)
    assert p.kwargs() == {"a_bits": 6, "b_bits": 6, "exp_bits": 8, "block": 16,
                          "arch": "heap", "levels_per_stage": 2, "primitives": "generic"}
    assert p.name == "mxint_dot_a6_w6_e8_k16"
    q = DotParams(a_element="e2m1", b_bits=8, block=32)
    assert q.kwargs()["a_element"] == "e2m1" and "a_bits" not in q.kwargs()
    assert q.name == "mx_dot_ae2m1_wi8_k32"
    assert DotParams(a_element="e4m3", b_element="e2m1", block=2, arch="tree").name == \
        "mx_dot_ae4m3_we2m1_k2_tree"


def test_levels_per_stage_default_follows_the_formats():
    """Not given, ``levels_per_stage`` is 1 for a heap of two E4M3 operands (its clock on
    ECP5, hw.params.default_sum_levels) and 2 otherwise; the name carries it only when it
    is not that default, so the default and the same value typed are one design; the
    linear engine and the tile build their dot products with the same value."""
    from hw.linear import LinearParams
    from hw.tile import TileParams

    def lps(**kw):
        p = DotParams(**{"block": 32, **kw})
        return p.levels_per_stage, p.name

    assert lps(a_element="e4m3", b_element="e4m3") == (1, "mx_dot_ae4m3_we4m3_k32")
    assert lps(a_element="e4m3", b_element="e4m3", levels_per_stage=1) == \
        (1, "mx_dot_ae4m3_we4m3_k32")
    assert lps(a_element="e4m3", b_element="e4m3", levels_per_stage=2) == \
        (2, "mx_dot_ae4m3_we4m3_k32_l2")
    assert lps(a_element="e4m3", b_element="e4m3", arch="tree") == \
        (2, "mx_dot_ae4m3_we4m3_k32_tree")
    assert lps(a_element="e4m3", b_element="e2m1") == (2, "mx_dot_ae4m3_we2m1_k32")
    assert lps(a_element="e5m2", b_element="e4m3") == (1, "mx_dot_ae5m2_we4m3_k32")
    assert lps(a_element="e4m3", b_element="e5m2") == (1, "mx_dot_ae4m3_we5m2_k32")
    assert lps(a_element="e5m2", b_element="e3m2") == (2, "mx_dot_ae5m2_we3m2_k32")
    assert lps(a_bits=6, b_bits=6) == (2, "mxint_dot_a6_w6_e8_k32")
    assert lps(a_bits=6, b_bits=6, levels_per_stage=1) == (1, "mxint_dot_a6_w6_e8_k32_l1")
    for record in (LinearParams, TileParams):
        p = record(x_element="e4m3", w_element="e4m3", block=4, rows=4)
        assert p.levels_per_stage == 1 and p.name.endswith("_g8")
        assert record(x_element="e4m3", w_element="e4m3", block=4, rows=4,
                      levels_per_stage=2).name.endswith("_g8_l2")
    dut = MXIntDotProduct(a_element="e4m3", b_element="e4m3", block=4)
    assert dut.levels_per_stage == 1 and dut.latency == dut.levels
    assert MXIntDotProduct(a_element="e4m3", b_element="e4m3", block=4,
                           levels_per_stage=2).latency == -(-dut.levels // 2)


@pytest.mark.parametrize(("argv", "message"), [
    (["--aformat", "mxfp4", "--abits", "4"],
     "--abits makes no difference to --top dot with --aformat mxfp4 (it applies only to an "
     "mxint format)"),
    (["--aformat", "mxfp4", "--wformat", "mxfp8_e4m3", "--bits", "4"],
     "--bits makes no difference to --top dot with --aformat mxfp4"),
    (["--format", "mxfp4", "--bits", "4"],
     "--bits makes no difference to --top dot with --format mxfp4"),
    (["--format", "mxint6", "--wbits", "4"],
     "--wbits 4 conflicts with --format mxint6, which sets 6 bits; give one or the other"),
    (["--format", "mxfp5"], "argument --format: format must be mxint2 .. mxint24 or one of"),
    (["--format", "mxfp8_e5m2"], "--format mxfp8_e5m2 with an E5M2 operand at block 4: "
                                 "the exact sum reaches"),
    (["--format", "mxfp4", "--aformat", "mxfp4", "--wformat", "mxfp6_e2m3"],
     "--format makes no difference when --aformat and --wformat are given; drop it"),
])
def test_cli_says_bits_make_no_difference(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit):
        generate(["--top", "dot", *argv, "--block", "4", "--out", str(tmp_path)])
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "name"), [
    (["--aformat", "mxfp4", "--wbits", "8"], "mx_dot_ae2m1_wi8_k4"),
    (["--aformat", "mxfp4", "--wformat", "mxint8"], "mx_dot_ae2m1_wi8_k4"),
    (["--format", "mxfp6_e2m3"], "mx_dot_ae2m3_we2m3_k4"),
    (["--format", "MXINT6"], "mxint_dot_a6_w6_e8_k4"),
    (["--format", "mxint6", "--wformat", "mxfp8_e4m3"], "mx_dot_ai6_we4m3_k4"),
])
def test_cli_generates_a_mixed_design(argv, name, tmp_path):
    """--format names both operands, --aformat/--wformat one each, in golden's vocabulary
    (golden.parse_format); an mxint<m> format sets the operand's bits."""
    assert generate(["--top", "dot", *argv, "--block", "4", "--out", str(tmp_path)]) == 0
    assert (tmp_path / f"{name}.v").read_text().count(f"module {name}(") == 1


@pytest.mark.parametrize(("a", "b", "block", "width"), [
    ("e2m1", "e2m1", 32, 14),   # 32 * 12 * 12 = 4608
    ("e2m3", "e2m3", 32, 18),   # 32 * 60 * 60
    ("e4m3", "e4m3", 32, 42),   # 32 * 229376**2
    ("e2m1", "int", 1, 12),     # 12 * -128 (b_bits 8)
])
def test_sum_width_is_the_range_of_the_fixed_point_values(a, b, block, width):
    dut = MXIntDotProduct(**params(a, b, block, b_bits=8))
    assert dut.sum_shape.width == width and dut.sum_shape.signed


# --- Amaranth simulator: every format pair -------------------------------------------------

PAIRS = [(a, b) for a, b in itertools.product(FORMATS, repeat=2) if (a, b) != ("int", "int")]


@pytest.mark.parametrize(("a", "b"), PAIRS)
@pytest.mark.parametrize(("block", "arch", "lps"), [(1, "heap", 1), (3, "heap", 2),
                                                    (2, "tree", 1)])
def test_amaranth_sim_matches_golden(a, b, block, arch, lps):
    _check(params(a, b, block, arch=arch, lps=lps), seed=block)


@pytest.mark.parametrize("p", [
    params("e2m1", "e2m1", 17, lps=1), params("e2m1", "int", 9, b_bits=8, lps=3),
    params("e2m3", "e3m2", 6), params("e4m3", "e2m1", 5, arch="tree"),
], ids=lambda p: DotParams(**p).name)
def test_amaranth_sim_larger_blocks(p):
    _check(p, seed=4)


@pytest.mark.parametrize(("a", "b"), [*(("e5m2", f) for f in FORMATS),
                                      *((f, "e5m2") for f in FORMATS)])
def test_amaranth_sim_e5m2_pairs(a, b):
    """E5M2 (infinities and NaNs; elements up to 2**32) with every other format."""
    _check(params(a, b, 3, b_bits=8), seed=5)


def _check(p, seed):
    dut = MXIntDotProduct(**p)
    model = model_for({"top": "dot", "parameters": dut.params.kwargs()})
    stim = model.stimuli(torch.Generator().manual_seed(seed), 40)
    r = run_stream_sim(dut, stim, model.expected(stim), seed=seed)
    assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), r["reports"]
    assert r["checked"] == len(stim["a"]) == 40 + 12


def test_amaranth_sim_catches_a_wrong_nan_flag():
    """The NaN of an E4M3 NaN element code, expected wrong, must be caught."""
    p = params("e4m3", "e2m1", 4)
    dut = MXIntDotProduct(**p)
    model = model_for({"top": "dot", "parameters": dut.params.kwargs()})
    stim = model.stimuli(torch.Generator().manual_seed(7), 10)
    want = model.expected(stim)
    assert want["o"][7]["nan"] == 1  # the corner with a NaN element code, scale not NaN
    assert stim["a"][7]["exponent"] != 255 and stim["b"][7]["exponent"] != 255
    want["o"][7]["nan"] = 0
    r = run_stream_sim(dut, stim, want, seed=7)
    assert r["mismatches"] == 1 and "output #7" in r["reports"][0]


def test_every_element_format_is_covered():
    assert set(FORMATS) | {"e5m2"} == {"int", *ELEMENTS}


# --- Verilator: a representative few --------------------------------------------------------

# Kept small: a k32 E4M3 heap takes minutes to build under Verilator; the Amaranth matrix
# above covers the sizes.
VERILATOR_MATRIX = [
    params("e2m1", "e4m3", 8),
    params("e2m1", "e2m1", 32, lps=1),
    params("int", "e2m1", 8, a_bits=8),
    params("e2m3", "e3m2", 4, lps=3),
    params("e4m3", "e4m3", 2, arch="tree"),
    params("e5m2", "int", 1, b_bits=4),
    params("e2m1", "e2m3", 8, primitives="xc7"),
]


@pytest.mark.parametrize("p", VERILATOR_MATRIX, ids=lambda p: DotParams(**p).name)
def test_verilator_matches_golden(p, sim_build):
    seed = 200 + p["block"]
    s = simulate("dot", DotParams(**p).kwargs(), seed=seed, vectors=300, build_root=sim_build)
    assert (s["mismatches"], s["missing"], s["protocol_errors"], s["timed_out"]) == \
        (0, 0, [], False), f"replay with seed {seed}: {s['reports']}"
    assert s["checked"] == 300 + 12  # random vectors plus the minifloat corners


def test_verilator_scoreboard_catches_dropped_lsb(sim_build):
    """The expectation's LSB dropped must fail on a minifloat design too."""
    s = simulate("dot", DotParams(**params("e2m1", "e4m3", 2)).kwargs(), seed=5,
                 vectors=100, build_root=sim_build, fault="lsb")
    assert s["mismatches"] > 0


# --- exponent-sum placement (hw/placement.py): every code pair --------------------------------

#: E4M3 codes against every code: subnormals (min, max), min normal, -max, max, both NaNs.
E4M3_SOME = [0x01, 0x07, 0x08, 0xFE, 0x7E, 0x7F, 0xFF, 0x80]


@pytest.mark.parametrize(("a", "b", "block", "b_codes"), [
    ("e3m2", "e3m2", 8, None), ("e3m2", "e2m1", 4, None), ("int", "e3m2", 4, None),
    ("e2m1", "e2m1", 4, None), ("e2m3", "e2m3", 8, None), ("e2m1", "e2m3", 4, None),
    ("e4m3", "e4m3", 4, E4M3_SOME), ("e2m3", "e4m3", 4, E4M3_SOME),
    ("e3m2", "e4m3", 4, E4M3_SOME), ("e5m2", "e4m3", 4, E4M3_SOME),
])
def test_placed_products_of_every_code_pair(a, b, block, b_codes):
    """Every pair of element codes (every b code, or ``b_codes``, against every a code: the
    NaN codes, subnormals, -0 and +-max included) meets in one of the ``k`` lanes, which
    are built alike; random scale codes and back-pressure. Each pair at its default levels
    per stage (E4M3 x E4M3, E5M2 x E4M3: one, their specials zeroed, note 10)."""
    dut = MXIntDotProduct(**params(a, b, block, a_bits=4, lps=None))
    assert dut.sum_of_products.placement is not None
    assert dut.sum_of_products.placement.zeroed == (b == "e4m3" and a in ("e4m3", "e5m2"))
    fa, fb = (MXIntFormat(4, 8, block) if a == "int" else _fmt(a, block)), _fmt(b, block)
    na = 1 << (4 if a == "int" else fa.element.width)
    b_all = torch.arange(1 << fb.element.width) if b_codes is None else torch.tensor(b_codes)
    pairs = torch.cartesian_prod(torch.arange(na), b_all)
    pairs = torch.cat([pairs, pairs[: (-len(pairs)) % block]]).reshape(-1, block, 2)
    ca, cb = pairs[..., 0], pairs[..., 1]
    if a == "int":
        ca = torch.where(ca >= 8, ca - 16, ca)
    gen = torch.Generator().manual_seed(11)
    ea, eb = (torch.randint(0, 255, (len(pairs),), generator=gen) for _ in range(2))
    r = mx_dot_product(ca, ea, cb, eb, fa, fb)
    fld = "mantissa" if a == "int" else "codes"
    stim = {side: [{f: x, "exponent": e} for x, e in zip(c.tolist(), ex.tolist(), strict=True)]
            for side, f, c, ex in (("a", fld, ca, ea), ("b", "codes", cb, eb))}
    want = {"o": [{"sum": s, "exponent": e, "nan": int(f)} for s, e, f in
                  zip(r.sum.tolist(), r.exponent.tolist(), r.nan.tolist(), strict=True)]}
    res = run_stream_sim(dut, stim, want, seed=block)
    assert (res["mismatches"], res["missing"], res["protocol_errors"]) == (0, 0, []), \
        res["reports"]


@pytest.mark.parametrize(("a", "b", "structure", "stages"), [
    ("e2m1", "e2m1", "magnitude", []),
    ("e2m3", "e2m3", "per_operand", [(0, 2), (2, 2)]),   # 3:1 by x_a, then by x_b
    ("e2m1", "e2m3", "per_operand", [(0, 2), (2, 2)]),
    ("e3m2", "e3m2", "sign_last", [(0, 2), (2, 1), (3, 1)]),
    ("e4m3", "e4m3", "sign_first", [(0, 1), (1, 2), (3, 2)]),
    ("e5m2", "e4m3", "sign_first", [(0, 1), (1, 1), (2, 2), (4, 2)]),
])
def test_placement_structure_of_each_pair(a, b, structure, stages):
    """Which placed structure each pair takes (hw/placement.py notes 4 to 8), as measured
    best on xc7 (docs/arithmetic.md): the shifter stages ``(first select bit, bits)``."""
    place = MXIntDotProduct(**params(a, b, 2)).sum_of_products.placement
    flags = {"magnitude": place.magnitude, "per_operand": place.per_operand,
             "sign_first": place.sign_first}
    assert [k for k, v in flags.items() if v] == ([] if structure == "sign_last" else
                                                  [structure])
    assert place.sign_last
    assert place.stages == stages



SIX = [(0, 3), (1, 3), (2, 3)]      # six signs a counter, then the bits of each weight


@pytest.mark.parametrize(("a", "b", "counts"), [
    ("e2m1", "e2m1", None), ("e2m3", "e2m3", None),     # one counter level would cost LUTs
    ("e3m2", "e3m2", SIX), ("e2m3", "e3m2", SIX), ("e3m2", "e2m1", SIX),
    ("e4m3", "e4m3", None), ("e5m2", "e4m3", None),     # special codes, two levels a stage
    ("e4m3", "e4m3", (SIX, 1)), ("e5m2", "e4m3", (SIX, 1)),  # zeroed at one (note 10)
    ("e4m3", "e2m1", (SIX, 1)),
])
def test_negation_bits_counted_with_three_stages(a, b, counts):
    """hw/placement.py notes 9 and 10: with three or more shifter stages, and either no
    special codes or, at one level per stage, a special's magnitude zeroed before the sign
    (sign first), the k negation bits enter the heap as two levels of counts (k = 32: 18
    heap bits for 64), else as two bits a MAC; either way the constant makes the sum exact
    (the simulations above check the values, NaN codes included)."""
    counts, lps = counts if isinstance(counts, tuple) else (counts, 2)
    place = MXIntDotProduct(**params(a, b, 32, lps=lps)).sum_of_products.placement
    assert place.counted == (counts is not None)
    assert place.zeroed == (lps == 1)
    field = place.field
    if counts is not None:
        assert place.sign_counts(32) == counts
        low = sorted(w + j for w, bits in counts for j in range(bits))
        assert sorted(place.sign_columns(32)) == low + [field + c for c in low]
        assert place.constant(32) == -sum(7 << w for w, _ in counts) << field
        assert place.columns_of() == list(range(field))
    else:
        assert place.sign_columns(32) == []
        assert place.columns_of() == [*range(field), 0, field]
