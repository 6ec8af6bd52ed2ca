"""The cocotb test module every unit runs under: settings come from the environment.

``MXFORGE_MANIFEST`` (path of the generator's YAML manifest), ``MXFORGE_SEED``,
``MXFORGE_VECTORS`` (random vectors beyond the directed corners), ``MXFORGE_IDLE`` and
``MXFORGE_BACKPRESSURE`` (probabilities), ``MXFORGE_FAULT`` (``lsb``: clear bit 0 of the
first field of every expected output, to prove the checker fails), ``MXFORGE_SUMMARY``
(where to write the JSON summary). :mod:`sim.run` sets them.
"""

from __future__ import annotations

import json
import os

import cocotb
import torch
import yaml

from .bench import StreamTestbench
from .units import model_for


def _clear_lsb(value):
    return [v & ~1 for v in value] if isinstance(value, list) else value & ~1


def inject_lsb_fault(expected: dict) -> dict:
    """A wrong expectation: bit 0 of the first field (of every element, for an array field)
    of every output payload cleared, as a datapath that drops its LSB would."""
    return {name: [{**item, (first := next(iter(item))): _clear_lsb(item[first])}
                   for item in items] for name, items in expected.items()}


async def run_against_golden(dut, bench) -> dict:
    """Drive ``dut`` with the stimuli of its manifest's model through ``bench`` (a
    testbench class: ``bench(dut, manifest, stimuli, expected, seed=, idle=,
    backpressure=)`` with an async ``run()``), write the summary where ``MXFORGE_SUMMARY``
    says, and fail unless every output equals the golden model's and the stream protocol
    held. The environment gives the manifest, seed, vectors, idle and back-pressure
    probabilities and an optional injected fault (``sim.run``)."""
    with open(os.environ["MXFORGE_MANIFEST"], encoding="utf-8") as f:
        manifest = yaml.safe_load(f)
    seed = int(os.environ.get("MXFORGE_SEED", "1"))
    vectors = int(os.environ.get("MXFORGE_VECTORS", "200"))
    model = model_for(manifest)
    stimuli = model.stimuli(torch.Generator().manual_seed(seed), vectors)
    expected = model.expected(stimuli)
    if os.environ.get("MXFORGE_FAULT") == "lsb":
        expected = inject_lsb_fault(expected)
    tb = bench(dut, manifest, stimuli, expected, seed=seed,
               idle=float(os.environ.get("MXFORGE_IDLE", "0.3")),
               backpressure=float(os.environ.get("MXFORGE_BACKPRESSURE", "0.3")))
    summary = await tb.run()
    summary["seed"] = seed
    if "MXFORGE_SUMMARY" in os.environ:
        with open(os.environ["MXFORGE_SUMMARY"], "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1, sort_keys=True)
    for line in summary["reports"] + summary["protocol_errors"]:
        dut._log.error(line)
    assert not summary["timed_out"], f"timed out after {summary['cycles']} cycles"
    assert summary["mismatches"] == 0, f"{summary['mismatches']} outputs differ from golden"
    assert summary["missing"] == 0, f"{summary['missing']} expected outputs never came"
    assert summary.get("inputs_sent") == summary.get("inputs_expected"), \
        "inputs were not all taken"
    assert not summary["protocol_errors"], "stream protocol violated"
    return summary


@cocotb.test()
async def stream_matches_golden(dut) -> None:
    """Every output equals the golden model's, under random idle and back-pressure."""
    await run_against_golden(dut, StreamTestbench)
