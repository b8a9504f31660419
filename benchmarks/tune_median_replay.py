"""Replay the median stopping rule (`dmrx.scenarios.tune.MedianStop`, Optuna's MedianPruner) on
the curves `tune_diagnosis.py` runs recorded for their searches without diagnosis: for each
first epoch of the rule, which trials it would have stopped and where, whether the search's
best trial is among them, and the share of the search's training time it would have saved
(each stopped trial's recorded seconds times the share of its steps not trained). With
`--with-arm A`, the trials arm A's diagnosis stopped are stopped there too (at the recorded
step), as `dmrx tune --median-stop` runs the two rules.

The rule decides on the recorded per-epoch BMD rates alone, and a training run is deterministic
given its seed, so its stops are exact for the rule alone. Approximations: the time saved
leaves out the health monitor's overhead and the wall-clock noise; with the diagnosis, a
trial the median rule stops stops reporting, which can change who the diagnosis protects (it
compares trials at the same epoch), so the diagnosis's recorded stops may differ there.

    python benchmarks/tune_median_replay.py --epochs 0,3,5,8,10 [--with-arm adapted+pl+vu+tp] \
        --tag T results/tune_diagnosis-tp-seeds14-16.json ...
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import optuna
from _common import write

from dmrx.scenarios.tune import MedianStop


def replay(trials: list[dict], from_step: int, stops: dict[int, int] | None = None
           ) -> dict[int, int]:
    """Trial number -> the step it stops at (trials in order; `stops`: forced stops)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", pruner=MedianStop(from_step))
    out, stops = {}, stops or {}
    for t in sorted(trials, key=lambda t: t["number"]):
        trial, forced = study.ask(), stops.get(t["number"])
        for step, rate in t["curve"]:
            trial.report(rate, step)
            if (forced is not None and step >= forced) or trial.should_prune():
                out[t["number"]] = step
                break
        study.tell(trial, t["value"])  # dmrx's stopped trials finish, scored as trained
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--epochs", default="0,3,5,8,10", help="first epochs of the rule")
    ap.add_argument("--with-arm", default=None, help="also stop where this arm's diagnosis did")
    ap.add_argument("--tag", required=True, help="write tune_median_replay-<tag>.json")
    args = ap.parse_args()
    epochs = [int(e) for e in args.epochs.split(",")]
    seeds, done = [], set()
    for path in args.runs:
        run = json.loads(path.read_text())
        steps, epoch_steps = run["setup"]["steps_per_trial"], run["setup"]["epoch_steps"]
        for s in run["seeds"]:
            if s["seed"] in done:
                raise SystemExit(f"seed {s['seed']} is in two runs")
            done.add(s["seed"])
            forced = None
            if args.with_arm:
                if args.with_arm not in s:
                    raise SystemExit(f"{path}: seed {s['seed']} has no arm {args.with_arm!r}")
                forced = {t["trial"]: t["at_step"] for t in s[args.with_arm]["terminated"]}
            seeds.append((s["seed"], s["trials_without_diagnosis"], steps, epoch_steps, forced))
    table = {}
    for e in epochs:
        per_seed = []
        for seed, trials, steps, epoch_steps, forced in seeds:
            stops = replay(trials, e * epoch_steps, forced)
            total = sum(t["seconds"] for t in trials)
            saved = sum(t["seconds"] * (1 - stops[t["number"]] / steps)
                        for t in trials if t["number"] in stops) / total
            best = max(trials, key=lambda t: t["value"])["number"]
            per_seed.append({"seed": seed, "saved_fraction": round(saved, 3),
                             "best_stopped": best in stops, "stops": stops})
        saved = [r["saved_fraction"] for r in per_seed]
        table[str(e)] = {
            "saved_fraction_mean": round(statistics.fmean(saved), 3),
            "saved_fraction_se": round(statistics.stdev(saved) / len(saved) ** 0.5, 3)
            if len(saved) > 1 else None,
            "seeds_whose_best_is_stopped": [r["seed"] for r in per_seed if r["best_stopped"]],
            "per_seed": per_seed}
    write(f"tune_median_replay-{args.tag}", {
        "benchmark": "tune_median_replay",
        "rule": "median stopping (dmrx.scenarios.tune.MedianStop: Optuna's MedianPruner, 5 "
                "startup trials) from each of --epochs, on the recorded curves of the searches "
                "without diagnosis" + (f", and the stops of arm {args.with_arm}"
                                       if args.with_arm else ""),
        "seeds": [s[0] for s in seeds], "by_first_epoch": table})


if __name__ == "__main__":
    main()
