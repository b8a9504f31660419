"""The trained receivers shipped in checkpoints/ (rebuilt by checkpoints/train.sh)."""

from pathlib import Path

import pytest
import torch

from dmrx.nn import load_receiver
from dmrx.ofdm import Channel, Decoder, LSReceiver, Transmitter, seed_everything
from dmrx.scenarios import get_link, get_scenario

CHECKPOINTS = Path(__file__).parents[2] / "checkpoints"


def _slots(link, scenario, snr_db, n=16):
    seed_everything(3)
    s = Transmitter(link)(n)
    no = 10 ** (-snr_db / 10)
    y, _ = Channel(link, get_scenario(scenario).channel)(s.x, no)
    return s, y, no


def _load(name, link_name):
    """checkpoints/<name>-<link_name>; name 'neural-da' is a neural receiver with passes."""
    path = CHECKPOINTS / f"{name}-{link_name}"
    assert sum(f.stat().st_size for f in path.iterdir()) < 2 * 2**20  # shipped: under 2 MB
    rx = load_receiver(path, get_link(link_name))
    assert rx.kind == name.removesuffix("-da")
    assert (len(getattr(rx, "refine", ())) > 0) == name.endswith("-da")
    return rx


@pytest.mark.parametrize("name, scenario", [("neural", "tdl-c-300ns-3kmh"),
                                            ("neural", "tdl-c-300ns-60kmh"),
                                            ("hybrid", "tdl-c-300ns-60kmh"),
                                            ("neural-da", "tdl-c-300ns-60kmh")])
def test_ref_4prb_checkpoint_decodes_every_block_far_above_noise(name, scenario):
    # 18 dB: far above the waterfall (~9-10 dB) and the top of the training SNR range
    link = get_link("ref-4prb")
    rx = _load(name, "ref-4prb")
    s, y, no = _slots(link, scenario, 18.0)
    with torch.no_grad():
        llr = rx(y, no)
        b_hat, crc_ok = Decoder(link)(llr)
        llr_ls = LSReceiver(link)(y, no)
    # LLR signs are the transmitted bits but for a few percent, fewer wrong than LS's
    wrong = ((llr > 0).float() != s.c).float().mean().item()
    assert wrong < 0.03 and wrong < ((llr_ls > 0).float() != s.c).float().mean().item()
    assert bool(crc_ok.all()) and torch.equal(b_hat, s.b)


@pytest.mark.parametrize("name", ["neural", "hybrid", "neural-da"])
def test_high_speed_checkpoint_beats_interpolating_ls(name):
    # at 300 km/h with one DMRS symbol, LS's hard decisions floor; the learned receivers track
    link = get_link("ref-4prb-hs")
    rx = _load(name, "ref-4prb-hs")
    s, y, no = _slots(link, "tdl-c-300ns-300kmh", 20.0, n=32)
    with torch.no_grad():
        ber = ((rx(y, no) > 0).float() != s.c).float().mean().item()
        ber_ls = ((LSReceiver(link)(y, no) > 0).float() != s.c).float().mean().item()
    assert ber < 0.8 * ber_ls


def test_data_aided_passes_beat_the_same_receiver_without_them_at_high_speed():
    # the data-aided receiver was fine-tuned from neural-ref-4prb-hs; on the same slots in the
    # waterfall its bits are wrong less often than its starting point's
    link = get_link("ref-4prb-hs")
    plain, da = _load("neural", "ref-4prb-hs"), _load("neural-da", "ref-4prb-hs")
    s, y, no = _slots(link, "tdl-c-300ns-300kmh", 14.0, n=64)
    with torch.no_grad():
        ber = {n: ((rx(y, no) > 0).float() != s.c).float().mean().item()
               for n, rx in (("plain", plain), ("da", da))}
    assert ber["da"] < 0.8 * ber["plain"], ber
