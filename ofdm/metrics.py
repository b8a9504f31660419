"""Error counts (BER, BLER, coded BER, throughput) that merge across batches, workers and runs.

Counts, not rates, are what is stored: `a + b` of two `ErrorCounts` is exact, so a sweep that
resumes or runs on several workers adds up to the same numbers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from dmrx.ofdm.config import LinkConfig


@dataclass(frozen=True)
class ErrorCounts:
    bit_errors: int = 0
    bits: int = 0
    block_errors: int = 0
    blocks: int = 0
    coded_bit_errors: int = 0
    coded_bits: int = 0

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(*(a + b for a, b in zip(dataclasses.astuple(self),
                                                   dataclasses.astuple(other), strict=True)))

    @property
    def ber(self) -> float:
        """Information-bit error rate after decoding."""
        return self.bit_errors / self.bits if self.bits else float("nan")

    @property
    def bler(self) -> float:
        """Transport-block error rate (a block is in error if its CRC fails or any bit differs)."""
        return self.block_errors / self.blocks if self.blocks else float("nan")

    @property
    def coded_ber(self) -> float:
        """Hard-decision error rate of the receiver's LLRs before decoding (uncoded BER)."""
        return self.coded_bit_errors / self.coded_bits if self.coded_bits else float("nan")

    def throughput_bps(self, link: LinkConfig) -> float:
        """Delivered information bits per second: correct TBs x tb_size / airtime."""
        if not self.blocks:
            return float("nan")
        return (self.blocks - self.block_errors) * link.tb_size / (self.blocks
                                                                   * link.slot_duration_s)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"ber": self.ber, "bler": self.bler,
                                           "coded_ber": self.coded_ber}


def count_errors(b: torch.Tensor, b_hat: torch.Tensor, crc_ok: torch.Tensor,
                 c: torch.Tensor, llr: torch.Tensor) -> ErrorCounts:
    """Count errors of one batch.

    :param b, b_hat: [batch, tb_size] sent and decoded information bits
    :param crc_ok: [batch] bool
    :param c: [batch, num_coded_bits] sent coded bits
    :param llr: [batch, num_coded_bits] receiver LLRs (hard decision: llr > 0 means 1)
    """
    bit_err = (b != b_hat).sum(dim=-1)
    block_err = (bit_err > 0) | ~crc_ok
    coded_err = ((llr > 0).to(c.dtype) != c).sum()
    return ErrorCounts(bit_errors=int(bit_err.sum()), bits=b.numel(),
                       block_errors=int(block_err.sum()), blocks=b.shape[0],
                       coded_bit_errors=int(coded_err), coded_bits=c.numel())
