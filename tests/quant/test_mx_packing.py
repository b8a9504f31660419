"""Real bits on disk: packing round trips and the packed layout."""

import math

import pytest
import torch

from dmrx.quant import MX_FORMATS, dequantize_mx, fake_quantize_mx, quantize_mx
from dmrx.quant.mx import pack_bits, unpack_bits


@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8])
@pytest.mark.parametrize("n", [1, 5, 32, 77])
def test_pack_unpack_round_trip(bits, n):
    torch.manual_seed(n)
    codes = torch.randint(0, 1 << bits, (n,), dtype=torch.uint8)
    packed = pack_bits(codes, bits)
    assert packed.dtype == torch.uint8 and packed.numel() == math.ceil(n * bits / 8)
    assert torch.equal(unpack_bits(packed, bits, n), codes)


def test_fp4_is_two_per_byte_low_nibble_first():
    assert pack_bits(torch.tensor([0x1, 0x2, 0xF], dtype=torch.uint8), 4).tolist() == [0x21,
                                                                                      0x0F]


def test_fp6_is_four_per_three_bytes():
    codes = torch.tensor([1, 2, 3, 4], dtype=torch.uint8)
    word = 1 | 2 << 6 | 3 << 12 | 4 << 18
    assert pack_bits(codes, 6).tolist() == [word & 0xFF, word >> 8 & 0xFF, word >> 16]


def test_unpack_refuses_a_wrong_length():
    with pytest.raises(ValueError, match="need 3"):
        unpack_bits(torch.zeros(2, dtype=torch.uint8), 6, 4)


@pytest.mark.parametrize("fmt", MX_FORMATS)
@pytest.mark.parametrize("shape, axis", [((4, 64), -1), ((3, 40, 5), 1), ((70,), 0)])
def test_quantize_dequantize_equals_fake_quantize(fmt, shape, axis):
    torch.manual_seed(0)
    x = torch.randn(shape) * 3
    t = quantize_mx(x, fmt, axis=axis)
    bits = int(fmt[4]) if fmt.startswith("mxfp") else 8
    assert t.packed.numel() == math.ceil(x.numel() * bits / 8)  # padding is not stored
    assert torch.equal(dequantize_mx(t), fake_quantize_mx(x, fmt, axis=axis))
