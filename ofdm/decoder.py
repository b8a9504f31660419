"""LDPC transport-block decoding of a receiver's LLRs (Sionna's `TBDecoder`)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from sionna.phy.nr import TBDecoder

from dmrx.ofdm.config import LinkConfig
from dmrx.ofdm.transmitter import Transmitter


class Decoded(NamedTuple):
    """
    :ivar b_hat: [batch, tb_size] float32 decoded information bits
    :ivar crc_ok: [batch] bool transport-block CRC passed
    """

    b_hat: torch.Tensor
    crc_ok: torch.Tensor


class Decoder(torch.nn.Module):
    """Descrambling, rate recovery, LDPC BP decoding and CRC check of one slot's TB.

    :param num_bp_iter: belief-propagation iterations (Sionna's default, 20)
    :input llr: [batch, num_coded_bits] float32
    :output: `Decoded` (b_hat, crc_ok)
    """

    def __init__(self, link: LinkConfig, num_bp_iter: int = 20, device: str | None = None):
        super().__init__()
        if num_bp_iter < 1:
            raise ValueError(f"num_bp_iter must be >= 1, got {num_bp_iter}")
        self.link = link
        # The decoder mirrors the encoder it is given: build the same one the Transmitter uses.
        self.tb_decoder = TBDecoder(Transmitter(link, device=device).pusch._tb_encoder,
                                    num_bp_iter=num_bp_iter, device=device)

    def forward(self, llr: torch.Tensor) -> Decoded:
        n = self.link.num_coded_bits
        if llr.dim() != 2 or llr.shape[-1] != n:
            raise ValueError(f"llr must have shape [batch, {n}], got {list(llr.shape)}")
        b_hat, crc_ok = self.tb_decoder(llr.unsqueeze(1))
        return Decoded(b_hat=b_hat.squeeze(1), crc_ok=crc_ok.squeeze(1))
