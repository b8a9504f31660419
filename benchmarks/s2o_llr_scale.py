"""Are S2O-trained receivers' LLRs under-confident? BLER of the S2O variants with their LLRs
scaled by a constant, clean (SNR sweep) and under the DMRS-targeted jammer, against the
standard receiver on the same slots.

S2O's soft targets (robust/training.py `s2o_targets`) put 80 % of each RE's target mass on the
wrong bit patterns; for a classifier only the argmax matters, but the LDPC decoder reads the
LLRs' magnitude. If the S2O receivers lose mostly calibration, a constant scale recovers it.

    python benchmarks/s2o_llr_scale.py [--scales 1,2,3] [--slots 200]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from _common import write

from dmrx.nn import load_receiver
from dmrx.nn.calibrate import fold_llr_scale
from dmrx.robust.evaluate import evaluate
from dmrx.scenarios import get_link, get_scenario, simulate

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="s2o,s2o-dmrs-long")
    ap.add_argument("--scales", default="1,2,3")
    ap.add_argument("--clean-snr-db", default="9,10,11")
    ap.add_argument("--dmrs-jsr-db", type=float, default=2.5)
    ap.add_argument("--snr-db", type=float, default=12.0)
    ap.add_argument("--slots", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    link, scenario = get_link("ref-4prb"), get_scenario("tdl-c-300ns-60kmh")
    rx = {"neural": load_receiver(ROOT / "checkpoints/neural-ref-4prb", link)}
    for v in args.variants.split(","):
        for a in (float(s) for s in args.scales.split(",")):
            scaled = load_receiver(ROOT / "checkpoints" / f"robust-{v}", link)
            fold_llr_scale(scaled, a)  # the same decisions, LLR magnitudes times a
            rx[f"robust-{v} x{a:g}"] = scaled
    snr = [float(s) for s in args.clean_snr_db.split(",")]
    clean = simulate(link, scenario, rx, snr, args.slots, batch_size=100, seed=args.seed,
                     progress=False)
    jam = evaluate(link, scenario, rx, [("dmrs", args.dmrs_jsr_db)], args.snr_db, args.slots,
                   batch_size=100, seed=args.seed, progress=False)
    write("s2o_llr_scale", {
        "benchmark": "s2o_llr_scale",
        "setup": {"link": "ref-4prb", "scenario": scenario.name, "slots_per_point": args.slots,
                  "seed": args.seed, "clean_snr_db": snr, "jammer": "dmrs",
                  "jsr_db": args.dmrs_jsr_db, "jammer_snr_db": args.snr_db},
        "clean_bler": {n: [p.counts.bler for p in clean.points if p.receiver == n] for n in rx},
        "dmrs_jammer_bler": {p.receiver: p.counts.bler for p in jam.points},
    })


if __name__ == "__main__":
    main()
