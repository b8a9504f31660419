"""A metadata model gates the online adapter: where it predicts no benefit the adapter still
detects and monitors, but does not update; the reasons of each firing are kept."""

import numpy as np
import pytest
import torch

from dmrx.explain.gate import GatedAdapter, feature_rows
from dmrx.explain.metadata import FEATURES
from dmrx.explain.metadata_fit import LogisticModel, explain_rows, load_model, save_model
from dmrx.nn import NeuralReceiver, ResNetConfig
from dmrx.nn.adapt import AdaptConfig, OnlineAdapter
from dmrx.ofdm import Channel, Transmitter, seed_everything
from dmrx.scenarios import get_scenario


class Constant:
    """A model that predicts the same probability of benefit for every slot."""

    def __init__(self, p):
        self.p = p

    def predict_proba(self, X):
        return np.tile([1 - self.p, self.p], (len(X), 1))


@pytest.fixture
def setup(ref_link):
    torch.manual_seed(0)
    rx = NeuralReceiver(ref_link, ResNetConfig(num_channels=8, num_blocks=1))
    tx = Transmitter(ref_link)
    ch = Channel(ref_link, get_scenario("tdl-c-300ns-60kmh").channel)

    def slots(n):
        for i in range(n):
            seed_everything(i)
            yield ch(tx(1).x, 0.05).y

    return rx, slots


def _run(adapter, slots, n=6):
    for y in slots(n):
        adapter(y, 0.05)
        adapter.observe(y, 0.05)
    return adapter


def test_gate_that_predicts_no_benefit_stops_the_updates(setup):
    rx, slots = setup
    cfg = AdaptConfig(params="all", lr=1e-3, guard=False)
    always = _run(OnlineAdapter(rx, cfg), slots)
    closed = _run(GatedAdapter(OnlineAdapter(rx, cfg), Constant(0.1)), slots)
    opened = _run(GatedAdapter(OnlineAdapter(rx, cfg), Constant(0.9)), slots)
    assert always.updates == 6 and opened.updates == 6 and closed.updates == 0
    # monitoring goes on without updates: the DMRS loss is measured on every slot
    assert len(closed.adapter.history) == 6
    assert all(torch.equal(a, b) for a, b in zip(closed.adapter.rx.parameters(),
                                                 rx.parameters(), strict=True))
    s = closed.summary()["gate"]
    assert s["opened"] == 0 and s["slots"] == 6 and s["mean_p"] == pytest.approx(0.1)
    assert opened.summary()["gate"]["open_rate"] == 1.0


class Steps:
    """A model whose P(benefit) follows a given sequence, one value per call."""

    def __init__(self, ps):
        self.ps = iter(ps)

    def predict_proba(self, X):
        p = next(self.ps)
        return np.tile([1 - p, p], (len(X), 1))


def test_fast_attack_opens_at_a_change_and_releases_slowly(setup):
    rx, slots = setup
    ps = [0.0, 0.0, 0.9, 0.9, 0.0, 0.0, 0.0, 0.0]
    cfg = AdaptConfig(params="all", lr=1e-3, guard=False)

    def gate(**kw):
        return _run(GatedAdapter(OnlineAdapter(rx, cfg), Steps(ps), threshold=0.5,
                                 smoothing=0.5, **kw), slots, n=len(ps))

    sym, fast = gate(), gate(attack=1.0)
    # symmetric weight 0.5: 0, 0, 0.45, 0.675, 0.3375, 0.169, ...
    assert [d["p"] for d in sym.decisions][:6] == pytest.approx(
        [0, 0, 0.45, 0.675, 0.3375, 0.16875], abs=1e-4)
    # attack 1: P jumps to the slot's own value and decays at the release weight 0.5
    assert [d["p"] for d in fast.decisions][:6] == pytest.approx(
        [0, 0, 0.9, 0.9, 0.45, 0.225], abs=1e-4)
    # so the fast gate opens a slot earlier, and both close on the first low slot
    assert [d["open"] for d in sym.decisions] == [False, False, False, True] + [False] * 4
    assert [d["open"] for d in fast.decisions] == [False, False, True, True] + [False] * 4
    assert (sym.updates, fast.updates) == (1, 2)
    assert fast.summary()["gate"]["attack"] == 1.0 and sym.summary()["gate"]["attack"] == 0.5
    with pytest.raises(ValueError, match="attack"):
        GatedAdapter(OnlineAdapter(rx), Constant(0.5), attack=0.0)


def test_debounce_drops_short_openings_and_closes_at_once(setup):
    rx, slots = setup
    ps = [0.0, 0.9, 0.9, 0.0, 0.9, 0.9, 0.9, 0.9, 0.0]
    cfg = AdaptConfig(params="all", lr=1e-3, guard=False)

    def gate(**kw):
        return _run(GatedAdapter(OnlineAdapter(rx, cfg), Steps(ps), threshold=0.5, **kw),
                    slots, n=len(ps))

    plain, deb = gate(), gate(debounce=3)
    # each slot alone (smoothing 1): the two-slot run never opens the debounced gate, the
    # four-slot run opens it on its third slot; both close on the first low slot
    assert [d["open"] for d in plain.decisions] == [p > 0.5 for p in ps]
    assert [d["open"] for d in deb.decisions] == [False] * 6 + [True, True, False]
    assert (plain.updates, deb.updates) == (6, 2)
    assert deb.summary()["gate"]["debounce"] == 3
    for bad in (0, 2.5):
        with pytest.raises(ValueError, match="debounce"):
            GatedAdapter(OnlineAdapter(rx), Constant(0.5), debounce=bad)


def test_gate_follows_a_fitted_model_and_says_why(setup, ref_link):
    rx, slots = setup
    ys = list(slots(8))
    # a model that wants updates on slots whose LLRs are unsure: fit on two made-up groups
    X = np.zeros((40, len(FEATURES)), np.float32)
    i = FEATURES.index("llr_small_frac")
    X[:20, i], X[20:, i] = 0.9, 0.0
    y = np.r_[np.ones(20), np.zeros(20)].astype(np.int64)
    model = LogisticModel().fit(X, y)
    gate = GatedAdapter(OnlineAdapter(rx, AdaptConfig(params="all", guard=False)), model)
    for yy in ys:
        gate(yy, 0.05)
        out = gate.observe(yy, 0.05)
        assert 0 <= out["gate_p"] <= 1 and out["gate_open"] == (out["gate_p"] >= 0.5)
    x = feature_rows(ref_link, ys[0], 0.05, gate.adapter(ys[0], 0.05))
    assert x.shape == (1, len(FEATURES)) and np.isfinite(x).all()
    fired = [d for d in gate.decisions if d["open"]]
    assert gate.updates == len(fired)
    assert all(d["why"].startswith("llr_small_frac") for d in fired)


def test_logistic_model_saves_as_json_and_reloads(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, len(FEATURES))).astype(np.float32)
    y = (X[:, 0] + 0.3 * rng.normal(size=100) > 0).astype(np.int64)
    m = LogisticModel().fit(X, y)
    save_model(m, tmp_path / "m", label="should_adapt", features=FEATURES)
    m2, info = load_model(tmp_path / "m")
    assert info == {"kind": "logreg", "label": "should_adapt", "features": list(FEATURES)}
    np.testing.assert_allclose(m2.predict_proba(X), m.predict_proba(X))
    row = np.zeros((1, len(FEATURES)), np.float32)
    row[0, 0] = 6.0  # far out on the one feature the label follows
    assert explain_rows(m2, row)[0].startswith(f"{FEATURES[0]} +")
    assert not list((tmp_path / "m").glob("*.pkl"))


def test_gate_rejects_what_it_cannot_use(setup):
    rx, _ = setup
    with pytest.raises(ValueError, match="predict_proba"):
        GatedAdapter(OnlineAdapter(rx), object())
    with pytest.raises(ValueError, match="threshold"):
        GatedAdapter(OnlineAdapter(rx), Constant(0.5), threshold=1.5)
    with pytest.raises(ValueError, match="OnlineAdapter"):
        GatedAdapter(rx, Constant(0.5))
