"""Quantization-aware fine-tuning of a quantized receiver, on the slots `dmrx.nn.train` draws.

The slots come from the receiver's own training recipe (`TrainConfig`: link, scenarios, SNR
range) read back from its checkpoint, drawn step by step from seeds derived from (seed, step)
as `dmrx.nn.train.train` does; the loss is the same BCE on the coded bits. The latent float
weights, biases, norms and BBQ scales are trained; the forward pass always uses the quantized
weights (straight-through estimator), so what is trained is what is deployed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from dmrx.nn.train import SlotStream, TrainConfig, bmd_rate, train_config_of

# SlotStream and train_config_of live in dmrx.nn.train (LLR calibration draws slots too)
__all__ = ["QATConfig", "SlotStream", "calibration_loss", "qat", "train_config_of"]


@dataclass(frozen=True)
class QATConfig:
    """:param steps: fine-tuning steps (0: post-training quantization only)
    :param batch_size: slots per step
    :param lr: AdamW learning rate, cosine-annealed to lr / 100 (small: the float network is
        already trained, QAT only has to absorb the quantization error)
    :param grad_clip: gradient-norm clip
    :param seed: seeds the slot stream (independent of the float training's)
    """

    steps: int = 500
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"QATConfig.{name}={v!r} is not allowed: an integer >= 0")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) \
                or self.batch_size < 1:
            raise ValueError(f"QATConfig.batch_size={self.batch_size!r} is not allowed: a "
                             "positive integer")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"QATConfig.lr={self.lr!r} is not allowed: a positive number")
        if not self.weight_decay >= 0:
            raise ValueError(f"QATConfig.weight_decay={self.weight_decay!r} is not allowed: "
                             ">= 0")
        if not self.grad_clip > 0:
            raise ValueError(f"QATConfig.grad_clip={self.grad_clip!r} is not allowed: > 0")


def qat(rx_q: torch.nn.Module, train_cfg: TrainConfig, cfg: QATConfig,
        progress: bool = False) -> list[dict]:
    """Fine-tune a quantized receiver in place.

    :param rx_q: from `dmrx.quant.quantize_receiver`
    :return: log, one row per 50 steps: {"step", "loss", "bmd_rate"}
    """
    if cfg.steps == 0:
        return []
    stream = SlotStream(train_cfg, cfg.seed)
    params = [p for p in rx_q.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps,
                                                       eta_min=cfg.lr * 0.01)
    rx_q.train()
    log, acc = [], 0.0
    every = min(50, cfg.steps)
    for step in tqdm(range(cfg.steps), disable=not progress, desc="qat", unit="step"):
        y, no, c = stream(step, cfg.batch_size)
        loss = F.binary_cross_entropy_with_logits(rx_q(y, no), c)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"QAT loss became {loss.item()} at step {step}; lower "
                                     "the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        sched.step()
        acc += loss.item()
        if (step + 1) % every == 0:
            log.append({"step": step + 1, "loss": acc / every, "bmd_rate": bmd_rate(acc / every)})
            acc = 0.0
    rx_q.eval()
    return log


@torch.no_grad()
def calibration_loss(rx: torch.nn.Module, batches: list[tuple]) -> float:
    """Mean BCE (nats) of `rx` on fixed slots [(y, no, c), ...] (see `SlotStream`)."""
    was = rx.training
    rx.eval()
    total = sum(F.binary_cross_entropy_with_logits(rx(y, no), c).item() for y, no, c in batches)
    rx.train(was)
    return total / len(batches)
