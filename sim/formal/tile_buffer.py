"""Bounded proof of the tile's double buffers: every block a lane computes with is the one the
tile must use, whatever the valid/ready/reset pattern.

Usage::

    python -m sim.formal.tile_buffer [--steps N] [--timeout S] [--workdir DIR]

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
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Assert, Elaboratable, Module, Mux, Signal

from .yosys import run_yosys

__all__ = ["PARAMS", "TileBufferHarness", "prove_tile_buffers", "reach"]

#: The tile the proof runs on.
PARAMS = {"x_bits": 2, "w_bits": 2, "exp_bits": 2, "block": 1, "k_len": 2, "rows": 1,
          "lanes": 1, "tokens": 2}
DEFAULT_STEPS = 16


class TileBufferHarness(Elaboratable):
    """The tile with counting payloads and the assertion (see the module notes).
    ``bound``: also assert that the lane takes at most ``bound`` blocks (for
    :func:`reach`, which expects that to fail)."""

    def __init__(self, component: type | None = None, *, bound: int | None = None) -> None:
        if component is None:
            from hw.tile import MXIntTile as component
        self.tile = component(**PARAMS)
        self.bound = bound
        self.w_valid, self.x_valid, self.o_ready = Signal(), Signal(), Signal()

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.tile = t = self.tile
        T, D, nb = PARAMS["tokens"], t.words, t.blocks
        w_bits, x_bits = len(t.w.payload.as_value()), len(t.x.payload.as_value())
        w_count, x_count = Signal(w_bits), Signal(x_bits)
        m.d.comb += [t.w.valid.eq(self.w_valid), t.w.payload.as_value().eq(w_count),
                     t.x.valid.eq(self.x_valid), t.x.payload.as_value().eq(x_count),
                     t.o.ready.eq(self.o_ready)]
        with m.If(t.w.valid & t.w.ready):
            m.d.sync += w_count.eq(w_count + 1)
        with m.If(t.x.valid & t.x.ready):
            m.d.sync += x_count.eq(x_count + 1)

        # What the lane must take next: word w_base + rw, block x_base + blk.
        lane_a, lane_b = t._dots[0].a, t._dots[0].b
        rw, blk, tok = Signal(range(D)), Signal(range(nb)), Signal(range(T))
        w_base, x_base = Signal(w_bits), Signal(x_bits)
        taken = Signal(8)
        with m.If(lane_a.valid & lane_a.ready):
            m.d.sync += taken.eq(taken + 1)
            m.d.sync += blk.eq(Mux(blk == nb - 1, 0, blk + 1))
            with m.If(rw == D - 1):  # a token's last block: the next token
                m.d.sync += [rw.eq(0), x_base.eq(x_base + nb)]
                with m.If(tok == T - 1):
                    m.d.sync += [tok.eq(0), w_base.eq(w_base + D)]
                with m.Else():
                    m.d.sync += tok.eq(tok + 1)
            with m.Else():
                m.d.sync += rw.eq(rw + 1)
        with m.If(lane_a.valid):
            m.d.comb += [
                Assert(lane_b.payload.as_value() == (w_base + rw)[:w_bits], "weight word"),
                Assert(lane_a.payload.as_value() == (x_base + blk)[:x_bits], "activation"),
                Assert(lane_b.valid, "lanes' inputs valid together"),
            ]
        if self.bound is not None:
            m.d.comb += Assert(taken <= self.bound, "bound")
        return m


def _sat(harness: TileBufferHarness, steps: int, workdir: Path, timeout: float) -> tuple:
    workdir.mkdir(parents=True, exist_ok=True)
    ports = [harness.w_valid, harness.x_valid, harness.o_ready]
    (workdir / "tile_buffer.il").write_text(rtlil.convert(harness, ports=ports, name="top"),
                                            encoding="utf-8")
    script = "\n".join([
        "read_rtlil tile_buffer.il", "hierarchy -check -top top", "proc -norom",
        "chformal -lower", "flatten", "memory", "opt",
        f"sat -seq {steps} -prove-asserts -set-init-zero -verify -show-inputs "
        "-dump_vcd tile_buffer.vcd"]) + "\n"
    (workdir / "tile_buffer.ys").write_text(script, encoding="utf-8")
    return run_yosys(workdir, "tile_buffer.ys", workdir / "tile_buffer.log", timeout)


def prove_tile_buffers(*, steps: int = DEFAULT_STEPS, timeout: float = 600.0,
                       workdir: Path, component: type | None = None) -> str:
    """``"PROVED"``, ``"FAILED"`` or ``"TIMEOUT"`` for the first ``steps`` cycles
    (``component``: a tile class other than :class:`hw.tile.MXIntTile`, e.g. a mutant)."""
    return _sat(TileBufferHarness(component), steps, workdir, timeout)[0]


def reach(*, taken: int, steps: int = DEFAULT_STEPS, timeout: float = 600.0,
          workdir: Path) -> bool:
    """Whether some trace of ``steps`` cycles has the lane take more than ``taken`` blocks
    (the assertion ``taken <= bound`` fails)."""
    return _sat(TileBufferHarness(bound=taken), steps, workdir, timeout)[0] == "FAILED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.formal.tile_buffer",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help="cycles from reset (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    if not 1 <= args.steps <= 200:
        parser.error(f"--steps must be from 1 to 200, not {args.steps}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tile_buffer_"))
    status = prove_tile_buffers(steps=args.steps, timeout=args.timeout, workdir=workdir)
    print(f"{status} tile double buffers, first {args.steps} cycles (bounded), "
          f"{workdir / 'tile_buffer.log'}")
    return 0 if status == "PROVED" else 1


if __name__ == "__main__":
    sys.exit(main())
