"""One gate over several `gated_adaptation.py` runs on disjoint seeds, judged as one run.

A 12-seed draw of drift-default holds ~300 block errors of always-adapt, and a gate's loss from
BLER moves by about 0.03 dB between draws, so #8's "at most 0.1 dB" is decided inside that noise.
This pools the runs' seeds: the gate's and always-adapt's block errors and updates are summed,
always-adapt's SNR-offset curve is the seed-weighted mean of the runs' curves, and the loss in
dB is interpolated on it exactly as `gated_adaptation.loss_db` does for one run. The slots lost
by only one of the two (`discordant`) are summed from the traces.

The interval: seeds are resampled with replacement (paired: a seed brings both its block errors),
the gate's pooled BLER is always-adapt's nominal BLER times the resampled ratio of block errors,
and its loss is read off the pooled curve. The curve is held fixed, so its own noise is not in
the interval; the interval says how far the seeds' draw alone moves the verdict.

    python benchmarks/gated_adaptation_pool.py --gate 'gated@base-rate,attack=0.5,debounce=5' \\
        --tag debounce-24 benchmarks/results/gated_adaptation_hicem_big-12seeds-debounce.json \\
        benchmarks/results/gated_adaptation_hicem_big-12seeds-debounce-confirm.json

Not a judgement rule of its own: a verdict declared on one run stays that run's; the pooled
figure is the best estimate of a gate's operating point over every draw it has had.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _common import write
from gated_adaptation import loss_db

SAME = ("checkpoint", "variant", "schedule", "offsets_db", "data", "model")


def per_seed_errors(run: dict, name: str) -> dict[int, int]:
    """{seed: block errors of `name`} from a run's traces."""
    return {int(s): len(t["error_slots"][name]) for s, t in run["traces"].items()}


def pool_runs(runs: list[dict], gate: str, *, draws: int = 2000, seed: int = 0,
              level: float = 0.9) -> dict:
    """The gate's pooled operating point over `runs` (gated_adaptation results on disjoint
    seeds, same setup), with a seed-bootstrap interval of its loss from BLER.

    :raises ValueError: the runs differ in setup, share a seed, or one lacks the gate
    """
    for i, r in enumerate(runs):
        if gate not in r["receivers"]:
            raise ValueError(f"run {i}: no receiver {gate!r} (has {list(r['receivers'])})")
        if diff := [k for k in SAME if r["setup"].get(k) != runs[0]["setup"].get(k)]:
            raise ValueError(f"run {i}: setup differs from run 0 in {diff}")
    seeds = [int(s) for r in runs for s in r["traces"]]
    if len(set(seeds)) < len(seeds):
        raise ValueError(f"runs share seeds: {sorted(s for s in set(seeds) if seeds.count(s) > 1)}")
    w = np.array([len(r["traces"]) for r in runs], float) / len(seeds)
    offsets = [c["offset_db"] for c in runs[0]["always_adapt_snr_curve"]]

    def curve(key: str) -> list[float]:
        return [float(sum(wi * r["always_adapt_snr_curve"][j][key]
                          for wi, r in zip(w, runs, strict=True)))
                for j in range(len(offsets))]

    def mean(name: str, key: str) -> float:
        return float(sum(wi * r["receivers"][name][key] for wi, r in zip(w, runs, strict=True)))

    bler_curve, bce_curve = curve("bler"), curve("mean_bce")
    g_err, a_err = {}, {}
    for r in runs:
        g_err |= per_seed_errors(r, gate)
        a_err |= per_seed_errors(r, "always")
    updates = {n: int(sum(r["receivers"][n]["updates"] for r in runs)) for n in (gate, "always")}
    disc = {k: int(sum(r["receivers"][gate]["discordant_slots"][k] for r in runs))
            for k in ("gated_only_errors", "always_only_errors")}
    bler_gate = mean(gate, "bler")
    seg_names = [s["scenario"] for s in runs[0]["receivers"]["always"]["segments"]]

    def seg_errors(name: str) -> list[int]:
        return [int(round(sum(r["receivers"][name]["segments"][i]["bler"] * len(r["traces"])
                              * r["setup"]["schedule"]["segments"][i]["slots"] for r in runs)))
                for i in range(len(seg_names))]

    # paired seed bootstrap of the gate's block errors over always-adapt's
    rng = np.random.default_rng(seed)
    s = np.array(seeds)
    g = np.array([g_err[x] for x in s], float)
    a = np.array([a_err[x] for x in s], float)
    idx = rng.integers(0, len(s), size=(draws, len(s)))
    ratio = g[idx].sum(1) / np.maximum(a[idx].sum(1), 1)
    # a resample beyond the curve's lowest offset has a larger loss than measured: +inf, so
    # that it widens the interval instead of dropping out of it
    boot = np.array([np.inf if (x := loss_db(offsets, bler_curve, bler_curve[0] * q, log=True))
                     is None else x for q in ratio])
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    loss_bler = loss_db(offsets, bler_curve, bler_gate, log=True)
    reduction = 1 - updates[gate] / max(updates["always"], 1)
    return {
        "gate": gate, "seeds": sorted(seeds),
        "updates": updates,
        "updates_reduction": reduction,
        "block_errors": {gate: int(g.sum()), "always": int(a.sum())},
        "segments": {"scenario": seg_names, gate: seg_errors(gate),
                     "always": seg_errors("always"), "static": seg_errors("static")},
        "bler": {gate: bler_gate, "always": bler_curve[0]},
        "always_adapt_snr_curve": [{"offset_db": d, "bler": b, "mean_bce": c}
                                   for d, b, c in zip(offsets, bler_curve, bce_curve,
                                                      strict=True)],
        "loss_db": {"from_bler": loss_bler,
                    "from_mean_bce": loss_db(offsets, bce_curve, mean(gate, "mean_bce"),
                                             log=False),
                    "from_bler_interval": [float(lo), float(hi)],
                    "interval": f"{level:.0%} paired seed bootstrap ({draws} draws, seed "
                                f"{seed}), always-adapt's curve held fixed",
                    "beyond_curve_fraction": float(np.isinf(boot).mean())},
        "discordant_slots": disc,
        "within_goal_pooled": bool(loss_bler is not None and loss_bler <= 0.1
                                   and reduction >= 0.5),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="+", help="gated_adaptation.py result files")
    ap.add_argument("--gate", required=True, help="the gated receiver's name in every run")
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0, help="the bootstrap's seed")
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    runs = []
    for p in args.results:
        try:
            runs.append(json.loads(Path(p).read_text()))
        except (OSError, ValueError) as e:
            raise SystemExit(f"{p}: not a readable gated_adaptation result ({e})") from None
        if "traces" not in runs[-1] or "receivers" not in runs[-1]:
            raise SystemExit(f"{p}: not a gated_adaptation result with traces")
    try:
        out = pool_runs(runs, args.gate, draws=args.draws, seed=args.seed)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    write("gated_adaptation_pool" + (f"_{args.tag}" if args.tag else ""),
          {"benchmark": "gated_adaptation_pool", "runs": args.results} | out)


if __name__ == "__main__":
    main()
