"""LLR calibration: the BCE-optimal scale against the closed form of BPSK on AWGN, folded into
the output layer exactly, and `dmrx calibrate` on the shipped receiver."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from dmrx.nn import HybridReceiver, load_receiver, receiver_config, save_checkpoint
from dmrx.nn.calibrate import calibrate_checkpoint, fit_llr_scale, fold_llr_scale
from dmrx.nn.checkpoint import CheckpointError, read_config
from dmrx.scenarios.cli import main

SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints" / "neural-ref-4prb"


def _bpsk_llr(n: int = 200_000, snr_db: float = 2.0, seed: int = 0):
    """Exact LLRs of BPSK on AWGN: y = (2c - 1) + n, LLR = 2 y / sigma^2 (calibrated)."""
    g = torch.Generator().manual_seed(seed)
    c = torch.randint(0, 2, (n,), generator=g).float()
    sigma2 = 10 ** (-snr_db / 10)
    y = (2 * c - 1) + sigma2 ** 0.5 * torch.randn(n, generator=g)
    return 2 * y / sigma2, c


@pytest.mark.parametrize("shrink", [0.4, 1.0, 3.0])
def test_fit_recovers_the_scale_that_makes_exact_llrs_calibrated(shrink):
    llr, c = _bpsk_llr()
    a = fit_llr_scale(llr / shrink, c)
    assert a == pytest.approx(shrink, rel=0.02)
    # it is the minimum: the BCE at a is below the BCE a few percent either side
    bce = lambda s: F.binary_cross_entropy_with_logits(s * llr / shrink, c).item()  # noqa: E731
    assert bce(a) < bce(0.95 * a) and bce(a) < bce(1.05 * a)


def test_fit_refuses_llrs_it_cannot_calibrate():
    c = torch.tensor([0.0, 1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="every bit is decided right"):
        fit_llr_scale(torch.tensor([-1.0, 2.0, 0.5, -3.0]), c)
    with pytest.raises(ValueError, match="no better than chance"):
        fit_llr_scale(torch.tensor([1.0, -2.0, 0.5, 3.0]), c)
    with pytest.raises(ValueError, match="shape"):
        fit_llr_scale(torch.zeros(3), c)
    with pytest.raises(ValueError, match="NaN"):
        fit_llr_scale(torch.tensor([float("nan"), 1.0, 1.0, -1.0]), c)


def test_fold_scales_the_llrs_and_keeps_the_decisions(ref_link):
    rx = load_receiver(SHIPPED, ref_link)
    y = torch.randn(2, 1, 1, 14, 48, dtype=torch.complex64,
                    generator=torch.Generator().manual_seed(3))
    no = torch.tensor([0.1, 0.05])
    with torch.no_grad():
        before = rx(y, no)
        fold_llr_scale(rx, 1.7)
        after = rx(y, no)
    torch.testing.assert_close(after, 1.7 * before, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="finite number > 0"):
        fold_llr_scale(rx, -1.0)
    with pytest.raises(TypeError, match="HybridReceiver"):
        fold_llr_scale(HybridReceiver(ref_link), 2.0)


def test_calibrate_checkpoint_undoes_a_known_distortion(tmp_path, ref_link):
    """The shipped receiver, trained on the BCE, is already calibrated (scale near 1). Halve
    its LLRs and save it: calibration on the same slots must find twice that scale, and the
    calibrated checkpoint must give the original LLRs times the first scale."""
    fit = calibrate_checkpoint(SHIPPED, tmp_path / "cal", num_batches=2, batch_size=32, seed=4)
    assert 0.8 < fit["scale"] < 1.25
    assert fit["bmd_rate_after"] >= fit["bmd_rate_before"]

    rx = load_receiver(SHIPPED, ref_link)
    fold_llr_scale(rx, 0.5)
    meta = read_config(SHIPPED)
    save_checkpoint(tmp_path / "half", rx, receiver_config(rx) | {"train": meta["train"]})
    fit_half = calibrate_checkpoint(tmp_path / "half", tmp_path / "half-cal", num_batches=2,
                                    batch_size=32, seed=4)
    assert fit_half["scale"] == pytest.approx(2 * fit["scale"], rel=1e-4)
    assert fit_half["bmd_rate_after"] == pytest.approx(fit["bmd_rate_after"], abs=1e-5)

    y = torch.randn(2, 1, 1, 14, 48, dtype=torch.complex64,
                    generator=torch.Generator().manual_seed(3))
    no = torch.tensor([0.1, 0.05])
    with torch.no_grad():
        ref = load_receiver(SHIPPED, ref_link)(y, no)
        got = load_receiver(tmp_path / "half-cal", ref_link)(y, no)
    torch.testing.assert_close(got, fit["scale"] * ref, rtol=1e-3, atol=1e-3)
    rec = json.loads((tmp_path / "half-cal" / "config.json").read_text())["llr_scale"]
    assert rec["scale"] == pytest.approx(fit_half["scale"])
    assert rec["source"] == str(tmp_path / "half")


def test_calibrate_refusals(tmp_path, ref_link):
    with pytest.raises(CheckpointError, match="new directory"):
        calibrate_checkpoint(SHIPPED, SHIPPED)
    rx = HybridReceiver(ref_link)
    save_checkpoint(tmp_path / "hybrid", rx, receiver_config(rx) | {"train": {}})
    with pytest.raises(CheckpointError, match="'hybrid' receiver"):
        calibrate_checkpoint(tmp_path / "hybrid", tmp_path / "out")
    rx = load_receiver(SHIPPED, ref_link)
    save_checkpoint(tmp_path / "untrained", rx, receiver_config(rx))
    with pytest.raises(CheckpointError, match="no training config"):
        calibrate_checkpoint(tmp_path / "untrained", tmp_path / "out")
    # refused before any slot is drawn, not after the fit when folding fails
    da = SHIPPED.parent / "neural-da-ref-4prb"
    with pytest.raises(CheckpointError, match="data-aided passes"):
        calibrate_checkpoint(da, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli(tmp_path, capsys):
    assert main(["calibrate", "--checkpoint", str(SHIPPED), "--out", str(tmp_path / "c"),
                 "--batches", "1", "--batch-size", "16"]) == 0
    assert "LLR scale" in capsys.readouterr().out
    assert (tmp_path / "c" / "config.json").exists()
    assert main(["calibrate", "--checkpoint", str(tmp_path / "missing"), "--out",
                 str(tmp_path / "d")]) == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("variant", ["pgd", "s2o", "s2o-dmrs-long", "s2o-dmrs-25"])
def test_shipped_calibrated_receivers_are_their_sources_scaled(variant, ref_link):
    """checkpoints/robust-<v>-cal (checkpoints/train_robust.sh) is robust-<v> with its LLRs
    times the recorded scale, and S2O / PGD-AT receivers are under-confident (scale > 1)."""
    root = SHIPPED.parent
    rec = read_config(root / f"robust-{variant}-cal")["llr_scale"]
    assert rec["source"] == f"checkpoints/robust-{variant}"
    assert rec["scale"] > 1.2
    y = torch.randn(2, 1, 1, 14, 48, dtype=torch.complex64,
                    generator=torch.Generator().manual_seed(3))
    no = torch.tensor([0.1, 0.05])
    with torch.no_grad():
        src = load_receiver(root / f"robust-{variant}", ref_link)(y, no)
        cal = load_receiver(root / f"robust-{variant}-cal", ref_link)(y, no)
    torch.testing.assert_close(cal, rec["scale"] * src, rtol=1e-4, atol=1e-4)
