"""dmrx.nn — neural and hybrid receivers, offline training, the SGD-ER scheduler."""

from dmrx.nn.checkpoint import (
    CheckpointError,
    build_receiver,
    load_receiver,
    receiver_config,
    save_checkpoint,
)
from dmrx.nn.hybrid import HybridReceiver
from dmrx.nn.receiver import NeuralReceiver
from dmrx.nn.resnet import ResNetConfig
from dmrx.nn.sgd_er import SGDER
from dmrx.nn.train import TrainConfig, TrainResult, bmd_rate, evaluate_bmd_rate, train

__all__ = ["CheckpointError", "build_receiver", "load_receiver", "receiver_config",
           "save_checkpoint", "HybridReceiver", "NeuralReceiver", "ResNetConfig", "SGDER",
           "TrainConfig", "TrainResult", "bmd_rate", "evaluate_bmd_rate", "train"]
