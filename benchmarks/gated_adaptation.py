"""Gated adaptation: a metadata model decides when the online adapter updates. Does it cut the
updates by half for at most 0.1 dB?

1. A gate model (default: `LogisticModel` on the metadata `FEATURES`) is fitted on the
   'should_adapt' rows of DATA/train.parquet (`dmrx metadata build`; built here if missing) and
   scored (AUC) on val and test.
2. On drift-default (or --schedule), all on the same slots: the pretrained receiver (static),
   the always-adapt adapter (--variant, updating on every slot its policy allows) and the same
   adapter behind the gate (`GatedAdapter`: it detects and monitors every slot, updates only
   where P(should_adapt), averaged over ~1/--smoothing slots, >= the threshold; by default
   the label's positive rate in train). Updates performed, BLER and mean data BCE per
   segment; per-slot records come from `MetadataRecorder`. One worker process per seed
   (--seeds), results pooled: one seed's 1200 slots hold ~15 block errors of always-adapt.
3. The gap in dB: always-adapt runs again with every segment's SNR lowered by each of
   --offsets dB (same slots, same seeds). Its BLER (and mean BCE) against the offset is
   interpolated (log BLER, linear in dB) to find the offset at which always-adapt is as bad as
   the gated adapter at the nominal SNR: that offset is the gated adapter's loss in dB
   (<= 0: no loss). The slots only one of the two lost (`discordant_slots`) say how much of
   a BLER gap is chance; the BCE-based figure uses every bit.
4. With --select-on-seeds the threshold is not given but chosen on other runs of the schedule
   (seeds disjoint from the evaluation --seeds: other channel, noise and bit draws): every
   --candidates threshold is swept there as in 2-3, and the one with the largest update
   reduction whose loss (from BLER and from mean BCE) stays within --select-budget-db (the
   goal's 0.1 dB less a margin) is then evaluated, alone, on --seeds. The choice and the
   whole selection sweep are recorded under 'threshold_selection'.

    python benchmarks/gated_adaptation.py [--quick] [--data out/metadata] [--model logreg]
    python benchmarks/gated_adaptation.py --model hicem --select-on-seeds 11,12,13

Session 11 (declared before running): the HiCEM gate trained on the larger dataset of
`metadata_models.py`'s session-11 note, at the pre-declared base-rate threshold, on fresh
seeds: `--data out/metadata-big --model hicem --seeds 4,5,6 --tag big` (writes
gated_adaptation_hicem_big.json).
Goal as stated: >= 50 % fewer updates than always-adapt with a loss <= 0.1 dB (from the BLER
curve, as `goal_met` computes it).
Then, declared after that run met the goal (74.4 % fewer updates, 0.00 dB from BLER, 0.08 dB
from mean BCE) and before this one: a confirmation on three more fresh seeds, `--seeds 7,8,9
--tag big-confirm`, because 5 vs 5 discordant block errors leave the BLER-based loss within
about +-0.1 dB of chance. The goal counts as met only if it is met on 7-9 as well.
Outcome: on 7-9, 74.2 % fewer updates, 0.13 dB from BLER (3 vs 1 discordant block errors in
3600 slots), 0.08 dB from mean BCE: not met by the BLER criterion, so not met. By mean BCE (every
bit, the finer measure) the gate costs 0.08 dB on both seed sets.
Then, declared before running it: two verdicts on 3 seeds each disagree because 2 block errors
decide them, so one run on 12 fresh seeds (14400 slots), `--seeds 14,15,...,25 --tag
big-12seeds`, decides for this gate: met iff its pooled update reduction is >= 50 % and its
pooled loss from BLER is <= 0.1 dB. Seeds 11-13 were used by an earlier selection run, so they
are skipped.
Outcome (gated_adaptation_hicem_big-12seeds.json): 74.2 % fewer updates, 0.097 dB from BLER,
0.083 dB from mean BCE: met, at the edge. The loss is real: 21 slots failed only with the
gate, 4 only without it.

Session 29 (declared before running): does that verdict hold at today's code? Since 0da4d2e
the metadata builder runs every point and adaptation run on one torch thread (1d3d792), so
session 11's table cannot be rebuilt bit for bit, and the gate fitted on it moves with it; the
gate, the adapter and this benchmark are otherwise unchanged. The table is rebuilt on this
machine with session 11's command (`dmrx metadata build --out out/metadata-big --seed 1 --points
384,128,128 --adapt-runs 12,6,6 --workers 2`) and the run repeated with the same arguments
(`--data out/metadata-big --model hicem --seeds 14,15,...,25 --tag big-12seeds-rerun`). Reported
whatever it is. #8's gated point stays met only if the rerun meets the same rule (pooled update
reduction >= 50 %, pooled loss from BLER <= 0.1 dB); if it does not, the verdict rests on one
draw at the edge and the note says the point is open again.
Outcome (results/gated_adaptation_hicem_big-12seeds-rerun.json, 2486 s): not met, so #8's
gated point is open again. The rebuilt table has the same rows; 418 of its 4656 training
should_adapt labels are positive against 422 (float rounding in the adaptation runs), and the
gate's val / test AUROC are 0.794 / 0.648 (0.796 / 0.644). Static and always-adapt reproduce
session 11's run to the block error (360 and 275 of 14400). The gate saves 73.1 % of the
updates (74.2 %) and costs 0.119 dB from BLER (0.097) and 0.088 dB from mean BCE (0.083): 296
block errors against 292, 25 slots lost only with the gate and 4 only without (21 and 4). Four
block errors in 14400 slots move the verdict across 0.1 dB; the loss is about 0.1 dB, and the
goal's edge is inside its noise (a standard error of about 0.03 dB from the discordant slots).
Where the loss is, per segment (block errors over the 12 seeds, always / gated / static, with
the gate's updates out of 3600), the same in both runs within a few errors: TDL-A 2 / 2 / 2 (0
updates), TDL-C 264 / 275-278 / 335 (3415-3418), TDL-E 5 / 10 / 18 (283-440), TDL-A 4 / 5-6 / 5
(15). Most of it is in TDL-C, where the gate is open on 95 % of the slots.

Then, declared before running: the base-rate threshold spends only 23 of the goal's 50 points
of updates, and it leaves TDL-E, where adapting halves the block errors, mostly closed: the
gate's mean P there is 0.077 (seeds 14-25 rerun), just under the threshold 0.090, while TDL-A
stays at 0.035 / 0.053. A threshold of 0.07, fixed here from those recorded means (no run at it
has been made), should open much of TDL-E and keep both TDL-A segments closed, so it trades
some of the update margin for loss. Judged on fresh seeds 26-37 (never run by this benchmark):
`--data out/metadata-big --model hicem --thresholds 0.07,base-rate --seeds 26,27,...,37 --tag
big-12seeds-fresh` (the same rebuilt table and gate). #8's gated point is met if the 0.07 gate's
pooled update reduction is >= 50 % and its pooled loss from BLER <= 0.1 dB. The base-rate gate
on the same slots is reported beside it (a third draw of that operating point), not judged.
Outcome (results/gated_adaptation_hicem_big-12seeds-fresh.json, 2767 s): not met. The 0.07
gate saves 53.8 % of the updates and costs 0.135 dB from BLER (0.088 dB from mean BCE; 32 slots
lost only with the gate, 13 only without). The base-rate gate beside it saves 72.0 % for 0.121
dB (0.083 dB). Per segment (block errors, always / 0.07 / base-rate / static; the gates'
updates out of 3600): TDL-A 12 / 10 / 10 / 10 (0, 0), TDL-C 309 / 322 / 320 / 373 (3489,
3409), TDL-E 5 / 7 / 10 / 19 (3104, 619), TDL-A 4 / 10 / 7 / 6 (63, 3). The lower threshold
did what it was chosen for in TDL-E (7 errors against 10) and lost it again in the last
segment, where it is worse than the static receiver (10 errors against 6; small counts). The
likely reading, not checked slot by slot: the adapter leaves TDL-E with weights fitted to it,
the gate stays closed on TDL-A (mean P 0.050), and nothing brings the receiver back. A gate that
reads the channel alone cannot see that the adapter's own state needs an update; that, and the
TDL-C loss at 95 % open, is where the 0.1 dB goes. Over the three 12-seed draws
of the base-rate gate the loss from BLER is 0.097, 0.119 and 0.121 dB at 72-74 % fewer
updates.

Session 30. Read slot by slot (the traces the benchmark now keeps), the symmetric average of
weight 0.1 opens TDL-C 11-21 slots after it starts (seed 14: slot 321), because P climbs from
TDL-A's ~0.035 to the threshold at 10 % a slot. `GatedAdapter(attack=...)` weighs a slot whose
P is above the running average more (an AGC's fast attack, slow release). An exploration on
seeds 14-19, used before (`--attacks none,0.5,1 --offsets=-0.25 --seeds 14,...,19 --tag
explore-attack-14-19`, 1455 s; not judged): updates saved / loss from BLER / from mean BCE:
symmetric 73.7 % / 0.115 / 0.091 dB; attack 0.5: 54.5 % / 0.054 / 0.071 dB (per seed 510-578 of
1200 updates); attack 1: 48.9 % / 0.085 / 0.063 dB. The attack opens TDL-C within 0-6 slots,
but that is not where it gains: the first 50 TDL-C slots hold the same errors for every
receiver, static included, and with the gate open on 1784 of 1800 TDL-C slots the attack-0.5
gate still has 131 TDL-C errors against always-adapt's 126 (symmetric 134). What the attack
buys is TDL-E, where P's upper envelope crosses the threshold: 1297 of 1800 slots open, 1 error
(always 1, symmetric 3 with 194 updates, static 6), and a few reopenings in the last TDL-A.
Declared before running it: the attack-0.5 gate at the base-rate threshold, judged on fresh
seeds 38-49 (never run by this benchmark): `--data out/metadata-big --model hicem --attacks
none,0.5 --seeds 38,39,...,49 --tag big-12seeds-attack` (offsets -0.25,-0.5 as by default).
#8's gated point is met if `gated@base-rate,attack=0.5` saves >= 50 % of the updates and loses
<= 0.1 dB from BLER, both pooled. The symmetric gate beside it is reported (a fourth draw), not
judged. Its margin on the updates is thin (54.5 % on 14-19).
Outcome (results/gated_adaptation_hicem_big-12seeds-attack.json, 2722 s): met. The attack-0.5
gate saves 53.4 % of the updates (508-606 of 1200 per seed) and costs 0.083 dB from BLER
(0.070 dB from mean BCE; 20 slots lost only with the gate, 7 only without). It opens TDL-C 0-5
slots after it starts (the symmetric gate 5-22). The symmetric gate beside it, on the same
slots, happens to be within the goal on this draw too: 71.2 % for 0.089 dB (0.078 dB), so the
attack is not what made this verdict; on the same slots it lost 1 block error fewer here and
6 fewer on 14-19 (328 vs 329, 135 vs 141; always-adapt 315 and 130). Per segment (block errors,
always / attack 0.5 / symmetric / static; the gates' updates out of 3600): TDL-A 13 / 13 / 14 /
14 (133, 0), TDL-C 290 / 301 / 301 / 351 (3568, 3417), TDL-E 8 / 9 / 9 / 20 (2647, 737),
TDL-A 4 / 5 / 5 / 5 (363, 0). The symmetric gate's five draws so far (from BLER): 0.097,
0.119, 0.121, 0.115 (6 seeds), 0.089 dB; the attack gate's two: 0.054 (6 seeds, exploration)
and 0.083 dB (judged). Both lose most of their gap in TDL-C, where both are open on nearly
every slot. Why is not established: it is not the late opening (on 14-19 the first 50 TDL-C
slots hold the same errors for every receiver), and the attack gate's 133 TDL-A updates did not
close it either.
Then, declared before running it: one judged draw with a standard error of about 0.03 dB is at
the edge, as session 11's was, so a confirmation on twelve more fresh seeds, the attack gate
alone: `--data out/metadata-big --model hicem --attacks 0.5 --seeds 50,51,...,61 --tag
big-12seeds-attack-confirm`. The point is reported as met reliably only if this run meets the
same rule (>= 50 % fewer updates, <= 0.1 dB from BLER, pooled); otherwise as met on one of two
fresh draws, with both numbers.
Outcome (results/gated_adaptation_hicem_big-12seeds-attack-confirm.json, 2347 s): not met.
53.8 % fewer updates at 0.103 dB from BLER (0.074 dB from mean BCE; 23 slots lost only with the
gate, 6 only without). Per segment (always / attack 0.5 / static; updates out of 3600): TDL-A 7
/ 7 / 7 (91), TDL-C 281 / 298 / 342 (3561), TDL-E 5 / 5 / 20 (2697), TDL-A 8 / 8 / 8 (309): the
whole gap is in TDL-C again, with the gate open on 99 % of its slots. So the attack gate is met
on one of two fresh draws (0.083 and 0.103 dB); pooled over both (24 seeds, not a declared
rule) 53.6 % fewer updates at 0.093 dB from BLER and 0.072 dB from mean BCE. Like the symmetric
gate, it costs about 0.1 dB, and that cost sits in TDL-C, where no gate on P(should_adapt)
closes, so a better threshold or smoothing of this gate cannot remove it.

Session 31. Where the TDL-C gap comes from, by `gate_gap.py` on the confirmation's seeds 50-61
(results/gate_gap_attack-confirm.json): the adapter rerun with updates on chosen slots only
(TDL-C block errors, pooled; its replay of the gate's own update slots gives the gated run's
298 exactly). Always-adapt 281. The gate's TDL-C slots without its 90 TDL-A updates (runs of
1-9 slots): 291. Its TDL-A updates kept and every TDL-C slot filled: 293. No TDL-A update and
every TDL-C slot (an oracle that knows the segments): 288. Always-adapt with a fresh Adam at the
TDL-C start, its weights kept: 289 (10 slots lost only by it, 2 only by always-adapt). So about
half of the gap is not the gate's: an adapter that did not take always-adapt's TDL-A steps
enters TDL-C with another optimizer state and loses ~7 block errors there even when it then
updates on every slot. The other half is the gate's own decisions, its short TDL-A openings
and its few closed TDL-C slots, each worth 5-7 errors and neither decisive alone (17 vs 10 and
12 vs 7 discordant slots against the replay).
`GatedAdapter(debounce=k)` opens only after k consecutive slots at or above the threshold.
Recomputed from the recorded per-slot P of the attack gate on seeds 38-61 (the decisions only,
not the runs), k = 5 would cut its TDL-A updates from 90-133 to 13-23 per 3600 slots, keep TDL-E
at 2100 of 2650-2700 and open TDL-C 4 slots later (harmless: the first 50 TDL-C slots hold the
same errors for every receiver), for about 60 % fewer updates than always-adapt.
Declared before running it: the attack-0.5 gate with debounce 5 at the base-rate threshold,
judged on fresh seeds 62-73 (never run by this benchmark): `--data out/metadata-big --model
hicem --attacks 0.5 --debounces 1,5 --seeds 62,63,...,73 --tag big-12seeds-debounce`. #8's
gated point is met on this draw if `gated@base-rate,attack=0.5,debounce=5` saves >= 50 % of the
updates and loses <= 0.1 dB from BLER, both pooled. The attack gate without debounce beside it
is reported (its third draw), not judged.
After that declaration, and before its outcome, `gate_gap.py` on the attack gate's seeds 38-49
(results/gate_gap_attack.json) did not repeat the cost of the short TDL-A openings: without
them the gate lost 300 TDL-C blocks against 301 with them, and the oracle lost 301 too
(always-adapt 290). Pooled over both draws (24 seeds) the oracle loses 18 of the gate's 28
TDL-C block errors, so most of the gap is the price of not adapting on TDL-A at all, which no
gate that saves TDL-A's updates avoids; debounce can only take the gate's own share.
Outcome (results/gated_adaptation_hicem_big-12seeds-debounce.json, 3193 s): met on this draw.
The debounced gate saves 59.1 % of the updates (456-530 of 1200 per seed) and costs 0.069 dB
from BLER (0.077 dB from mean BCE; 18 slots lost only with the gate, 10 only without). The
attack gate without debounce beside it, on the same slots: 52.7 % for 0.111 dB (0.068 dB; 26
vs 13). Per segment (block errors, always / debounce 5 / attack / static; the gates' updates
out of 3600): TDL-A 8 / 8 / 7 / 7 (28, 166), TDL-C 289 / 296 / 302 / 364 (3503, 3555), TDL-E 1
/ 1 / 1 / 10 (2165, 2710), TDL-A 7 / 8 / 8 / 7 (194, 381). Debounce did what it was chosen
for: it kept TDL-E, dropped most TDL-A openings and lost 6 TDL-C blocks fewer than the attack
gate on the same slots; one draw, within about 0.03 dB of noise, so a confirmation on fresh
seeds should follow before the point counts as met reliably.

Session 32. Declared before running it: the confirmation of that draw, the debounced gate
alone, on fresh seeds 74-85 (never run by this benchmark): `--data out/metadata-big --model
hicem --attacks 0.5 --debounces 5 --seeds 74,75,...,85 --tag big-12seeds-debounce-confirm`
(the same table, gate and offsets). #8's gated point is reported as met reliably only if
`gated@base-rate,attack=0.5,debounce=5` again saves >= 50 % of the updates and loses <= 0.1 dB
from BLER, both pooled over these 12 seeds; otherwise as met on one of two fresh draws, with
both numbers. The threshold, attack and debounce are not changed after this declaration.
Outcome (results/gated_adaptation_hicem_big-12seeds-debounce-confirm.json, 2164 s): not met.
The debounced gate saves 60.0 % of the updates (461-528 of 1200 per seed) and costs 0.107 dB
from BLER (0.082 dB from mean BCE; 24 slots lost only with the gate, 5 only without). Per
segment (block errors, always / debounce 5 / static; the gate's updates out of 3600): TDL-A 6 /
7 / 7 (23), TDL-C 316 / 333 / 397 (3463), TDL-E 4 / 5 / 14 (2121), TDL-A 5 / 5 / 3 (158): the
gap is in TDL-C again, with the gate open on 96 % of it. So the debounced gate is met on one of
two fresh draws (0.069 and 0.107 dB). Pooled over both (24 seeds, not a declared rule; the
always-adapt curves of the two runs averaged, then interpolated as `loss_db` does): 59.5 % fewer
updates at 0.092 dB from BLER and 0.080 dB from mean BCE, 42 slots lost only with the gate and
15 only without (`gated_adaptation_pool.py --tag debounce-24`, which also gives a 90 % paired
seed-bootstrap interval, 0.053-0.131 dB; the attack gate over its three draws, 36 seeds, `--tag
attack-36`: 53.3 % fewer updates at 0.098 dB, 0.064-0.130 dB). `gate_gap.py` on both draws
(results/gate_gap_duty-debounce*.json): the debounced gate's TDL-C block errors equal the oracle
gate's (629 and 628 over 24 seeds; always-adapt 605), so its loss is the price of skipping TDL-A,
which a sparse keep-alive does not buy back within the update budget. Every gate on
P(should_adapt) measured here costs about 0.1 dB at 53-74 % fewer updates; the goal's edge is
inside a 12-seed draw's noise.

Session 33. What the oracle's price is. `gate_gap.py` arms on the debounced gate's two draws
(results/gate_gap_warm-debounce*.json, TDL-C block errors over seeds 62-85): the oracle with
Adam stepped on every TDL-A slot and the weights put back each time (`oracle-warm`) 622, and
always-adapt with the pretrained weights put back at the TDL-C start and its optimizer state
kept (`restore`) 621, against always-adapt's 605 and the oracle's 628: the optimizer state buys
back about 6 of the 23 block errors, the weights that always-adapt's 300 TDL-A updates leave
the rest. Those updates change no block error on TDL-A (the prior was trained there): in part
they burn the online objective in at the operating point (12 dB, the adapter's hidden-DMRS and
CRC losses), which always-adapt does once, on the first segment, and a gate that skips TDL-A
does on TDL-C. A deployed receiver has done that long before a drift; drift-default from the
freshly trained prior charges the burn-in to whichever adapter is not first to update.
`checkpoints/neural-ref-4prb-tdl-a-burnin` is that receiver: the prior after the same
adapter's 300 updates on TDL-A at 12 dB, on slots no benchmark draws (`dmrx adapt --save`,
checkpoints/train.sh). From it (`gate_gap.py --checkpoint ...-burnin --arms always,oracle`,
results/gate_gap_burnin-debounce*.json), TDL-C block errors always / oracle: 279 / 287 on seeds
62-73 and 314 / 316 on 74-85, pooled 593 / 603 (24 slots lost only by always-adapt, 34 only
by the oracle), against 605 / 628 from the fresh prior: the burned-in prior also makes
always-adapt better, and the price of skipping TDL-A falls from 23 block errors to 10.
Declared before running it: the debounced gate exactly as judged in sessions 31-32 (same
metadata table, HiCEM model, base-rate threshold, attack 0.5, debounce 5, offsets), from the
burned-in prior, on two fresh draws (seeds never run by this benchmark):
`--checkpoint checkpoints/neural-ref-4prb-tdl-a-burnin --data out/metadata-big --model hicem
--attacks 0.5 --debounces 5 --seeds 86,87,...,97 --tag burnin-12seeds-debounce`, then the same
with `--seeds 98,99,...,109 --tag burnin-12seeds-debounce-confirm`. Each draw meets #8's gated
point if the gate saves >= 50 % of the updates and loses <= 0.1 dB from BLER, pooled over its
12 seeds; the point is reported met from a burned-in prior only if both draws meet, otherwise
with both numbers. Expected from the gate_gap arms: about half the fresh prior's loss, some
0.04-0.05 dB. The figures from the fresh prior stand as they are (0.069 and 0.107 dB); they
answer another question, the cost of a gate on a receiver's first slots.
Outcome: met on both draws. Seeds 86-97 (results/gated_adaptation_hicem_burnin-12seeds-debounce
.json, 2089 s): 57.7 % fewer updates at the same BLER as always-adapt, 0.0 dB from BLER (13
slots lost only with the gate, 13 only without), 0.086 dB from mean BCE. Seeds 98-109
(`...-debounce-confirm.json`, 2071 s): 58.9 % fewer, 0.007 dB from BLER (9 vs 8), 0.087 dB from
mean BCE. Pooled (`gated_adaptation_pool.py --tag burnin-24`): 58.3 % fewer updates, 0.004 dB
from BLER (90 % seed-bootstrap interval -0.050 to 0.062), 0.087 dB from mean BCE. Per segment,
pooled block errors always / gate / static (the gate's updates out of 7200): TDL-A 13 / 14 / 13
(60), TDL-C 575 / 573 / 689 (7065), TDL-E 7 / 7 / 23 (4482), TDL-A 11 / 13 / 13 (383). The
TDL-C gap is gone (the gate_gap arms had predicted that about half of it would go). What is
left by mean BCE, about 0.09 dB as from the fresh prior, now sits in TDL-E and the last TDL-A
(mean BCE per slot 0.131 vs 0.128 and 0.101 vs 0.095 on seeds 86-97, 0.130 vs 0.127 and 0.100
vs 0.094 on 98-109): the gate, mostly closed on the last segment, leaves the receiver fitted
to TDL-E; at 12 dB those segments lose almost no blocks, so the BLER does not see it.
After the outcome, a check of the burn-in itself: two more burn-in draws (seeds 1001 and
1002, not shipped; gate_gap_burnin100[12]-debounce*.json) leave a price of 19 TDL-C block
errors each on seeds 62-85 where the shipped one leaves 10 (and the fresh prior 23). So a
burn-in takes about a third of the price on average, and the shipped one looks lucky: the
judged draws say the gate meets the point from this checkpoint, not that every burn-in gives
that margin (a price of 19 errors is about 0.08 dB on always-adapt's curve).

Session 34 (declared before running it). Does the point hold from a typical burn-in, not only
from the shipped one? The same judged gate (metadata table, HiCEM model, base-rate threshold,
attack 0.5, debounce 5, offsets), from the first of the two other burn-in draws (seed 1001,
whose oracle price on seeds 62-85 was 19 TDL-C block errors, as seed 1002's; rebuilt by
`dmrx adapt --checkpoint checkpoints/neural-ref-4prb-tdl-a --schedule
checkpoints/burn-in-tdl-a.toml --variants dmrs-crc --seed 1001 --no-classic --save
out/neural-ref-4prb-tdl-a-burnin-1001`), on two fresh draws: `--checkpoint
out/neural-ref-4prb-tdl-a-burnin-1001 --data out/metadata-big --model hicem --attacks 0.5
--debounces 5 --seeds 110,111,...,121 --tag burnin1001-12seeds-debounce`, then the same with
`--seeds 122,123,...,133 --tag burnin1001-12seeds-debounce-confirm`. Judged as in session 33:
each draw meets #8's gated point if the gate saves >= 50 % of the updates and loses <= 0.1 dB
from BLER over its 12 seeds; the point is reported met from a typical burn-in only if both
draws meet, otherwise with both numbers. Expected (session 33's note): 0.04-0.08 dB by BLER,
within the goal but without the shipped burn-in's margin, so one draw over 0.1 dB would not
be a surprise.
Outcome: met on both draws, at about the loss expected. Seeds 110-121
(results/gated_adaptation_hicem_burnin1001-12seeds-debounce.json, 2024 s): 59.3 % fewer
updates, 0.024 dB from BLER (16 slots lost only with the gate, 12 only without), 0.081 dB from
mean BCE. Seeds 122-133 (`...-confirm.json`): 58.8 % fewer, 0.084 dB from BLER (21 vs 9), 0.079
dB from mean BCE. Pooled (`gated_adaptation_pool.py --tag burnin1001-24`): 59.0 % fewer, 0.051
dB from BLER (90 % seed-bootstrap interval 0.012 to 0.091), 0.080 dB from mean BCE. Pooled
block errors always / gate / static per segment: TDL-A 7 / 8 / 7, TDL-C 604 / 614 / 721, TDL-E
9 / 10 / 23, TDL-A 13 / 17 / 15. The TDL-C gap is 10 block errors, where the shipped burn-in
left none and the fresh prior some 25-35; the mean-BCE loss sits in TDL-E and the last TDL-A
as before. So from both burn-in draws run, the gate meets the point on every draw (4 of 4),
with less margin from the typical one (0.05 dB pooled) than from the shipped one (0.004 dB).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import torch
from _common import write

from dmrx.explain.gate import GatedAdapter
from dmrx.explain.metadata import (
    FEATURES,
    MetadataRecorder,
    read_table,
    to_arrays,
)
from dmrx.explain.metadata_build import build_dataset
from dmrx.explain.metadata_fit import train_on_tables
from dmrx.nn import load_receiver
from dmrx.nn.adapt import OnlineAdapter, get_variant
from dmrx.scenarios.adapt_run import run_schedule
from dmrx.scenarios.schedules import Schedule, Segment, get_schedule


def shifted(schedule: Schedule, offset_db: float, slots: int | None) -> Schedule:
    return Schedule(f"{schedule.name}{offset_db:+g}dB", tuple(
        Segment(s.scenario, slots or s.slots, s.snr_db + offset_db) for s in schedule.segments))


def per_receiver(table, result, name: str) -> dict:
    """BLER, mean BCE and updates of one receiver, overall and per segment."""
    rx = np.array(table.column("receiver").to_pylist())
    m = rx == name
    bce = np.array(table.column("bce").to_pylist())[m]
    upd = np.array(table.column("updated").to_pylist())[m]
    bounds = [0, *result.schedule.boundaries, result.schedule.num_slots]
    segs = []
    for seg, a, b in zip(result.schedule.segments, bounds[:-1], bounds[1:], strict=True):
        segs.append({"scenario": seg.scenario, "snr_db": seg.snr_db,
                     "bler": result.bler(name, a, b), "mean_bce": float(bce[a:b].mean()),
                     "updates": int(upd[a:b].sum())})
    return {"bler": result.bler(name), "block_errors": int(sum(result.block_errors[name])),
            "mean_bce": float(bce.mean()), "updates": int(upd.sum()), "segments": segs}


def loss_db(offsets: list[float], values: list[float], target: float, log: bool) -> float | None:
    """The offset (dB, <= 0) where the always-adapt curve `values(offsets)` reaches `target`,
    as a loss (its negative); 0 and below: no loss. None when target lies beyond the lowest
    offset measured (the loss is larger than that)."""
    f = (lambda v: math.log(max(v, 1e-6))) if log else (lambda v: v)
    pts = sorted(zip(offsets, values, strict=True), reverse=True)  # 0, -0.25, -0.5, ...
    t = f(target)
    x0, v0 = pts[0]
    if t <= f(v0):  # as good as always-adapt at the nominal SNR or better
        # extrapolate the first slope upward, for the sign and size of the gain
        x1, v1 = pts[1]
        slope = (f(v1) - f(v0)) / (x1 - x0) if f(v1) != f(v0) else float("inf")
        return -((t - f(v0)) / slope) if math.isfinite(slope) and slope else 0.0
    for (xa, va), (xb, vb) in zip(pts[:-1], pts[1:], strict=True):
        lo, hi = f(va), f(vb)
        if lo <= t <= hi and hi > lo:
            return -(xa + (t - lo) / (hi - lo) * (xb - xa))
    return None


def val_operating_point(model, data: Path, threshold: float) -> dict:
    """On the val split's should_adapt rows (per slot, no smoothing): the share of slots the
    gate would open and the share of the positive adapt_gain it would keep."""
    t = read_table(data / "val.parquet")
    X, _, _ = to_arrays(t, "should_adapt")
    gain = t.column("adapt_gain").to_numpy(zero_copy_only=False)
    gain = gain[np.isfinite(gain)]
    open_ = model.predict_proba(X)[:, 1] >= threshold
    pos = np.clip(gain, 0, None)
    return {"open_rate": float(open_.mean()),
            "positive_gain_kept": float(pos[open_].sum() / max(pos.sum(), 1e-12))}


def gate_name(rule: str, attack: float | None, debounce: int = 1) -> str:
    return (f"gated@{rule}" + ("" if attack is None else f",attack={attack:g}")
            + ("" if debounce == 1 else f",debounce={debounce}"))


def gate_specs(thresholds: dict, attacks: list, debounces: list = (1,)) -> dict:
    """One gated adapter per threshold rule, attack and debounce: name -> (rule, threshold,
    attack, debounce)."""
    return {gate_name(r, a, k): (r, t, a, k) for r, t in thresholds.items() for a in attacks
            for k in debounces}


def run_seed(seed: int, args, thresholds: dict, model) -> dict:
    """One seed: static, always-adapt and the gated adapters on the schedule, then always-adapt
    at each SNR offset. Picklable results only (it runs in a worker process)."""
    torch.set_num_threads(args.threads)
    static = load_receiver(args.checkpoint)
    link = static.link
    base = get_schedule(args.schedule)
    slots = 100 if args.quick else None

    def adapter() -> OnlineAdapter:
        return OnlineAdapter(static, get_variant(args.variant, seed=seed))

    gates = {n: GatedAdapter(adapter(), model, threshold=t, smoothing=args.smoothing,
                             attack=a, debounce=k, features=FEATURES)
             for n, (_, t, a, k) in gate_specs(thresholds, args.attacks,
                                               args.debounces).items()}
    rec = MetadataRecorder(link, run="gated_adaptation", source="adapt", seed=seed)
    sched = shifted(base, 0.0, slots)
    t0 = time.perf_counter()
    res = run_schedule(sched, link, {"static": static, "always": adapter()} | gates,
                       seed=seed, progress=False, metadata=rec)
    print(f"seed {seed}:", res.table(), f"({time.perf_counter() - t0:.0f} s)", sep="\n",
          flush=True)
    table = rec.table()
    out = {n: per_receiver(table, res, n)
           for n in ("static", "always", *gates)}
    bounds = [0, *sched.boundaries, sched.num_slots]
    for name, gated in gates.items():
        ps = np.array([d["p"] for d in gated.decisions])
        for seg, a, b in zip(out[name]["segments"], bounds[:-1], bounds[1:], strict=True):
            seg["mean_p"] = float(ps[a:b].mean())
        fired = [d for d in gated.decisions if d["open"]]
        out[name]["gate"] = gated.summary()["gate"]
        firsts = (next((d for d in fired if a <= d["slot"] < b), None)
                  for a, b in zip(bounds[:-1], bounds[1:], strict=True))
        out[name]["first_firings"] = [f for f in firsts if f is not None]  # per segment
    # per slot, for reading the runs slot by slot: which slots each receiver lost, and each
    # gate's own P of every slot (before its running average) and the slots it updated on
    traces = {"error_slots": {n: np.flatnonzero(res.block_errors[n]).tolist() for n in out},
              "gate_p_slot": {n: [round(d["p_slot"], 3) for d in g.decisions]
                              for n, g in gates.items()},
              "gate_updated_slots": {n: [d["slot"] for d in g.decisions if d["updated"]]
                                     for n, g in gates.items()}}
    curve = [{"offset_db": 0.0, "bler": out["always"]["bler"],
              "mean_bce": out["always"]["mean_bce"]}]
    offsets = [float(v) for v in args.offsets.split(",")][: 1 if args.quick else None]
    for d in offsets:
        r2 = MetadataRecorder(link, run=f"always {d:+g} dB", source="adapt", seed=seed)
        res2 = run_schedule(shifted(base, d, slots), link, {"always": adapter()}, seed=seed,
                            progress=False, metadata=r2)
        s2 = per_receiver(r2.table(), res2, "always")
        curve.append({"offset_db": d, "bler": s2["bler"], "mean_bce": s2["mean_bce"],
                      "updates": s2["updates"]})
    return {"seed": seed, "schedule": sched.as_dict(), "receivers": out, "curve": curve,
            "traces": traces}


def pool(runs: list[dict], name: str) -> dict:
    """A receiver's numbers over seeds: rates averaged (every seed has the same slots count),
    counts summed."""
    rs = [r["receivers"][name] for r in runs]
    segs = []
    for i, seg in enumerate(rs[0]["segments"]):
        segs.append({k: seg[k] for k in ("scenario", "snr_db")} | {
            k: float(np.mean([r["segments"][i][k] for r in rs]))
            for k in ("bler", "mean_bce", "mean_p") if k in seg}
            | {"updates": int(sum(r["segments"][i]["updates"] for r in rs))})
    return {"bler": float(np.mean([r["bler"] for r in rs])),
            "block_errors": int(sum(r["block_errors"] for r in rs)),
            "mean_bce": float(np.mean([r["mean_bce"] for r in rs])),
            "updates": int(sum(r["updates"] for r in rs)), "segments": segs,
            "per_seed": {str(run["seed"]): {"bler": r["bler"], "updates": r["updates"],
                                             "mean_bce": r["mean_bce"]}
                         for run, r in zip(runs, rs, strict=True)}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default="checkpoints/neural-ref-4prb-tdl-a")
    ap.add_argument("--schedule", default="drift-default")
    ap.add_argument("--variant", default="dmrs-crc")
    ap.add_argument("--data", default="out/metadata", help="dmrx metadata build directory")
    ap.add_argument("--model", default="logreg")
    ap.add_argument("--thresholds", default="base-rate",
                    help="comma-separated P(should_adapt) at which a gate opens, one gated "
                         "adapter each (same slots); 'base-rate': the label's positive rate in "
                         "train (open where the model predicts more benefit than on an "
                         "average slot)")
    ap.add_argument("--smoothing", type=float, default=0.1,
                    help="weight of the newest slot in the gate's running average of P")
    ap.add_argument("--attacks", default="none",
                    help="comma-separated weights of the newest slot when its P is above the "
                         "running average ('none': --smoothing, a symmetric average); one "
                         "gated adapter per threshold and attack, on the same slots")
    ap.add_argument("--debounces", default="1",
                    help="comma-separated slots the averaged P must stay at or above the "
                         "threshold before a gate opens (`GatedAdapter(debounce=...)`); one "
                         "gated adapter per threshold, attack and debounce")
    ap.add_argument("--offsets", default="-0.25,-0.5", help="SNR offsets of always-adapt, dB")
    ap.add_argument("--seeds", default="1,2,3",
                    help="comma-separated; one worker process each, results pooled")
    ap.add_argument("--quick", action="store_true",
                    help="100 slots per segment, one offset, one threshold, one seed, a quick "
                         "dataset if none exists")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tag", default="", help="append _<tag> to the results name")
    ap.add_argument("--select-on-seeds", default="",
                    help="comma-separated seeds of the schedule (disjoint from --seeds) on "
                         "which --candidates are swept and one threshold chosen "
                         "(`select_threshold`); --seeds then evaluate that threshold only, "
                         "written to <name>_selected.json")
    ap.add_argument("--candidates", default="base-rate,0.06,0.08,0.1,0.12",
                    help="thresholds tried with --select-on-seeds")
    ap.add_argument("--select-budget-db", type=float, default=0.08,
                    help="loss allowed on the selection seeds: the goal's 0.1 dB less a "
                         "margin for the noise of a few seeds")
    args = ap.parse_args()
    args.attacks = [None if v.strip() == "none" else float(v)
                    for v in args.attacks.split(",") if v.strip()]
    args.debounces = [v.strip() for v in args.debounces.split(",") if v.strip()]
    if bad := [v for v in args.debounces if not (v.isdigit() and int(v) >= 1)]:
        raise SystemExit(f"--debounces {bad}: each an int >= 1 (slots)")
    args.debounces = [int(v) for v in args.debounces]
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    data = Path(args.data)
    if not (data / "train.parquet").is_file():
        print(f"building the metadata dataset in {data} ...", flush=True)
        quick = {"num_slots_per_point": 8, "num_points": {"train": 24, "val": 8, "test": 8},
                 "adapt_runs": {"train": 2, "val": 1, "test": 1}, "adapt_segment_slots": 60}
        build_dataset(data, seed=0, workers=os.cpu_count() or 1,
                      **(quick if args.quick else {}))
    model, scores = train_on_tables(args.model, data, label="should_adapt", seed=0)
    print("gate model:", scores, flush=True)
    rules = [v.strip() for v in args.thresholds.split(",") if v.strip()]
    rules = rules[:1] if args.quick else rules
    base_rate = scores["train"]["positive_rate"]

    def to_threshold(r: str) -> float:
        return base_rate if r == "base-rate" else float(r)

    seeds = [int(v) for v in args.seeds.split(",")][: 1 if args.quick else None]
    selection = None
    if args.select_on_seeds:
        # choose the threshold on other runs of the schedule (other seeds: other channel and
        # noise draws), then evaluate it once on --seeds
        sel_seeds = [int(v) for v in args.select_on_seeds.split(",")][: 1 if args.quick
                                                                          else None]
        if len(args.attacks) > 1 or args.debounces != [1]:
            raise SystemExit("--select-on-seeds chooses a threshold for one --attacks value "
                             "and no --debounces")
        if set(sel_seeds) & set(seeds):
            raise SystemExit(f"--select-on-seeds {sel_seeds} overlaps --seeds {seeds}")
        cands = [v.strip() for v in args.candidates.split(",") if v.strip()]
        cand_t = {r: to_threshold(r) for r in cands}
        print(f"selecting a threshold among {cand_t} on seeds {sel_seeds} ...", flush=True)
        sweep_sel = sweep(sel_seeds, args, cand_t, model, data)
        chosen, table = select_threshold(sweep_sel, cand_t, args.select_budget_db,
                                         args.attacks[0])
        selection = {"seeds": sel_seeds, "candidates": cand_t,
                     "budget_db": args.select_budget_db,
                     "rule": "the candidate with the largest update reduction whose loss on "
                             "the selection seeds, from BLER and from mean BCE, is at most "
                             "budget_db (the goal's 0.1 dB less a margin); none: the "
                             "pre-declared base rate",
                     "per_candidate": table, "chosen": chosen,
                     "always": {k: sweep_sel["receivers"]["always"][k]
                                for k in ("updates", "bler", "mean_bce")},
                     "always_adapt_snr_curve": sweep_sel["curve"]}
        print("selection:", table, "chosen:", chosen, flush=True)
        thresholds = {f"selected({chosen})": to_threshold(chosen)}
    else:
        thresholds = {r: to_threshold(r) for r in rules}
    ev = sweep(seeds, args, thresholds, model, data)
    out, curve, gates, runs = ev["receivers"], ev["curve"], ev["gates"], ev["runs"]
    met = [n for n in gates if out[n]["goal_met"]]
    name = "gated_adaptation" if args.model == "logreg" else f"gated_adaptation_{args.model}"
    if args.select_on_seeds:
        name += "_selected"
    if args.quick:
        name += "-quick"
    if args.tag:
        name += f"_{args.tag}"
    write(name, {
        "benchmark": "gated_adaptation",
        "setup": {"checkpoint": args.checkpoint, "schedule": runs[0]["schedule"],
                  "variant": args.variant, "data": str(data), "model": args.model,
                  "features": list(FEATURES), "thresholds": thresholds,
                  "smoothing": args.smoothing, "attacks": args.attacks,
                  "debounces": args.debounces,
                  "offsets_db": [c["offset_db"] for c in curve[1:]],
                  "seeds": seeds, "quick": args.quick},
        "goal": "at least 50% fewer updates than always-adapt for at most 0.1 dB loss "
                "(loss from the BLER curve of always-adapt vs SNR offset, seeds pooled)",
        "threshold_selection": selection,
        "gate_model_scores": scores,
        "receivers": out,
        "always_adapt_snr_curve": curve,
        "summary": {n: {"updates": out[n]["updates"],
                        "updates_reduction": round(out[n]["updates_reduction"], 3),
                        "bler": out[n]["bler"], "loss_db": out[n]["loss_db"],
                        "discordant_slots": out[n]["discordant_slots"]}
                    for n in gates} | {"always": {"updates": out["always"]["updates"],
                                                  "bler": out["always"]["bler"]},
                                       "static": {"bler": out["static"]["bler"]}},
        "goal_met_by": met,
        "traces": {str(run["seed"]): run["traces"] for run in runs},
        "goal_met": bool(met),
        "elapsed_s": round(time.perf_counter() - t_start, 1),
    })


def sweep(seeds: list[int], args, thresholds: dict, model, data: Path) -> dict:
    """static, always-adapt and one gated adapter per threshold on `seeds` (one worker each),
    pooled, with each gate's update reduction and loss in dB against always-adapt."""
    if len(seeds) == 1:
        runs = [run_seed(seeds[0], args, thresholds, model)]
    else:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(len(seeds)) as workers:
            runs = workers.starmap(run_seed, [(s, args, thresholds, model) for s in seeds])
    specs = gate_specs(thresholds, args.attacks, args.debounces)
    gates = list(specs)
    out = {n: pool(runs, n) for n in ("static", "always", *gates)}
    offsets = [c["offset_db"] for c in runs[0]["curve"]]
    curve = [{"offset_db": d, "bler": float(np.mean([r["curve"][i]["bler"] for r in runs])),
              "mean_bce": float(np.mean([r["curve"][i]["mean_bce"] for r in runs]))}
             for i, d in enumerate(offsets)]
    xs = [c["offset_db"] for c in curve]
    def lost(name: str) -> np.ndarray:
        """[seeds * slots] bool, the slots `name` lost, from the runs' traces"""
        masks = []
        for run in runs:
            m = np.zeros(sum(s["slots"] for s in run["schedule"]["segments"]), bool)
            m[run["traces"]["error_slots"][name]] = True
            masks.append(m)
        return np.concatenate(masks)

    always_err = lost("always")
    for name, (rule, t, attack, debounce) in specs.items():
        r = out[name]
        r["threshold_rule"], r["threshold"], r["attack"] = rule, t, attack
        r["debounce"] = debounce
        r["updates_reduction"] = 1 - r["updates"] / max(out["always"]["updates"], 1)
        r["loss_db"] = {
            "from_bler": loss_db(xs, [c["bler"] for c in curve], r["bler"], log=True),
            "from_mean_bce": loss_db(xs, [c["mean_bce"] for c in curve], r["mean_bce"],
                                     log=False)}
        # the same slots for both: the slots only one of them lost decide the BLER gap
        err = lost(name)
        r["discordant_slots"] = {"gated_only_errors": int((err & ~always_err).sum()),
                                 "always_only_errors": int((~err & always_err).sum())}
        r["gate"] = [run["receivers"][name]["gate"] for run in runs]
        r["first_firings_seed_" + str(runs[0]["seed"])] = runs[0]["receivers"][name][
            "first_firings"]
        r["val_operating_point"] = val_operating_point(model, data, t)
        r["goal_met"] = (r["updates_reduction"] >= 0.5 and r["loss_db"]["from_bler"]
                         is not None and r["loss_db"]["from_bler"] <= 0.1)
    return {"receivers": out, "curve": curve, "gates": gates, "runs": runs}


def select_threshold(result: dict, candidates: dict, budget_db: float,
                     attack: float | None = None) -> tuple[str, list]:
    """The candidate (by rule name) with the largest update reduction whose loss, from BLER
    and from mean BCE, is known and at most `budget_db`; 'base-rate' (or the first candidate)
    when none is. :return: (rule, per-candidate table)"""
    table, ok = [], []
    for rule, t in candidates.items():
        r = result["receivers"][gate_name(rule, attack)]
        losses = [r["loss_db"]["from_bler"], r["loss_db"]["from_mean_bce"]]
        within = all(v is not None and v <= budget_db for v in losses)
        table.append({"rule": rule, "threshold": t, "updates": r["updates"],
                      "updates_reduction": r["updates_reduction"], "bler": r["bler"],
                      "loss_db": r["loss_db"], "within_budget": within})
        if within:
            ok.append((r["updates_reduction"], rule))
    if ok:
        return max(ok)[1], table
    return ("base-rate" if "base-rate" in candidates else next(iter(candidates))), table

if __name__ == "__main__":
    main()
