"""Bit-exact integer model of the matrix-vector engine, ``y = W x``, on MXINT and OCP MX
minifloat (MXFP8/6/4) blocks, the two operands' formats independent."""

from __future__ import annotations

import torch

from .accumulator import MAX_ACC_WIDTH, AccumResult, accumulate
from .dequant import dequant_accum
from .dot import mx_dot_product, mx_dot_sum_width
from .format import MXFPFormat, MXIntFormat, operand_fields
from .quantize import MXFPTensor, MXIntTensor

__all__ = ["element_field", "elements", "linear", "linear_blocks", "linear_fp32", "linear_value"]


def linear_blocks(w_man: torch.Tensor, w_exp: torch.Tensor, x_man: torch.Tensor,
                  x_exp: torch.Tensor, fmt_w: MXIntFormat | MXFPFormat,
                  fmt_x: MXIntFormat | MXFPFormat, *, guard_bits: int,
                  acc_width: int, partial_sums: int = 1) -> AccumResult:
    """``y = W x`` on MX blocks, exactly as the hardware computes it.

    Parameters
    ----------
    w_man, w_exp : torch.Tensor
        Weights, shape ``(N, nb, k)`` and ``(N, nb)``: row ``n`` of W in ``nb`` blocks
        (MXINT mantissas, or minifloat element codes ``0 .. 2**width - 1``).
    x_man, x_exp : torch.Tensor
        Activations, shape ``(nb, k)`` and ``(nb,)``.
    fmt_w, fmt_x : MXIntFormat or MXFPFormat
        Formats of weights and activations (same ``exp_bits`` and ``block``; 8, the E8M0
        scale, when either is a minifloat format).
    guard_bits, acc_width, partial_sums : int
        Of the accumulator (:func:`golden.accumulator.accumulate`); ``partial_sums=2`` is
        the engine with ``align="interleave"``.

    Returns
    -------
    AccumResult
        Per row ``n``: the dot products of its blocks with the activation blocks
        (:func:`golden.dot.mx_dot_product`, exact; for two MXINT formats
        :func:`golden.dot_product`) accumulated in block order by the accumulator, i.e.
        ``sum * 2**(exponent - G - 2*bias - f_w - f_x)`` (``f = m - 2`` for MXINT, the
        element's ``bias + M - 1`` for a minifloat). A NaN scale code, an E4M3 NaN code
        and an E5M2 infinity or NaN code make the row NaN
        (:func:`golden.dot.mx_dot_product`).

    Raises
    ------
    ValueError
        If the dot results of the two formats are wider than the accumulator's
        ``MAX_ACC_WIDTH`` (62) bits: MXFP8 E5M2 x E5M2, whose sums reach 70 bits at
        k = 32 (the dot product alone takes it, :func:`golden.dot.mx_dot_product`).
    """
    width = mx_dot_sum_width(fmt_x, fmt_w)
    if width > MAX_ACC_WIDTH:
        raise ValueError(f"the dot results of {fmt_x.name} x {fmt_w.name} are {width} bits "
                         f"wide, beyond the accumulator's {MAX_ACC_WIDTH}: only the dot "
                         "product takes this pair")
    d = mx_dot_product(x_man.unsqueeze(0), x_exp.unsqueeze(0), w_man, w_exp, fmt_x, fmt_w)
    return accumulate(d.sum, d.exponent, d.nan, guard_bits=guard_bits, acc_width=acc_width,
                      partial_sums=partial_sums)


def linear(w: MXIntTensor | MXFPTensor, x: MXIntTensor | MXFPTensor, *, guard_bits: int,
           acc_width: int) -> AccumResult:
    """``y = W x`` for ``w = quantize(W, fmt_w)`` (``W`` of shape ``(N, K)``, blocks along K)
    and ``x = quantize(x, fmt_x)`` (shape ``(K,)``); see :func:`linear_blocks`."""
    w_el, x_el = elements(w), elements(x)
    if w_el.dim() != 3 or x_el.dim() != 2:
        raise ValueError("w must be a quantised (N, K) matrix and x a quantised (K,) vector, "
                         "both blocked along K")
    if w_el.shape[1:] != x_el.shape:
        raise ValueError(f"w has {w_el.shape[1]} blocks of {w_el.shape[2]} per row "
                         f"but x has {x_el.shape[0]} of {x_el.shape[1]}")
    return linear_blocks(w_el, w.exponent, x_el, x.exponent, w.fmt, x.fmt,
                         guard_bits=guard_bits, acc_width=acc_width)


def element_field(fmt: MXIntFormat | MXFPFormat) -> str:
    """The name of a block format's element field, in quantised tensors and in the
    hardware's payloads alike: ``"codes"`` for minifloat elements, ``"mantissa"`` for
    MXINT."""
    return "codes" if isinstance(fmt, MXFPFormat) else "mantissa"


def elements(q: MXIntTensor | MXFPTensor) -> torch.Tensor:
    """The elements of a quantised tensor, as stored (its :func:`element_field`): MXINT
    mantissas or minifloat codes."""
    return getattr(q, element_field(q.fmt))


def linear_value(y: AccumResult, fmt_w: MXIntFormat | MXFPFormat,
                 fmt_x: MXIntFormat | MXFPFormat, *,
                 guard_bits: int) -> torch.Tensor:
    """The float64 values of :func:`linear`'s results (NaN where flagged); exact while
    ``|sum| < 2**53``."""
    scale = y.exponent - guard_bits - 2 * fmt_w.bias - fmt_w.frac_bits - fmt_x.frac_bits
    v = y.sum.to(torch.float64) * torch.exp2(scale.to(torch.float64))
    return torch.where(y.nan, torch.nan, v)


def linear_fp32(y: AccumResult, fmt_w: MXIntFormat | MXFPFormat,
                fmt_x: MXIntFormat | MXFPFormat, *, guard_bits: int) -> torch.Tensor:
    """float32 bit patterns (``int64``) of :func:`linear`'s results, as the engine emits them
    with ``output="fp32"``: each value ``sum * 2**(exponent - G - 2*bias - f_w - f_x)``
    rounded once to nearest even (:func:`golden.dequant.dequant_accum`: subnormals,
    overflow to ``±inf``, ``+0.0`` for a zero sum, ``0x7FC00000`` for NaN, which a NaN
    scale or an infinity or NaN element code anywhere in the row gives: an E5M2 infinity
    is NaN here too, :func:`golden.dot.mx_dot_product`)."""
    if fmt_w.exp_bits != fmt_x.exp_bits:
        raise ValueError(f"weights and activations must share exp_bits, not {fmt_w.exp_bits} "
                         f"and {fmt_x.exp_bits}")
    return dequant_accum(y.sum, y.exponent, y.nan, exp_bits=fmt_w.exp_bits,
                         guard_bits=guard_bits, **operand_fields(fmt_x, "a"),
                         **operand_fields(fmt_w, "b"))
