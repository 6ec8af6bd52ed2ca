"""docs/api.md's Python snippets run as written, in the sections listed here (the others
drive Verilator, formal tools and synthesis sweeps, which their own tests cover)."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from tests.conftest import REPO

#: Sections of docs/api.md whose snippets this test runs.
SECTIONS = ["Quantise a model in software"]


def snippets(section: str) -> list[str]:
    text = (REPO / "docs" / "api.md").read_text()
    body = re.split(r"^## ", text, flags=re.M)
    match = [b for b in body if b.startswith(section + "\n")]
    assert len(match) == 1, f"docs/api.md has no section {section!r}"
    return re.findall(r"^```python\n(.*?)^```", match[0], flags=re.M | re.S)


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


@pytest.mark.parametrize("section", SECTIONS)
def test_api_md_snippets_run(section):
    codes = snippets(section)
    assert codes
    for code in codes:
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            exec(compile(code, f"docs/api.md ({section})", "exec"), {})
        shown = stdout.getvalue().splitlines()
        for line in printed(code):
            assert line in shown, f"docs/api.md says {line!r} is printed; it printed {shown}"
