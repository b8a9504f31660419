"""Sweep throughput (points/s) with 1 and 2 local workers and on a local Ray cluster, for the
same spec, and whether the three results tables are identical (timing columns aside).

Goal: 2 workers at least 1.8x one worker on a 2-core machine. Wall time includes starting the
workers (spawned processes or Ray), so the grid is sized to make that small. The 1-minute load
average before each run is recorded: other jobs on the machine distort the ratio.

    python benchmarks/sweep_scaling.py [--slots 256] [--seeds 4]

With 64 slots per point (about 1 s of work) worker start-up (importing torch and Sionna) is a
large share of the wall time: 1.27x on an idle 2-core machine; 256 slots per point gave 1.84x.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
from pathlib import Path

from _common import write

from dmrx.scenarios.results import TIMING_COLUMNS, read_results
from dmrx.scenarios.runners import run_sweep
from dmrx.scenarios.sweep import spec_from_dict


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slots", type=int, default=256)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--snr-db", default="4:10:2")
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    spec = spec_from_dict({"name": "scaling", "link": "ref-4prb",
                           "scenarios": ["awgn", "tdl-c-300ns-60kmh"], "snr_db": args.snr_db,
                           "seeds": list(range(args.seeds)), "slots": args.slots,
                           "batch_size": 32, "max_block_errors": 0,  # fixed work per point
                           "receivers": ["ls", "perfect"]})
    runs = [("local", 1), ("local", 2)]
    ray_ok = importlib.util.find_spec("ray") is not None and not args.no_ray
    if ray_ok:
        runs.append(("ray", 2))
    results, tables = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend, workers in runs:
            load = os.getloadavg()[0]
            out = Path(tmp) / f"{backend}-{workers}"
            r = run_sweep(spec, out, backend=backend, workers=workers, progress=False)
            tables[(backend, workers)] = read_results(out).drop_columns(
                list(TIMING_COLUMNS)).to_pylist()
            results.append({"backend": backend, "workers": workers, "points": r.ran,
                            "elapsed_s": round(r.elapsed_s, 2),
                            "points_per_s": round(r.points_per_s, 3),
                            "load_avg_1min_before": load})
            print(results[-1], flush=True)
    base = tables[("local", 1)]
    speedup = results[1]["points_per_s"] / results[0]["points_per_s"]
    write("sweep_scaling", {
        "benchmark": "sweep_scaling",
        "setup": {"spec": spec.as_dict(), "points": len(spec.points()),
                  "timing": "wall time of run_sweep, worker start-up included"},
        "goal": "2 local workers >= 1.8x the points/s of 1 worker; identical results across "
                "backends",
        "runs": results,
        "speedup_2_vs_1": round(speedup, 3),
        "goal_met": speedup >= 1.8,
        "identical_results": {f"{b}-{w}": tables[(b, w)] == base for b, w in runs},
        "ray": "ran on a local Ray cluster" if ray_ok else "not installed: skipped",
    })


if __name__ == "__main__":
    main()
