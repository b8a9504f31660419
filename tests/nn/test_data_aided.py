"""The neural receiver's data-aided passes (ResNetConfig.data_aided_passes)."""

import pytest
import torch

from dmrx.nn import HybridReceiver, NeuralReceiver, ResNetConfig
from dmrx.nn.checkpoint import CheckpointError, load_weights, receiver_config, save_checkpoint
from dmrx.ofdm import Transmitter, data_mask, dmrs_mask, seed_everything

TINY = ResNetConfig(num_channels=8, num_blocks=1)


def _grid_llr_of(link, c: torch.Tensor, magnitude: float) -> torch.Tensor:
    """Confident LLRs (log P(1)/P(0)) of coded bits c on the data REs, 0 elsewhere.

    :return: [batch, bits, sym, sc]
    """
    b, nb = c.shape[0], link.num_bits_per_symbol
    grid = torch.zeros(b, link.num_ofdm_symbols, link.fft_size, nb)
    grid[:, data_mask(link)] = (magnitude * (2 * c - 1)).reshape(b, -1, nb)
    return grid.permute(0, 3, 1, 2)


def test_data_aided_estimate_recovers_a_flat_channel_from_confident_decisions(ref_link):
    seed_everything(0)
    s = Transmitter(ref_link)(2)
    h0 = torch.tensor(0.6 - 0.8j, dtype=torch.complex64)
    y = h0 * s.x[:, :1]  # noise-free, one rx antenna
    no = torch.full((2,), 1e-3)
    rx = NeuralReceiver(ref_link, TINY.replace(data_aided_passes=1))
    f = rx.data_aided_features(y, no, _grid_llr_of(ref_link, s.c, 40.0))
    h = torch.complex(f[:, 0], f[:, 1])
    k = rx.data_aided_kernel[0, 0]
    # the weighted energy of the known symbols around each RE, summed directly (independent of
    # the convolution): data symbols and the pilots, the RE itself left out
    x = s.x[:, 0, 0]
    e = (x.abs() ** 2) * (data_mask(ref_link) | dmrs_mask(ref_link))
    den = torch.zeros_like(e)
    n_sym, n_sc = e.shape[1:]
    for t in range(n_sym):
        for f_ in range(n_sc):
            for dt in range(-2, 3):
                for df in range(-6, 7):
                    if 0 <= t + dt < n_sym and 0 <= f_ + df < n_sc:
                        den[:, t, f_] += k[dt + 2, df + 6] * e[:, t + dt, f_ + df]
    torch.testing.assert_close(f[:, 4] * k.sum(), den, rtol=1e-4, atol=1e-4)
    # y * conj(x) = h0 |x|^2, so the estimate is h0 shrunk by den / (den + 1)
    torch.testing.assert_close(h, h0 * den / (den + 1), rtol=1e-4, atol=1e-5)
    # and the symbols it equalises are the transmitted ones, scaled by g / (g^2 + no) for the
    # shrinkage g = den / (den + 1) (MMSE equalisation with the shrunk estimate)
    x_hat = torch.complex(f[:, 2], f[:, 3])
    g = den / (den + 1)
    torch.testing.assert_close(x_hat, x * g / (g ** 2 + 1e-3), rtol=1e-3, atol=1e-4)
    d = data_mask(ref_link)
    # the bit beliefs passed on are tanh(llr / 2): +-1 on data REs
    assert torch.all(f[:, 5:][:, :, d].abs() > 0.999)


def test_unsure_decisions_give_no_channel_estimate(ref_link):
    seed_everything(1)
    s = Transmitter(ref_link)(2)
    rx = NeuralReceiver(ref_link, TINY.replace(data_aided_passes=1))
    f = rx.data_aided_features(s.x[:, :1], torch.full((2,), 0.1),
                               _grid_llr_of(ref_link, s.c, 0.0),
                               dmrs_keep=torch.zeros(2, *dmrs_mask(ref_link).shape, dtype=bool))
    # LLR 0 everywhere: the soft 16-QAM symbol is 0, and with every pilot hidden nothing is left
    assert torch.all(f[:, :2] == 0) and torch.all(f[:, 4] == 0)


def test_untrained_passes_leave_the_first_pass_unchanged_and_init_needs_leave(ref_link,
                                                                             tmp_path):
    seed_everything(2)
    s = Transmitter(ref_link)(3)
    y = s.x[:, :1] + 0.1 * torch.randn_like(s.x[:, :1])
    one = NeuralReceiver(ref_link, TINY)
    save_checkpoint(tmp_path / "one", one, receiver_config(one))
    two = NeuralReceiver(ref_link, TINY.replace(data_aided_passes=2))
    with pytest.raises(CheckpointError, match="missing.*refine"):
        load_weights(tmp_path / "one", two)
    load_weights(tmp_path / "one", two, missing_ok=("refine.",))
    with torch.no_grad():
        torch.testing.assert_close(two(y, 0.01), one(y, 0.01), rtol=0, atol=0)
        # a pass that has learned something changes the LLRs
        torch.nn.init.normal_(two.refine[0].output_conv.weight, std=0.1)
        assert not torch.allclose(two(y, 0.01), one(y, 0.01))


def test_hidden_pilots_do_not_reach_the_data_aided_passes(ref_link):
    seed_everything(3)
    s = Transmitter(ref_link)(2)
    y = s.x[:, :1] + 0.1 * torch.randn_like(s.x[:, :1])
    rx = NeuralReceiver(ref_link, TINY.replace(data_aided_passes=1))
    torch.nn.init.normal_(rx.refine[0].output_conv.weight, std=0.1)
    keep = dmrs_mask(ref_link).clone()
    keep[2] = False  # hide the DMRS of symbol 2; symbol 11's stay visible
    keep = keep.expand(2, -1, -1)
    no = torch.full((2,), 0.01)
    with torch.no_grad():
        ref = rx.grid_llr(y, no, keep)
        pilots = rx.dmrs_values.clone()
        rx.dmrs_values[2] = -pilots[2]  # the receiver's own copy of the hidden pilots
        torch.testing.assert_close(rx.grid_llr(y, no, keep), ref, rtol=0, atol=0)
        rx.dmrs_values[2] = pilots[2]
        rx.dmrs_values[11] = -pilots[11]  # a visible pilot does matter (the check can fail)
        assert not torch.allclose(rx.grid_llr(y, no, keep), ref)


def test_data_aided_passes_config():
    with pytest.raises(ValueError, match="data_aided_passes"):
        ResNetConfig(data_aided_passes=-1)
    with pytest.raises(ValueError, match="data_aided_passes"):
        ResNetConfig(data_aided_passes=1.5)
    # absent from the dict when unused (configs of older checkpoints stay the same)
    assert "data_aided_passes" not in ResNetConfig().as_dict()
    d = ResNetConfig(data_aided_passes=2).as_dict()
    assert ResNetConfig.from_dict(d).data_aided_passes == 2


def test_hybrid_refuses_data_aided_passes(ref_link):
    with pytest.raises(ValueError, match="data_aided_passes.*hybrid"):
        HybridReceiver(ref_link, ResNetConfig(num_channels=8, num_blocks=1, ls_input="none",
                                              data_aided_passes=1))


def test_calibration_refuses_data_aided_passes(ref_link):
    from dmrx.nn.calibrate import fold_llr_scale

    with pytest.raises(TypeError, match="data-aided passes"):
        fold_llr_scale(NeuralReceiver(ref_link, TINY.replace(data_aided_passes=1)), 2.0)


def test_online_adaptation_moves_every_pass(ref_link):
    from dmrx.nn.adapt import AdaptConfig, OnlineAdapter

    rx = NeuralReceiver(ref_link, TINY.replace(data_aided_passes=1))
    every = {id(p) for p in rx.parameters()}
    a = OnlineAdapter(rx, AdaptConfig(params="all"))
    assert len(a._params) == len(every)
    a = OnlineAdapter(rx, AdaptConfig(params="norm-last"))
    head = a.rx.refine[0].output_conv
    chosen = {id(p) for p in a._params}
    assert {id(head.weight), id(head.bias)} <= chosen
    assert id(a.rx.net.output_conv.weight) not in chosen  # the first pass's head is not last
    a = OnlineAdapter(rx, AdaptConfig(params="adapter"))
    assert a.rx.refine[0].adapter is not None and a.rx.net.adapter is None
