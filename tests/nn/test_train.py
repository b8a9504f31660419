import pytest
import torch

from dmrx.nn import CheckpointError, TrainConfig, load_receiver, train
from dmrx.scenarios import get_scenario


def _cfg(link, **kw):
    base = dict(channels=(("tdl-c-300ns-60kmh", get_scenario("tdl-c-300ns-60kmh").channel),
                          ("awgn", get_scenario("awgn").channel)),
                net={"num_channels": 8, "num_blocks": 1}, steps=12, batch_size=4,
                epoch_steps=2, checkpoint_every=4, seed=3, lr=3e-3)
    return TrainConfig(link, **(base | kw))


@pytest.mark.parametrize("scheduler", ["cosine", "sgd-er"])
def test_resumed_training_follows_the_uninterrupted_trajectory(tmp_path, ref_link, scheduler):
    cfg = _cfg(ref_link, scheduler=scheduler, sgd_er={"patience": 1, "gamma": 0.9})
    straight = train(cfg, tmp_path / "a", progress=False)
    first = train(cfg, tmp_path / "b", progress=False, stop_after=4)
    assert first.step == 4
    resumed = train(cfg, tmp_path / "b", progress=False)
    assert resumed.step == 12
    assert [r["loss"] for r in resumed.log] == [r["loss"] for r in straight.log]
    assert [r["lr"] for r in resumed.log] == [r["lr"] for r in straight.log]
    for a, b in zip(straight.receiver.state_dict().values(),
                    resumed.receiver.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(load_receiver(tmp_path / "b").net.input_conv.weight,
                       straight.receiver.net.input_conv.weight)


def test_resumed_mid_epoch_logs_as_the_uninterrupted_run(tmp_path, ref_link):
    """Interrupted at step 5 of 2-step epochs: the epoch of steps 5-6 is logged after the
    resume with both steps' losses (the epoch's sums are part of the training state)."""
    cfg = _cfg(ref_link, steps=8, checkpoint_every=8)
    straight = train(cfg, tmp_path / "a", progress=False)
    assert train(cfg, tmp_path / "b", progress=False, stop_after=5).step == 5
    resumed = train(cfg, tmp_path / "b", progress=False)
    assert [r["step"] for r in resumed.log] == [2, 4, 6, 8]
    assert [r["loss"] for r in resumed.log] == [r["loss"] for r in straight.log]


def test_a_run_ending_mid_epoch_logs_its_last_partial_epoch(tmp_path, ref_link):
    """steps = 5 with 2-step epochs: rows at 2, 4 and 5 (the last over one step), so that a
    run shorter than one epoch still reports a loss."""
    log = train(_cfg(ref_link, steps=5, checkpoint_every=4), tmp_path / "p",
                progress=False).log
    assert [r["step"] for r in log] == [2, 4, 5]
    short = train(_cfg(ref_link, steps=1), tmp_path / "q", progress=False).log
    assert [r["step"] for r in short] == [1] and short[0]["loss"] > 0


def test_training_lowers_the_loss(tmp_path, ref_link):
    cfg = _cfg(ref_link, steps=60, epoch_steps=10, checkpoint_every=60, batch_size=16,
               net={"num_channels": 16, "num_blocks": 2}, snr_db=(15.0, 20.0))
    log = train(cfg, tmp_path / "c", progress=False).log
    assert log[-1]["loss"] < log[0]["loss"] - 0.02
    assert log[-1]["bmd_rate"] == pytest.approx(1 - log[-1]["loss"] / 0.6931471805599453)


def test_resume_with_another_config_is_refused(tmp_path, ref_link):
    train(_cfg(ref_link, steps=4), tmp_path / "d", progress=False)
    with pytest.raises(CheckpointError, match="different training config"):
        train(_cfg(ref_link, steps=4, lr=1e-2), tmp_path / "d", progress=False)


@pytest.mark.parametrize("kw, field", [({"steps": 0}, "steps"), ({"scheduler": "step"},
                                        "scheduler"), ({"snr_db": (10.0, 0.0)}, "snr_db"),
                                       ({"checkpoint_every": 3}, "checkpoint_every"),
                                       ({"channels": ()}, "channels")])
def test_bad_train_config_names_the_field(ref_link, kw, field):
    with pytest.raises(ValueError, match=f"TrainConfig.{field}="):
        _cfg(ref_link, **kw)


def _tensorboard_scalars(path, tag):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    acc = event_accumulator.EventAccumulator(str(path))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_tensorboard_log_matches_the_csv_log_after_a_crash_and_resume(tmp_path, ref_link):
    pytest.importorskip("tensorboard")
    cfg = _cfg(ref_link)

    def crash_at_6(step, row, rx):  # after the checkpoint at 4 and the epoch at 6 was logged
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "a", progress=False, tensorboard=True, on_epoch=crash_at_6)
    assert [s for s, _ in _tensorboard_scalars(tmp_path / "a" / "tb", "train/loss")] == [2, 4, 6]
    log = train(cfg, tmp_path / "a", progress=False, tensorboard=True).log
    for key in ("loss", "bmd_rate", "lr"):
        # the epoch at 6 that the crash logged twice is kept once: the resumed run's
        got = _tensorboard_scalars(tmp_path / "a" / "tb", f"train/{key}")
        assert [s for s, _ in got] == [r["step"] for r in log] == [2, 4, 6, 8, 10, 12]
        assert [v for _, v in got] == pytest.approx([r[key] for r in log], rel=1e-6)
