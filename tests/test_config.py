"""``--config FILE.yaml`` and ``--version`` (cli/config.py) on every command line."""

from __future__ import annotations

import importlib

import pytest

from cli.config import parse_args
from hw import __version__

#: Every command line of the project: module and the option its parser must know.
CLIS = ["hw.generate", "sim.run", "sim.formal.__main__", "flows.report", "flows.density",
        "flows.accuracy", "benchmarks.run"]


def _parser(module: str):
    return importlib.import_module(module).build_parser()


def _write(tmp_path, text: str):
    path = tmp_path / "options.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("module", CLIS)
def test_version(module, capsys):
    with pytest.raises(SystemExit) as exc:
        importlib.import_module(module).main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip().endswith(f"(mxforge {__version__})")


@pytest.mark.parametrize("module", CLIS)
def test_config_unknown_key_is_one_line(module, tmp_path, capsys):
    path = _write(tmp_path, "no_such_option: 3\n")
    with pytest.raises(SystemExit) as exc:
        importlib.import_module(module).main(["--config", str(path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"--config {path}: unknown option 'no_such_option'" in err


def test_file_values_and_command_line_override(tmp_path):
    path = _write(tmp_path, "top: dot\nbits: 6\nblock: 16\nexp_bits: 5\narch: tree\n")
    args = parse_args(_parser("hw.generate"), ["--config", str(path), "--bits", "8"])
    assert (args.top, args.bits, args.block, args.exp_bits, args.arch) == \
        ("dot", 8, 16, 5, "tree")


def test_lists_and_switches(tmp_path):
    parser = _parser("sim.run")
    path = _write(tmp_path, "top: dot\nbits: 4\nblock: 4\nwaves: true\n")
    assert parse_args(parser, ["--config", str(path)]).waves is True
    path = _write(tmp_path, "top: dot\nbits: 4\nblock: 4\nwaves: false\n")
    assert parse_args(parser, ["--config", str(path)]).waves is False


def test_config_same_files_as_command_line(tmp_path):
    generate = importlib.import_module("hw.generate")
    path = _write(tmp_path, f"bits: 4\nblock: 4\nout: {tmp_path / 'a'}\n")
    assert generate.main(["--config", str(path)]) == 0
    assert generate.main(["--bits", "4", "--block", "4", "--out", str(tmp_path / "b")]) == 0
    a = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert a == sorted(p.name for p in (tmp_path / "b").iterdir()) and a
    for name in a:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize(("text", "message"), [
    ("bits: six\n", "in --config {path}: argument --bits: invalid int value: 'six'"),
    ("- 1\n- 2\n", "--config {path}: must hold a mapping of option: value, not a list"),
    ("bits: [1\n", "--config {path}: not valid YAML at line 2"),
    ("waves: 3\n", "--config {path}: key 'waves' is a switch: true or false, not 3"),
    ("bits:\n", "--config {path}: key 'bits' has no value"),
    ("bits: {a: 1}\n", "--config {path}: key 'bits' must be a value or a list"),
    ("bits: 6\nblock: 4\nbits: 8\n",
     "--config {path}: key 'bits' is given twice (lines 1 and 3); give it once"),
])
def test_bad_config_files(tmp_path, capsys, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(SystemExit) as exc:
        parse_args(_parser("sim.run"), ["--config", str(path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message.format(path=path) in err and len(err.strip().splitlines()) == 1


def test_missing_and_binary_config(tmp_path, capsys):
    parser = _parser("hw.generate")
    for path, reason in ((tmp_path / "none.yaml", "No such file or directory"),
                         (tmp_path, "Is a directory")):
        with pytest.raises(SystemExit):
            parse_args(parser, ["--config", str(path)])
        assert f"--config {path}: cannot read it: {reason}" in capsys.readouterr().err
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00bits")
    with pytest.raises(SystemExit):
        parse_args(parser, ["--config", str(binary)])
    assert "not a UTF-8 text file" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "interface"), [
    (["--top", "dot", "--bits", "6", "--block", "16"], "native"),
    (["--top", "dot", "--abits", "5", "--wbits", "3", "--block", "4", "--arch", "tree"],
     "native"),
    (["--top", "cast", "--bits", "4", "--block", "8", "--rounding", "floor"], "native"),
    (["--top", "accum", "--bits", "4", "--block", "4"], "axis"),
    (["--top", "linear", "--bits", "4", "--block", "4", "--lanes", "2"], "native"),
])
def test_verilog_header_regenerates_the_file(tmp_path, argv, interface):
    generate = importlib.import_module("hw.generate")
    out = tmp_path / "cli"
    assert generate.main([*argv, "--interface", interface, "--out", str(out)]) == 0
    (verilog,) = out.glob("*.v")
    first, second = verilog.read_text().splitlines()[:2]
    assert first == f"// Generated by mxforge {__version__}. The same file again, from Python:"
    call = second.removeprefix("//   ").replace(", OUT)", f", {str(tmp_path / 'api')!r})")
    eval(call, {"hw": importlib.import_module("hw")})  # the call the header gives
    again = tmp_path / "api" / verilog.name
    assert again.read_bytes() == verilog.read_bytes()


def test_required_option_may_come_from_either_side(tmp_path):
    # flows.density requires --bits and --block: one in the file, one on the command line.
    path = _write(tmp_path, "block: [16, 32]\ntarget: xc7\n")
    args = parse_args(_parser("flows.density"), ["--config", str(path), "--bits", "6"])
    assert (args.bits, args.block, args.target) == ((6,), (16, 32), ("xc7",))


@pytest.mark.parametrize("module", [m for m in CLIS if m != "benchmarks.run"])
@pytest.mark.parametrize(("argv", "message"), [
    (["--config", "a.yaml", "--config", "b.yaml"], "--config is given twice; give it once"),
    (["--out=", "--config", "a.yaml"], "--out is given an empty value"),
    (["--out", "", "--config", "a.yaml"], "--out is given an empty value"),
])
def test_conflicting_command_lines(module, argv, message, capsys):
    """No silent resolution: a second --config used to drop the first, and an empty --out
    wrote into the current folder."""
    with pytest.raises(SystemExit) as exc:
        parse_args(_parser(module), argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["--bits", "6", "--block", "4", "--bits", "8"], "--bits is given twice; give it once"),
    (["--bit", "6", "--block", "4", "--bits", "8"],
     "--bits is given twice (also as --bit); give it once"),
    (["--bits", "6", "--block", "4", "--acc-width", "30", "--acc-bits", "30", "--top", "accum"],
     "--acc-bits is given twice (also as --acc-width); give it once"),
])
def test_repeated_option_is_an_error(argv, message, capsys):
    """The last of two values used to win in silence; the file under the command line is
    the one documented override."""
    with pytest.raises(SystemExit) as exc:
        parse_args(_parser("hw.generate"), argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err


def test_command_line_still_overrides_the_file(tmp_path):
    path = _write(tmp_path, "bits: 6\nblock: 4\n")
    args = parse_args(_parser("hw.generate"), ["--config", str(path), "--bits", "8"])
    assert (args.bits, args.block) == (8, 4)
