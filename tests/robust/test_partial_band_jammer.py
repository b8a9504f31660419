import pytest
import torch

from dmrx.ofdm import Channel, Transmitter, seed_everything
from dmrx.robust.jammers import PartialBandJammer
from dmrx.scenarios import get_scenario


@pytest.fixture(scope="module")
def slots():
    from dmrx.scenarios import get_link

    link = get_link("ref-4prb")
    seed_everything(0)
    s = Transmitter(link)(256)
    y, h = Channel(link, get_scenario("tdl-c-300ns-60kmh").channel)(s.x, 1e-3)
    return link, s.x, y, h


@pytest.mark.parametrize("jsr_db", [-10.0, 0.0, 10.0])
@pytest.mark.parametrize("symbols", [None, (0, 1, 2, 3)], ids=["slot", "4-symbols"])
def test_partial_band_jammer_hits_exactly_its_band_at_the_requested_jsr(slots, jsr_db, symbols):
    link, x, y, h = slots
    jam = PartialBandJammer(link, jsr_db, (12, 24), symbols)
    m = jam.target
    want = torch.zeros(14, 48, dtype=torch.bool)
    want[list(symbols or range(14)), 12:24] = True
    assert torch.equal(m, want)
    diff = jam(y, x, h) - y
    assert torch.all(diff[..., ~m] == 0) and torch.all(diff[..., m] != 0)
    signal = h[:, :, :, 0, 0] * x[:, :, 0:1]
    measured = 10 * torch.log10(diff[..., m].abs().square().mean()
                                / signal[..., m].abs().square().mean())
    assert measured.item() == pytest.approx(jsr_db, abs=0.15)


def test_partial_band_jammer_refuses_bad_bands_and_symbols(slots):
    link = slots[0]
    with pytest.raises(ValueError, match="jsr_db"):
        PartialBandJammer(link, 70.0, (0, 12))
    for band in [(12, 12), (40, 60), (-1, 5), "12"]:
        with pytest.raises(ValueError, match="subcarriers"):
            PartialBandJammer(link, 0.0, band)
    for syms in [(), (14,), (1, 1)]:
        with pytest.raises(ValueError, match="symbols"):
            PartialBandJammer(link, 0.0, (0, 12), syms)
