"""The accuracy axis of the density report: SQNR of a number format, on Student-t data
and on a user's weights.

``SQNR = 10 log10(sum x^2 / sum (x - roundtrip(x))^2)`` in dB, where ``roundtrip`` is one
scheme: an :class:`golden.format.MXIntFormat` (blocks along the last axis, nearest-even),
``"bf16"`` (a nearest-even cast) or ``"int8"`` (per-row absmax scale, nearest-even, clamped
to +-127). :func:`load_weights` reads the user's tensors, telling the file's format from
its first bytes rather than its name.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from golden.format import MXIntFormat

from .cache import ResultCache, result_key, source_digest

__all__ = ["T_DOF", "T_SEED", "T_SHAPE", "SqnrCache", "load_weights", "sqnr_db",
           "student_t", "weights_format"]

REPO = Path(__file__).resolve().parent.parent

#: Synthetic data of the accuracy axis.
T_DOF, T_SEED, T_SHAPE = 3, 0, (1024, 1024)



def student_t(*, dof: int = T_DOF, seed: int = T_SEED, shape: tuple[int, ...] = T_SHAPE):
    """Student-t samples, float32: ``Z0 / sqrt((Z1^2 + ... + Z_dof^2) / dof)`` with the
    ``Z`` standard normal from ``torch.Generator().manual_seed(seed)``, drawn in that
    order. The same arguments give the same tensor on every machine."""
    import torch

    g = torch.Generator().manual_seed(seed)
    z = torch.randn((dof + 1, *shape), generator=g, dtype=torch.float64)
    return (z[0] / torch.sqrt((z[1:] ** 2).sum(0) / dof)).to(torch.float32)


def _powers(x, y) -> tuple[float, float]:
    import torch

    x64, y64 = x.to(torch.float64), y.to(torch.float64)
    return float((x64 ** 2).sum()), float(((x64 - y64) ** 2).sum())


def _db(signal: float, noise: float) -> float | None:
    if noise == 0:
        return None  # exact: no finite SQNR
    return 10 * math.log10(signal / noise)


def _roundtrip(x, scheme: str | MXIntFormat):
    """``x`` quantised and brought back, for one scheme: an MXIntFormat (blocks along the
    last axis, nearest-even), ``"bf16"`` (cast, nearest-even) or ``"int8"`` (per row:
    scale = max|x| / 127, nearest-even, clamp to ±127)."""
    import torch

    from golden.quantize import dequantize, quantize

    if isinstance(scheme, MXIntFormat):
        return dequantize(quantize(x, scheme, axis=-1, rounding="even"))
    if scheme == "bf16":
        return x.to(torch.bfloat16).to(torch.float32)
    if scheme == "int8":
        x32 = x.to(torch.float32)
        scale = x32.abs().amax(dim=-1, keepdim=True) / 127
        scale = torch.where(scale > 0, scale, 1)
        return torch.round(x32 / scale).clamp(-127, 127) * scale
    raise ValueError(f"unknown scheme {scheme!r}")


def sqnr_db(tensors: Iterable, scheme: str | MXIntFormat) -> float | None:
    """SQNR in dB of ``scheme`` over ``tensors`` taken together: total signal power over
    total quantisation noise power. ``None`` if the noise is zero."""
    signal = noise = 0.0
    for x in tensors:
        s, n = _powers(x, _roundtrip(x, scheme))
        signal += s
        noise += n
    return _db(signal, noise)


class SqnrCache:
    """:func:`sqnr_db` on the Student-t data and on the weights, through a result cache
    keyed by the scheme, the data (its recipe, or the sha256 of the weights file) and
    the sources of golden/ with the PyTorch version."""

    def __init__(self, cache: ResultCache | None, weights: Path | None) -> None:
        import torch

        self._cache = cache
        self._tools = {"golden": source_digest(REPO / "golden"), "torch": torch.__version__}
        self._weights_id = (hashlib.sha256(weights.read_bytes()).hexdigest()
                            if weights is not None and cache is not None else None)
        self._t3 = None

    def _get(self, scheme: str | MXIntFormat, data: str, compute: Callable[[], float | None]):
        name = scheme.name if isinstance(scheme, MXIntFormat) else scheme
        if self._cache is None:
            return compute()
        key = result_key(verilog="", flow=f"sqnr {name}", options={"data": data},
                         tools=self._tools)
        hit = self._cache.get(key)
        if hit is not None:
            return hit["sqnr_db"]
        value = compute()
        self._cache.put(key, {"sqnr_db": value})
        return value

    def t3(self, scheme: str | MXIntFormat) -> float | None:
        def compute() -> float | None:
            if self._t3 is None:
                self._t3 = student_t()
            return sqnr_db([self._t3], scheme)
        return self._get(scheme, f"student-t dof={T_DOF} seed={T_SEED} shape={T_SHAPE}",
                         compute)

    def weights(self, tensors: list, scheme: str | MXIntFormat) -> float | None:
        return self._get(scheme, f"weights sha256={self._weights_id}",
                         lambda: sqnr_db(tensors, scheme))


#: What a damaged file's message is cut to, so an error stays one readable line.
_REASON_CHARS = 160


def _reason(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0].strip()
    return text if len(text) <= _REASON_CHARS else text[:_REASON_CHARS - 3] + "..."


def _is_text(head: bytes) -> bool:
    """Whether the first bytes of a file are UTF-8 text without control characters other
    than tab, newline and carriage return (a character cut at the end is allowed)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:
            return False
        text = head[:exc.start].decode("utf-8")
    return all(c.isprintable() or c in "\t\n\r" for c in text)


def weights_format(path: Path) -> str:
    """The format of a weights file, told from its first bytes, never from its name.

    Returns
    -------
    str
        ``"safetensors"`` (an 8-byte little-endian header length, then a JSON header that
        fits in the file), ``"torch zip"`` (``torch.save``'s default, a zip archive) or
        ``"torch pickle"`` (``torch.save`` with the legacy format, a pickle).

    Raises
    ------
    ValueError
        One line naming ``--weights`` and the file, if it is missing, a folder, unreadable,
        empty, text, or of no format above.
    """
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise ValueError(f"--weights {path} is a folder, not a file")
        with path.open("rb") as f:
            head = f.read(4096)
    except FileNotFoundError:
        raise ValueError(f"--weights {path} does not exist") from None
    except OSError as exc:
        raise ValueError(f"--weights {path} cannot be read: {exc.strerror or exc}") from None
    if size == 0:
        raise ValueError(f"--weights {path} is empty")
    if head.startswith(b"PK\x03\x04"):
        return "torch zip"
    if head[:1] == b"\x80":  # a pickle, protocol 2 or later
        return "torch pickle"
    text = _is_text(head)
    if len(head) >= 9 and head[8:9] == b"{":
        (length,) = struct.unpack("<Q", head[:8])
        if 8 + length <= size:
            return "safetensors"
        if not text:
            raise ValueError(f"--weights {path} looks like a safetensors file but is damaged: "
                             f"its header claims {length} bytes, the file has {size - 8}")
    if text:
        raise ValueError(f"--weights {path} is a text file, not a .safetensors file or a "
                         "PyTorch state dict")
    raise ValueError(f"--weights {path} is neither a .safetensors file nor a PyTorch state "
                     "dict (unrecognised contents)")


def load_weights(path: Path, *, warn: Callable[[str], None] | None = None) -> list:
    """Every finite 2-D floating-point tensor of a ``.safetensors`` file or a PyTorch state
    dict (``torch.load(weights_only=True)``; a ``"state_dict"`` entry holding the dict is
    looked into), as float32, in sorted name order. The format comes from
    :func:`weights_format`.

    Parameters
    ----------
    path : Path
        The file.
    warn : callable, optional
        Called with one line naming the tensors left out because they hold NaN or Inf.

    Raises
    ------
    ValueError
        One line naming ``--weights`` and the file: it cannot be read (see
        :func:`weights_format`), it is damaged, it is not a state dict, it holds no 2-D
        floating-point tensor, or every such tensor holds NaN or Inf.
    """
    import torch

    kind = weights_format(path)
    try:
        if kind == "safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path))
        else:
            # A file object, not the name: torch.load picks a loader by the extension.
            with path.open("rb") as f:
                state = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as exc:  # each loader raises its own kinds
        raise ValueError(f"--weights {path} looks like a {kind} file but cannot be read: "
                         f"{_reason(exc)}") from None
    if isinstance(state, Mapping) and "state_dict" in state and \
            isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ValueError(f"--weights {path} holds a {type(state).__name__}, not a state dict")
    floating = {name: value for name, value in state.items()
                if isinstance(value, torch.Tensor) and value.is_floating_point()}
    if not floating:
        raise ValueError(f"--weights {path} holds no floating-point tensor "
                         f"({len(state)} entries)")
    matrices = {name: value for name, value in floating.items()
                if value.dim() == 2 and value.numel()}
    if not matrices:
        raise ValueError(f"--weights {path} holds no 2-D floating-point tensor "
                         f"({len(floating)} floating-point tensors, none 2-D)")
    tensors, bad = [], []
    for name in sorted(matrices, key=str):
        value = matrices[name].detach().to(torch.float32)
        if bool(torch.isfinite(value).all()):
            tensors.append(value)
        else:
            bad.append(str(name))
    if not tensors:
        raise ValueError(f"--weights {path}: every 2-D floating-point tensor holds NaN or Inf "
                         f"({', '.join(bad)}); there is nothing to measure")
    if bad and warn is not None:
        warn(f"--weights {path.name}: {len(bad)} tensor{'s' if len(bad) > 1 else ''} with NaN "
             f"or Inf left out of the SQNR: {', '.join(bad)}")
    return tensors
