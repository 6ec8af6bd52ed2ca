"""The generator's output does not change under a refactor.

:data:`MATRIX` names every unit at two or three parameter sets, both interfaces, the xc7
primitives and the tree architecture. For each, the ``.v``, ``.yaml`` and ``.core`` files
that ``hw.generate`` writes are hashed with their comment lines left out (the Verilog
header holds the Python call that regenerates the file, whose spelling may change) and
compared with ``tests/data/generated_sha256.json``, recorded before the unit registry was
introduced (2026-12-04), and re-recorded twice since, on purpose, when a parameter took its
one name: ``intmac`` and ``intdot``'s ``acc_bits`` became ``acc_width``, and ``dot`` and
``intdot``'s primitive set ``target`` became ``primitives`` (their ``.yaml`` files only;
every ``.v`` and ``.core`` stayed the same).

A change that alters a generated file on purpose re-records the table::

    python -m tests.test_unchanged_output --record

and says so in its commit message.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import pytest

from hw.generate import generate, write

TABLE = Path(__file__).resolve().parent / "data" / "generated_sha256.json"

#: ``(top, options)``: the options of ``python -m hw.generate`` as keyword arguments.
MATRIX: list[tuple[str, dict]] = [
    ("dot", {"bits": 6, "block": 16}),
    ("dot", {"bits": 6, "block": 16, "interface": "axis"}),
    ("dot", {"bits": 6, "block": 16, "primitives": "xc7"}),
    ("dot", {"abits": 4, "wbits": 8, "exp_bits": 5, "block": 3, "arch": "tree"}),
    ("dot", {"bits": 2, "block": 1, "levels_per_stage": 1}),
    ("dot", {"format": "mxfp8_e4m3", "block": 2}),
    ("dot", {"format": "mxfp8_e5m2", "block": 2}),   # a chain adder split in two halves
    ("dot", {"aformat": "mxfp8_e5m2", "wformat": "mxfp4", "block": 2}),  # one level
    ("adder", {"bits": 6, "block": 4}),
    ("adder", {"abits": 4, "wbits": 6, "out_bits": 5, "exp_bits": 4, "block": 2,
               "rounding": "away", "guard_bits": 0, "interface": "axis"}),
    ("adder", {"format": "mxfp8_e4m3", "out_bits": 8, "block": 2}),
    ("adder", {"aformat": "mxint5", "wformat": "mxfp4", "out_bits": 6, "block": 3,
               "rounding": "floor"}),
    ("accum", {"bits": 6, "block": 16}),
    ("accum", {"abits": 3, "wbits": 5, "block": 2, "guard_bits": 1, "acc_width": 20,
               "align": "loop"}),
    ("accum", {"bits": 4, "block": 8, "interface": "axis"}),
    ("accum", {"bits": 4, "block": 2, "align": "lookahead"}),
    ("accum", {"bits": 4, "block": 2, "align": "lookahead", "primitives": "ecp5"}),
    ("accum", {"bits": 4, "block": 2, "align": "lookahead", "primitives": "ecp5",
               "out_ready": "registered"}),
    ("cast", {"bits": 8, "block": 4}),
    ("cast", {"bits": 4, "block": 8, "rounding": "floor", "float_format": "bf16",
              "levels_per_stage": 1, "interface": "axis"}),
    ("dequant", {"bits": 8, "block": 8}),
    ("dequant", {"source": "accum", "bits": 4, "block": 2, "guard_bits": 2}),
    ("dequant", {"bits": 3, "exp_bits": 5, "block": 4, "interface": "axis"}),
    ("linear", {"bits": 4, "block": 2}),
    ("linear", {"abits": 4, "wbits": 6, "block": 4, "k_len": 8, "rows": 6, "lanes": 3,
                "arch": "tree", "output": "fp32", "interface": "axis"}),
    ("linear", {"bits": 6, "block": 16, "k_len": 32, "rows": 2, "lanes": 1,
                "acc_width": 30, "levels_per_stage": 3}),
    ("tile", {"bits": 4, "block": 4, "rows": 4, "lanes": 2, "tile_tokens": 2}),
    ("tile", {"bits": 6, "block": 4, "k_len": 8, "rows": 4, "lanes": 2, "tile_tokens": 2,
              "output": "fp32", "bias": "fp32", "interface": "axis"}),
    ("tile", {"bits": 4, "block": 2, "rows": 4, "lanes": 2, "tile_tokens": 2, "output": "mx",
              "out_bits": 3}),
    ("tile", {"format": "mxfp4", "block": 4, "rows": 2, "output": "fp32",
              "primitives": "xc7"}),
    ("tile", {"bits": 4, "block": 4, "k_len": 16, "rows": 2, "tile_tokens": 2,
              "blocks_per_cycle": 2}),
    ("fpmac", {"fp_preset": "bf16"}),
    ("fpmac", {"exp_bits": 5, "bits": 10, "interface": "axis"}),
    ("intmac", {"int_preset": "int8"}),
    ("intmac", {"abits": 4, "wbits": 6, "acc_width": 20, "interface": "axis"}),
    ("intdot", {"bits": 8, "block": 16}),
    ("intdot", {"bits": 4, "block": 16, "primitives": "xc7"}),
    ("intdot", {"abits": 3, "wbits": 5, "block": 5, "arch": "tree", "acc_width": 24,
                "interface": "axis"}),
]


def _key(top: str, options: dict) -> str:
    return " ".join([f"--top {top}"] + [f"--{k.replace('_', '-')} {v}"
                                         for k, v in options.items()])


def _strip(text: str) -> str:
    """``text`` without its comment lines (``//`` in Verilog, ``#`` in YAML and CAPI2)."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not line.lstrip().startswith(("//", "#")))


def hashes(top: str, options: dict) -> dict[str, str]:
    """``{suffix: sha256}`` of the three files ``hw.generate`` writes, comments stripped."""
    design = generate(top, **options)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write(design, Path(tmp))
        return {path.suffix: hashlib.sha256(_strip(path.read_text()).encode()).hexdigest()
                for path in paths}


@pytest.mark.parametrize(("top", "options"), MATRIX, ids=[_key(*c) for c in MATRIX])
def test_generated_files_unchanged(top, options):
    table = json.loads(TABLE.read_text())
    key = _key(top, options)
    assert key in table, f"{key} has no recorded hash: run python -m {__name__} --record"
    assert hashes(top, options) == table[key], \
        f"{key}: the generated files changed (python -m {__name__} --record if on purpose)"


def test_a_changed_file_is_caught():
    """The comparison sees a one-character change in the Verilog (it can fail)."""
    top, options = MATRIX[0]
    recorded = json.loads(TABLE.read_text())[_key(top, options)]
    design = generate(top, **options)
    text = design.verilog.replace("assign", "assign ", 1)
    assert hashlib.sha256(_strip(text).encode()).hexdigest() != recorded[".v"]
    assert _strip("// header\nmodule m;\n  # x\n") == "module m;\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit(f"usage: python -m {__name__} --record")
    TABLE.write_text(json.dumps({_key(*case): hashes(*case) for case in MATRIX}, indent=1,
                                sort_keys=True) + "\n")
    print(f"wrote {TABLE} ({len(MATRIX)} designs)")
