"""In-order scoreboard: every received payload must equal the next expected one, bit for bit.

Pure Python, so unit tests can show it catches a wrong value without a simulator.
"""

from __future__ import annotations

from collections import deque

__all__ = ["Scoreboard"]


class Scoreboard:
    """Compare a stream's outputs, in order, with expected payload dicts.

    Parameters
    ----------
    name : str
        Stream name, used in reports.
    expected : iterable of dict
        Expected payloads, in order.
    max_reports : int
        How many mismatches are kept in :attr:`reports` (all are counted).

    Members
    -------
    checked : int
        Payloads compared so far.
    mismatches : int
        Payloads that differed from the expectation in any field.
    reports : list of str
        Description of the first ``max_reports`` mismatches.
    """

    def __init__(self, name: str, expected, *, max_reports: int = 10) -> None:
        self.name = name
        self._expected = deque(expected)
        self._max_reports = max_reports
        self.checked = 0
        self.mismatches = 0
        self.unexpected = 0
        self.reports: list[str] = []

    @property
    def pending(self) -> int:
        """Expected payloads not received yet."""
        return len(self._expected)

    def receive(self, got: dict, *, stimulus: str = "") -> bool:
        """Check one received payload; return whether it matched."""
        if not self._expected:
            self.unexpected += 1
            self.mismatches += 1
            self._report(f"{self.name}: output #{self.checked} was not expected: {got}")
            self.checked += 1
            return False
        want = self._expected.popleft()
        ok = got == want
        if not ok:
            self.mismatches += 1
            diff = {k: (got.get(k), want.get(k)) for k in want if got.get(k) != want.get(k)}
            self._report(f"{self.name}: output #{self.checked} differs (field: got, want): "
                         f"{diff}" + (f"; input {stimulus}" if stimulus else ""))
        self.checked += 1
        return ok

    def _report(self, text: str) -> None:
        if len(self.reports) < self._max_reports:
            self.reports.append(text)

    @property
    def passed(self) -> bool:
        """True when everything expected arrived and matched."""
        return self.mismatches == 0 and not self._expected
