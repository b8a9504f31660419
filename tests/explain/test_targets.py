import math

import pytest
import torch

from dmrx.explain import (
    BlockError,
    LLRMagnitude,
    LogLikelihood,
    make_target,
    prb_region,
    re_region,
    symbol_region,
)
from dmrx.nn import NeuralReceiver, ResNetConfig
from dmrx.ofdm import data_mask, dmrs_mask


@pytest.fixture
def layout(ref_link):
    """The neural receiver's own grid -> LLR read-out, an independent reference for where a
    region's coded bits sit among the LLRs."""
    rx = NeuralReceiver(ref_link, ResNetConfig(num_channels=4, num_blocks=1))
    return rx.data_llr


def test_re_target_reads_exactly_the_bits_of_that_re(ref_link, layout):
    grid = torch.zeros(2, 14, 48, ref_link.num_bits_per_symbol)
    grid[:, 5, 17] = torch.tensor([[1.0, -2.0, 3.0, -4.0], [0.5, 0.5, -0.5, 0.5]])
    grid[:, 6, 17] = 100.0  # a neighbour that must not count
    llr = layout(grid)
    got = LLRMagnitude(ref_link, re_region(ref_link, 5, 17))(llr)
    assert got.tolist() == [10.0, 2.0]


def test_prb_and_symbol_targets_sum_their_data_res(ref_link, layout):
    g = torch.Generator().manual_seed(0)
    grid = torch.randn(3, 14, 48, ref_link.num_bits_per_symbol, generator=g)
    llr = layout(grid)
    data = data_mask(ref_link)
    prb = torch.zeros(14, 48, dtype=torch.bool)
    prb[:, 24:36] = True
    want = grid.abs()[:, prb & data].sum(dim=(1, 2))
    assert torch.allclose(LLRMagnitude(ref_link, prb_region(ref_link, 2))(llr), want)
    sym = torch.zeros(14, 48, dtype=torch.bool)
    sym[9] = True
    want = grid.abs()[:, sym & data].sum(dim=(1, 2))
    assert torch.allclose(LLRMagnitude(ref_link, symbol_region(ref_link, 9))(llr), want)


def test_block_targets_match_the_hand_computed_values(ref_link):
    n = ref_link.num_coded_bits
    llr = torch.full((1, n), 2.0)
    c = torch.zeros(1, n)
    c[0, : n // 2] = 1.0  # half the bits agree with the LLR sign, half do not
    ll_right, ll_wrong = math.log(1 / (1 + math.exp(-2))), math.log(1 / (1 + math.exp(2)))
    want_ll = n // 2 * (ll_right + ll_wrong)
    assert LogLikelihood(ref_link)(llr, c).item() == pytest.approx(want_ll, rel=1e-5)
    assert BlockError(ref_link)(llr, c).item() == pytest.approx(-want_ll, rel=1e-5)
    p_wrong = n // 2 * (1 / (1 + math.exp(2)) + 1 / (1 + math.exp(-2)))
    assert BlockError(ref_link, surrogate="wrong-bit")(llr, c).item() == pytest.approx(
        p_wrong, rel=1e-5)
    assert LLRMagnitude(ref_link)(llr).item() == pytest.approx(2.0 * n)


def test_block_score_is_the_sum_of_its_prbs(ref_link):
    g = torch.Generator().manual_seed(1)
    llr = torch.randn(4, ref_link.num_coded_bits, generator=g) * 3
    c = (torch.rand(4, ref_link.num_coded_bits, generator=g) > 0.5).float()
    parts = sum(LogLikelihood(ref_link, prb_region(ref_link, p))(llr, c)
                for p in range(ref_link.num_prbs))
    assert torch.allclose(parts, LogLikelihood(ref_link)(llr, c), rtol=1e-5)


def test_bad_regions_and_inputs_are_refused(ref_link):
    dm = dmrs_mask(ref_link)
    sym, sc = (int(v) for v in dm.nonzero()[0])
    with pytest.raises(ValueError, match="no data RE"):
        LLRMagnitude(ref_link, re_region(ref_link, sym, sc))
    with pytest.raises(ValueError, match="prb=4"):
        prb_region(ref_link, 4)
    with pytest.raises(ValueError, match="subcarrier=48"):
        re_region(ref_link, 0, 48)
    with pytest.raises(ValueError, match="surrogate"):
        BlockError(ref_link, surrogate="hinge")
    with pytest.raises(ValueError, match="llr must have shape"):
        LLRMagnitude(ref_link)(torch.zeros(1, 10))
    with pytest.raises(ValueError, match="needs prb"):
        make_target(ref_link, "prb")
    with pytest.raises(ValueError, match="target region 'cell'"):
        make_target(ref_link, "cell")


def test_make_target_builds_each_region(ref_link):
    assert isinstance(make_target(ref_link, "error"), BlockError)
    t = make_target(ref_link, "re", symbol=0, subcarrier=3, kind="llr-magnitude")
    assert isinstance(t, LLRMagnitude) and int(t.bits.sum()) == ref_link.num_bits_per_symbol
    t = make_target(ref_link, "symbol", symbol=0)
    assert isinstance(t, LogLikelihood) and int(t.bits.sum()) == 48 * 4
    assert int(make_target(ref_link, "block").bits.sum()) == ref_link.num_coded_bits
