"""Output files written whole or not at all.

:func:`write_atomic` writes into a temporary file beside the target and renames it into
place, so that a reader, a crash or Ctrl-C (:mod:`cli.interrupt`) never sees half a file,
and the temporary file is removed on any way out, an interrupt included.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["write_atomic"]


def _mode() -> int:
    """0666 less the umask: what ``open()`` would give a new file (mkstemp gives 0600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path: str | os.PathLike, data: str | bytes | Callable[[Path], None]) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder.

    ``data`` is text (UTF-8, ``\\n`` line ends), bytes, or a function that writes the file
    it is given (``lambda tmp: fig.savefig(tmp, format="png")``; it must not guess the
    format from the name, which ends in ``.tmp``). The folder must exist.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _mode())
            if isinstance(data, str):
                f.write(data.encode("utf-8"))
            elif isinstance(data, bytes):
                f.write(data)
        if callable(data):
            data(tmp)
            os.chmod(tmp, _mode())  # the writer may have made the file anew
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path
