"""Jammers as channel stages: they add interference to the received grid.

A jammer's power is set by its jammer-to-signal ratio (JSR, dB) over the resource elements it
targets: the mean power it adds there over the mean power of the received signal (h x, without
noise) on the same REs, per slot. The robust issue extends this module with the other jammer
types; the online adapter's guard is tested against the DMRS-targeted one.
"""

from __future__ import annotations

import math

import torch

from dmrx.ofdm import LinkConfig, dmrs_mask


class _REJammer(torch.nn.Module):
    """Complex Gaussian interference on a fixed set of REs (`target`, [sym, sc] bool) at a JSR
    measured over those REs; subclasses only choose the set."""

    def __init__(self, link: LinkConfig, jsr_db: float, target: torch.Tensor):
        super().__init__()
        name = type(self).__name__
        if not (math.isfinite(jsr_db) and -50 <= jsr_db <= 50):
            raise ValueError(f"{name} jsr_db={jsr_db!r} is not allowed: -50..50 dB")
        self.link, self.jsr_db = link, float(jsr_db)
        self.register_buffer("target", target, persistent=False)

    def forward(self, y: torch.Tensor, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        signal = h[:, :, :, 0, 0] * x[:, :, 0:1]  # [batch, 1, ant, sym, sc]
        m = self.target
        p_signal = signal[..., m].abs().square().mean(dim=(1, 2, 3))  # [batch]
        p_jam = p_signal * 10.0 ** (self.jsr_db / 10.0)
        noise = torch.randn(y.shape, dtype=y.dtype, device=y.device)  # unit power, complex
        return y + noise * (p_jam.sqrt().reshape(-1, 1, 1, 1, 1) * m)


class DMRSJammer(_REJammer):
    """Complex Gaussian interference on the DMRS REs only (a pilot-targeting jammer).

    :param jsr_db: jammer-to-signal ratio on the DMRS REs, -50..50 dB
    :input y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64 received grid
    :input x: [batch, 1, 1, num_ofdm_symbols, fft_size] complex64 transmitted grid
    :input h: [batch, 1, num_rx_ant, 1, 1, num_ofdm_symbols, fft_size] complex64 channel
    :output y: y plus the interference, same shape
    """

    def __init__(self, link: LinkConfig, jsr_db: float):
        super().__init__(link, jsr_db, dmrs_mask(link))


class PartialBandJammer(_REJammer):
    """Complex Gaussian interference on a band of subcarriers, over all or some OFDM symbols
    (a partial-band jammer: it concentrates its power where it hurts the code most).

    :param jsr_db: jammer-to-signal ratio on the jammed REs, -50..50 dB
    :param subcarriers: (start, stop) of the jammed band, stop exclusive, within 0..fft_size
    :param symbols: the jammed OFDM symbols, None = the whole slot
    :ivar target: [num_ofdm_symbols, fft_size] bool, the jammed REs (as `DMRSJammer.target`)
    :input y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64 received grid
    :input x: [batch, 1, 1, num_ofdm_symbols, fft_size] complex64 transmitted grid
    :input h: [batch, 1, num_rx_ant, 1, 1, num_ofdm_symbols, fft_size] complex64 channel
    :output y: y plus the interference, same shape
    :raises ValueError: JSR out of range, an empty or out-of-grid band, a bad symbol index
    """

    def __init__(self, link: LinkConfig, jsr_db: float, subcarriers: tuple[int, int],
                 symbols: tuple[int, ...] | None = None):
        try:
            if isinstance(subcarriers, str):  # '12' would unpack to (1, 2)
                raise TypeError
            start, stop = (int(v) for v in subcarriers)
        except (TypeError, ValueError):
            start, stop = 0, -1
        if not 0 <= start < stop <= link.fft_size:
            raise ValueError(f"PartialBandJammer subcarriers={subcarriers!r} is not allowed: "
                             f"(start, stop) with 0 <= start < stop <= {link.fft_size}")
        n_sym = link.num_ofdm_symbols
        syms = tuple(range(n_sym)) if symbols is None else tuple(symbols)
        if not syms or len(set(syms)) != len(syms) or any(
                isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < n_sym
                for s in syms):
            raise ValueError(f"PartialBandJammer symbols={symbols!r} is not allowed: distinct "
                             f"OFDM symbol indices in 0..{n_sym - 1}, or None for all")
        m = torch.zeros(n_sym, link.fft_size, dtype=torch.bool)
        m[list(syms), start:stop] = True
        super().__init__(link, jsr_db, m)
        self.subcarriers, self.symbols = (start, stop), syms
