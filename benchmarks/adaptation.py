"""How fast online DMRS adaptation recovers on a channel the pretrained receiver never saw, what
it forgets, and what it costs.

A receiver pretrained on --from (only) adapts slot by slot on --to at --adapt-snr-db. After
k = 0, 25, 50, 100, 200, 400 slots a frozen copy is measured: SNR at BLER 10% on --to, with its
gap to an oracle trained offline on --to, to LS and to perfect CSI (all on the same slots).
Forgetting: the adapted receiver's SNR at BLER 10% back on --from, against the pretrained one.
Cost: time per slot of `observe` (update included) over time per slot of detection.

    python benchmarks/adaptation.py --pretrained checkpoints/neural-ref-4prb-tdl-a \
        --oracle checkpoints/neural-ref-4prb [--variant norm-last]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from _common import write

from dmrx.nn import load_receiver
from dmrx.nn.adapt import OnlineAdapter, get_variant
from dmrx.ofdm import Channel, Transmitter, derive_seed, seed_everything
from dmrx.scenarios import build_receiver, get_scenario, parse_snr_db, simulate
from dmrx.scenarios.metrics import snr_at_bler


def snr10(link, scenario, receivers, snr_db, slots, seed):
    r = simulate(link, scenario, receivers, snr_db, slots, batch_size=250, seed=seed,
                 max_block_errors=100, progress=False)
    return {n: snr_at_bler([p.snr_db for p in r.points if p.receiver == n],
                           [p.counts.bler for p in r.points if p.receiver == n])
            for n in receivers}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pretrained", required=True)
    ap.add_argument("--oracle", required=True)
    ap.add_argument("--from", dest="src", default="tdl-a-30ns-3kmh")
    ap.add_argument("--to", dest="dst", default="tdl-c-300ns-60kmh")
    ap.add_argument("--variant", default="norm-last")
    ap.add_argument("--ks", default="0,25,50,100,200,400")
    ap.add_argument("--adapt-snr-db", type=float, default=12.0)
    ap.add_argument("--snr-db", default="5:15:1")
    ap.add_argument("--slots", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(2)
    pre = load_receiver(args.pretrained)
    link = pre.link
    oracle = load_receiver(args.oracle, link)
    src, dst = get_scenario(args.src), get_scenario(args.dst)
    snr_db = parse_snr_db(args.snr_db)
    ks = [int(k) for k in args.ks.split(",")]
    base = snr10(link, dst, {"pretrained": pre, "oracle": oracle,
                             "ls": build_receiver("ls", link),
                             "perfect": build_receiver("perfect", link)},
                 snr_db, args.slots, args.seed)
    adapter = OnlineAdapter(pre, get_variant(args.variant, seed=args.seed))
    tx, ch = Transmitter(link), Channel(link, dst.channel)
    no = 10 ** (-args.adapt_snr_db / 10)
    curve, t_detect, t_observe, seen = [], 0.0, 0.0, 0
    for k in ks:
        while seen < k:
            seed_everything(derive_seed(args.seed, "adapt-slot", seen))
            with torch.no_grad():
                y = ch(tx(1).x, no).y
            t0 = time.perf_counter()
            adapter(y, no)
            t1 = time.perf_counter()
            adapter.observe(y, no)
            t2 = time.perf_counter()
            t_detect += t1 - t0
            t_observe += t2 - t1
            seen += 1
        frozen = copy.deepcopy(adapter.rx).eval()
        s = snr10(link, dst, {"adapted": frozen}, snr_db, args.slots, args.seed)["adapted"]
        curve.append({"k": k, "snr_db_at_bler_10pct": s,
                      "gap_to_oracle_db": s - base["oracle"], "gap_to_ls_db": s - base["ls"],
                      "gap_to_perfect_db": s - base["perfect"], "updates": adapter.updates,
                      "rollbacks": adapter.rollbacks})
        print(curve[-1], flush=True)
    back = snr10(link, src, {"pretrained": pre, "adapted": copy.deepcopy(adapter.rx).eval()},
                 snr_db, args.slots, args.seed)
    within = [c["k"] for c in curve if c["gap_to_oracle_db"] <= 0.5]
    write("adaptation", {
        "benchmark": "adaptation",
        "setup": {"pretrained": args.pretrained, "oracle": args.oracle, "from": args.src,
                  "to": args.dst, "variant": args.variant,
                  "adapt_config": adapter.summary()["config"],
                  "adapt_snr_db": args.adapt_snr_db, "snr_db": snr_db,
                  "slots_per_point": args.slots, "seed": args.seed},
        "goal": "within 0.5 dB of the oracle after <= 200 slots; forgetting <= 0.3 dB; "
                "adaptation cost per slot <= inference cost per slot",
        "new_channel_snr_db_at_bler_10pct": base,
        "curve": curve,
        "slots_to_within_0p5db_of_oracle": within[0] if within else None,
        "forgetting": {"pretrained_on_from_db": back["pretrained"],
                       "adapted_on_from_db": back["adapted"],
                       "forgetting_db": back["adapted"] - back["pretrained"]},
        "cost": {"detect_s_per_slot": t_detect / max(seen, 1),
                 "observe_s_per_slot": t_observe / max(seen, 1),
                 "adaptation_over_inference": t_observe / max(t_detect, 1e-12)},
    })


if __name__ == "__main__":
    main()
