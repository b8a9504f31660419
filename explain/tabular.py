"""What the tabular metadata models (MEDIC, HiCEM) share: input checks with clear errors, the
feature standardisation they fit on the training table, seeded k-means with a silhouette
score (for Concept Splitting), and a safetensors + JSON model directory.

A model directory holds
  config.json        kind, hyperparameters and fitted non-tensor state
  model.safetensors  every tensor (weights, scaler statistics, prototypes)
each written atomically (`dmrx.nn.checkpoint.atomic_write`), config.json last; never pickle.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

FORMAT = "dmrx-tabular-1"


def check_X(X, n_features: int | None = None, name: str = "X") -> np.ndarray:
    """A finite 2-D float32 copy of `X`.

    :param X: [n, features] array-like; a single row [features] is not accepted (reshape it)
    :raises ValueError: not 2-D, no rows, NaN/inf, or a feature count other than `n_features`
    """
    try:
        a = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a numeric [n, features] array: {e}") from e
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D [n, features], got shape {a.shape}")
    if a.shape[0] == 0:
        raise ValueError(f"{name} has no rows")
    if n_features is not None and a.shape[1] != n_features:
        raise ValueError(f"{name} has {a.shape[1]} features; the model was fitted on "
                         f"{n_features}")
    bad = ~np.isfinite(a)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"{name} holds {int(bad.sum())} NaN/inf values (first at row {r}, "
                         f"column {c}); impute or drop them first")
    return np.ascontiguousarray(a)


def check_labels(y, n: int, name: str = "y") -> np.ndarray:
    """:return: [n] int64 in {0, 1}
    :raises ValueError: wrong length or values other than 0/1"""
    a = np.asarray(y)
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"{name} must have shape [{n}], got {a.shape}")
    if not np.isin(a, (0, 1)).all():
        raise ValueError(f"{name} must hold binary labels 0/1, got values "
                         f"{np.unique(a)[:6].tolist()}")
    return a.astype(np.int64)


def check_concepts(C, n: int, k: int, name: str = "C") -> np.ndarray:
    """:return: [n, k] float32 in {0, 1}
    :raises ValueError: wrong shape, NaN or values other than 0/1"""
    try:
        a = np.asarray(C, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a numeric [n, concepts] array: {e}") from e
    if a.shape != (n, k):
        raise ValueError(f"{name} must have shape [{n}, {k}] (rows, concepts), got {a.shape}")
    if not np.isin(a, (0.0, 1.0)).all():
        raise ValueError(f"{name} must hold binary concept labels 0/1 (no NaN)")
    return np.ascontiguousarray(a)


class Standardizer:
    """z = (x - mean) / std per feature, statistics from the training rows; a constant feature
    keeps std 1 (z = 0) rather than dividing by zero."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)

    @classmethod
    def fit(cls, X: np.ndarray, skip: np.ndarray | None = None) -> Standardizer:
        """:param skip: [features] bool, features left as they are (one-hot coded ones)"""
        mean, std = X.mean(0), X.std(0)
        std = np.where(std > 1e-12, std, 1.0)
        if skip is not None:
            mean, std = np.where(skip, 0.0, mean), np.where(skip, 1.0, std)
        return cls(mean, std)

    def __call__(self, X: np.ndarray) -> torch.Tensor:
        """:return: [n, features] float32 tensor"""
        return torch.from_numpy((X - self.mean) / self.std)

    def tensors(self, prefix: str = "scaler") -> dict[str, torch.Tensor]:
        return {f"{prefix}.mean": torch.from_numpy(self.mean.copy()),
                f"{prefix}.std": torch.from_numpy(self.std.copy())}

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor], prefix: str = "scaler") -> Standardizer:
        return cls(t[f"{prefix}.mean"].numpy(), t[f"{prefix}.std"].numpy())


def seeded_generator(seed: int) -> torch.Generator:
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}")
    return torch.Generator().manual_seed(int(seed))


# --- clustering (Concept Splitting) ----------------------------------------------------------
# Written here, not taken from scikit-learn (KMeans, silhouette_score): scikit-learn is only a
# dev/benchmark dependency of dmrx, and SciPy's kmeans2 has neither k-means++ restarts (best of
# n_init by inertia) nor a silhouette score; both are a few lines of NumPy.

def kmeans(Z: np.ndarray, k: int, seed: int, n_init: int = 8, iters: int = 100
           ) -> tuple[np.ndarray, np.ndarray, float]:
    """Lloyd's k-means with k-means++ seeding, best of `n_init` starts.

    :param Z: [n, d] float
    :return: labels [n] int64, centres [k, d], inertia
    """
    Z = np.asarray(Z, np.float64)
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(n_init):
        centres = [Z[rng.integers(len(Z))]]
        for _ in range(1, k):
            d2 = np.min(((Z[:, None] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
            p = d2 / d2.sum() if d2.sum() > 0 else np.full(len(Z), 1 / len(Z))
            centres.append(Z[rng.choice(len(Z), p=p)])
        c = np.asarray(centres)
        for _ in range(iters):
            lab = ((Z[:, None] - c[None]) ** 2).sum(-1).argmin(1)
            new = np.stack([Z[lab == j].mean(0) if (lab == j).any() else c[j]
                            for j in range(k)])
            if np.allclose(new, c):
                break
            c = new
        lab = ((Z[:, None] - c[None]) ** 2).sum(-1).argmin(1)
        inertia = float(((Z - c[lab]) ** 2).sum())
        if best is None or inertia < best[2]:
            best = (lab.astype(np.int64), c, inertia)
    return best


def silhouette(Z: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette coefficient (Rousseeuw 1987), as sklearn.metrics.silhouette_score.

    :param Z: [n, d]; :param labels: [n] ints with at least 2 distinct values
    """
    Z = np.asarray(Z, np.float64)
    sq = (Z ** 2).sum(1)
    D = np.sqrt(np.maximum(sq[:, None] + sq[None] - 2 * Z @ Z.T, 0.0))
    ks = np.unique(labels)
    if len(ks) < 2:
        raise ValueError("silhouette needs at least 2 clusters")
    s = np.zeros(len(Z))
    for i in range(len(Z)):
        own = labels == labels[i]
        n_own = own.sum() - 1
        if n_own == 0:
            continue  # a singleton's silhouette is 0 by definition
        a = D[i, own].sum() / n_own
        b = min(D[i, labels == j].mean() for j in ks if j != labels[i])
        s[i] = (b - a) / max(a, b) if max(a, b) > 0 else 0.0
    return float(s.mean())


# --- model directories -----------------------------------------------------------------------

def save_model_dir(path: str | Path, kind: str, config: dict,
                   tensors: dict[str, torch.Tensor]) -> Path:
    """Write `tensors` to model.safetensors and `config` to config.json, atomically."""
    from dmrx.nn.checkpoint import atomic_write

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    t = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(path / "model.safetensors", lambda p: save_file(t, str(p)))
    meta = {"format": FORMAT, "kind": kind, **config}
    atomic_write(path / "config.json", lambda p: p.write_text(json.dumps(meta, indent=2)))
    return path


def load_model_dir(path: str | Path, kind: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """:raises ValueError: missing, corrupt, or a model of another kind"""
    path = Path(path)
    try:
        meta = json.loads((path / "config.json").read_text())
    except FileNotFoundError:
        raise ValueError(f"no {kind} model at {str(path)!r}: config.json is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{kind} model {str(path)!r} is corrupt: config.json: {e}") from e
    if meta.get("format") != FORMAT or meta.get("kind") != kind:
        raise ValueError(f"{str(path)!r} holds a {meta.get('kind')!r} model "
                         f"({meta.get('format')!r}), not a {kind} model")
    try:
        tensors = load_file(str(path / "model.safetensors"))
    except FileNotFoundError:
        raise ValueError(f"{kind} model {str(path)!r} has no model.safetensors") from None
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{kind} model {str(path)!r} is corrupt: {e}") from e
    return meta, tensors
