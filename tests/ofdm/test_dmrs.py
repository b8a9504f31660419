"""DMRS positions and values against 38.211 6.4.1.1, computed here from the spec's formulas."""

import numpy as np
import pytest
import torch

from dmrx.ofdm import LinkConfig, Transmitter, data_mask, dmrs_mask, dmrs_values, seed_everything

# 38.211 Table 6.4.1.1.3-3 (single-symbol DMRS, mapping type A), rows l_d = 8, 10, 12, 14;
# columns dmrs-AdditionalPosition 0..3; l0 = type A position.
TABLE_3 = {
    8: [[0], [0, 7], [0, 7], [0, 7]],
    10: [[0], [0, 9], [0, 6, 9], [0, 6, 9]],
    12: [[0], [0, 9], [0, 6, 9], [0, 5, 8, 11]],
    14: [[0], [0, 11], [0, 7, 11], [0, 5, 8, 11]],
}
# Table 6.4.1.1.3-4 (double-symbol DMRS), l_d = 14: positions 0, 1; each is l and l+1.
TABLE_4_14 = [[0], [0, 10]]


def _symbols(l_d, pos, length, l0):
    base = TABLE_3[l_d][pos] if length == 1 else TABLE_4_14[pos]
    bars = [l0 if b == 0 else b for b in base]
    return sorted(b + lp for b in bars for lp in range(length))


def _subcarriers(config_type, num_prbs):
    # k = 4n + 2k' + delta (type 1), k = 6n + k' + delta (type 2); port 0: delta = 0
    if config_type == 1:
        return sorted(4 * n + 2 * kp for n in range(3 * num_prbs) for kp in (0, 1))
    return sorted(6 * n + kp for n in range(2 * num_prbs) for kp in (0, 1))


CASES = [
    dict(num_ofdm_symbols=ld, dmrs_additional_position=pos, dmrs_type_a_position=l0)
    for ld in TABLE_3 for pos in range(4) for l0 in (2, 3)
    if not (pos == 3 and l0 == 3)  # 38.211 allows position 3 only with l0 = 2
] + [
    dict(dmrs_length=2, dmrs_additional_position=pos, dmrs_config_type=ct)
    for pos in range(2) for ct in (1, 2)
] + [dict(dmrs_config_type=2, dmrs_additional_position=pos) for pos in range(4)]


@pytest.mark.parametrize("kw", CASES)
def test_dmrs_mask_matches_38_211_tables(kw):
    link = LinkConfig(**kw)
    expected = torch.zeros(link.num_ofdm_symbols, link.fft_size, dtype=torch.bool)
    syms = _symbols(link.num_ofdm_symbols, link.dmrs_additional_position, link.dmrs_length,
                    link.dmrs_type_a_position)
    for s in syms:
        expected[s, _subcarriers(link.dmrs_config_type, link.num_prbs)] = True
    assert torch.equal(dmrs_mask(link), expected)
    assert link.dmrs_symbol_indices == syms
    # DMRS symbols carry no data (all CDM groups left empty), every other RE carries data
    assert torch.equal(data_mask(link), ~expected.any(dim=1, keepdim=True).expand_as(expected))


def _gold(c_init, length):
    """38.211 5.2.1 length-31 Gold sequence."""
    nc = 1600
    x1 = np.zeros(nc + length + 31, np.uint8)
    x2 = np.zeros_like(x1)
    x1[0] = 1
    x2[:31] = [(c_init >> i) & 1 for i in range(31)]
    for n in range(nc + length):
        x1[n + 31] = (x1[n + 3] + x1[n]) % 2
        x2[n + 31] = (x2[n + 3] + x2[n + 2] + x2[n + 1] + x2[n]) % 2
    return (x1[nc:nc + length] + x2[nc:nc + length]) % 2


def test_dmrs_values_are_the_38_211_sequence_with_3db_boost(ref_link):
    link = ref_link.replace(n_cell_id=17)
    values = dmrs_values(link)
    n_id, n_symb = 17, 14
    for sym in link.dmrs_symbol_indices:
        c_init = (2**17 * (n_symb * 0 + sym + 1) * (2 * n_id + 1) + 2 * n_id) % 2**31
        c = _gold(c_init, 2 * link.fft_size)
        r = ((1 - 2 * c[0::2].astype(float)) + 1j * (1 - 2 * c[1::2].astype(float))) / np.sqrt(2)
        k = np.array(_subcarriers(1, link.num_prbs))
        # 38.214 Table 6.2.2-1: two CDM groups without data -> beta = sqrt(2) (3 dB)
        np.testing.assert_allclose(values[sym, k].numpy(), np.sqrt(2) * r[: len(k)], atol=1e-6)
    assert torch.count_nonzero(values) == len(link.dmrs_symbol_indices) * link.fft_size // 2


def test_transmitter_puts_dmrs_and_unit_energy_data_on_the_grid(ref_link):
    seed_everything(0)
    slot = Transmitter(ref_link)(64)
    x = slot.x[:, 0, 0]
    assert torch.equal(x[:, dmrs_mask(ref_link)], dmrs_values(ref_link)[dmrs_mask(ref_link)]
                       .expand(64, -1))
    empty = ~dmrs_mask(ref_link) & ~data_mask(ref_link)
    assert torch.all(x[:, empty] == 0)
    assert x[:, data_mask(ref_link)].abs().square().mean().item() == pytest.approx(1.0, abs=0.02)
    assert slot.c.shape == (64, ref_link.num_coded_bits)
    assert slot.b.shape == (64, ref_link.tb_size)


@pytest.mark.parametrize("no", [0.01, 0.1])
def test_pilot_noise_estimates_no_on_a_flat_channel(ref_link, no):
    from dmrx.ofdm import pilot_comb, pilot_noise

    seed_everything(3)
    x = Transmitter(ref_link)(64).x  # [64, 1, 1, sym, sc]
    h = torch.polar(torch.ones(64, 1, 2, 1, 1), torch.rand(64, 1, 2, 1, 1) * 6.28)
    n = torch.randn(64, 1, 2, *x.shape[-2:], dtype=torch.complex64) * no ** 0.5
    est = pilot_noise(h * x + n, pilot_comb(dmrs_values(ref_link)))
    assert est.shape == (64,)
    assert est.mean().item() == pytest.approx(no, rel=0.05)  # unbiased: the curvature is 0
