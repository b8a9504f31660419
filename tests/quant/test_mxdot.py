"""The MX dot product and the layers on it, against a float64 reference of the same
quantized operands."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dmrx.quant import MXConv2d, MXLinear, fake_quantize_mx, mx_matmul


@pytest.mark.parametrize("fmt_a, fmt_b", [("mxfp8_e4m3", "mxfp8_e4m3"),
                                          ("mxfp4_e2m1", "mxfp6_e2m3"),
                                          ("mxint8", "mxfp8_e5m2")])
def test_mx_matmul_matches_float64_reference(fmt_a, fmt_b):
    torch.manual_seed(0)
    a = torch.randn(16, 100) * torch.logspace(-2, 2, 100)
    b = torch.randn(8, 100)
    ref = fake_quantize_mx(a.double(), fmt_a) @ fake_quantize_mx(b.double(), fmt_b).T
    out = mx_matmul(a, b, fmt_a, fmt_b)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, rtol=2e-6, atol=1e-6 * ref.abs().max().item())
    # and it is not the unquantized product
    assert (out.double() - a.double() @ b.double().T).abs().max() > 1e-3


def test_fp32_accumulation_rounds_like_fp32():
    # two blocks whose scaled sums differ by 2^25: the small one vanishes in an FP32 sum
    a = torch.zeros(1, 64, dtype=torch.float64)
    a[0, 0], a[0, 32] = 2.0 ** 25, 1.0
    out = mx_matmul(a, torch.ones(1, 64, dtype=torch.float64), "mxfp8_e4m3")
    assert out.item() == 2.0 ** 25  # float64 would give 2^25 + 1


def test_nan_block_propagates():
    a = torch.randn(2, 64)
    a[0, 3] = float("nan")
    out = mx_matmul(a, torch.randn(3, 64), "mxfp8_e4m3")
    assert out[0].isnan().all() and out[1].isfinite().all()


def test_mx_linear_matches_reference():
    torch.manual_seed(1)
    lin = nn.Linear(48, 5)
    x = torch.randn(2, 3, 48)
    out = MXLinear(lin, "mxfp6_e3m2")(x)
    ref = F.linear(fake_quantize_mx(x.double(), "mxfp6_e3m2"),
                   fake_quantize_mx(lin.weight.double(), "mxfp6_e3m2"), lin.bias.double())
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels, dilation", [(32, (1, 1)), (12, (2, 3))])
def test_mx_conv2d_matches_channel_blocked_reference(channels, dilation):
    torch.manual_seed(2)
    conv = nn.Conv2d(channels, 6, 3, padding=dilation, dilation=dilation)
    x = torch.randn(2, channels, 7, 9)
    out = MXConv2d(conv, "mxfp4_e2m1", "mxfp8_e4m3")(x)
    # blocks run along the input channels, per pixel (activations) and per tap (weights)
    ref = F.conv2d(fake_quantize_mx(x.double(), "mxfp8_e4m3", axis=1),
                   fake_quantize_mx(conv.weight.double(), "mxfp4_e2m1", axis=1),
                   conv.bias.double(), padding=dilation, dilation=dilation)
    assert out.shape == ref.shape
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
