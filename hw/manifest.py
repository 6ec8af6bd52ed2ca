"""Describe a component's Verilog ports and payload fields as plain data, and write a
design's files.

The manifest is what testbenches and flows read instead of hard-coding bit positions.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml
from amaranth.hdl import Shape, Value
from amaranth.lib import data, stream, wiring

from .fusesoc import core_file

__all__ = ["describe_layout", "describe_ports", "dump_manifest", "write"]


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


def dump_manifest(manifest: dict) -> str:
    """YAML text of a manifest, keys in insertion order (deterministic)."""
    return yaml.safe_dump(manifest, sort_keys=False, default_flow_style=None, width=100)


def write(design, out: Path) -> tuple[Path, Path, Path]:
    """Write ``out/<name>.v``, ``out/<name>.yaml`` and the FuseSoC core ``out/<name>.core``.

    Every file is written to a temporary in ``out`` first, given the mode the umask allows
    (0644 under umask 022) and renamed into place, so a failure leaves no half-written file
    behind.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    targets = [(out / f"{design.name}.v", design.verilog),
               (out / f"{design.name}.yaml", dump_manifest(design.manifest)),
               (out / f"{design.name}.core", core_file(design.manifest))]
    mode = 0o666 & ~_umask()  # mkstemp creates 0600; a generated file is for everyone
    temps = []
    try:
        for _path, text in targets:
            fd, tmp = tempfile.mkstemp(dir=out, prefix=".mxforge-", suffix=".tmp")
            temps.append(tmp)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
                os.fchmod(f.fileno(), mode)
        for (path, _text), tmp in zip(targets, temps, strict=True):
            os.replace(tmp, path)
    finally:
        for tmp in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return targets[0][0], targets[1][0], targets[2][0]


def _umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
