"""Parameter checks shared by every golden model, the hardware records and the tools:
each returns the value or raises with a message that names the parameter, the value and
what is allowed."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["check_choice", "check_int"]


def check_int(name: str, value: object, lo: int, hi: int | None = None) -> int:
    """Validate an integer parameter and return it.

    Raises
    ------
    TypeError
        If ``value`` is not an ``int`` (``bool`` is refused too).
    ValueError
        If ``value`` is outside ``[lo, hi]``.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        allowed = f"at least {lo}" if hi is None else f"from {lo} to {hi}"
        raise ValueError(f"{name} must be {allowed}, not {value}")
    return value


def check_choice(name: str, value: object, allowed: Sequence[str]) -> str:
    """Validate a choice parameter and return it.

    Raises
    ------
    TypeError
        If ``value`` is not a ``str``.
    ValueError
        If ``value`` is not one of ``allowed``.
    """
    choices = ", ".join(repr(a) for a in allowed)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, one of {choices}; not {value!r}")
    if value not in allowed:
        raise ValueError(f"{name} must be one of {choices}, not {value!r}")
    return value
