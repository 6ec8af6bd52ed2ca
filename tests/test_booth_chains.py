"""hw.booth.BoothChains, the fp multiply-add's Booth significand product: every unsigned
pair of small widths and random fp32-size pairs through the pipelined build in the
Amaranth simulator, one pair per cycle, against ``a * b``."""

from __future__ import annotations

import random

import pytest

from hw.booth import BOOTH_CHAINS, BoothChains


def _chains_mismatches(width_a: int, width_b: int, pairs, fault=None) -> list[tuple]:
    """``(a, b, got)`` of every pair whose product out of :class:`BoothChains` (one pair
    per cycle, read :attr:`BoothChains.stages` cycles later) is not ``a * b``; ``fault``
    optionally rewrites the product value before its check (the injected-fault test)."""
    from amaranth.hdl import Module, Signal
    from amaranth.sim import Simulator

    m = Module()
    a, b = Signal(width_a), Signal(width_b)

    def register(value, name, shape=None):
        reg = Signal(len(value), name=name)
        m.d.sync += reg.eq(value)
        return reg

    chains = BoothChains(width_a, width_b)
    product = chains.build(m, register, a, b)
    if fault is not None:
        product = fault(product)
    bad = []

    async def bench(ctx):
        got = []
        for t in range(len(pairs) + chains.stages - 1):
            if t < len(pairs):
                ctx.set(a, pairs[t][0])
                ctx.set(b, pairs[t][1])
            await ctx.tick()
            if t + 1 >= chains.stages:
                got.append(ctx.get(product))
        bad.extend((x, y, g) for (x, y), g in zip(pairs, got, strict=True) if g != x * y)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return bad


@pytest.mark.parametrize(("width_a", "width_b"), [(1, 1), (2, 3), (3, 2), (4, 4), (5, 6),
                                                  (6, 5), (2, 8)])
def test_booth_chains_exhaustive(width_a, width_b):
    """Every unsigned pair: odd and even widths, one-row and uneven chains."""
    pairs = [(x, y) for x in range(1 << width_a) for y in range(1 << width_b)]
    assert _chains_mismatches(width_a, width_b, pairs) == []


@pytest.mark.parametrize("width", [8, 24])
def test_booth_chains_random_significands(width):
    """bf16's and fp32's significand widths: random pairs, the extremes, and hidden-bit
    pairs (top bit set, as every flushed significand has)."""
    rnd = random.Random(width)
    top = 1 << (width - 1)
    pairs = [(rnd.getrandbits(width), rnd.getrandbits(width)) for _ in range(300)]
    pairs += [(x | top, y | top) for x, y in pairs[:100]]
    pairs += [(0, 0), ((1 << width) - 1, (1 << width) - 1), (top, (1 << width) - 1),
              ((1 << width) - 1, 0), (top, top), (1, (1 << width) - 1)]
    assert _chains_mismatches(width, width, pairs) == []


def test_booth_chains_shape():
    chains = BoothChains(24, 24)
    assert BOOTH_CHAINS == 2 and chains.digits == 13
    assert [len(c) for c in chains.chains] == [7, 6] and chains.stages == 8
    assert BoothChains(8, 8).stages == 4 and BoothChains(1, 1).stages == 2


def test_booth_chains_checker_catches_a_wrong_product():
    pairs = [(x, y) for x in range(16) for y in range(16)]
    # the product's LSB flipped whenever it is 9 (1 x 9, 3 x 3, 9 x 1)
    bad = _chains_mismatches(4, 4, pairs, fault=lambda p: p ^ (p == 9))
    assert sorted(bad) == [(1, 9, 8), (3, 3, 8), (9, 1, 8)]


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"wa": 0}, ValueError, r"wa must be from 1 to 32, not 0"),
    ({"wb": 33}, ValueError, r"wb must be from 1 to 32, not 33"),
    ({"wa": 2.0}, TypeError, r"wa must be an integer, not 2.0"),
])
def test_booth_chains_bad_widths(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        BoothChains(**{"wa": 8, "wb": 8, **kwargs})
