import json

from dmrx.scenarios.cli import main
from dmrx.scenarios.tune import SearchSpace, TuneConfig, tune

TINY = dict(scenarios=("awgn",), steps=30, epoch_steps=5, eval_batches=2, eval_batch_size=8,
            sampler="random", seed=2)


def test_tune_prunes_hopeless_trials_and_records_the_diagnosis(tmp_path):
    # lr = 1e-7 cannot move a freshly initialised receiver in 30 steps: every trial is flat
    space = SearchSpace(lr=(1e-7, 1e-7), width=(8,), blocks=(1,), batch_size=(4,))
    cfg = TuneConfig(trials=2, space=space, **TINY)
    result = tune(cfg, tmp_path, progress=False)
    assert [t["state"] for t in result.trials] == ["pruned", "pruned"]
    for t in result.trials:
        assert t["steps"] == 15  # min_epochs = 3 epochs of 5 steps
        assert t["diagnosis"][0].startswith("loss not decreasing")
    saved = json.loads((tmp_path / "tune.json").read_text())
    assert saved["best"] is None and len(saved["trials"]) == 2
    # rerunning the same search resumes the study: nothing left to run
    assert len(tune(cfg, tmp_path, progress=False).trials) == 2


def test_cli_tune_without_diagnosis_completes_and_reports_the_best(tmp_path, capsys):
    assert main(["tune", "--scenario", "awgn", "--trials", "1", "--steps", "10",
                 "--epoch-steps", "5", "--no-diagnosis", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "complete" in out and "best: trial 0, BMD rate" in out
    assert main(["tune", "--scenario", "awgn", "--steps", "7", "--epoch-steps", "5",
                 "--out", str(tmp_path / "x")]) == 2
    assert "TuneConfig.steps=7" in capsys.readouterr().err
