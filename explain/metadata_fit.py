"""Metadata models by name, fitted on the tables of `dmrx.explain.metadata`, saved without pickle.

Kinds (`MODELS`): 'logreg' (standardised logistic regression, `LogisticModel`: saved as JSON,
explains a row by each feature's contribution to the logit), 'gbt' (scikit-learn's
histogram gradient-boosted trees: a baseline, not saved — scikit-learn has no format for it
but pickle, and it refits from the table in seconds), 'medic' (`dmrx.explain.medic.MEDIC`;
with members=K > 1 a `dmrx.explain.medic_ensemble.MEDICEnsemble` of K, saved as kind
'medic-ensemble') and 'hicem' (`dmrx.explain.hicem.HiCEM`), saved as safetensors + JSON by
their own `save`/`load`. Every model has the scikit-learn interface `fit` /
`predict_proba`; `explain_rows` gives each row's reasons in whatever form the model offers.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dmrx.explain.metadata import CONCEPTS, FEATURES, LABELS, read_table, to_arrays

MODELS = ("logreg", "gbt", "medic", "hicem")


class LogisticModel:
    """Standardised L2 logistic regression (scikit-learn's lbfgs) with per-row contributions.

    :param C: inverse regularisation strength
    """

    kind = "logreg"

    def __init__(self, C: float = 1.0, feature_names: Sequence[str] = FEATURES):
        if not C > 0:
            raise ValueError(f"LogisticModel C={C!r}: > 0")
        self.C, self.feature_names = float(C), tuple(feature_names)

    def fit(self, X, y, **_) -> LogisticModel:
        from sklearn.linear_model import LogisticRegression

        X = np.asarray(X, np.float64)
        self.mean_, self.std_ = X.mean(0), X.std(0)
        self.std_[self.std_ < 1e-9] = 1.0
        lr = LogisticRegression(C=self.C, max_iter=2000).fit((X - self.mean_) / self.std_, y)
        self.coef_, self.intercept_ = lr.coef_[0].copy(), float(lr.intercept_[0])
        return self

    def _logit(self, X) -> np.ndarray:
        return ((np.asarray(X, np.float64) - self.mean_) / self.std_) @ self.coef_ \
            + self.intercept_

    def predict_proba(self, X) -> np.ndarray:
        p = 1 / (1 + np.exp(-self._logit(X)))
        return np.stack([1 - p, p], axis=1)

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    def explain(self, X, top_k: int = 3) -> list[list[tuple[str, float]]]:
        """Per row, the `top_k` features by |contribution to the logit| (coef x standardised
        value), signed: positive pushes toward the label."""
        z = (np.asarray(X, np.float64) - self.mean_) / self.std_ * self.coef_
        order = np.argsort(-np.abs(z), axis=1)[:, :top_k]
        return [[(self.feature_names[j], round(float(z[i, j]), 3)) for j in row]
                for i, row in enumerate(order)]

    def save(self, path: str | Path) -> Path:
        from dmrx.nn.checkpoint import atomic_write

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {"kind": self.kind, "C": self.C, "feature_names": list(self.feature_names),
                 "mean": self.mean_.tolist(), "std": self.std_.tolist(),
                 "coef": self.coef_.tolist(), "intercept": self.intercept_}
        atomic_write(path / "config.json", lambda p: p.write_text(json.dumps(state, indent=2)))
        return path

    @classmethod
    def load(cls, path: str | Path) -> LogisticModel:
        d = json.loads((Path(path) / "config.json").read_text())
        m = cls(d["C"], d["feature_names"])
        m.mean_, m.std_ = np.array(d["mean"]), np.array(d["std"])
        m.coef_, m.intercept_ = np.array(d["coef"]), float(d["intercept"])
        return m


def make_model(kind: str, seed: int = 0, **params):
    """A fresh model of `MODELS`; 'medic' and 'hicem' are imported only here.

    :raises ValueError: an unknown kind, or MEDIC/HiCEM not available in this checkout
    """
    if kind == "logreg":
        return LogisticModel(**params)
    if kind == "gbt":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(random_state=seed, **params)
    if kind == "medic" and params.get("members", 1) != 1:
        return _torch_model_class("medic-ensemble")(**params)
    if kind in ("medic", "hicem"):
        if kind == "medic":
            params.pop("members", None)  # members=1: one MEDIC
        return _torch_model_class(kind)(**params)
    raise ValueError(f"unknown metadata model {kind!r}: one of {MODELS}")


def _torch_model_class(kind: str):
    module, name = {"medic": ("dmrx.explain.medic", "MEDIC"),
                    "medic-ensemble": ("dmrx.explain.medic_ensemble", "MEDICEnsemble"),
                    "hicem": ("dmrx.explain.hicem", "HiCEM")}[kind]
    try:
        import importlib

        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"metadata model {kind!r} needs {module}.{name}, which this checkout "
                         f"does not have yet ({e})") from None


def fit_model(model, X: np.ndarray, C: np.ndarray, y: np.ndarray, *, X_val=None, C_val=None,
              y_val=None, seed: int = 0):
    """`model.fit` with what its signature takes: concepts (HiCEM-style `fit(X, C, y)`),
    a validation set and a seed where accepted."""
    params = inspect.signature(model.fit).parameters
    kw = {}
    if "seed" in params:
        kw["seed"] = seed
    if "X_val" in params and X_val is not None:
        kw["X_val"], kw["y_val"] = X_val, y_val
        if "C_val" in params:
            kw["C_val"] = C_val
    if "C" in params:
        return model.fit(X, C, y, **kw)
    return model.fit(X, y, **kw)


def save_model(model, path: str | Path, *, label: str, features: Sequence[str],
               positive_rate: float | None = None) -> Path | None:
    """Save to a directory (the model's own format, plus metadata.json naming the label, the
    feature columns and, if given, the label's positive rate in the training table: a gate's
    'base-rate' threshold). None for 'gbt' (not saved: see the module docstring)."""
    from dmrx.nn.checkpoint import atomic_write

    if not hasattr(model, "save"):
        return None
    path = Path(path)
    model.save(path)
    kind = getattr(model, "kind", type(model).__name__.lower())
    info = {"kind": kind, "label": label, "features": list(features)}
    if positive_rate is not None:
        info["positive_rate"] = float(positive_rate)
    atomic_write(path / "metadata.json", lambda p: p.write_text(json.dumps(info, indent=2)))
    return path


def load_model(path: str | Path):
    """:return: (model, info) with info = {'kind', 'label', 'features'} and 'positive_rate'
        where the model was saved with it
    :raises ValueError: not a saved metadata model directory
    """
    path = Path(path)
    meta = path / "metadata.json"
    if not meta.is_file():
        raise ValueError(f"{str(path)!r} is not a saved metadata model (no metadata.json; "
                         "write one with `dmrx metadata train --out`)")
    info = json.loads(meta.read_text())
    kind = info.get("kind")
    if kind == "logreg":
        return LogisticModel.load(path), info
    if kind in ("medic", "medic-ensemble", "hicem"):
        return _torch_model_class(kind).load(path), info
    raise ValueError(f"{str(path)!r}: unknown model kind {kind!r}")


def explanations(model, X: np.ndarray, top_k: int = 3) -> list[tuple[str, str]]:
    """Why each row is predicted as it is: (text, leading reason) per row, from the model's
    own `explain` — LogisticModel: the top contributions (leading: the first feature);
    MEDIC: the prototypes matched (leading: 'prototype k' of the nearest); HiCEM: concepts
    and the effect of intervening on each (leading: 'concept c' of the largest effect). A
    model without `explain` gets a placeholder."""
    if not hasattr(model, "explain"):
        return [("(no per-row explanation for this model)", "")] * len(X)
    try:
        out = model.explain(X, top_k=top_k)
    except TypeError:
        out = model.explain(X)
    rows = []
    for e in out:
        if isinstance(e, list):
            rows.append((", ".join(f"{n} {v:+.2f}" for n, v in e), e[0][0] if e else ""))
        elif getattr(e, "matches", None):
            rows.append((str(e), f"prototype {e.matches[0].prototype}"))
        elif getattr(e, "influence", None):
            rows.append((str(e), f"concept {e.influence[0][0]}"))
        else:
            rows.append((str(e), ""))
    return rows


def explain_rows(model, X: np.ndarray, top_k: int = 3) -> list[str]:
    """The text of `explanations`."""
    return [text for text, _ in explanations(model, X, top_k)]


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (NaN with one class only)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def train_on_tables(kind: str, data_dir: str | Path, *, label: str = "block_error",
                    features: Sequence[str] = FEATURES, seed: int = 0, **params) -> tuple:
    """Fit a model of `kind` on data_dir/train.parquet; score it on val and test.

    :return: (model, scores) with scores = {split: {'rows', 'positive_rate', 'auc',
        'accuracy'}}
    :raises ValueError: unknown kind or label, unreadable tables, a split without both classes
    """
    if label not in LABELS:
        raise ValueError(f"unknown label {label!r}: one of {LABELS}")
    data_dir = Path(data_dir)
    arrays = {}
    for split in ("train", "val", "test"):
        X, C, y = to_arrays(read_table(data_dir / f"{split}.parquet"), label,
                            features=features, concepts=CONCEPTS)
        if len(y) == 0:
            raise ValueError(f"{split}.parquet has no row with {label!r} measured")
        arrays[split] = (X, C, y)
    X, C, y = arrays["train"]
    if len(np.unique(y)) < 2:
        raise ValueError(f"train.parquet: {label!r} has one class only")
    if kind != "gbt" and "feature_names" in inspect.signature(
            LogisticModel if kind == "logreg" else _torch_model_class(kind)).parameters:
        params.setdefault("feature_names", tuple(features))  # explanations name columns
    model = make_model(kind, seed=seed, **params)
    Xv, Cv, yv = arrays["val"]
    fit_model(model, X, C, y, X_val=Xv, C_val=Cv, y_val=yv, seed=seed)
    scores = {}
    for split, (Xs, _, ys) in arrays.items():
        p = model.predict_proba(Xs)[:, 1]
        scores[split] = {"rows": int(len(ys)), "positive_rate": float(ys.mean()),
                         "auc": auc(ys, p), "accuracy": float(((p >= 0.5) == ys).mean())}
    return model, scores
