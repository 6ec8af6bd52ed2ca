import pytest

from golden import MXIntFormat


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
