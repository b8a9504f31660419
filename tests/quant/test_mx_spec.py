"""MX quantization against the rules of OCP MX v1.0, on hand-made vectors, and against
independent casts (torch float8, ml_dtypes fp6/fp4)."""

import math

import pytest
import torch

from dmrx.quant import MX_FORMATS, dequantize_mx, fake_quantize_mx, quantize_mx
from dmrx.quant.formats import ELEMENT_FORMATS
from dmrx.quant.mx import decode_elements, encode_elements


def _scale_code(x, fmt, **kw):
    return int(quantize_mx(torch.tensor(x, dtype=torch.float64), fmt, **kw).scales.reshape(-1)[0])


@pytest.mark.parametrize("fmt, amax, code", [
    ("mxfp8_e4m3", 1.0, 127 + 0 - 8),
    ("mxfp8_e4m3", 448.0, 127),
    ("mxfp8_e4m3", 0.75, 127 - 1 - 8),
    ("mxfp8_e5m2", 1.0, 127 - 15),
    ("mxfp6_e3m2", 17.0, 127 + 4 - 4),
    ("mxfp6_e2m3", 0.3, 127 - 2 - 2),
    ("mxfp4_e2m1", 6.0, 127),
    ("mxfp4_e2m1", 7.99, 127),
    ("mxint8", 1.5, 127),
    ("mxint8", 2.0, 128),
])
def test_shared_exponent_is_floor_log2_amax_minus_emax(fmt, amax, code):
    assert _scale_code([amax, -amax / 3, 0.0], fmt) == code
    assert _scale_code([-amax, amax / 5], fmt) == code  # sign does not matter


def test_shared_exponent_clamps_to_the_e8m0_range():
    assert _scale_code([2.0 ** -140], "mxfp8_e4m3") == 0  # -148 clamped to -127
    assert _scale_code([2.0 ** 200], "mxfp8_e4m3") == 254  # 192 clamped to 127
    big = fake_quantize_mx(torch.tensor([2.0 ** 200], dtype=torch.float64), "mxfp8_e4m3")
    assert big.item() == 448.0 * 2.0 ** 127  # saturates at the element max at the top scale


def test_zero_block_is_zero_with_the_smallest_scale():
    x = torch.zeros(2, 32)
    t = quantize_mx(x, "mxfp4_e2m1")
    assert t.scales.tolist() == [[0], [0]]
    assert torch.equal(dequantize_mx(t), x)


@pytest.mark.parametrize("fmt, x, expected", [
    ("mxfp8_e4m3", 500.0, 448.0), ("mxfp8_e5m2", 65000.0, 57344.0),
    ("mxfp6_e3m2", 31.0, 28.0), ("mxfp6_e2m3", 7.9, 7.5), ("mxfp4_e2m1", 7.0, 6.0),
    ("mxint8", 1.999, 127 / 64),
])
def test_values_beyond_the_element_max_saturate(fmt, x, expected):
    out = fake_quantize_mx(torch.tensor([x, -x, 1.0], dtype=torch.float64), fmt)
    assert out[:2].tolist() == [expected, -expected]


def test_fp4_rounds_to_nearest_even_incl_subnormals():
    x = torch.tensor([4.0, 2.5, 3.5, 0.25, 0.75, 1.25, 1.75, 5.0, -2.5, -0.25, 0.26])
    expected = [4.0, 2.0, 4.0, 0.0, 1.0, 1.0, 2.0, 4.0, -2.0, -0.0, 0.5]
    out = fake_quantize_mx(x, "mxfp4_e2m1")
    assert out.tolist() == expected
    assert torch.signbit(out[9])  # -0.25 rounds to -0


def test_e4m3_subnormals_at_a_unit_scale():
    # amax 256 -> scale 2^0; E4M3 subnormals are multiples of 2^-9
    x = torch.tensor([256.0, 2.0 ** -9, 3 * 2.0 ** -10, 2.0 ** -10, 5 * 2.0 ** -10])
    assert fake_quantize_mx(x, "mxfp8_e4m3").tolist() == [256.0, 2.0 ** -9, 2.0 ** -8, 0.0,
                                                          2.0 ** -8]


def test_mxint8_is_k_over_64():
    x = torch.tensor([1.0, 0.5 / 64, 1.5 / 64, -3.3 / 64], dtype=torch.float64)
    assert fake_quantize_mx(x, "mxint8").tolist() == [1.0, 0.0, 2 / 64, -3 / 64]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_or_inf_makes_the_whole_block_nan(bad):
    x = torch.ones(2, 32)
    x[0, 5] = bad
    t = quantize_mx(x, "mxfp8_e4m3")
    assert t.scales[0, 0] == 0xFF and t.scales[1, 0] == 127 - 8
    out = dequantize_mx(t)
    assert out[0].isnan().all() and torch.equal(out[1], torch.ones(32))
    assert torch.equal(fake_quantize_mx(x, "mxfp8_e4m3").isnan(), out.isnan())


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_partial_blocks_are_padded_along_any_axis(axis):
    torch.manual_seed(0)
    x = torch.randn(40, 40)
    x[35:, :] *= 100
    x[:, 35:] *= 100
    out = fake_quantize_mx(x, "mxfp4_e2m1", axis=axis)
    xm = x.movedim(axis, -1)
    # the 8-element tail is its own block: quantizing it alone gives the same values
    tail = fake_quantize_mx(xm[..., 32:].contiguous(), "mxfp4_e2m1")
    head = fake_quantize_mx(xm[..., :32].contiguous(), "mxfp4_e2m1")
    assert torch.equal(out.movedim(axis, -1), torch.cat([head, tail], -1))


def test_output_keeps_shape_and_dtype():
    x = torch.randn(3, 5, 7, dtype=torch.bfloat16)
    out = fake_quantize_mx(x, "mxfp8_e4m3", block_size=4, axis=1)
    assert out.shape == x.shape and out.dtype == torch.bfloat16


def test_bad_arguments_raise_naming_the_field():
    x = torch.randn(4, 32)
    with pytest.raises(ValueError, match="fmt='mxfp3'"):
        fake_quantize_mx(x, "mxfp3")
    with pytest.raises(ValueError, match="block_size=0"):
        fake_quantize_mx(x, "mxfp4", block_size=0)
    with pytest.raises(ValueError, match="axis=2"):
        fake_quantize_mx(x, "mxfp4", axis=2)
    with pytest.raises(ValueError, match="floating-point"):
        fake_quantize_mx(torch.ones(4, dtype=torch.int32), "mxfp4")


def _independent_e(block: torch.Tensor, emax: int) -> int:
    amax = float(block.abs().max())
    return max(-127, min(127, math.floor(math.log2(amax)) - emax)) if amax else -127


@pytest.mark.parametrize("fmt, dtype", [("mxfp8_e4m3", torch.float8_e4m3fn),
                                        ("mxfp8_e5m2", torch.float8_e5m2)])
def test_matches_torch_float8_casts(fmt, dtype):
    torch.manual_seed(1)
    x = torch.randn(64, 32) * torch.logspace(-3, 3, 64).unsqueeze(1)
    elem = ELEMENT_FORMATS[fmt]
    ref = torch.empty_like(x)
    for i, block in enumerate(x):
        s = 2.0 ** _independent_e(block, elem.emax)
        v = (block / s).clamp(-elem.max_value, elem.max_value)
        ref[i] = v.to(dtype).float() * s
    assert torch.equal(fake_quantize_mx(x, fmt), ref)


@pytest.mark.parametrize("fmt, name", [("mxfp6_e3m2", "float6_e3m2fn"),
                                       ("mxfp6_e2m3", "float6_e2m3fn"),
                                       ("mxfp4_e2m1", "float4_e2m1fn")])
def test_matches_ml_dtypes_casts(fmt, name):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    import numpy as np

    torch.manual_seed(2)
    x = torch.randn(64, 32, dtype=torch.float64) * torch.logspace(-3, 3, 64,
                                                                  dtype=torch.float64)[:, None]
    elem = ELEMENT_FORMATS[fmt]
    ref = torch.empty_like(x)
    for i, block in enumerate(x):
        s = 2.0 ** _independent_e(block, elem.emax)
        v = (block / s).clamp(-elem.max_value, elem.max_value).numpy()
        ref[i] = torch.from_numpy(v.astype(getattr(ml_dtypes, name)).astype(np.float64)) * s
    assert torch.equal(fake_quantize_mx(x, fmt), ref)


@pytest.mark.parametrize("fmt, dtype", [("mxfp8_e4m3", torch.float8_e4m3fn),
                                        ("mxfp8_e5m2", torch.float8_e5m2)])
def test_all_256_element_codes_decode_like_torch(fmt, dtype):
    codes = torch.arange(256, dtype=torch.uint8)
    ref = codes.view(dtype).to(torch.float64)
    ours = decode_elements(codes, ELEMENT_FORMATS[fmt])
    assert torch.equal(ours.isnan(), ref.isnan())
    ok = ~ref.isnan()
    assert torch.equal(ours[ok], ref[ok])
    finite = ok & ref.isfinite()
    assert torch.equal(encode_elements(ours[finite], ELEMENT_FORMATS[fmt]), codes[finite])


@pytest.mark.parametrize("fmt", MX_FORMATS)
def test_every_e8m0_scale_code_round_trips_bit_for_bit(fmt):
    elem = ELEMENT_FORMATS[fmt]
    codes = torch.arange(1 << elem.bits, dtype=torch.uint8)
    values = decode_elements(codes, elem)
    values = values[values.isfinite() & (values.abs() <= elem.max_value)]  # MXINT8: not -128
    top = elem.max_value  # puts floor(log2 amax) at emax: the scale is exactly 2^s
    block = torch.cat([torch.tensor([top]), values[torch.randperm(len(values))[:31]]])
    for s in range(-127, 128):
        x = block * 2.0 ** s
        t = quantize_mx(x, fmt)
        assert int(t.scales[0]) == s + 127
        assert torch.equal(dequantize_mx(t, torch.float64), x)
