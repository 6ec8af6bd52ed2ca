"""The dequantiser unit's view of :func:`golden.dequantize`: MXINT blocks in, float32 bit
patterns out."""

from __future__ import annotations

import torch

from .format import MXIntFormat
from .quantize import MXIntTensor, dequantize

__all__ = ["QUIET_NAN", "dequant_blocks"]

#: The float32 pattern every element of a NaN block becomes: positive canonical quiet NaN.
QUIET_NAN = 0x7FC00000


def dequant_blocks(mantissa: torch.Tensor, exponent: torch.Tensor, fmt: MXIntFormat
                   ) -> torch.Tensor:
    """float32 bit patterns of MXINT blocks, exactly :func:`golden.dequantize`.

    Parameters
    ----------
    mantissa : torch.Tensor
        Integer tensor, shape ``(n, k)``: m-bit two's complement elements (``-2**(m-1)``
        allowed).
    exponent : torch.Tensor
        Integer tensor, shape ``(n,)``: exponent codes, ``fmt.nan_code`` for NaN blocks.
    fmt : MXIntFormat
        Block format.

    Returns
    -------
    torch.Tensor
        ``int64``, shape ``(n, k)``: unsigned float32 patterns. Each is
        ``P * 2**(E - bias - (m - 2))`` as a float32 — always exact, since the value is a
        multiple of ``2**-149`` with at most 24 significant bits; only
        ``-2**(m-1) * 2**(127 - (m - 2))`` (code 254, ``e = 8``) exceeds the range and is
        ``-inf``. ``P = 0`` gives ``+0.0``; NaN blocks give :data:`QUIET_NAN`.
    """
    if not isinstance(fmt, MXIntFormat):
        raise TypeError(f"fmt must be an MXIntFormat, not {fmt!r}")
    k = fmt.block
    if mantissa.dim() != 2 or mantissa.shape[1] != k:
        raise ValueError(f"mantissa must have shape (n, {k}), not {tuple(mantissa.shape)}")
    n = mantissa.shape[0]
    if tuple(exponent.shape) != (n,):
        raise ValueError(f"exponent must have shape ({n},), not {tuple(exponent.shape)}")
    q = MXIntTensor(mantissa=mantissa.to(torch.int32).reshape(n, 1, k),
                    exponent=exponent.to(torch.int32).reshape(n, 1), fmt=fmt,
                    shape=torch.Size((n, k)), axis=1)
    bits = dequantize(q).view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    return torch.where((exponent == fmt.nan_code).unsqueeze(-1), QUIET_NAN, bits)
