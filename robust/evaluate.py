"""BLER and BCE of receivers under attack (vs PSR) or under a jammer (vs JSR), on the same slots.

Each point (PSR or JSR) draws its slots from a seed derived from (seed, kind, value), and every
receiver sees the very same slots; white-box attacks are computed against each receiver
separately (each is attacked through its own gradients). A receiver that needs perfect CSI is
attacked through `receiver(y, no, h=h)`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from dmrx.nn.checkpoint import atomic_write
from dmrx.ofdm import (
    Decoder,
    ErrorCounts,
    LinkConfig,
    Transmitter,
    count_errors,
    derive_seed,
    seed_everything,
)
from dmrx.robust.attacks import (
    ATTACKS,
    UniversalPerturbation,
    attack_support,
    check_attack,
    check_psr_db,
    perturb,
    slot_power,
    train_universal,
)
from dmrx.robust.jammers import JAMMER_KINDS, make_jammer
from dmrx.scenarios.catalog import Scenario, make_channel
from dmrx.scenarios.simulate import check_snr_db


@dataclass
class RobustPoint:
    receiver: str
    threat: str      # 'pgd', 'fgsm', 'universal', 'none' or a jammer kind
    level_db: float  # PSR (attacks) or JSR (jammers), dB; nan for 'none'
    counts: ErrorCounts
    bce_sum: float = 0.0

    def as_dict(self) -> dict:
        c = self.counts
        level = None if self.level_db != self.level_db else self.level_db  # nan: strict JSON
        return {"receiver": self.receiver, "threat": self.threat, "level_db": level,
                "slots": c.blocks, "block_errors": c.block_errors, "bler": c.bler,
                "ber": c.ber, "coded_ber": c.coded_ber,
                "bce": self.bce_sum / max(c.blocks, 1)}


@dataclass
class RobustResult:
    link: LinkConfig
    scenario: Scenario
    snr_db: float
    seed: int
    points: list[RobustPoint] = field(default_factory=list)
    elapsed_s: float = 0.0
    attack_res: str = "grid"

    def as_dict(self) -> dict:
        return {"link": self.link.as_dict(), "scenario": self.scenario.as_dict(),
                "snr_db": self.snr_db, "seed": self.seed, "attack_res": self.attack_res,
                "psr_convention": "per slot: sum|delta|^2 / sum|h x|^2 over all REs of the "
                                  "slot (dmrx.robust.attacks)",
                "points": [p.as_dict() for p in self.points], "elapsed_s": self.elapsed_s}

    def write_json(self, path: str | Path) -> None:
        text = json.dumps(self.as_dict(), indent=2)
        atomic_write(Path(path), lambda p: p.write_text(text))

    def table(self) -> str:
        head = f"{'receiver':<16} {'threat':<12} {'dB':>7} {'slots':>6} {'BLER':>8} {'BCE':>8}"
        rows = [head, "-" * len(head)]
        for p in self.points:
            d = p.as_dict()
            level = f"{'-':>7}" if d["level_db"] is None else f"{p.level_db:>7.2f}"
            rows.append(f"{p.receiver:<16} {p.threat:<12} {level} {d['slots']:>6d} "
                        f"{d['bler']:>8.4f} {d['bce']:>8.4f}")
        return "\n".join(rows)


def _call(rx, h):
    if getattr(rx, "requires_csi", False):
        return lambda y, no: rx(y, no, h=h)
    return rx


def _slots(tx, channel, n, no):
    with torch.no_grad():
        s = tx(n)
        y, h = channel(s.x, no)
    return s, y, h


def universal_for(link: LinkConfig, scenario: Scenario, receiver, psr_db: float, snr_db: float,
                  *, iterations: int = 40, batch_size: int = 32,
                  seed: int = 0) -> UniversalPerturbation:
    """A universal perturbation learned against `receiver` on slots of `scenario` at `snr_db`
    (drawn from seeds of their own, not those of the evaluation)."""
    tx, channel = Transmitter(link), make_channel(link, scenario)
    no = 10.0 ** (-snr_db / 10.0)
    last_h: dict = {}

    def slots(i: int):
        seed_everything(derive_seed(seed, "universal-train", i))
        s, y, h = _slots(tx, channel, batch_size, no)
        last_h["h"] = h  # a perfect-CSI receiver is attacked with these slots' channel
        return y, no, s.c, slot_power(h[:, :, :, 0, 0] * s.x[:, :, 0:1])

    def rx(y, n):
        return _call(receiver, last_h["h"])(y, n)

    return train_universal(rx, slots, psr_db, iterations=iterations,
                           generator=torch.Generator().manual_seed(seed))


def evaluate(link: LinkConfig, scenario: Scenario, receivers: Mapping[str, Callable],
             threats: Sequence[tuple[str, float | None]], snr_db: float, num_slots: int, *,
             batch_size: int = 50, seed: int = 0, pgd_steps: int = 10,
             universal: Mapping[str, UniversalPerturbation] | None = None,
             attack_res: str = "grid", progress: bool = True) -> RobustResult:
    """BLER and mean BCE per (receiver, threat, level) on shared slots.

    :param receivers: name -> receiver(y, no) -> llr (classic, neural or perfect-CSI)
    :param threats: (threat, level_db) pairs: ('none', None); an attack of
        `dmrx.robust.attacks.ATTACKS` with its PSR; or a jammer kind of
        `dmrx.robust.JAMMER_KINDS` with its JSR (built by `make_jammer`)
    :param snr_db: Es/N0 per data RE of every point, dB
    :param universal: receiver name -> its universal perturbation (needed for 'universal')
    :param attack_res: REs FGSM / PGD may perturb: 'grid' (all) or 'dmrs' (a pilot-targeted
        attack, the budget still relative to the whole slot's signal power)
    :raises ValueError: bad SNR, PSR, slot count, attack_res or an unknown threat
    """
    support = attack_support(link, attack_res)
    check_snr_db([snr_db])
    if isinstance(num_slots, bool) or not isinstance(num_slots, int) or num_slots < 1:
        raise ValueError(f"num_slots must be a positive integer, got {num_slots!r}")
    attacks_or_jammers = []
    for threat, level in threats:
        if threat == "none":
            attacks_or_jammers.append((threat, float("nan")))
        elif threat in ATTACKS:
            attacks_or_jammers.append((check_attack(threat), check_psr_db(level)))
            if threat == "universal" and (universal is None
                                          or any(n not in universal for n in receivers)):
                raise ValueError("the 'universal' attack needs a pattern for every receiver")
        elif threat in JAMMER_KINDS:
            attacks_or_jammers.append((threat, float(level)))
        else:
            raise ValueError(f"unknown threat {threat!r}: 'none', an attack of "
                             f"{list(ATTACKS)} or a jammer of {list(JAMMER_KINDS)}")
    tx, channel, decoder = Transmitter(link), make_channel(link, scenario), Decoder(link)
    no = 10.0 ** (-snr_db / 10.0)
    result = RobustResult(link, scenario, float(snr_db), seed, attack_res=attack_res)
    t0 = time.perf_counter()
    bar = tqdm(total=num_slots * len(attacks_or_jammers), unit="slot", disable=not progress,
               desc=f"{link.name} {scenario.name} {snr_db:g} dB")
    for threat, level in attacks_or_jammers:
        point_seed = derive_seed(seed, "robust", threat, level if level == level else "none")
        seed_everything(point_seed)
        totals = {n: ErrorCounts() for n in receivers}
        bce = dict.fromkeys(receivers, 0.0)
        done = 0
        while done < num_slots:
            n = min(batch_size, num_slots - done)
            s, y, h = _slots(tx, channel, n, no)
            if threat in JAMMER_KINDS:
                with torch.no_grad():
                    y = make_jammer(threat, link, level)(y, s.x, h)
            sig = slot_power(h[:, :, :, 0, 0] * s.x[:, :, 0:1])
            for i, (name, rx) in enumerate(receivers.items()):
                f = _call(rx, h)
                y_in = y
                if threat in ("fgsm", "pgd", "universal"):
                    gen = torch.Generator().manual_seed(derive_seed(point_seed, done, i))
                    y_in = perturb(threat, f, y, no, s.c, level, signal_power=sig,
                                   universal=(universal or {}).get(name), steps=pgd_steps,
                                   generator=gen,
                                   support=None if threat == "universal" else support)
                with torch.no_grad():
                    llr = f(y_in, no)
                    bce[name] += F.binary_cross_entropy_with_logits(
                        llr, s.c, reduction="none").mean(1).sum().item()
                    b_hat, crc_ok = decoder(llr)
                    totals[name] += count_errors(s.b, b_hat, crc_ok, s.c, llr)
            done += n
            bar.update(n)
        result.points.extend(RobustPoint(name, threat, level, totals[name], bce[name])
                             for name in receivers)
    bar.close()
    result.elapsed_s = time.perf_counter() - t0
    return result
