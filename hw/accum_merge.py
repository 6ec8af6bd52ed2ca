"""The combination of a lane's partial sums: ``B`` accumulator results of one row merged into
one, the tile's ``blocks_per_cycle`` (:class:`hw.tile.MXIntTile`)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.accumulator import MAX_ACC_WIDTH, PARTIAL_SUMS
from golden.format import check_int

from .accumulator import accum_output_layout
from .pipeline import StallPipeline

__all__ = ["MERGE_LATENCY", "MXIntAccumMerge"]

#: Register stages from ``i`` to ``o``: the largest exponent and the shift amounts, the
#: shifted partial sums, their sum.
MERGE_LATENCY = 3


class MXIntAccumMerge(wiring.Component):
    """``B`` partial sums of one group combined into the group's result, exactly the end of
    :func:`golden.accumulator.accumulate` with ``partial_sums=B``.

    Input ``i`` carries ``B`` accumulator results ``(A_q, E_q, nan_q)``
    (:func:`hw.accumulator.accum_output_layout`), partial sum ``q`` in element ``q``, all of
    the same group. With ``W = acc_width``:

    * ``E = max_q E_q``;
    * ``T = sum_q (A_q >> (E - E_q))``, ``>>`` an arithmetic (floor) shift, its amount
      clamped at ``W - 1`` (where a ``W``-bit value is already ``0`` or ``-1``); ``T`` is
      exact in ``W + ceil(log2 B)`` bits;
    * ``o.sum = T``, or ``2**(W-1) - 1`` / ``-2**(W-1)`` when ``T`` is above / below the
      ``W``-bit range; ``o.exponent = E``; ``o.nan = OR_q nan_q``.

    This equals golden's combination whenever no partial sum saturated (its ``A_q`` is then
    the partial sum itself); the tile only builds it where no partial sum can saturate
    (:class:`hw.tile.TileParams` checks ``acc_width``), since which bound a group takes when
    two partial sums leave the range on opposite sides depends on the order of their
    excursions, which their results do not carry.

    Three register stages (:attr:`latency`): ``E`` and the clamped amounts ``E - E_q``; the
    shifted ``A_q``; ``T`` (the range check is a multiplexer after that register). One
    input per cycle; the whole pipeline stalls on ``o.ready`` (:class:`hw.pipeline.
    StallPipeline`).

    Parameters
    ----------
    parts : int
        ``B``, 2 or 4.
    acc_width : int
        ``W``, 1 to 62.
    exp_bits : int
        Shared exponent bits of the operands, 2 to 8 (the results' exponents have one more).

    Members
    -------
    i : ``In(stream.Signature(data.ArrayLayout(accum_output_layout(...), parts)))``
    o : ``Out(stream.Signature(accum_output_layout(acc_width=W, exp_bits=...)))``

    Raises
    ------
    TypeError, ValueError
        Naming the parameter, its value and what is allowed.
    """

    def __init__(self, *, parts: int, acc_width: int, exp_bits: int) -> None:
        if isinstance(parts, bool) or parts not in PARTIAL_SUMS[1:]:
            raise ValueError(f"parts must be 2 or 4, not {parts!r}")
        self._parts = parts
        self._acc_width = check_int("acc_width", acc_width, 1, MAX_ACC_WIDTH)
        self._exp_bits = check_int("exp_bits", exp_bits, 2, 8)
        layout = accum_output_layout(acc_width=acc_width, exp_bits=exp_bits)
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(layout, parts))),
            "o": Out(stream.Signature(layout)),
        })

    parts = property(lambda self: self._parts, doc="``B``, partial sums per group.")
    acc_width = property(lambda self: self._acc_width, doc="``W``, bits of every sum.")
    latency = property(lambda self: MERGE_LATENCY,
                       doc="Register stages from ``i`` to ``o`` (3).")

    def elaborate(self, platform) -> Module:
        m = Module()
        B, W, e_bits = self.parts, self.acc_width, self._exp_bits + 1
        pipe = StallPipeline(m, inputs=[self.i], output=self.o, depth=MERGE_LATENCY)
        parts = [self.i.payload[q] for q in range(B)]

        # Stage 1: the largest exponent (a tree of compares) and each amount E - E_q,
        # clamped at W - 1.
        top = parts[0].exponent
        for part in parts[1:]:
            top = Mux(part.exponent > top, part.exponent, top)
        e_top = Signal(unsigned(e_bits))
        m.d.comb += e_top.eq(top)
        amount = unsigned(max(W - 1, 1).bit_length())
        nan = parts[0].nan
        for part in parts[1:]:
            nan = nan | part.nan
        e1 = pipe.register(e_top, "e1")
        nan1 = pipe.register(nan, "nan1")
        sums1, shifts1 = [], []
        for q, part in enumerate(parts):
            diff = e_top - part.exponent
            sums1.append(pipe.register(part.sum, f"sum{q}_1"))
            shifts1.append(pipe.register(Mux(diff >= W - 1, W - 1, diff), f"shift{q}_1",
                                         amount))

        # Stage 2: the floor shifts.
        e2, nan2 = pipe.register(e1, "e2"), pipe.register(nan1, "nan2")
        shifted = [pipe.register(a >> s, f"shifted{q}_2", signed(W))
                   for q, (a, s) in enumerate(zip(sums1, shifts1, strict=True))]

        # Stage 3: their sum, exact in W + log2(B) bits; out of the W-bit range it is
        # replaced by the bound of its side after the register.
        total = shifted[0]
        for value in shifted[1:]:
            total = total + value
        wide = signed(W + (B - 1).bit_length())
        t3 = pipe.register(total, "t3", wide)
        e3, nan3 = pipe.register(e2, "e3"), pipe.register(nan2, "nan3")
        lo, hi = -(1 << (W - 1)), (1 << (W - 1)) - 1
        m.d.comb += [
            self.o.payload.sum.eq(Mux(t3 > hi, hi, Mux(t3 < lo, lo, t3))),
            self.o.payload.exponent.eq(e3),
            self.o.payload.nan.eq(nan3),
        ]
        return m
