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
import signal
import subprocess
import sys
import tempfile
import time
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
    to itself), ``{dangling}`` (a symbolic link to nothing) and ``{folder}`` (the existing
    folder that holds them), and ``{name}`` for each ``(name, text)`` of ``files``: a file
    of that text (a configuration file). ``names`` must all appear in the one error line.
    """

    cli: str
    argv: tuple[str, ...]
    names: tuple[str, ...]
    files: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        files = "".join(f" [{name}: {text!r}]" for name, text in self.files)
        return f"{self.cli}:{' '.join(self.argv)}{files}"


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
        ("--top linear --bits 6 --block 4 --arch tree --primitives xc7", ("--primitives",)),
        ("--top tile --format mxfp4 --block 4 --primitives ecp5",
         ("--primitives", "ecp5", "MXINT operands", "mxfp4 (e2m1)", "--wformat")),
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
        ("--top dot --aformat mxfp8_e4m3 --wbits 6 --block 16 --primitives ecp5",
         ("--primitives", "ecp5", "mxfp8_e4m3 (e4m3)")),
        ("--top adder --bits 6 --block 4 --guard-bits -1", ("--guard-bits", "-1")),
        ("--top adder --bits 6 --block 4 --out-bits 1", ("--out-bits", "1")),
        ("--top adder --abits 6 --wbits 6 --block 4", ("--out-bits/--bits", "required")),
        ("--top adder --bits 6 --block 4 --rounding up", ("--rounding", "up")),
        ("--top accum --bits 6 --block 4 --acc-width 5", ("--acc-width", "5")),
        ("--top accum --bits 6 --block 4 --acc-width 99", ("--acc-width", "99")),
        ("--top accum --bits 6 --block 4 --align foo", ("--align", "foo")),
        ("--top linear --bits 6 --block 4 --align foo", ("--align", "foo")),
        ("--top cast --bits 6 --block 4 --float-format fp16", ("--float-format", "fp16")),
        ("--top cast --bits 6 --block 4 --levels-per-stage 99", ("--levels-per-stage", "99")),
        ("--top dequant --bits 6 --block 4 --source foo", ("--source", "foo")),
        ("--top linear --bits 6 --block 4 --rows 0", ("--rows", "0")),
        ("--top linear --bits 6 --block 4 --rows 5 --lanes 2", ("--rows", "5")),
        ("--top linear --bits 6 --block 4 --k-len 0", ("--k-len", "0")),
        ("--top linear --bits 6 --block 4 --lanes 0", ("--lanes", "0")),
        ("--top linear --bits 6 --block 4 --output foo", ("--output", "foo")),
        ("--top linear --bits 6 --block 4 --output mx", ("--output", "mx")),
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
        ("--bits 6 --block 4 --seed 4294967296", ("--seed", "4294967296")),
        ("--bits 6 --block 4 --vectors 1e3", ("--vectors", "1e3")),
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

def _with_out(cases: list[CliCase]) -> list[CliCase]:
    """``cases`` with ``--out {out}/a`` added where they give no ``--out``: nothing is
    written to the default folder of the current one."""
    return [c if "--out" in c.argv else CliCase(c.cli, (*c.argv, "--out", "{out}/a"), c.names,
                                                c.files) for c in cases]


# ---- Second round (issue 19): the MXFP options, the causal-model options, numbers that
# are not finite, configuration files, more kinds of bad path.
MXFP_CASES: list[CliCase] = [
    *_cases("hw.generate", GEN, [
        ("--top cast --format mxfp9 --block 4", ("--format", "mxfp9")),
        ("--top cast --format mxfp4 --bits 6 --block 4", ("--bits", "mxfp4")),
        ("--top cast --format mxfp4 --block 4 --scale-rounding up",
         ("--scale-rounding", "up")),
        ("--top cast --bits 6 --block 4 --scale-rounding rceil", ("--scale-rounding",)),
        ("--top cast --format mxfp4 --exp-bits 5 --block 4", ("--exp-bits",)),
        ("--top cast --format mxfp4 --block 4 --format mxfp4", ("--format", "twice")),
        ("--top cast --aformat mxfp4 --block 4", ("--aformat", "cast")),
        ("--top adder --format mxfp8_e5m2 --out-bits 8 --guard-bits 28 --block 4",
         ("--guard-bits", "28", "mxfp8_e5m2")),
        # E5M2 x E5M2: the dot product takes it; nothing downstream of its 65- to 75-bit
        # results does (the accumulator's 62 bits), each in one line naming the pair.
        ("--top accum --format mxfp8_e5m2 --block 4", ("--format", "mxfp8_e5m2", "62")),
        ("--top tile --format mxfp8_e5m2 --block 4", ("--format", "mxfp8_e5m2", "62")),
        ("--top dequant --source accum --aformat mxfp8_e5m2 --wformat mxfp8_e5m2 --block 4",
         ("--wformat", "mxfp8_e5m2", "62")),
        ("--top linear --aformat mxfp8_e5m2 --wformat mxfp8_e5m2 --block 4",
         ("--wformat", "mxfp8_e5m2", "62")),
        ("--top linear --format mxfp4 --exp-bits 5 --block 4", ("--exp-bits", "5")),
        ("--top accum --format mxfp4 --abits 4 --block 4", ("--abits", "mxfp4")),
        ("--top dot --format mxfp4 --aformat mxfp6_e2m3 --wformat mxfp4 --block 4",
         ("--format", "no difference")),
        ("--top dot --aformat mxfp4 --abits 4 --wbits 4 --block 4", ("--abits", "mxfp4")),
        ("--top dot --format mxfp4 --block 4 --scale-rounding rceil",
         ("--scale-rounding", "dot")),
        ("--top dot --bits 6 --block 4 --wformat mxint", ("--wformat", "mxint")),
        ("--top dequant --format mxfp4 --source accum --block 4", ("--format",)),
        ("--top cast --format= --block 4", ("--format", "empty")),
    ]),
    *_cases("sim.run", SIM, [
        ("--top cast --format mxfp7 --block 4", ("--format", "mxfp7")),
        ("--top cast --format mxfp4 --block 4 --scale-rounding ceil",
         ("--scale-rounding", "ceil")),
        ("--top dot --format mxfp4 --bits 4 --block 4", ("--bits", "mxfp4")),
        ("--top dot --bits 6 --block 4 --scale-rounding rceil", ("--scale-rounding", "dot")),
        ("--bits 6 --block 4 --idle inf", ("--idle", "inf")),
        ("--bits 6 --block 4 --backpressure nan", ("--backpressure", "nan")),
        ("--bits 6 --block 4 --waves --waves", ("--waves", "twice")),
    ]),
    *_cases("sim.formal", FORMAL, [
        ("--top cast --format mxfp4 --block 2 --scale-rounding up",
         ("--scale-rounding", "up")),
        ("--top cast --format mxfp9 --block 2", ("--format", "mxfp9")),
        ("--bits 6 --block 4 --timeout -5", ("--timeout", "-5")),
        ("--bits 6 --block 4 --timeout abc", ("--timeout", "abc")),
        ("--bits 6 --block 4 --timeout 1e400", ("--timeout", "1e400", "finite")),
        ("--bits 6 --block 4 --steps 201", ("--steps", "201")),
        ("--bits 6 --block 4 --steps nan", ("--steps", "nan")),
    ]),
    *_with_out(_cases("flows.accuracy", (), [
        ("--formats mxfp9 --block 32", ("--formats", "mxfp9")),
        ("--formats mxfp4:int8 --block 32", ("--formats", "int8")),
        ("--formats mxfp4,,mxfp6_e2m3 --block 32", ("--formats",)),
        ("--formats bf16 --block 32", ("--formats", "bf16")),
        ("--formats mxfp4 --block 32 --formats mxfp6_e2m3", ("--formats", "twice")),
        ("--model smollm2 --bits 6 --block 32 --tokens 0", ("--tokens", "0")),
        ("--model smollm2 --bits 6 --block 32 --tokens abc", ("--tokens", "abc")),
        ("--model smollm2 --bits 6 --block 32 --tokens inf", ("--tokens", "inf")),
        ("--model smollm2 --bits 6 --block 32 --window 1", ("--window", "1")),
        ("--model smollm2 --bits 6 --block 32 --window 1000000", ("--window", "1000000")),
        ("--model smollm2 --bits 6 --block 32 --seed -1", ("--seed", "-1")),
        ("--model smollm2 --bits 6 --block 32 --keep a,,b", ("--keep",)),
        ("--model smollm2 --bits 6 --block 32 --keep=", ("--keep", "empty")),
        ("--bits 6 --block 32 --out {out}/a --cache {out}/c --no-cache",
         ("--cache", "--no-cache")),
        ("--bits 6 --block 32 --jobs 65", ("--jobs", "65")),
        ("--bits 6 --block 32 --jobs nan", ("--jobs", "nan")),
        ("--bits 6 --block 32 --sentences 0", ("--sentences", "0")),
        ("--bits 6 --block 32 --sentences inf", ("--sentences", "inf")),
        ("--bits 6 --block 32 --exp-bits 4,5", ("--exp-bits",)),
        ("--bits 6 --block 32 --baseline int4", ("--baseline", "int4")),
        ("--bits 6 --block 32 --arithmetic foo", ("--arithmetic", "foo")),
        ("--formats mxfp4:bf16 --block 32 --arithmetic engine",
         ("--arithmetic", "engine", "mxfp4:bf16")),
        ("--bits 6 --block 32 --bits 4", ("--bits", "twice")),
        ("--bits 6 --block 32 --out {dangling}", ("--out", "broken symlink")),
        ("--bits 6 --block 32 --out {out}/a --cache {dangling}", ("--cache", "broken symlink")),
    ])),
    *_cases("flows.density", DENSITY, [
        ("--jobs 0", ("--jobs", "0")),
        ("--target foo", ("--target", "foo")),
        ("--out {out}/a --cache {out}/c --no-cache", ("--cache", "--no-cache")),
    ]),
    # ---- models.export (its output file; the model loader is the stubbed tool)
    *_cases("models.export", (), [
        ("--out {folder}", ("--out", "folder")),
        ("--out /dev/null", ("--out", "/dev/null")),
        ("--out {loop}", ("--out", "symlink loop")),
        ("--out /proc/nope/w.safetensors", ("--out", "/proc/nope")),
        ("--out {out}/w.safetensors --scale-rounding up", ("--scale-rounding", "up")),
        ("--out {out}/w.safetensors --rounding odd", ("--rounding", "odd")),
        ("--model minilm", ("--out",)),
    ]),
    # ---- configuration files
    CliCase("hw.generate", ("--config", "{c}", "--out", "{out}/g"), ("--config", "bits"),
            files=(("c", "bits: 6\nblock: 16\nbits: 8\n"),)),
    CliCase("hw.generate", ("--config", "{c}", "--out", "{out}/g"), ("--config", "frobnicate"),
            files=(("c", "bits: 6\nblock: 16\nfrobnicate: 1\n"),)),
    CliCase("hw.generate", ("--config", "{c}"), ("--config", "out", "empty"),
            files=(("c", "bits: 6\nblock: 16\nout: ''\n"),)),
    CliCase("hw.generate", ("--config", "{c}", "--out", "{out}/g"), ("--config", "bits", "inf"),
            files=(("c", "bits: .inf\nblock: 16\n"),)),
    CliCase("hw.generate", ("--config", "{c}", "--out", "{out}/g"), ("--config", "mapping"),
            files=(("c", "- bits\n- 6\n"),)),
    CliCase("hw.generate", ("--config", "{c}", "--out", "{out}/g"), ("--config", "block"),
            files=(("c", "bits: 6\nblock: {k: 16}\n"),)),
    CliCase("hw.generate", ("--config", "{c}", "--config", "{c}", "--out", "{out}/g"),
            ("--config", "twice"), files=(("c", "bits: 6\nblock: 16\n"),)),
    CliCase("hw.generate", ("--config", "{folder}", "--out", "{out}/g"), ("--config",)),
    CliCase("hw.generate", ("--config", "{loop}", "--out", "{out}/g"), ("--config",)),
    CliCase("hw.generate", ("--config", "/dev/null", "--bits", "6", "--block", "4",
                            "--out", "{file}"), ("--out", "is a file")),
    CliCase("sim.run", ("--config", "{c}", "--build", "{out}/s"), ("--config", "waves"),
            files=(("c", "bits: 6\nblock: 4\nwaves: 'yes'\n"),)),
    CliCase("sim.run", ("--config", "{c}", "--build", "{out}/s"), ("--config", "idle", "nan"),
            files=(("c", "bits: 6\nblock: 4\nidle: .nan\n"),)),
    CliCase("sim.formal", ("--config", "{c}", "--workdir", "{out}/f"),
            ("--config", "timeout", "inf"),
            files=(("c", "bits: 6\nblock: 4\ntimeout: .inf\n"),)),
    CliCase("flows.accuracy", ("--config", "{c}"), ("--config", "cache", "--no-cache"),
            files=(("c", "bits: 6\nblock: 32\ncache: x\nno-cache: true\n"),)),
    CliCase("flows.accuracy", ("--config", "{c}", "--out", "{out}/a"),
            ("--config", "tokens", "0"),
            files=(("c", "model: smollm2\nbits: 6\nblock: 32\ntokens: 0\n"),)),
    # ---- more bad paths
    CliCase("hw.generate", ("--bits", "6", "--block", "4", "--out", "{dangling}"),
            ("--out", "broken symlink")),
    CliCase("sim.run", ("--bits", "3", "--block", "2", "--build", "{dangling}/sub"),
            ("--build", "broken symlink")),
    CliCase("sim.formal", ("--bits", "3", "--block", "2", "--workdir", "{loop}"),
            ("--workdir", "symlink loop")),
    CliCase("flows.report", ("--bits", "6", "--block", "4", "--json", "{dangling}"),
            ("--json", "broken symlink")),
    CliCase("benchmarks.run", ("--json", "{loop}"), ("--json", "symlink loop")),
    CliCase("sim.tools", ("envv",), ("envv",)),
    CliCase("sim.tools", ("env", "--frob"), ("--frob",)),
]
CLI_CASES += MXFP_CASES


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


# ---- Second round (issue 19): tensors of the wrong kind, formats, golden.nn.


def _t(*args, **kwargs):
    import torch

    return torch.tensor(*args, **kwargs)


def _fmt6():
    from golden import MXIntFormat

    return MXIntFormat(6, 8, 16)


def _mxint(mantissa=None, exponent=None, shape=(16,), axis=0, fmt=None):
    import torch

    from golden import MXIntTensor

    return MXIntTensor(mantissa=torch.zeros(1, 16, dtype=torch.int32) if mantissa is None
                       else mantissa, exponent=torch.zeros(1, dtype=torch.int32)
                       if exponent is None else exponent, fmt=fmt or _fmt6(),
                       shape=torch.Size(shape), axis=axis)


def _mxfp(codes=None, exponent=None):
    import torch

    from golden import MXFPFormat, MXFPTensor

    return MXFPTensor(codes=torch.zeros(1, 32, dtype=torch.int32) if codes is None else codes,
                      exponent=torch.zeros(1, dtype=torch.int32) if exponent is None
                      else exponent, fmt=MXFPFormat("e2m1"), shape=torch.Size((32,)), axis=0)


def _api(name, *args, **kwargs):
    import golden

    return getattr(golden, name)(*args, **kwargs)


def _linear(*args, **kwargs):
    import torch

    return torch.nn.Linear(*args, **kwargs)


def _mxlinear(layer=None, x=None, **kwargs):
    from golden import MXLinear

    fmt = _fmt6()
    m = MXLinear(layer if layer is not None else _linear(16, 4),
                 **{"weights": fmt, "activations": fmt, **kwargs})
    return m if x is None else m(x)


def _mxconv(conv=None, x=None):
    from golden import MXConv

    fmt = _fmt6()
    m = MXConv(conv if conv is not None else _conv_model()[0], weights=fmt, activations=fmt)
    return m if x is None else m(x)


def _qmodel(model=None, **kwargs):
    import torch

    from golden import quantize_model

    fmt = _fmt6()
    model = model if model is not None else torch.nn.Sequential(_linear(16, 4))
    return quantize_model(model, **{"weights": fmt, "activations": fmt, **kwargs})


def _conv_model(**kwargs):
    import torch

    return torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, **kwargs))


def _save(path, weights, **kwargs):
    from golden import save_mxfp4

    return save_mxfp4(path, weights, **kwargs)


def _i64(n=16):
    import torch

    return torch.arange(n)


def _meta(n=16):
    import torch

    return torch.zeros(n, device="meta")


def _zeros(*shape, dtype=None):
    import torch

    return torch.zeros(*shape, dtype=dtype)


def _c64():
    import torch

    return torch.zeros(16, dtype=torch.complex64)


API_CASES += [
    # ---- quantize: tensors and arguments of the wrong kind
    ApiCase("quantize-int64", lambda: _api("quantize", _i64(), _fmt6()), TypeError,
            ("x", "int64")),
    ApiCase("quantize-complex", lambda: _api("quantize", _c64(), _fmt6()), TypeError,
            ("x", "complex64")),
    ApiCase("quantize-bool", lambda: _api("quantize", _zeros(16, dtype=_t(True).dtype),
                                          _fmt6()), TypeError, ("x", "bool")),
    ApiCase("quantize-axis-str", lambda: _api("quantize", _zeros(16), _fmt6(), axis="0"),
            TypeError, ("axis",)),
    ApiCase("quantize-axis-float", lambda: _api("quantize", _zeros(16), _fmt6(), axis=0.0),
            TypeError, ("axis",)),
    ApiCase("quantize-axis-bool", lambda: _api("quantize", _zeros(4, 16), _fmt6(), axis=True),
            TypeError, ("axis",)),
    ApiCase("quantize-fmt-str", lambda: _api("quantize", _zeros(16), "mxint6"), TypeError,
            ("fmt",)),
    ApiCase("quantize-rounding-none", lambda: _api("quantize", _zeros(16), _fmt6(),
                                                   rounding=None), ValueError, ("rounding",)),
    # ---- dequantize and the quantised tensors
    ApiCase("dequantize-tensor", lambda: _api("dequantize", _zeros(16)), TypeError, ("q",)),
    ApiCase("mxint-exponent-300", lambda: _mxint(exponent=_t([300])), ValueError,
            ("exponent", "300")),
    ApiCase("mxint-mantissa-range", lambda: _mxint(mantissa=_i64().reshape(1, 16) * 4),
            ValueError, ("mantissa", "32")),
    ApiCase("mxint-mantissa-float", lambda: _mxint(mantissa=_zeros(1, 16)), TypeError,
            ("mantissa", "float32")),
    ApiCase("mxint-mantissa-complex", lambda: _mxint(mantissa=_zeros(1, 16).to(_c64().dtype)),
            TypeError, ("mantissa", "complex64")),
    ApiCase("mxint-mantissa-meta", lambda: _mxint(mantissa=_meta(16).to(_i64().dtype)
                                                  .reshape(1, 16)), ValueError,
            ("mantissa", "meta")),
    ApiCase("mxint-exponent-shape", lambda: _mxint(exponent=_zeros(2, dtype=_i64().dtype)),
            ValueError, ("exponent", "(2,)")),
    ApiCase("mxint-shape-tuple", lambda: _mxint(shape=(17,)), ValueError, ("elements",)),
    ApiCase("mxint-axis-neg", lambda: _mxint(axis=-1), ValueError, ("axis", "-1")),
    ApiCase("mxint-fmt-mxfp", lambda: _mxint(fmt=_api("parse_format", "mxfp4", block=16)),
            TypeError, ("fmt",)),
    ApiCase("mxfp-codes-16", lambda: _mxfp(codes=_zeros(1, 32, dtype=_i64().dtype) + 16),
            ValueError, ("codes", "16")),
    ApiCase("mxfp-exponent-neg", lambda: _mxfp(exponent=_t([-1])), ValueError,
            ("exponent", "-1")),
    # ---- formats
    ApiCase("parse_format-mxint1", lambda: _api("parse_format", "mxint1"), ValueError,
            ("mxint", "1")),
    ApiCase("parse_format-mxfp5", lambda: _api("parse_format", "mxfp5"), ValueError,
            ("format", "mxfp5")),
    ApiCase("parse_format-int", lambda: _api("parse_format", 8), TypeError, ("format", "8")),
    ApiCase("parse_format-block-0", lambda: _api("parse_format", "mxfp4", block=0),
            ValueError, ("block", "0")),
    ApiCase("parse_format-block-bool", lambda: _api("parse_format", "mxfp4", block=True),
            TypeError, ("block",)),
    ApiCase("parse_format-rceil-mxint", lambda: _api("parse_format", "mxint8",
                                                      scale_rounding="rceil"),
            ValueError, ("scale_rounding", "rceil")),
    ApiCase("parse_format-scale-up", lambda: _api("parse_format", "mxfp4",
                                                   scale_rounding="up"),
            ValueError, ("scale_rounding", "up")),
    ApiCase("format-man_bits-float", lambda: _format(6.0, 8, 16), TypeError, ("man_bits",)),
    ApiCase("format-exp_bits-9", lambda: _format(6, 9, 16), ValueError, ("exp_bits", "9")),
    ApiCase("mxfpformat-e2m2", lambda: _api("MXFPFormat", "e2m2"), ValueError, ("e2m2",)),
    # ---- pack, unpack, torch_view
    ApiCase("pack-float", lambda: _api("pack", _zeros(2, 32), 4), TypeError,
            ("codes", "float32")),
    ApiCase("pack-bits-5", lambda: _api("pack", _i64(32), 5), ValueError, ("bits", "5")),
    ApiCase("pack-codes-16", lambda: _api("pack", _i64(32), 4), ValueError, ("codes", "16")),
    ApiCase("pack-odd-fp4", lambda: _api("pack", _i64(3), 4), ValueError, ("codes", "3")),
    ApiCase("unpack-int32", lambda: _api("unpack", _i64(4).int(), 4), TypeError,
            ("data", "int32")),
    ApiCase("unpack-bits-2", lambda: _api("unpack", _zeros(4, dtype=_t(1).byte().dtype), 2),
            ValueError, ("bits", "2")),
    ApiCase("torch_view-e9m9", lambda: _api("torch_view", _zeros(4, dtype=_t(1).byte().dtype),
                                            "e9m9"), ValueError, ("element", "e9m9")),
    # ---- checkpoints
    ApiCase("save_mxfp4-not-mapping", lambda: _save("/proc/nope/x", [_zeros(32)]), TypeError,
            ("weights",)),
    ApiCase("save_mxfp4-int", lambda: _save("/proc/nope/x", {"w": _i64(32)}), TypeError,
            ("'w'", "int64")),
    ApiCase("save_mxfp4-31", lambda: _save("/proc/nope/x", {"w": _zeros(31)}), ValueError,
            ("'w'", "(31,)")),
    ApiCase("save_mxfp4-path", lambda: _save("/proc/nope/x.safetensors", {"w": _zeros(32)}),
            OSError, ("/proc/nope",)),
    ApiCase("load_mxfp4-missing", lambda: _api("load_mxfp4", "/proc/nope.safetensors"),
            OSError, ("/proc/nope.safetensors",)),
    ApiCase("load_mxfp4-not-safetensors", lambda: _api("load_mxfp4", "/etc/hostname"),
            ValueError, ("/etc/hostname",)),
    # ---- golden.nn: MXLinear
    ApiCase("mxlinear-conv", lambda: _mxlinear(_conv_model()[0]), TypeError, ("linear",)),
    ApiCase("mxlinear-str-format", lambda: _mxlinear(weights="mxfp4"), TypeError,
            ("weights", "MXFPFormat", "'mxfp4'")),
    ApiCase("mxlinear-mxfp-exp_bits", lambda: _mxlinear(
        weights=_api("parse_format", "mxfp4", block=16), activations=_format(6, 5, 16)),
        ValueError, ("exp_bits", "mxfp4_k16", "mxint6e5k16")),
    ApiCase("mxlinear-mxfp-block", lambda: _mxlinear(
        weights=_api("parse_format", "mxfp4", block=32)), ValueError,
        ("block", "mxfp4_k32", "mxint6e8k16")),
    ApiCase("mxlinear-e5m2-e5m2", lambda: _mxlinear(
        weights=_api("parse_format", "mxfp8_e5m2", block=16),
        activations=_api("parse_format", "mxfp8_e5m2", block=16)), ValueError,
        ("E5M2 x E5M2", "69 bits wide, beyond the accumulator's 62")),
    ApiCase("mxlinear-e5m2-e4m3-guard", lambda: _mxlinear(
        weights=_api("parse_format", "mxfp8_e5m2", block=16),
        activations=_api("parse_format", "mxfp8_e4m3", block=16), guard_bits=8), ValueError,
        ("guard_bits", "from 0 to 7", "8")),
    ApiCase("mxlinear-acc_width-2", lambda: _mxlinear(acc_width=2), ValueError,
            ("acc_width", "2")),
    ApiCase("mxlinear-guard-neg", lambda: _mxlinear(guard_bits=-1), ValueError,
            ("guard_bits", "-1")),
    ApiCase("mxlinear-meta", lambda: _mxlinear(_linear(16, 4, device="meta")), ValueError,
            ("meta",)),
    ApiCase("mxlinear-complex", lambda: _mxlinear(_linear(16, 4, dtype=_c64().dtype)),
            TypeError, ("complex64",)),
    ApiCase("mxlinear-x-int", lambda: _mxlinear(x=_i64(16).reshape(1, 16)), TypeError,
            ("x", "int64")),
    ApiCase("mxlinear-x-shape", lambda: _mxlinear(x=_zeros(2, 15)), ValueError,
            ("in_features=16", "(2, 15)")),
    ApiCase("mxlinear-x-list", lambda: _mxlinear(x=[0.0] * 16), TypeError, ("x", "list")),
    # ---- golden.nn: MXConv
    ApiCase("mxconv-linear", lambda: _mxconv(_linear(16, 4)), TypeError, ("conv", "Linear")),
    ApiCase("mxconv-groups", lambda: _mxconv(_conv_model(groups=2)[0]), ValueError,
            ("groups", "2")),
    ApiCase("mxconv-x-channels", lambda: _mxconv(x=_zeros(1, 3, 5, 5)), ValueError,
            ("in_channels=4", "(1, 3, 5, 5)")),
    ApiCase("mxconv-x-small", lambda: _mxconv(x=_zeros(1, 4, 2, 2)), ValueError,
            ("kernel", "(1, 4, 2, 2)")),
    # ---- golden.nn: quantize_model
    ApiCase("quantize_model-bare", lambda: _qmodel(_linear(16, 4)), ValueError,
            ("model", "Linear")),
    ApiCase("quantize_model-str-format", lambda: _qmodel(weights="mxint6"), TypeError,
            ("weights",)),
    ApiCase("quantize_model-include-int", lambda: _qmodel(include=5), TypeError,
            ("include", "5")),
    ApiCase("quantize_model-include-none-match", lambda: _qmodel(include="nope*"), ValueError,
            ("include", "nope*")),
    ApiCase("quantize_model-acc_width", lambda: _qmodel(acc_width=2), ValueError,
            ("acc_width", "2")),
    ApiCase("quantize_model-rounding", lambda: _qmodel(rounding="up"), ValueError,
            ("rounding", "up")),
    ApiCase("quantize_model-blocks", lambda: _qmodel(activations=_format(6, 8, 32)),
            ValueError, ("block",)),
    ApiCase("quantize_model-e5m2-e5m2", lambda: _qmodel(
        weights=_api("parse_format", "mxfp8_e5m2", block=16),
        activations=_api("parse_format", "mxfp8_e5m2", block=16)), ValueError,
        ("E5M2 x E5M2", "69 bits wide, beyond the accumulator's 62")),
    ApiCase("quantize_model-mxfp-block", lambda: _qmodel(
        activations=_api("parse_format", "mxfp8_e4m3", block=32)), ValueError,
        ("block", "mxfp8_e4m3_k32")),
    ApiCase("quantize_model-meta", lambda: _qmodel(_meta_model()), ValueError, ("meta",)),
    ApiCase("quantize_model-not-module", lambda: _qmodel({"fc": _linear(16, 4)}), TypeError,
            ("model", "dict")),
]


def _meta_model():
    import torch

    with torch.device("meta"):
        return torch.nn.Sequential(torch.nn.Linear(16, 4))



# ---------------------------------------------------------------------------------------
# Running a case


class ToolReached(BaseException):  # noqa: N818 - not an error: a marker the stubs raise
    """A stub stands where a tool would run: the command line accepted its options.

    A ``BaseException``, so that no ``except Exception`` in the code under test catches it.
    """


def _reached(*_args, **_kwargs):
    raise ToolReached


class Hang(BaseException):  # noqa: N818 - not an error: the deadline of a case passed
    """A case ran longer than :data:`CASE_SECONDS`: a bad input must be refused at once."""


#: Longest a case may run (each takes well under a second when it is refused).
CASE_SECONDS = 30


@contextlib.contextmanager
def _deadline():
    """Raise :class:`Hang` in the code under test after :data:`CASE_SECONDS` (SIGALRM)."""
    def expire(_signum, _frame):
        raise Hang

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


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
    if cli == "models.export":
        return [mock.patch("models.load.load_model", _reached)]
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
    hang: bool = False


def run_cli(case: CliCase, folder: Path) -> Outcome:
    """Run ``case`` in this process inside ``folder`` (fresh for each case)."""
    out = folder / "out"
    blocker = folder / "file"
    blocker.write_text("x")
    loop = folder / "loop"
    loop.symlink_to(loop)
    dangling = folder / "dangling"
    dangling.symlink_to(folder / "nowhere")
    given = {}
    for name, text in case.files:
        given[name] = folder / f"{name}.yaml"
        given[name].write_text(text)
    argv = [a.format(out=out, file=blocker, folder=folder, loop=loop, dangling=dangling,
                     **given) for a in case.argv]
    stdout, stderr = io.StringIO(), io.StringIO()
    code, crashed, reached, hang = None, False, False, False
    with contextlib.ExitStack() as stack:
        for patch in _stubs(case.cli):
            stack.enter_context(patch)
        stack.enter_context(contextlib.redirect_stdout(stdout))
        stack.enter_context(contextlib.redirect_stderr(stderr))
        # In the case's folder: a file written to the current folder is seen as left behind.
        stack.enter_context(contextlib.chdir(folder))
        try:
            with _deadline():
                code = _main(case.cli)(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, int | None):
                print(exc.code, file=sys.stderr)
        except ToolReached:
            reached = True
        except Hang:
            hang = True
        except Exception:  # noqa: BLE001 - a traceback is what the survey counts
            crashed = True
            traceback.print_exc(file=sys.stderr)
    text = stdout.getvalue() + stderr.getvalue()
    left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p not in (blocker, loop, dangling, *given.values())
                  and p.resolve() != blocker.resolve())
    if blocker.read_text() != "x":
        left.append("file (changed)")
    return Outcome(code, stdout.getvalue(), stderr.getvalue(),
                   crashed or "Traceback" in text, reached, left, hang)


def problems(case: CliCase, o: Outcome) -> list[str]:
    """What ``case`` did wrong, empty when it was refused as it should be. The first item
    is the kind (``traceback``, ``hang``, ``accepted`` or a wrong message); ``left ...``,
    files left behind, comes last whatever the kind."""
    left = [f"left {', '.join(o.left)}"] if o.left else []
    if o.traceback:
        return ["traceback", *left]
    if o.hang:
        return ["hang", *left]
    if o.reached_tool or o.code == 0:
        return ["accepted", *left]
    found = []
    lines = [line for line in o.stderr.splitlines() if line.strip()]
    if len(lines) != 1:
        found.append(f"{len(lines)} error lines")
    elif not all(name in lines[0] for name in case.names):
        found.append(f"does not name {' and '.join(case.names)}")
    return found + left


def run_api(case: ApiCase) -> list[str]:
    try:
        with _deadline():
            case.call()
    except Hang:
        return ["hang"]
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
    found = problems(good, run_cli(good, tmp_path / "a"))
    assert found[0] == "accepted" and found[1].startswith("left out, out/mxint_dot_a3_w3")
    tool = CliCase("flows.report", ("--bits", "3", "--block", "2"), ("--bits",))
    (tmp_path / "b").mkdir()
    assert problems(tool, run_cli(tool, tmp_path / "b")) == ["accepted"]
    # Files written to the current folder are seen too: a case runs in its own folder.
    here = CliCase("hw.generate", ("--bits", "3", "--block", "2", "--out", "."), ("--bits",))
    (tmp_path / "c").mkdir()
    found = problems(here, run_cli(here, tmp_path / "c"))
    assert found[0] == "accepted" and found[1].startswith("left mxint_dot_a3_w3")


def test_checker_catches_a_hang(monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "CASE_SECONDS", 0.2)
    assert run_api(ApiCase("hang", lambda: time.sleep(5), ValueError, ("x",))) == ["hang"]


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
    """Counts over the whole table (``python -m tests.test_bad_inputs``): cases that end in a
    traceback, that hang, that are accepted in silence (a Python call that returns a value),
    that are refused with a wrong message (more than one line, or not naming the option),
    and, whatever else, that leave files behind."""
    counts = {"cases": len(CLI_CASES) + len(API_CASES), "traceback": 0, "hang": 0,
              "accepted": 0, "message": 0, "left files": 0, "ok": 0}
    rows = []
    for case in CLI_CASES:
        with tempfile.TemporaryDirectory() as folder:
            found = problems(case, run_cli(case, Path(folder)))
        rows.append((case.id, found))
    for case in API_CASES:
        rows.append((f"api:{case.id}", run_api(case)))
    for name, found in rows:
        kind = ("ok" if not found else "left files" if found[0].startswith("left ")
                else found[0].split(":")[0] if found[0].startswith(("traceback", "hang",
                                                                     "accepted"))
                else "message")
        counts[kind] += 1
        if kind != "left files" and any(f.startswith("left ") for f in found):
            counts["left files"] += 1
        if found:
            print(f"{kind:10s} {name}: {'; '.join(found)}")
    return counts


if __name__ == "__main__":
    from amaranth.hdl import UnusedElaboratable

    # As in pytest's settings: components built only to be refused are never elaborated.
    warnings.filterwarnings("ignore", category=UnusedElaboratable)
    print(survey())
