"""Issue 8's intervention goal counted over every judged table, by the current verdict rule.

`hicem_interventions.py` judges one run's tables; the notes then count, over all judged runs,
on how many test tables the mean accuracy curve rises monotonically. This recomputes each
table's verdicts from the per-seed curves the runs recorded (so a fix to the rule, such as
session 27's tolerance for float rounding, applies to older runs too) and counts them per label,
so the count a note quotes comes from a script, not from reading files by hand.

    python benchmarks/hicem_interventions_count.py [--files F1,F2,...]

Per table: `monotonic`, `flat`, `auroc_monotonic` (hicem_interventions.table_summary), the mean
accuracy with no and with all concepts, and per training seed how many rows the all-concepts
intervention moves (the change of the expected accuracy x rows), since a should_adapt curve
that "rises" may do so by one row of one seed. Val is reported per file but never counted: it
chose the training variants.

Session 27's count (results/hicem_interventions_count.json): over the ten judged tests
(seeds 8-15, 17, 18), block_error rises monotonically on 7 (not on seeds 8, 11 and 17);
should_adapt on 3 by the rule, each by 1-3 rows of the same training seed (8), is flat on 5
and falls on 2 (by 2 and 24 rows of that seed). Sessions 23 and 26 had counted should_adapt
on 0 of 8 and on 1 of 9: session 23 read its two one-row rises as flat, which its own files
recorded as `monotonic`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _common import RESULTS, write
from hicem_interventions import CURVES, table_summary

# the judged runs, in the order they were declared (hicem_interventions.py's docstring);
# exploratory runs are not counted
JUDGED = ("s23-block_error", "s23-should_adapt", "s23-15-block_error", "s23-15-should_adapt",
          "s26-17-block_error", "s26-17-should_adapt", "s26-18-block_error",
          "s26-18-should_adapt")


def table_verdict(t: dict) -> dict:
    """One recorded table -> its verdicts by the current rule and what moved."""
    s = table_summary({k: t[k]["per_seed"] for k in CURVES})
    acc = np.asarray(t["accuracy"]["per_seed"], np.float64)  # [seeds, K + 1]
    rows = np.round((acc[:, -1] - acc[:, 0]) * t["rows"], 2)
    mean, auroc = s["accuracy"]["mean"], s["auroc"]["mean"]
    return {"rows": t["rows"], "monotonic": s["monotonic"], "flat": s["flat"],
            "flat_seeds": s["flat_seeds"], "auroc_monotonic": s["auroc_monotonic"],
            "accuracy_none_all": [mean[0], mean[-1]], "auroc_none_all": [auroc[0], auroc[-1]],
            "rows_moved_per_seed": rows.tolist()}


def count(files: list[Path]) -> dict:
    labels: dict[str, dict] = {}
    for f in files:
        run = json.loads(f.read_text())
        lab = labels.setdefault(run["label"], {"tables": {}, "val": {}})
        for name, t in run["tables"].items():
            v = table_verdict(t)
            if name == "val":
                lab["val"][f.name] = v
            elif name in lab["tables"]:
                raise ValueError(f"{name} is judged twice for {run['label']} ({f.name})")
            else:
                lab["tables"][name] = v | {"file": f.name, "commit": run["commit"]}
    for lab in labels.values():
        ts = lab["tables"].values()
        lab["count"] = {"tables": len(ts), "monotonic": sum(t["monotonic"] for t in ts),
                        "flat": sum(t["flat"] for t in ts),
                        "falls": sum(t["accuracy_none_all"][1] < t["accuracy_none_all"][0]
                                     and not t["flat"] for t in ts),
                        "auroc_monotonic": sum(bool(t["auroc_monotonic"]) for t in ts)}
    return labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", default=",".join(f"hicem_interventions-{j}.json" for j in JUDGED),
                    help="comma-separated result files (names under benchmarks/results/ or paths)")
    args = ap.parse_args()
    files = [Path(f) if Path(f).exists() else RESULTS / f for f in args.files.split(",") if f]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise SystemExit(f"no such result file: {', '.join(missing)}")
    labels = count(files)
    for name, lab in labels.items():
        print(f"{name}: {lab['count']}")
    write("hicem_interventions_count", {"files": [f.name for f in files], "labels": labels,
                                        "rule": "hicem_interventions.table_summary"})


if __name__ == "__main__":
    main()
