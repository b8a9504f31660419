"""A MEDIC of several members: its logit is the members' mean, each member is the MEDIC its
seed gives, its explanation's evidence adds up to its logit margin, and it saves, loads and
trains through `dmrx metadata train --members`."""

import numpy as np
import pytest
import torch

from dmrx.explain.medic import MEDIC
from dmrx.explain.medic_ensemble import MEDICEnsemble
from dmrx.explain.metadata_fit import load_model, make_model

pytestmark = pytest.mark.usefixtures("one_thread")

KW = dict(n_bins=3, n_prototypes=6, epochs=(6, 4, 6), l1=0.1, batch_size=64)


@pytest.fixture(scope="module")
def fitted(medic_task):
    X, y = medic_task(600, 0, 4)
    Xv, yv = medic_task(200, 1, 4)
    ens = MEDICEnsemble(3, feature_names=["snr", "n1", "n2", "jammed"], **KW)
    return ens.fit(X, y, Xv, yv, seed=2), X, y, Xv, yv


def test_members_are_the_medics_of_their_seeds_and_logits_average(fitted, medic_task):
    ens, X, y, Xv, yv = fitted
    assert ens.member_seeds(2) == [6, 7, 8]  # ensembles 0, 1, 2, ... share no member
    Xt, _ = medic_task(50, 3, 4)
    alone = [MEDIC(feature_names=["snr", "n1", "n2", "jammed"], **KW).fit(X, y, Xv, yv, seed=s)
             for s in (6, 7, 8)]
    for a, m in zip(alone, ens.members_, strict=True):
        np.testing.assert_array_equal(a.predict_proba(Xt), m.predict_proba(Xt))
    mean_logit = np.mean([a.logits(Xt) for a in alone], axis=0)
    np.testing.assert_allclose(ens.logits(Xt), mean_logit, rtol=1e-6, atol=1e-6)
    p1 = 1.0 / (1.0 + np.exp(-(mean_logit[:, 1] - mean_logit[:, 0])))
    np.testing.assert_allclose(ens.predict_proba(Xt)[:, 1], p1, rtol=1e-5, atol=1e-6)
    assert ens.predict_proba(Xt).shape == (50, 2)
    # the task is learnable: the ensemble ranks held-out rows well
    from sklearn.metrics import roc_auc_score

    Xh, yh = medic_task(400, 4, 4)
    assert roc_auc_score(yh, ens.predict_proba(Xh)[:, 1]) > 0.9


def test_evidence_of_all_prototypes_adds_up_to_the_logit_margin(fitted, medic_task):
    """As in one MEDIC, each prototype's evidence is its share of the logit margin of the
    predicted class over a row that is far (similarity 0) from every prototype."""
    ens, _, _, _, _ = fitted
    Xt, _ = medic_task(8, 5, 4)
    n_all = 3 * KW["n_prototypes"]
    for x, e in zip(Xt, ens.explain(Xt, top_k=n_all), strict=True):
        assert len(e.matches) == n_all and {m.member for m in e.matches} == {0, 1, 2}
        assert [m.similarity for m in e.matches] == sorted(
            (m.similarity for m in e.matches), reverse=True)
        logit = ens.logits(x[None])[0]
        far = np.mean([m.net_.head(torch.ones(1, KW["n_prototypes"])).detach().numpy()[0]
                       for m in ens.members_], axis=0)  # every distance 1: similarity 0
        p = e.prediction
        margin = (logit[p] - logit[1 - p]) - (far[p] - far[1 - p])
        assert sum(m.evidence for m in e.matches) == pytest.approx(float(margin), abs=1e-4)
        member, k = e.matches[0].member, e.matches[0].prototype
        assert e.matches[0].train_row == ens.members_[member].prototype_rows_[k]
        assert f"prototype {member}.{k} (member {member})" in str(e)
    top = ens.explain(Xt[:2], top_k=2, rank_by="evidence")
    assert all(a.evidence >= b.evidence
               for e in top for a, b in zip(e.matches, e.matches[1:], strict=False))


def test_save_load_and_metadata_fit_round_trip(fitted, tmp_path, medic_task):
    ens, X, y, _, _ = fitted
    Xt, _ = medic_task(30, 6, 4)
    ens.save(tmp_path / "ens")
    assert sorted(p.name for p in (tmp_path / "ens").iterdir()) == [
        "config.json", "member-0", "member-1", "member-2"]
    back = MEDICEnsemble.load(tmp_path / "ens")
    np.testing.assert_array_equal(ens.predict_proba(Xt), back.predict_proba(Xt))
    assert [str(e) for e in ens.explain(Xt[:3])] == [str(e) for e in back.explain(Xt[:3])]
    assert isinstance(make_model("medic", members=2), MEDICEnsemble)
    assert isinstance(make_model("medic", members=1), MEDIC)
    from dmrx.explain.metadata_fit import save_model

    save_model(back, tmp_path / "saved", label="should_adapt", features=["a", "b", "c", "d"])
    model, info = load_model(tmp_path / "saved")
    assert info["kind"] == "medic-ensemble" and isinstance(model, MEDICEnsemble)


def test_bad_inputs_raise_clear_errors(fitted, tmp_path):
    ens, X, _, _, _ = fitted
    with pytest.raises(ValueError, match=r"MEDICEnsemble.members=0 is not allowed"):
        MEDICEnsemble(0)
    with pytest.raises(ValueError, match=r"MEDIC.n_bins=1 is not allowed"):
        MEDICEnsemble(2, n_bins=1)
    with pytest.raises(ValueError, match="not fitted"):
        MEDICEnsemble(2).predict(X)
    with pytest.raises(ValueError, match="fitted on 4"):
        ens.predict_proba(X[:, :3])
    with pytest.raises(ValueError, match="no MEDIC ensemble"):
        MEDICEnsemble.load(tmp_path / "nothing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        MEDICEnsemble.load(tmp_path / "bad")
