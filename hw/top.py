"""How the generator and the testbench know a unit: one :class:`Top` per component module."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Top", "fold_levels_per_stage", "operand_bits"]


@dataclass(frozen=True)
class Top:
    """Everything ``hw.generate`` and ``sim.run`` need to offer one unit as ``--top key``.

    A component module defines ``TOP = Top(...)``; ``hw.generate`` collects them.

    Members
    -------
    key : str
        The ``--top`` choice, e.g. ``"dot"``.
    summary : str
        One line for ``--help``.
    component : type
        The ``wiring.Component`` class; its keyword-only constructor validates parameters.
    from_args : callable
        Maps parsed command-line options to constructor keyword arguments.
    name : callable
        Maps constructor keyword arguments to the module and file name; it must encode every
        parameter that changes the Verilog.
    options : tuple
        Extra command-line options this unit reads, as ``(flags, argparse kwargs)`` pairs,
        beyond the common ones (``--bits --block --exp-bits --abits --wbits --rounding
        --out-bits --guard-bits``).
    flags : dict
        Constructor parameter -> option text, so errors name what the user typed.
    """

    key: str
    summary: str
    component: type
    from_args: Callable[[argparse.Namespace], dict]
    name: Callable[[dict], str]
    options: tuple = ()
    flags: dict = field(default_factory=dict)


def fold_levels_per_stage(levels_per_stage: int, levels: int) -> int:
    """The canonical ``levels_per_stage`` of a unit with ``levels`` logic levels.

    Every value from ``levels`` on gives the same design, so they are folded into
    ``levels`` (or into the default, 2, when that is larger), and the name and manifest of
    the design are the same whichever was given. ``hw.generate`` refuses a typed value that
    folds, naming the largest that makes a difference.
    """
    return min(levels_per_stage, max(levels, 2))


def operand_bits(args: argparse.Namespace) -> tuple[int | None, int | None]:
    """Widths of the activation and weight operands: ``--abits`` / ``--wbits``, each
    defaulting to ``--bits``."""
    return (args.abits if args.abits is not None else args.bits,
            args.wbits if args.wbits is not None else args.bits)
