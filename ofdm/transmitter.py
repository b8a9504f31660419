"""Transmitter: information bits -> LDPC (TB encoding) -> QAM -> resource grid with DMRS."""

from __future__ import annotations

from typing import NamedTuple

import torch
from sionna.phy.mapping import BinarySource
from sionna.phy.nr import PUSCHTransmitter

from dmrx.ofdm.config import LinkConfig


class TxSlot(NamedTuple):
    """What the transmitter produced for a batch of slots.

    :ivar x: [batch, num_tx=1, num_tx_ant=1, num_ofdm_symbols, fft_size] complex64 resource grid
    :ivar b: [batch, tb_size] float32 information bits
    :ivar c: [batch, num_coded_bits] float32 coded (and scrambled) bits, in the order of the LLRs
    """

    x: torch.Tensor
    b: torch.Tensor
    c: torch.Tensor


class Transmitter(torch.nn.Module):
    """5G NR PUSCH transmitter for one `LinkConfig`, built on Sionna's `PUSCHTransmitter`.

    Sionna's block returns only (x, b); we run its own sub-blocks in the same order so the coded
    bits c are returned too (the labels of neural receivers), at no extra cost.

    :input batch_size: int, or b [batch, tb_size] float32 bits to send
    :output: `TxSlot` (x, b, c)
    """

    def __init__(self, link: LinkConfig, device: str | None = None):
        super().__init__()
        self.link = link
        self.pusch = PUSCHTransmitter(link.pusch_config(), return_bits=False, device=device)
        # Draws from Sionna's seeded generator (`dmrx.ofdm.seed`), like the channel does.
        self.source = BinarySource(device=device)

    @property
    def resource_grid(self):
        return self.pusch.resource_grid

    def forward(self, batch_size_or_bits: int | torch.Tensor) -> TxSlot:
        p = self.pusch
        if isinstance(batch_size_or_bits, int):
            if batch_size_or_bits < 1:
                raise ValueError(f"batch_size must be >= 1, got {batch_size_or_bits}")
            b = self.source([batch_size_or_bits, 1, p._tb_size])
        else:
            b = batch_size_or_bits
            if b.dim() != 2 or b.shape[-1] != p._tb_size:
                raise ValueError(f"b must have shape [batch, {p._tb_size}], got {tuple(b.shape)}")
            b = b.unsqueeze(1)
        c = p._tb_encoder(b)
        x = p._resource_grid_mapper(p._layer_mapper(p._mapper(c)))
        return TxSlot(x=x, b=b.squeeze(1), c=c.squeeze(1))
