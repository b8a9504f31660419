import torch

from dmrx.nn import HybridReceiver, NeuralReceiver, ResNetConfig
from dmrx.ofdm import Channel, LSReceiver, Transmitter, dmrs_mask, seed_everything
from dmrx.scenarios import get_scenario

TINY = ResNetConfig(num_channels=8, num_blocks=1)


def _slots(link, n=4, no=0.1):
    seed_everything(0)
    s = Transmitter(link)(n)
    y, _ = Channel(link, get_scenario("tdl-c-300ns-60kmh").channel)(s.x, no)
    return s, y


def test_neural_llrs_have_the_contract_shape_and_dtype(ref_link):
    s, y = _slots(ref_link)
    rx = NeuralReceiver(ref_link, TINY)
    llr = rx(y, 0.1)
    assert llr.shape == (4, ref_link.num_coded_bits) and llr.dtype == torch.float32
    assert torch.equal(rx(y, torch.full((4,), 0.1)), llr)


def test_neural_llrs_are_read_from_data_res_in_mapping_order(ref_link):
    s, y = _slots(ref_link)
    rx = NeuralReceiver(ref_link, TINY)
    grid = rx.grid_llr(y, torch.full((4,), 0.1))  # [b, sym, sc, bits]
    llr = rx(y, 0.1).reshape(4, -1, ref_link.num_bits_per_symbol)
    # the first data RE is symbol 0, subcarrier 0; the first of symbol 3 (after DMRS symbol 2)
    # follows the 2 * 48 REs of symbols 0 and 1
    torch.testing.assert_close(llr[:, 0], grid[:, 0, 0])
    torch.testing.assert_close(llr[:, 2 * 48], grid[:, 3, 0])
    torch.testing.assert_close(llr[:, -1], grid[:, 13, 47])


def test_hidden_dmrs_positions_carry_no_pilot_information(ref_link):
    s, y = _slots(ref_link)
    rx = NeuralReceiver(ref_link, TINY)
    keep = dmrs_mask(ref_link).clone()
    keep[2] = False  # hide the DMRS of symbol 2
    no = torch.full((4,), 0.1)
    f = rx.features(y, no, keep.expand(4, -1, -1))
    pilot_channels = f[:, 3:8]  # DMRS mask, Re/Im pilot, Re/Im raw LS
    assert torch.all(pilot_channels[:, :, 2] == 0)
    assert torch.any(pilot_channels[:, :, 11] != 0)
    # the received samples of the hidden REs are still there, as for data
    torch.testing.assert_close(f[:, 0, 2], y[:, 0, 0, 2].real)
    # nothing else is derived from them: the smoothed channel estimate ignores them, and only
    # the hidden REs' own y and equalised symbol (channels 0, 1, 10, 11) may change
    y2 = y.clone()
    y2[:, 0, 0, 2] = torch.randn_like(y2[:, 0, 0, 2]) * 5
    f2 = rx.features(y2, no, keep.expand(4, -1, -1))
    changed = (f2 != f).flatten(2).any(-1).any(0)  # per feature channel
    assert set(torch.nonzero(changed).flatten().tolist()) <= {0, 1, 10, 11}
    torch.testing.assert_close(f2[:, :, :2], f[:, :, :2])  # other symbols untouched


def test_untrained_hybrid_is_exactly_ls(ref_link):
    s, y = _slots(ref_link)
    torch.testing.assert_close(HybridReceiver(ref_link)(y, 0.1), LSReceiver(ref_link)(y, 0.1),
                               rtol=0, atol=0)


def test_separable_conv_is_the_2d_correlation_with_the_outer_kernel():
    from dmrx.nn.receiver import _outer, separable_conv

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 1, 14, 48, generator=gen)
    wt, wf = torch.rand(27, generator=gen), torch.rand(13, generator=gen)
    for leave_one_out in (False, True):
        k = _outer(wt, wf, leave_one_out)
        assert k[0, 0, 13, 6] == (0.0 if leave_one_out else wt[13] * wf[6])
        want = torch.nn.functional.conv2d(x, k, padding=(13, 6))  # zero padding, as the grid
        torch.testing.assert_close(separable_conv(x, wt, wf, leave_one_out), want,
                                   rtol=1e-5, atol=1e-5)
