"""Describe a component's Verilog ports and payload fields as plain data.

The manifest is what testbenches and flows read instead of hard-coding bit positions.
"""

from __future__ import annotations

from amaranth.hdl import Shape, Value
from amaranth.lib import data, stream, wiring

__all__ = ["describe_layout", "describe_ports"]


def describe_layout(layout: data.Layout | Shape, *, prefix: str = "",
                    offset: int = 0) -> list[dict]:
    """Flatten a payload layout into leaf fields.

    Each field is ``{"name", "offset", "width", "signed"}``; an array of scalars becomes
    one field with ``"count"`` and ``"stride"`` (element ``i`` sits at
    ``offset + i * stride``). Names of nested fields are joined with dots.
    """
    if isinstance(layout, data.StructLayout):
        fields = []
        for name, field in layout:
            sub = f"{prefix}.{name}" if prefix else name
            fields += describe_layout(field.shape, prefix=sub, offset=offset + field.offset)
        return fields
    if isinstance(layout, data.ArrayLayout):
        elem = Shape.cast(layout.elem_shape) if not isinstance(layout.elem_shape, data.Layout) \
            else None
        if elem is None:
            raise TypeError(f"arrays of aggregates are not supported in manifests: {layout!r}")
        return [{"name": prefix, "offset": offset, "width": elem.width, "signed": elem.signed,
                 "count": layout.length, "stride": elem.width}]
    shape = Shape.cast(layout)
    return [{"name": prefix, "offset": offset, "width": shape.width, "signed": shape.signed}]


def describe_ports(component: wiring.Component) -> tuple[list[dict], dict[str, dict]]:
    """Ports of the Verilog module Amaranth emits for ``component``, and its streams.

    Returns
    -------
    ports : list of dict
        ``{"name", "direction", "width"}`` for ``clk``, ``rst`` and every signal of the
        signature, named as in the Verilog (path joined with ``__``).
    streams : dict
        Per stream member: ``direction`` (``in``: the design consumes it), the Verilog
        names of ``payload``/``valid``/``ready``, payload width and fields.
    """
    ports = [{"name": "clk", "direction": "input", "width": 1},
             {"name": "rst", "direction": "input", "width": 1}]
    for path, member, value in component.signature.flatten(component):
        ports.append({"name": "__".join(str(p) for p in path),
                      "direction": "input" if member.flow == wiring.In else "output",
                      "width": len(Value.cast(value))})
    streams = {}
    for name, member in component.signature.members.items():
        if not (member.is_signature and isinstance(member.signature, stream.Signature)):
            continue
        payload_shape = member.signature.members["payload"].shape
        streams[name] = {
            "direction": "in" if member.flow == wiring.In else "out",
            "payload": f"{name}__payload",
            "valid": f"{name}__valid",
            "ready": f"{name}__ready",
            "width": Shape.cast(payload_shape).width,
            "fields": describe_layout(payload_shape),
        }
    return ports, streams
