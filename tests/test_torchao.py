"""golden's MXFP quantiser bit-exact against torchao 0.18's ``to_mx`` (FLOOR and RCEIL), and
every place where torchao departs from OCP MX v1.0 named and asserted as torchao's behaviour.

Breadth (>= 10 million values per format and scale rounding) is in
``python -m benchmarks.torchao_compare``; here a few hundred thousand per pair: random
wide-range signed values (float32 and bfloat16), the adversarial blocks of
:func:`tests.torchao_reference.adversarial` and MiniLM weight matrices.
"""

from __future__ import annotations

import math

import pytest
import torch

from golden import SCALE_ROUNDINGS, MXFPFormat, dequantize, quantize
from tests.torchao_reference import (
    DEPARTURES,
    TORCHAO_DTYPES,
    adversarial,
    compare,
    torchao_quantize,
)

FORMATS = tuple(TORCHAO_DTYPES)
#: The departures each scale rounding shows on the adversarial blocks.
EXPECTED = {"floor": {"scale0_floor", "nan", "inf"},
            "rceil": {"scale0_rceil", "rceil_log2", "nan", "inf"}}


def wide_range(rows: int, seed: int) -> torch.Tensor:
    """Signed normal values times ``2**e``, ``e`` uniform per block over most of the float32
    range and spread by a further ``2**-20 .. 2**4`` per element, shape ``(rows, 32)``."""
    gen = torch.Generator().manual_seed(seed)
    e = torch.randint(-135, 122, (rows, 1), generator=gen) + \
        torch.randint(-20, 5, (rows, 32), generator=gen)
    return torch.randn(rows, 32, generator=gen) * torch.exp2(e.float())


def check(x: torch.Tensor, element: str, scale_rounding: str, what: str) -> dict[str, int]:
    result = compare(x, element, scale_rounding)
    shown = "\n".join(result.mismatches)
    assert result.mismatch_count == 0, \
        f"{what}: {result.mismatch_count} of {result.blocks} blocks differ\n{shown}"
    return result.classes


@pytest.mark.parametrize("scale_rounding", SCALE_ROUNDINGS)
@pytest.mark.parametrize("element", FORMATS)
def test_random_wide_range(element, scale_rounding):
    seed = 7 + FORMATS.index(element)
    print(f"seed {seed}")
    x = wide_range(4096, seed)
    classes = check(x, element, scale_rounding, f"float32, seed {seed}")
    assert classes["equal"] > 0.9 * 4096
    xb = wide_range(1024, seed + 100).to(torch.bfloat16)
    check(xb, element, scale_rounding, f"bfloat16, seed {seed + 100}")


@pytest.mark.parametrize("scale_rounding", SCALE_ROUNDINGS)
@pytest.mark.parametrize("element", FORMATS)
def test_adversarial(element, scale_rounding):
    """Ties, powers of two, the max-normal neighbourhood, subnormals, the bottom and top of
    the scale range, zeros and specials: equal, or exactly a named departure; and each
    departure this scale rounding has still occurs (a torchao that changes fails here)."""
    seed = 30 + FORMATS.index(element)
    print(f"seed {seed}")
    classes = check(adversarial(element, seed), element, scale_rounding, f"seed {seed}")
    present = {d for d in DEPARTURES if classes[d]}
    assert present == EXPECTED[scale_rounding], classes


@pytest.fixture(scope="module")
def minilm_weights() -> list[torch.Tensor]:
    from safetensors.torch import load_file

    from models.load import resolve_model
    weights = load_file(str(resolve_model("minilm") / "model.safetensors"))
    names = ["encoder.layer.0.attention.self.query.weight",
             "encoder.layer.3.intermediate.dense.weight", "encoder.layer.5.output.dense.weight"]
    return [weights[n][:128].contiguous() for n in names]


@pytest.mark.parametrize("scale_rounding", SCALE_ROUNDINGS)
@pytest.mark.parametrize("element", FORMATS)
def test_minilm_weights(minilm_weights, element, scale_rounding):
    for w in minilm_weights:
        classes = check(w, element, scale_rounding, f"MiniLM {tuple(w.shape)}")
        assert classes["equal"] == w.numel() // 32


def test_checker_catches_injected_wrong_values():
    x = adversarial("e4m3", 5)
    codes, scales, back = torchao_quantize(x, "e4m3", "floor")
    assert compare(x, "e4m3", "floor", reference=(codes, scales, back)).mismatch_count == 0
    q = quantize(x, MXFPFormat("e4m3"))
    equal = ((q.codes == codes).all(-1) & (q.exponent == scales)).flatten().nonzero()
    half = (q.exponent.flatten() == 0) & (q.codes != codes).any(-1).flatten()
    r = int(equal[len(equal) // 2])   # an ordinary block
    z = int(half.nonzero()[0])          # a scale0_floor departure
    for row, j in ((r, 3), (z, 0)):
        wrong = codes.clone()
        wrong[row, 0, j] ^= 1
        result = compare(x, "e4m3", "floor", reference=(wrong, scales, back))
        assert result.mismatch_count == 1 and f"row {row} block 0" in result.mismatches[0]
    wrong = scales.clone()
    wrong[r, 0] += 1
    assert compare(x, "e4m3", "floor", reference=(codes, wrong, back)).mismatch_count == 1
    wrong = back.clone()
    wrong[r, 7] = torch.nextafter(wrong[r, 7], torch.tensor(math.inf))
    assert compare(x, "e4m3", "floor", reference=(codes, scales, wrong)).mismatch_count == 1


# --- each departure, on one readable block ------------------------------------------------

def test_departure_floor_scale_code_0_halves_values():
    """FLOOR, max|x| = 2**-120 in E4M3 (emax 8): the scale is 2**-128, clamped to code 0
    (2**-127). OCP: 2**-120 / 2**-127 = 128, code 0x70. torchao divides by 2**-126: 64, code
    0x68, and so dequantises to 2**-121."""
    x = torch.full((1, 32), 2.0 ** -120)
    codes, scales, back = torchao_quantize(x, "e4m3", "floor")
    q = quantize(x, MXFPFormat("e4m3"))
    assert int(q.exponent) == int(scales) == 0
    assert set(q.codes.flatten().tolist()) == {0x70} and set(codes.flatten().tolist()) == {0x68}
    assert set(dequantize(q).flatten().tolist()) == {2.0 ** -120}
    assert set(back.flatten().tolist()) == {2.0 ** -121}


def test_departure_rceil_scale_code_0_gives_zeros():
    """RCEIL, same block: OCP scale code 0 (the smallest scale with 2**-120 <= 448 * 2**s is
    2**-128, clamped), code 0x70 as for FLOOR. torchao multiplies by 1.0 instead of 2**127,
    so every element is +0 (or -0 for a negative)."""
    x = torch.full((1, 32), 2.0 ** -120)
    x[0, 1] = -x[0, 1]
    codes, scales, back = torchao_quantize(x, "e4m3", "rceil")
    q = quantize(x, MXFPFormat("e4m3", scale_rounding="rceil"))
    assert int(q.exponent) == int(scales) == 0
    assert q.codes[0, 0, :3].tolist() == [0x70, 0xF0, 0x70]
    assert codes[0, 0, :3].tolist() == [0x00, 0x80, 0x00]
    assert back[0, :2].tolist() == [0.0, -0.0] and math.copysign(1, back[0, 1]) < 0


def test_departure_rceil_scale_from_float32_log2():
    """RCEIL, max|x| one float32 ulp above 448 * 2**20: the smallest scale that holds it is
    2**21 (OCP-style round-up, golden), but float32 log2(max|x| / 448) rounds to 20.0, so
    torchao picks 2**20 and saturates the element to 448: golden's FLOOR block."""
    v = torch.nextafter(torch.tensor(448.0 * 2 ** 20), torch.tensor(math.inf))
    x = torch.full((1, 32), 2.0 ** 18)
    x[0, 0] = v
    codes, scales, _ = torchao_quantize(x, "e4m3", "rceil")
    q = quantize(x, MXFPFormat("e4m3", scale_rounding="rceil"))
    floor = quantize(x, MXFPFormat("e4m3"))
    assert int(q.exponent) == 127 + 21 and int(scales) == int(floor.exponent) == 127 + 20
    assert int(codes[0, 0, 0]) == 0x7E == int(floor.codes[0, 0, 0])  # 448, saturated
    assert int(q.codes[0, 0, 0]) == 0x76  # 224 * 2**21 = 448 * 2**20 (the ulp rounds off)
    assert torch.equal(codes, floor.codes)


@pytest.mark.parametrize("scale_rounding", SCALE_ROUNDINGS)
def test_departure_nan_block_codes(scale_rounding):
    """A NaN in the block: scale code 255 in both, all values NaN in both; golden's codes are
    0, torchao's are E4M3 NaN (0x7F / 0xFF) where the input was NaN (FLOOR) or everywhere
    (RCEIL)."""
    x = torch.ones(1, 32)
    x[0, 2] = math.nan
    codes, scales, back = torchao_quantize(x, "e4m3", scale_rounding)
    q = quantize(x, MXFPFormat("e4m3", scale_rounding=scale_rounding))
    assert int(q.exponent) == int(scales) == 255
    assert q.codes.abs().sum() == 0
    assert (codes[0, 0, 2] & 0x7F) == 0x7F
    if scale_rounding == "floor":
        assert (codes[0, 0, [0, 1, 3]] == 0).all()
    else:
        assert ((codes & 0x7F) == 0x7F).all()
    assert back.isnan().all() and dequantize(q).isnan().all()


@pytest.mark.parametrize(("scale_rounding", "scale"), [("floor", 247), ("rceil", 254)])
def test_departure_inf_block_has_a_finite_scale(scale_rounding, scale):
    """An infinity in the block: golden gives the NaN scale (OCP: the block is not
    representable) and codes 0; torchao a finite scale (FLOOR: the float32 exponent field of
    inf, 128, minus emax 8; RCEIL: 254) with the infinity saturated to 448."""
    x = torch.ones(1, 32)
    x[0, 0], x[0, 1] = math.inf, -math.inf
    codes, scales, back = torchao_quantize(x, "e4m3", scale_rounding)
    q = quantize(x, MXFPFormat("e4m3", scale_rounding=scale_rounding))
    assert int(q.exponent) == 255 and q.codes.abs().sum() == 0 and dequantize(q).isnan().all()
    assert int(scales) == scale
    assert codes[0, 0, :3].tolist() == [0x7E, 0xFE, 0]
    assert not back.isnan().any()


@pytest.mark.parametrize("scale_rounding", SCALE_ROUNDINGS)
def test_zero_blocks_agree(scale_rounding):
    """All-zero blocks: scale code 0 and signed zero codes in both (no departure)."""
    x = torch.zeros(2, 32)
    x[1, ::2] = -0.0
    codes, scales, _ = torchao_quantize(x, "e2m1", scale_rounding)
    q = quantize(x, MXFPFormat("e2m1", scale_rounding=scale_rounding))
    assert scales.tolist() == q.exponent.tolist() == [[0], [0]]
    assert torch.equal(codes, q.codes.to(torch.int64))
    assert codes[1, 0, :2].tolist() == [8, 0]
