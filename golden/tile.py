"""Bit-exact model of the weight-stationary tile: ``y_t = W x_t`` for several tokens, the
optional float32 bias add, and the tile's MX output (its float32 results quantised along the
output rows)."""

from __future__ import annotations

import torch

from .accumulator import PARTIAL_SUMS, AccumResult
from .cast import cast_blocks
from .format import MXIntFormat
from .fp_mac import FLOAT_FORMATS, fp_add
from .linear import linear_blocks

__all__ = ["tile_bias", "tile_blocks", "tile_mx"]


def tile_blocks(w_man: torch.Tensor, w_exp: torch.Tensor, x_man: torch.Tensor,
                x_exp: torch.Tensor, fmt_w: MXIntFormat, fmt_x: MXIntFormat, *,
                guard_bits: int, acc_width: int, blocks_per_cycle: int = 1) -> AccumResult:
    """``y_t = W x_t`` for every token ``t``: :func:`golden.linear.linear_blocks` per token,
    each row's ``nb`` block dot products accumulated in ``B = blocks_per_cycle`` partial sums
    (block ``j`` into partial sum ``j mod B``, combined at the row's end:
    :func:`golden.accumulator.accumulate` with ``partial_sums=B``).

    Parameters
    ----------
    w_man, w_exp : torch.Tensor
        The weight tile, shape ``(R, nb, k)`` and ``(R, nb)``.
    x_man, x_exp : torch.Tensor
        ``T`` tokens, shape ``(T, nb, k)`` and ``(T, nb)``.
    fmt_w, fmt_x : MXIntFormat
        Formats of weights and activations (same ``exp_bits`` and ``block``).
    guard_bits, acc_width : int
        Of the accumulators.
    blocks_per_cycle : int
        ``B``, the blocks of a row each lane takes per cycle: 1 (default: one running sum
        in block order), 2 or 4; it must divide ``nb``. Each of a lane's ``B`` accumulators
        sums every ``B``-th block; their results are combined once per row (largest
        exponent, floor shifts, add, range check). The error stays below ``(nb - 1)``
        units of ``2**(exponent - G)`` for every ``B``.

    Returns
    -------
    AccumResult
        Shape ``(T, R)``: row ``n`` of token ``t`` is the exact block dot products of
        row ``n`` with ``x_t`` accumulated in block order (in ``B`` partial sums),
        ``sum * 2**(exponent - G - 2*bias - f_w - f_x)``.

    Raises
    ------
    ValueError
        If ``blocks_per_cycle`` is not 1, 2 or 4, or does not divide ``nb``.
    """
    if isinstance(blocks_per_cycle, bool) or blocks_per_cycle not in PARTIAL_SUMS:
        raise ValueError(f"blocks_per_cycle must be 1, 2 or 4, not {blocks_per_cycle!r}")
    nb = w_exp.shape[-1]
    if nb % blocks_per_cycle:
        raise ValueError(f"blocks_per_cycle ({blocks_per_cycle}) must divide the blocks per "
                         f"row, not {nb}")
    ys = [linear_blocks(w_man, w_exp, x_man[t], x_exp[t], fmt_w, fmt_x,
                        guard_bits=guard_bits, acc_width=acc_width,
                        partial_sums=blocks_per_cycle)
          for t in range(x_man.shape[0])]
    return AccumResult(sum=torch.stack([y.sum for y in ys]),
                       exponent=torch.stack([y.exponent for y in ys]),
                       nan=torch.stack([y.nan for y in ys]))


def tile_mx(bits: torch.Tensor, fmt_out: MXIntFormat) -> tuple[torch.Tensor, torch.Tensor]:
    """The tile's ``output="mx"``: float32 results quantised into MXINT blocks along the
    output rows.

    Parameters
    ----------
    bits : torch.Tensor
        float32 bit patterns (:func:`golden.linear.linear_fp32`), shape ``(T, R)`` with
        ``R`` a multiple of ``fmt_out.block``.
    fmt_out : MXIntFormat
        The output format; rows ``i*k .. i*k+k-1`` of a token form block ``i``.

    Returns
    -------
    mantissa, exponent : torch.Tensor
        Shape ``(T, R/k, k)`` and ``(T, R/k)``: :func:`golden.cast.cast_blocks` of the
        patterns with nearest-even rounding, i.e. :func:`golden.quantize` of each token's
        float32 output vector along its last axis, the next layer's input blocks.
    """
    t, r = bits.shape
    k = fmt_out.block
    if r % k:
        raise ValueError(f"rows ({r}) must be a multiple of the block ({k})")
    man, exp = cast_blocks(bits.reshape(-1, k), fmt_out, rounding="even")
    return man.reshape(t, r // k, k), exp.reshape(t, r // k)


def tile_bias(bits: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The tile's bias add: ``round(y + b)`` in IEEE float32 for each float32 result.

    Parameters
    ----------
    bits : torch.Tensor
        float32 bit patterns of the results (:func:`golden.linear.linear_fp32`), shape
        ``(T, R)`` (or any shape ending in ``R``), as int64.
    bias : torch.Tensor
        float32 bit patterns of the ``R`` rows' biases, shape ``(R,)``, as int64.

    Returns
    -------
    torch.Tensor
        int64 float32 patterns, the shape of ``bits``: :func:`golden.fp_mac.fp_add`, i.e.
        rounded to nearest even, subnormals kept, overflow to infinity, ``-0`` only for
        ``-0 + -0``, and every NaN result (a NaN in, or ``inf - inf``) the canonical quiet
        NaN ``0x7fc00000``. On every other result this is torch's float32 ``y + bias`` bit
        for bit, which ``golden.nn.MXLinear`` computes; torch's NaN results keep an input's
        payload and sign or, for ``inf - inf``, a CPU-dependent default NaN.
    """
    bits = torch.as_tensor(bits, dtype=torch.int64)
    bias = torch.as_tensor(bias, dtype=torch.int64)
    return fp_add(bits, bias.expand_as(bits), FLOAT_FORMATS["fp32"])
