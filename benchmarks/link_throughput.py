"""Slots/s of dmrx's LS receiver against Sionna's PUSCHReceiver, measured in the same run.

Two stages, at batch 64 and 256, on ref-4prb / tdl-c-300ns-60kmh at 10 dB:
- receiver: y -> llr (dmrx `LSReceiver` vs the estimator, detector and layer demapper that
  Sionna's `PUSCHReceiver.call` runs before decoding)
- full_chain: tx -> channel -> receiver -> TB decoding (dmrx LS + `Decoder` vs
  `PUSCHReceiver(y, no)`)
Rounds alternate which side runs first; the median per side is reported, and the ratio
dmrx/Sionna (goal: >= 0.95, i.e. dmrx's wrappers cost at most 5%).

    python benchmarks/link_throughput.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _common import write
from sionna.phy.nr import PUSCHReceiver

from dmrx.ofdm import Channel, Decoder, LSReceiver, Transmitter, seed_everything
from dmrx.scenarios import get_link, get_scenario


def _time(fn, n_slots: int) -> float:
    t0 = time.perf_counter()
    fn()
    return n_slots / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seed_everything(0)
    link, sc = get_link("ref-4prb"), get_scenario("tdl-c-300ns-60kmh")
    tx, ch = Transmitter(link), Channel(link, sc.channel)
    ours, decoder = LSReceiver(link), Decoder(link)
    ref = PUSCHReceiver(tx.pusch)
    no = 0.1

    def ref_llr(y):
        h_hat, err_var = ref._channel_estimator(y, torch.tensor(no))
        return ref._layer_demapper(ref._mimo_detector(y, h_hat, err_var, torch.tensor(no)))

    rows = []
    with torch.inference_mode():
        for batch in (64, 256):
            y = ch(tx(batch).x, no).y
            stages = {
                "receiver": (lambda y=y: ours(y, no), lambda y=y: ref_llr(y)),
                "full_chain": (
                    lambda b=batch: decoder(ours(ch(tx(b).x, no).y, no)),
                    lambda b=batch: ref(ch(tx(b).x, no).y, no),
                ),
            }
            for stage, (f_ours, f_ref) in stages.items():
                f_ours(), f_ref()  # warm-up
                r_ours, r_ref = [], []
                for i in range(args.rounds):
                    pair = [(f_ours, r_ours), (f_ref, r_ref)]
                    for fn, acc in pair if i % 2 == 0 else pair[::-1]:
                        acc.append(_time(fn, batch))
                d, s = statistics.median(r_ours), statistics.median(r_ref)
                rows.append({"stage": stage, "batch": batch, "dmrx_slots_per_s": round(d, 1),
                             "sionna_slots_per_s": round(s, 1), "ratio": round(d / s, 3)})
    write("link_throughput", {
        "benchmark": "link_throughput",
        "setup": {"link": link.name, "scenario": sc.name, "snr_db": 10.0,
                  "rounds": args.rounds},
        "goal": "ratio >= 0.95 for every stage and batch",
        "pass": all(r["ratio"] >= 0.95 for r in rows),
        "results": rows,
    })


if __name__ == "__main__":
    main()
