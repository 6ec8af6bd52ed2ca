"""golden's MXFP quantiser beside torchao's ``to_mx``, for tests/test_torchao.py and
``python -m benchmarks.torchao_compare``.

:func:`compare` quantises with both and sorts every block into one of the classes below.
A block that torchao and golden quantise differently is a *mismatch* unless it belongs to a
named departure, and each departure is checked to be exactly what it is said to be (so a
change in torchao shows up as a mismatch, not as a silently wider exception):

``scale0_floor``
    FLOOR, a finite non-zero block at scale code 0 (``max|x| < 2**(emax - 126)``): torchao
    divides by ``2**-126`` (it clamps the float scale to the smallest normal) while the code
    says ``2**-127``, so its codes are golden's codes of ``x / 2`` and its dequantised values
    half of OCP's.
``scale0_rceil``
    RCEIL, a finite non-zero block at scale code 0: torchao multiplies by 1.0 instead of
    ``2**127``, so every element rounds to a signed zero.
``rceil_log2``
    RCEIL, ``max|x|`` a few float32 ulps above ``max_normal * 2**s``: torchao's scale comes
    from the float32 ``log2(max|x| / max_normal)``, which rounds to the integer ``s``, so its
    scale is one code too small and the largest elements saturate; the block is exactly
    golden's FLOOR quantisation (whose scale is ``s``).
``nan``
    A NaN in the block: both give scale code 255 and all-NaN dequantised values, but torchao
    leaves element codes of NaN (FP8 NaN codes; arbitrary codes for FP6 and FP4) where the
    input was NaN (FLOOR) or in every element (RCEIL), where golden writes 0.
``inf``
    An infinity and no NaN: golden gives the NaN scale (255) and codes 0; torchao gives a
    finite scale (FLOOR: ``128 - emax`` unbiased, 255 - emax biased; RCEIL: 254), the
    infinity saturates to the largest normal (same sign) and the other elements are scaled
    as finite numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from golden import MXFPFormat, dequantize, quantize

#: torchao's element dtype for each golden element format.
TORCHAO_DTYPES = {"e4m3": torch.float8_e4m3fn, "e5m2": torch.float8_e5m2, "e3m2": "fp6_e3m2",
                  "e2m3": "fp6_e2m3", "e2m1": torch.float4_e2m1fn_x2}
#: The departures :func:`compare` names (see the module docstring).
DEPARTURES = ("scale0_floor", "scale0_rceil", "rceil_log2", "nan", "inf")
#: Bound on the relative excess of ``max|x|`` over ``max_normal * 2**s`` in ``rceil_log2``:
#: float32 ``log2`` near an integer ``s`` (|s| < 128) has an ulp of at most ``2**-17``, so it
#: can only swallow an excess below ``2**-17 / ln 2 < 2**-16``.
RCEIL_LOG2_EXCESS = 2.0 ** -16


def _torchao():
    """torchao's ``to_mx``, ``to_dtype`` and ``ScaleCalculationMode``, imported on first use
    (the import is slow and logs the absence of its CUDA kernels)."""
    from torchao.prototype.mx_formats.config import ScaleCalculationMode
    from torchao.prototype.mx_formats.mx_tensor import to_dtype, to_mx
    return to_mx, to_dtype, ScaleCalculationMode


def torchao_quantize(x: torch.Tensor, element: str, scale_rounding: str, block: int = 32
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(codes, scales, dequantised)`` from torchao for a contiguous ``x`` whose last axis is
    a multiple of ``block``: codes unpacked to one ``int64`` per element (FP4 bytes hold the
    first element in the low nibble), shape ``(*rest, n // block, block)``; E8M0 scale codes
    ``int64``, shape ``(*rest, n // block)``; dequantised float32, shape of ``x``."""
    to_mx, to_dtype, mode = _torchao()
    scaling = {"floor": mode.FLOOR, "rceil": mode.RCEIL}[scale_rounding]
    dtype = TORCHAO_DTYPES[element]
    scale, data = to_mx(x.contiguous(), dtype, block, scaling)
    back = to_dtype(data, scale, dtype, block, torch.float32)
    codes = data.view(torch.uint8)
    if element == "e2m1":
        codes = torch.stack([codes & 0xF, codes >> 4], dim=-1).flatten(-2)
    codes = codes.reshape(*x.shape[:-1], x.shape[-1] // block, block).to(torch.int64)
    scales = scale.view(torch.uint8).reshape(codes.shape[:-1]).to(torch.int64)
    return codes, scales, back


def _same_floats(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per element: the same float32 bits, or both NaN."""
    return (a.view(torch.int32) == b.view(torch.int32)) | (a.isnan() & b.isnan())


@dataclass
class Comparison:
    """What :func:`compare` found.

    Members
    -------
    blocks : int
        Blocks compared.
    classes : dict
        Blocks per departure of :data:`DEPARTURES`, and ``"equal"`` for the rest (which must
        then be equal in codes, scale and dequantised bits).
    mismatches : list of str
        One line per block that is neither equal nor exactly a named departure (at most
        ``limit``), naming the row, the block, its values and both answers.
    mismatch_count : int
        All such blocks.
    """

    blocks: int = 0
    classes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("equal", *DEPARTURES), 0))
    mismatches: list[str] = field(default_factory=list)
    mismatch_count: int = 0

    def add(self, other: Comparison, limit: int = 20) -> None:
        """Fold ``other`` into this one."""
        self.blocks += other.blocks
        for k, v in other.classes.items():
            self.classes[k] += v
        self.mismatches += other.mismatches[:max(0, limit - len(self.mismatches))]
        self.mismatch_count += other.mismatch_count


def compare(x: torch.Tensor, element: str, scale_rounding: str, *, block: int = 32,
            limit: int = 20, reference: tuple | None = None) -> Comparison:
    """Quantise the 2-D float32 or bfloat16 ``x`` (columns a multiple of ``block``) with
    golden and with torchao, and sort every block (see the module docstring).

    ``reference`` replaces torchao's ``(codes, scales, dequantised)``; the tests use it to
    show that a wrong value is caught.
    """
    if x.dim() != 2 or x.shape[1] % block:
        raise ValueError(f"x must be 2-D with a multiple of {block} columns, not "
                         f"{tuple(x.shape)}")
    fmt = MXFPFormat(element, block=block, scale_rounding=scale_rounding)
    q = quantize(x, fmt)
    codes, scales, back = reference or torchao_quantize(x, element, scale_rounding, block)
    ours = dequantize(q).reshape(back.shape)
    xb = x.float().reshape(codes.shape)
    width = fmt.element_bits
    max_code = fmt.element.finite_codes - 1

    same = (q.codes == codes).all(-1) & (q.exponent == scales) & \
        _same_floats(ours, back).reshape(codes.shape).all(-1)
    has_nan = xb.isnan().any(-1)
    has_inf = xb.isinf().any(-1) & ~has_nan
    amax = torch.where((has_nan | has_inf).unsqueeze(-1), 0, xb.abs()).amax(-1)
    scale0 = ~has_nan & ~has_inf & (amax > 0) & (q.exponent == 0)
    found = {"equal": same}

    # nan: both NaN scale, both all-NaN values; golden codes 0.
    nan_ok = has_nan & (scales == 255) & (q.exponent == 255) & (q.codes == 0).all(-1) & \
        back.reshape(codes.shape).isnan().all(-1) & ours.reshape(codes.shape).isnan().all(-1)
    found["nan"] = nan_ok

    # inf: golden NaN scale and codes 0; torchao a finite scale, the infinity saturated.
    inf_scale = 254 if scale_rounding == "rceil" else min(255 - fmt.element.emax, 254)
    pos_inf, neg_inf = xb == math.inf, xb == -math.inf
    sat = torch.where(pos_inf, codes == max_code, True) & \
        torch.where(neg_inf, codes == max_code | (1 << (width - 1)), True)
    found["inf"] = has_inf & (q.exponent == 255) & (q.codes == 0).all(-1) & \
        (scales == inf_scale) & sat.all(-1)

    sign = torch.signbit(xb).to(torch.int64) << (width - 1)
    if scale0.any():
        if scale_rounding == "floor":
            # torchao's codes are golden's codes of x / 2 (exact in float64; still scale 0),
            # computed for the rows that need it only.
            rows = scale0.any(-1).nonzero().flatten()
            half = quantize(x[rows].double() / 2, fmt)
            match = torch.zeros_like(scale0)
            match[rows] = (half.exponent == 0) & (codes[rows] == half.codes).all(-1)
            found["scale0_floor"] = scale0 & (scales == 0) & match
        else:
            found["scale0_rceil"] = scale0 & (scales == 0) & (codes == sign).all(-1)
    if scale_rounding == "rceil":
        low = ~same & ~has_nan & ~has_inf & ~scale0 & (scales == q.exponent - 1)
        if low.any():
            rows = low.any(-1).nonzero().flatten()
            floor = quantize(x[rows], MXFPFormat(element, block=block, scale_rounding="floor"))
            s = (q.exponent[rows] - 1 - 127).to(torch.float64)
            excess = amax[rows].double() / (fmt.element.max_normal * torch.exp2(s)) - 1
            # At scale code 0 torchao's codes are signed zeros, as in scale0_rceil.
            want = torch.where((scales[rows] == 0).unsqueeze(-1), sign[rows], floor.codes)
            match = torch.zeros_like(low)
            match[rows] = (floor.exponent == scales[rows]) & (want == codes[rows]).all(-1) & \
                (excess > 0) & (excess < RCEIL_LOG2_EXCESS)
            found["rceil_log2"] = low & match

    out = Comparison(blocks=int(same.numel()))
    ok = same.clone()
    for name, mask in found.items():
        mask = mask & ~same if name != "equal" else mask
        out.classes[name] = int(mask.sum())
        ok |= mask
    bad = ~ok
    out.mismatch_count = int(bad.sum())
    for r, b in bad.nonzero().tolist()[:limit]:
        out.mismatches.append(
            f"{fmt.name} row {r} block {b}: x = {xb[r, b].tolist()}; golden scale "
            f"{int(q.exponent[r, b])} codes {q.codes[r, b].tolist()}; torchao scale "
            f"{int(scales[r, b])} codes {codes[r, b].tolist()}")
    return out


def adversarial(element: str, seed: int, repeats: int = 1) -> torch.Tensor:
    """Blocks of 32 float32 values that probe the edges, shape ``(rows, 32)``, random signs:

    * ties: every midpoint between neighbouring element magnitudes (and the midpoint above
      the largest normal) at scales ``2**k``, each block led by ``max_normal * 2**k`` so
      that the scale is ``k`` in both scale roundings;
    * block maxima just below and at powers of two, and at, one ulp either side of and a few
      ulps above ``max_normal * 2**k``;
    * element subnormals (values far below the block maximum) and float32 subnormal inputs;
    * blocks at the bottom of the scale range (``max|x|`` from ``2**-127`` to ``2**-110``);
    * huge values near the float32 maximum;
    * zeros, ``-0.0``, and ``inf``, ``-inf`` and NaN among finite values.
    """
    from tests.reference_mxfp import ELEMENTS as DEFINITION
    gen = torch.Generator().manual_seed(seed)
    mags = [float(m) for m in DEFINITION[element].magnitudes]
    top = mags[-1]
    mids = [(a + b) / 2 for a, b in zip(mags, mags[1:], strict=False)]
    mids.append(top + (top - mags[-2]) / 2)
    rows = []

    def row(values: list[float]) -> None:
        values = (values * (32 // max(len(values), 1) + 1))[:32]
        rows.append(values)

    f32 = torch.finfo(torch.float32)
    for _ in range(repeats):
        for k in torch.randint(-126, 120, (24,), generator=gen).tolist() + [-127, -126, 0, 1]:
            p = 2.0 ** k
            for i in range(0, len(mids), 31):
                row([top * p] + [m * p for m in mids[i:i + 31]])
            v = torch.tensor(top * p, dtype=torch.float32)
            up = torch.nextafter(v, torch.tensor(math.inf))
            row([float(v)] + [float(torch.nextafter(v, torch.tensor(0.0)))] * 31)
            row([float(up)] + mags[:31])
            for ulps in (2, 3, 8, 40, 200):
                row([float(v) * (1 + ulps * 2.0 ** -23)] + [m * p / 3 for m in mags[:31]])
            w = torch.tensor(2.0 ** k, dtype=torch.float32)
            row([float(torch.nextafter(w, torch.tensor(0.0))), float(w) / 3, float(w) / 7])
            row([float(w)] + [float(w) * 2.0 ** -j for j in range(1, 32)])  # element subnormals
        for k in range(-127, -109):
            row([2.0 ** k] + torch.rand(31, generator=gen).mul(2.0 ** k).tolist())
        row([f32.tiny * j / 64 for j in range(1, 33)])  # float32 subnormals
        row([f32.tiny / 3, 2.0 ** -149, 2.0 ** -148, 3 * 2.0 ** -149] + [0.0] * 28)
        row([f32.max, float(torch.nextafter(torch.tensor(f32.max), torch.tensor(0.0))),
             2.0 ** 127, 1.9 * 2.0 ** 127, 1.0, 2.0 ** 100])
        row([0.0] * 32)
        row([-0.0] * 32)
        row([0.0, -0.0] * 16)
        for special in (math.inf, -math.inf, math.nan):
            row([special] + torch.randn(31, generator=gen).tolist())
            row([1e-3, special, 5.0, -special] + [0.0, -0.0] * 14)
    x = torch.tensor(rows, dtype=torch.float32)
    signs = torch.randint(0, 2, x.shape, generator=gen).bool()
    return torch.where(signs, -x, x)
