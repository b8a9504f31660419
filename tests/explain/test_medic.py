"""MEDIC (Karolczak & Stefanowski) on small synthetic tables: prototypes are parts of real
training rows, the model learns a separable task, explanations point at the informative
features, and persistence, seeding and input checks hold."""

import numpy as np
import pytest
import torch

from dmrx.explain.medic import EPS, MEDIC

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def fitted(medic_task):
    X, y = medic_task(1200, 0)
    Xv, yv = medic_task(300, 1)
    m = MEDIC(n_bins=3, n_prototypes=16, epochs=(15, 8, 15), l1=0.1, batch_size=64,
              feature_names=["snr", "n1", "n2", "n3", "jammed"])
    return m.fit(X, y, Xv, yv, seed=3), X, y


def test_prototypes_are_hard_parts_of_training_rows(fitted):
    """Each prototype is f(P_j * z(x_r)) for one training row r and mask j (the paper's push),
    with z the row's hard bins recomputed here from the learned centres, not by the model."""
    m, X, _ = fitted
    net = m.net_
    mu = np.sort(net.bin_centers.detach().numpy(), axis=1)
    P = net.patches.detach().numpy()
    for k, (r, j) in enumerate(zip(m.prototype_rows_, m.prototype_patches_, strict=True)):
        row = X[r]
        xs = (row[m.cont_idx_] - m.scaler_.mean) / m.scaler_.std
        z = [np.eye(m.n_bins)[np.abs(x - mu[i]).argmin()] for i, x in enumerate(xs)]
        z += [np.eye(len(v))[v.index(row[f])] for f, v in zip(m.cat_idx_, m.cat_values_,
                                                               strict=True)]
        part = P[j] * np.concatenate(z)
        part = part * (part > EPS)
        np.testing.assert_allclose(m.prototype_parts_[k], part, rtol=0, atol=1e-6)
        with torch.no_grad():
            enc = net.encoder(torch.from_numpy(part.astype(np.float32))).numpy()
        np.testing.assert_allclose(net.prototype_vectors()[k].detach().numpy(), enc, atol=1e-5)
        np.testing.assert_array_equal(m.prototype_X_[k], row)
    # the row a prototype came from is at distance 0 from it: similarity 1
    e = m.explain(X[m.prototype_rows_[0]], top_k=len(m.prototype_rows_))[0]
    best = max(e.matches, key=lambda t: t.similarity)
    assert best.similarity == pytest.approx(1.0, abs=1e-5)


def test_medic_learns_a_separable_task_and_names_its_features(fitted, medic_task):
    from sklearn.metrics import roc_auc_score

    m, _, _ = fitted
    Xt, yt = medic_task(600, 2)
    p = m.predict_proba(Xt)
    assert p.shape == (600, 2) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert roc_auc_score(yt, p[:, 1]) > 0.85
    assert (m.predict(Xt) == yt).mean() > 0.8
    # the prototype that decides a prediction most constrains the informative feature
    rows = m.explain(Xt[:200], top_k=1, rank_by="evidence")
    assert sum("snr" in e.matches[0].features for e in rows) > 0.5 * len(rows)
    text = str(m.explain(Xt[0])[0])
    assert "prototype" in text and "training row" in text and "similarity" in text


def test_bin_codes_fall_in_the_bin_edges_the_rules_print(fitted, medic_task):
    """Each row's code is the bin whose edges (in the feature's own units) hold its value, and
    the conditions an explanation lists for the row are exactly its codes' antecedents."""
    m, _, _ = fitted
    Xt, _ = medic_task(200, 6)
    codes = m.bin_codes(Xt)
    assert codes.shape == Xt.shape and codes.dtype == np.int64
    edges = m.bin_edges()
    assert list(edges) == ["snr", "n1", "n2", "n3"]  # x4 ("jammed") is categorical
    for i, name in zip(m.cont_idx_, edges, strict=True):
        e, c = edges[name], codes[:, i]
        assert e.shape == (m.n_bins + 1,) and np.all(np.diff(e) > 0)
        assert np.all((e[c] < Xt[:, i]) & (Xt[:, i] <= e[c + 1]))
    assert set(np.unique(codes[:, 4])) <= {0, 1}
    np.testing.assert_array_equal(codes[:, 4], (Xt[:, 4] == 1).astype(np.int64))
    for row, code, expl in zip(Xt[:20], codes[:20], m.explain(Xt[:20]), strict=True):
        want = [f"{name} in ({edges[name][code[i]]:.4g}, {edges[name][code[i] + 1]:.4g})"
                for i, name in zip(m.cont_idx_, edges, strict=True)]
        want.append(f"jammed = {row[4]:g}")
        assert list(expl.conditions) == want


def test_save_load_gives_identical_predictions_and_explanations(fitted, tmp_path, medic_task):
    m, _, _ = fitted
    Xt, _ = medic_task(100, 4)
    m.save(tmp_path / "medic")
    assert sorted(p.name for p in (tmp_path / "medic").iterdir()) == ["config.json",
                                                                       "model.safetensors"]
    m2 = MEDIC.load(tmp_path / "medic")
    np.testing.assert_array_equal(m.predict_proba(Xt), m2.predict_proba(Xt))
    assert [str(e) for e in m.explain(Xt[:5])] == [str(e) for e in m2.explain(Xt[:5])]


def test_same_seed_same_model(medic_task):
    X, y = medic_task(300, 5)
    kw = dict(n_prototypes=4, epochs=(3, 2, 2))
    a = MEDIC(**kw).fit(X, y, seed=1).predict_proba(X)
    b = MEDIC(**kw).fit(X, y, seed=1).predict_proba(X)
    c = MEDIC(**kw).fit(X, y, seed=2).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_bad_inputs_raise_clear_errors(fitted, tmp_path):
    m, X, y = fitted
    with pytest.raises(ValueError, match="NaN"):
        m.predict_proba(np.where(np.eye(5, dtype=bool)[:1], np.nan, X[:1]))
    with pytest.raises(ValueError, match="fitted on 5"):
        m.predict_proba(X[:, :4])
    with pytest.raises(ValueError, match="2-D"):
        MEDIC().fit(X[:, 0], y)
    with pytest.raises(ValueError, match="binary"):
        MEDIC().fit(X, y + 1)
    with pytest.raises(ValueError, match=r"shape \[1200\]"):
        MEDIC().fit(X, y[:-1])
    with pytest.raises(ValueError, match="not fitted"):
        MEDIC().predict(X)
    with pytest.raises(ValueError, match="n_bins"):
        MEDIC(n_bins=1).fit(X, y)
    with pytest.raises(ValueError, match="no medic model"):
        MEDIC.load(tmp_path / "nothing")
