"""Named links and channel scenarios: what a study refers to by name.

Scenario names follow one pattern so that any TDL/CDL point can be named without editing the
catalog: ``tdl-c-300ns-60kmh`` = TDL-C, 300 ns RMS delay spread, 60 km/h. The catalog lists the
ones dmrx measures on, with the SNR range where their BLER waterfall lies.

Any scenario can be jammed by a suffix naming a jammer of `dmrx.robust.JAMMER_KINDS` and its
jammer-to-signal ratio: ``tdl-c-300ns-60kmh+dmrs-jammer-0db``, ``awgn+barrage-jammer-m5db``
(a negative JSR as ``m5db`` or ``-5db``). `make_channel` builds the channel of a scenario, jammer
included; everything that simulates a scenario builds it there.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import torch

from dmrx.ofdm import ChannelConfig, LinkConfig
from dmrx.robust.jammers import SUFFIX_HELP, JammerSpec, channel_stage, split_jammer

_PATTERN = re.compile(r"^(tdl|cdl)-([a-e])-(\d+(?:\.\d+)?)ns-(\d+(?:\.\d+)?)kmh$")
PATTERN_HELP = "'tdl-<a..e>-<delay spread>ns-<speed>kmh' or 'cdl-<a..e>-<...>ns-<...>kmh'"
JAMMER_HELP = SUFFIX_HELP


@dataclass(frozen=True)
class Scenario:
    """A named channel with the SNR range (dB, Es/N0 per data RE) worth sweeping on it, and
    optionally a jammer after the channel (`dmrx.robust.JammerSpec`, from a name suffix)."""

    name: str
    channel: ChannelConfig
    snr_db_range: tuple[float, float] = (0.0, 20.0)
    description: str = ""
    jammer: JammerSpec | None = None

    def __post_init__(self) -> None:
        lo, hi = self.snr_db_range
        if lo > hi:
            raise ValueError(f"Scenario.snr_db_range={self.snr_db_range} is backwards")
        if self.jammer is not None and not isinstance(self.jammer, JammerSpec):
            raise ValueError(f"Scenario.jammer={self.jammer!r} is not allowed: a "
                             "dmrx.robust.JammerSpec or None")

    def as_dict(self) -> dict:
        c = self.channel
        return {"name": self.name, "model": c.model, "profile": c.profile,
                "delay_spread_ns": c.delay_spread_ns, "speed_kmh": c.speed_kmh,
                "normalize": c.normalize, "snr_db_range": list(self.snr_db_range),
                "description": self.description,
                "jammer": None if self.jammer is None else self.jammer.as_dict()}


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
    """The catalog's scenario, or one built from a name of the TDL/CDL pattern, either of them
    optionally followed by a jammer suffix (`JAMMER_HELP`): 'tdl-c-300ns-60kmh+dmrs-jammer-0db'
    is that channel with a DMRS-targeted jammer at 0 dB JSR (same SNR range).

    :raises ValueError: the name is neither in the catalog nor of the pattern, or its jammer
        suffix is malformed (unknown kind, JSR out of -50..50 dB)
    """
    if not isinstance(name, str):
        raise ValueError(f"scenario name {name!r} is not allowed: a string")
    base, jammer = split_jammer(name)
    if base in SCENARIOS:
        sc = SCENARIOS[base]
    elif _PATTERN.match(base) is not None:
        sc = _fading(base, (0.0, 20.0), "built from its name")
    else:
        raise ValueError(f"unknown scenario {base!r}: use one of {sorted(SCENARIOS)} "
                         f"or a name of the form {PATTERN_HELP}"
                         + (", optionally + a jammer" if jammer is None else ""))
    if jammer is None:
        return sc
    what = f"{jammer.kind} jammer at {jammer.jsr_db:g} dB JSR"
    return dataclasses.replace(sc, name=name, jammer=jammer,
                               description=f"{sc.description}; {what}" if sc.description
                               else what)


def make_channel(link: LinkConfig, scenario: Scenario, *, device: str | None = None,
                 generator: torch.Generator | None = None) -> torch.nn.Module:
    """The channel stage of a scenario: its `dmrx.ofdm.Channel` (fading and AWGN), followed by
    its jammer if it has one (`dmrx.robust.channel_stage`).

    :param generator: the jammer's generator (None: the global RNG, which
        `dmrx.ofdm.seed_everything` seeds)
    :return: a module `(x, no) -> ChannelOutput(y, h)`; x [batch, 1, 1, num_ofdm_symbols,
        fft_size] complex64, no float or [batch]; y [batch, 1, num_rx_ant, num_ofdm_symbols,
        fft_size] complex64, h [batch, 1, num_rx_ant, 1, 1, num_ofdm_symbols, fft_size] complex64
    """
    return channel_stage(link, scenario.channel, scenario.jammer, device=device,
                         generator=generator)


def get_link(name: str) -> LinkConfig:
    """:raises ValueError: unknown link name"""
    if name not in LINKS:
        raise ValueError(f"unknown link {name!r}: use one of {sorted(LINKS)}")
    return LINKS[name]
