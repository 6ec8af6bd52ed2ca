"""Bad inputs over the command lines and the Python API: one clear line, no traceback.

Every case of :data:`CLI_CASES` runs a command line in this process (``main(argv)``, with
``SystemExit`` caught and both output streams captured) and must

* exit with a non-zero status;
* print no traceback;
* print exactly one line on stderr, and that line names the option (every string of the
  case's ``names`` appears in it);
* leave nothing behind in its output folder (a file given as an output path is unchanged).

The step that would run a tool (Verilator, Yosys, the benchmarks, the prover) is replaced by
a stub that raises :class:`ToolReached`: a bad option must be refused before any tool runs,
so reaching a stub counts as the option being accepted in silence. A few cases run the real
entry points in a subprocess to show that they behave the same.

:data:`API_CASES` call the Python API and expect one exception of the stated type whose
message names the parameter.

``python -m tests.test_bad_inputs`` prints the survey: how many cases end in a traceback,
how many bad options are accepted in silence, and how many fail another of the rules above.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import subprocess
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

from tests.conftest import REPO

# ---------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class CliCase:
    """One bad command line.

    ``argv`` may hold ``{out}`` (the case's output folder, which must not be created),
    ``{file}`` (an existing file, which must stay unchanged), ``{loop}`` (a symbolic link
    to itself) and ``{folder}`` (the existing folder that holds them). ``names`` must all
    appear in the one error line.
    """

    cli: str
    argv: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.cli}:{' '.join(self.argv)}"


def _cases(cli: str, base: tuple[str, ...], rows: list[tuple[str, tuple[str, ...]]]):
    return [CliCase(cli, (*base, *argv.split()), names) for argv, names in rows]


GEN = ("--out", "{out}/gen")
SIM = ("--build", "{out}/sim", "--vectors", "5", "--seed", "1")
REPORT = ("--workdir", "{out}/work", "--json", "{out}/report.json")
FORMAL = ("--workdir", "{out}/formal")
ACCURACY = ("--bits", "4", "--block", "16")
DENSITY = ("--bits", "4", "--block", "16", "--no-pnr")

CLI_CASES: list[CliCase] = [
    # ---- hw.generate: ranges, types, required values
    *_cases("hw.generate", GEN, [
        ("--bits 1 --block 16", ("--bits", "1")),
        ("--bits 25 --block 16", ("--bits", "25")),
        ("--bits -3 --block 16", ("--bits", "-3")),
        ("--bits abc --block 16", ("--bits", "abc")),
        ("--bits 6 --block 0", ("--block", "0")),
        ("--bits 6 --block 1025", ("--block", "1025")),
        ("--bits 6 --block 4.5", ("--block", "4.5")),
        ("--bits 6 --block 16 --exp-bits 1", ("--exp-bits", "1")),
        ("--bits 6 --block 16 --exp-bits 9", ("--exp-bits", "9")),
        ("--bits 6 --block 16 --exp-bits abc", ("--exp-bits",)),
        ("--bits 6 --block 16 --top fft", ("--top", "fft")),
        ("--block 16", ("--bits", "required")),
        ("--bits 6", ("--block", "required")),
        ("--bits 6 --block 16 --abits 1", ("--abits", "1")),
        ("--bits 6 --block 16 --wbits 30", ("--wbits", "30")),
        ("--bits 6 --block 16 --frobnicate 3", ("--frobnicate",)),
        ("--bits 6 --abits 5 --wbits 4 --block 16", ("--bits", "--abits", "--wbits")),
        # ---- options the unit does not read
        ("--top dot --bits 6 --block 16 --rounding floor", ("--rounding", "dot")),
        ("--top dot --bits 6 --block 16 --guard-bits 2", ("--guard-bits", "dot")),
        ("--top dot --bits 6 --block 16 --out-bits 4", ("--out-bits", "dot")),
        ("--top dot --bits 6 --block 16 --k-len 64", ("--k-len", "dot")),
        ("--top dot --bits 6 --block 16 --rows 8", ("--rows", "dot")),
        ("--top dot --bits 6 --block 16 --lanes 2", ("--lanes", "dot")),
        ("--top dot --bits 6 --block 16 --output fp32", ("--output", "dot")),
        ("--top dot --bits 6 --block 16 --fp-preset fp32", ("--fp-preset", "dot")),
        ("--top dot --bits 6 --block 16 --int-preset int8", ("--int-preset", "dot")),
        ("--top dot --bits 6 --block 16 --acc-width 30", ("--acc-width", "dot")),
        ("--top dot --bits 6 --block 16 --acc-bits 40", ("--acc-bits", "dot")),
        ("--top dot --bits 6 --block 16 --align stall", ("--align", "dot")),
        ("--top dot --bits 6 --block 16 --float-format bf16", ("--float-format", "dot")),
        ("--top dot --bits 6 --block 16 --source accum", ("--source", "dot")),
        ("--top adder --bits 6 --block 4 --arch tree", ("--arch", "adder")),
        ("--top adder --bits 6 --block 4 --primitives xc7", ("--primitives", "adder")),
        ("--top adder --bits 6 --block 4 --levels-per-stage 3",
         ("--levels-per-stage", "adder")),
        ("--top adder --bits 6 --block 4 --acc-width 30", ("--acc-width", "adder")),
        ("--top accum --bits 6 --block 4 --rounding floor", ("--rounding", "accum")),
        ("--top accum --bits 6 --block 4 --out-bits 4", ("--out-bits", "accum")),
        ("--top accum --bits 6 --block 4 --arch tree", ("--arch", "accum")),
        ("--top accum --bits 6 --block 4 --levels-per-stage 1",
         ("--levels-per-stage", "accum")),
        ("--top cast --bits 6 --block 4 --abits 4", ("--abits", "cast")),
        ("--top cast --bits 6 --block 4 --wbits 4", ("--wbits", "cast")),
        ("--top cast --bits 6 --block 4 --guard-bits 2", ("--guard-bits", "cast")),
        ("--top cast --bits 6 --block 4 --out-bits 4", ("--out-bits", "cast")),
        ("--top cast --bits 6 --block 4 --arch tree", ("--arch", "cast")),
        ("--top dequant --bits 6 --block 4 --rounding floor", ("--rounding", "dequant")),
        ("--top dequant --bits 6 --block 4 --guard-bits 2", ("--guard-bits", "dequant")),
        ("--top dequant --bits 6 --block 4 --acc-width 30", ("--acc-width", "dequant")),
        ("--top dequant --bits 6 --block 4 --abits 5", ("--abits", "dequant")),
        ("--top dequant --bits 6 --block 4 --source accum --rounding zero",
         ("--rounding", "dequant")),
        ("--top dequant --bits 6 --block 4 --source accum --align stall",
         ("--align", "dequant")),
        ("--top linear --bits 6 --block 4 --rounding floor", ("--rounding", "linear")),
        ("--top linear --bits 6 --block 4 --out-bits 4", ("--out-bits", "linear")),
        ("--top linear --bits 6 --block 4 --primitives xc7", ("--primitives", "linear")),
        ("--top linear --bits 6 --block 4 --align stall", ("--align", "linear")),
        ("--top fpmac --exp-bits 5 --bits 10 --block 16", ("--block", "fpmac")),
        ("--top fpmac --exp-bits 5 --bits 10 --rounding floor", ("--rounding", "fpmac")),
        ("--top fpmac --exp-bits 5 --bits 10 --abits 5", ("--abits", "fpmac")),
        ("--top fpmac --exp-bits 5 --bits 10 --arch tree", ("--arch", "fpmac")),
        ("--top intmac --bits 8 --block 16", ("--block", "intmac")),
        ("--top intmac --bits 8 --exp-bits 5", ("--exp-bits", "intmac")),
        ("--top intmac --bits 8 --rounding floor", ("--rounding", "intmac")),
        ("--top intmac --bits 8 --arch tree", ("--arch", "intmac")),
        ("--top intdot --bits 8 --block 16 --exp-bits 5", ("--exp-bits", "intdot")),
        ("--top intdot --bits 8 --block 16 --guard-bits 3", ("--guard-bits", "intdot")),
        ("--top intdot --bits 8 --block 16 --align stall", ("--align", "intdot")),
        ("--top intdot --bits 8 --block 16 --frac-bits 8", ("--frac-bits", "intdot")),
        ("--top dot --frac-bits 6 --block 16", ("--frac-bits", "dot")),
        # ---- presets and conflicting widths
        ("--top fpmac --fp-preset fp32 --bits 5", ("--bits", "--fp-preset")),
        ("--top fpmac --fp-preset bf16 --exp-bits 5", ("--exp-bits", "--fp-preset")),
        ("--top fpmac --fp-preset fp64", ("--fp-preset", "fp64")),
        ("--top intmac --int-preset int8 --bits 4", ("--bits", "--int-preset")),
        ("--top intmac --int-preset int3", ("--int-preset", "int3")),
        ("--top intdot --int-preset int4 --wbits 8 --block 16", ("--wbits", "--int-preset")),
        # ---- unit values out of range, or making no difference
        ("--top dot --bits 6 --block 16 --levels-per-stage 0", ("--levels-per-stage", "0")),
        ("--top dot --bits 6 --block 16 --levels-per-stage 99", ("--levels-per-stage", "99")),
        ("--top dot --bits 6 --block 16 --arch tree --levels-per-stage 40",
         ("--levels-per-stage", "40")),
        ("--top dot --bits 6 --block 16 --arch foo", ("--arch", "foo")),
        ("--top dot --bits 6 --block 16 --arch tree --primitives xc7", ("--primitives",)),
        ("--top adder --bits 6 --block 4 --guard-bits -1", ("--guard-bits", "-1")),
        ("--top adder --bits 6 --block 4 --out-bits 1", ("--out-bits", "1")),
        ("--top adder --abits 6 --wbits 6 --block 4", ("--out-bits/--bits", "required")),
        ("--top adder --bits 6 --block 4 --rounding up", ("--rounding", "up")),
        ("--top accum --bits 6 --block 4 --acc-width 5", ("--acc-width", "5")),
        ("--top accum --bits 6 --block 4 --acc-width 99", ("--acc-width", "99")),
        ("--top accum --bits 6 --block 4 --align foo", ("--align", "foo")),
        ("--top cast --bits 6 --block 4 --float-format fp16", ("--float-format", "fp16")),
        ("--top cast --bits 6 --block 4 --levels-per-stage 99", ("--levels-per-stage", "99")),
        ("--top dequant --bits 6 --block 4 --source foo", ("--source", "foo")),
        ("--top linear --bits 6 --block 4 --rows 0", ("--rows", "0")),
        ("--top linear --bits 6 --block 4 --rows 5 --lanes 2", ("--rows", "5")),
        ("--top linear --bits 6 --block 4 --k-len 0", ("--k-len", "0")),
        ("--top linear --bits 6 --block 4 --lanes 0", ("--lanes", "0")),
        ("--top linear --bits 6 --block 4 --output foo", ("--output", "foo")),
        ("--top linear --bits 6 --block 4 --levels-per-stage 99", ("--levels-per-stage", "99")),
        ("--top fpmac --exp-bits 1 --bits 5", ("--exp-bits", "1")),
        ("--top fpmac --exp-bits 5", ("--bits", "required")),
        ("--top intmac --bits 8 --acc-bits 3", ("--acc-bits", "3")),
        ("--top intdot --bits 8 --block 16 --acc-bits 2", ("--acc-bits", "2")),
        ("--top intdot --bits 8 --block 0", ("--block", "0")),
    ]),
    # ---- hw.generate: output folder
    CliCase("hw.generate", ("--bits", "6", "--block", "4", "--out", "{file}"), ("--out",)),
    CliCase("hw.generate", ("--bits", "6", "--block", "4", "--out", "{file}/sub"), ("--out",)),
    CliCase("hw.generate", ("--bits", "6", "--block", "4", "--out", "/proc/nope"), ("--out",)),
    CliCase("hw.generate", ("--bits", "6", "--block", "4", "--out", "/dev/null"),
            ("--out", "/dev/null", "is a device")),
    CliCase("hw.generate", ("--bits", "6", "--block", "4", "--out", "{loop}"),
            ("--out", "is a symlink loop")),
    CliCase("hw.generate", ("--bits", "6", "--block", "4", "--out", "{loop}/sub"),
            ("--out", "is a symlink loop")),
    # ---- sim.run
    *_cases("sim.run", SIM[:2], [
        ("--bits 6 --block 4 --vectors -1", ("--vectors", "-1")),
        ("--bits 6 --block 4 --vectors 2000000", ("--vectors", "2000000")),
        ("--bits 6 --block 4 --seed abc", ("--seed", "abc")),
        ("--bits 6 --block 4 --seed -1", ("--seed", "-1")),
        ("--bits 6 --block 4 --vectors 5 --vectors 6", ("--vectors", "twice")),
        ("--bits 6 --block 4 --vectors=", ("--vectors", "empty")),
    ]),
    *_cases("sim.run", SIM, [
        ("--bits 6 --block 4 --idle 1.5", ("--idle", "1.5")),
        ("--bits 6 --block 4 --idle abc", ("--idle", "abc")),
        ("--bits 6 --block 4 --idle nan", ("--idle", "nan")),
        ("--bits 6 --block 4 --backpressure -0.1", ("--backpressure", "-0.1")),
        ("--bits 6 --block 4 --backpressure 1", ("--backpressure", "1")),
        ("--bits 0 --block 4", ("--bits", "0")),
        ("--block 4", ("--bits", "required")),
        ("--top dot --bits 6 --block 4 --rounding floor", ("--rounding", "dot")),
        ("--top adder --bits 6 --block 4 --arch tree", ("--arch", "adder")),
        ("--top cast --bits 6 --block 4 --abits 4", ("--abits", "cast")),
        ("--top linear --bits 6 --block 4 --out-bits 4", ("--out-bits", "linear")),
        ("--top intmac --bits 8 --exp-bits 5", ("--exp-bits", "intmac")),
        ("--top fpmac --fp-preset fp32 --bits 5", ("--bits", "--fp-preset")),
        ("--top dot --bits 6 --block 4 --levels-per-stage 99", ("--levels-per-stage", "99")),
    ]),
    CliCase("sim.run", ("--bits", "3", "--block", "2", "--build", "{file}"), ("--build",)),
    CliCase("sim.run", ("--bits", "3", "--block", "2", "--build", "{file}/sub"), ("--build",)),
    CliCase("sim.run", ("--bits", "3", "--block", "2", "--build", "/proc/nope"), ("--build",)),
    CliCase("sim.run", ("--bits", "3", "--block", "2", "--waves", "--build", "{file}"),
            ("--build",)),
    CliCase("sim.run", ("--bits", "3", "--block", "2", "--out", "/dev/null"),
            ("--out", "/dev/null", "is a device")),
    CliCase("sim.run", ("--bits", "3", "--block", "2", "--out", "{loop}"),
            ("--out", "is a symlink loop")),
    # ---- flows.report
    *_cases("flows.report", REPORT, [
        ("--bits 1 --block 16", ("--bits", "1")),
        ("--bits 6 --block 0", ("--block", "0")),
        ("--bits 6", ("--block",)),
        ("--block 16", ("--bits", "required")),
        ("--abits 6 --block 16", ("--bits", "--wbits")),
        ("--bits 6 --block 16 --abits 1", ("--abits", "1")),
        ("--bits 6 --block 16 --exp-bits 9", ("--exp-bits", "9")),
        ("--bits 6 --block 16 --targets foo", ("--target", "foo")),
        ("--bits 6 --block 16 --targets xc7,,ecp5", ("--target",)),
        ("--bits 6 --block 16 --jobs 0", ("--jobs", "0")),
        ("--bits 6 --block 16 --levels-per-stage 0", ("--levels-per-stage", "0")),
        ("--bits 6 --block 16 --levels-per-stage 99", ("--levels-per-stage", "99")),
        ("--bits 6 --block 16 --rounding floor", ("--rounding",)),
        ("--bits 6 --block 16 --arch foo", ("--arch", "foo")),
        ("--bits 6 --abits 5 --wbits 4 --block 16", ("--bits", "--abits", "--wbits")),
    ]),
    CliCase("flows.report", ("--bits", "6", "--block", "4", "--json", "{file}/r.json"),
            ("--json",)),
    CliCase("flows.report", ("--bits", "6", "--block", "4", "--json", "/proc/nope/r.json"),
            ("--json",)),
    CliCase("flows.report", ("--bits", "6", "--block", "4", "--json", "{folder}"), ("--json",)),
    CliCase("flows.report", ("--bits", "6", "--block", "4", "--workdir", "{file}"),
            ("--workdir",)),
    CliCase("flows.report", ("--bits", "6", "--block", "4", "--workdir", "/proc/nope"),
            ("--workdir",)),
    CliCase("flows.report", ("--bits", "6", "--block", "4", "--json", "/dev/null"),
            ("--json", "/dev/null", "is a device")),
    CliCase("flows.report", ("--bits", "6", "--block", "4", "--json", "{loop}"),
            ("--json", "is a symlink loop")),
    # ---- flows.accuracy: paths are checked before the model is loaded
    *_cases("flows.accuracy", ACCURACY, [
        ("--out {file}", ("--out", "is a file")),
        ("--out /dev/null", ("--out", "/dev/null", "is a device")),
        ("--out {loop}", ("--out", "is a symlink loop")),
        ("--out /proc/nope", ("--out", "/proc/nope")),
        ("--out {out}/a --cache /proc/nope", ("--cache", "/proc/nope")),
        ("--out {out}/a --cache {file}", ("--cache", "is a file")),
        ("--out {out}/a --cache /dev/null", ("--cache", "is a device")),
        ("--out {out}/a --cache {file}/sub", ("--cache", "is a file")),
    ]),
    # ---- flows.density
    *_cases("flows.density", DENSITY, [
        ("--out {file}", ("--out", "is a file")),
        ("--out /dev/null", ("--out", "is a device")),
        ("--out {out}/a --cache /proc/nope", ("--cache", "/proc/nope")),
        ("--out {out}/a --cache {loop}", ("--cache", "is a symlink loop")),
    ]),
    # ---- benchmarks.run
    CliCase("benchmarks.run", ("--json", "/proc/nope/b.json"), ("--json",)),
    CliCase("benchmarks.run", ("--json", "{file}/b.json"), ("--json",)),
    CliCase("benchmarks.run", ("--json", "{folder}"), ("--json",)),
    CliCase("benchmarks.run", ("--json", "/dev/null"), ("--json", "is a device")),
    CliCase("benchmarks.run", ("--repeats", "0"), ("--repeats", "0")),
    CliCase("benchmarks.run", ("--vectors", "0"), ("--vectors", "0")),
    CliCase("benchmarks.run", ("--repeats", "abc"), ("--repeats", "abc")),
    # ---- sim.formal
    *_cases("sim.formal", FORMAL, [
        ("--top fpmac --fp-preset bf16", ("--top", "fpmac")),
        ("--bits 6 --block 4 --timeout nan", ("--timeout", "nan")),
        ("--bits 6 --block 4 --timeout inf", ("--timeout", "inf")),
        ("--bits 6 --block 4 --interface axis", ("--interface", "axis")),
        ("--bits 6 --block 4 --timeout 0", ("--timeout", "0")),
        ("--bits 6 --block 4 --steps 0", ("--steps", "0")),
        ("--bits 1 --block 4", ("--bits", "1")),
        ("--bits 6 --block 4 --rounding floor", ("--rounding", "dot")),
        ("--bits 6 --block 4 --mode foo", ("--mode", "foo")),
    ]),
    CliCase("sim.formal", ("--bits", "3", "--block", "2", "--workdir", "{file}"),
            ("--workdir",)),
    CliCase("sim.formal", ("--bits", "3", "--block", "2", "--workdir", "/proc/nope"),
            ("--workdir",)),
    CliCase("sim.formal", ("--bits", "3", "--block", "2", "--workdir", "/dev/null"),
            ("--workdir", "is a device")),
]


@dataclass(frozen=True)
class ApiCase:
    """One bad call of the Python API: ``call()`` raises ``error`` naming ``names``."""

    id: str
    call: Callable[[], object]
    error: type[Exception]
    names: tuple[str, ...]


def _elaborate(top, **params):
    from hw.generate import elaborate

    return elaborate(top, **params)


def _build(top, **params):
    from hw.generate import build

    return build(top, **params)


def _quantize(x, **kwargs):
    import torch

    from golden import MXIntFormat, quantize

    return quantize(x() if callable(x) else torch.tensor(x), MXIntFormat(6, 8, 16), **kwargs)


def _format(*args):
    from golden import MXIntFormat

    return MXIntFormat(*args)


DOT = {"a_bits": 6, "b_bits": 6, "block": 16}
API_CASES: list[ApiCase] = [
    ApiCase("build-unknown-top", lambda: _build("fft", **DOT), ValueError, ("top", "fft")),
    ApiCase("dot-a_bits-1", lambda: _build("dot", **{**DOT, "a_bits": 1}), ValueError,
            ("a_bits", "1")),
    ApiCase("dot-a_bits-str", lambda: _build("dot", **{**DOT, "a_bits": "6"}), TypeError,
            ("a_bits",)),
    ApiCase("dot-block-bool", lambda: _build("dot", **{**DOT, "block": True}), TypeError,
            ("block",)),
    ApiCase("dot-unknown-param", lambda: _build("dot", **DOT, rounding="even"), TypeError,
            ("rounding",)),
    ApiCase("dot-arch", lambda: _build("dot", **DOT, arch="foo"), ValueError, ("arch", "foo")),
    ApiCase("dot-levels-0", lambda: _build("dot", **DOT, levels_per_stage=0), ValueError,
            ("levels_per_stage", "0")),
    ApiCase("dot-tree-xc7", lambda: _build("dot", **DOT, arch="tree", primitives="xc7"),
            ValueError, ("primitives",)),
    ApiCase("elaborate-dot-a_bits-0", lambda: _elaborate("dot", **{**DOT, "a_bits": 0}),
            ValueError, ("a_bits", "0")),
    ApiCase("adder-rounding", lambda: _build("adder", **DOT, out_bits=6, rounding="up"),
            ValueError, ("rounding", "up")),
    ApiCase("adder-out_bits", lambda: _build("adder", **DOT, out_bits=1), ValueError,
            ("out_bits", "1")),
    ApiCase("accum-acc_width", lambda: _build("accum", **DOT, acc_width=5), ValueError,
            ("acc_width", "5")),
    ApiCase("accum-align", lambda: _build("accum", **DOT, align="foo"), ValueError,
            ("align", "foo")),
    ApiCase("cast-float_format", lambda: _build("cast", man_bits=6, block=4,
                                                float_format="fp16"), ValueError,
            ("float_format", "fp16")),
    ApiCase("dequant-source", lambda: _build("dequant", source="foo", man_bits=6, block=4),
            ValueError, ("source", "foo")),
    ApiCase("linear-rows-lanes", lambda: _build("linear", x_bits=6, w_bits=6, block=4,
                                                k_len=16, rows=5, lanes=2), ValueError,
            ("rows", "5")),
    ApiCase("linear-output", lambda: _build("linear", x_bits=6, w_bits=6, block=4, k_len=16,
                                            rows=4, output="foo"), ValueError,
            ("output", "foo")),
    ApiCase("fpmac-exp_bits", lambda: _build("fpmac", exp_bits=1, man_bits=5), ValueError,
            ("exp_bits", "1")),
    ApiCase("intmac-acc_width", lambda: _build("intmac", a_bits=8, b_bits=8, acc_width=3),
            ValueError, ("acc_width", "3")),
    ApiCase("intdot-block", lambda: _build("intdot", a_bits=8, b_bits=8, block=0),
            ValueError, ("block", "0")),
    ApiCase("format-man_bits", lambda: _format(1, 8, 16), ValueError, ("man_bits", "1")),
    ApiCase("quantize-rounding", lambda: _quantize([1.0] * 16, rounding="up"), ValueError,
            ("rounding", "up")),
    ApiCase("quantize-not-tensor", lambda: _quantize(lambda: [1.0] * 16), TypeError, ("x",)),
]



# ---------------------------------------------------------------------------------------
# Running a case


class ToolReached(BaseException):  # noqa: N818 - not an error: a marker the stubs raise
    """A stub stands where a tool would run: the command line accepted its options.

    A ``BaseException``, so that no ``except Exception`` in the code under test catches it.
    """


def _reached(*_args, **_kwargs):
    raise ToolReached


class _FakeRunner:
    build = test = staticmethod(_reached)


def _stubs(cli: str):
    """Patches that replace the tool a command line would run."""
    if cli == "sim.run":
        return [mock.patch("cocotb_tools.runner.get_runner", lambda *a, **k: _FakeRunner())]
    if cli == "flows.report":
        report = importlib.import_module("flows.report")
        name = "synthesize_design" if hasattr(report, "synthesize_design") else "synthesize"
        return [mock.patch.object(report, name, _reached)]
    if cli == "benchmarks.run":
        return [mock.patch(f"benchmarks.run.bench_{name}", _reached)
                for name in ("generate", "quantize", "verilator")]
    if cli == "sim.formal":
        return [mock.patch.object(importlib.import_module("sim.formal.__main__"), "prove",
                                  _reached)]
    if cli in ("flows.accuracy", "flows.density"):  # before the model or a tool: the paths
        module = importlib.import_module(cli)
        return [mock.patch.object(module, name, _reached) for name in
                ("resolve_model", "accuracy_rows", "run") if hasattr(module, name)]
    return []


def _main(cli: str):
    return importlib.import_module("sim.formal.__main__" if cli == "sim.formal" else cli).main


@dataclass
class Outcome:
    code: int | None
    stdout: str
    stderr: str
    traceback: bool
    reached_tool: bool
    left: list[str]


def run_cli(case: CliCase, folder: Path) -> Outcome:
    """Run ``case`` in this process inside ``folder`` (fresh for each case)."""
    out = folder / "out"
    blocker = folder / "file"
    blocker.write_text("x")
    loop = folder / "loop"
    loop.symlink_to(loop)
    argv = [a.format(out=out, file=blocker, folder=folder, loop=loop) for a in case.argv]
    stdout, stderr = io.StringIO(), io.StringIO()
    code, crashed, reached = None, False, False
    with contextlib.ExitStack() as stack:
        for patch in _stubs(case.cli):
            stack.enter_context(patch)
        stack.enter_context(contextlib.redirect_stdout(stdout))
        stack.enter_context(contextlib.redirect_stderr(stderr))
        try:
            code = _main(case.cli)(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, int | None):
                print(exc.code, file=sys.stderr)
        except ToolReached:
            reached = True
        except Exception:  # noqa: BLE001 - a traceback is what the survey counts
            crashed = True
            traceback.print_exc(file=sys.stderr)
    text = stdout.getvalue() + stderr.getvalue()
    left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p not in (blocker, loop) and p.resolve() != blocker.resolve())
    if blocker.read_text() != "x":
        left.append("file (changed)")
    return Outcome(code, stdout.getvalue(), stderr.getvalue(),
                   crashed or "Traceback" in text, reached, left)


def problems(case: CliCase, o: Outcome) -> list[str]:
    """What ``case`` did wrong, empty when it was refused as it should be."""
    if o.traceback:
        return ["traceback"]
    if o.reached_tool or o.code == 0:
        return ["accepted"]
    found = []
    lines = [line for line in o.stderr.splitlines() if line.strip()]
    if len(lines) != 1:
        found.append(f"{len(lines)} error lines")
    elif not all(name in lines[0] for name in case.names):
        found.append(f"does not name {' and '.join(case.names)}")
    if o.left:
        found.append(f"left {', '.join(o.left)}")
    return found


def run_api(case: ApiCase) -> list[str]:
    try:
        case.call()
    except case.error as exc:
        message = str(exc)
        if "\n" in message.strip():
            return ["more than one line"]
        missing = [name for name in case.names if name not in message]
        return [f"does not name {', '.join(missing)}: {message}"] if missing else []
    except Exception as exc:  # noqa: BLE001 - an unexpected exception is a traceback
        return [f"traceback: {type(exc).__name__}: {exc}"]
    return ["accepted"]


# ---------------------------------------------------------------------------------------
# Tests


def test_table_covers_at_least_100_cases():
    assert len(CLI_CASES) + len(API_CASES) >= 100
    assert len({case.id for case in CLI_CASES}) == len(CLI_CASES)


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: c.id)
def test_cli_bad_input(case, tmp_path):
    outcome = run_cli(case, tmp_path)
    assert problems(case, outcome) == [], outcome.stdout + outcome.stderr
    assert outcome.code not in (0, None)


@pytest.mark.parametrize("case", API_CASES, ids=lambda c: c.id)
def test_api_bad_input(case):
    assert run_api(case) == []


def test_checker_catches_a_silently_accepted_option(tmp_path):
    """The table's checks fail on command lines that are accepted: good ones."""
    good = CliCase("hw.generate", ("--bits", "3", "--block", "2", "--out", "{out}"),
                   ("--bits",))
    (tmp_path / "a").mkdir()
    assert problems(good, run_cli(good, tmp_path / "a")) == ["accepted"]
    tool = CliCase("flows.report", ("--bits", "3", "--block", "2"), ("--bits",))
    (tmp_path / "b").mkdir()
    assert problems(tool, run_cli(tool, tmp_path / "b")) == ["accepted"]


def test_checker_catches_a_traceback_and_a_missing_name(tmp_path):
    case = CliCase("hw.generate", ("--bits", "1", "--block", "2", "--out", "{out}"),
                   ("--no-such-option",))
    assert problems(case, run_cli(case, tmp_path)) == ["does not name --no-such-option"]
    crash = ApiCase("crash", lambda: [][1], ValueError, ("x",))
    assert run_api(crash)[0].startswith("traceback: IndexError")


@pytest.mark.parametrize(("args", "names", "code"), [
    (["-m", "hw.generate", "--top", "dot", "--bits", "6", "--block", "4", "--rounding", "zero",
      "--out", "{out}"], ("--rounding", "dot"), 2),
    (["-m", "hw.generate", "--bits", "6", "--block", "4", "--out", "{file}"], ("--out",), 2),
    (["-m", "sim.run", "--bits", "3", "--block", "2", "--build", "{file}"], ("--build",), 2),
    (["-m", "flows.report", "--bits", "6", "--block", "4", "--json", "/proc/nope/r.json"],
     ("--json",), 2),
    (["-m", "benchmarks.run", "--json", "/proc/nope/b.json"], ("--json",), 2),
    (["-m", "sim.formal", "--bits", "3", "--block", "2", "--workdir", "{file}"],
     ("--workdir",), 2),
    (["-m", "flows.accuracy", "--bits", "4", "--block", "16", "--out", "/dev/null"],
     ("--out", "/dev/null", "is a device"), 2),
    (["-m", "flows.accuracy", "--bits", "4", "--block", "16", "--out", "{out}",
      "--cache", "/proc/nope"], ("--cache", "/proc/nope"), 2),
])
def test_real_entry_points(args, names, code, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    argv = [a.format(out=tmp_path / "out", file=blocker) for a in args]
    r = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=REPO,
                       check=False, timeout=120)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == code, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert len(lines) == 1 and all(name in lines[0] for name in names), r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert blocker.read_text() == "x"


# ---------------------------------------------------------------------------------------
# The survey


def survey() -> dict:
    """Counts over the whole table (``python -m tests.test_bad_inputs``)."""
    counts = {"cases": len(CLI_CASES) + len(API_CASES), "traceback": 0, "accepted": 0,
              "other": 0, "ok": 0}
    rows = []
    for case in CLI_CASES:
        with tempfile.TemporaryDirectory() as folder:
            found = problems(case, run_cli(case, Path(folder)))
        rows.append((case.id, found))
    for case in API_CASES:
        rows.append((f"api:{case.id}", run_api(case)))
    for name, found in rows:
        kind = ("ok" if not found else "traceback" if found[0].startswith("traceback")
                else "accepted" if found[0] == "accepted" else "other")
        counts[kind] += 1
        if found:
            print(f"{kind:9s} {name}: {'; '.join(found)}")
    return counts


if __name__ == "__main__":
    from amaranth.hdl import UnusedElaboratable

    # As in pytest's settings: components built only to be refused are never elaborated.
    warnings.filterwarnings("ignore", category=UnusedElaboratable)
    print(survey())
