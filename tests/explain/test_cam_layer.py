"""Which layer CAM explains by default, and why not the residual stream (issue 7)."""

from pathlib import Path

import pytest
import torch

from dmrx.explain import (
    BlockError,
    FusionCAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LogLikelihood,
    default_layer,
    draw_slots,
    mass_share,
)
from dmrx.nn import NeuralReceiver, ResNetConfig, load_receiver
from dmrx.robust.jammers import PartialBandJammer
from dmrx.scenarios import get_scenario

CHECKPOINT = Path(__file__).parents[2] / "checkpoints" / "neural-ref-4prb"


def _small_rx(link):
    torch.manual_seed(0)
    rx = NeuralReceiver(link, ResNetConfig(num_channels=8, num_blocks=2))
    rx.eval()
    return rx


def _slots(link, batch=2):
    g = torch.Generator().manual_seed(1)
    y = torch.complex(torch.randn(batch, 1, 1, 14, 48, generator=g),
                      torch.randn(batch, 1, 1, 14, 48, generator=g))
    c = (torch.rand(batch, link.num_coded_bits, generator=g) > 0.5).float()
    return y, c


def _weights(cam, y, c, target):
    """Grad-CAM's channel weights and the explained activations of one call."""
    from dmrx.explain.cam import Evaluation

    with torch.enable_grad():
        llr, a = cam._forward(y.clone().requires_grad_(True), torch.full((y.shape[0],), 0.1))
        ev = Evaluation(cam, y, torch.full((y.shape[0],), 0.1), target, c, a, target(llr, c),
                        torch.zeros_like(y))
        return cam.channel_weights(ev).detach(), a.detach()


def test_default_layer_is_the_rectified_input_of_the_llr_head(ref_link):
    rx = _small_rx(ref_link)
    assert default_layer(rx) == "net.output_conv:in"
    cam = GradCAM(rx)
    assert cam.layer_name == "net.output_conv:in" and cam.layer is rx.net.output_conv
    y, c = _slots(ref_link)
    _, a = _weights(cam, y, c, LogLikelihood(ref_link))
    # the module's input, not its output: ReLU(GroupNorm(last block)), C channels, >= 0
    assert a.shape == (2, 8, 14, 48) and a.min() >= 0
    with torch.no_grad():
        x = rx.net.input_conv(rx.features(y, torch.full((2,), 0.1)))
        for block in rx.net.blocks:
            x = block(x)
        expect = torch.relu(rx.net.output_norm(x))
    assert torch.allclose(a, expect, atol=1e-5)


def test_grad_cam_weights_cancel_on_a_layer_that_feeds_only_group_norms(ref_link):
    """The cause of the all-zero Grad-CAM maps of the previous default layer: the residual
    stream is read only through shift-invariant GroupNorms, so the target's gradient there
    sums to zero and Grad-CAM's channel weights sum to zero; on the head's input they do not."""
    rx = _small_rx(ref_link)
    y, c = _slots(ref_link)
    target = LogLikelihood(ref_link)
    w_res, _ = _weights(GradCAM(rx, "net.blocks.1"), y, c, target)
    w_head, _ = _weights(GradCAM(rx, "net.output_conv:in"), y, c, target)
    assert (w_res.sum(1).abs() < 1e-4 * w_res.abs().sum(1)).all()
    assert (w_head.sum(1).abs() > 1e-2 * w_head.abs().sum(1)).all()


def test_an_input_layer_of_an_unknown_module_is_refused(ref_link):
    rx = _small_rx(ref_link)
    with pytest.raises(ValueError, match="net.nothing:in.*net.input_conv"):
        GradCAM(rx, "net.nothing:in")


@pytest.fixture(scope="module")
def jammed_slots():
    rx = load_receiver(CHECKPOINT)
    rx.eval()
    link = rx.link
    jammer = PartialBandJammer(link, 10.0, (12, 24))
    slots = draw_slots(link, get_scenario("tdl-c-300ns-60kmh"), 11.0, 4, jammer=jammer, seed=3)
    return rx, slots


@pytest.mark.parametrize("method", [GradCAM, GradCAMPlusPlus, HiResCAM], ids=lambda m: m.name)
def test_gradient_error_maps_find_the_jammed_band_at_the_default_layer(jammed_slots, method):
    """On the previous default layer (net.blocks.3) Grad-CAM's block-error maps of jammed slots
    were zero everywhere; on the head's input they are not, and most of their mass is on the
    jammed band (a quarter of the grid)."""
    rx, slots = jammed_slots
    maps = method(rx)(slots.y, slots.no, BlockError(rx.link), slots.c)
    assert (maps.flatten(1).amax(1) == 1).all()  # no map is zero everywhere
    assert mass_share(maps, slots.jammed).mean() > 0.5


def test_fusion_cam_reports_its_weights(jammed_slots):
    rx, slots = jammed_slots
    f = FusionCAM(rx, chunk=64)
    maps = f(slots.y[:2], slots.no[:2], BlockError(rx.link), slots.c[:2])
    assert maps.shape == (2, 14, 48)
    for k in ("gradient", "combined"):
        w = f.last_weights[k]
        assert w.shape == (2,) and (w >= 0).all() and (w <= 1).all()
