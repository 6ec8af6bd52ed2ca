"""What every command line of mxforge shares: configuration files, ``--version``, an
argument parser that reports a mistake in one line, and list-valued options.

A configuration file is a YAML mapping whose keys are the long options of the command it is
given to, without the leading dashes (``exp-bits`` or ``exp_bits``), and whose values are
what the option would take on the command line::

    # dot6.yaml
    top: dot
    bits: 6
    block: 16
    arch: heap
    out: build/dot6

``python -m hw.generate --config dot6.yaml --bits 8`` then reads the file and lets the
command line override it (here ``--bits``). A list value is one comma-separated option
(``bits: [4, 6, 8]`` is ``--bits 4,6,8``) unless the option itself takes several words; a
switch (``waves: true``) is given or not. The values go through the very option parser
the command line does, so the same checks and messages apply; a mistake in the file names
the file.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from hw import __version__

__all__ = ["JOBS_WHY", "OneLineParser", "add_config_arguments", "bounded_int", "check_outputs",
           "command_parser",
           "config_argv", "int_list", "options_argv", "output_problem", "parse_args",
           "positive_float",
           "version_string"]


class OneLineParser(argparse.ArgumentParser):
    """An argument parser that reports a mistake in one line, or with ``raise_errors``
    raises it as a ``ValueError`` (the command line as a Python call)."""

    raise_errors = False

    def error(self, message: str) -> None:  # type: ignore[override]
        if self.raise_errors:
            raise ValueError(message)
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def command_parser(prog: str, *, description: str, epilog: str) -> OneLineParser:
    """A :class:`OneLineParser` whose ``--help`` keeps the epilog's line breaks."""
    return OneLineParser(prog=prog, description=description, epilog=epilog,
                         formatter_class=argparse.RawDescriptionHelpFormatter)


def _what(path: Path) -> str | None:
    """What ``path`` is, if it exists (``"a file"``, ``"a device"``, ...), or, for a
    symbolic link that leads nowhere, ``"a symlink loop"`` / ``"a broken symlink"``;
    ``None`` if nothing is there."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symlink loop"
        if path.is_symlink():
            return f"a broken symlink (to {os.readlink(path)})"
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file or folder"


def output_problem(path: str | os.PathLike, *, folder: bool = True) -> str | None:
    """Why ``path`` cannot be used as an output folder (or, with ``folder=False``, an output
    file), or ``None`` if it can. Nothing is left behind by the check.

    A folder must be a folder or not exist yet; a file must be a regular file that can be
    written, or not exist yet (a device or a pipe is refused: outputs are written to a
    temporary file and renamed into place). A symlink loop or a broken symlink is refused
    as what it is. The nearest existing folder on the way must let a folder be created in
    it (tried, then removed).
    """
    path = Path(path)
    what = _what(path)
    wanted = "a folder" if folder else "a file"
    if what is not None and what != wanted:
        return f"is {what}, not {wanted}"
    if what == "a file":
        return None if os.access(path, os.W_OK) else "is a file that cannot be written"
    if what == "a folder":
        existing = path
    else:
        existing = path.parent
        while _what(existing) is None and existing != existing.parent:
            existing = existing.parent
    found = _what(existing)
    if found != "a folder":
        return f"cannot be created: {existing} is {found}, not a folder"
    try:
        tempfile.TemporaryDirectory(dir=existing, prefix=".mxforge-probe-").cleanup()
    except OSError as exc:
        return f"cannot be created: {existing} does not take new files ({exc.strerror or exc})"
    return None


def check_outputs(parser: argparse.ArgumentParser,
                  outputs: Iterable[tuple[str, str | os.PathLike | None, bool]]) -> None:
    """Check every output, cache and work path of a command before any work: for each
    ``(option, path, folder)`` (``folder`` false for a file; a ``None`` path is skipped),
    end the program with status 2 and one line naming the option, the path and what is
    wrong with it (:func:`output_problem`)."""
    for option, path, folder in outputs:
        problem = None if path is None else output_problem(path, folder=folder)
        if problem:
            parser.exit(2, f"{parser.prog}: error: {option} {path} {problem}\n")


#: Why ``--jobs`` stops at 64.
JOBS_WHY = "more processes than that only contend for the cores"


def bounded_int(lo: int, hi: int, why: str):
    """Option type of one integer from ``lo`` to ``hi``; ``why`` says why the bound is there
    and ends the error message."""
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is not from {lo} to {hi} ({why})")
        return value
    return parse


def positive_float(why: str):
    """Option type of a finite number above zero; ``why`` ends the error message of an
    infinite one (``nan``, ``inf``, ``1e400``)."""
    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text.strip()} is not a finite number ({why})")
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{value:g} is not above zero")
        return value
    return parse


def int_list(lo: int, hi: int):
    """Option type of a comma-separated list of integers from ``lo`` to ``hi``: sorted,
    each once."""
    def parse(text: str) -> tuple[int, ...]:
        values = []
        for part in text.split(","):
            try:
                value = int(part.strip())
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"{part.strip()!r} is not an integer") from None
            if not lo <= value <= hi:
                raise argparse.ArgumentTypeError(f"{value} is not from {lo} to {hi}")
            values.append(value)
        return tuple(sorted(set(values)))
    return parse


def version_string(prog: str) -> str:
    """``prog mxforge VERSION``, the line ``--version`` prints."""
    return f"{prog} (mxforge {__version__})"


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config FILE`` and ``--version`` to ``parser``."""
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="YAML file of options (keys are the long options without "
                             "dashes); options on the command line override it")
    parser.add_argument("--version", action="version", version=version_string(parser.prog))


def _long_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    options = {}
    for action in parser._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag not in ("--help", "--version", "--config"):
                options[flag[2:]] = action
    return options


class _DuplicateKey(Exception):
    """A key appears twice in one mapping of a configuration file."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML SafeLoader that refuses a key given twice in one mapping (plain YAML keeps
    the last in silence)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _DuplicateKey(f"key {key!r} is given twice (lines {seen[key]} and "
                                    f"{key_node.start_mark.line + 1}); give it once")
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _fail(parser: argparse.ArgumentParser, path: Path, message: str) -> None:
    parser.error(f"--config {path}: {message}")


def config_argv(parser: argparse.ArgumentParser, path: Path) -> list[str]:
    """The command-line words that the configuration file ``path`` stands for.

    Exits through ``parser.error`` (one line naming the file) if the file cannot be read,
    is not a YAML mapping, or holds a key that is not a long option of ``parser``.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else \
            "not a UTF-8 text file"
        _fail(parser, path, f"cannot read it: {reason}")
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except _DuplicateKey as exc:
        _fail(parser, path, str(exc))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        _fail(parser, path, f"not valid YAML{where}")
    if data is None:
        return []
    if not isinstance(data, dict):
        _fail(parser, path, f"must hold a mapping of option: value, not a "
                            f"{type(data).__name__}")
    return options_argv(parser, data, lambda message: _fail(parser, path, message))


def options_argv(parser: argparse.ArgumentParser, options: dict, fail) -> list[str]:
    """The command-line words of ``options`` (long option -> value, dashes or underscores),
    as a configuration file gives them; ``fail(message)`` is called for a key that is no
    long option of ``parser`` or a value it cannot take."""
    known = _long_options(parser)
    words: list[str] = []
    for key, value in options.items():
        name = str(key).replace("_", "-")
        action = known.get(name)
        if action is None:
            fail(f"unknown option {key!r}; known: {', '.join(sorted(known))}")
        flag = f"--{name}"
        if action.nargs == 0:  # a switch
            if not isinstance(value, bool):
                fail(f"key {key!r} is a switch: true or false, not {value!r}")
            if value:
                words.append(flag)
            elif action.const is not None and action.default == action.const:
                fail(f"key {key!r}: {flag} cannot be switched off")
            continue
        if value is None:
            fail(f"key {key!r} has no value")
        if isinstance(value, str) and not value.strip():
            fail(f"key {key!r} is given an empty value")
        if isinstance(value, list | tuple):
            items = [str(v).lower() if isinstance(v, bool) else str(v) for v in value]
            if action.nargs in ("+", "*") or isinstance(action.nargs, int):
                words += [flag, *items]
            else:
                words += [flag, ",".join(items)]
        elif isinstance(value, dict):
            fail(f"key {key!r} must be a value or a list, not a mapping")
        else:
            words += [flag, str(value).lower() if isinstance(value, bool) else str(value)]
    return words


def _action_of(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    """The action a long option as typed means: exact, or the one it abbreviates."""
    actions = parser._option_string_actions
    if flag in actions:
        return actions[flag]
    hits = {actions[f] for f in actions if f.startswith(flag) and f.startswith("--")}
    return hits.pop() if len(hits) == 1 else None


def _check_command_line(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """One line and exit 2 for an option given twice (under any of its spellings), or
    given an empty value; the rest is argparse's to check."""
    seen: dict[argparse.Action, str] = {}
    words = list(argv)
    for i, word in enumerate(words):
        if word == "--":
            break
        if not word.startswith("--") or word == "--":
            continue
        flag, eq, value = word.partition("=")
        action = _action_of(parser, flag)
        if action is None or action.dest in ("help", "version"):
            continue
        if action in seen:
            also = "" if seen[action] == flag else f" (also as {seen[action]})"
            parser.error(f"{flag} is given twice{also}; give it once")
        seen[action] = flag
        if action.nargs != 0 and (value == "" if eq else
                                  i + 1 < len(words) and words[i + 1] == ""):
            parser.error(f"{flag} is given an empty value")


def parse_args(parser: argparse.ArgumentParser,
               argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` with the options of ``--config FILE`` (if given) under it.

    The file's options come first, so an option on the command line overrides the file's
    (the one documented rule). They are checked on their own first, so that a bad value
    in the file is reported with the file's name. On the command line itself, an option
    given twice, a second ``--config`` and an empty value (``--out=``) are errors.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    _check_command_line(parser, argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path, default=None)
    known, _ = pre.parse_known_args(argv)
    if known.config is None:
        return parser.parse_args(argv)
    words = config_argv(parser, known.config)
    original_error = parser.error

    def file_error(message: str) -> None:
        original_error(f"in --config {known.config}: {message}")

    # The file on its own need not hold the options the command line is required to have.
    required = [action for action in parser._actions if action.required]
    parser.error = file_error  # type: ignore[method-assign]
    try:
        for action in required:
            action.required = False
        parser.parse_args(words)
    finally:
        parser.error = original_error  # type: ignore[method-assign]
        for action in required:
            action.required = True
    return parser.parse_args(words + argv)
