"""Named links and channel scenarios: what a study refers to by name.

Scenario names follow one pattern so that any TDL/CDL point can be named without editing the
catalog: ``tdl-c-300ns-60kmh`` = TDL-C, 300 ns RMS delay spread, 60 km/h. The catalog lists the
ones dmrx measures on, with the SNR range where their BLER waterfall lies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dmrx.ofdm import ChannelConfig, LinkConfig

_PATTERN = re.compile(r"^(tdl|cdl)-([a-e])-(\d+(?:\.\d+)?)ns-(\d+(?:\.\d+)?)kmh$")
PATTERN_HELP = "'tdl-<a..e>-<delay spread>ns-<speed>kmh' or 'cdl-<a..e>-<...>ns-<...>kmh'"


@dataclass(frozen=True)
class Scenario:
    """A named channel with the SNR range (dB, Es/N0 per data RE) worth sweeping on it."""

    name: str
    channel: ChannelConfig
    snr_db_range: tuple[float, float] = (0.0, 20.0)
    description: str = ""

    def __post_init__(self) -> None:
        lo, hi = self.snr_db_range
        if lo > hi:
            raise ValueError(f"Scenario.snr_db_range={self.snr_db_range} is backwards")

    def as_dict(self) -> dict:
        c = self.channel
        return {"name": self.name, "model": c.model, "profile": c.profile,
                "delay_spread_ns": c.delay_spread_ns, "speed_kmh": c.speed_kmh,
                "normalize": c.normalize, "snr_db_range": list(self.snr_db_range),
                "description": self.description}


def _fading(name: str, snr: tuple[float, float], description: str) -> Scenario:
    model, profile, ds, v = _PATTERN.match(name).groups()
    return Scenario(name, ChannelConfig(model, profile.upper(), float(ds), float(v)), snr,
                    description)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario("awgn", ChannelConfig("awgn"), (-2.0, 12.0), "AWGN only (h = 1)"),
        Scenario("rayleigh-block", ChannelConfig("rayleigh"), (0.0, 30.0),
                 "flat Rayleigh fading, constant over the slot"),
        _fading("tdl-a-30ns-3kmh", (0.0, 20.0), "NLoS, short delay spread, pedestrian"),
        _fading("tdl-b-100ns-30kmh", (0.0, 20.0), "NLoS, medium delay spread"),
        _fading("tdl-c-300ns-3kmh", (4.0, 16.0), "ref-4prb's low-mobility scenario"),
        _fading("tdl-c-300ns-60kmh", (4.0, 16.0), "ref-4prb's vehicular scenario"),
        _fading("tdl-c-300ns-300kmh", (4.0, 24.0), "ref-4prb-hs: high speed, one DMRS symbol"),
        _fading("tdl-d-30ns-3kmh", (0.0, 16.0), "LoS (Rician), short delay spread"),
        _fading("tdl-e-100ns-120kmh", (0.0, 20.0), "LoS (Rician), high speed"),
        _fading("cdl-a-100ns-3kmh", (0.0, 20.0), "clustered NLoS, pedestrian"),
        _fading("cdl-c-300ns-60kmh", (0.0, 20.0), "clustered NLoS, vehicular"),
        _fading("cdl-d-30ns-3kmh", (0.0, 16.0), "clustered LoS"),
    ]
}

LINKS: dict[str, LinkConfig] = {
    link.name: link
    for link in [
        LinkConfig(name="ref-4prb"),  # defaults are the reference link (see LinkConfig)
        LinkConfig(name="ref-4prb-hs", dmrs_additional_position=0),
        LinkConfig(name="ref-4prb-2rx", num_rx_ant=2),
    ]
}


def get_scenario(name: str) -> Scenario:
    """The catalog's scenario, or one built from a name of the TDL/CDL pattern.

    :raises ValueError: the name is neither in the catalog nor of the pattern
    """
    if name in SCENARIOS:
        return SCENARIOS[name]
    m = _PATTERN.match(name)
    if m is None:
        raise ValueError(f"unknown scenario {name!r}: use one of {sorted(SCENARIOS)} "
                         f"or a name of the form {PATTERN_HELP}")
    return _fading(name, (0.0, 20.0), "built from its name")


def get_link(name: str) -> LinkConfig:
    """:raises ValueError: unknown link name"""
    if name not in LINKS:
        raise ValueError(f"unknown link {name!r}: use one of {sorted(LINKS)}")
    return LINKS[name]
