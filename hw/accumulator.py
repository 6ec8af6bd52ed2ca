"""Accumulator of MXINT dot-product results over the blocks of one output."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.accumulator import MAX_ACC_WIDTH
from golden.dot import dot_sum_range
from golden.format import MAX_BLOCK, MAX_EXP_BITS, MAX_MAN_BITS, check_int

from .layouts import range_shape
from .top import Top, operand_bits

__all__ = ["TOP", "MXIntAccumulator", "default_acc_width"]

#: Default headroom of the accumulator over one input: 2**8 equal-exponent inputs.
DEFAULT_HEADROOM = 8
#: Default guard bits below the running maximum exponent.
DEFAULT_GUARD_BITS = 8
#: Register stages from ``i`` to ``o``.
LATENCY = 3


def default_acc_width(in_width: int, guard_bits: int) -> int:
    """``in_width + guard_bits + 8``, at most 62."""
    return min(in_width + guard_bits + DEFAULT_HEADROOM, MAX_ACC_WIDTH)


def resolve_acc_width(*, a_bits: int, b_bits: int, block: int, guard_bits: int,
                      acc_width: int | None) -> int:
    """``acc_width``, or when it is None the default for these dot-product operands."""
    if acc_width is not None:
        return acc_width
    in_width = range_shape(*dot_sum_range(a_bits, b_bits, block)).width
    return default_acc_width(in_width, guard_bits)


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
    of :class:`hw.dot_product.MXIntDotProduct` for the same ``a_bits``, ``b_bits``,
    ``block``), ``exponent`` (``E = E_a + E_b``, ``exp_bits + 1`` bits), ``nan`` and
    ``last`` (closes the group of one output). With ``G = guard_bits``, ``W = acc_width``
    and ``x = S << G``:

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
    ``sum * 2**(exponent - G - 2*bias - (a_bits - 2) - (b_bits - 2))``. Without saturation
    the result is below the exact sum by less than ``(n - 1) * 2**(exponent - G)`` units
    (``n`` inputs) and exact when ``G`` covers the group's exponent spread; see
    :mod:`golden.accumulator`, which this unit equals bit for bit.

    Three register stages; throughput is one input per cycle. Stage 1 keeps the running
    maximum ``E_max``, the NaN flag and the group's first-input flag (a one-compare
    recurrence of ``exp_bits + 1`` bits) and registers both shift amounts, clamped at the
    operand width minus one (``W - 1`` for ``A``, ``in_width + G - 1`` for ``x``), where an
    arithmetic shift already leaves ``0`` or ``-1``. Stage 2 registers the aligned input
    ``x >> (E_max - E)``. Stage 3 is the only loop: ``A = (A >> acc_shift) + x_aligned``
    (``A`` read as ``0`` for a group's first input), a ``W``-bit shifter and an adder into a
    ``W + 1``-bit register, exact while ``A`` is in range. Saturation is detected from that
    register, out of the loop: a flag and a side remember an excursion of an earlier ``A``
    of the group, and ``o.sum`` is ``A`` or the bound chosen by them and by the top two bits
    of ``A`` (a multiplexer after the registers). :attr:`latency` is 3 (from the ``last``
    input's transfer to ``o.valid``). All registers load on ``advance = ~o.valid |
    o.ready`` (whole-pipeline stall, no skid buffer): ``i`` is ready whenever ``o`` is empty
    or being taken, and inputs stall while an unaccepted result is held.

    Parameters
    ----------
    a_bits, b_bits : int
        Mantissa widths of the dot unit's operands, 2 to 24.
    exp_bits : int
        Shared exponent width of the operands, 2 to 8.
    block : int
        Elements per block of the dot unit, 1 to 1024.
    guard_bits : int
        ``G``, 0 to ``62 - in_width`` (default 8).
    acc_width : int or None
        ``W``, from ``in_width + guard_bits`` (one input always fits) to 62; default
        ``min(in_width + guard_bits + 8, 62)``.

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

    def __init__(self, *, a_bits: int, b_bits: int, exp_bits: int = 8, block: int,
                 guard_bits: int = DEFAULT_GUARD_BITS, acc_width: int | None = None) -> None:
        self._a_bits = check_int("a_bits", a_bits, 2, MAX_MAN_BITS)
        self._b_bits = check_int("b_bits", b_bits, 2, MAX_MAN_BITS)
        self._exp_bits = check_int("exp_bits", exp_bits, 2, MAX_EXP_BITS)
        self._block = check_int("block", block, 1, MAX_BLOCK)
        self._in_width = range_shape(*dot_sum_range(a_bits, b_bits, block)).width
        self._guard_bits = check_int("guard_bits", guard_bits, 0,
                                     MAX_ACC_WIDTH - self._in_width)
        if acc_width is None:
            acc_width = default_acc_width(self._in_width, guard_bits)
        self._acc_width = check_int("acc_width", acc_width, self._in_width + guard_bits,
                                    MAX_ACC_WIDTH)
        super().__init__({
            "i": In(stream.Signature(accum_input_layout(in_width=self._in_width,
                                                        exp_bits=exp_bits))),
            "o": Out(stream.Signature(accum_output_layout(acc_width=self._acc_width,
                                                          exp_bits=exp_bits))),
        })

    a_bits = property(lambda self: self._a_bits, doc="Mantissa width of the dot's ``a``.")
    b_bits = property(lambda self: self._b_bits, doc="Mantissa width of the dot's ``b``.")
    exp_bits = property(lambda self: self._exp_bits, doc="Operand exponent width.")
    block = property(lambda self: self._block, doc="Elements per block of the dot unit.")
    in_width = property(lambda self: self._in_width, doc="Width of the input ``sum``.")
    guard_bits = property(lambda self: self._guard_bits, doc="Guard bits ``G``.")
    acc_width = property(lambda self: self._acc_width, doc="Accumulator width ``W``.")

    @property
    def latency(self) -> int:
        """Cycles from the transfer of a ``last`` input to its result being valid (3)."""
        return LATENCY

    def elaborate(self, platform) -> Module:
        m = Module()
        w, g = self._acc_width, self._guard_bits
        xw = self._in_width + g
        ew = self._exp_bits + 1

        # Whole-pipeline stall (as hw/pipeline.py, but o.valid marks `last` inputs only):
        # every register loads on `advance`; state registers also need valid data.
        advance = Signal()
        fire = Signal()
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
            fire.eq(self.i.valid & advance),
        ]

        def register(value, name, shape=None):
            reg = Signal(shape if shape is not None else value.shape(), name=name)
            with m.If(advance):
                m.d.sync += reg.eq(value)
            return reg

        # Stage 1, exponents: the running maximum E_max and the NaN flag are a short
        # recurrence of their own (one (e+1)-bit compare). `first` marks an input that opens
        # a group; the state is then ignored. Both shift amounts are clamped at the operand
        # width minus one, where an arithmetic shift already leaves 0 or -1.
        p = self.i.payload
        e_max = Signal(unsigned(ew))
        nan = Signal()
        first = Signal(init=1)
        up = Signal()
        down = Signal()
        rise = Signal(unsigned(ew))
        fall = Signal(unsigned(ew))
        m.d.comb += [
            rise.eq(p.exponent - e_max),
            fall.eq(e_max - p.exponent),
            up.eq(~first & (p.exponent > e_max)),
            down.eq(~first & (p.exponent < e_max)),
        ]
        new_emax = Signal(unsigned(ew))
        new_nan = Signal()
        m.d.comb += [
            new_emax.eq(Mux(up | first, p.exponent, e_max)),
            new_nan.eq((nan & ~first) | p.nan),
        ]
        with m.If(fire):
            m.d.sync += [e_max.eq(new_emax), nan.eq(new_nan), first.eq(p.last)]
        acc_shift_1 = register(Mux(up, Mux(rise >= w - 1, w - 1, rise), 0), "acc_shift_s1",
                               range(w))
        x_shift_1 = register(Mux(down, Mux(fall >= xw - 1, xw - 1, fall), 0), "x_shift_s1",
                             range(xw))
        sum_1 = register(p.sum, "sum_s1")
        first_1 = register(first, "first_s1")
        emax_1 = register(new_emax, "emax_s1")
        nan_1 = register(new_nan, "nan_s1")
        valid_1 = register(fire, "valid_s1")
        last_1 = register(p.last, "last_s1")

        # Stage 2: the input aligned to the running maximum, x >> (E_max - E).
        x = Signal(signed(xw))
        m.d.comb += x.eq(sum_1 << g)
        x_2 = register(x >> x_shift_1, "x_aligned_s2", signed(xw))
        acc_shift_2 = register(acc_shift_1, "acc_shift_s2")
        first_2 = register(first_1, "first_s2")
        emax_2 = register(emax_1, "emax_s2")
        nan_2 = register(nan_1, "nan_s2")
        valid_2 = register(valid_1, "valid_s2")
        last_2 = register(last_1, "last_s2")

        # Stage 3, the only loop: A = (A >> acc_shift) + x_aligned, with A read as 0 for the
        # first input of a group, one shifter and one adder. A keeps W + 1 bits: while it is
        # in the W-bit range both terms fit W bits, so the sum is exact in W + 1 bits.
        # Saturation is sticky (golden.accumulator) and detected out of the loop, from the
        # register: `hit` records an excursion of an earlier A of the group and `high` its
        # side; once set, A may wrap and carries no meaning.
        acc = Signal(signed(w + 1))
        shifted = Signal(signed(w))
        m.d.comb += shifted.eq(Mux(first_2, 0, acc[:w].as_signed() >> acc_shift_2))
        acc_out = Signal()
        m.d.comb += acc_out.eq(acc[w] != acc[w - 1])
        hit = Signal()
        high = Signal()
        with m.If(advance & valid_2):
            m.d.sync += [
                acc.eq(shifted + x_2),
                hit.eq(~first_2 & (hit | acc_out)),
                high.eq(Mux(hit, high, ~acc[w])),
            ]

        # Output: A itself, or the bound of the side it first left the range by. The
        # registers only move on `advance`, so o holds while stalled.
        clamp_high = Signal()
        m.d.comb += clamp_high.eq(Mux(hit, high, ~acc[w]))
        with m.If(hit | acc_out):
            m.d.comb += self.o.payload.sum.eq(Mux(clamp_high, (1 << (w - 1)) - 1,
                                                  -(1 << (w - 1))))
        with m.Else():
            m.d.comb += self.o.payload.sum.eq(acc[:w])
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(valid_2 & last_2),
                self.o.payload.exponent.eq(emax_2),
                self.o.payload.nan.eq(nan_2),
            ]
        return m


def _from_args(args) -> dict:
    a_bits, b_bits = operand_bits(args)
    guard = args.guard_bits if args.guard_bits is not None else DEFAULT_GUARD_BITS
    acc_width = args.acc_width
    if acc_width is None and isinstance(a_bits, int) and isinstance(b_bits, int) and \
            isinstance(args.block, int) and isinstance(guard, int):
        try:
            acc_width = resolve_acc_width(a_bits=a_bits, b_bits=b_bits, block=args.block,
                                          guard_bits=guard, acc_width=None)
        except (TypeError, ValueError):
            acc_width = None  # the constructor reports the bad parameter
    return {"a_bits": a_bits, "b_bits": b_bits, "exp_bits": args.exp_bits,
            "block": args.block, "guard_bits": guard, "acc_width": acc_width}


def _name(p: dict) -> str:
    guard = p.get("guard_bits", DEFAULT_GUARD_BITS)
    acc_width = resolve_acc_width(a_bits=p["a_bits"], b_bits=p["b_bits"], block=p["block"],
                                  guard_bits=guard, acc_width=p.get("acc_width"))
    return (f"mxint_accum_a{p['a_bits']}_w{p['b_bits']}_e{p.get('exp_bits', 8)}_k{p['block']}"
            f"_g{guard}_acc{acc_width}")


TOP = Top(
    key="accum",
    summary="MXINT accumulator of dot results: align to the running maximum exponent, "
            "sticky saturation",
    component=MXIntAccumulator,
    from_args=_from_args,
    name=_name,
    options=((("--acc-width",), {
        "type": int, "default": None,
        "help": "accum: accumulator width (default: input width + guard bits + 8, at most "
                "62)"}),),
    flags={"acc_width": "--acc-width"},
)
