"""Interpretable link-metadata models against the usual baselines, on one held-out table.

On the per-slot metadata dataset (`dmrx.explain.metadata`, --data, built with its
`build_dataset` if absent), for each label (block_error, should_adapt), on test:

- AUROC and accuracy (threshold 0.5) of MEDIC, HiCEM, logistic regression and
  HistGradientBoosting (scikit-learn). Hyperparameters come from small grids (or, with
  `--tune`, Optuna searches) scored by validation AUROC only; every model is trained on
  train with the same seed. All four minimise an unweighted loss (MEDIC's paper default
  `class_weight="balanced"` shifts its threshold; it is set to None here so accuracies
  compare). `--medic-members K` adds `medic_x<K>`: the chosen MEDIC config as a MEDIC of K
  members, logits averaged (`dmrx.explain.medic_ensemble`; why: `medic_members.py`).
- Uncertainty: rows of one simulated point or adaptation segment are strongly correlated, so
  standard errors come from a cluster bootstrap that resamples whole (run, scenario, SNR,
  jammer) groups of the test table.
- HiCEM: the accuracy of each concept (top and discovered sub-concepts), and task accuracy
  after intervening with the true values of 0, 1, 2, ... top-level concepts, in an order chosen
  greedily on val (each step adds the concept that most raises val accuracy).
- Interventions, why they help or not: each concept intervened alone (rows fixed / broken, val
  and test); whether the true concepts add held-out information to the features at all (the
  selected trees on features, features + true concepts, true concepts only); and an
  intervention policy chosen on val among training variants (RandInt p_int 0.25 as in the
  papers, p_int 0.5, IntCEM's intervention-aware task loss, anchors) x orders (greedy on val;
  concept uncertainty per row, `HiCEM.intervention_order`), whose test curve is the one the
  goal is judged on; every policy's val and test curves are kept.
- Concept Splitting of 'jammed' (on the block_error CEM's train embeddings, the paper's filter
  p > 0.5): the clusters found, against jammer_kind (contingency, purity, adjusted Rand index)
  and against a narrowband/wideband grouping of the kinds (`NARROWBAND`). The HiCEM reported is
  the one trained with those clusters as sub-concepts of 'jammed'; its sub-concepts are scored
  against the kind each cluster holds most of on train, and intervening on 'jammed' through its
  sub-concepts is compared with intervening on it directly.

Goals (issue #8): MEDIC and HiCEM within 0.02 AUROC of the gradient-boosted trees;
interventions raise task accuracy monotonically.

    python benchmarks/metadata_models.py [--data out/metadata] [--seed 0] [--quick] [--tag T]
        [--test-data DIR] [--tune N] [--tune-hicem] [--tune-labels should_adapt,...]

`--test-data DIR` scores on DIR/test.parquet (a build with another seed) instead of the test
table of --data; `--tune N` replaces the MEDIC and gradient-boosted-tree grids of the labels in
`--tune-labels` by an N-trial Optuna TPE search each, scored by val AUROC (MEDIC over its
paper's search space, `MEDIC_SPACE`; the trees over `GBT_SPACE`; with `--tune-hicem`, HiCEM
over `HICEM_SPACE` as well).

Session 11 (declared before running): the default dataset's should_adapt test holds 8
adaptation segments (cluster-bootstrap SE of MEDIC's AUROC gap 0.088, larger than the gap
itself), and its train split 96 points. A larger dataset on a fresh seed,
`dmrx metadata build --out out/metadata-big --seed 1 --points 384,128,128 --adapt-runs 12,6,6`
(4x the points, 3x the adaptation runs), is measured with
`python benchmarks/metadata_models.py --data out/metadata-big --seed 1 --tag big`; the goals
are judged exactly as `goals` computes them here (point estimates; the bootstrap beside them).
The default run stays beside it.

Session 12 (declared before running): the MEDIC paper tunes MEDIC on every dataset with an
Optuna search (100 trials over batch 16-256, lr 1e-5-1e-1, hidden_dim 2-16, n_prototypes
4-96); the 2-point n_bins grid above did not. Seen before declaring: on the big data's val
split only, an 18-trial TPE search over that space reached should_adapt val AUROC 0.787 (the
grid's MEDIC 0.741, the grid's trees 0.782); the big test split has been seen (session 11).
So the deciding measurement for should_adapt is
`python benchmarks/metadata_models.py --data out/metadata-big --test-data out/metadata-fresh2
--seed 1 --tune 30 --tune-labels should_adapt --tag big-tuned-fresh`: MEDIC and the trees each
get a 30-trial TPE search on val (the trees over learning_rate, max_leaf_nodes,
min_samples_leaf, l2_regularization, so the baseline is tuned as hard as MEDIC), and the test
table is a fresh build no model or person has looked at,
`dmrx metadata build --out out/metadata-fresh2 --seed 2 --points 0,0,128 --adapt-runs 0,0,12`
(same builder settings as the big data; 12 adaptation runs, 48 should-adapt segments). The
goals are judged as `goals` computes them. block_error keeps its grids: both models are
already within 0.02 there, and a MEDIC search on its 30 000 training rows would take ~2 h on
this machine. The interventions on the fresh test are a new measurement of the same
val-chosen policy procedure, reported as it comes out.

Session 12, second run (declared after seeing the first, results/
metadata_models-big-tuned-fresh.json): that run tuned the trees and MEDIC but left HiCEM on its
2-point grid, an unequal comparison of my making, and HiCEM's should-adapt gap to the tuned
trees came out 0.027. `... --tune 30 --tune-hicem --tune-labels should_adapt --tag
big-tuned-all-fresh` gives HiCEM the same 30-trial search. The test table is the same one and
has now been seen, so this run corrects the comparison; it is not a fresh measurement.
It was rerun with the same command after `chosen_test_steps` was added (each intervention
step's change with a cluster-bootstrap CI), which changes no other number.

Session 14 (declared before running; the tables below were being built, unseen, when this was
written): on should_adapt every model loses 0.11-0.17 AUROC from val to test, on the big
build's own test (same builder and seed as val: trees 0.782 -> 0.655) as on fresh2 (0.803 ->
0.690). The 6-run val and the 6- or 12-run tests are dominated by run-to-run variation, and all
models learn should_adapt from 12 training runs (48 segments). A researcher would first give
the adaptation label more runs, so the deciding measurement is made on larger adaptation data
built on new seeds:
`dmrx metadata build --out out/metadata-s14 --seed 3 --points 384,128,0 --adapt-runs 36,18,0`
(3x the training runs, the same points) and a test table no model or person has seen,
`dmrx metadata build --out out/metadata-s14-test --seed 4 --points 0,0,128 --adapt-runs 0,0,36`
(144 should-adapt segments, 3x fresh2's). Command:
`python benchmarks/metadata_models.py --data out/metadata-s14 --test-data out/metadata-s14-test
--seed 1 --tune 30 --tune-hicem --tune-labels should_adapt --tag s14-fresh`.
The goals are judged exactly as `goals` computes them, on this test; the earlier results
(big, big-tuned-fresh, big-tuned-all-fresh) stay beside it, and the note reports all of them.
Outcome (results/metadata_models-s14-fresh.json): should_adapt test AUROC trees 0.745, HiCEM
0.750 (gap -0.005, met), MEDIC 0.715 (gap 0.031, cluster-bootstrap 90 % CI 0.012-0.048, not
met); block_error gaps 0.005 (MEDIC) and 0.001 (HiCEM), met; the val-chosen intervention
curve on block_error is not monotonic (its 5th step loses 0.0016, CI -0.0028 to -0.0005), and
on should_adapt it is flat (every model predicts the majority class at 0.5).

Session 16 (declared before running; the tables below were being built, unseen): on every
table so far the true concepts add almost nothing the features lack (block_error trees on
features + true concepts vs features: +0.001 AUROC), and on val, intervening on one concept
with its true value lowers accuracy for 5 of the 6. One cause is in the data, not the models:
the six default scenarios tie mobility, delay spread and line of sight to the scenario. Those
three concepts take 4 joint values over the 6 scenarios (long delay spread only ever comes with
high mobility), so what a model learns of a concept it learns from a handful of scenario
configurations, confounded with everything else about them. A researcher who wants concept
effects varies the concepts independently: a factorial scenario set, TDL-A..E x delay spread
{30, 100, 300} ns x speed {3, 30, 120} km/h (45 scenarios, each built by the catalog from its
name), on fresh seeds:
`dmrx metadata build --out out/metadata-fac --seed 6 --points 384,128,0 --adapt-runs 0,0,0
--scenarios <the 45>` and `dmrx metadata build --out out/metadata-fac-test --seed 7 --points
0,0,128 --adapt-runs 0,0,0 --scenarios <the 45>`. Only block_error is measured (its
intervention curve is the one not monotonic; should_adapt needs adaptation runs, and its curve
was flat): `python benchmarks/metadata_models.py --data out/metadata-fac --test-data
out/metadata-fac-test --seed 1 --labels block_error --tag fac`. Judged exactly as `goals`
computes them: the val-chosen policy's test curve monotonic and not flat; the AUROC gaps of
MEDIC and HiCEM to the trees. Expected if the cause is the one above: the true concepts add to
the features (concept_informativeness) and single-concept interventions help on val. The
six-scenario results stay as they are; this run does not replace them.
Outcome (results/metadata_models-fac.json): not monotonic. The val-chosen policy (RandInt 0.5,
uncertainty order) goes 0.9510 -> 0.9529 on test with one dip at its 3rd step (-0.0004, 26
rows fixed, 29 broken, CI -0.0021 to +0.0012). The cause proposed above is not the one: with
the concepts varied independently, mobility and delay spread are predicted better (0.81 and
0.76, from 0.64 and 0.72) but the true concepts still add nothing the features lack (trees
+0.0003 AUROC), and intervening on long delay spread or LoS alone still lowers test accuracy.
AUROC gaps to the trees: MEDIC 0.007, HiCEM -0.0001 (both met).

Session 16, second (declared before running): a replication of session 14's deciding run on a
second fresh should-adapt test, built this session on seed 5 with the same settings and not
looked at (`dmrx metadata build --out out/metadata-s16-test --seed 5 --points 0,0,128
--adapt-runs 0,0,36`): `python benchmarks/metadata_models.py --data out/metadata-s14
--test-data out/metadata-s16-test --seed 1 --tune 30 --tune-hicem --tune-labels should_adapt
--tag s16-replica`. The models are session 14's (same code, data and seeds; their val scores
must come out identical, which checks that), so only the test differs. Reported beside
s14-fresh: each test's gaps and their mean. The goals are judged per test as `goals` computes
them; the issue's goal is not claimed from the mean of the two.
Outcome (results/metadata_models-s16-replica.json): every config tried reproduced its val
AUROC exactly, and the same configs were chosen. should_adapt test AUROC: trees 0.755, HiCEM
0.768 (gap -0.013, met), MEDIC 0.725 (gap 0.030, CI 0.005-0.051, not met): MEDIC's gap is the
same as on seed 4's test (0.031; mean of the two 0.030). block_error gaps 0.004 and 0.001
(met); its interventions are again not monotonic (steps 3 and 5 lose 0.0004 and 0.0006, each
CI spanning zero); should_adapt's curve is again flat.

Session 18: `metadata_seeds.py` refits the chosen MEDIC and tree configs of s16-replica with
training seeds 1-10 on rebuilt tables: MEDIC's should_adapt gap of the means is 0.031 and
0.050 on the two tests, so the gap above is MEDIC's, not the luck of its one training seed
(results/metadata_seeds-s18.json).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from _common import write
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dmrx.explain.hicem import ConceptSplit, HiCEM
from dmrx.explain.medic import MEDIC
from dmrx.explain.medic_ensemble import MEDICEnsemble
from dmrx.explain.metadata import CONCEPTS, FEATURES, LABELS, read_table, to_arrays

# jammers confined to part of the band vs those covering every subcarrier (robust/jammers.py)
NARROWBAND = ("tone", "multi-tone", "partial-band")
GOAL_AUROC_GAP = 0.02
BOOTSTRAP = 500
MEDIC_EPOCHS = (40, 30, 30)  # the paper's three phases (soft bins, hard bins, pushed)
HICEM_EPOCHS = 150


# MEDIC's own Optuna search space (Karolczak & Stefanowski's code: batch, lr, hidden_dim,
# n_prototypes); n_bins stays at the paper configs' 3
MEDIC_SPACE = {"batch_size": ("int", 16, 256), "lr": ("float", 1e-5, 1e-1),
               "hidden_dim": ("int", 2, 16, False), "n_prototypes": ("int", 4, 96)}
# scikit-learn HistGradientBoostingClassifier's main capacity and regularisation knobs
GBT_SPACE = {"learning_rate": ("float", 0.01, 0.3), "max_leaf_nodes": ("int", 4, 64),
             "min_samples_leaf": ("int", 5, 200), "l2_regularization": ("float", 1e-6, 10.0)}
# HiCEM's (CEM's) training knobs; p_int and the task-loss variants stay with the intervention
# policies below
HICEM_SPACE = {"concept_weight": ("float", 0.1, 10.0), "emb_size": ("int", 4, 32),
               "lr": ("float", 1e-4, 1e-2), "batch_size": ("int", 64, 512),
               "head_hidden": ("int", 16, 256)}


def _load(data: Path, seed: int, test_data: Path | None = None) -> dict:
    if not all((data / f"{s}.parquet").is_file() for s in ("train", "val", "test")):
        from dmrx.explain.metadata_build import build_dataset

        print(f"no dataset at {data}: building it (dmrx.explain.metadata_build.build_dataset)")
        build_dataset(data, seed=seed, workers=os.cpu_count() or 1)
    tables = {s: read_table(data / f"{s}.parquet") for s in ("train", "val", "test")}
    if test_data is not None:
        if not (test_data / "test.parquet").is_file():
            raise SystemExit(f"--test-data {test_data}: no test.parquet there (build it with "
                             "`dmrx metadata build --points 0,0,N --adapt-runs 0,0,R`)")
        _check_same_builder(data, test_data)
        tables["test"] = read_table(test_data / "test.parquet")
    return tables


def _check_same_builder(data: Path, test_data: Path) -> None:
    """The fresh test table must come from the same builder settings as train/val (only the
    seed and the counts may differ), or its scores would mix a distribution shift in."""
    a, b = (json.loads((d / "dataset.json").read_text()) if (d / "dataset.json").is_file()
            else None for d in (data, test_data))
    if a is None or b is None:
        raise SystemExit(f"--test-data: {data} or {test_data} has no dataset.json to compare")
    # torch_threads_per_task (builds since session 19 record it) changes float rounding in
    # the adaptation runs, not what the rows are drawn from
    free = {"seed", "num_points", "adapt_runs", "rows", "torch_threads_per_task"}
    diff = sorted(k for k in set(a) | set(b) if k not in free and a.get(k) != b.get(k))
    if diff:
        raise SystemExit(f"--test-data {test_data} was built with other settings than {data}: "
                         f"{diff}")


def _arrays(table, label: str):
    X, C, y = to_arrays(table, label)
    keep = table.column(label).to_numpy(zero_copy_only=False) >= 0
    kinds = np.asarray(table.column("jammer_kind").to_pylist(), dtype=object)[keep]
    return X, C, y, kinds


def jammed_split(tables: dict, seed: int, epochs: int = HICEM_EPOCHS
                 ) -> tuple[HiCEM, ConceptSplit]:
    """Concept Splitting of 'jammed' on the embeddings of all train rows of a block_error CEM
    (fit with `seed` on train, its best epoch kept on val): that CEM and the split, whose
    hierarchy HiCEM uses."""
    (X, C, y, _), (Xv, Cv, yv, _) = (_arrays(tables[s], "block_error") for s in ("train", "val"))
    cem = HiCEM(CONCEPTS, feature_names=FEATURES, epochs=epochs).fit(X, C, y, Xv, Cv, yv,
                                                                      seed=seed)
    return cem, cem.split_concept("jammed", X, k_range=(2, 8), seed=seed)


def hicem_model(cfg: dict, hierarchy, epochs: int = HICEM_EPOCHS) -> HiCEM:
    """HiCEM as this benchmark trains it, on `jammed_split`'s hierarchy."""
    return HiCEM(CONCEPTS, hierarchy=hierarchy, feature_names=FEATURES, epochs=epochs, **cfg)


def hicem_concepts(tables: dict, label: str, split: ConceptSplit) -> np.ndarray:
    """[train rows with `label` measured, concepts + sub-concepts]: the true concepts and the
    split's sub-concept pseudo-labels (which exist on train only)."""
    keep = tables["train"].column(label).to_numpy(zero_copy_only=False) >= 0
    return np.hstack([_arrays(tables["train"], label)[1], split.sub_labels[keep]])


def medic_model(cfg: dict, epochs: tuple[int, int, int] = MEDIC_EPOCHS, members: int = 1
                ) -> MEDIC | MEDICEnsemble:
    """MEDIC as this benchmark trains it: unweighted loss, batch 128 unless `cfg` (a grid
    point or MEDIC_SPACE's search, or `metadata_seeds.py --medic-class-weight`) sets them;
    with members > 1 a `MEDICEnsemble` of that many such MEDICs."""
    kw = dict(epochs=epochs, feature_names=FEATURES,
              **({"batch_size": 128, "class_weight": None} | cfg))
    return MEDIC(**kw) if members == 1 else MEDICEnsemble(members, **kw)


def _check_overrides(overrides, model: str, builder: str, sets: set[str], build,
                     fixed: tuple[str, ...] = ()) -> dict:
    """Hyperparameters to set over a chosen config, checked before any fit: a JSON object of
    the model's arguments, none of those `builder` sets itself (`sets`) or the caller names in
    `fixed`, with values `build(overrides)` accepts (it raises on a bad one).

    :raises ValueError, TypeError: naming the offending key or value"""
    if not isinstance(overrides, dict):
        raise ValueError(f"a JSON object of {model} hyperparameters")
    taken = sorted((sets | set(fixed)) & overrides.keys())
    if taken:
        raise ValueError(f"{taken} cannot be set here ({builder} or a flag of its own sets it)")
    build(overrides)
    return overrides


def check_medic_overrides(overrides, fixed: tuple[str, ...] = ()) -> dict:
    """MEDIC hyperparameters over a chosen config (`medic_bins.py --medic-set`,
    `medic_select.py --grid`), checked as `_check_overrides` says."""
    return _check_overrides(overrides, "MEDIC", "medic_model", {"epochs", "feature_names"},
                            lambda o: MEDIC(**o)._validate(), fixed)


def check_hicem_overrides(overrides, fixed: tuple[str, ...] = ()) -> dict:
    """HiCEM hyperparameters over a chosen config (`hicem_interventions.py --hicem-set`),
    checked as `_check_overrides` says (HiCEM validates its arguments when built)."""
    return _check_overrides(overrides, "HiCEM", "hicem_model",
                            {"concepts", "hierarchy", "feature_names", "epochs"},
                            lambda o: HiCEM(CONCEPTS, **o), fixed)


def _scores(y: np.ndarray, p: np.ndarray) -> dict:
    auroc = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")
    return {"auroc": auroc, "accuracy": float(((p >= 0.5) == y).mean())}


class _Selection:
    """Fits configs on train and keeps the one with the best val AUROC (`tried`: every one)."""

    def __init__(self, name: str, make, fit, d: dict):
        self.name, self.make, self.fit, self.d = name, make, fit, d
        self.tried: list[dict] = []
        self.best: tuple[object, dict] | None = None

    def score(self, cfg: dict) -> float:
        (X, C, y, _), (Xv, Cv, yv, _) = self.d["train"], self.d["val"]
        t0 = time.time()
        m = self.fit(self.make(cfg), X, C, y, Xv, Cv, yv)
        val = _scores(yv, m.predict_proba(Xv)[:, 1])
        self.tried.append({"config": cfg, "val": val, "fit_s": round(time.time() - t0, 1)})
        print(f"  {self.name} {cfg}: val AUROC {val['auroc']:.4f} ({time.time() - t0:.1f} s)",
              flush=True)
        if self.best is None or val["auroc"] > self.best[1]["val"]["auroc"]:
            self.best = (m, self.tried[-1])
        return val["auroc"]

    def result(self) -> tuple[object, dict, list]:
        return self.best[0], self.best[1]["config"], self.tried


def _select(name: str, grid: list[dict], make, fit, d: dict) -> tuple[object, dict, list]:
    """Fit each config of `grid` on train, keep the one with the best val AUROC."""
    sel = _Selection(name, make, fit, d)
    for cfg in grid:
        sel.score(cfg)
    return sel.result()


def _tune(name: str, space: dict, n_trials: int, seed: int, make, fit,
          d: dict) -> tuple[object, dict, list]:
    """`_select` over the configs of an Optuna TPE search of `n_trials` trials over `space`
    ({param: (kind, low, high[, log])}, log-uniform unless log=False) instead of a grid."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sel = _Selection(name, make, fit, d)

    def objective(trial):
        return sel.score({k: (trial.suggest_int if v[0] == "int" else trial.suggest_float)(
            k, v[1], v[2], log=v[3] if len(v) > 3 else True) for k, v in space.items()})

    optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(
        seed=seed)).optimize(objective, n_trials=n_trials)
    return sel.result()


def _split_report(split, kinds: np.ndarray) -> dict:
    on = split.labels >= 0
    lab, kd = split.labels[on], kinds[on]
    band = np.where(np.isin(kd, NARROWBAND), "narrowband",
                    np.where(kd == "none", "none", "wideband"))
    table = {f"{split.concept}/{j}": {str(k): int(((lab == j) & (kd == k)).sum())
                                      for k in sorted(set(kd))} for j in range(split.k)}
    majority = {j: max(table[f"{split.concept}/{j}"].items(), key=lambda t: t[1])[0]
                for j in range(split.k)}
    purity = sum(max(v.values()) for v in table.values()) / max(1, on.sum())
    share = {str(k): {c: round(v[str(k)] / max(1, int((kd == k).sum())), 3)
                      for c, v in table.items()} for k in sorted(set(kd))}
    return {
        "rows_split": int(on.sum()), "k": split.k,
        "silhouette_by_k": split.silhouette_by_k,
        "sizes": dict(zip(split.sub_concepts, split.sizes, strict=True)),
        "cluster_x_jammer_kind": table,
        "share_of_each_kind_by_cluster": share,
        "majority_kind": {f"{split.concept}/{j}": k for j, k in majority.items()},
        "purity_vs_kind": float(purity),
        "ari_vs_kind": float(adjusted_rand_score(kd, lab)),
        "ari_vs_narrow_wide": float(adjusted_rand_score(band, lab)),
        "note": "rows are those the CEM predicts jammed; 'none' counts its false positives",
    }, majority


def _groups(table, label: str) -> np.ndarray:
    """[n] group id of each labelled row: slots of one simulated point or one adaptation
    segment share (run, scenario, SNR, jammer), and are far from independent."""
    keep = table.column(label).to_numpy(zero_copy_only=False) >= 0
    keys = list(zip(*(table.column(c).to_pylist()
                      for c in ("run", "scenario", "snr_db", "jammer_kind")), strict=True))
    ids = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    return np.asarray([ids[k] for k in keys])[keep]


def _cluster_bootstrap(stat, groups: np.ndarray, seed: int, n: int = BOOTSTRAP) -> dict:
    """Standard error and 90 % interval of stat(rows) when whole groups are resampled."""
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    members = [np.flatnonzero(groups == g) for g in uniq]
    vals = []
    for _ in range(n):
        pick = rng.integers(len(uniq), size=len(uniq))
        v = stat(np.concatenate([members[i] for i in pick]))
        if np.isfinite(v):
            vals.append(v)
    vals = np.asarray(vals)
    return {"se": float(vals.std(ddof=1)), "ci90": [float(np.quantile(vals, 0.05)),
                                                     float(np.quantile(vals, 0.95))],
            "groups": int(len(uniq)), "resamples": int(len(vals))}


def _auc(y, p) -> float:
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def _sub_truth(C: np.ndarray, kinds: np.ndarray, majority: dict) -> np.ndarray:
    """Each discovered sub-concept's 'true' value: jammed by the kind its cluster holds most."""
    j = CONCEPTS.index("jammed")
    return np.stack([(C[:, j] == 1) & (kinds == majority[s]) for s in sorted(majority)],
                    1).astype(np.float32)


def _greedy_order(m: HiCEM, X, C, y) -> list[str]:
    order, left = [], list(CONCEPTS)
    while left:
        def acc(c, order=order):
            iv = {n: C[:, CONCEPTS.index(n)] for n in [*order, c]}
            return (m.predict(X, iv) == y).mean()

        best = max(left, key=acc)
        order.append(best)
        left.remove(best)
    return order


def _intervention_curve(m: HiCEM, order, X, C, y) -> list[float]:
    return [float((m.predict(X, {n: C[:, CONCEPTS.index(n)] for n in order[:k]}) == y).mean())
            for k in range(len(order) + 1)]


def _curve_in_order(m: HiCEM, order, X, C, y) -> list[float]:
    """Task accuracy after intervening with the true values of the first k = 0..K top
    concepts of `order`: [K] one order for all rows, or [n, K] one per row (indices into
    CONCEPTS)."""
    return [float(h.mean()) for h in _hits_in_order(m, order, X, C, y)]


def _hits_in_order(m: HiCEM, order, X, C, y) -> np.ndarray:
    """[K + 1, n] bool: row i is predicted right after intervening on the first k concepts
    of `order` (as `_curve_in_order`)."""
    n, k_top = len(X), len(CONCEPTS)
    order = np.broadcast_to(np.asarray(order, np.int64), (n, k_top))
    rank = np.empty_like(order)
    rank[np.arange(n)[:, None], order] = np.arange(k_top)
    vals = np.zeros((n, m.n_concepts), np.float32)
    vals[:, :k_top] = C[:, :k_top]
    hits = []
    for k in range(k_top + 1):
        mask = np.zeros((n, m.n_concepts), bool)
        mask[:, :k_top] = rank < k
        hits.append(m.predict(X, (mask, vals)) == y)
    return np.stack(hits)


def _step_changes(hits: np.ndarray, groups: np.ndarray, seed: int) -> list[dict]:
    """Per intervention step k -> k+1: the accuracy change, the rows it fixes and breaks, and
    a cluster-bootstrap SE / 90 % CI of the change (is a dip more than sampling noise?)."""
    out = []
    for a, b in zip(hits[:-1], hits[1:], strict=True):
        delta = b.astype(float) - a
        out.append({"change": float(delta.mean()), "fixed": int((delta > 0).sum()),
                    "broken": int((delta < 0).sum()),
                    **_cluster_bootstrap(lambda i, delta=delta: delta[i].mean(), groups, seed)})
    return out


def _monotone(curve: list[float]) -> bool:
    return all(b >= a for a, b in zip(curve, curve[1:], strict=False))


def _policy_score(curve: list[float]) -> tuple:
    """How a val curve ranks (larger is better): its non-decreasing steps, then its worst
    step, then the accuracy with every concept intervened minus none."""
    steps = np.diff(curve)
    return (int((steps >= 0).sum()), float(steps.min()), float(curve[-1] - curve[0]))


def _single_interventions(m: HiCEM, X, C, y) -> dict:
    """Per top concept, intervening on it alone: accuracy change and the rows it fixed /
    broke."""
    p0 = m.predict(X)
    out = {}
    for i, c in enumerate(CONCEPTS):
        p1 = m.predict(X, {c: C[:, i]})
        out[c] = {"accuracy_change": float((p1 == y).mean() - (p0 == y).mean()),
                  "fixed": int(((p1 != p0) & (p1 == y)).sum()),
                  "broken": int(((p1 != p0) & (p0 == y)).sum())}
    return out


def _concept_informativeness(make_gbt, d: dict) -> dict:
    """Do the true concepts tell the task anything the features do not, on held-out rows? The
    selected gradient-boosted trees on the features alone, on features + all true concepts,
    and on the true concepts alone (train -> val, test)."""
    out = {}
    for name, cols in (("features", "x"), ("features+true_concepts", "xc"),
                       ("true_concepts_only", "c")):
        def f(split, cols=cols):
            Xs, Cs = d[split][0], d[split][1][:, :len(CONCEPTS)]
            return {"x": Xs, "xc": np.hstack([Xs, Cs]), "c": Cs}[cols]
        m = make_gbt().fit(f("train"), d["train"][2])
        out[name] = {s: _scores(d[s][2], m.predict_proba(f(s))[:, 1]) for s in ("val", "test")}
    return out


def _fit_hicem(m, X, C, y, Xv, Cv, yv, seed):
    return m.fit(X, C, y, Xv, Cv, yv, seed=seed)


def run(data: Path, seed: int, quick: bool, test_data: Path | None = None, tune: int = 0,
        tune_labels: tuple[str, ...] = (), tune_hicem: bool = False,
        labels: tuple[str, ...] = LABELS, medic_members: int = 1) -> dict:
    torch.manual_seed(seed)
    tables = _load(data, seed, test_data)
    meta = data / "dataset.json"  # the builder's arguments: which version of the data
    out: dict = {"data": str(data), "dataset": json.loads(meta.read_text())
                 if meta.is_file() else None, "seed": seed, "features": list(FEATURES),
                 "concepts": list(CONCEPTS), "labels": {}}
    if test_data is not None:
        out["test_data"] = str(test_data)
        out["test_dataset"] = json.loads((test_data / "dataset.json").read_text())
    out["tuning"] = {"trials": tune, "labels": list(tune_labels), "medic_space": MEDIC_SPACE,
                     "gbt_space": GBT_SPACE,
                     "hicem_space": HICEM_SPACE if tune_hicem else None} if tune else None
    medic_epochs = (10, 5, 5) if quick else MEDIC_EPOCHS
    hicem_epochs = 20 if quick else HICEM_EPOCHS

    # Concept Splitting of 'jammed', once, on the block_error CEM's embeddings of all train rows
    t0 = time.time()
    cem, split = jammed_split(tables, seed, hicem_epochs)
    split_report, majority = _split_report(split, _arrays(tables["train"], "block_error")[3])
    split_report["fit_and_split_s"] = round(time.time() - t0, 1)
    print(f"splitting: {split}", flush=True)
    out["concept_splitting"] = split_report

    for label in labels:
        print(f"== {label}", flush=True)
        d = {s: _arrays(t, label) for s, t in tables.items()}
        X, C, y, kinds = d["train"]
        Xv, Cv, yv, kv = d["val"]
        Xt, Ct, yt, kt = d["test"]
        res: dict = {"rows": {s: int(len(v[2])) for s, v in d.items()},
                     "positive_rate": {s: float(v[2].mean()) for s, v in d.items()},
                     "models": {}}

        def fit_plain(m, X, C, y, Xv, Cv, yv):
            return m.fit(X, y)

        models = {}
        models["logistic_regression"] = _select(
            "logreg", [{"C": c} for c in (0.01, 0.1, 1.0, 10.0)],
            lambda cfg: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, **cfg)),
            fit_plain, d)
        def make_gbt(cfg):
            return HistGradientBoostingClassifier(random_state=seed, **cfg)

        def fit_medic(m, X, C, y, Xv, Cv, yv):
            return m.fit(X, y, Xv, yv, seed=seed)

        def make_medic(cfg):
            return medic_model(cfg, medic_epochs)

        if tune and label in tune_labels:
            models["gradient_boosted_trees"] = _tune("gbt", GBT_SPACE, tune, seed, make_gbt,
                                                     fit_plain, d)
            models["medic"] = _tune(
                "medic", MEDIC_SPACE, tune, seed, make_medic, fit_medic, d)
        else:
            models["gradient_boosted_trees"] = _select(
                "gbt", [{"learning_rate": lr, "max_leaf_nodes": n}
                        for lr, n in itertools.product((0.05, 0.1), (15, 31))],
                make_gbt, fit_plain, d)
            models["medic"] = _select(
                "medic", [{"n_bins": b} for b in (3, 5)], make_medic, fit_medic, d)
        if medic_members > 1:  # the chosen config, as a MEDIC of several members
            members_cfg = models["medic"][1]
            models[f"medic_x{medic_members}"] = (fit_medic(
                medic_model(members_cfg, medic_epochs, medic_members), X, C, y, Xv, Cv, yv),
                members_cfg | {"members": medic_members}, [])
        # HiCEM with the discovered sub-concepts of 'jammed' (pseudo-labels on train only)
        hier = split.hierarchy
        Cs = hicem_concepts(tables, label, split)
        dh = {"train": (X, Cs, y, kinds), "val": (Xv, None, yv, kv)}
        def make_hicem(cfg, hier=hier):
            return hicem_model(cfg, hier, hicem_epochs)

        def fit_hicem(m, X, C, y, Xv, Cv, yv):
            return _fit_hicem(m, X, C, y, Xv, None, yv, seed)

        if tune and label in tune_labels and tune_hicem:
            models["hicem"] = _tune("hicem", HICEM_SPACE, tune, seed, make_hicem, fit_hicem, dh)
        else:
            models["hicem"] = _select("hicem", [{"concept_weight": w} for w in (1.0, 10.0)],
                                      make_hicem, fit_hicem, dh)
        for name, (m, cfg, tried) in models.items():
            res["models"][name] = {"config": cfg, "test": _scores(yt, m.predict_proba(Xt)[:, 1]),
                                   "tried": tried}
        gbt = res["models"]["gradient_boosted_trees"]["test"]["auroc"]
        compared = ("medic", "hicem", *(n for n in models if n.startswith("medic_x")))
        res["auroc_gap_to_gbt"] = {n: float(gbt - res["models"][n]["test"]["auroc"])
                                   for n in compared}
        groups = _groups(tables["test"], label)
        p = {n: m.predict_proba(Xt)[:, 1] for n, (m, _, _) in models.items()}
        res["auroc_gap_to_gbt_bootstrap"] = {
            n: _cluster_bootstrap(lambda i, n=n, yt=yt, p=p: _auc(
                yt[i], p["gradient_boosted_trees"][i]) - _auc(yt[i], p[n][i]), groups, seed)
            for n in (*compared, "logistic_regression")}

        medic: MEDIC = models["medic"][0]
        rules = medic.prototype_rules()
        res["medic_explanations"] = {
            "example_test_rows": [str(e) for e in medic.explain(Xt[:2], top_k=2,
                                                                  rank_by="evidence")],
            "prototype_rules": [" AND ".join(r) for r in rules],
            "mean_rule_length": float(np.mean([len(r) for r in rules])),
            "distinct_training_rows": int(len(set(medic.prototype_rows_.tolist()))),
        }
        h: HiCEM = models["hicem"][0]
        pc = h.predict_concepts(Xt)
        st = _sub_truth(Ct, kt, majority)
        truth = np.hstack([Ct, st])
        res["hicem_concept_accuracy"] = {
            n: float(((pc[:, i] > 0.5) == truth[:, i]).mean())
            for i, n in enumerate(h.concept_names)}
        res["hicem_concept_accuracy_note"] = (
            "sub-concepts scored against 'jammed by the kind its cluster holds most of on train' "
            f"({ {f'jammed/{j}': k for j, k in majority.items()} })")
        pcv = h.predict_concepts(Xv)
        res["hicem_concept_accuracy_val"] = {
            n: float(((pcv[:, i] > 0.5) == Cv[:, i]).mean()) for i, n in enumerate(CONCEPTS)}
        # why interventions help or hurt here: what the true concepts add to the features
        gbt_cfg = res["models"]["gradient_boosted_trees"]["config"]
        res["concept_informativeness"] = _concept_informativeness(
            lambda gbt_cfg=gbt_cfg: HistGradientBoostingClassifier(random_state=seed,
                                                                   **gbt_cfg), d)
        res["hicem_single_concept_interventions"] = {
            "val": _single_interventions(h, Xv, Cv, yv),
            "test": _single_interventions(h, Xt, Ct, yt)}
        # intervention policy chosen on val: training variant (RandInt as in the papers, a
        # higher p_int, IntCEM's intervention-aware task loss, anchors) x order (greedy on
        # val, concept uncertainty per row); test curves are reported for all, chosen on val
        hcfg = models["hicem"][1]
        variants = {"randint_p0.25": h}
        for vname, extra in (("randint_p0.5", {"p_int": 0.5}),
                             ("intervention_aware_loss", {"int_task_weight": 1.0}),
                             ("anchor", {"intervene_with": "anchor"})):
            variants[vname] = HiCEM(CONCEPTS, hierarchy=hier, feature_names=FEATURES,
                                    epochs=hicem_epochs, **hcfg, **extra).fit(
                X, Cs, y, Xv, None, yv, seed=seed)
        policies, test_hits = {}, {}
        for vname, mv in variants.items():
            g_order = [CONCEPTS.index(c) for c in _greedy_order(mv, Xv, Cv, yv)]
            for pname, ov, ot in (("greedy_on_val", g_order, g_order),
                                  ("uncertainty", mv.intervention_order(Xv),
                                   mv.intervention_order(Xt))):
                ht = test_hits[f"{vname}/{pname}"] = _hits_in_order(mv, ot, Xt, Ct, yt)
                cv_, ct_ = _curve_in_order(mv, ov, Xv, Cv, yv), [float(h.mean()) for h in ht]
                policies[f"{vname}/{pname}"] = {
                    "val": cv_, "test": ct_, "monotonic_on_val": _monotone(cv_),
                    "monotonic_on_test": _monotone(ct_), "val_score": _policy_score(cv_),
                    **({"order": [CONCEPTS[j] for j in g_order]} if pname == "greedy_on_val"
                       else {})}
        chosen = max(policies, key=lambda k: policies[k]["val_score"])
        res["hicem_intervention_policies"] = {
            "rule": "on val: most non-decreasing steps, then the largest worst step, then "
                    "all-minus-none accuracy (greedy orders are fitted on val, so their val "
                    "curves are optimistic)",
            "chosen_on_val": chosen, "chosen_test_curve": policies[chosen]["test"],
            "chosen_monotonic_on_test": policies[chosen]["monotonic_on_test"],
            "chosen_test_steps": _step_changes(test_hits[chosen], groups, seed),
            "policies": policies}
        print("intervention policies (val -> test):", {k: (v["val"][-1] - v["val"][0],
              v["test"][-1] - v["test"][0]) for k, v in policies.items()}, "chosen", chosen,
              flush=True)
        order = _greedy_order(h, Xv, Cv, yv)
        curve = _intervention_curve(h, order, Xt, Ct, yt)
        res["hicem_interventions"] = {
            "order_chosen_on_val": order,
            "test_accuracy_by_number_intervened": curve,
            "val_accuracy_by_number_intervened": _intervention_curve(h, order, Xv, Cv, yv),
            # on the rows it was trained on: whether intervention gains fail to generalise
            "train_accuracy_by_number_intervened": _intervention_curve(h, order, X, C, y),
            "monotonic_on_test": bool(all(b >= a for a, b in zip(curve, curve[1:],
                                                                  strict=False))),
        }
        full = {n: Ct[:, CONCEPTS.index(n)] for n in order}
        hit = (h.predict(Xt, full) == yt).astype(float) - (h.predict(Xt) == yt)
        res["hicem_interventions"]["all_minus_none_test_bootstrap"] = _cluster_bootstrap(
            lambda i, hit=hit: hit[i].mean(), groups, seed)
        jam = {"none": float((h.predict(Xt) == yt).mean()),
               "jammed_top_level": float((h.predict(Xt, {"jammed": Ct[:, CONCEPTS.index(
                   "jammed")]}) == yt).mean()),
               "jammed_via_sub_concepts": float((h.predict(Xt, {
                   s: st[:, i] for i, s in enumerate(split.sub_concepts)}) == yt).mean())}
        res["hicem_interventions"]["jammed_at_each_level_test_accuracy"] = jam
        res["flat_cem_for_splitting_test"] = _scores(yt, cem.predict_proba(Xt)[:, 1]) \
            if label == "block_error" else None
        out["labels"][label] = res
        print({n: v["test"] for n, v in res["models"].items()}, flush=True)
        print("interventions", order, [round(a, 4) for a in curve], flush=True)

    out["goals"] = {
        label: {"medic_within_0.02_auroc_of_gbt": r["auroc_gap_to_gbt"]["medic"]
                <= GOAL_AUROC_GAP,
                **{f"{n}_within_0.02_auroc_of_gbt": g <= GOAL_AUROC_GAP
                   for n, g in r["auroc_gap_to_gbt"].items() if n.startswith("medic_x")},
                "hicem_within_0.02_auroc_of_gbt": r["auroc_gap_to_gbt"]["hicem"]
                <= GOAL_AUROC_GAP,
                "interventions_monotonic_on_test": r["hicem_intervention_policies"][
                    "chosen_monotonic_on_test"],
                "intervention_policy_chosen_on_val": r["hicem_intervention_policies"][
                    "chosen_on_val"],
                # a flat curve is "monotonic" only because no intervention changed a prediction
                "intervention_curve_flat": len(set(r["hicem_intervention_policies"][
                    "chosen_test_curve"])) == 1}
        for label, r in out["labels"].items()}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("out/metadata"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="few epochs: a smoke run")
    ap.add_argument("--tag", default="", help="write metadata_models-<tag>.json")
    ap.add_argument("--test-data", type=Path, default=None,
                    help="score on DIR/test.parquet (same builder settings, another seed)")
    ap.add_argument("--tune", type=int, default=0,
                    help="N-trial Optuna search for MEDIC and the trees instead of grids")
    ap.add_argument("--tune-hicem", action="store_true",
                    help="--tune searches HiCEM's training knobs too (HICEM_SPACE)")
    ap.add_argument("--tune-labels", default=",".join(LABELS),
                    help=f"comma-separated labels --tune applies to (of {', '.join(LABELS)})")
    ap.add_argument("--labels", default=",".join(LABELS),
                    help=f"comma-separated labels to measure (of {', '.join(LABELS)}; "
                    "should_adapt needs a build with adaptation runs)")
    ap.add_argument("--medic-members", type=int, default=1,
                    help="also score the chosen MEDIC config as a MEDIC of this many members "
                    "(logits averaged, `medic_x<K>`; see medic_members.py)")
    args = ap.parse_args(argv)
    tune_labels = tuple(x for x in args.tune_labels.split(",") if x)
    labels = tuple(x for x in args.labels.split(",") if x)
    for flag, given in (("--tune-labels", tune_labels), ("--labels", labels)):
        unknown = sorted(set(given) - set(LABELS))
        if unknown:
            ap.error(f"{flag} {unknown} not in {list(LABELS)}")
    if not labels:
        ap.error("--labels: at least one label")
    if args.tune < 0:
        ap.error(f"--tune {args.tune}: a count >= 0")
    if args.medic_members < 1:
        ap.error(f"--medic-members {args.medic_members}: a positive integer")
    torch.set_num_threads(1)
    t0 = time.time()
    payload = run(args.data, args.seed, args.quick, args.test_data, args.tune, tune_labels,
                  args.tune_hicem, labels, args.medic_members)
    payload["elapsed_s"] = round(time.time() - t0, 1)
    write("metadata_models" + ("-quick" if args.quick else "")
          + (f"-{args.tag}" if args.tag else ""), payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
