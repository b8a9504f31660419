"""SGD-ER against cosine annealing and ReduceLROnPlateau at the same step budget.

Same receiver, optimizer (AdamW), initial learning rate, data stream and seeds for all three;
each run is scored by the BMD rate on the same held-out slots and by the BLER at one SNR.

    python benchmarks/sgd_er.py [--steps 1200] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import torch
from _common import write

from dmrx.nn import TrainConfig, evaluate_bmd_rate, train
from dmrx.scenarios import get_link, get_scenario, simulate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--bler-snr-db", type=float, default=10.0)
    ap.add_argument("--bler-slots", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    link, sc = get_link("ref-4prb"), get_scenario("tdl-c-300ns-60kmh")
    sgd_er = {"patience": 3, "min_delta": 2e-3, "gamma": 0.93, "max_lr_factor": 4.0}
    runs = []
    for seed in map(int, args.seeds.split(",")):
        for sched in ("sgd-er", "cosine", "plateau"):
            cfg = TrainConfig(link, ((sc.name, sc.channel),),
                              net={"num_channels": 16, "num_blocks": 2},
                              steps=args.steps, batch_size=32, lr=2e-3, scheduler=sched,
                              sgd_er=sgd_er, epoch_steps=25, checkpoint_every=args.steps,
                              seed=seed)
            with tempfile.TemporaryDirectory() as d:
                r = train(cfg, d, progress=False)
            bmd = evaluate_bmd_rate(r.receiver, cfg, num_batches=40)
            sim = simulate(link, sc, {"rx": r.receiver}, [args.bler_snr_db], args.bler_slots,
                           batch_size=250, seed=99, progress=False)
            restarts = [int(row["step"]) for a, row in zip(r.log, r.log[1:], strict=False)
                        if row["lr"] > a["lr"] * 1.01]
            runs.append({"scheduler": sched, "seed": seed, "bmd_rate": round(bmd, 4),
                         "bler": sim.points[0].counts.bler,
                         "final_train_loss": round(r.log[-1]["loss"], 4),
                         "lr_increases_at_steps": restarts,
                         "train_s": round(r.log[-1]["elapsed_s"], 1)})
            print(runs[-1], flush=True)
    summary = {}
    for sched in ("sgd-er", "cosine", "plateau"):
        mine = [r for r in runs if r["scheduler"] == sched]
        summary[sched] = {
            "bmd_rate_mean": round(statistics.mean(r["bmd_rate"] for r in mine), 4),
            "bmd_rate_std": round(statistics.pstdev(r["bmd_rate"] for r in mine), 4),
            "bler_mean": round(statistics.mean(r["bler"] for r in mine), 4),
        }
    write("sgd_er", {
        "benchmark": "sgd_er",
        "setup": {"link": link.name, "scenario": sc.name, "steps": args.steps,
                  "batch_size": 32, "net": {"num_channels": 16, "num_blocks": 2},
                  "optimizer": "adamw", "lr": 2e-3, "sgd_er": sgd_er,
                  "plateau": {"factor": 0.5, "patience": 5, "threshold": 1e-3},
                  "cosine": {"eta_min": 2e-5}, "bler_snr_db": args.bler_snr_db,
                  "bler_slots": args.bler_slots},
        "summary": summary,
        "runs": runs,
    })


if __name__ == "__main__":
    main()
