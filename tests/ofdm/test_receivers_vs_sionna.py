"""dmrx's LS and perfect-CSI receivers against Sionna's own PUSCHReceiver on the same slots."""

import math

import pytest
import torch
from sionna.phy.nr import PUSCHReceiver

from dmrx.ofdm import (
    Channel,
    ChannelConfig,
    Decoder,
    LSReceiver,
    PerfectCSIReceiver,
    Transmitter,
    count_errors,
    seed_everything,
)


@pytest.mark.parametrize("csi", ["ls", "perfect"])
def test_bler_matches_sionna_pusch_receiver(ref_link, csi):
    seed_everything(5)
    tx = Transmitter(ref_link)
    ch = Channel(ref_link, ChannelConfig("tdl", "C", 300, 60))
    ours = LSReceiver(ref_link) if csi == "ls" else PerfectCSIReceiver(ref_link)
    sionna_rx = PUSCHReceiver(tx.pusch, channel_estimator=None if csi == "ls" else "perfect",
                              return_tb_crc_status=True)
    decoder = Decoder(ref_link)
    snr_db = 9.0 if csi == "ls" else 7.5  # near BLER 0.3-0.5, where a mismatch shows most
    no = 10 ** (-snr_db / 10)
    ours_err = ref_err = agree = n = 0
    with torch.inference_mode():
        for _ in range(2):
            s = tx(128)
            y, h = ch(s.x, no)
            llr = ours(y, no, h=h) if csi == "perfect" else ours(y, no)
            b_hat, crc_ok = decoder(llr)
            ours_err += count_errors(s.b, b_hat, crc_ok, s.c, llr).block_errors
            ref_b, ref_ok = sionna_rx(y, no, h) if csi == "perfect" else sionna_rx(y, no)
            ref_ok = ref_ok.squeeze(1) & (ref_b.squeeze(1) == s.b).all(-1)
            ref_err += int((~ref_ok).sum())
            agree += int(((b_hat == s.b).all(-1) & crc_ok).eq(ref_ok).sum())
            n += 128
    p = ref_err / n
    assert 0.05 < p < 0.95, "operating point must be on the waterfall"
    # same BLER within the binomial confidence of the run (3 sigma of a difference) ...
    assert abs(ours_err - ref_err) / n <= 3 * math.sqrt(2 * p * (1 - p) / n)
    # ... and in fact the same decision on (nearly) every slot: same blocks, same slots
    assert agree / n >= 0.99
