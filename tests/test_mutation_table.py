"""The mutation table of :mod:`benchmarks.mutation` stays applicable to ``hw/``.

The benchmark is not run here (it takes minutes); this checks that each mutant's text is
still in its file exactly once, so a change to ``hw/`` that moves the code a mutant
targets fails here instead of silently dropping that mutant from the next survey.
"""

from __future__ import annotations

import pytest

from benchmarks.mutation import MUTANTS, Mutant, stale_mutants


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_mutant_applies_once(mutant):
    assert stale_mutants([mutant]) == []
    assert mutant.old != mutant.new


def test_check_catches_a_stale_mutant():
    stale = Mutant("stale", "hw/pipeline.py", "text that is not in the file", "x", "dot",
                   (), "injected")
    twice = Mutant("twice", "hw/pipeline.py", "self", "x", "dot", (), "injected")
    assert [m.split(":")[0] for m in stale_mutants([stale, MUTANTS[0], twice])] == [
        "mutant stale", "mutant twice"]


def test_names_are_unique():
    names = [m.name for m in MUTANTS]
    assert len(set(names)) == len(names)
