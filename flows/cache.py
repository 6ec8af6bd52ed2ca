"""A folder of flow results keyed by everything that decides them.

A synthesis or place-and-route result is a pure function of the Verilog text, the flow
(the tool commands and the Python that writes them), the options and the tool versions.
:func:`result_key` hashes exactly those, so a result found under its key can be reused
without running a tool: an interrupted sweep resumes where it stopped, and a repeated
sweep runs no tool at all. Anything that changes a result changes its key; nothing
else (paths, times, the order of a sweep) enters it.

Each entry is one JSON file, ``<key[:2]>/<key>.json``, written to a temporary file in the
same folder and renamed into place, so a killed process never leaves a half-written
entry, and parallel writers of the same key (same content) cannot corrupt it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

__all__ = ["DEFAULT_CACHE_DIR", "ResultCache", "result_key", "source_digest"]

#: Where ``python -m flows.density`` keeps results when ``--cache`` is not given.
DEFAULT_CACHE_DIR = Path("build") / "cache"

#: Bumped when the layout of cached results changes, so old entries are not misread.
SCHEMA = 1


def source_digest(*paths: str | os.PathLike) -> str:
    """sha256 over the bytes of ``paths`` (files, or folders whose ``*.py`` are taken in
    sorted order), each preceded by its name. Used to key on the flow's own code."""
    h = hashlib.sha256()
    for path in paths:
        path = Path(path)
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            h.update(file.name.encode() + b"\0")
            h.update(file.read_bytes())
            h.update(b"\0")
    return h.hexdigest()


def result_key(*, verilog: str, flow: str, options: Mapping, tools: Mapping) -> str:
    """The cache key of one flow run: sha256 of a canonical JSON of its inputs.

    Parameters
    ----------
    verilog : str
        The generated Verilog text (hashed, not stored).
    flow : str
        What runs it: the tool command lines and a digest of the Python that writes the
        scripts and reads the reports.
    options : mapping
        Every option of the run (target, DSP use, device, frequency, seed, ...); JSON-able.
    tools : mapping
        Tool name -> version line.
    """
    blob = json.dumps({
        "schema": SCHEMA,
        "verilog_sha256": hashlib.sha256(verilog.encode("utf-8")).hexdigest(),
        "flow": flow,
        "options": options,
        "tools": tools,
    }, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResultCache:
    """Results stored as JSON files under ``folder``.

    Parameters
    ----------
    folder : path-like
        Created on the first :meth:`put`.

    Members
    -------
    hits, misses : int
        How many :meth:`get` calls found / did not find an entry.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        if not isinstance(folder, str | os.PathLike):
            raise TypeError(f"folder must be a path, not {folder!r}")
        self._folder = Path(folder)
        self.hits = 0
        self.misses = 0

    @property
    def folder(self) -> Path:
        """The cache folder."""
        return self._folder

    def _path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"key must be 64 lowercase hex digits, not {key!r}")
        return self._folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The result stored under ``key``, or ``None``. An unreadable entry (for example
        one damaged by hand) counts as missing and is replaced by the next :meth:`put`."""
        path = self._path(key)
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.misses += 1
            return None
        if not isinstance(value, dict):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, key: str, value: Mapping) -> None:
        """Store ``value`` (JSON-able) under ``key``, atomically."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(value, sort_keys=True, indent=1) + "\n"
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
