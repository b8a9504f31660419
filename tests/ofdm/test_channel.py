import numpy as np
import pytest
import torch
from scipy.special import j0

from dmrx.ofdm import Channel, ChannelConfig, Transmitter, seed_everything


@pytest.mark.parametrize("cfg", [
    ChannelConfig("tdl", "C", 300, 60, normalize=False),
    ChannelConfig("tdl", "E", 100, 3, normalize=False),
    ChannelConfig("rayleigh"),
])
def test_channel_has_unit_average_gain(ref_link, cfg):
    seed_everything(2)
    x = Transmitter(ref_link)(1000).x
    _, h = Channel(ref_link, cfg)(x, 1.0)
    assert h.abs().square().mean().item() == pytest.approx(1.0, abs=0.06)


def test_normalized_tdl_has_unit_gain_per_slot(ref_link):
    seed_everything(2)
    x = Transmitter(ref_link)(8).x
    _, h = Channel(ref_link, ChannelConfig("tdl", "C", 300, 60))(x, 1.0)
    per_slot = h.abs().square().mean(dim=(1, 2, 3, 4, 5, 6))
    torch.testing.assert_close(per_slot, torch.ones(8), atol=1e-4, rtol=0)


def test_rayleigh_block_fading_is_constant_over_the_slot_and_really_fades(ref_link):
    seed_everything(2)
    x = Transmitter(ref_link)(2000).x
    _, h = Channel(ref_link, ChannelConfig("rayleigh"))(x, 1.0)
    assert torch.allclose(h, h[..., :1, :1].expand_as(h))
    # |h|^2 of Rayleigh fading is exponential: P(|h|^2 < 0.1) = 1 - exp(-0.1)
    assert (h[:, 0, 0, 0, 0, 0, 0].abs().square() < 0.1).float().mean().item() == \
        pytest.approx(1 - np.exp(-0.1), abs=0.02)


@pytest.mark.parametrize("speed_kmh, lag", [(60, 13), (300, 6)])
def test_tdl_time_correlation_follows_jakes(ref_link, speed_kmh, lag):
    seed_everything(3)
    cfg = ChannelConfig("tdl", "A", 30, speed_kmh, normalize=False)
    ch = Channel(ref_link, cfg)
    _, h = ch(Transmitter(ref_link)(2000).x, 1.0)
    h = h[:, 0, 0, 0, 0]  # [batch, symbols, subcarriers]
    r = ((h[:, lag] * h[:, 0].conj()).mean().real / h.abs().square().mean()).item()
    symbol_s = (1 + 144 / 2048) / (ref_link.subcarrier_spacing_khz * 1e3)  # with normal CP
    expected = j0(2 * np.pi * cfg.max_doppler_hz(ref_link.carrier_frequency_hz) * lag * symbol_s)
    assert r == pytest.approx(expected, abs=0.05)


def test_awgn_noise_has_the_requested_variance(ref_link):
    seed_everything(4)
    x = Transmitter(ref_link)(256).x
    y, h = Channel(ref_link, ChannelConfig("awgn"))(x, 0.25)
    assert torch.all(h == 1)
    assert (y - x).abs().square().mean().item() == pytest.approx(0.25, rel=0.02)


@pytest.mark.parametrize("kw, field", [
    ({"model": "tdl", "profile": "F"}, "profile"),
    ({"model": "umi"}, "model"),
    ({"speed_kmh": -1}, "speed_kmh"),
    ({"delay_spread_ns": 0}, "delay_spread_ns"),
])
def test_bad_channel_config_names_the_field(kw, field):
    with pytest.raises(ValueError, match=f"ChannelConfig.{field}="):
        ChannelConfig(**kw)
