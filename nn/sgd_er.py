"""SGD-ER: escalating learning-rate restarts on convergence.

After Varshney, Girdzijauskas, Vandikas, Vulgarakis Feljan, "When to restart? Exploring
escalating restarts on convergence" (arXiv 2603.04117): the learning rate decays within a cycle;
when the monitored loss stagnates (no relative improvement larger than `min_delta` for
`patience` epochs) the run has converged and restarts with an escalated rate
eta_k = (k + 1) * eta_0 (linear escalation; k = restart count), keeping the parameters.

What we could read of the paper gives the escalation rule, the decay types (exponential or
linear) and patience-based plateau detection on a validation loss; it does not give the exact
threshold, decay constants or what happens to momentum. Those are parameters here, with the
defaults documented, and momentum is kept (nothing but the learning rate changes at a restart).
In dmrx the monitored loss is the mean training BCE on freshly drawn slots, which is an unbiased
validation estimate because no slot is ever seen twice.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class SGDER(LRScheduler):
    """Scheduler with the `ReduceLROnPlateau` calling convention: `step(metric)` once per epoch.

    :param optimizer: any torch optimizer; its initial lr(s) are eta_0
    :param patience: epochs without improvement that mean "converged"
    :param min_delta: relative improvement that counts (metric < best * (1 - min_delta))
    :param decay: 'exp' (lr = eta_k * gamma^t) or 'linear' (lr = eta_k * max(floor, 1 - t/T))
        within a cycle, t = epochs since the cycle began
    :param gamma: per-epoch factor of the exponential decay
    :param decay_epochs: T of the linear decay
    :param min_lr_factor: the decay never goes below eta_k * min_lr_factor
    :param escalation: lr increment per restart as a multiple of eta_0 (1.0 = paper's (k+1) eta_0)
    :param max_lr_factor: cap of eta_k as a multiple of eta_0
    :param max_restarts: restarts allowed (None: unlimited); after the last one the lr only
        decays
    """

    def __init__(self, optimizer: Optimizer, *, patience: int = 5, min_delta: float = 1e-3,
                 decay: str = "exp", gamma: float = 0.95, decay_epochs: int = 50,
                 min_lr_factor: float = 0.01, escalation: float = 1.0,
                 max_lr_factor: float = 10.0, max_restarts: int | None = None,
                 last_epoch: int = -1):
        if patience < 1:
            raise ValueError(f"SGDER patience={patience} is not allowed: >= 1 epoch")
        if not 0 <= min_delta < 1:
            raise ValueError(f"SGDER min_delta={min_delta} is not allowed: [0, 1)")
        if decay not in ("exp", "linear"):
            raise ValueError(f"SGDER decay={decay!r} is not allowed: 'exp' or 'linear'")
        if not 0 < gamma <= 1:
            raise ValueError(f"SGDER gamma={gamma} is not allowed: (0, 1]")
        if decay_epochs < 1:
            raise ValueError(f"SGDER decay_epochs={decay_epochs} is not allowed: >= 1")
        if escalation < 0 or max_lr_factor < 1 or not 0 <= min_lr_factor <= 1:
            raise ValueError("SGDER needs escalation >= 0, max_lr_factor >= 1 and "
                             "0 <= min_lr_factor <= 1")
        self.patience, self.min_delta = patience, min_delta
        self.decay, self.gamma, self.decay_epochs = decay, gamma, decay_epochs
        self.min_lr_factor, self.escalation = min_lr_factor, escalation
        self.max_lr_factor, self.max_restarts = max_lr_factor, max_restarts
        self.restarts = 0  # k
        self.cycle_epoch = 0  # t
        self.best = math.inf
        self.wait = 0
        self.restart_epochs: list[int] = []  # epochs at which a restart happened
        super().__init__(optimizer, last_epoch)

    def peak_factor(self) -> float:
        """eta_k / eta_0 of the current cycle."""
        return min(1.0 + self.escalation * self.restarts, self.max_lr_factor)

    def _decay_factor(self) -> float:
        t = self.cycle_epoch
        f = self.gamma**t if self.decay == "exp" else 1.0 - t / self.decay_epochs
        return max(f, self.min_lr_factor)

    def get_lr(self) -> list[float]:
        f = self.peak_factor() * self._decay_factor()
        return [base * f for base in self.base_lrs]

    def step(self, metric: float | None = None) -> None:  # type: ignore[override]
        """End of an epoch whose monitored loss was `metric` (None only at construction)."""
        if metric is not None:
            metric = float(metric)
            if not math.isfinite(metric):
                raise ValueError(f"SGDER.step got a non-finite metric {metric}")
            if metric < self.best * (1.0 - self.min_delta):
                self.best, self.wait = metric, 0
            else:
                self.wait += 1
            self.cycle_epoch += 1
            if self.wait >= self.patience and self._can_restart():
                # The paper keeps the parameters; the new cycle starts its own best.
                self._begin_cycle(best=metric)
        super().step()

    def _can_restart(self) -> bool:
        return self.max_restarts is None or self.restarts < self.max_restarts

    def _begin_cycle(self, best: float) -> None:
        self.restarts += 1
        self.cycle_epoch = 0
        self.wait = 0
        self.best = best
        self.restart_epochs.append(self.last_epoch + 1)

    def restart(self) -> bool:
        """Restart now, at the escalated rate, as on convergence: for a caller that knows the
        data changed (the online adapter on a detected channel shift). The new rate applies
        from the next epoch.

        :return: False (and nothing changes) once `max_restarts` are used up
        """
        if not self._can_restart():
            return False
        self._begin_cycle(best=math.inf)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]
        return True

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}
