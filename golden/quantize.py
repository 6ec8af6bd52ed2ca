"""Quantise float tensors to MXINT or MXFP blocks and back.

This is both the software quantiser users call and the reference the cast and
dequantiser hardware must equal bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .format import MXFPFormat, MXIntFormat
from .rounding import check_rounding

__all__ = ["MXFPTensor", "MXIntTensor", "dequantize", "quantize", "shared_exponent"]


def _check_codes(name: str, t: object, lo: int, hi: int, shape: tuple[int, ...] | None
                 ) -> None:
    """``t`` is an integer tensor of ``shape`` (if given) with every value in ``[lo, hi]``."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, not {type(t).__name__}")
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor, not {t.dtype}")
    if t.device.type == "meta":
        raise ValueError(f"{name} is on the meta device: it has no values to check or read")
    if shape is not None and tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, not {tuple(t.shape)}")
    if t.numel():
        least, most = (int(v) for v in t.aminmax())  # one pass; the search only on failure
        if least < lo or most > hi:
            value = int(t[(t < lo) | (t > hi)].flatten()[0])
            raise ValueError(f"{name} must hold values from {lo} to {hi}, not {value}")


def _check_layout(q: MXIntTensor | MXFPTensor, elements: torch.Tensor) -> None:
    """Shapes of a quantised tensor agree with its ``shape``, ``axis`` and block."""
    k = q.fmt.block
    if not isinstance(q.shape, torch.Size) or not q.shape:
        raise TypeError(f"shape must be a non-empty torch.Size, not {q.shape!r}")
    if not isinstance(q.axis, int) or not 0 <= q.axis < len(q.shape):
        raise ValueError(f"axis must be from 0 to {len(q.shape) - 1}, not {q.axis!r}")
    rest = tuple(q.shape[:q.axis]) + tuple(q.shape[q.axis + 1:])
    blocks = -(-q.shape[q.axis] // k)
    want = (*rest, blocks, k)
    if tuple(elements.shape) != want:
        raise ValueError(f"elements must have shape {want} for a tensor of shape "
                         f"{tuple(q.shape)} in blocks of {k} along axis {q.axis}, not "
                         f"{tuple(elements.shape)}")


@dataclass(frozen=True)
class MXIntTensor:
    """A tensor quantised to MXINT blocks.

    Members
    -------
    mantissa : torch.Tensor
        Integers, shape ``(*rest, nblocks, k)``: the input with the quantised axis moved
        last, padded with zeros to a multiple of ``k`` and split into blocks. Each element
        is an ``m``-bit two's complement integer; :func:`quantize` gives
        ``[-(2**(m-1) - 1), 2**(m-1) - 1]``.
    exponent : torch.Tensor
        Integers, shape ``(*rest, nblocks)``: biased shared exponent codes from 0 to
        ``fmt.nan_code``, which marks a block that held a NaN or an infinity (its mantissas
        are then zero).
    fmt : MXIntFormat
        The block format.
    shape : torch.Size
        Shape of the tensor that was quantised.
    axis : int
        The axis along which blocks were formed (non-negative).

    Raises
    ------
    TypeError, ValueError
        If a member has the wrong type, shape or range (each message names it): a tensor
        built from data outside mxforge is checked when it is made.
    """

    mantissa: torch.Tensor
    exponent: torch.Tensor
    fmt: MXIntFormat
    shape: torch.Size
    axis: int

    def __post_init__(self) -> None:
        if not isinstance(self.fmt, MXIntFormat):
            raise TypeError(f"fmt must be an MXIntFormat, not {self.fmt!r}")
        half = 1 << (self.fmt.man_bits - 1)
        _check_codes("mantissa", self.mantissa, -half, half - 1, None)
        _check_layout(self, self.mantissa)
        _check_codes("exponent", self.exponent, 0, self.fmt.nan_code,
                     tuple(self.mantissa.shape[:-1]))

    @property
    def nan(self) -> torch.Tensor:
        """Boolean tensor, shape ``(*rest, nblocks)``: which blocks are NaN."""
        return self.exponent == self.fmt.nan_code


@dataclass(frozen=True)
class MXFPTensor:
    """A tensor quantised to OCP MX minifloat blocks (MXFP8, MXFP6, MXFP4).

    Members
    -------
    codes : torch.Tensor
        Integers, shape ``(*rest, nblocks, k)`` (laid out as :attr:`MXIntTensor.mantissa`):
        unsigned element codes, ``0 .. 2**width - 1``.
    exponent : torch.Tensor
        Integers, shape ``(*rest, nblocks)``: E8M0 scale codes, 255 for a NaN block.
    fmt : MXFPFormat
        The block format.
    shape : torch.Size
        Shape of the tensor that was quantised.
    axis : int
        The axis along which blocks were formed (non-negative).

    Raises
    ------
    TypeError, ValueError
        If a member has the wrong type, shape or range.
    """

    codes: torch.Tensor
    exponent: torch.Tensor
    fmt: MXFPFormat
    shape: torch.Size
    axis: int

    def __post_init__(self) -> None:
        if not isinstance(self.fmt, MXFPFormat):
            raise TypeError(f"fmt must be an MXFPFormat, not {self.fmt!r}")
        _check_codes("codes", self.codes, 0, (1 << self.fmt.element_bits) - 1, None)
        _check_layout(self, self.codes)
        _check_codes("exponent", self.exponent, 0, self.fmt.nan_code,
                     tuple(self.codes.shape[:-1]))

    @property
    def mantissa(self) -> torch.Tensor:
        """Signed fixed-point integers ``P`` (``int64``, same shape as :attr:`codes`): the
        element values times ``2**f``, 0 for a NaN or infinity code. The value of element
        ``i`` is ``P_i * 2**(X - 127 - f)``, as for MXINT."""
        return self.fmt.element.decode(self.codes)

    @property
    def special(self) -> torch.Tensor:
        """``int8`` per element: 0 a number, 1 an infinity (E5M2), 2 a NaN code."""
        return self.fmt.element.kind(self.codes)

    @property
    def nan(self) -> torch.Tensor:
        """Boolean tensor, shape ``(*rest, nblocks)``: which blocks have the NaN scale."""
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


def _round(y: torch.Tensor, negative: torch.Tensor, rounding: str) -> torch.Tensor:
    """``y`` rounded to an integer in the given mode (in place where possible).
    ``negative`` is the sign of the unscaled input, so that a negative element whose
    scaling underflowed to ``-0.0`` still floors to -1."""
    if rounding == "even":
        return torch.round(y, out=y)
    if rounding == "zero":
        return torch.trunc(y, out=y)
    if rounding == "floor":
        return torch.where(negative, torch.floor(y).clamp(max=-1), torch.floor(y))
    t = torch.trunc(y)
    return t + torch.sign(y) * ((y - t).abs() >= 0.5)


def quantize(x: torch.Tensor, fmt: MXIntFormat | MXFPFormat, axis: int = -1,
             rounding: str = "even") -> MXIntTensor | MXFPTensor:
    """Quantise ``x`` to blocks of ``fmt.block`` elements along ``axis``.

    Parameters
    ----------
    x : torch.Tensor
        float32, bfloat16, float16 (all computed exactly as float32) or float64. It may
        require grad (an ``nn.Parameter``): it is read detached, and the result carries no
        autograd history. It may be empty (a zero-length axis gives zero blocks).
    fmt : MXIntFormat or MXFPFormat
        Target format: MXINT(m, e, k), or an OCP MX minifloat format
        (:func:`golden.parse_format` makes either from a name such as ``"mxfp4"``).
    axis : int
        Axis along which consecutive ``k`` elements share an exponent. The axis is padded
        with zeros to a multiple of ``k``.
    rounding : {"even", "away", "zero", "floor"}
        How an element is rounded: nearest with ties to even, nearest with ties away from
        zero, toward zero, toward minus infinity.

    Returns
    -------
    MXIntTensor or MXFPTensor
        The one that matches ``fmt``.

    Notes
    -----
    Per block, with ``bias`` the exponent bias (127 for the E8M0 scale), ``emax`` the
    exponent of the largest element (0 for MXINT: ``P`` is read as a Q1.(m-2) number) and
    ``f`` the fraction bits of an element (``m - 2`` for MXINT,
    :attr:`~golden.minifloat.ElementFormat.frac_bits` for MXFP):

    1. ``amax = max |x_i|``. A NaN or an infinity anywhere gives the NaN code
       (``2**e - 1``, 255 for E8M0) and zero elements (codes 0). ``amax = 0`` gives code 0
       and zero elements.
    2. ``E = clamp(floor(log2(amax)) - emax + bias, 0, 2**e - 2)``, with ``floor(log2)``
       exact (OCP v1.0). With MXFP ``scale_rounding="rceil"``, ``E`` is instead the
       smallest code with ``amax <= max_normal * 2**(E - bias)``, clamped the same way.
    3. ``y_i = x_i * 2**(bias + f - E)`` (exact: the element in units of its smallest
       step). MXINT rounds ``y_i`` to an integer; MXFP rounds it to a multiple of
       ``2**max(floor(log2|y_i|) - M, 0)``, the spacing of the element format at
       ``|y_i|`` (``M`` mantissa bits, subnormals included), in the chosen mode.
    4. Saturation to ``±max``: ``2**(m-1) - 1`` for MXINT, the largest normal for MXFP
       (never an infinity or NaN code). MXFP keeps the sign of ``x_i`` in the code, so a
       negative element that rounds to zero is ``-0``.
    """
    if not isinstance(fmt, MXIntFormat | MXFPFormat):
        raise TypeError(f"fmt must be an MXIntFormat or MXFPFormat (see golden.parse_format), "
                        f"not {fmt!r}")
    check_rounding(rounding)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, not {type(x).__name__}")
    if x.device.type == "meta":
        raise ValueError("x is on the meta device: it has no values to quantise")
    if x.dim() == 0:
        raise ValueError("x must have at least one dimension")
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TypeError(f"axis must be an int, not {axis!r}")
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

    fp = isinstance(fmt, MXFPFormat)
    low, high = xf.aminmax(dim=-1)  # one pass, no |x| copy; NaN propagates
    amax = torch.maximum(-low, high)
    nan = ~torch.isfinite(amax)
    emax = fmt.element.emax if fp else 0
    exp = shared_exponent(amax) - emax
    if fp and fmt.scale_rounding == "rceil":
        # amax / 2**floor(log2 amax) is exact; one step up when it exceeds the largest
        # normal's significand.
        top = fmt.element.max_normal / 2.0 ** emax
        exp = exp + (torch.frexp(amax).mantissa * 2 > top).to(torch.int32)
    exp = (exp + fmt.bias).clamp(0, fmt.max_code)
    exp = torch.where(amax > 0, exp, 0)

    # The scaling below uses the block's exponent before NaN blocks take the NaN code
    # (their elements become 0 whatever it is).
    if fp:
        native = _TORCH_FLOAT8.get(fmt.element.name)
        if native is not None and rounding == "even" and xf.dtype == torch.float32:
            codes = _float8_codes(xf, exp, nan, fmt, native)
        else:
            codes = _element_codes(_scale(xf, (fmt.bias + fmt.frac_bits - exp).unsqueeze(-1)),
                                   xf, nan, fmt, rounding)
    else:
        y = _scale(xf, (fmt.bias + fmt.frac_bits - exp).unsqueeze(-1))
    if bool(nan.any()):
        exp = torch.where(nan, fmt.nan_code, exp)
    exp = exp.to(torch.int32)
    if fp:
        return MXFPTensor(codes=codes, exponent=exp, fmt=fmt, shape=shape, axis=axis)
    q = _round(y, xf < 0, rounding).clamp_(-fmt.max_man, fmt.max_man)
    if bool(nan.any()):
        q = torch.where(nan.unsqueeze(-1), 0, q)
    return MXIntTensor(mantissa=q.to(torch.int32), exponent=exp, fmt=fmt, shape=shape,
                       axis=axis)


#: Element formats whose codes are PyTorch dtypes (OCP E4M3 is PyTorch's ``e4m3fn``).
_TORCH_FLOAT8 = {"e4m3": torch.float8_e4m3fn, "e5m2": torch.float8_e5m2}


def _float8_codes(xf: torch.Tensor, exp: torch.Tensor, nan: torch.Tensor, fmt: MXFPFormat,
                  native: torch.dtype) -> torch.Tensor:
    """:func:`_element_codes` for rounding ``"even"`` of float32 ``xf`` to an FP8 element,
    by PyTorch's own float32 -> float8 conversion (its codes are OCP's; a test checks the
    two paths agree on every float32 exponent, both signs, ties and specials).

    ``v = xf * 2**(bias - E)``, the element value, is exact unless it falls below
    float32's normal range, where its one rounding (in :func:`_scale`) cannot matter:
    every such value is far below half the smallest FP8 subnormal and rounds to ``±0``
    either way. Clamping to ``±max_normal`` first is the saturation (the conversion alone
    would give NaN or infinity); rounding is monotonic, so clamping before rounding equals
    clamping the rounded code. The cast keeps the sign, ``-0`` included.
    """
    top = fmt.element.max_normal
    v = _scale(xf, (fmt.bias - exp).unsqueeze(-1)).clamp_(-top, top)
    codes = v.to(native).view(torch.uint8).to(torch.int32)
    if bool(nan.any()):
        codes = torch.where(nan.unsqueeze(-1), 0, codes)
    return codes


def _element_codes(y: torch.Tensor, xf: torch.Tensor, nan: torch.Tensor, fmt: MXFPFormat,
                   rounding: str) -> torch.Tensor:
    """Codes of the elements ``y`` (in units of the smallest subnormal), rounded to the
    element grid, saturated, with the sign of ``xf``; 0 in NaN blocks.

    The grid at ``|y|`` is ``2**s`` units with ``s = max(floor(log2|y|) - M, 0)``, and
    ``r = round(|y| / 2**s)`` is then the significand with its hidden bit, ``2**M <= r <=
    2**(M+1)`` above the subnormals (or ``r < 2**M`` for a subnormal, ``s = 0``). The code
    of ``r * 2**s`` is ``(s << M) + r``: an exponent field ``s + 1`` and a mantissa field
    ``r - 2**M``, or the subnormal code ``r``; a rounding carry to ``r = 2**(M+1)`` lands on
    the first code of the next binade by itself. Codes grow with the magnitude, so
    clamping the code at the largest finite one saturates the value.
    """
    man = fmt.element.man_bits
    step = (torch.frexp(y).exponent - 1 - man).clamp_(min=0)
    r = _round(y * _pow2(-step, y.dtype), xf < 0, rounding).abs_().to(torch.int32)
    codes = ((step << man) + r).clamp_(max=fmt.element.finite_codes - 1)
    # The code keeps the input's sign, -0.0 included; NaN blocks hold +0 codes.
    sign = torch.signbit(xf) & ~nan.unsqueeze(-1)
    codes |= sign.to(torch.int32) << (fmt.element.width - 1)
    return torch.where(nan.unsqueeze(-1), 0, codes)


def dequantize(q: MXIntTensor | MXFPTensor) -> torch.Tensor:
    """Return the float32 tensor that ``q`` encodes, in the shape that was quantised.

    Each element is ``P * 2**(E - bias - f)`` rounded once to float32 (nearest, ties to
    even; exact unless it falls below the normal range, or overflows to an infinity when
    an MXFP element's value exceeds float32's range). Elements of NaN blocks are NaN; MXFP
    NaN codes give NaN and E5M2 infinity codes ``±inf``; MXFP ``-0`` codes give ``-0.0``.
    Padding is removed.
    """
    if not isinstance(q, MXIntTensor | MXFPTensor):
        raise TypeError(f"q must be an MXIntTensor or MXFPTensor, not {type(q).__name__}")
    fmt = q.fmt
    if isinstance(q, MXFPTensor):
        # Each code's value (exact in float32: at most 4 significant bits; -0, +-inf and NaN
        # included) times the block's 2**(X - 127), itself exact in float32 down to 2**-127
        # (a subnormal): one multiply, so one rounding.
        scale = _pow2(q.exponent.to(torch.int32).clamp(min=1) - fmt.bias, torch.float32)
        scale = torch.where(q.exponent == 0, 2.0 ** -127, scale)
        # index_select takes the int32 codes as they are (plain indexing would first
        # copy them to int64, the slowest step).
        codes = q.codes if q.codes.dtype in (torch.int32, torch.int64) else \
            q.codes.to(torch.int32)
        y = fmt.element.values.index_select(0, codes.flatten()).view(codes.shape)
        y.mul_(scale.unsqueeze(-1))  # in place: y is a fresh tensor
    else:
        scale = (q.exponent.to(torch.int32) - fmt.bias - fmt.frac_bits).unsqueeze(-1)
        # The first factor keeps |P| >= 1 normal; only the second multiply can round.
        first = scale.clamp(min=-126)
        y = q.mantissa.to(torch.float32) * _pow2(first, torch.float32) * \
            _pow2(scale - first, torch.float32)
    nan = q.nan
    if bool(nan.any()):
        y = torch.where(nan.unsqueeze(-1), torch.nan, y)
    y = y.reshape(*y.shape[:-2], y.shape[-2] * y.shape[-1])
    n = q.shape[q.axis]
    return y[..., :n].movedim(-1, q.axis).reshape(q.shape)
