"""Ctrl-C and SIGTERM on every command line of mxforge: one line, a known exit code,
nothing left behind and nothing left running.

Every ``python -m`` entry point ends with::

    if __name__ == "__main__":
        sys.exit(run(main))

:func:`run` calls ``main()`` with SIGINT and SIGTERM handled alike:

* The first signal terminates (SIGTERM) every process the command started, however deep
  (Yosys, nextpnr, Verilator and the make and compilers under it, the simulator, the
  worker processes of a pool), and raises :class:`Interrupted`, a
  :class:`KeyboardInterrupt`, in the main thread. Every ``finally`` and ``with`` on the
  way out runs: temporary files and folders are removed, pools are shut down, Dask
  clients closed. Until the process ends, a child started after the signal is terminated
  too (checked every :data:`POLL_S` seconds), so a worker thread cannot start a tool late.
* A second signal kills what is left (SIGKILL) and does not interrupt the cleanup.
* If the cleanup has not finished after :data:`GRACE_S` seconds, what is left is killed
  and the process ends anyway.

The command then prints one line, ``interrupted``, on stderr and exits with 130 after
SIGINT and 143 after SIGTERM (128 + the signal number, as shells report a process killed
by it). ``main`` itself handles no signal, so calling it from Python (tests, notebooks)
keeps Python's own Ctrl-C.

Child processes are found in ``/proc`` (Linux); elsewhere only the exception and the
cleanup on the way out remain.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable

__all__ = ["GRACE_S", "Interrupted", "POLL_S", "descendants", "exit_code", "run"]

#: Seconds the cleanup may take after a signal before the process ends regardless.
GRACE_S = 10.0
#: Seconds between two sweeps for child processes after a signal.
POLL_S = 0.1
#: The line printed on stderr.
MESSAGE = "interrupted"


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(signum: int) -> int:
    """128 + the signal number: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + signum


def descendants(pid: int | None = None) -> list[int]:
    """Process ids of every living descendant of ``pid`` (this process by default), read
    from ``/proc``; zombies are left out. Empty where there is no ``/proc``."""
    root = os.getpid() if pid is None else pid
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    children: dict[int, list[int]] = {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rfind(b")") + 2:].split()  # the name may hold spaces and ")"
        if len(fields) < 2 or fields[0] in (b"Z", b"X"):
            continue
        children.setdefault(int(fields[1]), []).append(int(name))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def _spared() -> set[int]:
    """Children that end on their own when this process ends: multiprocessing's resource
    tracker, which ignores SIGINT and SIGTERM and must outlive the pool it tracks."""
    tracker = sys.modules.get("multiprocessing.resource_tracker")
    pid = getattr(getattr(tracker, "_resource_tracker", None), "_pid", None)
    return {pid} if pid else set()


def _signal_children(signum: int) -> list[int]:
    pids = [p for p in descendants() if p not in _spared()]
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)
    return pids


class _Handler:
    """The SIGINT/SIGTERM handler of one :func:`run`."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.said = False
        self.done = threading.Event()

    def __call__(self, signum: int, frame: object) -> None:
        if self.signum is not None:  # a second signal: no more patience, but no new raise
            _signal_children(signal.SIGKILL)
            return
        self.signum = signum
        _signal_children(signal.SIGTERM)
        threading.Thread(target=self._reap, name="mxforge-interrupt", daemon=True).start()
        raise Interrupted(signum)

    def _reap(self) -> None:
        """Terminate children started after the signal; end the process after the grace
        period if the cleanup is stuck."""
        deadline = time.monotonic() + GRACE_S
        while not self.done.wait(POLL_S):
            if time.monotonic() > deadline:
                _signal_children(signal.SIGKILL)
                if not self.said:
                    _say()
                os._exit(exit_code(self.signum or signal.SIGINT))
            _signal_children(signal.SIGTERM)


def _say() -> None:
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    with contextlib.suppress(OSError):
        os.write(2, f"{MESSAGE}\n".encode())


def _finish(wait_s: float = 3.0) -> None:
    """Terminate the children still running, wait up to ``wait_s`` for them, then kill."""
    deadline = time.monotonic() + wait_s
    while _signal_children(signal.SIGTERM) and time.monotonic() < deadline:
        time.sleep(0.05)
    _signal_children(signal.SIGKILL)


def run(main: Callable[[], int | None]) -> int:
    """Call ``main()`` with SIGINT and SIGTERM handled as the module says; return its exit
    code, or 130 (SIGINT) / 143 (SIGTERM) after printing ``interrupted`` on stderr."""
    handler = _Handler()
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return main() or 0
    except KeyboardInterrupt:  # ours, or Python's own before the handler was in place
        if handler.signum is None:
            handler.signum = signal.SIGINT
            _signal_children(signal.SIGTERM)
        _finish()
        # What the interrupt abandoned (a half-built design, an open file) is collected on
        # the way out; a warning about it would say nothing the line below does not.
        warnings.simplefilter("ignore")
        _say()
        handler.said = True
        # The handler and the sweeps stay until the process ends: the interpreter still
        # joins worker threads on its way out, and the grace period bounds that too.
        return exit_code(handler.signum)
    finally:
        if handler.signum is None:
            handler.done.set()
            for s, before in previous.items():
                signal.signal(s, before)
