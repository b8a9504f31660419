"""Offline training of neural / hybrid receivers on slots drawn on the fly.

Every step draws its own slots from a seed derived from (seed, step): a run that is interrupted
and resumed from its last checkpoint follows the very same loss trajectory as one that never
stopped. Loss: binary cross-entropy on the coded bits; the BMD rate 1 - BCE/ln 2 (bit per coded
bit) is logged with it, per epoch (and for a last, partial epoch when the steps are not a
multiple of epoch_steps), to `log.csv` in the checkpoint directory and, if asked
(`tensorboard=True`, `dmrx train --tensorboard`), as TensorBoard scalars under `<out>/tb`.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from dmrx.nn.checkpoint import (
    CheckpointError,
    atomic_write,
    build_receiver,
    link_of,
    load_train_state,
    load_weights,
    read_config,
    receiver_config,
    save_checkpoint,
)
from dmrx.nn.sgd_er import SGDER
from dmrx.ofdm import (
    Channel,
    ChannelConfig,
    LinkConfig,
    Transmitter,
    derive_seed,
    field_error,
    seed_everything,
)

OPTIMIZERS = ("adamw", "sgd")
SCHEDULERS = ("constant", "cosine", "plateau", "sgd-er")
LOG_FIELDS = ("step", "loss", "bmd_rate", "lr", "elapsed_s")


@dataclass(frozen=True)
class TrainConfig:
    """:param link: the link trained for
    :param channels: (name, ChannelConfig) pairs; each step draws one of them. A name with a
        jammer suffix (`dmrx.scenarios.get_scenario`'s 'tdl-c-300ns-60kmh+dmrs-jammer-0db')
        adds that jammer after the channel, so mixing jammed and clean scenarios is jammer
        augmentation
    :param receiver: 'neural' or 'hybrid'
    :param net: a ResNetConfig dict, None for the receiver's default
    :param snr_db: (low, high): each slot's SNR is drawn uniformly in it
    :param epoch_steps: steps per "epoch": the unit of logging and of epoch schedulers
    :param sgd_er: keyword arguments of `SGDER` (patience, gamma, ...)
    :param dmrs_hide_fraction: neural receiver only: hide this fraction of the DMRS REs from
        the input of each slot and add the BCE of detecting them (`hidden_dmrs_bce`, weight
        `dmrs_loss_weight`), so the network learns the task online adaptation trains on
    :param robust: a `dmrx.robust.RobustConfig.as_dict()`: adversarial / jammer training, whose
        loss (`dmrx.robust.training.RobustLoss`) replaces the BCE; None: standard training
    :param init_checkpoint: start from this checkpoint's weights (fine-tuning; its receiver
        must match `receiver` and `net`, except that it may lack `net`'s data-aided passes)
        instead of the seed's random ones
    """

    link: LinkConfig
    channels: tuple[tuple[str, ChannelConfig], ...]
    receiver: str = "neural"
    net: dict | None = None
    snr_db: tuple[float, float] = (0.0, 20.0)
    steps: int = 5000
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    grad_clip: float = 1.0
    scheduler: str = "cosine"
    sgd_er: dict = field(default_factory=dict)
    epoch_steps: int = 50
    checkpoint_every: int = 500
    seed: int = 0
    dmrs_hide_fraction: float = 0.0
    dmrs_loss_weight: float = 1.0
    robust: dict | None = None
    init_checkpoint: str | None = None

    def __post_init__(self) -> None:
        bad = functools.partial(field_error, self)

        if not self.channels:
            raise bad("channels", "at least one scenario")
        from dmrx.robust.jammers import split_jammer  # lazy: dmrx.robust builds on dmrx.nn

        for name, _ in self.channels:
            try:
                split_jammer(name)
            except ValueError as e:
                raise bad("channels", str(e)) from None
        if self.receiver not in ("neural", "hybrid"):
            raise bad("receiver", "'neural' or 'hybrid'")
        lo, hi = self.snr_db
        if not (-30 <= lo <= hi <= 60):
            raise bad("snr_db", "low <= high within -30..60 dB")
        for name in ("steps", "batch_size", "epoch_steps", "checkpoint_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise bad(name, "a positive integer")
        if self.checkpoint_every % self.epoch_steps:
            raise bad("checkpoint_every", f"a multiple of epoch_steps={self.epoch_steps}")
        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", f"one of {OPTIMIZERS}")
        if self.scheduler not in SCHEDULERS:
            raise bad("scheduler", f"one of {SCHEDULERS}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise bad("lr", "a positive number")
        if not self.grad_clip > 0:
            raise bad("grad_clip", "> 0")
        if self.seed < 0:
            raise bad("seed", "a non-negative integer")
        if not 0 <= self.dmrs_hide_fraction < 1:
            raise bad("dmrs_hide_fraction", "in [0, 1)")
        if self.dmrs_hide_fraction and self.receiver != "neural":
            raise bad("dmrs_hide_fraction", "0 for a hybrid receiver (it has no DMRS input)")
        if self.robust is not None:
            from dmrx.robust.training import RobustConfig

            RobustConfig.from_dict(self.robust)  # raises naming the RobustConfig field
            if self.dmrs_hide_fraction:
                raise bad("dmrs_hide_fraction", "0 with robust training")

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["link"] = self.link.as_dict()
        d["channels"] = [[n, dataclasses.asdict(c)] for n, c in self.channels]
        for key in ("robust", "init_checkpoint"):  # absent when unused: older checkpoints
            if d[key] is None:                      # resume with the same config dict
                del d[key]
        return json.loads(json.dumps(d))  # tuples -> lists, as they come back from JSON


@dataclass
class TrainResult:
    path: Path
    step: int
    log: list[dict]
    receiver: torch.nn.Module


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    """`cfg`'s optimizer (AdamW or SGD with momentum) over `params`, as `train` makes it."""
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay)


def _scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer):
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps,
                                                          eta_min=cfg.lr * 0.01)
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=5,
                                                          threshold=1e-3)
    if cfg.scheduler == "sgd-er":
        return SGDER(opt, **cfg.sgd_er)
    return None


def _channel_stages(cfg: TrainConfig) -> list[torch.nn.Module]:
    """One channel stage `(x, no) -> (y, h)` per entry of `cfg.channels`, with the jammer its
    name's suffix asks for (the same `channel_stage` the scenarios simulate with)."""
    from dmrx.robust.jammers import channel_stage, split_jammer

    return [channel_stage(cfg.link, c, split_jammer(n)[1]) for n, c in cfg.channels]


def bmd_rate(bce_nats: float) -> float:
    """Bit-metric-decoding rate (bit per coded bit) from a mean BCE in nats."""
    return 1.0 - bce_nats / math.log(2.0)


def _read_log(path: Path, upto: int) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    for r in rows:
        r["step"] = int(r["step"])
    return [r for r in rows if r["step"] <= upto]


def _write_log(path: Path, rows: list[dict]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=LOG_FIELDS)
            w.writeheader()
            w.writerows(rows)

    atomic_write(path, write)


def receiver_loss(rx: torch.nn.Module, y: torch.Tensor, no: torch.Tensor, c: torch.Tensor,
                  cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The training loss of one batch (without robust training): the BCE of the coded bits,
    plus, with `cfg.dmrs_hide_fraction`, that of the hidden DMRS (weight `dmrs_loss_weight`).

    :param y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :param no: [batch] float32
    :param c: [batch, num_coded_bits] float32 coded bits
    :return: (loss, data BCE), scalars
    """
    if not cfg.dmrs_hide_fraction:
        loss = F.binary_cross_entropy_with_logits(rx(y, no), c)
        return loss, loss
    hidden = rx.hide_dmrs(y.shape[0], cfg.dmrs_hide_fraction)
    grid = rx.grid_llr(y, no, dmrs_keep=rx.dmrs_mask & ~hidden)
    data_loss = F.binary_cross_entropy_with_logits(rx.data_llr(grid), c)
    return data_loss + cfg.dmrs_loss_weight * rx.hidden_dmrs_bce(grid, hidden), data_loss


def train(cfg: TrainConfig, out: str | Path, *, resume: bool = True,
          progress: bool = True, stop_after: int | None = None,
          on_epoch: Callable[[int, dict, torch.nn.Module], bool] | None = None,
          tensorboard: bool = False) -> TrainResult:
    """Train a receiver; checkpoints and `log.csv` go to `out`.

    :param resume: continue from `out`'s checkpoint if there is one (it must have been made
        with the same TrainConfig); False refuses to overwrite an existing checkpoint
    :param stop_after: stop (with a checkpoint) after this global step, as an interruption
        would; None trains to `cfg.steps`
    :param on_epoch: called as `on_epoch(step, log_row, receiver)` after each logged epoch
        (e.g. a training-health monitor of `dmrx.nn.diagnosis`), the row with one key more
        than log.csv's, 'loss_sem': the standard error of the epoch's mean loss (std of its
        steps' losses / sqrt(epoch_steps)); returning True stops
        training there, with a checkpoint, as `stop_after` would
    :param tensorboard: also write each logged epoch's loss, BMD rate and learning rate as
        TensorBoard scalars ('train/loss', 'train/bmd_rate', 'train/lr' at the global step) to
        `out`/tb; a resumed run first drops the events past its checkpoint, so the curves match
        `log.csv` (needs the `tensorboard` package: `pip install 'dmrx[tensorboard]'`)
    :raises CheckpointError: `out` holds a checkpoint of another config, or a corrupt one
    :raises ImportError: `tensorboard=True` without the tensorboard package
    """
    out = Path(out)
    seed_everything(derive_seed(cfg.seed, "init"))  # the initial weights come from the seed too
    rx = build_receiver(cfg.receiver, cfg.link, cfg.net)
    if cfg.init_checkpoint is not None:
        # a receiver with data-aided passes may start from one without: the passes start as
        # "no correction" (zero output convolution), so training starts from its performance
        load_weights(cfg.init_checkpoint, rx, missing_ok=("refine.",))
    robust = None
    if cfg.robust is not None:
        from dmrx.robust.training import RobustConfig, RobustLoss

        robust = RobustLoss(RobustConfig.from_dict(cfg.robust), cfg.link)
    opt = make_optimizer(cfg, rx.parameters())
    sched = _scheduler(cfg, opt)
    step, log = 0, []
    # the current epoch's sums of step losses and squares, and its steps so far: part of the
    # training state, so that a run resumed mid-epoch logs that epoch as an uninterrupted one
    epoch_loss = epoch_sq = 0.0
    epoch_n = 0
    meta_train = cfg.as_dict()
    if (out / "config.json").exists():
        if not resume:
            raise CheckpointError(f"{str(out)!r} already holds a checkpoint; choose another "
                                  "output directory or resume")
        meta = read_config(out)
        if meta.get("train") != meta_train:
            raise CheckpointError(f"{str(out)!r} holds a checkpoint of a different training "
                                  "config; use the same arguments to resume, or a new --out")
        load_weights(out, rx)
        state = load_train_state(out, meta)
        opt.load_state_dict(state["optimizer"])
        if sched is not None:
            sched.load_state_dict(state["scheduler"])
        step = int(meta["step"])
        log = _read_log(out / "log.csv", step)
        epoch_loss, epoch_sq, epoch_n = state.get("epoch", (0.0, 0.0, 0))

    def checkpoint() -> None:
        state = {"optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict() if sched is not None else None,
                 "epoch": (epoch_loss, epoch_sq, epoch_n)}
        save_checkpoint(out, rx, receiver_config(rx) | {"train": meta_train, "step": step},
                        train_state=state)
        _write_log(out / "log.csv", log)

    tb = _tensorboard_writer(out, purge_step=step + 1) if tensorboard else None
    tx = Transmitter(cfg.link)
    channels = _channel_stages(cfg)
    lo, hi = cfg.snr_db
    last = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    rx.train()
    t0 = time.perf_counter() - (log[-1]["elapsed_s"] if log else 0.0)
    bar = tqdm(total=cfg.steps, initial=step, unit="step", disable=not progress,
               desc=f"train {cfg.receiver}")
    while step < last:
        seed_everything(derive_seed(cfg.seed, "train-step", step))
        ch = channels[int(torch.randint(len(channels), ()))]
        snr_db = lo + (hi - lo) * torch.rand(cfg.batch_size)
        no = torch.pow(10.0, -snr_db / 10.0)
        with torch.no_grad():
            s = tx(cfg.batch_size)
            y, h = ch(s.x, no)
        if robust is not None:
            loss, data_loss = robust(rx, y, no, s.c, s.x, h)
        else:
            loss, data_loss = receiver_loss(rx, y, no, s.c, cfg)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()} at step {step}; "
                                     "lower --lr or --grad-clip")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(rx.parameters(), cfg.grad_clip)
        opt.step()
        if cfg.scheduler == "cosine":
            sched.step()
        step += 1
        epoch_loss += (v := data_loss.item())  # logged loss and BMD rate are those of the data
        epoch_sq += v * v
        epoch_n += 1
        bar.update(1)
        full = step % cfg.epoch_steps == 0
        # training that ends mid-epoch (steps not a multiple of epoch_steps) logs that partial
        # epoch too, or a run shorter than one epoch would log nothing; an interruption
        # (stop_after) does not: the resumed run logs the whole epoch. Only full epochs drive
        # schedulers and on_epoch
        if full or step == cfg.steps:
            n = epoch_n
            mean = epoch_loss / n
            # standard error of the epoch's mean loss from its steps' spread (for on_epoch only:
            # the diagnosis weighs loss changes against it; not written to log.csv)
            sem = math.sqrt(max(0.0, epoch_sq / n - mean * mean) / (n - 1)) if n > 1 else 0.0
            epoch_loss = epoch_sq = 0.0
            epoch_n = 0
            if full and cfg.scheduler in ("plateau", "sgd-er"):
                sched.step(mean)
            log.append({"step": step, "loss": mean, "bmd_rate": bmd_rate(mean),
                        "lr": opt.param_groups[0]["lr"],
                        "elapsed_s": time.perf_counter() - t0})
            bar.set_postfix(loss=f"{mean:.4f}", bmd=f"{bmd_rate(mean):.3f}")
            if tb is not None:
                for key in ("loss", "bmd_rate", "lr"):
                    tb.add_scalar(f"train/{key}", log[-1][key], step)
            if full and on_epoch is not None and on_epoch(step, log[-1] | {"loss_sem": sem},
                                                          rx):
                last = step
        if step % cfg.checkpoint_every == 0 or step == last:
            checkpoint()
    bar.close()
    if tb is not None:
        tb.close()
    if not (out / "config.json").exists():
        checkpoint()
    return TrainResult(out, step, log, rx.eval())


def _tensorboard_writer(out: Path, purge_step: int):
    """A SummaryWriter on `out`/tb that drops events at or after `purge_step` (those of epochs
    after the checkpoint a run resumes from, which it is about to log again)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # torch's writer needs the tensorboard package
        raise ImportError("TensorBoard logging needs the tensorboard package: "
                          "pip install 'dmrx[tensorboard]'") from e
    return SummaryWriter(str(out / "tb"), purge_step=purge_step)


def train_config_of(meta: dict) -> TrainConfig:
    """The `TrainConfig` a checkpoint was trained with (its config.json's "train" entry).

    :raises CheckpointError: the checkpoint has no (valid) training recipe
    """
    t = meta.get("train")
    if not isinstance(t, dict):
        raise CheckpointError("the checkpoint records no training config to draw slots from")
    try:
        channels = tuple((n, ChannelConfig(**c)) for n, c in t["channels"])
        fields = set(TrainConfig.__dataclass_fields__) - {"link", "channels", "snr_db",
                                                          "sgd_er"}
        return TrainConfig(link=link_of(meta), channels=channels, snr_db=tuple(t["snr_db"]),
                           **{k: v for k, v in t.items() if k in fields})
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"the checkpoint's training config is invalid: {e}") from e


class SlotStream:
    """Training slots as `dmrx.nn.train` draws them: per step a scenario of `cfg.channels`,
    per slot an SNR uniform in `cfg.snr_db`, from the seed derived from (seed, tag, step).

    :return (call): (y [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64,
        no [batch] float32, c [batch, num_coded_bits] float32 coded bits)
    """

    def __init__(self, cfg: TrainConfig, seed: int, tag: str = "qat-step"):
        self.cfg, self.seed, self.tag = cfg, seed, tag
        self.tx = Transmitter(cfg.link)
        self.channels = [Channel(cfg.link, c) for _, c in cfg.channels]

    @torch.no_grad()
    def __call__(self, step: int, batch_size: int):
        seed_everything(derive_seed(self.seed, self.tag, step))
        ch = self.channels[int(torch.randint(len(self.channels), ()))]
        lo, hi = self.cfg.snr_db
        no = torch.pow(10.0, -(lo + (hi - lo) * torch.rand(batch_size)) / 10.0)
        s = self.tx(batch_size)
        return ch(s.x, no).y, no, s.c


@torch.no_grad()
def evaluate_bmd_rate(rx: torch.nn.Module, cfg: TrainConfig, num_batches: int = 20,
                      seed: int = 12345) -> float:
    """BMD rate (bit per coded bit) of `rx` on held-out slots drawn like `cfg`'s training slots
    but from `seed`'s own stream, identical for every receiver evaluated with the same seed."""
    tx = Transmitter(cfg.link)
    channels = _channel_stages(cfg)
    lo, hi = cfg.snr_db
    total = 0.0
    was_training = rx.training
    rx.eval()
    for i in range(num_batches):
        seed_everything(derive_seed(seed, "eval-batch", i))
        ch = channels[int(torch.randint(len(channels), ()))]
        no = torch.pow(10.0, -(lo + (hi - lo) * torch.rand(cfg.batch_size)) / 10.0)
        s = tx(cfg.batch_size)
        total += F.binary_cross_entropy_with_logits(rx(ch(s.x, no).y, no), s.c).item()
    rx.train(was_training)
    return bmd_rate(total / num_batches)
