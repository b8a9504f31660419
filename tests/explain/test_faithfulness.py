from pathlib import Path

import pytest
import torch

from dmrx.explain import (
    GradCAM,
    LLRMagnitude,
    LogLikelihood,
    ScoreCAM,
    deletion_insertion,
    mass_share,
    model_randomization_check,
    random_maps,
    randomized_copy,
    rank_correlation,
)
from dmrx.explain.perturbation import blend, local_noise, matched_noise, thermal_noise
from dmrx.nn import load_receiver
from dmrx.ofdm import Channel, Transmitter, seed_everything
from dmrx.scenarios import get_scenario

CHECKPOINT = Path(__file__).parents[2] / "checkpoints" / "neural-ref-4prb"


def test_removed_res_get_noise_of_the_grid_power_and_kept_res_stay(region_rx):
    y = region_rx.slots(64)
    z = matched_noise(y, torch.Generator().manual_seed(0))
    p_y = y.abs().square().mean(dim=(1, 2, 3, 4))
    p_z = z.abs().square().mean(dim=(1, 2, 3, 4))
    assert torch.allclose(p_z.mean(), p_y.mean(), rtol=0.05)
    keep = torch.zeros(64, 14, 48)
    keep[:, :7] = 1.0
    out = blend(y, keep, z)
    assert torch.equal(out[..., :7, :], y[..., :7, :])
    assert torch.equal(out[..., 7:, :], z[..., 7:, :])
    t = thermal_noise(y, torch.full((64,), 0.25), torch.Generator().manual_seed(0))
    assert t.abs().square().mean().item() == pytest.approx(0.25, rel=0.02)


def test_local_noise_keeps_the_power_where_it_was_received():
    # a grid with a band 10x louder (a partial-band jammer): its removal noise stays 10x louder
    # there, away from the band's edge, while matched noise spreads the mean power everywhere
    g = torch.Generator().manual_seed(0)
    y = torch.complex(torch.randn(256, 1, 1, 14, 48, generator=g),
                      torch.randn(256, 1, 1, 14, 48, generator=g)) / 2 ** 0.5
    y[..., 12:24] *= 10 ** 0.5
    z = local_noise(y, generator=g).abs().square().mean(dim=(0, 1, 2, 3))
    assert z[14:22].mean().item() == pytest.approx(10.0, rel=0.05)
    assert torch.cat([z[:10], z[26:]]).mean().item() == pytest.approx(1.0, rel=0.05)
    assert 1.5 < z[11].item() < z[14].item()  # the box straddles the edge: in between
    zm = matched_noise(y, g).abs().square().mean(dim=(0, 1, 2, 3))
    assert zm[:10].mean().item() == pytest.approx(zm[14:22].mean().item(), rel=0.05)
    with pytest.raises(ValueError, match="span"):
        local_noise(y, span=(2, 3))


def test_deletion_and_insertion_reward_the_true_relevance(ref_link, region, region_rx):
    y = region_rx.slots(8)
    target = LLRMagnitude(ref_link)
    g = torch.Generator().manual_seed(0)
    truth = deletion_insertion(region_rx, y, 0.1, target, region.float().expand(8, -1, -1),
                               steps=28, generator=g)
    rand = deletion_insertion(region_rx, y, 0.1, target, random_maps(8, (14, 48), g),
                              steps=28, generator=g)
    # both curves share their ends: intact grid and all noise
    assert torch.allclose(truth.deletion[:, 0], truth.insertion[:, -1])
    assert torch.allclose(truth.deletion[:, -1], truth.insertion[:, 0])
    assert truth.normalized_deletion()[0] == pytest.approx(1.0)
    assert truth.normalized_insertion()[0] == pytest.approx(0.0)
    # S is 24 of 672 REs: the true map removes it within the first step
    assert truth.normalized_deletion()[1] < 0.2 and truth.normalized_insertion()[1] > 0.8
    assert truth.deletion_auc < 0.1 < 0.3 < rand.deletion_auc
    assert truth.insertion_auc > 0.9 > 0.7 > rand.insertion_auc
    merged = truth + rand
    assert merged.deletion.shape == (16, 29)


def test_deletion_refuses_maps_of_the_wrong_shape(ref_link, region_rx):
    with pytest.raises(ValueError, match="maps must have shape"):
        deletion_insertion(region_rx, region_rx.slots(2), 0.1, LLRMagnitude(ref_link),
                           torch.zeros(2, 48, 14))
    with pytest.raises(ValueError, match="steps"):
        deletion_insertion(region_rx, region_rx.slots(2), 0.1, LLRMagnitude(ref_link),
                           torch.zeros(2, 14, 48), steps=0)


def test_mass_share_and_rank_correlation_by_hand():
    maps = torch.tensor([[[1.0, 3.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[False, True], [False, False]])
    share = mass_share(maps, mask)
    assert share[0].item() == pytest.approx(0.75) and torch.isnan(share[1])
    a = torch.arange(12.0).reshape(1, 3, 4)
    assert rank_correlation(a, a * 3 + 1).item() == pytest.approx(1.0)
    assert rank_correlation(a, -a).item() == pytest.approx(-1.0)


def test_randomized_copy_draws_new_weights_and_leaves_the_original(region_rx):
    before = region_rx.conv.weight.clone()
    other = randomized_copy(region_rx, seed=3)
    assert torch.equal(region_rx.conv.weight, before)
    assert not torch.allclose(other.conv.weight, before)
    assert torch.equal(randomized_copy(region_rx, seed=3).conv.weight, other.conv.weight)


@pytest.fixture(scope="module")
def shipped_slots():
    rx = load_receiver(CHECKPOINT)
    link = rx.link
    seed_everything(0)
    s = Transmitter(link)(4)
    no = 10 ** (-11 / 10)
    y, _ = Channel(link, get_scenario("tdl-c-300ns-60kmh").channel)(s.x, no)
    return rx, y, no, s.c


@pytest.mark.parametrize("method", [GradCAM, ScoreCAM], ids=lambda m: m.name)
def test_maps_of_a_reinitialised_receiver_differ(shipped_slots, method):
    rx, y, no, c = shipped_slots
    cam = method(rx)
    target = LogLikelihood(rx.link)
    # the same receiver twice: identical maps (the check is not noise)
    same = rank_correlation(cam(y, no, target, c), cam(y, no, target, c))
    assert torch.allclose(same, torch.ones_like(same))
    rho = model_randomization_check(cam, y, no, target, c, seed=1)
    assert rho.shape == (4,)
    assert torch.nan_to_num(rho, nan=0.0).abs().mean() < 0.5


def test_a_methods_curves_do_not_depend_on_the_other_methods_run(ref_link, region_rx):
    # two batches of slots; Score-CAM run before Grad-CAM, or not at all: Grad-CAM's curves
    # (noise and tie-breaks) must be the same, and a different seed must change them
    from dmrx.explain.run import Slots, explain_slots

    y = region_rx.slots(6, seed=2)
    c = torch.ones(6, ref_link.num_coded_bits)
    slots = Slots(ref_link, y, torch.full((6,), 0.1), c, 10.0)
    target = LLRMagnitude(ref_link)

    def curves(methods, seed=0):
        return explain_slots(region_rx, slots, methods, target, layer="conv",
                             faithfulness_steps=4, batch_size=3, seed=seed).curves["grad-cam"]

    alone, after = curves(["grad-cam"]), curves(["score-cam", "grad-cam"])
    assert torch.equal(alone.deletion, after.deletion)
    assert torch.equal(alone.insertion, after.insertion)
    other = curves(["grad-cam"], seed=1)
    assert not torch.equal(alone.deletion, other.deletion)


def test_explain_slots_collects_the_fusion_weights_of_every_batch(ref_link, region_rx):
    # two batches: the weights come back over all six slots, in slot order, as the fusion
    # computed them batch by batch
    from dmrx.explain.run import Slots, compute_maps, explain_slots

    y = region_rx.slots(6, seed=2)
    c = torch.ones(6, ref_link.num_coded_bits)
    slots = Slots(ref_link, y, torch.full((6,), 0.1), c, 10.0)
    target = LLRMagnitude(ref_link)
    info: dict = {}
    explain_slots(region_rx, slots, ["fusion-cam"], target, layer="conv", batch_size=3,
                  info=info)
    w = info["fusion-cam"]
    assert set(w) == {"gradient", "combined"} and w["gradient"].shape == (6,)
    second: dict = {}
    compute_maps(region_rx, slots.batch(3, 6), ["fusion-cam"], target, layer="conv", seed=3,
                 info=second)
    assert torch.equal(w["gradient"][3:], second["fusion-cam"]["gradient"])
    assert torch.equal(w["combined"][3:], second["fusion-cam"]["combined"])
