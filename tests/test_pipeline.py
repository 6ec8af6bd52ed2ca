"""hw.pipeline.StallPipeline: copies of the stall enable (``enables``) load exactly when the
one enable does, under random input and output handshakes; an elastic pipeline (an enable
per stage) passes every item once and in order, at one per cycle, and fills every stage
with the output not taken, whatever the gaps of its input (Amaranth simulator)."""

from __future__ import annotations

import random
import re

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hw.pipeline import StallPipeline


class _Delay(wiring.Component):
    """``depth`` registers of an 8-bit value, register ``s`` on enable copy
    ``s % enables``."""

    def __init__(self, depth: int, enables: int, out_ready: str = "direct",
                 elastic: bool = False):
        self.depth, self.enables, self.out_ready = depth, enables, out_ready
        self.elastic = elastic
        super().__init__({"i": In(stream.Signature(8)), "o": Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        self.pipe = pipe = StallPipeline(m, inputs=[self.i], output=self.o, depth=self.depth,
                                         enables=self.enables,
                                         out_ready=self.out_ready, elastic=self.elastic)
        value = self.i.payload
        for s in range(self.depth):
            where = {"stage": s} if self.elastic else {"enable": s % self.enables}
            value = pipe.register(value, f"r{s}", **where)
        m.d.comb += pipe.output.payload.eq(value)
        return m


def _run(depth: int, enables: int, out_ready: str = "direct") -> None:
    dut = _Delay(depth, enables, out_ready)
    rng = random.Random(depth * 10 + enables)
    sent, received = [], []

    async def bench(ctx):
        for cycle in range(300):
            ctx.set(dut.i.valid, rng.random() < 0.7)
            ctx.set(dut.i.payload, cycle % 256)
            ctx.set(dut.o.ready, rng.random() < 0.6)
            out = dut.pipe.output  # the skid's input with registered back-pressure
            _, _, i_fire, o_fire, payload, advance, wanted, *copies = await ctx.tick().sample(
                dut.i.valid & dut.i.ready, dut.o.valid & dut.o.ready, dut.o.payload,
                dut.pipe.advance, ~out.valid | out.ready, *dut.pipe._advances[1:])
            assert copies == [advance] * (enables - 1), f"cycle {cycle}"
            assert advance == wanted, f"cycle {cycle}: advance {advance}, expected {wanted}"
            if i_fire:
                sent.append(cycle % 256)
            if o_fire:
                received.append(payload)

    _simulate(dut, bench, sent, received, least=100)


def _simulate(dut, bench, sent: list, received: list, *, least: int) -> None:
    """Run ``bench`` on ``dut``; at least ``least`` items came out, each once, in order."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(received) > least
    assert received == sent[:len(received)]


@pytest.mark.parametrize(("depth", "enables"), [(1, 2), (3, 3), (4, 2)])
def test_enable_copies_load_with_the_enable(depth, enables):
    _run(depth, enables)


@pytest.mark.parametrize(("depth", "enables"), [(1, 1), (1, 2), (3, 3), (4, 1)])
def test_registered_enable_equals_its_expression(depth, enables):
    """With ``out_ready="registered"`` the enable and its copies are registers computed
    a cycle ahead: in every cycle equal to ``~last_valid | ~skid_valid``, under random
    input and output handshakes, every item once and in order."""
    _run(depth, enables, "registered")


def test_a_registered_enable_out_of_step_is_caught(monkeypatch):
    """A registered enable copy that starts at 0 (one cycle of stall from reset) fails."""
    import hw.pipeline

    def signal(*args, name=None, **kwargs):
        if name is not None and name.startswith("advance"):
            kwargs["init"] = 0
        return Signal(*args, name=name, **kwargs)

    monkeypatch.setattr(hw.pipeline, "Signal", signal)
    with pytest.raises(AssertionError, match="cycle 0"):
        _run(3, 1, "registered")


def test_a_copy_out_of_step_is_caught(monkeypatch):
    """A copy of ``o.valid`` that starts at 1 (so its enable differs from the one enable
    until the first result) must fail the check."""
    import hw.pipeline

    def signal(*args, name=None, **kwargs):
        if name is not None and name.startswith("valid_copy"):
            kwargs["init"] = 1
        return Signal(*args, name=name, **kwargs)

    monkeypatch.setattr(hw.pipeline, "Signal", signal)
    with pytest.raises(AssertionError, match="cycle 0"):
        _run(3, 3)


@pytest.mark.parametrize("enables", [0, -1, 1.5, True])
def test_enables_validated(enables):
    m = Module()
    i, o = stream.Signature(8).flip().create(), stream.Signature(8).create()
    with pytest.raises(ValueError, match=rf"enables must be an integer of at least 1, not "
                                         rf"{enables!r}"):
        StallPipeline(m, inputs=[i], output=o, depth=2, enables=enables)


@pytest.mark.parametrize("enable", [3, -1, 1.0, True])
def test_register_enable_validated(enable):
    m = Module()
    i, o = stream.Signature(8).flip().create(), stream.Signature(8).create()
    pipe = StallPipeline(m, inputs=[i], output=o, depth=2, enables=3)
    with pytest.raises(ValueError, match=rf"enable must be an integer from 0 to 2 \(the "
                                         rf"copies of the enable\), not {enable!r}$"):
        pipe.register(i.payload, "r", enable=enable)


@pytest.mark.parametrize("enables", [1, 3])
def test_copies_are_built_only_when_asked(enables):
    """``enables=1`` (the default value) builds no copy; ``enables=3`` exactly two."""
    dut = _Delay(2, enables)
    text = rtlil.convert(dut)
    assert len(dut.pipe._advances) == enables and dut.pipe._advances[0] is dut.pipe.advance
    assert re.findall(r"wire .*\\(valid_copy\d+)$", text, re.M) == \
        [f"valid_copy{k}" for k in range(1, enables)]


def _run_elastic(depth: int, out_ready: str, seed: int) -> None:
    """Random input gaps and ``o.ready``, with stalls (``o.ready`` low) that last until
    ``depth + 1`` items (one more with a skid) have been offered: every item once and in
    order; at the end of each stall the pipeline holds ``depth`` items (one more in the
    skid); with ``o.ready`` high, no input waits."""
    dut = _Delay(depth, 1, out_ready, elastic=True)
    rng = random.Random(seed)
    print(f"elastic depth {depth} {out_ready} seed {seed}")
    capacity = depth + (out_ready == "registered")
    sent, received = [], []

    async def bench(ctx):
        stalled, offered, was_ready, stalls = None, 0, False, 0
        for cycle in range(400):
            if stalled is None and rng.random() < 0.05:
                stalled, offered = cycle, 0
            ready = stalled is None and rng.random() < 0.8
            valid = rng.random() < 0.4
            offered += valid
            ctx.set(dut.i.valid, valid)
            ctx.set(dut.i.payload, cycle % 256)
            ctx.set(dut.o.ready, ready)
            _, _, i_ready, o_fire, payload = await ctx.tick().sample(
                dut.i.ready, dut.o.valid & dut.o.ready, dut.o.payload)
            if valid and i_ready:
                sent.append(cycle % 256)
            if o_fire:
                received.append(payload)
            # (with a skid, a result it kept is handed over the cycle after a stall)
            if ready and (was_ready or out_ready == "direct") and not i_ready:
                raise AssertionError(f"cycle {cycle}: o.ready high, yet the input waits")
            was_ready = ready
            if stalled is not None and offered > capacity:
                held = len(sent) - len(received)
                assert held == capacity, \
                    f"cycle {cycle}: {held} items held after a stall from {stalled}, " \
                    f"{capacity} fit"
                stalled, stalls = None, stalls + 1
        assert stalls >= 5

    _simulate(dut, bench, sent, received, least=60)


@pytest.mark.parametrize("out_ready", ["direct", "registered"])
@pytest.mark.parametrize("depth", [1, 2, 5])
def test_elastic_squeezes_bubbles(depth, out_ready):
    _run_elastic(depth, out_ready, seed=depth)


def test_whole_pipeline_stall_is_caught_by_the_fill_check(monkeypatch):
    """The same checks fail for a pipeline with one enable for every stage: its bubbles
    stay, so fewer than ``depth`` items are held after a long stall."""

    class Whole(StallPipeline):
        def __init__(self, m, **kwargs):
            super().__init__(m, **{**kwargs, "elastic": False})

        def register(self, value, name, shape=None, *, enable=0, stage=None):
            return super().register(value, name, shape, enable=enable)

    monkeypatch.setitem(globals(), "StallPipeline", Whole)
    with pytest.raises(AssertionError, match="items held"):
        _run_elastic(5, "direct", seed=5)


def test_a_stage_that_ignores_the_next_is_caught(monkeypatch):
    """A stage enable of ``~valid[s]`` alone (it loads over an item the next stage does not
    take) loses items: the checks fail."""
    import hw.pipeline

    monkeypatch.setattr(hw.pipeline, "_stage_enable", lambda valid, after: ~valid)
    with pytest.raises(AssertionError):
        _run_elastic(5, "registered", seed=5)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"elastic": 1}, r"elastic must be True or False, not 1$"),
    ({"elastic": True, "enables": 2}, r"elastic needs enables=1 \(one enable per stage\), "
                                      r"not enables=2$"),
])
def test_elastic_validated(kwargs, message):
    m = Module()
    i, o = stream.Signature(8).flip().create(), stream.Signature(8).create()
    with pytest.raises(ValueError, match=message):
        StallPipeline(m, inputs=[i], output=o, depth=2, **kwargs)


@pytest.mark.parametrize(("elastic", "stage", "message"), [
    (True, None, r"stage must be an integer from 0 to 2 in an elastic pipeline, not None$"),
    (True, 3, r"stage must be an integer from 0 to 2 in an elastic pipeline, not 3$"),
    (True, True, r"stage must be an integer from 0 to 2 in an elastic pipeline, not True$"),
    (False, 0, r"stage is for an elastic pipeline only, not 0 "),
])
def test_register_stage_validated(elastic, stage, message):
    m = Module()
    i, o = stream.Signature(8).flip().create(), stream.Signature(8).create()
    pipe = StallPipeline(m, inputs=[i], output=o, depth=3, elastic=elastic)
    with pytest.raises(ValueError, match=message):
        pipe.register(i.payload, "r", stage=stage)
