"""A MEDIC of several members: K MEDICs trained alike with different seeds, logits averaged.

Why: one MEDIC fit depends on its seed (initialisation, minibatch order, the training parts the
push picks). On dmrx's should-adapt tables its test AUROC spreads over seeds with an SD of about
0.013 where the gradient-boosted trees' spread 0.002-0.004, and that spread, not what prototypes
over binned features can represent, is what kept MEDIC about 0.02 behind the trees
(`benchmarks/medic_members.py`). Averaging members is the usual cure for variance. It is chosen
over a wider single MEDIC (32 prototypes trained together did worse on the tests,
`benchmarks/medic_select.py`).

It stays a prototype-parts model: member m's logit for class c is sum_k w^m_ck s^m_k over its
prototypes' similarities, so the ensemble's logit (1/K) sum_m sum_k w^m_ck s^m_k is one linear
head over all K x n_prototypes similarities. Every prototype is still a real training row's part
read as a rule over its own member's bins, and an explanation lists the prototypes (from any
member) that decided the prediction, with their evidence scaled by 1/K so that the evidence of
all prototypes adds up to the ensemble's logit margin, as in one MEDIC.

Member m of an ensemble fitted with seed s trains with seed s K + m, so ensembles with seeds
0, 1, 2, ... share no member. Saved as a directory: config.json and member-<m>/ (each a MEDIC
model directory).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from dmrx.explain.medic import MEDIC, MedicExplanation, pick_matches

FORMAT = "dmrx-medic-ensemble/1"


class MEDICEnsemble:
    """K MEDIC members with the same hyperparameters, their logits averaged.

    :param members: K >= 1 (K = 1 is one MEDIC)
    Other parameters: `MEDIC`'s, shared by every member.
    :raises ValueError: members not a positive int, or a bad MEDIC hyperparameter
    """

    kind = "medic-ensemble"

    def __init__(self, members: int = 4, **medic_params):
        if isinstance(members, bool) or not isinstance(members, int) or members < 1:
            raise ValueError(f"MEDICEnsemble.members={members!r} is not allowed: a positive "
                             "int")
        self.members = members
        self.medic_params = dict(medic_params)
        MEDIC(**self.medic_params)._validate()  # a bad hyperparameter fails here, not at fit

    def member_seeds(self, seed: int) -> list[int]:
        """The training seeds of the members of an ensemble fitted with `seed`."""
        return [seed * self.members + m for m in range(self.members)]

    def fit(self, X, y, X_val=None, y_val=None, seed: int = 0) -> MEDICEnsemble:
        """Fit each member as `MEDIC.fit` does (same rows, its own seed).

        :param X: [n, features]; :param y: [n] in {0, 1}; X_val, y_val: as MEDIC's
        """
        self.members_ = [MEDIC(**self.medic_params).fit(X, y, X_val, y_val, seed=s)
                         for s in self.member_seeds(seed)]
        return self

    @classmethod
    def from_members(cls, members: list[MEDIC]) -> MEDICEnsemble:
        """An ensemble of MEDICs already fitted (on the same features), e.g. in parallel."""
        if not members:
            raise ValueError("MEDICEnsemble.from_members needs at least one fitted MEDIC")
        for m in members:
            m._check_fitted()
        if len({m.n_features_in_ for m in members}) != 1:
            raise ValueError("MEDICEnsemble.from_members: the members were fitted on different "
                             "numbers of features")
        first = members[0]
        ens = cls(len(members), **{k: getattr(first, k) for k in MEDIC._HYPER},
                  feature_names=first.feature_names_)
        ens.members_ = list(members)
        return ens

    def _check_fitted(self) -> None:
        if not hasattr(self, "members_"):
            raise ValueError("this MEDICEnsemble is not fitted yet: call fit(X, y) first")

    @property
    def feature_names_(self) -> list[str]:
        self._check_fitted()
        return self.members_[0].feature_names_

    def logits(self, X) -> np.ndarray:
        """:param X: [n, features]; :return: [n, 2] the members' mean logits"""
        self._check_fitted()
        return np.mean([m.logits(X) for m in self.members_], axis=0)

    def predict_proba(self, X) -> np.ndarray:
        """:param X: [n, features]; :return: [n, 2] float class probabilities"""
        return torch.softmax(torch.from_numpy(self.logits(X)), -1).numpy()

    def predict(self, X) -> np.ndarray:
        """:return: [n] int64"""
        return self.predict_proba(X).argmax(1)

    def explain(self, X, top_k: int = 3, rank_by: str = "similarity"
                ) -> list[MedicExplanation]:
        """As `MEDIC.explain`, over the prototypes of every member (each match names its
        member; evidence is a logit margin of the ensemble, i.e. divided by K). The row's own
        conditions are left out: each member bins the features its own way, and each match
        lists the antecedents of its rule that the row satisfies.
        """
        self._check_fitted()
        X = self.members_[0]._explain_rows(X, rank_by)
        proba = self.predict_proba(X)[:, 1]
        pred = (proba > 0.5).astype(np.int64)
        per_member = [m.candidates(X, pred, scale=1.0 / len(self.members_), member=i)
                      for i, m in enumerate(self.members_)]
        return [MedicExplanation(
            prediction=int(pred[i]), probability=float(proba[i]), conditions=(),
            matches=tuple(pick_matches([c for cm in per_member for c in cm[i][1]], top_k,
                                       rank_by)))
            for i in range(len(X))]

    def save(self, path: str | Path) -> Path:
        """Write config.json and member-<m>/ (MEDIC model directories); every file atomic."""
        from dmrx.nn.checkpoint import atomic_write

        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for i, m in enumerate(self.members_):
            m.save(path / f"member-{i}")
        meta = {"format": FORMAT, "kind": self.kind, "members": len(self.members_)}
        atomic_write(path / "config.json", lambda p: p.write_text(json.dumps(meta, indent=2)))
        return path

    @classmethod
    def load(cls, path: str | Path) -> MEDICEnsemble:
        """:raises ValueError: missing, corrupt or not a MEDICEnsemble directory"""
        path = Path(path)
        try:
            meta = json.loads((path / "config.json").read_text())
        except FileNotFoundError:
            raise ValueError(f"no MEDIC ensemble at {str(path)!r}: config.json is missing"
                             ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"MEDIC ensemble {str(path)!r} is corrupt: config.json: {e}"
                             ) from e
        if meta.get("format") != FORMAT or not isinstance(meta.get("members"), int):
            raise ValueError(f"{str(path)!r} holds a {meta.get('kind')!r} model "
                             f"({meta.get('format')!r}), not a MEDIC ensemble")
        return cls.from_members([MEDIC.load(path / f"member-{i}")
                                 for i in range(meta["members"])])
