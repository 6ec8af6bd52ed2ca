"""cocotb stream source, sink and a testbench that drives a generated unit through its manifest.

Timing: every cycle, at the falling clock edge, sources and sinks write their signals;
after the design settles (``ReadOnly``) they read ``valid``/``ready``. Those values are the
ones the next rising edge sees, so a transfer is recorded exactly when it happens, for any
combinational path between ``ready`` and ``valid`` inside the design.
"""

from __future__ import annotations

import random
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from .fields import pack, unpack
from .scoreboard import Scoreboard

__all__ = ["StreamSink", "StreamSource", "StreamTestbench"]


class StreamSource:
    """Drive payloads into an input stream, with random idle cycles between them.

    ``valid`` never depends on ``ready``; the payload is held until it transfers.
    """

    def __init__(self, dut, stream: dict, items: list[dict], rng: random.Random,
                 idle: float) -> None:
        self.payload = getattr(dut, stream["payload"])
        self.valid = getattr(dut, stream["valid"])
        self.ready = getattr(dut, stream["ready"])
        self.fields = stream["fields"]
        self.words = [pack(self.fields, item) for item in items]
        self.rng, self.idle = rng, idle
        self.sent = 0
        self._offering = False

    @property
    def done(self) -> bool:
        return self.sent == len(self.words)

    def drive(self) -> None:
        if not self._offering and not self.done and self.rng.random() >= self.idle:
            self.payload.value = self.words[self.sent]
            self._offering = True
        self.valid.value = int(self._offering)

    def sample(self) -> None:
        if self._offering and int(self.ready.value):
            self.sent += 1
            self._offering = False


class StreamSink:
    """Accept payloads from an output stream with random ``ready`` back-pressure, check the
    stream protocol and hand each payload to a scoreboard."""

    def __init__(self, dut, stream: dict, scoreboard: Scoreboard, rng: random.Random,
                 backpressure: float) -> None:
        self.payload = getattr(dut, stream["payload"])
        self.valid = getattr(dut, stream["valid"])
        self.ready = getattr(dut, stream["ready"])
        self.fields = stream["fields"]
        self.scoreboard = scoreboard
        self.rng, self.backpressure = rng, backpressure
        self.protocol_errors: list[str] = []
        self._held: int | None = None  # payload offered but not taken last cycle

    def drive(self) -> None:
        self.ready.value = int(self.rng.random() >= self.backpressure)

    def sample(self, cycle: int) -> None:
        valid = int(self.valid.value)
        word = self.payload.value.to_unsigned() if valid else None
        if self._held is not None and (not valid or word != self._held):
            self.protocol_errors.append(
                f"cycle {cycle}: {self.scoreboard.name} dropped valid or changed its payload "
                "before the transfer")
        if valid and int(self.ready.value):
            self.scoreboard.receive(unpack(self.fields, word))
            self._held = None
        else:
            self._held = word


class StreamTestbench:
    """Drive every input stream of a manifest and check every output stream.

    Parameters
    ----------
    dut
        The cocotb handle of the generated top module.
    manifest : dict
        The generator's manifest of that module.
    stimuli : dict
        Per input stream, the payload dicts to send.
    expected : dict
        Per output stream, the payload dicts that must come out, in order.
    seed : int
        Seeds the idle and back-pressure patterns.
    idle, backpressure : float
        Probability of an idle input cycle / of ``ready`` low on an output.
    """

    def __init__(self, dut, manifest: dict, stimuli: dict, expected: dict, *, seed: int,
                 idle: float = 0.3, backpressure: float = 0.3) -> None:
        self.dut = dut
        self.manifest = manifest
        rng = random.Random(seed)
        streams = manifest["streams"]
        self.sources = [StreamSource(dut, streams[name], items, random.Random(rng.random()),
                                     idle) for name, items in stimuli.items()]
        self.scoreboards = {name: Scoreboard(name, items) for name, items in expected.items()}
        self.sinks = [StreamSink(dut, streams[name], self.scoreboards[name],
                                 random.Random(rng.random()), backpressure)
                      for name in expected]
        self.cycles = 0

    async def reset(self) -> None:
        clk, rst = getattr(self.dut, self.manifest["clock"]), \
            getattr(self.dut, self.manifest["reset"]["name"])
        cocotb.start_soon(Clock(clk, 10, unit="ns").start())
        for src in self.sources:
            src.valid.value = 0
        for sink in self.sinks:
            sink.ready.value = 0
        rst.value = 1
        for _ in range(3):
            await RisingEdge(clk)
        await FallingEdge(clk)
        rst.value = 0

    async def run(self, *, max_cycles: int | None = None) -> dict:
        """Run until every expected output arrived (or ``max_cycles``); return a summary."""
        clk = getattr(self.dut, self.manifest["clock"])
        await self.reset()
        total_in = max((len(s.words) for s in self.sources), default=0)
        if max_cycles is None:
            max_cycles = 20 * total_in + 10 * self.manifest["latency"] + 1000
        start = time.perf_counter()
        while self.cycles < max_cycles:
            if all(s.done for s in self.sources) and all(
                    sb.pending == 0 for sb in self.scoreboards.values()):
                break
            await FallingEdge(clk)
            for src in self.sources:
                src.drive()
            for sink in self.sinks:
                sink.drive()
            await ReadOnly()
            for src in self.sources:
                src.sample()
            for sink in self.sinks:
                sink.sample(self.cycles)
            self.cycles += 1
        # Outputs that arrive after everything expected are errors too.
        for _ in range(2 * self.manifest["latency"] + 2):
            await FallingEdge(clk)
            for sink in self.sinks:
                sink.ready.value = 1
            await ReadOnly()
            for sink in self.sinks:
                sink.sample(self.cycles)
            self.cycles += 1
        seconds = time.perf_counter() - start
        checked = sum(sb.checked for sb in self.scoreboards.values())
        return {
            "cycles": self.cycles,
            "seconds": seconds,
            "inputs_sent": {s.payload._name: s.sent for s in self.sources},
            "inputs_expected": {s.payload._name: len(s.words) for s in self.sources},
            "checked": checked,
            "mismatches": sum(sb.mismatches for sb in self.scoreboards.values()),
            "missing": sum(sb.pending for sb in self.scoreboards.values()),
            "protocol_errors": [e for sink in self.sinks for e in sink.protocol_errors][:10],
            "reports": [r for sb in self.scoreboards.values() for r in sb.reports],
            "timed_out": self.cycles >= max_cycles,
        }
