import math

import pytest
import torch

from dmrx.nn import NeuralReceiver, ResNetConfig
from dmrx.nn.adapt import AdaptConfig, OnlineAdapter, ReplayBuffer
from dmrx.ofdm import Channel, Transmitter, seed_everything
from dmrx.scenarios import get_scenario


@pytest.fixture
def setup(ref_link):
    torch.manual_seed(0)
    rx = NeuralReceiver(ref_link, ResNetConfig(num_channels=8, num_blocks=1))
    tx = Transmitter(ref_link)
    ch = Channel(ref_link, get_scenario("tdl-c-300ns-60kmh").channel)

    def slots(seed, n=2, no=0.05):
        seed_everything(seed)
        s = tx(n)
        return ch(s.x, no).y, torch.full((n,), no)

    return rx, slots


def test_adapter_learns_from_dmrs_and_leaves_the_callers_receiver_alone(setup):
    rx, slots = setup
    before = {k: v.clone() for k, v in rx.state_dict().items()}
    ad = OnlineAdapter(rx, AdaptConfig(params="all", lr=3e-3, guard=False))
    y_eval, no_eval = slots(999, n=8)
    hidden = rx.hide_dmrs(8, 0.5, torch.Generator().manual_seed(1))
    with torch.no_grad():
        loss0 = ad.dmrs_loss(y_eval, no_eval, hidden).item()
    for i in range(30):
        ad.observe(*slots(i))
    with torch.no_grad():
        loss1 = ad.dmrs_loss(y_eval, no_eval, hidden).item()
    assert ad.updates == 30 and loss1 < loss0 - 0.05
    for k, v in rx.state_dict().items():
        assert torch.equal(v, before[k])


def test_norm_last_moves_only_norms_and_the_head(setup):
    rx, slots = setup
    ad = OnlineAdapter(rx, AdaptConfig(params="norm-last", lr=1e-2, guard=False))
    for i in range(3):
        ad.observe(*slots(i))
    for name, p in ad.rx.net.named_parameters():
        moved = not torch.equal(p, rx.net.get_parameter(name))
        assert moved == ("norm" in name or name.startswith("output_conv")), name


def test_adapter_param_set_starts_as_the_pretrained_function(setup):
    rx, slots = setup
    y, no = slots(5)
    ad = OnlineAdapter(rx, AdaptConfig(params="adapter"))
    assert torch.equal(ad(y, no), rx(y, no))
    assert {id(p) for p in ad._params} == {id(p) for p in ad.rx.net.adapter.parameters()}


def test_guard_rolls_back_on_a_synthetic_divergence(setup):
    rx, slots = setup
    ad = OnlineAdapter(rx, AdaptConfig(params="all", lr=1e-4, guard_every=1,
                                       guard_patience=2, cooldown=5))
    for i in range(4):
        ad.observe(*slots(i))
    good = [p.detach().clone() for p in ad._snapshot["params"]]
    with torch.no_grad():  # a poisoned update: the weights blow up
        for p in ad._params:
            p.add_(torch.randn_like(p) * 3)
    rolled = [ad.observe(*slots(10 + i))["rolled_back"] for i in range(2)]
    assert rolled == [False, True] and ad.rollbacks == 1
    for p, g in zip(ad._params, good, strict=True):
        assert torch.equal(p, g)
    # paused for `cooldown` slots after a rollback
    assert [ad.observe(*slots(20 + i))["updated"] for i in range(6)] == [False] * 5 + [True]


def test_guard_rolls_back_on_non_finite_weights(setup):
    rx, slots = setup
    ad = OnlineAdapter(rx, AdaptConfig(params="all"))
    ad.observe(*slots(0))
    with torch.no_grad():
        ad._params[0].fill_(float("nan"))
    assert ad.observe(*slots(1))["rolled_back"]
    assert all(torch.isfinite(p).all() for p in ad._params)


def test_replay_buffer_bounds_its_memory():
    buf = ReplayBuffer(8)
    y = torch.zeros(1, 1, 1, 14, 48, dtype=torch.complex64)
    for _ in range(100):
        buf.add(y, torch.ones(1))
    assert len(buf) == 8
    assert buf.nbytes() == 8 * (14 * 48 * 8 + 4)
    got = buf.sample(3, torch.Generator().manual_seed(0))
    assert len(got) == 3 and all(y.shape == (1, 1, 1, 14, 48) and c is None for y, _, c in got)
    # CRC labels travel with their slot, as one byte per coded bit, only where the CRC passed
    c = torch.ones(2, 100)
    buf.add(torch.zeros(2, 1, 1, 14, 48, dtype=torch.complex64), torch.ones(2), c,
            torch.tensor([True, False]))
    assert len(buf) == 8
    assert buf.nbytes() == 8 * (14 * 48 * 8 + 4) + 100
    assert [s[2] is not None for s in buf.slots][-2:] == [True, False]


def test_shift_policy_updates_only_after_a_loss_jump(setup):
    rx, slots = setup
    ad = OnlineAdapter(rx, AdaptConfig(when="shift", shift_factor=1.3, shift_updates=3,
                                       guard=False))
    flat = [ad._should_update(0.1) for _ in range(20)]
    jump = [ad._should_update(1.0) for _ in range(5)]
    assert not any(flat) and ad.shifts == 1 and jump == [True, True, True, False, False]


@pytest.mark.parametrize("kw, field", [({"params": "bias"}, "params"), ({"when": "never"},
                                       "when"), ({"hide_fraction": 1.0}, "hide_fraction"),
                                       ({"anchor": "mas"}, "anchor"),
                                       ({"dmrs_weight": -1.0}, "dmrs_weight"),
                                       ({"snr_augment_db": 40.0}, "snr_augment_db")])
def test_bad_adapt_config_names_the_field(kw, field):
    with pytest.raises(ValueError, match=f"AdaptConfig.{field}="):
        AdaptConfig(**kw)


def test_an_adapter_without_any_label_is_refused():
    with pytest.raises(ValueError, match="no label"):
        AdaptConfig(dmrs_weight=0.0, crc_labels=False)


def test_adaptation_on_a_shifted_channel_lowers_dmrs_loss_and_bler():
    """The shipped TDL-A receiver lives 100 slots on TDL-C 300 ns 60 km/h (new to it) with the
    'dmrs-crc' variant; on 256 held-out slots of that channel the adapted copy has a lower
    hidden-DMRS loss, a lower data BCE and a lower BLER than the static receiver."""
    from pathlib import Path

    import torch.nn.functional as F

    from dmrx.nn import load_receiver
    from dmrx.nn.adapt import get_variant
    from dmrx.ofdm import Decoder, derive_seed

    rx = load_receiver(Path(__file__).parents[2] / "checkpoints" / "neural-ref-4prb-tdl-a")
    link = rx.link
    tx, dec = Transmitter(link), Decoder(link)
    ch = Channel(link, get_scenario("tdl-c-300ns-60kmh").channel)
    no = 10 ** (-12 / 10)
    ad = OnlineAdapter(rx, get_variant("dmrs-crc", seed=0))
    for k in range(100):
        seed_everything(derive_seed(0, "t", k))
        with torch.no_grad():
            y = ch(tx(1).x, no).y
            b_hat, ok = dec(ad(y, no))
        ad.observe(y, no, c_hat=tx(b_hat).c, crc_ok=ok)
    assert ad.updates == 100 and ad.rollbacks == 0
    seed_everything(99)
    with torch.no_grad():
        s = tx(256)
        y = ch(s.x, no).y
        hidden = rx.hide_dmrs(256, 0.5, torch.Generator().manual_seed(5))
        scores = {}
        for name, r in (("static", rx), ("adapted", ad.rx)):
            llr = r(y, no)
            b_hat, ok = dec(llr)
            grid = r.grid_llr(y, torch.full((256,), no), dmrs_keep=r.dmrs_mask & ~hidden)
            scores[name] = (r.hidden_dmrs_bce(grid, hidden).item(),
                            F.binary_cross_entropy_with_logits(llr, s.c).item(),
                            1 - (ok & (b_hat == s.b).all(-1)).float().mean().item())
    (d0, bce0, bler0), (d1, bce1, bler1) = scores["static"], scores["adapted"]
    assert d1 < 0.8 * d0 and bce1 < bce0 and bler1 < bler0, scores


def test_crc_labels_of_a_wrong_shape_are_refused(setup):
    rx, slots = setup
    ad = OnlineAdapter(rx, AdaptConfig(crc_labels=True))
    y, no = slots(1)
    with pytest.raises(ValueError, match="c_hat must be"):
        ad.observe(y, no, c_hat=torch.zeros(2, 7), crc_ok=torch.ones(2, dtype=torch.bool))


def test_monitor_every_measures_and_learns_only_on_its_slots(setup):
    rx, slots = setup
    ad = OnlineAdapter(rx, AdaptConfig(params="all", lr=1e-3, when="schedule", period=4,
                                       monitor_every=4, guard_every=1))
    out = [ad.observe(*slots(i, n=1)) for i in range(8)]
    measured = [math.isfinite(o["dmrs_loss"]) for o in out]
    assert measured == [True, False, False, False] * 2
    assert [o["updated"] for o in out] == [False, False, False, True] * 2
    assert len(ad.history) == 2 and ad.updates == 2


def test_dmrs_jammed_slots_are_neither_learned_from_nor_stored(setup, ref_link):
    from dmrx.robust import DMRSJammer

    rx, _ = setup
    tx = Transmitter(ref_link)
    ch = Channel(ref_link, get_scenario("tdl-c-300ns-60kmh").channel)
    seed_everything(4)
    s = tx(16)
    no = 10 ** (-12 / 10)
    y, h = ch(s.x, no)
    jammed = DMRSJammer(ref_link, 0.0)(y, s.x, h)
    ad = OnlineAdapter(rx, AdaptConfig(params="all", lr=1e-3, replay_slots=64))
    # the integrity statistic separates the two: ~1 clean, (no + jammer) / no under the jammer
    nob = torch.full((16,), no)
    clean_ratio, jammed_ratio = ad.dmrs_noise_ratio(y, nob), ad.dmrs_noise_ratio(jammed, nob)
    assert abs(clean_ratio.mean() - 1) < 0.25 and clean_ratio.max() < 3 < jammed_ratio.min()
    before = [p.clone() for p in ad._params]
    out = ad.observe(jammed, no)
    assert out["suspect"] and not out["updated"] and ad.suspect_slots == 16
    assert len(ad.replay) == 0
    assert all(torch.equal(p, q) for p, q in zip(ad._params, before, strict=True))
    mixed = torch.cat([y[:8], jammed[8:]])
    assert ad.observe(mixed, no)["updated"] and len(ad.replay) == 8
    unguarded = OnlineAdapter(rx, AdaptConfig(params="all", lr=1e-3, guard=False))
    assert unguarded.observe(jammed, no)["updated"]


def test_guard_rolls_back_when_most_blocks_fail(setup):
    """The decoder's verdict is the second divergence signal: weights that break data detection
    can keep a normal DMRS loss."""
    rx, slots = setup
    ad = OnlineAdapter(rx, AdaptConfig(params="all", lr=1e-3, guard_window=4, guard_bler_rise=0.5,
                                       cooldown=5))
    good = [p.detach().clone() for p in ad._params]
    with torch.no_grad():
        for p in ad._params:
            p.add_(0.05)  # weights gone astray
    fail, ok = torch.tensor([False]), torch.tensor([True])
    outs = [ad.observe(*slots(i, n=1), crc_ok=fail if i % 4 else ok) for i in range(3)]
    assert not any(o["rolled_back"] for o in outs) and ad.recent_bler() is None
    out = ad.observe(*slots(3, n=1), crc_ok=fail)  # 3 of the last 4 blocks failed
    assert out["rolled_back"] and ad.rollbacks == 1
    assert all(torch.equal(p, q) for p, q in zip(ad._params, good, strict=True))
    assert ad.recent_bler() is None  # the restored weights are judged on fresh blocks


def test_steps_per_update_takes_that_many_optimizer_steps_per_update(setup):
    rx, slots = setup
    ad = OnlineAdapter(rx, AdaptConfig(params="all", lr=1e-3, guard=False, replay_slots=8,
                                       replay_batch=2, steps_per_update=3))
    for i in range(4):
        ad.observe(*slots(i))
    assert ad.updates == 4
    assert {int(st["step"]) for st in ad.opt.state.values()} == {12}
    assert ad.config.variant().endswith("-x3")
    with pytest.raises(ValueError, match="steps_per_update"):
        AdaptConfig(steps_per_update=0)
