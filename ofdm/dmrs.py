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
