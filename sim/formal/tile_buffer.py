"""Bounded proofs of the tile's double buffers: every block a lane computes with, and every
bias its result is added to, is the one the tile must use, whatever the valid/ready/reset
pattern.

Usage::

    python -m sim.formal.tile_buffer [--bias | --blocks-per-cycle 2] [--steps N] [--timeout S]
                                     [--workdir DIR]

The harness (an Amaranth module, independent of the tile's control: plain counters)
drives a small :class:`hw.tile.MXIntTile` (``k = 1``, ``P = 1``, ``K = 2`` so ``nb = 2``,
``R = 1`` so ``D = 2`` words per tile, ``T = 2`` tokens per tile) with free ``valid`` on
``w`` and ``x``, free ``ready`` on ``o`` and free reset. The payload of the ``n``-th ``w``
transfer is ``n`` and of the ``n``-th ``x`` transfer is ``n`` (modulo the payload width),
so a payload names the word it is. The ``c``-th block the lane takes must then be weight
word ``tile * D + c mod D`` with ``tile = c // (T * D)`` (the tile's words in order, for
each of its ``T`` tokens) and activation block ``(c // D) * nb + c mod nb`` (token
``c // D``, block ``c mod nb``); the harness keeps those two numbers in its own counters
and asserts, in every cycle in which the lane's input is valid, that its payloads equal
them. A handover too early (a bank or slot read after it was reloaded, or before it was
loaded), a load over a bank or slot still in use, or a read from the wrong bank or slot
all break it.

``sat -seq N -set-init-zero`` (Yosys, as :mod:`sim.formal.prove`) checks the first ``N``
cycles from reset (default 16: the first tile loads in 2 cycles and each tile computes
in 4, so a trace can hand the weight banks over three times and the activation slots
six times). Bounded: the memories' contents and the
counters are not related by an invariant, so induction cannot close.
:func:`reach` shows the bound is not vacuous: some trace takes more than two tiles' blocks
within it.

``--blocks-per-cycle 2`` runs the same proof on :data:`PARAMS_B2` (``B = 2``: the weights
and activations in two memories each, item ``i`` in memory ``i mod 2``, read together):
the lane's dot product ``q`` of its ``c``-th read (``B`` blocks at once) must take weight
word ``tile * D + (c mod (D / B)) * B + q`` and activation block ``(c // (D / B)) * nb +
(c mod (nb / B)) * B + q``. A word or block loaded into the wrong memory, besides the
faults above, breaks it. Within 16 cycles some trace takes 5 reads (reach), the third
tile's first: the activation loads bound it here (``R / P = 1 < B``), ``nb`` transfers per
token of one read.

``--bias`` proves the bias buffer: :class:`BiasBufferHarness` builds the tile's bias
stage (its memory, loader, output counters and adder; ``MXIntTile._bias_add``) on
:data:`BIAS_PARAMS` (``output="fp32"``, ``bias="fp32"``, ``R = 2`` rows on one lane, so
``G = 2`` groups and a bias word per group, ``T = 2``) and feeds it results from a
stream source whose ``valid`` is free (held until taken, as a stream must) instead of the
tile's arithmetic: the bias stage sees only the results' handshake, and without the dot
products, accumulators and float32 converters in front a bounded trace reaches many
more tiles (the whole tile with its float32 path did not finish 28 cycles in 10
minutes). The ``n``-th ``b`` transfer's payload is ``n`` (in its low :data:`COUNT_BITS`
bits), and the harness asserts that the ``c``-th result entering the adder comes with
bias word ``(c // (T * G)) * G + c mod G`` (the tile's groups in order, for each of its
``T`` tokens). A bias bank reloaded before its tile's last result, read before it is
full or from the wrong bank, or a group read out of turn, breaks it. :func:`reach` with
``bias=True`` shows that a trace within the bound adds results of more than two tiles.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Assert, Elaboratable, Module, Mux, Signal, unsigned
from amaranth.lib import stream

from .yosys import run_yosys

__all__ = ["BIAS_PARAMS", "BLOCKS_PER_CYCLE", "PARAMS", "PARAMS_B2", "BiasBufferHarness",
           "TileBufferHarness", "prove_tile_buffers", "reach"]

#: The tile the proof runs on.
PARAMS = {"x_bits": 2, "w_bits": 2, "exp_bits": 2, "block": 1, "k_len": 2, "rows": 1,
          "lanes": 1, "tokens": 2}
#: The tile of the proof with ``B = 2`` blocks per cycle: :data:`PARAMS`' ``nb = 2`` blocks
#: per row are one read of two blocks (one into each partial sum), ``D = 2`` words in two
#: memories, so a tile is ``T = 2`` reads.
PARAMS_B2 = {**PARAMS, "blocks_per_cycle": 2}
BLOCKS_PER_CYCLE = {1: PARAMS, 2: PARAMS_B2}
DEFAULT_STEPS = 16
#: The tile whose bias stage the bias proof runs on.
BIAS_PARAMS = {**PARAMS, "rows": 2, "output": "fp32", "bias": "fp32"}
#: Bits of the bias words' counting payloads (the rest are 0): more than the words a
#: bounded trace can load, and the bits above fall out of the proof's cone.
COUNT_BITS = 6


def _count(m: Module, take, *, item: Signal, items: int, tok: Signal, tokens: int,
           base: Signal, step: int, per_token: list = ()) -> None:
    """The harness's own position in a tile's order, advanced on ``take``: ``item`` (of
    ``items`` per token), then ``tok`` (of ``tokens`` per tile, with the ``per_token``
    statements at each token's end), then the tile's first word ``base`` (by ``step``)."""
    with m.If(take):
        with m.If(item == items - 1):  # a token's last item: the next token
            m.d.sync += [item.eq(0), *per_token]
            with m.If(tok == tokens - 1):  # the tile's last token: the next tile
                m.d.sync += [tok.eq(0), base.eq(base + step)]
            with m.Else():
                m.d.sync += tok.eq(tok + 1)
        with m.Else():
            m.d.sync += item.eq(item + 1)


class TileBufferHarness(Elaboratable):
    """The tile with counting payloads and the assertion (see the module notes).
    ``bound``: also assert that the lane takes at most ``bound`` reads (for
    :func:`reach`, which expects that to fail). ``blocks_per_cycle``: the tile's ``B``,
    1 (:data:`PARAMS`) or 2 (:data:`PARAMS_B2`)."""

    def __init__(self, component: type | None = None, *, bound: int | None = None,
                 blocks_per_cycle: int = 1) -> None:
        if blocks_per_cycle not in BLOCKS_PER_CYCLE:
            raise ValueError(f"blocks_per_cycle must be one of {sorted(BLOCKS_PER_CYCLE)}, "
                             f"not {blocks_per_cycle!r}")
        if component is None:
            from hw.tile import MXIntTile as component
        self.tile = component(**BLOCKS_PER_CYCLE[blocks_per_cycle])
        self.bound = bound
        self.w_valid, self.x_valid, self.o_ready = Signal(), Signal(), Signal()
        self.ports = [self.w_valid, self.x_valid, self.o_ready]

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.tile = t = self.tile
        T, D, nb = t.tokens, t.words, t.blocks
        w_bits, x_bits = len(t.w.payload.as_value()), len(t.x.payload.as_value())
        w_count, x_count = Signal(w_bits), Signal(x_bits)
        m.d.comb += [t.w.valid.eq(self.w_valid), t.w.payload.as_value().eq(w_count),
                     t.x.valid.eq(self.x_valid), t.x.payload.as_value().eq(x_count),
                     t.o.ready.eq(self.o_ready)]
        with m.If(t.w.valid & t.w.ready):
            m.d.sync += w_count.eq(w_count + 1)
        with m.If(t.x.valid & t.x.ready):
            m.d.sync += x_count.eq(x_count + 1)

        # What the lane must take next: in its dot product q (of B), word
        # w_base + rw * B + q and block x_base + blk * B + q; rw and blk count reads.
        B = t.blocks_per_cycle
        dots = t._dots[:B]  # lane 0's
        lane_a = dots[0].a
        rw, blk, tok = Signal(range(D // B)), Signal(range(nb // B)), Signal(range(T))
        w_base, x_base = Signal(w_bits), Signal(x_bits)
        taken = Signal(8)
        take = lane_a.valid & lane_a.ready
        with m.If(take):
            m.d.sync += taken.eq(taken + 1)
            m.d.sync += blk.eq(Mux(blk == nb // B - 1, 0, blk + 1))
        _count(m, take, item=rw, items=D // B, tok=tok, tokens=T, base=w_base, step=D,
               per_token=[x_base.eq(x_base + nb)])
        with m.If(lane_a.valid):
            for q, dot in enumerate(dots):
                m.d.comb += [
                    Assert(dot.b.payload.as_value() == (w_base + rw * B + q)[:w_bits],
                           "weight word"),
                    Assert(dot.a.payload.as_value() == (x_base + blk * B + q)[:x_bits],
                           "activation"),
                    Assert(dot.a.valid & dot.b.valid, "lanes' inputs valid together"),
                ]
        if self.bound is not None:
            m.d.comb += Assert(taken <= self.bound, "bound")
        return m


class BiasBufferHarness(Elaboratable):
    """The tile's bias stage, fed by a free result source, with counting bias words and the
    assertion (see the module notes). ``bound``: also assert that the adder takes at most
    ``bound`` results (for :func:`reach`)."""

    def __init__(self, component: type | None = None, *, bound: int | None = None) -> None:
        if component is None:
            from hw.tile import MXIntTile as component
        self.tile = component(**BIAS_PARAMS)
        # The tile's arithmetic is not elaborated here: silence Amaranth's unused warnings.
        for part in vars(self.tile).values():
            for unit in part if isinstance(part, list) else [part]:
                if isinstance(unit, Elaboratable):
                    unit._MustUse__silence = True
        self.bound = bound
        self.r_valid, self.b_valid, self.o_ready = Signal(), Signal(), Signal()
        self.ports = [self.r_valid, self.b_valid, self.o_ready]

    def elaborate(self, platform) -> Module:
        m = Module()
        t = self.tile
        T, G = t.tokens, t.groups
        # The result source: valid is free, but held until the result is taken.
        result = stream.Signature(unsigned(32)).create()
        held = Signal()
        m.d.comb += result.valid.eq(self.r_valid | held)
        m.d.sync += held.eq(result.valid & ~result.ready)
        (out, _), = t._bias_add(m, [(result, result.payload)])
        m.d.comb += out.ready.eq(self.o_ready)

        b = t.b.payload.as_value()
        b_count, tile_base = Signal(COUNT_BITS), Signal(COUNT_BITS)
        m.d.comb += [t.b.valid.eq(self.b_valid), b.eq(b_count)]
        with m.If(t.b.valid & t.b.ready):
            m.d.sync += b_count.eq(b_count + 1)
        grp, tok, added = Signal(range(G)), Signal(range(T)), Signal(8)
        add = t._adds[0].i
        with m.If(add.valid & add.ready):
            m.d.sync += added.eq(added + 1)
        _count(m, add.valid & add.ready, item=grp, items=G, tok=tok, tokens=T, base=tile_base,
               step=G)
        with m.If(add.valid):
            m.d.comb += Assert(add.payload.c[:COUNT_BITS] == tile_base + grp, "bias word")
        if self.bound is not None:
            m.d.comb += Assert(added <= self.bound, "bound")
        return m


def _sat(harness, steps: int, workdir: Path, timeout: float) -> tuple:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "tile_buffer.il").write_text(
        rtlil.convert(harness, ports=harness.ports, name="top"), encoding="utf-8")
    script = "\n".join([
        "read_rtlil tile_buffer.il", "hierarchy -check -top top", "proc -norom",
        "chformal -lower", "flatten", "memory", "opt",
        f"sat -seq {steps} -prove-asserts -set-init-zero -verify -show-inputs "
        "-dump_vcd tile_buffer.vcd"]) + "\n"
    (workdir / "tile_buffer.ys").write_text(script, encoding="utf-8")
    return run_yosys(workdir, "tile_buffer.ys", workdir / "tile_buffer.log", timeout)


def _harness(component: type | None, bound: int | None, bias: bool, blocks_per_cycle: int):
    if bias:
        if blocks_per_cycle != 1:
            raise ValueError(f"blocks_per_cycle must be 1 with bias (the bias stage does "
                             f"not see B), not {blocks_per_cycle!r}")
        return BiasBufferHarness(component, bound=bound)
    return TileBufferHarness(component, bound=bound, blocks_per_cycle=blocks_per_cycle)


def prove_tile_buffers(*, steps: int = DEFAULT_STEPS, timeout: float = 600.0,
                       workdir: Path, component: type | None = None,
                       bias: bool = False, blocks_per_cycle: int = 1) -> str:
    """``"PROVED"``, ``"FAILED"`` or ``"TIMEOUT"`` for the first ``steps`` cycles
    (``component``: a tile class other than :class:`hw.tile.MXIntTile`, e.g. a mutant;
    ``bias``: the bias buffer's proof, :class:`BiasBufferHarness`; ``blocks_per_cycle``:
    the weight and activation buffers' proof on :data:`PARAMS_B2` with 2)."""
    return _sat(_harness(component, None, bias, blocks_per_cycle), steps, workdir,
                timeout)[0]


def reach(*, taken: int, steps: int = DEFAULT_STEPS, timeout: float = 600.0,
          workdir: Path, bias: bool = False, blocks_per_cycle: int = 1) -> bool:
    """Whether some trace of ``steps`` cycles has the lane take more than ``taken`` reads
    (``B`` blocks each; with ``bias``: the adder take more than ``taken`` results), i.e.
    the assertion ``taken <= bound`` fails."""
    return _sat(_harness(None, taken, bias, blocks_per_cycle), steps, workdir,
                timeout)[0] == "FAILED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.formal.tile_buffer",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--bias", action="store_true",
                        help="prove the bias buffer (the tile's bias stage, BIAS_PARAMS) "
                             "instead of the weight and activation buffers")
    parser.add_argument("--blocks-per-cycle", type=int, choices=sorted(BLOCKS_PER_CYCLE),
                        default=1, help="the tile's B for the weight and activation "
                                        "buffers' proof (PARAMS, PARAMS_B2; default: 1)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help="cycles from reset (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    if not 1 <= args.steps <= 200:
        parser.error(f"--steps must be from 1 to 200, not {args.steps}")
    if args.bias and args.blocks_per_cycle != 1:
        parser.error(f"--blocks-per-cycle {args.blocks_per_cycle} does not apply with --bias "
                     "(the bias stage does not see B)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tile_buffer_"))
    status = prove_tile_buffers(steps=args.steps, timeout=args.timeout, workdir=workdir,
                                bias=args.bias, blocks_per_cycle=args.blocks_per_cycle)
    what = ("tile bias buffer" if args.bias else "tile double buffers"
            + (f" with B = {args.blocks_per_cycle}" if args.blocks_per_cycle > 1 else ""))
    print(f"{status} {what}, first {args.steps} cycles (bounded), "
          f"{workdir / 'tile_buffer.log'}")
    return 0 if status == "PROVED" else 1


if __name__ == "__main__":
    sys.exit(main())
