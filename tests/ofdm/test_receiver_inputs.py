import pytest
import torch

from dmrx.ofdm import Decoder, LSReceiver, PerfectCSIReceiver


@pytest.fixture
def y(ref_link):
    return torch.zeros(2, 1, 1, 14, 48, dtype=torch.complex64)


@pytest.mark.parametrize("bad, msg", [
    (torch.zeros(2, 1, 1, 14, 47, dtype=torch.complex64), "shape"),
    (torch.zeros(2, 1, 2, 14, 48, dtype=torch.complex64), "shape"),
    (torch.zeros(2, 14, 48, dtype=torch.complex64), "shape"),
    (torch.zeros(2, 1, 1, 14, 48, dtype=torch.complex128), "complex64"),
    (torch.zeros(2, 1, 1, 14, 48), "complex64"),
    ([[0.0]], "torch.Tensor"),
])
def test_ls_receiver_rejects_y_of_wrong_shape_or_dtype(ref_link, bad, msg):
    with pytest.raises(ValueError, match=msg):
        LSReceiver(ref_link)(bad, 0.1)


@pytest.mark.parametrize("no", [0.0, -1.0, float("nan"), torch.tensor([0.1, 0.1, 0.1]),
                                torch.tensor([0.1, -0.1])])
def test_receiver_rejects_bad_noise_variance(ref_link, y, no):
    with pytest.raises(ValueError, match="no"):
        LSReceiver(ref_link)(y, no)


def test_perfect_csi_needs_h_of_the_right_shape(ref_link, y):
    rx = PerfectCSIReceiver(ref_link)
    with pytest.raises(ValueError, match="needs the channel"):
        rx(y, 0.1)
    with pytest.raises(ValueError, match="h must have shape"):
        rx(y, 0.1, h=torch.ones(2, 1, 1, 14, 48, dtype=torch.complex64))


def test_ls_receiver_returns_one_llr_per_coded_bit(ref_link, y):
    llr = LSReceiver(ref_link)(y + 1, torch.tensor([0.1, 0.2]))
    assert llr.shape == (2, ref_link.num_coded_bits) and llr.dtype == torch.float32


def test_decoder_rejects_llr_of_wrong_length(ref_link):
    with pytest.raises(ValueError, match=r"llr must have shape \[batch, 2304\]"):
        Decoder(ref_link)(torch.zeros(2, 2300))
