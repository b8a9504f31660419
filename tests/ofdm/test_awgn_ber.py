"""Uncoded BER over AWGN (hard decisions on the receivers' LLRs) against the closed form."""

import math

import pytest
from scipy.special import erfc

from dmrx.ofdm import (
    Channel,
    ChannelConfig,
    LinkConfig,
    PerfectCSIReceiver,
    Transmitter,
    seed_everything,
)


def q(x):
    return 0.5 * erfc(x / math.sqrt(2))


def ber_closed_form(bits_per_symbol, snr_db):
    es_n0 = 10 ** (snr_db / 10)
    if bits_per_symbol == 2:  # Gray QPSK: Q(sqrt(Es/N0))
        return q(math.sqrt(es_n0))
    if bits_per_symbol == 4:  # Gray 16-QAM, exact: per-dimension 4-PAM, a = d/sigma
        a = math.sqrt(es_n0 / 5)
        return (3 * q(a) + 2 * q(3 * a) - q(5 * a)) / 4
    raise NotImplementedError


@pytest.mark.parametrize("mcs_index, bits, snr_db", [(14, 4, 6.0), (14, 4, 10.0), (4, 2, 4.0)])
def test_uncoded_ber_matches_closed_form(mcs_index, bits, snr_db):
    seed_everything(11)
    link = LinkConfig(mcs_index=mcs_index)
    assert link.num_bits_per_symbol == bits
    tx, ch, rx = Transmitter(link), Channel(link, ChannelConfig("awgn")), PerfectCSIReceiver(link)
    errors = n = 0
    no = 10 ** (-snr_db / 10)
    for _ in range(4):
        s = tx(128)
        y, h = ch(s.x, no)
        llr = rx(y, no, h=h)
        errors += int(((llr > 0).float() != s.c).sum())
        n += s.c.numel()
    p = ber_closed_form(bits, snr_db)
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(errors / n - p) < 4 * sigma + 1e-4, (errors / n, p)
