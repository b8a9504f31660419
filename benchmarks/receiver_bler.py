"""BLER vs SNR of LS, perfect CSI, the neural and the hybrid receiver on the reference links,
and each receiver's SNR at BLER = 10% with its gap to perfect CSI. Where the checkpoint folder
has `neural-da-<link>` (the neural receiver with data-aided passes, checkpoints/train.sh), it
runs as `neural-da` beside the others.

Setups: ref-4prb on tdl-c-300ns-3kmh and tdl-c-300ns-60kmh; ref-4prb-hs on tdl-c-300ns-300kmh.
All receivers see the same slots; each stops counting at a point after --max-block-errors block
errors (the usual 100-error rule) or --slots slots (2000 resolves BLER down to ~1e-2).

    python benchmarks/receiver_bler.py [--slots 2000] [--checkpoints checkpoints] [--threads 2]
        [--setups 1 --seed 2 --tag s1-seed2]   # one setup on other slots, for pooling

`receiver_bler_pool.py` reads several such files and finds each receiver's SNR at BLER 10%
on their pooled slots (block errors and slots add up per SNR point).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from _common import write

from dmrx.scenarios import build_receiver, get_link, get_scenario, parse_snr_db, simulate
from dmrx.scenarios.metrics import snr_at_bler

SETUPS = [
    ("ref-4prb", "tdl-c-300ns-3kmh", "5:13:1"),
    ("ref-4prb", "tdl-c-300ns-60kmh", "5:13:1"),
    ("ref-4prb-hs", "tdl-c-300ns-300kmh", "5:19:1"),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slots", type=int, default=2000)
    ap.add_argument("--max-block-errors", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=250)
    ap.add_argument("--checkpoints", default=str(Path(__file__).parents[1] / "checkpoints"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--setups", default="all", help="comma-separated indices into SETUPS")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tag", default=None,
                    help="write receiver_bler-<tag>.json (e.g. another --seed for pooling)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ck = Path(args.checkpoints)
    chosen = SETUPS if args.setups == "all" else [SETUPS[int(i)] for i in args.setups.split(",")]
    out = []
    for link_name, sc_name, snr in chosen:
        link = get_link(link_name)
        receivers = {
            "ls": build_receiver("ls", link),
            "perfect": build_receiver("perfect", link),
            "neural": build_receiver("neural", link, str(ck / f"neural-{link_name}")),
            "hybrid": build_receiver("hybrid", link, str(ck / f"hybrid-{link_name}")),
        }
        if (ck / f"neural-da-{link_name}").is_dir():
            receivers["neural-da"] = build_receiver("neural", link,
                                                    str(ck / f"neural-da-{link_name}"))
        r = simulate(link, get_scenario(sc_name), receivers, parse_snr_db(snr), args.slots,
                     batch_size=args.batch_size, seed=args.seed,
                     max_block_errors=args.max_block_errors, progress=False)
        print(r.table(), flush=True)
        summary = {}
        for name in receivers:
            pts = [p for p in r.points if p.receiver == name]
            summary[name] = {"snr_db_at_bler_10pct": snr_at_bler(
                [p.snr_db for p in pts], [p.counts.bler for p in pts])}
        ref = summary["perfect"]["snr_db_at_bler_10pct"]
        for s in summary.values():
            s["gap_to_perfect_db"] = s["snr_db_at_bler_10pct"] - ref
        out.append({"link": link_name, "scenario": sc_name, "summary": summary,
                    "points": [p.as_dict(link) for p in r.points],
                    "elapsed_s": round(r.elapsed_s, 1)})
    def gap(i, name):
        return next((o["summary"].get(name, {}).get("gap_to_perfect_db") for o in out
                     if (o["link"], o["scenario"]) == SETUPS[i][:2]), None)

    write("receiver_bler" if args.tag is None else f"receiver_bler-{args.tag}", {
        "benchmark": "receiver_bler",
        "setup": {"slots_per_point": args.slots, "max_block_errors": args.max_block_errors,
                  "seed": args.seed, "checkpoints": str(ck)},
        "goal": "neural within 0.5 dB of perfect CSI on ref-4prb (3 and 60 km/h); within 3 dB "
                "on ref-4prb-hs (tdl-c-300ns-300kmh)",
        "gaps_db": {f"{lk}/{sc}": {n: gap(i, n) for n in ("ls", "neural", "hybrid", "neural-da")}
                    for i, (lk, sc, _) in enumerate(SETUPS)},
        "results": out,
    })


if __name__ == "__main__":
    main()
