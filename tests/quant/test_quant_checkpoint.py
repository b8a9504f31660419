"""Quantized-receiver checkpoints: packed on disk, loaded like any receiver, corrupt ones
refused; `dmrx quantize` end to end on a tiny receiver."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from dmrx.nn import (
    CheckpointError,
    NeuralReceiver,
    ResNetConfig,
    TrainConfig,
    load_receiver,
    receiver_config,
    save_checkpoint,
)
from dmrx.quant import QATConfig, bits_per_weight, qat, quantize_receiver, save_quantized
from dmrx.quant.qat import train_config_of
from dmrx.scenarios import get_scenario
from dmrx.scenarios.cli import main


@pytest.fixture
def tiny(tmp_path, ref_link):
    torch.manual_seed(0)
    rx = NeuralReceiver(ref_link, ResNetConfig(num_channels=8, num_blocks=1))
    train = TrainConfig(ref_link, (("tdl-c-300ns-60kmh",
                                    get_scenario("tdl-c-300ns-60kmh").channel),),
                        net=rx.config.as_dict(), snr_db=(5.0, 15.0))
    save_checkpoint(tmp_path / "float", rx, receiver_config(rx) | {"train": train.as_dict()})
    return rx.eval(), tmp_path / "float"


def _y():
    return torch.randn(2, 1, 1, 14, 48, dtype=torch.complex64,
                       generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("scheme, bits", [("mxfp4_e2m1", 4), ("mxfp6_e3m2", 6),
                                          ("mxint8", 8), ("bbq3", 3), ("bbq4-g32", 4),
                                          ("int4", 4)])
def test_round_trip_loads_like_any_receiver(tiny, tmp_path, ref_link, scheme, bits):
    rx, _ = tiny
    q = quantize_receiver(rx, scheme).eval()
    path = save_quantized(tmp_path / scheme, q)
    back = load_receiver(path, ref_link)
    assert back.kind == "neural"
    with torch.no_grad():
        torch.testing.assert_close(back(_y(), 0.1), q(_y(), 0.1), rtol=0, atol=1e-5)
        assert (back(_y(), 0.1) - rx(_y(), 0.1)).abs().max() > 1e-4  # it is quantized
    tensors = load_file(str(path / "model.safetensors"))
    w = rx.net.blocks[0].conv1.weight
    codes = tensors["net.blocks.0.conv1.weight.codes"]
    assert codes.dtype == torch.uint8 and codes.numel() == math.ceil(w.numel() * bits / 8)
    meta = json.loads((path / "config.json").read_text())["quant"]
    assert meta["bits_per_weight"] == pytest.approx(bits_per_weight(q))
    assert not list(path.glob("*.tmp*"))


def test_activation_format_survives_the_round_trip(tiny, tmp_path):
    rx, _ = tiny
    q = quantize_receiver(rx, "mxfp8_e4m3", act_fmt="mxfp8_e4m3").eval()
    back = load_receiver(save_quantized(tmp_path / "wa", q))
    with torch.no_grad():
        torch.testing.assert_close(back(_y(), 0.1), q(_y(), 0.1), rtol=0, atol=1e-5)


def test_corrupt_quantized_checkpoints_are_refused(tiny, tmp_path):
    rx, _ = tiny
    path = save_quantized(tmp_path / "q", quantize_receiver(rx, "mxfp4"))
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_receiver(path)
    path = save_quantized(tmp_path / "q2", quantize_receiver(rx, "mxfp4"))
    cfg = json.loads((path / "config.json").read_text())
    cfg["quant"]["layers"]["net.input_conv"]["scheme"] = "mxfp5"
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="unknown scheme 'mxfp5'"):
        load_receiver(path)


def test_plan_must_name_every_layer(tiny):
    rx, _ = tiny
    with pytest.raises(ValueError, match="missing"):
        quantize_receiver(rx, {"net.input_conv": "mxfp4"})
    with pytest.raises(ValueError, match="'fp16'"):
        quantize_receiver(rx, "fp16")


def test_qat_trains_through_the_quantizer(tiny):
    rx, path = tiny
    original = rx.net.input_conv.weight.detach().clone()
    q = quantize_receiver(rx, "mxfp4")
    before = q.net.input_conv.weight.detach().clone()
    log = qat(q, train_config_of(json.loads((path / "config.json").read_text())),
              QATConfig(steps=2, batch_size=2, lr=1e-2))
    assert len(log) == 1 and math.isfinite(log[0]["loss"])
    assert not torch.equal(q.net.input_conv.weight, before)  # the STE let gradients through
    assert torch.equal(rx.net.input_conv.weight, original)  # quantize_receiver copies


def test_cli_quantize_then_simulate(tiny, tmp_path, capsys):
    _, src = tiny
    out = tmp_path / "mx"
    assert main(["quantize", "--checkpoint", str(src), "--format", "mxfp4", "--qat-steps",
                 "2", "--batch-size", "2", "--out", str(out), "--no-progress"]) == 0
    assert "bits per weight" in capsys.readouterr().out
    assert main(["simulate", "--receiver", "neural", "--checkpoint", str(out), "--snr-db",
                 "10", "--slots", "4", "--no-progress"]) == 0
    alloc = tmp_path / "alloc"
    assert main(["quantize", "--checkpoint", str(src), "--format", "mxfp4", "--allocate",
                 "--budget-bits", "5.5", "--batch-size", "2", "--out", str(alloc),
                 "--no-progress"]) == 0
    report = json.loads((alloc / "config.json").read_text())["quant"]["allocation"]
    assert report["bits_per_weight"] <= 5.5 and len(report["layers"]) == 4
    assert main(["quantize", "--checkpoint", str(src), "--format", "mxfp4", "--allocate",
                 "--budget-bits", "3", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "below the cheapest" in capsys.readouterr().err
    assert main(["quantize", "--checkpoint", str(out), "--format", "mxfp4", "--out",
                 str(tmp_path / "y")]) == 2  # a quantized checkpoint is not a float source
