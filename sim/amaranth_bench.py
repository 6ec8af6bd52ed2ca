"""Fast stream testbench in the Amaranth simulator, the twin of :mod:`sim.bench` for cocotb.

It drives the same stimuli and checks with the same :class:`~sim.scoreboard.Scoreboard`
as the Verilator runs, without building anything, so unit tests stay quick.
"""

from __future__ import annotations

import random

from amaranth.sim import Simulator

from hw.manifest import describe_ports

from .fields import pack, unpack
from .scoreboard import Scoreboard

__all__ = ["run_stream_sim"]


def run_stream_sim(dut, stimuli: dict, expected: dict, *, seed: int, idle: float = 0.3,
                   backpressure: float = 0.3, max_cycles: int | None = None) -> dict:
    """Simulate ``dut`` (a ``wiring.Component``) on ``stimuli`` and check ``expected``.

    Every cycle the sources offer their next payload unless a random idle cycle is drawn,
    and each output's ``ready`` is low with probability ``backpressure``. Handshakes are
    sampled at the clock edge. Returns a summary with ``checked``, ``mismatches``,
    ``missing``, ``protocol_errors``, ``reports`` and ``cycles``.
    """
    _ports, streams = describe_ports(dut)
    rng = random.Random(seed)
    sources = []
    for name, items in stimuli.items():
        port = getattr(dut, name)
        sources.append({"port": port, "words": [pack(streams[name]["fields"], i) for i in items],
                        "sent": 0, "offer": False, "rng": random.Random(rng.random())})
    boards = {name: Scoreboard(name, items) for name, items in expected.items()}
    sinks = [{"port": getattr(dut, name), "fields": streams[name]["fields"],
              "board": boards[name], "rng": random.Random(rng.random()), "held": None}
             for name in expected]
    total = max((len(s["words"]) for s in sources), default=0)
    if max_cycles is None:
        max_cycles = 20 * total + 10 * dut.latency + 1000
    state = {"cycles": 0, "protocol_errors": []}

    async def bench(ctx):
        drain = 0
        while state["cycles"] < max_cycles and drain < 2 * dut.latency + 2:
            if all(s["sent"] == len(s["words"]) for s in sources) and all(
                    b.pending == 0 for b in boards.values()):
                drain += 1
            for s in sources:
                if not s["offer"] and s["sent"] < len(s["words"]) and \
                        s["rng"].random() >= idle:
                    ctx.set(s["port"].payload.as_value(), s["words"][s["sent"]])
                    s["offer"] = True
                ctx.set(s["port"].valid, s["offer"])
            for k in sinks:
                ctx.set(k["port"].ready, drain > 0 or k["rng"].random() >= backpressure)
            watched = []
            for s in sources:
                watched.append(s["port"].ready)
            for k in sinks:
                watched += [k["port"].valid, k["port"].ready, k["port"].payload.as_value()]
            _, _, *values = await ctx.tick().sample(*watched)
            for s in sources:
                ready = values.pop(0)
                if s["offer"] and ready:
                    s["sent"] += 1
                    s["offer"] = False
            for k in sinks:
                valid, ready, word = values.pop(0), values.pop(0), values.pop(0)
                if k["held"] is not None and (not valid or word != k["held"]):
                    state["protocol_errors"].append(
                        f"cycle {state['cycles']}: {k['board'].name} dropped valid or changed "
                        "its payload before the transfer")
                if valid and ready:
                    k["board"].receive(unpack(k["fields"], word))
                    k["held"] = None
                else:
                    k["held"] = word if valid else None
            state["cycles"] += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return {
        "cycles": state["cycles"],
        "checked": sum(b.checked for b in boards.values()),
        "mismatches": sum(b.mismatches for b in boards.values()),
        "missing": sum(b.pending for b in boards.values()),
        "protocol_errors": state["protocol_errors"][:10],
        "reports": [r for b in boards.values() for r in b.reports],
        "timed_out": state["cycles"] >= max_cycles,
    }
