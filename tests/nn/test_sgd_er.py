import math

import pytest
import torch

from dmrx.nn import SGDER


def _sched(**kw):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    return opt, SGDER(opt, **kw)


def _run(sched, opt, metrics):
    lrs = []
    for m in metrics:
        opt.step()
        sched.step(m)
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def test_restarts_exactly_after_patience_epochs_without_improvement():
    opt, s = _sched(patience=3, min_delta=0.01, gamma=0.5, min_lr_factor=0.1)
    # improves for 3 epochs, then flat: epochs 4, 5, 6 do not improve -> restart after epoch 6
    lrs = _run(s, opt, [1.0, 0.9, 0.8, 0.8, 0.799, 0.8])
    assert s.restarts == 1 and s.restart_epochs == [6]
    # decay within the first cycle: eta0 * gamma^t, floored at eta0 * 0.1
    assert lrs[:5] == pytest.approx([0.05, 0.025, 0.0125, 0.01, 0.01])
    # restart: eta_1 = 2 * eta0, the cycle's decay starts again
    assert lrs[5] == pytest.approx(0.2)


def test_escalation_is_linear_and_capped():
    opt, s = _sched(patience=1, gamma=1.0, max_lr_factor=3.5)
    lrs = _run(s, opt, [1.0] * 6)
    # every flat epoch after the first is a restart: (k+1) * eta0, capped at 3.5 * eta0
    assert s.restarts == 5
    assert lrs == pytest.approx([0.1, 0.2, 0.3, 0.35, 0.35, 0.35])


def test_relative_min_delta_counts_only_real_improvement():
    opt, s = _sched(patience=2, min_delta=0.1, gamma=1.0)
    _run(s, opt, [1.0, 0.95, 0.92])  # less than 10% better than 1.0: two epochs of waiting
    assert s.restarts == 1


def test_max_restarts_then_only_decay():
    opt, s = _sched(patience=1, gamma=0.5, max_restarts=1, min_lr_factor=0.0)
    lrs = _run(s, opt, [1.0, 1.0, 1.0, 1.0])
    assert s.restarts == 1
    assert lrs == pytest.approx([0.05, 0.2, 0.1, 0.05])


def test_linear_decay_and_state_round_trip():
    opt, s = _sched(patience=100, decay="linear", decay_epochs=4, min_lr_factor=0.25)
    lrs = _run(s, opt, [1.0, 0.5, 0.25, 0.1, 0.05])
    assert lrs == pytest.approx([0.075, 0.05, 0.025, 0.025, 0.025])
    opt2, s2 = _sched(patience=100, decay="linear", decay_epochs=4, min_lr_factor=0.25)
    s2.load_state_dict(s.state_dict())
    assert s2.cycle_epoch == s.cycle_epoch and s2.best == s.best
    assert s2.get_lr() == pytest.approx(s.get_lr())


def test_rejects_bad_parameters_and_non_finite_metric():
    with pytest.raises(ValueError, match="patience"):
        _sched(patience=0)
    with pytest.raises(ValueError, match="decay"):
        _sched(decay="cosine")
    opt, s = _sched()
    with pytest.raises(ValueError, match="non-finite"):
        s.step(math.nan)


def test_an_outside_restart_escalates_at_once_and_counts_against_max_restarts():
    opt, s = _sched(patience=3, gamma=0.5, min_lr_factor=0.1, max_restarts=1)
    _run(s, opt, [1.0, 0.9])
    assert s.restart() and s.restarts == 1 and s.restart_epochs == [3]
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)  # eta_1 = 2 * eta0, undecayed
    assert _run(s, opt, [5.0]) == pytest.approx([0.1])  # the new cycle decays from there
    assert not s.restart() and s.restarts == 1  # max_restarts used up: nothing changes
