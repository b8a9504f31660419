"""A metadata model gates the online adapter: it detects and monitors every slot, and updates
only where the model predicts that the update helps (`should_adapt`, `dmrx.explain.metadata`).

Per slot the gate computes the slot's `FEATURES` from what detection already produced (y, no,
the adapter's LLRs), asks the model for P(should_adapt), and passes `update=p >= threshold` to
`OnlineAdapter.observe`; guards, rollback and the replay memory run as without a gate. Each
decision is kept (`decisions`): slot, probability, whether it fired, and — when it fired — why,
in the model's own terms (`explanations`: a logistic model's top contributions, MEDIC's
prototypes, HiCEM's concepts). `summary()` adds the gate's counts and the leading reasons
(feature, prototype or concept) that most often explained a firing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from dmrx.explain.metadata import FEATURES, llr_features, slot_features
from dmrx.explain.metadata_fit import explanations
from dmrx.nn.adapt import OnlineAdapter


def feature_rows(link, y: torch.Tensor, no, llr: torch.Tensor,
                 features: Sequence[str] = FEATURES, quantized_input: bool = False) -> np.ndarray:
    """The model input of each slot, as the metadata tables hold it.

    :param y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64; llr [batch, bits]
    :return: [batch, len(features)] float32
    """
    f = slot_features(link, y, no) | llr_features(llr)
    f["quantized_input"] = torch.full((y.shape[0],), float(quantized_input))
    return torch.stack([f[n].float() for n in features], dim=1).numpy()


class GatedAdapter(nn.Module):
    """An `OnlineAdapter` whose updates a metadata model allows or not.

    :param adapter: the adapter (its own policy still decides on the slots the gate opens)
    :param model: anything with `predict_proba(X [n, F]) -> [n, 2]`, fitted on `features`
        of the metadata tables with the label 'should_adapt'
    :param threshold: update where P(should_adapt) >= threshold. A should_adapt model trained
        on imbalanced tables (6-11 % positive) rarely reaches 0.5: the gate judged on
        drift-default uses the label's positive rate in the training table ('base-rate'), with
        smoothing 0.1, attack 0.5 and debounce 5 (`dmrx adapt --gate`'s defaults,
        `dmrx.scenarios.metadata_cli.GATE_DEFAULTS`)
    :param smoothing: weight of the newest slot in the running average of P the gate compares
        with the threshold (1: each slot alone). The label is a property of the channel over
        the next tens of slots, so averaging over ~1/smoothing slots removes the per-slot
        jitter of the features without delaying a segment change by more than that.
    :param attack: weight of the newest slot when its P is above the running average (None:
        `smoothing`). An attack larger than `smoothing` is an AGC's fast attack and slow
        release: the gate follows P's upper envelope, opens within a few slots of a change to
        a channel where adapting pays, and closes only after ~1/smoothing slots of low P. On
        drift-default (benchmarks/gated_adaptation.py) a symmetric weight of 0.1 opened TDL-C
        5-22 slots late and TDL-E on a fifth of its slots; attack 0.5 opened TDL-C within 0-5
        slots and TDL-E on three quarters, for twice the updates.
    :param debounce: open only once the running average has been at or above the threshold
        for this many consecutive slots (1: at once); it still closes on the first slot below.
        It drops the short openings a noisy P makes on a channel the receiver already fits.
        On drift-default (benchmarks/gate_gap.py) the attack-0.5 gate's TDL-A updates, in runs
        of 1-9 slots, cost TDL-C block errors on one draw and not on another: replayed without
        them it lost 291 TDL-C blocks against 298 with them on seeds 50-61 (17 vs 10 discordant
        slots), 300 against 301 on seeds 38-49. With debounce 5 (seeds 62-85) the gate's
        TDL-C block errors equal those of an oracle closed on all of TDL-A (629 vs 628): the
        price of skipping TDL-A, in part the adapter's burn-in on the freshly trained prior.
        From a prior already burned in (`checkpoints/neural-ref-4prb-tdl-a-burnin`) the same
        gate lost no TDL-C blocks (573 vs always-adapt's 575, seeds 86-109) at 58 % fewer
        updates; how much a burn-in takes of that price varies with its draw (gate_gap.py).
        From another burn-in draw (seed 1001) it lost 10 (614 vs 604, seeds 110-133) at 59 %
        fewer updates, 0.05 dB from BLER pooled.
    :param explain: keep the model's reason for every slot the gate opened
    :input y, no: as `OnlineAdapter`; output llr [batch, num_coded_bits] float32
    """

    requires_csi = False

    def __init__(self, adapter: OnlineAdapter, model, *, threshold: float = 0.5,
                 smoothing: float = 1.0, attack: float | None = None, debounce: int = 1,
                 features: Sequence[str] = FEATURES, quantized_input: bool = False,
                 explain: bool = True, top_k: int = 3):
        super().__init__()
        if not isinstance(adapter, OnlineAdapter):
            raise ValueError(f"GatedAdapter wraps an OnlineAdapter, got {type(adapter).__name__}")
        if not hasattr(model, "predict_proba"):
            raise ValueError(f"GatedAdapter model {type(model).__name__} has no predict_proba")
        if not 0 <= threshold <= 1:
            raise ValueError(f"GatedAdapter threshold={threshold!r}: in [0, 1]")
        if not 0 < smoothing <= 1:
            raise ValueError(f"GatedAdapter smoothing={smoothing!r}: in (0, 1]")
        if attack is not None and not 0 < attack <= 1:
            raise ValueError(f"GatedAdapter attack={attack!r}: in (0, 1] or None")
        if not (isinstance(debounce, int) and debounce >= 1):
            raise ValueError(f"GatedAdapter debounce={debounce!r}: an int >= 1 (slots)")
        self.debounce, self._above = debounce, 0
        self.smoothing, self._p = float(smoothing), None
        self.attack = self.smoothing if attack is None else float(attack)
        self.adapter, self.model, self.threshold = adapter, model, float(threshold)
        self.features, self.quantized_input = tuple(features), quantized_input
        self.explain, self.top_k = explain, top_k
        self.link = adapter.link
        self.decisions: list[dict] = []
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def config(self):
        return self.adapter.config

    @property
    def updates(self) -> int:
        return self.adapter.updates

    def forward(self, y: torch.Tensor, no) -> torch.Tensor:
        llr = self.adapter(y, no)
        self._last = (y, llr)  # observe reads the features of this detection
        return llr

    def observe(self, y: torch.Tensor, no, c_hat: torch.Tensor | None = None,
                crc_ok: torch.Tensor | None = None) -> dict:
        """`OnlineAdapter.observe` with `update` set by the model; adds 'gate_p' and
        'gate_open' to its dict. With a batch of slots the gate opens on their mean
        probability."""
        if self._last is not None and self._last[0] is y:
            llr = self._last[1]
        else:
            llr = self.adapter(y, no)
        x = feature_rows(self.link, y, no, llr, self.features, self.quantized_input)
        p_slot = float(np.mean(self.model.predict_proba(x)[:, 1]))
        a = self.attack if self._p is not None and p_slot > self._p else self.smoothing
        self._p = p = p_slot if self._p is None else (1 - a) * self._p + a * p_slot
        self._above = self._above + 1 if p >= self.threshold else 0
        open_ = self._above >= self.debounce
        out = self.adapter.observe(y, no, c_hat=c_hat, crc_ok=crc_ok, update=open_)
        d = {"slot": self.adapter.slot - y.shape[0], "p": round(p, 4),
             "p_slot": round(p_slot, 4), "open": open_,
             "updated": bool(out["updated"])}
        if open_ and self.explain:
            d["why"], d["reason"] = explanations(self.model, x[:1], self.top_k)[0]
        self.decisions.append(d)
        self._last = None
        return out | {"gate_p": p, "gate_open": open_}

    def summary(self) -> dict:
        opened = [d for d in self.decisions if d["open"]]
        reasons = Counter()
        for d in opened:
            if d.get("reason"):
                reasons[d["reason"]] += 1
        return self.adapter.summary() | {"gate": {
            "model": getattr(self.model, "kind", type(self.model).__name__),
            "threshold": self.threshold, "smoothing": self.smoothing, "attack": self.attack,
            "debounce": self.debounce,
            "slots": len(self.decisions), "opened": len(opened),
            "open_rate": len(opened) / max(len(self.decisions), 1),
            "mean_p": float(np.mean([d["p"] for d in self.decisions])) if self.decisions
            else float("nan"),
            "leading_reasons": dict(reasons.most_common(5))}}
