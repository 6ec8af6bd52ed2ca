"""The placed clock of one generated unit on ECP5, with its critical path.

Usage::

    python -m benchmarks.placed --top dequant --source accum --bits 8 --block 32 \\
        [unit options] [--freq 200] [--seed 1] [--out DIR] [--json FILE]
    python -m benchmarks.placed --top accum --chain --bits 6 --block 16 --align lookahead \\
        --primitives ecp5 --levels-per-stage 1 --seed 1 --out DIR


Elaborates the unit (the options of ``python -m hw.generate``), places and routes it with
:func:`flows.pnr.place_and_route` (LUT-only, ``-nodsp``; the smallest ECP5 device that
holds it; nextpnr seed ``--seed``, target ``--freq`` MHz) and prints the achieved Fmax, the
synthesised LUT4, flip-flop and carry counts, and nextpnr's critical path: its total delay,
the register it starts from, the cell input it ends at and the nets it crosses. With
``--out`` the Verilog, the scripts and nextpnr's log stay in ``DIR``.

With ``--chain`` (``--top accum`` only) the design placed is the chain: the dot product of
the same operands (``--bits``, ``--block``, ``--exp-bits``; its own ``--primitives``,
``--levels-per-stage``, ``--arch``) whose result stream feeds the accumulator directly,
``dot.o`` to ``acc.i`` with no register between, and the group's ``last`` flag a top-level
input. Each option goes to the units that read it; ``--primitives ecp5`` builds the dot
product from ECP5 cells, and the accumulator too with ``--align lookahead`` (the other
aligns have no cell build: they stay generic, as in :mod:`flows.density`). The counts and
Fmax are then those of the two together, as one placement.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cli import interrupt
from cli.config import add_config_arguments, command_parser, parse_args
from cli.files import write_atomic
from cli.units import GIVEN, add_unit_arguments, unit_epilog, unit_record

__all__ = ["critical_path", "main", "measure"]

_HEAD = re.compile(r"Info: Critical path report for clock '([^']*)'")
_STEP = re.compile(r"Info:\s+(clk-to-q|routing|logic|setup)\s+([\d.]+)\s+([\d.]+)\s+"
                   r"(Source|Net|Setup)\s+(\S+)")
_SINK = re.compile(r"Info:\s+Sink\s+(\S+)")


def critical_path(log: str) -> dict | None:
    """The first critical path of nextpnr's log ``log`` (the text of ``pnr.log``).

    Returns
    -------
    dict or None
        ``clock``, ``delay_ns`` (total, setup included), ``source`` (the first cell pin),
        ``sink`` (the last), ``nets`` (the named nets crossed, in order, each once; not
        Yosys's ``$`` nets); ``None`` if the log has no critical path report.
    """
    lines = log.splitlines()
    start = next((n for n, line in enumerate(lines) if _HEAD.search(line)), None)
    if start is None:
        return None
    clock = _HEAD.search(lines[start]).group(1)
    source, sink, total, nets = None, None, 0.0, []
    for line in lines[start + 1:]:
        if not line.startswith("Info:  ") and not line.startswith("Info: \t"):
            if total:
                break
            continue
        step = _STEP.search(line)
        if step:
            total = float(step.group(3))
            if step.group(4) == "Source" and source is None:
                source = step.group(5)
            if step.group(4) == "Net":
                name = step.group(5)
                if not name.lstrip("\\").startswith("$") and name not in nets:
                    nets.append(name)
            continue
        end = _SINK.search(line)
        if end:
            sink = end.group(1)
    return {"clock": clock, "delay_ns": total, "source": source, "sink": sink, "nets": nets}


def measure(top: str, params: dict, *, freq_mhz: float, seed: int,
            workdir: Path | None = None, chain: dict | None = None) -> dict:
    """Place and route unit ``top`` with ``params``; the counts, Fmax and critical path.

    With ``chain`` (only for ``top="accum"``), the keyword arguments of a dot product placed
    in front of the accumulator as one design (:func:`flows.chain.chain_design`).
    """
    from flows.chain import chain_design
    from flows.pnr import place_and_route
    from hw.generate import elaborate

    if chain is not None:
        if top != "accum":
            raise ValueError(f"chain applies only to top 'accum', not {top!r}")
        design = chain_design(chain, params)
    else:
        design = elaborate(top, **params)
    with tempfile.TemporaryDirectory(prefix="mxforge-placed-") as tmp:
        folder = Path(workdir) if workdir is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{design.name}.v"
        path.write_text(design.verilog, encoding="utf-8")
        placed = place_and_route(path, design.name, dsp=False, freq_mhz=freq_mhz, seed=seed,
                                 workdir=folder)
        path_report = critical_path((folder / "pnr.log").read_text(encoding="utf-8"))
    return {"name": design.name, "device": placed["pnr"]["device"],
            "fmax_mhz": placed["pnr"]["fmax"],
            **{k: placed[k] for k in ("luts", "ffs", "carry")},
            "critical_path": path_report}


def _chain_records(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple:
    """The records of ``--chain``: (dot product, accumulator), each from the options it
    reads (the accumulator's record refuses an option neither reads)."""
    from cli.units import reads

    if args.top != "accum":
        parser.error(f"--chain applies only to --top accum (the dot product placed in front "
                     f"of it), not --top {args.top}")
    given = getattr(args, GIVEN, {})

    dot_reads, acc_reads = reads("dot"), reads("accum")
    # Only align="lookahead" has an accumulator built from cells (its loop's CCU2C): with
    # the other aligns --primitives is the dot product's alone, as in flows.density.
    if getattr(args, "align", None) != "lookahead":
        acc_reads = acc_reads - {"primitives"}
    records = []
    for key, keep in (("dot", lambda d: d in dot_reads),
                      ("accum", lambda d: d in acc_reads or d not in dot_reads)):
        view = argparse.Namespace(**vars(args))
        view.top = key
        setattr(view, GIVEN, {d: o for d, o in given.items() if keep(d)})
        records.append(unit_record(view, parser))
    return tuple(records)


def main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser("python -m benchmarks.placed",
                            description=__doc__.split("\n\n")[0], epilog=unit_epilog())
    add_unit_arguments(parser, interface=False)
    parser.add_argument("--chain", action="store_true",
                        help="with --top accum: place the dot product of the same operands "
                             "feeding the accumulator, as one design (--levels-per-stage "
                             "and --arch go to the dot product; --primitives to the dot "
                             "product, and to the accumulator with --align lookahead, the "
                             "only accumulator built from cells); also prints LUT4 sites "
                             "and FFs per MAC")
    parser.add_argument("--freq", type=float, default=200.0,
                        help="nextpnr target clock in MHz (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1,
                        help="nextpnr placement seed (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="keep the Verilog, scripts and logs in DIR")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also write the result to FILE as JSON (sorted keys)")
    add_config_arguments(parser)
    args = parse_args(parser, argv)
    if args.chain:
        dot, record = _chain_records(args, parser)
        chain = dot.kwargs()
    else:
        record, chain = unit_record(args, parser), None
    try:
        result = measure(args.top, record.kwargs(), freq_mhz=args.freq, seed=args.seed,
                         workdir=args.out, chain=chain)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    print(f"{result['name']}: {result['fmax_mhz']:.1f} MHz on {result['device']}, "
          f"{result['luts']} LUT4, {result['ffs']} FFs, {result['carry']} carry")
    if chain is not None:
        from flows.measure import CARRY_LUT_SITES

        k, per_carry = record.block, CARRY_LUT_SITES["ecp5"]
        sites = result["luts"] + per_carry * result["carry"]
        result.update(block=k, lut4_sites=sites, lut4_sites_per_mac=sites / k,
                      ffs_per_mac=result["ffs"] / k)
        print(f"per MAC (k = {k}): {sites / k:.1f} LUT4 sites ({sites}: LUT4 + "
              f"{per_carry} per CCU2C), {result['ffs'] / k:.1f} FFs")
    path = result["critical_path"]
    if path is not None:
        print(f"critical path ({path['clock']}): {path['delay_ns']:.2f} ns, "
              f"{path['source']} -> {path['sink']}")
        print("  nets: " + ", ".join(path["nets"]))
    if args.json is not None:
        write_atomic(args.json, json.dumps(result, sort_keys=True, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(interrupt.run(main))
