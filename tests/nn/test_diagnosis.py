import math

import optuna
import pytest

from dmrx.nn import TrainConfig, train
from dmrx.nn.diagnosis import (
    HEALTH_ATTR,
    DiagnosisConfig,
    DiagnosisPruner,
    EpochHealth,
    HealthMonitor,
    diagnose,
    exploding_gradients,
    heavy_oscillation,
    loss_not_decreasing,
    loss_rising,
    nonfinite,
    saturated_activations,
    vanishing_gradients,
)
from dmrx.scenarios import get_scenario

CFG = DiagnosisConfig()
HEALTHY_GRADS = (3e-3, 2e-3, 1e-3, 8e-4)


def curve(losses, total=None, **kw):
    """A synthetic history: one epoch per loss, healthy gradients and ReLUs unless given."""
    n = total or 2 * len(losses)
    return [EpochHealth(step=i + 1, loss=v, progress=(i + 1) / n,
                        grad_mean_abs=kw.get("grads", HEALTHY_GRADS),
                        grad_zero_frac=kw.get("zeros", (0.0,) * 4),
                        relu_off_frac=kw.get("off", (0.5, 0.5, 0.5)),
                        nonfinite=kw.get("nonfinite", False)) for i, v in enumerate(losses)]


GOOD = [0.69, 0.60, 0.52, 0.47, 0.44, 0.42, 0.41, 0.405]


def test_a_healthy_learning_curve_is_not_diagnosed():
    for k in range(1, len(GOOD) + 1):
        assert diagnose(curve(GOOD[:k], total=len(GOOD))) == []


def test_nan_loss_or_gradient_is_diagnosed_even_when_protected():
    assert nonfinite(curve([0.7, math.nan]), CFG)
    assert nonfinite(curve([0.7, 0.6], grads=(1e-3, math.inf)), CFG)
    assert nonfinite(curve([0.7, 0.6], nonfinite=True), CFG)
    assert diagnose(curve([0.7, math.nan]), protected=True)
    assert nonfinite(curve(GOOD), CFG) is None


def test_exploding_gradients_by_size_and_by_layer_ratio():
    assert "median mean|grad|" in exploding_gradients(curve([0.7], grads=(2e4,) * 4), CFG)
    # each layer's gradient 1e4 x the next one's: growing towards the input
    assert "adjacent-layer ratio" in exploding_gradients(
        curve([0.7], grads=(1e2, 1e-2, 1e-6, 1e-10)), CFG)
    assert exploding_gradients(curve([0.7]), CFG) is None
    assert exploding_gradients(curve([0.7], grads=()), CFG) is None  # not measured yet


def test_vanishing_gradients_only_in_the_first_half():
    tiny = curve([0.7, 0.69], grads=(1e-9,) * 4)
    assert "vanishing" in vanishing_gradients(tiny, CFG)
    assert "no gradient at all" in vanishing_gradients(
        curve([0.7, 0.69], zeros=(0.0, 1.0, 0.0, 0.0)), CFG)
    late = curve([0.7, 0.69], total=2, grads=(1e-9,) * 4)  # progress 1.0: converged, fine
    assert vanishing_gradients(late, CFG) is None


def test_saturated_activations_when_most_relus_are_off():
    assert "saturated" in saturated_activations(curve(GOOD[:3], off=(0.99, 0.98, 0.97)), CFG)
    assert saturated_activations(curve(GOOD[:3], off=(0.6, 0.5, 0.55)), CFG) is None
    assert saturated_activations(curve(GOOD[:2], off=(0.99,) * 3), CFG) is None  # too early


def test_loss_not_decreasing_fires_on_a_flat_curve_after_min_epochs():
    flat = [0.700, 0.699, 0.701, 0.698]
    assert loss_not_decreasing(curve(flat[:2]), CFG) is None  # not enough epochs yet
    assert "not decreasing" in loss_not_decreasing(curve(flat[:3]), CFG)
    assert loss_not_decreasing(curve(GOOD[:3]), CFG) is None
    # only in the first half: later a flat loss is convergence
    assert loss_not_decreasing(curve(flat, total=4), CFG) is None


def test_loss_rising_and_heavy_oscillation():
    rising = [0.5, 0.45, 0.44, 0.5, 0.6, 0.7]
    assert "rising" in loss_rising(curve(rising), CFG)
    assert loss_rising(curve(GOOD), CFG) is None
    swinging = [0.3, 0.9, 0.2, 1.0, 0.4, 1.2]
    assert heavy_oscillation(curve(swinging, total=6), CFG)
    assert heavy_oscillation(curve(swinging), CFG) is None  # first half: not yet
    assert heavy_oscillation(curve(GOOD, total=8), CFG) is None


def test_protection_skips_the_curve_rules_only():
    flat = curve([0.700, 0.699, 0.701])
    assert diagnose(flat) and not diagnose(flat, protected=True)


def test_diagnosis_config_rejects_bad_thresholds():
    with pytest.raises(ValueError, match="DiagnosisConfig.min_loss_drop"):
        DiagnosisConfig(min_loss_drop=1.5)
    with pytest.raises(ValueError, match="DiagnosisConfig.min_epochs"):
        DiagnosisConfig(min_epochs=0)


def _study_with(histories):
    """Run one trial per history through the pruner; return (study, pruner, pruned flags)."""
    pruner = DiagnosisPruner(DiagnosisConfig(protect_min_trials=2))
    study = optuna.create_study(direction="maximize", pruner=pruner)
    pruned = []
    for h in histories:
        trial = study.ask()
        flag = False
        for k, e in enumerate(h, start=1):
            trial.report(1 - e.loss / math.log(2), e.step)
            trial.set_user_attr(HEALTH_ATTR, [x.as_dict() for x in h[:k]])
            if trial.should_prune():
                flag = True
                break
        pruned.append(flag)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED) if flag else \
            study.tell(trial, 1 - h[-1].loss / math.log(2))
    return study, pruner, pruned


def test_pruner_prunes_a_flat_trial_and_records_why():
    study, pruner, pruned = _study_with([curve(GOOD), curve([0.70, 0.70, 0.70, 0.70])])
    assert pruned == [False, True]
    assert pruner.diagnoses[1][0].startswith("loss not decreasing")
    assert 0 not in pruner.diagnoses and study.trials[1].state.name == "PRUNED"


def test_pruner_protects_a_trial_that_beats_the_others():
    # two flat-ish trials first; the third is as flat in relative terms but far better than
    # both at every step, so protection keeps it
    flat_hi = curve([0.70, 0.70, 0.70])
    flat_lo = curve([0.30, 0.299, 0.298])
    _, pruner, pruned = _study_with([flat_hi, flat_hi, flat_lo])
    assert pruned == [True, True, False]


def test_monitor_reads_gradients_and_relus_and_the_hook_stops_training(tmp_path, ref_link):
    cfg = TrainConfig(ref_link, (("awgn", get_scenario("awgn").channel),),
                      net={"num_channels": 8, "num_blocks": 1}, steps=12, batch_size=4,
                      epoch_steps=2, checkpoint_every=12, seed=1)
    monitor = HealthMonitor(cfg.steps)

    def on_epoch(step, row, rx):
        monitor.update(step, row, rx)
        return step >= 6

    result = train(cfg, tmp_path / "t", progress=False, on_epoch=on_epoch)
    monitor.detach()
    assert result.step == 6 and [r["step"] for r in result.log] == [2, 4, 6]
    first, *rest = monitor.history
    assert first.grad_mean_abs == ()  # hooks attach at the first epoch's end
    for e in rest:
        assert len(e.grad_mean_abs) >= 3 and all(g > 0 for g in e.grad_mean_abs)
        assert len(e.relu_off_frac) == 3 and all(0 < f < 1 for f in e.relu_off_frac)
    assert monitor.history[-1].progress == 0.5
    assert diagnose(monitor.history, protected=True) == []
