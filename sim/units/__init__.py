"""Transaction-level models of each unit for the testbench: stimuli and expected outputs.

``sim/units/<module>.py`` models ``hw/<module>.py`` and defines ``MODEL``, a class that
takes the manifest's ``parameters`` and offers

* ``inputs`` / ``outputs``: the stream names;
* ``stimuli(gen, n)``: per input stream, a list of payload dicts (directed corners first,
  then ``n`` random ones drawn from the ``torch.Generator`` ``gen``);
* ``expected(stimuli)``: per output stream, the list of payload dicts the unit must emit,
  computed by ``golden``.

Models are plain Python plus torch, free of simulator imports.
"""

from __future__ import annotations

import importlib
import importlib.util

from hw.generate import UNIT_MODULES

__all__ = ["MODELS", "model_for"]


def _collect() -> dict[str, type]:
    from hw.generate import TOPS

    models = {}
    for module in UNIT_MODULES:
        if importlib.util.find_spec(f"{__package__}.{module}") is None:
            continue
        model = importlib.import_module(f"{__package__}.{module}").MODEL
        models[model.key] = model
    missing = set(TOPS) - set(models)
    if missing:
        raise RuntimeError(f"units without a testbench model: {', '.join(sorted(missing))}")
    return models


MODELS = _collect()


def model_for(manifest: dict):
    """The model of the unit a manifest describes."""
    top = manifest["top"]
    if top not in MODELS:
        raise ValueError(f"no testbench model for top {top!r}; known: {', '.join(MODELS)}")
    return MODELS[top](manifest["parameters"])
