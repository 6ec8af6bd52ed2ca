"""Element codes to bytes and back, in the layouts PyTorch, torchao and gpt-oss use.

* **FP4 (E2M1)**: two codes per byte, the first element in the low nibble and the second in
  the high nibble: the layout of ``torch.float4_e2m1fn_x2``, of torchao's MXFP4 data and of
  gpt-oss's ``*_blocks`` tensors. The packed axis (the last) halves.
* **FP8 (E4M3, E5M2)**: one code per byte; the bytes view as ``torch.float8_e4m3fn`` or
  ``torch.float8_e5m2`` (OCP's E4M3 is PyTorch's ``e4m3fn``: no infinity, NaN
  ``S.1111.111``).
* **FP6 (E3M2, E2M3)**: by default one code per byte, in the low 6 bits (the two high bits
  are zero): torchao's unpacked FP6 layout. With ``dense=True``, four codes in three bytes
  (6 bits per element, as the format's memory density assumes): codes ``c0 .. c3`` form the
  24-bit word ``c0 | c1 << 6 | c2 << 12 | c3 << 18``, stored low byte first. This is the
  FP4 convention (the first element in the lowest bits) carried to 6 bits; it is not
  torchao's FP6-LLM layout (which splits each code into 2- and 4-bit planes) and OCP v1.0
  defines no byte layout for FP6.
* **MXINT8**: each ``int8`` element as its two's complement byte.

The block scales are separate tensors already (E8M0 codes, one ``uint8`` each).
"""

from __future__ import annotations

import torch

from .quantize import MXFPTensor, MXIntTensor

__all__ = ["PACK_BITS", "pack", "torch_view", "unpack"]

#: Code widths :func:`pack` takes: FP4, FP6 and FP8 (and MXINT8 with ``signed=True``).
PACK_BITS = (4, 6, 8)

#: PyTorch dtypes the packed bytes of each element format view as.
_TORCH_DTYPES = {"e2m1": "float4_e2m1fn_x2", "e4m3": "float8_e4m3fn", "e5m2": "float8_e5m2"}


def _check_bits(bits: object) -> int:
    if not isinstance(bits, int) or isinstance(bits, bool):
        raise TypeError(f"bits must be an integer, one of {PACK_BITS}; not {bits!r}")
    if bits not in PACK_BITS:
        raise ValueError(f"bits must be one of {PACK_BITS}, not {bits}")
    return bits


def _check_integers(name: str, t: object) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, not {type(t).__name__}")
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor, not {t.dtype}")
    if t.dim() == 0:
        raise ValueError(f"{name} must have at least one dimension")
    return t


def _check_range(name: str, t: torch.Tensor, lo: int, hi: int) -> None:
    if t.numel():
        bad = (t < lo) | (t > hi)
        if bool(bad.any()):
            raise ValueError(f"{name} must hold values from {lo} to {hi}, not "
                             f"{int(t[bad].flatten()[0])}")


def pack(codes: torch.Tensor | MXFPTensor | MXIntTensor, bits: int | None = None, *,
         signed: bool = False, dense: bool = False) -> torch.Tensor:
    """Pack element codes into bytes along the last axis.

    Parameters
    ----------
    codes : torch.Tensor, MXFPTensor or MXIntTensor
        Integer codes, or a quantised tensor: an :class:`~golden.MXFPTensor` packs its
        :attr:`~golden.MXFPTensor.codes` (shape ``(*rest, nblocks, k)``) at its element
        width; an :class:`~golden.MXIntTensor` of 8-bit elements (MXINT8) packs its
        mantissas as ``int8`` bytes.
    bits : {4, 6, 8}, optional
        Code width of a plain tensor (taken from the format for a quantised tensor, where a
        different value is refused).
    signed : bool
        For a plain tensor with ``bits=8``: the codes are signed ``-128 .. 127`` (MXINT8
        elements), stored as two's complement bytes.
    dense : bool
        For 6-bit codes: four codes in three bytes (see the module docstring) instead of one
        per byte.

    Returns
    -------
    torch.Tensor
        ``uint8``. FP4: shape ``(..., n // 2)``, element ``2i`` in the low nibble of byte
        ``i`` and element ``2i + 1`` in the high nibble. FP6 with ``dense=True``: shape
        ``(..., 3 * n // 4)``, codes ``4i .. 4i + 3`` in bytes ``3i .. 3i + 2``. FP6 and FP8
        otherwise: shape ``(..., n)``, one code per byte.

    Raises
    ------
    TypeError
        If ``codes`` is not an integer tensor or a quantised tensor, or ``bits`` is not an
        integer.
    ValueError
        If ``bits`` is not 4, 6 or 8 (or disagrees with the quantised tensor's format), a
        code is outside ``0 .. 2**bits - 1`` (``-128 .. 127`` when signed), FP4 codes have an
        odd length along the last axis, dense FP6 codes a length that is not a multiple of 4,
        ``dense`` is asked for codes that are not 6 bits, or an MXIntTensor's elements are
        not 8 bits.
    """
    if isinstance(codes, MXFPTensor | MXIntTensor):
        if isinstance(codes, MXIntTensor):
            if codes.fmt.man_bits != 8:
                raise ValueError(f"only MXINT8 packs to bytes; this MXIntTensor has "
                                 f"{codes.fmt.man_bits}-bit elements")
            width, signed, values = 8, True, codes.mantissa
        else:
            width, values = codes.fmt.element_bits, codes.codes
            if signed:
                raise ValueError("signed must be False for an MXFPTensor (its codes are "
                                 "unsigned)")
        if bits is not None and _check_bits(bits) != width:
            raise ValueError(f"bits must be {width} for this {type(codes).__name__} "
                             f"({codes.fmt.name}), not {bits}")
        bits = width
    else:
        values = _check_integers("codes", codes)
        if bits is None:
            raise TypeError("bits must be given (4, 6 or 8) to pack a plain tensor of codes")
        bits = _check_bits(bits)
    if not isinstance(signed, bool):
        raise TypeError(f"signed must be a bool, not {signed!r}")
    _check_dense(dense, bits)
    if signed:
        if bits != 8:
            raise ValueError(f"signed codes pack only with bits=8 (MXINT8), not bits={bits}")
        _check_range("codes", values, -128, 127)
        return values.to(torch.int8).view(torch.uint8)
    _check_range("codes", values, 0, (1 << bits) - 1)
    if dense:
        n = values.shape[-1]
        if n % 4:
            raise ValueError(f"dense FP6 codes must have a length along the last axis that is "
                             f"a multiple of 4 (four codes in three bytes), not {n}")
        c = values.to(torch.int32).unflatten(-1, (n // 4, 4))
        word = c[..., 0] | (c[..., 1] << 6) | (c[..., 2] << 12) | (c[..., 3] << 18)
        return torch.stack([word & 0xFF, (word >> 8) & 0xFF, word >> 16],
                           dim=-1).flatten(-2).to(torch.uint8)
    values = values.to(torch.uint8)
    if bits != 4:
        return values
    n = values.shape[-1]
    if n % 2:
        raise ValueError(f"FP4 codes must have an even length along the last axis (two per "
                         f"byte), not {n}")
    return values[..., 0::2] | (values[..., 1::2] << 4)


def _check_dense(dense: object, bits: int) -> None:
    if not isinstance(dense, bool):
        raise TypeError(f"dense must be a bool, not {dense!r}")
    if dense and bits != 6:
        raise ValueError(f"dense packing is for 6-bit codes (FP6) only, not bits={bits}")


def unpack(data: torch.Tensor, bits: int, *, signed: bool = False,
           dense: bool = False) -> torch.Tensor:
    """Unpack bytes written by :func:`pack` into one code per element.

    Parameters
    ----------
    data : torch.Tensor
        ``uint8`` bytes (or a ``float8_e4m3fn`` / ``float8_e5m2`` / ``float4_e2m1fn_x2``
        tensor, read as its bytes).
    bits : {4, 6, 8}
        Code width.
    signed : bool
        With ``bits=8``: read each byte as a two's complement ``int8`` (MXINT8).
    dense : bool
        With ``bits=6``: three bytes hold four codes (``pack(..., dense=True)``).

    Returns
    -------
    torch.Tensor
        ``int32`` codes (the dtype :func:`golden.quantize` gives). FP4: shape
        ``(..., 2 * m)``, the low nibble first. Dense FP6: shape ``(..., 4 * m // 3)``.

    Raises
    ------
    TypeError
        If ``data`` is not a tensor of bytes, or ``bits`` is not an integer.
    ValueError
        If ``bits`` is not 4, 6 or 8, ``signed`` is asked with another width, ``dense`` with
        a width other than 6, dense FP6 bytes have a length that is not a multiple of 3, or
        one-per-byte FP6 bytes have either of their two high bits set.
    """
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"data must be a torch.Tensor, not {type(data).__name__}")
    if data.dtype in (torch.float8_e4m3fn, torch.float8_e5m2, torch.float4_e2m1fn_x2):
        data = data.view(torch.uint8)
    if data.dtype != torch.uint8:
        raise TypeError(f"data must be a uint8 tensor of packed codes, not {data.dtype}")
    if data.dim() == 0:
        raise ValueError("data must have at least one dimension")
    bits = _check_bits(bits)
    if not isinstance(signed, bool):
        raise TypeError(f"signed must be a bool, not {signed!r}")
    _check_dense(dense, bits)
    if signed:
        if bits != 8:
            raise ValueError(f"signed codes unpack only with bits=8 (MXINT8), not bits={bits}")
        return data.view(torch.int8).to(torch.int32)
    if dense:
        m = data.shape[-1]
        if m % 3:
            raise ValueError(f"dense FP6 data must have a length along the last axis that is a "
                             f"multiple of 3 (four codes in three bytes), not {m}")
        b = data.to(torch.int32).unflatten(-1, (m // 3, 3))
        word = b[..., 0] | (b[..., 1] << 8) | (b[..., 2] << 16)
        return torch.stack([(word >> s) & 63 for s in (0, 6, 12, 18)], dim=-1).flatten(-2)
    if bits == 6:
        _check_range("data (FP6, one code per byte)", data, 0, 63)
    if bits != 4:
        return data.to(torch.int32)
    low, high = (data & 0xF).to(torch.int32), (data >> 4).to(torch.int32)
    return torch.stack([low, high], dim=-1).flatten(-2)


def torch_view(data: torch.Tensor, element: str) -> torch.Tensor:
    """The packed bytes of ``element`` codes as PyTorch's own dtype: ``float4_e2m1fn_x2``
    (``"e2m1"``), ``float8_e4m3fn`` (``"e4m3"``) or ``float8_e5m2`` (``"e5m2"``). A view: no
    copy.

    Raises
    ------
    TypeError
        If ``data`` is not a ``uint8`` tensor.
    ValueError
        If PyTorch has no dtype for ``element`` (FP6).
    """
    if not isinstance(data, torch.Tensor) or data.dtype != torch.uint8:
        raise TypeError(f"data must be a uint8 tensor, not {getattr(data, 'dtype', data)!r}")
    if element not in _TORCH_DTYPES:
        raise ValueError(f"element must be one of {', '.join(map(repr, _TORCH_DTYPES))} "
                         f"(PyTorch has no dtype for the others), not {element!r}")
    return data.view(getattr(torch, _TORCH_DTYPES[element]))
