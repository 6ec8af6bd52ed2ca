import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.fields import pack, unpack
from sim.scoreboard import Scoreboard
from sim.tb_stream import inject_lsb_fault

FIELDS = [
    {"name": "mantissa", "offset": 0, "width": 3, "signed": True, "count": 4, "stride": 3},
    {"name": "exponent", "offset": 12, "width": 5, "signed": False},
]


@given(m=st.lists(st.integers(-4, 3), min_size=4, max_size=4), e=st.integers(0, 31))
def test_pack_unpack_round_trip(m, e):
    word = pack(FIELDS, {"mantissa": m, "exponent": e})
    assert 0 <= word < 1 << 17
    assert unpack(FIELDS, word) == {"mantissa": m, "exponent": e}


def test_pack_refuses_out_of_range():
    with pytest.raises(ValueError, match=r"field mantissa = 4 does not fit signed\(3\)"):
        pack(FIELDS, {"mantissa": [4, 0, 0, 0], "exponent": 0})


def test_scoreboard_counts_wrong_missing_and_extra():
    sb = Scoreboard("o", [{"sum": 1}, {"sum": 2}, {"sum": 3}])
    assert sb.receive({"sum": 1})
    assert not sb.receive({"sum": 0})  # a dropped LSB
    assert sb.mismatches == 1 and "output #1" in sb.reports[0] and sb.pending == 1
    assert not sb.passed
    sb.receive({"sum": 3})
    sb.receive({"sum": 4})  # nothing more was expected
    assert sb.mismatches == 2 and sb.unexpected == 1


def test_fault_injection_changes_odd_values():
    exp = {"o": [{"sum": 3, "exponent": 1}, {"sum": 2, "exponent": 1}],
           "p": [{"mantissa": [1, 2, -3], "exponent": 0}]}
    bad = inject_lsb_fault(exp)
    assert bad["o"] == [{"sum": 2, "exponent": 1}, {"sum": 2, "exponent": 1}]
    assert bad["p"] == [{"mantissa": [0, 2, -4], "exponent": 0}]
