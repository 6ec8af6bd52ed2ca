"""Ctrl-C (SIGINT) and SIGTERM on the long-running command lines (:mod:`cli.interrupt`).

Each case starts a real command in a subprocess of its own session, waits until it does
real work (a tool or worker process runs, or it has spent CPU time past its imports), sends
the signal and checks:

* exit code 130 (SIGINT) or 143 (SIGTERM), within a bound (no hang);
* stderr ends with the one line ``interrupted`` and holds no traceback;
* no partial file: the output folder is absent or empty, no ``*.tmp`` anywhere under the
  case's folder, and the command's temporary folders (``TMPDIR``) are gone;
* no process of the command's session survives.

:func:`test_checker_catches_a_broken_handler` shows that these checks fail on a command
whose handler leaves its child running or prints a traceback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

#: Seconds a command may take to end after the signal (the handler's grace period is 10).
EXIT_BOUND_S = 30
#: Seconds the processes of the session may take to be gone after the command ends.
GONE_BOUND_S = 5


def _stat(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2:].split()


def session(sid: int) -> list[int]:
    """Living processes of session ``sid`` (zombies left out)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(int(name))
            if fields and fields[0] not in (b"Z", b"X") and int(fields[3]) == sid:
                found.append(int(name))
    return found


def cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / \
        os.sysconf("SC_CLK_TCK")


def commands_of(sid: int) -> list[str]:
    names = []
    for pid in session(sid):
        try:
            names.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                         .decode(errors="replace"))
        except OSError:
            pass
    return names


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Run:
    proc: subprocess.Popen
    folder: Path

    @property
    def out(self) -> Path:
        return self.folder / "out"

    @property
    def stderr(self) -> str:
        return (self.folder / "stderr").read_text(errors="replace")

    def ended_early(self) -> AssertionError:
        return AssertionError(f"ended early, exit {self.proc.returncode}: {self.stderr}")


def start(argv: list[str], folder: Path) -> Run:
    """``python argv`` in ``folder/cwd``, its temporary files in ``folder/tmp``."""
    for sub in ("cwd", "tmp"):
        (folder / sub).mkdir()
    # The command as a user runs it: without the suite's compiler cache (tests/conftest.py),
    # whose server, if a build had to start it, would outlive the command's session.
    env = {**{k: v for k, v in os.environ.items() if k != "OBJCACHE"},
           "PYTHONPATH": str(REPO), "TMPDIR": str(folder / "tmp")}
    argv = [a.format(out=folder / "out") for a in argv]
    # Files, not pipes: a child left running would hold a pipe open.
    with open(folder / "stdout", "wb") as out, open(folder / "stderr", "wb") as err:
        proc = subprocess.Popen([sys.executable, *argv], cwd=folder / "cwd", env=env,
                                stdout=out, stderr=err, start_new_session=True)
    return Run(proc, folder)


def interrupt(run: Run, signum: int, *, group: bool = False) -> list[str]:
    """Send ``signum`` (to the whole group, as a terminal's Ctrl-C does, with ``group``)
    and return what went wrong, empty when the command ended as it should."""
    pid = run.proc.pid
    if group:
        os.killpg(pid, signum)
    else:
        os.kill(pid, signum)
    found = []
    try:
        run.proc.wait(timeout=EXIT_BOUND_S)
    except subprocess.TimeoutExpired:
        os.killpg(pid, signal.SIGKILL)
        run.proc.wait()
        found.append(f"still running {EXIT_BOUND_S} s after the signal")
    err = run.stderr
    if run.proc.returncode != 128 + signum:
        found.append(f"exit code {run.proc.returncode}, not {128 + signum}")
    if "Traceback" in err:
        found.append("traceback")
    lines = [line for line in err.splitlines() if line.strip()]
    if not lines or lines[-1] != "interrupted":
        found.append(f"last stderr line {lines[-1] if lines else None!r}")
    try:
        wait_for(lambda: not session(pid), GONE_BOUND_S, "the session to end")
    except AssertionError:
        found.append(f"left running: {commands_of(pid)}")
        os.killpg(pid, signal.SIGKILL)
    if run.out.exists() and any(run.out.iterdir()):
        found.append(f"left in the output folder: {sorted(p.name for p in run.out.iterdir())}")
    left_tmp = sorted(p.name for p in (run.folder / "tmp").iterdir())
    if left_tmp:
        found.append(f"left temporary files: {left_tmp}")
    partial = sorted(str(p.relative_to(run.folder)) for p in run.folder.rglob("*.tmp"))
    if partial:
        found.append(f"left partial files: {partial}")
    return found


def has_child(run: Run, *names: str):
    """Whether a process below the command runs a program whose name holds one of
    ``names`` (its own name, or the script a Python or Perl runs)."""
    def check() -> bool:
        if run.proc.poll() is not None:
            raise run.ended_early()
        for pid in session(run.proc.pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            programs = [Path(a.decode(errors="replace")).name for a in argv[:2]]
            if pid != run.proc.pid and any(n in p for n in names for p in programs):
                return True
        return False
    return check


def busy(run: Run, seconds: float):
    def check() -> bool:
        if run.proc.poll() is not None:
            raise run.ended_early()
        return cpu_seconds(run.proc.pid) > seconds
    return check


def workers(run: Run, count: int):
    """``count`` worker processes of a pool, each past its imports (CPU time)."""
    def check() -> bool:
        if run.proc.poll() is not None:
            raise run.ended_early()
        pids = [p for p in session(run.proc.pid) if p != run.proc.pid and
                "spawn_main" in " ".join(commands_of_pid(p))]
        return len(pids) >= count and all(cpu_seconds(p) > 2 for p in pids)
    return check


def commands_of_pid(pid: int) -> list[str]:
    try:
        return [Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()]
    except OSError:
        return []


ACCURACY = ["-m", "flows.accuracy", "--model", "minilm", "--bits", "2,3,4,5,6,8",
            "--block", "8,16,32", "--jobs", "2", "--quiet", "--out", "{out}",
            "--cache", "{out}/../cache"]


@pytest.mark.parametrize(("signum", "group"), [(signal.SIGINT, True), (signal.SIGTERM, False)],
                         ids=["sigint-group", "sigterm"])
def test_accuracy(tmp_path, signum, group):
    """The pool's workers are ended, not waited for (before: a hang of minutes)."""
    run = start(ACCURACY, tmp_path)
    wait_for(workers(run, 2), 120, "two workers")
    started = time.monotonic()
    assert interrupt(run, signum, group=group) == []
    assert time.monotonic() - started < 15


def test_generate(tmp_path):
    run = start(["-m", "hw.generate", "--top", "dot", "--bits", "16", "--block", "256",
                 "--out", "{out}"], tmp_path)
    wait_for(busy(run, 3.0), 60, "elaboration")
    assert interrupt(run, signal.SIGINT) == []


def test_sim_run(tmp_path):
    """Interrupted while Verilator builds: make and the compilers under it go too."""
    run = start(["-m", "sim.run", "--bits", "6", "--block", "16", "--seed", "1",
                 "--vectors", "100000", "--out", "{out}/../build"], tmp_path)
    wait_for(has_child(run, "verilator", "make"), 60, "Verilator")
    assert interrupt(run, signal.SIGINT) == []


def test_report(tmp_path):
    """Interrupted while Yosys runs in the worker threads; their folders are removed."""
    run = start(["-m", "flows.report", "--bits", "6", "--block", "16", "--json",
                 "{out}/report.json", "--jobs", "2"], tmp_path)
    wait_for(has_child(run, "yosys"), 60, "Yosys")
    assert interrupt(run, signal.SIGINT) == []


def test_formal(tmp_path):
    run = start(["-m", "sim.formal", "--bits", "8", "--block", "16"], tmp_path)
    wait_for(has_child(run, "yosys"), 60, "Yosys")
    assert interrupt(run, signal.SIGTERM) == []


#: A command that starts a child and waits, under cli.interrupt.run (or not); ``broken``
#: replaces a part of the handler.
SCRIPT = textwrap.dedent("""
    import signal, subprocess, sys, time
    from cli import interrupt
    # Python's own Ctrl-C, even when started from a shell that ignores SIGINT in the
    # background (a child inherits the ignore, and Python then installs no handler).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    {broken}
    def main():
        subprocess.Popen(["sleep", "60"])
        time.sleep(60)
        return 0
    sys.exit(interrupt.run(main) if {handled} else main())
""")

#: How each problem :func:`interrupt` finds begins.
KINDS = ("still running", "exit code", "traceback", "last stderr line", "left running",
         "left in the output folder", "left temporary files", "left partial files")


@pytest.mark.parametrize(("broken", "handled", "expected"), [
    ("", True, set()),
    ("interrupt._signal_children = lambda signum: []", True, {"left running"}),
    ("", False, {"exit code", "traceback", "last stderr line", "left running"}),
], ids=["handled", "children-left", "no-handler"])
def test_checker_catches_a_broken_handler(tmp_path, broken, handled, expected):
    run = start(["-c", SCRIPT.format(broken=broken, handled=handled)], tmp_path)
    wait_for(has_child(run, "sleep"), 30, "the child")
    found = interrupt(run, signal.SIGINT)
    assert {kind for kind in KINDS if any(p.startswith(kind) for p in found)} == expected, \
        found
