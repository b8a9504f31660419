"""The channel of a slot: 3GPP TDL/CDL (38.901), Rayleigh block fading or AWGN only, via Sionna.

SNR convention (that of Sionna's examples): unit-energy data symbols, a channel normalised to
unit average gain over each slot's resource grid, and noise variance per complex RE
`no = 10**(-snr_db/10)`, so `snr_db` is Es/N0 per data RE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from sionna.phy.channel import AWGN, OFDMChannel, RayleighBlockFading
from sionna.phy.channel.tr38901 import CDL, TDL, AntennaArray

from dmrx.ofdm.config import LinkConfig
from dmrx.ofdm.transmitter import Transmitter

CHANNEL_MODELS = ("awgn", "rayleigh", "tdl", "cdl")
PROFILES = ("A", "B", "C", "D", "E")
SPEED_OF_LIGHT = 299_792_458.0


@dataclass(frozen=True)
class ChannelConfig:
    """Small-scale channel of a scenario.

    :param model: 'awgn' (h = 1), 'rayleigh' (flat block fading: one Gaussian gain per slot and
        antenna), 'tdl' or 'cdl' (3GPP 38.901 7.7.2 / 7.7.1)
    :param profile: 'A'..'E' for TDL/CDL (D and E have a LoS path)
    :param delay_spread_ns: RMS delay spread the normalised profile is scaled to, 1..3000 ns
    :param speed_kmh: UE speed, 0..500 km/h (sets the Doppler of TDL/CDL)
    :param normalize: scale each slot's channel to unit average energy over the grid
        (`OFDMChannel(normalize_channel=True)`, as in Sionna's examples). `None` (default) means
        True for TDL/CDL and False for 'rayleigh', whose gain already has unit mean power and
        which per-slot normalisation would reduce to a phase rotation (no fading at all).
    """

    model: str = "tdl"
    profile: str = "C"
    delay_spread_ns: float = 300.0
    speed_kmh: float = 3.0
    normalize: bool | None = None

    def __post_init__(self) -> None:
        if self.normalize is None:
            object.__setattr__(self, "normalize", self.model in ("tdl", "cdl"))
        if self.model not in CHANNEL_MODELS:
            raise ValueError(f"ChannelConfig.model={self.model!r} is not allowed: "
                             f"one of {CHANNEL_MODELS}")
        if self.model in ("tdl", "cdl") and self.profile not in PROFILES:
            raise ValueError(f"ChannelConfig.profile={self.profile!r} is not allowed: "
                             f"one of {PROFILES} for {self.model.upper()}")
        if not 1.0 <= float(self.delay_spread_ns) <= 3000.0:
            raise ValueError(f"ChannelConfig.delay_spread_ns={self.delay_spread_ns!r} is not "
                             "allowed: 1..3000 ns")
        if not 0.0 <= float(self.speed_kmh) <= 500.0:
            raise ValueError(f"ChannelConfig.speed_kmh={self.speed_kmh!r} is not allowed: "
                             "0..500 km/h")

    def max_doppler_hz(self, carrier_frequency_hz: float) -> float:
        return self.speed_kmh / 3.6 / SPEED_OF_LIGHT * carrier_frequency_hz


class ChannelOutput(NamedTuple):
    """
    :ivar y: [batch, num_rx=1, num_rx_ant, num_ofdm_symbols, fft_size] complex64 received grid
    :ivar h: [batch, num_rx=1, num_rx_ant, num_tx=1, num_tx_ant=1, num_ofdm_symbols, fft_size]
        complex64 channel frequency response (perfect CSI)
    """

    y: torch.Tensor
    h: torch.Tensor


def _channel_model(link: LinkConfig, cfg: ChannelConfig, device: str | None):
    speed = cfg.speed_kmh / 3.6  # m/s
    if cfg.model == "rayleigh":
        return RayleighBlockFading(num_rx=1, num_rx_ant=link.num_rx_ant, num_tx=1,
                                   num_tx_ant=1, device=device)
    if cfg.model == "tdl":
        return TDL(cfg.profile, delay_spread=cfg.delay_spread_ns * 1e-9,
                   carrier_frequency=link.carrier_frequency_hz, min_speed=speed,
                   max_speed=speed, num_rx_ant=link.num_rx_ant, num_tx_ant=1, device=device)
    # CDL, uplink: a single omni UE antenna, a ULA of 38.901 elements at the base station.
    ut = AntennaArray(num_rows=1, num_cols=1, polarization="single", polarization_type="V",
                      antenna_pattern="omni", carrier_frequency=link.carrier_frequency_hz,
                      device=device)
    bs = AntennaArray(num_rows=1, num_cols=link.num_rx_ant, polarization="single",
                      polarization_type="V", antenna_pattern="38.901",
                      carrier_frequency=link.carrier_frequency_hz, device=device)
    return CDL(cfg.profile, delay_spread=cfg.delay_spread_ns * 1e-9,
               carrier_frequency=link.carrier_frequency_hz, ut_array=ut, bs_array=bs,
               direction="uplink", min_speed=speed, max_speed=speed, device=device)


class Channel(torch.nn.Module):
    """Frequency-domain channel plus AWGN for one link.

    :input x: [batch, 1, 1, num_ofdm_symbols, fft_size] complex64 (a `Transmitter`'s x)
    :input no: float or [batch] float32 noise variance per complex RE
    :output: `ChannelOutput` (y, h)
    """

    def __init__(self, link: LinkConfig, cfg: ChannelConfig, device: str | None = None):
        super().__init__()
        self.link, self.cfg = link, cfg
        rg = Transmitter(link, device=device).resource_grid
        self._shape = (link.num_rx_ant, link.num_ofdm_symbols, link.fft_size)
        self._ofdm = None
        if cfg.model != "awgn":
            self._ofdm = OFDMChannel(_channel_model(link, cfg, device), rg,
                                     normalize_channel=cfg.normalize, return_channel=True,
                                     device=device)
        else:
            self._awgn = AWGN(device=device)

    def forward(self, x: torch.Tensor, no: float | torch.Tensor) -> ChannelOutput:
        if self._ofdm is not None:
            y, h = self._ofdm(x, no)
            return ChannelOutput(y=y, h=h)
        n_ant, n_sym, n_sc = self._shape
        h = torch.ones(x.shape[0], 1, n_ant, 1, 1, n_sym, n_sc, dtype=x.dtype, device=x.device)
        y = self._awgn(x.expand(-1, -1, n_ant, -1, -1), no)
        return ChannelOutput(y=y, h=h)
