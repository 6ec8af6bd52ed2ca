"""cocotb testbench of a unit behind its AXI4-Stream wrapper (``--interface axis``).

The stimuli, the golden expectations and the in-order scoreboard are those of the native
bench (:mod:`sim.units`, :mod:`sim.scoreboard`); only the transport differs. Inputs are
driven by cocotbext-axi's ``AxiStreamSource`` and outputs taken by its ``AxiStreamSink``,
each with a random pause generator: idle input cycles and ``tready`` back-pressure. Every
``tdata`` word is built and read through the manifest's field layout, so a field placed at
the wrong offset fails here.

The pad bits of ``tdata`` above the manifest's fields are checked in both directions, as
the wrapper documents them: inputs are sent with random pad bits, which the unit must
ignore, and every output word's pad must be zero (the scoreboard compares it as the field
``tpad``).

``tlast`` is checked as data: on an input whose manifest stream has ``tlast_field``, the
payload's ``last`` field decides where each frame ends; on an output with ``tlast_every =
n``, every n-th result must close a frame. A small handshake monitor beside the library
counts the transfers of every stream and checks that a valid word is held, unchanged, until
it is taken.

This module is the cocotb test module of :func:`sim.run.simulate` with
``interface="axis"``; it reads the same ``MXFORGE_*`` environment as :mod:`sim.tb_stream`.
"""

from __future__ import annotations

import itertools
import random
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from .fields import pack, unpack, used_bits
from .scoreboard import Scoreboard
from .tb_stream import run_against_golden

__all__ = ["AxisTestbench", "frames_of", "words_of"]

#: The key under which the scoreboard compares where a frame ends.
TLAST = "tlast"
#: The key under which it compares an output word's pad bits (which must be 0).
TPAD = "tpad"


def _prefix(stream: dict) -> str:
    return stream["tdata"].removesuffix("_tdata")


def _pauses(rng: random.Random, probability: float):
    """An endless pause pattern: True (pause this cycle) with ``probability``."""
    return (rng.random() < probability for _ in itertools.count())


def frames_of(stream: dict, items: list[dict], rng: random.Random | None = None
              ) -> list[bytes]:
    """The AXI4-Stream frames that carry ``items`` on an input ``stream`` of a manifest.

    Each item is one ``tdata`` word (little-endian bytes, the manifest's ``fields``); with
    ``rng``, the pad bits above the fields are random instead of zero. With
    ``tlast_field``, a frame ends after each item whose field is 1 (the final item must
    close its frame); without ``tlast`` all items go as one frame.

    Raises
    ------
    ValueError
        If the final item does not close its group, so the last frame would have no end.
    """
    nbytes = stream["width"] // 8
    used = used_bits(stream["fields"])
    pad_bits = stream["width"] - used

    def word(item: dict) -> bytes:
        pad = rng.getrandbits(pad_bits) if rng is not None and pad_bits else 0
        return (pack(stream["fields"], item) | pad << used).to_bytes(nbytes, "little")

    words = [word(item) for item in items]
    field = stream.get("tlast_field")
    if field is None:
        return [b"".join(words)] if words else []
    frames, current = [], []
    for item, word in zip(items, words, strict=True):
        current.append(word)
        if item[field]:
            frames.append(b"".join(current))
            current = []
    if current:
        raise ValueError(f"the last {len(current)} inputs of {stream['tdata']} close no group "
                         f"({field} = 0 on the final one)")
    return frames


def words_of(stream: dict, frame: bytes) -> list[dict]:
    """Payload dicts of one received frame of an output ``stream``; where the stream has
    ``tlast``, each also holds ``"tlast"``: 1 on the frame's final word; where ``tdata`` has
    pad bits, ``"tpad"``: their value."""
    nbytes = stream["width"] // 8
    used = used_bits(stream["fields"])
    if len(frame) % nbytes:
        raise ValueError(f"{stream['tdata']}: frame of {len(frame)} bytes is not whole words "
                         f"of {nbytes}")
    count = len(frame) // nbytes
    out = []
    for i in range(count):
        raw = int.from_bytes(frame[i * nbytes:(i + 1) * nbytes], "little")
        item = unpack(stream["fields"], raw)
        if stream["width"] > used:
            item[TPAD] = raw >> used
        if "tlast" in stream:
            item[TLAST] = int(i == count - 1)
        out.append(item)
    return out


def expect_words(stream: dict, items: list[dict]) -> list[dict]:
    """Expected output payloads as :func:`words_of` reads them: with the ``tlast`` the
    wrapper must give each (every ``tlast_every``-th one high) and, where ``tdata`` has pad
    bits, a zero ``tpad``."""
    every = stream.get("tlast_every")
    pad = {TPAD: 0} if stream["width"] > used_bits(stream["fields"]) else {}
    if every is None:
        return [{**item, **pad} for item in items]
    return [{**item, **pad, TLAST: int((i + 1) % every == 0)} for i, item in enumerate(items)]


class _Handshake:
    """Counts transfers of one stream and checks that ``tvalid`` is held with ``tdata`` and
    ``tlast`` unchanged until ``tready`` (sampled after the design settles)."""

    def __init__(self, dut, name: str, stream: dict) -> None:
        self.name = name
        self.valid = getattr(dut, stream["tvalid"])
        self.ready = getattr(dut, stream["tready"])
        self.signals = [getattr(dut, stream["tdata"])] + (
            [getattr(dut, stream["tlast"])] if "tlast" in stream else [])
        self.transfers = 0
        self.errors: list[str] = []
        self._held = None

    def sample(self, cycle: int) -> None:
        valid = bool(self.valid.value)
        word = tuple(int(s.value) for s in self.signals) if valid else None
        if self._held is not None and word != self._held:
            self.errors.append(f"cycle {cycle}: {self.name} dropped tvalid or changed tdata/tlast "
                               "before the transfer")
        if valid and bool(self.ready.value):
            self.transfers += 1
            self._held = None
        else:
            self._held = word


class AxisTestbench:
    """Drive every ``s_axis_*`` input of a wrapped unit and check every ``m_axis_*`` output.

    Parameters
    ----------
    dut
        The cocotb handle of the generated ``..._axis`` top module.
    manifest : dict
        Its manifest (``interface: axis``).
    stimuli : dict
        Per input stream, the payload dicts to send.
    expected : dict
        Per output stream, the payload dicts that must come out, in order.
    seed : int
        Seeds the pause patterns.
    idle, backpressure : float
        Probability of an idle input cycle / of ``tready`` low on an output, per cycle.
    """

    def __init__(self, dut, manifest: dict, stimuli: dict, expected: dict, *, seed: int,
                 idle: float = 0.3, backpressure: float = 0.3) -> None:
        if manifest.get("interface") != "axis":
            raise ValueError("manifest must describe an --interface axis design, not "
                             f"{manifest.get('interface', 'native')!r}")
        self.dut, self.manifest = dut, manifest
        self.clk = getattr(dut, manifest["clock"])
        self.rstn = getattr(dut, manifest["reset"]["name"])
        streams = manifest["streams"]
        rng = random.Random(seed)
        self.frames = {name: frames_of(streams[name], items, random.Random(rng.random()))
                       for name, items in stimuli.items()}
        self.sources = {}
        for name in stimuli:
            src = AxiStreamSource(AxiStreamBus.from_prefix(dut, _prefix(streams[name])),
                                  self.clk, self.rstn, reset_active_level=False)
            src.set_pause_generator(_pauses(random.Random(rng.random()), idle))
            self.sources[name] = src
        self.sinks = {}
        for name in expected:
            sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, _prefix(streams[name])),
                                 self.clk, self.rstn, reset_active_level=False)
            sink.set_pause_generator(_pauses(random.Random(rng.random()), backpressure))
            self.sinks[name] = sink
        self.scoreboards = {name: Scoreboard(name, expect_words(streams[name], items))
                            for name, items in expected.items()}
        self.monitors = [_Handshake(dut, name, streams[name]) for name in streams]
        self.errors: list[str] = []
        self.cycles = 0

    async def reset(self) -> None:
        """Start ``aclk`` and hold ``aresetn`` low for three cycles."""
        cocotb.start_soon(Clock(self.clk, 10, unit="ns").start())
        self.rstn.value = 0
        for _ in range(3):
            await RisingEdge(self.clk)
        await FallingEdge(self.clk)
        self.rstn.value = 1

    def _drain(self) -> None:
        streams = self.manifest["streams"]
        for name, sink in self.sinks.items():
            while not sink.empty():
                frame = sink.recv_nowait()
                for item in words_of(streams[name], bytes(frame.tdata)):
                    self.scoreboards[name].receive(item)

    async def _cycle(self) -> None:
        await FallingEdge(self.clk)
        await ReadOnly()
        for monitor in self.monitors:
            monitor.sample(self.cycles)
        self.cycles += 1
        self._drain()

    async def run(self, *, max_cycles: int | None = None) -> dict:
        """Run until every expected output arrived (or ``max_cycles``); return a summary
        with the keys of :meth:`sim.bench.StreamTestbench.run`."""
        await self.reset()
        for name, frames in self.frames.items():
            for frame in frames:
                self.sources[name].send_nowait(AxiStreamFrame(frame))
        inputs = {name: sum(len(f) for f in frames) // (self.manifest["streams"][name]["width"]
                                                         // 8)
                  for name, frames in self.frames.items()}
        if max_cycles is None:
            max_cycles = 20 * max(inputs.values(), default=0) + 10 * self.manifest["latency"] \
                + 1000
        start = time.perf_counter()
        while self.cycles < max_cycles and any(sb.pending for sb in self.scoreboards.values()):
            await self._cycle()
        # Outputs that arrive after everything expected are errors too.
        for sink in self.sinks.values():
            sink.clear_pause_generator()
            sink.pause = False
        for _ in range(2 * self.manifest["latency"] + 2):
            await self._cycle()
        for name, sink in self.sinks.items():  # words taken, but their frame never ended
            if sink.active:
                self.errors.append(f"{name}: a frame was left open (no tlast)")
        seconds = time.perf_counter() - start
        sent = {m.name: m.transfers for m in self.monitors
                if self.manifest["streams"][m.name]["direction"] == "in"}
        return {
            "cycles": self.cycles,
            "seconds": seconds,
            "inputs_sent": sent,
            "inputs_expected": inputs,
            "checked": sum(sb.checked for sb in self.scoreboards.values()),
            "mismatches": sum(sb.mismatches for sb in self.scoreboards.values()),
            "missing": sum(sb.pending for sb in self.scoreboards.values()),
            "protocol_errors": (self.errors + [e for m in self.monitors for e in m.errors])[:10],
            "reports": [r for sb in self.scoreboards.values() for r in sb.reports],
            "timed_out": self.cycles >= max_cycles,
        }


@cocotb.test()
async def axis_matches_golden(dut) -> None:
    """Every ``m_axis`` output equals the golden model's, under random idle cycles and
    back-pressure from cocotbext-axi's pause generators."""
    await run_against_golden(dut, AxisTestbench)
