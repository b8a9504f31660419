"""The same hyperparameter search with and without the training-health diagnosis: trials
terminated (and what was diagnosed), wall time saved, best BMD rate found.

Both searches use the random sampler with the same seed, so they draw the same configurations
and differ only in what the diagnosis stops. Goal: at least 30% less time for an equal best
result (the same best trial, i.e. the diagnosis never stopped the eventual winner).

    python benchmarks/tune_diagnosis.py [--trials 12] [--steps 200]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch
from _common import write

from dmrx.scenarios.tune import SearchSpace, TuneConfig, tune


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--epoch-steps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)  # the machine is shared; keep both runs on equal footing
    space = SearchSpace()
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for diagnosis in (False, True):
            cfg = TuneConfig(trials=args.trials, steps=args.steps, epoch_steps=args.epoch_steps,
                             sampler="random", seed=args.seed, diagnosis=diagnosis, space=space)
            load = os.getloadavg()[0]
            r = tune(cfg, Path(tmp) / f"diag-{diagnosis}", progress=False)
            print(r.table(), flush=True)
            runs[diagnosis] = (r, load)
    (plain, load0), (diag, load1) = runs[False], runs[True]
    saved = 1.0 - diag.elapsed_s / plain.elapsed_s
    b0, b1 = plain.best, diag.best
    same_best = b0 is not None and b1 is not None and b0["number"] == b1["number"]
    pruned = [t for t in diag.trials if t["state"] == "pruned"]
    write("tune_diagnosis", {
        "benchmark": "tune_diagnosis",
        "setup": {"trials": args.trials, "steps_per_trial": args.steps,
                  "epoch_steps": args.epoch_steps, "sampler": "random", "seed": args.seed,
                  "space": {k: list(v) for k, v in vars(space).items()},
                  "link": "ref-4prb", "scenario": "tdl-c-300ns-60kmh", "snr_db": [5.0, 20.0]},
        "goal": ">= 30% less wall time with diagnosis for an equal best BMD rate",
        "without_diagnosis": {"elapsed_s": round(plain.elapsed_s, 1),
                              "best_bmd_rate": b0 and b0["value"],
                              "best_trial": b0 and b0["number"],
                              "load_avg_1min_before": load0},
        "with_diagnosis": {"elapsed_s": round(diag.elapsed_s, 1),
                           "best_bmd_rate": b1 and b1["value"],
                           "best_trial": b1 and b1["number"],
                           "trials_terminated": len(pruned),
                           "steps_trained": sum(t["steps"] for t in diag.trials),
                           "steps_budget": args.trials * args.steps,
                           "load_avg_1min_before": load1},
        "terminated": [{"trial": t["number"], "at_step": t["steps"], "params": t["params"],
                        "diagnosis": t["diagnosis"]} for t in pruned],
        "time_saved_fraction": round(saved, 3),
        "equal_best": same_best,
        "goal_met": same_best and saved >= 0.3,
        "trials_without_diagnosis": plain.trials,
    })


if __name__ == "__main__":
    main()
