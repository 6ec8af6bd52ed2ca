"""The mutants of :mod:`benchmarks.mutation` applied in this process, for checkers that
generate Verilog (formal proofs, Verilator runs) and must show that they catch them."""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

from benchmarks.mutation import MUTANTS, REPO

__all__ = ["mutated_module"]


def mutated_module(name: str) -> types.ModuleType:
    """A fresh copy of the ``hw`` module that mutant ``name`` targets, with the mutant
    applied (its ``old`` text, found exactly once, replaced by ``new``).

    The copy is a new module object (the real one is untouched); its functions and classes
    use the copy's own globals, so a method taken from it runs the mutated code.

    Raises
    ------
    ValueError
        If there is no mutant ``name`` or its text is not in its file exactly once.
    """
    mutant = next((m for m in MUTANTS if m.name == name), None)
    if mutant is None:
        raise ValueError(f"mutant {name!r} is not in benchmarks.mutation.MUTANTS")
    path = REPO / mutant.path
    source = path.read_text(encoding="utf-8")
    if source.count(mutant.old) != 1:
        raise ValueError(f"mutant {name}: its text occurs {source.count(mutant.old)} times in "
                         f"{mutant.path}, not once")
    real = importlib.import_module(Path(mutant.path).with_suffix("").as_posix().replace("/", "."))
    copy = types.ModuleType(f"{real.__name__}_mutant_{name.replace('-', '_')}")
    copy.__package__ = real.__package__
    copy.__file__ = str(path)
    code = compile(source.replace(mutant.old, mutant.new), f"<mutant {name}>", "exec")
    # Registered while it runs: dataclasses look their module up in sys.modules.
    sys.modules[copy.__name__] = copy
    try:
        exec(code, copy.__dict__)  # noqa: S102 - the repository's own source, one edit
    finally:
        del sys.modules[copy.__name__]
    return copy
