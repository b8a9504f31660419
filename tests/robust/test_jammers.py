import pytest
import torch

from dmrx.ofdm import Channel, Transmitter, dmrs_mask, seed_everything
from dmrx.robust import DMRSJammer
from dmrx.scenarios import get_scenario


@pytest.mark.parametrize("jsr_db", [-10.0, 0.0, 6.0])
def test_dmrs_jammer_hits_only_dmrs_res_at_the_requested_jsr(ref_link, jsr_db):
    seed_everything(0)
    s = Transmitter(ref_link)(256)
    y, h = Channel(ref_link, get_scenario("tdl-c-300ns-60kmh").channel)(s.x, 1e-3)
    yj = DMRSJammer(ref_link, jsr_db)(y, s.x, h)
    m = dmrs_mask(ref_link)
    jam = yj - y
    assert torch.all(jam[..., ~m] == 0)
    signal = h[:, :, :, 0, 0] * s.x[:, :, 0:1]
    measured = 10 * torch.log10(jam[..., m].abs().square().mean()
                                / signal[..., m].abs().square().mean())
    assert measured.item() == pytest.approx(jsr_db, abs=0.1)


def test_jammer_rejects_absurd_jsr(ref_link):
    with pytest.raises(ValueError, match="jsr_db"):
        DMRSJammer(ref_link, 80.0)
