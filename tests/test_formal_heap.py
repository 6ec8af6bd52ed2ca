"""Piecewise proof of the bit-heap dot product (sim/formal/heap.py): the generated Verilog's
lemmas by Yosys ``sat``, the certificate's arithmetic in Python; and that a wrong netlist
or a wrong certificate fails it."""

from __future__ import annotations

import copy
import re

import pytest

from hw.generate import Design, elaborate
from sim.formal.heap import CertificateError, check_certificate, prove_heap


def _design(bits: int, block: int, primitives: str, lps: int = 2) -> Design:
    return elaborate("dot", a_bits=bits, b_bits=bits, exp_bits=8, block=block, arch="heap",
                     primitives=primitives, levels_per_stage=lps)


def _with_verilog(design: Design, verilog: str) -> Design:
    return Design(name=design.name, verilog=verilog, manifest=design.manifest,
                  component=design.component)


@pytest.mark.parametrize(("bits", "block", "target", "lps"), [
    (4, 2, "generic", 2),
    (4, 2, "xc7", 2),
    (3, 2, "ecp5", 1),  # CCU2C row pairs, a one-row signed chunk, a register per level:
    #                     the rows added as a tree of whole chains
    (3, 2, "ecp5", 2),  # two levels per stage: the rows zipped by column
    (3, 4, "generic", 1),  # a register after every level
    (2, 8, "generic", 2),  # one signed chunk per operand, many products
])
def test_heap_proved(tmp_path, bits, block, target, lps):
    result = prove_heap(_design(bits, block, target, lps), timeout=240, workdir=tmp_path)
    assert result.status == "PROVED", f"{result.detail}; log {result.log}"
    assert "piecewise" in result.detail


def test_ecp5_wrong_cell_table_fails(tmp_path, monkeypatch):
    """The ecp5 heap with its partial-product terms' AND made an OR in every CCU2C INIT must
    fail a tile lemma: the cells' own models are what is proven."""
    import hw.bitheap

    monkeypatch.setitem(hw.bitheap._TERMS, "and", lambda p, q: p | q)
    result = prove_heap(_design(3, 2, "ecp5", 1), timeout=240, workdir=tmp_path)
    assert result.status == "FAILED" and "a lemma fails" in result.detail, result.detail


def _flip_case_entry(verilog: str, signal: str) -> str:
    """Flip bit 0 of the first nonzero entry of ``signal``'s case table."""
    entry = re.compile(rf"{re.escape(signal)} = (\d+)'h([0-9a-f]+);")
    match = next(m for m in entry.finditer(verilog) if int(m[2], 16) != 0)
    value = int(match[2], 16) ^ 1
    return verilog[:match.start()] + f"{signal} = {match[1]}'h{value:x};" + \
        verilog[match.end():]


@pytest.mark.parametrize("signal", ["dot_t1_2", "dot_c2_1"])
def test_corrupt_table_fails_with_counterexample(tmp_path, signal):
    design = _design(4, 2, "generic")
    bad = _flip_case_entry(design.verilog, signal)
    assert bad != design.verilog
    result = prove_heap(_with_verilog(design, bad), timeout=240, workdir=tmp_path)
    assert result.status == "FAILED", result.detail
    assert "a lemma fails" in result.detail and result.counterexample
    assert result.vcd is not None and result.vcd.exists()


def test_swapped_register_bits_fail(tmp_path):
    # Two bits of different columns loaded into each other's register: every local table
    # is still right, but the weights are not.
    design = _design(4, 2, "generic")
    text = design.verilog
    match = re.search(r"\{ (dot_t\d_\d)\[(\d)\], (dot_t\d_\d)\[(\d)\] \}", text)
    assert match, "no two-bit register source in the Verilog"
    swapped = f"{{ {match[3]}[{match[4]}], {match[1]}[{match[2]}] }}"
    bad = text.replace(match[0], swapped)
    result = prove_heap(_with_verilog(design, bad), timeout=240, workdir=tmp_path)
    assert result.status == "FAILED" and result.counterexample, result.detail


def _certificate(bits=4, block=2, target="generic"):
    design = _design(bits, block, target)
    sop = design.component.sum_of_products
    return copy.deepcopy(sop.certificate), sop, design.manifest["latency"]


def _check(cert, sop, latency):
    return check_certificate(cert, a_bits=sop.a_bits, b_bits=sop.b_bits, block=sop.block,
                             latency=latency)


def test_certificate_adds_up():
    for target in ("generic", "xc7"):
        cert, sop, latency = _certificate(target=target)
        kinds = {lemma[0] for lemma in _check(cert, sop, latency)}
        assert kinds == {"tile", "adder", "register", "result"} | (
            {"sum"} if target == "generic" else set())


def _first_adder(cert):
    return next(step for step in cert["steps"] if step["kind"] == "adders")["adders"][0]


@pytest.mark.parametrize(("corrupt", "message"), [
    (lambda c: c.update(const=c["const"] ^ 1), "is not the tiles' offsets"),
    (lambda c: c["tiles"].pop(), "are not every chunk pair once"),
    (lambda c: c["tiles"][0].update(shift=c["tiles"][0]["shift"] + 1), "is not the chunks'"),
    (lambda c: [t["a"].__setitem__(2, True) for t in c["tiles"] if t["a"][0] == 0],
     "should be unsigned"),
    (lambda c: _first_adder(c)["outputs"].pop(), "not in the heap"),
    (lambda c: _first_adder(c)["inputs"].append(_first_adder(c)["inputs"][0]),
     "not in the heap"),
    (lambda c: _first_adder(c)["inputs"].pop(), "no register loads"),
    (lambda c: c["steps"].pop(), "register stages, but the latency is"),
    (lambda c: c["result"].reverse(), "is not the heap's last bits"),
])
def test_wrong_certificate_is_refused(corrupt, message):
    cert, sop, latency = _certificate()
    corrupt(cert)
    with pytest.raises(CertificateError, match=message):
        _check(cert, sop, latency)


def test_too_narrow_sum_is_refused():
    cert, sop, latency = _certificate()
    cert["width"] -= 2
    with pytest.raises(CertificateError, match="does not fit"):
        _check(cert, sop, latency)


def test_wrong_certificate_fails_the_proof(tmp_path):
    design = _design(4, 2, "generic")
    cert = design.component.sum_of_products.certificate
    saved = cert["const"]
    cert["const"] ^= 2
    try:
        result = prove_heap(design, timeout=60, workdir=tmp_path)
    finally:
        cert["const"] = saved
    assert result.status == "FAILED" and "certificate does not add up" in result.detail
