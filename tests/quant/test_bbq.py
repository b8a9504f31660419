"""BBQ: equiprobable levels on bell-shaped weights, integer-domain compute, STE gradients."""

import math

import pytest
import torch
import torch.nn.functional as F

from dmrx.quant import BBQWeight, entropy_bits
from dmrx.quant.bbq import hadamard, rotate
from dmrx.quant.layers import UniformWeight


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_levels_are_equiprobable_on_gaussian_weights(bits):
    torch.manual_seed(bits)
    w = torch.randn(64, 32, 3, 3) * 0.05
    q = BBQWeight(w, bits)
    ent = entropy_bits(q.codes(w), 1 << bits)
    assert ent >= 0.99 * bits
    # the uniform max-abs INT quantizer of the same width wastes most of its levels
    if bits == 4:
        u = UniformWeight(4)
        k = (u(w) / u._scale(w).reshape(-1, 1, 1, 1)).round().long() + 7
        assert entropy_bits(k, 16) < 0.9 * bits


def test_levels_are_uniform_integers_with_one_scale_per_channel():
    torch.manual_seed(0)
    w = torch.randn(8, 16, 3, 3)
    q = BBQWeight(w, 3)
    w_hat = q(w).detach()
    levels = rotate(w_hat, q.block) / q.step().detach().reshape(-1, 1, 1, 1)
    # zero point -1/2: half-integer levels, i.e. 2q is an odd integer in -(n-1)..(n-1)
    two_q = 2 * levels
    assert torch.allclose(two_q, two_q.round(), atol=1e-4)
    assert set(two_q.round().long().unique().tolist()) <= set(range(-7, 8, 2))
    # so the conv is an integer conv on Hadamard-rotated inputs, scaled per output channel
    x = torch.randn(2, 16, 5, 6)
    int_w = two_q.round()
    y_int = F.conv2d(rotate(x, q.block), int_w, padding=1)
    y = F.conv2d(x, w_hat, padding=1)
    torch.testing.assert_close(y_int * (q.step().detach() / 2).reshape(1, -1, 1, 1), y,
                               rtol=1e-4, atol=1e-4)


def test_hadamard_is_orthonormal_and_its_own_inverse():
    h = hadamard(16)
    torch.testing.assert_close(h @ h, torch.eye(16))
    w = torch.randn(3, 32, 3, 3)
    torch.testing.assert_close(rotate(rotate(w, 32), 32), w, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="n=12"):
        hadamard(12)


def test_ste_gradients_reach_the_weights_and_the_scale():
    torch.manual_seed(1)
    w = torch.randn(4, 8, 3, 3, requires_grad=True)
    q = BBQWeight(w.detach(), 4)
    (q(w) * torch.randn(4, 8, 3, 3)).sum().backward()
    assert w.grad is not None and w.grad.isfinite().all() and w.grad.abs().sum() > 0
    assert q.scale.grad is not None and q.scale.grad.abs().sum() > 0


def test_encode_decode_reproduces_the_forward_value():
    torch.manual_seed(2)
    w = torch.randn(6, 12, 3, 3)
    for bits in (2, 3, 4):
        q = BBQWeight(w, bits)
        tensors, meta = q.encode(w)
        assert tensors["codes"].numel() == math.ceil(w.numel() * bits / 8)
        torch.testing.assert_close(BBQWeight.decode(tensors, meta), q(w).detach(), rtol=0,
                                   atol=1e-6)


def test_bad_bits_are_refused():
    with pytest.raises(ValueError, match="bits=5"):
        BBQWeight(torch.randn(4, 4), 5)
    with pytest.raises(ValueError, match="scale_init='x'"):
        BBQWeight(torch.randn(4, 4), 4, scale_init="x")
    with pytest.raises(ValueError, match="latent_init='x'"):
        BBQWeight(torch.randn(4, 4), 4, latent_init="x")


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_nearest_latent_gives_the_trained_weights_nearest_levels(bits):
    """A trained weight used as BBQ's latent is quantile-warped (w_hat ~ 2 Phi(w / rms) - 1);
    the nearest latent's codes are instead the nearest levels of BBQ's own uniform grid."""
    torch.manual_seed(10 + bits)
    # a trained-looking weight: bell-shaped with a few large taps (heavier tails than Gaussian)
    w = torch.randn(16, 32, 3, 3) * 0.05 * (1 + 3 * (torch.rand(16, 32, 3, 3) < 0.02))
    q = BBQWeight(w, bits)
    latent = q.nearest_latent(w)
    w_hat = q(latent).detach()
    # an independent reference: per channel (Hadamard domain), round w / step to the grid
    n, off = 1 << bits, (1 << bits) // 2 + q.zero_point
    wr = rotate(w, q.block).flatten(1)
    step = q.step().detach()[:, None]
    ref_codes = torch.round(wr / step + off).clamp(0, n - 1)
    assert torch.equal(q.codes(latent).flatten(1), ref_codes.long())
    torch.testing.assert_close(rotate(w_hat, q.block).flatten(1), step * (ref_codes - off),
                               rtol=1e-5, atol=1e-6)

    def err(x):
        return float((x - w).square().sum() / w.square().sum())

    # the step is the MSE-best of its clipping grid: no worse than max-abs scaling of the grid
    amax = wr.abs().amax(1, keepdim=True) / (n - 1 - off)
    maxabs = rotate((amax * (torch.round(wr / amax + off).clamp(0, n - 1) - off))
                    .reshape(w.shape), q.block)
    assert err(w_hat) <= err(maxabs) + 1e-7
    # and better than the trained weight as its own latent (the warp); far better at 3-4 bits
    # (at 2 bits the equiprobable thresholds 0, +-0.67 rms are close to the MSE-best ones)
    warped = err(BBQWeight(w, bits, latent_init="float")(w).detach())
    assert err(w_hat) < (1.0 if bits == 2 else 0.5) * warped


def test_quantized_layer_starts_from_the_nearest_latent_unless_asked_for_the_float_one():
    from dmrx.quant.layers import QuantConv2d

    torch.manual_seed(3)
    conv = torch.nn.Conv2d(32, 8, 3, padding=1)
    x = torch.randn(2, 32, 6, 5)
    y = conv(x).detach()
    q = QuantConv2d(conv, "bbq4")
    assert q.wq.latent_init == "nearest"
    assert not torch.equal(q.weight, conv.weight)  # the latent is not the trained weight
    rel = float((q(x).detach() - y).square().mean() / y.square().mean())
    assert rel < 0.02
    # the layer's stored codes and scales reproduce its forward value
    tensors, meta = q.encode()
    torch.testing.assert_close(BBQWeight.decode(tensors, meta), q.wq(q.weight).detach(),
                               rtol=0, atol=1e-6)


def test_block_bbq_rows_are_the_input_channel_blocks_of_each_tap():
    from dmrx.quant import BBQBlockWeight

    w = torch.randn(3, 64, 3, 3)
    q = BBQBlockWeight(w, 4, 32)
    rows = q.rows(w)
    assert rows.shape == (3 * 9 * 2, 32)
    # row 0: output channel 0, tap (0, 0), input channels 0..31; row 1: the same, 32..63
    torch.testing.assert_close(rows[0], w[0, :32, 0, 0])
    torch.testing.assert_close(rows[1], w[0, 32:, 0, 0])
    torch.testing.assert_close(q.unrows(rows, w.shape), w)
    # input channels that are not a multiple of the block: the whole row at each tap
    assert BBQBlockWeight(torch.randn(4, 12, 3, 3), 4).rows(torch.randn(4, 12, 3, 3)).shape \
        == (36, 12)
    with pytest.raises(ValueError, match="block_size=1"):
        BBQBlockWeight(w, 4, 1)


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_block_bbq_boxes_are_equiprobable_and_scales_are_e4m3(bits):
    from dmrx.quant import BBQBlockWeight

    torch.manual_seed(20 + bits)
    w = torch.randn(32, 64, 3, 3) * 0.05
    q = BBQBlockWeight(w, bits, latent_init="float")  # the paper's map, Gaussian latent
    # each 32-value row has its own bell: pooled over rows the levels are used equally
    assert entropy_bits(q.codes(w), 1 << bits) >= 0.99 * bits
    # the applied scales are E4M3 numbers times one float32 per tensor
    s = q.inner.stored_scale().detach()
    g = s.abs().max() / 448
    torch.testing.assert_close((s / g).to(torch.float8_e4m3fn).float() * g, s, rtol=1e-6,
                               atol=0)
    tensors, meta = q.encode(w)
    rows = q.rows(w).shape[0]
    assert tensors["scales"].dtype == torch.uint8 and tensors["scales"].numel() == rows + 4
    torch.testing.assert_close(BBQBlockWeight.decode(tensors, meta), q(w).detach(), rtol=0,
                               atol=1e-7)
    # the same storage cost as MX (4 + 8 / 32 bits at 4 bits) plus one float32 per tensor
    assert q.bits_per_weight(tuple(w.shape)) == pytest.approx(bits + 8 / 32 + 32 / w.numel())
    bad = dict(tensors, scales=tensors["scales"][:-1])
    with pytest.raises(ValueError, match="e4m3 scales"):
        BBQBlockWeight.decode(bad, meta)


def test_block_bbq_follows_taps_of_different_size_better_than_per_channel_bbq():
    """Why the block granularity: a trained conv's taps differ in size (here the centre tap is
    8x the others); one bell per output channel spends its levels on the centre tap."""
    from dmrx.quant import BBQBlockWeight

    torch.manual_seed(4)
    w = torch.randn(16, 32, 3, 3) * 0.02
    w[:, :, 1, 1] *= 8

    def err(q):  # each quantizer from its nearest latent
        return float((q(q.nearest_latent(w)).detach() - w).square().sum() / w.square().sum())

    per_channel, per_block = BBQWeight(w, 4), BBQBlockWeight(w, 4, 32)
    assert err(per_block) < 0.5 * err(per_channel)
