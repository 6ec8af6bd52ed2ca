"""The dot product feeding the accumulator, as one design to synthesise and place.

Placed alone, each unit's handshake ends at the device's pins, which nextpnr's
register-to-register Fmax does not time; the back-pressure path from the accumulator's
``i.ready`` into the dot product's pipeline enables is timed only when the two are placed
together. :func:`chain_design` builds that design for :mod:`flows.measure` (the density
report's chain column) and :mod:`benchmarks.placed` (``--chain``).
"""

from __future__ import annotations

__all__ = ["chain_design"]


def chain_design(dot: dict, accum: dict):
    """The dot product with keyword arguments ``dot`` feeding the accumulator with
    ``accum`` (any format both units take), as one design (:class:`hw.generate.Design`).

    Ports: the dot product's ``a`` and ``b`` streams, ``last`` (the accumulator's
    ``i.payload.last``, sampled with the dot product's result) and the accumulator's ``o``
    stream. ``dot.o`` drives ``acc.i`` directly, field by field, with no register between,
    and the accumulator's ``i.ready`` is the dot product's ``o.ready``. The module is
    ``chain_<dot>_<accumulator>`` after the two units' names; the manifest gives it, ``top``
    ``"chain"``, the ports, the streams and the latency (the dot product's plus the
    accumulator's).

    Raises
    ------
    ValueError, TypeError
        If either record refuses its arguments, a parameter both take (operands,
        formats, ``out_ready``) differs between them, or the dot product's result fields
        are not the accumulator's input fields.
    """
    from amaranth.back import verilog
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In

    from hw.generate import Design
    from hw.manifest import describe_ports
    from hw.unit import unit

    dot_unit, acc_unit = unit("dot"), unit("accum")
    dot_record, acc_record = dot_unit.record(**dot), acc_unit.record(**accum)
    dot_kw, acc_kw = dot_record.kwargs(), acc_record.kwargs()
    for key in sorted(dot_kw.keys() & acc_kw.keys() - {"primitives"}):
        if dot_kw[key] != acc_kw[key]:
            raise ValueError(f"{key} is {dot_kw[key]!r} for the dot product but "
                             f"{acc_kw[key]!r} for the accumulator: give both the same "
                             "operands and out_ready")
    dot_c, acc_c = dot_unit.build(dot_record), acc_unit.build(acc_record)
    produced = {name: field.shape for name, field in dot_c.o.payload.shape()}
    taken = {name: field.shape for name, field in acc_c.i.payload.shape() if name != "last"}
    if produced != taken:
        raise ValueError(f"the dot product's result fields {produced} are not the "
                         f"accumulator's input fields {taken}")

    class Chain(wiring.Component):
        def __init__(self):
            self.dot, self.acc = dot_c, acc_c
            ports = dot_c.signature.members
            super().__init__({"a": ports["a"], "b": ports["b"], "last": In(1),
                              "o": acc_c.signature.members["o"]})

        def elaborate(self, platform):
            m = Module()
            m.submodules.dot, m.submodules.acc = self.dot, self.acc
            wiring.connect(m, wiring.flipped(self.a), self.dot.a)
            wiring.connect(m, wiring.flipped(self.b), self.dot.b)
            wiring.connect(m, self.acc.o, wiring.flipped(self.o))
            m.d.comb += [getattr(self.acc.i.payload, name).eq(
                getattr(self.dot.o.payload, name)) for name in produced]
            m.d.comb += [self.acc.i.payload.last.eq(self.last),
                         self.acc.i.valid.eq(self.dot.o.valid),
                         self.dot.o.ready.eq(self.acc.i.ready)]
            return m

    component = Chain()
    name = f"chain_{dot_record.name}_{acc_record.name}"
    text = verilog.convert(component, name=name, emit_src=False)
    ports, streams = describe_ports(component)
    manifest = {"top": "chain", "module": name, "latency": dot_c.latency + acc_c.latency,
                "ports": ports, "streams": streams}
    return Design(name=name, verilog=text, manifest=manifest, component=component)
