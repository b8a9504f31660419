"""Training-health diagnosis (after BTTackler, Pei et al., KDD 2024): end hopeless trials early.

A `HealthMonitor` watches one training run: per weight tensor, the mean |grad| and the fraction
of exactly-zero gradient entries (BTTackler's "rate0"), both taken before clipping by a
backward hook and averaged over the epoch's steps, each step's update relative to the weights,
NaN/Inf flags, and the epoch's mean training loss.
Each epoch becomes an `EpochHealth`. The rules below are small pure functions of that history;
each returns a diagnosis (a short text) or None. `DiagnosisPruner` is the Optuna pruner that
applies them; a trial stops at the first epoch where any rule fires.

The rules, their stages and thresholds are BTTackler's (bttackler/bridger/btassessor.py and
default_config.yaml of github.com/thuml/BTTackler, which assume max_epoch = 20), with "median"
taken across weight tensors:

======  ===========================  =========================================================
EG      exploding gradients          any epoch: NaN/Inf; median mean|grad| > 1e4; median
                                     adjacent-layer ratio (earlier / later) > 1e3
VG      vanishing gradients          first half: median mean|grad| < 1e-5; a tensor with zero
                                     mean|grad|; median adjacent-layer ratio < 1e-4
DR      dying ReLU                   from epoch 5 of 20: median fraction of exactly-zero
                                     gradient entries > 0.5
SC      saturated convergence        early (first half, >= 3 epochs): coefficient of variation
                                     (std / mean) of the whole loss history < 1e-4; late
                                     (second half, >= 6 epochs): CoV of the history's second
                                     half > CoV of its first half
HO      heavy oscillation            second half: the last 6 losses have a fitted slope >= 0.01
                                     per epoch and a CoV > 0.2
NMG     no more gain                 any epoch: mean of the last 3 losses > mean of the (up to)
                                     3 before
PL      passive loss (dmrx, opt-in)  first half, >= 3 epochs: the best loss so far is less
                                     than `min_loss_drop` below the first epoch's (not a
                                     BTTackler code rule: see `passive_loss`)
VU      vanishing updates (dmrx,     first 3 epochs: median over weight tensors of one step's
        opt-in)                      update / weight norm ratio < `min_update_ratio` (not a
                                     BTTackler code rule: see `vanishing_updates`)
TP      trivial plateau (dmrx,       first half: VU's update ratio below `min_update_ratio`
        opt-in)                      while the epoch's loss is still the constant predictor's
                                     `trivial_loss` (not a BTTackler code rule: see
                                     `trivial_plateau`)
======  ===========================  =========================================================

"Opt-in" is `DiagnosisConfig`'s: its defaults are BTTackler's code rules. `dmrx tune`'s default
rule set, 'dmrx' (`scenarios.tune.RULES`), turns PL, VU, TP and the adapted rules below on;
`dmrx tune --rules bttackler` runs BTTackler's as they are.

Protection (BTTackler's `if_top_train_loss`): VG, VU, TP, DR, SC, PL and NMG are skipped for a
trial whose training loss at this epoch is at or below the 10th percentile (linear
interpolation, as `numpy.percentile`) of the other trials' losses at the same epoch, once at
least 10 other trials reached it; a trial once protected stays protected. EG and HO are never
skipped.

What differs from BTTackler, and why:

* dmrx's `nn.train` has no per-epoch validation pass, so only the training-loss forms of SC
  late, HO and NMG exist here (BTTackler also checks its validation loss; its OF rule is
  defined but never called, so it is left out too).
* The epoch counts in the rules (DR from epoch 5, the 6-epoch windows of SC late / HO / NMG,
  3 epochs for SC early) are BTTackler's for a 20-epoch run. `DiagnosisConfig.for_epochs(n)`
  scales them by n / 20 (rounded half up, at least 2 epochs for a CoV and 4 for a window that
  is split in two halves) so that they cover the same fraction of a shorter or longer run, and
  scales HO's slope (loss per epoch) by 20 / n, so that it stands for the same rise of the loss
  over the same fraction of the run. With 20 epochs per trial (`dmrx tune`'s default) every
  threshold is exactly BTTackler's. Thresholds on CoVs, gradients and fractions are
  scale-free or per-step and are used unchanged; HO's slope is in loss units (nats), as
  BTTackler's, whose losses are cross-entropies like dmrx's BCE.
* The loss of an epoch is the mean over its steps (BTTackler logs its epoch's mean loss too).
* Gradient statistics start with the second epoch (the hooks attach at the end of the first),
  so the gradient rules see nothing in epoch 1.

Adapted rules (`DiagnosisConfig.adam_eps` and `noise_z`; on in `dmrx tune`'s default rules).
BTTackler's rules misfire on dmrx's searches in two ways that lost the best trial of 2 of 5
seeds in benchmarks/tune_diagnosis.py (results/tune_diagnosis-defaults.json, seeds 3 and 4):

* VG tests gradient magnitudes (and adjacent-layer ratios) as if the step were proportional to
  the gradient. dmrx trains with AdamW, whose step does not depend on the gradient's scale: at
  learning rates of 0.02-0.08 a trial sits on the LLR = 0 plateau for a few epochs with median
  mean|grad| ~ 5e-6 < 1e-5, VG stops it, yet trained on it escapes and can become the best
  (seed 3's best, 0.722). `adam_eps` judges the gradient against Adam's epsilon instead.
* An epoch here is 15 minibatches of 8-32 slots at SNRs drawn over 15 dB, not a pass over
  50 000 images: its mean loss has a sampling noise comparable to the changes NMG and SC late
  compare. SC late stopped seed 4's best in its 11th of 20 epochs while it fell steadily (CoV
  is relative to the mean, so a curve falling to a low loss has the larger CoV in its second
  half because it converges); replayed on its curve without SC late, NMG would have stopped
  it in its 18th on a rise of 0.0009 nats. `noise_z` weighs both rules against the epoch
  losses' standard errors (`loss_sem`); `dmrx tune` uses z = 2, the usual two-standard-error
  margin.

Measured on fresh seeds 6-9 (results/tune_diagnosis-pooled-adapted-fresh.json): with PL, the
adapted rules kept the best trial in every seed but saved 14.5 % of the wall time, where
BTTackler's rules, replayed on the same curves, would have stopped the best in 2 of 4. The time
they give up is that of slow but healthy trials (learning rates of 1e-5 to 6e-4), which no
health rule can tell from a fast trial still falling to the best.

VU (`min_update_ratio`; 1e-3 in `dmrx tune`'s default rule set) catches those slow
trials whose learning rate is too small to move the weights at all: on fresh seeds 10-13
(results/tune_diagnosis-pooled-vu-fresh.json) adapted rules + PL + VU at the rule of thumb's
1e-3 stopped 3-9 trials per search, 18 of them by VU in their 2nd or 3rd epoch, kept the best
trial in every seed and saved 24.6 % of the wall time (10.5-32.1 %). The rest of the slow
trials (lr ~1.5e-4 to 5e-4, per-step ratios 1.5e-3 to 5e-3: in the healthy range by that rule,
ending at BMD rates of 0.1-0.5 against a best of ~0.7) are what keeps the saving under 30 %.

TP (`trivial_loss`; on in `dmrx tune`'s default rule set) catches the trials that a first-epoch
loss spike leaves on the LLR = 0 plateau with vanished steps (see `trivial_plateau`). On seed 11,
the seed it was designed from, it stopped the three such trials in their 4th-5th epoch and the
saving rose from 27.9 % to 54.2 % (results/tune_diagnosis-tp-seed11-design.json). On fresh seeds
14-19 (results/tune_diagnosis-pooled-tp-fresh.json) adapted rules + PL + VU + TP kept the best
trial in all six and saved 22.8 % of the wall time (8.4-44.1 %): TP fired first in one trial
of 120 there, as few trials landed on the plateau; seed 14's search, with 10 of 20 trials at
lr 1e-4 to 1e-3, saved 8.4 %.

No threshold was fitted to dmrx's own searches (benchmarks/tune_diagnosis.py measures them as
they are). As in BTTackler, a stopped trial still reports the result of the model it has
(`dmrx.scenarios.tune` scores it like a finished one).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import optuna
import torch

REFERENCE_EPOCHS = 20  # BTTackler's max_epoch, for which its thresholds are set


@dataclass(frozen=True)
class EpochHealth:
    """Health of one logged epoch.

    :param step: global training step at the end of the epoch
    :param loss: mean training loss of the epoch (nats)
    :param progress: step / total steps, in (0, 1]
    :param grad_mean_abs: per weight tensor (input to output order), mean |grad| over the
        epoch's steps, before clipping; empty if not measured
    :param grad_zero_frac: per weight tensor, mean fraction of exactly-zero gradient entries
    :param nonfinite: a NaN/Inf was seen in the loss or a gradient during the epoch
    :param loss_sem: standard error of `loss` as the mean of the epoch's step losses (their
        std / sqrt(steps)); 0 if not measured
    :param update_ratio: per weight tensor, the mean over the epoch's steps of one optimizer
        step's update relative to the weights, ||w_t - w_(t-1)|| / ||w_(t-1)||; empty if not
        measured
    """

    step: int
    loss: float
    progress: float
    grad_mean_abs: tuple[float, ...] = ()
    grad_zero_frac: tuple[float, ...] = ()
    nonfinite: bool = False
    loss_sem: float = 0.0
    update_ratio: tuple[float, ...] = ()

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EpochHealth:
        return cls(int(d["step"]), float(d["loss"]), float(d["progress"]),
                   tuple(d.get("grad_mean_abs", ())), tuple(d.get("grad_zero_frac", ())),
                   bool(d.get("nonfinite", False)), float(d.get("loss_sem", 0.0)),
                   tuple(d.get("update_ratio", ())))


@dataclass(frozen=True)
class DiagnosisConfig:
    """Thresholds of the rules; the defaults are BTTackler's default_config.yaml for its
    20-epoch runs (its parameter names in brackets). Use `for_epochs` for other run lengths.

    :param max_grad: EG if the median mean |grad| exceeds it [p_eg1]
    :param max_grad_ratio: EG if the median ratio of adjacent layers' mean |grad| (earlier /
        later) exceeds it [p_eg2]
    :param min_grad: VG if the median mean |grad| is below it [p_vg1]
    :param min_grad_ratio: VG if the median adjacent-layer ratio is below it [p_vg2]
    :param max_zero_grad: DR if the median fraction of exactly-zero gradient entries exceeds
        it [p_dr1]
    :param dr_min_epochs: DR is checked from this many epochs on (BTTackler: 5)
    :param min_loss_cov: SC early if the CoV of the loss history is below it [p_sc1]
    :param sc_min_epochs: SC early is checked from this many epochs on (BTTackler: 3)
    :param min_loss_drop: PL (dmrx's addition, see `passive_loss`) if, in the first half and
        from `sc_min_epochs` epochs on, the best loss so far is not this relative amount below
        the first epoch's; 0 (the default) turns PL off
    :param osc_slope: HO needs a fitted slope of the last `window` losses of at least this,
        in nats per epoch [p_ho1]
    :param osc_cov: HO needs a CoV of the last `window` losses above it [p_ho2]
    :param window: epochs of HO's window and of NMG's two halves; SC late needs as many
        [wd_ho, wd_nmg]
    :param protect_percent, protect_min_trials: skip VG, DR, SC and NMG for a trial whose loss
        is at or below the `protect_percent` percentile of those of at least
        `protect_min_trials` other trials at the same epoch [cmp_percent, min_cmp_num]
    :param adam_eps: None (BTTackler's): the optimizer's step is proportional to the gradient
        (SGD). A number: the optimizer is Adam/AdamW with this epsilon, whose step per weight,
        lr * m / (sqrt(v) + eps), does not depend on the gradient's scale while |grad| >> eps:
        VG's magnitude test then asks for a median mean|grad| below `adam_eps` (where the step
        has shrunk to half its size) and its adjacent-layer ratio test is dropped (each tensor
        is normalised on its own, so a small ratio does not slow the earlier layer)
    :param noise_z: 0 (BTTackler's): NMG and SC late compare epoch losses as exact numbers.
        z > 0: they weigh the losses' sampling noise (`EpochHealth.loss_sem`): NMG needs a rise
        of more than z standard errors; SC late compares the halves' CoVs of the variance the
        epoch means have beyond their sampling variance, and fires only if the second half does
        not still descend (its fitted slope not below -z standard errors)
    :param min_update_ratio: VU (dmrx's addition, see `vanishing_updates`): in the first
        `sc_min_epochs` epochs, the median over weight tensors of one step's update relative
        to the weights is below it; 0 (the default) turns VU off
    :param trivial_loss: TP (dmrx's addition, see `trivial_plateau`): the training loss of the
        constant predictor (ln 2 for the BCE of coded bits at LLR = 0); TP fires in the first
        half when the update ratio is below `min_update_ratio` (which TP needs) while the
        epoch's loss is not below this; 0 (the default) turns TP off
    """

    max_grad: float = 1e4
    max_grad_ratio: float = 1e3
    min_grad: float = 1e-5
    min_grad_ratio: float = 1e-4
    max_zero_grad: float = 0.5
    dr_min_epochs: int = 5
    min_loss_cov: float = 1e-4
    sc_min_epochs: int = 3
    min_loss_drop: float = 0.0
    osc_slope: float = 0.01
    osc_cov: float = 0.2
    window: int = 6
    protect_percent: float = 10.0
    protect_min_trials: int = 10
    adam_eps: float | None = None
    noise_z: float = 0.0
    min_update_ratio: float = 0.0
    trivial_loss: float = 0.0

    def __post_init__(self) -> None:
        for name in ("max_grad", "max_grad_ratio", "min_grad", "min_grad_ratio", "min_loss_cov",
                     "osc_slope", "osc_cov"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and v > 0 and math.isfinite(v)):
                raise ValueError(f"DiagnosisConfig.{name}={v!r} is not allowed: a positive "
                                 "finite number")
        if self.adam_eps is not None and not (isinstance(self.adam_eps, int | float)
                                              and 0 < self.adam_eps < 1):
            raise ValueError(f"DiagnosisConfig.adam_eps={self.adam_eps!r} is not allowed: None "
                             "or a number in (0, 1)")
        if not (isinstance(self.noise_z, int | float) and 0 <= self.noise_z < math.inf):
            raise ValueError(f"DiagnosisConfig.noise_z={self.noise_z!r} is not allowed: a "
                             "finite number >= 0")
        if not 0 < self.max_zero_grad < 1:
            raise ValueError(f"DiagnosisConfig.max_zero_grad={self.max_zero_grad!r} is not "
                             "allowed: in (0, 1)")
        if not (isinstance(self.min_update_ratio, int | float)
                and 0 <= self.min_update_ratio < 1):
            raise ValueError(f"DiagnosisConfig.min_update_ratio={self.min_update_ratio!r} is not "
                             "allowed: in [0, 1)")
        if not (isinstance(self.trivial_loss, int | float)
                and 0 <= self.trivial_loss < math.inf):
            raise ValueError(f"DiagnosisConfig.trivial_loss={self.trivial_loss!r} is not "
                             "allowed: a finite number >= 0")
        if self.trivial_loss and not self.min_update_ratio:
            raise ValueError(f"DiagnosisConfig.trivial_loss={self.trivial_loss!r} is not "
                             "allowed with min_update_ratio=0: TP judges the update ratio "
                             "against min_update_ratio")
        if not 0 <= self.min_loss_drop < 1:
            raise ValueError(f"DiagnosisConfig.min_loss_drop={self.min_loss_drop!r} is not "
                             "allowed: in [0, 1)")
        if not 0 < self.protect_percent < 100:
            raise ValueError(f"DiagnosisConfig.protect_percent={self.protect_percent!r} is not "
                             "allowed: in (0, 100)")
        for name, least in (("dr_min_epochs", 1), ("sc_min_epochs", 2), ("window", 4),
                            ("protect_min_trials", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                raise ValueError(f"DiagnosisConfig.{name}={v!r} is not allowed: an integer "
                                 f">= {least}")

    def protects(self, mine: float, others: Sequence[float]) -> bool:
        """A trial whose loss at an epoch is `mine` is among the best (protection starts): at
        or below the `protect_percent` percentile of at least `protect_min_trials` `others`,
        the other trials' losses at the same epoch."""
        return len(others) >= self.protect_min_trials and is_top(mine, others,
                                                                 self.protect_percent)

    @classmethod
    def for_epochs(cls, epochs: int, **overrides) -> DiagnosisConfig:
        """BTTackler's defaults scaled from its 20-epoch runs to runs of `epochs` epochs: the
        epoch counts by epochs / 20 (half up; at least 2 epochs for a CoV, 4 for a window
        split in halves), HO's per-epoch slope by 20 / epochs; `overrides` replace fields."""
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs={epochs!r} is not allowed: a positive integer")
        base = cls()
        k = epochs / REFERENCE_EPOCHS

        def scaled(n: int, least: int) -> int:
            return max(least, math.floor(n * k + 0.5))

        return dataclasses.replace(
            base, dr_min_epochs=scaled(base.dr_min_epochs, 1),
            sc_min_epochs=scaled(base.sc_min_epochs, 2), window=scaled(base.window, 4),
            osc_slope=base.osc_slope / k, **overrides)


def _adjacent_ratios(g: Sequence[float]) -> list[float]:
    """mean|grad| of each weight tensor over the next one's (input to output order)."""
    return [a / b if b else math.inf for a, b in zip(g, g[1:], strict=False)]


def _cov(y: Sequence[float]) -> float:
    """Coefficient of variation, std (population, as numpy.std) / mean."""
    mean = statistics.fmean(y)
    return statistics.pstdev(y) / mean if mean else math.inf


def _first_half(h: Sequence[EpochHealth]) -> bool:
    """BTTackler's "half1": epoch index < max_epoch // 2, i.e. progress <= 1/2."""
    return h[-1].progress <= 0.5


# --- the rules: history (oldest first) -> diagnosis text or None --------------------------


def nonfinite(h: Sequence[EpochHealth], cfg: DiagnosisConfig) -> str | None:
    """EG, rule 0: NaN or Inf in the loss or in a gradient; nothing after it is meaningful."""
    e = h[-1]
    bad = e.nonfinite or not math.isfinite(e.loss) or not all(map(math.isfinite,
                                                                   e.grad_mean_abs))
    return f"EG: NaN/Inf in the loss or gradients at step {e.step}" if bad else None


def exploding_gradients(h: Sequence[EpochHealth], cfg: DiagnosisConfig) -> str | None:
    """EG, rules 1 and 2: gradients (before clipping) so large that clipping does all the work,
    or that grow by orders of magnitude from the output back to the input."""
    g = h[-1].grad_mean_abs
    if not g:
        return None
    med = statistics.median(g)
    if med > cfg.max_grad:
        return f"EG: median mean|grad| {med:.3g} > {cfg.max_grad:g}"
    if 0.0 in g:
        return None  # a tensor without gradient is VG's case
    ratios = _adjacent_ratios(g)
    if ratios and statistics.median(ratios) > cfg.max_grad_ratio:
        return (f"EG: median adjacent-layer mean|grad| ratio "
                f"{statistics.median(ratios):.3g} > {cfg.max_grad_ratio:g}")
    return None


def vanishing_gradients(h: Sequence[EpochHealth], cfg: DiagnosisConfig) -> str | None:
    """VG (first half only; later, small gradients are convergence): gradients too small to
    move the weights, a weight tensor with no gradient at all, or gradients that shrink by
    orders of magnitude towards the input."""
    g = h[-1].grad_mean_abs
    if not g or not _first_half(h):
        return None
    med = statistics.median(g)
    least = cfg.min_grad if cfg.adam_eps is None else cfg.adam_eps
    if med < least:
        return f"VG: median mean|grad| {med:.3g} < {least:g}"
    dead = [i for i, x in enumerate(g) if x == 0]
    if dead:
        return f"VG: weight tensors {dead} get no gradient at all"
    if cfg.adam_eps is not None:
        return None  # Adam scales each tensor's step on its own: ratios do not starve layers
    ratios = _adjacent_ratios(g)
    if ratios and statistics.median(ratios) < cfg.min_grad_ratio:
        return (f"VG: median adjacent-layer mean|grad| ratio "
                f"{statistics.median(ratios):.3g} < {cfg.min_grad_ratio:g}")
    return None


def vanishing_updates(h: Sequence[EpochHealth], cfg: DiagnosisConfig) -> str | None:
    """VU (dmrx, opt-in; while the history is at most `sc_min_epochs` epochs long): the
    optimizer's steps are too small to move the weights within the run, the median over weight
    tensors of ||w_t - w_(t-1)|| / ||w_(t-1)|| below `min_update_ratio`.

    VG's reading of "the weights do not move" for an adaptive optimizer: AdamW's step is about
    lr per weight whatever the gradient's scale, so a learning rate far too small leaves
    healthy gradients and a smooth, slow descent (no BTTackler rule fires), while its updates
    are a tiny fraction of the weights. The common rule of thumb (Karpathy, CS231n "Neural
    Networks Part 3", ratio of updates to weights) puts a healthy ratio around 1e-3 per step
    and reads a lower one as a learning rate that is too low. Checked only in the first epochs:
    later, small steps are convergence (the cosine schedule and Adam's noise-dominated moments
    shrink them in every run). Gradient statistics start with the second epoch, so VU can fire
    from the second epoch on. Meant for trials trained from scratch (as `dmrx tune`'s): a
    fine-tuning run from trained weights is healthy at much smaller ratios."""
    u = h[-1].update_ratio
    if cfg.min_update_ratio == 0 or not u or len(h) > cfg.sc_min_epochs:
        return None
    med = statistics.median(u)
    if med < cfg.min_update_ratio:
        return (f"VU: median update / weight ratio {med:.3g} per step < "
                f"{cfg.min_update_ratio:g} after {len(h)} epochs")
    return None


def trivial_plateau(h: Sequence[EpochHealth], cfg: DiagnosisConfig) -> str | None:
    """TP (dmrx, opt-in; first half): the optimizer's steps have vanished (the median update /
    weight ratio below `min_update_ratio`, as VU) while the epoch's loss is still that of the
    constant predictor, `trivial_loss` (with `noise_z` > 0: not below it by more than z of the
    epoch loss's standard errors).

    The LLR = 0 plateau that trials at learning rates of ~0.02-0.08 fall onto after a first
    epoch whose loss spikes: AdamW's step is lr * m / sqrt(v), and its second moment v, with
    beta2 = 0.999, remembers the spike's gradients for ~1000 steps, longer than a 300-step
    trial, while the plateau's gradients are orders of magnitude smaller, so the steps shrink
    with them and stay small. Such a trial is not converging (the loss has not fallen below the
    constant predictor's) and barely moves. A trial that leaves the plateau keeps steps of the
    healthy size meanwhile. Neither condition alone is a diagnosis: small steps after the
    loss has fallen are convergence, and a trial at the constant predictor's loss with steps
    of the healthy size may still leave it (BTTackler's VG and dmrx's adapted VG stop or spare
    such trials on the gradient's size alone).

    Checked from the first epoch with update ratios (the second) to the run's half, the stage
    of BTTackler's VG, the gradient form of the same symptom. VU's threshold is used because
    the symptom is VU's, steps too small to move the weights."""
    u = h[-1].update_ratio
    if not cfg.trivial_loss or not cfg.min_update_ratio or not u or not _first_half(h):
        return None
    med, e = statistics.median(u), h[-1]
    if med < cfg.min_update_ratio and e.loss >= cfg.trivial_loss - cfg.noise_z * e.loss_sem:
        return (f"TP: median update / weight ratio {med:.3g} per step < "
                f"{cfg.min_update_ratio:g} after {len(h)} epochs with the loss {e.loss:.4f} "
                f"still at the constant predictor's {cfg.trivial_loss:.4f}")
    return None


def dying_relu(h: Sequence[EpochHealth], cfg: DiagnosisConfig) -> str | None:
    """DR: most gradient entries are exactly zero, which is what dead (always-off) ReLUs leave
    in the weights they feed: the net has lost its capacity."""
    z = h[-1].grad_zero_frac
    if len(h) < cfg.dr_min_epochs or not z:
        return None
    med = statistics.median(z)
    if med > cfg.max_zero_grad:
        return f"DR: median {med:.1%} of gradient entries exactly 0 > {cfg.max_zero_grad:.0%}"
    return None


def stalled_early(h: Sequence[EpochHealth], cfg: DiagnosisConfig) -> str | None:
    """SC early (first half): the whole loss history is flat, CoV < `min_loss_cov`."""
    if len(h) < cfg.sc_min_epochs or not _first_half(h):
        return None
    cov = _cov([e.loss for e in h])
    if cov < cfg.min_loss_cov:
        return f"SC early: loss CoV {cov:.3g} over {len(h)} epochs < {cfg.min_loss_cov:g}"
    return None


def passive_loss(h: Sequence[EpochHealth], cfg: DiagnosisConfig) -> str | None:
    """PL (first half, from `sc_min_epochs` epochs on): the loss has barely moved, its best so
    far less than `min_loss_drop` (relative) below the first epoch's.

    Not one of BTTackler's code rules but dmrx's form of the check the issue names ("a loss
    that stops decreasing") and of the paper's "passive loss changes" indicator group: SC
    early asks for a CoV below 1e-4, which the epoch means of minibatch losses never reach,
    so a run at a learning rate far too small (a smooth, slow descent) passes every BTTackler
    rule to its last epoch. The 2 % default is the one this rule had before BTTackler's rules
    were ported (dmrx session 2), not a value fitted to the tune benchmark.

    Off by default (`min_loss_drop=0`): in `benchmarks/tune_diagnosis.py` (20 trials x 3 seeds)
    PL with 0.02 raised the mean wall time saved from 22 % to 43 %, but in one seed it stopped so
    many trials early that fewer than 10 reached the epoch where the eventual best would have
    been protected; SC late then stopped that trial and the best BMD rate fell from 0.543 to
    0.419."""
    if cfg.min_loss_drop == 0 or len(h) < cfg.sc_min_epochs or not _first_half(h):
        return None
    first, best = h[0].loss, min(e.loss for e in h)
    if first > 0 and best > (1 - cfg.min_loss_drop) * first:
        return (f"PL: best loss {best:.4f} is {1 - best / first:.1%} below the first epoch's "
                f"{first:.4f} after {len(h)} epochs (< {cfg.min_loss_drop:.0%})")
    return None


def _excess_cov(h: Sequence[EpochHealth]) -> float:
    """CoV of the epoch losses' variance beyond their sampling variance (mean loss_sem^2)."""
    y = [e.loss for e in h]
    mean = statistics.fmean(y)
    var = statistics.pvariance(y) - statistics.fmean(e.loss_sem ** 2 for e in h)
    return math.sqrt(max(0.0, var)) / mean if mean else math.inf


def _slope(h: Sequence[EpochHealth]) -> tuple[float, float]:
    """Least-squares slope of the losses per epoch and its standard error from loss_sem."""
    xm, ym = (len(h) - 1) / 2, statistics.fmean(e.loss for e in h)
    sxx = sum((x - xm) ** 2 for x in range(len(h)))
    slope = sum((x - xm) * (e.loss - ym) for x, e in enumerate(h)) / sxx
    se = math.sqrt(sum((x - xm) ** 2 * e.loss_sem ** 2 for x, e in enumerate(h))) / sxx
    return slope, se


def stalled_late(h: Sequence[EpochHealth], cfg: DiagnosisConfig) -> str | None:
    """SC late (second half): the loss varies more in the second half of its history than in
    the first, i.e. it has stopped converging (a converging curve settles down).

    With `cfg.noise_z` > 0 the variation is that beyond the epoch means' sampling noise, and a
    second half that still descends (fitted slope below -z standard errors) is converging
    whatever its CoV: the CoV is relative to the mean, so a curve that keeps falling to a low
    loss has the larger CoV in its second half because it converges."""
    if len(h) < cfg.window or _first_half(h):
        return None
    first, second = h[:len(h) // 2], h[len(h) // 2:]
    if cfg.noise_z > 0:
        slope, se = _slope(second)
        if slope < -cfg.noise_z * se:
            return None
        ahead, current = _excess_cov(first), _excess_cov(second)
        kind = "excess loss CoV"
    else:
        ahead, current = _cov([e.loss for e in first]), _cov([e.loss for e in second])
        kind = "loss CoV"
    if ahead < current:
        return (f"SC late: {kind} {current:.3g} in the 2nd half of {len(h)} epochs > "
                f"{ahead:.3g} in the 1st")
    return None


def heavy_oscillation(h: Sequence[EpochHealth], cfg: DiagnosisConfig) -> str | None:
    """HO (second half): the last `window` losses trend up and swing widely."""
    if _first_half(h):
        return None
    last = h[-cfg.window:]
    if len(last) < 2:
        return None
    y = [e.loss for e in last]
    slope, cov = _slope(last)[0], _cov(y)
    if slope >= cfg.osc_slope and cov > cfg.osc_cov:
        return (f"HO: last {len(y)} losses slope {slope:.3g}/epoch >= {cfg.osc_slope:.3g}, "
                f"CoV {cov:.3g} > {cfg.osc_cov:g}")
    return None


def no_more_gain(h: Sequence[EpochHealth], cfg: DiagnosisConfig) -> str | None:
    """NMG: the mean loss of the last `window` / 2 epochs exceeds that of the (up to)
    `window` / 2 before (BTTackler's slicing: loss[-w:-w/2] vs loss[-w/2:], from the first
    epoch where the earlier slice is not empty). With `cfg.noise_z` > 0 it must exceed it by
    more than z standard errors of the difference of the two means."""
    half = math.floor(cfg.window / 2 + 0.5)
    head, tail = h[-cfg.window:-half], h[-half:]
    if not head:
        return None
    before, last = statistics.fmean(e.loss for e in head), statistics.fmean(e.loss for e in tail)
    margin = 0.0
    if cfg.noise_z > 0:  # standard error of the difference of the two means
        se = math.sqrt(sum(e.loss_sem ** 2 for e in head) / len(head) ** 2
                       + sum(e.loss_sem ** 2 for e in tail) / len(tail) ** 2)
        margin = cfg.noise_z * se
    if before + margin < last:
        return (f"NMG: mean loss of the last {len(tail)} epochs {last:.4f} > {before:.4f} "
                f"of the {len(head)} before" + (f" + {margin:.4f} (noise)" if margin else ""))
    return None


Rule = Callable[[Sequence[EpochHealth], DiagnosisConfig], "str | None"]
# Rules that fire whatever the other trials do (BTTackler's EG and HO).
UNPROTECTED_RULES: tuple[Rule, ...] = (nonfinite, exploding_gradients, heavy_oscillation)
# Rules that protection skips for a trial among the best (BTTackler's VG, DR, SC, NMG, and
# dmrx's VU, TP and PL).
PROTECTED_RULES: tuple[Rule, ...] = (vanishing_gradients, vanishing_updates, trivial_plateau,
                                     dying_relu, stalled_early, passive_loss, stalled_late,
                                     no_more_gain)


def diagnose(h: Sequence[EpochHealth], cfg: DiagnosisConfig | None = None, *,
             protected: bool = False) -> list[str]:
    """All diagnoses of a training history (oldest epoch first); empty if it looks healthy.

    :param protected: skip `PROTECTED_RULES` (the trial is among the best so far)
    """
    if not h:
        return []
    cfg = cfg or DiagnosisConfig()
    if (d := nonfinite(h, cfg)) is not None:
        return [d]  # BTTackler checks nothing else after a NaN/Inf
    rules = UNPROTECTED_RULES if protected else UNPROTECTED_RULES + PROTECTED_RULES
    return [d for rule in rules if (d := rule(h, cfg)) is not None]


def is_top(mine: float, others: Sequence[float], percent: float) -> bool:
    """`mine` at or below the `percent` percentile of `others` (linear interpolation between
    order statistics, as numpy.percentile's default)."""
    s = sorted(others)
    pos = percent / 100 * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return mine <= s[lo] + (pos - lo) * (s[hi] - s[lo])


class HealthMonitor:
    """Collects `EpochHealth` from a receiver during `nn.train.train`.

    Use as (part of) train's `on_epoch` callback: call `update(step, row, rx)` after each
    epoch. It attaches its hook at the first call, so gradient statistics start with the
    second epoch. Gradients are read by one backward hook over all weight tensors (dim > 1:
    convolution and linear weights, as BTTackler's Conv/Linear weights), before clipping.

    The hook is `torch.autograd.graph.register_multi_grad_hook`: called once per backward
    with every weight's gradient, it measures all tensors with a few fused `torch._foreach_*`
    operations instead of a handful of small operations per tensor. On the CPU, where
    `dmrx tune`'s small trials spend a few milliseconds per step, per-tensor hooks cost 0-7 %
    of a trial's CPU time (mean 3.8 %), this hook an amount within the measurement's noise of
    zero (benchmarks/monitor_overhead.py); the diagnosis's time saved is net of it.

    :param total_steps: the run's total steps (for `EpochHealth.progress`)
    """

    def __init__(self, total_steps: int):
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        self.total_steps = total_steps
        self.history: list[EpochHealth] = []
        self._handle = None
        self._weights: list[torch.Tensor] = []
        # per weight tensor (rows), on the weights' device (no host sync per step; read once
        # per epoch): the epoch's sums of mean|grad|, of the zero fraction and of the update
        # ratio, and the counts of gradients and of update ratios seen
        self._sums = torch.zeros(0, 3, dtype=torch.float64)
        self._counts = torch.zeros(0, 2, dtype=torch.float64)
        self._numel = torch.zeros(0, dtype=torch.float64)
        self._now: list[torch.Tensor] = []  # detached views: the optimizer updates in place
        self._prev: list[torch.Tensor] | None = None  # the weights at the last backward

    def _attach(self, rx: torch.nn.Module) -> None:
        self._weights = [p for p in rx.parameters() if p.requires_grad and p.dim() > 1]
        if not self._weights:
            return
        device = self._weights[0].device
        n = len(self._weights)
        self._sums = torch.zeros(n, 3, dtype=torch.float64, device=device)
        self._counts = torch.zeros(n, 2, dtype=torch.float64, device=device)
        self._numel = torch.tensor([p.numel() for p in self._weights], dtype=torch.float64,
                                   device=device)
        self._now = [p.detach() for p in self._weights]
        self._handle = torch.autograd.graph.register_multi_grad_hook(self._weights, self._hook)

    def _hook(self, grads: Sequence[torch.Tensor | None]) -> None:
        with torch.no_grad():
            seen = [i for i, g in enumerate(grads) if g is not None]
            if not seen:
                return
            gs = [grads[i] for i in seen]
            rows = torch.tensor(seen, device=self._sums.device)
            numel = self._numel[rows]
            mean_abs = torch.stack(torch._foreach_norm(gs, 1)).double() / numel
            nonzero = torch.stack(torch._foreach_norm(gs, 0)).double() / numel
            self._sums[rows, 0] += mean_abs
            self._sums[rows, 1] += 1.0 - nonzero
            self._counts[rows, 0] += 1
            # the weights as this backward sees them hold the previous step's update: the
            # optimizer's step itself is not hooked, one copy of the weights is cheaper
            if self._prev is None:
                self._prev = [w.clone() for w in self._now]
                return
            prev = [self._prev[i] for i in seen]
            now = [self._now[i] for i in seen]
            norm = torch.stack(torch._foreach_norm(prev)).double()
            moved = torch.stack(torch._foreach_norm(torch._foreach_sub(now, prev))).double()
            ok = norm > 0
            self._sums[rows, 2] += torch.where(ok, moved / norm, 0.0)
            self._counts[rows, 1] += ok.double()
            torch._foreach_copy_(prev, now)

    def update(self, step: int, row: dict, rx: torch.nn.Module) -> EpochHealth:
        """Close the epoch that ended at `step` (row: train's log row, with 'loss')."""
        if not self._weights:
            self._attach(rx)
        sums, counts = self._sums.tolist(), self._counts.tolist()
        grads = tuple(s[0] / c[0] for s, c in zip(sums, counts, strict=True) if c[0])
        zeros = tuple(s[1] / c[0] for s, c in zip(sums, counts, strict=True) if c[0])
        updates = tuple(s[2] / c[1] for s, c in zip(sums, counts, strict=True) if c[1])
        # a NaN/Inf gradient leaves its tensor's sum of mean|grad| non-finite
        nonfinite = not all(map(math.isfinite, grads))
        e = EpochHealth(int(step), float(row["loss"]), min(1.0, step / self.total_steps),
                        grads, zeros, nonfinite, float(row.get("loss_sem", 0.0)), updates)
        self.history.append(e)
        self._sums.zero_()
        self._counts.zero_()
        return e

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


HEALTH_ATTR = "health"  # trial user attribute holding [EpochHealth.as_dict(), ...]


class DiagnosisPruner(optuna.pruners.BasePruner):
    """Prunes a trial as soon as a diagnosis rule fires on its training health.

    The trial's history comes from `watch` (the objective hands over its monitor's list, read
    in place, with no storage write per epoch) or else from the user attribute "health" (a list
    of `EpochHealth.as_dict()`). The trial reports, at each epoch's step, an intermediate value
    that ranks trials as their training loss does (dmrx tune reports the BMD rate
    1 - loss / ln 2; `direction` says which way is better). Protection compares those values
    across trials at the same step, as BTTackler compares training losses at the same epoch.
    What fired is kept in `diagnoses` (trial number -> list of texts) for the objective to
    record.

    :param shared_storage: other processes run trials of the same study at the same time: read
        every trial's values from the storage at each check. False (one process, trials one
        after the other, as `dmrx tune`): read the storage once, at the first check, then keep
        the values of the trials this pruner sees, which saves a storage read per epoch
    """

    def __init__(self, config: DiagnosisConfig | None = None, *, direction: str = "maximize",
                 shared_storage: bool = False):
        if direction not in ("maximize", "minimize"):
            raise ValueError(f"direction={direction!r} is not allowed: 'maximize' or "
                             "'minimize'")
        self.config = config or DiagnosisConfig()
        self.direction = direction
        self.shared_storage = shared_storage
        self.diagnoses: dict[int, list[str]] = {}
        self.protected: set[int] = set()
        self._watched: dict[int, Sequence[EpochHealth]] = {}
        self._values: dict[int, dict[int, float]] | None = None  # trial -> step -> value

    def watch(self, number: int, history: Sequence[EpochHealth]) -> None:
        """Diagnose trial `number` from `history` (e.g. `HealthMonitor.history`, which grows in
        place) instead of its "health" user attribute."""
        self._watched[number] = history

    def _others(self, study: optuna.Study, trial: optuna.trial.FrozenTrial,
                step: int) -> list[float]:
        if self.shared_storage or self._values is None:
            self._values = {t.number: dict(t.intermediate_values)
                            for t in study.get_trials(deepcopy=False)}
        self._values[trial.number] = dict(trial.intermediate_values)
        return [v[step] for n, v in self._values.items() if n != trial.number and step in v]

    def _is_protected(self, study: optuna.Study, trial: optuna.trial.FrozenTrial,
                      step: int) -> bool:
        others = self._others(study, trial, step)
        if trial.number in self.protected:
            return True  # once among the best, always protected (as BTTackler)
        mine = trial.intermediate_values.get(step)
        if mine is None:
            return False
        sign = -1.0 if self.direction == "maximize" else 1.0  # as a loss: lower is better
        if self.config.protects(sign * mine, [sign * v for v in others]):
            self.protected.add(trial.number)
            return True
        return False

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if trial.number in self._watched:
            history = list(self._watched[trial.number])
        else:
            history = [EpochHealth.from_dict(d) for d in trial.user_attrs.get(HEALTH_ATTR, [])]
        if not history:
            return False
        found = diagnose(history, self.config,
                         protected=self._is_protected(study, trial, history[-1].step))
        if found:
            self.diagnoses[trial.number] = found
        return bool(found)
