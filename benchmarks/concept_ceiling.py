"""What intervening on the true concepts can do for task accuracy at all: the concept-only
Bayes decision of each metadata table.

A perfect intervention on every concept hands a concept-bottleneck model the true concept
vector c; the best any decision made from c alone can then do is the Bayes rule "predict 1
where P(y = 1 | c) > 0.5", scored here on the table itself (in-sample: an upper bound for every
concept-only predictor, HiCEM's concept-only classifier included). Per table and label this
prints each concept combination's rows and P(y = 1 | c), and the accuracy of that bound
against the majority rate. Where no combination has P(y = 1 | c) > 0.5, no concept-only
decision at 0.5 beats "always 0", so interventions can raise the accuracy of a model that
also reads the features only by moving rows across 0.5 that the concepts alone never would.

    python benchmarks/concept_ceiling.py --tables out/metadata-s14-full/train.parquet,\
out/metadata-s14-test/test.parquet,... [--labels should_adapt,block_error] [--tag T]
"""

from __future__ import annotations

import argparse
from collections import defaultdict

from _common import write

from dmrx.explain.metadata import CONCEPTS, LABELS, read_table, to_arrays


def ceiling(C, y) -> dict:
    """Concept combinations of C [n, K] (0/1) with their rows and positive rate, and the
    accuracy of the in-sample Bayes decision on them."""
    groups: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for c, label in zip(map(tuple, C.astype(int).tolist()), y.tolist(), strict=True):
        groups[c][0] += 1
        groups[c][1] += label
    n, pos = len(y), int(y.sum())
    right = sum(max(k - p, p) for k, p in groups.values())
    return {
        "rows": n, "positive_rate": pos / n,
        "majority_accuracy": max(pos, n - pos) / n,
        "bayes_concept_accuracy": right / n,
        "combinations_with_positive_majority": sum(p > k - p for k, p in groups.values()),
        "max_positive_rate": max(p / k for k, p in groups.values()),
        "combinations": sorted(
            ({"concepts": [name for name, v in zip(CONCEPTS, c, strict=True) if v],
              "rows": k, "positive_rate": round(p / k, 4)} for c, (k, p) in groups.items()),
            key=lambda g: -g["rows"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tables", required=True, help="comma-separated metadata tables")
    ap.add_argument("--labels", default=",".join(LABELS))
    ap.add_argument("--tag", default="", help="write concept_ceiling-<tag>.json")
    args = ap.parse_args()
    tables = [t.strip() for t in args.tables.split(",") if t.strip()]
    labels = [x.strip() for x in args.labels.split(",") if x.strip()]
    out = {}
    for path in tables:
        table = read_table(path)
        out[path] = {}
        for label in labels:
            _, C, y = to_arrays(table, label)
            out[path][label] = ceiling(C, y)
    summary = {label: {
        "tables_where_concepts_beat_majority": sum(
            out[p][label]["bayes_concept_accuracy"] > out[p][label]["majority_accuracy"]
            for p in tables),
        "max_positive_rate_over_tables": max(out[p][label]["max_positive_rate"]
                                             for p in tables)} for label in labels}
    write("concept_ceiling" + (f"-{args.tag}" if args.tag else ""), {
        "benchmark": "concept_ceiling", "concepts": list(CONCEPTS), "tables": tables,
        "summary": summary, "per_table": out})


if __name__ == "__main__":
    main()
