"""Whole-pipeline stall control, shared by the streaming units, and the registered
output ready (a zero-latency skid register) any unit may put in front of its output."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, Signal
from amaranth.lib import stream

__all__ = ["OUT_READY_MODES", "StallPipeline", "output_stage"]

#: How a unit's output ``ready`` reaches its registers: ``"direct"``, combinationally, to
#: every register enable (``advance = ~o.valid | o.ready``); ``"registered"``, through the
#: valid bit of a skid register at the output (:func:`output_stage`) and, in a
#: :class:`StallPipeline`, its registered enable.
OUT_READY_MODES = ("direct", "registered")


def output_stage(m: Module, port, out_ready: str, *, name: str = "out"):
    """The stream a unit drives in place of its output ``port``.

    ``"direct"``: ``port`` itself. ``"registered"``: a new internal stream of the same
    payload, joined to ``port`` by a zero-latency skid register (``skid``, ``skid_valid``):

    * ``inner.ready = ~skid_valid``: a register, so nothing upstream of ``inner`` (the
      unit's stall enables) depends on ``port.ready``;
    * ``port.valid = skid_valid | inner.valid``, ``port.payload = skid_valid ? skid :
      inner.payload``: the skid, when full, is older than what ``inner`` holds;
    * ``skid`` loads ``inner.payload`` whenever it is empty (its enable is
      ``~skid_valid``, no ``port.ready`` in it);
    * ``skid_valid' = (skid_valid | inner.valid) & ~port.ready``: the only register whose
      input reads ``port.ready``. A result ``inner`` hands over (it is valid and the skid
      empty) while ``port`` is not ready stays in the skid; a full skid empties when
      ``port`` is ready, and ``inner`` holds until then.

    No result is lost or repeated: every ``inner`` transfer (valid and skid empty) is
    either taken by ``port`` in the same cycle or kept in the skid, which ``port`` shows
    next, before anything newer. The latency is unchanged (the skid is bypassed while
    empty) and the rate stays one transfer per cycle while ``port.ready`` is high (the skid
    then never fills); the skid holds one more result when ``port.ready`` is low. It costs
    a payload-wide register, a payload-wide 2-to-1 multiplexer and one flip-flop.

    Raises
    ------
    ValueError
        If ``out_ready`` is not one of :data:`OUT_READY_MODES`.
    """
    if out_ready not in OUT_READY_MODES:
        raise ValueError(f"out_ready must be one of {', '.join(map(repr, OUT_READY_MODES))}, "
                         f"not {out_ready!r}")
    if out_ready == "direct":
        return port
    return _skid(m, port, name)[0]


def _skid(m: Module, port, name: str):
    """The skid register of :func:`output_stage`: the inner stream and ``skid_valid``."""
    shape = port.payload.shape()
    inner = stream.Signature(shape).create(path=(name,))
    skid = Signal(shape, name=f"{name}_skid")
    skid_valid = Signal(name=f"{name}_skid_valid")
    m.d.comb += [
        inner.ready.eq(~skid_valid),
        port.valid.eq(skid_valid | inner.valid),
        port.payload.eq(Mux(skid_valid, skid, inner.payload)),
    ]
    with m.If(~skid_valid):
        m.d.sync += skid.eq(inner.payload)
    m.d.sync += skid_valid.eq((skid_valid | inner.valid) & ~port.ready)
    return inner, skid_valid


def _stage_enable(valid, after):
    """The enable of an elastic stage whose valid bit is ``valid`` and whose next stage's
    enable is ``after``: it loads when it is empty or its item moves on."""
    return ~valid | after


class StallPipeline:
    """One enable for every register of a fixed-depth pipeline.

    ``advance = ~o.valid | o.ready``: everything moves unless the output holds a result that
    is not being taken. The input streams transfer together: each is ready when the
    pipeline advances and every *other* input is valid, so ``ready`` depends on ``valid``
    but never the reverse. A ``depth``-bit shift register of valid bits drives ``o.valid``.
    Throughput is one transfer per cycle while ``o.ready`` is high. With
    ``out_ready="registered"`` the pipeline drives :attr:`output` instead of ``output``,
    a skid register in between (:func:`output_stage`), and ``advance = ~last_valid |
    ~skid_valid`` (``last_valid`` the pipeline's own output valid). That enable is itself
    a register, computed a cycle ahead from the next values of both:
    ``last_valid' = advance ? valid[-2] : last_valid`` (``fire`` for ``depth`` 1) and
    ``skid_valid' = (skid_valid | last_valid) & ~o.ready``; it equals the expression in
    every cycle (both start at 1 and follow the same recurrence), so the enables hang off a
    flip-flop with no LUT in front, and ``o.ready`` reaches ``1 + enables`` flip-flops: the
    skid's valid bit and the enable copies.

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
    out_ready : str
        ``"direct"`` (default): ``output.ready`` in every enable; ``"registered"``: through
        the skid register of :func:`output_stage`.
    elastic : bool
        ``False`` (default): one enable for every stage, as above. ``True``: an enable per
        stage, so that an empty stage (a bubble) fills while the stages after it hold:
        stage ``s`` (the registers :meth:`register` makes with ``stage=s``, and valid bit
        ``s``) loads on ``advance_s = ~valid[s] | advance_{s+1}``, the last stage on
        :attr:`advance` as above. Each is an OR of valid bits and :attr:`advance`
        (``advance_s = ~valid[s] | ... | ~valid[depth - 2] | advance``), so with
        ``out_ready="registered"`` no enable reads ``output.ready``. ``advance_s`` is
        high whenever ``advance_{s+1}`` is, so a stage never gives its item to the next
        without taking the one before it: nothing is lost or repeated. The latency and the
        rate (one transfer per cycle while the output is taken) are unchanged; with
        ``output.ready`` low the pipeline holds ``depth`` items, however sparse its input.
        Needs ``enables=1``.

    Members
    -------
    advance : Signal
        High when every register loads (with ``elastic``: the last stage's enable).
    fire : Signal
        High when the inputs transfer.
    output
        The stream whose payload the unit drives: ``output`` itself, or with
        ``out_ready="registered"`` the skid register's input.

    Raises
    ------
    ValueError
        If ``depth`` or ``enables`` is less than 1, ``out_ready`` is not one of
        :data:`OUT_READY_MODES`, or ``elastic`` is not a bool or is set with ``enables``
        above 1.
    """

    def __init__(self, m: Module, *, inputs: list, output, depth: int, enables: int = 1,
                 out_ready: str = "direct", elastic: bool = False) -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, not {depth}")
        if not isinstance(enables, int) or isinstance(enables, bool) or enables < 1:
            raise ValueError(f"enables must be an integer of at least 1, not {enables!r}")
        if not isinstance(elastic, bool):
            raise ValueError(f"elastic must be True or False, not {elastic!r}")
        if elastic and enables != 1:
            raise ValueError(f"elastic needs enables=1 (one enable per stage), not "
                             f"enables={enables}")
        self._m = m
        self._depth = depth if elastic else None
        port = output  # the unit's output stream
        self.output = output = output_stage(m, port, out_ready, name="out")
        if out_ready == "registered":
            skid_valid = ~output.ready  # output_stage: inner.ready = ~skid_valid
            self.advance = Signal(name="advance", init=1)
        else:
            self.advance = Signal()
            m.d.comb += self.advance.eq(~output.valid | output.ready)
        self.fire = Signal()
        valid = Signal(depth)
        # With elastic, one enable per stage, the first stage's taking the input.
        self._stages = [self.advance]
        if elastic:
            for s in reversed(range(depth - 1)):
                stage = Signal(name=f"advance_s{s}")
                m.d.comb += stage.eq(_stage_enable(valid[s], self._stages[0]))
                self._stages.insert(0, stage)
        first = self._stages[0]
        all_valid = 1
        for source in inputs:
            all_valid = source.valid & all_valid
            others = 1
            for other in inputs:
                if other is not source:
                    others = other.valid & others
            m.d.comb += source.ready.eq(others & first)
        m.d.comb += self.fire.eq(all_valid & first)
        if elastic:
            for s, stage in enumerate(self._stages):
                with m.If(stage):
                    m.d.sync += valid[s].eq(valid[s - 1] if s else self.fire)
        else:
            with m.If(self.advance):
                m.d.sync += valid.eq((valid << 1) | self.fire)
        m.d.comb += output.valid.eq(valid[-1])
        self._advances = [self.advance]
        if out_ready == "registered":
            # Copy k reads its own value (so no two copies are one register to synthesis).
            before = valid[-2] if depth > 1 else self.fire
            skid_next = (skid_valid | valid[-1]) & ~port.ready
            for k in range(enables):
                advance = self.advance if k == 0 else Signal(name=f"advance{k}", init=1)
                m.d.sync += advance.eq(~Mux(advance, before, valid[-1]) | ~skid_next)
                if k:
                    self._advances.append(advance)
            return
        for k in range(1, enables):
            copy, advance = Signal(name=f"valid_copy{k}"), Signal(name=f"advance{k}")
            m.d.comb += advance.eq(~copy | output.ready)
            with m.If(advance):
                m.d.sync += copy.eq(valid[-2] if depth > 1 else self.fire)
            self._advances.append(advance)

    def register(self, value, name: str, shape=None, *, enable: int = 0,
                 stage: int | None = None) -> Signal:
        """A register of ``value`` (of ``shape``, default the value's own) that loads on
        :attr:`advance` (its copy number ``enable``, see ``enables``), or, in an
        ``elastic`` pipeline, on the enable of ``stage`` (``0`` the first stage, which
        reads the inputs; required there, and only there).

        Raises
        ------
        ValueError
            If ``enable`` is not a copy number, ``0 .. enables - 1``, or ``stage`` is not a
            stage number ``0 .. depth - 1`` of an elastic pipeline (or is given to one that
            is not elastic).
        """
        n = len(self._advances)
        if not isinstance(enable, int) or isinstance(enable, bool) or not 0 <= enable < n:
            raise ValueError(f"enable must be an integer from 0 to {n - 1} (the copies of "
                             f"the enable), not {enable!r}")
        load = self._advances[enable]
        if self._depth is None:
            if stage is not None:
                raise ValueError(f"stage is for an elastic pipeline only, not {stage!r} "
                                 f"(this one has one enable for every stage)")
        elif (not isinstance(stage, int) or isinstance(stage, bool)
              or not 0 <= stage < self._depth):
            raise ValueError(f"stage must be an integer from 0 to {self._depth - 1} in an "
                             f"elastic pipeline, not {stage!r}")
        else:
            load = self._stages[stage]
        reg = Signal(Shape.cast(shape) if shape is not None else value.shape(), name=name)
        with self._m.If(load):
            self._m.d.sync += reg.eq(value)
        return reg
