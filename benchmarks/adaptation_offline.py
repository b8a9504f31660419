"""How much data from a new channel does a pretrained receiver need to come within 0.5 dB of
an oracle trained offline on it? A bound for the online adapter of `adaptation.py`.

The pretrained receiver is fine-tuned *offline* on --to: every step a fresh batch of slots with
their true bits (no label noise, no replay memory, no limit on what a step may cost), constant
learning rate, the pretrained receiver's hidden-DMRS task kept. At each step count of
--milestones a copy is measured like `adaptation.py` measures its adapted receivers (SNR at
BLER 10% on --to, same evaluation slots, gap to the oracle), so the slots this took
(steps x batch size) can be set against the 200 slots the issue's goal allows an online
adapter. Online adaptation sees each slot once, labelled by its own CRC; this sees many more,
all labelled: if it needs thousands of slots, no online variant will do it in 200.

`--pool-slots N` separates data from compute: N slots of --to are drawn once, and every step
takes its batch from them (uniformly, with replacement), so the curve is what unlimited
optimizer steps on N labelled slots can give (N = 200: the goal's budget; still offline, with
true bits, no label noise). It writes adaptation_offline-<pretrained>-pool<N>.json.

    python benchmarks/adaptation_offline.py --pretrained checkpoints/neural-ref-4prb-multi \
        --oracle checkpoints/neural-ref-4prb [--milestones 25,100,400,1600] [--seed 2]
"""

from __future__ import annotations

import argparse
import copy
import math
import tempfile

import torch
from _common import write
from adaptation import snr10

from dmrx.nn import load_receiver
from dmrx.nn.checkpoint import read_config
from dmrx.nn.train import (
    SlotStream,
    TrainConfig,
    bmd_rate,
    make_optimizer,
    receiver_loss,
    train,
)
from dmrx.ofdm import derive_seed, seed_everything
from dmrx.scenarios import build_receiver, get_scenario, parse_snr_db
from dmrx.scenarios.simulate import parse_db_range


def pool(cfg: TrainConfig, pre: torch.nn.Module, n: int, milestones: list[int],
         measure) -> None:
    """Fine-tune a copy of `pre` on n slots drawn once (as `train` would draw them), each step
    a batch drawn from them with replacement; `measure(step, rx, bmd_rate)` at the milestones.
    The optimizer, clipping and loss are `train`'s."""
    rx = copy.deepcopy(pre).train()
    y, no, c = SlotStream(cfg, cfg.seed, tag="offline-pool")(0, n)
    opt = make_optimizer(cfg, rx.parameters())
    gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "offline-pool-batches"))
    losses: list[float] = []
    for step in range(1, milestones[-1] + 1):
        idx = torch.randint(n, (cfg.batch_size,), generator=gen)
        seed_everything(derive_seed(cfg.seed, "offline-pool-step", step))  # hidden DMRS
        loss, data_loss = receiver_loss(rx, y[idx], no[idx], c[idx], cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(rx.parameters(), cfg.grad_clip)
        opt.step()
        losses.append(data_loss.item())
        if step in milestones:
            recent = losses[-cfg.epoch_steps:]
            measure(step, copy.deepcopy(rx), bmd_rate(sum(recent) / len(recent)))
            rx.train()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pretrained", required=True)
    ap.add_argument("--oracle", required=True)
    ap.add_argument("--to", dest="dst", default="tdl-c-300ns-60kmh")
    ap.add_argument("--milestones", default="25,100,400,1600",
                    help="training steps after which the fine-tuned receiver is measured")
    ap.add_argument("--lr", type=float, default=3e-4, help="constant (the 'crc' adapter's)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--train-snr-db", default="4:16", help="low:high of the training slots")
    ap.add_argument("--snr-db", default="7:14:1")
    ap.add_argument("--slots", type=int, default=400)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pool-slots", type=int, default=None,
                    help="train on this many slots drawn once (default: fresh slots per step)")
    args = ap.parse_args()
    if args.pool_slots is not None and args.pool_slots < 1:
        ap.error(f"--pool-slots {args.pool_slots}: must be >= 1")
    torch.set_num_threads(args.threads)
    milestones = sorted({int(m) for m in args.milestones.split(",")})
    if milestones[0] < 1:
        ap.error(f"--milestones {args.milestones!r}: step counts must be >= 1")
    try:
        lo, hi = parse_db_range(args.train_snr_db, "--train-snr-db")
    except ValueError as e:
        ap.error(str(e))
    pre = load_receiver(args.pretrained)
    link = pre.link
    dst = get_scenario(args.dst)
    snr_db = parse_snr_db(args.snr_db)
    base = snr10(link, dst, {"pretrained": pre, "oracle": load_receiver(args.oracle, link),
                             "ls": build_receiver("ls", link),
                             "perfect": build_receiver("perfect", link)},
                 snr_db, args.slots, args.seed)
    print("new channel:", base, flush=True)
    meta = read_config(args.pretrained)
    trained = meta.get("train") or {}
    cfg = TrainConfig(link=link, channels=((dst.name, dst.channel),), receiver="neural",
                      net=meta.get("net"), snr_db=(lo, hi), steps=milestones[-1],
                      batch_size=args.batch_size, lr=args.lr, scheduler="constant",
                      epoch_steps=math.gcd(*milestones),
                      seed=args.seed, checkpoint_every=milestones[-1],
                      dmrs_hide_fraction=trained.get("dmrs_hide_fraction", 0.0),
                      init_checkpoint=args.pretrained)
    curve = []

    def measure(m: int, rx: torch.nn.Module, rate: float | None) -> None:
        s = snr10(link, dst, {"tuned": rx.eval()}, snr_db, args.slots, args.seed)["tuned"]
        curve.append({"steps": m, "slots_seen": m * args.batch_size if args.pool_slots is None
                      else min(args.pool_slots, m * args.batch_size),
                      "train_bmd_rate": rate, "snr_db_at_bler_10pct": s,
                      "gap_to_oracle_db": s - base["oracle"]})
        print(curve[-1], flush=True)

    if args.pool_slots is None:
        with tempfile.TemporaryDirectory() as out:
            for m in milestones:
                r = train(cfg, out, progress=False, stop_after=m)
                measure(m, load_receiver(out, link), r.log[-1]["bmd_rate"] if r.log else None)
    else:
        pool(cfg, pre, args.pool_slots, milestones, measure)
    name = args.pretrained.rstrip("/").split("/")[-1]
    if args.pool_slots is not None:
        name += f"-pool{args.pool_slots}"
    if args.seed != 2:  # the default seed keeps the name earlier results were written under
        name += f"-seed{args.seed}"
    within = [c["slots_seen"] for c in curve if c["gap_to_oracle_db"] <= 0.5]
    write(f"adaptation_offline-{name}", {
        "benchmark": "adaptation_offline",
        "setup": {"pretrained": args.pretrained, "oracle": args.oracle, "to": args.dst,
                  "lr": args.lr, "scheduler": "constant", "batch_size": args.batch_size,
                  "train_snr_db": [lo, hi], "labels": "true bits of every slot",
                  "pool_slots": args.pool_slots,
                  "dmrs_hide_fraction": cfg.dmrs_hide_fraction, "snr_db": snr_db,
                  "slots_per_point": args.slots, "max_block_errors": 100, "seed": args.seed},
        "new_channel_snr_db_at_bler_10pct": base,
        "curve": curve,
        "slots_to_within_0p5db_of_oracle": within[0] if within else None,
    })


if __name__ == "__main__":
    main()
