"""golden.pack: element codes to bytes and back, against PyTorch's float8 dtypes, torchao's FP4
packing and gpt-oss's nibble order."""

from __future__ import annotations

import math

import pytest
import torch

from golden import MXFPFormat, MXIntFormat, pack, quantize, torch_view, unpack
from tests.reference_mxfp import ELEMENTS as DEFINITION
from tests.torchao_reference import torchao_quantize


@pytest.mark.parametrize(("element", "bits"), [("e2m1", 4), ("e3m2", 6), ("e2m3", 6),
                                               ("e4m3", 8), ("e5m2", 8)])
def test_round_trip_every_code(element, bits):
    gen = torch.Generator().manual_seed(bits)
    codes = torch.randint(0, 1 << bits, (3, 5, 256), generator=gen, dtype=torch.int32)
    codes[0, 0, :1 << bits] = torch.arange(1 << bits)
    data = pack(codes, bits)
    assert data.dtype == torch.uint8
    assert data.shape == ((3, 5, 128) if bits == 4 else (3, 5, 256))
    assert torch.equal(unpack(data, bits), codes)


def test_fp4_nibble_order():
    """First element in the low nibble (float4_e2m1fn_x2, gpt-oss)."""
    assert pack(torch.tensor([0x2, 0xC, 0xF, 0x0]), 4).tolist() == [0xC2, 0x0F]
    assert unpack(torch.tensor([0xC2], dtype=torch.uint8), 4).tolist() == [0x2, 0xC]


@pytest.mark.parametrize("shape", [(4,), (3, 32), (2, 2, 64)])
def test_dense_fp6_bit_stream(shape):
    """Dense FP6 is the codes written as one little-endian bit stream, six bits each, the
    first code in the lowest bits: checked against that definition built with Python
    integers, and round-tripped, over every code value."""
    gen = torch.Generator().manual_seed(len(shape))
    codes = torch.randint(0, 64, shape, generator=gen, dtype=torch.int32)
    codes.view(-1)[:64] = torch.arange(64)[:codes.numel()]
    data = pack(codes, 6, dense=True)
    assert data.dtype == torch.uint8 and data.shape == (*shape[:-1], shape[-1] * 3 // 4)
    for row, got in zip(codes.reshape(-1, shape[-1]).tolist(),
                        data.reshape(-1, data.shape[-1]).tolist(), strict=True):
        stream = sum(c << (6 * i) for i, c in enumerate(row))
        assert got == list(stream.to_bytes(len(got), "little"))
    assert torch.equal(unpack(data, 6, dense=True), codes)


def test_dense_fp6_of_a_quantised_tensor():
    """An MXFP6 tensor packs densely to 24 bytes per block of 32 (6 bits per element)."""
    x = torch.randn(4, 64, generator=torch.Generator().manual_seed(6)) * 3
    for element in ("e3m2", "e2m3"):
        q = quantize(x, MXFPFormat(element))
        data = pack(q, dense=True)
        assert data.shape == (4, 2, 24)
        assert torch.equal(unpack(data, 6, dense=True), q.codes)
        assert torch.equal(unpack(data, 6, dense=True), unpack(pack(q), 6))


@pytest.mark.parametrize("element", ["e4m3", "e5m2"])
def test_fp8_bytes_are_torch_float8(element):
    """Every FP8 code: the packed byte viewed as PyTorch's float8 is the value OCP gives the
    code, and PyTorch's own cast of each finite value gives the same byte back."""
    codes = torch.arange(256, dtype=torch.int32)
    data = pack(codes, 8)
    values = torch_view(data, element).to(torch.float32)
    dtype = torch.float8_e4m3fn if element == "e4m3" else torch.float8_e5m2
    assert values.dtype == torch.float32 and torch_view(data, element).dtype == dtype
    for code in range(256):
        v = DEFINITION[element].value(code)
        got = float(values[code])
        if v is None:
            assert got != got or abs(got) == float("inf"), (code, got)
        else:
            assert got == float(v) and math.copysign(1, got) == (-1 if code > 127 else 1), \
                (code, got)
            assert int(torch.tensor([got]).to(dtype).view(torch.uint8)) == code
    assert torch.equal(unpack(torch_view(data, element), 8), codes)


@pytest.mark.parametrize("scale_rounding", ["floor", "rceil"])
@pytest.mark.parametrize("element", ["e2m1", "e3m2", "e2m3", "e4m3", "e5m2"])
def test_packed_bytes_equal_torchao(element, scale_rounding):
    """golden's codes packed are torchao's data bytes (FP4 packed two per byte, FP6 one code
    per byte, FP8 as float8), on blocks where the two agree."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(16, 128, generator=gen) * 10.0
    q = quantize(x, MXFPFormat(element, scale_rounding=scale_rounding))
    from tests.torchao_reference import _torchao
    to_mx, _, mode = _torchao()
    dtype = {"e2m1": torch.float4_e2m1fn_x2, "e3m2": "fp6_e3m2", "e2m3": "fp6_e2m3",
             "e4m3": torch.float8_e4m3fn, "e5m2": torch.float8_e5m2}[element]
    scale, data = to_mx(x, dtype, 32, getattr(mode, scale_rounding.upper()))
    ours = pack(q).reshape(16, -1)
    assert torch.equal(ours, data.view(torch.uint8))
    if element in ("e4m3", "e5m2"):  # torchao keeps FP4 as uint8, not float4_e2m1fn_x2
        assert torch_view(ours, element).dtype == data.dtype
    assert torch.equal(unpack(data.view(torch.uint8), q.fmt.element_bits).reshape(q.codes.shape),
                       q.codes)
    codes, _, _ = torchao_quantize(x, element, scale_rounding)
    assert torch.equal(codes, q.codes.to(torch.int64))


def test_mxint8_bytes():
    x = torch.randn(4, 64, generator=torch.Generator().manual_seed(8))
    q = quantize(x, MXIntFormat(8, 8, 32))
    data = pack(q)
    assert data.dtype == torch.uint8 and data.shape == q.mantissa.shape
    assert torch.equal(data.view(torch.int8).to(torch.int32), q.mantissa)
    assert torch.equal(unpack(data, 8, signed=True), q.mantissa)
    assert pack(torch.tensor([-128, -1, 0, 127]), 8, signed=True).tolist() == [128, 255, 0, 127]


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: pack(torch.tensor([1.0]), 4), TypeError, "codes must be an integer tensor, not "
                                                      "torch.float32"),
    (lambda: pack([1, 2], 4), TypeError, "codes must be a torch.Tensor, not list"),
    (lambda: pack(torch.tensor([1, 2]), 5), ValueError, "bits must be one of (4, 6, 8), not 5"),
    (lambda: pack(torch.tensor([1, 2])), TypeError, "bits must be given"),
    (lambda: pack(torch.tensor([1, 2, 3]), 4), ValueError,
     "FP4 codes must have an even length along the last axis (two per byte), not 3"),
    (lambda: pack(torch.tensor([1, 16]), 4), ValueError,
     "codes must hold values from 0 to 15, not 16"),
    (lambda: pack(torch.tensor([-1, 0]), 8), ValueError,
     "codes must hold values from 0 to 255, not -1"),
    (lambda: pack(torch.tensor([64]), 6), ValueError, "codes must hold values from 0 to 63, "
                                                      "not 64"),
    (lambda: pack(torch.tensor([200]), 8, signed=True), ValueError,
     "codes must hold values from -128 to 127, not 200"),
    (lambda: pack(torch.tensor([1]), 4, signed=True), ValueError,
     "signed codes pack only with bits=8 (MXINT8), not bits=4"),
    (lambda: pack(quantize(torch.ones(32), MXFPFormat("e2m1")), 8), ValueError,
     "bits must be 4 for this MXFPTensor (mxfp4_k32), not 8"),
    (lambda: pack(quantize(torch.ones(32), MXIntFormat(6))), ValueError,
     "only MXINT8 packs to bytes; this MXIntTensor has 6-bit elements"),
    (lambda: pack(torch.tensor([1, 2, 3]), 6, dense=True), ValueError,
     "dense FP6 codes must have a length along the last axis that is a multiple of 4 (four "
     "codes in three bytes), not 3"),
    (lambda: pack(torch.tensor([1, 2]), 4, dense=True), ValueError,
     "dense packing is for 6-bit codes (FP6) only, not bits=4"),
    (lambda: pack(torch.tensor([1, 2, 3, 4]), 6, dense=1), TypeError,
     "dense must be a bool, not 1"),
    (lambda: pack(quantize(torch.ones(32), MXIntFormat(8)), dense=True), ValueError,
     "dense packing is for 6-bit codes (FP6) only, not bits=8"),
    (lambda: unpack(torch.tensor([1, 2], dtype=torch.uint8), 6, dense=True), ValueError,
     "dense FP6 data must have a length along the last axis that is a multiple of 3 (four "
     "codes in three bytes), not 2"),
    (lambda: unpack(torch.tensor([1], dtype=torch.uint8), 8, dense=True), ValueError,
     "dense packing is for 6-bit codes (FP6) only, not bits=8"),
    (lambda: unpack(torch.tensor([1, 2]), 4), TypeError,
     "data must be a uint8 tensor of packed codes, not torch.int64"),
    (lambda: unpack(torch.tensor([64], dtype=torch.uint8), 6), ValueError,
     "data (FP6, one code per byte) must hold values from 0 to 63, not 64"),
    (lambda: unpack(torch.tensor([1], dtype=torch.uint8), 3), ValueError,
     "bits must be one of (4, 6, 8), not 3"),
    (lambda: torch_view(torch.tensor([1], dtype=torch.uint8), "e3m2"), ValueError,
     "element must be one of 'e2m1', 'e4m3', 'e5m2' (PyTorch has no dtype for the others), "
     "not 'e3m2'"),
])
def test_bad_arguments(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)
