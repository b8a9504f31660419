"""The same hyperparameter search without and with the training-health diagnosis
(`dmrx.nn.diagnosis`) in five arms: BTTackler's code rules (`dmrx tune --rules bttackler`),
those plus dmrx's passive-loss rule PL at 2 %, both with dmrx's adapted VG / NMG / SC late
(`--adapted-rules`), and those plus dmrx's VU and then TP rules (the last arm is `dmrx tune`'s
default rule set, 'dmrx'; each arm sets all its knobs, so it keeps its meaning whatever the
default is), and two arms with the median stopping rule (`--median-stop`, an accuracy rule, not
a diagnosis): after dmrx's rules, and alone: trials terminated (and what was diagnosed), wall
time saved, best BMD rate found, and time to reach the best BMD rate of the search without
diagnosis (BTTackler's headline metric), for several sampler seeds.

Per seed, all searches use the random sampler with that seed, so they draw the same
configurations in the same order and differ only in what the diagnosis stops; training is
seeded too, so a trial that is not stopped ends with the same BMD rate in both. Each trial has
20 epochs (steps / epoch_steps), the run length BTTackler's thresholds are set for. Its
protection of the best 10% of trials needs 10 other trials at the same epoch, so the budget is
20 trials. Goal (issue 9): at least 30% less time for an equal best result (per seed: the same
best trial with the same BMD rate). As in BTTackler, a stopped trial is scored as it was
trained so far and still competes for the best.

    python benchmarks/tune_diagnosis.py [--trials 20] [--steps 120] [--epoch-steps 6]
        [--seeds 1,2,3] [--arms a,b] [--tag T]   (--tag T writes tune_diagnosis-T.json)

Session 11 (declared before running): arm `adapted+pl+vu` on fresh sampler seeds 10-13, at
`dmrx tune`'s trial length, two processes at once (1 thread each):
`--steps 300 --epoch-steps 15 --seeds 10,11 --arms adapted+pl+vu --tag vu-seeds10-11` and the
same with `--seeds 12,13 --tag vu-seeds12-13`, pooled by `tune_diagnosis_pool.py --arm
adapted+pl+vu --tag pooled-vu-fresh`. The goal is met if the same best trial is kept in every
seed and the mean wall time saved over the 4 seeds is >= 30 % (CPU time saved reported
beside it). Disclosure: VU was designed after seeing seeds 1-9, where no trial with lr < 3e-4
came within 0.3 of the best BMD rate; its threshold, 1e-3, is the common rule of thumb, not
fitted. Replaying seeds 6-9's recorded trials with "lr < 1e-4 stops at epoch 2" as a stand-in
for VU (update ratios were not recorded then) gave 20-42 %, mean ~27 %: the outcome is open.

Session 13 (declared before running): arm `adapted+pl+vu+tp` on fresh sampler seeds 14-19,
`--steps 300 --epoch-steps 15 --arms adapted+pl+vu+tp`, two processes at once (1 thread each):
`--seeds 14,15,16 --tag tp-seeds14-16` and `--seeds 17,18,19 --tag tp-seeds17-19`, pooled by
`tune_diagnosis_pool.py --arm adapted+pl+vu+tp --tag tp-fresh`. The goal is met if the same
best trial is kept in every seed and the mean wall time saved over the 6 seeds is >= 30 % (CPU
time saved reported beside it). The health monitor is the fused one of this session
(`benchmarks/monitor_overhead.py`). Disclosure: TP was designed after seeing seeds 10-13, whose
plateau trials I reran with the monitor: the three that never left the LLR = 0 plateau (seed
11's trials 10, 11, 15) had update ratios of 1e-4 to 9e-4 from their 4th-5th epoch; the plateau
escapers of seeds 2, 3, 7 and 9 (seed 3's best among them) kept >= 1.2e-3 on their plateaus (the
closest, seed 3's trial 8, 1.21e-3, a thin margin: the threshold is VU's rule of thumb, not
fitted). Replayed on those reruns, TP would have stopped only seed 11's three, for about +27
points there and a mean over seeds 10-13 of ~31 %: the outcome on fresh seeds is open, and
turns on how many trials of a seed land on the plateau.
Outcome: the best kept in all six seeds, 22.8 % mean wall time saved (8.4-44.1 %), not met
(results/tune_diagnosis-pooled-tp-fresh.json).

Session 17 (declared before running): six seeds leave the mean saving uncertain (per-seed SD
12 points, so a 95 % interval of about 10-35 %, which holds 30 %), and the default rule set's
promise, that it never stops a search's best trial, rests on six seeds. Arm `adapted+pl+vu+tp`
(`dmrx tune`'s default) on fresh sampler seeds 20-35, `--steps 300 --epoch-steps 15`, in
chunks of two seeds (`--seeds 20,21 --tag tp-seeds20-21`, ...), two processes at once (1
thread each; one runs 20-27, the other 28-35, each in seed order). Chunks not finished by
10:35 UTC are left out (a sample size fixed by the clock, not by the results) and named in the
outcome. Pooled with seeds 14-19 by `tune_diagnosis_pool.py --arm adapted+pl+vu+tp --tag
tp-fresh-all`: the goal is met if every seed keeps its best and the mean wall time saved is
>= 30 %; the mean's standard error and CPU time saved are reported beside it.
Outcome: every chunk finished in time; the best kept in all 22 seeds (16 new), 23.3 +- 2.4 %
mean wall time saved (4.3-47.5 %; the 16 new seeds alone 23.5 %), CPU time the same: not
met, 30 % is 2.7 standard errors above the mean
(results/tune_diagnosis-pooled-tp-fresh-all.json).

Session 24 (declared before running). Where the rest of the time goes: over seeds 14-35 the
trials the diagnosis stops hold 29 % of the searches' time (25 % once their epochs before the
stop are counted), and trials that end more than 0.3 BMD below the best without any health
symptom hold another 25 % (slow learners, mostly lr 1e-4..2e-3 or width 8). No health rule
should stop those; an accuracy-based rule can, so arms `adapted+pl+vu+tp+ms` (dmrx's rule set
and the median stopping rule from half the run, `dmrx tune --median-stop 10`) and `ms` (the
median rule alone, no diagnosis) measure it. Design, on recorded curves only
(`tune_median_replay.py`, results/tune_median_replay-design-*.json): from epoch 0 / 3 / 5 / 8 /
10 the median rule alone would save 57 / 46 / 38 / 29 / 23 % on seeds 14-35 and stop the best
trial in 12 / 4 / 0 / 0 / 0 of 22 seeds (on seeds 1-13: in 2 / 1 / 1 / 0 / 0 of 13, seed 3's
best being a late plateau escaper); with the diagnosis's recorded stops 64 / 57 / 49 / 44 /
39 %, the best stopped in 12 / 6 / 1 / 0 / 0. Half the run (epoch 10), the most conservative
of those, is the arm's setting, fixed here. Run on fresh sampler seeds 36-43, `--steps 300
--epoch-steps 15 --arms adapted+pl+vu+tp+ms,ms`, two processes at once (1 thread each), in
chunks of two seeds: `--seeds 36,37 --tag ms-seeds36-37` then `--seeds 38,39 --tag
ms-seeds38-39` in one, `--seeds 40,41 --tag ms-seeds40-41` then `--seeds 42,43 --tag
ms-seeds42-43` in the other; chunks not finished by 03:05 UTC are left out and named. Pooled
by `tune_diagnosis_pool.py --arm adapted+pl+vu+tp+ms --tag ms-fresh` and `--arm ms --tag
ms-alone-fresh`. The benchmark's goal is met by an arm if every seed keeps its best trial with
the same BMD rate and the mean wall time saved is >= 30 % (CPU time saved and the SE beside
it). Whatever the outcome, issue 9 asks the 30 % of the diagnosis, and the median rule is not a
health diagnosis: the note reports what the combination saves and what the diagnosis alone
saves (23.3 % over seeds 14-35), and does not call the issue resolved on the combination.
Outcome: every chunk finished by 02:27 UTC. `adapted+pl+vu+tp+ms` kept the best trial in all
eight seeds and saved 30.7 +- 2.8 % of the wall time (16.4-42.5 %; CPU 30.6 +- 2.6 %): the
benchmark's goal is met, narrowly (30 % is within a quarter of a standard error of the mean).
The median rule alone (`ms`) kept every best too and saved 21.0 +- 2.1 % (its replay on the
same curves, without the monitor, 22.5 %, results/tune_median_replay-fresh-36-43.json); with
the diagnosis it stops 8-15 trials of 20 (results/tune_diagnosis-pooled-ms-fresh.json,
-pooled-ms-alone-fresh.json).
Extension (declared before running): eight seeds leave the mean within a quarter SE of 30 %.
The same two arms on fresh seeds 44-51, the same commands and chunks (`--seeds 44,45 --tag
ms-seeds44-45` then 46,47 in one process, 48,49 then 50,51 in the other), chunks not finished
by 03:40 UTC left out and named; pooled with seeds 36-43 (`--tag ms-fresh-all`,
`ms-alone-fresh-all`) for the mean and SE over all of them. Reported as measured; it does not
change what the note says about issue 9.
Outcome: chunks 44-45 and 48-49 finished (03:10 and 03:03 UTC); 46-47 and 50-51 were not run
(50-51 was stopped a minute in): at that pace they would have ended after 03:40, too late for
the session. Over the twelve seeds 36-45, 48, 49 `adapted+pl+vu+tp+ms` kept every best and
saved 33.9 +- 3.0 % of the wall time (16.4-56.4 %; CPU the same), the median rule alone 22.3 +-
1.5 % (results/tune_diagnosis-pooled-ms-fresh-all.json, -pooled-ms-alone-fresh-all.json).
Session 28 (declared before running): the two chunks left out, run on this session's machine
with the same commands, two processes at once (`--seeds 46,47 --tag ms-seeds46-47` in one,
`--seeds 50,51 --tag ms-seeds50-51` in the other); a chunk not finished by 10:30 UTC is left
out and named. Pooled with the six chunks above over all sixteen seeds (`--tag ms-fresh-16`,
`ms-alone-fresh-16`, the same files and these two). Each seed's saving is a ratio of two
searches on one machine, so seeds from two machines pool. Reported as measured; it does not
change what the note says about issue 9.
Outcome: both chunks finished (09:47 and 09:59 UTC; results/tune_diagnosis-ms-seeds46-47.json,
-ms-seeds50-51.json). `adapted+pl+vu+tp+ms` kept every best and saved 53.3, 51.4, 36.7 and
48.4 % on seeds 46, 47, 50, 51; over the sixteen seeds 37.3 +- 2.8 % (16.4-56.4 %; CPU the
same), the median rule alone 23.7 +- 1.5 % (results/tune_diagnosis-pooled-ms-fresh-16.json,
-pooled-ms-alone-fresh-16.json). The four new seeds ran on a faster machine (baselines 262-451
s against 436 s for seed 44) and save more in both arms (the median rule alone 27.8 % against
22.3 %); four seeds cannot separate the machine from the seeds.
So, declared before running: seeds 44 and 45 rerun on this machine, one process each
(`--seeds 44 --tag ms-seed44-here`, `--seeds 45 --tag ms-seed45-here`), against session 24's
37.8 / 24.7 % (+ms) and 27.7 / 23.1 % (ms alone) there; the same searches, so the trials'
BMD rates also show whether training reproduces across the two machines.
Outcome (results/tune_diagnosis-ms-seed{44,45}-here.json): both arms decide exactly as in
session 24 (the same trials stopped at the same steps, the same best trial kept; the trials'
BMD rates differ from the third decimal, at most 0.005), yet the wall time saved is 29.1 /
19.5 % (+ms) and 26.1 / 14.3 % (ms) here against 37.8 / 24.7 and 27.7 / 23.1 % there. For the
same decisions the saving moved by up to 9 points between the two runs (what a step costs in
the stopped trials against the others, on that machine at that moment; one rerun cannot tell
the machine from run-to-run noise), and this machine saved less, not more, on these seeds:
the four new seeds' larger savings are the seeds'. So the summaries now also give the
training steps saved, which neither machine nor load changes (`steps_saved_fraction`): the
health rules alone 26.3 +- 1.7 % over seeds 14-35 (wall 23.3 %), with the median rule 43.3
+- 1.9 % over seeds 36-51 (wall 37.3 %), the median rule alone 24.3 +- 1.5 % (wall 23.7 %)
(results/tune_diagnosis-pooled-tp-fresh-all.json, -pooled-ms{,-alone}-fresh-16.json, pooled
again with this code).
Declared before running: issue 9's own figure, the health rules alone (`adapted+pl+vu+tp`,
`dmrx tune`'s default rule set), on fresh sampler seeds 52-57, `--steps 300 --epoch-steps
15 --arms adapted+pl+vu+tp`, two processes at once (`--seeds 52,53,54 --tag tp-seeds52-54`,
`--seeds 55,56,57 --tag tp-seeds55-57`), a run not finished by 11:40 UTC left out and named;
pooled with seeds 14-35 over 28 seeds (`tune_diagnosis_pool.py --arm adapted+pl+vu+tp --tag
tp-fresh-28`): the wall time and the training steps saved, every best kept or not.
Outcome (results/tune_diagnosis-tp-seeds52-54.json, -tp-seeds55-57.json, finished 11:12 UTC;
-pooled-tp-fresh-28.json): every best kept on the six new seeds, which saved 8.0, 20.4, 31.6,
59.4, 29.4 and 19.9 % of the wall time (steps 22.5, 16.2, 31.2, 49.3, 25.0, 22.3 %); over
the 28 seeds 24.4 +- 2.4 % of the wall time (CPU 24.3 %) and 26.6 +- 1.6 % of the training
steps, every best kept: not met, 30 % is 2.1 standard errors above the steps saved.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch
from _common import write

from dmrx.scenarios.tune import SearchSpace, TuneConfig, TuneResult, tune


def _time_to_reach(r: TuneResult, target: float) -> float | None:
    """Seconds from the search's start until a trial first ended with a BMD rate >= target."""
    hits = [t["finished_s"] for t in r.trials if t["value"] is not None and t["value"] >= target]
    return min(hits) if hits else None


def _cpu_to_reach(r: TuneResult, target: float) -> float | None:
    """CPU seconds of the trials up to the first (trials run one after the other) that ended
    with a BMD rate >= target."""
    total = 0.0
    for t in sorted(r.trials, key=lambda t: t["number"]):
        total += t["cpu_s"]
        if t["value"] is not None and t["value"] >= target:
            return total
    return None


# arm -> its TuneConfig fields: BTTackler's code rules (the default), those plus dmrx's opt-in
# passive-loss rule, both with dmrx's adaptations of VG (to AdamW) and of NMG / SC late (to the
# epoch loss's sampling noise), and those plus dmrx's vanishing-update rule VU at the rule of
# thumb's 1e-3 (`nn.diagnosis.vanishing_updates`), and those plus dmrx's trivial-plateau rule TP
# (`nn.diagnosis.trivial_plateau`)
# (each arm names all four knobs on BTTackler's rule set, so an arm means what it meant when
# its results were recorded, whatever `dmrx tune`'s default rule set is)
_BT = {"rules": "bttackler", "passive_loss_drop": 0.0, "adapted_rules": False,
       "min_update_ratio": 0.0, "trivial_plateau": False}
ARMS = {"bttackler": _BT,
        "bttackler+pl": _BT | {"passive_loss_drop": 0.02},
        "adapted+pl": _BT | {"passive_loss_drop": 0.02, "adapted_rules": True},
        "adapted+pl+vu": _BT | {"passive_loss_drop": 0.02, "adapted_rules": True,
                                "min_update_ratio": 1e-3},
        "adapted+pl+vu+tp": _BT | {"passive_loss_drop": 0.02, "adapted_rules": True,
                                   "min_update_ratio": 1e-3, "trivial_plateau": True}}
# and the median stopping rule from half the run (`scenarios.tune.MedianStop`; "median_stop"
# is the fraction of the epochs before it starts): with dmrx's full rule set, and alone
ARMS["adapted+pl+vu+tp+ms"] = ARMS["adapted+pl+vu+tp"] | {"median_stop": 0.5}
ARMS["ms"] = {"diagnosis": False, "median_stop": 0.5}
GOAL_SAVED = 0.3  # issue 9: at least 30 % less time for an equal best result
ARM_TEXT = {
    "bttackler": "BTTackler's code rules (EG, VG, DR, SC, HO, NMG) (dmrx tune --rules "
                 "bttackler; its default until the dmrx set replaced it)",
    "bttackler+pl": "the same and dmrx's passive-loss rule (PL) at min_loss_drop 0.02 "
                    "(dmrx tune --passive-loss-drop)",
    "adapted+pl": "the same with VG judged against AdamW's epsilon and NMG / SC late against "
                  "the epoch losses' standard errors at z = 2 (dmrx tune --adapted-rules)",
    "adapted+pl+vu": "the same and dmrx's vanishing-update rule VU: median per-step update / "
                     "weight ratio < 1e-3 in the first 3 epochs (dmrx tune --min-update-ratio "
                     "1e-3)",
    "adapted+pl+vu+tp": "the same and dmrx's trivial-plateau rule TP: in the first half, the "
                        "update ratio < 1e-3 while the loss is still ln 2 (within 2 standard "
                        "errors) (dmrx tune --trivial-plateau): dmrx tune's default rule set, "
                        "--rules dmrx",
    "adapted+pl+vu+tp+ms": "the same and the median stopping rule MS from half the run: a "
                           "trial whose best BMD rate so far is below the median of the "
                           "finished trials' at the same step (Optuna's MedianPruner, 5 startup "
                           "trials; dmrx tune --median-stop 10): by accuracy, not health",
    "ms": "the median stopping rule alone, from half the run, no diagnosis (dmrx tune "
          "--no-diagnosis --median-stop 10)"}


def arm_fields(arm: str | None, args: argparse.Namespace) -> dict:
    """An arm's TuneConfig fields for this run (None: the search without diagnosis)."""
    fields = {"diagnosis": arm is not None} | ARMS.get(arm, {})
    fraction = fields.pop("median_stop", 0.0)
    return fields | {"median_stop_epoch": round(fraction * (args.steps // args.epoch_steps))}


def compare(plain: tuple, diag: tuple, to_best: tuple, args: argparse.Namespace) -> dict:
    """One diagnosed search against the search without diagnosis on the same seed.

    :param to_best: (wall, CPU) seconds the search without diagnosis took to its best"""
    (plain, _, cpu0), (diag, load1, cpu1) = plain, diag
    (t0, c0), b0, b1 = to_best, plain.best, diag.best
    same_best = (b0 is not None and b1 is not None and b0["number"] == b1["number"]
                 and b0["value"] == b1["value"])
    pruned = [t for t in diag.trials if t["state"] in ("stopped", "pruned")]
    t1 = _time_to_reach(diag, b0["value"]) if b0 else None
    c1 = _cpu_to_reach(diag, b0["value"]) if b0 else None
    symptoms = Counter(d.split(":")[0] for t in pruned for d in t["diagnosis"][:1])
    return {
        "elapsed_s": round(diag.elapsed_s, 1), "cpu_s": round(cpu1, 1),
        "best_bmd_rate": b1 and b1["value"], "best_trial": b1 and b1["number"],
        "time_to_baseline_best_s": t1 and round(t1, 1),
        "cpu_to_baseline_best_s": c1 and round(c1, 1),
        "trials_terminated": len(pruned),
        "trials_terminated_before_last_epoch": sum(t["steps"] < args.steps for t in pruned),
        "trials_protected": [t["number"] for t in diag.trials if t["protected_from"] is not None],
        "terminated_by_first_symptom": dict(symptoms),
        "steps_trained": sum(t["steps"] for t in diag.trials),
        "steps_budget": args.trials * args.steps,
        "load_avg_1min_before": load1,
        "time_saved_fraction": round(1.0 - diag.elapsed_s / plain.elapsed_s, 3),
        "cpu_saved_fraction": round(1.0 - cpu1 / cpu0, 3),
        "time_to_baseline_best_saved_fraction":
            None if t0 is None or t1 is None or t0 == 0 else round(1.0 - t1 / t0, 3),
        "cpu_to_baseline_best_saved_fraction":
            None if c0 is None or c1 is None or c0 == 0 else round(1.0 - c1 / c0, 3),
        "equal_best": same_best,
        "terminated": [{"trial": t["number"], "at_step": t["steps"], "params": t["params"],
                        "value": t["value"],
                        "value_without_diagnosis": next(
                            (p["value"] for p in plain.trials if p["number"] == t["number"]),
                            None),
                        "diagnosis": t["diagnosis"]} for t in pruned],
    }


def summarise(rs: list[dict]) -> dict:
    """One arm's per-seed `compare` results -> their lists, means and the goal of issue 9
    (every seed's best equal, mean wall time saved >= 30 %)."""
    saved = [r["time_saved_fraction"] for r in rs]
    cpu_saved = [r["cpu_saved_fraction"] for r in rs]
    # training steps not run: the same on any machine, where the wall time saved moves with
    # what a step costs in the stopped trials against the others (seeds 44-45, session 28)
    steps_saved = [round(1.0 - r["steps_trained"] / r["steps_budget"], 3) for r in rs]

    def se(v: list[float]) -> float | None:  # of the mean over seeds
        return round(statistics.stdev(v) / len(v) ** 0.5, 3) if len(v) > 1 else None

    return {
        "time_saved_fraction_per_seed": saved,
        "time_saved_fraction_mean": round(statistics.fmean(saved), 3),
        "time_saved_fraction_se": se(saved),
        "cpu_saved_fraction_per_seed": cpu_saved,
        "cpu_saved_fraction_mean": round(statistics.fmean(cpu_saved), 3),
        "cpu_saved_fraction_se": se(cpu_saved),
        "steps_saved_fraction_per_seed": steps_saved,
        "steps_saved_fraction_mean": round(statistics.fmean(steps_saved), 3),
        "steps_saved_fraction_se": se(steps_saved),
        "time_to_baseline_best_saved_fraction_per_seed": [
            r["time_to_baseline_best_saved_fraction"] for r in rs],
        "cpu_to_baseline_best_saved_fraction_per_seed": [
            r["cpu_to_baseline_best_saved_fraction"] for r in rs],
        "equal_best_per_seed": [r["equal_best"] for r in rs],
        "trials_terminated_per_seed": [r["trials_terminated"] for r in rs],
        "trials_terminated_before_last_epoch_per_seed": [
            r["trials_terminated_before_last_epoch"] for r in rs],
        "goal_met": all(r["equal_best"] for r in rs) and statistics.fmean(saved) >= GOAL_SAVED,
        "goal_met_per_seed": [r["equal_best"] and r["time_saved_fraction"] >= GOAL_SAVED
                              for r in rs],
    }


def run_seed(seed: int, args: argparse.Namespace, space: SearchSpace, tmp: Path) -> dict:
    runs = {}
    for arm in (None, *args.arms):
        cfg = TuneConfig(trials=args.trials, steps=args.steps, epoch_steps=args.epoch_steps,
                         sampler="random", seed=seed, space=space, **arm_fields(arm, args))
        load, c0 = os.getloadavg()[0], time.process_time()
        r = tune(cfg, tmp / f"seed{seed}-{arm or 'none'}", progress=False)
        cpu = time.process_time() - c0
        print(f"seed {seed}, diagnosis {arm}: {r.elapsed_s:.1f} s, CPU {cpu:.1f} s\n"
              f"{r.table()}", flush=True)
        runs[arm] = (r, load, cpu)
    plain, load0, cpu0 = runs[None]
    b0 = plain.best
    t0 = _time_to_reach(plain, b0["value"]) if b0 else None
    c0 = _cpu_to_reach(plain, b0["value"]) if b0 else None
    return {
        "seed": seed,
        "without_diagnosis": {"elapsed_s": round(plain.elapsed_s, 1), "cpu_s": round(cpu0, 1),
                              "best_bmd_rate": b0 and b0["value"],
                              "best_trial": b0 and b0["number"],
                              "time_to_best_s": t0 and round(t0, 1),
                              "cpu_to_best_s": c0 and round(c0, 1),
                              "load_avg_1min_before": load0},
        **{arm: compare(runs[None], runs[arm], (t0, c0), args) for arm in args.arms},
        "trials_without_diagnosis": plain.trials,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--epoch-steps", type=int, default=6)
    ap.add_argument("--seeds", default="1,2,3", help="comma-separated sampler (and training) seeds")
    ap.add_argument("--tag", default="", help="write tune_diagnosis-<tag>.json")
    ap.add_argument("--arms", default=",".join(ARMS),
                    help=f"comma-separated diagnosed arms, of {list(ARMS)}")
    args = ap.parse_args()
    args.arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if not args.arms or not set(args.arms) <= set(ARMS):
        ap.error(f"--arms {args.arms}: choose from {list(ARMS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    torch.set_num_threads(1)  # the machine is shared; keep both runs on equal footing
    space = SearchSpace()
    with tempfile.TemporaryDirectory() as tmp:
        per_seed = [run_seed(s, args, space, Path(tmp)) for s in seeds]
    cfg = TuneConfig(steps=args.steps, epoch_steps=args.epoch_steps)
    arms = {}
    for arm in args.arms:
        c = TuneConfig(steps=args.steps, epoch_steps=args.epoch_steps, **arm_fields(arm, args))
        arms[arm] = {"diagnosis_config": vars(c.diagnosis_thresholds()) if c.diagnosis else None,
                     "median_stop_epoch": c.median_stop_epoch} \
            | summarise([r[arm] for r in per_seed])
    write("tune_diagnosis" + (f"-{args.tag}" if args.tag else ""), {
        "benchmark": "tune_diagnosis",
        "setup": {"trials": args.trials, "steps_per_trial": args.steps,
                  "epoch_steps": args.epoch_steps, "epochs_per_trial": args.steps //
                  args.epoch_steps, "sampler": "random", "seeds": seeds,
                  "space": {k: list(v) for k, v in vars(space).items()},
                  "link": cfg.link, "scenario": list(cfg.scenarios), "snr_db": list(cfg.snr_db),
                  "arms": {arm: ARM_TEXT[arm] for arm in args.arms}},
        "goal": ">= 30% less wall time with diagnosis for an equal best BMD rate",
        "note": "wall times share 2 cores with other jobs (see load_avg); the CPU times of the "
                "benchmark's own process are the contention-free measure of the same runs",
        "arms": arms,
        "seeds": per_seed,
    })


if __name__ == "__main__":
    main()
