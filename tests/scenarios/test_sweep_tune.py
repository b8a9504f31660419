import json
import math

import numpy as np
import optuna
import pytest

from dmrx.nn.diagnosis import DiagnosisConfig
from dmrx.scenarios.cli import main
from dmrx.scenarios.tune import AnyPruner, MedianStop, SearchSpace, TuneConfig, tune

TINY = dict(scenarios=("awgn",), steps=30, epoch_steps=5, eval_batches=2, eval_batch_size=8,
            sampler="random", seed=2)


def test_tune_prunes_hopeless_trials_and_records_the_diagnosis(tmp_path):
    # a flat-loss threshold every real curve is below: each trial is diagnosed "SC early" at
    # the first epoch the rule may look (sc_min_epochs = 3 epochs of 5 steps)
    space = SearchSpace(lr=(1e-7, 1e-7), width=(8,), blocks=(1,), batch_size=(4,))
    cfg = TuneConfig(trials=2, space=space, diagnosis_config=DiagnosisConfig(min_loss_cov=10.0),
                     **TINY)
    result = tune(cfg, tmp_path, progress=False)
    assert [t["state"] for t in result.trials] == ["stopped", "stopped"]
    for t in result.trials:
        assert t["steps"] == 15
        assert t["diagnosis"][0].startswith("SC early")
        assert -1.0 < t["value"] < 1.0  # scored as it was when stopped, as BTTackler's trials
        assert [step for step, _ in t["curve"]] == [5, 10, 15]
        assert t["protected_from"] is None  # 1 other trial: too few to compare (10 needed)
    assert 0 < result.trials[0]["finished_s"] < result.trials[1]["finished_s"]
    saved = json.loads((tmp_path / "tune.json").read_text())
    assert saved["best"]["state"] == "stopped" and len(saved["trials"]) == 2
    # rerunning the same search resumes the study: nothing left to run
    assert len(tune(cfg, tmp_path, progress=False).trials) == 2


def test_tune_scales_bttacklers_thresholds_to_its_epochs():
    bt = dict(TINY, rules="bttackler")
    assert TuneConfig(rules="bttackler").diagnosis_thresholds() == DiagnosisConfig()  # 20 epochs
    six = TuneConfig(**bt).diagnosis_thresholds()
    assert six == DiagnosisConfig.for_epochs(6) and six.window == 4
    mine = DiagnosisConfig(window=8)
    assert TuneConfig(diagnosis_config=mine, **TINY).diagnosis_thresholds() is mine
    pl = TuneConfig(passive_loss_drop=0.02, **bt).diagnosis_thresholds()
    assert pl == DiagnosisConfig.for_epochs(6, min_loss_drop=0.02)
    with pytest.raises(ValueError, match="passive_loss_drop is not allowed"):
        TuneConfig(diagnosis_config=mine, passive_loss_drop=0.02, **TINY)
    adapted = TuneConfig(adapted_rules=True, **bt).diagnosis_thresholds()
    assert adapted == DiagnosisConfig.for_epochs(6, adam_eps=1e-8, noise_z=2.0)
    with pytest.raises(ValueError, match="adapted_rules is not allowed"):
        TuneConfig(diagnosis_config=mine, adapted_rules=True, **TINY)
    vu = TuneConfig(min_update_ratio=1e-3, **bt).diagnosis_thresholds()
    assert vu == DiagnosisConfig.for_epochs(6, min_update_ratio=1e-3)
    with pytest.raises(ValueError, match="min_update_ratio is not allowed"):
        TuneConfig(diagnosis_config=mine, min_update_ratio=1e-3, **TINY)
    tp = TuneConfig(min_update_ratio=1e-3, trivial_plateau=True, **bt).diagnosis_thresholds()
    assert tp == DiagnosisConfig.for_epochs(6, min_update_ratio=1e-3, trivial_loss=math.log(2))
    with pytest.raises(ValueError, match="trivial_plateau is not allowed with min_update"):
        TuneConfig(trivial_plateau=True, **bt)
    with pytest.raises(ValueError, match="trivial_plateau is not allowed with a diagnosis"):
        TuneConfig(diagnosis_config=mine, trivial_plateau=True, **TINY)
    # a switch names a different study; leaving it off keeps the names studies had before
    assert (TuneConfig(rules="bttackler", adapted_rules=True).study_name()
            != TuneConfig(rules="bttackler").study_name())
    assert (TuneConfig(rules="bttackler", min_update_ratio=1e-3).study_name()
            != TuneConfig(rules="bttackler").study_name())
    assert (TuneConfig(rules="bttackler", min_update_ratio=1e-3, trivial_plateau=True)
            .study_name() != TuneConfig(rules="bttackler", min_update_ratio=1e-3).study_name())


def test_tune_rule_sets_default_to_dmrx_and_single_rules_override_them():
    dmrx = TuneConfig(**TINY)
    assert (dmrx.rules, dmrx.passive_loss_drop, dmrx.adapted_rules, dmrx.min_update_ratio,
            dmrx.trivial_plateau) == ("dmrx", 0.02, True, 1e-3, True)
    assert dmrx.diagnosis_thresholds() == DiagnosisConfig.for_epochs(
        6, min_loss_drop=0.02, adam_eps=1e-8, noise_z=2.0, min_update_ratio=1e-3,
        trivial_loss=math.log(2))
    # the default set names the study that the same rules switched on one by one named
    # before rule sets existed, and BTTackler's set the one the old defaults named
    by_hand = TuneConfig(rules="bttackler", passive_loss_drop=0.02, adapted_rules=True,
                         min_update_ratio=1e-3, trivial_plateau=True, **TINY)
    assert dmrx.study_name() == by_hand.study_name()
    assert TuneConfig(rules="bttackler").study_name() != TuneConfig().study_name()
    # without diagnosis the rules do nothing, and the study keeps the name it had before
    assert (TuneConfig(diagnosis=False).study_name()
            == TuneConfig(diagnosis=False, rules="bttackler").study_name())
    # one rule of the set off; VU off takes the TP that depends on it along, unless TP is
    # asked for
    assert TuneConfig(adapted_rules=False, **TINY).diagnosis_thresholds() == (
        DiagnosisConfig.for_epochs(6, min_loss_drop=0.02, min_update_ratio=1e-3,
                                   trivial_loss=math.log(2)))
    no_vu = TuneConfig(min_update_ratio=0.0, **TINY)
    assert not no_vu.trivial_plateau and no_vu.diagnosis_thresholds().min_update_ratio == 0
    with pytest.raises(ValueError, match="trivial_plateau is not allowed with min_update"):
        TuneConfig(min_update_ratio=0.0, trivial_plateau=True, **TINY)
    with pytest.raises(ValueError, match="rules='paper' is not allowed"):
        TuneConfig(rules="paper")


def test_cli_tune_without_diagnosis_completes_and_reports_the_best(tmp_path, capsys):
    assert main(["tune", "--scenario", "awgn", "--trials", "1", "--steps", "10",
                 "--epoch-steps", "5", "--no-diagnosis", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "complete" in out and "best: trial 0, BMD rate" in out and "diagnosis: off" in out
    assert main(["tune", "--scenario", "awgn", "--steps", "7", "--epoch-steps", "5",
                 "--out", str(tmp_path / "x")]) == 2
    assert "TuneConfig.steps=7" in capsys.readouterr().err
    assert main(["tune", "--scenario", "awgn", "--steps", "10", "--epoch-steps", "5",
                 "--passive-loss-drop", "1.5", "--out", str(tmp_path / "y")]) == 2
    assert "DiagnosisConfig.min_loss_drop=1.5" in capsys.readouterr().err
    assert main(["tune", "--scenario", "awgn", "--steps", "10", "--epoch-steps", "5",
                 "--min-update-ratio", "2", "--out", str(tmp_path / "z")]) == 2
    assert "DiagnosisConfig.min_update_ratio=2" in capsys.readouterr().err


def test_cli_tune_adapted_rules_reach_the_pruner_and_the_record(tmp_path, capsys):
    assert main(["tune", "--scenario", "awgn", "--trials", "1", "--steps", "20",
                 "--epoch-steps", "5", "--adapted-rules", "--min-update-ratio", "1e-9",
                 "--trivial-plateau", "--out", str(tmp_path), "--no-progress"]) == 0
    record = json.loads((tmp_path / "tune.json").read_text())
    assert record["config"]["adapted_rules"] is True
    assert record["config"]["min_update_ratio"] == 1e-9
    assert record["config"]["trivial_plateau"] is True
    # the trial's recorded health carries the loss standard errors the adapted rules weigh
    (study,) = optuna.get_all_study_summaries(f"sqlite:///{tmp_path / 'study.db'}")
    (trial,) = optuna.load_study(study_name=study.study_name,
                                 storage=f"sqlite:///{tmp_path / 'study.db'}").trials
    health = trial.user_attrs["health"]
    assert len(health) == 4 and all(0 < e["loss_sem"] < e["loss"] for e in health)
    # and the update ratios VU judges, from the second epoch on (hooks attach after the first)
    assert health[0]["update_ratio"] == []
    assert all(len(e["update_ratio"]) >= 3 and all(0 < u < 1 for u in e["update_ratio"])
               for e in health[1:])
    # BTTackler's rule set, with one of dmrx's rules switched on by hand and the default
    # set with one switched off
    assert main(["tune", "--scenario", "awgn", "--trials", "1", "--steps", "10",
                 "--epoch-steps", "5", "--rules", "bttackler", "--adapted-rules",
                 "--out", str(tmp_path / "bt"), "--no-progress"]) == 0
    config = json.loads((tmp_path / "bt" / "tune.json").read_text())["config"]
    assert (config["rules"], config["passive_loss_drop"], config["adapted_rules"],
            config["min_update_ratio"], config["trivial_plateau"]) == (
                "bttackler", 0.0, True, 0.0, False)
    assert main(["tune", "--scenario", "awgn", "--trials", "1", "--steps", "10",
                 "--epoch-steps", "5", "--no-trivial-plateau",
                 "--out", str(tmp_path / "dmrx"), "--no-progress"]) == 0
    assert "diagnosis: the dmrx rule set with rules changed by hand" in capsys.readouterr().out
    config = json.loads((tmp_path / "dmrx" / "tune.json").read_text())["config"]
    assert (config["rules"], config["passive_loss_drop"], config["adapted_rules"],
            config["min_update_ratio"], config["trivial_plateau"]) == (
                "dmrx", 0.02, True, 1e-3, False)


def _finished(values: dict[int, float]) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(value=0.0, intermediate_values=values)


def test_median_stop_stops_below_the_median_of_finished_trials_from_its_step():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", pruner=MedianStop(20, startup=3))
    for v10, v20 in [(0.1, 0.40), (0.2, 0.50), (0.3, 0.60)]:
        study.add_trial(_finished({10: v10, 20: v20}))
    trial = study.ask()
    trial.report(0.0, 10)  # far below, but before the rule's first step
    assert not trial.should_prune()
    trial.report(0.45, 20)  # best so far 0.45 < median 0.50
    assert trial.should_prune()
    (why,) = study.pruner.reasons[trial.number]
    assert why.startswith("MS:") and f"median {np.median([0.4, 0.5, 0.6]):.4f}" in why
    assert "0.4500" in why and "3 finished trials at step 20" in why
    # the best value so far counts, not the last one: 0.55 earlier keeps it going at 0.3
    other = study.ask()
    other.report(0.55, 10)
    other.report(0.30, 20)
    assert not other.should_prune()
    # fewer finished trials than `startup`: never stops
    fresh = optuna.create_study(direction="maximize", pruner=MedianStop(0, startup=3))
    fresh.add_trial(_finished({5: 0.9}))
    t = fresh.ask()
    t.report(0.0, 5)
    assert not t.should_prune()


def test_tune_median_stop_without_diagnosis_stops_the_slow_trials_and_says_why(tmp_path,
                                                                             capsys):
    space = SearchSpace(lr=(1e-6, 3e-2), width=(8,), blocks=(1,), batch_size=(4,))
    cfg = TuneConfig(trials=7, space=space, diagnosis=False, median_stop_epoch=1,
                     **(TINY | {"steps": 10}))
    result = tune(cfg, tmp_path, progress=False)
    stopped = [t for t in result.trials if t["state"] == "stopped"]
    assert stopped, "no trial below the median: the test would check nothing"
    for i, t in enumerate(result.trials):
        assert t["protected_from"] is None  # no diagnosis, no protection
        # recomputed from the record: the median of the trials finished before it, per step
        for step, _ in t["curve"]:
            earlier = [dict(u["curve"])[step] for u in result.trials[:i]
                       if step in dict(u["curve"])]
            best = max(v for s, v in t["curve"] if s <= step)
            below = len(earlier) >= 5 and best < np.median(earlier)
            if t in stopped and step == t["steps"]:
                assert below and t["diagnosis"][0].startswith("MS:")
                assert f"median {np.median(earlier):.4f}" in t["diagnosis"][0]
            else:
                assert not below
    assert all(t["steps"] == 10 for t in result.trials if t not in stopped)
    assert main(["tune", "--scenario", "awgn", "--steps", "10", "--epoch-steps", "5",
                 "--median-stop", "3", "--out", str(tmp_path / "x")]) == 2
    assert "TuneConfig.median_stop_epoch=3 is not allowed: an epoch in 0..2" in \
        capsys.readouterr().err


class _Says(optuna.pruners.BasePruner):
    def __init__(self, answer: bool):
        self.answer, self.asked = answer, 0

    def prune(self, study, trial) -> bool:
        self.asked += 1
        return self.answer


def test_any_pruner_stops_where_one_fires_and_asks_no_further():
    study = optuna.create_study()
    trial = study.ask()
    trial.report(0.0, 1)
    frozen = study.trials[0]
    no, yes, late = _Says(False), _Says(True), _Says(True)
    assert AnyPruner(no, yes, late).prune(study, frozen)
    assert (no.asked, yes.asked, late.asked) == (1, 1, 0)  # the stop is the first to fire
    assert not AnyPruner(no, _Says(False)).prune(study, frozen)
