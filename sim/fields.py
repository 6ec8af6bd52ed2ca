"""Pack and unpack stream payloads using the fields a manifest lists.

Pure Python: no simulator import, so the same code serves cocotb and unit tests.
"""

from __future__ import annotations

__all__ = ["pack", "unpack", "used_bits"]


def _to_raw(value: int, width: int, signed: bool, name: str) -> int:
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    if not lo <= value <= hi:
        raise ValueError(f"field {name} = {value} does not fit {'signed' if signed else 'unsigned'}"
                         f"({width})")
    return value & ((1 << width) - 1)


def _from_raw(raw: int, width: int, signed: bool) -> int:
    raw &= (1 << width) - 1
    return raw - (1 << width) if signed and raw >> (width - 1) else raw


def pack(fields: list[dict], values: dict) -> int:
    """Payload word for ``values`` (field name -> int, or list of ints for arrays)."""
    word = 0
    for f in fields:
        value = values[f["name"]]
        if "count" in f:
            if len(value) != f["count"]:
                raise ValueError(f"field {f['name']} needs {f['count']} elements, not "
                                 f"{len(value)}")
            for i, v in enumerate(value):
                word |= _to_raw(int(v), f["width"], f["signed"], f["name"]) << (
                    f["offset"] + i * f["stride"])
        else:
            word |= _to_raw(int(value), f["width"], f["signed"], f["name"]) << f["offset"]
    return word


def unpack(fields: list[dict], word: int) -> dict:
    """Field values of a payload word (arrays as lists), the inverse of :func:`pack`."""
    out = {}
    for f in fields:
        if "count" in f:
            out[f["name"]] = [_from_raw(word >> (f["offset"] + i * f["stride"]), f["width"],
                                        f["signed"]) for i in range(f["count"])]
        else:
            out[f["name"]] = _from_raw(word >> f["offset"], f["width"], f["signed"])
    return out


def used_bits(fields: list[dict]) -> int:
    """Bits of a word the fields occupy, from bit 0: the pad bits of a wider word start
    here."""
    return max((f["offset"] + (f["count"] - 1) * f["stride"] + f["width"] if "count" in f
                else f["offset"] + f["width"] for f in fields), default=0)
