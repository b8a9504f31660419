"""Does the guard keep a DMRS-targeted jammer from destroying an adapting receiver?

One stationary segment (the pretrained receiver's own channel) with a DMRS-targeted jammer on
slots [--jam-start, --jam-stop): the static receiver, the guarded adapter and the same adapter
without its guard see the same slots. Reported per receiver: BLER before the jammer, while it is
on, and after it stops, the rollbacks, and whether the post-jammer BLER is back to the
pre-jammer level (within two binomial standard errors of the difference).

    python benchmarks/adaptation_jammer.py --checkpoint checkpoints/neural-ref-4prb-tdl-a \
        --variants dmrs-crc,dmrs
    python benchmarks/adaptation_jammer.py --checkpoint checkpoints/neural-ref-4prb-broad-long \
        --variants crc-sparse-slow-32 --threads 1 --tag broad-long
(the second: the start and variant that meet adaptation.py's goal, session 10)
"""

from __future__ import annotations

import argparse
import math

import torch
from _common import write

from dmrx.nn import load_receiver
from dmrx.nn.adapt import OnlineAdapter, get_variant
from dmrx.scenarios.adapt_run import JammerWindow, run_schedule
from dmrx.scenarios.schedules import Schedule, Segment


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--scenario", default="tdl-a-30ns-3kmh")
    ap.add_argument("--snr-db", type=float, default=10.0)
    ap.add_argument("--slots", type=int, default=900)
    ap.add_argument("--jam-start", type=int, default=300)
    ap.add_argument("--jam-stop", type=int, default=400)
    ap.add_argument("--jsr-db", type=float, default=0.0)
    ap.add_argument("--variants", default="dmrs-crc,dmrs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tag", default=None, help="write adaptation_jammer-<tag>.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    static = load_receiver(args.checkpoint)
    link = static.link
    schedule = Schedule("jammed", (Segment(args.scenario, args.slots, args.snr_db),))
    jammer = JammerWindow(args.jam_start, args.jam_stop, args.jsr_db)
    receivers = {"static": static}
    for v in (v.strip() for v in args.variants.split(",") if v.strip()):
        receivers[f"adaptive-{v}"] = OnlineAdapter(static, get_variant(v, seed=args.seed))
        receivers[f"adaptive-{v}-noguard"] = OnlineAdapter(
            static, get_variant(v, seed=args.seed, guard=False))
    result = run_schedule(schedule, link, receivers, seed=args.seed, jammer=jammer,
                          progress=False)
    print(result.table(), flush=True)
    windows = {"before": (0, jammer.start), "jammed": (jammer.start, jammer.stop),
               "after": (jammer.stop, args.slots)}
    out = {}
    for name in receivers:
        bler = {w: result.bler(name, a, b) for w, (a, b) in windows.items()}
        n0, n1 = jammer.start, args.slots - jammer.stop
        se = math.sqrt(bler["before"] * (1 - bler["before"]) / n0
                       + bler["after"] * (1 - bler["after"]) / n1)
        out[name] = {"bler": bler, "after_minus_before": bler["after"] - bler["before"],
                     "two_sigma": 2 * se,
                     "recovered": bler["after"] - bler["before"] <= max(2 * se, 1 / n1)}
        if name in result.adapters:
            out[name] |= {k: result.adapters[name][k]
                          for k in ("updates", "rollbacks", "shifts_detected")}
    write("adaptation_jammer" if args.tag is None else f"adaptation_jammer-{args.tag}", {
        "benchmark": "adaptation_jammer",
        "setup": {"checkpoint": args.checkpoint, "scenario": args.scenario,
                  "snr_db": args.snr_db, "slots": args.slots, "jammer": vars(jammer),
                  "seed": args.seed},
        "goal": "the guarded adapter's BLER after the jammer stops is back to its pre-jammer "
                "level; the unguarded one's reported beside it",
        "receivers": out,
    })


if __name__ == "__main__":
    main()
