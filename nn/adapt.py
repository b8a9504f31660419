"""Online adaptation: the receiver keeps learning from the DMRS of the slots it detects.

Per slot the adapter first detects (`adapter(y, no) -> llr`, the receiver contract) and then,
if its policy says so, learns from the same slot (`adapter.observe(y, no, ...)`):

- **Label source, no leakage.** A random subset of the slot's DMRS REs is hidden from the
  network's input (mask, pilot value and LS estimate zeroed there, see
  `NeuralReceiver.features`), and the network must detect the known pilot at those REs from the
  rest, exactly as it detects data. The DMRS is QPSK, so the labels are the two sign bits of the
  16/64-QAM Gray mapping (38.211 5.1: b0 <-> sign of Re, b1 <-> sign of Im), the same bits the
  network outputs for a data RE there (weight `dmrs_weight`). Optionally, transport blocks whose
  CRC passed give labels for all their coded bits (`crc_labels`); they are kept with their
  slot in the replay memory. Measured on ref-4prb (benchmarks/adaptation.py): gradient steps on
  the hidden-DMRS loss alone lower that loss but *raise* the data BCE on a new channel, because
  the channel at a DMRS symbol is far easier to infer than at a data symbol nine symbols away;
  so the variants that move weights learn from CRC labels and use the DMRS loss, which is free
  in every slot, to decide when to learn and to guard (see `VARIANTS`).
- **SNR augmentation** (`snr_augment_db`): each slot of an update batch gets extra complex
  Gaussian noise that lowers its SNR by up to this many dB (its `no` raised to match), so a
  receiver adapting at one SNR keeps working at the others; without it, updates at one SNR
  wrecked the receiver at lower SNRs (the noise-variance input never varied).
- **What moves** (`params`): 'all' weights; 'norm-last' (GroupNorm affines, as in Tent, and the
  output head); 'adapter' (a zero-initialised bottleneck before the head). With data-aided
  passes, 'all' and the GroupNorms span every pass, and the head is the last pass's.
- **Forgetting** (`anchor`): 'l2sp' pulls toward the pretrained weights (Li et al. 2018), 'ewc'
  weights that pull by a diagonal Fisher estimated on the first slots (Kirkpatrick et al.
  2017); `replay_slots` keeps a bounded memory of past slots mixed into each update.
- **When** (`when`): 'every' slot, on a 'shift' (fast DMRS-loss average jumps above
  `shift_factor` x its slow average; then `shift_updates` slots of updates), or on a 'schedule'
  (every `period` slots). `sgd_er` drives the learning rate with `SGDER` restarts.
- **Cost** (`monitor_every`): the hidden-DMRS loss is one extra forward pass per slot; computing
  it on every n-th slot only (shift detection and the guard then look at those slots) and
  updating on a schedule is how the amortized cost of adapting stays below that of detecting.
  `steps_per_update` takes several optimizer steps per update (each on this slot and a fresh
  replay draw): more learning per labelled slot, at that many times the cost.
- **Guard, before learning**: a DMRS-targeted jammer makes the pilots lie, and the hidden-DMRS
  loss does not show it: in benchmarks/adaptation_jammer.py a DMRS-only adapter learning through
  a jammed stretch kept a normal DMRS loss and ended at BLER 1.0 on data. So each slot's DMRS
  integrity is checked first: the noise variance seen on the pilots (second differences of
  the LS estimates along each DMRS symbol, `dmrs_noise_ratio`) over the `no` the receiver was
  given is about 1 on clean slots and (no + jammer power) / no under a DMRS jammer (measured
  on ref-4prb, TDL-A/C/E: clean <= 2 per slot up to 12 dB, 0 dB jammer >= 15 at 12 dB); a slot
  above `guard_noise_ratio` x the median of the recent clean slots' ratios (at least 1) is
  neither learned from nor stored for replay, and no snapshot is taken on it. A jammer weaker
  than the noise passes this check; the rollback below is the second line.
- **Guard, on the blocks**: if the block error rate of the last `guard_window` slots exceeds
  the rate at which the snapshot was taken by `guard_bler_rise`, the adapter rolls back
  (`crc_ok` passed to `observe` feeds this; it needs no extra decoding). Snapshots are only
  refreshed while the rate stays within half that rise, so a slow slide cannot ratchet the
  fallback down with it.
- **Guard, after learning**: the weights of the last snapshot are checked against the current
  ones on fresh slots (pre-update DMRS loss); if the current weights are worse by
  `guard_margin` on `guard_patience` consecutive checks, or anything becomes non-finite, the
  adapter rolls back to the snapshot and pauses for `cooldown` slots. Snapshots are refreshed
  only while the DMRS loss looks normal (below `guard_factor` x its long-run median), so
  weights adapted to a jammed stretch do not become the fallback.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import statistics
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dmrx.nn.checkpoint import derived_config, read_config, save_checkpoint
from dmrx.nn.receiver import NeuralReceiver, per_slot_no
from dmrx.nn.sgd_er import SGDER
from dmrx.ofdm import check_receiver_inputs, field_error, pilot_comb, pilot_noise

PARAM_SETS = ("all", "norm-last", "adapter")
WHEN = ("every", "shift", "schedule")
ANCHORS = ("none", "l2sp", "ewc")


@dataclass(frozen=True)
class AdaptConfig:
    params: str = "norm-last"
    lr: float = 1e-3
    hide_fraction: float = 0.5
    when: str = "every"
    period: int = 4
    shift_factor: float = 1.3
    shift_updates: int = 100
    replay_slots: int = 0
    replay_batch: int = 4
    steps_per_update: int = 1
    anchor: str = "none"
    anchor_weight: float = 1.0
    fisher_slots: int = 16
    crc_labels: bool = False
    dmrs_weight: float = 1.0
    snr_augment_db: float = 0.0
    adapter_rank: int = 4
    guard: bool = True
    guard_every: int = 4
    monitor_every: int = 1
    guard_margin: float = 0.02
    guard_patience: int = 3
    guard_factor: float = 3.0
    guard_noise_ratio: float = 3.0
    guard_bler_rise: float = 0.25
    guard_window: int = 32
    cooldown: int = 50
    sgd_er: dict | None = None
    sgd_er_epoch: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        bad = functools.partial(field_error, self)

        if self.params not in PARAM_SETS:
            raise bad("params", f"one of {PARAM_SETS}")
        if self.when not in WHEN:
            raise bad("when", f"one of {WHEN}")
        if self.anchor not in ANCHORS:
            raise bad("anchor", f"one of {ANCHORS}")
        if not 0 < self.hide_fraction < 1:
            raise bad("hide_fraction", "in (0, 1): some DMRS must stay visible")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise bad("lr", "> 0")
        for name in ("period", "shift_updates", "replay_batch", "steps_per_update",
                     "fisher_slots", "adapter_rank",
                     "guard_every", "guard_patience", "sgd_er_epoch", "monitor_every"):
            if getattr(self, name) < 1:
                raise bad(name, ">= 1")
        if self.replay_slots < 0 or self.cooldown < 0:
            raise ValueError("AdaptConfig.replay_slots and cooldown must be >= 0")
        if not (self.dmrs_weight >= 0 and math.isfinite(self.dmrs_weight)):
            raise bad("dmrs_weight", ">= 0")
        if not 0 < self.guard_bler_rise <= 1:
            raise bad("guard_bler_rise", "in (0, 1]")
        if self.guard_window < 1:
            raise bad("guard_window", ">= 1")
        if not self.guard_noise_ratio > 1:
            raise bad("guard_noise_ratio", "> 1 (about 1 on clean slots)")
        if not 0 <= self.snr_augment_db <= 30:
            raise bad("snr_augment_db", "in [0, 30] dB")
        if self.dmrs_weight == 0 and not self.crc_labels:
            raise ValueError("AdaptConfig: dmrs_weight=0 without crc_labels leaves no label "
                             "to learn from")

    def variant(self) -> str:
        """A short name: params[-anchor][-replay][-when][-crc]."""
        parts = [self.params]
        if self.dmrs_weight == 0:
            parts.append("nodmrs")
        if self.anchor != "none":
            parts.append(self.anchor)
        if self.replay_slots:
            parts.append("replay")
        if self.when != "every":
            parts.append(self.when)
        if self.crc_labels:
            parts.append("crc")
        if not self.guard:
            parts.append("noguard")
        if self.steps_per_update > 1:
            parts.append(f"x{self.steps_per_update}")
        return "-".join(parts)


class ReplayBuffer:
    """At most `max_slots` past slots (y, no, coded-bit labels or None), oldest dropped first;
    stored on the CPU, labels as uint8."""

    def __init__(self, max_slots: int):
        self.slots: deque = deque(maxlen=max_slots)

    def __len__(self) -> int:
        return len(self.slots)

    def add(self, y: torch.Tensor, no: torch.Tensor, c: torch.Tensor | None = None,
            labelled: torch.Tensor | None = None) -> None:
        """:param y: [batch, ...] complex64; no: [batch]; c: [batch, num_coded_bits] labels,
        kept only where `labelled` [batch] bool is True"""
        for i in range(y.shape[0]):
            lab = None
            if c is not None and labelled is not None and bool(labelled[i]):
                lab = c[i:i + 1].detach().cpu().to(torch.uint8)
            self.slots.append((y[i:i + 1].detach().cpu().clone(), no[i:i + 1].detach().cpu(),
                               lab))

    def sample(self, n: int, gen: torch.Generator) -> list[tuple] | None:
        """Up to `n` stored slots drawn uniformly with replacement, as (y, no, c or None)."""
        if not self.slots:
            return None
        idx = torch.randint(len(self.slots), (min(n, len(self.slots)),), generator=gen)
        return [self.slots[int(i)] for i in idx]

    def nbytes(self) -> int:
        return sum(sum(t.numel() * t.element_size() for t in slot if t is not None)
                   for slot in self.slots)


class OnlineAdapter(nn.Module):
    """Wraps a copy of a `NeuralReceiver` and adapts it slot by slot.

    :input y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :input no: float, 0-d or [batch] float32
    :output llr: [batch, num_coded_bits] float32 (detection only; learning is `observe`)
    """

    requires_csi = False

    def __init__(self, receiver: NeuralReceiver, config: AdaptConfig | None = None):
        super().__init__()
        if not isinstance(receiver, NeuralReceiver):
            raise ValueError("OnlineAdapter needs a NeuralReceiver (it learns through the "
                             f"network's DMRS input), got {type(receiver).__name__}")
        self.config = c = config or AdaptConfig()
        self.link = receiver.link
        self.rx = copy.deepcopy(receiver).eval()  # the caller's receiver is never touched
        if c.params == "adapter":
            self._nets()[-1].add_adapter(c.adapter_rank)
        self._params = self._select(c.params)
        for p in self.rx.parameters():
            p.requires_grad_(False)
        for p in self._params:
            p.requires_grad_(True)
        self._anchor = [p.detach().clone() for p in self._params]
        self._fisher = [torch.zeros_like(p) for p in self._params]
        self._fisher_n = 0
        self.opt = torch.optim.Adam(self._params, lr=c.lr)
        self.sched = SGDER(self.opt, **c.sgd_er) if c.sgd_er is not None else None
        self.replay = ReplayBuffer(c.replay_slots) if c.replay_slots else None
        self.gen = torch.Generator().manual_seed(c.seed)
        # bookkeeping
        self.slot = 0
        self.updates = 0
        self.rollbacks = 0
        self.shifts = 0
        self.suspect_slots = 0
        self._clean_ratio: deque = deque(maxlen=64)
        self._comb = pilot_comb(self.rx.dmrs_values)  # what `dmrs_noise_ratio` reads
        self._fails: deque = deque(maxlen=c.guard_window)  # block errors of recent slots
        self._snapshot_bler = 0.0  # the pretrained weights are the first good snapshot
        self.history: list[float] = []  # pre-update DMRS loss per observed slot
        self._fast = self._slow = None
        self._updates_left = 0
        self._armed = True
        self._pause = 0
        self._epoch_losses: list[float] = []
        self._worse = 0
        self._snapshot = self._state()
        self._snapshot_loss: float | None = None

    # --- what moves -------------------------------------------------------------------------

    def _nets(self) -> list[nn.Module]:
        """The receiver's networks in the order they run: the first pass, then its data-aided
        passes; the last one writes the LLRs (directly, or as the final correction)."""
        return [self.rx.net, *self.rx.refine]

    def _select(self, which: str) -> list[nn.Parameter]:
        nets = self._nets()
        if which == "all":
            return [p for net in nets for p in net.parameters()]
        if which == "adapter":
            return list(nets[-1].adapter.parameters())
        norms = [m for net in nets for m in net.modules() if isinstance(m, nn.GroupNorm)]
        return ([p for m in norms for p in m.parameters()]
                + list(nets[-1].output_conv.parameters()))

    def _state(self) -> dict:
        return {"params": [p.detach().clone() for p in self._params],
                "opt": copy.deepcopy(self.opt.state_dict())}

    def _set_params(self, values: list[torch.Tensor]) -> None:
        """Write `values` (one tensor per adapted parameter, in order) into the weights."""
        with torch.no_grad():
            for p, v in zip(self._params, values, strict=True):
                p.copy_(v)

    def _restore(self, state: dict) -> None:
        self._set_params(state["params"])
        self.opt.load_state_dict(copy.deepcopy(state["opt"]))

    # --- detection ----------------------------------------------------------------------------

    def forward(self, y: torch.Tensor, no: float | torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.rx(y, no)

    # --- learning -----------------------------------------------------------------------------

    def dmrs_loss(self, y: torch.Tensor, no: torch.Tensor,
                  hidden: torch.Tensor | None = None) -> torch.Tensor:
        """BCE of the sign bits at hidden DMRS REs (`NeuralReceiver.hidden_dmrs_bce`).

        :param no: [batch] float32
        :param hidden: [batch, sym, sc] bool; a random `hide_fraction` of the DMRS if None
        """
        if hidden is None:
            hidden = self.rx.hide_dmrs(y.shape[0], self.config.hide_fraction, self.gen)
        grid = self.rx.grid_llr(y, no, dmrs_keep=self.rx.dmrs_mask & ~hidden)
        return self.rx.hidden_dmrs_bce(grid, hidden)

    def _anchor_penalty(self) -> torch.Tensor:
        c = self.config
        if c.anchor == "none":
            return torch.zeros(())
        total = torch.zeros(())
        for p, p0, f in zip(self._params, self._anchor, self._fisher, strict=True):
            w = f / max(self._fisher_n, 1) if c.anchor == "ewc" else 1.0
            total = total + (w * (p - p0).square()).sum()
        return c.anchor_weight * total

    def _should_update(self, loss: float | None) -> bool:
        """:param loss: this slot's monitor loss, None on slots the monitor skips"""
        c = self.config
        if self._pause > 0:
            self._pause -= 1
            return False
        if c.when == "every":
            return True
        if c.when == "schedule":
            return self.slot % c.period == 0
        if loss is None:  # 'shift' without a new measurement: go on with a burst under way
            if self._updates_left > 0:
                self._updates_left -= 1
                return True
            return False
        # 'shift': a fast average of the DMRS loss jumping above the slow one
        self._fast = loss if self._fast is None else 0.7 * self._fast + 0.3 * loss
        self._slow = loss if self._slow is None else 0.98 * self._slow + 0.02 * loss
        jumped = self._fast > c.shift_factor * self._slow
        if not jumped:
            self._armed = True  # hysteresis: a loss that stays high is not a new shift
        elif self._armed and self._updates_left == 0:
            self._armed = False
            self.shifts += 1
            self._updates_left = c.shift_updates
            if self.sched is not None:  # a new channel: restart the learning rate
                self.sched.restart()
        if self._updates_left > 0:
            self._updates_left -= 1
            return True
        return False

    def observe(self, y: torch.Tensor, no: float | torch.Tensor,
                c_hat: torch.Tensor | None = None, crc_ok: torch.Tensor | None = None,
                update: bool = True) -> dict:
        """Learn from slots just detected.

        `update=False` (a gate, `dmrx.explain.gate.GatedAdapter`, says the step would not
        help) skips only the optimizer step: monitoring, shift detection, guards, rollback and
        the replay memory go on as usual.

        :param y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
        :param c_hat: [batch, num_coded_bits] re-encoded decoded bits (for `crc_labels`)
        :param crc_ok: [batch] bool, which of them passed the CRC
        :return: {"dmrs_loss": pre-update loss (NaN on slots the monitor skips), "updated":
            bool, "rolled_back": bool}
        """
        c = self.config
        no = per_slot_no(check_receiver_inputs(self.link, y, no), y.shape[0])
        if crc_ok is not None and tuple(crc_ok.shape) != (y.shape[0],):
            raise ValueError(f"observe: crc_ok must be [{y.shape[0]}], got "
                             f"{tuple(crc_ok.shape)}")
        if c_hat is not None and (crc_ok is None or tuple(c_hat.shape) != (
                y.shape[0], self.link.num_coded_bits)):
            raise ValueError(f"observe: c_hat must be [{y.shape[0]}, "
                             f"{self.link.num_coded_bits}] and come with crc_ok, got "
                             f"{tuple(c_hat.shape)}")
        if crc_ok is not None:
            self._fails.extend((~crc_ok.bool()).tolist())
        monitored = (self.slot // y.shape[0]) % c.monitor_every == 0
        self.slot += y.shape[0]
        if c.guard:
            ratio = self.dmrs_noise_ratio(y, no)  # [batch]
            # relative to the recent clean level too: above ~20 dB the channel's curvature on
            # frequency-selective profiles lifts the clean ratio itself
            ref = max(1.0, statistics.median_low(self._clean_ratio) if self._clean_ratio else 1.0)
            suspect = ratio > c.guard_noise_ratio * ref
            self._clean_ratio.extend(ratio[~suspect].tolist())
            if bool(suspect.all()):
                self.suspect_slots += y.shape[0]
                return {"dmrs_loss": float("nan"), "updated": False, "rolled_back": False,
                        "suspect": True}
            if bool(suspect.any()):  # learn only from the clean ones
                keep = ~suspect
                self.suspect_slots += int(suspect.sum())
                y, no = y[keep], no[keep]
                if crc_ok is not None:
                    crc_ok = crc_ok[keep]
                if c_hat is not None:
                    c_hat = c_hat[keep]
        pre = float("nan")
        if monitored:
            # the monitor: the DMRS loss of the weights before this slot's update, on a slot
            # they never learned from; it drives shift detection and the guard
            hidden = self.rx.hide_dmrs(y.shape[0], c.hide_fraction, self.gen)
            with torch.no_grad():
                pre = self.dmrs_loss(y, no, hidden).item()
            self.history.append(pre)
            if c.anchor == "ewc" and self._fisher_n < c.fisher_slots:
                self._accumulate_fisher(self.dmrs_loss(y, no, hidden))
        updated = False
        if self._should_update(pre if monitored else None) and update:
            updated = self._update(y, no, c_hat if c.crc_labels else None, crc_ok)
            if updated and self.sched is not None and monitored:
                self._epoch_losses.append(pre)
                if len(self._epoch_losses) == c.sgd_er_epoch:
                    self.sched.step(sum(self._epoch_losses) / len(self._epoch_losses))
                    self._epoch_losses = []
        rolled = c.guard and (self._crc_guard()
                              or (monitored and self._guard(y, no, hidden, pre)))
        if self.replay is not None:
            self.replay.add(y, no, c_hat, crc_ok)
        return {"dmrs_loss": pre, "updated": updated, "rolled_back": rolled, "suspect": False}

    def dmrs_noise_ratio(self, y: torch.Tensor, no: torch.Tensor) -> torch.Tensor:
        """Noise variance seen on the DMRS (`dmrx.ofdm.pilot_noise`) over the noise variance
        `no` the receiver was given. Clean slots give about 1; a DMRS-targeted jammer adds its
        power on the pilots only and raises the ratio to (no + jammer) / no (about 30 for a
        0 dB jammer at 12 dB SNR).

        :param y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
        :param no: [batch] float32
        :return: [batch] float32
        """
        return pilot_noise(y, self._comb) / no.reshape(-1)

    def _batch(self, y, no, c_hat, crc_ok) -> tuple[torch.Tensor, torch.Tensor, list]:
        """This slot plus `replay_batch` replayed ones: y [n, ...], no [n], labels per slot."""
        ys, nos = [y], [no]
        labels = [c_hat[i].float() if c_hat is not None and bool(crc_ok[i]) else None
                  for i in range(y.shape[0])]
        if self.replay is not None and len(self.replay):
            for yr, nr, cr in self.replay.sample(self.config.replay_batch, self.gen):
                ys.append(yr)
                nos.append(nr)
                labels.append(None if cr is None or not self.config.crc_labels
                              else cr[0].float())
        return torch.cat(ys), torch.cat(nos), labels

    def _augment(self, y: torch.Tensor, no: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower each slot's SNR by U(0, snr_augment_db) dB with extra complex Gaussian noise."""
        drop_db = self.config.snr_augment_db * torch.rand(no.shape, generator=self.gen)
        no_aug = no * torch.pow(10.0, drop_db / 10.0)
        std = ((no_aug - no) / 2).sqrt().reshape(-1, *([1] * (y.dim() - 1)))
        noise = torch.complex(torch.randn(y.shape, generator=self.gen),
                              torch.randn(y.shape, generator=self.gen))
        return y + std * noise, no_aug

    def _update(self, y, no, c_hat, crc_ok) -> bool:
        """`steps_per_update` optimizer steps on the hidden-DMRS loss (and CRC labels) of this
        slot and replayed ones, each step with its own replay draw, hidden DMRS and noise; a
        step whose batch holds nothing to learn from is skipped. False when every step was."""
        steps = sum(self._step(y, no, c_hat, crc_ok)
                    for _ in range(self.config.steps_per_update))
        if steps:
            self.updates += 1
        return steps > 0

    def _step(self, y, no, c_hat, crc_ok) -> bool:
        """One optimizer step; False (no step) when the batch holds nothing to learn from."""
        c = self.config
        yb, nob, labels = self._batch(y, no, c_hat, crc_ok)
        lab = torch.tensor([v is not None for v in labels])
        if c.dmrs_weight == 0 and not bool(lab.any()):
            return False
        if c.snr_augment_db:
            yb, nob = self._augment(yb, nob)
        self.rx.train()
        if c.dmrs_weight > 0:
            hidden = self.rx.hide_dmrs(yb.shape[0], c.hide_fraction, self.gen)
            grid = self.rx.grid_llr(yb, nob, dmrs_keep=self.rx.dmrs_mask & ~hidden)
            loss = c.dmrs_weight * self.rx.hidden_dmrs_bce(grid, hidden)
        else:
            grid = self.rx.grid_llr(yb, nob)
            loss = torch.zeros(())
        if bool(lab.any()):
            target = torch.stack([v for v in labels if v is not None])
            loss = loss + F.binary_cross_entropy_with_logits(self.rx.data_llr(grid[lab]), target)
        loss = loss + self._anchor_penalty()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self._params, 1.0)
        self.opt.step()
        self.rx.eval()
        return True

    def _accumulate_fisher(self, loss: torch.Tensor) -> None:
        grads = torch.autograd.grad(loss, self._params, allow_unused=True)
        for f, g in zip(self._fisher, grads, strict=True):
            if g is not None:
                f += g.detach().square()
        self._fisher_n += 1

    def _guard(self, y, no, hidden, current_loss: float) -> bool:
        """Roll back if the weights have diverged from the last good snapshot.

        `current_loss` is the pre-update loss of the weights on this slot; the snapshot is
        scored on the same slot and hidden REs.
        """
        c = self.config
        finite = math.isfinite(current_loss) and all(
            bool(torch.isfinite(p).all()) for p in self._params)
        if not finite:
            return self.rollback()
        if len(self.history) % c.guard_every:  # every guard_every-th monitored slot
            return False
        live = self._state()
        self._restore(self._snapshot)
        with torch.no_grad():
            snap_loss = self.dmrs_loss(y, no, hidden).item()
        self._restore(live)
        if current_loss > snap_loss + c.guard_margin:
            self._worse += 1
            if self._worse >= c.guard_patience:
                return self.rollback()
            return False
        self._worse = 0
        recent = sorted(self.history[-200:])
        median = recent[len(recent) // 2]
        rate = self.recent_bler()
        steady = rate is None or rate <= self._snapshot_bler + c.guard_bler_rise / 2
        if current_loss <= c.guard_factor * median and steady:
            self._snapshot = live  # looks normal on the DMRS and on the blocks: a new fallback
            self._snapshot_loss = current_loss
            if rate is not None:
                self._snapshot_bler = rate
        return False

    def recent_bler(self) -> float | None:
        """Block error rate of the adapted receiver over the last `guard_window` slots (None
        until that many CRC outcomes have been observed)."""
        if len(self._fails) < self.config.guard_window:
            return None
        return sum(self._fails) / len(self._fails)

    def _crc_guard(self) -> bool:
        """Roll back when most recent blocks fail although the snapshot's did not.

        The hidden-DMRS loss can look normal while data detection has collapsed (a DMRS-only
        adapter on drift-default went to BLER 1.0 on TDL-E with a normal DMRS loss), so the
        decoder's verdict is the second divergence signal.
        """
        rate = self.recent_bler()
        if rate is None or rate <= self._snapshot_bler + self.config.guard_bler_rise:
            return False
        self._fails.clear()  # judge the restored weights on fresh slots
        return self.rollback()

    def rollback(self) -> bool:
        """Back to the last good weights; pause learning for `cooldown` slots."""
        self._restore(self._snapshot)
        self.rollbacks += 1
        self._worse = 0
        self._pause = self.config.cooldown
        return True

    def summary(self) -> dict:
        return {"variant": self.config.variant(), "updates": self.updates,
                "rollbacks": self.rollbacks, "shifts_detected": self.shifts,
                "suspect_slots": self.suspect_slots,
                "config": dataclasses.asdict(self.config)}


def check_savable(config: AdaptConfig) -> None:
    """:raises ValueError: a params='adapter' variant: its low-rank module is not part of the
        receiver's checkpoint format, so its adapted receiver cannot be saved"""
    if config.params == "adapter":
        raise ValueError(f"an adapter with params='adapter' ({config.variant()}) adds a "
                         "low-rank module the checkpoint format does not hold; to save the "
                         "adapted receiver adapt 'all' or 'norm-last'")


def save_adapted(adapter: OnlineAdapter, source: str | Path, out: str | Path,
                 provenance: dict | None = None) -> Path:
    """Write an adapter's current receiver as a checkpoint: the source checkpoint's config
    with an "adapted" entry (source, variant, its config, updates, rollbacks, and
    `provenance`, e.g. the schedule and seed it ran). A receiver adapted from an already
    adapted one keeps the earlier entry under "previous".

    :raises ValueError: an adapter with a low-rank adapter module (params="adapter"): its
        weights are not part of the receiver's checkpoint format
    :raises CheckpointError: `source` is not a readable checkpoint
    """
    check_savable(adapter.config)
    config = derived_config(read_config(source))
    entry = {"source": str(source), "variant": adapter.config.variant(),
             "config": dataclasses.asdict(adapter.config), "updates": adapter.updates,
             "rollbacks": adapter.rollbacks, **(provenance or {})}
    if "adapted" in config:
        entry["previous"] = config["adapted"]
    config["adapted"] = entry
    return save_checkpoint(out, adapter.rx, config)


# Named variants for the CLI and benchmarks: label source, what moves, how forgetting is
# limited, when. The 'crc' family learns from CRC-passed blocks (kept in a 64-slot replay memory,
# SNR-augmented) and uses the hidden-DMRS loss only to decide when to learn and to guard; the
# 'dmrs' family learns from the hidden DMRS alone (no decoder in the loop).
_CRC = AdaptConfig(params="all", lr=3e-4, dmrs_weight=0.0, crc_labels=True, replay_slots=64,
                   replay_batch=7, snr_augment_db=8.0)
_DMRS = AdaptConfig(params="all", lr=1e-4, replay_slots=64, replay_batch=7, snr_augment_db=8.0)
# half crc-lite's rate, for a start that needs little adapting (measured 1.04-1.10x detection:
# an update costs ~13 detections, and the guard and replay memory see every slot)
_CRC_SPARSE = dataclasses.replace(_CRC, lr=1e-3, when="schedule", period=16, monitor_every=16,
                                  replay_batch=3)
_CRC_SPARSE_SLOW = dataclasses.replace(_CRC_SPARSE, lr=1e-4)
VARIANTS: dict[str, AdaptConfig] = {
    "crc": _CRC,
    "crc-shift": dataclasses.replace(_CRC, when="shift", shift_updates=150),
    "crc-schedule": dataclasses.replace(_CRC, when="schedule", period=4),
    "crc-l2sp": dataclasses.replace(_CRC, anchor="l2sp", anchor_weight=0.1),
    "crc-ewc": dataclasses.replace(_CRC, anchor="ewc", anchor_weight=10.0),
    "crc-norm-last": dataclasses.replace(_CRC, params="norm-last", lr=3e-3),
    "crc-adapter": dataclasses.replace(_CRC, params="adapter", lr=3e-3),
    "crc-sgd-er": dataclasses.replace(_CRC, sgd_er={"patience": 3, "gamma": 0.9,
                                                    "max_lr_factor": 4}),
    "crc-noguard": dataclasses.replace(_CRC, guard=False),
    # amortized cost below detection: monitor and learn on every 8th slot, 4 slots per update
    "crc-lite": dataclasses.replace(_CRC, lr=1e-3, when="schedule", period=8, monitor_every=8,
                                    replay_batch=3),
    "crc-sparse": _CRC_SPARSE,
    # for a prior already close to the new channel (checkpoints/neural-ref-4prb-broad): Adam's
    # first steps move every weight by ~lr whatever the gradient, and at crc-sparse's 1e-3 six
    # updates on the old channel cost the broad prior 2 dB on the new one; a 10x smaller step,
    # or a pull back to the pretrained weights (L2-SP), keeps what the prior knows
    "crc-sparse-slow": _CRC_SPARSE_SLOW,
    "crc-sparse-l2sp": dataclasses.replace(_CRC_SPARSE, anchor="l2sp", anchor_weight=0.1),
    # crc-sparse-slow at half the rate (one update and one monitored slot per 32): the
    # per-update work is ~13 detections, so period 16 measured 1.04-1.10x detection; from
    # checkpoints/neural-ref-4prb-broad-long it keeps the prior (0.22 dB from the TDL-C oracle
    # at k=200) at 0.76-0.82x (benchmarks/results/adaptation-broad-long-seed*.json)
    "crc-sparse-slow-32": dataclasses.replace(_CRC_SPARSE_SLOW, period=32, monitor_every=32),
    "dmrs": _DMRS,
    "dmrs-crc": dataclasses.replace(_DMRS, lr=3e-4, crc_labels=True, dmrs_weight=0.3),
    "dmrs-norm-last": dataclasses.replace(_DMRS, params="norm-last"),
    "dmrs-adapter": dataclasses.replace(_DMRS, params="adapter", lr=1e-3),
    "dmrs-noguard": dataclasses.replace(_DMRS, guard=False),
}


def get_variant(name: str, **overrides) -> AdaptConfig:
    """:raises ValueError: unknown variant name"""
    if name not in VARIANTS:
        raise ValueError(f"unknown adaptation variant {name!r}: use one of {sorted(VARIANTS)}")
    return dataclasses.replace(VARIANTS[name], **overrides)
