"""AXI4-Stream face for any mxforge unit: ``python -m hw.generate --interface axis``.

The native units speak :mod:`amaranth.lib.stream` (``<s>__payload/valid/ready``, clock
``clk``, active-high ``rst``). :class:`AxisWrapper` puts the names an FPGA integrator expects
around one of them, and nothing else: no registers on the data path, no buffering, the same
latency and throughput.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockDomain, Module, Mux, Shape, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .manifest import describe_layout

__all__ = ["AxisStream", "AxisWrapper", "describe_axis"]

#: The payload field that travels on ``tlast`` instead of inside ``tdata``.
LAST_FIELD = "last"


@dataclass(frozen=True)
class AxisStream:
    """How one native stream maps onto AXI4-Stream.

    Members
    -------
    name : str
        The native stream (``a``, ``i``, ``o`` ...).
    inbound : bool
        True for a stream the unit consumes (``s_axis_``), False for ``m_axis_``.
    layout : data.StructLayout
        The native payload.
    data_layout : data.StructLayout
        The fields carried in ``tdata``: the payload without ``last``, packed from bit 0.
    tdata_width : int
        ``data_layout.size`` rounded up to whole bytes (at least 8); the pad bits are
        ignored on inputs and driven 0 on outputs.
    last_field : bool
        The payload's ``last`` field travels on ``tlast``.
    packet : int or None
        ``tlast`` is high on every ``packet``-th transfer (counted by the wrapper).
    """

    name: str
    inbound: bool
    layout: data.StructLayout
    data_layout: data.StructLayout
    tdata_width: int
    last_field: bool
    packet: int | None

    @property
    def prefix(self) -> str:
        return f"{'s' if self.inbound else 'm'}_axis_{self.name}"

    @property
    def has_tlast(self) -> bool:
        return self.last_field or self.packet is not None


def _plan(component: wiring.Component, packets: dict[str, int]) -> list[AxisStream]:
    plan = []
    unknown = set(packets) - set(component.signature.members)
    if unknown:
        raise ValueError(f"packets names streams the unit lacks: {', '.join(sorted(unknown))}")
    for name, member in component.signature.members.items():
        if not (member.is_signature and isinstance(member.signature, stream.Signature)):
            raise TypeError(f"member {name!r} of {type(component).__name__} is not a stream; "
                            "only all-stream units can be wrapped")
        layout = member.signature.members["payload"].shape
        if not isinstance(layout, data.StructLayout):
            raise TypeError(f"stream {name!r} payload must be a StructLayout, not {layout!r}")
        inbound = member.flow == In
        fields = {n: f.shape for n, f in layout}
        last_field = inbound and LAST_FIELD in fields and Shape.cast(fields[LAST_FIELD]) == \
            Shape.cast(1)
        if last_field:
            del fields[LAST_FIELD]
        data_layout = data.StructLayout(fields)
        packet = packets.get(name)
        if packet is not None and (inbound or packet < 1):
            raise ValueError(f"packets[{name!r}] must be a positive count on an output stream, "
                             f"not {packet!r}")
        plan.append(AxisStream(name=name, inbound=inbound, layout=layout,
                               data_layout=data_layout,
                               tdata_width=max(8, -(-data_layout.size // 8) * 8),
                               last_field=last_field, packet=packet))
    return plan


class AxisWrapper(wiring.Component):
    """A native unit behind AXI4-Stream ports.

    For each native stream ``<s>`` the wrapper has ``s_axis_<s>_tdata/tvalid/tready`` (an
    input of the unit) or ``m_axis_<s>_tdata/tvalid/tready`` (an output), plus ``tlast``:

    * on an input whose payload has a 1-bit ``last`` field (the accumulator and the integer
      baselines close a group with it), that field is carried on ``s_axis_<s>_tlast``
      instead of in ``tdata``;
    * on an output listed in ``packets``, ``m_axis_<s>_tlast`` is high on every
      ``packets[s]``-th transfer (a transfer counter, the wrapper's only logic).

    ``tdata`` holds the other payload fields in their native order, packed from bit 0
    (:attr:`AxisStream.data_layout`), padded with zeros to whole bytes. ``tvalid``/``tready``
    are the native ``valid``/``ready`` unchanged, so the stream rules hold as natively:
    ``tvalid`` never waits for ``tready`` and ``tdata`` is held until the transfer.

    The clock is ``aclk``; ``aresetn`` is an active-low synchronous reset (inverted into the
    unit's ``sync`` domain). Latency and throughput are the unit's own.

    Parameters
    ----------
    core : wiring.Component
        The unit; every member of its signature must be a ``stream.Signature`` with a
        ``StructLayout`` payload.
    packets : dict of str to int
        Output streams that get a counted ``tlast``, and the transfers per packet.

    Members
    -------
    aclk, aresetn : ``In(1)``
    s_axis_<s>_tdata : ``In(w)``, ``s_axis_<s>_tvalid`` : ``In(1)``, ``s_axis_<s>_tready`` :
    ``Out(1)``, ``s_axis_<s>_tlast`` : ``In(1)`` where present
    m_axis_<s>_tdata : ``Out(w)``, ``m_axis_<s>_tvalid`` : ``Out(1)``, ``m_axis_<s>_tready``
    : ``In(1)``, ``m_axis_<s>_tlast`` : ``Out(1)`` where present

    Raises
    ------
    TypeError
        If ``core`` is not a component, or has a member that is not a stream.
    ValueError
        If ``packets`` names an unknown or input stream, or a count below 1.
    """

    def __init__(self, core: wiring.Component, *, packets: dict[str, int] | None = None) -> None:
        if not isinstance(core, wiring.Component):
            raise TypeError(f"core must be a wiring.Component, not {core!r}")
        packets = {} if packets is None else dict(packets)
        self._core = core
        self._plan = _plan(core, packets)
        members = {"aclk": In(1), "aresetn": In(1)}
        for s in self._plan:
            fwd, back = (In, Out) if s.inbound else (Out, In)
            members[f"{s.prefix}_tdata"] = fwd(s.tdata_width)
            members[f"{s.prefix}_tvalid"] = fwd(1)
            members[f"{s.prefix}_tready"] = back(1)
            if s.has_tlast:
                members[f"{s.prefix}_tlast"] = fwd(1)
        super().__init__(members)

    core = property(lambda self: self._core, doc="The wrapped native unit.")
    streams = property(lambda self: tuple(self._plan), doc="One :class:`AxisStream` each.")
    latency = property(lambda self: self._core.latency, doc="The unit's latency.")

    @property
    def cell_library(self) -> str | None:
        """The unit's primitive library, if it instantiates any."""
        return getattr(self._core, "cell_library", None)

    def elaborate(self, platform) -> Module:
        m = Module()
        # The unit's `sync` domain is defined here, so the top module has no clk/rst ports
        # of its own: its clock is aclk and its (synchronous) reset the inverse of aresetn.
        m.domains.sync = sync = ClockDomain("sync")
        m.d.comb += [sync.clk.eq(self.aclk), sync.rst.eq(~self.aresetn)]
        m.submodules.core = core = self._core
        for s in self._plan:
            port = getattr(core, s.name)
            tdata, tvalid, tready = (getattr(self, f"{s.prefix}_{sig}")
                                     for sig in ("tdata", "tvalid", "tready"))
            m.d.comb += tready.eq(port.ready) if s.inbound else port.ready.eq(tready)
            m.d.comb += port.valid.eq(tvalid) if s.inbound else tvalid.eq(port.valid)
            fields = [n for n, _ in s.data_layout]
            if s.inbound:
                view = data.View(s.data_layout, tdata[:s.data_layout.size])
                m.d.comb += [getattr(port.payload, n).eq(getattr(view, n)) for n in fields]
                if s.last_field:
                    m.d.comb += port.payload.last.eq(getattr(self, f"{s.prefix}_tlast"))
            else:
                # Outputs keep every field (only inputs move `last` to tlast), so the
                # payload is tdata's low bits as it is; eq() zero-fills the pad.
                m.d.comb += tdata.eq(Value.cast(port.payload))
                if s.packet is not None:
                    tlast = getattr(self, f"{s.prefix}_tlast")
                    if s.packet == 1:
                        m.d.comb += tlast.eq(1)
                    else:
                        count = Signal(range(s.packet), name=f"{s.name}_beat")
                        with m.If(tvalid & tready):
                            m.d.sync += count.eq(Mux(tlast, 0, count + 1))
                        m.d.comb += tlast.eq(count == s.packet - 1)
        return m


def describe_axis(wrapper: AxisWrapper) -> dict:
    """Manifest entries of a wrapped unit: clock, reset, ports and per-stream AXI names.

    Each stream gives ``direction``, ``tdata``/``tvalid``/``tready`` (and ``tlast``) port
    names, ``width`` (of ``tdata``), ``fields`` (bit offsets inside ``tdata``, as in the
    native manifest), and how ``tlast`` is made: ``tlast_field`` (the native payload field
    it carries) or ``tlast_every`` (high on every n-th transfer).
    """
    ports = []
    for path, member, value in wrapper.signature.flatten(wrapper):
        ports.append({"name": "__".join(str(p) for p in path),
                      "direction": "input" if member.flow == In else "output",
                      "width": len(Value.cast(value))})
    streams = {}
    for s in wrapper.streams:
        entry = {
            "direction": "in" if s.inbound else "out",
            "tdata": f"{s.prefix}_tdata",
            "tvalid": f"{s.prefix}_tvalid",
            "tready": f"{s.prefix}_tready",
            "width": s.tdata_width,
            "fields": describe_layout(s.data_layout),
        }
        if s.has_tlast:
            entry["tlast"] = f"{s.prefix}_tlast"
            if s.last_field:
                entry["tlast_field"] = LAST_FIELD
            else:
                entry["tlast_every"] = s.packet
        streams[s.name] = entry
    return {
        "interface": "axis",
        "clock": "aclk",
        "reset": {"name": "aresetn", "active": "low", "synchronous": True},
        "ports": ports,
        "streams": streams,
    }
