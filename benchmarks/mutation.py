"""Mutation testing of the RTL: ``python -m benchmarks.mutation [--only NAME ...]``.

Each mutant is one plausible single-point bug in ``hw/`` (the stall logic and handshakes,
off-by-ones in shifts and compares, sign extension, saturation bounds, rounding ties). The
repository's ``hw cli golden sim tests flows benchmarks`` and ``pyproject.toml`` are copied
once to a temporary folder; each mutant is applied to that copy alone (the working tree
is never touched), the fast tests are run against it, and the file is restored:

1. ``tests/test_throughput.py`` for the mutated unit (bubble absorption, cycle bound under
   random back-pressure, payloads against ``golden``);
2. if the mutant survived that, the unit's Amaranth-simulator tests
   (``tests/test_<unit>.py -k amaranth``; no Verilator).

A mutant is *killed* when a suite fails (pytest exit status 1) or runs out of time,
*survived* when both pass, and an *error* when pytest could not run (any other status,
e.g. no test collected) or the suite fails on the unmutated copy too (each suite runs
once unmutated before its first mutant). It prints one line per mutant and the totals;
exit status 0, or 1 if a mutant no longer applies to ``hw/`` or the copy does not import
its own ``hw/``. Not part of ``make test``: a full run takes several minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cli import interrupt

REPO = Path(__file__).resolve().parent.parent
#: What the tests need from the repository.
COPIED = ("hw", "cli", "golden", "sim", "tests", "flows", "benchmarks", "pyproject.toml")


@dataclass(frozen=True)
class Mutant:
    """One single-point change: ``old`` (exactly once in ``path``) becomes ``new``.

    Members
    -------
    name : str
        Short identifier, for ``--only``.
    path : str
        File under the repository, e.g. ``hw/pipeline.py``.
    old, new : str
        The text replaced and its replacement.
    units : str
        ``-k`` expression selecting the throughput tests of the units the file builds.
    tests : tuple of str
        Unit test files whose Amaranth-simulator tests run when the throughput tests pass.
    why : str
        The bug it stands for.
    """

    name: str
    path: str
    old: str
    new: str
    units: str
    tests: tuple[str, ...]
    why: str


def _units_using(*names: str) -> str:
    """``-k`` expression of the registered units whose component's module uses any of
    ``names`` (a unit built from another, as linear from the dot product, counts too)."""
    import inspect

    from hw.unit import units

    return " or ".join(key for key, u in units().items()
                       if any(n in inspect.getsource(inspect.getmodule(u.component))
                              for n in names))


_PIPELINE_UNITS = _units_using("StallPipeline(", "MXIntDotProduct(")

MUTANTS = (
    # --- stall logic and handshakes ---------------------------------------------------
    Mutant("pipeline-advance", "hw/pipeline.py",
           "self.advance.eq(~output.valid | output.ready)", "self.advance.eq(output.ready)",
           _PIPELINE_UNITS, ("tests/test_dot_product.py",),
           "stall whenever ready is low, even with the output empty (issue 9's survivor)"),
    Mutant("pipeline-ready-join", "hw/pipeline.py",
           "source.ready.eq(others & first)", "source.ready.eq(first)",
           _PIPELINE_UNITS, ("tests/test_dot_product.py", "tests/test_block_adder.py"),
           "an input is ready without the other input being valid"),
    Mutant("accum-advance", "hw/accumulator.py",
           "advance.eq(~o.valid | o.ready)", "advance.eq(o.ready)",
           "accum or linear", ("tests/test_accumulator.py",),
           "the accumulator's output register stalls on ready alone"),
    Mutant("accum-move", "hw/accumulator.py",
           "move.eq(~busy & (~o.valid | o.ready))", "move.eq(~busy & o.ready)",
           "accum or linear", ("tests/test_accumulator.py",),
           "the accumulator's stages stall on ready alone"),
    Mutant("accum-fire-busy", "hw/accumulator.py",
           "fire.eq(self.i.valid & ~busy & (~o.valid | o.ready))",
           "fire.eq(self.i.valid & (~o.valid | o.ready))",
           "accum or linear", ("tests/test_accumulator.py",),
           "an input is counted while the shift of A holds the input"),
    Mutant("accum-valid-busy", "hw/accumulator.py",
           "o.valid.eq(valid_2 & last_2 & ~busy)", "o.valid.eq(valid_2 & last_2)",
           "accum or linear", ("tests/test_accumulator.py",),
           "a result leaves before the shift of A is done"),
    Mutant("accum-rise-first", "hw/accumulator.py",
           "up.eq(~fresh & fall[-1])", "up.eq(fall[-1])",
           "accum or linear", ("tests/test_accumulator.py",),
           "a group's first input counts as a rise of the running maximum"),
    Mutant("int-mac-advance", "hw/int_mac.py",
           "advance.eq(~self.o.valid | self.o.ready)", "advance.eq(self.o.ready)",
           "intmac", ("tests/test_int_mac.py",),
           "the integer MAC stalls on ready alone"),
    Mutant("booth-last-neg", "hw/booth.py",
           "terms.append((negs[-1].as_unsigned(), 2 * (digits - 1)))", "pass",
           "intmac", ("tests/test_int_mac.py",),
           "the top Booth digit's ones'-complement correction is dropped"),
    Mutant("booth-chain-wait", "hw/booth.py",
           'accs[c] = register(acc, f"{name}_ch{c}_r{step}")', "accs[c] = acc",
           "fpmac", ("tests/test_fp_mac.py",),
           "the fp significand product's shorter Booth chain is added a cycle early"),
    Mutant("int-dot-end-ready", "hw/int_dot.py",
           "end.ready.eq(o.ready | ~out_last)", "end.ready.eq(o.ready)",
           "intdot", ("tests/test_int_dot.py",),
           "inputs without last wait for the output's ready"),
    Mutant("int-dot-acc-enable", "hw/int_dot.py",
           "with m.If(pipe.advance & valid):", "with m.If(valid):",
           "intdot", ("tests/test_int_dot.py",),
           "the accumulator adds again while the pipeline is stalled"),
    Mutant("linear-input-join", "hw/linear.py",
           "acc.i.valid.eq(dot.o.valid & all_of(others) if others else dot.o.valid)",
           "acc.i.valid.eq(dot.o.valid)",
           "linear", ("tests/test_linear.py",),
           "a lane's accumulator takes a block the other lanes cannot"),
    Mutant("linear-output-join", "hw/linear.py",
           "lane.ready.eq(o.ready & all_of(others) if others else o.ready)",
           "lane.ready.eq(o.ready)",
           "linear", ("tests/test_linear.py",),
           "a lane's result is taken before the other lanes' are valid"),
    # --- arithmetic -----------------------------------------------------------------------
    Mutant("dot-nan-code", "hw/dot_product.py",
           "nan_code = (1 << self.exp_bits) - 1", "nan_code = (1 << self.exp_bits) - 2",
           "dot", ("tests/test_dot_product.py",),
           "NaN detected one code too low"),
    # (Zero-extending ``xa`` is no bug: ``a_bits`` bits shifted left by ``width - a_bits``
    # fill ``xa`` exactly. The rounding sum is one bit wider than ``q``.)
    Mutant("adder-sign-extension", "hw/block_adder.py",
           "rounded.eq(q + inc)", "rounded.eq(q.as_unsigned() + inc)",
           "adder", ("tests/test_block_adder.py",),
           "the quotient zero-extended instead of sign-extended before rounding"),
    Mutant("adder-tie-even", "hw/block_adder.py",
           "((rem == half) & q[0])", "((rem == half) & ~q[0])",
           "adder", ("tests/test_block_adder.py",),
           "ties rounded to odd"),
    Mutant("adder-saturate-low", "hw/block_adder.py",
           "rounded < -top", "rounded < -top - 1",
           "adder", ("tests/test_block_adder.py",),
           "negative saturation one below the symmetric bound"),
    Mutant("cast-tie-even", "hw/cast.py",
           "return rnd & (sticky | lsb)", "return rnd & sticky",
           "cast", ("tests/test_cast.py",),
           "ties rounded down instead of to even"),
    Mutant("cast-saturate", "hw/cast.py",
           " | ((q == max_man) & inc)", "",
           "cast", ("tests/test_cast.py",),
           "rounding up past the largest mantissa not saturated"),
    Mutant("cast-exponent-clamp", "hw/cast.py",
           "e_raw > nan_code - 1", "e_raw > nan_code",
           "cast", ("tests/test_cast.py",),
           "the shared exponent may reach the NaN code"),
    Mutant("dequant-subnormal", "hw/dequantizer.py",
           "normal = biased > 0", "normal = biased >= 0",
           "dequant", ("tests/test_dequantizer.py",),
           "off by one at the subnormal boundary"),
    Mutant("dequant-accum-tie-even", "hw/dequantizer.py",
           'inc.eq(cur[0] & (s4["sticky"] | cur[1]))', 'inc.eq(cur[0])',
           "dequant", ("tests/test_dequantizer.py",),
           "ties rounded away instead of to even"),
    Mutant("heap-gpc-next-free", "hw/bitheap.py",
           "if n == 5 and nxt_free >= 1:", "if n == 5:",
           "intdot", ("tests/test_bitheap.py",),
           "a (1,5;3) counter placed where the column above has no free bit: the sum stays "
           "right, the heap departs from its plan (issue 17's independent run)"),
    Mutant("fpmac-tie-even", "hw/fp_mac.py",
           '"inc": guard & (sticky | sig[0])', '"inc": guard & sticky',
           "fpmac", ("tests/test_fp_mac.py",),
           "product ties rounded down instead of to even"),
    Mutant("fpmac-flush-tie-even", "hw/fp_mac.py",
           "up = guard & (sticky | sig[0])", "up = guard & sticky",
           "fpmac", ("tests/test_fp_mac.py",),
           "flush-to-zero: product ties rounded down instead of to even"),
    Mutant("fpmac-flush-min-normal", "hw/fp_mac.py",
           '"minn": (e == 0) & (sig == (1 << p) - 1)', '"minn": 0',
           "fpmac", ("tests/test_fp_mac.py",),
           "flush-to-zero: a product that IEEE rounds up to the smallest normal is flushed"),
    Mutant("accum-saturate-low", "hw/accumulator.py",
           "-(1 << (w - 1))))", "-(1 << (w - 1)) + 1))",
           "accum or linear", ("tests/test_accumulator.py",),
           "negative saturation bound one too high"),
    Mutant("accum-saturate-detect", "hw/accumulator.py",
           "out.eq(value[w] != value[w - 1])", "out.eq(value[w] != value[w - 2])",
           "accum or linear", ("tests/test_accumulator.py",),
           "overflow detected one bit too low"),
    Mutant("accum-interleave-advance", "hw/accumulator.py",
           "advance.eq(o.ready | ~o.valid)", "advance.eq(o.ready)",
           "interleave", ("tests/test_accumulator.py",),
           "align=interleave: the pipeline stalls on ready alone"),
    Mutant("accum-interleave-flush", "hw/accumulator.py",
           "ring.eq(advance & (valid_2 | (valid_3 & last_3)))", "ring.eq(advance & valid_2)",
           "interleave", ("tests/test_accumulator.py",),
           "align=interleave: a group's last input waits in the loop for the next input"),
    Mutant("accum-interleave-saturate-detect", "hw/accumulator.py",
           "excursion.eq(acc[w] ^ acc[w - 1])", "excursion.eq(acc[w] ^ acc[w - 2])",
           "interleave", ("tests/test_accumulator.py",),
           "align=interleave: a partial sum's overflow detected one bit too low"),
    Mutant("accum-lookahead-drain-carry", "hw/accumulator.py",
           "lo_src + y_5[:s_fix] + (carry & drain_5 & ~first_5)", "lo_src + y_5[:s_fix]",
           "lookahead", ("tests/test_accumulator.py",),
           "align=lookahead: a drain drops the carry pending between the loop's two adders"),
    Mutant("accum-lookahead-ecp5-clear", "hw/accumulator.py",
           "with m.If(clear_lo):\n        m.d.sync += [lo0.eq(0), lo1.eq(0), carry_l.eq(0), "
           "carry.eq(0)]\n    with m.Elif(add_lo):", "with m.If(add_lo):",
           "lookahead", ("tests/test_accumulator.py",),
           "align=lookahead, primitives=ecp5: a group's first input adds to the last group's "
           "low bits and carry"),
    Mutant("accum-lookahead-ecp5-ahead", "hw/accumulator.py",
           "take.eq(first | ((g_0 | a_0) & (h_0 | b_0)))", "take.eq(first | (g_0 & (h_0 | b_0)))",
           "lookahead", ("tests/test_accumulator.py",),
           "align=lookahead, primitives=ecp5: E_max's compare made a cycle ahead forgets that "
           "the input before opened a group (compares with the last group's maximum)"),
    Mutant("accum-lookahead-ecp5-early-minus", "hw/accumulator.py",
           'p_sign, (one, one), carry_out=False, name="pending_minus_add"',
           'p_sign, (one, zero), carry_out=False, name="pending_minus_add"',
           "lookahead", ("tests/test_accumulator.py",),
           "align=lookahead, primitives=ecp5, out_ready=registered: the pending shift's "
           "early recurrence computes p - (S - d) one too low (drains one step early)"),
    Mutant("accum-lookahead-ecp5-copy-carry", "hw/accumulator.py",
           '"acc_copy", carry_c)', '"acc_copy", Const(0, 1))',
           "lookahead", ("tests/test_accumulator.py",),
           "align=lookahead, primitives=ecp5, out_ready=registered: the capture copy's low "
           "chain drops the carry pending into a drain"),
    Mutant("accum-lookahead-ecp5-lost", "hw/accumulator.py",
           "m.d.sync += lost.eq(lost_set | (lost & (lost_n | lost_up)))",
           "m.d.sync += lost.eq(lost & lost_n)",
           "lookahead", ("tests/test_accumulator.py",),
           "align=lookahead, primitives=ecp5: a drain drops the carry out of the low bits "
           "it drops (the loop's pending carry into L1 completing it)"),
    Mutant("accum-lookahead-ecp5-lost-up", "hw/accumulator.py",
           "m.d.sync += lost.eq(lost_set | (lost & (lost_n | lost_up)))",
           "m.d.sync += lost.eq(lost_set | (lost & lost_n))",
           "lookahead", ("tests/test_formal.py",),
           "align=lookahead, primitives=ecp5: a drain drops a lost carry still pending from "
           "the drain before (its +1 completing the carry out of the dropped bits)"),
    Mutant("accum-lookahead-enable-copy", "hw/accumulator.py",
           "m.d.sync += copy.eq(valid_next)", "m.d.sync += copy.eq(0)",
           "lookahead", ("tests/test_accumulator.py",),
           "align=lookahead: the copies of the stall enable ignore back-pressure"),
)


def stale_mutants(mutants) -> list[str]:
    """One message per mutant whose ``old`` text is not in its file exactly once."""
    messages = []
    for m in mutants:
        count = (REPO / m.path).read_text(encoding="utf-8").count(m.old)
        if count != 1:
            messages.append(f"mutant {m.name}: {m.old!r} occurs {count} times in {m.path}, "
                            f"not once; update benchmarks/mutation.py")
    return messages


def _pytest(root: Path, args: list[str], timeout: float) -> str:
    """``killed``, ``passed``, ``timeout`` or ``error`` for one pytest run in ``root``."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:xdist", "-p",
           "no:cacheprovider", *args]
    try:
        done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout,
                              env=_env())
    except subprocess.TimeoutExpired:
        return "timeout"
    return {0: "passed", 1: "killed"}.get(done.returncode, "error")


def _env() -> dict:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    return env


def _suites(mutant: Mutant) -> list[list[str]]:
    return [["tests/test_throughput.py", "-k", mutant.units],
            [*mutant.tests, "-k", "amaranth"]]


def run_mutant(root: Path, mutant: Mutant, *, timeout: float, both: bool,
               baseline: dict) -> dict:
    """Run ``mutant``'s suites on the copy at ``root``, each with the mutant applied and the
    file restored after it. A suite first runs once unmutated (cached in ``baseline``); if
    that fails, the mutant is an ``error``, not a kill."""
    path = root / mutant.path
    original = path.read_text(encoding="utf-8")
    verdicts = []
    start = time.perf_counter()
    for suite in _suites(mutant):
        key = tuple(suite)
        if key not in baseline:
            baseline[key] = _pytest(root, suite, timeout)
        if baseline[key] != "passed":
            verdicts.append(f"unmutated {baseline[key]}")
            break
        path.write_text(original.replace(mutant.old, mutant.new), encoding="utf-8")
        try:
            verdicts.append(_pytest(root, suite, timeout))
        finally:
            path.write_text(original, encoding="utf-8")
        if verdicts[-1] != "passed" and not both:
            break
    if any(v.startswith("unmutated") or v == "error" for v in verdicts):
        status = "error"
    elif any(v in ("killed", "timeout") for v in verdicts):
        status = "killed"
    else:
        status = "survived"
    return {"name": mutant.name, "status": status, "suites": verdicts,
            "seconds": time.perf_counter() - start}


def _copy(dest: Path) -> None:
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dest / name)


def _imports_copy(root: Path) -> bool:
    """Whether Python started in ``root`` imports ``hw`` from the copy (not the editable
    install of the working tree)."""
    done = subprocess.run([sys.executable, "-c", "import hw; print(hw.__file__)"], cwd=root,
                          capture_output=True, text=True, env=_env())
    return done.returncode == 0 and Path(done.stdout.strip()).resolve().is_relative_to(
        root.resolve())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mutation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run this mutant only (repeatable; default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--both", action="store_true",
                        help="run the unit tests even when the throughput tests killed the "
                             "mutant (shows which suite kills what)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds per pytest run before the mutant counts as killed "
                             "(default: 900)")
    args = parser.parse_args(argv)
    names = [m.name for m in MUTANTS]
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:24} {m.path:20} {m.why}")
        return 0
    for name in args.only or []:
        if name not in names:
            print(f"--only must be one of the mutant names (see --list), not {name!r}",
                  file=sys.stderr)
            return 1
    if args.timeout <= 0:
        print(f"--timeout must be positive, not {args.timeout}", file=sys.stderr)
        return 1
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    stale = stale_mutants(chosen)
    for message in stale:
        print(message, file=sys.stderr)
    if stale:
        return 1

    with tempfile.TemporaryDirectory(prefix="mxforge-mutation-") as tmp:
        root = Path(tmp)
        _copy(root)
        if not _imports_copy(root):
            print("the copy does not import its own hw/; not running", file=sys.stderr)
            return 1
        print(f"{len(chosen)} mutants; each suite runs once unmutated first", flush=True)
        baseline: dict = {}
        results = []
        for m in chosen:
            r = run_mutant(root, m, timeout=args.timeout, both=args.both,
                           baseline=baseline)
            results.append(r)
            suites = ", ".join(f"{s}: {v}" for s, v in zip(("throughput", "unit"),
                                                           r["suites"], strict=False))
            print(f"{r['status']:8} {m.name:24} ({suites}; {r['seconds']:.0f} s)  {m.why}",
                  flush=True)
    killed = sum(r["status"] == "killed" for r in results)
    by_throughput = sum(r["suites"][0] in ("killed", "timeout") for r in results)
    survived = [r["name"] for r in results if r["status"] == "survived"]
    errors = [r["name"] for r in results if r["status"] == "error"]
    print(f"killed {killed} of {len(results)} ({by_throughput} by the throughput tests); "
          f"survived {len(survived)}: {', '.join(survived) or '-'}; "
          f"errors {len(errors)}: {', '.join(errors) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(interrupt.run(main))
