"""The cast unit's view of :func:`golden.quantize`: IEEE bit patterns in, MXINT blocks out.

The cast hardware receives raw float32 or bfloat16 bit patterns. :func:`cast_blocks`
reinterprets them as floats and calls :func:`golden.quantize`, so the software quantiser
and the hardware share one definition. The target is an MXINT format (signed mantissas) or
an OCP MX minifloat format (element codes under an E8M0 scale).
"""

from __future__ import annotations

import torch

from .format import MXFPFormat, MXIntFormat
from .quantize import quantize
from .rounding import check_rounding

__all__ = ["FLOAT_FORMATS", "bits_to_float", "cast_blocks", "check_float_format",
           "float_to_bits"]

#: IEEE formats the cast unit reads, and their width in bits. ``bf16`` is the upper half
#: of a float32 (8 exponent bits, 7 fraction bits), converted to float32 exactly.
FLOAT_FORMATS = {"fp32": 32, "bf16": 16}


def check_float_format(float_format: object) -> str:
    """Validate a float format name and return it.

    Raises
    ------
    ValueError
        If ``float_format`` is not a key of :data:`FLOAT_FORMATS`.
    """
    if float_format not in FLOAT_FORMATS:
        allowed = ", ".join(repr(f) for f in FLOAT_FORMATS)
        raise ValueError(f"float_format must be one of {allowed}, not {float_format!r}")
    return float_format  # type: ignore[return-value]


def bits_to_float(bits: torch.Tensor, float_format: str = "fp32") -> torch.Tensor:
    """Reinterpret unsigned bit patterns (any integer dtype) as float32 or bfloat16."""
    check_float_format(float_format)
    width = FLOAT_FORMATS[float_format]
    b = bits.to(torch.int64) & ((1 << width) - 1)
    b = torch.where(b >> (width - 1) != 0, b - (1 << width), b)  # as two's complement
    if float_format == "fp32":
        return b.to(torch.int32).view(torch.float32)
    return b.to(torch.int16).view(torch.bfloat16)


def float_to_bits(x: torch.Tensor) -> torch.Tensor:
    """Unsigned bit patterns (int64) of a float32 or bfloat16 tensor."""
    if x.dtype == torch.float32:
        return x.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    if x.dtype == torch.bfloat16:
        return x.view(torch.int16).to(torch.int64) & 0xFFFF
    raise TypeError(f"x must be float32 or bfloat16, not {x.dtype}")


def cast_blocks(bits: torch.Tensor, fmt: MXIntFormat | MXFPFormat, rounding: str = "even",
                float_format: str = "fp32") -> tuple[torch.Tensor, torch.Tensor]:
    """Quantise blocks of IEEE bit patterns exactly as :func:`golden.quantize` does.

    Parameters
    ----------
    bits : torch.Tensor
        Integer tensor, shape ``(n, fmt.block)``: unsigned bit patterns, one block a row.
    fmt : MXIntFormat or MXFPFormat
        Target format: MXINT, or an OCP MX minifloat format (its ``scale_rounding``
        included).
    rounding : {"even", "away", "zero", "floor"}
        Element rounding mode.
    float_format : {"fp32", "bf16"}
        How the patterns are read.

    Returns
    -------
    mantissa : torch.Tensor
        Shape ``(n, k)``: MXINT, the signed mantissas (``int32``); MXFP, the unsigned
        element codes (``int32``, ``0 .. 2**width - 1``, sign in the top bit, ``-0`` kept).
    exponent : torch.Tensor
        ``int32``, shape ``(n,)``: the shared exponent (MXFP: the E8M0 scale) codes, the
        all-ones code for a block that holds a NaN or an infinity.
    """
    if not isinstance(fmt, MXIntFormat | MXFPFormat):
        raise TypeError(f"fmt must be an MXIntFormat or MXFPFormat, not {fmt!r}")
    check_rounding(rounding)
    if bits.dim() != 2 or bits.shape[1] != fmt.block:
        raise ValueError(f"bits must have shape (n, {fmt.block}), not {tuple(bits.shape)}")
    q = quantize(bits_to_float(bits, float_format), fmt, axis=-1, rounding=rounding)
    elements = q.codes.to(torch.int32) if isinstance(fmt, MXFPFormat) else q.mantissa
    return elements.reshape(-1, fmt.block), q.exponent.reshape(-1)
