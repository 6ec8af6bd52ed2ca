"""The dot product with OCP MX minifloat operands (``--format``, ``--aformat``, ``--wformat``):
golden model, parameters, Amaranth simulator over every format pair, Verilator on a few."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
import torch
import yaml

from golden.dot import DotResult, dot_product, mx_dot_product, mx_dot_sum_range, wide_sum
from golden.format import MXFPFormat, MXIntFormat
from golden.linear import linear_blocks
from golden.minifloat import ELEMENTS
from hw.dot_product import DotParams, MXIntDotProduct
from hw.generate import main as generate
from hw.placement import CHAIN_MACS, CHAIN_SPLIT_BITS
from sim.amaranth_bench import run_stream_sim
from sim.run import simulate
from sim.units import model_for
from tests.reference_mxfp import ELEMENTS as REF_ELEMENTS

#: The element formats of the every-pair matrix, and MXINT (E5M2 has tests of its own).
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
    docstring. E5M2 x E5M2, whose sum leaves int64, is checked in Python integers below."""
    fa, fb = _fmt(a, 4), _fmt(b, 4)
    gen = torch.Generator().manual_seed(3)
    ca, cb = _random_codes(gen, fa, 500), _random_codes(gen, fb, 500)
    ea, eb = torch.randint(0, 256, (500,), generator=gen), torch.randint(0, 256, (500,),
                                                                          generator=gen)
    r = mx_dot_product(ca, ea, cb, eb, fa, fb)
    assert r.wide == (a == b == "e5m2")
    if r.wide:
        return
    assert r.sum.dtype == torch.int64 and r.sum_high is None

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


# --- golden: the wide sum of E5M2 x E5M2, against Python integers ----------------------------

def _reference_dot(a_codes, b_codes, a_fmt, b_fmt):
    """``(S, any special)`` of one block pair from tests/reference_mxfp.py's values (exact
    rationals from the OCP definition, not golden's tables): ``S = sum v_a v_b * 2**(f_a +
    f_b)``, specials 0; an MXINT operand (``a_fmt`` an int: its bits) is its integers."""
    def values(codes, fmt):
        if isinstance(fmt, int):
            return [Fraction(c) for c in codes], 0, False
        el = REF_ELEMENTS[fmt]
        vs = [el.value(c) for c in codes]
        return [v or 0 for v in vs], el.frac_bits, any(v is None for v in vs)
    (va, fa, sa), (vb, fb, sb) = values(a_codes, a_fmt), values(b_codes, b_fmt)
    s = sum(x * y for x, y in zip(va, vb, strict=True)) * 2 ** (fa + fb)
    assert s.denominator == 1
    return int(s), sa or sb


MAX, NEG_MAX, MIN_SUB, NEG_MIN_SUB = 0x7B, 0xFB, 0x01, 0x81
INF, NEG_INF, NAN = 0x7C, 0xFC, 0x7D


def _e5m2_blocks(k):
    """Adversarial E5M2 block pairs, then random ones (every code, specials included)."""
    alt = [MAX if i % 2 else NEG_MAX for i in range(k)]
    pairs = [
        ([MAX] * k, [MAX] * k),                                  # the largest sum
        ([MAX] * k, [NEG_MAX] * k),                              # the most negative
        ([NEG_MAX] * k, [NEG_MAX] * k),
        ([MIN_SUB] * k, [MIN_SUB] * k),                          # the smallest nonzero
        ([NEG_MIN_SUB] * k, [MIN_SUB] * k),
        ([MAX] * k, [NEG_MIN_SUB] * k),
        (alt, [MAX] * k),                                        # mixed signs
        ([MAX] * (k - 1) + [MIN_SUB], [NEG_MAX] * (k - 1) + [MIN_SUB]),  # -big + 1
        ([NEG_MAX] * (k - 1) + [NEG_MIN_SUB], [MAX] * (k - 1) + [MIN_SUB]),
        ([MAX] * (k - 1) + [INF], [MAX] * k),                    # specials count 0, NaN
        ([NEG_INF] + [NEG_MAX] * (k - 1), [NAN] + [MAX] * (k - 1)),
        ([0x80] * k, [MAX] * k),                                 # -0
    ]
    gen = torch.Generator().manual_seed(16)
    rand = torch.randint(0, 256, (40 if k < 1024 else 4, 2, k), generator=gen).tolist()
    return pairs + [(a, b) for a, b in rand]


@pytest.mark.parametrize("k", [1, 32, 1024])
def test_golden_e5m2_wide_sum_is_exact(k):
    """E5M2 x E5M2 (``|P| < 2**32``: sums up to about ``2**68.6`` at k = 32): ``sum_high *
    2**32 + sum_low`` equals the sum of the exact products, ``0 <= sum_low < 2**32``, at
    every block size up to the largest."""
    fmt = MXFPFormat("e5m2", block=k)
    blocks = _e5m2_blocks(k)
    ca = torch.tensor([a for a, _ in blocks])
    cb = torch.tensor([b for _, b in blocks])
    e = torch.arange(len(blocks)) % 256
    r = mx_dot_product(ca, e, cb, e.flip(0), fmt, fmt)
    assert r.wide and r.sum_high.dtype == r.sum_low.dtype == torch.int64
    assert bool(((r.sum_low >= 0) & (r.sum_low < 1 << 32)).all())
    want = [_reference_dot(a, b, "e5m2", "e5m2") for a, b in blocks]
    assert r.sum_list() == [s for s, _ in want]
    assert r.nan.tolist() == [sp or x == 255 or y == 255
                              for (_, sp), x, y in zip(want, e.tolist(), e.flip(0).tolist(),
                                                       strict=True)]
    assert torch.equal(r.exponent, e + e.flip(0))
    if k == 32:  # the range the hardware's 70-bit sum holds
        lo, hi = mx_dot_sum_range(fmt, fmt, k)
        assert (want[1][0], want[0][0]) == (lo, hi) and hi == 32 * (57344 << 16) ** 2
        assert max(hi.bit_length(), (-lo - 1).bit_length()) + 1 == 70 > 64


def test_golden_e5m2_with_mxint24_at_k1024_is_wide_too():
    """Every pair whose range leaves int64 takes the wide sum: E5M2 x MXINT24 at k = 1024
    (``2**23 * 2**31.8 * 2**10``)."""
    fa, fb = MXFPFormat("e5m2", block=1024), MXIntFormat(24, 8, 1024)
    gen = torch.Generator().manual_seed(17)
    cb = torch.cat([torch.full((2, 1024), -(1 << 23)),
                    torch.randint(-(1 << 23), 1 << 23, (4, 1024), generator=gen)])
    ca = torch.cat([torch.full((1, 1024), MAX), torch.full((1, 1024), NEG_MAX),
                    torch.randint(0, 256, (4, 1024), generator=gen)])
    r = mx_dot_product(ca, torch.zeros(6), cb, torch.zeros(6), fa, fb)
    assert r.wide
    assert r.sum_list() == [_reference_dot(a, b, "e5m2", 24)[0]
                            for a, b in zip(ca.tolist(), cb.tolist(), strict=True)]
    assert r.sum_list()[1] == 1024 * (57344 << 16) << 23  # beyond 2**63


def test_golden_wide_result_refuses_to_be_read_as_int64():
    """A wide result's ``sum`` raises (it would be the low limb only); a result that fits
    int64 keeps its int64 ``sum`` and no ``sum_high``; ``sum_list`` nests as ``tolist``."""
    f5, f4 = MXFPFormat("e5m2", block=2), MXFPFormat("e4m3", block=2)
    codes = torch.tensor([[[MAX, MAX]] * 3] * 2)
    e = torch.zeros((2, 3), dtype=torch.int64)
    r = mx_dot_product(codes, e, codes, e, f5, f5)
    with pytest.raises(ValueError, match=r"wider than int64 \(MXFP8 E5M2 x E5M2\): read it "
                                         r"as sum_high \* 2\*\*32 \+ sum_low"):
        r.sum  # noqa: B018
    assert r.sum_list() == [[2 * (57344 << 16) ** 2] * 3] * 2
    n = mx_dot_product(codes, e, codes, e, f5, f4)
    assert not n.wide and n.sum_high is None and n.sum.dtype == torch.int64
    assert n.sum_list() == n.sum.tolist() and n.sum.shape == (2, 3)


@pytest.mark.parametrize(("pa", "pb", "match"), [
    (torch.tensor([[(1 << 32) + 1]]), torch.tensor([[1]]),
     r"pa must be at most 2\*\*32 in magnitude, not 4294967297"),
    (torch.tensor([[1]]), torch.tensor([[-(1 << 33)]]),
     r"pb must be at most 2\*\*32 in magnitude, not 8589934592"),
    (torch.ones((1, 1025), dtype=torch.int64), torch.ones((1, 1025), dtype=torch.int64),
     r"wide_sum takes at most 1024 products a sum, not 1025"),
    (torch.ones((2, 4), dtype=torch.int64), torch.ones((1, 4), dtype=torch.int64),
     r"wide_sum takes pa and pb of one shape \(\.\.\., k\), not \(2, 4\) and \(1, 4\)"),
])
def test_wide_sum_refuses_what_its_bounds_do_not_cover(pa, pb, match):
    with pytest.raises(ValueError, match=match):
        wide_sum(pa, pb)


@pytest.mark.parametrize("low", [-1, 1 << 32])
def test_dot_result_refuses_a_low_limb_out_of_range(low):
    """A wide result's ``sum_low`` is ``S mod 2**32``: anything else is refused, not
    silently misread by ``sum_list``."""
    t = torch.tensor([low])
    with pytest.raises(ValueError, match=r"sum_low \(the sum of a wide result\) must be "
                                         r"from 0 to 2\*\*32 - 1, not "):
        DotResult(t, torch.tensor([0]), torch.tensor([False]), sum_high=torch.tensor([0]))
    assert DotResult(t, torch.tensor([0]), torch.tensor([False])).sum.tolist() == [low]


def test_linear_golden_refuses_e5m2_with_itself():
    """Downstream of the dot product nothing takes a 70-bit result: the linear engine's
    golden model (and the tile's, through it) says so in one line."""
    fmt = MXFPFormat("e5m2", block=32)
    z = torch.zeros((2, 1, 32), dtype=torch.int64)
    with pytest.raises(ValueError, match=r"^the dot results of mxfp8_e5m2_k32 x "
                                         r"mxfp8_e5m2_k32 are 70 bits wide, beyond the "
                                         r"accumulator's 62: only the dot product takes "
                                         r"this pair$"):
        linear_blocks(z, z[..., 0], z[0], z[0, :, 0], fmt, fmt, guard_bits=0, acc_width=62)


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
    """Not given, ``levels_per_stage`` is 1 for a heap of an 8-bit minifloat (E4M3, E5M2)
    with any minifloat (its clock on ECP5, hw.params.default_sum_levels) and 2 otherwise
    (MXINT, FP6 and FP4 pairs, an 8-bit format with MXINT); the name carries it only when it
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
    assert lps(a_element="e4m3", b_element="e2m1") == (1, "mx_dot_ae4m3_we2m1_k32")
    assert lps(a_element="e4m3", b_element="e2m1", levels_per_stage=2) == \
        (2, "mx_dot_ae4m3_we2m1_k32_l2")
    assert lps(a_element="e2m3", b_element="e5m2") == (1, "mx_dot_ae2m3_we5m2_k32")
    assert lps(a_element="e3m2", b_element="e4m3") == (1, "mx_dot_ae3m2_we4m3_k32")
    assert lps(a_element="e3m2", b_element="e2m1") == (2, "mx_dot_ae3m2_we2m1_k32")
    assert lps(a_element="e4m3", a_bits=None, b_element="int", b_bits=8) == \
        (2, "mx_dot_ae4m3_wi8_k32")
    assert lps(a_element="e5m2", b_element="e4m3") == (1, "mx_dot_ae5m2_we4m3_k32")
    assert lps(a_element="e4m3", b_element="e5m2") == (1, "mx_dot_ae4m3_we5m2_k32")
    assert lps(a_element="e5m2", b_element="e5m2") == (1, "mx_dot_ae5m2_we5m2_k32")
    assert lps(a_element="e5m2", b_element="e3m2") == (1, "mx_dot_ae5m2_we3m2_k32")
    assert lps(a_bits=6, b_bits=6) == (2, "mxint_dot_a6_w6_e8_k32")
    assert lps(a_bits=6, b_bits=6, levels_per_stage=1) == (1, "mxint_dot_a6_w6_e8_k32_l1")
    for record in (LinearParams, TileParams):
        p = record(x_element="e4m3", w_element="e4m3", block=4, rows=4)
        assert p.levels_per_stage == 1 and p.name.endswith("_g8")
        assert record(x_element="e4m3", w_element="e4m3", block=4, rows=4,
                      levels_per_stage=2).name.endswith("_g8_l2")
    dut = MXIntDotProduct(a_element="e4m3", b_element="e4m3", block=4)
    assert dut.levels_per_stage == 1 and dut.latency == dut.levels
    two = MXIntDotProduct(a_element="e4m3", b_element="e4m3", block=4, levels_per_stage=2)
    # At one level the words are chained (hw/placement.py note 11): more levels than at two.
    assert two.latency == -(-two.levels // 2) and two.levels < dut.levels


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


def test_cli_generates_e5m2_with_itself(tmp_path):
    """``--format mxfp8_e5m2``: the module, its 67-bit ``sum`` port field at k = 4 (wider
    than any int64; 70 at k = 32) and the manifest's parameters."""
    name = "mx_dot_ae5m2_we5m2_k4"
    assert generate(["--top", "dot", "--format", "mxfp8_e5m2", "--block", "4", "--out",
                     str(tmp_path)]) == 0
    assert (tmp_path / f"{name}.v").read_text().count(f"module {name}(") == 1
    manifest = yaml.safe_load((tmp_path / f"{name}.yaml").read_text())
    assert manifest["module"] == name and manifest["latency"] == 10  # 18 at k = 32 (chained)
    assert manifest["parameters"] == {"a_element": "e5m2", "b_element": "e5m2", "exp_bits": 8,
                                      "block": 4, "arch": "heap", "levels_per_stage": 1,
                                      "primitives": "generic"}
    o = manifest["streams"]["o"]
    assert o["width"] == 77 and o["fields"] == [
        {"name": "sum", "offset": 0, "width": 67, "signed": True},
        {"name": "exponent", "offset": 67, "width": 9, "signed": False},
        {"name": "nan", "offset": 76, "width": 1, "signed": False}]
    assert {"name": "o__payload", "direction": "output", "width": 77} in manifest["ports"]


@pytest.mark.parametrize(("a", "b", "block", "width"), [
    ("e2m1", "e2m1", 32, 14),   # 32 * 12 * 12 = 4608
    ("e2m3", "e2m3", 32, 18),   # 32 * 60 * 60
    ("e4m3", "e4m3", 32, 42),   # 32 * 229376**2
    ("e2m1", "int", 1, 12),     # 12 * -128 (b_bits 8)
    ("e5m2", "e5m2", 32, 70),   # 32 * (57344 * 2**16)**2, beyond int64
    ("e5m2", "e5m2", 1, 65),
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


@pytest.mark.parametrize(("a", "b"), [(a, b) for a in ("e4m3", "e5m2")
                                      for b in ("e3m2", "e2m3", "e2m1")])
def test_amaranth_sim_mixed_pairs_at_their_default_of_one_level(a, b):
    """An 8-bit format with an FP6 or FP4 one, at its default of one level per stage
    (specials zeroed, signs counted over groups of six MACs: k = 7 has a full group and a
    partial one), bit-exact under idle cycles and back-pressure; b first as well."""
    for x, y in ((a, b), (b, a)):
        p = params(x, y, 7, lps=None)
        assert MXIntDotProduct(**p).params.levels_per_stage == 1
        _check(p, seed=7)


@pytest.mark.parametrize(("block", "arch", "lps"), [(1, "heap", 1), (3, "heap", 2),
                                                    (2, "heap", 3), (2, "tree", 1)])
def test_amaranth_sim_e5m2_with_itself(block, arch, lps):
    """E5M2 x E5M2: a sum of 65 + ceil(log2 k) bits, beyond int64, bit-exact against the
    golden model's wide sum under idle cycles and back-pressure."""
    dut = MXIntDotProduct(**params("e5m2", "e5m2", block, arch=arch, lps=lps))
    assert dut.sum_shape.width == 65 + (block - 1).bit_length()
    _check(params("e5m2", "e5m2", block, arch=arch, lps=lps), seed=block)


def test_amaranth_sim_e5m2_with_itself_split_final_adder():
    """E5M2 x E5M2 at one level per stage (its default) with a three-row final sum (k = 5):
    the final adder in two halves, the low half's carry registered into the high half,
    bit-exact under idle cycles and back-pressure."""
    p = params("e5m2", "e5m2", 5, lps=1)
    dut = MXIntDotProduct(**p)
    assert dut.sum_shape.width == 67 and dut.latency == dut.levels
    _check(p, seed=11)


def _final_steps(dut):
    """The kinds of the last steps of ``dut``'s heap, after it is built."""
    from hw.generate import elaborate

    design = elaborate("dot", **dut.params.kwargs())
    steps = design.component.sum_of_products.certificate["steps"]
    return [step["kind"] for step in steps[-5:]], design.component


@pytest.mark.parametrize(("a", "b", "lps", "split"), [
    ("e5m2", "e5m2", None, True), ("e5m2", "e5m2", 1, True), ("e5m2", "e5m2", 2, False),
    ("e5m2", "e4m3", None, False), ("e4m3", "e4m3", None, False)])
def test_only_a_final_adder_of_more_than_64_bits_at_one_level_is_split(a, b, lps, split):
    """hw.bitheap.SPLIT_ADDER_BITS: the 70-bit final adder of E5M2 x E5M2 (k = 32) at one
    level per stage is two adders, each followed by a register (one level and one cycle
    more than one adder); at two levels per stage, or 56 bits (E5M2 x E4M3), it is one."""
    from hw.bitheap import SPLIT_ADDER_BITS

    dut = MXIntDotProduct(a_element=a, b_element=b, block=32, levels_per_stage=lps)
    kinds, built = _final_steps(dut)
    assert (dut.sum_shape.width > SPLIT_ADDER_BITS and dut.levels_per_stage == 1) == split
    if split:
        assert kinds == ["adders", "adders", "registers", "adders", "registers"]
        assert dut.latency == 18 and built.latency == 18  # 11 + 7 chained MACs
    else:
        assert kinds[-2:] == ["sum", "registers"]


def test_amaranth_sim_catches_a_wrong_high_bit_of_a_wide_sum():
    """A wrong bit 66 of the expected E5M2 x E5M2 sum (above any int64) must be caught."""
    p = params("e5m2", "e5m2", 4)
    dut = MXIntDotProduct(**p)
    model = model_for({"top": "dot", "parameters": dut.params.kwargs()})
    stim = model.stimuli(torch.Generator().manual_seed(8), 4)
    want = model.expected(stim)
    assert want["o"][1]["sum"] == 4 * (57344 << 16) ** 2  # all +max: bit 66 set
    want["o"][1]["sum"] ^= 1 << 66
    r = run_stream_sim(dut, stim, want, seed=8)
    assert r["mismatches"] == 1 and "output #1" in r["reports"][0]


def _check(p, seed):
    dut = MXIntDotProduct(**p)
    model = model_for({"top": "dot", "parameters": dut.params.kwargs()})
    stim = model.stimuli(torch.Generator().manual_seed(seed), 40)
    r = run_stream_sim(dut, stim, model.expected(stim), seed=seed)
    assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), r["reports"]
    assert r["checked"] == len(stim["a"]) == 40 + 12


@pytest.mark.parametrize(("a", "b", "block"), [
    ("e4m3", "e4m3", 2), ("e4m3", "e4m3", 9), ("e4m3", "e4m3", 32),
    ("e5m2", "e4m3", 17), ("e4m3", "e5m2", 8), ("e5m2", "e5m2", 2), ("e5m2", "e5m2", 9),
])
def test_amaranth_sim_chained_words(a, b, block):
    """E4M3 x E4M3, E5M2 x E4M3 and E5M2 x E5M2 at their default of one level per stage:
    the placed words added in chains of eight MACs (hw/placement.py note 11), the last
    chain shorter (one MAC alone at k = 9 and 17), bit-exact under idle cycles and
    back-pressure. E5M2 x E5M2's rows (65 bits and more) are wider than
    CHAIN_SPLIT_BITS: each adder in two halves, the carry between them saved, each chain's
    registers on a copy of the stall enable (note 12); the others' are not split."""
    p = params(a, b, block, lps=None)
    sop = MXIntDotProduct(**p).sum_of_products
    place = sop.placement
    n = min(CHAIN_MACS, block)
    assert CHAIN_MACS == 8 and place.chain == n
    assert [len(c) for c in place.chains(block)] == \
        [n] * (block // n) + ([block % n] if block % n else [])
    splits = [place.split_at(len(c)) for c in place.chains(block)]
    if a == b == "e5m2":
        assert CHAIN_SPLIT_BITS == 64 and place.row_width(n) > 64
        assert splits[0] == (place.row_width(n) + 1) // 2 and place.chain_carries(block)
        assert splits[1:] == [None] * (len(splits) - 1)  # one MAC alone: no adder
        # A copy of the stall enable per chain and one for the heap (note 12).
        assert sop.enables == 2 + len(splits)
    else:
        assert place.row_width(n) <= CHAIN_SPLIT_BITS and set(splits) == {None}
        assert sop.enables == 1
    print(f"seed {block}")
    _check(p, seed=block)


def test_chained_words_only_where_chosen():
    """Chains only for the pairs of hw.placement.CHAINED_PAIRS at one level per stage;
    every other pair keeps one word per MAC (its Verilog unchanged)."""
    for a, b in PAIRS:
        for lps in (1, 2):
            place = MXIntDotProduct(**params(a, b, 4, b_bits=8, lps=lps)).sum_of_products \
                .placement
            if place is None:
                continue
            want = lps == 1 and {a, b} <= {"e4m3", "e5m2"}
            assert (place.chain > 1) == want, (a, b, lps)
    for lps in (1, 2):  # E5M2 x E5M2 (not in PAIRS) too
        place = MXIntDotProduct(**params("e5m2", "e5m2", 4, lps=lps)).sum_of_products \
            .placement
        assert (place.chain > 1) == (lps == 1)
    # One MAC: no chain, and no levels for one (the k = 1 design as before).
    assert MXIntDotProduct(**params("e4m3", "e4m3", 1, lps=1)).sum_of_products \
        .placement.chain == 1


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
    # (MXFP4 x MXFP4 k32 runs under Verilator inside test_mxfp_linear's k32 linear)
    params("int", "e2m1", 8, a_bits=8),
    params("e2m3", "e3m2", 4, lps=3),
    params("e4m3", "e4m3", 2, arch="tree"),
    params("e5m2", "int", 1, b_bits=4),
    params("e5m2", "e5m2", 4, lps=None),   # a 67-bit sum: a wide port; a chain of four, its
    # adders split in two halves (hw/placement.py note 12)
    params("e2m1", "e2m3", 8, primitives="xc7"),
    params("e4m3", "e4m3", 3, lps=None),   # a chain of 3 words (hw/placement.py note 11)
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
#: E5M2 codes against every code: subnormals (min, max), min normal, -max, max, +-inf, NaN.
E5M2_SOME = [0x01, 0x03, 0x04, 0xFB, 0x7B, 0x7C, 0xFC, 0x7F, 0x80]


@pytest.mark.parametrize(("a", "b", "block", "b_codes"), [
    ("e3m2", "e3m2", 8, None), ("e3m2", "e2m1", 4, None), ("int", "e3m2", 4, None),
    ("e2m1", "e2m1", 4, None), ("e2m3", "e2m3", 8, None), ("e2m1", "e2m3", 4, None),
    ("e4m3", "e4m3", 4, E4M3_SOME), ("e2m3", "e4m3", 4, E4M3_SOME),
    ("e3m2", "e4m3", 4, E4M3_SOME), ("e5m2", "e4m3", 4, E4M3_SOME),
    ("e5m2", "e5m2", 4, E5M2_SOME), ("e2m1", "e5m2", 4, E5M2_SOME),
])
def test_placed_products_of_every_code_pair(a, b, block, b_codes):
    """Every pair of element codes (every b code, or ``b_codes``, against every a code: the
    NaN codes, subnormals, -0 and +-max included) meets in one of the ``k`` lanes, which
    are built alike; random scale codes and back-pressure. Each pair at its default levels
    per stage (E4M3 or E5M2 with a minifloat, hw.params.ONE_LEVEL_PAIRS: one, their
    specials zeroed, note 10)."""
    from hw.params import ONE_LEVEL_PAIRS

    dut = MXIntDotProduct(**params(a, b, block, a_bits=4, lps=None))
    assert dut.sum_of_products.placement is not None
    assert dut.sum_of_products.placement.zeroed == (
        (a, b) in ONE_LEVEL_PAIRS or (b, a) in ONE_LEVEL_PAIRS)
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
                  zip(r.sum_list(), r.exponent.tolist(), r.nan.tolist(), strict=True)]}
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
    ("e5m2", "e5m2", "sign_first", [(0, 1), (1, 1), (2, 2), (4, 2)]),   # X 0 .. 58
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
        # Each chain adder adds one (note 11): 28 of them at k = 32 in chains of eight.
        adders = 32 - len(place.chains(32))
        assert adders == (28 if place.chain == 8 else 0)
        assert place.constant(32) == (-sum(7 << w for w, _ in counts) << field) - adders
        assert place.columns_of() == list(range(field))
    else:
        assert place.sign_columns(32) == []
        assert place.columns_of() == [*range(field), 0, field]
