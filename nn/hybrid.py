"""Hybrid receiver: Sionna's DMRS LS estimate, refined by a small network, then LMMSE + demapping.

Cheaper and easier to explain than the fully neural receiver: the network only corrects the
channel estimate (and says how unsure it is), while equalisation and demapping stay classic.
"""

from __future__ import annotations

import torch
from torch import nn

from dmrx.nn.receiver import per_slot_no
from dmrx.nn.resnet import GridResNet, ResNetConfig
from dmrx.ofdm import LinkConfig, LSReceiver, check_receiver_inputs, dmrs_mask

DEFAULT_HYBRID = ResNetConfig(num_channels=16, num_blocks=3, ls_input="none")


class HybridReceiver(nn.Module):
    """LS (linear interpolation) -> residual refinement of h and of its error variance -> LMMSE.

    :input y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :input no: float, 0-d or [batch] float32
    :output llr: [batch, num_coded_bits] float32
    """

    kind = "hybrid"
    requires_csi = False

    def __init__(self, link: LinkConfig, config: ResNetConfig | None = None):
        super().__init__()
        self.link = link
        self.config = config or DEFAULT_HYBRID
        if self.config.data_aided_passes:
            raise ValueError("ResNetConfig.data_aided_passes must be 0 for a hybrid receiver: "
                             "its network refines the LS estimate, it has no LLR passes")
        # the classic part is exactly dmrx's LS receiver: its estimator and LMMSE demapper
        self.ls = LSReceiver(link, interpolation="lin")
        self.register_buffer("dmrs_mask", dmrs_mask(link).float(), persistent=False)
        n_ant = link.num_rx_ant
        # in: Re/Im h_ls, Re/Im y per antenna, log10 no, DMRS mask; out: Re/Im dh, err per ant
        self.net = GridResNet(4 * n_ant + 2, 3 * n_ant, self.config)
        # start as plain LS: zero correction
        nn.init.zeros_(self.net.output_conv.weight)
        nn.init.zeros_(self.net.output_conv.bias)

    def forward(self, y: torch.Tensor, no: float | torch.Tensor) -> torch.Tensor:
        no = per_slot_no(check_receiver_inputs(self.link, y, no), y.shape[0])
        h_ls, err_ls = self.ls.estimator(y, no)  # [b, 1, ant, 1, 1, sym, sc]
        b, n_ant = y.shape[0], self.link.num_rx_ant
        h0 = h_ls[:, 0, :, 0, 0]  # [b, ant, sym, sc]
        no_db = torch.log10(no).reshape(-1, 1, 1, 1).expand(b, 1, *h0.shape[-2:])
        feats = torch.cat([h0.real, h0.imag, y[:, 0].real, y[:, 0].imag, no_db,
                           self.dmrs_mask.expand(b, 1, -1, -1)], dim=1)
        out = self.net(feats)
        dh = torch.complex(out[:, :n_ant], out[:, n_ant:2 * n_ant])
        h_hat = (h0 + dh)[:, None, :, None, None]
        # error variance: LS's own estimate scaled by a learned positive factor per RE
        err_var = err_ls.expand_as(h_ls) * torch.exp(out[:, 2 * n_ant:])[:, None, :, None, None]
        return self.ls.demapper(y, h_hat, err_var, no)
