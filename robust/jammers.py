"""Jammers as channel stages: they add interference to the received grid.

A jammer's power is set by its jammer-to-signal ratio (JSR, dB) over the resource elements it
targets: the mean power it adds there over the mean power of the received signal (h x, without
noise) on the same REs, averaged over the receive antennas, per slot. The realised power is
exact per slot (the drawn samples are scaled to it), and the jammer adds exactly zero outside
its target. A slot with no signal on the target gets no interference (the JSR is relative).

Kinds (`JAMMER_KINDS`, built by `make_jammer(kind, link, jsr_db, **options)`):

- 'barrage'      complex Gaussian noise on every RE (`BarrageJammer`)
- 'tone'         one continuous-wave tone (`ToneJammer`), by default at the centre subcarrier
- 'multi-tone'   several CW tones spread over the band (`MultiToneJammer`, 4 by default)
- 'partial-band' Gaussian noise on a band of subcarriers (`PartialBandJammer`, by default the
                 middle quarter of the band)
- 'pulsed'       Gaussian noise on a set of OFDM symbols (`PulsedJammer`, by default a 25 %
                 duty cycle: one symbol in four)
- 'dmrs'         Gaussian noise on the DMRS REs only (`DMRSJammer`)
- 'reactive'     senses the occupied subcarriers on the first symbols of the slot and jams them
                 on the remaining ones (`ReactiveJammer`)

Noise-like jammers draw independent samples per receive antenna (spatially white interference,
which no combiner can null). Randomness comes from the `generator` given to a jammer, or the
global torch RNG (which `dmrx.ofdm.seed_everything` seeds) when there is none.

A scenario names its jammer with a suffix, `tdl-c-300ns-60kmh+dmrs-jammer-0db` (`JammerSpec`,
`split_jammer`), and `channel_stage` builds the channel of such a scenario: the fading channel
with its noise, then the jammer.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from dmrx.ofdm import Channel, ChannelConfig, ChannelOutput, LinkConfig, dmrs_mask

JAMMER_KINDS = ("barrage", "tone", "multi-tone", "partial-band", "pulsed", "dmrs", "reactive")
JSR_DB_LIMITS = (-50.0, 50.0)


def _is_int(v: object) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _symbol_set(owner: str, link: LinkConfig, symbols) -> tuple[int, ...]:
    n_sym = link.num_ofdm_symbols
    syms = tuple(range(n_sym)) if symbols is None else symbols
    try:
        syms = tuple(syms)
    except TypeError:
        syms = ()
    if not syms or len(set(syms)) != len(syms) or any(
            not _is_int(s) or not 0 <= s < n_sym for s in syms):
        raise ValueError(f"{owner} symbols={symbols!r} is not allowed: distinct OFDM symbol "
                         f"indices in 0..{n_sym - 1}, or None for all")
    return tuple(int(s) for s in syms)


class Jammer(torch.nn.Module):
    """Base of the jammers: scales a waveform to the JSR on the target REs, per slot.

    A subclass chooses the target (`target`, a fixed [num_ofdm_symbols, fft_size] bool mask, or
    `target_mask` for one that depends on the received grid) and the waveform (complex Gaussian
    unless it overrides `waveform`).

    :param jsr_db: jammer-to-signal ratio on the target REs, -50..50 dB
    :param generator: the torch.Generator the jammer draws from (None: the global RNG)
    :input y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64 received grid
    :input x: [batch, 1, 1, num_ofdm_symbols, fft_size] complex64 transmitted grid
    :input h: [batch, 1, num_rx_ant, 1, 1, num_ofdm_symbols, fft_size] complex64 channel
    :output y: y plus the interference, same shape and dtype
    :raises ValueError: a JSR outside -50..50 dB
    """

    kind: ClassVar[str] = ""

    def __init__(self, link: LinkConfig, jsr_db: float, target: torch.Tensor | None = None, *,
                 generator: torch.Generator | None = None):
        super().__init__()
        name = type(self).__name__
        lo, hi = JSR_DB_LIMITS
        if isinstance(jsr_db, bool) or not isinstance(jsr_db, int | float | np.number) or not (
                math.isfinite(jsr_db) and lo <= jsr_db <= hi):
            raise ValueError(f"{name}.jsr_db={jsr_db!r} is not allowed: {lo:g}..{hi:g} dB")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"{name}.generator={generator!r} is not allowed: a torch.Generator "
                             "or None")
        self.link, self.jsr_db, self.generator = link, float(jsr_db), generator
        self.register_buffer("target", target, persistent=False)

    def target_mask(self, y: torch.Tensor, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """:return: [1 or batch, num_ofdm_symbols, fft_size] bool, the REs jammed in each slot"""
        return self.target[None]

    def _randn(self, shape: Sequence[int], device: torch.device) -> torch.Tensor:
        g = self.generator
        if g is None:
            return torch.randn(shape, dtype=torch.complex64, device=device)
        return torch.randn(shape, dtype=torch.complex64, generator=g,
                           device=g.device).to(device)

    def _rand(self, shape: Sequence[int], device: torch.device) -> torch.Tensor:
        g = self.generator
        if g is None:
            return torch.rand(shape, dtype=torch.float64, device=device)
        return torch.rand(shape, dtype=torch.float64, generator=g, device=g.device).to(device)

    def waveform(self, y: torch.Tensor) -> torch.Tensor:
        """Unscaled interference: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
        (unit-variance complex Gaussian, independent per RE and antenna, by default)."""
        return self._randn(y.shape, y.device)

    def interference(self, y: torch.Tensor, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The interference alone, scaled to the JSR: same shape and dtype as y."""
        m = self.target_mask(y, x, h)[:, None, None].to(y.device)  # [b|1, 1, 1, sym, sc]
        signal = h[:, :, :, 0, 0] * x[:, :, 0:1]  # [batch, 1, ant, sym, sc]
        dims = (1, 2, 3, 4)
        count = m.sum(dims) * (y.shape[1] * y.shape[2])  # REs x antennas, per slot
        p_signal = (signal.abs().square() * m).sum(dims) / count.clamp(min=1)
        w = self.waveform(y) * m
        p_w = w.abs().square().sum(dims) / count.clamp(min=1)
        p_jam = p_signal * 10.0 ** (self.jsr_db / 10.0)
        gain = torch.where(p_w > 0, (p_jam / p_w.clamp(min=1e-30)).sqrt(), 0.0)
        return w * gain.reshape(-1, 1, 1, 1, 1).to(w.dtype)

    def forward(self, y: torch.Tensor, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return y + self.interference(y, x, h)

    def extra_repr(self) -> str:
        return f"jsr_db={self.jsr_db:g}"


class BarrageJammer(Jammer):
    """Wideband complex Gaussian noise on every RE of the slot (a barrage jammer).

    Shapes as `Jammer`; the target is the whole [num_ofdm_symbols, fft_size] grid.
    """

    kind = "barrage"

    def __init__(self, link: LinkConfig, jsr_db: float, *,
                 generator: torch.Generator | None = None):
        target = torch.ones(link.num_ofdm_symbols, link.fft_size, dtype=torch.bool)
        super().__init__(link, jsr_db, target, generator=generator)


class DMRSJammer(Jammer):
    """Complex Gaussian interference on the DMRS REs only (a pilot-targeting jammer).

    :param jsr_db: jammer-to-signal ratio on the DMRS REs, -50..50 dB
    :input y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64 received grid
    :input x: [batch, 1, 1, num_ofdm_symbols, fft_size] complex64 transmitted grid
    :input h: [batch, 1, num_rx_ant, 1, 1, num_ofdm_symbols, fft_size] complex64 channel
    :output y: y plus the interference, same shape
    """

    kind = "dmrs"

    def __init__(self, link: LinkConfig, jsr_db: float, *,
                 generator: torch.Generator | None = None):
        super().__init__(link, jsr_db, dmrs_mask(link), generator=generator)


def _middle_quarter(fft_size: int) -> tuple[int, int]:
    width = max(1, fft_size // 4)
    start = (fft_size - width) // 2
    return start, start + width


class PartialBandJammer(Jammer):
    """Complex Gaussian interference on a band of subcarriers, over all or some OFDM symbols
    (a partial-band jammer: it concentrates its power where it hurts the code most).

    :param jsr_db: jammer-to-signal ratio on the jammed REs, -50..50 dB
    :param subcarriers: (start, stop) of the jammed band, stop exclusive, within 0..fft_size;
        None = the middle quarter of the band
    :param symbols: the jammed OFDM symbols, None = the whole slot
    :ivar target: [num_ofdm_symbols, fft_size] bool, the jammed REs (as `DMRSJammer.target`)
    :input y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64 received grid
    :input x: [batch, 1, 1, num_ofdm_symbols, fft_size] complex64 transmitted grid
    :input h: [batch, 1, num_rx_ant, 1, 1, num_ofdm_symbols, fft_size] complex64 channel
    :output y: y plus the interference, same shape
    :raises ValueError: JSR out of range, an empty or out-of-grid band, a bad symbol index
    """

    kind = "partial-band"

    def __init__(self, link: LinkConfig, jsr_db: float,
                 subcarriers: tuple[int, int] | None = None,
                 symbols: Sequence[int] | None = None, *,
                 generator: torch.Generator | None = None):
        if subcarriers is None:
            subcarriers = _middle_quarter(link.fft_size)
        try:
            if isinstance(subcarriers, str):  # '12' would unpack to (1, 2)
                raise TypeError
            start, stop = subcarriers
            if not (_is_int(start) and _is_int(stop)):
                raise TypeError
        except (TypeError, ValueError):
            start, stop = 0, -1
        if not 0 <= start < stop <= link.fft_size:
            raise ValueError(f"PartialBandJammer subcarriers={subcarriers!r} is not allowed: "
                             f"(start, stop) with 0 <= start < stop <= {link.fft_size}")
        syms = _symbol_set("PartialBandJammer", link, symbols)
        m = torch.zeros(link.num_ofdm_symbols, link.fft_size, dtype=torch.bool)
        m[list(syms), start:stop] = True
        super().__init__(link, jsr_db, m, generator=generator)
        self.subcarriers, self.symbols = (int(start), int(stop)), syms


class PulsedJammer(Jammer):
    """Complex Gaussian noise over the whole band on some OFDM symbols only (a pulsed jammer:
    the same energy in short bursts).

    The pulse train is periodic in OFDM symbols and restarts every slot: symbol l is jammed
    when `(l - start) mod period < on`, `on = max(1, round(duty_cycle * period))`, unless an
    explicit `symbols` set is given. The default (duty 0.25, period 4) jams symbols 0, 4, 8, 12.

    :param symbols: explicit jammed OFDM symbols (then duty_cycle/period/start must be left
        at their defaults)
    :param duty_cycle: fraction of each period that is on, in (0, 1]
    :param period: pulse period in OFDM symbols, a positive integer
    :param start: the first jammed symbol, 0..num_ofdm_symbols-1
    :ivar symbols: the jammed OFDM symbols
    Shapes as `Jammer`.
    :raises ValueError: a bad duty cycle, period, start or symbol set
    """

    kind = "pulsed"

    def __init__(self, link: LinkConfig, jsr_db: float, symbols: Sequence[int] | None = None,
                 *, duty_cycle: float = 0.25, period: int = 4, start: int = 0,
                 generator: torch.Generator | None = None):
        n_sym = link.num_ofdm_symbols
        if symbols is None:
            if not (isinstance(duty_cycle, int | float) and not isinstance(duty_cycle, bool)
                    and 0 < duty_cycle <= 1):
                raise ValueError(f"PulsedJammer.duty_cycle={duty_cycle!r} is not allowed: "
                                 "in (0, 1]")
            if not _is_int(period) or period < 1:
                raise ValueError(f"PulsedJammer.period={period!r} is not allowed: a positive "
                                 "integer (OFDM symbols)")
            if not _is_int(start) or not 0 <= start < n_sym:
                raise ValueError(f"PulsedJammer.start={start!r} is not allowed: an OFDM symbol "
                                 f"index in 0..{n_sym - 1}")
            on = max(1, round(duty_cycle * period))
            symbols = [s for s in range(n_sym) if s >= start and (s - start) % period < on]
        elif (duty_cycle, period, start) != (0.25, 4, 0):
            raise ValueError("PulsedJammer takes either symbols or duty_cycle/period/start, "
                             "not both")
        syms = _symbol_set("PulsedJammer", link, symbols)
        m = torch.zeros(n_sym, link.fft_size, dtype=torch.bool)
        m[list(syms)] = True
        super().__init__(link, jsr_db, m, generator=generator)
        self.symbols = syms


def cyclic_prefix_samples(link: LinkConfig) -> int:
    """The cyclic prefix of the link's OFDM symbols in samples at `fft_size` x subcarrier
    spacing, as Sionna's PUSCH transmitter sets it (one normal CP length for every symbol:
    ceil(N_CP T_c x bandwidth), `sionna.phy.nr.pusch_config.check_pusch_configs`)."""
    carrier = link.pusch_config().carrier
    bandwidth = link.fft_size * link.subcarrier_spacing_khz * 1e3
    return int(np.ceil(carrier.cyclic_prefix_length * bandwidth))


def tone_grid(link: LinkConfig, subcarrier: int, offset: float = 0.0) -> torch.Tensor:
    """What the receiver's FFT makes of a continuous-wave tone, on the resource grid.

    The tone `exp(j 2 pi f t)` sits at `f = (subcarrier - fft_size/2 + offset)` subcarrier
    spacings from the carrier (grid column c is the frequency (c - fft_size/2) x spacing, as
    Sionna's OFDM demodulator fftshifts). It is sampled at fft_size x spacing, the cyclic prefix
    (`cyclic_prefix_samples`) of every symbol is dropped, and each symbol's fft_size samples go
    through a DFT scaled by 1/fft_size. On-grid (offset 0) this is one subcarrier of constant
    magnitude whose phase advances by 2 pi k N_cp / N per symbol (k = subcarrier - N/2; N_cp
    the CP, N the FFT size); off-grid, it leaks into every subcarrier with the Dirichlet kernel
    sin(pi offset) / (N sin(pi (k + offset - k') / N)) and advances by 2 pi (k + offset)(N + N_cp)
    / N per symbol (tests/robust check both against that closed form).

    :param subcarrier: grid column of the tone, 0..fft_size-1
    :param offset: frequency offset in subcarrier spacings, -0.5..0.5
    :return: [num_ofdm_symbols, fft_size] complex64, unit magnitude on the tone's column when
        on-grid
    """
    n, cp, n_sym = link.fft_size, cyclic_prefix_samples(link), link.num_ofdm_symbols
    k = subcarrier - n // 2 + offset
    sample = (torch.arange(n_sym, dtype=torch.float64)[:, None] * (n + cp) + cp
              + torch.arange(n, dtype=torch.float64))  # absolute index of the kept samples
    s = torch.exp(2j * math.pi * k * sample / n)
    grid = torch.fft.fftshift(torch.fft.fft(s, dim=-1), dim=-1) / n
    if offset == 0:  # exact zeros off the tone, not the FFT's 1e-16 round-off
        keep = torch.zeros(n, dtype=torch.bool)
        keep[subcarrier] = True
        grid = grid * keep
    return grid.to(torch.complex64)


class ToneJammer(Jammer):
    """Continuous-wave tones (a tone jammer): each tone is `tone_grid(link, subcarrier,
    offset)` times a random phase per slot, antenna and tone (a flat channel from the jammer
    to each antenna with unknown phase), all tones at equal power.

    On-grid tones (offset 0) hit their subcarriers on every symbol and nothing else, so the
    target (and the JSR's reference) is those columns; an off-grid tone leaks into every
    subcarrier, so its target is the whole grid and the JSR is over the whole band.

    :param subcarriers: grid column(s) of the tone(s), 0..fft_size-1; None = the centre one
    :param offset: frequency offset of every tone in subcarrier spacings, -0.5..0.5
    :ivar subcarriers: the tones' columns
    Shapes as `Jammer`.
    :raises ValueError: a bad, repeated or out-of-grid subcarrier, an offset out of range
    """

    kind = "tone"

    def __init__(self, link: LinkConfig, jsr_db: float,
                 subcarriers: int | Sequence[int] | None = None, *, offset: float = 0.0,
                 generator: torch.Generator | None = None):
        name, n = type(self).__name__, link.fft_size
        cols = [n // 2] if subcarriers is None else (
            [subcarriers] if _is_int(subcarriers) else subcarriers)
        try:
            cols = list(cols)
        except TypeError:
            cols = []
        if not cols or len(set(cols)) != len(cols) or any(
                not _is_int(c) or not 0 <= c < n for c in cols):
            raise ValueError(f"{name}.subcarriers={subcarriers!r} is not allowed: one or "
                             f"several distinct subcarrier indices in 0..{n - 1}")
        if isinstance(offset, bool) or not isinstance(offset, int | float) or not (
                -0.5 <= offset <= 0.5):
            raise ValueError(f"{name}.offset={offset!r} is not allowed: -0.5..0.5 subcarrier "
                             "spacings")
        cols = [int(c) for c in cols]
        m = torch.zeros(link.num_ofdm_symbols, n, dtype=torch.bool)
        if offset == 0:
            m[:, cols] = True
        else:
            m[:] = True
        super().__init__(link, jsr_db, m, generator=generator)
        self.subcarriers, self.offset = tuple(cols), float(offset)
        self.register_buffer("tones", torch.stack([tone_grid(link, c, float(offset))
                                                   for c in cols]), persistent=False)

    def waveform(self, y: torch.Tensor) -> torch.Tensor:
        b, rx, ant = y.shape[:3]
        n_tones = self.tones.shape[0]
        phase = torch.exp(2j * math.pi * self._rand((b, rx, ant, n_tones), y.device))
        return torch.einsum("brat,tls->brals", phase.to(torch.complex64),
                            self.tones.to(y.device))

    def extra_repr(self) -> str:
        return f"jsr_db={self.jsr_db:g}, subcarriers={self.subcarriers}, offset={self.offset:g}"


def spread_tones(fft_size: int, num_tones: int) -> list[int]:
    """`num_tones` columns spread evenly over the band, each in the middle of its share."""
    return [(2 * i + 1) * fft_size // (2 * num_tones) for i in range(num_tones)]


class MultiToneJammer(ToneJammer):
    """Several CW tones at equal power (`ToneJammer`), by default `num_tones` spread evenly
    over the band (`spread_tones`: columns 6, 18, 30, 42 of a 48-subcarrier grid).

    :param num_tones: tones spread evenly over the band, 1..fft_size (when no subcarriers given)
    :param subcarriers: explicit tone columns instead
    :raises ValueError: as `ToneJammer`, or a bad num_tones
    """

    kind = "multi-tone"

    def __init__(self, link: LinkConfig, jsr_db: float, num_tones: int = 4, *,
                 subcarriers: Sequence[int] | None = None, offset: float = 0.0,
                 generator: torch.Generator | None = None):
        if subcarriers is None:
            if not _is_int(num_tones) or not 1 <= num_tones <= link.fft_size:
                raise ValueError(f"MultiToneJammer.num_tones={num_tones!r} is not allowed: an "
                                 f"integer in 1..{link.fft_size}")
            subcarriers = spread_tones(link.fft_size, int(num_tones))
        super().__init__(link, jsr_db, subcarriers, offset=offset, generator=generator)


class ReactiveJammer(Jammer):
    """A reactive jammer: it listens to the first `sense_symbols` OFDM symbols of each slot,
    finds the occupied subcarriers there, and jams those subcarriers (Gaussian noise) on the
    remaining symbols, so it follows the user's band wherever it is.

    Sensing is an energy detector on the received grid: the energy of subcarrier c, averaged
    over the sensed symbols and the receive antennas, marks c occupied when it is within
    `threshold_db` of the strongest subcarrier's (-20 dB by default: QAM symbols alone spread
    a few-symbol energy over about 12 dB for 16-QAM). Below about 20 dB SNR noise-only
    subcarriers can pass (false alarms) and deeply faded ones can be missed, as with a real
    energy detector; on the reference links every subcarrier is allocated, so there it jams the
    whole band after the sensing window.

    :param sense_symbols: OFDM symbols it listens to, 1..num_ofdm_symbols-1
    :param threshold_db: detection threshold relative to the strongest subcarrier, -60..0 dB
    :input y, x, h: as `Jammer`; the target depends on y, per slot (`target` is None)
    :raises ValueError: a bad sense_symbols or threshold
    """

    kind = "reactive"

    def __init__(self, link: LinkConfig, jsr_db: float, *, sense_symbols: int = 2,
                 threshold_db: float = -20.0, generator: torch.Generator | None = None):
        n_sym = link.num_ofdm_symbols
        if not _is_int(sense_symbols) or not 1 <= sense_symbols < n_sym:
            raise ValueError(f"ReactiveJammer.sense_symbols={sense_symbols!r} is not allowed: "
                             f"an integer in 1..{n_sym - 1}")
        if isinstance(threshold_db, bool) or not isinstance(threshold_db, int | float) or not (
                -60 <= threshold_db <= 0):
            raise ValueError(f"ReactiveJammer.threshold_db={threshold_db!r} is not allowed: "
                             "-60..0 dB")
        super().__init__(link, jsr_db, None, generator=generator)
        self.sense_symbols, self.threshold_db = int(sense_symbols), float(threshold_db)

    def sense(self, y: torch.Tensor) -> torch.Tensor:
        """:input y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
        :return: [batch, fft_size] bool, the subcarriers found occupied in each slot"""
        energy = y[:, :, :, :self.sense_symbols].abs().square().mean(dim=(1, 2, 3))
        floor = energy.amax(dim=-1, keepdim=True) * 10.0 ** (self.threshold_db / 10.0)
        return (energy >= floor) & (energy > 0)

    def target_mask(self, y: torch.Tensor, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        later = torch.arange(y.shape[3], device=y.device) >= self.sense_symbols
        return self.sense(y)[:, None, :] & later[None, :, None]

    def extra_repr(self) -> str:
        return (f"jsr_db={self.jsr_db:g}, sense_symbols={self.sense_symbols}, "
                f"threshold_db={self.threshold_db:g}")


JAMMERS: dict[str, type[Jammer]] = {
    cls.kind: cls for cls in (BarrageJammer, ToneJammer, MultiToneJammer, PartialBandJammer,
                              PulsedJammer, DMRSJammer, ReactiveJammer)}
assert tuple(JAMMERS) == JAMMER_KINDS


def jammer_options(kind: str) -> tuple[str, ...]:
    """The options `make_jammer` accepts for `kind` (besides seed and generator)."""
    params = inspect.signature(_jammer_class(kind)).parameters
    return tuple(p for p in params if p not in ("link", "jsr_db", "generator"))


def _jammer_class(kind: str) -> type[Jammer]:
    if kind not in JAMMERS:
        raise ValueError(f"unknown jammer kind {kind!r}: one of {JAMMER_KINDS}")
    return JAMMERS[kind]


def make_jammer(kind: str, link: LinkConfig, jsr_db: float, *, seed: int | None = None,
                generator: torch.Generator | None = None, **options) -> Jammer:
    """A jammer of `JAMMER_KINDS` by name, with its defaults unless `options` say otherwise.

    :param kind: one of `JAMMER_KINDS`
    :param jsr_db: jammer-to-signal ratio on the jammed REs, -50..50 dB
    :param seed: draw from a new CPU generator seeded with this (reproducible attacks)
    :param generator: draw from this generator (not with seed); neither: the global RNG
    :param options: the kind's keyword options (`jammer_options(kind)`), e.g.
        `subcarriers=(0, 12)` for 'partial-band', `duty_cycle=0.5` for 'pulsed'
    :raises ValueError: an unknown kind or option, a bad value (the message names it)
    """
    cls = _jammer_class(kind)
    allowed = jammer_options(kind)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for a {kind!r} jammer: allowed "
                         f"{list(allowed)}")
    if seed is not None:
        if generator is not None:
            raise ValueError("make_jammer takes a seed or a generator, not both")
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"make_jammer seed={seed!r} is not allowed: a non-negative integer")
        generator = torch.Generator().manual_seed(int(seed))
    return cls(link, jsr_db, generator=generator, **options)


# --- jammers in scenario names -------------------------------------------------------------

_SUFFIX = re.compile(r"^(?P<kind>[a-z][a-z-]*?)-jammer-(?P<jsr>(?:-|m)?\d+(?:\.\d+)?)db$")
SUFFIX_HELP = ("'<scenario>+<kind>-jammer-<JSR>db' with kind one of " + ", ".join(JAMMER_KINDS)
               + " and JSR like 0db, 6db, 2.5db; a negative JSR as -5db or m5db "
               "(e.g. tdl-c-300ns-60kmh+dmrs-jammer-0db, awgn+barrage-jammer-m5db)")


@dataclass(frozen=True)
class JammerSpec:
    """The jammer of a scenario: a kind of `JAMMER_KINDS` with its default options at a JSR.

    :param kind: one of `JAMMER_KINDS`
    :param jsr_db: jammer-to-signal ratio, -50..50 dB
    """

    kind: str
    jsr_db: float

    def __post_init__(self) -> None:
        if self.kind not in JAMMER_KINDS:
            raise ValueError(f"JammerSpec.kind={self.kind!r} is not allowed: one of "
                             f"{JAMMER_KINDS}")
        lo, hi = JSR_DB_LIMITS
        v = self.jsr_db
        if isinstance(v, bool) or not isinstance(v, int | float) or not (
                math.isfinite(v) and lo <= v <= hi):
            raise ValueError(f"JammerSpec.jsr_db={v!r} is not allowed: {lo:g}..{hi:g} dB")
        object.__setattr__(self, "jsr_db", float(v))

    @property
    def suffix(self) -> str:
        """'+dmrs-jammer-0db', '+barrage-jammer-m5db': what a scenario name ends with."""
        v = f"{abs(self.jsr_db):g}"
        return f"+{self.kind}-jammer-{'m' if self.jsr_db < 0 else ''}{v}db"

    def build(self, link: LinkConfig, *, generator: torch.Generator | None = None) -> Jammer:
        return make_jammer(self.kind, link, self.jsr_db, generator=generator)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "jsr_db": self.jsr_db}

    @classmethod
    def parse(cls, text: str) -> JammerSpec:
        """'dmrs-jammer-0db' -> JammerSpec('dmrs', 0.0); 'barrage-jammer-m5db' (or '--5db')
        -> JSR -5 dB.

        :raises ValueError: not of that form, an unknown kind, a JSR out of range
        """
        m = _SUFFIX.match(text)
        if m is None:
            raise ValueError(f"jammer {text!r} is not allowed: {SUFFIX_HELP}")
        kind, jsr = m["kind"], m["jsr"]
        if kind not in JAMMER_KINDS:
            raise ValueError(f"jammer {text!r}: unknown kind {kind!r}, one of {JAMMER_KINDS}")
        value = -float(jsr[1:]) if jsr[0] in "-m" else float(jsr)
        try:
            return cls(kind, value)
        except ValueError as e:
            raise ValueError(f"jammer {text!r}: {e}") from None


def split_jammer(name: str) -> tuple[str, JammerSpec | None]:
    """'tdl-c-300ns-60kmh+dmrs-jammer-0db' -> ('tdl-c-300ns-60kmh', JammerSpec('dmrs', 0.0));
    a name without '+' -> (name, None). One jammer per scenario.

    :raises ValueError: a '+' suffix that is not a jammer of `SUFFIX_HELP`'s form
    """
    base, plus, suffix = name.partition("+")
    if not plus:
        return name, None
    if not base:
        raise ValueError(f"scenario {name!r}: nothing before the jammer suffix; use "
                         f"{SUFFIX_HELP}")
    try:
        return base, JammerSpec.parse(suffix)
    except ValueError as e:
        raise ValueError(f"scenario {name!r}: {e}") from None


# --- the channel stage ---------------------------------------------------------------------

class JammedChannel(torch.nn.Module):
    """A channel followed by a jammer: the channel stage of a jammed scenario.

    :input x: [batch, 1, 1, num_ofdm_symbols, fft_size] complex64 (a `Transmitter`'s x)
    :input no: float or [batch] float32 noise variance per complex RE
    :output: `ChannelOutput` (y with the interference, h of the channel: the jammer is not part
        of the perfect CSI)
    """

    def __init__(self, channel: torch.nn.Module, jammer: Jammer):
        super().__init__()
        self.channel, self.jammer = channel, jammer

    def forward(self, x: torch.Tensor, no: float | torch.Tensor) -> ChannelOutput:
        y, h = self.channel(x, no)
        return ChannelOutput(y=self.jammer(y, x, h), h=h)


def channel_stage(link: LinkConfig, channel: ChannelConfig, jammer: JammerSpec | None = None,
                  *, device: str | None = None,
                  generator: torch.Generator | None = None) -> torch.nn.Module:
    """The channel of a scenario: `Channel(link, channel)`, followed by the jammer if any.

    Every place that simulates a scenario builds its channel here (through
    `dmrx.scenarios.make_channel`), so a jammer suffix in a scenario name works everywhere.

    :param generator: the jammer's generator (None: the global RNG)
    :return: a module called as `(x, no) -> ChannelOutput(y, h)`
    """
    ch = Channel(link, channel, device=device)
    if jammer is None:
        return ch
    return JammedChannel(ch, jammer.build(link, generator=generator).to(device or "cpu"))
