"""Generate Verilog and a YAML manifest for an mxforge unit.

Usage::

    python -m hw.generate --bits 6 --block 16 [--top dot] [--exp-bits 8]
                          [--abits N] [--wbits N] [--out DIR]

writes ``DIR/<name>.v``, ``DIR/<name>.yaml`` and a FuseSoC core ``DIR/<name>.core``, where
``<name>`` encodes every parameter (e.g. ``mxint_dot_a6_w6_e8_k16``; ``--interface axis``
appends ``_axis``) and is also the Verilog module name.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import inspect
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from amaranth.back import verilog
from amaranth.hdl import UnusedElaboratable
from amaranth.lib import wiring

from golden.rounding import ROUNDING_MODES

from . import __version__
from .axis import AxisWrapper, describe_axis, output_packets
from .config import OneLineParser, add_config_arguments, options_argv, parse_args
from .fusesoc import core_file
from .manifest import describe_ports
from .top import Top

__all__ = ["TOPS", "Design", "Top", "build", "elaborate", "generate", "main", "write"]


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


#: ``interface`` choices: the units' own streams, or AXI4-Stream names (``hw/axis.py``).
INTERFACES = ("native", "axis")


def elaborate(top: str, *, interface: str = "native", **params) -> Design:
    """Build unit ``top`` with keyword arguments ``params`` and convert it to Verilog.

    Raises
    ------
    ValueError, TypeError
        As :func:`build`.
    """
    if interface not in INTERFACES:
        raise ValueError(f"interface must be 'native' or 'axis', not {interface!r}")
    return _emit(top, build(top, **params), params, interface=interface)


def _emit(top: str, component: wiring.Component, params: dict, *,
          interface: str = "native") -> Design:
    spec = TOPS[top]
    params = resolved_parameters(top, component, params)
    name = spec.name(params)
    if interface == "axis":  # the same unit behind AXI4-Stream ports, aclk and aresetn
        component = AxisWrapper(component, packets=output_packets(top, component))
        name = f"{name}_axis"
    text = verilog_header(top, params, interface) + verilog.convert(component, name=name,
                                                                     emit_src=False)
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
    if interface == "axis":
        manifest.update(describe_axis(component))
    return Design(name=name, verilog=text, manifest=manifest, component=component)


def verilog_header(top: str, params: dict, interface: str = "native") -> str:
    """The comment every generated Verilog file starts with: the generator's version and
    the Python call that makes the same file (``params`` resolved, so the call is exact)."""
    args = ", ".join([repr(top)] + [f"{key}={value!r}" for key, value in params.items()]
                     + ([f"interface={interface!r}"] if interface != "native" else []))
    return (f"// Generated by mxforge {__version__}. The same file again, from Python:\n"
            f"//   hw.generate.write(hw.generate.elaborate({args}), OUT)\n")


def resolved_parameters(top: str, component: wiring.Component, params: dict) -> dict:
    """Every constructor parameter of unit ``top`` with the value ``component`` resolved.

    Names and manifests are made from these, so that the Python API (which may leave a
    parameter to its default) and the command line (which passes every option) give the
    same files. A parameter is read from the component's property of the same name, else
    taken from ``params`` or the constructor's default; parameters that stay ``None`` (not
    used by this configuration, e.g. ``a_bits`` of a block dequantiser) are left out, so the
    manifest never holds ``null``.
    """
    resolved = {}
    for name, parameter in inspect.signature(TOPS[top].component).parameters.items():
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        if isinstance(getattr(type(component), name, None), property):
            value = getattr(component, name)
        else:
            value = params.get(name, parameter.default)
        if value is not None and value is not inspect.Parameter.empty:
            resolved[name] = value
    return resolved


def dump_manifest(manifest: dict) -> str:
    """YAML text of a manifest, keys in insertion order (deterministic)."""
    return yaml.safe_dump(manifest, sort_keys=False, default_flow_style=None, width=100)


def write(design: Design, out: Path) -> tuple[Path, Path, Path]:
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


def output_problem(path: str | os.PathLike, *, folder: bool = True) -> str | None:
    """Why ``path`` cannot be used as an output folder (or, with ``folder=False``, an output
    file), or ``None`` if it can. Nothing is left behind by the check.

    A folder must be a folder or not exist yet; a file must not be a folder. The nearest
    existing folder on the way must let a folder be created in it (tried, then removed).
    """
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        return "is a file, not a folder"
    if not folder:
        if path.is_dir():
            return "is a folder, not a file"
        if path.exists():
            return None if os.access(path, os.W_OK) else "is a file that cannot be written"
    existing = path if folder else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"cannot be created: {existing} is a file, not a folder"
    try:
        tempfile.TemporaryDirectory(dir=existing, prefix=".mxforge-probe-").cleanup()
    except OSError as exc:
        return f"cannot be created: {existing} does not take new files ({exc.strerror or exc})"
    return None


#: Constructor parameters and the command-line options that set them.
PARAM_FLAGS = {
    "a_bits": "--abits/--bits",
    "b_bits": "--wbits/--bits",
    "man_bits": "--bits",
    "exp_bits": "--exp-bits",
    "block": "--block",
    "rounding": "--rounding",
    "out_bits": "--out-bits/--bits",  # --out-bits defaults to --bits
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


#: Where a parsed namespace keeps the unit options typed on the command line:
#: ``{dest: option string as typed}``. Options left to their defaults are not in it.
GIVEN = "_given_options"

#: Option destinations that are another spelling of one option (old name -> name).
DEST_ALIASES = {"acc_bits": "acc_width"}

#: Widths that a preset sets: given together with the preset they are a conflict.
PRESET_WIDTHS = {"fp_preset": ("exp_bits", "bits"), "int_preset": ("bits", "abits", "wbits")}

ACC_WIDTH_HELP = ("accumulator width in bits: accum, dequant --source accum, linear (default: "
                  "input width + guard bits + 8, at most 62); intmac, intdot (wrapping; "
                  "default: exact width of one sum + 16). --acc-bits is the old spelling")


class _Given(argparse.Action):
    """Store an option's value and remember that it was typed, and how."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        setattr(namespace, GIVEN, {**getattr(namespace, GIVEN, {}), self.dest: option_string})


def add_unit_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options that choose a unit and its parameters (shared with ``sim.run``).

    Unit options record that they were typed (:data:`GIVEN`), so that
    :func:`unit_parameters` can refuse one that the chosen unit does not read.
    """
    parser.add_argument("--top", default="dot", choices=sorted(TOPS),
                        help="unit to generate (default: %(default)s)")
    parser.add_argument("--bits", type=int, default=None, action=_Given,
                        help="mantissa bits per element, sign included (2 to 24); "
                             "required by every MXINT unit. For fpmac: the fraction field "
                             "bits, hidden bit not included (as --frac-bits)")
    parser.add_argument("--frac-bits", dest="bits", type=int, default=None, action=_Given,
                        help="fpmac: fraction field bits, hidden bit not included")
    parser.add_argument("--block", type=int, default=None, action=_Given,
                        help="elements per shared exponent, k (1 to 1024); required by every "
                             "MXINT unit")
    parser.add_argument("--exp-bits", type=int, default=8, action=_Given,
                        help="shared exponent bits (2 to 8; default: %(default)s, OCP E8M0); "
                             "fpmac: exponent field bits")
    parser.add_argument("--abits", type=int, default=None, action=_Given,
                        help="mantissa bits of the activation operand a (default: --bits)")
    parser.add_argument("--wbits", type=int, default=None, action=_Given,
                        help="mantissa bits of the weight operand b (default: --bits)")
    parser.add_argument("--rounding", choices=ROUNDING_MODES, default="even", action=_Given,
                        help="rounding of units that drop bits: nearest-even, nearest-away, "
                             "toward zero, toward -inf (default: %(default)s)")
    parser.add_argument("--out-bits", type=int, default=None, action=_Given,
                        help="mantissa bits of an MXINT result (default: --bits)")
    parser.add_argument("--guard-bits", type=int, default=None, action=_Given,
                        help="extra low bits kept when aligning exponents (default: per unit)")
    parser.add_argument("--interface", choices=INTERFACES, default="native",
                        help="ports: the native streams (clk, rst) or AXI4-Stream (aclk, "
                             "aresetn, s_axis_*/m_axis_*) (default: %(default)s)")
    seen = {action.dest for action in parser._actions} | set(DEST_ALIASES)
    for top in TOPS.values():
        for flags, kwargs in top.options:
            dest = kwargs.get("dest", flags[0].lstrip("-").replace("-", "_"))
            if dest not in seen:
                seen.add(dest)
                if dest == "acc_width":  # one name for every unit's accumulator width
                    flags, kwargs = (*flags, "--acc-bits"), {**kwargs, "help": ACC_WIDTH_HELP}
                parser.add_argument(*flags, action=_Given, **kwargs)


class _Reads:
    """A view of a namespace that records which options a unit's ``from_args`` reads."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.read = args, set()

    def __getattr__(self, name: str):
        name = DEST_ALIASES.get(name, name)
        self.read.add(name)
        return getattr(self.args, name)


def parameters_from_args(args: argparse.Namespace) -> dict:
    """Constructor keyword arguments of ``args.top`` from parsed options."""
    return TOPS[args.top].from_args(_Reads(args))


def unit_parameters(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """Constructor keyword arguments of ``args.top``; an option typed on the command line
    that the unit does not read, or a width that contradicts a preset, ends the program with
    one line naming the option and the unit."""
    top = args.top
    reads = _Reads(args)
    params = TOPS[top].from_args(reads)
    given = getattr(args, GIVEN, {})
    flags = {}
    for action in parser._actions:
        if action.option_strings:
            flags.setdefault(action.dest, action.option_strings[0])
    if given.get("bits") == "--frac-bits" and top != "fpmac":
        parser.error(f"--frac-bits does not apply to --top {top}: it is the fraction width "
                     "of --top fpmac (use --bits)")
    for dest, typed in given.items():
        if dest in reads.read:
            continue
        if dest == "bits" and {"abits", "wbits"} <= reads.read and \
                {"abits", "wbits"} <= set(given):
            parser.error(f"{typed} makes no difference when both --abits and --wbits are "
                         "given; drop it")
        for preset, widths in PRESET_WIDTHS.items():
            if dest in widths and preset in given and preset in reads.read:
                set_by = ", ".join(f"{key} {value}" for key, value in params.items())
                parser.error(f"{typed} {getattr(args, dest)} conflicts with {given[preset]} "
                             f"{getattr(args, preset)}, which sets {set_by}; give one or the "
                             "other")
        used = ", ".join(flags[d] for d in sorted(reads.read) if d in flags)
        parser.error(f"{typed} does not apply to --top {top}, which reads {used}")
    return params


def validate(top: str, params: dict, parser: argparse.ArgumentParser,
             args: argparse.Namespace | None = None) -> wiring.Component:
    """Build the unit; a bad parameter ends the program with one line naming its option.

    With ``args``, an option typed on the command line whose value the unit folds into
    another that gives the same design (``--levels-per-stage`` beyond the logic depth) is
    refused too, naming the largest value that makes a difference.
    """
    try:
        component = build(top, **params)
    except (TypeError, ValueError) as exc:
        parser.error(_as_flags(str(exc), top))
    given = getattr(args, GIVEN, {}) if args is not None else {}
    for name, value in params.items():
        if name in given and isinstance(getattr(type(component), name, None), property):
            folded = getattr(component, name)
            if folded != value:
                component._MustUse__silence = True  # refused, never elaborated
                parser.error(f"{given[name]} {value} gives the same design as {given[name]} "
                             f"{folded} for --top {top}: use 1 to {folded}")
    return component


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
    add_config_arguments(parser)
    return parser


def generate(top: str = "dot", *, out: str | Path | None = None, **options) -> Design:
    """The command line as a Python call: ``generate("dot", bits=6, block=16, out="build")``
    is ``python -m hw.generate --top dot --bits 6 --block 16 --out build``.

    Options take the long option names of ``python -m hw.generate --help`` (``exp_bits`` or
    ``"exp-bits"``) and the values the command line takes; they go through the same parser
    and checks, and the design (and, with ``out``, the files) is byte for byte the command
    line's.

    Raises
    ------
    ValueError
        With the command line's one-line message, for an unknown option, a value it does
        not take, an option the unit does not read, or an ``out`` that cannot be written.
    """
    parser = build_parser()

    def fail(message: str):
        raise ValueError(message)

    parser.error = fail  # type: ignore[method-assign]
    if "config" in options or "version" in options:
        fail("config and version are command-line options; pass the options themselves")
    words = ["--top", str(top), *options_argv(parser, options, fail)]
    args = parser.parse_args(words)
    with warnings.catch_warnings():
        # Checking the options builds components that are never elaborated.
        warnings.simplefilter("ignore", UnusedElaboratable)
        params = unit_parameters(args, parser)
        component = validate(args.top, params, parser, args)
        design = _emit(args.top, component, params, interface=args.interface)
        gc.collect()
    if out is not None:
        problem = output_problem(Path(out))
        if problem:
            fail(f"out {out} {problem}")
        write(design, Path(out))
    return design


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, argv)  # --config FILE first, the command line over it
    params = unit_parameters(args, parser)
    component = validate(args.top, params, parser, args)
    problem = output_problem(args.out)
    if problem:
        print(f"{parser.prog}: error: --out {args.out} {problem}", file=sys.stderr)
        return 1
    design = _emit(args.top, component, params,
                   interface=args.interface)
    try:
        paths = write(design, args.out)
    except OSError as exc:
        print(f"{parser.prog}: error: cannot write to --out {args.out}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
