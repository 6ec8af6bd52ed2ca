"""Accumulator of MXINT and MXFP dot-product results over the blocks of one output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from amaranth.hdl import C, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.accumulator import (
    DEFAULT_GUARD_BITS,
    MAX_ACC_WIDTH,
    accum_in_width,
    accumulate_stream,
    check_acc_widths,
    default_acc_width,
    resolve_acc_width,
)

from .bitheap import PRIMITIVES, _ccu2c_chain
from .params import (
    a_bits_param,
    b_bits_param,
    block_param,
    check_element_scale,
    element_param,
    exp_bits_param,
    guard_bits_param,
    operands_name,
    out_ready_param,
    out_ready_suffix,
)
from .pipeline import output_stage
from .unit import Params, Unit, expose, param

__all__ = ["ALIGNS", "UNIT", "AccumParams", "MXIntAccumulator", "default_acc_width",
           "operands", "partial_sums", "resolve_acc_width"]
#: Register stages from ``i`` to ``o``.
LATENCY = 3
#: Where ``A`` is shifted when an input raises the running maximum: ``"loop"``, in the
#: accumulation loop; ``"stall"``, in stall cycles before the addition; ``"interleave"``, in
#: the first of two loop cycles shared by two interleaved partial sums; ``"lookahead"``,
#: deferred: the input is shifted left instead, and ``A`` only ever by one fixed amount.
ALIGNS = ("loop", "stall", "interleave", "lookahead")
DEFAULT_ALIGN = "stall"
#: ``align="stall"``: low bits of the shift of ``A`` done by the second stall cycle (0 to
#: 7); the first shifts by the rest, a multiple of 8.
LOW_SHIFT_BITS = 3
#: Low bits of the input's alignment shift done in stage 1 (0 to 3); stage 2 does the rest.
FINE_SHIFT_BITS = 2
#: ``align="interleave"``: low bits of the shift of ``A`` done in the first loop cycle (a
#: ``2**4``-to-1 multiplexer); the second cycle shifts by the rest, a multiple of 16, in front
#: of the adder: for ``W <= 32`` one select, which fits the adder's own LUT.
INTERLEAVE_LOW_SHIFT_BITS = 4
#: ``align="interleave"``: register stages from ``i`` to ``o`` (exponents, alignment, the
#: two stages of the loop, and the combination: operands, shift, addition).
INTERLEAVE_LATENCY = 7
#: ``align="lookahead"``: register stages from ``i`` to ``o`` (exponents, alignment, the
#: pending shift, two stages of the input's left shift, the loop, the carry resolved, two
#: stages of the output's right shift).
LOOKAHEAD_LATENCY = 9
#: ``align="lookahead"`` with ``primitives="ecp5"``: register stages from ``i`` to ``o``
#: (the input with its running maximum's compares, exponents, three of the input's
#: alignment, the pending shift, three of its left shift, the loop (four chains), two
#: waiting for the carry its drains lose, four resolving its pending carries, three of the
#: output's right shift): at most one carry
#: chain, one select or a four-input multiplexer behind each register, for the ECP5 clock
#: (docs/arithmetic.md).
LOOKAHEAD_ECP5_LATENCY = 18
#: ``align="lookahead"``: low bits of the input's left shift (and of the output's right
#: shift) done in their first stage; the second does the rest, a multiple of ``2**3``. With
#: ``primitives="ecp5"`` the output's low bits are done in two stages (two, then one).
LOOKAHEAD_FINE_BITS = 3
#: ``align="lookahead"``: copies of the whole-pipeline enable, each driving the registers of
#: one part of the pipeline (a shorter route than one net to all of them).
LOOKAHEAD_ENABLES = 10


def accum_input_layout(*, in_width: int, exp_bits: int) -> data.StructLayout:
    """A dot result plus the ``last`` flag that closes a group."""
    return data.StructLayout({
        "sum": signed(in_width),
        "exponent": unsigned(exp_bits + 1),
        "nan": unsigned(1),
        "last": unsigned(1),
    })


def accum_output_layout(*, acc_width: int, exp_bits: int) -> data.StructLayout:
    """The accumulated sum (``guard_bits`` fraction bits), maximum exponent, NaN flag."""
    return data.StructLayout({
        "sum": signed(acc_width),
        "exponent": unsigned(exp_bits + 1),
        "nan": unsigned(1),
    })


class MXIntAccumulator(wiring.Component):
    """Sum of dot-product results over the blocks of one output, aligned to the running
    maximum exponent.

    Input ``i`` carries the dot unit's ``sum`` (``S``, :attr:`in_width` bits: the width
    of :class:`hw.dot_product.MXIntDotProduct` for the same ``a_element``, ``b_element``,
    ``a_bits``, ``b_bits``, ``block``, :func:`golden.accumulator.accum_in_width`),
    ``exponent`` (``E = E_a + E_b``, ``exp_bits + 1`` bits), ``nan`` and ``last`` (closes
    the group of one output). With ``G = guard_bits``, ``W = acc_width`` and ``x = S << G``:

    * first input of a group: ``A = x``, ``E_max = E``, ``nan = nan_i``;
    * ``E > E_max``: ``A = (A >> (E - E_max)) + x``, ``E_max = E``;
    * ``E <= E_max``: ``A = A + (x >> (E_max - E))``;
    * ``>>`` is arithmetic (floor); shift amounts are clamped at the operand width, where
      the result is already ``0`` or ``-1``, so no width or shifter grows with
      ``2**exp_bits``; NaN is sticky over the group;
    * saturation is sticky: once ``A`` leaves ``[-2**(W-1), 2**(W-1) - 1]`` the group's
      result is the bound of the side it first left by, whatever follows.

    The ``last`` input's result is emitted as ``o``: ``sum = A`` or the bound (``W`` bits, ``G``
    fraction bits below the exponent's unit), ``exponent = E_max``, ``nan``. Its value is
    ``sum * 2**(exponent - G - 2*bias - f_a - f_b)`` (``f = m - 2`` for an MXINT operand,
    the element's ``bias + M - 1`` for a minifloat one:
    :func:`golden.dequant.accum_scale_offset`). Only the input width depends on the
    operands' formats; the arithmetic is the same for all. Without saturation
    the result is below the exact sum by less than ``(n - 1) * 2**(exponent - G)`` units
    (``n`` inputs) and exact when ``G`` covers the group's exponent spread; see
    :mod:`golden.accumulator`, which this unit equals bit for bit.

    Three register stages. Stage 1 keeps the running maximum ``E_max``, the NaN flag and
    the group's first-input flag (a one-compare recurrence of ``exp_bits + 1`` bits: every
    path from ``E_max`` is one short carry chain and a LUT or two) and registers both shift
    amounts, saturated where an arithmetic shift already leaves ``0`` or ``-1`` (at ``W - 1``
    for ``A``, ``in_width + G - 1`` for ``x``); it also shifts ``x`` by the low 2 bits of
    ``E_max - E``, which need no carry chain. Stage 2 registers the aligned input: ``x >>
    (E_max - E)`` (the rest of the shift) or ``x``. Stage 3 holds ``A`` in a ``W + 1``-bit
    register, exact while ``A`` is in range. ``align`` chooses where ``A`` is shifted when an
    input raises the running maximum:

    * ``"loop"``: stage 3 is ``A = (A >> acc_shift) + x_aligned`` (``A`` read as
      ``0`` for a group's first input), a ``W``-bit shifter and an adder in one loop.
      Throughput: one input per cycle.
    * ``"stall"`` (default): the shift leaves the loop. An input with ``E > E_max`` (not the
      first of its group) waits in stage 2 for two cycles while ``T = A >> (acc_shift -
      acc_shift mod 8)`` and then ``S = T >> (acc_shift mod 8)`` are registered (one cycle,
      ``S = A >> acc_shift``, when ``W <= 8``); stages 1 and 2 and ``i`` hold meanwhile
      (``i.ready`` is low). ``S`` is also cleared ahead of a group's first input, which
      reads it as its ``0``: the only loop is ``A = (S or A) + x_aligned``, one LUT in
      front of the adder, nothing behind it. Throughput: one input per cycle, except
      :meth:`stall_cycles` (2) bubbles per rise of the running maximum within a group.
    * ``"interleave"``: two interleaved partial sums, a DIFFERENT arithmetic
      (:func:`golden.accumulator.accumulate` with ``partial_sums=2``): input ``j`` of a
      group joins partial sum ``j mod 2``, aligned to that sum's own running maximum; the
      first excursion of either sum saturates the group; at the group's end the sum of the
      smaller maximum is floor-shifted to the larger and added (the bound of its side if
      that leaves the range). Same exponent as one sum, low bits may differ, error below
      the exact sum by less than ``(n - 1) * 2**(exponent - G)`` units as with one sum. The
      loop is C-slowed by two: ``S = A >> (acc_shift mod 16)``, then
      ``A = (S >> (acc_shift - acc_shift mod 16)) + x_aligned``, each partial sum moving
      every other input; three more stages combine the two sums. Throughput: one input per
      cycle whatever the data; :attr:`latency` 7.
    * ``"lookahead"``: the one-sum arithmetic above, one input per cycle whatever the data,
      :attr:`latency` 9 (18 with ``primitives="ecp5"``, 19 with ``out_ready="registered"``
      too). With ``T = x >> (E_max - E)``
      and ``d`` the rise of ``E_max``,
      ``A = floor(V / 2**p)`` for a wider ``V`` and a pending shift ``p`` kept by the
      narrow pipeline: each input adds ``T << p`` (shifted LEFT before the loop), ``p``
      grows by ``min(d, W - 1)`` and ``V`` is only ever shifted right by the fixed
      ``W - 1`` (when ``p + d >= W - 1``), a 2-to-1 select in front of the adder; ``V``
      has ``2W`` bits, its carry chain split at ``W - 1`` with a registered carry; ``A =
      V >> p`` is shifted out after the loop. With ``primitives="ecp5"`` the loop's adders
      are chains of CCU2C cells whose LUT4s hold the select (docs/arithmetic.md).

    Saturation is detected from the ``A`` register, out of the loop: a flag and a side
    remember an excursion of an earlier ``A`` of the group, and ``o.sum`` is ``A`` or the bound
    chosen by them and by the top two bits of ``A`` (a multiplexer after the registers).
    :attr:`latency` is 3, from the ``last`` input's transfer to ``o.valid``, for every input
    that does not raise the running maximum; with ``"stall"``, a ``last`` input that does
    arrives :meth:`stall_cycles` cycles later (it is a latency without rise stalls, which
    cost throughput). All registers load on ``advance = ~o.valid | o.ready`` (whole-pipeline
    stall, no skid buffer); with ``"stall"``, stages 1 and 2 also wait for the shift of ``A``.
    ``i`` is ready whenever ``o`` is empty or being taken (and no shift of ``A`` is under way);
    inputs stall while an unaccepted result is held. ``valid`` never depends on ``ready``.

    ``"stall"`` has data-dependent input back-pressure: units that run several accumulators
    in lockstep from one handshake (:class:`hw.linear.MXIntLinear`) need ``"loop"``,
    ``"interleave"`` or ``"lookahead"``.

    Parameters
    ----------
    a_element, b_element : str
        Element formats of the dot unit's operands: ``"int"`` (default, MXINT of
        ``a_bits``/``b_bits``) or an OCP MX minifloat, ``"e5m2"``, ``"e4m3"``,
        ``"e3m2"``, ``"e2m3"``, ``"e2m1"`` (not E5M2 x E5M2, whose dot results exceed 62
        bits); they may differ.
    a_bits, b_bits : int
        Mantissa widths of the dot unit's MXINT operands, 2 to 24 (None for a minifloat).
    exp_bits : int
        Shared exponent width of the operands, 2 to 8; 8 (E8M0) with a minifloat.
    block : int
        Elements per block of the dot unit, 1 to 1024.
    guard_bits : int
        ``G``, 0 to ``62 - in_width`` (default 8).
    acc_width : int or None
        ``W``, from ``in_width + guard_bits`` (one input always fits) to 62; default
        ``min(in_width + guard_bits + 8, 62)``.
    align : str
        ``"stall"`` (default), ``"loop"`` or ``"interleave"``: where ``A`` is shifted when an
        input raises the running maximum, and with ``"interleave"`` two partial sums (see
        above).
    primitives : str
        ``"generic"`` (default), or ``"ecp5"`` with ``align="lookahead"``: its loop built
        of Lattice ECP5 CCU2C cells.
    out_ready : str
        ``"direct"`` (default): ``o.ready`` reaches the enables combinationally;
        ``"registered"``: through a skid register at the output
        (:func:`hw.pipeline.output_stage`), one flip-flop; same latency and rate. With
        ``primitives="ecp5"`` (and ``align="lookahead"``) the enable copies and
        ``i.ready`` are then registers themselves, computed a cycle ahead (as
        :class:`hw.pipeline.StallPipeline`'s), so a unit in front reads a flip-flop as this
        unit's ready, and the input passes a relay register before the exponent compares
        (:attr:`latency` + 1), which then read no unit's skid multiplexer.

    Members
    -------
    i : ``In(stream.Signature(accum_input_layout(...)))``
    o : ``Out(stream.Signature(accum_output_layout(...)))``

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, *, a_element: str = "int", b_element: str = "int",
                 a_bits: int | None = None, b_bits: int | None = None, exp_bits: int = 8,
                 block: int, guard_bits: int = DEFAULT_GUARD_BITS,
                 acc_width: int | None = None, align: str = DEFAULT_ALIGN,
                 primitives: str = "generic", out_ready: str = "direct") -> None:
        self.params = AccumParams(a_element=a_element, b_element=b_element, a_bits=a_bits,
                                  b_bits=b_bits, exp_bits=exp_bits, block=block,
                                  guard_bits=guard_bits, acc_width=acc_width, align=align,
                                  primitives=primitives, out_ready=out_ready)
        self._in_width = accum_in_width(**operands(self.params))
        #: Simulate the CCU2C cells of ``primitives="ecp5"`` by their definition (a model
        #: of each cell's LUT4 and carry in plain logic), for the Amaranth simulator, which
        #: cannot run an instance; the generated Verilog always instantiates them.
        self.cell_models = False
        super().__init__({
            "i": In(stream.Signature(accum_input_layout(in_width=self._in_width,
                                                        exp_bits=exp_bits))),
            "o": Out(stream.Signature(accum_output_layout(acc_width=self.acc_width,
                                                          exp_bits=exp_bits))),
        })

    in_width = property(lambda self: self._in_width, doc="Width of the input ``sum``.")
    cell_library = property(
        lambda self: None if self.primitives == "generic" else self.primitives,
        doc="Family whose Yosys ``cells_sim.v`` a simulator needs, or None.")

    @property
    def latency(self) -> int:
        """Cycles from the transfer of a ``last`` input to its result being valid: 3 (when
        that input does not raise the running maximum, see :meth:`stall_cycles`), 7 with
        ``align="interleave"``, 9 with ``"lookahead"`` (18 with ``primitives="ecp5"``, 19
        with ``out_ready="registered"`` too: a relay stage ahead of stage 0)."""
        if self.align == "lookahead" and self.primitives == "ecp5":
            return LOOKAHEAD_ECP5_LATENCY + (self.out_ready == "registered")
        return {"interleave": INTERLEAVE_LATENCY,
                "lookahead": LOOKAHEAD_LATENCY}.get(self.align, LATENCY)

    def stall_cycles(self, rise: int) -> int:
        """Cycles an input that raises the running maximum by ``rise`` (not the first of its
        group) costs beyond its own: 0 for ``align="loop"``, ``"interleave"`` and
        ``"lookahead"``; for
        ``"stall"``, 2 (1 when ``W <= 8``), whatever the size of the rise."""
        if self.align != "stall" or rise <= 0:
            return 0
        return 2 if (self.acc_width - 1).bit_length() > LOW_SHIFT_BITS else 1

    def elaborate(self, platform) -> Module:
        if self.align == "interleave":
            return self._elaborate_interleave()
        if self.align == "lookahead":
            return self._elaborate_lookahead()
        m = Module()
        o = output_stage(m, self.o, self.out_ready)
        w, g = self.acc_width, self.guard_bits
        ew = self.exp_bits + 1

        # Whole-pipeline stall (as hw/pipeline.py, but o.valid marks `last` inputs only):
        # every register loads on `advance`; state registers also need valid data. With
        # align="stall", `busy` (stage 3 is shifting A for the input in stage 2) also holds
        # stages 1 and 2 and the input: they load on `move`.
        advance = Signal()
        busy = Signal()
        move = Signal()
        fire = Signal()
        # Each is written out from registers and ports rather than from one another, so
        # that each is one LUT deep (they drive every register's enable).
        m.d.comb += [
            advance.eq(~o.valid | o.ready),
            move.eq(~busy & (~o.valid | o.ready)),
            self.i.ready.eq(move),
            fire.eq(self.i.valid & ~busy & (~o.valid | o.ready)),
        ]

        register = _register(m, move)

        # Stage 1, exponents: the running maximum E_max and the NaN flag are a short
        # recurrence of their own. E - E_max and E_max - E are each an (e+2)-bit subtraction
        # whose sign bit is the compare, and every path from E_max is that carry chain and
        # at most a LUT or two. `first` marks an input that opens a group; the state is then
        # ignored.
        p = self.i.payload
        # Stage 1 of the two shifts (A's by E - E_max, the input's by E_max - E), their
        # amounts clamped without a compare, and the input's shift by the low bits of
        # E_max - E (see _shift_amounts); the bits above the input's amount are ORed in
        # stage 2.
        shifts, first_1, emax_1, nan_1 = _running_maximum(m, p, fire, register, register,
                                                          ew=ew, w=w, g=g)
        up_1 = shifts.up
        valid_1 = register(fire, "valid_s1")
        last_1 = register(p.last, "last_s1")

        # Stage 2: the input aligned to the running maximum, x >> (E_max - E) or x.
        x_2, acc_shift_2 = _align(m, register, shifts, g=g)
        first_2, emax_2, nan_2, valid_2, last_2 = _ride(
            register, (first_1, emax_1, nan_1, valid_1, last_1), "2")

        # Stage 3: A keeps W + 1 bits: while it is in the W-bit range both terms of the sum
        # fit W bits, so the sum is exact in W + 1 bits. Saturation is sticky
        # (golden.accumulator) and detected out of the loop, from the register: `hit` records
        # an excursion of an earlier A of the group and `high` its side; once set, A may wrap
        # and carries no meaning.
        acc = Signal(signed(w + 1))
        shifted = Signal(signed(w))
        if self.align == "loop":
            # The only loop: A = (A >> acc_shift) + x_aligned, with A read as 0 for the first
            # input of a group, one shifter and one adder.
            m.d.comb += shifted.eq(Mux(first_2, 0, acc[:w].as_signed() >> acc_shift_2))
        else:
            # The shift of A leaves the loop. An input that raises the maximum waits in
            # stage 2 for two cycles: T = A >> (acc_shift - acc_shift mod 8), then
            # S = T >> (acc_shift mod 8) (floor shifts compose, so S = A >> acc_shift); the
            # addition then reads S instead of A. Each step is one multiplexer from one
            # register into another. S is also cleared in every cycle in which a group's
            # first input waits in stage 1 and no second step is under way: the input in
            # stage 2 is then the previous group's last, whose S (if it rose) is written by
            # its second step and read in the next cycle, before a clear takes effect; the
            # first input reads S = 0 when it reaches stage 3. So the loop is
            # A = (S or A) + x_aligned, one LUT with one select in front of the adder and
            # nothing behind it. (Up to W = 8 the shift fits the second step alone, which
            # then reads A: one stall cycle.)
            lo_bits = min(LOW_SHIFT_BITS, len(acc_shift_2))
            two_steps = len(acc_shift_2) > lo_bits
            use_s = register((valid_1 & up_1) | first_1, "use_shifted_s2")
            # `step_low` is set for both steps (`step_high` first, then alone), so it is
            # `busy` by itself. Both load as stage 2 does and clear as their step is done;
            # while busy, o is empty (the group's previous input was not `last`), so
            # `advance` is high and the steps need not wait for it.
            step_lo = Signal(name="shift_low_s2")
            m.d.comb += busy.eq(step_lo)
            s = Signal(signed(w), name="acc_shifted")
            source = acc[:w]
            if two_steps:
                step_hi = Signal(name="shift_high_s2")
                m.d.sync += [step_hi.eq(move & valid_1 & up_1),
                             step_lo.eq(Mux(move, valid_1 & up_1, step_hi))]
                source = Signal(signed(w), name="acc_shifted_high")
                with m.If(step_hi):
                    m.d.sync += source.eq(mux_shift(acc[:w], list(acc_shift_2[lo_bits:]),
                                                    1 << lo_bits))
            else:
                step_hi = C(0, 1)
                m.d.sync += step_lo.eq(move & valid_1 & up_1)
            with m.If(step_lo & ~step_hi):
                m.d.sync += s.eq(mux_shift(source, list(acc_shift_2[:lo_bits])))
            with m.Elif(valid_1 & first_1):
                m.d.sync += s.eq(0)
            m.d.comb += shifted.eq(Mux(use_s, s, acc[:w].as_signed()))
        acc_out = _out_of_range(m, acc, "acc_out")
        hit = Signal()
        high = Signal()
        with m.If(move & valid_2):
            m.d.sync += [
                acc.eq(shifted + x_2),
                hit.eq(~first_2 & (hit | acc_out)),
                high.eq(Mux(hit, high, ~acc[w])),
            ]

        # Output: A itself, or the bound of the side it first left the range by. The
        # registers only move on `advance`, so o holds while stalled.
        _saturated_output(m, o.payload.sum, acc, acc_out, hit, high, name="clamp_high")
        with m.If(advance):
            m.d.sync += [
                o.valid.eq(valid_2 & last_2 & ~busy),
                o.payload.exponent.eq(emax_2),
                o.payload.nan.eq(nan_2),
            ]
        return m

    def _elaborate_interleave(self) -> Module:
        m = Module()
        o = output_stage(m, self.o, self.out_ready)
        w, g = self.acc_width, self.guard_bits
        ew = self.exp_bits + 1

        # Whole-pipeline stall on the output only: no stall of its own, so i.ready is
        # `advance` and one input per cycle is taken whatever the data.
        advance = Signal()
        fire = Signal()
        m.d.comb += [
            advance.eq(o.ready | ~o.valid),
            self.i.ready.eq(advance),
            fire.eq(self.i.valid & (~o.valid | o.ready)),
        ]

        register = _register(m, advance)

        # Stage 1, exponents. Input j of a group joins partial sum j mod 2; `e_cur` is the
        # running maximum of the partial sum the next input joins, `e_oth` the other's, and
        # the two swap on every input, so the recurrence is today's (one compare and a
        # multiplexer) with a plain register behind it. `first` marks a group's first input,
        # `second` its second: either opens its partial sum (`fresh`), whose state is then
        # ignored.
        p = self.i.payload
        e_cur = Signal(unsigned(ew))
        e_oth = Signal(unsigned(ew))
        nan = Signal()
        first = Signal(init=1)
        second = Signal()
        fresh = Signal()
        m.d.comb += fresh.eq(first | second)
        rise, fall, up, down = _compare_exponent(m, p.exponent, e_cur, fresh)
        e_new = Signal(unsigned(ew))
        m.d.comb += e_new.eq(Mux(up | fresh, p.exponent, e_cur))
        with m.If(fire):
            m.d.sync += [
                e_cur.eq(e_oth),
                e_oth.eq(e_new),
                nan.eq((nan & ~first) | p.nan),
                first.eq(p.last),
                second.eq(first & ~p.last),
            ]

        # The shift amounts and the input's alignment to its partial sum's maximum, as with
        # one sum (the bits above the input's shift are ORed in stage 1, to shorten stage 2).
        shifts = _shift_amounts(m, register, p, e_cur, rise, fall, up, down, w=w, g=g,
                                wide_in_stage_1=True)
        abits = len(shifts.rise)
        fresh_1 = register(fresh, "fresh_s1")
        first_1 = register(first, "first_s1")
        # For the combination at the group's end: this input's partial maximum and the
        # other's (meaningless for a group's first input, which has no other).
        own_1 = register(e_new, "e_own_s1")
        other_1 = register(e_oth, "e_other_s1")
        nan_1 = register((nan & ~first) | p.nan, "nan_s1")
        valid_1 = register(fire, "valid_s1")
        last_1 = register(p.last, "last_s1")

        # Stage 2: the aligned input and the shift of its partial sum, as with one sum; the
        # two partial maxima compared, both ways.
        x_2, acc_shift_2 = _align(m, register, shifts, g=g)
        own_minus = Signal(signed(ew + 1))
        other_minus = Signal(signed(ew + 1))
        m.d.comb += [own_minus.eq(own_1 - other_1), other_minus.eq(other_1 - own_1)]
        other_high_2 = register(~first_1 & own_minus[-1], "other_high_s2")
        own_minus_2 = register(own_minus[:ew], "own_minus_s2")
        other_minus_2 = register(other_minus[:ew], "other_minus_s2")
        own_2 = register(own_1, "e_own_s2")
        other_2 = register(other_1, "e_other_s2")
        fresh_2 = register(fresh_1, "fresh_s2")
        first_2 = register(first_1, "first_s2")
        nan_2 = register(nan_1, "nan_s2")
        valid_2 = register(valid_1, "valid_s2")
        last_2 = register(last_1, "last_s2")

        # Stages 3 and 4, the loop, C-slowed by two: S = A >> acc_shift (0 for an input that
        # opens its partial sum), then A = S + x_aligned. The two registers hold the two
        # partial sums, one each, and an input reads in A the one it joins, written by the
        # input two before it. That holds only while the loop moves with the inputs, so
        # it moves (`ring`) when an input enters it, or to let a group's last input out;
        # any other input waits in stage 3 for its successor, which the open group must
        # bring. Bubbles thus never split a pair, and a group's first two inputs ignore A,
        # whatever a flush left there. A keeps W + 1 bits, exact while both terms are in
        # range (as with one sum).
        valid_3 = Signal(name="valid_s3")
        last_3 = Signal(name="last_s3")
        ring = Signal()
        m.d.comb += ring.eq(advance & (valid_2 | (valid_3 & last_3)))
        # The shift is split: stage 3 shifts by acc_shift mod 16 (a 16-to-1 multiplexer per
        # bit), stage 4 by the rest, a multiple of 16, in front of the adder (for W <= 32 one
        # select, which the adder's LUT absorbs); floor shifts compose.
        acc = Signal(signed(w + 1))
        lo_bits = min(INTERLEAVE_LOW_SHIFT_BITS, len(acc_shift_2))
        s_reg = register(Mux(fresh_2, 0, mux_shift(acc[:w], list(acc_shift_2[:lo_bits]))),
                         "acc_shifted", signed(w), enable=ring)
        coarse_3 = (register(acc_shift_2[lo_bits:], "acc_shift_high_s3", enable=ring)
                    if len(acc_shift_2) > lo_bits else None)
        x_3 = register(x_2, "x_aligned_s3", enable=ring)
        with m.If(ring):
            m.d.sync += [valid_3.eq(valid_2), last_3.eq(last_2)]
        first_3 = register(first_2, "first_s3", enable=ring)
        nan_3 = register(nan_2, "nan_s3", enable=ring)
        # The combination's shift, clamped as A's, and the group's maximum.
        amount = Signal(unsigned(ew))
        m.d.comb += amount.eq(Mux(other_high_2, other_minus_2, own_minus_2))
        comb_shift_3 = register(amount[:abits] | Mux(amount[abits:] != 0, -1, 0)
                                if abits < ew else amount[:abits],
                                "comb_shift_s3", unsigned(abits), enable=ring)
        other_high_3 = register(other_high_2, "other_high_s3", enable=ring)
        e_group_3 = register(Mux(other_high_2, other_2, own_2), "e_group_s3", enable=ring)

        shifted = (mux_shift(s_reg, list(coarse_3), 1 << lo_bits) if coarse_3 is not None
                   else s_reg)
        with m.If(ring):
            m.d.sync += acc.eq(shifted + x_3)
        # A before this input's addition: the other partial sum, final when this input is
        # its group's last (0 when the input is its group's first, which has no other).
        other_4 = register(Mux(first_3, 0, acc[:w]), "other_sum_s4", signed(w), enable=ring)
        valid_4 = register(ring & valid_3, "valid_s4")
        last_4 = register(last_3, "last_s4", enable=ring)
        first_4 = register(first_3, "first_s4", enable=ring)
        nan_4 = register(nan_3, "nan_s4", enable=ring)
        comb_shift_4 = register(comb_shift_3, "comb_shift_s4", enable=ring)
        other_high_4 = register(other_high_3, "other_high_s4", enable=ring)
        e_group_4 = register(e_group_3, "e_group_s4", enable=ring)

        # Stage 5: saturation (sticky over the group, from A after each input, the first
        # excursion's side) and the combination's operands: the partial sum of the larger
        # maximum, and the other (0 for a group of one input) floor-shifted to it, in two
        # steps as A (a shifter of its own: A's is busy with the next group): stage 5 by
        # the multiple of 16, stage 6 by the rest. A still holds the input's sum: only a
        # later input's move changes it.
        excursion = Signal()
        m.d.comb += excursion.eq(acc[w] ^ acc[w - 1])
        hit = Signal()
        high = Signal()
        with m.If(advance & valid_4):
            m.d.sync += [
                hit.eq((hit & ~first_4) | excursion),
                high.eq(Mux(hit & ~first_4, high, ~acc[w])),
            ]
        own = acc[:w].as_signed()
        high_5 = register(Mux(other_high_4, other_4, own), "comb_high_s5", signed(w))
        low = Mux(other_high_4, own, other_4).as_signed()
        if len(comb_shift_4) > lo_bits:
            low = mux_shift(low, list(comb_shift_4[lo_bits:]), 1 << lo_bits)
        low_5 = register(low, "comb_low_s5", signed(w))
        comb_shift_5 = register(comb_shift_4[:lo_bits], "comb_shift_s5")
        valid_5 = register(valid_4, "valid_s5")
        last_5 = register(last_4, "last_s5")
        nan_5 = register(nan_4, "nan_s5")
        e_group_5 = register(e_group_4, "e_group_s5")
        high_6 = register(high_5, "comb_high_s6")
        low_6 = register(mux_shift(low_5, list(comb_shift_5)), "comb_low_s6", signed(w))
        # (the sticky pair already holds the excursion of the input now in stage 5)
        hit_6 = register(hit, "hit_s6")
        side_6 = register(high, "high_s6")
        valid_6 = register(valid_5, "valid_s6")
        last_6 = register(last_5, "last_s6")
        nan_6 = register(nan_5, "nan_s6")
        e_group_6 = register(e_group_5, "e_group_s6")

        # Stage 7: the sum of the two (W + 1 bits, exact), then the output: the bound of a
        # saturated group's first excursion, else of the sum's side if it is out of range,
        # else the sum (a multiplexer after the registers).
        total = register(high_6 + low_6, "comb_sum", signed(w + 1))
        hit_7 = register(hit_6, "hit_s7")
        side_7 = register(side_6, "high_s7")
        total_out = _out_of_range(m, total, "total_out")
        _saturated_output(m, o.payload.sum, total, total_out, hit_7, side_7,
                          name="bound_high")
        with m.If(advance):
            m.d.sync += [
                o.valid.eq(valid_6 & last_6),
                o.payload.exponent.eq(e_group_6),
                o.payload.nan.eq(nan_6),
            ]
        return m

    def _elaborate_lookahead(self) -> Module:
        if self.primitives == "ecp5":
            return _lookahead_ecp5(self)
        m = Module()
        o, w, g, ew, s_fix, pbits, fb, vw, hw_, out_valid, adv, held = \
            _lookahead_frame(self, m)
        advance = adv[0]
        fire = Signal()
        m.d.comb += [
            self.i.ready.eq(advance),
            fire.eq(self.i.valid & adv[1]),
        ]
        register = _register(m, advance)
        front, align_, left, shift, back = (_register(m, adv[k]) for k in (1, 2, 3, 4, 7))

        # Stages 1 and 2 as with one sum: the running maximum, T = x >> (E_max - E) and
        # d = E - E_max (saturated at all ones when E > E_max, else 0).
        p = self.i.payload
        shifts, first_1, emax_1, nan_1 = _running_maximum(m, p, fire, front, register,
                                                          ew=ew, w=w, g=g)
        valid_1 = register(fire, "valid_s1")
        last_1 = register(p.last, "last_s1")
        # The input's alignment in two stages (x_3 is only needed at stage 4): stage 2
        # shifts by the low selects, stage 3 by the top one and takes T or x.
        x_2, x_rest_2, down_2, sum_2, x_stride = _align_split(m, align_, shifts)
        # d clamped at S, and d - S, registered for stage 3's recurrence.
        rise_1 = Signal(unsigned(len(shifts.rise)))
        m.d.comb += rise_1.eq(Mux(shifts.up, shifts.rise | Mux(shifts.rise_wide, -1, 0), 0))
        d_2 = register(Mux(rise_1 >= s_fix, s_fix, rise_1), "rise_clamped_s2",
                       unsigned(pbits + 1))
        dm_2 = register(Mux(rise_1 >= s_fix, 0, rise_1 - s_fix), "rise_minus_s2",
                        signed(pbits + 2))
        first_2, emax_2, nan_2, valid_2, last_2 = _ride(
            register, (first_1, emax_1, nan_1, valid_1, last_1), "2")

        # Stage 3, the pending shift: a recurrence of pbits bits, moved by valid inputs
        # only; p + d and p + d - S side by side, the sign of the second chooses (one short
        # carry chain and a multiplexer). A group's first input opens at p = 0 (A = x).
        pending = Signal(unsigned(pbits), name="pending_s3")
        total = Signal(unsigned(pbits + 1))
        total_m = Signal(signed(pbits + 2))
        drain = Signal()
        m.d.comb += [
            total.eq(pending + d_2),
            total_m.eq(pending + dm_2),
            drain.eq(~first_2 & ~total_m[-1]),
        ]
        # A copy of p for the left shift's multiplexers (its own enable: not merged).
        pending_shift = Signal(unsigned(pbits), name="pending_shift_s3")
        with m.If(advance & valid_2):
            m.d.sync += pending.eq(Mux(first_2, 0, Mux(drain, total_m, total)))
        with m.If(adv[3] & valid_2):
            m.d.sync += pending_shift.eq(Mux(first_2, 0, Mux(drain, total_m, total)))
        drain_3 = register(drain, "drain_s3")
        x_unshifted = Signal(signed(len(x_2)))
        m.d.comb += x_unshifted.eq(sum_2 << g)
        x_3 = align_(Mux(down_2, mux_shift(x_2, x_rest_2, x_stride), x_unshifted),
                     "x_aligned_s3", signed(len(x_2)))
        first_3, emax_3, nan_3, valid_3, last_3 = _ride(
            register, (first_2, emax_2, nan_2, valid_2, last_2), "3")

        # Stages 4 and 5: Y = T << p, by p mod 2**fb, then by the rest (each a multiplexer
        # per bit); Y's bits below p are 0, so the loop never changes bits below p.
        u_4 = left(_mux_shift_left(x_3, list(pending_shift[:fb]), 1,
                                   len(x_3) + (1 << fb) - 1), "y_fine_s4")
        coarse_4 = left(pending_shift[fb:], "pending_high_s4") if pbits > fb else None
        pend_4 = register(pending, "pending_s4")
        drain_4 = register(drain_3, "drain_s4")
        first_4, emax_4, nan_4, valid_4, last_4 = _ride(
            register, (first_3, emax_3, nan_3, valid_3, last_3), "4")
        y_5 = shift(_mux_shift_left(u_4, list(coarse_4) if coarse_4 is not None else [],
                                    1 << fb, vw), "y_s5")
        pend_5 = register(pend_4, "pending_s5")
        drain_5 = shift(drain_4, "drain_s5")
        first_5, emax_5, nan_5, valid_5, last_5 = _ride(
            register, (first_4, emax_4, nan_4, valid_4, last_4), "5")

        # Stage 6, the loop. V = L + 2**S * (H + c): L the low S bits, H the high W + 1
        # (signed), c the carry out of L's adder, registered (the chain is split at S).
        # Without a drain: L' + 2**S c' = L + Y_lo, H' = H + Y_hi + c. With a drain (V >> S
        # = H + c, exact as L < 2**S, and H = H[:S] + 2**S (H >> S)): L' + 2**S c' = H[:S]
        # + Y_lo + c, H' = (H >> S) + Y_hi. Each bit of either adder is a select of two
        # register bits in front of its carry chain.
        lo = Signal(unsigned(s_fix), name="acc_low")
        hi = Signal(signed(hw_), name="acc_high")
        carry = Signal(name="acc_carry")
        hi_drained = hi >> s_fix
        # Each enable and clear of the loop one LUT from its copy's register (the clear,
        # valid and last, registered at stage 5).
        clear_5 = register(valid_4 & last_4, "clear_s5")
        add_lo, add_hi, clear_lo, clear_hi, out_lo, out_hi = _loop_enables(
            m, held, o.ready, valid_5, clear_5)
        # A group's first input reads 0: a third input of each select.
        lo_src = Signal(unsigned(s_fix))
        hi_src = Signal(signed(hw_))
        m.d.comb += [
            lo_src.eq(Mux(first_5, 0, Mux(drain_5, hi[:s_fix], lo))),
            hi_src.eq(Mux(first_5, 0, Mux(drain_5, hi_drained, hi))),
        ]
        lo_sum = Signal(unsigned(s_fix + 1))
        m.d.comb += lo_sum.eq(lo_src + y_5[:s_fix] + (carry & drain_5 & ~first_5))
        with m.If(add_lo):
            m.d.sync += [lo.eq(lo_sum[:s_fix]), carry.eq(lo_sum[s_fix])]
        with m.If(add_hi):
            m.d.sync += hi.eq(hi_src + y_5[s_fix:].as_signed()
                              + (carry & ~drain_5 & ~first_5))
        lo_6, carry_6, hi_6 = lo, carry, hi
        pend_6 = register(pend_5, "pending_s6")
        first_6, emax_6, nan_6, valid_6, last_6 = _ride(
            register, (first_5, emax_5, nan_5, valid_5, last_5), "6")

        # Stage 7: the carry resolved (H + c, in W + 1 bits while A_i is in range or has
        # just left it); stages 8 and 9: A = V >> p, W + 1 bits, coarse then fine.
        hres_7 = back(hi_6 + carry_6, "acc_high_resolved", signed(hw_))
        lo_7 = back(lo_6, "acc_low_s7")
        pend_7 = register(pend_6, "pending_s7")
        first_7, emax_7, nan_7, valid_7, last_7 = _ride(
            register, (first_6, emax_6, nan_6, valid_6, last_6), "7")
        value = Cat(lo_7, hres_7).as_signed()
        keep = w + (1 << fb)
        if pbits > fb:
            value = mux_shift(value, list(pend_7[fb:]), 1 << fb)
        v_8 = back(value[:keep], "acc_coarse_s8", signed(keep))
        fine_8 = register(pend_7[:fb], "pending_low_s8")
        first_8, emax_8, nan_8, valid_8, last_8 = _ride(
            register, (first_7, emax_7, nan_7, valid_7, last_7), "8")

        # Stage 9: A (W + 1 bits, exact while in range or at its first excursion) and the
        # sticky saturation, as with one sum.
        _lookahead_result(m, o, adv, out_valid,
                          v_8, fine_8, (first_8, emax_8, nan_8, valid_8, last_8))
        return m


class _LookaheadFrame(NamedTuple):
    """What both builds of ``align="lookahead"`` share (:func:`_lookahead_frame`)."""

    o: object
    w: int
    g: int
    ew: int
    s_fix: int
    pbits: int
    fb: int
    vw: int
    hw_: int
    out_valid: Signal
    adv: list
    held: list


def _lookahead_frame(unit: MXIntAccumulator, m: Module) -> _LookaheadFrame:
    """The output stage, the widths and the enable copies of ``align="lookahead"``."""
    o = output_stage(m, unit.o, unit.out_ready)
    w, g = unit.acc_width, unit.guard_bits
    ew = unit.exp_bits + 1
    # The arithmetic (golden.accumulator, one sum): with T_i = x_i >> (M_i - E_i) and
    # d_i = M_i - M_(i-1), A_i = (A_(i-1) >> d_i) + T_i; since floor((floor(y) + n) / m)
    # = floor((y + n) / m) for integers n, m > 0, A_i = floor(V_i / 2**p_i) for ANY
    # p_i >= 0 and V_i = floor(V_(i-1) / 2**s_i) + (T_i << p_i), p_i = p_(i-1) + d_i -
    # s_i >= 0. So the loop adds the input pre-shifted LEFT by the pending shift p, and
    # shifts right only by s = 0 or the fixed S = W - 1 (a 2-to-1 multiplexer in front
    # of the adder), on a schedule of the narrow pipeline: s = S when p + d >= S.
    # While A_(i-1) is in the W-bit range, A >> d is its sign for every d >= W - 1, so
    # d is clamped at W - 1, and p stays in 0 .. P = W - 2. V has W + 1 + P bits (A
    # with its excursion bit, the pending bits below it) plus one guard bit: 2W.
    s_fix = w - 1
    p_max = s_fix - 1
    pbits = max(1, p_max.bit_length())
    fb = min(LOOKAHEAD_FINE_BITS, pbits)
    vw = 2 * w
    hw_ = vw - s_fix          # the high part: W + 1 bits

    # Whole-pipeline stall on the output only: no stall of its own. Its enable has
    # copies (see _advance_copies), each driving the registers of one part: 0 the
    # narrow control, 1 the running maximum and stage 1, 2 the input's alignment, 3
    # and 4 the left shift, 5 and 6 the loop's L and H, 7 stages 7 to 9, 8 and 9 the
    # capture of the loop's L and H.
    out_valid = Signal()
    adv, held = _advance_copies(m, o, out_valid, LOOKAHEAD_ENABLES)
    return _LookaheadFrame(o, w, g, ew, s_fix, pbits, fb, vw, hw_, out_valid, adv, held)


def _lookahead_ecp5(unit: MXIntAccumulator) -> Module:
    """``align="lookahead"`` with ``primitives="ecp5"`` (:attr:`latency` 18, 19 with
    ``out_ready="registered"``, whose input passes a relay register first): the
    arithmetic of :meth:`MXIntAccumulator._elaborate_lookahead`, built for the ECP5 clock
    (docs/arithmetic.md): every register of a critical path driven by a LUT or carry
    chain of its own, and at most one carry chain, one select or a four-input
    multiplexer per bit behind each register."""
    m = Module()
    o, w, g, ew, s_fix, pbits, fb, vw, hw_, out_valid, adv, held = \
        _lookahead_frame(unit, m)
    if unit.out_ready == "registered":
        # Every enable copy, and the input's ready, a register of its own, equal in every
        # cycle to ``~(o.valid & skid_valid)`` (o.ready is the skid's ~valid,
        # hw.pipeline.output_stage): each computed a cycle ahead from the next values of
        # o.valid (loaded on copy 0) and of the skid's valid bit, reading its own value
        # (so synthesis keeps the copies apart), as hw.pipeline.StallPipeline's registered
        # enable. No LUT then stands between an enable's flip-flop and the enables it
        # drives, and a unit in front reads a flip-flop as this unit's ready.
        skid_next = (~o.ready | o.valid) & ~unit.o.ready
        # out_valid (valid & last of stage 9) as one register of its own (below).
        out_valid_r = Signal(name="out_valid_ahead")

        def ahead(name: str) -> Signal:
            copy = Signal(name=name, init=1)
            m.d.sync += copy.eq(~(Mux(copy, out_valid_r, o.valid) & skid_next))
            return copy

        adv = [ahead("advance_r" + (str(k) if k else "")) for k in range(len(adv))]
        held = None
        m.d.comb += unit.i.ready.eq(ahead("in_ready"))
    else:
        m.d.comb += unit.i.ready.eq(adv[0])
    advance = adv[0]
    register = _register(m, advance)
    front, align_, left, shift, back = (_register(m, adv[k]) for k in (1, 2, 3, 4, 7))

    # Stage 0: the input registered, beside the compares that choose E_max's next value
    # (see _running_maximum's ``ahead``). Stages 1 and 2 as with one sum: the running
    # maximum, T = x >> (E_max - E) and d = E - E_max (saturated at all ones when E >
    # E_max, else 0).
    port, port_valid = unit.i.payload, unit.i.valid
    if unit.out_ready == "registered":
        # A relay stage ahead of stage 0 (latency + 1): the compares read a register,
        # not the port, which a unit in front drives from its skid multiplexer.
        port = Signal(unit.i.payload.shape(), name="in_relay")
        port_valid = Signal(name="valid_relay")
        with m.If(adv[1]):
            m.d.sync += [port.eq(unit.i.payload), port_valid.eq(unit.i.valid)]
    q = Signal(unit.i.payload.shape(), name="in_s0")
    q_valid = Signal(name="valid_s0")
    with m.If(adv[1]):
        m.d.sync += [q.eq(port), q_valid.eq(port_valid)]
    fire = Signal(name="fire_s0")
    m.d.comb += fire.eq(q_valid & adv[1])
    p = q
    shifts, first_1, emax_1, nan_1, fine_1 = _running_maximum(
        m, p, fire, front, register, ew=ew, w=w, g=g, emax_direct=True,
        ahead=(port.exponent, q_valid))
    valid_1 = register(fire, "valid_s1")
    last_1 = register(p.last, "last_s1")
    # The input's alignment in three steps of at most four inputs per bit, on the guess
    # that E < E_max (no compare behind any select): stage 2 shifts by the low bits of
    # E_max - E, stage 3 by the next two selects, stage 3b by the rest or takes x.
    lo = shifts.lo
    sel_2 = align_(Cat(*shifts.x_select), "x_select_s2",
                   unsigned(len(shifts.x_select)))
    x_2 = align_(mux_shift((shifts.sum << g).as_signed(), list(fine_1)), "x_fine_s2",
                 signed(len(shifts.sum) + g))
    x_2b = align_(mux_shift(x_2, list(sel_2[:2]), 1 << lo), "x_mid_s3",
                  signed(len(x_2)))
    top_2b = align_(sel_2[2:], "x_select_top_s3") if len(sel_2) > 2 else None
    # The input as it came and ``down`` ride along: the last step takes x unless E < E_max.
    sum_2b = align_(align_(shifts.sum, "sum_s2"), "sum_s3")
    down_2b = align_(align_(shifts.down, "x_down_s2"), "x_down_s3")
    # d clamped at S, and S - d, registered for stage 3's recurrence. When S is all ones
    # in the width of d (W a power of two) the clamp is d itself and S - d its complement:
    # a LUT per bit behind stage 1's registers, no carry chain.
    rise_1 = Signal(unsigned(len(shifts.rise)))
    m.d.comb += rise_1.eq(Mux(shifts.up, shifts.rise | Mux(shifts.rise_wide, -1, 0), 0))
    if s_fix == (1 << len(rise_1)) - 1:
        d_next, d_shape = rise_1, unsigned(pbits + 1)
        dm_next, dm_shape = ~rise_1, unsigned(len(rise_1))
    else:
        d_next, d_shape = Mux(rise_1 >= s_fix, s_fix, rise_1), unsigned(pbits + 1)
        dm_next, dm_shape = Mux(rise_1 >= s_fix, 0, s_fix - rise_1), unsigned(pbits + 1)
    d_2 = register(d_next, "rise_clamped_s2", d_shape)
    early = held is None
    if early:
        # With out_ready="registered" the pending shift's recurrence runs a stage early,
        # as the input moves from stage 2 to 2b, and unresolved: its registers hold p + d
        # and p + d - S (low bits) and the sign of p + d - S, and p is their select,
        # made in the LUT4s of the next input's two CCU2C chains (p + d and p + ~(S - d)
        # + 1), whose sums go straight into those registers. A group's first input
        # clears them (a synchronous reset: p = 0). Each of the recurrence's paths is then
        # a register, one routed hop and a short chain into a packed register; p is
        # resolved (a LUT) into stage 3's registers, the left shift's copy among them.
        ndm_2 = register(~dm_next, "rise_rest_inv_s2", dm_shape)
    else:
        dm_2 = register(dm_next, "rise_rest_s2", dm_shape)
    first_2, emax_2, nan_2, valid_2, last_2 = _ride(
        register, (first_1, emax_1, nan_1, valid_1, last_1), "2")
    if early:
        zero, one = Const(0, 1), Const(1, 1)
        p_plus = Signal(unsigned(pbits), name="pending_plus_s2b")
        p_minus = Signal(unsigned(pbits), name="pending_minus_s2b")
        p_sign = Signal(name="pending_sign_s2b", init=1)   # p + d < S: p is p_plus

        def p_bits(k):
            return (p_plus[k], p_minus[k]) if k < pbits else (zero, zero)

        plus = _ccu2c_select_add(
            m, [(d_2[k], *p_bits(k)) for k in range(pbits)], p_sign, (zero, zero),
            carry_out=False, name="pending_plus_add", model=unit.cell_models)
        minus = _ccu2c_select_add(
            m, [(ndm_2[k] if k < len(ndm_2) else one, *p_bits(k)) for k in range(pbits + 2)],
            p_sign, (one, one), carry_out=False, name="pending_minus_add",
            model=unit.cell_models)
        # A group's first input clears them over the enable (the flip-flop's own
        # synchronous reset, no LUT between the chains and the registers).
        with m.If(adv[3] & valid_2 & first_2):
            m.d.sync += [p_plus.eq(0), p_minus.eq(0), p_sign.eq(1)]
        with m.Elif(adv[3] & valid_2):
            m.d.sync += [p_plus.eq(Cat(*plus)), p_minus.eq(Cat(*minus[:pbits])),
                         p_sign.eq(minus[pbits + 1])]
    else:
        # Stage 2b: the narrow path waits a cycle for the input's third alignment step.
        # (the copy of p's recurrence reads copies of its own, on p's copy's enable)
        d_c = left(d_2, "rise_clamped_copy_s2b")
        dm_c = left(dm_2, "rise_rest_copy_s2b")
        d_2 = register(d_2, "rise_clamped_s2b")
        dm_2 = register(dm_2, "rise_rest_s2b")
    first_2, emax_2, nan_2, valid_2, last_2 = _ride(
        register, (first_2, emax_2, nan_2, valid_2, last_2), "2b")

    # Stage 3, the pending shift: a recurrence of pbits bits, moved by valid inputs
    # only; p + d and p - (S - d) side by side, the sign of the second chooses (one short
    # carry chain and a multiplexer). A group's first input opens at p = 0 (A = x).
    if early:
        # p resolved (a LUT from registers) into stage 3's registers; the left shift's
        # copy on its own enable (not merged).
        p_resolved = Mux(p_sign, p_plus, p_minus)
        pending = register(p_resolved, "pending_s3")
        pending_shift = left(p_resolved, "pending_shift_s3")
        # (a group's first input sets the sign: no drain)
        drain_3 = register(~p_sign, "drain_s3")
    else:
        pending = Signal(unsigned(pbits), name="pending_s3")
        total = Signal(unsigned(pbits + 1))
        total_m = Signal(signed(pbits + 2))
        drain = Signal()
        m.d.comb += [
            total.eq(pending + d_2),
            total_m.eq(pending - dm_2),
            drain.eq(~first_2 & ~total_m[-1]),
        ]
        # A copy of p for the left shift's multiplexers (its own enable: not merged).
        pending_shift = Signal(unsigned(pbits), name="pending_shift_s3")
        with m.If(advance & valid_2):
            m.d.sync += pending.eq(Mux(first_2, 0, Mux(drain, total_m, total)))
        # Its own recurrence (not the same logic as `pending`'s, so each register's D
        # drives that register only, and the placer packs it with its LUT).
        total_c = Signal(unsigned(pbits + 1))
        total_mc = Signal(signed(pbits + 2))
        m.d.comb += [
            total_c.eq(pending_shift + d_c),
            total_mc.eq(pending_shift - dm_c),
        ]
        with m.If(adv[3] & valid_2):
            m.d.sync += pending_shift.eq(Mux(first_2, 0, Mux(~first_2 & ~total_mc[-1],
                                                             total_mc, total_c)))
        drain_3 = register(drain, "drain_s3")
    x_3 = align_(Mux(down_2b, mux_shift(x_2b, list(top_2b) if top_2b is not None else [],
                                        1 << (lo + 2)), (sum_2b << g).as_signed()),
                 "x_aligned_s3", signed(len(x_2)))
    first_3, emax_3, nan_3, valid_3, last_3 = _ride(
        register, (first_2, emax_2, nan_2, valid_2, last_2), "3")

    # Stages 4, 4b and 5: Y = T << p, by p mod 4, by the next two bits of p, then by
    # the rest (each a multiplexer of at most four inputs per bit); Y's bits below p
    # are 0, so the loop never changes bits below p.
    lfb = min(2, pbits)
    u_4 = left(_mux_shift_left(x_3, list(pending_shift[:lfb]), 1,
                               len(x_3) + (1 << lfb) - 1), "y_fine_s4")
    mid_4 = left(pending_shift[lfb:lfb + 2], "pending_mid_s4") if pbits > lfb else None
    top_4 = left(pending_shift[lfb + 2:], "pending_high_s4") if pbits > lfb + 2 else None
    pend_4 = register(pending, "pending_s4")
    drain_4 = register(drain_3, "drain_s4")
    first_4, emax_4, nan_4, valid_4, last_4 = _ride(
        register, (first_3, emax_3, nan_3, valid_3, last_3), "4")
    mid = list(mid_4) if mid_4 is not None else []
    u_4 = shift(_mux_shift_left(u_4, mid, 1 << lfb,
                                min(vw, len(u_4) + (((1 << len(mid)) - 1) << lfb))),
                "y_mid_s4b")
    top_4 = shift(top_4, "pending_high_s4b") if top_4 is not None else None
    pend_4 = register(pend_4, "pending_s4b")
    drain_4 = register(drain_4, "drain_s4b")
    first_4, emax_4, nan_4, valid_4, last_4 = _ride(
        register, (first_4, emax_4, nan_4, valid_4, last_4), "4b")
    y_5 = shift(_mux_shift_left(u_4, list(top_4) if top_4 is not None else [],
                                1 << (lfb + 2), vw), "y_s5")
    pend_5 = register(pend_4, "pending_s5")
    drain_5 = shift(drain_4, "drain_s5")
    keep_5 = shift(~drain_4, "keep_s5")
    takes_5 = register(~first_4 & drain_4, "lost_takes_s5")
    first_5, emax_5, nan_5, valid_5, last_5 = _ride(
        register, (first_4, emax_4, nan_4, valid_4, last_4), "5")

    # Stage 6, the loop. V = L + 2**S * (H + c): L the low S bits, H the high W + 1
    # (signed), c the carry from L into H, registered. Without a drain: V' = V + Y;
    # with one (V >> S, exact as L < 2**S, and H = H[:S] + 2**S (H >> S)): the bits of H
    # below S move to L's place, H >> S to H's, with Y added. Each of L and H is itself
    # two chains (L0 = L[:h], L1 = L[h:], H0 = H[:h], H1 = H[h:], h = ceil(S / 2)) with
    # their carries registered: c_l out of L0 (pending at bit h), c out of L1 (at S),
    # c_h out of H0 (at S + h). Each chain's bit is a select of two register bits in front
    # of its carry chain (y_k ^ (keep ? kept : drained)); the pending carries go in as
    # the chains' injected carries:
    #   no drain: L0 + Y, L1 + Y + c_l, H0 + Y + c, H1 + Y + c_h;
    #   drain:    H0 + Y + c (at bit 0), H1[:S-h] + Y + c_h (at h), (H >> S)[:h] + Y,
    #             (H >> S)[h:] + Y.
    # A drain drops the low S bits with c_l: the carry out of them,
    #   e' = floor((L0 + 2**h (L1 + c_l) + e) / 2**S) (0 or 1),
    # is a +1 pending at the new bit 0 that the loop never adds: a recurrence of one bit
    # beside it (below), added when V is resolved for the output, so that
    # V = L0 + 2**h (L1 + c_l) + 2**S (H0 + c + 2**h (H1 + c_h)) + e.
    h = (s_fix + 1) // 2
    lo0 = Signal(unsigned(h), name="acc_low0")
    lo1 = Signal(unsigned(s_fix - h), name="acc_low1")
    hi0 = Signal(unsigned(h), name="acc_high0")
    hi1 = Signal(signed(hw_ - h), name="acc_high1")
    carry_l = Signal(name="acc_carry_low")
    carry = Signal(name="acc_carry")
    carry_h = Signal(name="acc_carry_high")
    lo = Cat(lo0, lo1)
    hi = Cat(hi0, hi1).as_signed()
    hi_drained = hi >> s_fix
    # Each enable and clear of the loop one LUT from its copy's register (the clear,
    # valid and last, registered at stage 5).
    clear_5 = register(valid_4 & last_4, "clear_s5")
    if held is None:  # registered enable copies: one LUT from each copy's register
        add_lo, add_hi, out_lo, out_hi = (adv[k] & valid_5 for k in (5, 6, 8, 9))
        clear_lo, clear_hi = (adv[k] & clear_5 for k in (5, 6))
    else:
        add_lo, add_hi, clear_lo, clear_hi, out_lo, out_hi = _loop_enables(
            m, held, o.ready, valid_5, clear_5)
    keep_h, keep_in = keep_5, keep_5
    if held is None:
        # Two more copies of keep (on other enable copies, so not merged): one for H's
        # selects, one for the carries injected into H's chains, so that each chain
        # starts from a register of its own rather than a net to every select.
        keep_h = _register(m, adv[6])(~drain_4, "keep_high_s5")
        keep_in = _register(m, adv[5])(~drain_4, "keep_carry_s5")

    def loop_chains(keep, drain, keep_hi, keep_cin, carries, name, c_drained=None):
        """The four chains' sums (L0, L1, H0 with their carry outs; H1) from the loop's
        registers, selected by ``keep`` (``keep_hi`` for H), the pending carries
        ``carries`` (c_l, c, c_h) injected as above (``c_drained`` for c into L0, if
        given)."""
        c_l, c, c_h = carries

        def chain(part, start, stop, kept, drained, sel, cin, out, carry_or=()):
            return Cat(*_ccu2c_select_add(
                m, [(y_5[start + k], kept[k], drained[k]) for k in range(stop - start)],
                sel, cin, carry_out=out, name=f"{name}_{part}", carry_or=carry_or,
                model=unit.cell_models))

        return (chain("l0", 0, h, lo, hi, keep, (c if c_drained is None else c_drained, drain),
                      True),
                chain("l1", h, s_fix, lo[h:], hi[h:], keep, (c_l, keep), True,
                      ((c_h, drain),)),
                chain("h0", s_fix, s_fix + h, hi, hi_drained, keep_hi, (c, keep_cin), True),
                chain("h1", s_fix + h, vw, hi[h:], hi_drained[h:], keep_hi, (c_h, keep_cin),
                      False))

    # A group's first input must read 0, which no LUT4 input is left for: instead the
    # group's last input clears the loop's registers (a synchronous reset) while its sum
    # is captured for the output, whose path starts from the capture.
    l0, l1, h0, h1 = loop_chains(keep_5, drain_5, keep_h, keep_in,
                                 (carry_l, carry, carry_h), "acc_add")
    with m.If(clear_lo):
        m.d.sync += [lo0.eq(0), lo1.eq(0), carry_l.eq(0), carry.eq(0)]
    with m.Elif(add_lo):
        m.d.sync += [lo0.eq(l0[:h]), carry_l.eq(l0[h]),
                     lo1.eq(l1[:s_fix - h]), carry.eq(l1[s_fix - h])]
    with m.If(clear_hi):
        m.d.sync += [hi0.eq(0), hi1.eq(0), carry_h.eq(0)]
    with m.Elif(add_hi):
        m.d.sync += [hi0.eq(h0[:h]), carry_h.eq(h0[h]), hi1.eq(h1)]
    # The capture's own copy of the chains (selected by copies of drain and keep,
    # registers of their own that synthesis does not merge): every chain output then
    # drives one register, which the placer packs into its slice.
    drain_c = left(drain_4, "drain_copy_s5")
    keep_c = left(~drain_4, "keep_copy_s5")
    keep_cin = keep_c
    carry_c = None
    if held is None:
        # The capture copy's L0 chain reads its own captured carry (`acc_carry_out`,
        # loaded with every valid input) instead of `c`: the two differ only after a
        # group's last input (`c` cleared), and the next valid input opens a group, which
        # never drains, so the injected carry `c & drain` is 0 either way.
        carry_6 = Signal(name="acc_carry_out")
        carry_c = carry_6
        # the capture copy's injected carries from a register of its own too
        keep_cin = _register(m, adv[9])(~drain_4, "keep_copy_carry_s5")
    c0, c1, c2, c3 = loop_chains(keep_c, drain_c, keep_c, keep_cin,
                                 (carry_l, carry, carry_h), "acc_copy", carry_c)
    lo0_6 = register(c0[:h], "acc_low0_out", enable=out_lo)
    lo1_6 = register(c1[:s_fix - h], "acc_low1_out", enable=out_lo)
    cl_6 = register(c0[h], "acc_carry_low_out", enable=out_lo)
    if held is None:
        with m.If(out_lo):
            m.d.sync += carry_6.eq(c1[s_fix - h])
    else:
        carry_6 = register(c1[s_fix - h], "acc_carry_out", enable=out_lo)
    hi0_6 = register(c2[:h], "acc_high0_out", enable=out_hi)
    ch_6 = register(c2[h], "acc_carry_high_out", enable=out_hi)
    hi1_6 = register(c3, "acc_high1_out", signed(hw_ - h), enable=out_hi)
    # The lost carry's recurrence, two stages behind the loop, from the loop's registers
    # before each input, made of carry chains straight into registers. With t: the input
    # drains and does not open a group, n: it neither drains nor opens one,
    #   e' = t & c_l & AND(L1)  |  e & (n | t & (carry out of L + 2**h c_l + 1 over S bits));
    # stage 6 registers the first term and the carry out of L0 + t; stage 6b the carry out
    # of L1 + (t & c_l) + that (together the second term's carry out); e loads in stage 6c
    # with each valid input, a LUT of four registers.
    zero, one = Const(0, 1), Const(1, 1)

    def carry_out(ys, b0, cin, name):
        """The carry out of ``sum_k 2**k ys[k] + b0 + (cin[0] & cin[1])``, one chain."""
        return _ccu2c_select_add(
            m, [(y, b0 if k == 0 else zero, zero) for k, y in enumerate(ys)], one, cin,
            carry_out=True, name=name, model=unit.cell_models)[-1]

    lost_low = register(carry_out(list(lo0), zero, (takes_5, one), "lost_low_add"),
                        "lost_low_s6")
    lost_set = register(carry_out(list(lo1), zero, (carry_l, takes_5), "lost_set_add"),
                        "lost_set_s6")
    lost_mid = register(lo1, "lost_mid_s6")
    lost_cl = register(carry_l & takes_5, "lost_carry_s6")
    lost_n = register(~first_5 & ~drain_5, "lost_keep_s6")
    pend_6 = register(pend_5, "pending_s6")
    side = _ride(register, (first_5, emax_5, nan_5, valid_5, last_5), "6")
    lost_up = register(carry_out(list(lost_mid), lost_cl, (lost_low, one), "lost_up_add"),
                       "lost_up_s6b")
    lost_set = register(lost_set, "lost_set_s6b")
    lost_n = register(lost_n, "lost_keep_s6b")
    # Stages 6b and 6c: V's parts wait for e (which holds the input's lost carry in stage
    # 6c). Stages 7a to 7d: V resolved from the bottom, one chain of at most h + 1 bits
    # per stage: L0 + e, L1 + c_l, H0 + c, H1 + c_h, each with the carry out of the one
    # below.
    parts = [lo0_6, lo1_6, hi0_6, hi1_6]
    cins = [zero, cl_6, carry_6, ch_6]
    pend_7 = pend_6
    for stage in ("6b", "6c"):
        parts = [back(x, f"acc_part{k}_s{stage}", x.shape()) for k, x in enumerate(parts)]
        cins = [zero] + [back(c, f"acc_pending{k}_s{stage}") for k, c in enumerate(cins)
                         if k]
        pend_7 = register(pend_7, f"pending_s{stage}")
        side = _ride(register, side, stage)
        if stage == "6b":
            lost = Signal(name="lost_carry")
            with m.If(adv[7] & side[3]):
                m.d.sync += lost.eq(lost_set | (lost & (lost_n | lost_up)))
    below = lost
    for j, tag in enumerate("abcd"):
        stage = "7" + tag
        total = (Cat(Const(1, 1), parts[j]) + Cat(below, cins[j]))[1:]
        if j < 3:
            below = back(total[len(parts[j])], f"acc_carry{j}_s{stage}")
        parts = [back(total[:len(x)] if k == j else x, f"acc_part{k}_s{stage}", x.shape())
                 for k, x in enumerate(parts)]
        cins = [c if k <= j else back(c, f"acc_pending{k}_s{stage}")
                for k, c in enumerate(cins)]
        pend_7 = register(pend_7, f"pending_s{stage}")
        side = _ride(register, side, stage)
    first_7, emax_7, nan_7, valid_7, last_7 = side

    # Stages 8 to 10: A = V >> p, W + 1 bits, by p's high bits, by the next two, by its
    # lowest (stages 0, 2b, 4b, 6b, 6c and 7a to 7d also count: latency 18; 19 with the
    # relay of out_ready="registered").
    value = Cat(*parts).as_signed()
    keep = w + (1 << fb)
    if pbits > fb:
        value = mux_shift(value, list(pend_7[fb:]), 1 << fb)
    v_8a = back(value[:keep], "acc_coarse_s8", signed(keep))
    fine_8a = register(pend_7[:fb], "pending_low_s8")
    first_8a, emax_8a, nan_8a, valid_8a, last_8a = _ride(
        register, (first_7, emax_7, nan_7, valid_7, last_7), "8")
    # Stage 9: the shift by the fine bits but the lowest (a 4-to-1 multiplexer per bit).
    v_8 = back(mux_shift(v_8a, list(fine_8a[1:]), 2)[:w + 2], "acc_mid_s9", signed(w + 2))
    fine_8 = register(fine_8a[:1], "pending_bit0_s9")
    first_8, emax_8, nan_8, valid_8, last_8 = _ride(
        register, (first_8a, emax_8a, nan_8a, valid_8a, last_8a), "9")
    if held is None:
        m.d.comb += out_valid_r.eq(register(valid_8a & last_8a, "out_valid_s9"))

    # Stage 10: A (W + 1 bits, exact while in range or at its first excursion) and the
    # sticky saturation, as with one sum.
    _lookahead_result(m, o, adv, out_valid,
                      v_8, fine_8, (first_8, emax_8, nan_8, valid_8, last_8))
    return m


def partial_sums(align: str) -> int:
    """The partial sums of :func:`golden.accumulator.accumulate` that ``align`` computes: 2
    for ``"interleave"``, else 1."""
    return 2 if align == "interleave" else 1


def mux_shift(value, select: list, stride: int = 1):
    """``value >> (stride * Cat(*select))`` (arithmetic), built bit by bit as a
    ``2**len(select)``-to-1 multiplexer whose innermost level is selected by ``select[0]``:
    each output bit is one small multiplexer of input bits, which maps onto the wide-LUT
    muxes of the target instead of a chain of shifter levels."""
    width = len(value)
    n = 1 << len(select)
    out = []
    for i in range(width):
        level = [value[min(i + stride * k, width - 1)] for k in range(n)]
        for sel in select:
            level = [Mux(sel, level[k + 1], level[k]) for k in range(0, len(level), 2)]
        out.append(level[0])
    return Cat(*out).as_signed()


def _mux_shift_left(value, select: list, stride: int, width: int):
    """``value << (stride * Cat(*select))`` in ``width`` bits (``value`` sign-extended, zeros
    shifted in), built as :func:`mux_shift`: one small multiplexer per output bit."""
    n = 1 << len(select)
    top = len(value) - 1
    out = []
    for i in range(width):
        level = []
        for k in range(n):
            j = i - stride * k
            level.append(C(0, 1) if j < 0 else value[min(j, top)])
        for sel in select:
            level = [Mux(sel, level[k + 1], level[k]) for k in range(0, len(level), 2)]
        out.append(level[0])
    return Cat(*out).as_signed()


#: ``P = A ^ (D ? B : C)``: the LUT4 of a CCU2C half that adds ``y`` (``A``) to a select of
#: ``B`` (``D`` high) or ``C``. Its generate, the entries with ``C = D = 0`` read as a LUT2 of
#: ``A, B`` (see :mod:`hw.bitheap`), is ``A``: right whenever ``P = 0`` (then the addends
#: are equal).
_SELECT_ADD_INIT = 0x665A
#: A CCU2C half whose ``P`` is 0 (``C`` tied high) and generate ``A & B``: it injects
#: ``A & B`` as the carry into the next half.
_CARRY_IN_INIT = 0x0008
#: A CCU2C half (``C`` tied high) whose ``P`` is ``~(A & B)`` and generate ``A & B``: it
#: carries ``(A & B) | ci``, ORing one more carry into the chain.
_CARRY_OR_INIT = 0x0078


def _ccu2c_select_add(m: Module, bits: list[tuple], keep, carry_in: tuple, *,
                      carry_out: bool, name: str, model: bool = False,
                      carry_or: tuple = ()) -> list[Value]:
    """``sum_k 2**k (y_k + (keep ? b_k : c_k)) + ((u & v) | (u2 & v2) | ...)`` for ``bits``
    ``(y_k, b_k, c_k)``, low first, ``carry_in = (u, v)`` and ``carry_or`` more pairs
    ``(u2, v2)``, as one chain of Lattice ECP5 CCU2C cells, one half per bit (its LUT4 is
    the select and the sum's XOR), a first half that injects the carry, one more half per
    pair of ``carry_or`` that ORs its AND in and, with ``carry_out``, a last half whose sum
    is the carry out. Returns the sum bits. With ``model`` the cells are plain logic from
    their definition (:func:`ccu2c_model`) instead of instances."""
    halves = select_add_halves(bits, keep, carry_in, carry_out=carry_out, carry_or=carry_or)
    bits_out = ccu2c_model(halves) if model else _ccu2c_chain(m, halves, name)
    return bits_out[1 + len(carry_or):len(halves)]


def select_add_halves(bits: list[tuple], keep, carry_in: tuple, *, carry_out: bool,
                      carry_or: tuple = ()) -> list[tuple[int, tuple]]:
    """The ``(INIT, (A, B, C, D))`` halves of :func:`_ccu2c_select_add`'s chain."""
    one = Const(1, 1)
    zero = Const(0, 1)
    halves = [(_CARRY_IN_INIT, (carry_in[0], carry_in[1], one, zero))]
    halves += [(_CARRY_OR_INIT, (u, v, one, zero)) for u, v in carry_or]
    halves += [(_SELECT_ADD_INIT, (y, b, c, keep)) for y, b, c in bits]
    if carry_out:
        halves.append((0, (zero,) * 4))
    return halves


def ccu2c_model(halves: list[tuple[int, tuple]]) -> list[Value]:
    """The sum bits of a chain of CCU2C halves, carry in 0, as plain logic from the cell's
    definition (see :mod:`hw.bitheap`): half ``h`` gives ``S = P ^ ci`` and carries ``P ?
    ci : G``, ``P = INIT[D C B A]``, ``G = INIT[B A]``."""
    carry: Value = C(0, 1)
    out = []
    for init, (a, b, c, d) in halves:
        index = Cat(a, b, c, d)
        p = Const(init, 16).bit_select(index, 1)
        g = Const(init, 16).bit_select(Cat(a, b), 1)
        out.append(p ^ carry)
        carry = Mux(p, carry, g)
    return out


# What the one-sum (`elaborate`) and two-sum (`_elaborate_interleave`) pipelines share:
# the registers, the exponent compare, the shift amounts, the input's alignment and the
# saturated output. Each builds the same signals under the same names in either.

def _register(m: Module, enable):
    """``register(value, name, shape=None, enable=enable)``: a register of ``m`` named
    ``name`` (of ``value``'s shape unless ``shape`` is given) that loads ``value`` in the
    cycles in which ``enable`` is high."""
    def register(value, name, shape=None, enable=enable):
        reg = Signal(shape if shape is not None else value.shape(), name=name)
        with m.If(enable):
            m.d.sync += reg.eq(value)
        return reg
    return register


def _compare_exponent(m: Module, exponent, e_max, fresh):
    """``rise = E - E_max`` and ``fall = E_max - E``, each an ``(e + 2)``-bit subtraction
    (``e + 1 = len(e_max)``) whose sign bit is the compare, and ``up`` (``E > E_max``) and
    ``down`` (``E < E_max``) for an input that does not open its sum (``fresh`` low). Every
    path from ``E_max`` is that carry chain and at most a LUT or two."""
    ew = len(e_max)
    rise = Signal(signed(ew + 1))
    fall = Signal(signed(ew + 1))
    up = Signal()
    down = Signal()
    m.d.comb += [
        rise.eq(exponent - e_max),
        fall.eq(e_max - exponent),
        up.eq(~fresh & fall[-1]),
        down.eq(~fresh & rise[-1]),
    ]
    return rise, fall, up, down


def _running_maximum(m: Module, p, fire, shift_register, register, *, ew: int, w: int,
                     g: int, emax_direct: bool = False, ahead=None) -> tuple:
    """The one-sum pipelines' front end for input payload ``p``: the running maximum
    ``E_max`` of the group, its NaN flag and ``first`` (the next input opens a group), all
    updated when ``fire``; stage 1 of both shifts (:func:`_shift_amounts`, its registers
    made by ``shift_register``) and stage 1's ``first``, ``E_max`` after this input and NaN
    (made by ``register``). Returns ``(shifts, first_1, emax_1, nan_1)``.

    With ``emax_direct`` (the ECP5 ``"lookahead"`` build) also ``fine_1``, the low bits of
    ``E_max - E``, and the compares' signs and high bits are registered raw (combined in
    stage 2); with ``ahead``, ``(exponent, valid)`` of the input behind ``p``, ``E_max``'s
    select is chosen by compares made a cycle early (``p`` then a registered input)."""
    e_max = Signal(unsigned(ew))
    nan = Signal()
    first = Signal(init=1)
    rise, fall, up, down = _compare_exponent(m, p.exponent, e_max, first)
    if emax_direct:
        # The select as AND and OR, which synthesis does not turn into a clock enable of
        # E_max (an enable is a LUT and a net to every bit after the compare; the select
        # is one LUT per bit, packed with its register).
        take = Signal()
        if ahead is None:
            m.d.comb += take.eq(up | first)
        else:
            # ``p`` is a registered input (stage 0) and ``ahead`` = (exponent, valid) of
            # the port, the input that follows it: that exponent is compared a cycle
            # early with E_max and with ``p``'s, whose fire may still raise E_max first.
            # It raises E_max when above both, above ``p``'s alone if ``p`` opens a
            # group, above E_max alone if ``p`` is not valid; each compare is a carry
            # chain straight into a register, the recurrence a select behind registers.
            e_next, p_valid = ahead
            above_max = Signal(signed(ew + 1))
            above_p = Signal(signed(ew + 1))
            m.d.comb += [above_max.eq(e_max - e_next), above_p.eq(p.exponent - e_next)]
            g_0 = shift_register(above_max[-1], "above_max_s0")
            h_0 = shift_register(above_p[-1], "above_prev_s0")
            a_0 = shift_register(p_valid & first, "prev_opens_s0")
            b_0 = shift_register(~p_valid, "prev_idle_s0")
            m.d.comb += take.eq(first | ((g_0 | a_0) & (h_0 | b_0)))
        next_max = (p.exponent & take.replicate(ew)) | (e_max & ~take.replicate(ew))
    else:
        next_max = Mux(up | first, p.exponent, e_max)
    with m.If(fire):
        m.d.sync += [
            e_max.eq(next_max),
            nan.eq((nan & ~first) | p.nan),
            first.eq(p.last),
        ]
    shifts = _shift_amounts(m, shift_register, p, e_max, rise, fall, up, down, w=w, g=g,
                            wide_in_stage_1=False, wide_raw=emax_direct, fresh=first)
    first_1 = register(first, "first_s1")
    # With ``emax_direct``, E_max after this input is the register itself, read a cycle
    # later (it changes only when the next input fires, which moves this one on): the
    # select then drives the E_max register alone.
    emax_1 = e_max if emax_direct else register(Mux(up | first, p.exponent, e_max), "emax_s1")
    nan_1 = register((nan & ~first) | p.nan, "nan_s1")
    if not emax_direct:
        return shifts, first_1, emax_1, nan_1
    # The low bits of E_max - E, each zero unless E < E_max, registered (a LUT behind the
    # compare chain): the selects of the first step of the input's alignment.
    borrow = C(0, 1)
    fine = []
    for j in range(shifts.lo):
        fine.append(e_max[j] ^ p.exponent[j] ^ borrow)
        borrow = (~e_max[j] & p.exponent[j]) | (~(e_max[j] ^ p.exponent[j]) & borrow)
    fine_1 = shift_register(Cat(*fine), "x_fine_select_s1", unsigned(shifts.lo))
    return shifts, first_1, emax_1, nan_1, fine_1


class _Shifts(NamedTuple):
    """Stage 1's registers of the two shifts (see :func:`_shift_amounts`)."""

    #: Low ``abits`` bits of ``E - E_max`` and an OR of the bits above.
    rise: Value
    rise_wide: Value
    #: ``E > E_max`` (the input raises its sum's maximum).
    up: Value
    #: ``E < E_max`` (the input is shifted).
    down: Value
    #: The input ``x = S << G`` shifted by the low ``lo`` bits of ``E_max - E``.
    x_fine: Value
    #: The input's ``sum`` as it came.
    sum: Value
    #: Selects of stage 2's shift of ``x_fine`` (by multiples of ``2**lo``), saturated.
    x_select: list
    lo: int


def _shift_amounts(m: Module, register, p, e_max, rise, fall, up, down, *, w: int, g: int,
                   wide_in_stage_1: bool, wide_raw: bool = False, fresh=None) -> _Shifts:
    """Stage 1 of both shifts, from :func:`_compare_exponent`'s ``rise``, ``fall``, ``up``
    and ``down`` for input payload ``p`` against its sum's maximum ``e_max``.

    Shift amounts keep the bits that reach the operand width minus one (``W - 1`` for
    ``A``, ``xw - 1 = in_width + G - 1`` for ``x``) and an OR of the bits above, which
    stands for a shift to the sign (an arithmetic shift that far leaves ``0`` or ``-1``): no
    compare behind the subtraction. Stage 2 completes the amount of ``A`` (saturated at all
    ones, ``0`` unless ``E > E_max``).

    The input's shift, by ``E_max - E`` when ``E < E_max``: its low ``lo`` bits in stage 1,
    the next ones (up to ``xbits``) in stage 2; any bit above sets the latter to all ones,
    a shift that with any low part reaches ``xw - 1`` (``xbits`` is chosen so). That OR is
    registered as ``x_wide_s1`` and applied in stage 2, or with ``wide_in_stage_1`` applied
    in stage 1, to shorten stage 2; with ``wide_raw`` the bits above, the signs of both
    compares and ``fresh`` are registered as they come, and the ORs, ``up`` and ``down`` are
    made from those registers (no LUT behind the compare chains). The low ``lo`` bits of
    ``E_max - E`` need no carry chain
    (each is a small function of the low bits of ``E_max`` and ``E``), so stage 1 already
    shifts the input by them, on the guess that ``E < E_max``; stage 2 shifts that by the
    rest, or takes the input as it is. Each shift is a multiplexer per bit
    (:func:`mux_shift`), which maps onto wide LUTs.
    """
    ew = len(e_max)
    xw = len(p.sum) + g
    abits = (w - 1).bit_length()
    rise_1 = register(rise[:abits], "rise_low_s1")
    if abits >= ew:
        rise_wide_1 = C(0, 1)
    elif wide_raw:
        rise_wide_1 = register(rise[abits:ew], "rise_high_s1") != 0
    else:
        rise_wide_1 = register(rise[abits:ew] != 0, "rise_wide_s1")
    if wide_raw:
        up_1 = register(fall[-1], "fall_sign_s1") & ~register(fresh, "fresh_s1")
    else:
        up_1 = register(up, "up_s1")
    lo = min(FINE_SHIFT_BITS, (xw - 1).bit_length())
    xbits = min((xw - 2 + (1 << lo)).bit_length(), ew)
    if wide_in_stage_1:
        x_shift_1 = register(fall[lo:xbits] | Mux(fall[xbits:ew] != 0, -1, 0)
                             if xbits < ew else fall[lo:xbits],
                             "x_shift_s1", unsigned(xbits - lo))
        x_select = list(x_shift_1)
    else:
        x_shift_1 = register(fall[lo:xbits], "x_shift_s1", unsigned(xbits - lo))
        if xbits >= ew:
            x_wide_1 = C(0, 1)
        elif wide_raw:
            x_wide_1 = register(fall[xbits:ew], "x_high_s1") != 0
        else:
            x_wide_1 = register(fall[xbits:ew] != 0, "x_wide_s1")
        x_select = [b | x_wide_1 for b in x_shift_1]
    borrow = C(0, 1)
    fall_lo = []
    for j in range(lo):
        fall_lo.append(e_max[j] ^ p.exponent[j] ^ borrow)
        borrow = (~e_max[j] & p.exponent[j]) | (~(e_max[j] ^ p.exponent[j]) & borrow)
    x_in = Signal(signed(xw))
    m.d.comb += x_in.eq(p.sum << g)
    x_fine_1 = register(mux_shift(x_in, fall_lo), "x_fine_s1")
    sum_1 = register(p.sum, "sum_s1")
    if wide_raw:
        x_down_1 = register(rise[-1], "rise_sign_s1") & ~register(fresh, "fresh_down_s1")
    else:
        x_down_1 = register(down, "x_down_s1")
    return _Shifts(rise=rise_1, rise_wide=rise_wide_1, up=up_1, down=x_down_1,
                   x_fine=x_fine_1, sum=sum_1, x_select=x_select, lo=lo)


def _align(m: Module, register, s1: _Shifts, *, g: int):
    """Stage 2: ``x_aligned_s2``, the input aligned to its sum's maximum, ``x >> (E_max -
    E)`` or ``x``, and ``acc_shift_s2``, the shift of ``A``: ``E - E_max`` saturated at all
    ones when ``E > E_max``, else ``0``."""
    xw = len(s1.x_fine)
    x = Signal(signed(xw))
    m.d.comb += x.eq(s1.sum << g)
    x_2 = register(Mux(s1.down, mux_shift(s1.x_fine, s1.x_select, 1 << s1.lo), x),
                   "x_aligned_s2", signed(xw))
    acc_shift_2 = register(Mux(s1.up, s1.rise | Mux(s1.rise_wide, -1, 0), 0), "acc_shift_s2",
                           unsigned(len(s1.rise)))
    return x_2, acc_shift_2


def _align_split(m: Module, register, s1: _Shifts):
    """Stage 2 of ``align="lookahead"``'s input alignment, split in two: ``x_fine`` shifted
    by all of stage 1's selects (``x_select``, multiples of ``2**lo``) but the top one,
    registered with that select, ``down`` and the input's ``sum``; stage 3 shifts by the top
    select (the returned stride, ``2**(lo + n - 1)`` for ``n`` selects) and takes that or
    ``sum << G`` (see :func:`_align`). The two
    arithmetic shifts compose: ``v[i] = x[min(i + a, n - 1)]`` then ``v[min(i + b, n - 1)]`` is
    ``x[min(i + a + b, n - 1)]``."""
    sel = s1.x_select
    x_2 = register(mux_shift(s1.x_fine, sel[:-1], 1 << s1.lo), "x_aligned_s2",
                   signed(len(s1.x_fine)))
    rest_2 = [register(b, f"x_select_top_s2_{k}") for k, b in enumerate(sel[-1:])]
    down_2 = register(s1.down, "x_down_s2")
    sum_2 = register(s1.sum, "sum_s2")
    return x_2, rest_2, down_2, sum_2, (1 << s1.lo) << max(0, len(sel) - 1)


def _loop_enables(m: Module, held: list, ready, valid, clear) -> tuple:
    """The enables of ``align="lookahead"``'s loop and of its capture, each one LUT from
    its enable copy's register: add and clear of L (copy 5) and H (6), and the output's
    capture of L and H (8, 9)."""
    add_lo, add_hi, clear_lo, clear_hi, out_lo, out_hi = (Signal() for _ in range(6))
    m.d.comb += [
        add_lo.eq(~(held[5] & ~ready) & valid),
        add_hi.eq(~(held[6] & ~ready) & valid),
        clear_lo.eq(~(held[5] & ~ready) & clear),
        clear_hi.eq(~(held[6] & ~ready) & clear),
        out_lo.eq(~(held[8] & ~ready) & valid),
        out_hi.eq(~(held[9] & ~ready) & valid),
    ]
    return add_lo, add_hi, clear_lo, clear_hi, out_lo, out_hi


def _lookahead_result(m: Module, o, adv: list, out_valid, v, fine, side: tuple) -> None:
    """The last stage of ``align="lookahead"``: ``A = v >> fine`` (W + 1 bits, exact while
    in range or at its first excursion) and the sticky saturation, as with one sum; the
    output's valid, exponent and NaN beside it."""
    first, emax, nan, valid, last = side
    w = len(o.payload.sum)
    advance = adv[0]
    acc = Signal(signed(w + 1))
    acc_out = _out_of_range(m, acc, "acc_out")
    hit = Signal()
    high = Signal()
    with m.If(adv[7] & valid):
        m.d.sync += acc.eq(mux_shift(v, list(fine))[:w + 1])
    with m.If(advance & valid):
        m.d.sync += [
            hit.eq(~first & (hit | acc_out)),
            high.eq(Mux(hit, high, ~acc[w])),
        ]
    _saturated_output(m, o.payload.sum, acc, acc_out, hit, high, name="clamp_high")
    m.d.comb += out_valid.eq(valid & last)
    with m.If(advance):
        m.d.sync += [
            o.valid.eq(out_valid),
            o.payload.exponent.eq(emax),
            o.payload.nan.eq(nan),
        ]


def _ride(register, side: tuple, stage: str) -> tuple:
    """The narrow control beside a lookahead pipeline's datapath (``first``, ``emax``,
    ``nan``, ``valid``, ``last``) registered at ``stage``, each named ``<field>_s<stage>``."""
    return tuple(register(v, f"{n}_s{stage}")
                 for n, v in zip(("first", "emax", "nan", "valid", "last"), side, strict=True))


def _advance_copies(m: Module, o, valid_next, n: int) -> tuple[list[Signal], list[Signal]]:
    """``n`` copies of the whole-pipeline enable ``~(o.valid & ~o.ready)``; ``o.valid`` is a
    register that loads ``valid_next`` in the cycles its enable (copy 0) is high (the caller
    builds it). Copy ``k > 0`` is ``~(valid_copy{k} & ~o.ready)``, ``valid_copy{k}`` a
    register of the same input and initial value loading on copy ``k``: equal to ``o.valid``
    in every cycle, and not merged with it by synthesis (see :class:`hw.pipeline.StallPipeline`'s
    ``enables``). Returns the copies of the enable and of ``o.valid`` (``o.valid`` itself
    first)."""
    out = [Signal(name="advance")]
    held = [o.valid]
    m.d.comb += out[0].eq(~(o.valid & ~o.ready))
    for k in range(1, n):
        copy, advance = Signal(name=f"valid_copy{k}"), Signal(name=f"advance{k}")
        m.d.comb += advance.eq(~(copy & ~o.ready))
        with m.If(advance):
            m.d.sync += copy.eq(valid_next)
        out.append(advance)
        held.append(copy)
    return out, held


def _out_of_range(m: Module, value, name: str) -> Signal:
    """High when ``W + 1``-bit ``value`` is outside the ``W``-bit range (its top two bits
    differ)."""
    w = len(value) - 1
    out = Signal(name=name)
    m.d.comb += out.eq(value[w] != value[w - 1])
    return out


def _saturated_output(m: Module, port, value, out, hit, side, *, name: str) -> None:
    """Drive ``port`` (``W`` bits) with ``value`` (``W + 1`` bits) or a bound: that of side
    ``side`` (high: ``2**(W-1) - 1``, low: ``-2**(W-1)``) when ``hit`` (a sticky excursion
    of the group), else of ``value``'s own side when ``out`` (:func:`_out_of_range`), else
    ``value[:W]``; a multiplexer after the registers. ``name`` is that of the chosen
    side."""
    w = len(value) - 1
    high = Signal(name=name)
    m.d.comb += high.eq(Mux(hit, side, ~value[w]))
    with m.If(hit | out):
        m.d.comb += port.eq(Mux(high, (1 << (w - 1)) - 1, -(1 << (w - 1))))
    with m.Else():
        m.d.comb += port.eq(value[:w])


ACC_WIDTH_HELP = ("accumulator width in bits (default: input width + guard bits + 8, at "
                  "most 62)")
ALIGN_HELP = ("where the accumulator is shifted when an input raises the running maximum "
              "exponent: in the loop (one input per cycle), in two stall cycles before "
              "the addition (the loop is one adder), in the first of two loop cycles "
              "shared by two interleaved partial sums (one input per cycle, the loop is "
              "one shifter or one adder per cycle), or 'lookahead': deferred, the input "
              "shifted left instead (one input per cycle, the loop one select and one "
              "adder)")

ACC_PRIMITIVES_HELP = ("'ecp5' builds the loop of align 'lookahead' from Lattice ECP5 CCU2C "
                       "cells, each half's LUT4 the select and the sum; 'generic' (default) "
                       "leaves the mapping to the synthesis tool")


def operands(p: Params, a: str = "a", b: str = "b") -> dict:
    """The operand fields of record ``p`` under the names of
    :func:`golden.accumulator.accum_in_width` (``a_element``, ``a_bits``, ...), read from
    its fields ``<a>_element``, ``<a>_bits``, ``<b>_...`` (``x``/``w`` for the linear
    engine; a record without element fields is MXINT), and ``block``."""
    fields = {"block": p.block}
    for side, name in (("a", a), ("b", b)):
        fields[f"{side}_element"] = getattr(p, f"{name}_element", None) or "int"
        fields[f"{side}_bits"] = getattr(p, f"{name}_bits")
    return fields


def check_acc_fields(p: Params, a: str = "a", b: str = "b") -> None:
    """Check ``p.guard_bits`` against the dot result width of the record's operands (fields
    ``<a>_element``, ``<a>_bits``, ``<b>_...``, see :func:`operands`) and resolve
    ``p.acc_width`` (default, or checked to hold one input plus the guard bits). Shared by
    the records of every unit with an accumulator."""
    ops = operands(p, a, b)
    in_width = accum_in_width(**ops)
    if in_width > MAX_ACC_WIDTH:  # E5M2 x E5M2: named by the weights' field (its option)
        partner = ops["a_element"].upper() if ops["a_element"] != "int" else \
            f"MXINT{ops['a_bits']}"
        raise ValueError(
            f"{b}_element {ops['b_element']!r} with {partner} activations at block "
            f"{p.block}: the dot results are {in_width} bits wide, beyond the accumulator's "
            f"{MAX_ACC_WIDTH}; E5M2 pairs with every other format")
    _, acc = check_acc_widths(guard_bits=p.guard_bits, acc_width=p.acc_width, **ops)
    p._set("acc_width", acc)


@dataclass(frozen=True, kw_only=True)
class AccumParams(Params):
    """Parameters of :class:`MXIntAccumulator` (see there for their meaning)."""

    a_element: str = element_param("a", "activations", "--abits")
    b_element: str = element_param("b", "weights", "--wbits")
    a_bits: int = a_bits_param(applies=("a_element", "int"))
    b_bits: int = b_bits_param(applies=("b_element", "int"))
    exp_bits: int = exp_bits_param()
    block: int = block_param()
    guard_bits: int = guard_bits_param(DEFAULT_GUARD_BITS)
    acc_width: int | None = param(None, help=ACC_WIDTH_HELP)
    align: str = param(DEFAULT_ALIGN, choices=ALIGNS, help=ALIGN_HELP)
    primitives: str = param("generic", choices=PRIMITIVES, help=ACC_PRIMITIVES_HELP,
                            implicit=True)
    out_ready: str = out_ready_param()

    def resolve(self) -> None:
        check_element_scale(self, "a", "b")
        check_acc_fields(self)
        if self.primitives != "generic" and (self.primitives, self.align) != \
                ("ecp5", "lookahead"):
            raise ValueError(f"primitives {self.primitives!r} with align {self.align!r}: the "
                             f"accumulator takes only 'generic', or 'ecp5' with align "
                             f"'lookahead' (its loop's CCU2C cells)")

    @property
    def name(self) -> str:
        return (f"{operands_name('accum', self)}_k{self.block}_g{self.guard_bits}"
                f"_acc{self.acc_width}"
                + ("" if self.align == DEFAULT_ALIGN else f"_{self.align}")
                + ("" if self.primitives == "generic" else f"_{self.primitives}")
                + out_ready_suffix(self))


expose(MXIntAccumulator, AccumParams)

UNIT = Unit(
    key="accum",
    summary="MXINT accumulator of dot results: align to the running maximum exponent, "
            "sticky saturation",
    summary_mx="MX accumulator of dot results (MXINT or OCP MX minifloat operands): align "
               "to the running maximum exponent, sticky saturation",
    params=AccumParams,
    component=MXIntAccumulator,
    golden=accumulate_stream,
    model="sim.units.accumulator:AccumModel",
    reference="sim.formal.ref_accum:ACCUM",
    macs=lambda p: p.block,
)
