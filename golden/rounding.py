"""Rounding modes shared by every unit that drops low bits.

All modes act on exact integers: ``round_shift(v, s, mode)`` is ``v / 2**s`` rounded to an
integer, which is what a hardware arithmetic right shift plus a rounding increment computes.
"""

from __future__ import annotations

import torch

__all__ = ["ROUNDING_MODES", "check_rounding", "round_shift"]

#: ``even``: nearest, ties to even; ``away``: nearest, ties away from zero;
#: ``zero``: toward zero (truncate magnitude); ``floor``: toward minus infinity.
ROUNDING_MODES = ("even", "away", "zero", "floor")

#: Shifts are clamped here; inputs must satisfy ``|v| < 2**61`` so the clamp is exact.
_MAX_SHIFT = 62


def check_rounding(rounding: object) -> str:
    """Validate a rounding-mode name and return it.

    Raises
    ------
    ValueError
        If ``rounding`` is not one of :data:`ROUNDING_MODES`.
    """
    if rounding not in ROUNDING_MODES:
        allowed = ", ".join(repr(m) for m in ROUNDING_MODES)
        raise ValueError(f"rounding must be one of {allowed}, not {rounding!r}")
    return rounding  # type: ignore[return-value]


def round_shift(v: torch.Tensor, shift: torch.Tensor | int, rounding: str) -> torch.Tensor:
    """Return ``v / 2**shift`` rounded to an integer with the given mode.

    Parameters
    ----------
    v : torch.Tensor
        Integer tensor (any integer dtype, computed in int64), ``|v| < 2**61``.
    shift : torch.Tensor or int
        Non-negative shift, broadcastable to ``v``. Any size is allowed: a shift past the
        width of ``v`` leaves only the sign to round.
    rounding : str
        One of :data:`ROUNDING_MODES`.

    Notes
    -----
    With ``q = v >> s`` (arithmetic, i.e. floor) and remainder ``r = v - q * 2**s`` in
    ``[0, 2**s)``, the increment added to ``q`` is::

        floor: 0
        zero:  r != 0 and v < 0
        away:  r > h, or r == h and v >= 0             (h = 2**(s-1), only when s > 0)
        even:  r > h, or r == h and q odd
    """
    check_rounding(rounding)
    v = v.to(torch.int64)
    s = torch.as_tensor(shift, dtype=torch.int64)
    if bool((s < 0).any()):
        raise ValueError("shift must be non-negative")
    s = s.clamp(max=_MAX_SHIFT)
    q = v >> s
    if rounding == "floor":
        return q
    r = v - (q << s)
    if rounding == "zero":
        return q + ((r != 0) & (v < 0)).to(torch.int64)
    half = (torch.ones_like(s) << s) >> 1
    pos = s > 0
    if rounding == "away":
        up = (r > half) | ((r == half) & (v >= 0))
    else:
        up = (r > half) | ((r == half) & ((q & 1) == 1))
    return q + (up & pos).to(torch.int64)
