import pytest

from dmrx.ofdm import LinkConfig
from dmrx.scenarios import get_link


def test_ref_4prb_is_the_reference_link_of_the_issue(ref_link):
    assert (ref_link.num_prbs, ref_link.fft_size, ref_link.num_ofdm_symbols) == (4, 48, 14)
    assert ref_link.subcarrier_spacing_khz == 30 and ref_link.num_rx_ant == 1
    assert ref_link.num_bits_per_symbol == 4  # MCS 14, table 1: 16-QAM
    assert ref_link.code_rate == pytest.approx(553 / 1024)  # 38.214 Table 5.1.3.1-1, row 14
    assert ref_link.dmrs_symbol_indices == [2, 11]
    assert ref_link.carrier_frequency_hz == 3.5e9
    assert ref_link.slot_duration_s == pytest.approx(0.5e-3)


def test_tb_size_follows_38_214_by_hand():
    # 38.214 5.1.3.2 for ref-4prb: 12 data symbols x 12 REs x 4 PRBs = 576 REs;
    # Ninfo = 576 * 553/1024 * 4 = 1244.25 -> n = 4, N'info = 16 * floor(1244.25/16) = 1232
    # -> smallest TBS of Table 5.1.3.2-1 >= 1232 is 1256.
    link = get_link("ref-4prb")
    assert link.num_coded_bits == 576 * 4
    assert link.tb_size == 1256
    # ref-4prb-hs: 13 data symbols -> 624 REs, Ninfo = 1347.9, N'info = 1344 -> TBS 1352.
    hs = get_link("ref-4prb-hs")
    assert hs.dmrs_symbol_indices == [2]
    assert hs.num_coded_bits == 624 * 4 and hs.tb_size == 1352


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"num_prbs": 0}, "num_prbs"),
        ({"num_prbs": 276}, "num_prbs"),  # does not fit in a 275-PRB carrier
        ({"subcarrier_spacing_khz": 45}, "subcarrier_spacing_khz"),
        ({"num_ofdm_symbols": 3}, "num_ofdm_symbols"),
        ({"dmrs_length": 2, "dmrs_additional_position": 2}, "dmrs_additional_position"),
        ({"dmrs_config_type": 3}, "dmrs_config_type"),
        ({"mcs_index": 29}, "mcs_index"),
        ({"mcs_table": 5}, "mcs_table"),
        ({"num_rx_ant": 0}, "num_rx_ant"),
        ({"carrier_frequency_hz": 1e6}, "carrier_frequency_hz"),
        ({"dmrs_type_a_position": 3, "num_ofdm_symbols": 4}, "dmrs_type_a_position"),
        ({"dmrs_type_a_position": 3, "dmrs_additional_position": 3}, "dmrs_additional_position"),
    ],
)
def test_bad_link_config_names_the_field(changes, field):
    with pytest.raises(ValueError, match=f"LinkConfig.{field}="):
        LinkConfig(**changes)


def test_link_config_is_frozen(ref_link):
    with pytest.raises(AttributeError):
        ref_link.num_prbs = 8
    assert ref_link.replace(num_prbs=8).fft_size == 96
