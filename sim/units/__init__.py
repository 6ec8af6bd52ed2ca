"""Transaction-level models of each unit for the testbench: stimuli and expected outputs.

A model turns the manifest's ``parameters`` into

* ``stimuli(gen, n)``: per input stream, a list of payload dicts (directed corners first,
  then ``n`` random ones from the ``torch.Generator`` ``gen``);
* ``expected(stimuli)``: per output stream, the list of payload dicts the unit must emit,
  computed by ``golden``.

Models are plain Python plus torch, free of simulator imports.
"""

from __future__ import annotations

from .dot import DotModel

__all__ = ["MODELS", "model_for"]

MODELS = {
    "dot": DotModel,
}


def model_for(manifest: dict):
    """The model of the unit a manifest describes."""
    top = manifest["top"]
    if top not in MODELS:
        raise ValueError(f"no testbench model for top {top!r}; known: {', '.join(MODELS)}")
    return MODELS[top](manifest["parameters"])
