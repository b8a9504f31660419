"""HiCEM on synthetic link-like tables: interventions (perfect ones equal the concept-only
classifier, more of them never hurt where concepts decide the label, sub-concept interventions
propagate to their parent as in the paper's code), Concept Splitting recovers two separated
clusters, and persistence, seeding and input checks hold."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from dmrx.explain.hicem import HiCEM, uncertainty_order

CONCEPTS = ["low_snr", "high_mobility", "jammed"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _table(n: int, seed: int, label: str = "concepts"):
    """Three binary concepts seen through noisy features; a jammed row's jammer is one of two
    kinds that put it in one of two separated clusters of feature 3 (at -4 or +4).

    label "concepts": y = at least two concepts on (concepts decide it);
    "kind": y = low_snr or a kind-1 jammer (the kind matters too).
    """
    rng = np.random.default_rng(seed)
    C = rng.integers(0, 2, (n, 3)).astype(np.float32)
    kind = rng.integers(0, 2, n)
    X = np.concatenate([C + 0.6 * rng.normal(size=(n, 3)), rng.normal(size=(n, 2))], 1)
    X[:, 3] += C[:, 2] * np.where(kind == 1, 4.0, -4.0)
    if label == "concepts":
        y = (C.sum(1) >= 2).astype(np.int64)
    else:
        y = ((C[:, 0] == 1) | ((C[:, 2] == 1) & (kind == 1))).astype(np.int64)
    return X.astype(np.float32), C, y, kind


@pytest.fixture(scope="module")
def cem():
    X, C, y, _ = _table(2000, 0)
    Xv, Cv, yv, _ = _table(500, 1)
    return HiCEM(CONCEPTS, epochs=40).fit(X, C, y, Xv, Cv, yv, seed=0)


def test_perfect_intervention_on_all_concepts_is_the_concept_only_classifier():
    X, C, y, _ = _table(1500, 2)
    m = HiCEM(CONCEPTS, intervene_with="anchor", epochs=10).fit(X, C, y, seed=0)
    Xt, Ct, _, _ = _table(300, 3)
    only = m.predict_proba_from_concepts(Ct)
    full = m.predict_proba(Xt, {c: Ct[:, i] for i, c in enumerate(CONCEPTS)})
    np.testing.assert_allclose(full, only, atol=1e-6)
    # the row no longer matters, and the (mask, values) form says the same
    shuffled = m.predict_proba(Xt[::-1], (np.ones(3, bool), Ct))
    np.testing.assert_allclose(shuffled, only, atol=1e-6)
    with pytest.raises(ValueError, match="anchor"):
        HiCEM(CONCEPTS, epochs=1).fit(X, C, y).predict_proba_from_concepts(Ct)


def test_interventions_raise_task_accuracy_monotonically(cem):
    Xt, Ct, yt, _ = _table(1000, 4)
    assert ((cem.predict_concepts(Xt) > 0.5) == Ct).mean() > 0.75
    acc = []
    for k in range(len(CONCEPTS) + 1):
        iv = {c: Ct[:, i] for i, c in enumerate(CONCEPTS[:k])}
        acc.append((cem.predict(Xt, iv) == yt).mean())
    assert all(b >= a for a, b in zip(acc, acc[1:], strict=False)), acc
    assert acc[0] < 0.95 and acc[-1] > 0.98, acc
    # each concept pushes towards the label (y = at least two on), which explain reports
    e = cem.explain(Xt[0], top_k=3)[0]
    assert len(e.influence) == 3 and all(d > 0 for _, d in e.influence)
    assert "low_snr" in str(e)


def test_uncertainty_order_asks_about_the_most_uncertain_concept_first(cem):
    p = np.array([[0.9, 0.45, 0.2],    # 0.45 is closest to a coin flip, then 0.2, then 0.9
                  [0.5, 0.875, 0.125],  # 0.5 first; 0.875 and 0.125 tie: column order
                  [0.25, 0.75, 0.625]])  # 0.625, then 0.25 / 0.75 tie
    np.testing.assert_array_equal(uncertainty_order(p), [[1, 2, 0], [0, 1, 2], [2, 0, 1]])
    Xt, _, _, _ = _table(100, 12)
    order = cem.intervention_order(Xt)
    pc = cem.predict_concepts(Xt)
    assert order.shape == (100, 3)
    first = np.abs(pc[np.arange(100), order[:, 0]] - 0.5)
    assert np.all(first <= np.abs(pc - 0.5).min(1) + 1e-12)
    with pytest.raises(ValueError, match="NaN"):
        uncertainty_order([[0.1, np.nan]])


def test_intervention_aware_task_loss_is_trained_and_kept(tmp_path):
    X, C, y, _ = _table(600, 13)
    plain = HiCEM(CONCEPTS, epochs=4).fit(X, C, y, seed=0)
    aware = HiCEM(CONCEPTS, epochs=4, int_task_weight=1.0).fit(X, C, y, seed=0)
    assert not np.array_equal(plain.predict_proba(X), aware.predict_proba(X))
    aware.save(tmp_path / "a")
    back = HiCEM.load(tmp_path / "a")
    assert back.int_task_weight == 1.0
    np.testing.assert_array_equal(back.predict_proba(X, {"jammed": 1}),
                                  aware.predict_proba(X, {"jammed": 1}))
    with pytest.raises(ValueError, match="int_task_weight"):
        HiCEM(CONCEPTS, int_task_weight=-1)


def test_concept_splitting_finds_two_separated_clusters():
    X, C, y, kind = _table(2000, 5, label="kind")
    Xv, Cv, yv, _ = _table(500, 6, label="kind")
    m = HiCEM(CONCEPTS, epochs=40).fit(X, C, y, Xv, Cv, yv, seed=0)
    split = m.split_concept("jammed", X, C)
    on = split.labels >= 0
    assert np.array_equal(on, C[:, 2] == 1)
    assert split.k == 2 and split.silhouette_by_k[2] == max(split.silhouette_by_k.values())
    assert adjusted_rand_score(kind[on], split.labels[on]) > 0.9
    assert split.sub_labels.shape == (2000, 2) and split.sub_labels[~on].sum() == 0
    assert "jammed" in str(split)


@pytest.fixture(scope="module")
def hicem():
    X, C, y, kind = _table(1500, 7, label="kind")
    sub = np.stack([(C[:, 2] == 1) & (kind == k) for k in (0, 1)], 1).astype(np.float32)
    h = {"jammed": {"+": ["jammed/narrowband", "jammed/wideband"]}}
    return HiCEM(CONCEPTS, hierarchy=h, epochs=15).fit(X, np.hstack([C, sub]), y, seed=0)


def test_sub_concept_interventions_propagate_as_in_the_paper(hicem):
    Xt, _, _, _ = _table(200, 8, label="kind")
    assert hicem.concept_names == [*CONCEPTS, "jammed/narrowband", "jammed/wideband"]
    assert hicem.predict_concepts(Xt).shape == (200, 5)
    # a positive sub-concept set to 1 sets its parent to 1 and its siblings to 0
    np.testing.assert_allclose(
        hicem.predict_proba(Xt, {"jammed/wideband": 1}),
        hicem.predict_proba(Xt, {"jammed": 1, "jammed/narrowband": 0, "jammed/wideband": 1}),
        atol=1e-6)
    # the parent set directly overrides what its sub-concepts say
    np.testing.assert_allclose(hicem.predict_proba(Xt, {"jammed": 0, "jammed/wideband": 1}),
                               hicem.predict_proba(Xt, {"jammed": 0}), atol=1e-6)
    # per-row values: NaN leaves that row alone
    v = np.where(np.arange(200) % 2 == 0, 1.0, np.nan)
    mixed = hicem.predict_proba(Xt, {"jammed": v})
    np.testing.assert_allclose(mixed[::2], hicem.predict_proba(Xt, {"jammed": 1})[::2])
    np.testing.assert_allclose(mixed[1::2], hicem.predict_proba(Xt)[1::2])


def test_save_load_gives_identical_predictions(hicem, tmp_path):
    Xt, Ct, _, _ = _table(200, 9)
    hicem.save(tmp_path / "h")
    h2 = HiCEM.load(tmp_path / "h")
    assert h2.concept_names == hicem.concept_names
    iv = {"low_snr": Ct[:, 0], "jammed/narrowband": 1}
    np.testing.assert_array_equal(hicem.predict_proba(Xt, iv), h2.predict_proba(Xt, iv))
    np.testing.assert_array_equal(hicem.predict_concepts(Xt), h2.predict_concepts(Xt))


def test_same_seed_same_model():
    X, C, y, _ = _table(400, 10)
    a = HiCEM(CONCEPTS, epochs=3).fit(X, C, y, seed=1).predict_proba(X)
    b = HiCEM(CONCEPTS, epochs=3).fit(X, C, y, seed=1).predict_proba(X)
    c = HiCEM(CONCEPTS, epochs=3).fit(X, C, y, seed=2).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_bad_inputs_raise_clear_errors(cem, tmp_path):
    X, C, y, _ = _table(50, 11)
    with pytest.raises(ValueError, match=r"shape \[50, 3\]"):
        HiCEM(CONCEPTS).fit(X, C[:, :2], y)
    with pytest.raises(ValueError, match="binary concept"):
        HiCEM(CONCEPTS).fit(X, C * 2, y)
    with pytest.raises(ValueError, match="NaN"):
        cem.predict_proba(np.full((2, 5), np.nan, np.float32))
    with pytest.raises(ValueError, match="fitted on 5"):
        cem.predict_proba(X[:, :3])
    with pytest.raises(ValueError, match="unknown concept 'rain'"):
        cem.predict_proba(X, {"rain": 1})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cem.predict_proba(X, {"jammed": 2})
    with pytest.raises(ValueError, match=r"\[50\] values"):
        cem.predict_proba(X, {"jammed": np.ones(3)})
    with pytest.raises(ValueError, match="not one of the concepts"):
        HiCEM(CONCEPTS, hierarchy={"rain": ["drizzle"]})
    with pytest.raises(ValueError, match="intervene_with"):
        HiCEM(CONCEPTS, intervene_with="magic")
    with pytest.raises(ValueError, match="not a top-level"):
        cem.split_concept("rain", X)
    with pytest.raises(ValueError, match="not fitted"):
        HiCEM(CONCEPTS).predict(X)
    with pytest.raises(ValueError, match="no hicem model"):
        HiCEM.load(tmp_path / "nothing")


def test_random_intervention_curve_is_the_mean_over_all_orders(cem):
    """The random policy's expected accuracy after k interventions equals the mean, over all
    K! orders, of the curves of intervening in that order; here (concepts decide the label) it
    rises at every step."""
    from itertools import permutations
    Xt, Ct, yt, _ = _table(600, 5)
    curve = cem.random_intervention_curve(Xt, Ct, yt)
    orders = list(permutations(range(len(CONCEPTS))))
    brute = np.mean([[(cem.predict(Xt, {CONCEPTS[j]: Ct[:, j] for j in o[:k]}) == yt).mean()
                      for k in range(len(CONCEPTS) + 1)] for o in orders], axis=0)
    np.testing.assert_allclose(curve, brute, atol=1e-12)
    assert curve[0] == (cem.predict(Xt) == yt).mean()
    assert np.all(np.diff(curve) > 0), curve
    # another metric: the same subsets, scored by the mean probability of the true label
    like = cem.random_intervention_curve(
        Xt, Ct, yt, metric=lambda y, p: float(np.where(y == 1, p, 1 - p).mean()))
    assert like.shape == (4,) and like[-1] > like[0]
    # several metrics on the same predictions: one column each
    both = cem.random_intervention_curve(
        Xt, Ct, yt, metric=lambda y, p: (float(((p > 0.5) == y).mean()),
                                         float(np.where(y == 1, p, 1 - p).mean())))
    np.testing.assert_allclose(both, np.stack([curve, like], 1), atol=1e-12)
    with pytest.raises(ValueError, match="top-level concept values"):
        cem.random_intervention_curve(Xt, Ct[:, :2], yt)
    with pytest.raises(ValueError, match="labels"):
        cem.random_intervention_curve(Xt, Ct, yt[:5])
