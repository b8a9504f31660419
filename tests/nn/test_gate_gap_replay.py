"""`benchmarks/gate_gap.py` reruns an adapter with updates on chosen slots and reads its
figures as the gated adapter's own. That holds only if a replay of the slots an adapter updated
on reproduces its weights exactly, even while other adapters learn on the same slots (the
benchmark runs its arms side by side): all of an adapter's randomness must come from its own
generator."""

import pytest
import torch

from dmrx.nn import NeuralReceiver, ResNetConfig
from dmrx.nn.adapt import AdaptConfig, OnlineAdapter
from dmrx.ofdm import Channel, Transmitter, seed_everything
from dmrx.scenarios import get_scenario


@pytest.fixture(scope="module")
def gap(load_benchmark):
    return load_benchmark("gate_gap")


def _weights(ad):
    return [p.detach().clone() for p in ad._params]


def test_a_replay_of_the_update_slots_reproduces_the_adapter_exactly(gap, ref_link):
    torch.manual_seed(0)
    rx = NeuralReceiver(ref_link, ResNetConfig(num_channels=8, num_blocks=1))
    tx, ch = Transmitter(ref_link), Channel(ref_link, get_scenario("tdl-c-300ns-60kmh").channel)
    # replay memory and SNR augmentation: every random draw an update makes
    config = AdaptConfig(params="all", lr=1e-3, replay_slots=4, replay_batch=2,
                         snr_augment_db=4.0, seed=3)
    opened = [1, 2, 5, 6, 7]  # a gate's decisions
    gated = OnlineAdapter(rx, config)
    replay = gap.SlotAdapter(rx, config, update_slots=set(opened))
    always = gap.SlotAdapter(rx, config)  # learns on every slot in between, as in the benchmark
    for slot in range(9):
        seed_everything(100 + slot)
        y = ch(tx(1).x, 0.05).y
        for ad in (always, gated, replay):
            ad(y, 0.05)
        gated.observe(y, 0.05, update=slot in opened)
        always.observe(y, 0.05)
        replay.observe(y, 0.05)
    assert gated.updates == replay.updates == len(opened) and always.updates == 9
    for a, b in zip(_weights(gated), _weights(replay), strict=True):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b)
               for a, b in zip(_weights(gated), _weights(always), strict=True))


NO_EXTRA = (None, None, None)  # no optimizer reset, no warm slots, no weight restore


def test_arms_update_where_documented(gap):
    gate = [3, 4, 10, 11, 12, 15]  # updates before the segment [10, 14) and within it
    assert gap.arm_slots("always", gate, 10, 14) == (None, None, None, None)
    assert gap.arm_slots("replay", gate, 10, 14) == (set(gate), None, None, None)
    assert gap.arm_slots("replay-skip-before", gate, 10, 14) == ({10, 11, 12}, None, None, None)
    assert gap.arm_slots("replay-fill", gate, 10, 14) == ({3, 4, 10, 11, 12, 13}, *NO_EXTRA)
    assert gap.arm_slots("oracle", gate, 10, 14) == ({10, 11, 12, 13}, None, None, None)
    assert gap.arm_slots("reset", gate, 10, 14) == (None, 10, None, None)
    # every 4th slot before the segment (3, 7), then every slot within it
    assert gap.arm_slots("oracle-every-4", gate, 10, 14) == ({3, 7, 10, 11, 12, 13}, *NO_EXTRA)
    assert gap.arm_slots("oracle-every-1", gate, 10, 14) == (set(range(14)), None, None, None)
    assert gap._parametric_arm("oracle-every-8") and not gap._parametric_arm("oracle-every-0")
    assert not gap._parametric_arm("oracle-every-x") and not gap._parametric_arm("oracle")
    # the last 3 slots before the segment, contiguous
    assert gap.arm_slots("oracle-last-3", gate, 10, 14) == ({7, 8, 9, 10, 11, 12, 13},
                                                            *NO_EXTRA)
    assert gap._parametric_arm("oracle-last-37") and not gap._parametric_arm("oracle-last-0")
    # warm steps on every slot before the segment; the pretrained weights back at its start
    assert gap.arm_slots("oracle-warm", gate, 10, 14) == ({10, 11, 12, 13}, None,
                                                          set(range(10)), None)
    assert gap.arm_slots("restore", gate, 10, 14) == (None, None, None, 10)


def test_reset_gives_a_fresh_optimizer_and_keeps_the_weights(gap, ref_link):
    torch.manual_seed(0)
    rx = NeuralReceiver(ref_link, ResNetConfig(num_channels=8, num_blocks=1))
    tx, ch = Transmitter(ref_link), Channel(ref_link, get_scenario("tdl-c-300ns-60kmh").channel)
    ad = gap.SlotAdapter(rx, AdaptConfig(params="all", lr=1e-3, guard=False), reset_at=3)
    for slot in range(4):
        seed_everything(200 + slot)
        y = ch(tx(1).x, 0.05).y
        before = _weights(ad)
        ad.observe(y, 0.05)
        if slot == 2:
            w2 = _weights(ad)
            assert max(int(s["step"]) for s in ad.opt.state.values()) == 3
    # at slot 3 the optimizer started over: one step since, from the weights of slot 2
    assert max(int(s["step"]) for s in ad.opt.state.values()) == 1
    for a, b in zip(before, w2, strict=True):
        assert torch.equal(a, b)


def test_warm_steps_move_the_optimizer_not_the_weights_and_restore_puts_them_back(gap,
                                                                                  ref_link):
    torch.manual_seed(0)
    rx = NeuralReceiver(ref_link, ResNetConfig(num_channels=8, num_blocks=1))
    tx, ch = Transmitter(ref_link), Channel(ref_link, get_scenario("tdl-c-300ns-60kmh").channel)
    config = AdaptConfig(params="all", lr=1e-3, guard=False)
    warm = gap.SlotAdapter(rx, config, update_slots={3}, warm_slots={0, 1, 2})
    restore = gap.SlotAdapter(rx, config, restore_at=3)
    w0 = _weights(warm)
    for slot in range(4):
        seed_everything(300 + slot)
        y = ch(tx(1).x, 0.05).y
        if slot == 3:
            # warm: three optimizer steps taken, the weights still the pretrained ones
            assert max(int(s["step"]) for s in warm.opt.state.values()) == 3
            assert all(torch.equal(a, b) for a, b in zip(_weights(warm), w0, strict=True))
            assert any(not torch.equal(a, b)
                       for a, b in zip(_weights(restore), w0, strict=True))
        warm.observe(y, 0.05)
        restore.observe(y, 0.05)
    # warm steps are not updates; the step at slot 3 is, and it moved the weights
    assert (warm.updates, warm.warm_steps) == (1, 3)
    assert any(not torch.equal(a, b) for a, b in zip(_weights(warm), w0, strict=True))
    # restore: at slot 3 the pretrained weights came back, the optimizer kept its 3 steps and
    # took a 4th, so one step away from them
    assert max(int(s["step"]) for s in restore.opt.state.values()) == 4
    assert restore.updates == 4
