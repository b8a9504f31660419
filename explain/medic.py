"""MEDIC: a prototype parts-based network for tabular data (Karolczak & Stefanowski, "An
interpretable prototype parts-based neural network for medical tabular data", EXPLIMED @ ECAI
2025, arXiv 2603.05423), re-implemented from the paper and the authors' code
(github.com/jkarolczak/medic @43a7bef; unlicensed, so nothing is copied), for link metadata.

One row [features] goes through
  1. learnable discretisation: per continuous (standardised) feature B fuzzy bins with learnable
     sorted centres mu and width sigma, m_b = softmax_b(exp(-(x - mu_b)^2 / (2 sigma^2 + eps)))
     + eps; hard mode one-hot(argmin_b |x - mu_b|). Categorical features are one-hot.
     -> z [E], E = sum of bins/values                  (medic/nn/binning.py FuzzyBinning)
  2. parts: part_j = P_j * z for J learnable masks P [J, E]; hard parts keep entries > eps
  3. shared encoder f: E -> E -> h -> h, ReLU (LeakyReLU here, see below)
  4. K prototypes p_k [h]: d_jk = ||f(part_j) - p_k|| / max_distance, s_k = min_j d_jk
  5. linear head on the K min-distances -> 2 logits   (medic/classifiers/medic_classifier.py)
Loss CE_w + l1 * mean|P| - div * mean_{k != l} ||p_k - p_l|| (medic/utils.py train_model).
Training in three phases (medic/experiment_utils/proto.py): soft bins with all losses; hard
bins (bins frozen), CE only; then each prototype is projected ("pushed") onto the nearest part
of a real training row, the masks are frozen and training goes on with CE only.

An explanation of a prediction lists prototypes, each a real training row's part read as a rule
("snr_est_db in (4.1, 11.7) AND quantized_input = 1"), with its similarity 1 - d, the class it
votes for and the conditions the row shares with it (medic/pretty_print.py).

Deviations from the authors' code, and why (each measured on a synthetic task where the soft
model reached AUROC 1.0 and the finished model fell to 0.5-0.8 on some seeds without it):
- After the push a prototype is *defined* as f(its stored real part), and the encoder keeps
  training in phase 3 (the head too). The code means to freeze the encoder but its
  `requires_grad = False` on a Module is a no-op, so its encoder trains on and its stored
  prototype vectors drift away from the parts they are shown as; freezing it for real (as the
  notes suggest) left the encoder unable to follow the switch to hard parts. Here prototypes
  stay exactly the encodings of real training parts and the encoder can adapt.
- The push only considers non-empty parts: an empty part is a rule without antecedents and
  f(0) matches every row that has one, which collapsed all predictions to one value.
- Phase 1 anneals the soft bins' softmax temperature from 1 to 0.05 (the code has this as an
  option, `annealing` in train_model, off in the experiments), and hard parts are switched on
  with hard bins in phase 2 rather than at the push, so that neither switch arrives at once.
- Bin centres start at the training quantiles (b + 1/2)/B, not N(0, 1) (two centres starting
  together wasted a bin), and the encoder uses LeakyReLU (the ReLU encoder of width 4 died
  completely on some seeds). `bin_init="normal"` and `anneal=False` restore the paper's.
- max_distance is fixed after training, max(1, largest training distance), as the authors'
  running maximum ends up, and the head is rescaled so the normalisation changes no logit.
- Bin centres are sorted inside the forward pass instead of re-sorting the parameter in place;
  bin b still means the b-th smallest centre.
- With validation rows, phases 2 and 3 keep their epoch with the lowest validation loss.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dmrx.explain.tabular import (
    Standardizer,
    check_labels,
    check_X,
    load_model_dir,
    save_model_dir,
    seeded_generator,
)

EPS = 1e-6  # the authors' medic.nn.EPS is not in the stored snapshot; any small value works
RULE_THRESHOLD = 0.1  # a part entry above this is an antecedent of the rule (pretty_print.py)


class _MedicNet(nn.Module):
    """:input xc: [n, continuous features] float32 standardised; xk: [n, one-hot width] float32
    :output: [n, 2] logits"""

    def __init__(self, n_cont: int, cat_width: int, n_bins: int, n_patches: int,
                 n_prototypes: int, hidden_dim: int, leaky: bool = True):
        super().__init__()
        self.n_cont, self.n_bins = n_cont, n_bins
        self.embedding_dim = n_cont * n_bins + cat_width
        e = self.embedding_dim
        self.bin_centers = nn.Parameter(torch.randn(n_cont, n_bins))
        self.sigma = nn.Parameter(torch.full((n_cont,), 0.2))
        self.patches = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_patches, e)))
        act = nn.LeakyReLU if leaky else nn.ReLU
        self.encoder = nn.Sequential(nn.Linear(e, e), act(), nn.Linear(e, hidden_dim),
                                     act(), nn.Linear(hidden_dim, hidden_dim), act())
        self.prototypes = nn.Parameter(
            nn.init.xavier_normal_(torch.empty(n_prototypes, hidden_dim)))
        self.head = nn.Linear(n_prototypes, 2)
        self.register_buffer("max_distance", torch.tensor(1.0))
        # after the push: the real training parts the prototypes are, [K, E]
        self.register_buffer("proto_parts", torch.zeros(n_prototypes, e))
        self.register_buffer("pushed", torch.tensor(False))
        self.hard_binning = False
        self.hard_parts = False
        self.temperature = 1.0  # of the soft bins' softmax; annealed in phase 1

    def prototype_vectors(self) -> torch.Tensor:
        """[K, h]: the free prototypes before the push, f(real part) after it."""
        return self.encoder(self.proto_parts) if bool(self.pushed) else self.prototypes

    def sorted_centers(self) -> torch.Tensor:
        return torch.sort(self.bin_centers, dim=1).values

    def binned(self, xc: torch.Tensor, xk: torch.Tensor) -> torch.Tensor:
        """:return: z [n, E]"""
        mu = self.sorted_centers()
        d2 = (xc[..., None] - mu) ** 2  # [n, Fc, B]
        if self.hard_binning:
            m = F.one_hot(d2.argmin(-1), self.n_bins).float()
        else:
            m = torch.exp(-d2 / (2 * self.sigma[:, None] ** 2 + EPS))
            m = torch.softmax(m / self.temperature, dim=-1) + EPS
        return torch.cat([m.flatten(1), xk], dim=1)

    def parts(self, z: torch.Tensor) -> torch.Tensor:
        """:return: [n, J, E]"""
        p = self.patches[None] * z[:, None]
        return p * (p > EPS).float() if self.hard_parts else p

    def distances(self, xc: torch.Tensor, xk: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """:return: min over parts of the normalised distance to each prototype [n, K] and the
        part that attains it [n, K] int64"""
        f = self.encoder(self.parts(self.binned(xc, xk)))  # [n, J, h]
        protos = self.prototype_vectors()
        d = torch.cdist(f, protos[None].expand(f.shape[0], -1, -1))  # [n, J, K]
        d = d / self.max_distance
        return d.min(dim=1)

    def forward(self, xc: torch.Tensor, xk: torch.Tensor) -> torch.Tensor:
        return self.head(self.distances(xc, xk)[0])

    def l1_term(self) -> torch.Tensor:
        return self.patches.abs().mean()

    def diversity_term(self) -> torch.Tensor:
        d = torch.cdist(self.prototypes, self.prototypes)
        off = ~torch.eye(d.shape[0], dtype=torch.bool)
        return -d[off].mean()


@dataclasses.dataclass(frozen=True)
class PrototypeMatch:
    """One prototype as evidence for one row's prediction."""

    prototype: int            # prototype index k
    train_row: int            # row of the training X whose part the prototype is
    patch: int                # mask j that cut that part
    row_label: int            # label of that training row
    votes_for: int            # class whose logit grows as the row gets closer to it
    similarity: float         # 1 - normalised distance, in [0, 1]
    evidence: float           # logit margin it adds for the predicted class vs being far
    features: tuple[str, ...]     # features the prototype's part constrains
    conditions: tuple[str, ...]   # the part as a rule, one antecedent per (feature, bin)
    matched: tuple[str, ...]      # those antecedents the explained row satisfies too
    member: int | None = None     # in a `MEDICEnsemble`: the member the prototype belongs to

    def __str__(self) -> str:
        rule = " AND ".join(self.conditions) or "(empty part)"
        shared = ", ".join(self.matched) or "none"
        name = (f"{self.prototype}" if self.member is None
                else f"{self.member}.{self.prototype} (member {self.member})")
        return (f"resembles prototype {name} (training row {self.train_row}, label "
                f"{self.row_label}, votes for class {self.votes_for}) with similarity "
                f"{self.similarity:.3f} (evidence {self.evidence:+.3f}) on features "
                f"{{{', '.join(self.features)}}}: {rule}; shared conditions: {shared}")


@dataclasses.dataclass(frozen=True)
class MedicExplanation:
    """Why MEDIC predicted what it did for one row."""

    prediction: int
    probability: float        # P(class 1)
    conditions: tuple[str, ...]   # the row's own (feature in interval) conditions
    matches: tuple[PrototypeMatch, ...]  # nearest prototypes first

    def __str__(self) -> str:
        lines = [f"prediction {self.prediction} (P(1) = {self.probability:.3f})"]
        if self.conditions:  # a MEDICEnsemble's members bin differently: none of their own
            lines.append("  this row: " + " AND ".join(self.conditions))
        lines += [f"  {i + 1}. this row {m}" for i, m in enumerate(self.matches)]
        return "\n".join(lines)


def pick_matches(cands: Sequence[PrototypeMatch], top_k: int, rank_by: str
                 ) -> list[PrototypeMatch]:
    """The `top_k` prototypes of `cands`: nearest first ("similarity") or largest evidence
    first ("evidence"); ties keep their order."""
    key = ((lambda m: -m.similarity) if rank_by == "similarity" else (lambda m: -m.evidence))
    return sorted(cands, key=key)[:top_k]


class MEDIC:
    """MEDIC classifier with scikit-learn conventions (binary labels).

    :param n_bins: fuzzy bins per continuous feature (3 in all of the paper's configs)
    :param n_prototypes: K; :param n_patches: J, default 2 K as in the paper's CV runs
    :param hidden_dim: h, the encoder's output size
    :param epochs: epochs of the three phases (soft bins, hard bins, pushed prototypes)
    :param l1, diversity: weights of the mask-sparsity and prototype-diversity losses
    :param class_weight: "balanced" (the paper) or None
    :param categorical: "auto" one-hot codes features whose training values are at most
        `max_categories` distinct integers; or a list of feature indices; or None
    :param feature_names: names used in explanations, default x0, x1, ...
    """

    def __init__(self, n_bins: int = 3, n_prototypes: int = 32, n_patches: int | None = None,
                 hidden_dim: int = 4, lr: float = 0.005, batch_size: int = 64,
                 epochs: tuple[int, int, int] = (40, 30, 30), l1: float = 0.01,
                 diversity: float = 0.02, class_weight: str | None = "balanced",
                 categorical: str | Sequence[int] | None = "auto", max_categories: int = 8,
                 feature_names: Sequence[str] | None = None, bin_init: str = "quantile",
                 anneal: bool = True):
        self.bin_init, self.anneal = bin_init, anneal
        self.n_bins, self.n_prototypes, self.n_patches = n_bins, n_prototypes, n_patches
        self.hidden_dim, self.lr, self.batch_size = hidden_dim, lr, batch_size
        self.epochs, self.l1, self.diversity = tuple(epochs), l1, diversity
        self.class_weight, self.categorical = class_weight, categorical
        self.max_categories = max_categories
        self.feature_names = None if feature_names is None else list(feature_names)

    def _validate(self) -> None:
        for name in ("n_bins", "n_prototypes", "hidden_dim", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < (2 if name == "n_bins" else 1):
                raise ValueError(f"MEDIC.{name}={v!r} is not allowed: a positive int "
                                 f"{'>= 2 ' if name == 'n_bins' else ''}is")
        if self.n_patches is not None and (not isinstance(self.n_patches, int)
                                           or self.n_patches < 1):
            raise ValueError(f"MEDIC.n_patches={self.n_patches!r} is not allowed: None or a "
                             "positive int")
        if len(self.epochs) != 3 or any(not isinstance(e, int) or e < 0 for e in self.epochs):
            raise ValueError(f"MEDIC.epochs={self.epochs!r} is not allowed: three ints >= 0")
        if self.class_weight not in (None, "balanced"):
            raise ValueError(f"MEDIC.class_weight={self.class_weight!r} is not allowed: None "
                             "or 'balanced'")
        if self.bin_init not in ("quantile", "normal"):
            raise ValueError(f"MEDIC.bin_init={self.bin_init!r} is not allowed: 'quantile' or "
                             "'normal' (the paper's N(0, 1))")
        if not self.lr > 0:
            raise ValueError(f"MEDIC.lr={self.lr!r} is not allowed: > 0")

    # --- fitting -----------------------------------------------------------------------------

    def fit(self, X, y, X_val=None, y_val=None, seed: int = 0) -> MEDIC:
        """:param X: [n, features] float; :param y: [n] in {0, 1}
        :param X_val, y_val: optional validation rows (keep the best epoch of phases 2, 3)
        :raises ValueError: bad shapes, NaN, non-binary labels, bad hyperparameters"""
        self._validate()
        X = check_X(X)
        y = check_labels(y, len(X))
        n_feat = X.shape[1]
        names = self.feature_names or [f"x{i}" for i in range(n_feat)]
        if len(names) != n_feat:
            raise ValueError(f"MEDIC.feature_names has {len(names)} names for {n_feat} "
                             "features")
        self.feature_names_ = list(names)
        self.n_features_in_ = n_feat
        self._fit_coding(X)
        val = None
        if X_val is not None:
            Xv = check_X(X_val, n_feat, "X_val")
            val = (*self._encode(Xv), torch.from_numpy(check_labels(y_val, len(Xv), "y_val")))

        g = seeded_generator(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = _MedicNet(len(self.cont_idx_), self.cat_width_, self.n_bins,
                            self.n_patches or 2 * self.n_prototypes, self.n_prototypes,
                            self.hidden_dim)
        xc, xk = self._encode(X)
        if self.bin_init == "quantile" and xc.shape[1]:
            # centres at the training quantiles (b + 1/2) / B instead of N(0, 1): no two
            # centres start together, and every bin starts with rows in it
            q = torch.tensor([(b + 0.5) / self.n_bins for b in range(self.n_bins)])
            with torch.no_grad():
                net.bin_centers.copy_(torch.quantile(xc, q, dim=0).T)
        yt = torch.from_numpy(y)
        if self.class_weight == "balanced":
            counts = np.bincount(y, minlength=2).astype(np.float64)
            w = np.where(counts > 0, len(y) / (2 * np.maximum(counts, 1)), 0.0)
            weight = torch.tensor(w, dtype=torch.float32)
        else:
            weight = None
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)

        # phase 1: soft bins, all losses; annealed towards hard bins (module docstring)
        for e in range(self.epochs[0]):
            if self.anneal:
                net.temperature = 0.05 ** (e / max(1, self.epochs[0] - 1))
            self._train(net, opt, xc, xk, yt, weight, 1, g, penalties=True, val=None)
        # phase 2: hard bins, bins frozen, CE only; hard parts from here on when annealing
        net.hard_binning = True
        net.hard_parts = self.anneal
        net.bin_centers.requires_grad_(False)
        net.sigma.requires_grad_(False)
        self._train(net, opt, xc, xk, yt, weight, self.epochs[1], g, penalties=False, val=val)
        # phase 3: hard parts; each prototype becomes the nearest real training part, masks
        # frozen; the encoder and the head train (module docstring)
        net.hard_parts = True
        self._push(net, xc, xk, X, y)
        net.patches.requires_grad_(False)
        net.prototypes.requires_grad_(False)
        self._train(net, opt, xc, xk, yt, weight, self.epochs[2], g, penalties=False, val=val)
        self._normalise(net, xc, xk)
        net.eval()
        self.net_ = net
        return self

    def _fit_coding(self, X: np.ndarray) -> None:
        n_feat = X.shape[1]
        if self.categorical == "auto":
            cat = [i for i in range(n_feat)
                   if np.all(X[:, i] == np.round(X[:, i]))
                   and len(np.unique(X[:, i])) <= self.max_categories]
        elif self.categorical is None:
            cat = []
        else:
            cat = sorted({int(i) for i in self.categorical})
            if any(i < 0 or i >= n_feat for i in cat):
                raise ValueError(f"MEDIC.categorical={self.categorical!r} names features "
                                 f"outside 0..{n_feat - 1}")
        self.cat_idx_ = cat
        self.cont_idx_ = [i for i in range(n_feat) if i not in cat]
        self.cat_values_ = [np.unique(X[:, i]).tolist() for i in cat]
        self.cat_width_ = sum(len(v) for v in self.cat_values_)
        self.scaler_ = Standardizer.fit(X[:, self.cont_idx_])

    def _encode(self, X: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """:return: standardised continuous features [n, Fc], one-hot categoricals [n, W]"""
        xc = self.scaler_(X[:, self.cont_idx_])
        hots = []
        for i, vals in zip(self.cat_idx_, self.cat_values_, strict=True):
            v = np.asarray(vals, np.float32)
            # an unseen value is coded as the nearest seen one
            hots.append(np.eye(len(v), dtype=np.float32)[np.abs(X[:, i, None] - v).argmin(1)])
        xk = np.concatenate(hots, 1) if hots else np.zeros((len(X), 0), np.float32)
        return xc, torch.from_numpy(xk)

    def _train(self, net, opt, xc, xk, y, weight, epochs, g, penalties, val) -> None:
        best, best_loss = None, np.inf
        n = len(y)
        for _ in range(epochs):
            net.train()
            for idx in torch.randperm(n, generator=g).split(self.batch_size):
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(net(xc[idx], xk[idx]), y[idx], weight=weight)
                if penalties:
                    loss = loss + self.l1 * net.l1_term() + self.diversity * net.diversity_term()
                if not torch.isfinite(loss):
                    raise FloatingPointError("MEDIC training diverged (non-finite loss); "
                                             "lower lr")
                loss.backward()
                opt.step()
            if val is not None:
                net.eval()
                with torch.no_grad():
                    vl = float(F.cross_entropy(net(val[0], val[1]), val[2], weight=weight))
                if vl < best_loss:
                    best_loss, best = vl, copy.deepcopy(net.state_dict())
        if best is not None:
            net.load_state_dict(best)

    @torch.no_grad()
    def _push(self, net: _MedicNet, xc, xk, X: np.ndarray, y: np.ndarray) -> None:
        """Replace each prototype by the nearest real training part that is not empty.

        An empty part (no entry above eps) would be a rule without antecedents: f(0) is
        matched exactly by every row that has an empty part of its own, so a prototype
        there explains nothing and, with hard parts, can make every row look alike."""
        best_d = torch.full((net.prototypes.shape[0],), np.inf)
        best_row = torch.zeros(net.prototypes.shape[0], dtype=torch.long)
        best_patch = torch.zeros_like(best_row)
        for idx in torch.arange(len(X)).split(1024):
            parts = net.parts(net.binned(xc[idx], xk[idx]))  # [b, J, E]
            f = net.encoder(parts)  # [b, J, h]
            d = torch.cdist(f.flatten(0, 1), net.prototypes)  # [b*J, K]
            empty = (parts <= EPS).all(-1).flatten()
            d = torch.where(empty[:, None], torch.inf, d)
            dmin, arg = d.min(0)
            better = dmin < best_d
            best_d = torch.where(better, dmin, best_d)
            best_row = torch.where(better, idx[arg // f.shape[1]], best_row)
            best_patch = torch.where(better, arg % f.shape[1], best_patch)
        if not torch.isfinite(best_d).all():
            raise ValueError("MEDIC: every training part is empty, so there is nothing to "
                             "project the prototypes onto; lower l1 or use more patches")
        parts = net.parts(net.binned(xc[best_row], xk[best_row]))  # [K, J, E]
        parts = parts[torch.arange(len(best_row)), best_patch]  # [K, E]
        net.proto_parts.copy_(parts)
        net.pushed.fill_(True)
        self.prototype_rows_ = best_row.numpy()
        self.prototype_patches_ = best_patch.numpy()
        self.prototype_X_ = X[self.prototype_rows_]
        self.prototype_y_ = y[self.prototype_rows_]

    @torch.no_grad()
    def _normalise(self, net: _MedicNet, xc, xk) -> None:
        """max_distance = max(1, largest training distance), as the authors' running maximum
        ends up; the head is rescaled so that the logits do not change."""
        protos = net.prototype_vectors()
        dmax = torch.tensor(1.0)
        for idx in torch.arange(len(xc)).split(1024):
            f = net.encoder(net.parts(net.binned(xc[idx], xk[idx])))
            d = torch.cdist(f, protos[None].expand(f.shape[0], -1, -1))
            dmax = torch.maximum(dmax, d.max())
        net.max_distance.copy_(dmax)
        net.head.weight.mul_(dmax)

    @property
    def prototype_parts_(self) -> np.ndarray:
        """[K, E] each prototype's real training part (P_j * z(x_r), hard)."""
        return self.net_.proto_parts.numpy()

    # --- prediction --------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise ValueError("this MEDIC is not fitted yet: call fit(X, y) first")

    def predict_proba(self, X) -> np.ndarray:
        """:param X: [n, features]; :return: [n, 2] float class probabilities"""
        return torch.softmax(torch.from_numpy(self.logits(X)), -1).numpy()

    def predict(self, X) -> np.ndarray:
        """:return: [n] int64"""
        return self.predict_proba(X).argmax(1)

    # --- explanations ------------------------------------------------------------------------

    def intervals(self) -> dict[str, list[str]]:
        """The learned discretisation, per feature, in the feature's own units."""
        self._check_fitted()
        out: dict[str, list[str]] = {}
        for (f, _), c in zip(self._entries(), self._antecedents(), strict=True):
            out.setdefault(self.feature_names_[f], []).append(c)
        return out

    def _entries(self) -> list[tuple[int, int]]:
        """(feature index, bin or value index) of each column of z."""
        ent = [(f, b) for f in self.cont_idx_ for b in range(self.n_bins)]
        return ent + [(f, v) for f, vals in zip(self.cat_idx_, self.cat_values_, strict=True)
                      for v in range(len(vals))]

    def bin_edges(self) -> dict[str, np.ndarray]:
        """The learned hard bins of each continuous feature in its own units: [B + 1] edges
        from -inf to inf, bin b being (edges[b], edges[b + 1]] (midpoints between the sorted
        centres; a row exactly on one goes to the lower bin, as argmin does)."""
        self._check_fitted()
        return dict(zip((self.feature_names_[f] for f in self.cont_idx_), self._edges(),
                        strict=True))

    def _edges(self) -> list[np.ndarray]:
        """bin_edges in the order of cont_idx_"""
        mu = self.net_.sorted_centers().detach().numpy()
        c = mu * self.scaler_.std[:, None] + self.scaler_.mean[:, None]  # [Fc, B]
        return [np.concatenate([[-np.inf], (r[1:] + r[:-1]) / 2, [np.inf]]) for r in c]

    def bin_codes(self, X) -> np.ndarray:
        """The discretisation every prototype rule is written in, per row.

        :param X: [n, features]
        :return: [n, features] int64: a continuous feature's hard bin (see `bin_edges`), a
            categorical one's index into its seen values (an unseen value: the nearest)"""
        self._check_fitted()
        X = check_X(X, self.n_features_in_)
        xc, xk = self._encode(X)
        with torch.no_grad():
            z = self.net_.binned(xc, xk).numpy()  # hard: one-hot per feature
        codes = np.zeros(X.shape, np.int64)
        nc = len(self.cont_idx_) * self.n_bins
        codes[:, self.cont_idx_] = z[:, :nc].reshape(len(X), -1, self.n_bins).argmax(-1)
        start = nc
        for i, vals in zip(self.cat_idx_, self.cat_values_, strict=True):
            codes[:, i] = z[:, start:start + len(vals)].argmax(-1)
            start += len(vals)
        return codes

    def _antecedents(self) -> list[str]:
        out = []
        for f, edges in zip(self.cont_idx_, self._edges(), strict=True):
            out += [f"{self.feature_names_[f]} in ({edges[b]:.4g}, {edges[b + 1]:.4g})"
                    for b in range(self.n_bins)]
        for f, vals in zip(self.cat_idx_, self.cat_values_, strict=True):
            out += [f"{self.feature_names_[f]} = {v:g}" for v in vals]
        return out

    def prototype_rules(self) -> list[tuple[str, ...]]:
        """Each prototype's part as a rule (its antecedents above 0.1, as the paper prints)."""
        self._check_fitted()
        ante = self._antecedents()
        return [tuple(ante[e] for e in np.flatnonzero(p > RULE_THRESHOLD))
                for p in self.prototype_parts_]

    def explain(self, X, top_k: int = 3, rank_by: str = "similarity"
                ) -> list[MedicExplanation]:
        """Explain the prediction for each row by prototypes, each a real training row's part.

        :param X: [features] one row or [n, features]
        :param rank_by: "similarity" ranks the nearest prototypes first (the paper's printout);
            "evidence" ranks by the logit margin each adds for the predicted class, -(w_pred,k -
            w_other,k) * similarity_k, so the prototypes that decided the prediction come first
        :return: n explanations; `str()` of each reads as a short report
        """
        X = self._explain_rows(X, rank_by)
        proba = torch.softmax(torch.from_numpy(self.logits(X)), -1)[:, 1].numpy()
        pred = (proba > 0.5).astype(np.int64)
        ante = self._antecedents()
        out = []
        for i, (own, cands) in enumerate(self.candidates(X, pred)):
            out.append(MedicExplanation(
                prediction=int(pred[i]), probability=float(proba[i]),
                conditions=tuple(ante[e] for e in sorted(own)),
                matches=tuple(pick_matches(cands, top_k, rank_by))))
        return out

    def _explain_rows(self, X, rank_by: str) -> np.ndarray:
        """`explain`'s checks: :return: X as [n, features] float32"""
        self._check_fitted()
        if rank_by not in ("similarity", "evidence"):
            raise ValueError(f"rank_by={rank_by!r} is not allowed: 'similarity' or 'evidence'")
        a = np.asarray(X, dtype=np.float32)
        return check_X(a[None] if a.ndim == 1 else a, self.n_features_in_)

    def logits(self, X) -> np.ndarray:
        """:param X: [n, features]; :return: [n, 2] float32 class logits"""
        self._check_fitted()
        X = check_X(X, self.n_features_in_)
        with torch.no_grad():
            return self.net_(*self._encode(X)).numpy()

    def candidates(self, X: np.ndarray, pred: np.ndarray, scale: float = 1.0,
                   member: int | None = None) -> list[tuple[set[int], list[PrototypeMatch]]]:
        """Every prototype as evidence for each row's prediction `pred` (the row's own hard
        entries and one `PrototypeMatch` per prototype, evidence times `scale`).

        :param X: [n, features] checked; :param pred: [n] the predicted class of each row
        """
        xc, xk = self._encode(X)
        net = self.net_
        with torch.no_grad():
            dist = net.distances(xc, xk)[0].numpy()  # [n, K]
            z = net.binned(xc, xk).numpy()  # hard: the row's own conditions
        w = net.head.weight.detach().numpy()  # [2, K]
        ante = self._antecedents()
        entries = self._entries()
        rules = [np.flatnonzero(p > RULE_THRESHOLD) for p in self.prototype_parts_]
        out = []
        for i in range(len(X)):
            own = set(np.flatnonzero(z[i] > 0.5).tolist())
            p = int(pred[i])
            evidence = scale * (w[p] - w[1 - p]) * (dist[i] - 1.0)  # [K]
            matches = []
            for k, r in enumerate(rules):
                feats = dict.fromkeys(self.feature_names_[entries[e][0]] for e in r)
                matches.append(PrototypeMatch(
                    prototype=k, train_row=int(self.prototype_rows_[k]),
                    patch=int(self.prototype_patches_[k]),
                    row_label=int(self.prototype_y_[k]), votes_for=int(np.argmin(w[:, k])),
                    similarity=float(1.0 - dist[i, k]), evidence=float(evidence[k]),
                    features=tuple(feats),
                    conditions=tuple(ante[e] for e in r),
                    matched=tuple(ante[e] for e in r if e in own), member=member))
            out.append((own, matches))
        return out

    # --- persistence -------------------------------------------------------------------------

    _HYPER = ("n_bins", "n_prototypes", "n_patches", "hidden_dim", "lr", "batch_size", "epochs",
              "l1", "diversity", "class_weight", "max_categories", "bin_init", "anneal")

    def save(self, path: str | Path) -> Path:
        """Write a safetensors + JSON model directory (atomic files)."""
        self._check_fitted()
        config = {"hyper": {k: getattr(self, k) for k in self._HYPER},
                  "feature_names": self.feature_names_, "n_features": self.n_features_in_,
                  "cat_idx": self.cat_idx_, "cat_values": self.cat_values_}
        tensors = {f"net.{k}": v for k, v in self.net_.state_dict().items()}
        tensors |= self.scaler_.tensors()
        tensors |= {"proto.rows": torch.from_numpy(self.prototype_rows_.astype(np.int64)),
                    "proto.patches": torch.from_numpy(self.prototype_patches_.astype(np.int64)),
                    "proto.X": torch.from_numpy(self.prototype_X_),
                    "proto.y": torch.from_numpy(self.prototype_y_.astype(np.int64))}
        return save_model_dir(path, "medic", config, tensors)

    @classmethod
    def load(cls, path: str | Path) -> MEDIC:
        """:raises ValueError: missing, corrupt or not a MEDIC directory"""
        meta, t = load_model_dir(path, "medic")
        hyper = dict(meta["hyper"])
        hyper["epochs"] = tuple(hyper["epochs"])
        m = cls(**hyper, categorical=meta["cat_idx"], feature_names=meta["feature_names"])
        m.feature_names_ = meta["feature_names"]
        m.n_features_in_ = meta["n_features"]
        m.cat_idx_ = meta["cat_idx"]
        m.cat_values_ = meta["cat_values"]
        m.cont_idx_ = [i for i in range(m.n_features_in_) if i not in m.cat_idx_]
        m.cat_width_ = sum(len(v) for v in m.cat_values_)
        m.scaler_ = Standardizer.from_tensors(t)
        net = _MedicNet(len(m.cont_idx_), m.cat_width_, m.n_bins,
                        m.n_patches or 2 * m.n_prototypes, m.n_prototypes, m.hidden_dim)
        net.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("net.")})
        net.hard_binning = net.hard_parts = True
        m.net_ = net.eval()
        m.prototype_rows_ = t["proto.rows"].numpy()
        m.prototype_patches_ = t["proto.patches"].numpy()
        m.prototype_X_ = t["proto.X"].numpy()
        m.prototype_y_ = t["proto.y"].numpy()
        return m
