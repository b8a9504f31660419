"""Records of a small simulate run carry the asked SNR, the decoder's verdict and concepts that
follow the ground truth; the DMRS-based features match theory on AWGN."""

import math

import numpy as np
import pytest
import torch

from dmrx.explain.metadata import MetadataRecorder, slot_features
from dmrx.ofdm import Channel, ChannelConfig, Transmitter, seed_everything
from dmrx.quant.adc import ADC, ADCConfig, QuantizedInput
from dmrx.scenarios import build_receiver, get_scenario, simulate

pytestmark = pytest.mark.usefixtures("one_thread")


def _run(link, scenario, receivers, snr_db, slots=8):
    rec = MetadataRecorder(link, run="t", seed=3)
    res = simulate(link, get_scenario(scenario), receivers, snr_db, slots, batch_size=slots,
                   seed=3, progress=False, metadata=rec)
    return res, rec.table()


def test_records_hold_the_asked_snr_and_the_decoders_block_errors(ref_link):
    ls = build_receiver("ls", ref_link)
    res, t = _run(ref_link, "tdl-c-300ns-60kmh", {"ls": ls}, [4.0, 16.0])
    assert t.num_rows == 16
    snr = np.array(t.column("snr_db").to_pylist())
    assert sorted(set(snr)) == [4.0, 16.0]
    err = np.array(t.column("block_error").to_pylist())
    crc = np.array(t.column("crc_ok").to_pylist())
    for p in res.points:
        assert err[snr == p.snr_db].sum() == p.counts.block_errors
        assert np.array(t.column("bit_errors").to_pylist())[snr == p.snr_db].sum() \
            == p.counts.bit_errors
        assert np.array(t.column("coded_bit_errors").to_pylist())[snr == p.snr_db].sum() \
            == p.counts.coded_bit_errors
    assert np.all(err[~crc] == 1)
    assert err[snr == 4.0].mean() > err[snr == 16.0].mean()
    assert t.column("low_snr").to_pylist() == [s < 8 for s in snr]
    assert set(t.column("jammer_kind").to_pylist()) == {"none"}
    assert not any(t.column("jammed").to_pylist())
    assert all(t.column("high_mobility").to_pylist())  # 60 km/h
    assert all(t.column("long_delay_spread").to_pylist())  # 300 ns
    assert not any(t.column("los").to_pylist())  # TDL-C is NLoS
    assert t.column("slot").to_pylist() == list(range(16))


def test_jammed_concept_is_set_only_with_a_jammer(ref_link):
    ls = build_receiver("ls", ref_link)
    _, t = _run(ref_link, "tdl-d-30ns-3kmh+dmrs-jammer-0db", {"ls": ls}, [12.0], slots=4)
    assert all(t.column("jammed").to_pylist()) and all(t.column("los").to_pylist())
    assert set(t.column("jammer_kind").to_pylist()) == {"dmrs"}
    assert set(t.column("jsr_db").to_pylist()) == {0.0}
    # the pilots see the jammer: noise on the DMRS far above the given no
    assert min(t.column("dmrs_noise_ratio_db").to_pylist()) > 8.0
    _, clean = _run(ref_link, "tdl-d-30ns-3kmh", {"ls": ls}, [12.0], slots=4)
    assert not any(clean.column("jammed").to_pylist())
    assert max(clean.column("dmrs_noise_ratio_db").to_pylist()) < 3.0


def test_quantized_receiver_sets_the_quantized_concept_and_feature(ref_link):
    q = QuantizedInput(build_receiver("ls", ref_link), ADC(ADCConfig(4)))
    _, t = _run(ref_link, "tdl-a-30ns-3kmh", {"q": q}, [10.0], slots=4)
    assert set(t.column("adc_bits").to_pylist()) == {4}
    assert all(t.column("quantized").to_pylist())
    assert set(t.column("quantized_input").to_pylist()) == {1.0}


def test_dmrs_features_match_theory_on_awgn(ref_link):
    """AWGN (h = 1): the pilots' noise estimate is no, the SNR estimate the true SNR, the
    channel perfectly correlated in time and frequency."""
    tx, ch = Transmitter(ref_link), Channel(ref_link, ChannelConfig("awgn"))
    seed_everything(0)
    no = 10 ** (-10 / 10)
    y = ch(tx(64).x, no).y
    f = slot_features(ref_link, y, no)
    assert f["noise_est_db"].mean().item() == pytest.approx(-10.0, abs=0.3)
    assert f["snr_est_db"].mean().item() == pytest.approx(10.0, abs=0.5)
    assert f["dmrs_noise_ratio_db"].mean().item() == pytest.approx(0.0, abs=0.3)
    assert f["dmrs_time_corr"].mean().item() == pytest.approx(1.0, abs=0.1)
    assert f["dmrs_freq_corr"].mean().item() == pytest.approx(1.0, abs=0.1)
    assert f["data_dmrs_power_db"].mean().item() == pytest.approx(0.0, abs=0.3)
    assert all(torch.isfinite(v).all() for v in f.values())
    assert not math.isnan(f["sc_power_peak_db"].mean().item())
