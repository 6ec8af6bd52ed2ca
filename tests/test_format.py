import pytest

from golden import MXFPFormat, MXIntFormat, parse_format


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"man_bits": 1}, ValueError, r"man_bits must be from 2 to 24, not 1"),
    ({"man_bits": 25}, ValueError, r"man_bits must be from 2 to 24, not 25"),
    ({"man_bits": 6.0}, TypeError, r"man_bits must be an integer, not 6.0"),
    ({"man_bits": True}, TypeError, r"man_bits must be an integer, not True"),
    ({"man_bits": 6, "exp_bits": 1}, ValueError, r"exp_bits must be from 2 to 8, not 1"),
    ({"man_bits": 6, "exp_bits": 9}, ValueError, r"exp_bits must be from 2 to 8, not 9"),
    ({"man_bits": 6, "block": 0}, ValueError, r"block must be from 1 to 1024, not 0"),
    ({"man_bits": 6, "block": "16"}, TypeError, r"block must be an integer, not '16'"),
])
def test_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        MXIntFormat(**kwargs)


def test_ocp_mxint8():
    f = MXIntFormat(8, 8, 32)
    assert (f.bias, f.nan_code, f.max_code, f.max_man, f.frac_bits) == (127, 255, 254, 127, 6)
    assert f.scale_exponent(127) == -6  # int8 read as Q1.6 at E = bias
    assert f.name == "mxint8e8k32"


@pytest.mark.parametrize(("bits", "density"), [
    (4, 7.11), (6, 4.92), (8, 3.76),  # the EMNLP 2023 paper's W4A4 / W6A6 / W8A8 at block 16
])
def test_paper_memory_density(bits, density):
    f = MXIntFormat(bits, 8, 16)
    assert f.bits_per_element == bits + 0.5
    assert round(f.memory_density, 2) == density


@pytest.mark.parametrize(("name", "family", "width", "frac", "max_normal", "int_bits"), [
    ("mxfp8_e5m2", "mxfp8_e5m2", 8, 16, 57344.0, 33),
    ("mxfp8_e4m3", "mxfp8_e4m3", 8, 9, 448.0, 19),
    ("mxfp6_e3m2", "mxfp6_e3m2", 6, 4, 28.0, 10),
    ("mxfp6_e2m3", "mxfp6_e2m3", 6, 3, 7.5, 7),
    ("mxfp4", "mxfp4", 4, 1, 6.0, 5),
    ("MXFP4_E2M1", "mxfp4", 4, 1, 6.0, 5),
])
def test_parse_mxfp(name, family, width, frac, max_normal, int_bits):
    """OCP v1.0 Table 1's largest normals; the fixed-point view's fraction bits."""
    f = parse_format(name, block=16)
    assert isinstance(f, MXFPFormat)
    assert (f.family, f.element_bits, f.frac_bits, f.element.max_normal, f.int_bits) == \
        (family, width, frac, max_normal, int_bits)
    assert (f.bias, f.nan_code, f.exp_bits, f.block) == (127, 255, 8, 16)
    assert f.memory_density == 32 / (width + 8 / 16)
    assert f.name == f"{family}_k16"
    assert parse_format(name, block=16, scale_rounding="rceil").name == f"{family}_k16_rceil"


def test_parse_mxint():
    assert parse_format("mxint8") == MXIntFormat(8, 8, 32)
    assert parse_format("mxint6", block=16) == MXIntFormat(6, 8, 16)


@pytest.mark.parametrize(("call", "exc", "match"), [
    (lambda: parse_format("mxfp5"), ValueError, r"format must be mxint2 \.\. mxint24 or one of "
                                                 r"mxfp4, .*; not 'mxfp5'"),
    (lambda: parse_format("mxint1"), ValueError, r"bits of an mxint format must be from 2 to 24"),
    (lambda: parse_format(8), TypeError, r"format must be a str"),
    (lambda: parse_format("mxfp4", block=0), ValueError, r"block must be from 1 to 1024, not 0"),
    (lambda: parse_format("mxint8", scale_rounding="rceil"), ValueError,
     r"scale_rounding must be one of 'floor', not 'rceil'"),
    (lambda: parse_format("mxfp4", scale_rounding="ceil"), ValueError,
     r"scale_rounding must be one of 'floor', 'rceil', not 'ceil'"),
    (lambda: MXFPFormat("e3m3"), ValueError, r"element must be one of 'e5m2', .*not 'e3m3'"),
])
def test_parse_format_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
