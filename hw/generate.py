"""Generate Verilog and a YAML manifest for an mxforge unit.

Usage::

    python -m hw.generate --bits 6 --block 16 [--top dot] [--exp-bits 8]
                          [--abits N] [--wbits N] [--out DIR]

writes ``DIR/<name>.v`` and ``DIR/<name>.yaml``, where ``<name>`` encodes every parameter
(e.g. ``mxint_dot_a6_w6_e8_k16``) and is also the Verilog module name.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from amaranth.back import verilog
from amaranth.lib import wiring

from golden.rounding import ROUNDING_MODES

from . import __version__
from .manifest import describe_ports
from .top import Top

__all__ = ["TOPS", "Design", "Top", "build", "elaborate", "main", "write"]


#: Modules of hw/ that define a ``TOP``, in ``--help`` order.
UNIT_MODULES = (
    "dot_product", "block_adder", "accumulator", "cast", "dequantizer", "linear",
    # baselines for the density reports
    "fp_mac", "int_mac", "int_dot",
)


def _collect_tops() -> dict[str, Top]:
    tops = {}
    for module in UNIT_MODULES:
        if importlib.util.find_spec(f"{__package__}.{module}") is None:
            continue  # unit not written yet
        top = importlib.import_module(f"{__package__}.{module}").TOP
        tops[top.key] = top
    return tops


TOPS: dict[str, Top] = _collect_tops()


@dataclass(frozen=True)
class Design:
    """A generated unit.

    Members
    -------
    name : str
        Module and file name.
    verilog : str
        Verilog text; the top module is ``name``.
    manifest : dict
        Parameters, ports, stream payload fields, latency, generator version.
    component : wiring.Component
        The elaborated Amaranth component.
    """

    name: str
    verilog: str
    manifest: dict = field(repr=False)
    component: wiring.Component = field(repr=False)


def build(top: str, **params) -> wiring.Component:
    """Construct unit ``top`` with constructor keyword arguments ``params``.

    Raises
    ------
    ValueError
        If ``top`` is unknown or a parameter is out of range.
    TypeError
        If a parameter has the wrong type.
    """
    if top not in TOPS:
        raise ValueError(f"top must be one of {', '.join(TOPS)}, not {top!r}")
    return TOPS[top].component(**params)


def elaborate(top: str, **params) -> Design:
    """Build unit ``top`` with keyword arguments ``params`` and convert it to Verilog.

    Raises
    ------
    ValueError, TypeError
        As :func:`build`.
    """
    return _emit(top, build(top, **params), params)


def _emit(top: str, component: wiring.Component, params: dict) -> Design:
    spec = TOPS[top]
    name = spec.name(params)
    text = verilog.convert(component, name=name, emit_src=False)
    ports, streams = describe_ports(component)
    manifest = {
        "generator": {"name": "mxforge", "version": __version__},
        "top": top,
        "module": name,
        "summary": spec.summary,
        "parameters": dict(params),
        "latency": component.latency,
        "clock": "clk",
        "reset": {"name": "rst", "active": "high", "synchronous": True},
        "ports": ports,
        "streams": streams,
    }
    library = getattr(component, "cell_library", None)
    if library:
        manifest["cell_library"] = library
    return Design(name=name, verilog=text, manifest=manifest, component=component)


def dump_manifest(manifest: dict) -> str:
    """YAML text of a manifest, keys in insertion order (deterministic)."""
    return yaml.safe_dump(manifest, sort_keys=False, default_flow_style=None, width=100)


def write(design: Design, out: Path) -> tuple[Path, Path]:
    """Write ``out/<name>.v`` and ``out/<name>.yaml``.

    Both files are written to temporaries in ``out`` first and renamed into place, so a
    failure leaves no half-written file behind.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    targets = [(out / f"{design.name}.v", design.verilog),
               (out / f"{design.name}.yaml", dump_manifest(design.manifest))]
    temps = []
    try:
        for _path, text in targets:
            fd, tmp = tempfile.mkstemp(dir=out, prefix=".mxforge-", suffix=".tmp")
            temps.append(tmp)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
        for (path, _text), tmp in zip(targets, temps, strict=True):
            os.replace(tmp, path)
    finally:
        for tmp in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return targets[0][0], targets[1][0]


#: Constructor parameters and the command-line options that set them.
PARAM_FLAGS = {
    "a_bits": "--abits/--bits",
    "b_bits": "--wbits/--bits",
    "man_bits": "--bits",
    "exp_bits": "--exp-bits",
    "block": "--block",
    "rounding": "--rounding",
    "out_bits": "--out-bits",
    "guard_bits": "--guard-bits",
}


def _as_flags(message: str, top: str) -> str:
    """Name the command-line option, not the constructor parameter, in an error."""
    flags = {**PARAM_FLAGS, **TOPS[top].flags}
    param, _, rest = message.partition(" ")
    if param not in flags:
        return message
    if rest.endswith("not None"):  # an option the unit needs was not given
        return f"{flags[param]} is required for --top {top}"
    return f"{flags[param]} {rest}"


class OneLineParser(argparse.ArgumentParser):
    """An argument parser that reports a mistake in one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def add_unit_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options that choose a unit and its parameters (shared with ``sim.run``)."""
    parser.add_argument("--top", default="dot", choices=sorted(TOPS),
                        help="unit to generate (default: %(default)s)")
    parser.add_argument("--bits", type=int, default=None,
                        help="mantissa bits per element, sign included (2 to 24); "
                             "required by every MXINT unit")
    parser.add_argument("--block", type=int, default=None,
                        help="elements per shared exponent, k (1 to 1024); required by every "
                             "MXINT unit")
    parser.add_argument("--exp-bits", type=int, default=8,
                        help="shared exponent bits (2 to 8; default: %(default)s, OCP E8M0)")
    parser.add_argument("--abits", type=int, default=None,
                        help="mantissa bits of the activation operand a (default: --bits)")
    parser.add_argument("--wbits", type=int, default=None,
                        help="mantissa bits of the weight operand b (default: --bits)")
    parser.add_argument("--rounding", choices=ROUNDING_MODES, default="even",
                        help="rounding of units that drop bits: nearest-even, nearest-away, "
                             "toward zero, toward -inf (default: %(default)s)")
    parser.add_argument("--out-bits", type=int, default=None,
                        help="mantissa bits of an MXINT result (default: --bits)")
    parser.add_argument("--guard-bits", type=int, default=None,
                        help="extra low bits kept when aligning exponents (default: per unit)")
    seen = {action.dest for action in parser._actions}
    for top in TOPS.values():
        for flags, kwargs in top.options:
            dest = kwargs.get("dest", flags[0].lstrip("-").replace("-", "_"))
            if dest not in seen:
                seen.add(dest)
                parser.add_argument(*flags, **kwargs)


def parameters_from_args(args: argparse.Namespace) -> dict:
    """Constructor keyword arguments of ``args.top`` from parsed options."""
    return TOPS[args.top].from_args(args)


def validate(top: str, params: dict, parser: argparse.ArgumentParser) -> wiring.Component:
    """Build the unit; a bad parameter ends the program with one line naming its option."""
    try:
        return build(top, **params)
    except (TypeError, ValueError) as exc:
        parser.error(_as_flags(str(exc), top))


def unit_epilog() -> str:
    tops = "\n".join(f"  {key:8s} {top.summary}" for key, top in TOPS.items())
    return f"units (--top):\n{tops}"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m hw.generate",
        description="Generate Verilog and a YAML manifest (ports, payload fields, latency) "
                    "for an MXINT arithmetic unit.",
        epilog=f"{unit_epilog()}\n\nexample:\n  python -m hw.generate --bits 6 --block 16 "
               "--out build/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_unit_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("build"),
                        help="output folder (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    params = parameters_from_args(args)
    design = _emit(args.top, validate(args.top, params, parser), params)
    try:
        v_path, m_path = write(design, args.out)
    except OSError as exc:
        print(f"{parser.prog}: error: cannot write to --out {args.out}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {v_path}")
    print(f"wrote {m_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
