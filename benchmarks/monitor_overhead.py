"""What the training-health monitor of `dmrx tune` (`nn.diagnosis.HealthMonitor`) costs: the
CPU time of one trial's training (300 steps, 1 thread, `dmrx tune`'s trial length) with no
monitor, with the monitor, and with the per-tensor gradient hooks it replaced (a tensor hook per
weight doing ~9 small operations per step, defined here as the reference), for trials of the
sizes `dmrx tune`'s default space draws. Runs alternate (none, monitor, per-tensor) `--repeats`
times per size; the figure is the ratio of median CPU times to the run without a monitor.

Every point of overhead is a point of `benchmarks/tune_diagnosis.py`'s time saved that the
diagnosis gives back.

    python benchmarks/monitor_overhead.py [--repeats 3] [--steps 300]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _common import write

from dmrx.nn.diagnosis import HealthMonitor
from dmrx.nn.train import train
from dmrx.scenarios.tune import TuneConfig

SIZES = ({"width": 8, "blocks": 1, "batch_size": 8}, {"width": 16, "blocks": 2, "batch_size": 16},
         {"width": 16, "blocks": 4, "batch_size": 16}, {"width": 32, "blocks": 2, "batch_size": 32})


class PerTensorMonitor(HealthMonitor):
    """The design HealthMonitor replaced: one tensor hook per weight, each measuring its own
    gradient and update with small operations (kept only as this benchmark's reference)."""

    def _attach(self, rx: torch.nn.Module) -> None:
        self._weights = [p for p in rx.parameters() if p.requires_grad and p.dim() > 1]
        n = len(self._weights)
        self._sums = torch.zeros(n, 3, dtype=torch.float64)
        self._counts = torch.zeros(n, 2, dtype=torch.float64)
        self._old = [None] * n
        self._handles = [p.register_hook(self._one(i, p)) for i, p in enumerate(self._weights)]

    def _one(self, i: int, p: torch.Tensor):
        def hook(g: torch.Tensor) -> None:
            with torch.no_grad():
                s, c = self._sums[i], self._counts[i]
                s[0] += g.abs().mean()
                s[1] += (g == 0).float().mean()
                c[0] += 1
                prev = self._old[i]
                if prev is None:
                    self._old[i] = p.detach().clone()
                    return
                norm = prev.norm().double()
                moved = norm > 0
                s[2] += torch.where(moved, (p.detach() - prev).norm().double() / norm, 0.0)
                c[1] += moved
                prev.copy_(p.detach())

        return hook

    def detach(self) -> None:
        for h in getattr(self, "_handles", []):
            h.remove()


def cpu_seconds(params: dict, monitor: type[HealthMonitor] | None, steps: int) -> float:
    cfg = TuneConfig(steps=steps, epoch_steps=steps // 20, sampler="random", seed=1)
    tc = cfg.train_config({"lr": 3e-3, "weight_decay": 1e-4, **params})
    mon = monitor(steps) if monitor else None

    def on_epoch(step: int, row: dict, rx: torch.nn.Module) -> bool:
        if mon is not None:
            mon.update(step, row, rx)
        return False

    with tempfile.TemporaryDirectory() as d:
        c0 = time.process_time()
        train(tc, Path(d), progress=False, on_epoch=on_epoch)
        spent = time.process_time() - c0
    if mon is not None:
        mon.detach()
    return spent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    torch.set_num_threads(1)
    arms = {"none": None, "monitor": HealthMonitor, "per_tensor_hooks": PerTensorMonitor}
    rows = []
    for params in SIZES:
        times = {a: [] for a in arms}
        for _ in range(args.repeats):
            for a, m in arms.items():
                times[a].append(cpu_seconds(params, m, args.steps))
        med = {a: statistics.median(t) for a, t in times.items()}
        rows.append({"trial": params, "cpu_s": {a: [round(x, 3) for x in t]
                                                for a, t in times.items()},
                     "overhead": {a: round(med[a] / med["none"] - 1, 4)
                                  for a in arms if a != "none"}})
        print(rows[-1], flush=True)
    write("monitor_overhead", {
        "benchmark": "monitor_overhead",
        "setup": {"steps": args.steps, "repeats": args.repeats, "threads": 1,
                  "sizes": list(SIZES)},
        "trials": rows,
        "mean_overhead": {a: round(statistics.fmean(r["overhead"][a] for r in rows), 4)
                          for a in ("monitor", "per_tensor_hooks")},
    })


if __name__ == "__main__":
    main()
