"""Bit-exact integer model of the MXINT matrix-vector engine: ``y = W x``."""

from __future__ import annotations

import torch

from .accumulator import AccumResult, accumulate
from .dequant import dequant_accum
from .dot import dot_product
from .format import MXIntFormat
from .quantize import MXIntTensor

__all__ = ["linear", "linear_blocks", "linear_fp32", "linear_value"]


def linear_blocks(w_man: torch.Tensor, w_exp: torch.Tensor, x_man: torch.Tensor,
                  x_exp: torch.Tensor, fmt_w: MXIntFormat, fmt_x: MXIntFormat, *,
                  guard_bits: int, acc_width: int, partial_sums: int = 1) -> AccumResult:
    """``y = W x`` on MXINT blocks, exactly as the hardware computes it.

    Parameters
    ----------
    w_man, w_exp : torch.Tensor
        Weights, shape ``(N, nb, k)`` and ``(N, nb)``: row ``n`` of W in ``nb`` blocks.
    x_man, x_exp : torch.Tensor
        Activations, shape ``(nb, k)`` and ``(nb,)``.
    fmt_w, fmt_x : MXIntFormat
        Formats of weights and activations (same ``exp_bits`` and ``block``).
    guard_bits, acc_width, partial_sums : int
        Of the accumulator (:func:`golden.accumulator.accumulate`); ``partial_sums=2`` is
        the engine with ``align="interleave"``.

    Returns
    -------
    AccumResult
        Per row ``n``: the dot products of its blocks with the activation blocks
        (:func:`golden.dot_product`, exact) accumulated in block order by the
        accumulator, i.e. ``sum * 2**(exponent - G - 2*bias - (m_w - 2) - (m_x - 2))``.
    """
    d = dot_product(x_man.unsqueeze(0), x_exp.unsqueeze(0), w_man, w_exp, fmt_x, fmt_w)
    return accumulate(d.sum, d.exponent, d.nan, guard_bits=guard_bits, acc_width=acc_width,
                      partial_sums=partial_sums)


def linear(w: MXIntTensor, x: MXIntTensor, *, guard_bits: int, acc_width: int
           ) -> AccumResult:
    """``y = W x`` for ``w = quantize(W, fmt_w)`` (``W`` of shape ``(N, K)``, blocks along K)
    and ``x = quantize(x, fmt_x)`` (shape ``(K,)``); see :func:`linear_blocks`."""
    if w.mantissa.dim() != 3 or x.mantissa.dim() != 2:
        raise ValueError("w must be a quantised (N, K) matrix and x a quantised (K,) vector, "
                         "both blocked along K")
    if w.mantissa.shape[1:] != x.mantissa.shape:
        raise ValueError(f"w has {w.mantissa.shape[1]} blocks of {w.mantissa.shape[2]} per row "
                         f"but x has {x.mantissa.shape[0]} of {x.mantissa.shape[1]}")
    return linear_blocks(w.mantissa, w.exponent, x.mantissa, x.exponent, w.fmt, x.fmt,
                         guard_bits=guard_bits, acc_width=acc_width)


def linear_value(y: AccumResult, fmt_w: MXIntFormat, fmt_x: MXIntFormat, *,
                 guard_bits: int) -> torch.Tensor:
    """The float64 values of :func:`linear`'s results (NaN where flagged); exact while
    ``|sum| < 2**53``."""
    scale = y.exponent - guard_bits - 2 * fmt_w.bias - fmt_w.frac_bits - fmt_x.frac_bits
    v = y.sum.to(torch.float64) * torch.exp2(scale.to(torch.float64))
    return torch.where(y.nan, torch.nan, v)


def linear_fp32(y: AccumResult, fmt_w: MXIntFormat, fmt_x: MXIntFormat, *,
                guard_bits: int) -> torch.Tensor:
    """float32 bit patterns (``int64``) of :func:`linear`'s results, as the engine emits them
    with ``output="fp32"``: each value ``sum * 2**(exponent - G - 2*bias - (m_w - 2) -
    (m_x - 2))`` rounded once to nearest even (:func:`golden.dequant.dequant_accum`:
    subnormals, overflow to ``±inf``, ``+0.0`` for a zero sum, ``0x7FC00000`` for NaN)."""
    if fmt_w.exp_bits != fmt_x.exp_bits:
        raise ValueError(f"weights and activations must share exp_bits, not {fmt_w.exp_bits} "
                         f"and {fmt_x.exp_bits}")
    return dequant_accum(y.sum, y.exponent, y.nan, a_bits=fmt_x.man_bits,
                         b_bits=fmt_w.man_bits, exp_bits=fmt_w.exp_bits, guard_bits=guard_bits)
