"""Wall time of one `dmrx metadata build` in this process (1 worker) and in 2 worker processes,
and whether the two builds' tables are identical (they must be: every task runs on one torch
thread either way, `dmrx.explain.metadata_build`).

The build is the shipped one scaled down: the default scenarios, jammers, ADC and receivers,
`--points` simulated points and `--adapt-runs` adaptation runs in train (the long tasks, about
a minute each at the default 4 x 120 slots). Wall time includes starting the worker processes
(importing torch and Sionna). The 1-minute load average before each build is recorded: other
jobs on the machine distort the ratio.

    python benchmarks/metadata_build_scaling.py [--points 16] [--adapt-runs 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import write

from dmrx.explain.metadata import read_table
from dmrx.explain.metadata_build import SPLITS, build_dataset


def _same_tables(a: dict, b: dict) -> bool:
    for split in SPLITS:
        ta, tb = read_table(a[split]), read_table(b[split])
        if ta.num_rows != tb.num_rows:
            return False
        for name in ta.column_names:
            x = ta.column(name).to_numpy(zero_copy_only=False)
            y = tb.column(name).to_numpy(zero_copy_only=False)
            same = (np.array_equal(x, y, equal_nan=True) if x.dtype.kind == "f"
                    else np.array_equal(x, y))
            if not same:
                return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=16, help="simulated points in train")
    ap.add_argument("--adapt-runs", type=int, default=4, help="adaptation runs in train")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    kw = {"num_points": {"train": args.points, "val": 0, "test": 0},
          "adapt_runs": {"train": args.adapt_runs, "val": 0, "test": 0}}
    runs, paths = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            paths[workers] = build_dataset(Path(tmp) / str(workers), seed=args.seed,
                                           workers=workers, progress=False, **kw)
            runs.append({"workers": workers, "elapsed_s": round(time.perf_counter() - t0, 1),
                         "load_avg_1min_before": load})
            print(runs[-1], flush=True)
        identical = _same_tables(paths[1], paths[2])
    speedup = runs[0]["elapsed_s"] / runs[1]["elapsed_s"]
    write("metadata_build_scaling", {
        "benchmark": "metadata_build_scaling", "seed": args.seed,
        "points": args.points, "adapt_runs": args.adapt_runs, "runs": runs,
        "speedup_2_workers": round(speedup, 2), "tables_identical": identical})


if __name__ == "__main__":
    main()
