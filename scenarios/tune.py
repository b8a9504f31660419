"""Hyperparameter search for receivers (`dmrx tune`): Optuna over `nn.train`'s settings, with
the training-health diagnosis of `nn.diagnosis` as the pruner.

Each trial trains a receiver for a short budget (`steps`) and is scored by its BMD rate on the
same held-out slots as every other trial (`evaluate_bmd_rate` with a fixed batch size and seed).
With diagnosis on, a trial whose training health fails a rule is stopped at that epoch, as
BTTackler's trials stop themselves: the receiver as trained so far is scored like any other and
its score is the trial's value (state "stopped", with what was diagnosed), so a trial stopped in
its last epochs still counts. A trial whose loss turns NaN has no receiver to score and is
pruned. The study lives in `out/study.db` (SQLite), so an interrupted search resumes with the
trials it still lacks; `out/tune.json` summarises it.

`median_stop_epoch` adds the median stopping rule (`MedianStop`), which stops trials by their
BMD rate against the earlier trials' rather than by their health; a trial it stops is scored
the same way and its record says "MS: ...".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from dmrx.nn.checkpoint import atomic_write
from dmrx.nn.diagnosis import HEALTH_ATTR, DiagnosisConfig, DiagnosisPruner, HealthMonitor
from dmrx.nn.train import TrainConfig, evaluate_bmd_rate, train
from dmrx.scenarios.catalog import get_link, get_scenario

SAMPLERS = ("tpe", "random")
ADAMW_EPS = 1e-8  # nn.train's AdamW keeps torch's default epsilon
# The diagnosis rule sets (`TuneConfig.rules`, `dmrx tune --rules`). 'bttackler': BTTackler's
# code rules as they are (EG, VG, DR, SC, HO, NMG). 'dmrx', the default: those with VG judged
# against AdamW's epsilon and NMG / SC late against the epoch loss's noise, and dmrx's PL, VU
# and TP rules (`nn.diagnosis`). Why dmrx's is the default: at `dmrx tune`'s trial length,
# BTTackler's rules stopped the search's best trial in 2 of 5 sampler seeds
# (benchmarks/results/tune_diagnosis-defaults.json); the full dmrx set kept it in all 22 fresh
# seeds it was measured on (14-35, 23.3 % less wall time,
# results/tune_diagnosis-pooled-tp-fresh-all.json), and its two earlier stages (without TP;
# without VU and TP) in 8 more (10-13, 6-9).
RULES: dict[str, dict] = {
    "dmrx": {"passive_loss_drop": 0.02, "adapted_rules": True, "min_update_ratio": 1e-3,
             "trivial_plateau": True},
    "bttackler": {"passive_loss_drop": 0.0, "adapted_rules": False, "min_update_ratio": 0.0,
                  "trivial_plateau": False},
}

# each knob of a rule set -> the DiagnosisConfig fields it sets (given a diagnosis_config,
# those are set there instead)
DIAGNOSIS_CONFIG_FIELDS = {"passive_loss_drop": "min_loss_drop",
                           "adapted_rules": "adam_eps and noise_z",
                           "min_update_ratio": "min_update_ratio",
                           "trivial_plateau": "trivial_loss"}


@dataclass(frozen=True)
class SearchSpace:
    """Ranges of the searched hyperparameters.

    :param lr: (low, high), sampled log-uniformly
    :param weight_decay: (low, high), sampled log-uniformly
    :param width: channels of the residual blocks, one of
    :param blocks: residual blocks, one of
    :param batch_size: slots per training step, one of
    """

    lr: tuple[float, float] = (1e-5, 1e-1)
    weight_decay: tuple[float, float] = (1e-6, 1e-1)
    width: tuple[int, ...] = (8, 16, 32)
    blocks: tuple[int, ...] = (1, 2, 4)
    batch_size: tuple[int, ...] = (8, 16, 32)

    def __post_init__(self) -> None:
        for name in ("lr", "weight_decay"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"SearchSpace.{name}={getattr(self, name)!r} is not allowed: "
                                 "0 < low <= high")
        for name in ("width", "blocks", "batch_size"):
            v = getattr(self, name)
            if not v or not all(isinstance(x, int) and x >= 1 for x in v):
                raise ValueError(f"SearchSpace.{name}={v!r} is not allowed: a non-empty tuple "
                                 "of positive integers")


@dataclass(frozen=True)
class TuneConfig:
    """:param trials: trials in the study (the search budget)
    :param steps: training steps per trial
    :param epoch_steps: steps per epoch: the unit at which the diagnosis looks (the default,
        with `steps`, gives BTTackler's 20 epochs per trial, for which its thresholds are set)
    :param snr_db: (low, high) of the training and evaluation slots, dB
    :param eval_batches, eval_batch_size: held-out slots of the score, the same for all trials
    :param diagnosis: stop trials by `nn.diagnosis` (False: every trial trains to the end)
    :param diagnosis_config: the rules' thresholds; None: those of `rules`, scaled to this run's
        steps / epoch_steps epochs (`DiagnosisConfig.for_epochs`)
    :param rules: the rule set, a key of `RULES`: 'dmrx' (the default) or 'bttackler'; with a
        `diagnosis_config` the knobs below must be left unset and `rules` is not used
    :param passive_loss_drop: the scaled defaults' `min_loss_drop` (dmrx's PL rule; 0: off);
        None: the rule set's
    :param adapted_rules: judge VG against AdamW's epsilon and NMG / SC late against the epoch
        losses' sampling noise (z = 2), see `nn.diagnosis` (False: BTTackler's rules as they
        are); None: the rule set's
    :param min_update_ratio: the scaled defaults' `min_update_ratio` (dmrx's VU rule, see
        `nn.diagnosis.vanishing_updates`; 0: off); None: the rule set's
    :param trivial_plateau: with `min_update_ratio` > 0, also stop a trial on the LLR = 0
        plateau (dmrx's TP rule, see `nn.diagnosis.trivial_plateau`, with the constant
        predictor's loss ln 2); None: the rule set's, off where `min_update_ratio` is set to 0
    :param median_stop_epoch: from this epoch on, also stop a trial whose best BMD rate so far
        is below the median of the earlier trials' at the same step (the median stopping rule,
        `MedianStop`; 0: off). An accuracy-based rule, not a health diagnosis: it ends the slow
        but healthy trials the diagnosis leaves alone, and works with or without `diagnosis`
    :param sampler: 'tpe' or 'random' (random draws the same configurations whatever is
        pruned, which makes runs with and without diagnosis directly comparable)

    After construction the four knobs hold the values in force (the rule set's where unset), so
    `dataclasses.replace(cfg, rules=...)` keeps them: unset them (None) as well.
    """

    link: str = "ref-4prb"
    scenarios: tuple[str, ...] = ("tdl-c-300ns-60kmh",)
    receiver: str = "neural"
    snr_db: tuple[float, float] = (5.0, 20.0)
    trials: int = 20
    steps: int = 300
    epoch_steps: int = 15
    eval_batches: int = 8
    eval_batch_size: int = 32
    seed: int = 0
    diagnosis: bool = True
    diagnosis_config: DiagnosisConfig | None = None
    rules: str = "dmrx"
    passive_loss_drop: float | None = None
    adapted_rules: bool | None = None
    min_update_ratio: float | None = None
    trivial_plateau: bool | None = None
    median_stop_epoch: int = 0
    sampler: str = "tpe"
    space: SearchSpace = field(default_factory=SearchSpace)

    def __post_init__(self) -> None:
        get_link(self.link)
        if not self.scenarios:
            raise ValueError("TuneConfig.scenarios=() is not allowed: at least one scenario")
        for s in self.scenarios:
            get_scenario(s)
        for name in ("trials", "steps", "epoch_steps", "eval_batches", "eval_batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"TuneConfig.{name}={v!r} is not allowed: a positive integer")
        if self.steps % self.epoch_steps:
            raise ValueError(f"TuneConfig.steps={self.steps} is not allowed: a multiple of "
                             f"epoch_steps={self.epoch_steps}")
        epochs = self.steps // self.epoch_steps
        m = self.median_stop_epoch
        if isinstance(m, bool) or not isinstance(m, int) or not 0 <= m <= epochs:
            raise ValueError(f"TuneConfig.median_stop_epoch={m!r} is not allowed: an epoch in "
                             f"0..{epochs} (0: off)")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"TuneConfig.sampler={self.sampler!r} is not allowed: one of "
                             f"{list(SAMPLERS)}")
        if self.receiver not in ("neural", "hybrid"):
            raise ValueError(f"TuneConfig.receiver={self.receiver!r} is not allowed: 'neural' "
                             "or 'hybrid'")
        if self.rules not in RULES:
            raise ValueError(f"TuneConfig.rules={self.rules!r} is not allowed: one of "
                             f"{list(RULES)}")
        if self.diagnosis_config is not None:
            for name, instead in DIAGNOSIS_CONFIG_FIELDS.items():
                if getattr(self, name):
                    raise ValueError(f"TuneConfig.{name} is not allowed with a "
                                     f"diagnosis_config: set its {instead} instead")
        # the knobs in force: unset ones from the rule set (all off beside a diagnosis_config);
        # TP judges VU's ratio, so VU turned off by hand takes an unset TP with it
        base = dict(RULES["bttackler" if self.diagnosis_config is not None else self.rules])
        if self.min_update_ratio == 0:
            base["trivial_plateau"] = False
        for name, value in base.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.trivial_plateau and not self.min_update_ratio:
            raise ValueError("TuneConfig.trivial_plateau is not allowed with "
                             "min_update_ratio=0: TP judges the update ratio against it (set "
                             "trivial_plateau=False too)")
        self.diagnosis_thresholds()  # raises naming the DiagnosisConfig field

    def diagnosis_thresholds(self) -> DiagnosisConfig:
        """The diagnosis config in force: `diagnosis_config`, or BTTackler's defaults scaled to
        this run's epochs with the knobs of `rules` (or set) applied."""
        if self.diagnosis_config is not None:
            return self.diagnosis_config
        adapted = {"adam_eps": ADAMW_EPS, "noise_z": 2.0} if self.adapted_rules else {}
        # the trials' loss is the mean BCE of coded bits: ln 2 for LLR = 0 (BMD rate 0)
        trivial = {"trivial_loss": math.log(2.0)} if self.trivial_plateau else {}
        return DiagnosisConfig.for_epochs(self.steps // self.epoch_steps,
                                          min_loss_drop=self.passive_loss_drop,
                                          min_update_ratio=self.min_update_ratio, **adapted,
                                          **trivial)

    def study_name(self) -> str:
        # named by the knobs in force, not by the rule set that gave them: a study run with
        # the knobs set by hand before the rule sets existed keeps its name; without diagnosis
        # the knobs do nothing and name nothing (they are named as the old defaults were)
        d = dataclasses.asdict(self) | {"trials": None}
        del d["rules"]
        if not self.diagnosis:
            d |= RULES["bttackler"]
        for name in ("adapted_rules", "min_update_ratio", "trivial_plateau",
                     "median_stop_epoch"):
            if not d[name]:
                del d[name]  # names of studies from before the field stay the same
        text = json.dumps(d, sort_keys=True)
        return "tune-" + hashlib.sha256(text.encode()).hexdigest()[:12]

    def train_config(self, params: dict) -> TrainConfig:
        """The TrainConfig of one trial's sampled `params`."""
        return TrainConfig(
            get_link(self.link), tuple((s, get_scenario(s).channel) for s in self.scenarios),
            receiver=self.receiver,
            net={"num_channels": params["width"], "num_blocks": params["blocks"]},
            snr_db=self.snr_db, steps=self.steps, batch_size=params["batch_size"],
            lr=params["lr"], weight_decay=params["weight_decay"],
            epoch_steps=self.epoch_steps, checkpoint_every=self.steps, seed=self.seed)


class MedianStop(optuna.pruners.BasePruner):
    """The median stopping rule (Golovin et al., "Google Vizier", KDD 2017) as Optuna's
    `MedianPruner` runs it: from step `from_step` on, once `startup` trials have finished, stop a
    trial whose best intermediate value so far is worse than the median of the finished trials'
    values at the same step. Optuna decides; this adds the text of what it saw to `reasons`
    (trial number -> [text]), as `DiagnosisPruner.diagnoses`, so a stop says why.

    dmrx's stopped trials finish (scored as trained so far), so they count in the median at the
    steps they reached, as the trials stopped by the diagnosis do.
    """

    def __init__(self, from_step: int, *, startup: int = 5):
        self._median = optuna.pruners.MedianPruner(n_startup_trials=startup,
                                                   n_warmup_steps=from_step)
        self.reasons: dict[int, list[str]] = {}

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if not self._median.prune(study, trial):
            return False
        step = trial.last_step
        done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        values = [t.intermediate_values[step] for t in done if step in t.intermediate_values]
        mine = trial.intermediate_values.values()
        best = max(mine) if study.direction == optuna.study.StudyDirection.MAXIMIZE \
            else min(mine)
        median = statistics.median(values)
        self.reasons[trial.number] = [
            f"MS: best value so far {best:.4f} worse than the median {median:.4f} of "
            f"{len(values)} finished trials at step {step} (median stopping rule)"]
        return True


class AnyPruner(optuna.pruners.BasePruner):
    """Stops a trial where the first of `pruners` that fires says so (in order: the later ones
    are not asked once one fires, so what stopped a trial is the first that fired)."""

    def __init__(self, *pruners: optuna.pruners.BasePruner):
        self.pruners = pruners

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return any(p.prune(study, trial) for p in self.pruners)


@dataclass
class TuneResult:
    """:param trials: one dict per trial: number, state ('complete', 'stopped' by the
        diagnosis or the median rule and scored as it was, 'pruned' after a NaN), params,
        value (BMD rate, bit per coded bit; None if pruned), steps trained, seconds (wall) and
        cpu_s (this process's CPU time) it took, finished_s (when it ended, seconds after the
        study's first trial started), curve ([step, BMD rate of the epoch's training loss] per
        epoch), diagnosis (list of texts), protected_from (the step from which the diagnosis
        protected it as among the best trials, or None)
    """

    study_name: str
    trials: list[dict]
    elapsed_s: float

    @property
    def best(self) -> dict | None:
        done = [t for t in self.trials if t["value"] is not None]
        return max(done, key=lambda t: t["value"]) if done else None

    def table(self) -> str:
        head = f"{'#':>3} {'state':<9} {'BMD rate':>9} {'steps':>6} {'s':>6}  params / diagnosis"
        rows = [head, "-" * len(head)]
        for t in self.trials:
            p = t["params"]
            v = f"{t['value']:.4f}" if t["value"] is not None else "-"
            what = (f"lr={p.get('lr', math.nan):.2g} wd={p.get('weight_decay', math.nan):.2g} "
                    f"w={p.get('width')} b={p.get('blocks')} bs={p.get('batch_size')}")
            rows.append(f"{t['number']:>3} {t['state']:<9} {v:>9} {t['steps']:>6} "
                        f"{t['seconds']:>6.1f}  {what}")
            rows += [f"{'':>37}! {d}" for d in t["diagnosis"]]
        return "\n".join(rows)


def _sample(trial: optuna.Trial, space: SearchSpace) -> dict:
    return {"lr": trial.suggest_float("lr", *space.lr, log=True),
            "weight_decay": trial.suggest_float("weight_decay", *space.weight_decay, log=True),
            "width": trial.suggest_categorical("width", list(space.width)),
            "blocks": trial.suggest_categorical("blocks", list(space.blocks)),
            "batch_size": trial.suggest_categorical("batch_size", list(space.batch_size))}


def tune(cfg: TuneConfig, out: str | Path, *, progress: bool = True) -> TuneResult:
    """Run (or resume) the search; trial checkpoints go to `out`/trial-NNNN.

    :raises ValueError: bad config (from TuneConfig)
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    diagnosis = DiagnosisPruner(cfg.diagnosis_thresholds()) if cfg.diagnosis else None
    median = (MedianStop(cfg.median_stop_epoch * cfg.epoch_steps) if cfg.median_stop_epoch
              else None)
    pruners = [p for p in (diagnosis, median) if p is not None]  # the diagnosis asked first
    pruner = AnyPruner(*pruners) if pruners else optuna.pruners.NopPruner()
    sampler = (optuna.samplers.RandomSampler(seed=cfg.seed) if cfg.sampler == "random"
               else optuna.samplers.TPESampler(seed=cfg.seed))
    study = optuna.create_study(study_name=cfg.study_name(), direction="maximize",
                                storage=f"sqlite:///{(out / 'study.db').resolve()}",
                                sampler=sampler, pruner=pruner, load_if_exists=True)

    def objective(trial: optuna.Trial) -> float:
        t0, c0 = time.perf_counter(), time.process_time()
        tc = cfg.train_config(_sample(trial, cfg.space))
        monitor = HealthMonitor(cfg.steps) if diagnosis is not None else None
        if monitor is not None:
            diagnosis.watch(trial.number, monitor.history)  # no storage write per epoch
        pruned = False

        def on_epoch(step: int, row: dict, rx) -> bool:
            nonlocal pruned
            trial.report(1.0 - row["loss"] / math.log(2.0), step)  # the BMD rate
            trial.set_user_attr("steps", step)
            if not pruners:
                return False
            if monitor is not None:
                monitor.update(step, row, rx)
            pruned = trial.should_prune()
            if (diagnosis is not None and trial.number in diagnosis.protected
                    and "protected" not in trial.user_attrs):
                trial.set_user_attr("protected", step)  # among the best: VG/DR/SC/NMG skipped
            return pruned

        try:
            result = train(tc, out / f"trial-{trial.number:04d}", progress=False,
                           on_epoch=on_epoch)
        except FloatingPointError as e:
            # train refuses a non-finite loss; that is the NaN diagnosis, not a crash
            trial.set_user_attr("diagnosis", [f"NaN/Inf: {e}"])
            trial.set_user_attr("seconds", time.perf_counter() - t0)
            trial.set_user_attr("cpu_s", time.process_time() - c0)
            if cfg.diagnosis:
                raise optuna.TrialPruned(str(e)) from None
            return 0.0  # a diverged receiver has no rate to speak of
        finally:
            if monitor is not None:
                monitor.detach()
                trial.set_user_attr(HEALTH_ATTR, [e.as_dict() for e in monitor.history])
        if pruned:  # stopped early: scored as it is (BTTackler's trials report too)
            why = (diagnosis.diagnoses.get(trial.number) if diagnosis is not None else None) \
                or (median.reasons.get(trial.number) if median is not None else None) or []
            trial.set_user_attr("diagnosis", why)
            trial.set_user_attr("stopped", True)
        evaluation = dataclasses.replace(tc, batch_size=cfg.eval_batch_size)
        value = evaluate_bmd_rate(result.receiver, evaluation, num_batches=cfg.eval_batches,
                                  seed=cfg.seed + 12345)
        trial.set_user_attr("seconds", time.perf_counter() - t0)
        trial.set_user_attr("cpu_s", time.process_time() - c0)
        return value

    t0 = time.perf_counter()
    finished = [t for t in study.trials if t.state.is_finished()]
    remaining = cfg.trials - len(finished)
    if remaining > 0:
        study.optimize(objective, n_trials=remaining, show_progress_bar=progress)
    done = [t for t in study.trials if t.state.is_finished()]
    begin = min((t.datetime_start for t in done if t.datetime_start), default=None)
    result = TuneResult(study.study_name, [
        {"number": t.number,
         "state": "stopped" if t.user_attrs.get("stopped") else t.state.name.lower(),
         "params": t.params,
         "value": t.value if t.state == optuna.trial.TrialState.COMPLETE else None,
         "steps": t.user_attrs.get("steps", 0), "seconds": t.user_attrs.get("seconds", 0.0),
         "cpu_s": t.user_attrs.get("cpu_s", 0.0),
         "curve": [[step, t.intermediate_values[step]] for step in sorted(t.intermediate_values)],
         "finished_s": (t.datetime_complete - begin).total_seconds()
         if begin is not None and t.datetime_complete is not None else None,
         "diagnosis": t.user_attrs.get("diagnosis", []),
         "protected_from": t.user_attrs.get("protected")}
        for t in done], time.perf_counter() - t0)
    text = json.dumps({"study": result.study_name, "config": dataclasses.asdict(cfg),
                       "best": result.best, "trials": result.trials}, indent=2)
    atomic_write(out / "tune.json", lambda p: p.write_text(text))
    return result
