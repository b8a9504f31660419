"""Replay the diagnosis's loss rules on the training curves a `tune_diagnosis.py` run recorded
for its searches without diagnosis: which trials BTTackler's rules (optionally with PL) would
have stopped, where, and whether the search's best trial is among them. Only the curves are
recorded, so the rules that read gradients (VG, DR, EG's size tests) are left out and the
rules see no loss standard errors; protection is replayed as the pruner applies it.

It answers, on seeds that were not used to adapt the rules, whether the misfires that
`--adapted-rules` removes would have happened there too.

    python benchmarks/tune_diagnosis_replay.py --passive-loss-drop 0.02 --tag fresh \
        results/tune_diagnosis-adapted-seeds6-7.json results/tune_diagnosis-adapted-seeds8-9.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from _common import write

from dmrx.nn.diagnosis import DiagnosisConfig, EpochHealth, diagnose


def replay(trials: list[dict], steps: int, cfg: DiagnosisConfig) -> list[dict]:
    """Trials in order, each stopped at the first epoch where a rule fires on its curve."""
    values: dict[int, dict[int, float]] = {}
    protected: set[int] = set()
    out = []
    for t in sorted(trials, key=lambda t: t["number"]):
        n, history, stop = t["number"], [], None
        values[n] = {}
        for step, rate in t["curve"]:
            values[n][step] = rate
            history.append(EpochHealth(step, math.log(2.0) * (1.0 - rate), step / steps))
            others = [v[step] for m, v in values.items() if m != n and step in v]
            if n not in protected and cfg.protects(-rate, [-o for o in others]):
                protected.add(n)  # as the pruner: BMD rates ranked as losses
            found = diagnose(history, cfg, protected=n in protected)
            if found:
                stop = {"at_step": step, "diagnosis": found[0]}
                break
        out.append({"trial": n, "value": t["value"], "stopped": stop})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--passive-loss-drop", type=float, default=0.0)
    ap.add_argument("--tag", required=True, help="write tune_diagnosis-replay-<tag>.json")
    args = ap.parse_args()
    per_seed = []
    for path in args.runs:
        run = json.loads(path.read_text())
        steps, epochs = run["setup"]["steps_per_trial"], run["setup"]["epochs_per_trial"]
        cfg = DiagnosisConfig.for_epochs(epochs, min_loss_drop=args.passive_loss_drop)
        for s in run["seeds"]:
            trials = s["trials_without_diagnosis"]
            best = max(trials, key=lambda t: t["value"])
            rows = replay(trials, steps, cfg)
            stop = next(r["stopped"] for r in rows if r["trial"] == best["number"])
            per_seed.append({
                "seed": s["seed"], "run": str(path), "best_trial": best["number"],
                "best_stopped_before_last_epoch": stop is not None and stop["at_step"] < steps,
                "best_stopped": stop,
                "stopped": [r for r in rows if r["stopped"] is not None]})
    write(f"tune_diagnosis-replay-{args.tag}", {
        "benchmark": "tune_diagnosis_replay",
        "rules": "BTTackler's loss rules (SC early/late, HO, NMG) and PL if --passive-loss-drop "
                 "> 0, on recorded curves; gradient rules left out",
        "passive_loss_drop": args.passive_loss_drop,
        "seeds_whose_best_is_stopped": [s["seed"] for s in per_seed
                                        if s["best_stopped_before_last_epoch"]],
        "per_seed": per_seed})


if __name__ == "__main__":
    main()
