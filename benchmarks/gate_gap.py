"""Where does a gated adapter's loss against always-adapt come from?

`gated_adaptation.py` finds the gated adapter about 0.1 dB behind always-adapt on drift-default,
nearly all of it in the TDL-C segment, where the gate is open on 95-99 % of the slots. This
benchmark takes one of its results (the per-slot traces: the slots each gate updated on) and
reruns the same adapter (same checkpoint, variant and seeds, so the same slots) with updates on
chosen slots only. All of an adapter's randomness comes from its own generator, so the replay
of a gate's update slots reproduces the gated run block error for block error (checked: the
'replay' and 'always' arms must equal the traces, `replay_exact`). The arms, for the segment
under study (--segment, default 1: TDL-C) and the slots before it:

- always: every slot (the benchmark's always-adapt)
- replay: the gate's own update slots
- replay-skip-before: the gate's update slots within the segment only (its updates before the
  segment dropped)
- replay-fill: the gate's update slots before the segment, every slot within it
- oracle: no update before the segment, every slot within it (a gate that knows where the
  segments are and opens on the whole of this one)
- reset: every slot, with a fresh Adam (zero moments, step count 0) at the segment's first
  slot; the weights always-adapt had there are kept
- oracle-every-K (any K >= 1): the oracle plus every K-th slot before the segment (slots K-1,
  2K-1, ...): does a sparse duty cycle of updates on the channel before keep what the oracle
  loses?
- oracle-last-K: the oracle plus the last K slots before the segment, contiguous: the same
  number of updates as a duty cycle, bunched (is it their count or their spacing?)
- oracle-warm: the oracle, but on every slot before the segment the optimizer steps and the
  weights are put back: Adam's moments and step count are always-adapt's kind, the weights
  the pretrained ones (is the price in the optimizer's state?)
- restore: always-adapt, with the pretrained weights put back at the segment's first slot and
  its optimizer state kept (is the price in the weights?)

`--checkpoint` runs the arms from another receiver than the results' (e.g. a burned-in prior,
`dmrx adapt --save`); the replays are then not checked against the traces.

The schedule runs only up to the end of the segment (later slots cannot change it). Per arm:
block errors in the segment and before it, pooled over the seeds, and the slots lost by only
one of two arms (`discordant`) for each pair, whose split says how much of a difference is
chance (about +-sqrt(n) of n discordant slots).

    python benchmarks/gate_gap.py --results benchmarks/results/<a gated_adaptation result>.json

Session 31 ran it on the attack gate's two judged draws, `--results benchmarks/results/
gated_adaptation_hicem_big-12seeds-attack-confirm.json --tag attack-confirm` (seeds 50-61,
1162 s) and `--results .../gated_adaptation_hicem_big-12seeds-attack.json --gate
'gated@base-rate,attack=0.5' --tag attack` (seeds 38-49, 1319 s). Both replays are exact.
TDL-C block errors (3600 slots each), seeds 50-61 / 38-49 / pooled:

    always               281 / 290 / 571
    replay (the gate)    298 / 301 / 599
    replay-skip-before   291 / 300 / 591
    replay-fill          293 / 298 / 591
    oracle               288 / 301 / 589
    reset                289 / 292 / 581

- The oracle, closed on all of TDL-A and open on all of TDL-C, loses nearly as much in TDL-C as
  the gate: pooled 18 of its 28 block errors (14 slots lost only by always-adapt, 32 only by
  the oracle), on seeds 38-49 all of it (8 vs 8 against the replay). Most of the gated loss is
  the price of not adapting on TDL-A, not of the gate's choices in TDL-C.
- Part of that price is the optimizer: always-adapt with a fresh Adam at the TDL-C start and
  its own weights loses 10 pooled (5 vs 15 discordant), 8 of them on seeds 50-61.
- The gate's own decisions, its short TDL-A openings (skip-before) and its few closed TDL-C
  slots (fill), cost 5-7 errors each on seeds 50-61 and about nothing on 38-49.
Why updates on a channel the receiver already fits (TDL-A, where adapting changes no block
error) help on the next one is not established here.

Session 32, on the debounced gate's two draws (`--arms always,oracle,oracle-every-4,
oracle-every-8`, `--results .../gated_adaptation_hicem_big-12seeds-debounce.json --tag
duty-debounce`, 780 s, and `...-debounce-confirm.json --tag duty-debounce-confirm`, 840 s; the
always arm replays exactly). TDL-C block errors, seeds 62-73 / 74-85 / pooled (updates before
TDL-C per seed):

    always               289 / 316 / 605   (300)
    oracle               297 / 331 / 628   (0)
    oracle-every-4       291 / 318 / 609   (75)
    oracle-every-8       306 / 341 / 647   (37)
    oracle-last-37       304 / 339 / 643   (37, bunched at the end of TDL-A)
    oracle-last-75       298 / 328 / 626   (75, bunched)
    the debounced gate   296 / 333 / 629   (2, from its gated_adaptation runs)

(the oracle-last arms ran after the others, `--arms oracle-last-37,oracle-last-75 --tag
last-debounce` and `--tag last-debounce-confirm`, 389 and 384 s; every arm's adapter draws from
its own generator, so an arm's block errors do not depend on which arms run beside it.)

- The oracle's price replicates: 23 block errors over 24 seeds (23 slots lost only by
  always-adapt, 46 only by the oracle). The debounced gate pays exactly that (629 against
  628): it has no TDL-C loss of its own left; what it loses is the price of skipping TDL-A.
- The dose response is not monotonic, on both draws: 37 TDL-A updates are worse than none
  (20 vs 39 discordant against the oracle), 75 spread over TDL-A are as good as 300 (29 vs 33
  against always), and 75 against 37 is 14 vs 52. A few updates on a fitted channel hurt the
  next one, which is also what the attack gate's short TDL-A openings did on seeds 50-61 and
  what debounce removed.
- Bunched, 37 updates cost as much as spread (643 against 647), so it is their count; 75 in
  TDL-A's last 75 slots only get back to the oracle (626), while 75 spread over the whole
  segment get back to always-adapt (609): for more updates their spacing matters too. Why is
  not established. A guess, not checked: Adam's first steps move every weight by about lr
  whatever the gradient (`nn/adapt.py`'s note on crc-sparse), and the steps that follow, on
  slots spread over the segment, undo that and then help.
- So a keep-alive duty cycle while the gate is closed cannot buy the oracle's price back within
  #8's budget: 1 slot in 8 makes it worse, 1 in 4 buys it back but adds ~180 updates per seed
  over the gate's ~720 closed slots, which leaves about 45 % fewer updates than always-adapt
  (the goal asks 50 %). The label cannot see this benefit either: `should_adapt` compares
  weights on later slots of the same segment, and TDL-A's updates pay off only on the next one.

Session 33, the same two draws (`--arms oracle-warm,restore --tag warm-debounce[-confirm]`, 9-10
min each; then `--checkpoint checkpoints/neural-ref-4prb-tdl-a-burnin --arms always,oracle
--tag burnin-debounce[-confirm]`, 7 min each). TDL-C block errors, seeds 62-73 / 74-85 / pooled:

    always               289 / 316 / 605
    oracle               297 / 331 / 628
    oracle-warm          299 / 323 / 622   (Adam stepped on every TDL-A slot, weights put back)
    restore              299 / 322 / 621   (always-adapt's Adam, pretrained weights put back)
    from the burned-in prior (the prior after the adapter's 300 updates on TDL-A, other slots):
    always               279 / 314 / 593
    oracle               287 / 316 / 603   (24 slots lost only by always, 34 only by the oracle)
    from a second burn-in draw (`dmrx adapt ... --seed 1001 --save`, not shipped; --tag
    burnin1001-debounce[-confirm]):
    always               277 / 309 / 586
    oracle               287 / 318 / 605   (16 vs 35)
    and a third (seed 1002, --tag burnin1002-debounce[-confirm]):
    always               279 / 309 / 588
    oracle               288 / 319 / 607   (21 vs 40)

- The optimizer state that TDL-A's updates leave buys back about 6 of the oracle's 23 block
  errors (either way it is carried: warmed on the pretrained weights, or always-adapt's own).
  The rest is in the weights those updates leave: in part the online objective burned in at
  the operating point, which a gate that skips TDL-A pays on TDL-C.
- From a prior burned in on other TDL-A slots, always-adapt loses 12-19 block errors fewer,
  and skipping TDL-A costs 10 (the shipped burn-in, seed 1000), 19 and 19 (seeds 1001, 1002)
  instead of 23: a burn-in takes a part of the price, about a third on average, and the
  shipped one's half looks lucky. What else TDL-A's updates give TDL-C is not established. A
  deployed receiver is in a burned-in state long before a drift; `gated_adaptation.py`'s
  session 33 runs judge the gate from the shipped one, its session 34 runs from seed 1001's.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import time
from pathlib import Path

import torch
from _common import write

from dmrx.nn import load_receiver
from dmrx.nn.adapt import OnlineAdapter, get_variant
from dmrx.scenarios.adapt_run import run_schedule
from dmrx.scenarios.schedules import Schedule, Segment

ARMS = ("always", "replay", "replay-skip-before", "replay-fill", "oracle", "reset",
        "oracle-warm", "restore")


class SlotAdapter(OnlineAdapter):
    """An `OnlineAdapter` that updates only on `update_slots` (None: every slot); at
    `reset_at`, replaces its optimizer by a fresh one (zero moments, step count 0); on
    `warm_slots`, takes the optimizer step and puts the weights back (Adam's moments and step
    count advance, the weights do not move); at `restore_at`, puts the weights back to the
    pretrained ones and keeps the optimizer's state."""

    def __init__(self, receiver, config, update_slots: set[int] | None = None,
                 reset_at: int | None = None, warm_slots: set[int] | None = None,
                 restore_at: int | None = None):
        super().__init__(receiver, config)
        self.update_slots, self.reset_at = update_slots, reset_at
        self.warm_slots, self.restore_at = warm_slots or set(), restore_at
        self.warm_steps = 0

    def observe(self, y, no, c_hat=None, crc_ok=None, update=True) -> dict:
        if self.slot == self.reset_at:
            self.opt = torch.optim.Adam(self._params, lr=self.config.lr)
        if self.slot == self.restore_at:
            self._set_params(self._anchor)  # the pretrained weights
            self._snapshot = self._state()
        allowed = (self.update_slots is None or self.slot in self.update_slots
                   or self.slot in self.warm_slots)
        return super().observe(y, no, c_hat=c_hat, crc_ok=crc_ok, update=update and allowed)

    def _step(self, y, no, c_hat, crc_ok) -> bool:
        if self.slot - y.shape[0] not in self.warm_slots:  # observe counted this slot already
            return super()._step(y, no, c_hat, crc_ok)
        keep = [p.detach().clone() for p in self._params]
        stepped = super()._step(y, no, c_hat, crc_ok)
        self._set_params(keep)
        self.warm_steps += stepped
        self.updates -= stepped  # a warm step moves no weight: not an update
        return stepped


def arm_slots(arm: str, gate_slots: list[int], start: int, stop: int) -> tuple:
    """(update slots or None for all, optimizer reset slot or None, warm slots or None,
    weight restore slot or None) of an arm."""
    within = set(range(start, stop))
    gate = set(gate_slots)
    if parsed := _parametric_arm(arm):
        kind, k = parsed
        before = range(k - 1, start, k) if kind == "every" else range(max(start - k, 0), start)
        return set(before) | within, None, None, None
    return {"always": (None, None, None, None), "replay": (gate, None, None, None),
            "replay-skip-before": (gate & within, None, None, None),
            "replay-fill": ({s for s in gate if s < start} | within, None, None, None),
            "oracle": (within, None, None, None), "reset": (None, start, None, None),
            "oracle-warm": (within, None, set(range(start)), None),
            "restore": (None, None, None, start)}[arm]


def _parametric_arm(arm: str) -> tuple[str, int] | None:
    """('every' or 'last', K) of an 'oracle-every-K' or 'oracle-last-K' arm with K a positive
    integer; None for any other name."""
    for kind in ("every", "last"):
        k = arm.removeprefix(f"oracle-{kind}-")
        if k != arm:
            return (kind, int(k)) if k.isdigit() and int(k) >= 1 else None
    return None


def run_seed(job: tuple) -> dict:
    seed, setup, gate_slots, segment, arms = job
    torch.set_num_threads(1)
    static = load_receiver(setup["checkpoint"])
    segs = tuple(Segment(s["scenario"], s["slots"], s["snr_db"])
                 for s in setup["schedule"]["segments"])[: segment + 1]
    sched = Schedule(f"{setup['schedule']['name']}[:{segment + 1}]", segs)
    start = sum(s.slots for s in segs[:-1])
    stop = start + segs[-1].slots
    config = get_variant(setup["variant"], seed=seed)
    rxs = {a: SlotAdapter(static, config, *arm_slots(a, gate_slots, start, stop)) for a in arms}
    t0 = time.perf_counter()
    res = run_schedule(sched, static.link, rxs, seed=seed, progress=False)
    errors = {a: [i for i, e in enumerate(res.block_errors[a]) if e] for a in arms}
    print(f"seed {seed}:", {a: len(v) for a, v in errors.items()},
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return {"seed": seed, "start": start, "stop": stop, "error_slots": errors,
            "updates": {a: r.updates for a, r in rxs.items()},
            "warm_steps": {a: r.warm_steps for a, r in rxs.items()},
            "rollbacks": {a: r.rollbacks for a, r in rxs.items()}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True,
                    help="a gated_adaptation.py result with per-slot traces")
    ap.add_argument("--gate", default="", help="the gated receiver's name (default: the first)")
    ap.add_argument("--segment", type=int, default=1,
                    help="index of the segment under study (1: TDL-C on drift-default)")
    ap.add_argument("--seeds", default="", help="comma-separated (default: all in --results)")
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--checkpoint", default="",
                    help="run the arms from this receiver instead of the results' own (the "
                         "replays are then not checked against the traces)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    path = Path(args.results)
    try:
        src = json.loads(path.read_text())
        traces, setup = src["traces"], src["setup"]
    except (OSError, ValueError, KeyError) as e:
        raise SystemExit(f"--results {path}: not a gated_adaptation result with traces "
                         f"({e})") from None
    gates = [n for n in src["receivers"] if n.startswith("gated@")]
    gate = args.gate or (gates[0] if gates else "")
    if gate not in gates:
        raise SystemExit(f"--gate {gate!r}: not in {path.name} (has {gates})")
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if unknown := [a for a in arms if a not in ARMS and not _parametric_arm(a)]:
        raise SystemExit(f"--arms: unknown {unknown}; use {list(ARMS)}, oracle-every-K or "
                         "oracle-last-K")
    if not 0 <= args.segment < len(setup["schedule"]["segments"]):
        raise SystemExit(f"--segment {args.segment}: the schedule has "
                         f"{len(setup['schedule']['segments'])} segments")
    seeds = [int(v) for v in args.seeds.split(",") if v] or [int(s) for s in traces]
    if missing := [s for s in seeds if str(s) not in traces]:
        raise SystemExit(f"--seeds {missing}: not in {path.name}")
    if args.checkpoint:
        setup = setup | {"checkpoint": args.checkpoint}
    t_start = time.perf_counter()
    jobs = [(s, setup, traces[str(s)]["gate_updated_slots"][gate], args.segment, arms)
            for s in seeds]
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        runs = pool.map(run_seed, jobs, chunksize=1)
    start, stop = runs[0]["start"], runs[0]["stop"]

    def in_seg(slots):
        return {s for s in slots if start <= s < stop}

    per_arm = {}
    for a in arms:
        per_arm[a] = {"errors_in_segment": sum(len(in_seg(r["error_slots"][a])) for r in runs),
                      "errors_before": sum(sum(s < start for s in r["error_slots"][a])
                                           for r in runs),
                      "updates": sum(r["updates"][a] for r in runs),
                      "rollbacks": sum(r["rollbacks"][a] for r in runs),
                      "warm_steps": sum(r["warm_steps"][a] for r in runs),
                      "per_seed": {str(r["seed"]): len(in_seg(r["error_slots"][a]))
                                   for r in runs}}
    # the judged run's own errors on the same slots, to check the replay is exact
    judged = {} if args.checkpoint else {"always": "always", "replay": gate}
    exact = {a: all(r["error_slots"][a] == [s for s in traces[str(r["seed"])]["error_slots"][n]
                                            if s < stop] for r in runs)
             for a, n in judged.items() if a in arms}
    discordant = {}
    for a, b in itertools.combinations(arms, 2):
        only_a = sum(len(in_seg(r["error_slots"][a]) - in_seg(r["error_slots"][b])) for r in runs)
        only_b = sum(len(in_seg(r["error_slots"][b]) - in_seg(r["error_slots"][a])) for r in runs)
        discordant[f"{a} vs {b}"] = [only_a, only_b]
    seg = setup["schedule"]["segments"][args.segment]
    name = "gate_gap" + (f"_{args.tag}" if args.tag else "")
    write(name, {
        "benchmark": "gate_gap",
        "setup": {"results": str(path), "gate": gate, "checkpoint": setup["checkpoint"],
                  "variant": setup["variant"], "segment": args.segment,
                  "segment_scenario": seg["scenario"], "segment_slots": [start, stop],
                  "seeds": seeds, "arms": arms},
        "replay_exact": exact,
        "arms": per_arm,
        "discordant": discordant,
        "note": "discordant 'a vs b': [slots of the segment lost only by a, only by b], pooled",
        "elapsed_s": round(time.perf_counter() - t_start, 1),
    })


if __name__ == "__main__":
    main()
