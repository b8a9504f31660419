import json

import pytest
import torch

from dmrx.nn import (
    CheckpointError,
    NeuralReceiver,
    ResNetConfig,
    load_receiver,
    receiver_config,
    save_checkpoint,
)
from dmrx.scenarios import get_link


@pytest.fixture
def saved(tmp_path, ref_link):
    torch.manual_seed(0)
    rx = NeuralReceiver(ref_link, ResNetConfig(num_channels=8, num_blocks=2))
    save_checkpoint(tmp_path / "ck", rx, receiver_config(rx))
    return rx, tmp_path / "ck"


def test_round_trip_is_exact(saved, ref_link):
    rx, path = saved
    back = load_receiver(path, ref_link)
    for (k, a), (k2, b) in zip(rx.state_dict().items(), back.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)
    y = torch.randn(2, 1, 1, 14, 48, dtype=torch.complex64)
    assert torch.equal(rx.eval()(y, 0.1), back(y, 0.1))
    assert not list(path.glob("*.tmp*"))  # atomic writes leave nothing behind


def test_corrupt_weights_are_refused(saved):
    _, path = saved
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_receiver(path)


def test_corrupt_config_is_refused(saved):
    _, path = saved
    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_receiver(path)


def test_missing_checkpoint_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_receiver(tmp_path / "nothing")


def test_checkpoint_of_another_link_is_refused(saved):
    _, path = saved
    with pytest.raises(CheckpointError, match="trained for link 'ref-4prb'"):
        load_receiver(path, get_link("ref-4prb-2rx"))


def test_checkpoint_of_another_architecture_is_refused(saved):
    _, path = saved
    meta = json.loads((path / "config.json").read_text())
    meta["net"]["num_channels"] = 16
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="does not fit this receiver"):
        load_receiver(path)


def test_hybrid_round_trip_stores_only_learned_weights(tmp_path, ref_link):
    from safetensors.torch import load_file

    from dmrx.nn import HybridReceiver

    torch.manual_seed(1)
    rx = HybridReceiver(ref_link)
    torch.nn.init.normal_(rx.net.output_conv.weight, std=0.01)  # not the zero init
    save_checkpoint(tmp_path / "h", rx, receiver_config(rx))
    assert all(k.startswith("net.") for k in load_file(str(tmp_path / "h/model.safetensors")))
    back = load_receiver(tmp_path / "h", ref_link)
    y = torch.randn(2, 1, 1, 14, 48, dtype=torch.complex64)
    assert torch.equal(rx.eval()(y, 0.1), back(y, 0.1))
