"""`dmrx metadata build|train|explain` and the `--metadata` / `--gate` options of `dmrx
simulate` and `dmrx adapt`: parse, call `dmrx.explain.metadata*` and `dmrx.explain.gate`, print."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from dmrx.explain.metadata import (
    FEATURES,
    LABELS,
    MetadataRecorder,
    read_table,
    to_arrays,
)
from dmrx.explain.metadata_build import SPLITS, build_dataset
from dmrx.explain.metadata_fit import (
    MODELS,
    explain_rows,
    load_model,
    save_model,
    train_on_tables,
)

TABLE_SUFFIXES = (".parquet", ".csv")


def metadata_recorder(path: str | None, link, source: str, seed: int):
    """A recorder for `--metadata PATH` (None without it).

    :raises ValueError: a path that is not .parquet or .csv (before any simulation runs)
    """
    if path is None:
        return None
    if Path(path).suffix not in TABLE_SUFFIXES:
        raise ValueError(f"--metadata {path!r}: a .parquet or .csv file")
    return MetadataRecorder(link, run=f"{source} seed={seed}", source=source, seed=seed)


#: the gate `benchmarks/gated_adaptation.py` judged for issue 8 (`dmrx adapt --gate`'s
#: defaults): P(should_adapt) averaged over slots (weight 0.1 falling, 0.5 rising), open after 5
#: consecutive slots at or above the label's positive rate in the model's training table
GATE_DEFAULTS = {"threshold": "base-rate", "smoothing": 0.1, "attack": 0.5, "debounce": 5}


def gate_threshold(text: str) -> float | str:
    """The argparse type of `--gate-threshold`: 'base-rate' or a probability in (0, 1).

    :raises argparse.ArgumentTypeError: anything else
    """
    if text.strip() == "base-rate":
        return "base-rate"
    try:
        p = float(text)
    except ValueError:
        p = float("nan")
    if not 0.0 < p < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: a probability in (0, 1) or 'base-rate'")
    return p


def gate_adapters(receivers: dict, model_dir: str,
                  threshold: float | str = GATE_DEFAULTS["threshold"],
                  smoothing: float = GATE_DEFAULTS["smoothing"],
                  attack: float | None = GATE_DEFAULTS["attack"],
                  debounce: int = GATE_DEFAULTS["debounce"]) -> dict:
    """Every `OnlineAdapter` of `receivers` wrapped in a `GatedAdapter` with the saved model.

    :param threshold: a probability, or 'base-rate': the positive rate of should_adapt in the
        model's training table (saved by `dmrx metadata train --out`)
    :raises ValueError: the model is missing, was trained for another label, or has no saved
        positive rate for threshold='base-rate'
    """
    from dmrx.explain.gate import GatedAdapter
    from dmrx.nn.adapt import OnlineAdapter

    model, info = load_model(model_dir)
    if info.get("label") != "should_adapt":
        raise ValueError(f"--gate {model_dir!r} predicts {info.get('label')!r}; a gate needs a "
                         "model trained with --label should_adapt")
    if threshold == "base-rate":
        if "positive_rate" not in info:
            raise ValueError(f"--gate {model_dir!r} was saved without the positive rate of its "
                             "training table, so --gate-threshold base-rate is unknown: retrain "
                             "it with `dmrx metadata train --out`, or give a probability")
        threshold = info["positive_rate"]
    return {n: GatedAdapter(r, model, threshold=threshold, smoothing=smoothing,
                            attack=attack, debounce=debounce, features=info["features"])
            if isinstance(r, OnlineAdapter) else r for n, r in receivers.items()}


def _counts(text: str, what: str) -> dict[str, int]:
    """'96,32,32' -> {'train': 96, 'val': 32, 'test': 32}"""
    try:
        vals = [int(v) for v in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) != len(SPLITS) or min(vals) < 0:
        raise ValueError(f"--{what} {text!r}: three counts >= 0, train,val,test (e.g. 96,32,32)")
    return dict(zip(SPLITS, vals, strict=True))


def add_metadata_parser(sub) -> None:
    m = sub.add_parser("metadata", help="per-slot link metadata: build train/val/test tables, "
                       "train interpretable models on them, explain their predictions")
    msub = m.add_subparsers(dest="metadata_command", required=True)
    b = msub.add_parser("build", help="sweep scenarios x SNR x jammers x ADC x receivers and "
                        "adaptation runs into out/{train,val,test}.parquet")
    b.add_argument("--out", required=True, help="directory of the tables")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--slots-per-point", type=int, default=32)
    b.add_argument("--points", default="96,32,32", help="simulate points per split")
    b.add_argument("--adapt-runs", default="4,2,2", help="adaptation runs per split")
    b.add_argument("--segments", type=int, default=4, help="segments per adaptation run")
    b.add_argument("--segment-slots", type=int, default=120)
    b.add_argument("--scenarios", default=None, help="comma-separated (default: TDL-A..E, CDL-C)")
    b.add_argument("--receivers", default=None,
                   help="comma-separated, as dmrx simulate takes them (default: "
                        "neural=checkpoints/neural-ref-4prb-tdl-a,ls)")
    b.add_argument("--workers", type=int, default=None,
                   help="processes, one torch thread each (default: every core); the tables "
                        "do not depend on it")
    b.add_argument("--quick", action="store_true",
                   help="a small build for a smoke test (8 slots, 12/4/4 points, one short run)")
    b.add_argument("--no-progress", action="store_true")

    t = msub.add_parser("train", help="fit a metadata model on DATA/train.parquet, score it "
                        "on val and test")
    t.add_argument("--data", required=True, help="directory of dmrx metadata build")
    t.add_argument("--model", default="logreg", choices=list(MODELS))
    t.add_argument("--label", default="block_error", choices=list(LABELS))
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--members", type=int, default=1,
                   help="medic: average the logits of this many MEDICs trained with different "
                   "seeds (dmrx.explain.medic_ensemble; 4 closes MEDIC's gap to the trees)")
    t.add_argument("--out", default=None, help="save the model here (logreg, medic, hicem; gbt "
                   "is not saved: scikit-learn trees only pickle)")
    t.add_argument("--json", default=None, help="write the scores here")

    e = msub.add_parser("explain", help="why rows of a metadata table are predicted to fail "
                        "(or to need adaptation)")
    e.add_argument("--model", required=True, help="a saved model directory")
    e.add_argument("--table", required=True, help="a metadata table (.parquet or .csv)")
    e.add_argument("--rows", default="0:10", help="start:stop of the rows (of those where the "
                   "model's label is measured)")
    e.add_argument("--top-k", type=int, default=3)


def run_metadata(args: argparse.Namespace) -> int:
    return {"build": _build, "train": _train, "explain": _explain}[args.metadata_command](args)


def _build(args: argparse.Namespace) -> int:
    kw = {}
    if args.scenarios:
        kw["scenarios"] = tuple(s.strip() for s in args.scenarios.split(",") if s.strip())
    if args.receivers:
        kw["receivers"] = tuple(s.strip() for s in args.receivers.split(",") if s.strip())
    if args.quick:
        kw |= {"num_slots_per_point": 8, "num_points": {"train": 12, "val": 4, "test": 4},
               "adapt_runs": {"train": 1, "val": 1, "test": 1}, "adapt_segments": 2,
               "adapt_segment_slots": 20}
    else:
        kw |= {"num_slots_per_point": args.slots_per_point,
               "num_points": _counts(args.points, "points"),
               "adapt_runs": _counts(args.adapt_runs, "adapt-runs"),
               "adapt_segments": args.segments, "adapt_segment_slots": args.segment_slots}
    paths = build_dataset(args.out, seed=args.seed, progress=not args.no_progress,
                          workers=(os.cpu_count() or 1) if args.workers is None else args.workers,
                          **kw)
    for split, p in paths.items():
        t = read_table(p)
        n_adapt = int(np.sum(t.column("should_adapt").to_numpy() >= 0))
        # a split asked for with no points and no runs is an empty table: no BLER to print
        # (and no numpy "mean of empty slice" warning)
        bler = (f"{np.mean(t.column('block_error').to_numpy()):.3f}" if t.num_rows
                else "n/a (empty split)")
        print(f"{split:<6} {t.num_rows:>7d} rows ({n_adapt} with should_adapt), BLER {bler} "
              f"-> {p}")
    return 0


def _train(args: argparse.Namespace) -> int:
    if args.members < 1:
        raise ValueError(f"--members {args.members}: a positive integer")
    if args.members != 1 and args.model != "medic":
        raise ValueError(f"--members is for --model medic, not {args.model!r}")
    kw = {"members": args.members} if args.members != 1 else {}
    model, scores = train_on_tables(args.model, args.data, label=args.label, seed=args.seed,
                                    **kw)
    print(f"{args.model} on {args.label}:")
    for split, s in scores.items():
        print(f"  {split:<6} rows {s['rows']:>7d}  positive {s['positive_rate']:.3f}  "
              f"AUC {s['auc']:.3f}  accuracy {s['accuracy']:.3f}")
    if args.out:
        saved = save_model(model, args.out, label=args.label, features=FEATURES,
                           positive_rate=scores["train"]["positive_rate"])
        print(f"saved -> {saved}" if saved else f"{args.model} is not saved (scikit-learn "
              "trees have no format but pickle; it refits in seconds)")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "label": args.label,
                                               "data": args.data, "scores": scores}, indent=2))
        print(f"wrote {args.json}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    model, info = load_model(args.model)
    table = read_table(args.table)
    X, C, y = to_arrays(table, info["label"], features=info["features"])
    n = len(y)
    try:
        start, stop = (int(v) for v in args.rows.split(":"))
    except ValueError:
        raise ValueError(f"--rows {args.rows!r}: start:stop") from None
    if not 0 <= start < stop:
        raise ValueError(f"--rows {args.rows!r}: 0 <= start < stop")
    X, y = X[start:stop], y[start:stop]
    if len(X) == 0:
        raise ValueError(f"--rows {args.rows!r}: no row there ({n} rows with "
                         f"{info['label']!r} measured)")
    p = model.predict_proba(X)[:, 1]
    why = explain_rows(model, X, args.top_k)
    print(f"{info['kind']} predicting {info['label']}; row, P, true label, why:")
    for i, (pi, yi, w) in enumerate(zip(p, y, why, strict=True)):
        print(f"  {start + i:>6d}  {pi:.3f}  {int(yi)}  {w}")
    return 0
