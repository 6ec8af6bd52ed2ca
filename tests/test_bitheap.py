"""hw.bitheap: the tile decomposition and the counter plan, checked exhaustively on Python
integers; LUT and FF ceilings of the synthesised dot product (Yosys is pinned and
deterministic, so these are exact guards, not timings)."""

from __future__ import annotations

import itertools

import pytest

from flows.synth import synthesize
from hw.bitheap import (
    ARCHS,
    FINAL_ROWS,
    SumOfProducts,
    _chunks,
    _reduce_heights,
    _RowPairTile,
    _Tile,
)
from hw.generate import elaborate


def _signed(code: int, width: int) -> int:
    return code - (1 << width) if code >> (width - 1) else code


@pytest.mark.parametrize("tile", [1, 2, 3])
@pytest.mark.parametrize(("a_bits", "b_bits"), [(2, 2), (3, 5), (6, 6), (7, 4), (8, 8)])
def test_tiles_sum_to_the_product(a_bits, b_bits, tile):
    """For every pair of codes, the tiles' table values at their weights plus the tiles'
    offsets equal the signed product: the heap holds exactly ``a * b``."""
    tiles = [_Tile(ac, bc) for ac in _chunks(a_bits, tile) for bc in _chunks(b_bits, tile)]
    assert all(t.width <= 2 * tile for t in tiles)
    offset = sum(t.lo << t.shift for t in tiles)
    for a_code, b_code in itertools.product(range(1 << a_bits), range(1 << b_bits)):
        total = offset
        for t in tiles:
            (alsb, aw, _), (blsb, bw, _) = t.a, t.b
            index = ((b_code >> blsb) & ((1 << bw) - 1)) << aw | ((a_code >> alsb) &
                                                                   ((1 << aw) - 1))
            value = t.table()[index]
            assert 0 <= value < 1 << t.width
            total += value << t.shift
        assert total == _signed(a_code, a_bits) * _signed(b_code, b_bits), (a_code, b_code)


def test_tile_check_catches_a_wrong_entry():
    """The check above fails when one table entry is off by one."""
    tiles = [_Tile(ac, bc) for ac in _chunks(4, 3) for bc in _chunks(4, 3)]
    offset = sum(t.lo << t.shift for t in tiles)
    bad = tiles[0].table()
    bad[5] += 1
    wrong = 0
    for a_code, b_code in itertools.product(range(16), range(16)):
        total = offset
        for n, t in enumerate(tiles):
            (alsb, aw, _), (blsb, bw, _) = t.a, t.b
            index = ((b_code >> blsb) & ((1 << bw) - 1)) << aw | ((a_code >> alsb) &
                                                                   ((1 << aw) - 1))
            total += (bad if n == 0 else t.table())[index] << t.shift
        wrong += total != _signed(a_code, 4) * _signed(b_code, 4)
    assert wrong > 0


@pytest.mark.parametrize("block", [1, 2, 3, 16, 33, 256])
@pytest.mark.parametrize(("a_bits", "b_bits"), [(2, 2), (4, 4), (6, 6), (8, 3), (24, 24)])
def test_plan_leaves_rows_for_the_final_adder(a_bits, b_bits, block):
    """Every counter level lowers the heap, and the last leaves at most FINAL_ROWS rows."""
    sop = SumOfProducts(a_bits=a_bits, b_bits=b_bits, block=block)
    heights = sop._heap_heights()
    for plan in sop._plan:
        new = _reduce_heights(heights, [plan])
        assert sum(new) < sum(heights)
        assert all(h >= 0 for h in new)
        heights = new
    assert max(heights) <= FINAL_ROWS


@pytest.mark.parametrize("arch", ARCHS)
def test_width_is_the_range_of_the_sum(arch):
    assert SumOfProducts(a_bits=6, b_bits=6, block=16, arch=arch).width == 16


# LUT and FF ceilings on xc7 (LUT-only), Yosys 0.60: the figures measured when the heap
# landed, plus a little room. A change that costs more LUTs or registers fails here;
# `python -m flows.density --arch tree,heap` gives the whole picture.
CEILINGS = [
    # (top, params, LUTs, FFs, MUXF7/8): generic logic, measured 795/427/21 and 1203/545/148
    ("dot", {"a_bits": 6, "b_bits": 6, "exp_bits": 8, "block": 16}, 810, 440, 30),
    ("dot", {"a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 32}, 1230, 560, 160),
    # xc7 primitives (LUT6_2 + CARRY4 ternary adders): measured 649/238/3
    ("dot", {"a_bits": 6, "b_bits": 6, "exp_bits": 8, "block": 16, "primitives": "xc7"},
     660, 250, 10),
]


@pytest.mark.parametrize(("top", "params", "luts", "ffs", "muxes"), CEILINGS,
                         ids=lambda v: v if isinstance(v, str) else None)
def test_xc7_lut_and_ff_ceilings(top, params, luts, ffs, muxes, tmp_path):
    design = elaborate(top, **params)
    source = tmp_path / f"{design.name}.v"
    source.write_text(design.verilog, encoding="utf-8")
    r = synthesize(source, design.name, target="xc7", dsp=False, workdir=tmp_path / "synth")
    print(f"{design.name}: {r['luts']} LUTs, {r['ffs']} FFs, {r['carry']} CARRY4, "
          f"{r['muxes']} MUXF7/8")
    assert r["luts"] <= luts
    assert r["ffs"] <= ffs
    assert r["muxes"] <= muxes  # no LUT count lowered by moving logic into wide muxes


def ccu2c_sum(halves, bits: dict) -> int:
    """The sum bits of a CCU2C chain, as a number, from the cell's definition: half ``h``
    gives ``S = P ^ ci`` and carries ``P ? ci : G``, with ``P = INIT[D C B A]`` and
    ``G = INIT[B A]``; inputs are constants or keys of ``bits``."""
    total, carry = 0, 0
    for j, (init, ins) in enumerate(halves):
        a, b, c, d = (x.value if hasattr(x, "value") else bits[x] for x in ins)
        p = init >> (d << 3 | c << 2 | b << 1 | a) & 1
        g = init >> (b << 1 | a) & 1
        total |= (p ^ carry) << j
        carry = carry if p else g
    return total


@pytest.mark.parametrize(("a_bits", "b_bits"), [(2, 2), (2, 3), (3, 5), (6, 6), (7, 4), (8, 3)])
def test_ecp5_row_pairs_sum_to_the_product(a_bits, b_bits):
    """``primitives="ecp5"``: for every pair of codes, the CCU2C chains of the row pairs,
    evaluated from the cell's definition, at their weights plus their offsets equal the
    signed product, and each chain's value fits its width."""
    tiles = [_RowPairTile(a_bits, bc) for bc in _chunks(b_bits, 2)]
    offset = sum(t.lo << t.shift for t in tiles)
    a_names, b_names = [("a", i) for i in range(a_bits)], [("b", r) for r in range(b_bits)]
    halves = [t.halves(a_names, b_names) for t in tiles]
    for a_code, b_code in itertools.product(range(1 << a_bits), range(1 << b_bits)):
        bits = {("a", i): a_code >> i & 1 for i in range(a_bits)}
        bits.update({("b", r): b_code >> r & 1 for r in range(b_bits)})
        total = offset
        for t, h in zip(tiles, halves, strict=True):
            value = ccu2c_sum(h, bits)
            assert value < 1 << t.width
            total += value << t.shift
        assert total == _signed(a_code, a_bits) * _signed(b_code, b_bits), (a_code, b_code)


def test_ecp5_row_pair_check_catches_a_wrong_init():
    """The check above fails when one INIT bit of one half is flipped."""
    t = _RowPairTile(4, (0, 2, False))
    halves = t.halves([("a", i) for i in range(4)], [("b", r) for r in range(4)])
    halves[2] = (halves[2][0] ^ 1 << 5, halves[2][1])
    wrong = 0
    for a_code, b_code in itertools.product(range(16), range(4)):
        bits = {("a", i): a_code >> i & 1 for i in range(4)}
        bits.update({("b", r): b_code >> r & 1 for r in range(4)})
        wrong += ccu2c_sum(halves, bits) + t.lo != _signed(a_code, 4) * b_code
    assert wrong > 0


def test_ecp5_needs_integer_operands():
    from golden.minifloat import ELEMENTS

    with pytest.raises(ValueError, match=r"primitives 'ecp5' needs integer operands \(a_element "
                                         r"and b_element None\), not 'e2m1' and None"):
        SumOfProducts(a_bits=None, b_bits=4, block=2, a_element=ELEMENTS["e2m1"],
                      primitives="ecp5")


def test_ecp5_lut4_ceiling(tmp_path):
    """``primitives="ecp5"``, 6-bit k16 dot product on ECP5 (Yosys 0.60 ``synth_ecp5``):
    LUT4s plus the two LUT4s of each CCU2C (measured 25 + 2 x 450 = 925), against 2199
    LUT4s, 13 CCU2C and 1229 PFUMX/L6MUX21 of the generic heap; nothing moved into wide
    muxes."""
    design = elaborate("dot", a_bits=6, b_bits=6, exp_bits=8, block=16, primitives="ecp5")
    source = tmp_path / f"{design.name}.v"
    source.write_text(design.verilog, encoding="utf-8")
    r = synthesize(source, design.name, target="ecp5", dsp=False, workdir=tmp_path / "synth")
    print(f"{design.name}: {r['luts']} LUT4, {r['carry']} CCU2C, {r['ffs']} FFs, "
          f"{r['muxes']} PFUMX/L6MUX21")
    assert r["luts"] + 2 * r["carry"] <= 940
    assert r["muxes"] <= 5


@pytest.mark.parametrize(("a_bits", "b_bits", "block", "relays"),
                         [(6, 6, 16, 2), (3, 7, 5, 2), (8, 8, 32, 1)])
def test_ecp5_one_level_per_stage_adds_whole_chains(a_bits, b_bits, block, relays):
    """``primitives="ecp5"`` with a register after every level: every CCU2C adder reads two
    registers (or one and the constant), each one whole row (a chain of the level
    before), so that the placer can put it beside them; the levels built, relays
    included, are the ones planned. (Two levels per stage zip
    the rows by column: an adder of the 6-bit k16 heap reads up to six chains.)"""
    sop = _build(a_bits, b_bits, block, primitives="ecp5", levels_per_stage=1)
    kinds = [step["kind"] for step in sop.certificate["steps"]]
    for step in sop.certificate["steps"]:
        for adder in step.get("adders", []):
            sources = {ref[0] for ref, _ in adder["inputs"] if ref[0] is not None}
            assert len(sources) <= 2, adder["inputs"]
    assert kinds.count("registers") == sop.levels == sop.stages
    # Relays (a register stage right after another) before the levels of at most three
    # rows: 6-bit k16, the three chunk sums and the constant, then two rows.
    assert sum(x == y == "registers" for x, y in itertools.pairwise(kinds)) == relays
    zipped = _build(a_bits, b_bits, block, primitives="ecp5", levels_per_stage=2)
    most = max(len({ref[0] for ref, _ in adder["inputs"] if ref[0] is not None})
               for step in zipped.certificate["steps"] if step["kind"] == "adders"
               for adder in step["adders"])
    assert most > 2


# --- the counter plan against the heap actually built -----------------------------------
#
# SumOfProducts plans its counter levels with a model (_plan_levels, _reduce_heights) and
# builds them with _apply_level, which takes each counter's input bits from what is left
# in the columns. If the plan asks for a bit that is not there, the counter is built with
# fewer inputs; its table still counts what it got, so the sum stays right and only the
# structure (heights, levels, stages, LUTs) departs from the model. These tests rebuild
# the heap's columns level by level from the record of what was built (the certificate:
# every bit each counter and register actually took) and compare them with the plan.


def _build(a_bits: int, b_bits: int, block: int, **kwargs) -> SumOfProducts:
    from amaranth.hdl import Module, Signal, signed

    sop = SumOfProducts(a_bits=a_bits, b_bits=b_bits, block=block, **kwargs)
    m = Module()

    def register(value, name):
        reg = Signal.like(value, name=name)
        m.d.sync += reg.eq(value)
        return reg

    sop.build(m, register, [Signal(signed(a_bits), name=f"a{i}") for i in range(block)],
              [Signal(signed(b_bits), name=f"b{i}") for i in range(block)])
    return sop


def plan_mismatches(sop: SumOfProducts) -> list[str]:
    """How the built heap of a generic-primitive ``sop`` differs from its counter plan:
    the heights of the columns entering the heap, after every counter level and at every
    register stage; the counters of each level (where placed, inputs taken per column,
    outputs written); and every input bit being in its column when a counter or a
    register takes it. Empty if they agree."""
    from collections import Counter

    cert, w = sop.certificate, sop.width
    columns = [Counter() for _ in range(w)]
    for tile in cert["tiles"]:
        for j in range(tile["width"]):
            if tile["shift"] + j < w:
                columns[tile["shift"] + j][(tile["signal"], j)] += 1
    for c in range(w):
        if cert["const"] >> c & 1:
            columns[c][(None, 1)] += 1
    out = []

    def heights():
        return [sum(col.values()) for col in columns]

    def take(ref, c, what):
        key = tuple(ref)
        if columns[c][key] <= 0:
            out.append(f"{what} takes {key} from column {c}, where it is not")
        else:
            columns[c][key] -= 1

    want = sop._heap_heights()
    if heights() != want:
        out.append(f"heap entry: built {heights()}, planned {want}")
    levels = iter(sop._plan)
    for s, step in enumerate(cert["steps"]):
        if step["kind"] == "registers":
            before = heights()
            for reg in step["registers"]:
                for j, (ref, c) in enumerate(reg["bits"]):
                    take(ref, c, f"step {s}: register {reg['signal']}")
                    columns[c][(reg["signal"], j)] += 1
            if heights() != before:
                out.append(f"step {s}: registers change the heights {before} to {heights()}")
        elif step["kind"] == "adders":
            plan = next(levels, None)
            if plan is None:
                out.append(f"step {s}: a counter level the plan does not have")
                continue
            want = _reduce_heights(heights(), [plan])
            if len(step["adders"]) != len(plan):
                out.append(f"step {s}: {len(step['adders'])} counters, planned {len(plan)}")
            pairs = zip(step["adders"], plan, strict=False)   # counts compared above
            for n, (adder, ((ins, outs), c)) in enumerate(pairs):
                got = Counter(col for _, col in adder["inputs"])
                planned = Counter({c + j: k for j, k in enumerate(ins)})
                if got != planned:
                    out.append(f"step {s}: counter {n} at column {c} takes {dict(got)}, "
                               f"planned {dict(planned)}")
                cols = [col for _, col in adder["outputs"]]
                if cols != list(range(c, min(c + outs, w))):
                    out.append(f"step {s}: counter {n} writes columns {cols}, planned "
                               f"{list(range(c, min(c + outs, w)))}")
                for ref, col in adder["inputs"]:
                    take(ref, col, f"step {s}: counter {n}")
                for ref, col in adder["outputs"]:
                    columns[col][tuple(ref)] += 1
            if heights() != want:
                out.append(f"step {s}: heights {heights()}, planned {want}")
        else:  # the final adder of the rows left: one bit per column
            if max(heights()) > FINAL_ROWS:
                out.append(f"final adder of {max(heights())} rows")
            columns = [Counter({(step["signal"], c): 1}) for c in range(w)]
    if next(levels, None) is not None:
        out.append("the plan has counter levels that were not built")
    return out


#: Integer heaps: the 6-bit k16 dot product (the README's headline), the int8 and int4
#: k16 baselines, one lane, odd widths and blocks, narrow tiles, and three whose plan the
#: mutant below changes (found by a sweep of 2..12-bit operands, blocks 1 to 32, tiles 2
#: and 3: it changes 190 of 2420 plans).
PLAN_CONFIGS = [(6, 6, 16, {}), (8, 8, 16, {}), (4, 4, 16, {}), (8, 8, 1, {}), (3, 5, 7, {}),
                (5, 7, 3, {"tile": 2}), (24, 24, 1, {}), (3, 3, 5, {}), (2, 8, 7, {}),
                (2, 6, 32, {"tile": 2})]


@pytest.mark.parametrize(("a_bits", "b_bits", "block", "kwargs"), PLAN_CONFIGS)
def test_amaranth_heap_follows_the_plan(a_bits, b_bits, block, kwargs):
    sop = _build(a_bits, b_bits, block, **kwargs)
    assert sop._plan, "no counter level: nothing checked"
    assert plan_mismatches(sop) == []


#: The mutant of issue 17's independent mutation run: a (1,5;3) counter placed although
#: the column above has no free bit for it.
GPC_MUTANT = ("if n == 5 and nxt_free >= 1:", "if n == 5:")


def test_plan_check_catches_a_counter_without_inputs(monkeypatch):
    """The plan check fails on the heap built from the mutated planner, wherever the
    mutation changes a plan (three configurations of the list)."""
    import inspect
    import textwrap

    import hw.bitheap as bitheap

    source = textwrap.dedent(inspect.getsource(bitheap._plan_levels))
    assert source.count(GPC_MUTANT[0]) == 1
    namespace = dict(vars(bitheap))
    exec(compile(source.replace(*GPC_MUTANT), bitheap.__file__, "exec"), namespace)
    changed = 0
    for a_bits, b_bits, block, kwargs in PLAN_CONFIGS:
        heights = SumOfProducts(a_bits=a_bits, b_bits=b_bits, block=block,
                                **kwargs)._heap_heights()
        if namespace["_plan_levels"](heights) == bitheap._plan_levels(heights):
            continue
        changed += 1
        with monkeypatch.context() as patch:
            patch.setattr(bitheap, "_plan_levels", namespace["_plan_levels"])
            sop = _build(a_bits, b_bits, block, **kwargs)
        assert plan_mismatches(sop), (a_bits, b_bits, block)
    assert changed >= 3
