"""Pool several `receiver_bler.py` runs on different slot seeds and find each receiver's SNR at
BLER 10 % and its gap to perfect CSI once, on all their slots together.

One run's 100-error crossing resolves the SNR at BLER 10 % to about +-0.1 dB, the size of the
0.5 dB goal's margin on ref-4prb at 60 km/h; runs on different `--seed`s draw disjoint slots,
so per (receiver, SNR) point their block errors and slots add up. The crossing is taken on the
pooled curve (`dmrx.scenarios.metrics.snr_at_bler`); each run's own gaps are listed beside it.

    python benchmarks/receiver_bler_pool.py --tag 60kmh \
        results/receiver_bler-60kmh-seed2.json results/receiver_bler-60kmh-seed3.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import write

from dmrx.scenarios.metrics import snr_at_bler


def pool(runs: list[dict], link: str, scenario: str) -> dict:
    """Pooled BLER curves of the receivers every run has on (link, scenario), their SNR at
    BLER 10 % and gap to perfect CSI, and each run's own gaps."""
    seeds = [r["setup"]["seed"] for r in runs]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"runs share a seed (their slots are the same): {seeds}")
    results = []
    for r in runs:
        found = [o for o in r["results"] if (o["link"], o["scenario"]) == (link, scenario)]
        if not found:
            raise SystemExit(f"a run (seed {r['setup']['seed']}) has no {link}/{scenario}")
        results.append(found[0])
    names = set.intersection(*({p["receiver"] for p in o["points"]} for o in results))
    if "perfect" not in names:
        raise SystemExit("the runs share no perfect-CSI curve to measure gaps against")
    curves = {}
    for name in sorted(names):
        points: dict[float, tuple[int, int]] = {}
        for o in results:
            for p in o["points"]:
                if p["receiver"] == name:
                    e, n = points.get(p["snr_db"], (0, 0))
                    points[p["snr_db"]] = (e + p["block_errors"], n + p["slots"])
        snr = sorted(points)
        curves[name] = {"snr_db": snr, "block_errors": [points[s][0] for s in snr],
                        "slots": [points[s][1] for s in snr],
                        "bler": [points[s][0] / points[s][1] for s in snr]}
        curves[name]["snr_db_at_bler_10pct"] = snr_at_bler(snr, curves[name]["bler"])
    ref = curves["perfect"]["snr_db_at_bler_10pct"]
    for c in curves.values():
        c["gap_to_perfect_db"] = c["snr_db_at_bler_10pct"] - ref
    per_run = {str(r["setup"]["seed"]): {n: o["summary"][n]["gap_to_perfect_db"] for n in names}
               for r, o in zip(runs, results, strict=True)}
    return {"link": link, "scenario": scenario, "seeds": seeds,
            "gaps_db": {n: c["gap_to_perfect_db"] for n, c in curves.items()},
            "per_seed_gaps_db": per_run, "pooled": curves}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", help="receiver_bler JSON files on different --seed")
    ap.add_argument("--link", default="ref-4prb")
    ap.add_argument("--scenario", default="tdl-c-300ns-60kmh")
    ap.add_argument("--tag", required=True, help="write receiver_bler-<tag>-pooled.json")
    args = ap.parse_args()
    runs = [json.loads(Path(p).read_text()) for p in args.runs]
    write(f"receiver_bler-{args.tag}-pooled", {
        "benchmark": "receiver_bler_pool", "runs": args.runs,
        **pool(runs, args.link, args.scenario)})


if __name__ == "__main__":
    main()
