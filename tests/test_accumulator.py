"""MXIntAccumulator: golden recurrence against plain integers, its error bound and lossless
mode, Amaranth-simulator and Verilator runs against golden."""

from __future__ import annotations

import gc
import inspect
import types
import warnings

import pytest
import torch
from amaranth.hdl import Fragment, UnusedElaboratable
from hypothesis import given, settings
from hypothesis import strategies as st

from golden.accumulator import accumulate, accumulate_stream
from hw.accumulator import MXIntAccumulator, select_add_halves
from hw.generate import elaborate
from sim.amaranth_bench import run_stream_sim
from sim.run import simulate
from sim.units import model_for
from tests.test_bitheap import ccu2c_sum


def params(a_bits, b_bits, exp_bits, block, guard_bits=8, acc_width=None, align=None):
    p = {"a_bits": a_bits, "b_bits": b_bits, "exp_bits": exp_bits, "block": block,
         "guard_bits": guard_bits}
    if acc_width is not None:
        p["acc_width"] = acc_width
    if align is not None:
        p["align"] = align
    return p


def unused(dut):
    """A component built to read its properties, elaborated once so that Amaranth does not
    report it unused."""
    Fragment.get(dut, None)
    return dut


# --- reference: the documented recurrence on Python integers (floor shifts) ------------------


def reference_group(items: list[tuple[int, int, bool]], guard: int, width: int
                    ) -> tuple[int, int, bool, list[int]]:
    """Returns (sum, exponent, nan, running maxima) of one group: docs/arithmetic.md, the
    recurrence on unbounded integers, saturation sticky at the first excursion."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    acc, e_max, nan, maxima, clamp = 0, None, False, [], None
    for s, e, f in items:
        x = s << guard
        if e_max is None:
            acc, e_max = x, e
        elif e > e_max:
            acc, e_max = (acc >> (e - e_max)) + x, e  # Python >> on ints is a floor
        else:
            acc = acc + (x >> (e_max - e))
        if clamp is None and not lo <= acc <= hi:
            clamp = hi if acc > hi else lo
        nan = nan or bool(f)
        maxima.append(e_max)
    return (acc if clamp is None else clamp), e_max, nan, maxima


def checked_expectation(groups, p, guard, width):
    """The stream of ``groups`` and the testbench model's expectation of it, after checking
    that expectation against the independent reference, group by group."""
    stim = {"i": stream_of(groups)}
    want = model_for({"top": "accum", "parameters": p}).expected(stim)
    two = p.get("align") == "interleave"
    for g, o in zip(groups, want["o"], strict=True):
        acc, e_max, nan, _ = (reference_partials(g, guard, width, 2) if two
                              else reference_group(g, guard, width))
        assert (o["sum"], o["exponent"], o["nan"]) == (acc, e_max, int(nan))
    return stim, want


def reference_partials(items: list[tuple[int, int, bool]], guard: int, width: int,
                       parts: int) -> tuple[int, int, bool, list[int]]:
    """``parts`` partial sums (docs/arithmetic.md, "Two interleaved partial sums", and
    golden.accumulator's notes, "Four partial sums"): input j joins partial sum j mod parts,
    each with its own running maximum; the group saturates at the first excursion of any,
    in input order; at the end every partial sum is floor-shifted to the largest maximum and
    they are added, a sum out of range taking its side's bound. Returns (sum, exponent,
    nan, the group's running maxima)."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    acc, e_max, clamp, maxima = [None] * parts, [None] * parts, None, []
    for j, (s, e, _) in enumerate(items):
        q, x = j % parts, s << guard
        if e_max[q] is None:
            acc[q], e_max[q] = x, e
        elif e > e_max[q]:
            acc[q], e_max[q] = (acc[q] >> (e - e_max[q])) + x, e
        else:
            acc[q] = acc[q] + (x >> (e_max[q] - e))
        if clamp is None and not lo <= acc[q] <= hi:
            clamp = hi if acc[q] > hi else lo
        maxima.append(max(m for m in e_max if m is not None))
    top = maxima[-1]
    total = sum(a >> (top - m) for a, m in zip(acc, e_max, strict=True) if a is not None)
    if clamp is None and not lo <= total <= hi:
        clamp = hi if total > hi else lo
    return (total if clamp is None else clamp), top, any(f for _, _, f in items), maxima


def run_group(items, guard, width, partial_sums=1):
    r = accumulate(torch.tensor([[s for s, _, _ in items]]),
                   torch.tensor([[e for _, e, _ in items]]),
                   torch.tensor([[bool(f) for _, _, f in items]]),
                   guard_bits=guard, acc_width=width, partial_sums=partial_sums)
    return int(r.sum[0]), int(r.exponent[0]), bool(r.nan[0])


# --- parameters --------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"a_bits": 1}, ValueError, r"a_bits must be from 2 to 24, not 1"),
    ({"b_bits": 30}, ValueError, r"b_bits must be from 2 to 24, not 30"),
    ({"exp_bits": 9}, ValueError, r"exp_bits must be from 2 to 8, not 9"),
    ({"block": 0}, ValueError, r"block must be from 1 to 1024, not 0"),
    ({"guard_bits": -1}, ValueError, r"guard_bits must be from 0 to 46, not -1"),
    ({"guard_bits": 47}, ValueError, r"guard_bits must be from 0 to 46, not 47"),
    ({"guard_bits": 2.0}, TypeError, r"guard_bits must be an integer, not 2.0"),
    ({"acc_width": 23}, ValueError, r"acc_width must be from 24 to 62, not 23"),
    ({"acc_width": 63}, ValueError, r"acc_width must be from 24 to 62, not 63"),
    ({"acc_width": "32"}, TypeError, r"acc_width must be an integer, not '32'"),
    ({"primitives": "ecp5"}, ValueError,
     r"primitives 'ecp5' with align 'stall': the accumulator takes only 'generic', or "
     r"'ecp5' with align 'lookahead'"),
    ({"primitives": "xc7", "align": "lookahead"}, ValueError,
     r"primitives 'xc7' with align 'lookahead': the accumulator takes only"),
    ({"align": "skid"}, ValueError,
     r"align must be one of 'loop', 'stall', 'interleave', 'lookahead', not 'skid'"),
    ({"align": 1}, TypeError,
     r"align must be a str, one of 'loop', 'stall', 'interleave', 'lookahead'; not 1"),
])
def test_bad_parameters(kwargs, exc, match):
    # in_width of 6 x 6 bits over 16 elements is 16
    with pytest.raises(exc, match=match):
        MXIntAccumulator(**{**params(6, 6, 8, 16), **kwargs})
    collect_refused_components()


def collect_refused_components() -> None:
    """A constructor that raised leaves a half-built component (Amaranth registers it as
    must-use on creation); collect it now, so the warning does not surface in a later test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        gc.collect()


def test_positional_parameters_refused():
    with pytest.raises(TypeError):
        MXIntAccumulator(6, 6, 8, 16)  # type: ignore[misc]
    collect_refused_components()


def test_widths_and_defaults():
    dut = unused(MXIntAccumulator(a_bits=6, b_bits=6, block=16))
    assert (dut.in_width, dut.guard_bits, dut.acc_width, dut.latency) == (16, 8, 32, 3)
    assert dut.align == "stall" and [dut.stall_cycles(d) for d in (0, 1, 40)] == [0, 2, 2]
    stall = unused(MXIntAccumulator(a_bits=6, b_bits=6, block=16, align="stall"))
    assert stall.latency == 3
    assert [stall.stall_cycles(d) for d in (0, 1, 7, 8, 31, 40)] == [0, 2, 2, 2, 2, 2]
    # W = 4: one stall cycle shifts A by 0 to 3
    tiny = unused(MXIntAccumulator(a_bits=2, b_bits=2, exp_bits=2, block=1, guard_bits=0,
                                   acc_width=4, align="stall"))
    assert [tiny.stall_cycles(d) for d in (1, 3, 7, 8)] == [1, 1, 1, 1]
    inter = unused(MXIntAccumulator(a_bits=6, b_bits=6, block=16, align="interleave"))
    assert inter.latency == 7 and [inter.stall_cycles(d) for d in (0, 1, 40)] == [0, 0, 0]
    assert dut.i.payload.shape().size == 16 + 9 + 1 + 1
    assert list(dut.o.payload.shape().members) == ["sum", "exponent", "nan"]
    # the default width is capped at 62
    assert unused(MXIntAccumulator(a_bits=24, b_bits=24, block=1024,
                                   guard_bits=2)).acc_width == 62


def test_width_does_not_grow_with_exponent_range():
    small = unused(MXIntAccumulator(a_bits=8, b_bits=8, exp_bits=2, block=32, guard_bits=4))
    large = unused(MXIntAccumulator(a_bits=8, b_bits=8, exp_bits=8, block=32, guard_bits=4))
    assert small.acc_width == large.acc_width
    assert large.o.payload.shape().size - small.o.payload.shape().size == 6


def test_golden_rejects_bad_arguments():
    one = torch.ones(1, 1, dtype=torch.int64)
    with pytest.raises(ValueError, match="acc_width must be from 1 to 62, not 63"):
        accumulate(one, one, one == 0, guard_bits=0, acc_width=63)
    with pytest.raises(ValueError, match=r"sum must be below 2\*\*52"):
        accumulate(one << 52, one, one == 0, guard_bits=10, acc_width=62)
    with pytest.raises(ValueError, match="at least one input"):
        accumulate(one[:, :0], one[:, :0], one[:, :0] == 0, guard_bits=0, acc_width=8)
    for bad in (3, 0, 8, True, "2"):
        with pytest.raises(ValueError, match=f"partial_sums must be 1, 2 or 4, not {bad!r}"):
            accumulate(one, one, one == 0, guard_bits=0, acc_width=8, partial_sums=bad)


# --- golden: directed ---------------------------------------------------------------------------


def test_worked_example():
    # docs/units/accumulator.md: G = 2, W = 12
    items = [(100, 10, 0), (-37, 12, 0), (55, 9, 0), (-1, 3, 0)]
    assert run_group(items, 2, 12) == (-22, 12, False)


def test_single_input_is_exact():
    assert run_group([(-5, 7, 0)], 3, 8) == (-40, 7, False)


def test_arithmetic_shift_far_beyond_the_width():
    # a negative accumulator shifted by 200 leaves -1, not a large positive number
    assert run_group([(-5, 0, 0), (0, 200, 0)], 2, 10) == (-1, 200, False)
    assert run_group([(5, 0, 0), (0, 200, 0)], 2, 10) == (0, 200, False)
    # a negative input far below the maximum adds -1
    assert run_group([(0, 200, 0), (-5, 0, 0)], 2, 10) == (-1, 200, False)
    assert run_group([(3, 200, 0), (-(1 << 6), 199, 0), (-1, 0, 0)], 0, 10) == (-30, 200, False)


def test_saturation_both_ways_and_sticky():
    hi = [(127, 5, 0)] * 10
    assert run_group(hi, 2, 12) == (2047, 5, False)
    assert run_group([(-128, 5, 0)] * 10, 2, 12) == (-2048, 5, False)
    # all -max: exactly -2**(W-1) is in range, one more input leaves it
    assert run_group([(-128, 5, 0)] * 4, 2, 12) == (-2048, 5, False)
    assert run_group([(-128, 5, 0)] * 4 + [(-1, 0, 0)], 2, 12) == (-2048, 5, False)
    assert run_group([(-128, 5, 0)] * 4 + [(0, 6, 0)], 2, 12) == (-1024, 6, False)
    # sticky: coming back into range (by a later input or a rising exponent that shifts A
    # down) keeps the bound of the first excursion
    assert run_group(hi + [(-128, 5, 0)] * 3, 2, 12) == (2047, 5, False)
    assert run_group(hi + [(0, 9, 1)], 2, 12) == (2047, 9, True)
    assert run_group([(-128, 5, 0)] * 5 + [(127, 5, 0)] * 20, 2, 12) == (-2048, 5, False)
    # the first excursion decides, even if a later one goes the other way
    assert run_group(hi + [(-128, 5, 0)] * 30, 2, 12) == (2047, 5, False)
    # the first input out of range (golden alone; the unit has W >= in_width + G)
    assert run_group([(-5, 0, 0), (1, 0, 0)], 3, 5) == (-16, 0, False)


def test_nan_is_sticky_over_the_group_only():
    r = accumulate_stream(torch.tensor([1, 2, 3, 4, 5]), torch.tensor([1, 1, 1, 1, 1]),
                          torch.tensor([False, True, False, False, False]),
                          torch.tensor([False, False, True, False, True]),
                          guard_bits=1, acc_width=16)
    assert r.nan.tolist() == [True, False]
    assert r.sum.tolist() == [12, 18]


def test_stream_without_final_last_drops_the_open_group():
    r = accumulate_stream(torch.tensor([1, 2, 3]), torch.tensor([0, 0, 0]),
                          torch.tensor([False] * 3), torch.tensor([True, False, False]),
                          guard_bits=0, acc_width=8)
    assert r.sum.tolist() == [1]


def test_two_partial_sums_directed():
    """G = 2, W = 12 (bounds 2047 / -2048): the worked example, short and odd groups,
    saturation of either partial sum and of their combination, NaN."""
    def both(items):
        got = run_group(items, 2, 12, partial_sums=2)
        assert got == reference_partials(items, 2, 12, 2)[:3]
        return got
    # worked example: partial 0 = (100, 10), (55, 9) -> 400 + 110 = 510 at 10;
    # partial 1 = (-37, 12), (-1, 3) -> -148 + (-4 >> 9 = -1) = -149 at 12;
    # 510 >> 2 = 127, 127 - 149 = -22 (one sum gives -22 too, by other floors)
    assert both([(100, 10, 0), (-37, 12, 0), (55, 9, 0), (-1, 3, 0)]) == (-22, 12, False)
    # they differ (G = 0): one sum adds 3 + 1 before the floor 4 >> 1 = 2; two sums floor
    # each apart, 3 >> 1 = 1 and 1 >> 1 = 0
    assert run_group([(3, 1, 0), (1, 1, 0), (0, 2, 0)], 0, 12) == (2, 2, False)
    assert run_group([(3, 1, 0), (1, 1, 0), (0, 2, 0)], 0, 12, partial_sums=2) == \
        reference_partials([(3, 1, 0), (1, 1, 0), (0, 2, 0)], 0, 12, 2)[:3] == (1, 2, False)
    assert both([(-5, 7, 0)]) == (-20, 7, False)                  # one input: exact
    assert both([(-5, 7, 0), (3, 9, 0)]) == (7, 9, False)         # two: one floor, -20 >> 2
    assert both([(0, 200, 0), (-5, 0, 0)]) == (-1, 200, False)    # far below: -1
    assert both([(1, 3, 0), (2, 3, 0), (3, 3, 0), (4, 5, 0), (5, 4, 0)]) == (32, 5, False)
    # partial 0 saturates (inputs 0, 2, 4, ...), partial 1 stays at 0
    assert both([(127, 5, 0), (0, 5, 0)] * 5) == (2047, 5, False)
    # partial 1 saturates below; partial 0 stays small
    assert both([(1, 5, 0), (-128, 5, 0)] * 5) == (-2048, 5, False)
    # opposite excursions: partial 1 leaves below first (input 9), partial 0 later above
    assert both([(90, 5, 0), (-128, 5, 0)] * 4 + [(127, 5, 0), (-128, 5, 0)] +
                [(127, 5, 0), (0, 5, 0)] * 2) == (-2048, 5, False)
    # sticky: back in range later still gives the bound
    assert both([(127, 5, 0), (0, 5, 0)] * 5 + [(-128, 5, 0), (0, 5, 0)] * 4) == \
        (2047, 5, False)
    # each partial in range (4 x 127 << 2 = 1524 each), their sum 3048 out: the bound
    assert both([(127, 5, 0)] * 8) == (2047, 5, False)
    assert both([(-128, 5, 0)] * 8) == (-2048, 5, False)
    assert both([(-128, 5, 0)] * 4) == (-2048, 5, False)          # exactly -2**(W-1)
    # NaN in either partial
    assert both([(1, 1, 0), (2, 1, 1), (3, 1, 0)])[2] is True
    assert both([(1, 1, 1), (2, 1, 0)])[2] is True


def test_two_partial_sums_stream_pads_harmlessly():
    """accumulate_stream pads short groups with (0, 0, no NaN), which may open partial
    sum 1 of a one-input group: the results equal each group alone."""
    groups = [[(-7, 9, 0)], [(5, 0, 0), (-3, 4, 0), (2, 1, 0)], [(127, 0, 1)] * 6,
              [(-128, 0, 0)] * 5, [(-1, 3, 0), (1, 0, 0)]]
    flat = [x for g in groups for x in g]
    last = [j == len(g) - 1 for g in groups for j in range(len(g))]
    r = accumulate_stream(torch.tensor([s for s, _, _ in flat]),
                          torch.tensor([e for _, e, _ in flat]),
                          torch.tensor([bool(f) for _, _, f in flat]), torch.tensor(last),
                          guard_bits=1, acc_width=10, partial_sums=2)
    want = [reference_partials(g, 1, 10, 2)[:3] for g in groups]
    assert list(zip(r.sum.tolist(), r.exponent.tolist(), r.nan.tolist(), strict=True)) == want


def check_partials_error_bound(items, guard: int, width: int, parts: int) -> None:
    """golden's ``parts`` partial sums on a group that does not saturate: with ``V`` the
    exact sum and ``R`` the result, both scaled by ``2**G``, ``P'`` the partial sums the
    group opens and ``E_max,j`` the running maximum after input ``j``: ``0 <= V - R <
    sum_{j>P'} 2**(E_max,j - G) + (P' - 1) * 2**(E - G) <= (n - 1) * 2**(E - G)``, and
    ``R == V`` for one input."""
    total, e_max, _ = run_group(items, guard, width, partial_sums=parts)
    err = sum(s << (e + guard) for s, e, _ in items) - (total << e_max)
    maxima = reference_partials(items, guard, width, parts)[3]
    assert abs(total) < (1 << (width - 1)) - 1, "case must not saturate"
    if len(items) == 1:
        assert err == 0
    else:
        nonempty = min(len(items), parts)
        assert 0 <= err < sum(1 << m for m in maxima[nonempty:]) + \
            ((nonempty - 1) << e_max), (guard, items)
        assert err < (len(items) - 1) << e_max


def _random_groups(seed: int, count: int, *, wide: bool):
    """``count`` random groups (guard, width, items), as tests' group_case draws them,
    without hypothesis: reproducible from ``seed``."""
    gen = torch.Generator().manual_seed(seed)

    def pick(lo, hi):
        return int(torch.randint(lo, hi + 1, (1,), generator=gen))

    for _ in range(count):
        in_width = pick(2, 40)
        guard = pick(0, 62 - in_width) if not wide else pick(0, min(20, 62 - in_width))
        width = pick(in_width + guard, 62) if not wide else 62
        if wide:
            in_width = max(min(in_width, 62 - guard - 8), 2)
        e_hi = (6, 14, 62, 510)[pick(0, 3)]
        n = pick(1, 40)
        items = [(pick(-(1 << (in_width - 1)), (1 << (in_width - 1)) - 1), pick(0, e_hi),
                  bool(pick(0, 1))) for _ in range(n)]
        if pick(0, 3) == 0 and not wide:   # equal exponents and extreme mantissas: saturation
            items = [(s if s == 0 else (1 << (in_width - 1)) - 1 if s > 0
                      else -(1 << (in_width - 1)), 5, f) for s, _, f in items]
        yield guard, width, items


@pytest.mark.parametrize("seed", [11, 12])
def test_four_partial_sums_match_integer_reference(seed):
    """partial_sums=4 against the Python-integer reference on 300 random groups (saturating
    ones included); partial_sums=2 against it too."""
    print(f"seed {seed}")
    for guard, width, items in _random_groups(seed, 300, wide=False):
        assert run_group(items, guard, width, partial_sums=4) == \
            reference_partials(items, guard, width, 4)[:3], (guard, width, items)
        assert run_group(items, guard, width, partial_sums=2) == \
            reference_partials(items, guard, width, 2)[:3], (guard, width, items)


@pytest.mark.parametrize("seed", [21, 22])
def test_four_partial_sums_error_bound(seed):
    """Four partial sums, no saturation: 0 <= V - R < sum_{j>=5} 2**(E_max,j - G) +
    (P' - 1) * 2**(E - G) <= (n - 1) * 2**(E - G), and R == V for one input (scaled by
    2**G)."""
    print(f"seed {seed}")
    for guard, width, items in _random_groups(seed, 300, wide=True):
        check_partials_error_bound(items, guard, width, 4)


def test_four_partial_sums_directed():
    """G = 0, W = 12: the combination's floors, a group shorter than four, saturation."""
    def four(items):
        got = run_group(items, 0, 12, partial_sums=4)
        assert got == reference_partials(items, 0, 12, 4)[:3]
        return got
    # partials (3, 1), (1, 1), (1, 1), (0, 2): 1 + 0 + 0 + 0 = 1 at 2 (one sum gives 2)
    assert four([(3, 1, 0), (1, 1, 0), (1, 1, 0), (0, 2, 0)]) == (1, 2, False)
    assert run_group([(3, 1, 0), (1, 1, 0), (1, 1, 0), (0, 2, 0)], 0, 12) == (2, 2, False)
    assert four([(-5, 7, 0), (3, 9, 0), (1, 8, 1)]) == (-2 + 3 + 0, 9, True)
    assert four([(1000, 5, 0)] * 8) == (2047, 5, False)   # partials 2000 each, T = 8000
    assert four([(-1024, 5, 0)] * 4) == (-2048, 5, False)  # T = -4096: the bound
    assert four([(-512, 5, 0)] * 4) == (-2048, 5, False)   # T = -2048 exactly: in range


def test_golden_four_partial_sums_fault_is_caught(monkeypatch):
    """Injected fault: a combination that shifts every partial sum to the FIRST one's
    maximum instead of the largest is caught by the reference comparison."""
    import golden.accumulator as ga

    items = [(7, 3, 0), (5, 9, 0), (1, 2, 0), (-6, 4, 0), (3, 1, 0)]
    good = run_group(items, 2, 20, partial_sums=4)
    assert good == reference_partials(items, 2, 20, 4)[:3]
    source = inspect.getsource(ga)
    old = "            top = torch.maximum(top, e_q)"
    assert source.count(old) == 1
    bad = types.ModuleType("golden.accumulator_mutant")
    bad.__package__ = "golden"
    exec(compile(source.replace(old, "            pass"), "<mutant>", "exec"), bad.__dict__)
    r = bad.accumulate(torch.tensor([[s for s, _, _ in items]]),
                       torch.tensor([[e for _, e, _ in items]]),
                       torch.tensor([[False] * len(items)]),
                       guard_bits=2, acc_width=20, partial_sums=4)
    assert (int(r.sum[0]), int(r.exponent[0])) != reference_partials(items, 2, 20, 4)[:2]


# --- golden: properties ----------------------------------------------------------------------


@st.composite
def group_case(draw, *, wide=False):
    in_width = draw(st.integers(2, 40))
    guard = draw(st.integers(0, 62 - in_width if not wide else min(20, 62 - in_width)))
    width = draw(st.integers(in_width + guard, 62)) if not wide else 62
    if wide:
        in_width = min(in_width, 62 - guard - 8)  # room for 2**8 inputs without saturation
        in_width = max(in_width, 2)
    e_hi = draw(st.sampled_from([6, 14, 62, 510]))
    items = draw(st.lists(st.tuples(
        st.integers(-(1 << (in_width - 1)), (1 << (in_width - 1)) - 1),
        st.integers(0, e_hi), st.booleans()), min_size=1, max_size=40))
    return guard, width, items


@settings(max_examples=400, deadline=None)
@given(group_case())
def test_golden_matches_integer_reference(case):
    guard, width, items = case
    acc, e_max, nan, _ = reference_group(items, guard, width)
    assert run_group(items, guard, width) == (acc, e_max, nan)


@settings(max_examples=400, deadline=None)
@given(group_case(wide=True))
def test_error_bound_without_saturation(case):
    """0 <= V - R < sum_{j>=2} 2**(E_max,j - G) <= (n - 1) * 2**(E_max - G), in units of the
    dot sum's LSB at code 0; scaled by 2**G to stay in integers."""
    guard, width, items = case
    total, e_max, _ = run_group(items, guard, width)
    exact = sum(s << (e + guard) for s, e, _ in items)       # V * 2**G
    got = total << e_max                                        # R * 2**G
    _, _, _, maxima = reference_group(items, guard, width)
    err = exact - got
    assert abs(total) < (1 << (width - 1)) - 1, "case must not saturate"
    if len(items) == 1:
        assert err == 0
    else:
        assert 0 <= err < sum(1 << m for m in maxima[1:])
        assert err < (len(items) - 1) << e_max


@settings(max_examples=100, deadline=None)
@given(group_case())
def test_two_partial_sums_match_integer_reference(case):
    guard, width, items = case
    assert run_group(items, guard, width, partial_sums=2) == \
        reference_partials(items, guard, width, 2)[:3]


@settings(max_examples=100, deadline=None)
@given(group_case(wide=True))
def test_two_partial_sums_error_bound(case):
    """Two partial sums: 0 <= V - R < sum_{j>=3} 2**(E_max,j - G) + 2**(E - G)
    <= (n - 1) * 2**(E - G), and R == V for one input (scaled by 2**G)."""
    guard, width, items = case
    check_partials_error_bound(items, guard, width, 2)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_lossless_when_guard_bits_cover_the_exponent_spread(data):
    in_width = data.draw(st.integers(2, 24))
    base = data.draw(st.integers(0, 500))
    spread = data.draw(st.integers(0, 20))
    items = data.draw(st.lists(st.tuples(
        st.integers(-(1 << (in_width - 1)), (1 << (in_width - 1)) - 1),
        st.integers(base, base + spread), st.booleans()), min_size=1, max_size=64))
    guard = spread + data.draw(st.integers(0, 3))
    width = in_width + guard + (len(items) - 1).bit_length()   # ceil(log2 n) headroom
    if width > 62:
        return
    for partials in (1, 2):
        total, e_max, _ = run_group(items, guard, width, partial_sums=partials)
        assert total << e_max == sum(s << (e + guard) for s, e, _ in items)


def test_stream_equals_groupwise():
    model = model_for({"top": "accum", "parameters": params(4, 5, 3, 3, 2, 14)})
    stim = model.stimuli(torch.Generator().manual_seed(4), 400)
    want = model.expected(stim)["o"]
    groups, cur = [], []
    for x in stim["i"]:
        cur.append((x["sum"], x["exponent"], x["nan"]))
        if x["last"]:
            groups.append(cur)
            cur = []
    assert len(groups) == len(want)
    for g, w in zip(groups, want, strict=True):
        acc, e_max, nan, _ = reference_group(g, 2, 14)
        assert (w["sum"], w["exponent"], w["nan"]) == (acc, e_max, int(nan))


def test_stimuli_cover_the_corners():
    p = params(4, 4, 3, 2, 2, 12)
    model = model_for({"top": "accum", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(1), 500)["i"]
    out = model.expected({"i": stim})["o"]
    lengths, n = [], 0
    for x in stim:
        n += 1
        if x["last"]:
            lengths.append(n)
            n = 0
    exps = {x["exponent"] for x in stim}
    assert stim[-1]["last"] == 1 and 1 in lengths and max(lengths) >= 12
    assert {0, 15} <= exps
    assert {x["sum"] for x in stim} >= {-(1 << 8), (1 << 8) - 1}  # in_width 9, full range
    assert any(o["sum"] == 2047 for o in out) and any(o["sum"] == -2048 for o in out)
    assert any(o["nan"] for o in out) and not all(o["nan"] for o in out)


# --- Amaranth simulator ----------------------------------------------------------------------


ALIGNS = ["loop", "stall", "interleave", "lookahead"]


#: Two seeds of the default, one of the others (which the throughput, formal and Verilator
#: checks cover as well).
SEEDS_ALIGNS = [(1, "loop"), (1, "stall"), (2, "stall"), (1, "interleave"), (1, "lookahead")]


@pytest.mark.parametrize(("seed", "align"), SEEDS_ALIGNS)
@pytest.mark.parametrize(("a_bits", "b_bits", "exp_bits", "block", "guard", "acc_width"), [
    (2, 2, 2, 1, 0, 4),          # tightest: in_width 4, saturates often
    (2, 2, 2, 1, 6, 14),         # lossless for exp_bits 2 apart from the field's top code
    (4, 4, 3, 2, 2, 12),
    (6, 6, 8, 16, 8, None),      # defaults: G = 8, W = 32
    (8, 3, 5, 5, 5, 20),
    (24, 24, 8, 1024, 2, 62),    # widest input
])
def test_amaranth_sim_matches_golden(seed, a_bits, b_bits, exp_bits, block, guard, acc_width,
                                     align):
    p = params(a_bits, b_bits, exp_bits, block, guard, acc_width, align)
    model = model_for({"top": "accum", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(seed), 300)
    want = model.expected(stim)
    r = run_stream_sim(MXIntAccumulator(**p), stim, want, seed=seed)
    assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), \
        f"seed {seed}: {r['reports']}"
    assert r["checked"] == len(want["o"]) == sum(x["last"] for x in stim["i"])


def rises(items: list[dict]) -> list[int]:
    """By how much each input raises its group's running maximum (0 for none)."""
    out, e_max = [], None
    for x in items:
        out.append(0 if e_max is None or x["exponent"] <= e_max else x["exponent"] - e_max)
        e_max = None if x["last"] else max(x["exponent"], e_max if e_max is not None else 0)
    return out


@pytest.mark.parametrize("align", ALIGNS)
def test_amaranth_sim_one_input_per_cycle(align):
    p = params(4, 4, 3, 2, 2, 12, align)
    model = model_for({"top": "accum", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(3), 300)
    dut = MXIntAccumulator(**p)
    r = run_stream_sim(dut, stim, model.expected(stim), seed=3, idle=0, backpressure=0)
    assert r["mismatches"] == 0 and r["missing"] == 0
    # one input per cycle plus the stall cycles of the rises, then the latency and the
    # bench's drain of 2 * latency + 2 cycles
    stalls = sum(dut.stall_cycles(d) for d in rises(stim["i"]))
    assert (stalls > 50) == (align == "stall")
    assert len(stim["i"]) + stalls <= r["cycles"] <= \
        len(stim["i"]) + stalls + 3 * dut.latency + 3


def stream_of(groups: list[list[tuple[int, int, int]]]) -> list[dict]:
    return [{"sum": s, "exponent": e, "nan": f, "last": int(j == len(g) - 1)}
            for g in groups for j, (s, e, f) in enumerate(g)]


@pytest.mark.parametrize("align", ALIGNS)
@pytest.mark.parametrize(("idle", "backpressure"), [(0, 0), (0, 0.7), (0.5, 0.5)])
def test_amaranth_sim_back_to_back_single_input_groups(idle, backpressure, align):
    """Every input is its own group: each result must ignore the state the pipeline holds
    for the group just before it, also while results stall in o."""
    p = params(4, 4, 3, 2, 2, 12, align)
    model = model_for({"top": "accum", "parameters": p})
    gen = torch.Generator().manual_seed(11)
    sums = torch.randint(-(1 << 8), 1 << 8, (200,), generator=gen).tolist()
    exps = torch.randint(0, 16, (200,), generator=gen).tolist()
    stim = {"i": stream_of([[(s, e, int(j % 17 == 0))] for j, (s, e) in
                            enumerate(zip(sums, exps, strict=True))])}
    want = model.expected(stim)
    assert [o["sum"] for o in want["o"]] == [s << 2 for s in sums]
    dut = MXIntAccumulator(**p)
    r = run_stream_sim(dut, stim, want, seed=5, idle=idle, backpressure=backpressure)
    assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), r["reports"]
    assert r["checked"] == 200
    if idle == 0 and backpressure == 0:
        assert r["cycles"] <= 200 + 3 * dut.latency + 3


@pytest.mark.parametrize("align", ALIGNS)
@pytest.mark.parametrize("guard", [0, 3])
def test_amaranth_sim_shift_clamps(guard, align):
    """Exponent steps around the clamps of both shifters (W - 1 for A, in_width + G - 1 for
    x), with negative and positive operands: floors to -1 and 0 at and past the width."""
    p = params(4, 4, 5, 2, guard, 9 + guard + 2, align)   # in_width 9
    w, xw = 9 + guard + 2, 9 + guard
    groups = []
    for d in (w - 2, w - 1, w, w + 1, 40):
        # A at -2**(W-1) (all -max) or near 2**(W-1) - 1 first: every clamp bit matters
        groups += [[(-256, 0, 0)] * 4 + [(7, d, 0)], [(255, 0, 0)] * 4 + [(-7, d, 0)],
                   [(-200, 0, 0), (7, d, 0)], [(1, 0, 0), (0, d, 0)]]
    for d in (xw - 2, xw - 1, xw, xw + 1, 40):
        groups += [[(3, d, 0), (-256, 0, 0)], [(3, d, 0), (255, 0, 0)], [(0, d, 0), (-1, 0, 0)]]
    groups += [[(255, 5, 0)] * 12 + [(-256, 7, 0), (1, 62, 0), (-1, 0, 0)]]
    stim, want = checked_expectation(groups, p, guard, w)
    for seed, (idle, bp) in enumerate([(0, 0), (0.3, 0.3)]):
        r = run_stream_sim(MXIntAccumulator(**p), stim, want, seed=seed, idle=idle,
                           backpressure=bp)
        assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), \
            f"seed {seed}: {r['reports']}"


def rising_groups(width: int, top: int, gen: torch.Generator) -> list[list[tuple]]:
    """Groups that raise the running maximum at (nearly) every input: by 1, by the split of
    the stall steps (7, 8, 9), by W - 1, W and more, back to back; each group's first
    input lies below the previous group's maximum, and groups close on a rise."""
    groups = []
    for step in (1, 2, 7, 8, 9, 15, 16, width - 1, width, width + 3):
        base = int(torch.randint(0, 4, (), generator=gen))
        n = max(2, min(12, (top - base) // step + 1))
        sums = torch.randint(-256, 256, (n,), generator=gen).tolist()
        groups.append([(s, min(base + j * step, top), 0) for j, s in enumerate(sums)])
    # rises mixed with falls and equal exponents, each rise right after another stall
    for _ in range(20):
        n = int(torch.randint(2, 12, (), generator=gen))
        exps = torch.randint(0, top + 1, (n,), generator=gen).sort().values
        exps = exps[torch.randperm(n, generator=gen)] if bool(torch.rand((), generator=gen)
                                                             < 0.3) else exps
        sums = torch.randint(-256, 256, (n,), generator=gen).tolist()
        groups.append(list(zip(sums, exps.tolist(), [0] * n, strict=True)))
    return groups


@pytest.mark.parametrize("align", ALIGNS)
@pytest.mark.parametrize(("guard", "width", "exp_bits"), [(0, 11, 5), (3, 14, 6), (8, 40, 8)])
def test_amaranth_sim_rises_of_the_maximum(guard, width, exp_bits, align):
    """Monotonic exponents (a stall per input with align="stall"), under idle inputs and
    back-pressure, bit-exact against golden; with neither, the cycle count is the inputs
    plus the documented stall cycles."""
    p = params(4, 4, exp_bits, 2, guard, width, align)   # in_width 9
    top = (1 << (exp_bits + 1)) - 1
    groups = rising_groups(width, top, torch.Generator().manual_seed(width))
    stim, want = checked_expectation(groups, p, guard, width)
    dut = MXIntAccumulator(**p)
    stalls = sum(dut.stall_cycles(d) for d in rises(stim["i"]))
    patterns = [(0, 0), (0.3, 0.3), (0, 0.8), (0.6, 0)]
    for seed, (idle, bp) in enumerate(patterns[:2] if align in ("interleave", "lookahead")
                                      else patterns):
        r = run_stream_sim(MXIntAccumulator(**p), stim, want, seed=seed, idle=idle,
                           backpressure=bp)
        assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), \
            f"seed {seed}: {r['reports']}"
        if idle == 0 and bp == 0:
            assert len(stim["i"]) + stalls <= r["cycles"] <= \
                len(stim["i"]) + stalls + 3 * dut.latency + 3


@pytest.mark.parametrize(("primitives", "out_ready"),
                         [("generic", "direct"), ("ecp5", "direct"), ("ecp5", "registered")])
def test_amaranth_sim_lookahead_pending_shift(primitives, out_ready):
    """``align="lookahead"`` (with ``primitives="ecp5"``, its CCU2C cells simulated by their
    definition, :func:`hw.accumulator.ccu2c_model`; with ``out_ready="registered"`` also
    the pending shift's early, unresolved recurrence and the capture copy's own carry,
    :func:`hw.accumulator._lookahead_ecp5`): rises of every size from 1 to past W
    (the pending shift p walks all of 0 .. W - 2 and drains by W - 1 from every value),
    on sums at the extremes of the input range (so that the low adder carries into the high
    one, also in the cycle of a drain, which moves that carry), both saturation sides and
    back-to-back groups; bit-exact against golden with and without idle inputs and
    back-pressure."""
    guard, width, exp_bits = 2, 12, 5
    p = params(4, 4, exp_bits, 2, guard, width, "lookahead")   # in_width 9
    top = (1 << (exp_bits + 1)) - 2
    gen = torch.Generator().manual_seed(17)
    extremes = [-256, 255, -255, 254, -1, 0, 1]
    groups = []
    for j in range(90):
        n = int(torch.randint(1, 14, (), generator=gen))
        e = int(torch.randint(0, 6, (), generator=gen))
        items = []
        for _ in range(n):
            if bool(torch.rand((), generator=gen) < 0.5):
                s = extremes[int(torch.randint(0, len(extremes), (), generator=gen))]
            else:
                s = int(torch.randint(-256, 256, (), generator=gen))
            items.append((s, min(e, top), int(j % 23 == 0 and not items)))
            # rises of 0 .. W + 2, falls now and then
            step = int(torch.randint(-2, width + 3, (), generator=gen))
            e = max(0, e + step)
        groups.append(items)
        if j % 15 == 0:   # saturation on either side, after or at a rise
            groups += [[(255, 3, 0)] * 3 + [(255, 4 + j // 15, 0), (-256, 2, 0)],
                       [(-256, 3, 0)] * 4 + [(-256, 5, 0), (255, 5, 0)]]
    stim, want = checked_expectation(groups, p, guard, width)
    outs = [o["sum"] for o in want["o"]]
    assert (1 << (width - 1)) - 1 in outs and -(1 << (width - 1)) in outs
    for seed, (idle, bp) in enumerate([(0, 0), (0.3, 0.4)]):
        dut = MXIntAccumulator(**p, primitives=primitives, out_ready=out_ready)
        dut.cell_models = True
        r = run_stream_sim(dut, stim, want, seed=seed, idle=idle, backpressure=bp)
        assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), \
            f"seed {seed}: {r['reports']}"


@pytest.mark.parametrize(("a_bits", "b_bits", "exp_bits", "block", "guard", "acc_width"), [
    (2, 2, 2, 1, 0, 4),
    (6, 6, 8, 16, 8, None),
])
def test_amaranth_sim_lookahead_ecp5_matches_golden(a_bits, b_bits, exp_bits, block, guard,
                                                    acc_width):
    """``primitives="ecp5"``: the loop of CCU2C cells (simulated by their definition) and
    its clear on each group's last input, bit-exact against golden under idle inputs and
    back-pressure."""
    p = params(a_bits, b_bits, exp_bits, block, guard, acc_width, "lookahead")
    model = model_for({"top": "accum", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(4), 120)
    want = model.expected(stim)
    dut = MXIntAccumulator(**p, primitives="ecp5")
    dut.cell_models = True
    r = run_stream_sim(dut, stim, want, seed=4)
    assert (r["mismatches"], r["missing"], r["protocol_errors"]) == (0, 0, []), r["reports"]
    assert r["checked"] == len(want["o"])


def _select_add_errors(init_fault: int = 0, *, fault_half: int = 2, carry_or: bool = False
                       ) -> int:
    """Cases of 3-bit ``y``, ``b``, ``c``, ``keep`` and the carry-in pair (with ``carry_or``
    a second pair ORed in) in which the halves of :func:`hw.accumulator.select_add_halves`
    (INIT bit ``init_fault`` of half ``fault_half`` flipped, if nonzero), evaluated from the
    CCU2C's definition, miss ``y + (keep ? b : c) + ((u & v) | (u2 & v2))`` (4 bits)."""
    names = {"y": 3, "b": 3, "c": 3}
    bits = [(("y", k), ("b", k), ("c", k)) for k in range(3)]
    more = (("u2", "v2"),) if carry_or else ()
    halves = select_add_halves(bits, "keep", ("u", "v"), carry_out=True, carry_or=more)
    if init_fault:
        halves[fault_half] = (halves[fault_half][0] ^ init_fault, halves[fault_half][1])
    wrong = 0
    for code in range(1 << (14 if carry_or else 12)):
        val = {"y": code & 7, "b": code >> 3 & 7, "c": code >> 6 & 7}
        env = {(n, k): val[n] >> k & 1 for n in names for k in range(3)}
        env.update(keep=code >> 9 & 1, u=code >> 10 & 1, v=code >> 11 & 1,
                   u2=code >> 12 & 1, v2=code >> 13 & 1)
        got = ccu2c_sum(halves, env)
        carry = (env["u"] & env["v"]) | (env["u2"] & env["v2"])
        want = val["y"] + (val["b"] if env["keep"] else val["c"]) + carry
        wrong += (got >> (1 + len(more))) != want
    return wrong


@pytest.mark.parametrize("carry_or", [False, True])
def test_ecp5_select_add_halves_add(carry_or):
    """The CCU2C halves of the ``"lookahead"`` loop add, exhaustively over 3 bits, with one
    injected carry or two ORed; one flipped INIT bit is caught (of a select half, and of
    the OR half)."""
    assert _select_add_errors(carry_or=carry_or) == 0
    assert _select_add_errors(1 << 9, fault_half=2 + carry_or, carry_or=carry_or) > 0
    if carry_or:
        assert _select_add_errors(1 << 6, fault_half=1, carry_or=True) > 0


def test_lookahead_ecp5_manifest_names_its_cells():
    """``primitives="ecp5"`` instantiates CCU2C cells and says so in the manifest
    (``cell_library``, which the Verilator bench reads to add Yosys's cell models);
    ``"generic"`` instantiates none."""
    p = {"a_bits": 4, "b_bits": 4, "exp_bits": 3, "block": 2, "align": "lookahead"}
    cells = elaborate("accum", **p, primitives="ecp5")
    plain = elaborate("accum", **p)
    assert cells.manifest["cell_library"] == "ecp5" and "CCU2C" in cells.verilog
    assert "cell_library" not in plain.manifest and "CCU2C" not in plain.verilog

def test_amaranth_sim_catches_wrong_expectation():
    p = params(4, 4, 3, 2, 2, 12)
    model = model_for({"top": "accum", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(7), 30)
    want = model.expected(stim)
    want["o"][4]["sum"] ^= 1
    r = run_stream_sim(MXIntAccumulator(**p), stim, want, seed=7)
    assert r["mismatches"] == 1 and "output #4" in r["reports"][0]


# --- Verilator --------------------------------------------------------------------------------

VERILATOR_MATRIX = [
    params(6, 6, 8, 16),                 # defaults: G = 8, W = 32
    params(2, 2, 2, 1, 0, 4),            # tightest, saturating
    params(4, 4, 3, 2, 2, 12),
    params(8, 8, 8, 32, 4, 40),
    params(24, 24, 8, 1024, 2, 62),      # widest
    # (the rows above are align="stall", the default) two partial sums, W = 20: A's shift
    # in both loop cycles; a small design, which Verilator builds in a third of the time
    params(4, 4, 3, 2, 2, 20, "interleave"),
    # align="lookahead": the tightest (k = 1, 2-bit operands, G = 0, W = 4: saturating,
    # rises past W, p in 0 .. 2), and with primitives="ecp5" (its CCU2C cells simulated by
    # Yosys' own cells_sim.v, as the dot product's primitives) W = 12, whose pending shift
    # (0 .. 10) also takes the coarse stages of both shifts. The ecp5 loop at W = 4 is
    # proven for all time with the same cell models (tests/test_formal.py); its Verilator
    # build took 94 s of the loaded machine.
    params(2, 2, 2, 1, 0, 4, "lookahead"),
    {**params(4, 4, 3, 2, 2, 12, "lookahead"), "primitives": "ecp5"},
]


def lookahead_schedule(items: list[dict], width: int) -> list[tuple[int, bool] | None]:
    """The pending shift ``p`` of ``align="lookahead"`` (docs/arithmetic.md) before each input
    and whether that input drains it (``p + min(d, W - 1) >= W - 1``, ``d`` its rise of the
    running maximum); None for a group's first input, which opens at ``p = 0``."""
    out, e_max, pending = [], None, 0
    for x in items:
        if e_max is None:
            out.append(None)
            pending, e_max = 0, x["exponent"]
        else:
            step = min(max(x["exponent"] - e_max, 0), width - 1)
            drain = pending + step >= width - 1
            out.append((pending, drain))
            pending += step - (width - 1 if drain else 0)
            e_max = max(e_max, x["exponent"])
        if x["last"]:
            e_max = None
    return out


@pytest.mark.parametrize("p", VERILATOR_MATRIX, ids=lambda p: (
    "a{a_bits}w{b_bits}e{exp_bits}k{block}g{guard_bits}".format(**p)
    + f"acc{p.get('acc_width', 'def')}" + p.get("align", "")
    + ("_" + p["primitives"] if "primitives" in p else "")))
def test_verilator_matches_golden(p, sim_build):
    seed = 300 + p["a_bits"] * 10 + p["block"] % 97
    # lookahead: the directed groups cover its schedule (asserted below); fewer random
    # vectors keep its runs short
    vectors = 300 if p.get("align") == "lookahead" else 1000
    s = simulate("accum", p, seed=seed, vectors=vectors, build_root=sim_build)
    print(f"seed {seed}: {s['checked']} checked in {s['cycles']} cycles")
    assert (s["mismatches"], s["missing"], s["protocol_errors"], s["timed_out"]) == \
        (0, 0, [], False), f"replay with seed {seed}: {s['reports']}"
    model = model_for({"top": "accum", "parameters": p})
    stim = model.stimuli(torch.Generator().manual_seed(seed), vectors)
    assert s["checked"] == sum(x["last"] for x in stim["i"])
    if p.get("align") == "lookahead":
        # the stimuli drain the pending shift from every value it takes, and saturate
        steps = [x for x in lookahead_schedule(stim["i"], p["acc_width"]) if x is not None]
        assert {q for q, drain in steps if drain} == set(range(p["acc_width"] - 1))
        sums = {o["sum"] for o in model.expected(stim)["o"]}
        assert {(1 << (p["acc_width"] - 1)) - 1, -(1 << (p["acc_width"] - 1))} <= sums


def test_verilator_scoreboard_catches_dropped_lsb(sim_build):
    s = simulate("accum", VERILATOR_MATRIX[2], seed=5, vectors=100, build_root=sim_build,
                 fault="lsb")
    assert s["mismatches"] > 0
    assert any("sum" in r for r in s["reports"])


def test_verilator_lookahead_ecp5_catches_dropped_lsb(sim_build):
    """The lookahead rows' check can fail: the ecp5 build of the matrix, its expectation's
    lowest sum bit corrupted."""
    p = VERILATOR_MATRIX[-1]
    assert (p["align"], p["primitives"]) == ("lookahead", "ecp5")
    s = simulate("accum", p, seed=5, vectors=50, build_root=sim_build, fault="lsb")
    assert s["mismatches"] > 0 and any("sum" in r for r in s["reports"])


def _lookahead_ecp5_registered_run(component=MXIntAccumulator, *, first_miss=False) -> list:
    """The ECP5 lookahead build with ``out_ready="registered"`` (its enables and input
    ready registers computed a cycle ahead) at W = 4 and at the pending-shift test's W = 12,
    against golden with idle inputs and back-pressure, and with heavy back-pressure:
    ``(mismatches, missing, protocol errors)`` of each run (up to the first miss with
    ``first_miss``)."""
    results = []
    for n, p in enumerate([params(2, 2, 2, 1, 0, 4, "lookahead"),
                           params(4, 4, 5, 2, 2, 12, "lookahead")]):
        model = model_for({"top": "accum", "parameters": p})
        stim = model.stimuli(torch.Generator().manual_seed(8 + n), 60)
        want = model.expected(stim)
        for seed, (idle, bp) in enumerate([(0.3, 0.4), (0, 0.7)]):
            dut = component(**p, primitives="ecp5", out_ready="registered")
            dut.cell_models = True
            r = run_stream_sim(dut, stim, want, seed=seed, idle=idle, backpressure=bp)
            results.append((r["mismatches"], r["missing"], len(r["protocol_errors"])))
            if first_miss and results[-1] != (0, 0, 0):
                return results
    return results


def test_amaranth_sim_lookahead_ecp5_registered_matches_golden():
    """``primitives="ecp5"``, ``out_ready="registered"``: bit-exact (seeds 0 and 1 of each
    width; the runs' counts are printed on failure)."""
    results = _lookahead_ecp5_registered_run()
    assert results == [(0, 0, 0)] * len(results), results


def test_lookahead_ecp5_registered_stale_enable_is_caught():
    """The check can fail: enable copies that ignore the result entering the output stage
    (``o.valid``'s next value taken as its current one) lose or repeat results."""
    import hw.accumulator as acc_module
    from tests.test_throughput import mutant

    bad = mutant(acc_module, "copy.eq(~(Mux(copy, out_valid_r, o.valid) & skid_next))",
                 "copy.eq(~(o.valid & skid_next))")
    results = _lookahead_ecp5_registered_run(bad.MXIntAccumulator, first_miss=True)
    assert results[-1] != (0, 0, 0), results
