import pytest
import torch

from dmrx.nn import NeuralReceiver, ResNetConfig
from dmrx.ofdm import Channel, Transmitter, seed_everything
from dmrx.robust.attacks import (
    UniversalPerturbation,
    attack_loss,
    fgsm,
    parse_psr_db,
    perturb,
    pgd,
    slot_power,
    train_universal,
)
from dmrx.scenarios import get_scenario


@pytest.fixture(scope="module")
def setup():
    from dmrx.scenarios import get_link

    link = get_link("ref-4prb")
    seed_everything(5)
    rx = NeuralReceiver(link, ResNetConfig(num_channels=8, num_blocks=1)).eval()
    s = Transmitter(link)(6)
    no = 10 ** -1.2
    y, h = Channel(link, get_scenario("tdl-c-300ns-60kmh").channel)(s.x, no)
    sig = slot_power(h[:, :, :, 0, 0] * s.x[:, :, 0:1])
    return link, rx, s, y, no, sig


def _psr_db(delta, power):
    return 10 * torch.log10(slot_power(delta) / power)


@pytest.mark.parametrize("psr_db", [-25.0, -10.0])
def test_pgd_spends_exactly_its_per_slot_budget_and_raises_the_loss(setup, psr_db):
    link, rx, s, y, no, sig = setup
    d = pgd(rx, y, no, s.c, psr_db, steps=5, signal_power=sig,
            generator=torch.Generator().manual_seed(0))
    assert d.shape == y.shape and d.dtype == torch.complex64
    assert torch.allclose(_psr_db(d, sig), torch.full((6,), psr_db), atol=1e-4)
    # without signal_power the budget is relative to the received grid itself
    d_y = pgd(rx, y, no, s.c, psr_db, steps=2, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(_psr_db(d_y, slot_power(y)), torch.full((6,), psr_db), atol=1e-4)
    with torch.no_grad():
        clean = attack_loss(rx, y, no, s.c, "slot")
        adv = attack_loss(rx, y + d, no, s.c, "slot")
        # a random perturbation of the same power hurts far less than PGD's
        r = torch.randn_like(y)
        r = r * (slot_power(d) / slot_power(r)).sqrt().reshape(-1, 1, 1, 1, 1)
        rnd = attack_loss(rx, y + r, no, s.c, "slot")
    assert torch.all(adv > clean)
    assert (adv - clean).mean() > 3 * (rnd - clean).abs().mean()


@pytest.mark.parametrize("attack", ["pgd", "fgsm"])
def test_a_dmrs_targeted_attack_spends_its_budget_on_the_dmrs_only(setup, attack):
    from dmrx.ofdm.dmrs import dmrs_mask

    link, rx, s, y, no, sig = setup
    m = dmrs_mask(link)
    if attack == "pgd":
        d = pgd(rx, y, no, s.c, -20.0, steps=4, signal_power=sig, support=m,
                generator=torch.Generator().manual_seed(0))
    else:
        d = fgsm(rx, y, no, s.c, -20.0, signal_power=sig, support=m)
    # the whole budget (relative to the slot's signal power), and not one RE outside the DMRS
    assert torch.allclose(_psr_db(d, sig), torch.full((6,), -20.0), atol=1e-4)
    assert torch.count_nonzero(d[..., ~m]) == 0
    assert torch.count_nonzero(d[..., m]) > 0.9 * d[..., m].numel()
    with torch.no_grad():
        clean = attack_loss(rx, y, no, s.c, "slot")
        adv = attack_loss(rx, y + d, no, s.c, "slot")
        # as strong as a random perturbation of the same power on the same REs? far stronger
        r = torch.randn_like(y) * m
        r = r * (slot_power(d) / slot_power(r)).sqrt().reshape(-1, 1, 1, 1, 1)
        rnd = attack_loss(rx, y + r, no, s.c, "slot")
    assert torch.all(adv > clean)
    assert (adv - clean).mean() > 3 * (rnd - clean).abs().mean()


def test_an_attack_support_of_the_wrong_shape_or_empty_is_refused(setup):
    link, rx, s, y, no, sig = setup
    with pytest.raises(ValueError, match="support must be a bool mask"):
        pgd(rx, y, no, s.c, -20.0, support=torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="support is empty"):
        fgsm(rx, y, no, s.c, -20.0, support=torch.zeros(y.shape[-2:], dtype=torch.bool))
    u = UniversalPerturbation(torch.ones(1, 1, *y.shape[2:], dtype=torch.complex64), -20.0)
    with pytest.raises(ValueError, match="universal' perturbation spans the grid"):
        perturb("universal", rx, y, no, s.c, -20.0, universal=u,
                support=torch.ones(y.shape[-2:], dtype=torch.bool))


def test_fgsm_spends_exactly_its_budget_and_raises_the_loss(setup):
    link, rx, s, y, no, sig = setup
    d = fgsm(rx, y, no, s.c, -15.0, signal_power=sig)
    assert torch.allclose(_psr_db(d, sig), torch.full((6,), -15.0), atol=1e-4)
    with torch.no_grad():
        assert torch.all(attack_loss(rx, y + d, no, s.c, "slot")
                         > attack_loss(rx, y, no, s.c, "slot"))
    # PGD with more steps finds at least as strong a perturbation as one FGM step
    p = pgd(rx, y, no, s.c, -15.0, steps=8, signal_power=sig, random_start=False)
    with torch.no_grad():
        assert attack_loss(rx, y + p, no, s.c) >= attack_loss(rx, y + d, no, s.c) - 1e-6


def test_attacks_are_reproducible_with_a_seed(setup):
    link, rx, s, y, no, sig = setup
    a = pgd(rx, y, no, s.c, -20.0, steps=2, generator=torch.Generator().manual_seed(7))
    b = pgd(rx, y, no, s.c, -20.0, steps=2, generator=torch.Generator().manual_seed(7))
    c = pgd(rx, y, no, s.c, -20.0, steps=2, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    ya = perturb("pgd", rx, y, no, s.c, -20.0, steps=2,
                 generator=torch.Generator().manual_seed(7))
    assert torch.equal(ya, y + a)


def test_universal_perturbation_budget_training_and_round_trip(setup, tmp_path):
    link, rx, s, y, no, sig = setup

    def slots(i):
        return y, no, s.c, sig

    u = train_universal(rx, slots, -15.0, iterations=3,
                        generator=torch.Generator().manual_seed(1))
    d = u(y, sig)
    assert torch.allclose(_psr_db(d, sig), torch.full((6,), -15.0), atol=1e-4)
    # one shape for every slot: the slots' perturbations are scaled copies of each other
    ratio = d[1] / d[0]
    assert torch.allclose(ratio, ratio.flatten()[0].expand_as(ratio), atol=1e-4)
    assert torch.allclose(_psr_db(u(y, sig, psr_db=-30.0), sig), torch.full((6,), -30.0),
                          atol=1e-4)
    with torch.no_grad():
        u0 = UniversalPerturbation(torch.randn(1, *y.shape[1:], dtype=torch.complex64), -15.0)
        assert attack_loss(rx, y + d, no, s.c) > attack_loss(rx, y + u0(y, sig), no, s.c)
    u.save(tmp_path / "u.safetensors")
    back = UniversalPerturbation.load(tmp_path / "u.safetensors")
    assert back.psr_db == -15.0 and torch.equal(back.pattern, u.pattern)


@pytest.mark.parametrize("bad", [25.0, -70.0, float("nan"), "x"])
def test_psr_out_of_range_is_refused(setup, bad):
    link, rx, s, y, no, sig = setup
    with pytest.raises(ValueError, match="psr_db"):
        pgd(rx, y, no, s.c, bad, steps=1)


def test_unknown_attack_and_bad_psr_text_are_refused(setup):
    link, rx, s, y, no, sig = setup
    with pytest.raises(ValueError, match="unknown attack 'cw'"):
        perturb("cw", rx, y, no, s.c, -20.0)
    assert parse_psr_db("-25:-10:5") == [-25.0, -20.0, -15.0, -10.0]
    for text in ("-10:-25:5", "a:b", "-25:30:5"):
        with pytest.raises(ValueError):
            parse_psr_db(text)


def test_evaluate_keeps_a_jammer_named_in_the_scenario():
    # 'none' on a jammed scenario is the jammed channel, not the clean one
    from dmrx.ofdm import LinkConfig
    from dmrx.robust.evaluate import evaluate
    from dmrx.scenarios import build_receiver

    link = LinkConfig(name="t")
    rx = {"ls": build_receiver("ls", link)}
    clean = evaluate(link, get_scenario("awgn"), rx, [("none", None)], 20.0, 8, seed=0,
                     progress=False)
    jammed = evaluate(link, get_scenario("awgn+barrage-jammer-10db"), rx, [("none", None)],
                      20.0, 8, seed=0, progress=False)
    assert clean.points[0].counts.block_errors == 0
    assert jammed.points[0].counts.block_errors == 8
