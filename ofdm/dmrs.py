"""Where the DMRS sits in a slot and what it carries (38.211 6.4.1.1), from Sionna's PUSCHConfig.

Later stages train on these: the online adapter uses the DMRS REs as free labels, jammers
target them, CAM maps outline them.
"""

from __future__ import annotations

import torch

from dmrx.ofdm.config import LinkConfig


def dmrs_values(link: LinkConfig) -> torch.Tensor:
    """Known DMRS symbols of the (single) DMRS port, zero elsewhere.

    Includes the 3 dB power boost (beta = sqrt(2) for type 1 with two CDM groups without data).

    :return: [num_ofdm_symbols, fft_size] complex64
    """
    # Sionna gives the whole 14-symbol slot; the grid holds the allocation (symbols 0..l_d-1).
    grid = link.pusch_config().dmrs_grid[0, :, : link.num_ofdm_symbols]  # [subcarriers, symbols]
    return torch.as_tensor(grid.T, dtype=torch.complex64).contiguous()


def dmrs_mask(link: LinkConfig) -> torch.Tensor:
    """REs that carry a DMRS symbol of this link's port.

    :return: [num_ofdm_symbols, fft_size] bool
    """
    return dmrs_values(link) != 0


def data_mask(link: LinkConfig) -> torch.Tensor:
    """REs that carry data (coded bits). On DMRS symbols the REs of the CDM groups without
    data stay empty, so `data_mask | dmrs_mask` does not cover the whole grid.

    :return: [num_ofdm_symbols, fft_size] bool
    """
    no_data = torch.as_tensor(link.pusch_config().dmrs_mask[:, : link.num_ofdm_symbols].T)
    return ~no_data


def pilot_comb(dmrs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The DMRS comb as a dense block: its OFDM symbols, its subcarriers (the same on every DMRS
    symbol for a single port) and the pilot values there.

    :param dmrs: [num_ofdm_symbols, fft_size] complex64, `dmrs_values(link)`
    :return: sym [n_sym] int64, sc [n_sc] int64, p [n_sym, n_sc] complex64
    """
    sym = (dmrs != 0).any(-1).nonzero().flatten()
    sc = (dmrs[sym[0]] != 0).nonzero().flatten()
    return sym, sc, dmrs[sym][:, sc]


def pilot_noise(y: torch.Tensor, comb: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
                ) -> torch.Tensor:
    """Noise variance seen on the pilots, per slot, from the received grid alone.

    Along each DMRS symbol the LS estimates y/p of consecutive pilots differ by the noise and
    by the channel's curvature over two comb steps; the second difference
    h[k-1] - 2 h[k] + h[k+1] cancels the channel up to that curvature (small next to the noise
    below 30 dB for the TDL profiles) and has variance 6 no / |p|^2. Interference on the
    pilots (a DMRS-targeted jammer) counts as noise here.

    :param y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :param comb: `pilot_comb(dmrs_values(link))`
    :return: [batch] float32
    """
    sym, sc, p = comb
    ls = y[:, 0][:, :, sym][:, :, :, sc] / p  # [batch, ant, n_sym, n_sc]
    d2 = ls[..., :-2] - 2 * ls[..., 1:-1] + ls[..., 2:]
    return (d2.abs().square() * p[:, 1:-1].abs().square() / 6).mean(dim=(1, 2, 3))
