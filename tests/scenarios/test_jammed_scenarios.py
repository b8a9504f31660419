"""Scenario names with a jammer suffix: parsing, the channel stage, and runs that use them."""

import pytest
import torch

from dmrx.nn import TrainConfig
from dmrx.ofdm import Channel, Transmitter, seed_everything
from dmrx.robust import JAMMER_KINDS, JammedChannel, JammerSpec
from dmrx.scenarios import build_receiver, get_scenario, make_channel, simulate
from dmrx.scenarios.adapt_run import JammerWindow, run_schedule
from dmrx.scenarios.schedules import Schedule, Segment


@pytest.mark.parametrize("name, base, kind, jsr", [
    ("tdl-c-300ns-60kmh+dmrs-jammer-0db", "tdl-c-300ns-60kmh", "dmrs", 0.0),
    ("awgn+barrage-jammer-m5db", "awgn", "barrage", -5.0),
    ("awgn+barrage-jammer--5db", "awgn", "barrage", -5.0),
    ("tdl-b-7ns-1kmh+multi-tone-jammer-2.5db", "tdl-b-7ns-1kmh", "multi-tone", 2.5),
    ("rayleigh-block+partial-band-jammer-10db", "rayleigh-block", "partial-band", 10.0),
])
def test_a_jammer_suffix_makes_a_jammed_scenario(name, base, kind, jsr):
    sc, clean = get_scenario(name), get_scenario(base)
    assert sc.name == name and sc.jammer == JammerSpec(kind, jsr)
    assert sc.channel == clean.channel and sc.snr_db_range == clean.snr_db_range
    assert clean.jammer is None and clean.as_dict()["jammer"] is None
    assert sc.as_dict()["jammer"] == {"kind": kind, "jsr_db": jsr}
    assert f"{kind} jammer at {jsr:g} dB JSR" in sc.description
    assert get_scenario(base + sc.jammer.suffix).jammer == sc.jammer


def test_every_kind_can_be_named():
    for kind in JAMMER_KINDS:
        assert get_scenario(f"awgn+{kind}-jammer-3db").jammer.kind == kind


@pytest.mark.parametrize("name, msg", [
    ("awgn+laser-jammer-0db", "unknown kind 'laser'"),
    ("awgn+dmrs-jammer-60db", "jsr_db=60.0 is not allowed"),
    ("awgn+dmrs-jammer-0", "is not allowed: '<scenario>\\+<kind>-jammer-<JSR>db'"),
    ("awgn+dmrs", "is not allowed"),
    ("awgn+dmrs-jammer-0db+tone-jammer-0db", "is not allowed"),
    ("+dmrs-jammer-0db", "nothing before the jammer suffix"),
    ("tdl-z-1ns-1kmh+dmrs-jammer-0db", "unknown scenario 'tdl-z-1ns-1kmh'"),
])
def test_bad_jammer_names_are_explained(name, msg):
    with pytest.raises(ValueError, match=msg):
        get_scenario(name)


def test_make_channel_is_the_channel_then_the_jammer(ref_link):
    assert isinstance(make_channel(ref_link, get_scenario("awgn")), Channel)
    stage = make_channel(ref_link, get_scenario("awgn+partial-band-jammer-0db"))
    assert isinstance(stage, JammedChannel)
    seed_everything(2)
    s = Transmitter(ref_link)(3)
    y, h = stage(s.x, 0.1)
    seed_everything(2)
    y0, _ = Channel(ref_link, get_scenario("awgn").channel)(Transmitter(ref_link)(3).x, 0.1)
    jam = y - y0
    assert torch.all(jam[..., :18] == 0) and torch.all(jam[..., 30:] == 0)
    assert torch.all(jam[..., 18:30] != 0) and torch.all(h == 1)


def test_a_jammed_scenario_raises_the_bler_of_simulate(ref_link):
    rx = {"ls": build_receiver("ls", ref_link)}
    counts = {}
    for name in ("awgn", "awgn+barrage-jammer-0db", "awgn+dmrs-jammer-10db"):
        r = simulate(ref_link, get_scenario(name), rx, [12.0], 8, batch_size=8, seed=3,
                     progress=False)
        counts[name] = r.points[0].counts
        assert r.as_dict()["scenario"]["name"] == name
    assert counts["awgn"].block_errors == 0
    assert counts["awgn+barrage-jammer-0db"].block_errors == 8  # SINR about 0 dB
    assert counts["awgn+dmrs-jammer-10db"].block_errors == 8    # the estimates are wrecked


def test_a_schedule_segment_and_a_window_can_be_jammed(ref_link):
    rx = {"ls": build_receiver("ls", ref_link)}
    schedule = Schedule("jam", (Segment("awgn", 2, 12.0),
                                Segment("awgn+dmrs-jammer-10db", 2, 12.0),
                                Segment("awgn", 2, 12.0)))
    r = run_schedule(schedule, ref_link, rx, seed=0, progress=False,
                     jammer=JammerWindow.parse("barrage:10db@4:5"))
    assert r.block_errors["ls"] == [False, False, True, True, True, False]
    assert r.as_dict()["jammer"] == {"start": 4, "stop": 5, "jsr_db": 10.0, "kind": "barrage"}


@pytest.mark.parametrize("text, window", [
    ("0db@400:500", JammerWindow(400, 500, 0.0, "dmrs")),
    ("dmrs:-3db@1:2", JammerWindow(1, 2, -3.0, "dmrs")),
    ("multi-tone:m3.5db@0:7", JammerWindow(0, 7, -3.5, "multi-tone")),
])
def test_jammer_window_parses_old_and_new_forms(text, window):
    assert JammerWindow.parse(text) == window


@pytest.mark.parametrize("text, msg", [
    ("0db", "expected"), ("0@1:2", "expected"), ("laser:0db@1:2", "kind"),
    ("dmrs:99db@1:2", "jsr_db"), ("dmrs:0db@5:5", "empty"), ("dmrs:0db@a:b", "expected"),
])
def test_bad_jammer_windows_are_explained(text, msg):
    with pytest.raises(ValueError, match=msg):
        JammerWindow.parse(text)


def test_training_on_a_jammed_scenario_is_jammer_augmentation(ref_link):
    from dmrx.nn.train import _channel_stages

    names = ("tdl-c-300ns-60kmh", "tdl-c-300ns-60kmh+dmrs-jammer-0db")
    cfg = TrainConfig(ref_link, tuple((n, get_scenario(n).channel) for n in names))
    clean, jammed = _channel_stages(cfg)
    assert isinstance(clean, Channel) and isinstance(jammed, JammedChannel)
    assert jammed.jammer.kind == "dmrs" and jammed.jammer.jsr_db == 0.0
    with pytest.raises(ValueError, match="TrainConfig.channels.*unknown kind 'laser'"):
        TrainConfig(ref_link, (("awgn+laser-jammer-0db", get_scenario("awgn").channel),))


def test_cli_names_the_suffix_and_trains_on_jammed_scenarios(tmp_path, capsys):
    import json

    from dmrx.scenarios.cli import main

    assert main(["scenarios"]) == 0
    assert "'<scenario>+<kind>-jammer-<JSR>db'" in capsys.readouterr().out
    ck = tmp_path / "nrx"
    assert main(["train", "--scenario", "awgn,awgn+dmrs-jammer-0db", "--steps", "2",
                 "--batch-size", "2", "--epoch-steps", "2", "--checkpoint-every", "2",
                 "--width", "8", "--blocks", "1", "--out", str(ck), "--no-progress"]) == 0
    channels = json.loads((ck / "config.json").read_text())["train"]["channels"]
    assert [c[0] for c in channels] == ["awgn", "awgn+dmrs-jammer-0db"]
    capsys.readouterr()
    assert main(["simulate", "--scenario", "awgn+laser-jammer-0db", "--slots", "1",
                 "--no-progress"]) == 2
    assert "unknown kind 'laser'" in capsys.readouterr().err
