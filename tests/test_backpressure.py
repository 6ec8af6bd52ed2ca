"""Registered back-pressure (``out_ready="registered"``, :func:`hw.pipeline.output_stage`).

* Structure: in the netlist Yosys reads (``proc; flatten``), the flip-flops whose inputs
  (data, enable, reset) depend combinationally on the unit's ``o.ready`` port are counted.
  With the option, that is the skid's valid bit and, in a
  :class:`~hw.pipeline.StallPipeline` unit, its registered enable (one per copy): 2
  flip-flops (1 in the accumulator and ``intdot``, whose enables read the skid's valid bit
  through a LUT; in ``linear``, 2 per lane, whose output join reads ``o.ready``). The same
  count on the ``"direct"`` design (every register enable) shows the check catches a unit
  where ``ready`` reaches the pipeline.
* The skid alone, under random valid and ready: every item once, in order, ``o.valid``
  and ``o.payload`` held while not taken, one transfer per cycle while both are high.
* Verilator: ``linear`` with fp32 output and the option (every sub-unit with its skid),
  random idle inputs and back-pressure,
  payloads bit-exact against ``golden`` (the bubble-absorption and throughput cases are in
  ``tests/test_throughput.py``).
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hw.pipeline import output_stage
from hw.unit import unit
from sim.formal.yosys import yosys_command
from sim.run import simulate

#: Flip-flop cell types of ``proc`` (and of the optimisations that merge enables and resets).
FLIP_FLOPS = ("$dff", "$dffe", "$sdff", "$sdffe", "$sdffce", "$adff", "$adffe", "$aldff",
              "$aldffe", "$dffsr", "$dffsre")
#: Yosys cannot read /tmp: scratch files go under the worktree's build folder.
SCRATCH = Path(__file__).resolve().parent.parent / "build" / "ready_cone"


def ready_cone(component, name: str) -> dict[str, int]:
    """Flip-flops of ``component`` with an input in the combinational fan-out of its
    ``o__ready`` port: ``{flip-flop name: width}``, from Yosys' ``proc; flatten`` netlist."""
    work = SCRATCH / name
    work.mkdir(parents=True, exist_ok=True)
    (work / "dut.il").write_text(rtlil.convert(component, name="top"), encoding="utf-8")
    subprocess.run([*yosys_command(), "-q", "-p", "read_rtlil dut.il; hierarchy -top top; "
                    "proc; flatten; opt_clean; write_json net.json"], cwd=work, check=True)
    top = json.loads((work / "net.json").read_text(encoding="utf-8"))["modules"]["top"]
    cone = set(top["ports"]["o__ready"]["bits"])
    cells = top["cells"]
    # a register's name: one with "advance" or "skid" in it where the net has several
    names = {tuple(net["bits"]): name for name, net in sorted(
        top["netnames"].items(), key=lambda n: ("advance" in n[0] or "skid" in n[0], n[0]))
             if not net.get("hide_name")}
    reached: dict[str, int] = {}
    grown = True
    while grown:
        grown = False
        for cell_name, cell in cells.items():
            if cell.get("_reached"):
                continue
            ins = [b for port, bits in cell["connections"].items()
                   if cell["port_directions"][port] == "input" for b in bits]
            if not cone.intersection(ins):
                continue
            if cell["type"] in FLIP_FLOPS:
                cell["_reached"] = True
                q = cell["connections"]["Q"]
                reached[names.get(tuple(q), cell_name)] = len(q)
                grown = True
                continue
            outs = {b for port, bits in cell["connections"].items()
                    if cell["port_directions"][port] == "output" for b in bits}
            if not outs <= cone:
                cone |= outs
                grown = True
    return reached


#: Small designs of the units with the option, and how many flip-flops ``o.ready`` reaches
#: with it: the skid's valid bit, and a StallPipeline's registered enable.
STRUCTURE_CASES = [
    ("dot", {"a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 4}, 2),
    ("accum", {"a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 4}, 1),
    ("accum", {"a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 4, "align": "lookahead"}, 1),
    ("accum", {"a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 4, "align": "interleave"},
     1),
    ("cast", {"man_bits": 4, "exp_bits": 8, "block": 4}, 2),
    ("dequant", {"source": "accum", "a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 4}, 2),
    ("adder", {"a_bits": 4, "b_bits": 4, "exp_bits": 8, "block": 4, "out_bits": 4}, 2),
    ("intdot", {"a_bits": 4, "b_bits": 4, "block": 4}, 1),
    ("fpmac", {"exp_bits": 4, "man_bits": 3}, 2),
    ("linear", {"x_bits": 4, "w_bits": 4, "exp_bits": 8, "block": 4, "k_len": 8, "rows": 4,
                "lanes": 2, "output": "fp32"}, 4),
]


@pytest.mark.parametrize(("top", "params", "most"), STRUCTURE_CASES,
                         ids=[f"{t}-{p.get('align', p.get('output', ''))}"
                              for t, p, _ in STRUCTURE_CASES])
def test_ready_reaches_a_fixed_few_flip_flops(top, params, most):
    u = unit(top)
    registered = u.build(u.record(**params, out_ready="registered"))
    reached = ready_cone(registered, f"{top}_{len(params)}_registered")
    print(f"{top} registered: o.ready reaches {reached}")
    assert sum(reached.values()) == most and len(reached) == most, reached
    # The injected fault: the direct design, where o.ready is in every register's enable.
    direct = u.build(u.record(**params))
    caught = ready_cone(direct, f"{top}_{len(params)}_direct")
    print(f"{top} direct: o.ready reaches {len(caught)} flip-flops, "
          f"{sum(caught.values())} bits")
    assert sum(caught.values()) > 4 * most


class _Skid(wiring.Component):
    """The skid register alone: ``i`` is the inner stream (``ready = ~skid_valid``)."""

    def __init__(self) -> None:
        super().__init__({"i": In(stream.Signature(8)), "o": Out(stream.Signature(8))})

    def elaborate(self, platform) -> Module:
        m = Module()
        inner = output_stage(m, self.o, "registered")
        m.d.comb += [inner.payload.eq(self.i.payload), inner.valid.eq(self.i.valid),
                     self.i.ready.eq(inner.ready)]
        return m


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_skid_keeps_every_item_in_order(seed):
    """Random valid and ready (seed printed): each item once and in order, ``o`` held
    while not taken, the inner ``ready`` high whenever the skid was empty, and the rate one
    per cycle while ``o.ready`` stays high."""
    print(f"seed {seed}")
    rng = random.Random(seed)
    dut = _Skid()
    sent, got, errors = [], [], []

    async def bench(ctx):
        item, held, full_run = 0, None, 0
        for cycle in range(600):
            ready = rng.random() < (1.0 if 200 <= cycle < 260 else 0.6)
            ctx.set(dut.i.valid, rng.random() < (1.0 if 200 <= cycle < 260 else 0.7))
            ctx.set(dut.i.payload, item % 256)
            ctx.set(dut.o.ready, ready)
            _, _, i_valid, i_ready, o_valid, o_payload = await ctx.tick().sample(
                dut.i.valid, dut.i.ready, dut.o.valid, dut.o.payload)
            if held is not None and (not o_valid or o_payload != held):
                errors.append(f"cycle {cycle}: o dropped or changed {held}")
            if i_valid and i_ready:
                sent.append(item % 256)
                item += 1
            if o_valid and ready:
                got.append(o_payload)
                held = None
            elif o_valid:
                held = o_payload
            if 210 <= cycle < 260:
                full_run += bool(i_valid and i_ready)
        assert full_run == 50, f"{full_run} transfers in 50 cycles of ready and valid high"

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert errors == []
    assert got == sent[:len(got)] and len(sent) - len(got) <= 2


def test_bad_out_ready():
    with pytest.raises(ValueError, match=r"out_ready must be one of 'direct', "
                                         r"'registered', not 'skid'"):
        output_stage(Module(), None, "skid")
    with pytest.raises(ValueError, match=r"out_ready must be one of 'direct', "
                                         r"'registered', not 'fast'"):
        unit("dot").record(a_bits=4, b_bits=4, block=4, out_ready="fast")


#: The Verilator run with the option (small size, random idle and ready): ``linear`` with
#: fp32 output holds a dot product, an accumulator (``align="stall"``, its own stall) and a
#: converter per lane, each with its skid. (The other units and aligns are left to the
#: Amaranth simulator's runs in tests/test_throughput.py: each Verilator build costs 15 to
#: 60 s on a loaded machine.)
VERILATOR_CASES = [
    ("linear", {"x_bits": 4, "w_bits": 4, "exp_bits": 8, "block": 4, "k_len": 8, "rows": 4,
                "lanes": 2, "output": "fp32"}),
]


@pytest.mark.parametrize(("top", "params"), VERILATOR_CASES,
                         ids=[t for t, _ in VERILATOR_CASES])
def test_verilator_registered(top, params, sim_build):
    seed = 700 + len(top)
    s = simulate(top, {**params, "out_ready": "registered"}, seed=seed, vectors=300,
                 backpressure=0.4, build_root=sim_build)
    print(f"{top} seed {seed}: {s['checked']} checked in {s['cycles']} cycles")
    assert s["checked"] > 0
    assert (s["mismatches"], s["missing"], s["protocol_errors"], s["timed_out"]) == \
        (0, 0, [], False), f"replay with seed {seed}: {s['reports']}"
