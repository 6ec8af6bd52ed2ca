"""Whole-pipeline stall control, shared by the streaming units."""

from __future__ import annotations

from amaranth.hdl import Module, Shape, Signal

__all__ = ["StallPipeline"]


class StallPipeline:
    """One enable for every register of a fixed-depth pipeline.

    ``advance = ~o.valid | o.ready``: everything moves unless the output holds a result that
    is not being taken. The input streams transfer together: each is ready when the
    pipeline advances and every *other* input is valid, so ``ready`` depends on ``valid``
    but never the reverse. A ``depth``-bit shift register of valid bits drives ``o.valid``.
    There are no skid buffers; throughput is one transfer per cycle while ``o.ready`` is high.

    Parameters
    ----------
    m : Module
        Where the control logic goes.
    inputs : list
        Input stream interfaces (``valid``/``ready``).
    output
        The output stream interface.
    depth : int
        Register stages between the inputs and ``output``, at least 1.
    enables : int
        Copies of ``advance`` the registers may be spread over (:meth:`register`'s
        ``enable``), at least 1 (default 1: one enable for all). Copy ``k > 0`` is
        ``~valid_copy{k} | o.ready``, ``valid_copy{k}`` a copy of ``o.valid``'s register
        (same input, same initial value) that loads on its own copy of ``advance``: equal
        to ``o.valid`` in every cycle, and, enabled by itself, not merged with it by
        synthesis. Each copy drives only its registers' enables, a shorter route than one
        net to all of them; it costs one flip-flop and one LUT.

    Members
    -------
    advance : Signal
        High when every register loads.
    fire : Signal
        High when the inputs transfer.

    Raises
    ------
    ValueError
        If ``depth`` or ``enables`` is less than 1.
    """

    def __init__(self, m: Module, *, inputs: list, output, depth: int, enables: int = 1
                 ) -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, not {depth}")
        if not isinstance(enables, int) or isinstance(enables, bool) or enables < 1:
            raise ValueError(f"enables must be an integer of at least 1, not {enables!r}")
        self._m = m
        self.advance = Signal()
        self.fire = Signal()
        m.d.comb += self.advance.eq(~output.valid | output.ready)
        all_valid = 1
        for port in inputs:
            all_valid = port.valid & all_valid
            others = 1
            for other in inputs:
                if other is not port:
                    others = other.valid & others
            m.d.comb += port.ready.eq(others & self.advance)
        m.d.comb += self.fire.eq(all_valid & self.advance)
        valid = Signal(depth)
        with m.If(self.advance):
            m.d.sync += valid.eq((valid << 1) | self.fire)
        m.d.comb += output.valid.eq(valid[-1])
        self._advances = [self.advance]
        for k in range(1, enables):
            copy, advance = Signal(name=f"valid_copy{k}"), Signal(name=f"advance{k}")
            m.d.comb += advance.eq(~copy | output.ready)
            with m.If(advance):
                m.d.sync += copy.eq(valid[-2] if depth > 1 else self.fire)
            self._advances.append(advance)

    def register(self, value, name: str, shape=None, *, enable: int = 0) -> Signal:
        """A register of ``value`` (of ``shape``, default the value's own) that loads on
        :attr:`advance` (its copy number ``enable``, see ``enables``).

        Raises
        ------
        ValueError
            If ``enable`` is not a copy number, ``0 .. enables - 1``.
        """
        n = len(self._advances)
        if not isinstance(enable, int) or isinstance(enable, bool) or not 0 <= enable < n:
            raise ValueError(f"enable must be an integer from 0 to {n - 1} (the copies of "
                             f"the enable), not {enable!r}")
        reg = Signal(Shape.cast(shape) if shape is not None else value.shape(), name=name)
        with self._m.If(self._advances[enable]):
            self._m.d.sync += reg.eq(value)
        return reg
