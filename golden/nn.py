"""PyTorch layers that compute exactly what the ``linear`` engine computes.

:class:`MXLinear` is the software twin of :class:`hw.linear.MXIntLinear` with
``output="fp32"``: its product equals the engine's float32 output bit for bit, so a model
whose ``nn.Linear`` layers are replaced by :func:`quantize_model` computes what the FPGA
would compute. Everything else in the model (attention softmax, LayerNorm, GELU, the
bias addition) stays in float32.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

import torch
from torch import nn

from .accumulator import DEFAULT_GUARD_BITS, MAX_ACC_WIDTH, accumulate, resolve_acc_width
from .dequant import dequant_accum
from .dot import dot_sum_range
from .format import MXIntFormat, check_int
from .quantize import MXIntTensor, quantize
from .rounding import check_rounding

__all__ = ["DEFAULT_GUARD_BITS", "MXLinear", "default_acc_width", "mx_linear_fp32",
           "quantize_model"]


#: Largest number of (token, row) pairs whose block dot products the exact path holds at
#: once (each takes ``nb * k`` int64 products), to bound memory.
_PAIRS_PER_CHUNK = 1 << 14


def default_acc_width(*, w_bits: int, x_bits: int, block: int,
                      guard_bits: int = DEFAULT_GUARD_BITS) -> int:
    """The engine's default accumulator width: the dot product's result width plus
    ``guard_bits`` plus 8, at most 62 (:func:`golden.accumulator.resolve_acc_width`)."""
    return resolve_acc_width(a_bits=x_bits, b_bits=w_bits, block=block,
                             guard_bits=guard_bits, acc_width=None)


def _patterns_to_float(bits: torch.Tensor) -> torch.Tensor:
    """float32 tensor from unsigned 32-bit patterns held in int64."""
    signed = torch.where(bits >= 1 << 31, bits - (1 << 32), bits)
    return signed.to(torch.int32).view(torch.float32)


def _block_values(q: MXIntTensor) -> torch.Tensor:
    """float64 values ``P * 2**(E - bias - (m - 2))`` of every element, exact (the
    exponent of any code of up to 8 bits and the mantissa of up to 24 bits fit a
    float64), shape ``(*rest, nb * k)``."""
    fmt = q.fmt
    scale = (q.exponent.to(torch.float64) - fmt.bias - fmt.frac_bits).unsqueeze(-1)
    v = q.mantissa.to(torch.float64) * torch.exp2(scale)
    return v.reshape(*v.shape[:-2], v.shape[-2] * v.shape[-1])


def mx_linear_fp32(w: MXIntTensor, x: MXIntTensor, *, guard_bits: int, acc_width: int
                   ) -> torch.Tensor:
    """``x @ W.T`` as the ``linear`` engine computes it with ``output="fp32"``.

    Parameters
    ----------
    w : MXIntTensor
        Weights ``W`` of shape ``(N, K)`` quantised along ``K`` (``axis=1``).
    x : MXIntTensor
        Activations of shape ``(T, K)`` quantised along ``K`` (``axis=1``), the same
        ``exp_bits`` and ``block``.
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
    The engine's result is the exact integer recurrence of :mod:`golden.accumulator` over
    the ``nb`` block dot products, rounded once to float32. Two paths give it:

    * **lossless pairs.** When, for one token and one row, the largest exponent sum
      ``E_x,j + E_w,j`` over all blocks minus the smallest over blocks where both operands
      have a nonzero element is at most ``guard_bits`` (:func:`_lossy` finds it exactly for
      every pair), no alignment drops a bit; and when (checked once per call from the
      widths) the accumulator cannot saturate and the exact sum fits 53 bits, the
      accumulator's result is the exact sum ``V = sum_i x_i w_i`` of the element values. A
      float64 matrix product gives ``V`` exactly (every product and partial sum is a
      multiple of the smallest product's unit and below ``2**53`` of it), and the IEEE
      conversion rounds it once to float32 (nearest even, subnormals, overflow to infinity;
      ``+0.0`` for zero).
    * **every other pair** (alignment may drop bits, a NaN block, or the bounds above fail)
      runs the integer model itself: the block dot products ``S`` (:func:`_block_sums`),
      :func:`golden.accumulator.accumulate` and :func:`golden.dequant.dequant_accum`.

    On all-MiniLM-L6-v2 with 6-bit blocks of 16 about 1 % of the pairs take the second
    path, mostly the [CLS] token, whose activations hold outliers.
    """
    if not isinstance(w, MXIntTensor) or not isinstance(x, MXIntTensor):
        raise TypeError("w and x must be MXIntTensor")
    if w.mantissa.dim() != 3 or x.mantissa.dim() != 3 or w.axis != 1 or x.axis != 1:
        raise ValueError("w and x must be 2-D tensors quantised along their second axis")
    fw, fx = w.fmt, x.fmt
    if fw.exp_bits != fx.exp_bits or fw.block != fx.block:
        raise ValueError(f"weights and activations must share exp_bits and block, not {fw} "
                         f"and {fx}")
    if w.mantissa.shape[1] != x.mantissa.shape[1]:
        raise ValueError(f"w has {w.shape[1]} columns but x has {x.shape[1]}")
    check_int("guard_bits", guard_bits, 0, MAX_ACC_WIDTH - 1)
    check_int("acc_width", acc_width, 1, MAX_ACC_WIDTH)
    device = x.mantissa.device
    n_rows, nb = w.mantissa.shape[0], w.mantissa.shape[1]
    n_tok = x.mantissa.shape[0]
    if n_tok == 0 or n_rows == 0:
        return torch.zeros((n_tok, n_rows), dtype=torch.float32, device=device)

    # Bounds that hold for every pair: |A| <= nb * 2**G * max|S| must stay in the
    # accumulator, and the exact sum in units of the smallest product must fit 53 bits.
    s_lo, s_hi = dot_sum_range(fx.man_bits, fw.man_bits, fw.block)
    a_max = nb * max(-s_lo, s_hi) << guard_bits
    fast_ok = a_max <= (1 << (acc_width - 1)) - 1 and a_max < 1 << 53

    slow = torch.nonzero(_lossy(w, x, guard_bits=guard_bits)) if fast_ok else \
        torch.nonzero(torch.ones((n_tok, n_rows), dtype=torch.bool, device=device))
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


#: Exponent depth below a row's largest code that :func:`_lossy` resolves exactly (less
#: for very long rows, so that ``2**(2 * B * depth)`` stays in float64); a row with a
#: nonzero block deeper than this takes the integer path for every pair.
_DEPTH = 40


def _lossy(w: MXIntTensor, x: MXIntTensor, *, guard_bits: int) -> torch.Tensor:
    """``(T, N)`` bool: pairs whose accumulation may drop a bit or that hold a NaN block.

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
    nb = w.mantissa.shape[1]
    if nb >= 1 << 16:
        return torch.ones((x.mantissa.shape[0], w.mantissa.shape[0]), dtype=torch.bool,
                          device=x.mantissa.device)
    shift = 3 if nb < 1 << 8 else 4  # B = 2**shift
    depth = min(_DEPTH, 500 >> shift)
    x_e, w_e = x.exponent.to(torch.int64), w.exponent.to(torch.int64)
    x_nz, w_nz = (x.mantissa != 0).any(dim=-1), (w.mantissa != 0).any(dim=-1)
    x_rel, w_rel = x_e - x_e.amax(dim=1, keepdim=True), w_e - w_e.amax(dim=1, keepdim=True)
    x_bad = (x_nz & (x_rel < -depth)).any(dim=1) | (x_e == x.fmt.nan_code).any(dim=1)
    w_bad = (w_nz & (w_rel < -depth)).any(dim=1) | (w_e == w.fmt.nan_code).any(dim=1)
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


def _block_sums(x: MXIntTensor, w: MXIntTensor, tok: torch.Tensor, row: torch.Tensor
                ) -> torch.Tensor:
    """``S`` of :func:`golden.dot_product` for every block of the pairs
    ``(tok[i], row[i])``: int64, shape ``(P, nb)``.

    Formed in float32 when every partial sum is an integer below ``2**24`` in magnitude
    (then exact in any order), else in int64. A token paired with many rows (more than one
    in 16) gets all its rows at once from block-wise matrix products; other pairs are
    gathered and multiplied element by element.
    """
    lo, hi = dot_sum_range(x.fmt.man_bits, w.fmt.man_bits, w.fmt.block)
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


def _pairs_fp32(w: MXIntTensor, x: MXIntTensor, tok: torch.Tensor, row: torch.Tensor, *,
                guard_bits: int, acc_width: int) -> torch.Tensor:
    """float32 patterns of the engine's result for the pairs ``(tok[i], row[i])``, by the
    integer model itself: the block dot products (:func:`_block_sums`), then
    :func:`golden.accumulator.accumulate` and :func:`golden.dequant.dequant_accum`."""
    fw, fx = w.fmt, x.fmt
    s = _block_sums(x, w, tok, row)
    x_e, w_e = x.exponent.to(torch.int64), w.exponent.to(torch.int64)
    out = []
    for start in range(0, tok.shape[0], _PAIRS_PER_CHUNK * 4):
        t, n = tok[start:start + _PAIRS_PER_CHUNK * 4], row[start:start + _PAIRS_PER_CHUNK * 4]
        nan = (x_e[t] == fx.nan_code) | (w_e[n] == fw.nan_code)
        y = accumulate(s[start:start + _PAIRS_PER_CHUNK * 4], x_e[t] + w_e[n], nan,
                       guard_bits=guard_bits, acc_width=acc_width)
        out.append(dequant_accum(y.sum, y.exponent, y.nan, a_bits=fx.man_bits,
                                 b_bits=fw.man_bits, exp_bits=fw.exp_bits,
                                 guard_bits=guard_bits))
    return torch.cat(out)


class MXLinear(nn.Module):
    """An ``nn.Linear`` computed as the MXINT ``linear`` engine computes it.

    The weights are quantised once, here, along ``in_features`` (each row of ``W`` in
    blocks of ``k``). At every call the input is quantised along its last axis with the
    activation format, and each output element is the engine's ``output="fp32"`` result
    (:func:`mx_linear_fp32`): the exact block dot products, accumulated by the engine's
    accumulator, rounded once to float32. The bias, if any, is added afterwards in float32
    (the engine has no bias; this addition rounds once more). The result is converted to
    the input's dtype when that is not float32.

    No autograd: the layer holds integers (buffers, not parameters) and its output does not
    require grad. Its buffers live on the device of the original weight; inputs must be on
    that device.

    Parameters
    ----------
    linear : torch.nn.Linear
        The layer to replace (read, not modified).
    weights, activations : MXIntFormat
        Formats of ``W`` and of the input; they may differ in ``man_bits`` only.
    rounding : {"even", "away", "zero", "floor"}
        Rounding of both quantisers (:func:`golden.quantize`).
    guard_bits : int
        Of the accumulators (default: the engine's, 8).
    acc_width : int or None
        Of the accumulators (default: the engine's, :func:`default_acc_width`).

    Members
    -------
    w_q : MXIntTensor
        The quantised weights (rebuilt from the buffers ``w_mantissa`` / ``w_exponent``).
    bias : torch.Tensor or None
        float32 copy of the original bias.

    Raises
    ------
    TypeError
        ``linear`` is not an ``nn.Linear``, or a format is not an ``MXIntFormat``.
    ValueError
        The formats differ in ``exp_bits`` or ``block``, or a parameter is out of range.
    """

    def __init__(self, linear: nn.Linear, *, weights: MXIntFormat, activations: MXIntFormat,
                 rounding: str = "even", guard_bits: int = DEFAULT_GUARD_BITS,
                 acc_width: int | None = None) -> None:
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be a torch.nn.Linear, not {type(linear).__name__}")
        _check_formats(weights, activations)
        self.rounding = check_rounding(rounding)
        self.guard_bits = check_int("guard_bits", guard_bits, 0, MAX_ACC_WIDTH - 1)
        if acc_width is None:
            acc_width = default_acc_width(w_bits=weights.man_bits, x_bits=activations.man_bits,
                                          block=weights.block, guard_bits=guard_bits)
        self.acc_width = check_int("acc_width", acc_width, 1, MAX_ACC_WIDTH)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weights, self.activations = weights, activations
        q = quantize(linear.weight, weights, axis=1, rounding=rounding)
        self.register_buffer("w_mantissa", q.mantissa)
        self.register_buffer("w_exponent", q.exponent)
        bias = None if linear.bias is None else linear.bias.detach().to(torch.float32).clone()
        self.register_buffer("bias", bias)

    @property
    def w_q(self) -> MXIntTensor:
        return MXIntTensor(mantissa=self.w_mantissa, exponent=self.w_exponent,
                           fmt=self.weights, shape=torch.Size((self.out_features,
                                                               self.in_features)), axis=1)

    def quantize_input(self, x: torch.Tensor) -> MXIntTensor:
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
            y = y + self.bias
        return y if x.dtype == torch.float32 else y.to(x.dtype)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, weights={self.weights}, "
                f"activations={self.activations}, rounding={self.rounding!r}, "
                f"guard_bits={self.guard_bits}, acc_width={self.acc_width}")


def _check_formats(weights: object, activations: object) -> None:
    for name, fmt in (("weights", weights), ("activations", activations)):
        if not isinstance(fmt, MXIntFormat):
            raise TypeError(f"{name} must be an MXIntFormat, not {fmt!r}")
    if weights.exp_bits != activations.exp_bits or weights.block != activations.block:
        raise ValueError(f"weights and activations must share exp_bits and block, not "
                         f"{weights} and {activations}")


def _patterns(name: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{name} must be a string or a sequence of strings, not {value!r}")
    return tuple(value)


def quantize_model(model: nn.Module, *, weights: MXIntFormat, activations: MXIntFormat,
                   rounding: str = "even", include: str | Iterable[str] | None = None,
                   exclude: str | Iterable[str] | None = None,
                   guard_bits: int = DEFAULT_GUARD_BITS, acc_width: int | None = None
                   ) -> list[str]:
    """Replace ``nn.Linear`` layers of ``model``, in place, by :class:`MXLinear`.

    Parameters
    ----------
    model : torch.nn.Module
        Modified in place.
    weights, activations : MXIntFormat
        As :class:`MXLinear`.
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
    list of str
        The names of the layers replaced, in ``named_modules()`` order.

    Raises
    ------
    TypeError
        A bad type (``model``, a format, a pattern).
    ValueError
        Incompatible formats, a bad parameter, or ``include`` given and matching no
        ``nn.Linear``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    _check_formats(weights, activations)
    check_rounding(rounding)
    inc, exc = _patterns("include", include), _patterns("exclude", exclude)
    chosen = [name for name, mod in model.named_modules()
              if isinstance(mod, nn.Linear) and name
              and (not inc or any(fnmatch.fnmatchcase(name, p) for p in inc))
              and not any(fnmatch.fnmatchcase(name, p) for p in exc)]
    if inc and not chosen:
        raise ValueError(f"include matches no nn.Linear of the model: {list(inc)!r}")
    for name in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        layer = getattr(parent, child)
        with torch.no_grad():
            setattr(parent, child, MXLinear(layer, weights=weights, activations=activations,
                                            rounding=rounding, guard_bits=guard_bits,
                                            acc_width=acc_width))
    return chosen
