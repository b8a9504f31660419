"""Issue 7's goals over every seed `cam_faithfulness.py` has run, pooled: one place that says
where each goal stands, computed from the recorded per-seed results (nothing is rerun).

Each result file holds one seed's clean condition and its jammed condition at one jammer power
(a multi-power run writes one file per power with the same clean condition). The runs are
grouped by the removal their curves used (the goals are judged on the grid-power removal,
'matched'; `--removal local` pools session 8's reading instead), then:

- clean, once per seed (a seed's files must agree on it, else the script stops); jammed, per
  jammer power, over the seeds run at that power;
- per method, its deletion and insertion AUC margins to the random-map baseline, and Fusion-CAM's
  margins to Grad-CAM and to Score-CAM (positive: Fusion-CAM more faithful), pooled over the
  seeds by inverse-variance weighting of each seed's paired-bootstrap margin, with the pooled
  standard error and how many seeds meet the goal alone;
- "far from random" pooled as each seed judges it (better than random by more than 3 SE), on
  the pooled margin and SE; Fusion-CAM "at least as faithful" if its pooled margin to the best of
  Grad-CAM and Score-CAM (best by pooled AUC) is >= 0 on both curves, and a tie if within 2 SE;
- the error-event maps' mass share on the jammed band per power: the mean over seeds of each
  seed's mean share (and the seeds' spread), and how many seeds' maps pass 0.5;
- runs are pooled whatever generator scheme their curves drew from (`curve_draws`: one
  generator shared by every method in turn, 'shared', every run before session 28; or one
  stream per method, 'per-method'): on different seeds both are independent draws of the same
  quantities; one seed run under both has two clean conditions, so the script stops there as
  for any other disagreement (leave one out with --exclude); each seed's scheme is recorded;
- each seed's commit per condition, and whether its Fusion-CAM has session 26's empty-map fix
  (`fusion_cam.pair_weights`): the fix changes no clean map of the seeds run before it (none
  was empty), but jammed pools at 0 dB and above mix the two codes where they mix seeds.

    python benchmarks/cam_faithfulness_pool.py [--removal matched] [--tag T] [--exclude F,...]
        [FILE ...]   (default: every benchmarks/results/cam_faithfulness*.json)
        (writes cam_faithfulness_pool[-T].json)
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
from collections import defaultdict
from pathlib import Path

from _common import RESULTS, write

METHODS = ("grad-cam", "grad-cam++", "hirescam", "score-cam", "fusion-cam")
REMOVAL_TEXT = {"matched": "noise of the grid's", "local": "noise of the mean po"}


def inverse_variance(values: list[float], ses: list[float]) -> dict:
    """Pooled estimate of one quantity measured independently on several seeds."""
    w = [1.0 / max(s, 1e-12) ** 2 for s in ses]
    mean = sum(wi * v for wi, v in zip(w, values, strict=True)) / sum(w)
    return {"margin": mean, "se": 1.0 / math.sqrt(sum(w)), "per_seed": values}


def pool_condition(conds: dict[int, dict]) -> dict:
    """One condition (clean, or jammed at one power) over seeds {seed: results[condition]}."""
    out: dict = {"seeds": sorted(conds), "vs_random": {}, "fusion_vs": {}}
    for m in METHODS:
        seeds = [s for s in sorted(conds) if m in conds[s]["vs_random"]]
        rows = [conds[s]["vs_random"][m] for s in seeds]
        dl = inverse_variance([r["deletion_auc_minus_random"] for r in rows],
                              [r["deletion_se"] for r in rows])
        ins = inverse_variance([r["insertion_auc_minus_random"] for r in rows],
                               [r["insertion_se"] for r in rows])
        out["vs_random"][m] = {
            "seeds": seeds, "deletion": dl, "insertion": ins,
            # as each run judges it: better than random by more than 3 SE, on both curves
            "far": {"deletion": dl["margin"] < -3 * dl["se"],
                    "insertion": ins["margin"] > 3 * ins["se"]},
            "seeds_far": {
                "deletion": sum(r["deletion_auc_minus_random"] < -3 * r["deletion_se"]
                                for r in rows),
                "insertion": sum(r["insertion_auc_minus_random"] > 3 * r["insertion_se"]
                                 for r in rows)}}
    for other in ("grad-cam", "score-cam"):
        rows = [conds[s]["fusion_vs"][other] for s in sorted(conds)]
        # signed so that > 0 is Fusion-CAM more faithful on both curves
        out["fusion_vs"][other] = {
            "deletion": inverse_variance([-r[f"deletion_auc_minus_{other}"] for r in rows],
                                         [r["deletion_se"] for r in rows]),
            "insertion": inverse_variance([r[f"insertion_auc_minus_{other}"] for r in rows],
                                          [r["insertion_se"] for r in rows])}
    mean_auc = {m: {c: statistics.fmean(conds[s]["methods"][m][f"{c}_auc"] for s in conds)
                    for c in ("deletion", "insertion")} for m in ("grad-cam", "score-cam")}
    best = {"deletion": min(mean_auc, key=lambda m: mean_auc[m]["deletion"]),
            "insertion": max(mean_auc, key=lambda m: mean_auc[m]["insertion"])}
    fusion = {c: out["fusion_vs"][best[c]][c] for c in best}
    out["fusion_at_least_as_faithful"] = {
        "best": best,
        "met": all(f["margin"] >= 0 for f in fusion.values()),
        "within_2se": all(f["margin"] >= -2 * f["se"] for f in fusion.values())}
    return out


def error_shares(conds: dict[int, dict]) -> dict:
    """The error-event maps' mass on the jammed band, over seeds."""
    out = {}
    for m in METHODS:
        per = {s: conds[s]["error_event_jammed_mass_share"][m] for s in sorted(conds)
               if m in conds[s]["error_event_jammed_mass_share"]}
        shares = [v["all_slots"] for v in per.values()]
        out[m] = {"seeds": list(per), "mean": statistics.fmean(shares),
                  "sd_over_seeds": statistics.stdev(shares) if len(shares) > 1 else None,
                  "per_seed": shares, "seeds_above_half": sum(x > 0.5 for x in shares),
                  "zero_maps_per_seed": [v["zero_maps"] for v in per.values()]}
    return out


def _same(a: dict, b: dict) -> bool:
    """Two runs' clean margins agree on the methods both have (to float32 noise: runs at
    different commits recompute the same slots). The absolute tolerance is float32 noise on
    AUCs of about 0.3: session 27's rerun of seed 4 on another machine moved HiResCAM's clean
    deletion margin by 3.0e-7 (SEs are about 2e-3), which 1e-8 took for a different run."""
    return all(math.isclose(a[m][k], b[m][k], rel_tol=1e-5, abs_tol=1e-6)
               for m in set(a) & set(b) & set(METHODS) for k in a[m])


# Fusion-CAM stopped returning empty maps where Score-CAM's map is empty (session 26): jammed
# runs at high power before and after it are different code, so each seed's commit is recorded
FUSION_EMPTY_MAP_FIX = "5ef8a0c"


def _code(commit: str) -> dict:
    """A run's commit and whether its Fusion-CAM has the empty-map fix."""
    try:
        fixed = subprocess.run(["git", "merge-base", "--is-ancestor", FUSION_EMPTY_MAP_FIX,
                                commit], cwd=RESULTS, capture_output=True).returncode == 0
    except OSError:
        fixed = None
    return {"commit": commit, "fusion_empty_map_fix": fixed}


def load(files: list[Path], removal: str) -> tuple[dict, dict, list[str], dict]:
    """-> ({seed: clean results}, {jsr_db: {seed: jammed results}}, files used,
    {'clean': {seed: _code}, 'jammed': {jsr: {seed: _code}}, 'replaced': [file, ...]})

    Where two files hold one seed at one power, a rerun with the empty-map fix replaces the run
    without it (named under 'replaced'); two runs of the same code stop the script."""
    clean: dict[int, dict] = {}
    jammed: dict[float, dict[int, dict]] = defaultdict(dict)
    jammed_file: dict[float, dict[int, str]] = defaultdict(dict)
    used = []
    replaced: list[str] = []
    commits: dict = {"jammed": defaultdict(dict)}
    for f in files:
        d = json.loads(f.read_text())
        s = d["setup"]
        if not s["faithfulness_removal"].startswith(REMOVAL_TEXT[removal]):
            continue
        seed, jsr = s["seed"], float(s["jammer"]["jsr_db"])
        used.append(f.name)
        c = d["results"]["clean"]
        if seed in clean and not _same(clean[seed]["vs_random"], c["vs_random"]):
            raise SystemExit(f"seed {seed}'s clean condition differs between its files "
                             f"({f.name} and an earlier one): pool runs of one code")
        code = _code(d["commit"]) | {"curve_draws": s.get("curve_draws", "shared")}
        if seed not in clean or len(c["methods"]) > len(clean[seed]["methods"]):
            clean[seed] = c  # the run with the most methods (HiResCAM came in session 15)
            commits.setdefault("clean", {})[seed] = code
        if seed in jammed[jsr]:
            fixed = commits["jammed"][f"{jsr:g}"][seed]["fusion_empty_map_fix"]
            if fixed == code["fusion_empty_map_fix"]:
                raise SystemExit(f"two files for seed {seed} at JSR {jsr} dB (one is {f.name})")
            if fixed:  # the earlier file is the rerun
                replaced.append(f.name)
                continue
            replaced.append(jammed_file[jsr][seed])
        jammed[jsr][seed] = d["results"]["jammed"]
        jammed_file[jsr][seed] = f.name
        commits["jammed"][f"{jsr:g}"][seed] = code
    if not clean:
        raise SystemExit(f"no cam_faithfulness result with removal {removal!r} among the files")
    commits["replaced"] = replaced
    return clean, dict(sorted(jammed.items())), used, commits


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--removal", default="matched", choices=sorted(REMOVAL_TEXT))
    ap.add_argument("--tag", default=None)
    ap.add_argument("--exclude", default="",
                    help="comma-separated file names left out (a rerun whose clean condition "
                         "is not its seed's recorded one)")
    args = ap.parse_args()
    excluded = set(filter(None, args.exclude.split(",")))
    files = [p for p in args.files or sorted(RESULTS.glob("cam_faithfulness*.json"))
             if "pool" not in p.name and p.name not in excluded]
    clean, jammed, used, commits = load(files, args.removal)
    payload = {
        "benchmark": "cam_faithfulness_pool", "files": used, "excluded": sorted(excluded),
        "curve_removal": args.removal,
        "goal": "Fusion-CAM at least as faithful as the best of Grad-CAM and Score-CAM on both "
                "AUCs; every method far from random; under a partial-band jammer the "
                "error-event maps put most (> 50%) of their mass on the jammed band",
        "clean": pool_condition(clean),
        "jammed": {f"{jsr:g}": pool_condition(c) | {"error_maps_jammed_share": error_shares(c)}
                   for jsr, c in jammed.items()},
        "code_per_seed": commits,
    }
    write("cam_faithfulness_pool" + (f"-{args.tag}" if args.tag else ""), payload)


if __name__ == "__main__":
    main()
