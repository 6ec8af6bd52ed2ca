"""Quantise float tensors to MXINT blocks and back.

This is both the software quantiser users call and the reference the cast and
dequantiser hardware must equal bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .format import MXIntFormat
from .rounding import check_rounding

__all__ = ["MXIntTensor", "dequantize", "quantize", "shared_exponent"]


@dataclass(frozen=True)
class MXIntTensor:
    """A tensor quantised to MXINT blocks.

    Members
    -------
    mantissa : torch.Tensor
        ``int32``, shape ``(*rest, nblocks, k)``: the input with the quantised axis moved
        last, padded with zeros to a multiple of ``k`` and split into blocks. Each element
        is in ``[-(2**(m-1) - 1), 2**(m-1) - 1]``.
    exponent : torch.Tensor
        ``int32``, shape ``(*rest, nblocks)``: biased shared exponent codes, ``fmt.nan_code``
        for a block that held a NaN or an infinity (its mantissas are then zero).
    fmt : MXIntFormat
        The block format.
    shape : torch.Size
        Shape of the tensor that was quantised.
    axis : int
        The axis along which blocks were formed (non-negative).
    """

    mantissa: torch.Tensor
    exponent: torch.Tensor
    fmt: MXIntFormat
    shape: torch.Size
    axis: int

    @property
    def nan(self) -> torch.Tensor:
        """Boolean tensor, shape ``(*rest, nblocks)``: which blocks are NaN."""
        return self.exponent == self.fmt.nan_code


def _pow2(exp: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Exact ``2**exp`` built from the bits of ``dtype``; ``exp`` must be a normal exponent."""
    if dtype == torch.float64:
        return ((exp.to(torch.int64) + 1023) << 52).view(torch.float64)
    return ((exp.to(torch.int32) + 127) << 23).view(torch.float32)


def _scale(x: torch.Tensor, exp: torch.Tensor) -> torch.Tensor:
    """``x * 2**exp`` with at most one rounding, done only when the result is below the
    smallest normal number (so that it cannot change an integer rounding decision).

    ``2**exp`` may lie outside the float range while the product does not, so the power
    is applied as two halves; both halves move the value in the same direction.
    """
    lo_exp, hi_exp = (-1022, 1023) if x.dtype == torch.float64 else (-126, 127)
    if exp.numel() == 0 or (int(exp.min()) >= lo_exp and int(exp.max()) <= hi_exp):
        return x * _pow2(exp, x.dtype)  # the usual case: one exact multiply
    lo = torch.div(exp, 2, rounding_mode="floor")
    return x * _pow2(lo, x.dtype) * _pow2(exp - lo, x.dtype)


def shared_exponent(amax: torch.Tensor) -> torch.Tensor:
    """``floor(log2(amax))`` for finite ``amax > 0``, exact.

    Computed from the float's own exponent field (``torch.frexp``), never from ``log2``:
    float32 ``log2`` rounds up to an integer for values a few ulps below a power of two,
    which would pick an exponent one too large.
    """
    return torch.frexp(amax).exponent.to(torch.int32) - 1


def _work_dtype(x: torch.Tensor) -> torch.dtype:
    if x.dtype == torch.float64:
        return torch.float64
    if x.dtype in (torch.float32, torch.float16, torch.bfloat16):
        return torch.float32
    raise TypeError(f"x must be a floating-point tensor, not {x.dtype}")


def quantize(
    x: torch.Tensor, fmt: MXIntFormat, axis: int = -1, rounding: str = "even"
) -> MXIntTensor:
    """Quantise ``x`` to MXINT blocks of ``fmt.block`` elements along ``axis``.

    Parameters
    ----------
    x : torch.Tensor
        float32, bfloat16, float16 (all computed exactly as float32) or float64. It may
        require grad (an ``nn.Parameter``): it is read detached, and the result carries no
        autograd history. It may be empty (a zero-length axis gives zero blocks).
    fmt : MXIntFormat
        Target format ``MXINT(m, e, k)``.
    axis : int
        Axis along which consecutive ``k`` elements share an exponent. The axis is padded
        with zeros to a multiple of ``k``.
    rounding : {"even", "away", "zero", "floor"}
        How an element is rounded to an integer: nearest with ties to even, nearest with
        ties away from zero, toward zero, toward minus infinity.

    Returns
    -------
    MXIntTensor

    Notes
    -----
    Per block, with ``bias = 2**(e-1) - 1``:

    1. ``amax = max |x_i|``. A NaN or an infinity anywhere gives ``E = 2**e - 1`` (NaN)
       and zero mantissas. ``amax = 0`` gives ``E = 0`` and zero mantissas.
    2. ``E = clamp(floor(log2(amax)) + bias, 0, 2**e - 2)``, with ``floor(log2)`` exact.
    3. ``P_i = round(x_i / 2**(E - bias - (m - 2)))`` in the chosen mode, computed exactly,
       subnormal inputs included.
    4. ``P_i = clamp(P_i, -(2**(m-1) - 1), 2**(m-1) - 1)`` (symmetric saturation). Only the
       element that rounds up to ``2**(m-1)``, or any element of a block whose exponent was
       clamped at the top, saturates.
    """
    if not isinstance(fmt, MXIntFormat):
        raise TypeError(f"fmt must be an MXIntFormat, not {fmt!r}")
    check_rounding(rounding)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, not {type(x).__name__}")
    if x.dim() == 0:
        raise ValueError("x must have at least one dimension")
    if not -x.dim() <= axis < x.dim():
        raise ValueError(f"axis must be in [{-x.dim()}, {x.dim() - 1}] for a {x.dim()}-D x, "
                         f"not {axis}")
    axis %= x.dim()
    shape = x.shape
    k = fmt.block
    # Detached: the result is integers, and the in-place rounding below must not meet a
    # tensor that requires grad (an nn.Parameter, for instance).
    xf = x.detach().to(_work_dtype(x)).movedim(axis, -1)
    pad = -xf.shape[-1] % k
    if pad:
        xf = torch.nn.functional.pad(xf, (0, pad))
    # Block count given explicitly: a -1 cannot be inferred when the tensor is empty.
    xf = xf.reshape(*xf.shape[:-1], xf.shape[-1] // k, k)

    amax = xf.abs().amax(dim=-1)
    nan = ~torch.isfinite(amax)
    exp = (shared_exponent(amax) + fmt.bias).clamp(0, fmt.max_code)
    exp = torch.where(amax > 0, exp, 0)

    y = _scale(xf, (fmt.bias + fmt.frac_bits - exp).unsqueeze(-1))
    if rounding == "even":
        q = torch.round(y, out=y)
    elif rounding == "zero":
        q = torch.trunc(y, out=y)
    elif rounding == "floor":
        # A negative element so small that scaling underflowed to -0.0 still floors to -1.
        q = torch.where(xf < 0, torch.floor(y).clamp(max=-1), torch.floor(y))
    else:
        t = torch.trunc(y)
        q = t + torch.sign(y) * ((y - t).abs() >= 0.5)
    q = q.clamp_(-fmt.max_man, fmt.max_man)
    if bool(nan.any()):
        q = torch.where(nan.unsqueeze(-1), 0, q)
        exp = torch.where(nan, fmt.nan_code, exp)
    q, exp = q.to(torch.int32), exp.to(torch.int32)
    return MXIntTensor(mantissa=q, exponent=exp, fmt=fmt, shape=shape, axis=axis)


def dequantize(q: MXIntTensor) -> torch.Tensor:
    """Return the float32 tensor that ``q`` encodes, in the shape that was quantised.

    Each element is ``P * 2**(E - bias - (m - 2))`` rounded once to float32 (nearest,
    ties to even; exact unless it falls below the normal range). Elements of NaN blocks
    are NaN. Padding is removed.
    """
    if not isinstance(q, MXIntTensor):
        raise TypeError(f"q must be an MXIntTensor, not {type(q).__name__}")
    fmt = q.fmt
    scale = (q.exponent.to(torch.int32) - fmt.bias - fmt.frac_bits).unsqueeze(-1)
    # The first factor keeps |P| >= 1 normal; only the second multiply can round.
    first = scale.clamp(min=-126)
    y = q.mantissa.to(torch.float32) * _pow2(first, torch.float32) * _pow2(scale - first,
                                                                            torch.float32)
    y = torch.where(q.nan.unsqueeze(-1), torch.nan, y)
    y = y.reshape(*y.shape[:-2], y.shape[-2] * y.shape[-1])
    n = q.shape[q.axis]
    return y[..., :n].movedim(-1, q.axis).reshape(q.shape)
