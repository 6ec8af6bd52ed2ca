"""The unit options of every command, derived from the units' parameter records.

Each field of a unit's record (:class:`hw.unit.Params`) is one option, spelt as its
:attr:`~hw.unit.ParamSpec.option`; units that share an option share its value. A field with
a ``fallback`` takes the shared option's value when its own is not given (``--abits``
defaults to ``--bits``). A unit's presets (``--fp-preset``) set several fields at once,
and its ``command_defaults`` fill fields the command line does not require.

:func:`unit_record` turns parsed options into the unit's validated record, and ends the
program with one line naming the option for every mistake: an option the unit does not read,
a value out of range, a preset contradicted by a width, a shared option made redundant, a
value that gives the same design as a smaller one.
"""

from __future__ import annotations

import argparse
import sys

from golden.format import MXFPFormat, parse_format
from hw.unit import Params, ParamSpec, Unit, units

__all__ = ["GIVEN", "INTERFACES", "OLD_SPELLINGS", "FormatChoice", "add_unit_arguments",
           "format_choice", "option_message", "reads", "unit_epilog",
           "unit_record"]

#: Where a parsed namespace keeps the unit options typed on the command line:
#: ``{dest: option string as typed}``. Options left to their defaults are not in it.
GIVEN = "_given_options"

#: ``--interface`` choices: the units' own streams, or AXI4-Stream names (``hw/axis.py``).
INTERFACES = ("native", "axis")

#: Old spellings the README documented: old -> new. They still work, with a note.
OLD_SPELLINGS = {"--acc-bits": "--acc-width"}

#: The option every width field falls back to, and its help.
BITS_HELP = ("mantissa bits per element, sign included (2 to 24); the default of every "
             "width option of the unit (--abits, --wbits, --out-bits); fpmac: the fraction "
             "field bits")


class FormatChoice(str):
    """A ``--format`` value (``mxfp4``, ``mxint6``, ...) as typed, with what it sets: the
    record's element field (``element``: ``int`` or an OCP MX element name) and, for
    MXINT, the operand's bits (``bits``)."""

    element: str
    bits: int | None


def format_choice(text: str) -> FormatChoice:
    """Option type of ``--format``, ``--aformat`` and ``--wformat``: a name of
    :func:`golden.parse_format`."""
    try:
        fmt = parse_format(text)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    choice = FormatChoice(text.strip().lower())
    if isinstance(fmt, MXFPFormat):
        choice.element, choice.bits = fmt.element.name, None
    else:
        choice.element, choice.bits = "int", fmt.man_bits
    return choice


def _is_element(spec: ParamSpec) -> bool:
    """A field that holds an operand's element format (``int`` or a minifloat)."""
    return spec.choices is not None and "e2m1" in spec.choices


def _bits_field(element_field: str) -> str:
    """The width field an element field's MXINT format sets: ``a_element`` -> ``a_bits``,
    ``element`` -> ``man_bits``."""
    return element_field.replace("element", "bits") if element_field != "element" else \
        "man_bits"


class _Given(argparse.Action):
    """Store an option's value and remember that it was typed, and how."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        setattr(namespace, GIVEN, {**getattr(namespace, GIVEN, {}), self.dest: option_string})


def _dest(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def reads(key: str) -> set[str]:
    """The argparse destinations unit ``key``'s parameters are read from: each
    parameter's option and, where it has one, the option it falls back to."""
    return {d for s in units()[key].params.specs() for d in (_dest(s.option), s.fallback)
            if d}


def _options() -> dict[str, tuple[ParamSpec | None, list[tuple[str, str]]]]:
    """Every unit option: ``{option: (a spec that has it, [(unit key, help), ...])}``."""
    options: dict[str, tuple[ParamSpec | None, list[tuple[str, str]]]] = {}
    for key, u in units().items():
        for spec in u.params.specs():
            options.setdefault(spec.option, (spec, []))[1].append((key, spec.help))
        for preset in u.presets:
            options.setdefault(preset.option, (None, []))[1].append((key, preset.help))
    return options


def _help(uses: list[tuple[str, str]]) -> str:
    """``"dot, linear: text; intdot: other text"``: each distinct text once."""
    texts: dict[str, list[str]] = {}
    for key, text in uses:
        texts.setdefault(text, []).append(key)
    return "; ".join(f"{', '.join(keys)}: {text}" for text, keys in texts.items())


def add_unit_arguments(parser: argparse.ArgumentParser, *, interface: bool = True) -> None:
    """Add ``--top``, every unit's options and (with ``interface``) ``--interface`` to
    ``parser``.

    Unit options record that they were typed (:data:`GIVEN`), so that :func:`unit_record`
    can refuse one that the chosen unit does not read.
    """
    known = units()
    parser.add_argument("--top", default="dot", choices=list(known),
                        help="unit (default: %(default)s; see the list below)")
    parser.add_argument("--bits", type=int, default=None, action=_Given, help=BITS_HELP)
    for option, (spec, uses) in _options().items():
        if option == "--bits":
            continue
        flags = [option] + [old for old, new in OLD_SPELLINGS.items() if new == option]
        if spec is None:  # a preset
            choices = sorted({c for u in known.values() for p in u.presets
                              if p.option == option for c in p.values})
            kwargs = {"choices": choices}
        elif _is_element(spec):  # named in the --format vocabulary
            kwargs = {"type": format_choice, "metavar": "FORMAT"}
        elif spec.choices is not None:
            # Every unit's values (tile's --output has "mx", linear's has not); the
            # chosen unit's own check refuses a value it does not take, by name.
            kwargs = {"choices": list(dict.fromkeys(c for s in _specs_of(option)
                                                    for c in s.choices or ()))}
        else:
            kwargs = {"type": int}
        defaults = {str(s.default) for s in _specs_of(option) if not s.required}
        default = f" (default: {defaults.pop()})" if len(defaults) == 1 and \
            defaults != {"None"} else ""
        parser.add_argument(*flags, default=None, action=_Given,
                            help=_help(uses) + default, **kwargs)
    if interface:
        parser.add_argument("--interface", choices=INTERFACES, default="native",
                            help="ports: the native streams (clk, rst) or AXI4-Stream "
                                 "(aclk, aresetn, s_axis_*/m_axis_*) (default: %(default)s)")


def _specs_of(option: str) -> list[ParamSpec]:
    return [s for u in units().values() for s in u.params.specs() if s.option == option]


def unit_epilog() -> str:
    """The list of units for the end of ``--help``."""
    return "units (--top):\n" + "\n".join(f"  {key:8s} {u.summary}"
                                          for key, u in units().items())


def option_message(u: Unit, message: str, given: dict[str, str] | None = None,
                   typed: dict[str, str] | None = None) -> str:
    """Name the command-line option, as typed if it is in ``given`` (its own spelling or
    the option it falls back to), not the record's field, in a record's error; with
    ``typed`` (field -> value as typed), show a format as typed (``mxfp8_e5m2``), not as
    the record holds it (``'e5m2'``)."""
    field, _, rest = message.partition(" ")
    specs = {s.name: s for s in u.params.specs()}
    if field not in specs:
        return message
    spec, given = specs[field], given or {}
    flags = next((given[d] for d in (_dest(spec.option), spec.fallback) if d in given),
                 spec.flags)
    if rest.endswith("not None"):  # a field the unit needs was not given
        return f"{flags} is required for --top {u.key}"
    if typed and field in typed:
        value, _, tail = rest.partition(" ")
        if value.startswith("'"):
            rest = f"{typed[field]} {tail}"
    return f"{flags} {rest}"


def unit_record(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Params:
    """The validated record of the unit ``args.top`` from parsed options.

    Every mistake ends the program through ``parser.error`` with one line that names the
    option as typed: an option the unit does not read, a width that contradicts a preset,
    ``--bits`` when every width it would set is given, a value out of range, or a value
    that gives the same design as a smaller one (``--levels-per-stage`` beyond the logic
    depth).
    """
    u = units()[args.top]
    given = getattr(args, GIVEN, {})
    specs = u.params.specs()
    defaults = {s.name: s.default for s in specs}
    values: dict = {}
    reads: set[str] = set()
    preset, preset_values = None, {}
    for p in u.presets:
        reads.add(_dest(p.option))
        if _dest(p.option) in given:
            preset = _dest(p.option)
            preset_values = p.values[getattr(args, preset)]
    by_fallback: dict[str, list[str]] = {}  # --bits, --format: the options they stand for
    format_bits: dict[str, tuple[str, int]] = {}  # width field -> (format as typed, bits)
    for spec in specs:
        if not spec.applies_to({**defaults, **values}):
            continue
        dest = _dest(spec.option)
        reads.update(filter(None, (dest, spec.fallback)))
        typed = [d for d in (dest, spec.fallback) if d in given]
        if spec.fallback is not None:
            by_fallback.setdefault(spec.fallback, []).append(dest)
        if spec.name in preset_values:
            if typed:
                set_by = ", ".join(f"{k} {v}" for k, v in preset_values.items())
                parser.error(f"{given[typed[0]]} {getattr(args, typed[0])} conflicts with "
                             f"{given[preset]} {getattr(args, preset)}, which sets {set_by}; "
                             "give one or the other")
            values[spec.name] = preset_values[spec.name]
        elif typed and isinstance(getattr(args, typed[0]), FormatChoice):
            choice = getattr(args, typed[0])
            values[spec.name] = choice.element
            if choice.bits is not None:
                format_bits[_bits_field(spec.name)] = (
                    f"{given[typed[0]]} {choice}", choice.bits)
        elif typed and spec.name in format_bits:
            set_by, bits = format_bits[spec.name]
            if getattr(args, typed[0]) != bits:
                parser.error(f"{given[typed[0]]} {getattr(args, typed[0])} conflicts with "
                             f"{set_by}, which sets {bits} bits; give one or the other")
            values[spec.name] = bits
        elif typed:
            values[spec.name] = getattr(args, typed[0])
        elif spec.name in format_bits:
            values[spec.name] = format_bits[spec.name][1]
        elif spec.name in u.command_defaults:
            values[spec.name] = u.command_defaults[spec.name]
    for fallback, dests in by_fallback.items():
        if fallback in given and all(d in given for d in dests) and \
                not any(s.option == f"--{fallback}" and s.applies_to({**defaults, **values})
                        for s in specs):
            parser.error(f"{given[fallback]} makes no difference when "
                         f"{' and '.join(given[d] for d in dests)} "
                         f"{'is' if len(dests) == 1 else 'are'} given; drop it")
    for dest, typed in given.items():
        if dest not in reads:
            # An option of a field that does not apply with the values given (dot's
            # --abits with a minifloat --a-format): say which value makes it moot.
            moot = [s for s in specs if dest in (_dest(s.option), s.fallback)]
            if moot and moot[0].applies is not None:
                field, wanted = moot[0].applies
                spec = next(s for s in specs if s.name == field)
                if _is_element(spec):  # said in the --format vocabulary, as typed
                    source = next(d for d in (_dest(spec.option), spec.fallback) if d in given)
                    parser.error(f"{typed} makes no difference to --top {u.key} with "
                                 f"{given[source]} "
                                 f"{getattr(args, source)} (it applies only to an mxint "
                                 "format); drop it")
                parser.error(f"{typed} makes no difference to --top {u.key} with {spec.option} "
                             f"{({**defaults, **values})[field]} (it applies only with "
                             f"{spec.option} {wanted}); drop it")
            used = ", ".join(sorted({"--" + d.replace("_", "-") for d in reads}))
            parser.error(f"{typed} does not apply to --top {u.key}, which reads {used}")
    try:
        record = u.params(**values)
    except (TypeError, ValueError) as exc:
        typed_formats = {s.name: str(getattr(args, d)) for s in specs
                         for d in (_dest(s.option), s.fallback)
                         if d in given and isinstance(getattr(args, d), FormatChoice)}
        parser.error(option_message(u, str(exc), given, typed_formats))
    for spec in specs:
        dest = _dest(spec.option)
        value = values.get(spec.name)
        if dest in given and spec.choices is None and getattr(record, spec.name) != value:
            folded = getattr(record, spec.name)
            parser.error(f"{given[dest]} {value} gives the same design as {given[dest]} "
                         f"{folded} for --top {u.key}: use 1 to {folded}")
    for typed in given.values():
        if typed in OLD_SPELLINGS:  # once the command line is known to be good
            print(f"{parser.prog}: note: {typed} is now spelt {OLD_SPELLINGS[typed]}",
                  file=sys.stderr)
    return record
