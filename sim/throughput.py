"""Throughput under back-pressure in the Amaranth simulator.

Every streaming unit stalls as a whole only while its output holds a result that is not
taken (``hw/pipeline.py``: ``advance = ~o.valid | o.ready``), so with the output empty it
keeps accepting inputs until it is full (bubble absorption). This module drives a unit
with its inputs valid together (always, or in the cycles a pattern allows) and the
output's ``ready`` from a pattern, logs the handshakes of every cycle and checks the
payloads with the same in-order :class:`~sim.scoreboard.Scoreboard` as
:mod:`sim.amaranth_bench`, so a unit cannot meet a cycle bound with garbage. The bounds
themselves are stated here:

* :attr:`ThroughputRun.lost`: cycles in which the inputs were valid and ``o`` was not
  stalled (not valid, or ready), yet the inputs did not transfer. Bubble absorption makes
  it 0, apart from a unit's documented stall cycles. With a skid register at the output
  (``out_ready="registered"``, :func:`hw.pipeline.output_stage`) the pipeline moves
  in the first cycle of a stall and holds in the cycle after it, while ``o`` takes the
  skid's result: :attr:`ThroughputRun.lost_registered` leaves those cycles out.
* :func:`cycle_bound`: ``cycles <= N + latency + stalls + idle + extra``, where ``stalls``
  counts the cycles in which ``o`` was valid and not ready and ``idle`` those before the
  last transfer in which the inputs were not valid. Each cycle either moves the pipeline
  or is a stall, an idle cycle or one of the unit's ``extra`` documented stall cycles; the
  ``N``-th input moves in at the ``N``-th moving cycle and reaches ``o`` ``latency`` moving
  cycles later, where it is taken in a cycle with ``ready`` high. For a plain
  :class:`~hw.pipeline.StallPipeline` unit with its inputs always valid the bound is met
  with equality.

Dropping ``~o.valid`` from the advance (``advance = o.ready``) loses a cycle whenever
``ready`` is low while ``o`` is empty; such cycles are not counted in ``stalls``, so both
checks fail as soon as the pattern holds one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from amaranth.sim import Simulator

from hw.manifest import describe_ports

from .fields import pack, unpack
from .scoreboard import Scoreboard

__all__ = ["ThroughputRun", "cycle_bound", "held_low", "random_pattern", "run_backpressure"]


@dataclass
class ThroughputRun:
    """What :func:`run_backpressure` saw.

    Members
    -------
    cycles : int
        Cycles up to and including the one in which the last expected output transferred
        (``max_cycles`` if it never did).
    inputs : int
        Items per input stream.
    offered : list of bool
        Per cycle, whether every input was valid.
    accepted : list of int
        Per cycle, 1 if the inputs transferred in it, else 0.
    out_valid, out_ready : list of bool
        Per cycle, the output's ``valid`` and ``ready``.
    checked, mismatches, missing : int
        Outputs compared, outputs that differed (unexpected extra outputs included), expected
        outputs never received.
    reports : list of str
        The first mismatches, described.
    protocol_errors : list of str
        Inputs that did not transfer together; an output that dropped ``valid`` or changed
        its payload before it was taken.
    """

    cycles: int
    inputs: int
    offered: list[bool] = field(repr=False)
    accepted: list[int] = field(repr=False)
    out_valid: list[bool] = field(repr=False)
    out_ready: list[bool] = field(repr=False)
    checked: int = 0
    mismatches: int = 0
    missing: int = 0
    reports: list[str] = field(default_factory=list)
    protocol_errors: list[str] = field(default_factory=list)

    @property
    def stalls(self) -> int:
        """Cycles (up to :attr:`cycles`) in which ``o`` was valid and not ready."""
        return sum(v and not r for v, r in zip(self.out_valid[:self.cycles],
                                               self.out_ready[:self.cycles], strict=True))

    @property
    def idle(self) -> int:
        """Cycles before the last input transfer in which the inputs were not valid."""
        end = max((c for c, a in enumerate(self.accepted) if a), default=-1)
        return sum(not v for v in self.offered[:end + 1])

    @property
    def lost(self) -> int:
        """Cycles (up to :attr:`cycles`) in which the inputs were valid and ``o`` was not
        stalled, yet the inputs did not transfer: 0 for a unit that absorbs bubbles, apart
        from a unit's documented stall cycles."""
        return sum(v and not a and not (ov and not r) for v, a, ov, r in zip(
            self.offered[:self.cycles], self.accepted[:self.cycles],
            self.out_valid[:self.cycles], self.out_ready[:self.cycles], strict=True))

    @property
    def lost_registered(self) -> int:
        """:attr:`lost` without the cycles that follow a stall cycle (``o`` valid and not
        ready), in which a unit with a skid register at its output
        (:func:`hw.pipeline.output_stage`) hands the skid's result over and holds its
        pipeline (which moved in the stall cycle instead): 0 for such a unit, apart from
        its documented stall cycles."""
        stalled = [ov and not r for ov, r in zip(self.out_valid, self.out_ready, strict=True)]
        return sum(v and not a and not s and not (c > 0 and stalled[c - 1]) for c, (v, a, s)
                   in enumerate(zip(self.offered[:self.cycles], self.accepted[:self.cycles],
                                    stalled[:self.cycles], strict=True)))

    @property
    def ok(self) -> bool:
        """Every expected output arrived in order and bit-exact, and no protocol error."""
        return (self.mismatches, self.missing, self.protocol_errors) == (0, 0, [])

    def accepted_within(self, cycles: int) -> int:
        """Input transfers in the first ``cycles`` cycles."""
        return sum(self.accepted[:cycles])


def random_pattern(seed: int, n: int, *, low: float) -> list[bool]:
    """``n`` handshake values (an output's ``ready``, the inputs' ``valid``), each low with
    probability ``low``, drawn from ``random.Random(seed)``."""
    if not 0.0 <= low < 1.0:
        raise ValueError(f"low must be from 0 to below 1, not {low}")
    rng = random.Random(seed)
    return [rng.random() >= low for _ in range(n)]


def held_low(cycles: int) -> list[bool]:
    """``ready`` low for the first ``cycles`` cycles (high after them)."""
    return [False] * cycles


def cycle_bound(*, inputs: int, latency: int, stalls: int, idle: int = 0,
                extra: int = 0) -> int:
    """Most cycles that moving ``inputs`` items through a whole-pipeline-stall unit of
    ``latency`` may take, with the output stalled (valid, not ready) in ``stalls`` cycles,
    the inputs not valid in ``idle`` cycles before the last transfer and ``extra``
    documented stall cycles of the unit (e.g. the accumulator's
    :meth:`~hw.accumulator.MXIntAccumulator.stall_cycles`): ``inputs + latency + stalls +
    idle + extra``."""
    return inputs + latency + stalls + idle + extra


def run_backpressure(dut, stimuli: dict, expected: dict, *, ready: list[bool],
                     valid: list[bool] | dict[str, list[bool]] | None = None,
                     max_cycles: int | None = None) -> ThroughputRun:
    """Simulate ``dut`` with its input streams valid while they have items (in the cycles
    ``valid`` allows) and the output's ``ready`` taken from ``ready``.

    Parameters
    ----------
    dut : wiring.Component
        The unit, with one output stream ``o`` and a ``latency`` property.
    stimuli : dict
        Per input stream, the payload dicts to send (every stream the same count).
    expected : dict
        ``{"o": [...]}``: the payload dicts ``o`` must emit, in order (from ``golden``).
    ready : list of bool
        The output's ``ready`` per cycle (high once the list is used up).
    valid : list of bool, or dict of list of bool, optional
        Per cycle, whether the inputs are offered: one pattern for all, or one per input
        stream name (default, and once a list is used up: always). While not offered, an
        input shows its next item's payload. Inputs offered apart must still transfer
        together (a unit's ``ready`` of one input waits for the others' ``valid``).
    max_cycles : int, optional
        Give up after this many cycles (default ``len(ready)`` plus the longest ``valid``
        pattern plus ``4 * items + 8 * latency + 100``).

    Returns
    -------
    ThroughputRun
        The handshake log, the cycle count and the scoreboard's verdict. The simulation
        runs ``latency + 2`` cycles past the last expected output, so extra outputs count
        as mismatches.
    """
    _ports, streams = describe_ports(dut)
    counts = {len(items) for items in stimuli.values()}
    if len(counts) != 1:
        raise ValueError(f"stimuli must have one count for every input, not {sorted(counts)}")
    (total,) = counts
    if set(expected) != {"o"}:
        raise ValueError(f"expected must hold the output 'o' only, not {sorted(expected)}")
    sources = [(getattr(dut, name), [pack(streams[name]["fields"], x) for x in items])
               for name, items in stimuli.items()]
    out = dut.o
    out_fields = streams["o"]["fields"]
    board = Scoreboard("o", expected["o"])
    if valid is None or isinstance(valid, list):
        valid = {name: valid or [] for name in stimuli}
    if set(valid) != set(stimuli):
        raise ValueError(f"valid must name the inputs {sorted(stimuli)}, not {sorted(valid)}")
    offers = [valid[name] for name in stimuli]
    if max_cycles is None:
        max_cycles = len(ready) + max(map(len, offers)) + 4 * total + 8 * dut.latency + 100
    log = ThroughputRun(cycles=max_cycles, inputs=total, offered=[], accepted=[],
                        out_valid=[], out_ready=[])

    async def bench(ctx):
        sent = [0] * len(sources)
        held, tail = None, None
        cycle = 0
        while cycle < max_cycles and (tail is None or cycle < tail):
            offer = [n < total and (pattern[cycle] if cycle < len(pattern) else True)
                     for n, pattern in zip(sent, offers, strict=True)]
            for (port, words), n, on in zip(sources, sent, offer, strict=True):
                if n < total:
                    ctx.set(port.payload.as_value(), words[n])
                ctx.set(port.valid, on)
            ctx.set(out.ready, ready[cycle] if cycle < len(ready) else True)
            watched = [port.ready for port, _ in sources] + [
                out.valid, out.ready, out.payload.as_value()]
            _, _, *values = await ctx.tick().sample(*watched)
            in_ready, (o_valid, o_ready, word) = values[:len(sources)], values[len(sources):]
            took = [on and bool(r) for on, r in zip(offer, in_ready, strict=True)]
            if any(took) and not all(took):
                log.protocol_errors.append(f"cycle {cycle}: inputs transferred apart: {took}")
            log.offered.append(all(offer))
            log.accepted.append(int(all(took)))
            sent = [n + t for n, t in zip(sent, took, strict=True)]
            log.out_valid.append(bool(o_valid))
            log.out_ready.append(bool(o_ready))
            if held is not None and (not o_valid or word != held):
                log.protocol_errors.append(f"cycle {cycle}: o dropped valid or changed its "
                                           "payload before the transfer")
            if o_valid and o_ready:
                board.receive(unpack(out_fields, word))
                held = None
                if board.pending == 0 and tail is None:
                    log.cycles = cycle + 1
                    tail = cycle + dut.latency + 3
            else:
                held = word if o_valid else None
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    log.checked, log.mismatches, log.missing = board.checked, board.mismatches, board.pending
    log.reports = board.reports
    log.protocol_errors = log.protocol_errors[:10]
    return log
