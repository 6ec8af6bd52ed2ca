"""Transaction-level models of each unit for the testbench: stimuli and expected outputs.

A unit's model is the class its registry entry names (``Unit.model``, usually in
``sim/units/<module>.py``). It takes the manifest's ``parameters`` and offers

* ``inputs`` / ``outputs``: the stream names;
* ``stimuli(gen, n)``: per input stream, a list of payload dicts (directed corners first,
  then ``n`` random ones drawn from the ``torch.Generator`` ``gen``);
* ``expected(stimuli)``: per output stream, the list of payload dicts the unit must emit,
  computed by ``golden``.

Models are plain Python plus torch, free of simulator imports.
"""

from __future__ import annotations

from hw.unit import unit

__all__ = ["model_for"]


def model_for(manifest: dict):
    """The model of the unit a manifest describes."""
    return unit(manifest["top"]).load("model")(manifest["parameters"])
