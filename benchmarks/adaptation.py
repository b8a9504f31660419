"""How fast online adaptation recovers on a channel the pretrained receiver never saw, what it
forgets, and what it costs.

A receiver pretrained on --from (only) first lives --warmup slots on --from (so an adapter that
waits for a shift has seen the old channel and its replay memory holds it), then adapts slot by
slot on --to at --adapt-snr-db, one copy per variant, all on the same slots (detect, decode,
re-encode CRC-passed blocks, `observe`).
After k = 0, 25, 50, 100, 200, 400 slots a frozen copy of each is measured: SNR at BLER 10% on
--to, with its gap to an oracle trained offline on --to, to LS and to perfect CSI (all on the
same evaluation slots). Forgetting: the adapted receivers' SNR at BLER 10% back on --from, against
the pretrained one, i.e. at the moment a schedule returns there. Cost: time per slot of
`observe` (updates included) over time per slot of detection (network only), and over the
receiver chain (detection + LDPC decoding).

    python benchmarks/adaptation.py --pretrained checkpoints/neural-ref-4prb-tdl-a \
        --oracle checkpoints/neural-ref-4prb [--variants crc,crc-lite,dmrs-crc]

Multi-condition starts (session 8; declared in this commit before any was run): does a prior
wider than TDL-A close the gap that no label source or step count closed from the TDL-A-only
receiver? `checkpoints/neural-ref-4prb-multi` (TDL-A/B/D/E, 30-300 ns, 3-120 km/h) and
`-narrow` (<= 100 ns, <= 30 km/h), neither with any TDL-C channel, each run once as
    python benchmarks/adaptation.py --pretrained checkpoints/neural-ref-4prb-{multi,narrow} \
        --oracle checkpoints/neural-ref-4prb --variants crc,crc-lite,crc-sparse,dmrs-crc \
        --seed 2 --threads 1 --tag {multi,narrow}
on seed 2 (seed 1 chose the variants). A start meets the goal if one variant is within 0.5 dB
of the oracle at some k <= 200 with forgetting <= 0.3 dB and adaptation_over_detection <= 1
(network only, the strict reading); the pretrained start's own gap (k = 0 before any update,
`new_channel_snr_db_at_bler_10pct`) is reported beside it, so that what adaptation adds is
not confused with what the prior brings.

Broad starts (session 9; declared in 17e2a9c before training): `-broad` (from scratch) and
`-multi-broad` (continuing multi) are trained on a 100-channel grid, TDL-A/B/D/E x
{10,30,100,200,400} ns x {3,15,30,90,150} km/h, and run the same way with
`--variants crc-lite,crc-sparse,dmrs-crc --seed 2 --threads 1 --tag {broad,multi-broad}`; a start
that meets the goal on seed 2 must meet it again with the same variant on seed 3.
Neither did (the TDL-A warmup's updates at lr 1e-3 cost the broad prior 0.5-2 dB). Exploratory:
`crc-sparse-slow` (lr 1e-4) keeps it, chosen on seed 2 (0.50 dB at k=200) and not confirmed on
seed 3 (0.67 dB); its spread over seeds is then measured on fresh seeds 4 and 5
(`--variants crc-sparse-slow --tag broad-slow-seed{4,5}`), all of 3-5 reported, none dropped.

Broad-long start (session 10; declared in 597cc32 while it trained, before any run):
`checkpoints/neural-ref-4prb-broad-long` continues `-broad` for 10000 steps on the same grid (the
prior decided every earlier result, and 200 slots of adaptation did not measurably move a good
one). Run on fresh seeds 6, 7, 8 as
    python benchmarks/adaptation.py --pretrained checkpoints/neural-ref-4prb-broad-long \
        --oracle checkpoints/neural-ref-4prb --variants crc-sparse-slow,crc-sparse-slow-32 \
        --seed {6,7,8} --threads 1 --tag broad-long-seed{6,7,8} \
        --also checkpoints/neural-ref-4prb-broad
(`--also` measures the 12000-step broad start untouched on the same slots: a paired answer to
whether the longer training moved the prior; it changes none of the other figures)
A variant meets the goal if its gap to the oracle at k = 200 (not the best k), averaged over
the three seeds, is <= 0.5 dB, with forgetting <= 0.3 dB and adaptation_over_detection <= 1 on
every seed. The untouched prior's mean gap is reported beside it: what adaptation adds is the
difference, and may be nothing.
Outcome: crc-sparse-slow-32 meets the rule (gap at k = 200: 0.21 / 0.20 / 0.25 dB, mean 0.22;
forgetting <= 0.06 dB; cost 0.76-0.82x); crc-sparse-slow has the gap (mean 0.23) but costs
1.05-1.12x. The untouched prior is 0.20 / 0.15 / 0.22 dB from the oracle (broad on the same
slots: 0.59 / 0.26 / 0.42): the longer training, not the adaptation, closed the gap.
`checkpoints/neural-ref-4prb-broad-long-2` (10000 steps more) was declared while broad-long's
runs were under way, before any of their results, but after a screening look (data BCE at 10 dB
on 600 TDL-C slots of seed 123, not an evaluation seed: broad 0.2120, broad-long 0.2077, oracle
0.2030) showed the longer training had closed about half of the BCE gap. It is judged by the
same rule on fresh seeds 9, 10, 11 (`--tag broad-long-2-seed{9,10,11} --also
checkpoints/neural-ref-4prb-broad-long`).
Outcome: crc-sparse-slow-32 meets it again (0.23 / 0.09 / 0.13 dB at k = 200, mean 0.15;
forgetting <= 0.05 dB; cost 0.74-0.81x); the untouched prior is 0.17 / 0.17 / 0.15 dB from the
oracle against broad-long's 0.23 / 0.17 / 0.15 on the same slots: the prior has levelled off.

`--genie-labels` (an upper bound, not an adapter): every adapted slot is labelled with its
true coded bits, as if every block's CRC passed and decoding were free; what the same update
schedule could reach if the labels were never the bottleneck. It writes adaptation-<tag>.json
(--tag, default 'genie') instead of adaptation.json.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from _common import write

from dmrx.nn import load_receiver
from dmrx.nn.adapt import OnlineAdapter, get_variant
from dmrx.ofdm import Channel, Decoder, Transmitter, derive_seed, seed_everything
from dmrx.scenarios import build_receiver, get_scenario, parse_snr_db, simulate
from dmrx.scenarios.metrics import snr_at_bler


def snr10(link, scenario, receivers, snr_db, slots, seed):
    r = simulate(link, scenario, receivers, snr_db, slots, batch_size=200, seed=seed,
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
    ap.add_argument("--variants", default="crc,crc-lite,dmrs-crc")
    ap.add_argument("--ks", default="0,25,50,100,200,400")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--adapt-snr-db", type=float, default=12.0)
    ap.add_argument("--snr-db", default="7:14:1")
    ap.add_argument("--slots", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--genie-labels", action="store_true",
                    help="label every adapted slot with its true coded bits (upper bound)")
    ap.add_argument("--tag", default=None, help="write adaptation-<tag>.json")
    ap.add_argument("--steps-per-update", type=int, default=None,
                    help="override the variants' optimizer steps per update")
    ap.add_argument("--also", default="",
                    help="comma-separated checkpoints measured untouched on the same new-channel "
                         "slots as the others (reported as 'also:<path>' only)")
    args = ap.parse_args()
    if args.genie_labels and any(not get_variant(v).crc_labels
                                 for v in args.variants.split(",") if v.strip()):
        ap.error("--genie-labels needs variants that learn from block labels (crc_labels)")
    tag = args.tag or ("genie" if args.genie_labels else None)
    torch.set_num_threads(args.threads)
    pre = load_receiver(args.pretrained)
    link = pre.link
    oracle = load_receiver(args.oracle, link)
    src, dst = get_scenario(args.src), get_scenario(args.dst)
    snr_db = parse_snr_db(args.snr_db)
    ks = [int(k) for k in args.ks.split(",")]
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    # receivers stop counting one by one (the 100-error rule) on the same slots, so the extra
    # ones of --also do not change the others' figures
    also = {f"also:{p}": load_receiver(p, link) for p in args.also.split(",") if p.strip()}
    base = snr10(link, dst, {"pretrained": pre, "oracle": oracle,
                             "ls": build_receiver("ls", link),
                             "perfect": build_receiver("perfect", link), **also},
                 snr_db, args.slots, args.seed)
    print("new channel:", base, flush=True)
    over = {} if args.steps_per_update is None else {"steps_per_update": args.steps_per_update}
    adapters = {v: OnlineAdapter(pre, get_variant(v, seed=args.seed, **over)) for v in names}
    tx, decoder = Transmitter(link), Decoder(link)
    ch_src, ch = Channel(link, src.channel), Channel(link, dst.channel)
    no = 10 ** (-args.adapt_snr_db / 10)
    cost = {v: {"detect": 0.0, "decode": 0.0, "observe": 0.0} for v in names}
    curves = {v: [] for v in names}

    def live(y, account: bool, c_true=None) -> None:
        for v, ad in adapters.items():
                t0 = time.perf_counter()
                llr = ad(y, no)
                t1 = time.perf_counter()
                with torch.no_grad():
                    b_hat, crc_ok = decoder(llr)
                t2 = time.perf_counter()
                if c_true is not None:  # genie: every block labelled, correctly
                    c_hat, crc_ok = c_true, torch.ones_like(crc_ok)
                else:
                    c_hat = tx(b_hat).c if ad.config.crc_labels and bool(crc_ok.all()) else None
                ad.observe(y, no, c_hat=c_hat, crc_ok=crc_ok if c_hat is not None else None)
                t3 = time.perf_counter()
                if account:
                    cost[v]["detect"] += t1 - t0
                    cost[v]["decode"] += t2 - t1
                    cost[v]["observe"] += t3 - t2

    for i in range(args.warmup):
        seed_everything(derive_seed(args.seed, "warmup-slot", i))
        with torch.no_grad():
            y = ch_src(tx(1).x, no).y
        live(y, account=False)
    seen = 0
    for k in ks:
        while seen < k:
            seed_everything(derive_seed(args.seed, "adapt-slot", seen))
            with torch.no_grad():
                slot = tx(1)
                y = ch(slot.x, no).y
            live(y, account=True, c_true=slot.c if args.genie_labels else None)
            seen += 1
        frozen = {v: copy.deepcopy(ad.rx).eval() for v, ad in adapters.items()}
        s = snr10(link, dst, frozen, snr_db, args.slots, args.seed)
        for v, ad in adapters.items():
            curves[v].append({"k": k, "snr_db_at_bler_10pct": s[v],
                              "gap_to_oracle_db": s[v] - base["oracle"],
                              "gap_to_ls_db": s[v] - base["ls"],
                              "gap_to_perfect_db": s[v] - base["perfect"],
                              "updates": ad.updates, "rollbacks": ad.rollbacks})
            print(v, curves[v][-1], flush=True)
    back = snr10(link, src, {"pretrained": pre} | {v: copy.deepcopy(ad.rx).eval()
                                                   for v, ad in adapters.items()},
                 snr_db, args.slots, args.seed)
    results = {}
    for v, ad in adapters.items():
        within = [c["k"] for c in curves[v] if c["gap_to_oracle_db"] <= 0.5]
        t = cost[v]
        results[v] = {
            "adapt_config": ad.summary()["config"],
            "curve": curves[v],
            "slots_to_within_0p5db_of_oracle": within[0] if within else None,
            "forgetting": {"pretrained_on_from_db": back["pretrained"],
                           "adapted_on_from_db": back[v],
                           "forgetting_db": back[v] - back["pretrained"]},
            "cost": {"detect_ms_per_slot": 1e3 * t["detect"] / max(seen, 1),
                     "decode_ms_per_slot": 1e3 * t["decode"] / max(seen, 1),
                     "observe_ms_per_slot": 1e3 * t["observe"] / max(seen, 1),
                     "adaptation_over_detection": t["observe"] / max(t["detect"], 1e-12),
                     "adaptation_over_detection_and_decoding":
                         t["observe"] / max(t["detect"] + t["decode"], 1e-12)},
        }
    write("adaptation" if tag is None else f"adaptation-{tag}", {
        "benchmark": "adaptation",
        "setup": {"pretrained": args.pretrained, "oracle": args.oracle, "from": args.src,
                  "to": args.dst, "adapt_snr_db": args.adapt_snr_db, "snr_db": snr_db,
                  "slots_per_point": args.slots, "max_block_errors": 100, "seed": args.seed,
                  "labels": "genie (true coded bits, every slot)" if args.genie_labels
                  else "the variants' own"},
        "goal": "within 0.5 dB of the oracle after <= 200 slots; forgetting <= 0.3 dB; "
                "adaptation cost per slot <= inference cost per slot",
        "new_channel_snr_db_at_bler_10pct": base,
        "variants": results,
    })


if __name__ == "__main__":
    main()
