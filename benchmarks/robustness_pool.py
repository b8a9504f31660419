"""Pool several `robustness.py` runs on different slot seeds and judge the issue-6 goal once, on
all their slots together.

One 1000-slot run resolves a BLER near 0.43 to about +-0.016 and a clean cost to about
+-0.1 dB, which is the size of the goal's margins; runs on different `--seed`s draw disjoint
slots, so their block errors add up. Per JSR / SNR point, the pooled BLER is the sum of block
errors over the sum of slots; the DMRS-jammer JSR where the standard neural receiver fails and
the clean SNR at BLER 10 % (log-linear interpolation, as robustness.py) are taken on the pooled
curves. Each run's own verdict is listed beside the pooled one.

    python benchmarks/robustness_pool.py --tag dmrspgd-25 \
        results/robustness-dmrspgd-25-seed1.json results/robustness-dmrspgd-25-seed2.json ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import write
from robustness import snr_at_bler


def _check_same_setup(runs: list[dict]) -> None:
    keys = ("link", "scenario", "snr_db", "slots_per_point")
    first = {k: runs[0]["setup"][k] for k in keys}
    seeds = [r["setup"]["seed"] for r in runs]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"runs share a seed (their slots are the same): {seeds}")
    for r in runs[1:]:
        other = {k: r["setup"][k] for k in keys}
        if other != first:
            raise SystemExit(f"runs differ in their setup: {first} vs {other}")
    snr = [r["clean"]["neural"]["snr_db"] for r in runs]
    if any(s != snr[0] for s in snr):
        raise SystemExit("runs have different clean SNR grids")


def pool(runs: list[dict]) -> dict:
    """Pooled DMRS-jammer and clean curves of every receiver the runs share, and the goal."""
    _check_same_setup(runs)
    names = set.intersection(*(set(r["clean"]) for r in runs))
    slots = runs[0]["setup"]["slots_per_point"]
    jsr = {}
    for name in sorted(names):
        points = {}
        for r in runs:
            for p in r["bler_vs_jsr"]["dmrs"][name]:
                e, n = points.get(p["level_db"], (0, 0))
                points[p["level_db"]] = (e + p["block_errors"], n + p["slots"])
        jsr[name] = {lvl: e / n for lvl, (e, n) in sorted(points.items())}
    snr = runs[0]["clean"]["neural"]["snr_db"]
    clean = {}
    for name in sorted(names):
        # every clean point has `slots` slots in every run, so the mean is the pooled BLER
        bler = [sum(r["clean"][name]["bler"][i] for r in runs) / len(runs)
                for i in range(len(snr))]
        clean[name] = {"snr_db": snr, "bler": bler, "snr_at_bler_10pct": snr_at_bler(snr, bler)}
    fail = next((lvl for lvl, b in jsr["neural"].items() if b > 0.5), None)
    base = clean["neural"]["snr_at_bler_10pct"]
    goal = {"jsr_db_where_neural_fails": fail,
            "neural_bler_there": None if fail is None else jsr["neural"][fail], "variants": {}}
    for name in sorted(names - {"ls", "perfect", "neural"}):
        s = clean[name]["snr_at_bler_10pct"]
        cost = None if s is None or base is None else s - base
        b = None if fail is None else jsr[name][fail]
        half = b is not None and b <= 0.5 * jsr["neural"][fail]
        cheap = cost is not None and cost <= 0.3
        goal["variants"][name] = {
            "bler_at_that_jsr": b, "clean_cost_db": cost, "bler_at_most_half": half,
            "clean_cost_at_most_0.3db": cheap, "met": half and cheap,
            "per_run": [{"seed": r["setup"]["seed"], **r["result"]["variants"][name]}
                        for r in runs if name in r["result"]["variants"]]}
    goal["met_by"] = [n for n, g in goal["variants"].items() if g["met"]]
    return {"runs": [{"seed": r["setup"]["seed"], "commit": r["commit"], "command": r["command"]}
                     for r in runs],
            "slots_per_point_pooled": slots * len(runs),
            "bler_vs_jsr_dmrs": {n: [{"level_db": k, "bler": v} for k, v in c.items()]
                                 for n, c in jsr.items()},
            "clean": clean, "result": goal}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="+", help="robustness-*.json of runs on different seeds")
    ap.add_argument("--tag", required=True, help="writes robustness-<tag>-pooled.json")
    args = ap.parse_args()
    runs = [json.loads(Path(p).read_text()) for p in args.results]
    if len(runs) < 2:
        raise SystemExit("pooling needs at least two runs")
    write(f"robustness-{args.tag}-pooled", {
        "benchmark": "robustness_pool",
        "goal": runs[0]["goal"] + " (judged on the pooled slots of all runs)",
        **pool(runs)})


if __name__ == "__main__":
    main()
