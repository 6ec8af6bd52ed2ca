"""Command lines: python -m hw.generate and python -m sim.run."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from sim.fields import pack, unpack
from tests.conftest import REPO


def run(*args, cwd=REPO):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd,
                          check=False)


def test_generate_writes_deterministic_verilog_and_manifest(tmp_path):
    for out in ("a", "b"):
        r = run("-m", "hw.generate", "--bits", "6", "--block", "16", "--out", str(tmp_path / out))
        assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["mxint_dot_a6_w6_e8_k16.core", "mxint_dot_a6_w6_e8_k16.v",
                     "mxint_dot_a6_w6_e8_k16.yaml"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    verilog = (tmp_path / "a" / "mxint_dot_a6_w6_e8_k16.v").read_text()
    assert "module mxint_dot_a6_w6_e8_k16(" in verilog and "/work/" not in verilog


def test_manifest_lets_a_bench_find_every_field(tmp_path):
    r = run("-m", "hw.generate", "--abits", "5", "--wbits", "3", "--block", "4",
            "--exp-bits", "5", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    m = yaml.safe_load((tmp_path / "mxint_dot_a5_w3_e5_k4.yaml").read_text())
    assert m["parameters"] == {"a_bits": 5, "b_bits": 3, "exp_bits": 5, "block": 4,
                               "arch": "heap", "levels_per_stage": 2, "primitives": "generic"}
    assert m["latency"] == 2 and m["generator"]["name"] == "mxforge"
    ports = {p["name"]: (p["direction"], p["width"]) for p in m["ports"]}
    assert ports["a__payload"] == ("input", 4 * 5 + 5)
    assert ports["b__payload"] == ("input", 4 * 3 + 5)
    assert ports["o__ready"] == ("input", 1) and ports["a__ready"] == ("output", 1)
    for stream in m["streams"].values():
        widths = sum(f["width"] * f.get("count", 1) for f in stream["fields"])
        assert widths == stream["width"] == ports[stream["payload"]][1]
    a = m["streams"]["a"]["fields"]
    assert a[0] == {"name": "mantissa", "offset": 0, "width": 5, "signed": True, "count": 4,
                    "stride": 5}
    word = pack(a, {"mantissa": [-16, 15, -1, 0], "exponent": 31})
    assert word >> 20 == 31 and unpack(a, word)["mantissa"] == [-16, 15, -1, 0]


@pytest.mark.parametrize(("args", "message"), [
    (["--bits", "1", "--block", "16"], "--bits must be from 2 to 24, not 1"),
    (["--bits", "6", "--block", "0"], "--block must be from 1 to 1024, not 0"),
    (["--bits", "abc", "--block", "16"], "argument --bits: invalid int value: 'abc'"),
    (["--bits", "6", "--block", "16", "--exp-bits", "9"], "--exp-bits must be from 2 to 8"),
    (["--bits", "6", "--block", "16", "--top", "fft"], "argument --top: invalid choice"),
    (["--block", "16"], "--abits/--bits is required for --top dot"),
    (["--bits", "6"], "--block is required for --top dot"),
])
def test_generate_bad_arguments_one_line(args, message, tmp_path):
    r = run("-m", "hw.generate", *args, "--out", str(tmp_path / "out"))
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_generate_unwritable_out(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run("-m", "hw.generate", "--bits", "6", "--block", "16", "--out", str(blocker / "sub"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"--out {blocker / 'sub'} cannot be created: {blocker} is a file, not a folder" \
        in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert blocker.read_text() == "x"


def test_generate_help_lists_units():
    r = run("-m", "hw.generate", "--help")
    assert r.returncode == 0
    assert "--top" in r.stdout and "dot " in r.stdout and "example:" in r.stdout


def test_sim_run_summary_and_replay(tmp_path, sim_build):
    args = ["-m", "sim.run", "--top", "dot", "--bits", "3", "--block", "3", "--exp-bits", "5",
            "--seed", "11", "--vectors", "50", "--build", str(sim_build)]
    first, second = run(*args), run(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "seed        11" in first.stdout and "mismatches  0" in first.stdout
    assert "checked     59 outputs" in first.stdout and first.stdout.rstrip().endswith("PASS")
    strip = [line for line in first.stdout.splitlines() if not line.startswith(("speed", "log"))]
    assert strip == [line for line in second.stdout.splitlines()
                     if not line.startswith(("speed", "log"))]


def test_sim_run_waves(sim_build):
    r = run("-m", "sim.run", "--bits", "2", "--block", "1", "--seed", "3", "--vectors", "5",
            "--waves", "--build", str(sim_build))
    assert r.returncode == 0, r.stdout + r.stderr
    path = next(line.split()[1] for line in r.stdout.splitlines() if line.startswith("waves"))
    assert path.endswith("/waves_seed3.vcd")  # one file per seed, as the logs
    with open(path) as f:
        assert f.read(200).startswith("$")  # a VCD header


@pytest.mark.parametrize(("args", "message"), [
    (["--bits", "6", "--block", "16", "--vectors", "-1"],
     "argument --vectors: -1 is not from 0 to 1000000 (a million take hours"),
    (["--bits", "6", "--block", "16", "--idle", "1.5"],
     "argument --idle: must be a number in [0, 1), not '1.5'"),
    (["--bits", "0", "--block", "16"], "--bits must be from 2 to 24, not 0"),
])
def test_sim_run_bad_arguments(args, message):
    r = run("-m", "sim.run", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args", [
    ["--top", "dot"], ["--top", "adder"], ["--top", "accum"], ["--top", "cast"],
    ["--top", "dequant"], ["--top", "dequant", "--source", "accum"], ["--top", "linear"],
    ["--top", "linear", "--output", "fp32"], ["--top", "fpmac", "--fp-preset", "bf16"],
    ["--top", "intmac", "--int-preset", "int8"],
])
def test_every_unit_generates_deterministically(args):
    from hw.generate import dump_manifest

    if "--fp-preset" not in args and "--int-preset" not in args:
        args = [*args, "--bits", "6", "--block", "4"]
    first, second = (_cli_design(*args) for _ in range(2))
    assert first.name == second.name and first.verilog == second.verilog
    assert dump_manifest(first.manifest) == dump_manifest(second.manifest)
    assert f"module {first.name}(" in first.verilog
    assert first.manifest["latency"] >= 1 and first.manifest["streams"]


def test_every_choice_of_every_unit_parses():
    """Units that share an option name may take different values (tile's ``--output mx``,
    which linear has not): the parser accepts each unit's own values and leaves the refusal
    of another unit's to that unit's check."""
    from cli.units import _is_element
    from hw.generate import build_parser
    from hw.unit import units

    parser = build_parser()
    seen = 0
    for key, u in units().items():
        for spec in u.params.specs():
            if spec.choices is None or _is_element(spec):
                continue
            for choice in spec.choices:
                ns = parser.parse_args(["--top", key, spec.option, choice])
                assert getattr(ns, spec.option.lstrip("-").replace("-", "_")) == choice
                seen += 1
    assert seen > 20


@pytest.mark.parametrize("top", ["linear", "tile"])
def test_engines_take_the_dot_products_primitives(top):
    """linear and tile pass --primitives to their dot products: the cells are instantiated
    and the manifest names the cell library a simulator needs; generic leaves the manifest
    as it was (no primitives field)."""
    args = ["--top", top, "--bits", "4", "--block", "4", "--lanes", "2", "--rows", "4"]
    plain = _cli_design(*args)
    for family, cell in (("xc7", "LUT6_2"), ("ecp5", "CCU2C")):
        design = _cli_design(*args, "--primitives", family)
        assert design.manifest["cell_library"] == family
        assert f"{cell} " in design.verilog and f"{cell} " not in plain.verilog
        assert design.name != plain.name and f"_{family}" in design.name
    assert "primitives" not in plain.manifest["parameters"]
    assert "cell_library" not in plain.manifest


def test_generated_files_have_the_umask_mode(tmp_path):
    """0644 under umask 022, not mkstemp's 0600; no temporary left behind."""
    import os

    from hw.generate import elaborate, write

    old = os.umask(0o022)
    try:
        paths = write(elaborate("dot", a_bits=3, b_bits=3, block=2), tmp_path)
    finally:
        os.umask(old)
    assert [oct(p.stat().st_mode & 0o777) for p in paths] == ["0o644"] * len(paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)


def _cli_design(*args):
    from cli.units import unit_record
    from hw.generate import build_parser, emit
    from hw.unit import unit

    parser = build_parser()
    ns = parser.parse_args(list(args))
    return emit(unit(ns.top), unit_record(ns, parser))


@pytest.mark.parametrize(("top", "params", "args"), [
    ("dot", {"a_bits": 6, "b_bits": 6, "block": 16}, ["--bits", "6", "--block", "16"]),
    ("accum", {"a_bits": 4, "b_bits": 4, "block": 4}, ["--top", "accum", "--bits", "4",
                                                       "--block", "4"]),
    ("linear", {"x_bits": 4, "w_bits": 4, "block": 4, "k_len": 16, "rows": 4, "lanes": 2},
     ["--top", "linear", "--bits", "4", "--block", "4"]),
    ("dequant", {"source": "accum", "a_bits": 4, "b_bits": 4, "block": 4},
     ["--top", "dequant", "--source", "accum", "--bits", "4", "--block", "4"]),
    ("intmac", {"a_bits": 8, "b_bits": 8}, ["--top", "intmac", "--int-preset", "int8"]),
])
def test_api_and_cli_give_the_same_files(top, params, args):
    """Names and manifests come from the resolved parameters: defaults filled in, no null."""
    from hw.generate import dump_manifest, elaborate

    api, cli = elaborate(top, **params), _cli_design("--top", top, *args)
    assert api.name == cli.name and api.verilog == cli.verilog
    assert dump_manifest(api.manifest) == dump_manifest(cli.manifest)
    assert None not in api.manifest["parameters"].values()


def test_a_choice_of_one_unit_is_on_the_command_line(capsys):
    """--output takes tile's mx as well as linear's choices; the record refuses it for
    linear with a message naming the option, the value and the allowed ones."""
    from cli.units import unit_record
    from hw.generate import build_parser

    parser = build_parser()
    ns = parser.parse_args(["--top", "tile", "--bits", "4", "--block", "4", "--rows", "8",
                            "--k-len", "8", "--output", "mx"])
    assert unit_record(ns, parser).output == "mx"
    ns = parser.parse_args(["--top", "linear", "--bits", "4", "--block", "4",
                            "--output", "mx"])
    with pytest.raises(SystemExit):
        unit_record(ns, parser)
    assert "--output must be one of 'accum', 'fp32', not 'mx'" in capsys.readouterr().err


def test_dot_from_the_api_without_exp_bits_simulates_its_manifest():
    """The manifest of a design made with defaults holds them: the testbench model reads it."""
    from hw.generate import elaborate
    from sim.units import model_for

    design = elaborate("dot", a_bits=6, b_bits=6, block=16)
    assert design.manifest["parameters"]["exp_bits"] == 8
    assert model_for(design.manifest).fmt_a.exp_bits == 8


def test_levels_beyond_the_depth_fold_into_one_design():
    from hw.generate import elaborate

    deep, exact = (elaborate("dot", a_bits=6, b_bits=6, block=16, levels_per_stage=n)
                   for n in (99, 7))
    assert deep.name == exact.name == "mxint_dot_a6_w6_e8_k16_l7"
    assert deep.verilog == exact.verilog
    assert deep.manifest["parameters"]["levels_per_stage"] == 7


@pytest.mark.parametrize(("old", "new"), [
    (["--top", "intmac", "--bits", "8", "--acc-bits", "40"],
     ["--top", "intmac", "--bits", "8", "--acc-width", "40"]),
    (["--top", "fpmac", "--exp-bits", "5", "--bits", "10"],
     ["--top", "fpmac", "--exp-bits", "5", "--frac-bits", "10"]),
])
def test_old_spellings_are_aliases(old, new):
    assert _cli_design(*old).name == _cli_design(*new).name


@pytest.mark.parametrize(("module", "old", "new"), [
    ("flows.report", "--workdir", "--out"),
    ("sim.formal.__main__", "--workdir", "--out"),
    ("hw.generate", "--acc-bits", "--acc-width"),
])
def test_output_folder_target_and_accumulator_have_one_name(module, old, new):
    """--out is the output folder, --target the targets and --acc-width the accumulator
    width everywhere; the old spellings stay as aliases."""
    import importlib

    parser = importlib.import_module(module).build_parser()
    actions = {flag: action for action in parser._actions for flag in action.option_strings}
    assert actions[old] is actions[new]


def test_report_target_keeps_its_old_spelling():
    from flows.report import build_parser

    parser = build_parser()
    new, old = (parser.parse_args(["--bits", "6", "--block", "4", flag, "xc7"])
                for flag in ("--target", "--targets"))
    assert new.targets == old.targets == ["xc7"]


def test_sim_run_output_folder_is_out():
    r = run("-m", "sim.run", "--help")
    assert r.returncode == 0 and "--out BUILD, --build BUILD" in r.stdout
