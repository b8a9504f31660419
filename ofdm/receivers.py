"""Classic receivers with the contract every dmrx receiver keeps: `receiver(y, no) -> llr`.

They configure Sionna's own blocks (`PUSCHLSChannelEstimator`, `LinearDetector`,
`LayerDemapper`) exactly as Sionna's `PUSCHReceiver` does, but stop at the LLRs so that any
decoder, metric or stage can follow.

Shapes (Sionna's layouts):

- y: [batch, num_rx=1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
- no: float, 0-d tensor or [batch] float32, noise variance per complex RE (> 0)
- llr: [batch, num_coded_bits] float32, log(P(c=1)/P(c=0)) per coded bit, in the order the
  `Decoder` (Sionna's TB decoder) takes them
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sionna.phy.mimo import StreamManagement
from sionna.phy.nr import LayerDemapper, LayerMapper, PUSCHLSChannelEstimator
from sionna.phy.ofdm import LinearDetector

from dmrx.ofdm.config import LinkConfig
from dmrx.ofdm.transmitter import Transmitter

INTERPOLATIONS = ("nn", "lin", "lin_time_avg")


def check_receiver_inputs(link: LinkConfig, y: object, no: object) -> torch.Tensor:
    """Validate (y, no) against the receiver contract; return `no` as a float32 tensor.

    :raises ValueError: y is not a complex64 tensor of shape [batch, 1, num_rx_ant,
        num_ofdm_symbols, fft_size], or no is not a positive finite scalar or [batch] tensor
    """
    want = f"[batch, 1, {link.num_rx_ant}, {link.num_ofdm_symbols}, {link.fft_size}]"
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"y must be a torch.Tensor {want} complex64, got {type(y).__name__}")
    if y.dtype != torch.complex64:
        raise ValueError(f"y must be complex64 {want}, got dtype {y.dtype}")
    if y.dim() != 5 or tuple(y.shape[1:]) != (1, link.num_rx_ant, link.num_ofdm_symbols,
                                              link.fft_size):
        raise ValueError(f"y must have shape {want} for link {link.name!r}, "
                         f"got {list(y.shape)}")
    if isinstance(no, int | float | np.floating):
        if not (math.isfinite(no) and no > 0):
            raise ValueError(f"no (noise variance) must be a positive finite number, got {no}")
        return torch.tensor(float(no), dtype=torch.float32, device=y.device)
    if not isinstance(no, torch.Tensor):
        raise ValueError(f"no must be a float or a tensor, got {type(no).__name__}")
    if no.dim() > 1 or (no.dim() == 1 and no.shape[0] != y.shape[0]):
        raise ValueError(f"no must be a scalar or have shape [batch]=[{y.shape[0]}], "
                         f"got {list(no.shape)}")
    if no.is_complex() or not bool(torch.all(torch.isfinite(no) & (no > 0))):
        raise ValueError("no (noise variance) must be real, positive and finite")
    return no.to(torch.float32)


class LMMSEDemapper(torch.nn.Module):
    """LMMSE equalisation + max-log demapping + layer demapping, as in Sionna's PUSCHReceiver.

    :input y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :input h_hat: [batch, 1, num_rx_ant, 1, 1, num_ofdm_symbols, fft_size] complex64
    :input err_var: channel-estimation error variance, broadcastable to h_hat, float32
    :input no: 0-d or [batch] float32
    :output llr: [batch, num_coded_bits] float32
    """

    def __init__(self, link: LinkConfig, tx: Transmitter, device: str | None):
        super().__init__()
        sm = StreamManagement(np.ones([1, 1], bool), 1)
        self.detector = LinearDetector("lmmse", "bit", "maxlog", tx.resource_grid, sm, "qam",
                                       link.num_bits_per_symbol, device=device)
        self.layer_demapper = LayerDemapper(LayerMapper(num_layers=1, device=device),
                                            num_bits_per_symbol=link.num_bits_per_symbol,
                                            device=device)

    def forward(self, y, h_hat, err_var, no) -> torch.Tensor:
        llr = self.layer_demapper(self.detector(y, h_hat, err_var, no))
        return llr.squeeze(1)  # [batch, num_tx=1, n] -> [batch, n]


class LSReceiver(torch.nn.Module):
    """DMRS-based LS channel estimation with interpolation, then LMMSE equalisation.

    :param interpolation: 'lin' (linear in frequency and time, Sionna's default), 'nn' (nearest
        neighbour) or 'lin_time_avg' (linear in frequency, averaged over DMRS symbols in time)
    :input y, no: see the module docstring
    :output llr: [batch, num_coded_bits] float32
    """

    requires_csi = False

    def __init__(self, link: LinkConfig, interpolation: str = "lin", device: str | None = None):
        super().__init__()
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation={interpolation!r} is not allowed: "
                             f"one of {INTERPOLATIONS}")
        self.link = link
        tx = Transmitter(link, device=device)
        self.estimator = PUSCHLSChannelEstimator(
            tx.resource_grid, link.dmrs_length, link.dmrs_additional_position,
            link.pusch_config().dmrs.num_cdm_groups_without_data,
            interpolation_type=interpolation, device=device)
        self.demapper = LMMSEDemapper(link, tx, device)

    def forward(self, y: torch.Tensor, no: float | torch.Tensor) -> torch.Tensor:
        no = check_receiver_inputs(self.link, y, no)
        h_hat, err_var = self.estimator(y, no)
        return self.demapper(y, h_hat, err_var, no)


class PerfectCSIReceiver(torch.nn.Module):
    """LMMSE equalisation with the true channel (the genie bound of channel estimation).

    Needs the channel, so it is called `receiver(y, no, h=h)`; `requires_csi` tells simulation
    loops to pass it.

    :input h: [batch, 1, num_rx_ant, 1, 1, num_ofdm_symbols, fft_size] complex64 (`Channel`'s h)
    :output llr: [batch, num_coded_bits] float32
    """

    requires_csi = True

    def __init__(self, link: LinkConfig, device: str | None = None):
        super().__init__()
        self.link = link
        self.demapper = LMMSEDemapper(link, Transmitter(link, device=device), device)

    def forward(self, y: torch.Tensor, no: float | torch.Tensor,
                h: torch.Tensor | None = None) -> torch.Tensor:
        no = check_receiver_inputs(self.link, y, no)
        if h is None:
            raise ValueError("PerfectCSIReceiver needs the channel: call receiver(y, no, h=h)")
        if tuple(h.shape) != (y.shape[0], 1, y.shape[2], 1, 1, *y.shape[3:]):
            raise ValueError(f"h must have shape [batch, 1, num_rx_ant, 1, 1, "
                             f"num_ofdm_symbols, fft_size], got {list(h.shape)}")
        err_var = torch.zeros(1, dtype=torch.float32, device=y.device)
        return self.demapper(y, h, err_var, no)
