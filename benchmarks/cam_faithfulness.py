"""How faithful are CAM maps of the shipped neural receiver, and do they find a jammer?

On ref-4prb (checkpoints/neural-ref-4prb), TDL-C 300 ns at 60 km/h, --slots slots at --snr-db,
once clean and once with a partial-band jammer (--jsr-db on subcarriers --band, whole slot):

- per method (Grad-CAM, Grad-CAM++, HiResCAM, Score-CAM, Fusion-CAM) and for a random-map
  baseline: the deletion and insertion AUC of the block's correct-bit log-likelihood (REs
  replaced by noise of the grid's power, `dmrx.explain.faithfulness`), with paired-bootstrap
  standard errors of each method's difference to the random baseline;
- the share of map mass on the DMRS REs and on the jammed REs (with the share of the grid they
  cover: what a flat map would give);
- the model-randomisation check (Spearman correlation with the maps of a re-initialised copy)
  on the first batch;
- with the jammer, the maps of the block-error event (`BlockError`, 'nll' surrogate) and their
  mass on the jammed band, over all slots and over the slots whose block fails (shares are
  means over the slots whose map is not zero everywhere; `zero_maps` counts the others);
- with the jammer, where the error-event target itself says the error comes from, without any
  map (`error_reference`): the share of the block's NLL (the target is a sum of per-bit terms,
  so a sum over data REs) on the jammed band's data REs; the share there of the NLL the jammer
  added (the same slots without the jammer: both conditions draw from the same seed, and the
  jammer is added last); how many failed blocks decode once the jammer is taken off the
  band (the counterfactual); and the mean NLL per coded bit on the band's data REs, on the
  other data REs, and on the grid the CAMs erase REs into (thermal noise, `cam_removal`):
  Score-CAM scores a region by the error with only that region kept against the all-erased
  grid, so it can put error mass on the band only where the band's bits cost more than
  erased ones.

Two reference orderings that know the receiver (not explanations, so not in the goals) show
what the curves can reward: 'dmrs-first' (the DMRS REs, then the rest at random) and
'own-evidence' (each data RE by how much its own coded bits' log-likelihood exceeds that on the
all-noise grid; DMRS REs last). Both delete far better than random, yet insert no better than
random: the block target also sums over the bits of the REs not yet inserted, and once DMRS
are in, the receiver demodulates those noise REs confidently and wrongly (see
`dmrx.explain.faithfulness`), so on clean slots the insertion AUC of this target separates a
faithful ranking from a random one only weakly, whatever the method.

The explained layer is `default_layer` (the rectified features the LLR head reads,
'net.output_conv:in'); --layer net.blocks.3 gives the previous default, whose gradients are
ill-posed for Grad-CAM (`dmrx.explain.cam.default_layer`).

    python benchmarks/cam_faithfulness.py [--slots 200] [--snr-db 11] [--jsr-db 10]
        [--layer NAME] [--curve-removal matched|local|thermal] [--out cam_faithfulness]

`--jsr-db=-5,0,10` (with '=' where the list starts with a minus) runs the clean condition once
and the jammed one at each power on the same slots (the jammer is added last), writing
`<out>-jsr<value>.json` per power.

Session 8 (declared before running): `--curve-removal local --out cam_faithfulness-local`
replaces each removed RE by noise of the power received around it instead of the grid's mean
power, the reading of the issue's "noise of the same power" under which a jammed band keeps
its power; the goals are judged on it exactly as on the default run, which stays beside it.

Session 12 (declared before running): at --jsr-db 10 every jammed block fails (BLER 1.0 in
both runs above), so the jammed condition explains a receiver that never decodes and its
error-event maps have no successes to contrast with; Score-CAM's LL maps were zero on 199 of
200 slots there. The jammer power is instead set where half the blocks fail, by a criterion
fixed before any map was computed at it: on calibration seed 99 (200 slots, 11 dB, band
12:24) the jammed BLER was 0.10 / 0.39 / 0.585 / 1.0 at JSR -10 / -6 / -5 / -3 dB (clean
0.04 at 11 dB), and -5 dB is the 1 dB grid point closest to 0.5. Runs, seed 1 as before:
`--jsr-db -5 --out cam_faithfulness-jsr-5` (grid-power removal) and `--jsr-db -5
--curve-removal local --out cam_faithfulness-local-jsr-5`; the goals are judged exactly as
`goals` computes them, and met only if met in both.
Outcome: every method far from random when jammed; Fusion-CAM within 2 SE of Score-CAM but
not at least as faithful on insertion; the error-map goal not met (Grad-CAM 0.31; Score-CAM's
maps zero on 187 of 200 slots).

Session 15 (declared before running): seen in exploration on seed 1 at JSR -5 dB (200 slots for
the target's terms, 100 for the maps): by the error target's own terms (`error_reference`) the
band's data REs hold 0.58-0.60 of the block NLL and 0.99 of the NLL the jammer added, and taking
the jammer off the band decodes 122 of 130 failed blocks. The band does drive the errors, so the
error-map goal is the right one at -5 dB, and the 0.27-0.31 of the Grad-CAM family underweights
it: their grid-averaged gradients cancel over per-RE bits (`dmrx.explain.cam.HiResCAM`).
HiResCAM, added for that reason, put 0.68 of its error-map mass on the band (0.93 at JSR 10 dB);
a Fusion-CAM of HiResCAM and Score-CAM gave the same pattern as the paper's (deletion better,
insertion worse than Score-CAM), so Fusion-CAM keeps the paper's Grad-CAM. Runs on seed 2, never
used here before: `--seed 2 --jsr-db -5 --out cam_faithfulness-seed2-jsr-5`, `--seed 2 --jsr-db
-5 --curve-removal local --out cam_faithfulness-seed2-local-jsr-5` and `--seed 2 --jsr-db 10
--out cam_faithfulness-seed2-jsr10`, judged exactly as `goals` computes them. HiResCAM's error
maps find the band if their share is > 0.5 at both JSRs; the other goals are judged as before,
per method, and Fusion-CAM's against the best of Grad-CAM and Score-CAM, as the issue states it.
Outcome: HiResCAM's error maps put 0.684 (JSR -5 dB) and 0.923 (10 dB) of their mass on the
band, the target's own terms 0.61 / 0.73 of the NLL and 0.99 / 0.81 of what the jammer added;
the Grad-CAM family 0.25-0.29 at -5 dB; at 10 dB HiResCAM is the only method far from random on
the jammed curves. Fusion-CAM is at least as faithful as the better of Grad-CAM and Score-CAM on
every jammed run, and not on clean insertion in any (-0.00012 to -0.00013, 1.1-1.4 SE): the
same small deficit as on seed 1.

Session 17 (declared before running): the two jammed goals have only been judged at two
powers, and they have pulled apart there: at JSR 10 dB the error maps find the band but the
log-likelihood curves of most methods are not far from random; at -5 dB it is the other way
round. Is there a power where both hold? On seed 3, never used here, 200 slots:
`--seed 3 --jsr-db=-5,-3,0,5,10 --out cam_faithfulness-seed3` (grid-power removal, everything
else the defaults). Per power and per method, the error-map goal (share > 0.5) and the
far-from-random goal on the jammed curves are judged exactly as `goals` computes them; the
answer is the powers (if any) at which each method meets both, reported for every power run,
not just the ones that pass. The clean condition of this run is a third seed for Fusion-CAM's
clean insertion margin, pooled with seeds 1 and 2 by inverse-variance weighting.
Outcome (`results/cam_faithfulness-seed3-jsr{-5,-3,0,5,10}.json`): no power at which every
method meets both. HiResCAM meets both at every power (error-map share 0.68 / 0.76 / 0.84 /
0.91 / 0.92 from -5 to 10 dB, its curves 4-18 SE better than random). The Grad-CAM family's
shares climb slowly with the power (Grad-CAM 0.30 / 0.33 / 0.38 / 0.48 / 0.60) and pass 0.5
only at 10 dB, long after every block fails (BLER 0.59 / 0.95 / 1.0 / 1.0 / 1.0); from 5 dB
their curves are no longer far from random. Score-CAM's and Fusion-CAM's insertion curves are not
far from random from -3 dB on (both of Score-CAM's curves from 0 dB, both of Fusion-CAM's from
5 dB), while their error-map shares pass 0.5 only from 5 dB (Fusion-CAM, 0.51) and at 10 dB
(Score-CAM 0.05 / 0.18 / 0.33 / 0.46 / 0.56; its maps zero on 184 / 135 / 36 / 2 / 0
slots). On clean slots Fusion-CAM is at least as faithful as Score-CAM on both curves on this
seed (insertion +0.00004 +- 0.00010); pooled over seeds 1-3 its insertion margin is -0.00009
+- 0.00006 (1.6 SE, a tie) and its deletion margin +0.00025 +- 0.00005 (better).

Session 23 (declared before running). Seen in exploration: on calibration seed 99 (100 slots)
the band's data REs cost 0.775 / 1.68 / 3.14 nats per coded bit at JSR -5 / 0 / 10 dB, the
erased grid 0.770, the other data REs 0.16-0.40; and on seed 1 (JSR -5 dB) a Fusion-CAM whose
gradient map is HiResCAM put 0.52 of its error-map mass on the band (41 maps zero) but lost
0.0018 +- 0.0003 of clean insertion AUC to Score-CAM (5 SE), so Fusion-CAM keeps Grad-CAM.
Run on seed 4, never used here: `--seed 4 --jsr-db=-5,0,10 --out cam_faithfulness-seed4`
(grid-power removal). Judged: (1) per power, every goal exactly as `goals` computes it; (2)
the mechanism of Score-CAM's empty error maps (`error_reference.nll_per_bit`): if the band's
bits cost no more than erased ones, most of Score-CAM's error maps are zero (more than half of
the slots), and where they cost clearly more (at least 1.5 times), fewer than a quarter are;
(3) Fusion-CAM's clean margins pooled over seeds 1-4 by inverse-variance weighting: "at least
as faithful" on clean insertion only if the pooled margin is >= 0.
Outcome (results/cam_faithfulness-seed4-jsr{-5,0,10}.json; BLER 0.65 / 1.0 / 1.0, clean
0.035): (1) as on seeds 1-3. Only HiResCAM's error maps find the band at -5 and 0 dB (0.69,
0.84; the Grad-CAM family 0.29-0.39, Score-CAM 0.05 and 0.34, Fusion-CAM 0.29 and 0.38); at
10 dB every method's do (0.57-0.92) but only HiResCAM's curves stay far from random. Clean:
Grad-CAM's and HiResCAM's insertion curves are not far from random. (2) The mechanism holds at
each power: the band's bits cost 0.7709 nats at -5 dB, the erased grid's 0.7709, and 184 of
Score-CAM's 200 error maps are zero; at 0 dB 1.66 (2.2 times) and 27 zero maps; at 10 dB 3.12
and none (the other data REs 0.17 / 0.19 / 0.41). (3) Fusion-CAM's clean insertion margin to
Score-CAM is -0.00027 +- 0.00011 on seed 4; pooled over seeds 1-4 -0.00013 +- 0.00005 (2.6
SE): Fusion-CAM is slightly less faithful than Score-CAM on clean insertion, no longer a tie.
Its pooled deletion margin is +0.00027 +- 0.00005 (better).

Session 26 (declared before running). Fusion-CAM returned an empty map wherever Score-CAM's
was empty and the denoised Grad-CAM map's gain was negative (`fusion_cam.pair_weights` kept the
empty map as "the lesser loss"): 52-59 of 200 LL maps at JSR 0 dB, 187-200 at 5-10 dB, 13-26
of the error maps at -5 dB on seeds 1-4. Since 5ef8a0c an empty map gets no weight against a
map that ranks REs. Seen in exploration on calibration seed 99 (100 slots): no Fusion-CAM map
empty at JSR -5 or 0 dB; at 0 dB its LL curves moved towards Grad-CAM's (insertion -0.001 +-
0.005 to Grad-CAM, deletion still 0.016 +- 0.005 behind it); its error maps' band share 0.31
at -5 dB. Run on seed 5, never used here: `--seed 5 --jsr-db=-5,0,10 --out
cam_faithfulness-seed5` (grid-power removal). Judged: (1) Fusion-CAM's maps, LL and error, are
empty in no more slots than both components' are (Grad-CAM's never are: so in none); (2) per
power, every goal exactly as `goals` computes it, reported for every power; (3) the clean
condition pooled over seeds 1-5 (`cam_faithfulness_pool.py`; valid across the fix, as no clean
map of seeds 1-4 was empty, so the fix changes none of them): Fusion-CAM at least as faithful
as Score-CAM on clean insertion only if the pooled margin is >= 0. The jammed pools mix code
before and after the fix at 0 and 10 dB (the pool records each seed's commit) and are not
judged.
Outcome (results/cam_faithfulness-seed5-jsr{-5,0,10}.json, -pool.json; BLER 0.62 / 1.0 /
1.0, clean 0.035): (1) met: no Fusion-CAM map is empty at any power, LL or error, where
Score-CAM's LL maps are empty on 61 (0 dB) and 199 (10 dB) slots and its error maps on 183
(-5 dB) and 37 (0 dB). (2) -5 dB as on seeds 1-4: Fusion-CAM at least as faithful as
Score-CAM on both jammed curves, every method far from random, only HiResCAM's error maps on
the band (0.68; Fusion-CAM 0.30, Grad-CAM 0.30). 0 dB: Fusion-CAM now follows Grad-CAM where
Score-CAM has no map, and is still behind Grad-CAM, the better there: deletion -0.014 +-
0.003, insertion -0.007 +- 0.004 (seeds 3-4 before the fix, pooled: -0.026, -0.013). 10 dB:
Fusion-CAM is the denoised Grad-CAM on 199 slots, and Grad-CAM's LL maps are slightly worse
than random there; the best by AUC is Score-CAM, a random ranking where its maps are empty, so
Fusion-CAM is 0.015 +- 0.005 behind it on deletion. Before the fix it "met" that goal as an
empty map. Not met at 0 and 10 dB; the error maps of every method pass 0.5 at 10 dB
(Fusion-CAM 0.64). (3) Clean, pooled over seeds 1-5: insertion -0.00014 +- 0.00005 to
Score-CAM (2.8 SE), deletion +0.00029 +- 0.00005: not met, as on seeds 1-4.

Session 27 (declared before running). The jammed pools at 0 and 10 dB mix Fusion-CAM before
and after the fix (seeds 2-4 before, 5 after), so they were not judged. Rerun at this commit,
one torch thread per process, two processes: `--seed 3 --jsr-db=0,10 --out
cam_faithfulness-seed3-fix` then `--seed 2 --jsr-db=10 --out cam_faithfulness-seed2-fix` in
one, `--seed 4 --jsr-db=0,10 --out cam_faithfulness-seed4-fix` in the other. Pooled by
`cam_faithfulness_pool.py` over every recorded file, where a rerun with the fix now replaces
the same seed and power without it: 0 dB over seeds 3-5, 10 dB over seeds 2-5, all with the
fix. Judged per power, as the pool computes them, reported whatever they are: Fusion-CAM at
least as faithful as the best of Grad-CAM and Score-CAM on both curves, every method far from
random, the error maps' share on the jammed band > 0.5. The reruns' clean conditions
must agree with the recorded ones to the pool's float32 tolerance (they run on another
machine); if they do not, the pool stops and the note says so.
Amendment (declared before its run, but after a check pool of the finished seed-3 and seed-4
reruns had been seen; the seed-2 rerun was under way): seed 1's 10 dB run
(results/cam_faithfulness.json, before the fix) was missed, which would leave the 10 dB pool
mixed; rerun too, `--seed 1 --jsr-db=10 --out cam_faithfulness-seed1-fix`. And the pool did
stop: seed 4's rerun moved its clean margins by up to 3.0e-7 (HiResCAM deletion; seed 3's
rerun is identical to the bit), more than the absolute 1e-8 the pool allowed; float32 noise
on AUCs of 0.3 with SEs of 2e-3, so the tolerance is now 1e-6 (`_same`).
Outcome (results/cam_faithfulness-seed{1,2}-fix.json, -seed{3,4}-fix-jsr{0,10}.json, the pools
below): seeds 2 and 3 reproduce their recorded clean conditions to the bit, seed 4 to 3.0e-7;
seed 1 does not (its random-map deletion AUC 0.3681 -> 0.3659; its records are from sessions
6-8, 6738b1c and ed68dcc), so its rerun cannot share its seed's clean condition. The likely
cause, read from the code and not rerun: every method's curves draw their tie-breaks and the
next batch's removal noise from one generator in turn (`faithfulness.ranking`, `run_condition`),
so adding HiResCAM to the methods (2bf77f1, session 15) shifted every later draw; seeds 2-5
were all run with it. So the default pool leaves the rerun out (`--exclude
cam_faithfulness-seed1-fix.json`, results/cam_faithfulness_pool.json: 0 dB over seeds 3-5
with the fix; 10 dB still mixes seed 1's run without it), and the 10 dB pool of the fixed
code alone takes it explicitly (`--tag jsr10-fixed` with the five 10 dB files of seeds 1-5
that have the fix). Not met at either power, as on seed 5 alone:
- 0 dB (seeds 3-5): Fusion-CAM behind Grad-CAM, the best there, on deletion -0.0153 +- 0.0021
  and insertion -0.0091 +- 0.0020 (every seed); ahead of Score-CAM by 0.016 / 0.010. Far from
  random: all but Score-CAM (both curves) and Fusion-CAM's insertion (+0.0045 +- 0.0022).
  Error maps on the band: HiResCAM 0.84, the others 0.32-0.39.
- 10 dB (seeds 1-5, results/cam_faithfulness_pool-jsr10-fixed.json): Fusion-CAM level with
  Grad-CAM (deletion +0.0002 +- 0.0008, insertion +0.0021 +- 0.0009), behind Score-CAM, the
  best by AUC, on deletion -0.0070 +- 0.0023 (insertion +0.0013 +- 0.0023); but Score-CAM is
  not far from random there, nor is any method except HiResCAM. Every method's error maps
  pass 0.5 on every seed (Fusion-CAM 0.645, HiResCAM 0.92).

Session 28: the cause above is removed rather than confirmed. The curves now draw from one
stream per (seed, batch, method) (`faithfulness.curve_generator`; the removal noise, random
maps and reference orderings from streams of their own), so a method's curves no longer
depend on which methods run beside it; results record it as `curve_draws`. Runs before this
drew from the shared generator; their records stand, but a rerun of a seed from before now
differs from its record. Declared before running: fresh seeds 6 and 7, never used here, at
the three powers of seed 5, one torch thread per process, two processes:
`--seed 6 --jsr-db=-5,0,10 --out cam_faithfulness-seed6` and the same for seed 7. Pooled with
seeds 1-5 (fresh seeds under either scheme are independent draws of the same quantities) by
`cam_faithfulness_pool.py --exclude cam_faithfulness-seed1-fix.json` (results/
cam_faithfulness_pool.json; 0 dB then over seeds 3-7 with the empty-map fix) and with the
seven 10 dB files with the fix (`--tag jsr10-fixed`), judged as before: Fusion-CAM at least as
faithful as the best of Grad-CAM and Score-CAM on both curves (clean over seeds 1-7), every
method far from random, error maps > 0.5 on the band. Seeds 6 and 7 alone are reported too.
Outcome (results/cam_faithfulness-seed{6,7}-jsr{-5,0,10}.json, the two pools; jammed BLER
1.0 at 0 and 10 dB, clean 0.035 / 0.015): the verdicts of seeds 1-5 hold on both fresh seeds.
- Clean: Fusion-CAM's insertion margin to Score-CAM is -0.00012 +- 0.00009 (seed 6) and
  -0.000005 +- 0.00006 (seed 7), each within 2 SE; over seeds 1-7 -0.00009 +- 0.00003 (3 SE):
  not met; deletion +0.00025 +- 0.00004 (met). Grad-CAM's insertion is still not far from
  random; every other method is.
- -5 dB (seeds 1-7): Fusion-CAM at least as faithful as Score-CAM, the best (deletion +0.0009
  +- 0.0001, insertion +0.00003 +- 0.00008), every method far from random (met); error maps
  on the band: HiResCAM 0.69, Fusion-CAM 0.28 (not met).
- 0 dB (seeds 3-7): Fusion-CAM behind Grad-CAM on deletion on every seed (-0.0148 +- 0.0016
  pooled; seeds 6 / 7: -0.017 / -0.012) and on insertion -0.0058 +- 0.0015 (seed 7 +0.0007);
  Score-CAM not far from random; error maps: HiResCAM 0.84, the others 0.32-0.39: not met.
- 10 dB (seeds 1-7; results/cam_faithfulness_pool-jsr10-fixed.json, every file with the
  fix): Fusion-CAM level with Grad-CAM, behind a random-like Score-CAM on deletion (-0.0076 +-
  0.0020); only HiResCAM far from random; every method's error maps pass 0.5 (Fusion-CAM
  0.64, HiResCAM 0.92): not met.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import write

from dmrx.explain import (
    METHODS,
    BlockError,
    Curves,
    LogLikelihood,
    curve_generator,
    deletion_insertion,
    draw_slots,
    make_cam,
    mass_share,
    model_randomization_check,
    random_maps,
)
from dmrx.explain.perturbation import REMOVALS, removal_noise
from dmrx.explain.run import Slots, compute_maps
from dmrx.nn import load_receiver
from dmrx.ofdm import Decoder, data_mask, dmrs_mask
from dmrx.robust.jammers import PartialBandJammer
from dmrx.scenarios import get_scenario

SCENARIO = "tdl-c-300ns-60kmh"
#: how the curves draw their noise, tie-breaks and random maps: one stream per (seed, batch,
#: method) (`faithfulness.curve_generator`)
CURVE_DRAWS = "per-method"
BOOTSTRAP = 500


def _auc(c: Curves, idx: torch.Tensor) -> tuple[float, float]:
    sub = Curves(c.fractions, c.deletion[idx], c.insertion[idx])
    return sub.deletion_auc, sub.insertion_auc


REFERENCES = ("dmrs-first", "own-evidence")


def _per_re_log_likelihood(link, llr: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """[batch, num_coded_bits] -> [batch, num_data_re]: log P(transmitted bits) per data RE."""
    per_bit = -F.softplus(-(2 * c - 1) * llr)
    return per_bit.reshape(llr.shape[0], -1, link.num_bits_per_symbol).sum(-1)


def reference_orderings(rx, part, noise: torch.Tensor, gen: torch.Generator) -> dict:
    """The two receiver-aware reference rankings of the module docstring, [batch, sym, sc]."""
    link = rx.link
    b, grid = len(part), (link.num_ofdm_symbols, link.fft_size)
    dm, dd = dmrs_mask(link), data_mask(link)
    with torch.no_grad():
        own = _per_re_log_likelihood(link, rx(part.y, part.no), part.c)
        base = _per_re_log_likelihood(link, rx(noise, part.no), part.c)
    gain = torch.full((b, *grid), -float("inf"))  # DMRS (and empty) REs last
    gain[:, dd] = own - base
    dmrs_first = dm.float()[None] * 2.0 + torch.rand((b, *grid), generator=gen)
    # ranks only matter: map both to [0, 1] with the same order
    gain = torch.where(torch.isinf(gain), gain.nan_to_num(neginf=0.0).amin() - 1.0, gain)
    return {"dmrs-first": dmrs_first / 3.0,
            "own-evidence": (gain - gain.amin()) / (gain.amax() - gain.amin()).clamp_min(1e-9)}


def _se(c: Curves, seed: int) -> tuple[float, float]:
    """Bootstrap standard errors (over slots) of one curve set's deletion and insertion AUC."""
    g = torch.Generator().manual_seed(seed)
    n = c.deletion.shape[0]
    d = torch.tensor([_auc(c, torch.randint(0, n, (n,), generator=g))
                      for _ in range(BOOTSTRAP)])
    return float(d[:, 0].std()), float(d[:, 1].std())


def _paired(curves: dict[str, Curves], ref: str, seed: int) -> dict:
    """Each other method's AUCs minus those of `ref`, with paired-bootstrap standard errors
    (the same resampled slots for both)."""
    g = torch.Generator().manual_seed(seed)
    n = curves[ref].deletion.shape[0]
    draws = {m: [] for m in curves}
    for _ in range(BOOTSTRAP):
        idx = torch.randint(0, n, (n,), generator=g)
        for m, c in curves.items():
            draws[m].append(_auc(c, idx))
    base = torch.tensor(draws[ref])
    out = {}
    for m in curves:
        if m == ref:
            continue
        d = torch.tensor(draws[m]) - base  # [bootstrap, (deletion, insertion)]
        out[m] = {f"deletion_auc_minus_{ref}": curves[m].deletion_auc - curves[ref].deletion_auc,
                  "deletion_se": float(d[:, 0].std()),
                  f"insertion_auc_minus_{ref}":
                      curves[m].insertion_auc - curves[ref].insertion_auc,
                  "insertion_se": float(d[:, 1].std())}
    return out


def error_reference(rx, jammed: Slots, clean: Slots, batch_size: int) -> dict:
    """Where the block-error event (`BlockError` 'nll') comes from by its own terms, no map:
    see the module docstring. `clean` must be `jammed` without the jammer (same seed)."""
    link = rx.link
    band = jammed.jammed[data_mask(link)]  # [data REs]: data REs of the jammed band
    decoder = Decoder(link)
    share, excess, fixed, failed = [], [], 0, 0
    per_bit = {"band": [], "off_band": [], "erased": []}  # NLL per coded bit, per slot
    bits, gen = link.num_bits_per_symbol, torch.Generator().manual_seed(0)
    with torch.no_grad():
        for start in range(0, len(jammed), batch_size):
            j, c = jammed.batch(start, start + batch_size), clean.batch(start, start + batch_size)
            llr = rx(j.y, j.no)
            nll = _per_re_log_likelihood(link, llr, j.c).neg()  # [batch, data REs]
            erased = _per_re_log_likelihood(
                link, rx(removal_noise("thermal", j.y, j.no, gen), j.no), j.c).neg()
            per_bit["band"].append(nll[:, band].mean(1) / bits)
            per_bit["off_band"].append(nll[:, ~band].mean(1) / bits)
            per_bit["erased"].append(erased.mean(1) / bits)
            nll0 = _per_re_log_likelihood(link, rx(c.y, c.no), c.c).neg()
            share.append(nll[:, band].sum(1) / nll.sum(1))
            add = nll - nll0
            excess.append(add[:, band].sum(1) / add.sum(1))
            fail = ~decoder(llr).crc_ok
            unjammed = torch.where(jammed.jammed, c.y, j.y)  # the jammer taken off the band
            ok = decoder(rx(unjammed, j.no)).crc_ok
            failed += int(fail.sum())
            fixed += int((fail & ok).sum())
    share, excess = torch.cat(share), torch.cat(excess)
    return {"band_data_re_share": float(band.float().mean()),
            "nll_share_on_band": float(share.mean()),
            "jammer_added_nll_share_on_band": float(excess.mean()),
            "failed_blocks": failed,
            "failed_blocks_decoded_without_jammer_on_band": fixed,
            "nll_per_bit": {k: float(torch.cat(v).mean()) for k, v in per_bit.items()}}


def run_condition(rx, slots, methods: list[str], args, seed: int) -> dict:
    link = rx.link
    target = LogLikelihood(link)
    dm = dmrs_mask(link)
    decoder = Decoder(link)
    rows = [*methods, "random", *REFERENCES]
    curves: dict[str, Curves] = {}
    shares: dict[str, dict[str, list[torch.Tensor]]] = {
        m: {"dmrs": [], "jammed": []} for m in rows}
    error_shares: dict[str, list[torch.Tensor]] = {m: [] for m in methods}
    # maps that are zero everywhere (ReLU of a weighted sum that is negative on every RE):
    # they rank REs at random and carry no mass share
    zero = {m: 0 for m in rows}
    error_zero = {m: 0 for m in methods}
    failed: list[torch.Tensor] = []
    fusion_w: dict[str, list[torch.Tensor]] = {"gradient": [], "combined": []}
    randomization: dict[str, float] = {}
    for start in range(0, len(slots), args.batch_size):
        part = slots.batch(start, start + args.batch_size)
        with torch.no_grad():
            failed.append(~decoder(rx(part.y, part.no)).crc_ok)
        info: dict = {}
        maps = compute_maps(rx, part, methods, target, layer=args.layer, seed=seed + start,
                            info=info)
        for k in fusion_w:
            fusion_w[k].append(info["fusion-cam"][k])
        maps["random"] = random_maps(len(part), (link.num_ofdm_symbols, link.fft_size),
                                     curve_generator(seed, start, "random"))
        noise = removal_noise(args.curve_removal, part.y, part.no,
                              curve_generator(seed, start, "noise"))
        maps.update(reference_orderings(rx, part, noise,
                                        curve_generator(seed, start, "references")))
        for m, v in maps.items():
            cv = deletion_insertion(rx, part.y, part.no, target, v, part.c, steps=args.steps,
                                    noise=noise, generator=curve_generator(seed, start, m))
            curves[m] = curves[m] + cv if m in curves else cv
            shares[m]["dmrs"].append(mass_share(v, dm))
            zero[m] += int((v.flatten(1).sum(1) == 0).sum())
            if slots.jammed is not None:
                shares[m]["jammed"].append(mass_share(v, slots.jammed))
        if start == 0:
            for m in methods:
                rho = model_randomization_check(make_cam(m, rx, args.layer, seed=seed), part.y,
                                                part.no, target, part.c, seed=seed)
                randomization[m] = float(rho.nanmean())
        if slots.jammed is not None:
            err = compute_maps(rx, part, methods, BlockError(link), layer=args.layer,
                               seed=seed + start)
            for m, v in err.items():
                # a map that is zero everywhere puts no mass on the band: 0, not NaN
                error_shares[m].append(mass_share(v, slots.jammed).nan_to_num(nan=0.0))
                error_zero[m] += int((v.flatten(1).sum(1) == 0).sum())
        print(f"  {start + len(part)}/{len(slots)} slots", flush=True)

    failed_all = torch.cat(failed)

    def mean(xs: list[torch.Tensor], sel: torch.Tensor | None = None) -> float | None:
        if not xs:
            return None
        x = torch.cat(xs)
        x = x[sel] if sel is not None else x
        x = x[~torch.isnan(x)]
        return float(x.mean()) if x.numel() else None

    def sem(xs: list[torch.Tensor]) -> float | None:
        x = torch.cat(xs) if xs else torch.empty(0)
        x = x[~torch.isnan(x)]
        return float(x.std() / x.numel() ** 0.5) if x.numel() > 1 else None

    se = {m: _se(curves[m], seed) for m in rows}
    fw = {k: torch.cat(v) for k, v in fusion_w.items()}

    out = {
        "slots": len(slots), "bler": float(failed_all.float().mean()),
        "area_share": {"dmrs": float(dm.float().mean()),
                       "jammed": (float(slots.jammed.float().mean())
                                  if slots.jammed is not None else None)},
        "methods": {
            m: {"deletion_auc": curves[m].deletion_auc, "deletion_auc_se": se[m][0],
                "insertion_auc": curves[m].insertion_auc, "insertion_auc_se": se[m][1],
                "dmrs_mass_share": mean(shares[m]["dmrs"]),
                "jammed_mass_share": mean(shares[m]["jammed"]),
                "randomization_spearman": randomization.get(m), "zero_maps": zero[m],
                "curves": {"fractions": curves[m].fractions.tolist(),
                           "deletion": curves[m].normalized_deletion().tolist(),
                           "insertion": curves[m].normalized_insertion().tolist()}}
            for m in rows},
        "vs_random": _paired(curves, "random", seed),
        # Fusion-CAM's weights (`FusionCAM.last_weights`): the denoised Grad-CAM's share in
        # step 2 (0 = Grad-CAM added no evidence over the all-noise grid: the fusion is the
        # Score-CAM map alone) and the combined map's share against Score-CAM in step 3
        "fusion_weights": {
            "gradient_mean": float(fw["gradient"].mean()),
            "gradient_zero_share": float((fw["gradient"] == 0).float().mean()),
            "combined_mean": float(fw["combined"].mean())},
        "fusion_vs": {ref: _paired({"fusion-cam": curves["fusion-cam"], ref: curves[ref]},
                                   ref, seed)["fusion-cam"]
                      for ref in ("grad-cam", "score-cam")},
    }
    if slots.jammed is not None:
        out["error_event_jammed_mass_share"] = {
            m: {"all_slots": mean(v), "all_slots_se": sem(v),
                "failed_slots": mean(v, failed_all),
                "failed_slot_count": int(failed_all.sum()), "zero_maps": error_zero[m]}
            for m, v in error_shares.items()}
    return out


def goals(results: dict, methods: list[str]) -> dict:
    def fusion_vs_best(cond: dict) -> dict:
        ms = cond["methods"]
        best_del = min(("grad-cam", "score-cam"), key=lambda m: ms[m]["deletion_auc"])
        best_ins = max(("grad-cam", "score-cam"), key=lambda m: ms[m]["insertion_auc"])
        d, i = cond["fusion_vs"][best_del], cond["fusion_vs"][best_ins]
        dm, im = -d[f"deletion_auc_minus_{best_del}"], i[f"insertion_auc_minus_{best_ins}"]
        # margins > 0: Fusion-CAM better; "met" strictly, and "within_2se" for a margin that
        # is negative but inside two paired-bootstrap standard errors (a tie)
        return {"best_deletion": best_del, "deletion_margin": dm,
                "deletion_se": d["deletion_se"], "best_insertion": best_ins,
                "insertion_margin": im, "insertion_se": i["insertion_se"],
                "met": dm >= 0 and im >= 0,
                "within_2se": dm >= -2 * d["deletion_se"] and im >= -2 * i["insertion_se"]}

    def far(cond: dict) -> dict:
        # "far": better than random on both curves by more than 3 bootstrap standard errors
        return {m: {"deletion": v["deletion_auc_minus_random"] < -3 * v["deletion_se"],
                    "insertion": v["insertion_auc_minus_random"] > 3 * v["insertion_se"]}
                for m, v in cond["vs_random"].items() if m in methods}

    jam = results["jammed"]["error_event_jammed_mass_share"]

    return {
        "fusion_at_least_as_faithful_as_best_of_grad_and_score": {
            c: fusion_vs_best(results[c]) for c in results},
        "every_method_far_from_random_3se": {c: far(results[c]) for c in results},
        # shares averaged over all slots, a map that is zero everywhere counting as 0
        "error_maps_mostly_on_jammed_band": {
            m: {"share": jam[m]["all_slots"], "se": jam[m]["all_slots_se"],
                "zero_maps": jam[m]["zero_maps"], "met": jam[m]["all_slots"] > 0.5}
            for m in methods},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slots", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--snr-db", type=float, default=11.0)
    ap.add_argument("--jsr-db", default="10",
                    help="jammer-to-signal ratio, dB; a comma-separated list runs the clean "
                         "condition once and the jammed one per value, each written as "
                         "<out>-jsr<value>.json")
    ap.add_argument("--band", default="12:24", help="jammed subcarriers start:stop")
    ap.add_argument("--steps", type=int, default=24, help="deletion / insertion curve steps")
    ap.add_argument("--checkpoint",
                    default=str(Path(__file__).parents[1] / "checkpoints" / "neural-ref-4prb"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--layer", default=None,
                    help="explained layer (default: dmrx.explain.default_layer)")
    ap.add_argument("--curve-removal", default="matched", choices=REMOVALS,
                    help="what replaces a removed RE along the deletion / insertion curves: "
                         "noise of the grid's mean power ('matched'), of the mean power "
                         "received around the RE ('local', 3 x 3 box) or of variance no "
                         "('thermal')")
    ap.add_argument("--out", default="cam_faithfulness",
                    help="results name (benchmarks/results/<out>.json)")
    args = ap.parse_args()
    # 2 shared cores: one thread, and batches of slots instead of parallel workers
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    rx = load_receiver(args.checkpoint)
    rx.eval()
    link = rx.link
    methods = list(METHODS)
    band = tuple(int(v) for v in args.band.split(":"))
    try:
        jsrs = [float(v) for v in args.jsr_db.split(",")]
    except ValueError:
        ap.error(f"--jsr-db {args.jsr_db!r}: give dB values separated by commas")
    # what every power's file shares; each adds its own jammer
    setup = {"link": link.name, "scenario": SCENARIO, "checkpoint": args.checkpoint,
             "snr_db": args.snr_db, "slots_per_condition": args.slots,
             "layer": make_cam(methods[0], rx, args.layer).layer_name,
             "steps": args.steps,
             "faithfulness_target": "block correct-bit log-likelihood",
             "faithfulness_removal": {
                 "matched": "noise of the grid's mean power",
                 "thermal": "thermal noise (variance no)",
                 "local": "noise of the mean power received in the 3 x 3 box around "
                          "the RE"}[args.curve_removal],
             "references": list(REFERENCES),
             "cam_removal": "thermal noise (variance no)",
             "error_target": "BlockError nll (sum of softplus(-s llr))",
             "bootstrap": BOOTSTRAP, "seed": args.seed,
             # runs before this key drew every method's curves from one shared generator
             # in turn ('shared'); `cam_faithfulness_pool.py` records each seed's scheme
             "curve_draws": CURVE_DRAWS}
    print("clean:", flush=True)
    clean = draw_slots(link, get_scenario(SCENARIO), args.snr_db, args.slots, seed=args.seed)
    clean_results = run_condition(rx, clean, methods, args, args.seed)
    for jsr_db in jsrs:
        # the same seed as the clean slots: the same channels and noise, the jammer added last
        print(f"jammed, JSR {jsr_db:g} dB:", flush=True)
        jammed = draw_slots(link, get_scenario(SCENARIO), args.snr_db, args.slots,
                            jammer=PartialBandJammer(link, jsr_db, band), seed=args.seed)
        results = {"clean": clean_results,
                   "jammed": run_condition(rx, jammed, methods, args, args.seed)}
        results["jammed"]["error_reference"] = error_reference(rx, jammed, clean,
                                                               args.batch_size)
        write(args.out if len(jsrs) == 1 else f"{args.out}-jsr{jsr_db:g}", {
            "benchmark": "cam_faithfulness",
            "setup": setup | {"jammer": {"kind": "partial-band", "jsr_db": jsr_db,
                                         "subcarriers": list(band), "symbols": "all"}},
            "goal": "Fusion-CAM at least as faithful as the best of Grad-CAM and Score-CAM on "
                    "both AUCs (deletion lower, insertion higher); every method far from the "
                    "random-map baseline; under the partial-band jammer the error-event maps "
                    "put most (> 50%) of their mass on the jammed band",
            "goals": goals(results, methods),
            "results": results,
            "elapsed_s": round(time.perf_counter() - t0, 1),
        })


if __name__ == "__main__":
    main()
