"""How the generator and the testbench know a unit: one :class:`Top` per component module."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Top", "operand_bits"]


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


def operand_bits(args: argparse.Namespace) -> tuple[int | None, int | None]:
    """Widths of the activation and weight operands: ``--abits`` / ``--wbits``, each
    defaulting to ``--bits``."""
    return (args.abits if args.abits is not None else args.bits,
            args.wbits if args.wbits is not None else args.bits)
