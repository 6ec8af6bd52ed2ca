"""PyTorch layers that compute exactly what the ``linear`` engine computes.

:class:`MXLinear` is the software twin of :class:`hw.linear.MXIntLinear` with
``output="fp32"``, on any operand formats the engine takes (MXINT or OCP MX minifloat, per
operand: :func:`golden.parse_format`): its product equals the engine's float32 output bit
for bit, so a model whose ``nn.Linear`` layers are replaced by :func:`quantize_model`
computes what the FPGA would compute. :class:`MXConv` does the same for ``nn.Conv1d`` /
``nn.Conv2d`` on the unfolded input. Everything else in the model (attention softmax,
LayerNorm, GELU, the bias addition) stays in float32. :func:`quantize_model` returns a
:class:`QuantizeReport` of what it replaced and what it skipped, and why.
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .accumulator import (
    DEFAULT_GUARD_BITS,
    accumulate,
    check_acc_widths,
    default_guard_bits,
    resolve_acc_width,
)
from .dot import mx_dot_sum_range
from .format import MXFPFormat, MXIntFormat, operand_fields
from .linear import elements, linear_fp32
from .quantize import MXFPTensor, MXIntTensor, dequantize, quantize
from .rounding import check_rounding

__all__ = ["DEFAULT_GUARD_BITS", "STATUSES", "LayerReport", "MXConv", "MXLinear",
           "QuantizeReport",
           "default_acc_width", "mx_linear_fp32", "quantize_model"]


#: Largest number of (token, row) pairs whose block dot products the exact path holds at
#: once (each takes ``nb * k`` int64 products), to bound memory.
_PAIRS_PER_CHUNK = 1 << 14


def default_acc_width(*, w_bits: int, x_bits: int, block: int,
                      guard_bits: int = DEFAULT_GUARD_BITS) -> int:
    """The engine's default accumulator width for MXINT operands: the dot product's result
    width plus ``guard_bits`` plus 8, at most 62
    (:func:`golden.accumulator.resolve_acc_width`; for any formats,
    :func:`check_acc_widths` with ``acc_width=None``)."""
    return resolve_acc_width(a_bits=x_bits, b_bits=w_bits, block=block,
                             guard_bits=guard_bits, acc_width=None)


#: A block format (:func:`golden.parse_format`) and a tensor quantised to one.
Format = MXIntFormat | MXFPFormat
Quantized = MXIntTensor | MXFPTensor


def _acc_widths(weights: Format, activations: Format, *, guard_bits: int | None,
                acc_width: int | None) -> tuple[int, int]:
    """``(guard_bits, acc_width)`` checked for the engine with these operands (the
    activations on its ``x`` side, the weights on ``w``) by the rule the hardware records
    use, :func:`golden.accumulator.check_acc_widths`; each resolved when None, as the
    engine's record resolves it (:func:`golden.accumulator.default_guard_bits`, then the
    default width). A pair whose dot results alone are wider than the accumulator
    (E5M2 x E5M2) is refused there, by name."""
    ops = {**operand_fields(activations, "a"), **operand_fields(weights, "b"),
           "block": weights.block}
    if guard_bits is None:
        guard_bits = default_guard_bits(**ops)
    return check_acc_widths(**ops, guard_bits=guard_bits, acc_width=acc_width)


def _nan_blocks(q: Quantized) -> torch.Tensor:
    """bool ``(*rest, nb)``: the blocks that make a dot product NaN: the NaN scale code, or
    (MXFP) an infinity or NaN element code (:func:`golden.dot.mx_dot_product`)."""
    nan = q.exponent == q.fmt.nan_code
    if isinstance(q, MXFPTensor):
        nan = nan | (q.special != 0).any(dim=-1)
    return nan


def _patterns_to_float(bits: torch.Tensor) -> torch.Tensor:
    """float32 tensor from unsigned 32-bit patterns held in int64."""
    signed = torch.where(bits >= 1 << 31, bits - (1 << 32), bits)
    return signed.to(torch.int32).view(torch.float32)


def _block_values(q: Quantized) -> torch.Tensor:
    """float64 values ``P * 2**(E - bias - f)`` of every element (``f = m - 2`` for MXINT,
    the element's ``bias + M - 1`` for a minifloat, whose ``P`` is its fixed-point integer),
    exact (the exponent of any code of up to 8 bits and ``P`` of up to 33 bits, E5M2's, fit
    a float64), shape ``(*rest, nb * k)``."""
    fmt = q.fmt
    scale = (q.exponent.to(torch.float64) - fmt.bias - fmt.frac_bits).unsqueeze(-1)
    v = q.mantissa.to(torch.float64) * torch.exp2(scale)
    return v.reshape(*v.shape[:-2], v.shape[-2] * v.shape[-1])


def mx_linear_fp32(w: Quantized, x: Quantized, *, guard_bits: int, acc_width: int
                   ) -> torch.Tensor:
    """``x @ W.T`` as the ``linear`` engine computes it with ``output="fp32"``.

    Parameters
    ----------
    w : MXIntTensor or MXFPTensor
        Weights ``W`` of shape ``(N, K)`` quantised along ``K`` (``axis=1``).
    x : MXIntTensor or MXFPTensor
        Activations of shape ``(T, K)`` quantised along ``K`` (``axis=1``), the same
        ``exp_bits`` (8 when either is a minifloat format) and ``block``; the two formats
        are independent otherwise (MXFP4 weights with MXFP8 activations, MXINT with MXFP).
    guard_bits, acc_width : int
        Of the engine's accumulators.

    Returns
    -------
    torch.Tensor
        float32, shape ``(T, N)``: for each token ``t`` and row ``n``,
        :func:`golden.linear.linear_fp32` of :func:`golden.linear.linear_blocks` of row
        ``n`` with token ``t``, bit for bit.

    Notes
    -----
    Every element is read in its fixed-point view: an integer ``P`` worth
    ``P * 2**(E - bias - f)`` (MXINT: the mantissa, ``f = m - 2``; MXFP: the decoded code,
    ``f`` the element's ``bias + M - 1``, :mod:`golden.minifloat`). A NaN scale code, or an
    infinity or NaN element code (E5M2, E4M3) anywhere in a row or token, makes its results
    NaN, as :func:`golden.dot.mx_dot_product` says.

    The engine's result is the exact integer recurrence of :mod:`golden.accumulator` over
    the ``nb`` block dot products ``S = sum_i P_x,i P_w,i``, rounded once to float32. Two
    paths give it:

    * **lossless pairs.** When, for one token and one row, the largest exponent sum
      ``E_x,j + E_w,j`` over all blocks minus the smallest over blocks where both operands
      have a nonzero element is at most ``guard_bits`` (:func:`_lossy` finds it exactly for
      every pair), no alignment drops a bit; and when the accumulator cannot saturate and
      the exact sum fits 53 bits, the accumulator's result is the exact sum
      ``V = sum_i x_i w_i`` of the element values. A float64 matrix product gives ``V``
      exactly (every product and partial sum is a multiple of the smallest product's unit
      and below ``2**53`` of it), and the IEEE conversion rounds it once to float32
      (nearest even, subnormals, overflow to infinity; ``+0.0`` for zero). Both bounds
      are checked once per call from the formats' widths; when that fails (an E5M2
      operand), per pair by :func:`_too_wide`.
    * **every other pair** (alignment may drop bits, a NaN block, or the bounds above fail)
      runs the integer model itself: the block dot products ``S`` (:func:`_block_sums`),
      :func:`golden.accumulator.accumulate` and :func:`golden.linear.linear_fp32`.

    On all-MiniLM-L6-v2 with 6-bit blocks of 16 about 1 % of the pairs take the second
    path, mostly the [CLS] token, whose activations hold outliers (``python -m
    benchmarks.nn_formats`` times each pair of formats and counts the pairs on each path).
    """
    for name, q in (("w", w), ("x", x)):
        if not isinstance(q, MXIntTensor | MXFPTensor):
            raise TypeError(f"{name} must be an MXIntTensor or MXFPTensor, not "
                            f"{type(q).__name__}")
    if w.exponent.dim() != 2 or x.exponent.dim() != 2 or w.axis != 1 or x.axis != 1:
        raise ValueError("w and x must be 2-D tensors quantised along their second axis")
    fw, fx = w.fmt, x.fmt
    _check_formats(fw, fx)
    if w.exponent.shape[1] != x.exponent.shape[1]:
        raise ValueError(f"w has {w.shape[1]} columns but x has {x.shape[1]}")
    _acc_widths(fw, fx, guard_bits=guard_bits, acc_width=acc_width)
    device = x.exponent.device
    n_rows, n_tok = w.exponent.shape[0], x.exponent.shape[0]
    if n_tok == 0 or n_rows == 0:
        return torch.zeros((n_tok, n_rows), dtype=torch.float32, device=device)

    slow = torch.nonzero(_integer_pairs(w, x, guard_bits=guard_bits, acc_width=acc_width))
    out = torch.empty((n_tok, n_rows), dtype=torch.float32, device=device)
    if slow.shape[0] < n_tok * n_rows:
        out = (_block_values(x) @ _block_values(w).T).to(torch.float32)
        # A zero sum is +0.0 in the engine; float64 may hold -0.0 (from 0 * -x products),
        # and -0.0 + 0.0 is +0.0.
        out.add_(0.0)
    if slow.shape[0]:
        bits = _pairs_fp32(w, x, slow[:, 0], slow[:, 1], guard_bits=guard_bits,
                           acc_width=acc_width)
        out[slow[:, 0], slow[:, 1]] = _patterns_to_float(bits)
    return out


def _integer_pairs(w: Quantized, x: Quantized, *, guard_bits: int, acc_width: int
                   ) -> torch.Tensor:
    """``(T, N)`` bool: the pairs :func:`mx_linear_fp32` computes by the integer model:
    :func:`_lossy` ones, and (when the formats' widths alone do not bound the sums)
    :func:`_too_wide` ones."""
    # Bounds that hold for every pair: |A| <= nb * 2**G * max|S| must stay in the
    # accumulator, and the exact sum in units of the smallest product must fit 53 bits.
    s_lo, s_hi = mx_dot_sum_range(x.fmt, w.fmt, w.fmt.block)
    a_max = w.exponent.shape[1] * max(-s_lo, s_hi) << guard_bits
    lossy = _lossy(w, x, guard_bits=guard_bits)
    if a_max <= (1 << (acc_width - 1)) - 1 and a_max < 1 << 53:
        return lossy
    return lossy | _too_wide(w, x, guard_bits=guard_bits, acc_width=acc_width)


#: Largest row length :func:`_too_wide` bounds (its float64 sums' relative error stays
#: below ``2**-23``); longer rows take the integer path for every pair.
_MAX_BOUND_LENGTH = 1 << 30


def _too_wide(w: Quantized, x: Quantized, *, guard_bits: int, acc_width: int
              ) -> torch.Tensor:
    """``(T, N)`` bool: pairs that the float64 product might not hold exactly, or whose
    accumulator might saturate, even when lossless (:func:`_lossy`).

    * **accumulator.** For a lossless pair every intermediate ``A`` is an exact partial
      sum of the ``S_j << G`` scaled by ``2**(E_j - E_max) <= 1``, so
      ``|A| <= 2**G * B`` with ``B = sum_i |P_x,i| |P_w,i|`` over the whole row; safe
      when ``2**G * B < 2**(W - 1)``.
    * **float64.** Every element value is ``P * 2**(E - bias - f)``, a multiple of
      ``2**l`` with ``l`` its lowest set bit; with ``l_x`` the smallest over a token's
      nonzero elements and ``l_w`` over a row's, every product and partial sum of the pair
      is a multiple of ``2**(l_x + l_w)`` of magnitude at most ``V' = sum_i |x_i| |w_i|``:
      exact in float64 when ``V' < 2**(53 + l_x + l_w)``.

    ``B`` and ``V'`` come from float64 matrix products of the ``|P|`` and of the ``|x|``,
    ``|w|`` (each exact: integers below ``2**33``, powers of two times them), whose results
    are within a relative ``K * 2**-53 <= 2**-23`` of the true sums in any summation
    order; the tests allow ``2**-19`` for it, so a pair they pass is safe."""
    n_tok, n_rows = x.exponent.shape[0], w.exponent.shape[0]
    k_len = w.exponent.shape[1] * w.fmt.block
    if k_len >= _MAX_BOUND_LENGTH:
        return torch.ones((n_tok, n_rows), dtype=torch.bool, device=x.exponent.device)
    slack = 1 + 2.0 ** -19
    px = x.mantissa.to(torch.int64).reshape(n_tok, k_len)
    pw = w.mantissa.to(torch.int64).reshape(n_rows, k_len)
    b = px.abs().to(torch.float64) @ pw.abs().to(torch.float64).T
    wide = b >= (1 << (acc_width - 1)) / (1 << guard_bits) / slack
    v = _block_values(x).abs() @ _block_values(w).abs().T
    low = [_lowest_bit(q, p) for q, p in ((x, px), (w, pw))]
    return wide | (v >= torch.exp2((low[0].unsqueeze(1) + low[1].unsqueeze(0) + 53)
                                   .to(torch.float64)) / slack)


def _lowest_bit(q: Quantized, p: torch.Tensor) -> torch.Tensor:
    """Per row of ``q`` (its fixed-point integers ``p``, shape ``(rows, K)``): the exponent
    of the lowest set bit over its nonzero element values ``P * 2**(E - bias - f)``
    (int64; a large number for an all-zero row, whose products are all zero)."""
    tz = torch.log2((p & -p).clamp(min=1).to(torch.float64)).to(torch.int64)  # exact: 2**n
    e = (q.exponent.to(torch.int64) - q.fmt.bias - q.fmt.frac_bits).repeat_interleave(
        q.fmt.block, dim=1)
    return torch.where(p != 0, tz + e, 1 << 20).amin(dim=1)


#: Exponent depth below a row's largest code that :func:`_lossy` resolves exactly (less
#: for very long rows, so that ``2**(2 * B * depth)`` stays in float64); a row with a
#: nonzero block deeper than this takes the integer path for every pair.
_DEPTH = 40


def _lossy(w: Quantized, x: Quantized, *, guard_bits: int) -> torch.Tensor:
    """``(T, N)`` bool: pairs whose accumulation may drop a bit or that hold a NaN block
    (:func:`_nan_blocks`).

    A pair is lossless when ``M - lo <= guard_bits``, with ``M`` the largest exponent sum
    ``E_x,j + E_w,j`` over all blocks (the accumulator's final maximum) and ``lo`` the
    smallest over blocks where both operands have a nonzero element. Both come from float64
    matrix products of powers of two, exactly: with exponents taken relative to the token's
    and the row's largest (``a_j, b_j <= 0``) and ``B`` (8 or 16) bits such that
    ``nb < 2**B``, ``floor(log2(sum_j 2**(B (a_j + b_j))) / B) = max_j (a_j + b_j)``
    because the sum lies between its largest term and ``nb`` times it; ``floor(log2(s) / B)``
    is read from the float's exponent field. Exponents are clamped at ``-depth`` for ``M``
    (which can only raise it: the answer stays safe); a row or token whose nonzero blocks go
    deeper than that is marked lossy whole.
    """
    nb = w.exponent.shape[1]
    if nb >= 1 << 16:
        return torch.ones((x.exponent.shape[0], w.exponent.shape[0]), dtype=torch.bool,
                          device=x.exponent.device)
    shift = 3 if nb < 1 << 8 else 4  # B = 2**shift
    depth = min(_DEPTH, 500 >> shift)
    x_e, w_e = x.exponent.to(torch.int64), w.exponent.to(torch.int64)
    x_nz, w_nz = (x.mantissa != 0).any(dim=-1), (w.mantissa != 0).any(dim=-1)
    x_rel, w_rel = x_e - x_e.amax(dim=1, keepdim=True), w_e - w_e.amax(dim=1, keepdim=True)
    x_bad = (x_nz & (x_rel < -depth)).any(dim=1) | _nan_blocks(x).any(dim=1)
    w_bad = (w_nz & (w_rel < -depth)).any(dim=1) | _nan_blocks(w).any(dim=1)
    x_rel, w_rel = x_rel.clamp(min=-depth), w_rel.clamp(min=-depth)

    def pow2(e: torch.Tensor) -> torch.Tensor:
        return torch.exp2((e << shift).to(torch.float64))

    def floor_log(s: torch.Tensor) -> torch.Tensor:
        # floor((E - 1023) / B) + 1024 / B from the biased exponent field E of s >= 0, in
        # place on the bits (s == 0 gives 0, below any real value's).
        bits = s.view(torch.int64)
        return bits.add_(1 << 52).bitwise_right_shift_(52 + shift)

    top = floor_log(pow2(x_rel) @ pow2(w_rel).T)
    # No block pair with both operands nonzero: every product is zero, nothing is lost.
    top += floor_log(torch.where(x_nz, pow2(-x_rel), 0.0)
                     @ torch.where(w_nz, pow2(-w_rel), 0.0).T)
    lossy = top > guard_bits + (2048 >> shift)
    lossy[x_bad] = True
    lossy[:, w_bad] = True
    return lossy


def _block_sums(x: Quantized, w: Quantized, tok: torch.Tensor, row: torch.Tensor
                ) -> torch.Tensor:
    """``S`` of :func:`golden.dot.mx_dot_product` for every block of the pairs
    ``(tok[i], row[i])``: int64, shape ``(P, nb)`` (specials count as 0; their rows are
    NaN anyway).

    Formed in float32 when every partial sum is an integer below ``2**24`` in magnitude
    (then exact in any order), else in int64. A token paired with many rows (more than one
    in 16) gets all its rows at once from block-wise matrix products; other pairs are
    gathered and multiplied element by element.
    """
    lo, hi = mx_dot_sum_range(x.fmt, w.fmt, w.fmt.block)
    small = max(-lo, hi) < 1 << 24
    kind = torch.float32 if small else torch.int64
    x_m, w_m = x.mantissa.to(kind), w.mantissa.to(kind)
    n_rows, nb, _ = w_m.shape
    out = torch.empty((tok.shape[0], nb), dtype=torch.int64, device=tok.device)
    dense = torch.bincount(tok, minlength=x_m.shape[0]) * 16 > n_rows
    if not small:
        dense.zero_()
    sparse = torch.nonzero(~dense[tok]).flatten()
    for start in range(0, sparse.shape[0], _PAIRS_PER_CHUNK):
        i = sparse[start:start + _PAIRS_PER_CHUNK]
        out[i] = (x_m[tok[i]] * w_m[row[i]]).sum(dim=-1).to(torch.int64)
    tokens = torch.nonzero(dense).flatten()
    if tokens.shape[0]:
        w_t = w_m.permute(1, 2, 0)  # (nb, k, N)
        step = max(1, (_PAIRS_PER_CHUNK * 64) // (n_rows * nb))
        where = torch.full((x_m.shape[0],), -1, dtype=torch.int64, device=tok.device)
        for start in range(0, tokens.shape[0], step):
            chunk = tokens[start:start + step]
            where[chunk] = torch.arange(chunk.shape[0], device=tok.device)
            blocks = torch.bmm(x_m[chunk].transpose(0, 1), w_t)  # (nb, C, N)
            i = torch.nonzero(where[tok] >= 0).flatten()
            out[i] = blocks[:, where[tok[i]], row[i]].T.to(torch.int64)
            where[chunk] = -1
    return out


def _pairs_fp32(w: Quantized, x: Quantized, tok: torch.Tensor, row: torch.Tensor, *,
                guard_bits: int, acc_width: int) -> torch.Tensor:
    """float32 patterns of the engine's result for the pairs ``(tok[i], row[i])``, by the
    integer model itself: the block dot products (:func:`_block_sums`), then
    :func:`golden.accumulator.accumulate` and :func:`golden.linear.linear_fp32`."""
    s = _block_sums(x, w, tok, row)
    x_e, w_e = x.exponent.to(torch.int64), w.exponent.to(torch.int64)
    x_nan, w_nan = _nan_blocks(x), _nan_blocks(w)
    out = []
    for start in range(0, tok.shape[0], _PAIRS_PER_CHUNK * 4):
        t, n = tok[start:start + _PAIRS_PER_CHUNK * 4], row[start:start + _PAIRS_PER_CHUNK * 4]
        y = accumulate(s[start:start + _PAIRS_PER_CHUNK * 4], x_e[t] + w_e[n],
                       x_nan[t] | w_nan[n], guard_bits=guard_bits, acc_width=acc_width)
        out.append(linear_fp32(y, w.fmt, x.fmt, guard_bits=guard_bits))
    return torch.cat(out)


def _conv1d_class() -> type | None:
    """transformers' ``Conv1D`` (GPT-2's linear layers, weight stored ``(in, out)``), when
    transformers is loaded; a model that holds one has loaded it. ``golden`` never imports
    transformers itself."""
    module = sys.modules.get("transformers.pytorch_utils")
    return getattr(module, "Conv1D", None)


def _linear_kind(layer: object) -> str | None:
    """``"Linear"`` for an ``nn.Linear`` (subclasses included), ``"Conv1D"`` for
    transformers' ``Conv1D``, else None."""
    if isinstance(layer, nn.Linear):
        return "Linear"
    conv1d = _conv1d_class()
    if conv1d is not None and isinstance(layer, conv1d):
        return "Conv1D"
    return None


def _fused_kernels_off(module: nn.Module, args: tuple) -> None:
    """Forward pre-hook of every :class:`MXLinear`; does nothing.

    ``nn.TransformerEncoderLayer`` in eval mode without grad runs one fused kernel that
    reads ``linear1.weight`` and ``linear2.weight`` instead of calling the layers; it falls
    back to calling them when any of its submodules has a forward hook. This hook is that
    hook: an ``MXLinear`` is never bypassed.
    """
    return None


class MXLinear(nn.Module):
    """An ``nn.Linear`` computed as the ``linear`` engine computes it, on MXINT or OCP MX
    minifloat operands.

    The weights are quantised once, here, along ``in_features`` (each row of ``W`` in
    blocks of ``k``). At every call the input is quantised along its last axis with the
    activation format, and each output element is the engine's ``output="fp32"`` result
    (:func:`mx_linear_fp32`): the exact block dot products, accumulated by the engine's
    accumulator, rounded once to float32. The bias, if any, is added afterwards in float32
    (the engine has no bias; this addition rounds once more). The result is converted to
    the input's dtype when that is not float32.

    Arithmetic: each element is an integer ``P`` in its format's fixed-point view (MXINT:
    the mantissa, worth ``P * 2**(E - bias - (m - 2))``; MXFP: the decoded minifloat code,
    worth ``P * 2**(X - 127 - f)``, ``f`` the element's ``bias + M - 1``); each block dot
    product ``S = sum_i P_x,i P_w,i`` is exact, the accumulator aligns and sums the ``S``
    with ``guard_bits`` guard bits in ``acc_width`` bits, and the sum is rounded once to
    float32 (nearest even). A NaN scale, or an infinity or NaN element code (E5M2, E4M3),
    in the input or in a weight row makes that output NaN. This is
    :func:`golden.linear.linear_blocks` and :func:`golden.linear.linear_fp32`, bit for bit.

    It reads like an ``nn.Linear``: ``weight`` (the dequantised weight, shape
    ``(out_features, in_features)``), ``bias``, ``in_features``, ``out_features``. Its
    ``state_dict`` holds the weight's elements (``w_mantissa``, MXINT two's complement
    mantissas, or ``w_codes``, MXFP element codes ``0 .. 2**width - 1``), its scales
    ``w_exponent`` (shared exponent codes; E8M0 for MXFP) and ``bias``; it loads into an
    ``MXLinear`` of the same shape and formats. ``.to(device)`` moves it; ``.to(dtype)``
    casts ``weight`` and ``bias`` as it would an ``nn.Linear``'s, while the product still
    comes from the integer mantissas and exponents (so it does not change), and the bias,
    rounded to that dtype, is added in float32.

    No autograd: the layer holds integers (buffers, not parameters) and its output does not
    require grad. Its buffers live on the device of the original weight; inputs must be on
    that device.

    Parameters
    ----------
    linear : torch.nn.Linear or transformers.pytorch_utils.Conv1D
        The layer to replace (read, not modified). A ``Conv1D`` is a linear layer that
        stores its weight transposed, ``(in, out)``; it is quantised as the ``nn.Linear``
        with weight ``linear.weight.T``, blocks along its input features.
    weights, activations : MXIntFormat or MXFPFormat
        Formats of ``W`` and of the input (:func:`golden.parse_format`), each MXINT or
        OCP MX minifloat (MXFP8 E5M2/E4M3, MXFP6 E3M2/E2M3, MXFP4), independently: MXFP4
        weights with MXFP8 activations, MXINT with MXFP, ... They must share ``block``, and
        ``exp_bits`` (8, the E8M0 scale, when either is a minifloat format). E5M2 x E5M2 is
        refused: its dot results (70 bits at k = 32) exceed the engine's accumulator.
    rounding : {"even", "away", "zero", "floor"}
        Rounding of both quantisers (:func:`golden.quantize`).
    guard_bits : int or None
        Of the accumulators, at most ``62 - w`` with ``w`` the dot result's width
        (:func:`golden.accumulator.check_acc_widths`). Default: the engine's,
        :func:`golden.accumulator.default_guard_bits`: 8, or ``62 - w`` when that is less
        (an E5M2 operand: 6 for E5M2 x E4M3 at k = 32).
    acc_width : int or None
        Of the accumulators (default: the engine's, :func:`default_acc_width`).

    Members
    -------
    weight : torch.Tensor
        Read-only: ``dequantize(w_q)``, shape ``(out_features, in_features)``, in the
        module's float dtype (float32 unless cast). Code that multiplies by it itself
        (``nn.MultiheadAttention`` with its ``out_proj``) gets a float product with the
        quantised weight, not the engine's arithmetic. Assigning to it raises
        ``AttributeError``; the product reads ``w_mantissa`` (or ``w_codes``) and
        ``w_exponent``.
    bias : torch.Tensor or None
        float32 copy of the original bias (a buffer).
    in_features, out_features : int
        As ``nn.Linear``'s.
    source : str
        ``"Linear"`` or ``"Conv1D"``: the kind of layer it was built from.
    w_q : MXIntTensor or MXFPTensor
        The quantised weights (rebuilt from the buffers ``w_mantissa`` or ``w_codes``, and
        ``w_exponent``).

    Raises
    ------
    TypeError
        ``linear`` is neither an ``nn.Linear`` nor a transformers ``Conv1D``, or a format
        is not an ``MXIntFormat`` or ``MXFPFormat``.
    ValueError
        The formats differ in ``exp_bits`` or ``block``, the pair is one the engine refuses
        (E5M2 x E5M2), or a parameter is out of range.
    """

    def __init__(self, linear: nn.Module, *, weights: Format, activations: Format,
                 rounding: str = "even", guard_bits: int | None = None,
                 acc_width: int | None = None) -> None:
        super().__init__()
        source = _linear_kind(linear)
        if source is None:
            raise TypeError(f"linear must be a torch.nn.Linear or a transformers Conv1D, not "
                            f"{type(linear).__name__}")
        self.source = source
        w = linear.weight if source == "Linear" else linear.weight.T
        self._quantize_weight(w, linear.bias, weights=weights, activations=activations,
                              rounding=rounding, guard_bits=guard_bits, acc_width=acc_width)

    def _quantize_weight(self, w: torch.Tensor, bias: torch.Tensor | None, *,
                         weights: Format, activations: Format, rounding: str,
                         guard_bits: int | None, acc_width: int | None,
                         shape: tuple[int, ...] | None = None) -> None:
        """Check the formats and widths, quantise the ``(out, in)`` matrix ``w`` along
        ``in`` and hold it, ``bias`` and the dequantised weight (in ``shape``, default
        ``w``'s) as buffers."""
        _check_formats(weights, activations)
        self.rounding = check_rounding(rounding)
        # The engine's limits, from the one rule the hardware records use.
        self.guard_bits, self.acc_width = _acc_widths(weights, activations,
                                                      guard_bits=guard_bits,
                                                      acc_width=acc_width)
        self.out_features, self.in_features = w.shape
        self.weights, self.activations = weights, activations
        q = quantize(w, weights, axis=1, rounding=rounding)
        self.register_buffer(self._elements_key, elements(q))
        self.register_buffer("w_exponent", q.exponent)
        bias = None if bias is None else bias.detach().to(torch.float32).clone()
        self.register_buffer("bias", bias)
        # The dequantised weight behind ``weight``: derived from the two buffers above, so
        # not saved (persistent=False) and rebuilt when a state_dict is loaded; a buffer so
        # that ``.to()`` moves and casts it with the rest.
        self.register_buffer("w_dequantized", dequantize(q).reshape(shape or w.shape),
                             persistent=False)
        self.register_forward_pre_hook(_fused_kernels_off)

    @property
    def weight(self) -> torch.Tensor:
        """The dequantised weight, ``(out_features, in_features)``, read-only."""
        return self.w_dequantized

    def __setattr__(self, name: str, value: object) -> None:
        if name == "weight":
            raise AttributeError(
                "MXLinear.weight is read-only: it is the dequantised MX weight, rebuilt from "
                f"{self._elements_key} and w_exponent; build a new MXLinear from a float "
                "layer to change the weights")
        super().__setattr__(name, value)

    @property
    def _elements_key(self) -> str:
        """The buffer of the weight's elements: ``w_codes`` (MXFP) or ``w_mantissa``."""
        return "w_codes" if isinstance(self.weights, MXFPFormat) else "w_mantissa"

    @property
    def w_q(self) -> MXIntTensor | MXFPTensor:
        """The quantised weight, blocks along ``in_features``."""
        shape = torch.Size((self.out_features, self.in_features))
        if isinstance(self.weights, MXFPFormat):
            return MXFPTensor(codes=self.w_codes, exponent=self.w_exponent, fmt=self.weights,
                              shape=shape, axis=1)
        return MXIntTensor(mantissa=self.w_mantissa, exponent=self.w_exponent,
                           fmt=self.weights, shape=shape, axis=1)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        # Mantissas, element codes and exponent codes outside the format would be read as
        # other numbers: refuse them (as load_state_dict refuses a wrong shape), then
        # rebuild ``weight``.
        fmt = self.weights
        el_key = prefix + self._elements_key
        man, exp = state_dict.get(el_key), state_dict.get(prefix + "w_exponent")
        el_lo, el_hi = ((0, (1 << fmt.element_bits) - 1) if isinstance(fmt, MXFPFormat)
                        else (-fmt.max_man, fmt.max_man))
        found = []
        for key, t, lo, hi in ((el_key, man, el_lo, el_hi),
                               (prefix + "w_exponent", exp, 0, fmt.nan_code)):
            if t is None or not isinstance(t, torch.Tensor):
                continue
            if t.is_floating_point() or t.is_complex():
                found.append(f"{key} must be an integer tensor, not {t.dtype}")
            elif t.numel() and (int(t.min()) < lo or int(t.max()) > hi):
                found.append(f"{key} holds values outside {lo} .. {hi} of {fmt.name}: "
                             f"{int(t.min())} .. {int(t.max())}; was it saved from an "
                             f"MXLinear of another format?")
        if found:  # load_state_dict raises; nothing of this layer is loaded
            error_msgs.extend(found)
            return
        n_errors = len(error_msgs)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        if len(error_msgs) == n_errors:  # no wrong shape
            with torch.no_grad():
                self.w_dequantized.copy_(dequantize(self.w_q).reshape(self.w_dequantized.shape))

    def quantize_input(self, x: torch.Tensor) -> MXIntTensor | MXFPTensor:
        """The input as the engine receives it: quantised along the last axis, flattened to
        ``(tokens, in_features)``."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, not {type(x).__name__}")
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must end in in_features={self.in_features}, not shape "
                             f"{tuple(x.shape)}")
        return quantize(x.reshape(-1, self.in_features), self.activations, axis=1,
                        rounding=self.rounding)

    def forward_raw(self, x: torch.Tensor) -> torch.Tensor:
        """The engine's float32 outputs ``W x`` (no bias), shape ``(*x.shape[:-1], N)``."""
        y = mx_linear_fp32(self.w_q, self.quantize_input(x), guard_bits=self.guard_bits,
                           acc_width=self.acc_width)
        return y.reshape(*x.shape[:-1], self.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.forward_raw(x)
        if self.bias is not None:
            y = y + self.bias.to(torch.float32)
        return y if x.dtype == torch.float32 else y.to(x.dtype)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, weights={self.weights.name}, "
                f"activations={self.activations.name}, rounding={self.rounding!r}, "
                f"guard_bits={self.guard_bits}, acc_width={self.acc_width}")


def _conv_kind(layer: object) -> str | None:
    """``"Conv1d"`` / ``"Conv2d"`` for those torch layers (subclasses included), else None."""
    if isinstance(layer, nn.Conv1d):
        return "Conv1d"
    if isinstance(layer, nn.Conv2d):
        return "Conv2d"
    return None


def _conv_unsupported(layer: nn.Module) -> str:
    """Why :class:`MXConv` cannot compute ``layer``, or ``""`` if it can."""
    if isinstance(layer, nn.Conv1d | nn.Conv2d) and layer.groups != 1:
        return (f"groups={layer.groups}: only groups=1 is computed (the engine's blocks "
                f"run along all in-channels x kernel)")
    if _conv_kind(layer) is None:
        return "only Conv1d and Conv2d are computed"
    return ""


class MXConv(MXLinear):
    """An ``nn.Conv1d`` or ``nn.Conv2d`` (``groups=1``) computed as the ``linear`` engine
    computes it on the unfolded input.

    The weight ``(out_channels, in_channels, *kernel_size)`` is read as the matrix
    ``(out_channels, in_channels * prod(kernel_size))`` (``weight.reshape(out, -1)``) and
    quantised like an :class:`MXLinear`'s, in blocks of ``k`` along in-channels x kernel
    (channel-major, then kernel rows, then columns: ``F.unfold``'s order). At every call
    the input is padded as the layer pads it (``padding``, ``padding_mode``), unfolded
    into one column of ``in_channels * prod(kernel_size)`` values per output position
    (``F.unfold`` with the layer's ``stride`` and ``dilation``; a ``Conv1d`` as a
    ``Conv2d`` of height 1), and each column is one token of :class:`MXLinear`: quantised
    with the activation format, multiplied by the engine's exact block dot products and
    accumulator, rounded once to float32, plus the bias in float32. The output has the
    layer's shape and the input's dtype.

    It reads like the convolution: ``weight`` (dequantised, in the layer's shape),
    ``bias``, ``in_channels``, ``out_channels``, ``kernel_size``, ``stride``, ``padding``,
    ``dilation``, ``groups``, ``padding_mode``; ``in_features`` and ``out_features`` are
    the matrix's. ``state_dict`` and ``.to()`` are as :class:`MXLinear`'s.

    Parameters
    ----------
    conv : torch.nn.Conv1d or torch.nn.Conv2d
        The layer to replace (read, not modified), with ``groups=1``; any stride,
        padding (``"same"`` included), dilation and padding mode.
    weights, activations, rounding, guard_bits, acc_width
        As :class:`MXLinear`.

    Raises
    ------
    TypeError
        ``conv`` is not an ``nn.Conv1d`` or ``nn.Conv2d``, or a format is not an
        ``MXIntFormat`` or ``MXFPFormat``.
    ValueError
        ``conv.groups`` is not 1, or as :class:`MXLinear`.
    """

    def __init__(self, conv: nn.Module, *, weights: Format, activations: Format,
                 rounding: str = "even", guard_bits: int | None = None,
                 acc_width: int | None = None) -> None:
        nn.Module.__init__(self)
        kind = _conv_kind(conv)
        if kind is None:
            raise TypeError(f"conv must be a torch.nn.Conv1d or Conv2d, not "
                            f"{type(conv).__name__}")
        if conv.groups != 1:
            raise ValueError(f"conv.groups must be 1, not {conv.groups}")
        self.source = kind
        for name in ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                     "dilation", "groups", "padding_mode"):
            setattr(self, name, getattr(conv, name))
        # (left, right) per spatial axis, last axis first: what F.pad takes (the layer's
        # own, "same" included).
        self._pad = tuple(conv._reversed_padding_repeated_twice)
        w = conv.weight
        self._quantize_weight(w.reshape(w.shape[0], -1), conv.bias, weights=weights,
                              activations=activations, rounding=rounding,
                              guard_bits=guard_bits, acc_width=acc_width,
                              shape=tuple(w.shape))

    def unfold(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """The columns the engine multiplies, ``(N, positions, in_features)``, and the
        output's spatial shape, for a batched input ``x``."""
        spatial = 1 if self.source == "Conv1d" else 2
        if self.padding_mode == "zeros":
            x = nn.functional.pad(x, self._pad)
        else:
            x = nn.functional.pad(x, self._pad, mode=self.padding_mode)
        if spatial == 1:  # a Conv1d is a Conv2d of height 1
            x = x.unsqueeze(2)
            kernel, dilation, stride = ((1, *self.kernel_size), (1, *self.dilation),
                                        (1, *self.stride))
        else:
            kernel, dilation, stride = self.kernel_size, self.dilation, self.stride
        size = tuple((n - d * (k - 1) - 1) // s + 1 for n, k, d, s in
                     zip(x.shape[2:], kernel, dilation, stride, strict=True))
        if min(size) < 1:
            raise ValueError(f"x of shape {tuple(x.shape)} (padded) is smaller than the "
                             f"kernel {tuple(kernel)} with dilation {tuple(dilation)}")
        cols = nn.functional.unfold(x, kernel, dilation=dilation, stride=stride)
        return cols.transpose(1, 2), size[1:] if spatial == 1 else size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, not {type(x).__name__}")
        spatial = 1 if self.source == "Conv1d" else 2
        if x.dim() not in (spatial + 1, spatial + 2) or x.shape[-spatial - 1] != \
                self.in_channels:
            raise ValueError(f"x must be (N, {self.in_channels}, ...) or "
                             f"({self.in_channels}, ...) with {spatial} spatial axes for "
                             f"in_channels={self.in_channels}, not shape {tuple(x.shape)}")
        batched = x.dim() == spatial + 2
        xb = x if batched else x.unsqueeze(0)
        cols, size = self.unfold(xb)
        y = self.forward_raw(cols)  # (N, positions, out), float32
        if self.bias is not None:
            y = y + self.bias.to(torch.float32)
        y = y.transpose(1, 2).reshape(xb.shape[0], self.out_channels, *size)
        y = y if batched else y.squeeze(0)
        return y if x.dtype == torch.float32 else y.to(x.dtype)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding!r}, dilation={self.dilation}, "
                f"padding_mode={self.padding_mode!r}, bias={self.bias is not None}, "
                f"weights={self.weights.name}, activations={self.activations.name}, "
                f"rounding={self.rounding!r}, guard_bits={self.guard_bits}, "
                f"acc_width={self.acc_width}")


def _check_formats(weights: object, activations: object) -> None:
    """Both are block formats the engine pairs: the same block and scale width."""
    for name, fmt in (("weights", weights), ("activations", activations)):
        if not isinstance(fmt, MXIntFormat | MXFPFormat):
            raise TypeError(f"{name} must be an MXIntFormat or MXFPFormat (golden.parse_format"
                            f"('mxint8'), parse_format('mxfp4'), ...), not {fmt!r}")
    if weights.block != activations.block:
        raise ValueError(f"weights and activations must share block, not {weights.block} "
                         f"({weights.name}) and {activations.block} ({activations.name})")
    if weights.exp_bits != activations.exp_bits:
        raise ValueError(f"weights and activations must share exp_bits (8, the E8M0 scale, "
                         f"when either is a minifloat format), not {weights.exp_bits} "
                         f"({weights.name}) and {activations.exp_bits} ({activations.name})")


def _patterns(name: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{name} must be a string or a sequence of strings, not {value!r}")
    return tuple(value)


#: The note of ``nn.MultiheadAttention.out_proj`` (status ``"weights only"``).
_MHA_NOTE = ("weight only: read directly by MultiheadAttention "
             "(F.multi_head_attention_forward never calls out_proj), so the MX arithmetic is "
             "not applied: a float32 product with the dequantised weight, input not "
             "quantised")

#: What :func:`quantize_model` did with a layer (:attr:`LayerReport.status`).
STATUSES = ("engine", "weights only", "skipped")

#: Layers that multiply by a weight but that :func:`quantize_model` does not replace.
_CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                 nn.ConvTranspose3d)


@dataclass(frozen=True)
class LayerReport:
    """One row of a :class:`QuantizeReport`.

    Members
    -------
    name : str
        The layer's name in ``model.named_modules()`` (a parameter's name in
        ``named_parameters()`` for ``nn.MultiheadAttention``'s input projection).
    kind : str
        What it was: ``Linear``, ``Conv1D``, ``Conv2d``, ..., or ``Parameter``.
    status : str
        ``"engine"``: replaced by an :class:`MXLinear` (or :class:`MXConv`) whose forward
        computes the engine's arithmetic; ``"weights only"``: an :class:`MXLinear` is put
        in its place, but its owner reads its ``weight`` directly and never calls it
        (``nn.MultiheadAttention.out_proj``), so the MX arithmetic is not applied: only
        the weights are quantised, the product is float32 and the input is not quantised;
        ``"skipped"``: left as it was.
    note : str
        Why it was skipped, or what else to know (a weight that was tied and is no longer,
        other names of the same layer).
    """

    name: str
    kind: str
    status: str
    note: str = ""


class QuantizeReport(Sequence[str]):
    """What :func:`quantize_model` did: the layers it replaced and those it skipped.

    As a sequence it is the names of the replaced layers, in ``named_modules()`` order
    (``list(report)``, ``len(report)``, ``report[0]``, ``"fc" in report``), and it equals a
    list or tuple of those names: the value ``quantize_model`` returned before it returned
    a report. ``str(report)`` is a table of every layer with its status and note.

    Members
    -------
    layers : tuple of LayerReport
        Every layer considered, replaced or skipped, in ``named_modules()`` order.
    replaced, skipped : tuple of LayerReport
        The rows whose status is not / is ``"skipped"``.
    notes : tuple of str
        Changes made outside the replaced layers (fused fast paths turned off).
    arithmetic : str
        The replaced layers' formats and accumulator, e.g. ``"weights mxfp4_k32,
        activations mxfp8_e4m3_k32, rounding 'even', guard_bits 8, acc_width 44"``; printed
        above the counts (empty: not printed).
    """

    def __init__(self, layers: Iterable[LayerReport], notes: Iterable[str] = (),
                 arithmetic: str = "") -> None:
        self.layers = tuple(layers)
        self.notes = tuple(notes)
        self.arithmetic = arithmetic
        self.replaced = tuple(r for r in self.layers if r.status != "skipped")
        self.skipped = tuple(r for r in self.layers if r.status == "skipped")
        self._names = tuple(r.name for r in self.replaced)

    def __getitem__(self, index):
        return self._names[index]

    def __len__(self) -> int:
        return len(self._names)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, QuantizeReport):
            return (self.layers == other.layers and self.notes == other.notes
                    and self.arithmetic == other.arithmetic)
        if isinstance(other, list | tuple):
            return list(self._names) == list(other)
        return NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        return (f"QuantizeReport(replaced={list(self._names)!r}, "
                f"skipped={[r.name for r in self.skipped]!r})")

    def __str__(self) -> str:
        head = ("layer", "kind", "status", "note")
        rows = [head] + [(r.name, r.kind, r.status, r.note) for r in self.layers]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True))
                 + ("  " + row[3] if row[3] else "") for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths) + "  ----")
        engine = sum(r.status == "engine" for r in self.layers)
        weights_only = sum(r.status == "weights only" for r in self.layers)
        if self.arithmetic:
            lines.append(self.arithmetic)
        lines.append(f"{engine} computed by the engine's arithmetic, {weights_only} weights "
                     f"only (MX weights, float product), {len(self.skipped)} skipped")
        lines += self.notes
        return "\n".join(line.rstrip() for line in lines)


def quantize_model(model: nn.Module, *, weights: Format, activations: Format,
                   rounding: str = "even", include: str | Iterable[str] | None = None,
                   exclude: str | Iterable[str] | None = None,
                   guard_bits: int | None = None, acc_width: int | None = None
                   ) -> QuantizeReport:
    """Replace the linear layers of ``model``, in place, by :class:`MXLinear`.

    Replaced: every ``nn.Linear`` (subclasses included) and every transformers ``Conv1D``
    (GPT-2's linear layers) that the patterns select, and every ``nn.Conv1d`` /
    ``nn.Conv2d`` with ``groups=1`` (by :class:`MXConv`).

    Parameters
    ----------
    model : torch.nn.Module
        Modified in place. It must contain the layers: a bare ``nn.Linear`` is refused
        (wrap it, ``nn.Sequential(layer)``, or build ``MXLinear(layer, ...)``).
    weights, activations : MXIntFormat or MXFPFormat
        As :class:`MXLinear` (:func:`golden.parse_format` makes either from a name:
        ``parse_format("mxfp4", block=32)``).
    rounding : str
        As :class:`MXLinear`.
    include, exclude : str or sequence of str, optional
        Shell-style patterns (:mod:`fnmatch`) matched against the names
        ``model.named_modules()`` gives, e.g. ``"encoder.layer.*.attention.*"``. A layer is
        replaced when it matches an ``include`` pattern (every layer when ``include`` is
        None) and no ``exclude`` pattern.
    guard_bits, acc_width : int
        As :class:`MXLinear`.

    Returns
    -------
    QuantizeReport
        Iterates over, and compares equal to the list of, the names of the replaced layers;
        prints as a table of every linear, convolution and attention projection with what
        was done to it and why.

    Notes
    -----
    * **Same layer under several names**: replaced by one ``MXLinear`` under every name.
    * **Tied weights**: layers of the same kind that share one weight ``Parameter`` and are
      all replaced share one set of MX buffers, so they stay tied. A weight shared with a
      module that is not replaced (GPT-2's ``lm_head`` with the ``wte`` embedding) is
      quantised in the replaced layer only: the tie is broken, the other module keeps the
      float weight, and the report's note says so. Exclude the layer to keep the tie.
      Calling Hugging Face's ``tie_weights()`` afterwards raises ``AttributeError`` (an
      ``MXLinear``'s ``weight`` cannot be assigned).
    * **nn.MultiheadAttention** multiplies by ``out_proj.weight`` itself
      (``F.multi_head_attention_forward``), without calling ``out_proj``: the MX arithmetic
      is not applied there. Its ``out_proj`` gets an :class:`MXLinear` with status
      ``"weights only"`` and a note that says so (the product is float32 with the
      dequantised weight, the input not quantised). Its input projection
      (``in_proj_weight``, or ``q/k/v_proj_weight``) is a bare ``Parameter``, not a layer:
      reported as skipped.
    * **nn.TransformerEncoderLayer / nn.TransformerEncoder**: their fused inference kernels
      read ``linear1.weight`` and ``linear2.weight`` instead of calling the layers. Every
      ``MXLinear`` has a forward pre-hook, which makes the layer take its plain path; the
      encoder's nested-tensor path, which would then fail in attention, is turned off
      (``use_nested_tensor = False``, a note in the report).
    * **Convolutions**: ``nn.Conv1d`` and ``nn.Conv2d`` with ``groups=1`` (any stride,
      padding, dilation and padding mode) are replaced by :class:`MXConv`, the engine's
      arithmetic on the unfolded input (blocks along in-channels x kernel), status
      ``"engine"``. Grouped ones, ``nn.Conv3d`` and the transposed ones are not replaced:
      reported as skipped, with the reason.

    Raises
    ------
    TypeError
        A bad type (``model``, a format, a pattern).
    ValueError
        ``model`` is itself a linear layer; incompatible formats; a bad parameter;
        ``include`` given and matching no linear layer.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    kind = _linear_kind(model) or _conv_kind(model)
    if kind is not None:
        raise ValueError(f"model must be a module that contains the layers to replace, not a "
                         f"bare {kind}, which cannot be replaced in place: pass "
                         f"torch.nn.Sequential(layer), or build MXLinear(layer, ...) (MXConv "
                         f"for a convolution)")
    _check_formats(weights, activations)
    check_rounding(rounding)
    guard_bits, acc_width = _acc_widths(weights, activations, guard_bits=guard_bits,
                                        acc_width=acc_width)
    inc, exc = _patterns("include", include), _patterns("exclude", exclude)

    def why_not_selected(name: str) -> str:
        if inc and not any(fnmatch.fnmatchcase(name, p) for p in inc):
            return f"matches no include pattern {list(inc)!r}"
        hit = [p for p in exc if fnmatch.fnmatchcase(name, p)]
        return f"matches exclude pattern {hit[0]!r}" if hit else ""

    # Every name of every module (a module may appear under several), and every module that
    # holds each parameter, to find aliases and tied weights; taken before any change.
    aliases: dict[int, list[str]] = {}
    for name, mod in model.named_modules(remove_duplicate=False):
        aliases.setdefault(id(mod), []).append(name)
    holders: dict[int, list[tuple[str, nn.Module]]] = {}
    for name, mod in model.named_modules(remove_duplicate=False):
        for pname, p in mod.named_parameters(recurse=False, remove_duplicate=False):
            holders.setdefault(id(p), []).append((f"{name}.{pname}" if name else pname, mod))

    # One row per layer in named_modules() order; a replaced layer's row is filled in below.
    rows: list[LayerReport | tuple[str, nn.Module, str, str]] = []
    for name, mod in model.named_modules():
        kind = _linear_kind(mod) if name else None
        if kind is not None:
            why = why_not_selected(name)
            parent_name, _, child = name.rpartition(".")
            owner = model.get_submodule(parent_name) if parent_name else model
            status = ("weights only" if isinstance(owner, nn.MultiheadAttention)
                      and child == "out_proj" else "engine")
            rows.append(LayerReport(name, kind, "skipped", why) if why
                        else (name, mod, kind, status))
        elif isinstance(mod, _CONVOLUTIONS) and name:
            why = why_not_selected(name) or _conv_unsupported(mod)
            rows.append(LayerReport(name, type(mod).__name__, "skipped", why) if why
                        else (name, mod, _conv_kind(mod), "engine"))
        elif isinstance(mod, nn.MultiheadAttention):
            for pname in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
                if getattr(mod, pname, None) is not None:
                    full = f"{name}.{pname}" if name else pname
                    rows.append(LayerReport(
                        full, "Parameter", "skipped", why_not_selected(full)
                        or "MultiheadAttention multiplies by this Parameter itself: no layer "
                           "to replace"))
    chosen = {(id(r[1]), r[2]) for r in rows if isinstance(r, tuple)}
    if inc and not chosen:
        raise ValueError(f"include matches no nn.Linear, Conv1D, Conv1d or Conv2d of the "
                         f"model: {list(inc)!r}")

    built: dict[tuple[int, str], MXLinear] = {}  # by (weight, kind): tied layers share
    for i, row in enumerate(rows):
        if isinstance(row, LayerReport):
            continue
        name, layer, kind, status = row
        with torch.no_grad():
            mx = (MXConv if kind in ("Conv1d", "Conv2d") else MXLinear)(
                layer, weights=weights, activations=activations, rounding=rounding,
                guard_bits=guard_bits, acc_width=acc_width)
        notes = []
        if status == "weights only":
            notes.append(_MHA_NOTE)
        if len(aliases[id(layer)]) > 1:
            notes.append("also named " + ", ".join(n for n in aliases[id(layer)] if n != name))
        others = [(n, m) for n, m in holders[id(layer.weight)] if m is not layer]
        tie = (id(layer.weight), kind)
        if tie in built:
            for buffer in (mx._elements_key, "w_exponent", "w_dequantized"):
                setattr(mx, buffer, getattr(built[tie], buffer))
        built.setdefault(tie, mx)
        untied = [n for n, m in others if (id(m), kind) not in chosen]
        if untied:
            notes.append(f"weight was tied to {', '.join(untied)}, which keeps the float "
                         f"weight: now untied")
        elif others:
            notes.append(f"weight tied to {', '.join(n for n, _ in others)}: they share "
                         f"one set of MX weights")
        for alias in aliases[id(layer)]:
            parent_name, _, child = alias.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, mx)
        rows[i] = LayerReport(name, kind, status, "; ".join(notes))

    model_notes = []
    for name, mod in model.named_modules():
        if (isinstance(mod, nn.TransformerEncoder) and getattr(mod, "use_nested_tensor", False)
                and any(isinstance(m, MXLinear) for m in mod.modules())):
            mod.use_nested_tensor = False
            model_notes.append(f"{name or 'model'}: nested-tensor fast path turned off "
                               f"(use_nested_tensor = False), as it would bypass MXLinear")
    arithmetic = (f"weights {weights.name}, activations {activations.name}, rounding "
                  f"{rounding!r}, guard_bits {guard_bits}, acc_width {acc_width}")
    return QuantizeReport(rows, model_notes, arithmetic)
