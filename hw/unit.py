"""One unit, one place: the parameter record of a unit and the registry every tool reads.

A unit is declared once, in its component's module (``hw/<unit>.py``)::

    class MXIntDotProduct(wiring.Component):
        def __init__(self, *, a_bits, b_bits, exp_bits=8, block, ...):
            self.params = DotParams(a_bits=a_bits, ...)  # validates
            ...

    @dataclass(frozen=True, kw_only=True)
    class DotParams(Params):
        a_bits: int = a_bits_param()  # hw/params.py; or param(help=..., lo=..., hi=...)
        ...

        @property
        def name(self) -> str:
            return f"mxint_dot_a{self.a_bits}_..."

    expose(MXIntDotProduct, DotParams)  # one read-only property per field
    UNIT = Unit(key="dot", summary="...", params=DotParams, component=MXIntDotProduct,
                golden=dot_product, model="sim.units.dot_product:DotModel",
                reference="sim.formal.ref_dot:DOT", macs=lambda p: p.block)

* The **record** (:class:`Params`) validates itself on construction, one message naming
  the field, the value and what is allowed; it names the design (:attr:`Params.name`) and
  gives the constructor's keywords and the manifest's ``parameters`` block
  (:meth:`Params.kwargs`). Each field carries its help text, default, range or choices and
  command-line option (:func:`param`), from which the command lines are derived
  (:mod:`cli.units`).
* The **registry** (:func:`units`) is found, not listed: every module of ``hw/`` that
  defines ``UNIT`` is a unit. A unit defined elsewhere joins by naming its module in the
  environment variable ``MXFORGE_UNITS`` (comma-separated), which the simulator's own
  process sees too, or within one process with :func:`register`.

``hw/`` stays below ``sim/``: a unit names its simulation model and formal reference as
``"module:attribute"`` text, loaded on first use (:meth:`Unit.load`).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from golden.format import check_choice, check_int

__all__ = ["ParamSpec", "Params", "Preset", "Unit", "expose", "param", "register", "unit",
           "units"]


@dataclass(frozen=True)
class ParamSpec:
    """One field of a record, as :func:`param` declares it.

    Members
    -------
    name, help : str
        The field (and constructor keyword) and one sentence for ``--help``.
    default : object
        The value when not given (``None`` for a value :meth:`Params.resolve` computes).
    required : bool
        The field has no default.
    lo, hi : int or None
        Inclusive range of an integer field (both None: :meth:`Params.resolve` checks it).
    choices : tuple of str, or None
        The values of a string field; None for an integer field.
    option : str
        The command-line option that sets it (``--abits``).
    fallback : str or None
        A shared option whose value it takes when its own is not given (``"bits"``).
    applies : tuple or None
        ``(field, value)``: the field means something only when ``field`` has ``value``
        (``dequant``'s ``a_bits`` only with ``source="accum"``); otherwise it stays None.
    implicit : bool
        The default is left out of :meth:`Params.kwargs` (the manifest's ``parameters``),
        so that the designs made before the field existed keep their manifests
        (``dot``'s ``a_element="int"``).
    """

    name: str
    help: str
    default: Any
    required: bool
    lo: int | None
    hi: int | None
    choices: tuple[str, ...] | None
    option: str
    fallback: str | None
    applies: tuple[str, Any] | None
    implicit: bool = False

    def applies_to(self, values: Mapping[str, Any]) -> bool:
        """Whether the field means something in a record of ``values``."""
        return self.applies is None or values.get(self.applies[0]) == self.applies[1]

    @property
    def flags(self) -> str:
        """How an error names the option: ``--abits/--bits`` for a field with a fallback."""
        return self.option if self.fallback is None else f"{self.option}/--{self.fallback}"

    def check(self, value: Any) -> Any:
        """``value`` if the field takes it; else ``TypeError``/``ValueError`` naming the
        field, the value and what is allowed."""
        if self.choices is not None:
            return check_choice(self.name, value, self.choices)
        return check_int(self.name, value, -(1 << 64) if self.lo is None else self.lo, self.hi)


_REQUIRED = object()


def param(default: Any = _REQUIRED, *, help: str, lo: int | None = None,
          hi: int | None = None, choices: tuple[str, ...] | None = None,
          option: str | None = None, fallback: str | None = None,
          applies: tuple[str, Any] | None = None, implicit: bool = False) -> Any:
    """A field of a :class:`Params` record, without ``default`` a required one (see
    :class:`ParamSpec`; ``option`` defaults to the field name with dashes)."""
    spec = ParamSpec(name="", help=help, default=None, required=default is _REQUIRED, lo=lo,
                     hi=hi, choices=None if choices is None else tuple(choices),
                     option=option or "", fallback=fallback, applies=applies,
                     implicit=implicit)
    return dataclasses.field(default=None if default is _REQUIRED else default,
                             metadata={"mxforge": spec})


@dataclass(frozen=True, kw_only=True)
class Params:
    """Base of every unit's parameter record: frozen, keyword-only, validated on creation.

    Subclasses declare fields with :func:`param`, name the design in :attr:`name`, and
    may override :meth:`resolve` for checks across fields and for values computed from
    others (set with :meth:`_set`).

    Raises
    ------
    TypeError
        If a field has the wrong type, or a required field is missing (the message ends
        in ``not None``).
    ValueError
        If a field is out of range, or fields contradict each other.
    """

    def __post_init__(self) -> None:
        values = self.values()
        for spec in self.specs():
            value = values[spec.name]
            if not spec.applies_to(values):
                if value is not None:
                    field, wanted = spec.applies
                    raise ValueError(f"{spec.name} applies only with {field}={wanted!r}, "
                                     f"not {field}={values[field]!r}: leave it out")
                continue
            if value is not None or spec.required:
                spec.check(value)  # a missing field: "... not None"
        self.resolve()

    def resolve(self) -> None:
        """Checks across fields and values computed from others (the default does none)."""

    def _set(self, name: str, value: Any) -> None:
        """Fill in a computed value (from :meth:`resolve` only: the record is frozen)."""
        object.__setattr__(self, name, value)

    @classmethod
    def specs(cls) -> tuple[ParamSpec, ...]:
        """The fields' specifications, in declaration order."""
        return tuple(dataclasses.replace(f.metadata["mxforge"], name=f.name, default=f.default,
                                         option=f.metadata["mxforge"].option
                                         or "--" + f.name.replace("_", "-"))
                     for f in dataclasses.fields(cls) if "mxforge" in f.metadata)

    def values(self) -> dict[str, Any]:
        """Every field and its value (``None`` for one that does not apply)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def kwargs(self) -> dict[str, Any]:
        """The fields that are set, in declaration order: the component's constructor
        keyword arguments and the manifest's ``parameters`` block. A field declared
        ``implicit`` is left out while it has its default."""
        implicit = {s.name: s.default for s in self.specs() if s.implicit}
        return {k: v for k, v in self.values().items()
                if v is not None and not (k in implicit and v == implicit[k])}

    @property
    def name(self) -> str:
        """Module and file name; encodes every field that changes the Verilog."""
        raise NotImplementedError(f"{type(self).__name__} does not define name")


def expose(component: type, params: type[Params]) -> None:
    """Give ``component`` one read-only property per field of ``params`` that it does not
    define itself: the value of the record it keeps in ``self.params``, documented by the
    field's help."""
    for spec in params.specs():
        if spec.name not in vars(component):
            setattr(component, spec.name, property(
                lambda self, name=spec.name: getattr(self.params, name), doc=spec.help))


@dataclass(frozen=True)
class Preset:
    """A command-line ``option`` that sets several fields at once (``--fp-preset bf16``):
    ``values`` maps each choice to the fields it sets."""

    option: str
    values: Mapping[str, Mapping[str, Any]]
    help: str


@dataclass(frozen=True)
class Unit:
    """Everything every tool needs to know of one unit.

    Members
    -------
    key : str
        The ``--top`` choice and the manifest's ``top``.
    summary : str
        One line for ``--help``, the manifests and the reports.
    summary_mx : str or None
        The line for a design with an OCP MX minifloat operand (an ``element`` or
        ``*_element`` field other than None and ``"int"``), where ``summary`` names MXINT
        only; see :meth:`summary_of`.
    params : type
        The :class:`Params` record.
    component : type
        The ``wiring.Component``; built as ``component(**record.kwargs())``.
    golden : callable
        The golden function the unit equals bit for bit.
    model : str
        ``"module:attribute"`` of the testbench's transaction-level model (``sim/units``).
    reference : str or None
        ``"module:attribute"`` of the formal reference (``sim/formal``), or None when the
        unit has none.
    macs : callable
        ``macs(record)``: multiply-accumulates per input transfer (for density per MAC).
    packets : callable
        ``packets(record)``: output streams whose AXI-Stream ``tlast`` the wrapper makes
        by counting transfers, ``{stream: transfers per packet}``.
    presets : tuple of Preset
        Options that set several fields at once.
    command_defaults : dict
        Defaults of the command lines where they differ from the record's (a required
        field the command line fills in, e.g. ``linear``'s ``rows``).
    baseline : bool
        A float or integer baseline for the density reports, not an MX unit.
    """

    key: str
    summary: str
    params: type[Params]
    component: type
    golden: Callable
    model: str
    reference: str | None = None
    macs: Callable[[Params], int] = lambda p: 1
    packets: Callable[[Params], dict[str, int]] = lambda p: {}
    presets: tuple[Preset, ...] = ()
    command_defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    baseline: bool = False
    summary_mx: str | None = None

    def summary_of(self, record: Params) -> str:
        """The manifest's and report's line for ``record``: :attr:`summary_mx` when the
        unit has one and an operand of ``record`` is a minifloat (a field ``element``, as
        the dequantiser's block, or ``*_element`` that is neither None nor ``"int"``), else
        :attr:`summary`."""
        minifloat = any(value not in (None, "int") for name, value in record.kwargs().items()
                        if name == "element" or name.endswith("_element"))
        return self.summary_mx if minifloat and self.summary_mx else self.summary

    def load(self, what: str) -> Any:
        """The object that ``"model"`` or ``"reference"`` names (imported on first use)."""
        where = getattr(self, what)
        if where is None:
            raise LookupError(f"unit {self.key!r} has no {what}")
        if not isinstance(where, str):
            return where
        module, _, attribute = where.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def record(self, **params: Any) -> Params:
        """The validated record of ``params`` (``TypeError`` names a keyword the unit does
        not take or a value of the wrong type, ``ValueError`` a value out of range)."""
        return self.params(**params)

    def build(self, record: Params):
        """The component of ``record``."""
        return self.component(**record.kwargs())


_REGISTRY: dict[str, Unit] = {}
_found = False


def register(new: Unit) -> Unit:
    """Add ``new`` to the registry (again under the same key replaces it); returns it."""
    _REGISTRY[new.key] = new
    ordered = sorted(_REGISTRY.values(), key=lambda u: u.baseline)
    _REGISTRY.clear()
    _REGISTRY.update((u.key, u) for u in ordered)
    return new


def units() -> dict[str, Unit]:
    """Every unit, by key: MX units first, then baselines, each in the order found.

    On the first call, every module of ``hw/`` and every module named in
    ``MXFORGE_UNITS`` is imported, and its ``UNIT``, if it defines one, registered.
    """
    global _found
    if not _found:
        _found = True
        package = importlib.import_module(__package__)
        names = [f"{__package__}.{info.name}" for info in pkgutil.iter_modules(package.__path__)
                 if info.name != "generate"]  # the command line, not a unit
        names += [n.strip() for n in os.environ.get("MXFORGE_UNITS", "").split(",") if n.strip()]
        for name in names:
            found = getattr(importlib.import_module(name), "UNIT", None)
            if isinstance(found, Unit):
                register(found)
    return _REGISTRY


def unit(key: str) -> Unit:
    """The unit ``key``; ``ValueError`` naming the known ones if there is none."""
    known = units()
    if key not in known:
        raise ValueError(f"top must be one of {', '.join(known)}, not {key!r}")
    return known[key]
