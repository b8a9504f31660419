import json

import pytest

from dmrx.scenarios.cli import main


def test_simulate_writes_json_and_figure(tmp_path, capsys):
    out, fig = tmp_path / "out.json", tmp_path / "out.png"
    rc = main(["simulate", "--link", "ref-4prb", "--scenario", "tdl-c-300ns-60kmh",
               "--receiver", "ls", "--snr-db", "8:12:4", "--slots", "64", "--seed", "1",
               "--json", str(out), "--plot", str(fig), "--no-progress"])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["receiver"] == "ls" and d["seed"] == 1
    assert d["link"]["name"] == "ref-4prb" and d["scenario"]["name"] == "tdl-c-300ns-60kmh"
    assert [p["snr_db"] for p in d["points"]] == [8.0, 12.0]
    for p in d["points"]:
        assert p["slots"] == 64 and p["bits"] == 64 * 1256
        assert p["bler"] == p["block_errors"] / 64 and p["ber"] == p["bit_errors"] / p["bits"]
    assert d["points"][0]["bler"] > d["points"][1]["bler"]
    assert fig.stat().st_size > 1000 and fig.read_bytes()[:4] == b"\x89PNG"
    table = capsys.readouterr().out
    assert "BLER" in table and "12.00" in table


def test_scenarios_lists_links_and_scenarios(capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    assert "ref-4prb-hs" in out and "tdl-c-300ns-300kmh" in out


@pytest.mark.parametrize("argv, msg", [
    (["--scenario", "tdl-x-1ns-1kmh"], "unknown scenario 'tdl-x-1ns-1kmh'"),
    (["--link", "nope"], "unknown link 'nope'"),
    (["--receiver", "mmse"], "unknown receiver 'mmse'"),
    (["--receiver", "neural"], "receiver 'neural' needs a checkpoint"),
    (["--receiver", "neural", "--checkpoint", "/nonexistent"], "no checkpoint at"),
    (["--snr-db", "14:6:2"], "backwards"),
    (["--slots", "-5"], "--slots: must be a positive integer"),
])
def test_bad_input_gets_a_clear_error(argv, msg, capsys):
    rc = main(["simulate", "--no-progress", "--slots", "8", *argv])
    assert rc == 2
    assert msg in capsys.readouterr().err


def test_train_then_simulate_the_checkpoint(tmp_path, capsys):
    out = tmp_path / "nrx"
    assert main(["train", "--link", "ref-4prb", "--scenario", "tdl-c-300ns-60kmh,awgn",
                 "--steps", "4", "--batch-size", "4", "--epoch-steps", "2",
                 "--checkpoint-every", "2", "--width", "8", "--blocks", "1", "--out", str(out),
                 "--no-progress"]) == 0
    assert "trained neural to step 4" in capsys.readouterr().out
    assert len((out / "log.csv").read_text().splitlines()) == 3  # header + 2 epochs
    js = tmp_path / "n.json"
    assert main(["simulate", "--receiver", "ls,neural", "--checkpoint", str(out), "--snr-db",
                 "20", "--slots", "8", "--json", str(js), "--no-progress"]) == 0
    import json

    d = json.loads(js.read_text())
    assert d["receiver"] == ["ls", "neural"] and len(d["points"]) == 2
    # the checkpoint is for ref-4prb: another link is refused with a clear message
    assert main(["simulate", "--link", "ref-4prb-2rx", "--receiver", f"neural={out}",
                 "--slots", "8", "--no-progress"]) == 2
    assert "trained for link 'ref-4prb'" in capsys.readouterr().err


def test_train_adds_data_aided_passes_to_an_init_checkpoint(tmp_path, capsys):
    import json

    from dmrx.nn.checkpoint import load_receiver

    base, da = tmp_path / "nrx", tmp_path / "nrx-da"
    common = ["--steps", "2", "--batch-size", "2", "--epoch-steps", "2", "--checkpoint-every",
              "2", "--no-progress"]
    assert main(["train", "--width", "8", "--blocks", "1", "--out", str(base), *common]) == 0
    assert main(["train", "--init", str(base), "--data-aided-passes", "1", "--out", str(da),
                 *common]) == 0
    net = json.loads((da / "config.json").read_text())["net"]
    # the init's shape, plus the passes
    assert (net["num_channels"], net["num_blocks"], net["data_aided_passes"]) == (8, 1, 1)
    rx = load_receiver(da)
    assert len(rx.refine) == 1
    assert "data_aided_passes" not in json.loads((base / "config.json").read_text())["net"]
    capsys.readouterr()


def test_adapt_compares_static_adaptive_and_classic_on_a_schedule(tmp_path, capsys):
    import json

    ck = tmp_path / "nrx"
    assert main(["train", "--steps", "2", "--batch-size", "2", "--epoch-steps", "2",
                 "--checkpoint-every", "2", "--width", "8", "--blocks", "1", "--out", str(ck),
                 "--no-progress"]) == 0
    sched = tmp_path / "s.toml"
    sched.write_text('[[segment]]\nscenario = "tdl-a-30ns-3kmh"\nslots = 3\nsnr_db = 12\n'
                     '[[segment]]\nscenario = "tdl-e-100ns-120kmh"\nslots = 2\nsnr_db = 12\n')
    out, fig = tmp_path / "a.json", tmp_path / "a.png"
    assert main(["adapt", "--checkpoint", str(ck), "--schedule", str(sched), "--variants",
                 "crc,dmrs-adapter", "--jammer", "0db@1:2", "--json", str(out), "--plot",
                 str(fig), "--window", "2", "--no-progress"]) == 0
    d = json.loads(out.read_text())
    rx = d["receivers"]
    assert set(rx) == {"static", "adaptive-crc", "adaptive-dmrs-adapter", "ls", "perfect"}
    # the jammed slot (DMRS jammer on slot 1) is the one the guard does not learn from
    assert rx["adaptive-dmrs-adapter"]["updates"] == 4 and rx["static"]["updates"] == 0
    assert rx["adaptive-dmrs-adapter"]["adapter"]["suspect_slots"] == 1
    for r in rx.values():
        assert [s["slots"] for s in r["segments"]] == [3, 2]
        overall = (r["segments"][0]["bler"] * 3 + r["segments"][1]["bler"] * 2) / 5
        assert abs(r["bler"] - overall) < 1e-12
    assert d["boundaries"] == [3] and d["jammer"] == {"start": 1, "stop": 2, "jsr_db": 0.0,
                                                  "kind": "dmrs"}
    assert fig.read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert main(["adapt", "--checkpoint", str(ck), "--variants", "bogus",
                 "--no-progress"]) == 2
    assert "unknown adaptation variant 'bogus'" in capsys.readouterr().err


def test_adapt_save_writes_the_adapted_receiver_as_a_checkpoint(tmp_path, capsys):
    import json

    import torch

    from dmrx.nn.checkpoint import load_receiver

    ck, burned = tmp_path / "nrx", tmp_path / "nrx-burned"
    assert main(["train", "--steps", "2", "--batch-size", "2", "--epoch-steps", "2",
                 "--checkpoint-every", "2", "--width", "8", "--blocks", "1", "--out", str(ck),
                 "--no-progress"]) == 0
    sched = tmp_path / "s.toml"
    sched.write_text('[[segment]]\nscenario = "tdl-a-30ns-3kmh"\nslots = 3\nsnr_db = 12\n')
    out = tmp_path / "a.json"
    assert main(["adapt", "--checkpoint", str(ck), "--schedule", str(sched), "--variants",
                 "dmrs-crc", "--no-classic", "--seed", "5", "--json", str(out), "--save",
                 str(burned), "--no-progress"]) == 0
    updates = json.loads(out.read_text())["receivers"]["adaptive"]["updates"]
    meta = json.loads((burned / "config.json").read_text())
    assert meta["adapted"]["source"] == str(ck) and meta["adapted"]["seed"] == 5
    assert meta["adapted"]["updates"] == updates == 3
    assert meta["adapted"]["schedule"]["segments"][0]["slots"] == 3
    before, after = load_receiver(ck), load_receiver(burned)
    moved = [not torch.equal(a, b) for a, b in zip(before.state_dict().values(),
                                                   after.state_dict().values(), strict=True)]
    assert any(moved)  # three updates of every weight moved some
    # adapting the adapted one keeps the first entry as "previous"
    again = tmp_path / "again"
    assert main(["adapt", "--checkpoint", str(burned), "--schedule", str(sched),
                 "--variants", "dmrs-crc", "--no-classic", "--save", str(again),
                 "--no-progress"]) == 0
    second = json.loads((again / "config.json").read_text())["adapted"]
    assert second["source"] == str(burned) and second["previous"]["seed"] == 5
    capsys.readouterr()
    # one adapted receiver only: two variants are refused before anything runs
    assert main(["adapt", "--checkpoint", str(ck), "--schedule", str(sched), "--variants",
                 "crc,dmrs-crc", "--save", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "--save writes one adapted receiver" in capsys.readouterr().err
    # a low-rank adapter's module has no place in a checkpoint: refused before the run too
    assert main(["adapt", "--checkpoint", str(ck), "--schedule", str(sched), "--variants",
                 "dmrs-adapter", "--save", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "params='adapter'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
