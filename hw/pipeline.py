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

    Members
    -------
    advance : Signal
        High when every register loads.
    fire : Signal
        High when the inputs transfer.
    """

    def __init__(self, m: Module, *, inputs: list, output, depth: int) -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, not {depth}")
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

    def register(self, value, name: str, shape=None) -> Signal:
        """A register of ``value`` (of ``shape``, default the value's own) that loads on
        :attr:`advance`."""
        reg = Signal(Shape.cast(shape) if shape is not None else value.shape(), name=name)
        with self._m.If(self.advance):
            self._m.d.sync += reg.eq(value)
        return reg
