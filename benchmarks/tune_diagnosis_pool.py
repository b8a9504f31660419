"""Judge one arm of several `tune_diagnosis.py` runs (on different sampler seeds) together, as
the goal of issue 9 asks (`tune_diagnosis.summarise`, as a single run judges its seeds): every
seed keeps the same best trial with the same BMD rate, and the mean wall time saved over the
seeds is at least 30 %. Each seed's figures are those its run
recorded; CPU time saved (the contention-free measure) is listed beside the wall time.

    python benchmarks/tune_diagnosis_pool.py --arm adapted+pl --tag adapted-fresh \
        results/tune_diagnosis-adapted-seeds6-7.json results/tune_diagnosis-adapted-seeds8-9.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import write
from tune_diagnosis import summarise


def pool(runs: list[dict], arm: str) -> dict:
    """Per-seed figures of `arm` from every run, and the goal judged over all their seeds."""
    seeds, setups = [], set()
    for r in runs:
        if arm not in r["arms"]:
            raise SystemExit(f"a run ({r['command']}) has no arm {arm!r}: {list(r['arms'])}")
        s = r["setup"]
        setups.add((s["trials"], s["steps_per_trial"], s["epoch_steps"]))
        seeds += [x | {"_arm": x[arm]} for x in r["seeds"]]
    if len(setups) != 1:
        raise SystemExit(f"the runs' trials/steps/epoch_steps differ: {sorted(setups)}")
    numbers = [x["seed"] for x in seeds]
    if len(set(numbers)) != len(numbers):
        raise SystemExit(f"runs share a seed: {numbers}")
    per = {str(x["seed"]): {k: x["_arm"][k] for k in (
        "time_saved_fraction", "cpu_saved_fraction", "time_to_baseline_best_saved_fraction",
        "equal_best", "best_bmd_rate", "trials_terminated", "terminated_by_first_symptom")}
        | {"best_bmd_rate_without_diagnosis": x["without_diagnosis"]["best_bmd_rate"]}
        for x in seeds}
    return {"arm": arm, "seeds": numbers, "per_seed": per,
            **summarise([x["_arm"] for x in seeds])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--arm", required=True)
    ap.add_argument("--tag", required=True, help="write tune_diagnosis-pooled-<tag>.json")
    args = ap.parse_args()
    runs = [json.loads(p.read_text()) for p in args.runs]
    write(f"tune_diagnosis-pooled-{args.tag}", {
        "benchmark": "tune_diagnosis_pool", "runs": [str(p) for p in args.runs],
        "goal": ">= 30% less wall time (mean over seeds) with every seed's best equal",
        **pool(runs, args.arm)})


if __name__ == "__main__":
    main()
