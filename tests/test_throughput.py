"""Throughput under back-pressure of every streaming unit, in the Amaranth simulator.

Every unit stalls as a whole only while its output holds a result that is not taken
(``advance = ~o.valid | o.ready``, ``hw/pipeline.py``). Two consequences are checked for
every unit ``hw.generate`` registers, at small and larger parameters, with the payloads
checked bit for bit against ``golden/`` in the same runs (so no cycle count passes with
garbage):

* bubble absorption: with ``o.ready`` held low from reset, the inputs transfer in every
  cycle until the unit is full, and then stop: for a plain pipeline exactly ``latency``
  transfers, for the others the cycles :func:`absorption` derives from their structure;
* throughput: with the inputs always valid and ``o.ready`` drawn from a seeded pattern,
  moving ``N`` inputs takes at most ``N + latency + stalls + extra`` cycles
  (:func:`sim.throughput.cycle_bound`; ``stalls`` are the cycles with ``o`` valid and not
  ready, ``extra`` the unit's documented stall cycles), with equality when ``extra`` is 0;
  and with random idle inputs too, no cycle is lost: the inputs transfer in every cycle in
  which they are valid and ``o`` is not stalled, apart from the ``extra`` cycles.

With ``out_ready="registered"`` (a skid register at the output of the unit, and of
every sub-unit of ``linear``: :func:`hw.pipeline.output_stage`) each section holds one
result more with ``o.ready`` low (:func:`absorption` models the skid), and the cycle after
a stall hands the skid's result over while the pipeline holds (it moved in the stall
cycle): :attr:`~sim.throughput.ThroughputRun.lost_registered` leaves those cycles out.

The last tests mutate the stall logic in-process (``advance = o.ready``, the survivor of
mutation testing in issue 9) and show these checks fail while the payloads still match.
"""

from __future__ import annotations

import inspect
import sys
import types

import pytest
import torch

import hw.int_mac
import hw.pipeline
from hw.accumulator import MXIntAccumulator
from hw.generate import build
from hw.unit import units
from sim.throughput import (
    ThroughputRun,
    cycle_bound,
    held_low,
    random_pattern,
    run_backpressure,
)
from sim.units import model_for

#: Inputs per group in the bubble-absorption runs of units that sum groups (``last``).
GROUP = 3
#: Probability of ``o.ready`` low (and of an idle input cycle) in the random runs.
LOW = 0.35
SEEDS = [11, 12, 13]
#: Inputs per random back-pressure run.
ITEMS = 90
#: Units whose output carries one result per ``last``-delimited group of inputs.
GROUPED = ("accum", "intmac", "intdot")

# Small parameters (4-bit, block 4) and larger ones for every unit.
CASES = [
    ("dot", {"a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 4}),
    ("dot", {"a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 4, "arch": "tree"}),
    ("dot", {"a_bits": 8, "b_bits": 6, "exp_bits": 5, "block": 8, "levels_per_stage": 1}),
    ("adder", {"a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 4, "out_bits": 4}),
    ("adder", {"a_bits": 8, "b_bits": 6, "exp_bits": 5, "block": 16, "out_bits": 7,
               "guard_bits": 3, "rounding": "away"}),
    ("cast", {"man_bits": 4, "exp_bits": 8, "block": 4}),
    ("cast", {"man_bits": 8, "exp_bits": 8, "block": 16, "float_format": "bf16",
              "levels_per_stage": 1}),
    ("dequant", {"man_bits": 4, "exp_bits": 8, "block": 4}),
    ("dequant", {"man_bits": 8, "exp_bits": 8, "block": 32}),
    ("dequant", {"source": "accum", "a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 4,
                 "guard_bits": 8, "acc_width": None}),
    ("fpmac", {"exp_bits": 4, "man_bits": 3}),
    ("fpmac", {"exp_bits": 8, "man_bits": 23}),
    ("intmac", {"a_bits": 4, "b_bits": 4, "acc_width": None}),
    ("intmac", {"a_bits": 8, "b_bits": 8, "acc_width": 24}),
    ("intdot", {"a_bits": 4, "b_bits": 4, "block": 4}),
    ("intdot", {"a_bits": 8, "b_bits": 8, "block": 16, "arch": "tree"}),
    ("accum", {"a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 4}),          # align stall
    ("accum", {"a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 4, "align": "loop"}),
    ("accum", {"a_bits": 2, "b_bits": 2, "exp_bits": 2, "block": 1, "guard_bits": 0,
               "acc_width": 4}),                                         # 1 stall cycle
    ("accum", {"a_bits": 6, "b_bits": 6, "exp_bits": 8, "block": 16}),
    ("accum", {"a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 4, "align": "interleave"}),
    ("accum", {"a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 4, "align": "lookahead"}),
    ("linear", {"x_bits": 4, "w_bits": 4, "exp_bits": 8, "block": 4, "k_len": 12, "rows": 4,
                "lanes": 2}),
    ("linear", {"x_bits": 4, "w_bits": 4, "exp_bits": 8, "block": 4, "k_len": 12, "rows": 4,
                "lanes": 2, "output": "fp32"}),
    ("linear", {"x_bits": 6, "w_bits": 6, "exp_bits": 8, "block": 8, "k_len": 20, "rows": 6,
                "lanes": 3}),
    ("linear", {"x_bits": 5, "w_bits": 4, "exp_bits": 6, "block": 4, "k_len": 8, "rows": 2,
                "lanes": 1}),
    # registered back-pressure: a skid register at the output (of every sub-unit of linear)
    ("dot", {"a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 4,
             "out_ready": "registered"}),
    ("cast", {"man_bits": 4, "exp_bits": 8, "block": 4, "out_ready": "registered"}),
    ("intdot", {"a_bits": 4, "b_bits": 4, "block": 4, "out_ready": "registered"}),
    ("accum", {"a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 4,
               "out_ready": "registered"}),
    ("accum", {"a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 4, "align": "lookahead",
               "out_ready": "registered"}),
    ("linear", {"x_bits": 4, "w_bits": 4, "exp_bits": 8, "block": 4, "k_len": 12, "rows": 4,
                "lanes": 2, "output": "fp32", "out_ready": "registered"}),
]


def case_id(case) -> str:
    top, p = case
    return top + "-" + "-".join(f"{k}{v}" for k, v in p.items() if v is not None)


CASE_PARAMS = [pytest.param(top, p, id=case_id((top, p))) for top, p in CASES]


#: Units whose throughput is checked by their own tests, not by the whole-pipeline-stall
#: model here: the tile's inputs are decoupled from its output by its buffers (weights and
#: activations load while it computes), so its cycles are measured as MAC utilisation.
OWN_THROUGHPUT_TESTS = {"tile": "tests/test_tile.py::test_steady_state_mac_utilisation"}


def test_every_unit_has_cases():
    """A unit added to ``hw.generate`` cannot go without a throughput check."""
    assert {top for top, _ in CASES} | set(OWN_THROUGHPUT_TESTS) == set(units())


# --- expectations derived from each unit's documented structure ---------------------------


def stall_sections(top: str, params: dict,
                   dut) -> tuple[list[tuple[int, bool, bool, bool]], int]:
    """The unit as a chain of pipeline sections, input first: ``(depth, grouped, skid,
    elastic)`` each, and the group size of the stimuli of :func:`steady_stimuli`.
    ``skid``: the section's output has a skid register (``out_ready="registered"``,
    :func:`hw.pipeline.output_stage`; in ``linear``, every sub-unit's). ``elastic``: an
    enable per stage (``StallPipeline(elastic=True)``), else one for the whole section.

    A plain unit is one section of ``latency`` registers. A unit that sums groups
    (``accum``, ``intmac``, ``intdot``) is one section whose output register shows only a
    group's ``last`` input (the others are folded into the sum and taken at once).
    ``linear`` is its dot products (``D`` stages), then its accumulators (a grouped section
    of ``blocks``), each stalling as a whole on its own output, then with
    ``output="fp32"`` its float converters, elastic: the bubbles between the results that
    reach them are squeezed out. The float converter alone (``dequant`` with ``source
    "accum"``) is elastic too.
    """
    skid = params.get("out_ready") == "registered"
    if top in GROUPED:
        return [(dut.latency, True, skid, False)], GROUP
    if top == "linear":
        dot = build("dot", a_bits=params["x_bits"], b_bits=params["w_bits"],
                    exp_bits=params["exp_bits"], block=params["block"],
                    **{k: params[k] for k in ("arch", "levels_per_stage") if k in params})
        acc = MXIntAccumulator(a_bits=params["x_bits"], b_bits=params["w_bits"],
                               exp_bits=params["exp_bits"], block=params["block"],
                               guard_bits=dut.guard_bits, acc_width=dut.acc_width,
                               align=dut.align)
        conv = dut.latency - dot.latency - acc.latency
        return [(dot.latency, False, skid, False), (acc.latency, True, skid, False)] + (
            [(conv, False, skid, True)] if conv else []), dut.blocks
    elastic = top == "dequant" and params.get("source") == "accum"
    return [(dut.latency, False, skid, elastic)], 1


def absorption(sections: list[tuple], group: int, cycles: int) -> list[int]:
    """Per cycle from reset, 1 if a chain of pipeline ``sections`` (``(depth, grouped,
    skid, elastic)``, the last two optional and false) takes an input, with the inputs
    always valid and the output's ``ready`` held low.

    A section's output register shows its item (a grouped section only a group's last
    input). Without a skid, a section's last stage advances when its output register shows
    nothing or the next section takes (the last section's: never, ``ready`` is low). With
    a skid (:func:`hw.pipeline.output_stage`), it advances when its output register shows
    nothing or its skid is empty; the section then shows the skid's item if there is one,
    else the register's; an item the register shows and the next section does not take
    moves into the empty skid, and a full skid empties when the next section takes its
    item. Every other stage advances with the last one, or, in an ``elastic`` section,
    when it is empty or the stage after it advances. An advancing stage takes the item of
    the stage before it (the first stage: what the previous section shows, if the
    section takes it, i.e. its first stage advances).
    """
    sections = [(*section, False, False)[:4] for section in sections]
    n = len(sections)
    slots = [[None] * section[0] for section in sections]
    skids = [None] * n

    def shows(s: int) -> bool:
        item = slots[s][-1]
        return item is not None and (not sections[s][1] or item % group == group - 1)

    taken, out = 0, []
    for _ in range(cycles):
        stages = [None] * n                   # per section, per stage: does it advance?
        for s in reversed(range(n)):
            next_takes = s + 1 < n and stages[s + 1][0]
            last = not shows(s) or (skids[s] is None if sections[s][2] else next_takes)
            moves = [last] * sections[s][0]
            if sections[s][3]:
                for j in reversed(range(len(moves) - 1)):
                    moves[j] = slots[s][j] is None or moves[j + 1]
            stages[s] = moves
        incoming = taken if stages[0][0] else None
        taken += stages[0][0]
        out.append(int(stages[0][0]))
        shown = [skids[s] if skids[s] is not None else slots[s][-1] if shows(s) else None
                 for s in range(n)]
        for s in range(n):
            next_takes = s + 1 < n and stages[s + 1][0]
            if sections[s][2]:
                if skids[s] is not None:
                    skids[s] = None if next_takes else skids[s]
                elif shows(s) and not next_takes:
                    skids[s] = slots[s][-1]
            before = [incoming, *slots[s][:-1]]
            slots[s] = [before[j] if moves else slots[s][j]
                        for j, moves in enumerate(stages[s])]
            incoming = shown[s] if next_takes else None
    return out


def rises(items: list[dict], exponent=lambda x: x["exponent"]) -> list[int]:
    """By how much each input raises its group's running maximum (0 for a group's first)."""
    out, e_max = [], None
    for x in items:
        e = exponent(x)
        out.append(0 if e_max is None or e <= e_max else e - e_max)
        e_max = None if x["last"] else max(e, e_max if e_max is not None else e)
    return out


def extra_stalls(top: str, params: dict, dut, stim: dict) -> int:
    """Documented stall cycles of these stimuli, beyond the whole-pipeline stall.

    The accumulator with ``align="stall"`` spends
    :meth:`~hw.accumulator.MXIntAccumulator.stall_cycles` on every rise of the running
    maximum within a group (``B``). ``linear`` runs one such accumulator per lane, on
    ``E_x + E_w`` in groups of ``blocks``, joined at both ends: at the input, a stalling
    lane holds every lane (at most ``sum_p B_p`` cycles); at the output, the lanes that did
    not stall hold their result until the late lane's arrives, and while they hold it they
    take no input, which a lane's own stalls can cost once more. So ``linear`` gets
    ``sum_p B_p``, doubled when it has more than one lane. Every other unit: 0.
    """
    if top == "accum":
        return sum(dut.stall_cycles(r) for r in rises(stim["i"]))
    if top == "linear":
        acc = MXIntAccumulator(a_bits=params["x_bits"], b_bits=params["w_bits"],
                               exp_bits=params["exp_bits"], block=params["block"],
                               guard_bits=dut.guard_bits, acc_width=dut.acc_width,
                               align=dut.align)
        total = 0
        for p in range(dut.lanes):
            items = [{"exponent": x["exponent"] + w["exponent"][p],
                      "last": int(j % dut.blocks == dut.blocks - 1)}
                     for j, (x, w) in enumerate(zip(stim["x"], stim["w"], strict=True))]
            total += sum(acc.stall_cycles(r) for r in rises(items))
        return total * (2 if dut.lanes > 1 else 1)
    return 0


def steady_stimuli(top: str, params: dict, dut, model, n: int) -> dict:
    """At least ``n`` inputs from the unit's testbench model, made regular where the unit
    sums groups: groups of ``GROUP`` (``linear``: of ``blocks``) with one exponent, so that
    no input raises a running maximum."""
    stim = model.stimuli(torch.Generator().manual_seed(5), n)
    if top == "accum":
        mid = model.max_exponent // 2
        return {"i": [{**x, "exponent": mid, "last": int(j % GROUP == GROUP - 1)}
                      for j, x in enumerate(stim["i"][:GROUP * (n // GROUP + 1)])]}
    if top in GROUPED:
        return {"i": [{**x, "last": int(j % GROUP == GROUP - 1)}
                      for j, x in enumerate(stim["i"][:GROUP * (n // GROUP + 1)])]}
    if top == "linear":
        end = dut.blocks * -(-n // dut.blocks)
        assert len(stim["x"]) >= end
        return {"x": [{**x, "exponent": 1} for x in stim["x"][:end]],
                "w": [{**w, "exponent": [1] * len(w["exponent"])} for w in stim["w"][:end]]}
    return {k: v[:n] for k, v in stim.items()}


# --- the checks, each returning what went wrong ------------------------------------------


def make_unit(top: str, params: dict, component=None):
    return (component or units()[top].component)(**params)


def bubble_failures(top: str, params: dict, component=None) -> tuple[list[str], object]:
    """Hold ``o.ready`` low from reset: the inputs must transfer in exactly the cycles
    :func:`absorption` gives (for a plain pipeline: each of the first ``latency`` cycles,
    then never until ``ready`` rises); then everything drains and matches ``golden``."""
    dut = make_unit(top, params, component)
    sections, group = stall_sections(top, params, dut)
    want = absorption(sections, group, 400)
    full = max(c for c, a in enumerate(want) if a) + 1
    hold = full + 12
    want = want[:hold]
    model = model_for({"top": top, "parameters": params})
    stim = steady_stimuli(top, params, dut, model, sum(want) + 2 * group + 4)
    r = run_backpressure(dut, stim, model.expected(stim), ready=held_low(hold))
    bad = []
    if not r.ok or r.checked == 0:
        bad.append(f"payloads: {r.checked} checked, {r.mismatches} wrong, {r.missing} "
                   f"missing, {r.reports[:2]} {r.protocol_errors[:2]}")
    if r.accepted[:hold] != want:
        bad.append(f"{r.accepted_within(hold)} inputs taken with o.ready low, "
                   f"{sum(want)} expected; per cycle {r.accepted[:hold]}, expected {want}")
    if not r.out_valid[hold - 1]:
        bad.append("full, yet o is not valid")
    return bad, r


def throughput_failures(top: str, params: dict, seed: int, *, idle: bool,
                        component=None) -> tuple[list[str], object]:
    """Random back-pressure (``o.ready`` low with probability ``LOW``), inputs always valid
    or (``idle``) idle with the same probability: payloads match ``golden``; no lost
    cycles beyond the documented ones; the cycle count meets :func:`cycle_bound`, exactly
    when the unit has no documented stall cycles and the inputs are always valid."""
    dut = make_unit(top, params, component)
    model = model_for({"top": top, "parameters": params})
    stim = model.stimuli(torch.Generator().manual_seed(seed), ITEMS)
    # The last ITEMS inputs (whole groups for linear): the random ones, with the directed
    # corners of the units whose corner list is short. A group cut at the front is a
    # shorter group, and the final input closes its group.
    keep = ITEMS - ITEMS % dut.blocks if top == "linear" else ITEMS
    stim = {k: v[-keep:] for k, v in stim.items()}
    n = len(next(iter(stim.values())))
    ready = random_pattern(seed, 3 * n + 50, low=LOW)
    # each input stream idles on its own: they must still transfer together
    valid = {name: random_pattern(seed + 1000 + j, 2 * n, low=LOW)
             for j, name in enumerate(stim)} if idle else None
    r = run_backpressure(dut, stim, model.expected(stim), ready=ready, valid=valid)
    extra = extra_stalls(top, params, dut, stim)
    bound = cycle_bound(inputs=n, latency=dut.latency, stalls=r.stalls, idle=r.idle,
                        extra=extra)
    print(f"{top} seed {seed} idle={idle}: {n} inputs in {r.cycles} cycles, bound {bound} "
          f"(latency {dut.latency}, {r.stalls} stalls, {r.idle} idle, {extra} documented), "
          f"{r.lost} lost")
    # With a skid at the output (registered back-pressure) the cycle after a stall hands
    # the skid's result over while the pipeline holds; a grouped unit's pipeline also
    # moves on (folding inputs into the sum) while its result waits in the skid, so it
    # may finish below the bound.
    registered = params.get("out_ready") == "registered"
    lost = r.lost_registered if registered else r.lost
    # An elastic section behind another takes that one's bubbles: no longer whole-pipeline.
    squeezes = any(section[3] for section in stall_sections(top, params, dut)[0][1:])
    exact = extra == 0 and not idle and not (registered and top in GROUPED) and not squeezes
    bad = []
    if not r.ok or r.checked == 0:
        bad.append(f"payloads: {r.checked} checked, {r.mismatches} wrong, {r.missing} "
                   f"missing, {r.reports[:2]} {r.protocol_errors[:2]}")
    if lost > extra:
        bad.append(f"{lost} cycles lost with inputs valid and o not stalled "
                   f"(documented: {extra})")
    if r.cycles > bound:
        bad.append(f"{r.cycles} cycles, bound {bound}")
    if exact and r.cycles != bound:
        bad.append(f"{r.cycles} cycles, exactly {bound} expected")
    return bad, r


# --- the tests ----------------------------------------------------------------------------


@pytest.mark.parametrize(("top", "params"), CASE_PARAMS)
def test_bubble_absorption(top, params):
    bad, _ = bubble_failures(top, params)
    assert bad == []


@pytest.mark.parametrize(("seed", "idle"), [(SEEDS[0], False), (SEEDS[1], False),
                                            (SEEDS[2], True)], ids=["full", "full2", "idle"])
@pytest.mark.parametrize(("top", "params"), CASE_PARAMS)
def test_throughput_under_backpressure(top, params, seed, idle):
    bad, _ = throughput_failures(top, params, seed, idle=idle)
    assert bad == [], f"replay with seed {seed}"


# --- a data-independent rate: one block per cycle while the maximum rises ---------------


#: Units and parameters whose rate must not depend on the data: ``accum`` and every lane of
#: ``linear`` with ``align="interleave"`` or ``"lookahead"``.
RISING_CASES = [
    ("accum", {"a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 4}),
    ("accum", {"a_bits": 6, "b_bits": 6, "exp_bits": 8, "block": 16}),
    ("linear", {"x_bits": 4, "w_bits": 4, "exp_bits": 8, "block": 4, "k_len": 20, "rows": 6,
                "lanes": 3}),
]


def rising_stimuli(top: str, params: dict, dut, model, n: int) -> tuple[dict, int]:
    """``n`` or more inputs from the unit's model whose exponents raise the running maximum
    of their group (of every lane, for ``linear``) at every input but a group's first, by
    steps from 1 to past the accumulator's width; and how many inputs rise."""
    stim = model.stimuli(torch.Generator().manual_seed(8), n)
    steps = [1, 2, 7, 8, 9, 3, dut.acc_width - 1, dut.acc_width + 2]
    if top == "accum":
        items, j = [], 0
        while len(items) < n:
            size = 2 + j % 5                        # groups of 2 to 6, odd and even
            step = steps[j % len(steps)]
            for k in range(size):
                x = stim["i"][len(items)]
                items.append({**x, "exponent": min(k * step, model.max_exponent),
                              "nan": 0, "last": int(k == size - 1)})
            j += 1
        stim = {"i": items}
        got = rises(items)
    else:
        nb = dut.blocks
        end = nb * -(-n // nb)
        xs, ws = [], []
        for j, (x, w) in enumerate(zip(stim["x"][:end], stim["w"][:end], strict=True)):
            step = steps[(j // nb) % 6]             # within exp_bits: codes stay below NaN
            xs.append({**x, "exponent": (j % nb) * step})
            ws.append({**w, "exponent": [p + 1 for p in range(dut.lanes)]})
        stim = {"x": xs, "w": ws}
        got = rises([{"exponent": x["exponent"], "last": int(j % nb == nb - 1)}
                     for j, x in enumerate(xs)])
    return stim, sum(r > 0 for r in got)


@pytest.mark.parametrize(("top", "params"), [pytest.param(t, p, id=case_id((t, p)))
                                             for t, p in RISING_CASES])
def test_one_block_per_cycle_while_the_maximum_rises(top, params):
    """With ``align="interleave"`` or ``"lookahead"``, inputs that raise the running maximum
    at every input but a group's first (in every lane of ``linear``) still move at one per
    cycle: with the inputs always valid and ``o.ready`` high, no cycle is lost and ``N``
    inputs take exactly ``N + latency`` cycles, payloads bit-exact. The same stimuli cost
    ``align="stall"`` its stall cycles, which shows that they do raise the maximum."""
    for align in ("interleave", "lookahead", "stall"):
        p = {**params, "align": align}
        dut = make_unit(top, p)
        model = model_for({"top": top, "parameters": p})
        stim, rising = rising_stimuli(top, p, dut, model, 60)
        n = len(next(iter(stim.values())))
        assert rising >= n // 2
        r = run_backpressure(dut, stim, model.expected(stim), ready=[])
        assert r.ok and r.checked > 0, (r.reports[:2], r.protocol_errors[:2])
        if align != "stall":
            assert extra_stalls(top, p, dut, stim) == 0
            assert (r.lost, r.cycles) == (0, cycle_bound(inputs=n, latency=dut.latency,
                                                          stalls=0))
        else:
            assert r.lost >= rising and r.cycles > n + dut.latency + rising



@pytest.mark.parametrize(("out_ready", "latency"), [("direct", 18), ("registered", 19)])
def test_lookahead_ecp5_one_block_per_cycle_while_the_maximum_rises(out_ready, latency):
    """The ECP5 build of ``align="lookahead"`` (latency 18, 19 with its relay stage of
    ``out_ready="registered"``; its CCU2C cells simulated by their definition): inputs that
    raise the running maximum at every input but a group's first take exactly ``N +
    latency`` cycles, payloads bit-exact."""
    p = {"a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 4, "align": "lookahead",
         "primitives": "ecp5", "out_ready": out_ready}
    dut = make_unit("accum", p)
    dut.cell_models = True
    assert dut.latency == latency
    model = model_for({"top": "accum", "parameters": p})
    stim, rising = rising_stimuli("accum", p, dut, model, 60)
    n = len(next(iter(stim.values())))
    assert rising >= n // 2
    r = run_backpressure(dut, stim, model.expected(stim), ready=[])
    assert r.ok and r.checked > 0, (r.reports[:2], r.protocol_errors[:2])
    assert (r.lost, r.cycles) == (0, cycle_bound(inputs=n, latency=dut.latency, stalls=0))

# --- the checks fail on the mutation-testing survivor -------------------------------------


def mutant(module: types.ModuleType, old: str, new: str) -> types.ModuleType:
    """A copy of ``module`` with the one occurrence of ``old`` in its source replaced."""
    source = inspect.getsource(module)
    assert source.count(old) == 1, f"{old!r} is not in {module.__name__} exactly once"
    copy = types.ModuleType(f"{module.__name__}_mutant")
    copy.__package__ = module.__package__
    copy.__file__ = module.__file__
    sys.modules[copy.__name__] = copy  # a dataclass looks its module up while it is made
    try:
        exec(compile(source.replace(old, new), f"<mutant of {module.__file__}>", "exec"),
             copy.__dict__)
    finally:
        del sys.modules[copy.__name__]
    return copy


def pick(top: str, **match) -> tuple[str, dict]:
    """The first case of ``top`` whose parameters include ``match``."""
    return next((t, p) for t, p in CASES if t == top and match.items() <= p.items())


#: A small case of every unit built on :class:`hw.pipeline.StallPipeline`.
PIPELINE_UNITS = [pick("dot"), pick("adder"), pick("cast"), pick("dequant"),
                  pick("dequant", source="accum"), pick("fpmac"), pick("intdot"),
                  pick("linear", output="fp32")]


def test_pipeline_units_use_stall_pipeline():
    """The mutant below reaches every unit in ``PIPELINE_UNITS`` through the shared class."""
    for top, _ in PIPELINE_UNITS:
        module = inspect.getmodule(units()[top].component)
        uses = "StallPipeline(" in inspect.getsource(module) or top == "linear"
        assert uses, top


@pytest.mark.parametrize(("top", "params"), [pytest.param(t, p, id=case_id((t, p)))
                                             for t, p in PIPELINE_UNITS])
def test_advance_without_bubble_absorption_is_caught(monkeypatch, top, params):
    """``advance = o.ready`` (the pipeline stalls whenever ``ready`` is low, even with the
    output empty) still computes the right payloads in a unit of one pipeline, so only a
    throughput check sees it. The bubble-absorption check fails (but for ``intdot``, whose
    pipeline sees ``o.ready | ~last`` as its output's ready, so it still absorbs bubbles that
    carry ``last = 0``), and so does every random run with idle inputs (cycles lost while
    ``o`` is empty). In ``linear`` with several lanes the mutant deadlocks the join of the
    float converters, which the same checks report as missing outputs. The float converter
    alone (``dequant`` with ``source="accum"``) is elastic: there the mutant holds only its
    last stage, which costs an input cycle only when every other stage is full, so the
    random runs need not see it; the bubble check does."""
    bad = mutant(hw.pipeline, "self.advance.eq(~output.valid | output.ready)",
                 "self.advance.eq(output.ready)")
    monkeypatch.setattr(hw.pipeline.StallPipeline, "__init__", bad.StallPipeline.__init__)
    found, r = bubble_failures(top, params)
    if top != "linear":
        assert r.ok, "the mutant should still compute the right payloads"
    if top != "intdot":
        assert any("inputs taken with o.ready low" in f for f in found), found
    if params.get("source") == "accum":
        return
    for seed in SEEDS:
        assert throughput_failures(top, params, seed, idle=True)[0], f"seed {seed}"


def test_int_mac_advance_without_bubble_absorption_is_caught():
    """``hw/int_mac.py``'s generic multiplier has its own advance (the heap one is
    ``hw.int_dot``'s pipeline, in ``PIPELINE_UNITS``); the same mutant there is caught too."""
    bad = mutant(hw.int_mac, "advance.eq(~self.o.valid | self.o.ready)",
                 "advance.eq(self.o.ready)")
    top, params = pick("intmac")
    params = {**params, "multiplier": "generic"}
    found, r = bubble_failures(top, params, bad.IntMultiplyAccumulate)
    assert r.ok and any("inputs taken with o.ready low" in f for f in found), found
    assert throughput_failures(top, params, SEEDS[0], idle=False,
                               component=bad.IntMultiplyAccumulate)[0]



# --- the helpers themselves -----------------------------------------------------------


def test_absorption_of_plain_grouped_and_chained_sections():
    assert absorption([(3, False)], 1, 6) == [1, 1, 1, 0, 0, 0]
    # the group's last input (the third) reaches the output register of 2 stages at
    # cycle 4, with the fourth input behind it
    assert absorption([(2, True)], 3, 8) == [1, 1, 1, 1, 0, 0, 0, 0]
    # a second section of 2 takes the first group's result and its successor's, then the
    # next result waits at the first section's output
    assert absorption([(1, True), (2, False)], 1, 6) == [1, 1, 1, 0, 0, 0]
    # groups of 2 into 3 stages: held as a whole, the results of the first two groups stand
    # two stages apart and the third waits; elastic, the stages close up and take it too
    assert absorption([(1, True), (3, False)], 2, 10) == [1] * 6 + [0] * 4
    assert absorption([(1, True), (3, False, False, True)], 2, 10) == [1] * 8 + [0] * 2
    # with nothing between the items (one section, inputs always valid) no difference
    assert (absorption([(4, False, True, True)], 1, 8) == absorption([(4, False, True)], 1, 8)
            == [1] * 5 + [0] * 3)


def test_handshake_counts():
    run = ThroughputRun(cycles=5, inputs=2, offered=[True, True, True, False, True],
                        accepted=[1, 0, 0, 0, 1], out_valid=[False, False, True, True, False],
                        out_ready=[False, False, False, True, True])
    # cycle 1 is lost (o empty), cycle 2 is a stall (o valid, not ready), cycle 3 idle
    assert (run.stalls, run.lost, run.idle, run.accepted_within(2)) == (1, 1, 1, 1)
    assert cycle_bound(inputs=2, latency=1, stalls=1, idle=1, extra=2) == 7


def test_payload_check_catches_a_wrong_value():
    top, params = pick("dot")
    model = model_for({"top": top, "parameters": params})
    stim = model.stimuli(torch.Generator().manual_seed(3), 10)
    want = model.expected(stim)
    want["o"][4]["sum"] += 1
    r = run_backpressure(make_unit(top, params), stim, want,
                         ready=random_pattern(3, 60, low=LOW))
    assert not r.ok and r.mismatches == 1 and "output #4" in r.reports[0]


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"low must be from 0 to below 1, not 1.5"):
        random_pattern(1, 10, low=1.5)
    top, params = pick("dot")
    model = model_for({"top": top, "parameters": params})
    stim = model.stimuli(torch.Generator().manual_seed(3), 2)
    with pytest.raises(ValueError, match=r"stimuli must have one count for every input, "
                                         r"not \[10, 11\]"):
        run_backpressure(make_unit(top, params), {"a": stim["a"][:-1], "b": stim["b"]},
                         {"o": []}, ready=[])
    with pytest.raises(ValueError, match=r"expected must hold the output 'o' only, not "
                                         r"\['y'\]"):
        run_backpressure(make_unit(top, params), stim, {"y": []}, ready=[])
    with pytest.raises(ValueError, match=r"valid must name the inputs \['a', 'b'\], not "
                                         r"\['a'\]"):
        run_backpressure(make_unit(top, params), stim, {"o": []}, ready=[], valid={"a": []})
