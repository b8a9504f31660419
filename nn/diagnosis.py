"""Training-health diagnosis (after BTTackler, Pei et al., KDD 2024): end hopeless trials early.

A `HealthMonitor` watches one training run: per-parameter gradient statistics taken before
clipping (tensor hooks), the fraction of ReLU inputs that are <= 0 (forward hooks on the
GroupNorms that feed every ReLU of dmrx's GridResNet), and the epoch losses. Each epoch becomes
an `EpochHealth`. The rules below are small pure functions of that history; each returns a
diagnosis (a short text) or None. `DiagnosisPruner` is the Optuna pruner that applies them.

Rules and defaults follow BTTackler's code (thresholds from its default config), with "median"
taken across layers, and its protection: the rules that only say "this will not become good"
(all but NaN and exploding gradients) are skipped for a trial that is among the best 10% of the
other trials at the same step, once enough trials exist to say so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import optuna
import torch


@dataclass(frozen=True)
class EpochHealth:
    """Health of one logged epoch.

    :param step: global training step at the end of the epoch
    :param loss: mean training loss of the epoch (nats)
    :param progress: step / total steps, in (0, 1]
    :param grad_mean_abs: per weight tensor (input to output order), mean |grad| over the
        epoch's steps, before clipping; empty if not measured
    :param grad_zero_frac: per weight tensor, mean fraction of exactly-zero gradient entries
    :param relu_off_frac: per ReLU, mean fraction of its inputs that are <= 0 (output 0)
    :param nonfinite: a NaN/Inf was seen in the loss or a gradient during the epoch
    """

    step: int
    loss: float
    progress: float
    grad_mean_abs: tuple[float, ...] = ()
    grad_zero_frac: tuple[float, ...] = ()
    relu_off_frac: tuple[float, ...] = ()
    nonfinite: bool = False

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EpochHealth:
        return cls(int(d["step"]), float(d["loss"]), float(d["progress"]),
                   tuple(d.get("grad_mean_abs", ())), tuple(d.get("grad_zero_frac", ())),
                   tuple(d.get("relu_off_frac", ())), bool(d.get("nonfinite", False)))


@dataclass(frozen=True)
class DiagnosisConfig:
    """Thresholds of the rules (defaults: BTTackler's, except where noted).

    :param max_grad: exploding if the median mean |grad| exceeds it
    :param max_grad_ratio: exploding if the median ratio of adjacent layers' mean |grad|
        (earlier / later) exceeds it
    :param min_grad: vanishing if the median mean |grad| is below it
    :param min_grad_ratio: vanishing if the median adjacent-layer ratio is below it
    :param max_relu_off: saturated if the median fraction of ReLU inputs <= 0 exceeds it
        (GroupNorm puts about half below 0 in a healthy net; dead layers are near 1)
    :param min_loss_drop: not decreasing if, after `min_epochs`, the loss has not dropped by
        this relative amount below the first epoch's (dmrx's form of BTTackler's flat-loss
        test, which on noisy per-epoch losses never fires)
    :param rise_tol: rising if the mean loss of the last 3 epochs exceeds that of the 3
        before by this relative amount
    :param osc_slope, osc_cov: oscillating if the last 6 losses have a fitted slope (per
        epoch, relative to their mean) >= osc_slope and a coefficient of variation > osc_cov
    :param min_epochs: epochs before the curve rules may fire
    :param protect_quantile, protect_min_trials: skip the curve and activation rules for a
        trial whose BMD rate at this step is in the top `protect_quantile` of at least
        `protect_min_trials` other trials (BTTackler: 10% of >= 10 trials)
    """

    max_grad: float = 1e4
    max_grad_ratio: float = 1e3
    min_grad: float = 1e-7
    min_grad_ratio: float = 1e-4
    max_relu_off: float = 0.95
    min_loss_drop: float = 0.02
    rise_tol: float = 0.05
    osc_slope: float = 0.01
    osc_cov: float = 0.2
    min_epochs: int = 3
    protect_quantile: float = 0.1
    protect_min_trials: int = 10

    def __post_init__(self) -> None:
        for name in ("max_grad", "max_grad_ratio", "min_grad", "min_grad_ratio", "rise_tol",
                     "osc_slope", "osc_cov"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and v > 0 and math.isfinite(v)):
                raise ValueError(f"DiagnosisConfig.{name}={v!r} is not allowed: a positive "
                                 "finite number")
        for name in ("max_relu_off", "min_loss_drop", "protect_quantile"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"DiagnosisConfig.{name}={getattr(self, name)!r} is not "
                                 "allowed: in (0, 1)")
        for name in ("min_epochs", "protect_min_trials"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"DiagnosisConfig.{name}={getattr(self, name)!r} is not "
                                 "allowed: a positive integer")


def _adjacent_ratios(g: Sequence[float]) -> list[float]:
    return [a / b for a, b in zip(g, g[1:], strict=False) if b > 0]


# --- the rules: history (oldest first) -> diagnosis text or None --------------------------


def nonfinite(h: Sequence[EpochHealth], cfg: DiagnosisConfig) -> str | None:
    """NaN or Inf in the loss or in a gradient: nothing after it is meaningful."""
    e = h[-1]
    bad = e.nonfinite or not math.isfinite(e.loss) or not all(map(math.isfinite,
                                                                   e.grad_mean_abs))
    return f"NaN/Inf in the loss or gradients at step {e.step}" if bad else None


def exploding_gradients(h: Sequence[EpochHealth], cfg: DiagnosisConfig) -> str | None:
    """Gradients (before clipping) so large that clipping does all the work, or that grow by
    orders of magnitude from the output back to the input (BTTackler's EG)."""
    g = h[-1].grad_mean_abs
    if not g:
        return None
    med = statistics.median(g)
    if med > cfg.max_grad:
        return f"exploding gradients: median mean|grad| {med:.3g} > {cfg.max_grad:g}"
    ratios = _adjacent_ratios(g)
    if ratios and statistics.median(ratios) > cfg.max_grad_ratio:
        return (f"exploding gradients: median adjacent-layer ratio "
                f"{statistics.median(ratios):.3g} > {cfg.max_grad_ratio:g}")
    return None


def vanishing_gradients(h: Sequence[EpochHealth], cfg: DiagnosisConfig) -> str | None:
    """Gradients too small to move the weights, a layer with no gradient at all, or gradients
    that shrink by orders of magnitude towards the input (BTTackler's VG; first half of
    training only, as later small gradients are convergence)."""
    e = h[-1]
    if not e.grad_mean_abs or e.progress > 0.5:
        return None
    med = statistics.median(e.grad_mean_abs)
    if med < cfg.min_grad:
        return f"vanishing gradients: median mean|grad| {med:.3g} < {cfg.min_grad:g}"
    dead = [i for i, z in enumerate(e.grad_zero_frac) if z >= 1.0]
    if dead:
        return f"vanishing gradients: weight tensors {dead} get no gradient at all"
    ratios = _adjacent_ratios(e.grad_mean_abs)
    if ratios and statistics.median(ratios) < cfg.min_grad_ratio:
        return (f"vanishing gradients: median adjacent-layer ratio "
                f"{statistics.median(ratios):.3g} < {cfg.min_grad_ratio:g}")
    return None


def saturated_activations(h: Sequence[EpochHealth], cfg: DiagnosisConfig) -> str | None:
    """Most ReLUs are off (dying ReLU, BTTackler's DR): the net has lost its capacity."""
    if len(h) < cfg.min_epochs or not h[-1].relu_off_frac:
        return None
    med = statistics.median(h[-1].relu_off_frac)
    if med > cfg.max_relu_off:
        return f"saturated activations: median {med:.1%} of ReLU inputs <= 0"
    return None


def loss_not_decreasing(h: Sequence[EpochHealth], cfg: DiagnosisConfig) -> str | None:
    """After `min_epochs` in the first half of training, the loss has not dropped by
    `min_loss_drop` below the first epoch's: the learning rate is too small or too large to
    learn anything in the budget (BTTackler's passive loss change / SC)."""
    if len(h) < cfg.min_epochs or h[-1].progress > 0.5:
        return None
    first, best = h[0].loss, min(e.loss for e in h)
    if best > first * (1 - cfg.min_loss_drop):
        return (f"loss not decreasing: best {best:.4f} vs first epoch {first:.4f} after "
                f"{len(h)} epochs (< {cfg.min_loss_drop:.0%} drop)")
    return None


def loss_rising(h: Sequence[EpochHealth], cfg: DiagnosisConfig) -> str | None:
    """The mean loss of the last 3 epochs exceeds that of the 3 before: training diverges
    (BTTackler's NMG)."""
    if len(h) < 6:
        return None
    prev = statistics.fmean(e.loss for e in h[-6:-3])
    last = statistics.fmean(e.loss for e in h[-3:])
    if last > prev * (1 + cfg.rise_tol):
        return f"loss rising: last 3 epochs {last:.4f} vs the 3 before {prev:.4f}"
    return None


def heavy_oscillation(h: Sequence[EpochHealth], cfg: DiagnosisConfig) -> str | None:
    """Second half of training: the last 6 losses trend up and swing widely (BTTackler's HO)."""
    if len(h) < 6 or h[-1].progress <= 0.5:
        return None
    y = [e.loss for e in h[-6:]]
    mean = statistics.fmean(y)
    if mean <= 0:
        return None
    xs = range(len(y))
    xm = statistics.fmean(xs)
    slope = sum((x - xm) * (v - mean) for x, v in zip(xs, y, strict=True)) / \
        sum((x - xm) ** 2 for x in xs) / mean
    cov = statistics.pstdev(y) / mean
    if slope >= cfg.osc_slope and cov > cfg.osc_cov:
        return f"heavy oscillation: slope {slope:.3g}/epoch, CoV {cov:.3g}"
    return None


Rule = Callable[[Sequence[EpochHealth], DiagnosisConfig], "str | None"]
# Rules that fire whatever the other trials do (a broken run is broken).
FATAL_RULES: tuple[Rule, ...] = (nonfinite, exploding_gradients)
# Rules that predict a poor result; protection can skip them.
CURVE_RULES: tuple[Rule, ...] = (vanishing_gradients, saturated_activations,
                                 loss_not_decreasing, loss_rising, heavy_oscillation)


def diagnose(h: Sequence[EpochHealth], cfg: DiagnosisConfig | None = None, *,
             protected: bool = False) -> list[str]:
    """All diagnoses of a training history (oldest epoch first); empty if it looks healthy.

    :param protected: skip `CURVE_RULES` (the trial is among the best so far)
    """
    if not h:
        return []
    cfg = cfg or DiagnosisConfig()
    rules = FATAL_RULES if protected else FATAL_RULES + CURVE_RULES
    return [d for rule in rules if (d := rule(h, cfg)) is not None]


class HealthMonitor:
    """Collects `EpochHealth` from a receiver during `nn.train.train`.

    Use as (part of) train's `on_epoch` callback: call `update(step, row, rx)` after each
    epoch. It attaches its hooks at the first call, so gradient and activation statistics
    start with the second epoch. Gradients are read by tensor hooks, before clipping.

    :param total_steps: the run's total steps (for `EpochHealth.progress`)
    """

    def __init__(self, total_steps: int):
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        self.total_steps = total_steps
        self.history: list[EpochHealth] = []
        self._handles: list = []
        self._grad_sum: list[float] = []
        self._zero_sum: list[float] = []
        self._grad_n: list[int] = []
        self._off_sum: list[float] = []
        self._off_n: list[int] = []
        self._nonfinite = False

    def _attach(self, rx: torch.nn.Module) -> None:
        # Weight tensors only (dim > 1): biases and norm gains say little about gradient flow.
        weights = [p for p in rx.parameters() if p.requires_grad and p.dim() > 1]
        self._grad_sum, self._zero_sum = [0.0] * len(weights), [0.0] * len(weights)
        self._grad_n = [0] * len(weights)
        for i, p in enumerate(weights):
            self._handles.append(p.register_hook(self._grad_hook(i)))
        norms = [m for m in rx.modules() if isinstance(m, torch.nn.GroupNorm)]
        self._off_sum, self._off_n = [0.0] * len(norms), [0] * len(norms)
        for i, m in enumerate(norms):
            self._handles.append(m.register_forward_hook(self._act_hook(i)))

    def _grad_hook(self, i: int):
        def hook(g: torch.Tensor) -> None:
            with torch.no_grad():
                a = g.abs().mean().item()
                if not math.isfinite(a):
                    self._nonfinite = True
                self._grad_sum[i] += a
                self._zero_sum[i] += (g == 0).float().mean().item()
                self._grad_n[i] += 1

        return hook

    def _act_hook(self, i: int):
        def hook(module, inputs, output: torch.Tensor) -> None:
            if module.training:  # evaluation passes are not training health
                with torch.no_grad():
                    self._off_sum[i] += (output <= 0).float().mean().item()
                self._off_n[i] += 1

        return hook

    def update(self, step: int, row: dict, rx: torch.nn.Module) -> EpochHealth:
        """Close the epoch that ended at `step` (row: train's log row, with 'loss')."""
        if not self._handles:
            self._attach(rx)
        grads = tuple(s / n for s, n in zip(self._grad_sum, self._grad_n, strict=True) if n)
        zeros = tuple(s / n for s, n in zip(self._zero_sum, self._grad_n, strict=True) if n)
        off = tuple(s / n for s, n in zip(self._off_sum, self._off_n, strict=True) if n)
        e = EpochHealth(int(step), float(row["loss"]), min(1.0, step / self.total_steps),
                        grads, zeros, off, self._nonfinite)
        self.history.append(e)
        self._grad_sum = [0.0] * len(self._grad_sum)
        self._zero_sum = [0.0] * len(self._zero_sum)
        self._grad_n = [0] * len(self._grad_n)
        self._off_sum, self._off_n = [0.0] * len(self._off_sum), [0] * len(self._off_n)
        self._nonfinite = False
        return e

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


HEALTH_ATTR = "health"  # trial user attribute holding [EpochHealth.as_dict(), ...]


class DiagnosisPruner(optuna.pruners.BasePruner):
    """Prunes a trial as soon as a diagnosis rule fires on its training health.

    The trial stores its history as the user attribute "health" (a list of
    `EpochHealth.as_dict()`) and reports its BMD rate (higher is better) as intermediate
    values; protection compares those across trials. What fired is kept in `diagnoses`
    (trial number -> list of texts) for the objective to record.
    """

    def __init__(self, config: DiagnosisConfig | None = None):
        self.config = config or DiagnosisConfig()
        self.diagnoses: dict[int, list[str]] = {}
        self._protected: set[int] = set()

    def _is_protected(self, study: optuna.Study, trial: optuna.trial.FrozenTrial,
                      step: int) -> bool:
        if trial.number in self._protected:
            return True  # once among the best, always protected (as BTTackler)
        mine = trial.intermediate_values.get(step)
        others = [t.intermediate_values[step] for t in study.get_trials(deepcopy=False)
                  if t.number != trial.number and step in t.intermediate_values]
        if mine is None or len(others) < self.config.protect_min_trials:
            return False
        others.sort(reverse=True)
        k = max(1, math.ceil(self.config.protect_quantile * len(others)))
        if mine >= others[k - 1]:
            self._protected.add(trial.number)
            return True
        return False

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        history = [EpochHealth.from_dict(d) for d in trial.user_attrs.get(HEALTH_ATTR, [])]
        if not history:
            return False
        found = diagnose(history, self.config,
                         protected=self._is_protected(study, trial, history[-1].step))
        if found:
            self.diagnoses[trial.number] = found
        return bool(found)
