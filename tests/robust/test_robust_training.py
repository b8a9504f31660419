import json
import math

import numpy as np
import pytest
import torch

from dmrx.nn import NeuralReceiver, ResNetConfig, TrainConfig, load_receiver, train
from dmrx.ofdm import Channel, Transmitter, seed_everything
from dmrx.robust.training import (
    RobustConfig,
    RobustLoss,
    bit_labels,
    s2o_targets,
    s2o_term,
    saliency,
    saliency_shift,
    symbol_classes,
    symbol_logits,
)
from dmrx.scenarios import get_scenario
from dmrx.scenarios.cli import main


def _s2o_by_hand(z: np.ndarray, labels: np.ndarray, diag: float = 0.2) -> float:
    """The authors' loops (Alexkael/S2O, CIFAR10_AT_S2O/train_S2O.py), in float64 NumPy."""
    k = z.shape[1]
    aa = np.zeros((k, k))
    for xx in z:
        aa += np.kron(xx, xx.reshape((-1, 1)))
    aa = -1 * np.abs(aa)
    aa = aa - aa.min(1).reshape(-1, 1)
    for i in range(k):
        aa[i, i] = 0.0
    aa = (1 - diag) * aa / aa.sum(1).reshape(-1, 1)
    for i in range(k):
        aa[i, i] = diag
    yy = aa[labels]
    logp = z - z.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    kl = 0.0
    for n in range(len(z)):
        for j in range(k):
            if yy[n, j] > 0:
                kl += yy[n, j] * (math.log(yy[n, j]) - logp[n, j])
    return kl / len(z)


def test_s2o_term_matches_the_authors_computation_on_a_small_network():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 4))
    x, labels = torch.randn(11, 5), torch.randint(4, (11,))
    z = net(x)
    got = s2o_term(z, labels)
    want = _s2o_by_hand(z.detach().double().numpy(), labels.numpy())
    assert got.item() == pytest.approx(want, rel=1e-5)
    yy = s2o_targets(z, labels)
    assert torch.allclose(yy.sum(1), torch.ones(11))
    assert torch.allclose(yy[torch.arange(11), labels], torch.full((11,), 0.2))
    # the targets carry no gradient: d term / d z = (softmax(z) - yy) / n, as for a fixed target
    g = torch.autograd.grad(got, z)[0]
    assert torch.allclose(g, (torch.softmax(z, 1) - yy) / 11, atol=1e-6)


def test_receiver_s2o_uses_symbol_logits_whose_softmax_is_the_bit_likelihood():
    torch.manual_seed(1)
    llr, c = torch.randn(2, 12), torch.randint(2, (2, 12)).float()  # 6 REs of 4 bits
    z = symbol_logits(llr, 4)
    assert z.shape == (6, 16)
    labels = symbol_classes(c, 4)
    assert torch.equal(bit_labels(4)[labels], c.reshape(6, 4))
    ce = torch.nn.functional.cross_entropy(z, labels, reduction="sum")
    bce = torch.nn.functional.binary_cross_entropy_with_logits(llr, c, reduction="sum")
    assert ce.item() == pytest.approx(bce.item(), rel=1e-5)
    want = _s2o_by_hand(z.double().numpy(), labels.numpy())
    assert s2o_term(z, labels).item() == pytest.approx(want, rel=1e-5)


@pytest.fixture(scope="module")
def tiny(request):
    from dmrx.scenarios import get_link

    link = get_link("ref-4prb")
    seed_everything(2)
    rx = NeuralReceiver(link, ResNetConfig(num_channels=8, num_blocks=1))
    s = Transmitter(link)(4)
    no = torch.full((4,), 10 ** -1.2)
    y, h = Channel(link, get_scenario("tdl-c-300ns-60kmh").channel)(s.x, no)
    return link, rx, s, y, h, no


def test_saliency_is_a_differentiable_distribution_over_the_grid(tiny):
    link, rx, s, y, h, no = tiny
    m = saliency(rx, y, no, s.c)
    assert m.shape == (4, link.num_ofdm_symbols, link.fft_size)
    assert torch.allclose(m.sum(dim=(1, 2)), torch.ones(4), atol=1e-5)
    w = rx.net.output_conv.weight
    (g,) = torch.autograd.grad(m[:, 3, 10].sum(), w)
    assert g.abs().sum() > 0  # double backprop reaches the weights


def test_explanation_guided_term_gradient_matches_finite_differences(tiny):
    """The autograd gradient of the saliency-shift term (through create_graph) along a random
    direction of the output head's weights agrees with a central finite difference, and a
    step against it lowers the term: a wrong or detached double-backprop fails both."""
    link, rx, s, y, h, no = tiny
    y_adv = y + 0.1 * torch.randn_like(y)
    # the output head: the saliency is smooth in it (no ReLU downstream, whose switching
    # would make finite differences jump)
    params = [rx.net.output_conv.weight, rx.net.output_conv.bias]
    torch.manual_seed(3)
    direction = [torch.randn_like(p) for p in params]
    term = saliency_shift(rx, y, y_adv, no, s.c)
    grads = torch.autograd.grad(term, params)
    along = sum((g * d).sum() for g, d in zip(grads, direction, strict=True)).item()
    eps = 1e-3

    def term_at(t, vecs):
        """The term with the head's weights moved by t * vecs (and moved back)."""
        with torch.no_grad():
            for p, d in zip(params, vecs, strict=True):
                p.add_(t * d)
        v = saliency_shift(rx, y, y_adv, no, s.c).item()
        with torch.no_grad():
            for p, d in zip(params, vecs, strict=True):
                p.sub_(t * d)
        return v

    fd = (term_at(eps, direction) - term_at(-eps, direction)) / (2 * eps)
    assert fd == pytest.approx(along, rel=0.05, abs=1e-4)
    assert abs(along) > 1e-4
    norm2 = sum(g.square().sum() for g in grads)
    step = 1e-2 / norm2.sqrt().item()
    after = term_at(-step, grads)
    assert after < term.item()


@pytest.mark.parametrize("method", ["pgd", "s2o", "explain", "jammer"])
def test_robust_loss_is_finite_and_trains_every_weight(tiny, method):
    link, rx, s, y, h, no = tiny
    kw = {"attack": None, "jammers": ("dmrs",)} if method == "jammer" else {"attack_steps": 1}
    loss, logged = RobustLoss(RobustConfig(method, explain_slots=2, **kw), link)(
        rx, y, no, s.c, s.x, h)
    assert torch.isfinite(loss) and logged.item() > 0
    grads = torch.autograd.grad(loss, list(rx.net.parameters()), allow_unused=True)
    assert all(g is not None for g in grads)


def test_robust_loss_attacks_only_the_dmrs_with_attack_res_dmrs(tiny, monkeypatch):
    import dmrx.robust.training as training
    from dmrx.ofdm.dmrs import dmrs_mask

    link, rx, s, y, h, no = tiny
    seen = []
    real_pgd = training.pgd

    def spy(*args, **kw):
        d = real_pgd(*args, **kw)
        seen.append(d)
        return d

    monkeypatch.setattr(training, "pgd", spy)
    loss, _ = RobustLoss(RobustConfig("s2o", attack_steps=1, attack_res="dmrs"), link)(
        rx, y, no, s.c, s.x, h)
    assert torch.isfinite(loss)
    (d,) = seen
    m = dmrs_mask(link)
    assert torch.count_nonzero(d[..., ~m]) == 0 and torch.count_nonzero(d[..., m]) > 0


@pytest.mark.parametrize("kw, field", [
    ({"method": "trades"}, "method"), ({"method": "pgd", "attack": "universal"}, "attack"),
    ({"method": "pgd", "psr_db": 30.0}, "psr_db"), ({"method": "jammer", "attack": None},
                                                    "jammers"),
    ({"method": "pgd", "jammers": ("laser",)}, "jammers"),
    ({"method": "s2o", "s2o_weight": 1.5}, "s2o_weight"),
    ({"method": "pgd", "attack_steps": 0}, "attack_steps"),
    ({"method": "pgd", "attack_res": "data"}, "attack_res"),
    ({"method": "pgd", "jsr_db": (5.0, -5.0)}, "jsr_db"),
])
def test_bad_robust_config_names_the_field(kw, field):
    with pytest.raises(ValueError, match=f"RobustConfig.{field}="):
        RobustConfig(**kw)


def test_robust_fine_tuning_records_its_settings_and_starts_from_the_checkpoint(tmp_path,
                                                                                 tiny):
    link = tiny[0]
    base = dict(channels=(("tdl-c-300ns-60kmh", get_scenario("tdl-c-300ns-60kmh").channel),),
                net={"num_channels": 8, "num_blocks": 1}, steps=2, batch_size=4,
                epoch_steps=1, checkpoint_every=2, seed=3)
    train(TrainConfig(link, **base), tmp_path / "base", progress=False)
    robust = RobustConfig("s2o", attack_steps=1, psr_db=-15.0).as_dict()
    cfg = TrainConfig(link, **base | {"steps": 1, "checkpoint_every": 1}, robust=robust,
                      init_checkpoint=str(tmp_path / "base"))
    start = load_receiver(tmp_path / "base")
    out = train(cfg, tmp_path / "s2o", progress=False, stop_after=0)  # before any step
    assert torch.equal(out.receiver.net.input_conv.weight, start.net.input_conv.weight)
    train(cfg, tmp_path / "s2o", progress=False)
    meta = json.loads((tmp_path / "s2o" / "config.json").read_text())
    assert meta["train"]["robust"]["method"] == "s2o"
    assert meta["train"]["robust"]["psr_db"] == -15.0
    assert "robust" not in TrainConfig(link, **base).as_dict()  # old configs stay the same


def test_dmrx_attack_writes_the_json_and_rejects_a_bad_psr(tmp_path, tiny, capsys):
    link = tiny[0]
    base = dict(channels=(("tdl-c-300ns-60kmh", get_scenario("tdl-c-300ns-60kmh").channel),),
                net={"num_channels": 8, "num_blocks": 1}, steps=1, batch_size=2,
                epoch_steps=1, checkpoint_every=1, seed=3)
    train(TrainConfig(link, **base), tmp_path / "nrx", progress=False)
    out = tmp_path / "out.json"
    rc = main(["attack", "--checkpoint", str(tmp_path / "nrx"), "--receiver", "ls",
               "--attack", "pgd", "--psr-db", "-25:-15:10", "--slots", "2", "--batch-size",
               "2", "--steps", "1", "--json", str(out), "--no-progress"])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["snr_db"] == 12.0 and "psr_convention" in d
    pts = {(p["receiver"], p["threat"], p["level_db"]) for p in d["points"]
           if p["threat"] != "none"}
    # the checkpoint's receiver is named by its directory
    assert pts == {(r, "pgd", v) for r in ("nrx", "ls") for v in (-25.0, -15.0)}
    assert "nrx" in capsys.readouterr().out
    for p in d["points"]:
        assert {"slots", "bler", "bce", "block_errors", "ber"} <= set(p)
        assert p["slots"] == 2
    assert main(["attack", "--checkpoint", str(tmp_path / "nrx"), "--psr-db", "-25:40:5",
                 "--no-progress"]) == 2
    assert "psr_db=25.0 is not allowed: a PSR in -60..20 dB" in capsys.readouterr().err
    assert main(["attack", "--checkpoint", str(tmp_path / "nrx"), "--attack", "cw",
                 "--no-progress"]) == 2
    assert "unknown attack 'cw'" in capsys.readouterr().err


def test_evaluation_can_attack_the_dmrs_only(tiny, monkeypatch):
    import dmrx.robust.evaluate as ev
    from dmrx.ofdm.dmrs import dmrs_mask
    from dmrx.robust.attacks import perturb as real_perturb

    link, rx, *_ = tiny
    deltas = []

    def spy(attack, f, y, *args, **kw):
        out = real_perturb(attack, f, y, *args, **kw)
        deltas.append(out - y)
        return out

    monkeypatch.setattr(ev, "perturb", spy)
    r = ev.evaluate(link, get_scenario("tdl-c-300ns-60kmh"), {"nrx": rx.eval()},
                    [("pgd", -20.0)], 12.0, 2, batch_size=2, pgd_steps=1, attack_res="dmrs",
                    progress=False)
    assert r.as_dict()["attack_res"] == "dmrs"
    m = dmrs_mask(link)
    (d,) = deltas
    assert torch.count_nonzero(d[..., ~m]) == 0 and torch.count_nonzero(d[..., m]) > 0
    with pytest.raises(ValueError, match="attack_res='data' is not allowed"):
        ev.evaluate(link, get_scenario("tdl-c-300ns-60kmh"), {"nrx": rx}, [("pgd", -20.0)],
                    12.0, 2, attack_res="data", progress=False)
