"""`dmrx metadata ...` and `--metadata` reject bad input with a clear message (exit status 2)
and write tables that read back."""

import pytest

from dmrx.explain.metadata import read_table
from dmrx.scenarios.cli import main


def test_simulate_writes_metadata_that_reads_back(tmp_path, capsys):
    out = tmp_path / "m.parquet"
    assert main(["simulate", "--receiver", "ls", "--scenario", "tdl-a-30ns-3kmh", "--snr-db",
                 "10", "--slots", "4", "--batch-size", "4", "--no-progress", "--metadata",
                 str(out)]) == 0
    t = read_table(out)
    assert t.num_rows == 4 and set(t.column("snr_db").to_pylist()) == {10.0}
    assert "4 records" in capsys.readouterr().out


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_build_with_empty_splits_reports_them_without_a_warning(tmp_path, capsys):
    # a test-only build (as for a fresh test table) leaves train and val empty
    assert main(["metadata", "build", "--out", str(tmp_path), "--seed", "5", "--points", "0,0,2",
                 "--adapt-runs", "0,0,0", "--slots-per-point", "4", "--receivers", "ls",
                 "--no-progress"]) == 0
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines() if ln.strip()}
    assert "0 rows" in lines["train"] and "BLER n/a (empty split)" in lines["train"]
    assert "BLER n/a (empty split)" in lines["val"]
    assert "8 rows" in lines["test"] and "n/a" not in lines["test"]
    assert read_table(tmp_path / "test.parquet").num_rows == 8


@pytest.mark.parametrize("argv, message", [
    (["simulate", "--receiver", "ls", "--metadata", "m.txt"], "a .parquet or .csv file"),
    (["adapt", "--checkpoint", "checkpoints/neural-ref-4prb-tdl-a", "--metadata", "m.json"],
     "a .parquet or .csv file"),
    (["metadata", "train", "--data", "/nonexistent/dir"], "does not exist"),
    (["metadata", "build", "--out", "x", "--points", "1,2"], "three counts"),
    (["metadata", "explain", "--model", "/nonexistent", "--table", "t.parquet"],
     "not a saved metadata model"),
    (["metadata", "train", "--data", "d", "--model", "logreg", "--members", "2"],
     "--members is for --model medic"),
    (["metadata", "train", "--data", "d", "--model", "medic", "--members", "0"],
     "--members 0: a positive integer"),
])
def test_bad_input_is_a_clear_error(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_unknown_model_and_label_are_refused_by_the_parser(capsys):
    assert main(["metadata", "train", "--data", "d", "--model", "forest"]) == 2
    assert "invalid choice: 'forest'" in capsys.readouterr().err
    assert main(["metadata", "train", "--data", "d", "--label", "snr_db"]) == 2
    assert "invalid choice: 'snr_db'" in capsys.readouterr().err


def test_gate_needs_a_should_adapt_model(tmp_path, capsys):
    import numpy as np

    from dmrx.explain.metadata import FEATURES
    from dmrx.explain.metadata_fit import LogisticModel, save_model

    X = np.random.default_rng(0).normal(size=(20, len(FEATURES)))
    m = LogisticModel().fit(X, (X[:, 0] > 0).astype(int))
    save_model(m, tmp_path / "m", label="block_error", features=FEATURES)
    assert main(["adapt", "--checkpoint", "checkpoints/neural-ref-4prb-tdl-a", "--gate",
                 str(tmp_path / "m")]) == 2
    assert "a gate needs a model trained with --label should_adapt" in capsys.readouterr().err
    # saved without the training table's positive rate: the default base-rate threshold is
    # unknown, and the message says how to get one
    save_model(m, tmp_path / "old", label="should_adapt", features=FEATURES)
    assert main(["adapt", "--checkpoint", "checkpoints/neural-ref-4prb-tdl-a", "--gate",
                 str(tmp_path / "old")]) == 2
    assert "so --gate-threshold base-rate is unknown" in capsys.readouterr().err
    assert main(["adapt", "--checkpoint", "checkpoints/neural-ref-4prb-tdl-a", "--gate",
                 str(tmp_path / "old"), "--gate-threshold", "1.5"]) == 2
    assert "a probability in (0, 1) or 'base-rate'" in capsys.readouterr().err
    save_model(m, tmp_path / "g", label="should_adapt", features=FEATURES, positive_rate=0.09)
    assert main(["adapt", "--checkpoint", "checkpoints/neural-ref-4prb-tdl-a", "--gate",
                 str(tmp_path / "g"), "--gate-attack", "0"]) == 2
    assert "attack=0.0: in (0, 1]" in capsys.readouterr().err
    assert main(["adapt", "--checkpoint", "checkpoints/neural-ref-4prb-tdl-a", "--gate",
                 str(tmp_path / "g"), "--gate-debounce", "0"]) == 2
    assert "--gate-debounce: must be a positive integer, got 0" in capsys.readouterr().err


def _synthetic_tables(link, out):
    """train/val/test tables whose block errors follow the LLR magnitude."""
    import torch

    from dmrx.explain.metadata import MetadataRecorder, write_table
    from dmrx.scenarios import get_scenario

    g = torch.Generator().manual_seed(0)
    shape = (20, 1, link.num_rx_ant, link.num_ofdm_symbols, link.fft_size)
    for split in ("train", "val", "test"):
        rec = MetadataRecorder(link, run=split)
        y = torch.complex(torch.randn(shape, generator=g), torch.randn(shape, generator=g))
        scale = torch.rand(20, 1, generator=g) * 4
        llr = torch.randn(20, link.num_coded_bits, generator=g) * scale
        b = torch.zeros(20, link.tb_size)
        b_hat = b.clone()
        b_hat[scale[:, 0] < 2, 0] = 1  # weak LLRs: a wrong bit
        rec.record(slot=0, y=y, no=0.1, llr=llr, b=b, b_hat=b_hat,
                   crc_ok=scale[:, 0] >= 2, c=None, scenario=get_scenario("tdl-a-30ns-3kmh"),
                   snr_db=10.0, receiver="neural")
        write_table(rec.table(), out / f"{split}.parquet")


def test_train_then_explain_through_the_cli(ref_link, tmp_path, capsys):
    _synthetic_tables(ref_link, tmp_path)
    assert main(["metadata", "train", "--data", str(tmp_path), "--model", "logreg",
                 "--label", "block_error", "--out", str(tmp_path / "m"), "--json",
                 str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "AUC" in out and (tmp_path / "m" / "config.json").is_file()
    assert main(["metadata", "explain", "--model", str(tmp_path / "m"), "--table",
                 str(tmp_path / "test.parquet"), "--rows", "0:3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("logreg predicting block_error") and len(lines) == 4
    assert main(["metadata", "explain", "--model", str(tmp_path / "m"), "--table",
                 str(tmp_path / "test.parquet"), "--rows", "50:60"]) == 2
    assert "no row there" in capsys.readouterr().err
    # should_adapt is never measured in these tables
    assert main(["metadata", "train", "--data", str(tmp_path), "--label", "should_adapt"]) == 2
    assert "no row with 'should_adapt' measured" in capsys.readouterr().err


def test_a_medic_of_two_members_trains_saves_and_explains(ref_link, tmp_path, capsys):
    _synthetic_tables(ref_link, tmp_path)
    assert main(["metadata", "train", "--data", str(tmp_path), "--model", "medic",
                 "--members", "2", "--label", "block_error", "--out", str(tmp_path / "m")]) == 0
    assert "AUC" in capsys.readouterr().out
    assert {p.name for p in (tmp_path / "m").iterdir()} >= {"member-0", "member-1",
                                                            "metadata.json"}
    assert main(["metadata", "explain", "--model", str(tmp_path / "m"), "--table",
                 str(tmp_path / "test.parquet"), "--rows", "0:2", "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("medic-ensemble predicting block_error")
    assert "(member 0)" in out or "(member 1)" in out


def test_gate_defaults_are_the_judged_gate_at_the_saved_base_rate(setup_adapter, tmp_path):
    """`dmrx adapt --gate DIR` with no other option builds the gate gated_adaptation.py judged:
    threshold = should_adapt's positive rate in the model's training table (as `dmrx metadata
    train --out` saves it), smoothing 0.1, attack 0.5, debounce 5; a number overrides it."""
    import numpy as np

    from dmrx.explain.gate import GatedAdapter
    from dmrx.explain.metadata import FEATURES
    from dmrx.explain.metadata_fit import LogisticModel, load_model, save_model
    from dmrx.scenarios.cli import _parser
    from dmrx.scenarios.metadata_cli import gate_adapters

    X = np.random.default_rng(0).normal(size=(20, len(FEATURES)))
    save_model(LogisticModel().fit(X, (X[:, 0] > 0).astype(int)), tmp_path / "g",
               label="should_adapt", features=FEATURES, positive_rate=0.0875)
    assert load_model(tmp_path / "g")[1]["positive_rate"] == 0.0875
    a = _parser().parse_args(["adapt", "--checkpoint", "c", "--gate", str(tmp_path / "g")])
    gated = gate_adapters({"static": "static", "adaptive": setup_adapter}, a.gate,
                          a.gate_threshold, a.gate_smoothing, a.gate_attack, a.gate_debounce)
    g = gated["adaptive"]
    assert gated["static"] == "static" and isinstance(g, GatedAdapter)
    assert (g.threshold, g.smoothing, g.attack, g.debounce) == (0.0875, 0.1, 0.5, 5)
    a = _parser().parse_args(["adapt", "--checkpoint", "c", "--gate", str(tmp_path / "g"),
                              "--gate-threshold", "0.2", "--gate-debounce", "1"])
    g = gate_adapters({"adaptive": setup_adapter}, a.gate, a.gate_threshold, a.gate_smoothing,
                      a.gate_attack, a.gate_debounce)["adaptive"]
    assert (g.threshold, g.debounce) == (0.2, 1)


@pytest.fixture
def setup_adapter(ref_link):
    from dmrx.nn import NeuralReceiver, ResNetConfig
    from dmrx.nn.adapt import AdaptConfig, OnlineAdapter

    return OnlineAdapter(NeuralReceiver(ref_link, ResNetConfig(num_channels=8, num_blocks=1)),
                         AdaptConfig())


def test_metadata_train_saves_the_training_positive_rate(ref_link, tmp_path):
    _synthetic_tables(ref_link, tmp_path)
    assert main(["metadata", "train", "--data", str(tmp_path), "--model", "logreg",
                 "--label", "block_error", "--out", str(tmp_path / "m")]) == 0
    from dmrx.explain.metadata_fit import load_model

    y = read_table(tmp_path / "train.parquet").column("block_error").to_pylist()
    assert 0 < sum(y) < len(y)
    assert load_model(tmp_path / "m")[1]["positive_rate"] == pytest.approx(sum(y) / len(y))
