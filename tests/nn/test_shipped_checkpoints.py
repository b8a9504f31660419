"""The trained receivers shipped in checkpoints/ (rebuilt by checkpoints/train.sh)."""

from pathlib import Path

import pytest
import torch

from dmrx.nn import load_receiver
from dmrx.ofdm import Channel, Decoder, Transmitter, seed_everything
from dmrx.scenarios import get_link, get_scenario

CHECKPOINTS = Path(__file__).parents[2] / "checkpoints"
SHIPPED = [("neural", "ref-4prb", "tdl-c-300ns-3kmh"), ("hybrid", "ref-4prb", "tdl-c-300ns-60kmh"),
           ("neural", "ref-4prb-hs", "tdl-c-300ns-300kmh"),
           ("hybrid", "ref-4prb-hs", "tdl-c-300ns-300kmh")]


@pytest.mark.parametrize("kind, link_name, scenario", SHIPPED)
def test_shipped_checkpoint_decodes_every_block_far_above_noise(kind, link_name, scenario):
    path = CHECKPOINTS / f"{kind}-{link_name}"
    total = sum(f.stat().st_size for f in path.iterdir())
    assert total < 2 * 2**20  # the repository ships it: under 2 MB
    link = get_link(link_name)
    rx = load_receiver(path, link)
    assert rx.kind == kind
    seed_everything(3)
    s = Transmitter(link)(16)
    y, _ = Channel(link, get_scenario(scenario).channel)(s.x, 10 ** (-25 / 10))
    with torch.no_grad():
        llr = rx(y, 10 ** (-25 / 10))
        b_hat, crc_ok = Decoder(link)(llr)
    # the sign of every LLR is the transmitted bit, or nearly: 25 dB is far above the waterfall
    assert ((llr > 0).float() != s.c).float().mean().item() < 5e-3
    assert bool(crc_ok.all()) and torch.equal(b_hat, s.b)
