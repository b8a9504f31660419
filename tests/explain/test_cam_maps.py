import pytest
import torch

from dmrx.explain import (
    BlockError,
    FusionCAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LLRMagnitude,
    LogLikelihood,
    ScoreCAM,
    mass_share,
)
from dmrx.explain.fusion_cam import denoise
from dmrx.nn import NeuralReceiver, ResNetConfig

METHODS = [GradCAM, GradCAMPlusPlus, HiResCAM, ScoreCAM, FusionCAM]
NO = 0.1


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
@pytest.mark.parametrize("kind", ["llr-magnitude", "log-likelihood"])
def test_each_method_concentrates_on_the_res_the_output_depends_on(ref_link, region, region_rx,
                                                                  method, kind):
    y = region_rx.slots(3)
    c = torch.ones(3, ref_link.num_coded_bits)  # the receiver's LLRs are > 0: bits are 1
    target = LLRMagnitude(ref_link) if kind == "llr-magnitude" else LogLikelihood(ref_link)
    maps = method(region_rx, "conv")(y, NO, target, c)
    assert maps.shape == (3, ref_link.num_ofdm_symbols, ref_link.fft_size)
    assert maps.dtype == torch.float32 and maps.min() >= 0 and maps.amax(dim=(1, 2)).eq(1).all()
    # the distractor channels are far larger than the read one: a wrong weighting shows
    assert (mass_share(maps, region) > 0.99).all()
    flat_peak = maps.flatten(1).argmax(1)
    assert region.flatten()[flat_peak].all()


def test_grad_cam_weights_are_the_mean_gradient(ref_link, region, region_rx):
    """Hand-computed: LLRMagnitude of the block = 2304 * gain * sum_S A_0, so dT/dA_0 =
    2304 * gain on every RE, and the map is A_0 = Re(conj(s) y) = |s|^2 = 1 on S."""
    y = region_rx.slots(1)
    maps = GradCAM(region_rx, "conv")(y, NO, LLRMagnitude(ref_link))
    assert torch.allclose(maps[0], region.float(), atol=1e-5)


def test_score_cam_gives_the_distractors_exactly_zero_weight(ref_link, region, region_rx):
    from dmrx.explain.cam import Evaluation

    y = region_rx.slots(2)
    cam = ScoreCAM(region_rx, "conv")
    seen = {}

    class Spy(ScoreCAM):
        def channel_weights(self, ev: Evaluation) -> torch.Tensor:
            seen["w"] = super().channel_weights(ev)
            return seen["w"]

    Spy(region_rx, "conv")(y, NO, LLRMagnitude(ref_link))
    w = seen["w"]
    # keeping only the distractors' REs leaves S as pure noise, exactly the baseline
    assert torch.all(w[:, 0] > 0) and torch.all(w[:, 1] == 0)
    assert cam.layer_name == "conv"


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_maps_of_a_neural_receiver_have_the_grid_shape_for_any_conv_layer(ref_link, method):
    torch.manual_seed(0)
    rx = NeuralReceiver(ref_link, ResNetConfig(num_channels=8, num_blocks=1))
    g = torch.Generator().manual_seed(1)
    y = torch.complex(torch.randn(2, 1, 1, 14, 48, generator=g),
                      torch.randn(2, 1, 1, 14, 48, generator=g))
    c = (torch.rand(2, ref_link.num_coded_bits, generator=g) > 0.5).float()
    for layer in ["net.input_conv", rx.net.blocks[0].conv2, None]:
        maps = method(rx, layer, chunk=64)(y, 0.1, LogLikelihood(ref_link), c)
        assert maps.shape == (2, ref_link.num_ofdm_symbols, ref_link.fft_size)
        assert torch.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1


def test_an_unknown_layer_is_refused_with_the_conv_layers_listed(ref_link):
    rx = NeuralReceiver(ref_link, ResNetConfig(num_channels=8, num_blocks=1))
    with pytest.raises(ValueError, match="net.blocks.9.*net.input_conv"):
        GradCAM(rx, "net.blocks.9")
    with pytest.raises(ValueError, match="removal"):
        ScoreCAM(rx, removal="zeros")
    with pytest.raises(ValueError, match="percentile"):
        FusionCAM(rx, percentile=120)


def test_create_graph_keeps_grad_cam_differentiable_in_the_weights(ref_link, region_rx):
    y = region_rx.slots(1)
    maps = GradCAM(region_rx, "conv", create_graph=True)(y, NO, LLRMagnitude(ref_link))
    maps.sum().backward()
    assert region_rx.conv.weight.grad is not None
    assert region_rx.conv.weight.grad.abs().sum() > 0


def test_targets_needing_labels_refuse_to_run_without_them(ref_link, region_rx):
    with pytest.raises(ValueError, match="coded bits c"):
        GradCAM(region_rx, "conv")(region_rx.slots(1), NO, LogLikelihood(ref_link))


def test_denoise_zeroes_values_below_the_percentile():
    m = torch.arange(10, dtype=torch.float32).reshape(1, 2, 5)
    out = denoise(m, 30)  # 30th percentile of 0..9 is 2.7
    assert out.flatten().tolist() == [0, 0, 0, 3, 4, 5, 6, 7, 8, 9]
    assert torch.equal(denoise(m, 0), m)


def test_fusion_pair_weights_follow_the_positive_gains_and_else_keep_the_lesser_loss():
    from dmrx.explain.fusion_cam import pair_weights

    a = torch.tensor([3.0, 2.0, -5.0, -1.0, 0.0])
    b = torch.tensor([1.0, -4.0, 0.0, -3.0, 0.0])
    wa, wb = pair_weights(a, b)
    assert wa.flatten().tolist() == [0.75, 1.0, 0.0, 1.0, 0.5]
    assert torch.allclose(wa + wb, torch.ones_like(wa))
    # an empty map (zero everywhere) gets no weight against one that ranks REs, whatever the
    # gains; two empty maps keep the rule above
    empty_b = torch.tensor([False, True, True, False, True])
    empty_a = torch.tensor([False, False, False, True, True])
    wa, wb = pair_weights(a, b, empty_a, empty_b)
    assert wa.flatten().tolist() == [0.75, 1.0, 1.0, 0.0, 0.5]


def test_fusion_falls_back_to_the_gradient_map_where_the_region_map_is_empty(ref_link, region,
                                                                           region_rx):
    """Where Score-CAM's map is zero everywhere, Fusion-CAM is the denoised gradient map (same
    ranking), even when keeping the REs that map ranks makes the target worse than all noise
    (here: every bit wrong, so the correct-bit log-likelihood of the region's confident LLRs is
    far below the noise grid's); it used to return an empty map there."""
    y = region_rx.slots(2)
    c = torch.zeros(2, ref_link.num_coded_bits)  # LLRs > 0, bits 0: every decision wrong
    f = FusionCAM(region_rx, "conv", percentile=0.0)
    g = torch.rand(2, *region.shape, generator=torch.Generator().manual_seed(1)) * region
    noise = f.removal_noise(y, NO)
    fused = f.fuse(y, NO, LogLikelihood(ref_link), c, g, torch.zeros_like(g), noise)
    assert f.last_weights["gradient"].tolist() == [1.0, 1.0]
    assert torch.equal(fused > 0, g > 0)
    on = g > 0  # the fusion is a monotone function of the gradient map: the same order
    for b in range(2):
        assert torch.equal(torch.argsort(fused[b][on[b]]), torch.argsort(g[b][on[b]]))


def _per_re_slot(link, rx, wrong):
    """One slot of +-1 REs with random signs; bits agree with the signs except on `wrong`."""
    g = torch.Generator().manual_seed(3)
    sign = torch.where(torch.rand(link.num_ofdm_symbols, link.fft_size, generator=g) < 0.5,
                       -1.0, 1.0)
    y = torch.complex(sign, torch.zeros_like(sign))[None, None, None].to(torch.complex64)
    bit = (sign > 0).float()
    bit = torch.where(wrong, 1.0 - bit, bit)[rx.data]
    c = bit.repeat_interleave(link.num_bits_per_symbol)[None]
    return y, c


def test_hirescam_gives_each_re_its_own_term_of_the_target(ref_link, per_re_rx):
    """LLRMagnitude = sum over data REs of bps * gain * |Re y|: HiResCAM's map is that per-RE
    term (1 on every data RE, 0 elsewhere), while Grad-CAM's weight, the gradient averaged
    over REs of random sign, nearly cancels and its map follows Re(y) instead."""
    y, c = _per_re_slot(ref_link, per_re_rx, torch.zeros(14, 48, dtype=torch.bool))
    maps = HiResCAM(per_re_rx, "conv")(y, NO, LLRMagnitude(ref_link))
    assert torch.allclose(maps[0], per_re_rx.data.float(), atol=1e-6)
    grad = GradCAM(per_re_rx, "conv")(y, NO, LLRMagnitude(ref_link))
    # Grad-CAM keeps one sign of Re(y): half the data REs, whichever the average favours
    on = grad[0][per_re_rx.data] > 0
    assert 0.3 < on.float().mean() < 0.7


def test_block_error_maps_find_the_res_with_wrong_bits_with_hirescam_not_grad_cam(
        ref_link, region, per_re_rx):
    """The bits of `region` are wrong (confidently: |llr| = 2): the block-error event's terms
    are large there. HiResCAM puts all its mass on them; Grad-CAM's averaged gradient spreads
    over every RE whose Re(y) has the favoured sign."""
    y, c = _per_re_slot(ref_link, per_re_rx, region)
    target = BlockError(ref_link)
    hires = HiResCAM(per_re_rx, "conv")(y, NO, target, c)
    assert mass_share(hires, region)[0] > 0.99
    grad = GradCAM(per_re_rx, "conv")(y, NO, target, c)
    assert mass_share(grad, region)[0] < 0.2
