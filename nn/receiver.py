"""A convolutional residual receiver over the resource grid (DeepRx; Sionna's neural-receiver
tutorial), keeping the contract `receiver(y, no) -> llr`.

Input features per RE (channels of an image over OFDM symbols x subcarriers):
  Re/Im y per rx antenna, log10(no), the DMRS mask, Re/Im of the known DMRS value, and
  (optional) Re/Im of the raw LS estimate y/p on the DMRS REs per antenna (zero elsewhere).
Output: `num_bits_per_symbol` LLRs per RE; the data REs are read out in the order Sionna's
resource-grid mapper fills them (row-major over symbol, subcarrier), the order of the coded bits.
"""

from __future__ import annotations

import torch
from torch import nn

from dmrx.nn.resnet import GridResNet, ResNetConfig
from dmrx.ofdm import LinkConfig, check_receiver_inputs, data_mask, dmrs_mask, dmrs_values


def per_slot_no(no: torch.Tensor, batch: int) -> torch.Tensor:
    """[batch] noise variances from a validated scalar or [batch] `no`."""
    return no.expand(batch) if no.dim() == 0 else no


class NeuralReceiver(nn.Module):
    """Fully convolutional neural receiver for one link.

    :input y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :input no: float, 0-d or [batch] float32 noise variance
    :output llr: [batch, num_coded_bits] float32, log(P(c=1)/P(c=0))
    """

    kind = "neural"
    requires_csi = False

    def __init__(self, link: LinkConfig, config: ResNetConfig | None = None):
        super().__init__()
        self.link = link
        self.config = config or ResNetConfig()
        self.register_buffer("dmrs_mask", dmrs_mask(link), persistent=False)
        self.register_buffer("dmrs_values", dmrs_values(link), persistent=False)
        self.register_buffer("data_mask", data_mask(link), persistent=False)
        n_in = 2 * link.num_rx_ant + 4 + (2 * link.num_rx_ant if self.config.ls_input else 0)
        self.net = GridResNet(n_in, link.num_bits_per_symbol, self.config)

    def features(self, y: torch.Tensor, no: torch.Tensor,
                 dmrs_keep: torch.Tensor | None = None) -> torch.Tensor:
        """The network's input image.

        :param y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
        :param no: [batch] float32
        :param dmrs_keep: optional [batch, num_ofdm_symbols, fft_size] bool: DMRS REs whose
            pilot the network may see; on the others the DMRS mask, value and LS estimate are
            zeroed, so they look like data REs (online adaptation hides them to use as labels)
        :return: [batch, features, num_ofdm_symbols, fft_size] float32
        """
        b = y.shape[0]
        y = y[:, 0]  # [batch, ant, sym, sc]
        mask = self.dmrs_mask.expand(b, -1, -1)
        if dmrs_keep is not None:
            mask = mask & dmrs_keep
        p = self.dmrs_values * mask
        no_db = torch.log10(no).reshape(-1, 1, 1, 1).expand(b, 1, *y.shape[-2:])
        feats = [y.real, y.imag, no_db, mask.unsqueeze(1).float(), p.real.unsqueeze(1),
                 p.imag.unsqueeze(1)]
        if self.config.ls_input:
            # raw LS estimate y / p on the visible DMRS REs, zero elsewhere
            ls = y * (p.conj() / self.dmrs_values.abs().square().clamp_min(1e-9)).unsqueeze(1)
            feats += [ls.real, ls.imag]
        return torch.cat(feats, dim=1)

    def grid_llr(self, y: torch.Tensor, no: torch.Tensor,
                 dmrs_keep: torch.Tensor | None = None) -> torch.Tensor:
        """LLRs of every RE of the grid (data, DMRS and empty REs alike).

        :return: [batch, num_ofdm_symbols, fft_size, num_bits_per_symbol] float32
        """
        return self.net(self.features(y, no, dmrs_keep)).permute(0, 2, 3, 1)

    def forward(self, y: torch.Tensor, no: float | torch.Tensor) -> torch.Tensor:
        no = per_slot_no(check_receiver_inputs(self.link, y, no), y.shape[0])
        llr = self.grid_llr(y, no)[:, self.data_mask]  # [batch, data REs, bits], row-major
        return llr.reshape(y.shape[0], -1)
