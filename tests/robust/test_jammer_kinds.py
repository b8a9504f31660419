"""Every jammer kind: the JSR it was asked for on its target REs, nothing elsewhere, tone
placement against the closed form, the reactive jammer's sensing, seeds, bad inputs."""

import math

import pytest
import torch

from dmrx.ofdm import Channel, Transmitter, dmrs_mask, seed_everything
from dmrx.robust import (
    JAMMER_KINDS,
    JammedChannel,
    JammerSpec,
    MultiToneJammer,
    PulsedJammer,
    ReactiveJammer,
    ToneJammer,
    channel_stage,
    make_jammer,
)
from dmrx.robust.jammers import cyclic_prefix_samples, jammer_options, tone_grid
from dmrx.scenarios import get_link, get_scenario

LINKS = ("ref-4prb", "ref-4prb-2rx")


@pytest.fixture(scope="module")
def slots():
    """name -> (link, x, y, h): 6 TDL-C slots of each link at 20 dB SNR."""
    out = {}
    for name in LINKS:
        link = get_link(name)
        seed_everything(0)
        s = Transmitter(link)(6)
        y, h = Channel(link, get_scenario("tdl-c-300ns-60kmh").channel)(s.x, 1e-2)
        out[name] = (link, s.x, y, h)
    return out


def per_slot_jsr_db(jam: torch.Tensor, x, h, mask: torch.Tensor) -> torch.Tensor:
    """[batch] measured JSR over each slot's masked REs ([batch, sym, sc] mask), all antennas."""
    m = mask[:, None, None].expand_as(jam)
    signal = (h[:, :, :, 0, 0] * x[:, :, 0:1]).expand_as(jam)
    out = []
    for i in range(jam.shape[0]):
        p_j = jam[i][m[i]].abs().square().mean()
        p_s = signal[i][m[i]].abs().square().mean()
        out.append(10 * torch.log10(p_j / p_s))
    return torch.stack(out)


@pytest.mark.parametrize("link_name", LINKS)
@pytest.mark.parametrize("seed, jsr_db", [(0, -10.0), (1, 0.0), (2, 7.5)])
@pytest.mark.parametrize("kind", JAMMER_KINDS)
def test_each_kind_delivers_its_jsr_on_its_target_and_nothing_elsewhere(
        slots, kind, seed, jsr_db, link_name):
    link, x, y, h = slots[link_name]
    jammer = make_jammer(kind, link, jsr_db, seed=seed)
    target = jammer.target_mask(y, x, h).expand(y.shape[0], -1, -1)
    jam = jammer(y, x, h) - y
    on = target[:, None, None].expand_as(jam)
    assert target.any(dim=(1, 2)).all()
    assert torch.all(jam[~on] == 0)  # exactly nothing off the target
    assert torch.all(jam[on] != 0)
    measured = per_slot_jsr_db(jam, x, h, target)  # per slot, not only on average
    assert torch.allclose(measured, torch.full_like(measured, jsr_db), atol=0.1)


def test_targets_are_the_documented_defaults(ref_link):
    n_sym, n_sc = ref_link.num_ofdm_symbols, ref_link.fft_size
    want = {k: torch.zeros(n_sym, n_sc, dtype=torch.bool) for k in JAMMER_KINDS}
    want["barrage"][:] = True
    want["tone"][:, n_sc // 2] = True
    want["multi-tone"][:, [6, 18, 30, 42]] = True
    want["partial-band"][:, 18:30] = True  # the middle quarter
    want["pulsed"][[0, 4, 8, 12]] = True   # 25 % duty cycle, period 4
    want["dmrs"] = dmrs_mask(ref_link)
    for kind in JAMMER_KINDS:
        jam = make_jammer(kind, ref_link, 0.0)
        if kind == "reactive":
            assert jam.target is None and jam.sense_symbols == 2
        else:
            assert torch.equal(jam.target, want[kind]), kind
    pulsed = PulsedJammer(ref_link, 0.0, duty_cycle=0.5, period=6, start=1)
    assert pulsed.symbols == (1, 2, 3, 7, 8, 9, 13)
    assert PulsedJammer(ref_link, 0.0, (5, 6)).symbols == (5, 6)


def test_cyclic_prefix_is_sionnas(ref_link):
    for link in (ref_link, ref_link.replace(subcarrier_spacing_khz=15, num_prbs=10)):
        rg = Transmitter(link).resource_grid
        assert cyclic_prefix_samples(link) == int(rg.cyclic_prefix_length)


def closed_form_tone(n: int, cp: int, n_sym: int, column: int, offset: float) -> torch.Tensor:
    """DFT (1/N) of exp(j 2 pi f m / N), f = column - N/2 + offset subcarrier spacings, over the
    N samples after each symbol's CP; m the absolute sample index l (N + N_cp) + N_cp + n.
    Y_l[c'] = exp(j 2 pi f (l (N + N_cp) + N_cp) / N) D(f - k') / N, k' = c' - N/2 and the
    Dirichlet kernel D(u) = exp(j pi u (N - 1) / N) sin(pi u) / sin(pi u / N) (= N at u = 0)."""
    f = column - n / 2 + offset
    sym = torch.arange(n_sym, dtype=torch.float64)[:, None]
    u = f - (torch.arange(n, dtype=torch.float64) - n / 2)[None, :]
    on_bin = torch.isclose(u, torch.zeros((), dtype=torch.float64))
    safe = torch.where(on_bin, 1.0, u)
    dirichlet = torch.where(on_bin, float(n),
                            torch.sin(math.pi * safe) / torch.sin(math.pi * safe / n))
    phase = 2 * math.pi * f * (sym * (n + cp) + cp) / n + math.pi * u * (n - 1) / n
    return torch.polar(dirichlet / n, phase)


@pytest.mark.parametrize("column, offset", [(30, 0.0), (24, 0.0), (7, 0.3), (40, -0.5)])
def test_tone_lands_where_the_closed_form_says(ref_link, column, offset):
    n, n_sym = ref_link.fft_size, ref_link.num_ofdm_symbols
    cp = cyclic_prefix_samples(ref_link)
    want = closed_form_tone(n, cp, n_sym, column, offset)
    got = tone_grid(ref_link, column, offset).to(torch.complex128)
    assert torch.allclose(got, want, atol=1e-5)
    if offset == 0:
        # one subcarrier, constant magnitude, phase advancing 2 pi k N_cp / N per symbol
        k = column - n // 2
        assert torch.count_nonzero(got) == n_sym and torch.all(got[:, column].abs() > 0.999)
        step = got[1:, column] / got[:-1, column]
        assert torch.allclose(step, torch.full_like(step, complex(
            math.cos(2 * math.pi * k * cp / n), math.sin(2 * math.pi * k * cp / n))), atol=1e-5)
    else:
        assert torch.all(got.abs() > 0)  # off-grid: it leaks into every subcarrier


def test_tone_jammer_is_the_tone_with_a_random_phase_per_antenna(slots):
    link, x, y, h = slots["ref-4prb-2rx"]
    jammer = ToneJammer(link, 3.0, 30, offset=0.25, generator=torch.Generator().manual_seed(4))
    assert jammer.target.all()  # off-grid: the whole grid is its band
    jam = (jammer(y, x, h) - y).to(torch.complex128)
    shape = closed_form_tone(link.fft_size, cyclic_prefix_samples(link),
                             link.num_ofdm_symbols, 30, 0.25)
    for b in range(2):
        for a in range(2):
            g = jam[b, 0, a]
            coef = (g * shape.conj()).sum() / shape.abs().square().sum()
            assert torch.allclose(g, coef * shape, atol=1e-4 * coef.abs().item())
    multi = MultiToneJammer(link, 0.0, 3)
    assert multi.subcarriers == (8, 24, 40) and multi.target[:, [8, 24, 40]].all()
    assert multi.target.sum() == 3 * link.num_ofdm_symbols


def occupied_band_slots(link, bands):
    """Slots that occupy only `bands[i]` (start, stop) in slot i, through an AWGN channel."""
    seed_everything(1)
    s = Transmitter(link)(len(bands))
    x = torch.zeros_like(s.x)
    for i, (a, b) in enumerate(bands):
        x[i, ..., a:b] = s.x[i, ..., a:b]
    y, h = Channel(link, get_scenario("awgn").channel)(x, 1e-3)
    return x, y, h


@pytest.mark.parametrize("link_name", LINKS)
def test_reactive_jammer_follows_the_occupied_band(link_name):
    link = get_link(link_name)
    bands = [(10, 22), (30, 42), (0, 48)]
    x, y, h = occupied_band_slots(link, bands)
    jammer = ReactiveJammer(link, -3.0, sense_symbols=3, generator=torch.Generator())
    found = jammer.sense(y)
    for i, (a, b) in enumerate(bands):
        want = torch.zeros(link.fft_size, dtype=torch.bool)
        want[a:b] = True
        assert torch.equal(found[i], want)
    jam = jammer(y, x, h) - y
    target = jammer.target_mask(y, x, h)
    assert not target[:, :3].any() and torch.equal(target[:, 3:], found[:, None].expand(-1, 11, -1))
    assert torch.all(jam[~target[:, None, None].expand_as(jam)] == 0)
    measured = per_slot_jsr_db(jam, x, h, target)
    assert torch.allclose(measured, torch.full_like(measured, -3.0), atol=0.1)


@pytest.mark.parametrize("kind", JAMMER_KINDS)
def test_attacks_are_reproducible_with_a_seed(slots, kind):
    link, x, y, h = slots["ref-4prb"]
    state = torch.random.get_rng_state()
    a = make_jammer(kind, link, 0.0, seed=7)(y, x, h)
    b = make_jammer(kind, link, 0.0, seed=7)(y, x, h)
    c = make_jammer(kind, link, 0.0, seed=8)(y, x, h)
    assert torch.equal(torch.random.get_rng_state(), state)  # a seeded jammer leaves it alone
    assert torch.equal(a, b) and not torch.equal(a, c)
    g = torch.Generator().manual_seed(7)
    assert torch.equal(make_jammer(kind, link, 0.0, generator=g)(y, x, h), a)
    seed_everything(3)  # no seed: the global RNG that seed_everything sets
    d = make_jammer(kind, link, 0.0)(y, x, h)
    seed_everything(3)
    assert torch.equal(make_jammer(kind, link, 0.0)(y, x, h), d)


def test_bad_jammers_are_refused_with_the_reason(ref_link):
    cases = [
        (lambda: make_jammer("laser", ref_link, 0.0), "unknown jammer kind 'laser'"),
        (lambda: make_jammer("tone", ref_link, 0.0, symbols=(1,)), r"unknown option.*'tone'"),
        (lambda: make_jammer("dmrs", ref_link, 80.0), "jsr_db"),
        (lambda: make_jammer("barrage", ref_link, float("nan")), "jsr_db"),
        (lambda: make_jammer("barrage", ref_link, True), "jsr_db"),
        (lambda: make_jammer("barrage", ref_link, 0.0, seed=1,
                             generator=torch.Generator()), "seed or a generator"),
        (lambda: make_jammer("barrage", ref_link, 0.0, seed=-1), "seed"),
        (lambda: make_jammer("barrage", ref_link, 0.0, generator=3), "generator"),
        (lambda: ToneJammer(ref_link, 0.0, 48), "subcarriers"),
        (lambda: ToneJammer(ref_link, 0.0, (3, 3)), "subcarriers"),
        (lambda: ToneJammer(ref_link, 0.0, []), "subcarriers"),
        (lambda: ToneJammer(ref_link, 0.0, "3"), "subcarriers"),
        (lambda: ToneJammer(ref_link, 0.0, 3, offset=0.7), "offset"),
        (lambda: MultiToneJammer(ref_link, 0.0, 0), "num_tones"),
        (lambda: MultiToneJammer(ref_link, 0.0, 49), "num_tones"),
        (lambda: PulsedJammer(ref_link, 0.0, duty_cycle=0.0), "duty_cycle"),
        (lambda: PulsedJammer(ref_link, 0.0, duty_cycle=1.5), "duty_cycle"),
        (lambda: PulsedJammer(ref_link, 0.0, period=0), "period"),
        (lambda: PulsedJammer(ref_link, 0.0, start=14), "start"),
        (lambda: PulsedJammer(ref_link, 0.0, (1, 2), duty_cycle=0.5), "not both"),
        (lambda: PulsedJammer(ref_link, 0.0, (14,)), "symbols"),
        (lambda: ReactiveJammer(ref_link, 0.0, sense_symbols=14), "sense_symbols"),
        (lambda: ReactiveJammer(ref_link, 0.0, sense_symbols=0), "sense_symbols"),
        (lambda: ReactiveJammer(ref_link, 0.0, threshold_db=3.0), "threshold_db"),
        (lambda: make_jammer("partial-band", ref_link, 0.0, subcarriers=(40, 60)),
         "subcarriers"),
        (lambda: JammerSpec("laser", 0.0), "kind"),
        (lambda: JammerSpec("dmrs", 51.0), "jsr_db"),
    ]
    for build, match in cases:
        with pytest.raises(ValueError, match=match):
            build()
    assert jammer_options("pulsed") == ("symbols", "duty_cycle", "period", "start")
    assert jammer_options("barrage") == ()


def test_channel_stage_adds_the_jammer_after_the_channel(ref_link):
    cfg = get_scenario("tdl-c-300ns-60kmh").channel
    assert isinstance(channel_stage(ref_link, cfg), Channel)
    stage = channel_stage(ref_link, cfg, JammerSpec("pulsed", 0.0),
                          generator=torch.Generator().manual_seed(0))
    assert isinstance(stage, JammedChannel)
    seed_everything(5)
    s = Transmitter(ref_link)(4)
    y, h = stage(s.x, 1e-2)
    seed_everything(5)
    s2 = Transmitter(ref_link)(4)
    y0, h0 = Channel(ref_link, cfg)(s2.x, 1e-2)
    assert torch.equal(h, h0)  # the jammer is no part of the channel's CSI
    jam = y - y0
    assert torch.all(jam[..., [1, 2, 3, 5, 6, 7, 9, 10, 11, 13], :] == 0)
    assert torch.all(jam[..., [0, 4, 8, 12], :] != 0)
