"""MXFP4 weights in the safetensors layout gpt-oss checkpoints use.

A weight ``W`` of shape ``(*rest, n)``, quantised to MXFP4 along its last axis in blocks of
32, is stored as two ``uint8`` tensors:

* ``<name>_blocks``, shape ``(*rest, n // 32, 16)``: the 32 E2M1 codes of each block, two per
  byte, the first element in the low nibble (:func:`golden.pack`);
* ``<name>_scales``, shape ``(*rest, n // 32)``: the block's E8M0 scale code (bias 127,
  255 = NaN).

Element ``j`` of block ``g`` is worth ``e2m1(code) * 2**(scale - 127)``, which is what
``transformers.integrations.mxfp4.convert_moe_packed_tensors`` computes (for gpt-oss it then
transposes the last two axes of the 3-D expert weights). ``n`` must be a multiple of 32:
the layout has no room for the length of a padded axis.

Tensors that are not quantised (biases, norms) may be stored beside them under their own
names. The scale rounding is not part of the layout; this module records it in the file's
metadata (``mxforge.scale_rounding``) and reads ``"floor"`` when it is absent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from .format import MXFPFormat
from .pack import pack, unpack
from .quantize import MXFPTensor, dequantize, quantize

__all__ = ["BLOCKS", "SCALES", "from_blocks", "load_mxfp4", "save_mxfp4", "to_blocks"]

#: Suffixes of the two tensors of a quantised weight.
BLOCKS, SCALES = "_blocks", "_scales"
#: The block size of the layout.
BLOCK = 32
_META = "mxforge.scale_rounding"


def to_blocks(q: MXFPTensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(blocks, scales)`` of an MXFP4 tensor quantised along its last axis in blocks of 32.

    Raises
    ------
    TypeError
        If ``q`` is not an :class:`~golden.MXFPTensor`.
    ValueError
        If it is not E2M1 in blocks of 32 along the last axis with a length that is a
        multiple of 32.
    """
    if not isinstance(q, MXFPTensor):
        raise TypeError(f"q must be an MXFPTensor, not {type(q).__name__}")
    fmt = q.fmt
    if fmt.element.name != "e2m1" or fmt.block != BLOCK:
        raise ValueError(f"q must be MXFP4 in blocks of {BLOCK} (e2m1, k = {BLOCK}), not "
                         f"{fmt.name}")
    if q.axis != len(q.shape) - 1:
        raise ValueError(f"q must be quantised along its last axis ({len(q.shape) - 1}), not "
                         f"axis {q.axis}")
    if q.shape[-1] % BLOCK:
        raise ValueError(f"the last axis must be a multiple of {BLOCK} long, not "
                         f"{q.shape[-1]} (shape {tuple(q.shape)})")
    return pack(q), q.exponent.to(torch.uint8)


def from_blocks(blocks: torch.Tensor, scales: torch.Tensor, *,
                scale_rounding: str = "floor") -> MXFPTensor:
    """The :class:`~golden.MXFPTensor` that ``blocks`` and ``scales`` hold (the inverse of
    :func:`to_blocks`).

    Parameters
    ----------
    blocks : torch.Tensor
        ``uint8``, shape ``(*rest, G, 16)``.
    scales : torch.Tensor
        ``uint8``, shape ``(*rest, G)``.
    scale_rounding : {"floor", "rceil"}
        Recorded in the format; it does not change the values.

    Raises
    ------
    TypeError
        If either is not a ``uint8`` tensor.
    ValueError
        If the shapes do not fit the layout.
    """
    for name, t in (("blocks", blocks), ("scales", scales)):
        if not isinstance(t, torch.Tensor) or t.dtype != torch.uint8:
            raise TypeError(f"{name} must be a uint8 tensor, not "
                            f"{getattr(t, 'dtype', type(t).__name__)}")
    if blocks.dim() < 2 or blocks.shape[-1] != BLOCK // 2:
        raise ValueError(f"blocks must have shape (..., G, {BLOCK // 2}), not "
                         f"{tuple(blocks.shape)}")
    if tuple(scales.shape) != tuple(blocks.shape[:-1]):
        raise ValueError(f"scales must have shape {tuple(blocks.shape[:-1])} to match blocks "
                         f"{tuple(blocks.shape)}, not {tuple(scales.shape)}")
    codes = unpack(blocks, 4)
    shape = torch.Size((*blocks.shape[:-2], blocks.shape[-2] * BLOCK))
    return MXFPTensor(codes=codes, exponent=scales.to(torch.int32),
                      fmt=MXFPFormat("e2m1", block=BLOCK, scale_rounding=scale_rounding),
                      shape=shape, axis=len(shape) - 1)


def save_mxfp4(path: str | os.PathLike, weights: Mapping[str, torch.Tensor | MXFPTensor], *,
               others: Mapping[str, torch.Tensor] | None = None, rounding: str = "even",
               scale_rounding: str = "floor") -> dict[str, MXFPTensor]:
    """Quantise ``weights`` to MXFP4 along their last axis and write them, with ``others``
    as they are, to the safetensors file ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    weights : mapping of str to torch.Tensor or MXFPTensor
        Float tensors of at least one dimension whose last axis is a multiple of 32 long, or
        tensors already quantised to MXFP4 that way. ``name`` is stored as ``name_blocks``
        and ``name_scales``.
    others : mapping of str to torch.Tensor, optional
        Tensors stored unchanged.
    rounding, scale_rounding : str
        As :func:`golden.quantize` and :class:`golden.MXFPFormat` take them.

    Returns
    -------
    dict of str to MXFPTensor
        What was written for each weight.

    Raises
    ------
    TypeError, ValueError
        If a weight has the wrong type, dtype or shape, or two stored names collide; the
        message names the weight.
    OSError
        If ``path`` cannot be written (the message names it).
    """
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    fmt = MXFPFormat("e2m1", block=BLOCK, scale_rounding=scale_rounding)
    if not isinstance(weights, Mapping):
        raise TypeError(f"weights must be a mapping of names to tensors, not "
                        f"{type(weights).__name__}")
    tensors: dict[str, torch.Tensor] = {}
    written: dict[str, MXFPTensor] = {}
    for name, w in weights.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"weight names must be non-empty str, not {name!r}")
        if isinstance(w, MXFPTensor):
            q = w
        elif isinstance(w, torch.Tensor):
            if not w.dtype.is_floating_point:
                raise TypeError(f"weight {name!r} must be a float tensor, not {w.dtype}")
            if w.dim() == 0 or w.shape[-1] % BLOCK:
                raise ValueError(f"weight {name!r} must have a last axis a multiple of {BLOCK} "
                                 f"long, not shape {tuple(w.shape)}")
            q = quantize(w, fmt, axis=-1, rounding=rounding)
        else:
            raise TypeError(f"weight {name!r} must be a torch.Tensor or MXFPTensor, not "
                            f"{type(w).__name__}")
        try:
            blocks, scales = to_blocks(q)
        except ValueError as exc:
            raise ValueError(f"weight {name!r}: {exc}") from None
        tensors[name + BLOCKS] = blocks.contiguous()
        tensors[name + SCALES] = scales.contiguous()
        written[name] = q
    for name, t in (others or {}).items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"others[{name!r}] must be a torch.Tensor, not {type(t).__name__}")
        if name in tensors:
            raise ValueError(f"others[{name!r}] has the name of a quantised weight's tensor")
        tensors[name] = t.detach().contiguous()
    if len(tensors) != 2 * len(written) + len(others or {}):
        raise ValueError("two weights' stored names collide (a name ending in _blocks or "
                         "_scales?)")
    try:
        save_file(tensors, os.fspath(path), metadata={"format": "mxfp4", _META: scale_rounding})
    except SafetensorError as exc:  # an I/O error, reported by safetensors as its own
        raise OSError(f"cannot write {os.fspath(path)}: {exc}") from None
    return written


def load_mxfp4(path: str | os.PathLike, *, dequantized: bool = False
               ) -> dict[str, MXFPTensor | torch.Tensor]:
    """Read a file in the layout of :func:`save_mxfp4` (a gpt-oss checkpoint shard among
    them).

    Parameters
    ----------
    path : str or os.PathLike
        A safetensors file.
    dequantized : bool
        Give each quantised weight as its float32 values (:func:`golden.dequantize`) instead
        of an :class:`~golden.MXFPTensor`.

    Returns
    -------
    dict
        ``name`` for each ``name_blocks`` / ``name_scales`` pair, and every other tensor
        under its own name.

    Raises
    ------
    OSError
        If ``path`` cannot be read.
    ValueError
        If ``path`` is not a safetensors file, if a ``_blocks`` tensor has no ``_scales``
        (or the reverse), or the pair does not fit the layout; the message names the
        weight.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(os.fspath(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(os.fspath(path))
    except SafetensorError as exc:
        raise ValueError(f"{os.fspath(path)} is not a safetensors file: {exc}") from None
    scale_rounding = metadata.get(_META, "floor")
    out: dict[str, MXFPTensor | torch.Tensor] = {}
    paired = set()
    for key in tensors:
        if key.endswith(BLOCKS):
            name = key[:-len(BLOCKS)]
            if name + SCALES not in tensors:
                raise ValueError(f"{os.fspath(path)}: {key} has no {name + SCALES}")
            try:
                q = from_blocks(tensors[key], tensors[name + SCALES],
                                scale_rounding=scale_rounding)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{os.fspath(path)}: weight {name!r}: {exc}") from None
            out[name] = dequantize(q) if dequantized else q
            paired |= {key, name + SCALES}
    for key, t in tensors.items():
        if key in paired:
            continue
        if key.endswith(SCALES):
            raise ValueError(f"{os.fspath(path)}: {key} has no {key[:-len(SCALES)] + BLOCKS}")
        out[key] = t
    return out
