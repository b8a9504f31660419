"""Receiver-only throughput (y -> llr, slots/s) of the neural and hybrid receivers (and of the
data-aided `neural-da` where shipped) against the classic LS/LMMSE receiver, measured in the
same run, with parameter counts.

    python benchmarks/receiver_speed.py [--rounds 15] [--checkpoints checkpoints] [--tag T]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from _common import write

from dmrx.ofdm import Channel, Transmitter, seed_everything
from dmrx.scenarios import build_receiver, get_link, get_scenario


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tag", default="", help="write receiver_speed-<tag>.json")
    ap.add_argument("--checkpoints", default=str(Path(__file__).parents[1] / "checkpoints"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seed_everything(0)
    link = get_link("ref-4prb")
    ck = Path(args.checkpoints)
    rxs = {"ls": build_receiver("ls", link),
           "neural": build_receiver("neural", link, str(ck / "neural-ref-4prb")),
           "hybrid": build_receiver("hybrid", link, str(ck / "hybrid-ref-4prb"))}
    if (ck / "neural-da-ref-4prb").is_dir():
        rxs["neural-da"] = build_receiver("neural", link, str(ck / "neural-da-ref-4prb"))
    tx, ch = Transmitter(link), Channel(link, get_scenario("tdl-c-300ns-60kmh").channel)
    rows = []
    with torch.inference_mode():
        for batch in (64, 256):
            y = ch(tx(batch).x, 0.1).y
            rates = {n: [] for n in rxs}
            for rx in rxs.values():
                rx(y, 0.1)  # warm-up
            for i in range(args.rounds):
                order = list(rxs) if i % 2 == 0 else list(rxs)[::-1]
                for n in order:
                    t0 = time.perf_counter()
                    rxs[n](y, 0.1)
                    rates[n].append(batch / (time.perf_counter() - t0))
            med = {n: statistics.median(r) for n, r in rates.items()}
            rows.append({"batch": batch, **{f"{n}_slots_per_s": round(v, 1)
                                            for n, v in med.items()},
                         **{f"{n.replace('-', '_')}_over_ls": round(med[n] / med["ls"], 3)
                            for n in rxs if n != "ls"}})
    write("receiver_speed" + (f"-{args.tag}" if args.tag else ""), {
        "benchmark": "receiver_speed",
        "setup": {"link": link.name, "rounds": args.rounds, "threads": args.threads},
        "parameters": {n: sum(p.numel() for p in rx.parameters()) for n, rx in rxs.items()},
        "results": rows,
    })


if __name__ == "__main__":
    main()
