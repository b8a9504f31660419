import math
import random

import numpy as np
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
    dying_relu,
    exploding_gradients,
    heavy_oscillation,
    is_top,
    no_more_gain,
    nonfinite,
    passive_loss,
    stalled_early,
    stalled_late,
    trivial_plateau,
    vanishing_gradients,
    vanishing_updates,
)
from dmrx.scenarios import get_scenario

CFG = DiagnosisConfig()
HEALTHY_GRADS = (3e-3, 2e-3, 1e-3, 8e-4)


def curve(losses, total=None, **kw):
    """A synthetic history: one epoch per loss, healthy gradients unless given; `total` epochs
    in the run (default: twice as many, so the whole history is in the first half)."""
    n = total or 2 * len(losses)
    return [EpochHealth(step=i + 1, loss=v, progress=(i + 1) / n,
                        grad_mean_abs=kw.get("grads", HEALTHY_GRADS),
                        grad_zero_frac=kw.get("zeros", (0.0,) * 4),
                        nonfinite=kw.get("nonfinite", False), loss_sem=kw.get("sem", 0.0),
                        update_ratio=kw.get("updates", ()))
            for i, v in enumerate(losses)]


ADAPTED = DiagnosisConfig(adam_eps=1e-8, noise_z=2.0)


# a receiver that learns: the loss falls fast, then settles (20 epochs, as BTTackler's runs)
GOOD = [0.69 * (0.55 + 0.45 * math.exp(-k / 3)) for k in range(20)]


def test_a_healthy_learning_curve_is_never_diagnosed():
    for k in range(1, len(GOOD) + 1):
        assert diagnose(curve(GOOD[:k], total=len(GOOD))) == []


def test_nan_loss_or_gradient_is_diagnosed_even_when_protected():
    assert nonfinite(curve([0.7, math.nan]), CFG)
    assert nonfinite(curve([0.7, 0.6], grads=(1e-3, math.inf)), CFG)
    assert nonfinite(curve([0.7, 0.6], nonfinite=True), CFG)
    assert diagnose(curve([0.7, math.nan]), protected=True)[0].startswith("EG: NaN")
    assert nonfinite(curve(GOOD), CFG) is None


def test_exploding_gradients_by_size_and_by_layer_ratio():
    assert "median mean|grad|" in exploding_gradients(curve([0.7], grads=(2e4,) * 4), CFG)
    assert exploding_gradients(curve([0.7], grads=(5e3,) * 4), CFG) is None
    # each tensor's gradient 1e4 x the next one's: growing towards the input
    assert "adjacent-layer" in exploding_gradients(curve([0.7], grads=(1e2, 1e-2, 1e-6, 1e-10)),
                                                   CFG)
    assert exploding_gradients(curve([0.7], grads=(1e-2, 1e-4, 1e-6, 1e-8)), CFG) is None  # 1e2
    assert exploding_gradients(curve([0.7], grads=(1e2, 1e-2, 0.0, 1e-10)), CFG) is None  # VG's
    assert exploding_gradients(curve([0.7]), CFG) is None
    assert exploding_gradients(curve([0.7], grads=()), CFG) is None  # not measured yet


def test_vanishing_gradients_only_in_the_first_half():
    assert "median mean|grad|" in vanishing_gradients(curve([0.7, 0.69], grads=(5e-6,) * 4), CFG)
    assert vanishing_gradients(curve([0.7, 0.69], grads=(2e-5,) * 4), CFG) is None
    assert "no gradient at all" in vanishing_gradients(
        curve([0.7, 0.69], grads=(1e-3, 0.0, 1e-3, 1e-3)), CFG)
    # shrinking 1e5 x per tensor towards the input
    assert "adjacent-layer" in vanishing_gradients(
        curve([0.7, 0.69], grads=(1e-13, 1e-8, 1e-3, 1e2)), CFG)
    late = curve([0.7, 0.69], total=2, grads=(5e-6,) * 4)  # second half: converged, fine
    assert vanishing_gradients(late, CFG) is None


def test_dying_relu_on_the_fraction_of_exactly_zero_gradient_entries():
    dead = (0.7, 0.6, 0.9, 0.1)  # median 0.65
    assert "exactly 0" in dying_relu(curve(GOOD[:5], zeros=dead), CFG)
    assert dying_relu(curve(GOOD[:5], zeros=(0.4, 0.45, 0.3, 0.9)), CFG) is None  # median 0.425
    assert dying_relu(curve(GOOD[:4], zeros=dead), CFG) is None  # before epoch 5
    assert dying_relu(curve(GOOD[:12], total=12, zeros=dead), CFG)  # in the second half too


def test_stalled_early_on_a_flat_loss_history():
    flat = [0.7, 0.70001, 0.69999, 0.7]  # CoV 1.2e-5
    assert "SC early" in stalled_early(curve(flat[:3]), CFG)
    assert stalled_early(curve(flat[:2]), CFG) is None  # fewer than 3 epochs
    assert stalled_early(curve([0.7, 0.699, 0.701]), CFG) is None  # CoV 1.2e-3: it moves
    assert stalled_early(curve(flat, total=4), CFG) is None  # second half


def test_passive_loss_when_the_loss_has_barely_moved_in_the_first_half():
    pl = DiagnosisConfig(min_loss_drop=0.02)
    creeping = [0.700, 0.697, 0.694, 0.691, 0.688]  # smooth, 1.3 % down after 5 epochs
    assert stalled_early(curve(creeping), CFG) is None  # BTTackler's flat test misses it
    assert passive_loss(curve(creeping), CFG) is None  # PL is opt-in
    assert "PL" in passive_loss(curve(creeping[:3]), pl)
    assert passive_loss(curve(creeping[:2]), pl) is None  # fewer than 3 epochs
    assert passive_loss(curve([0.70, 0.69, 0.68]), pl) is None  # 2.9 % down: it learns
    assert passive_loss(curve(creeping, total=5), pl) is None  # second half
    assert passive_loss(curve(creeping), DiagnosisConfig(min_loss_drop=0.01)) is None
    assert diagnose(curve(creeping), pl, protected=True) == []  # a protected rule
    assert [d.split(":")[0] for d in diagnose(curve(creeping), pl)] == ["PL"]


def test_vanishing_updates_only_in_the_first_epochs_and_only_when_asked():
    vu = DiagnosisConfig(min_update_ratio=1e-3)
    small, healthy = (2e-4, 5e-4, 4e-4, 9e-4), (2e-3, 5e-3, 4e-4, 3e-3)
    assert vanishing_updates(curve([0.7, 0.69], updates=small), vu).startswith("VU: median")
    assert vanishing_updates(curve([0.7, 0.69], updates=healthy), vu) is None  # median 2.5e-3
    assert vanishing_updates(curve([0.7, 0.69], updates=small), CFG) is None  # off by default
    assert vanishing_updates(curve([0.7], updates=()), vu) is None  # not measured
    # after the first sc_min_epochs epochs small steps are convergence, not a diagnosis
    assert vanishing_updates(curve([0.7, 0.69, 0.68], updates=small), vu)
    assert vanishing_updates(curve([0.7, 0.69, 0.68, 0.67], updates=small), vu) is None
    assert diagnose(curve([0.7, 0.6], updates=small), vu, protected=True) == []
    with pytest.raises(ValueError, match="min_update_ratio"):
        DiagnosisConfig(min_update_ratio=-1e-3)


def test_trivial_plateau_needs_vanished_steps_and_the_constant_predictors_loss():
    ln2 = math.log(2.0)
    tp = DiagnosisConfig(min_update_ratio=1e-3, trivial_loss=ln2)
    small, healthy = (3e-4, 5e-4, 4e-4, 2e-3), (2e-3, 5e-3, 4e-4, 3e-3)
    # a first-epoch spike, then the LLR = 0 plateau with steps that have shrunk
    plateau = [1.3, 0.6937, 0.6932, 0.6932, 0.6932]
    assert trivial_plateau(curve(plateau, total=20, updates=small), tp).startswith(
        "TP: median update / weight ratio 0.00045")
    # after VU's first 3 epochs VU is silent; TP still sees it
    assert vanishing_updates(curve(plateau, total=20, updates=small), tp) is None
    assert [d.split(":")[0] for d in diagnose(curve(plateau, total=20, updates=small), tp)] \
        == ["TP"]
    # steps of the healthy size on the plateau: the trial may still leave it
    assert trivial_plateau(curve(plateau, total=20, updates=healthy), tp) is None
    # small steps once the loss has fallen below the constant predictor's: convergence
    assert trivial_plateau(curve([0.9, 0.6, 0.5, 0.45, 0.44], total=20, updates=small),
                           tp) is None
    # the second half is not TP's stage
    assert trivial_plateau(curve(plateau, total=8, updates=small), tp) is None
    assert trivial_plateau(curve(plateau, total=20, updates=small),
                           DiagnosisConfig(min_update_ratio=1e-3)) is None  # opt-in
    assert trivial_plateau(curve(plateau, total=20), tp) is None  # not measured
    # with noise_z, a loss below ln 2 by less than z standard errors is still the plateau
    noisy = DiagnosisConfig(min_update_ratio=1e-3, trivial_loss=ln2, noise_z=2.0)
    near = [1.3, 0.694, ln2 - 1e-3]
    assert trivial_plateau(curve(near, total=20, updates=small, sem=1e-3), noisy)
    assert trivial_plateau(curve(near, total=20, updates=small, sem=1e-3), tp) is None
    assert trivial_plateau(curve(near, total=20, updates=small, sem=4e-4), noisy) is None
    assert diagnose(curve(plateau, total=20, updates=small), tp, protected=True) == []
    with pytest.raises(ValueError, match="trivial_loss=0.69.* min_update_ratio=0"):
        DiagnosisConfig(trivial_loss=ln2)
    with pytest.raises(ValueError, match="DiagnosisConfig.trivial_loss"):
        DiagnosisConfig(min_update_ratio=1e-3, trivial_loss=-1.0)


def test_adam_aware_vg_judges_the_gradient_against_adams_epsilon():
    plateau = curve([0.7, 0.69], grads=(5e-6,) * 4)  # SGD: steps 1e5 x smaller than the lr
    assert "median mean|grad|" in vanishing_gradients(plateau, CFG)
    assert vanishing_gradients(plateau, ADAPTED) is None  # Adam's step is still ~lr
    assert "< 1e-08" in vanishing_gradients(curve([0.7, 0.69], grads=(5e-9,) * 4), ADAPTED)
    # a tensor without any gradient gets no learning signal under any optimizer
    assert "no gradient at all" in vanishing_gradients(
        curve([0.7, 0.69], grads=(1e-3, 0.0, 1e-3, 1e-3)), ADAPTED)
    shrinking = curve([0.7, 0.69], grads=(1e-13, 1e-8, 1e-3, 1e2))  # median 5e-6 > eps
    assert vanishing_gradients(shrinking, ADAPTED) is None  # ratios do not starve Adam


def test_noise_aware_nmg_needs_a_rise_beyond_the_losses_standard_errors():
    rising = [0.5, 0.45, 0.44, 0.46, 0.48, 0.47]  # last three 0.47 vs 0.4633 before: +0.0067
    assert "NMG" in no_more_gain(curve(rising), CFG)
    # each mean of 3 epochs has SE sem / sqrt(3); the difference sem * sqrt(2/3)
    assert no_more_gain(curve(rising, sem=0.005), ADAPTED) is None  # 2 SE = 0.0082 > 0.0067
    found = no_more_gain(curve(rising, sem=0.003), ADAPTED)  # 2 SE = 0.0049 < 0.0067
    assert "NMG" in found and "(noise)" in found
    # without measured noise the adapted rule is BTTackler's
    assert no_more_gain(curve(rising), ADAPTED) == no_more_gain(curve(rising), CFG)


def test_noise_aware_sc_late_spares_a_steady_descent_and_weighs_noise():
    # falls steadily from 0.72 to 0.22 in 11 epochs: the lower mean of the second half makes
    # its CoV the larger, so BTTackler's SC late fires on a curve that converges
    steady = [0.72 - 0.05 * k for k in range(11)]
    assert "SC late" in stalled_late(curve(steady, total=20), CFG)
    assert stalled_late(curve(steady, total=20, sem=0.01), ADAPTED) is None
    # settled, then swinging: the swing is far beyond sem, so the adapted rule fires too
    settled_then_moving = [0.50, 0.50, 0.49, 0.50, 0.45, 0.55, 0.40, 0.60]
    found = stalled_late(curve(settled_then_moving, total=8, sem=0.005), ADAPTED)
    assert "excess loss CoV" in found
    # the same swing within the sampling noise of the epoch means is no symptom
    assert stalled_late(curve(settled_then_moving, total=8, sem=0.2), ADAPTED) is None


def test_stalled_late_when_the_second_half_varies_more_than_the_first():
    settled_then_moving = [0.50, 0.50, 0.49, 0.50, 0.45, 0.55, 0.40, 0.60]
    assert "SC late" in stalled_late(curve(settled_then_moving, total=8), CFG)
    assert stalled_late(curve(GOOD[:12], total=20), CFG) is None  # converging
    assert stalled_late(curve(settled_then_moving), CFG) is None  # first half
    assert stalled_late(curve(settled_then_moving[:5], total=5), CFG) is None  # < 6 epochs


def test_heavy_oscillation_needs_an_upward_slope_and_a_wide_swing():
    swinging_up = [0.3, 0.9, 0.2, 1.0, 0.4, 1.2]  # slope 0.12/epoch, CoV 0.55
    assert "HO" in heavy_oscillation(curve(swinging_up, total=6), CFG)
    assert heavy_oscillation(curve(swinging_up), CFG) is None  # first half: not yet
    swinging_down = swinging_up[::-1]
    assert heavy_oscillation(curve(swinging_down, total=6), CFG) is None
    creeping_up = [0.40, 0.41, 0.42, 0.43, 0.44, 0.45]  # slope 0.01 but CoV 0.04
    assert heavy_oscillation(curve(creeping_up, total=6), CFG) is None
    assert heavy_oscillation(curve(GOOD, total=20), CFG) is None


def test_no_more_gain_when_the_last_three_losses_are_worse_than_the_three_before():
    rising = [0.5, 0.45, 0.44, 0.46, 0.48, 0.47]
    assert "NMG" in no_more_gain(curve(rising), CFG)
    assert no_more_gain(curve([0.5, 0.45, 0.44, 0.44, 0.43, 0.43]), CFG) is None
    # BTTackler's slicing: from epoch 4, the first epoch against the next three
    assert no_more_gain(curve([0.5, 0.6, 0.7]), CFG) is None
    assert no_more_gain(curve([0.5, 0.6, 0.7, 0.8]), CFG)
    assert no_more_gain(curve([0.8, 0.6, 0.7, 0.75]), CFG) is None


def test_protection_skips_vg_dr_sc_nmg_but_not_eg_or_ho():
    rising = curve([0.5, 0.45, 0.44, 0.46, 0.48, 0.47], grads=(5e-6,) * 4)
    assert {d.split(":")[0] for d in diagnose(rising)} == {"VG", "NMG"}
    assert diagnose(rising, protected=True) == []
    swinging_up = curve([0.3, 0.9, 0.2, 1.0, 0.4, 1.2], total=6)
    assert [d.split(":")[0] for d in diagnose(swinging_up, protected=True)] == ["HO"]
    exploding = curve([0.5], grads=(2e4,) * 4)
    assert diagnose(exploding, protected=True)


def test_thresholds_scale_with_the_epochs_of_a_run():
    assert DiagnosisConfig.for_epochs(20) == DiagnosisConfig()  # BTTackler's own
    ten = DiagnosisConfig.for_epochs(10)
    assert (ten.dr_min_epochs, ten.sc_min_epochs, ten.window) == (3, 2, 4)
    assert ten.osc_slope == pytest.approx(0.02)
    forty = DiagnosisConfig.for_epochs(40, min_grad=1e-6)
    assert (forty.dr_min_epochs, forty.sc_min_epochs, forty.window) == (10, 6, 12)
    assert forty.osc_slope == pytest.approx(0.005) and forty.min_grad == 1e-6
    assert forty.max_grad == CFG.max_grad and forty.min_loss_cov == CFG.min_loss_cov
    with pytest.raises(ValueError, match="epochs=0"):
        DiagnosisConfig.for_epochs(0)


def test_diagnosis_config_rejects_bad_thresholds():
    with pytest.raises(ValueError, match="DiagnosisConfig.max_zero_grad"):
        DiagnosisConfig(max_zero_grad=1.5)
    with pytest.raises(ValueError, match="DiagnosisConfig.window"):
        DiagnosisConfig(window=3)
    with pytest.raises(ValueError, match="DiagnosisConfig.min_loss_drop"):
        DiagnosisConfig(min_loss_drop=1.0)
    with pytest.raises(ValueError, match="DiagnosisConfig.protect_percent"):
        DiagnosisConfig(protect_percent=0)
    with pytest.raises(ValueError, match="DiagnosisConfig.adam_eps"):
        DiagnosisConfig(adam_eps=0.0)
    with pytest.raises(ValueError, match="DiagnosisConfig.noise_z"):
        DiagnosisConfig(noise_z=-1.0)


def test_top_percentile_matches_numpy():
    rng = random.Random(3)
    for n in (1, 2, 10, 11, 37):
        others = [rng.random() for _ in range(n)]
        cut = float(np.percentile(others, 10))
        assert is_top(cut - 1e-12, others, 10) and not is_top(cut + 1e-9, others, 10)


def _study_with(histories, min_trials=2, shared=False, watch=False):
    """Run one trial per history through the pruner, the history given as the user attribute
    or by `watch`; return (study, pruner, pruned flags)."""
    pruner = DiagnosisPruner(DiagnosisConfig(protect_min_trials=min_trials),
                             shared_storage=shared)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    pruned = []
    for h in histories:
        trial = study.ask()
        seen = []
        if watch:
            pruner.watch(trial.number, seen)
        flag = False
        for k, e in enumerate(h, start=1):
            trial.report(1 - e.loss / math.log(2), e.step)
            if watch:
                seen.append(e)
            else:
                trial.set_user_attr(HEALTH_ATTR, [x.as_dict() for x in h[:k]])
            if trial.should_prune():
                flag = True
                break
        pruned.append(flag)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED) if flag else \
            study.tell(trial, 1 - h[-1].loss / math.log(2))
    return study, pruner, pruned


def test_pruner_prunes_a_trial_whose_loss_rises_and_records_why():
    study, pruner, pruned = _study_with([curve(GOOD), curve([0.60, 0.50, 0.65, 0.70, 0.8])])
    assert pruned == [False, True]
    assert pruner.diagnoses[1][0].startswith("NMG")
    assert study.trials[1].intermediate_values.keys() == {1, 2, 3, 4}  # stopped at epoch 4
    assert 0 not in pruner.diagnoses and study.trials[1].state.name == "PRUNED"


def test_pruner_protects_a_trial_among_the_best_at_the_same_epoch():
    # the third trial's loss rises as the others' do, but it is far below theirs at every
    # epoch, so protection keeps it; with too few others to compare, it is pruned
    rising_hi = curve([0.60, 0.65, 0.70, 0.75, 0.8])
    rising_lo = curve([0.30, 0.32, 0.34, 0.36, 0.38])
    for shared in (False, True):
        for watch in (False, True):
            _, pruner, pruned = _study_with([rising_hi, rising_hi, rising_lo], shared=shared,
                                            watch=watch)
            assert pruned == [True, True, False] and pruner.protected == {2}
    _, _, pruned = _study_with([rising_hi, rising_hi, rising_lo], min_trials=3)
    assert pruned == [True, True, True]
    # a middling trial is not protected
    _, pruner, pruned = _study_with([rising_hi, rising_lo, curve([0.5, 0.52, 0.54, 0.56])])
    assert pruned == [True, True, True] and pruner.protected == set()


def test_monitor_reads_gradients_and_the_hook_stops_training(tmp_path, ref_link):
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
        assert len(e.grad_zero_frac) == len(e.grad_mean_abs)
        assert all(0 <= z < 0.5 for z in e.grad_zero_frac)
    assert monitor.history[-1].progress == 0.5
    assert [e.loss for e in monitor.history] == [r["loss"] for r in result.log]
    # the standard error of each epoch's mean loss, from its 2 steps: |l1 - l2| / 2
    assert all(0 < e.loss_sem < e.loss for e in monitor.history)
    assert "loss_sem" not in result.log[0]  # passed to on_epoch only, not logged
    assert diagnose(monitor.history, protected=True) == []


def test_monitor_measures_the_update_ratio_of_a_plain_sgd_step():
    # SGD without momentum: w_t - w_(t-1) = -lr g_(t-1), so the ratio the monitor records at
    # a step is lr ||g|| / ||w|| of the step before, computed here independently
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1))
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    monitor = HealthMonitor(total_steps=4)
    x, y = torch.randn(16, 6), torch.randn(16, 1)
    monitor.update(1, {"loss": 1.0}, net)  # attaches the hooks
    expected = []
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        w = [p for p in net.parameters() if p.dim() > 1]
        expected.append([0.05 * p.grad.norm().item() / p.norm().item() for p in w])
        opt.step()
    e = monitor.update(2, {"loss": 0.9}, net)
    monitor.detach()
    # 3 backward passes: the first only takes the reference copy, the next two see the
    # updates of steps 1 and 2
    want = [sum(col) / 2 for col in zip(*expected[:2], strict=True)]
    assert e.update_ratio == pytest.approx(want, rel=1e-5)


def test_monitor_gradient_statistics_match_a_direct_computation_and_skip_unused_weights():
    import torch

    torch.manual_seed(1)

    class TwoHeads(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Linear(6, 5)
            self.used = torch.nn.Linear(5, 1)
            self.unused = torch.nn.Linear(5, 1)  # never in the graph

        def forward(self, x):
            return self.used(torch.relu(self.body(x)))

    net = TwoHeads()
    with torch.no_grad():
        # a unit always off: its row of body and its column of used get 0 gradient
        net.body.weight[0].zero_()
        net.body.bias[0] = -1.0
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    monitor = HealthMonitor(total_steps=4)
    monitor.update(1, {"loss": 1.0}, net)  # attaches the hook
    mean_abs, zeros = [], []
    for _ in range(3):
        opt.zero_grad()
        x, y = torch.randn(16, 6), torch.randn(16, 1)
        torch.nn.functional.mse_loss(net(x), y).backward()
        g = [net.body.weight.grad, net.used.weight.grad]
        mean_abs.append([t.abs().mean().item() for t in g])
        zeros.append([(t == 0).float().mean().item() for t in g])
        opt.step()
    e = monitor.update(2, {"loss": 0.9}, net)
    monitor.detach()
    # the unused head's weight has no gradient: it is left out, as a tensor hook never fired
    assert len(e.grad_mean_abs) == len(e.grad_zero_frac) == len(e.update_ratio) == 2
    assert e.grad_mean_abs == pytest.approx(np.mean(mean_abs, axis=0), rel=1e-6)
    assert e.grad_zero_frac == pytest.approx(np.mean(zeros, axis=0), abs=1e-7)
    assert e.grad_zero_frac == pytest.approx([0.2, 0.2])  # 6 of 30 entries, 1 of 5
    # detached: further steps are not seen
    opt.zero_grad()
    torch.nn.functional.mse_loss(net(torch.randn(4, 6)), torch.randn(4, 1)).backward()
    assert monitor.update(3, {"loss": 0.8}, net).grad_mean_abs == ()
