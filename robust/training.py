"""Robust training of neural receivers: PGD/FGSM adversarial training, S2O, explanation-guided
adversarial training and jammer augmentation, as a per-step loss that `dmrx.nn.train` calls.

Methods (`RobustConfig.method`):

- 'pgd': adversarial training (Madry et al. 2018) on the received grid at a fixed PSR,
  mixed with the clean loss: L_AT = (1 - clean_weight) BCE(y + delta) + clean_weight BCE(y).
- 's2o': L_AT plus the second-order weight-statistics term of S2O (Jin et al., CVPR 2022),
  as the authors' code computes it (`s2o_targets`, `s2o_term` below).
- 'explain': L_AT plus `explain_weight` x the L1 distance between the receiver's saliency
  maps (normalised input-gradient energy per RE) on the clean and the perturbed slot, kept
  differentiable (create_graph=True), so the receiver learns to look at the same REs when
  attacked.
- 'jammer': no attack: a fraction of each batch's slots pass through a jammer drawn from
  `jammers` at a JSR drawn uniformly from `jsr_db`.

Any method can add jammer slots (`jammers` non-empty): they are jammed before the attack, so
e.g. S2O trains on PGD perturbations of DMRS-jammed slots too.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dmrx.ofdm import LinkConfig, field_error
from dmrx.robust.attacks import ATTACK_RES, PSR_DB_LIMITS, attack_support, fgsm, pgd, slot_power
from dmrx.robust.jammers import JAMMER_KINDS, make_jammer

METHODS = ("pgd", "s2o", "explain", "jammer")
TRAIN_ATTACKS = ("pgd", "fgsm")

@dataclass(frozen=True)
class RobustConfig:
    """:param method: one of `METHODS`
    :param attack: 'pgd' or 'fgsm' (the perturbation trained against; None for 'jammer')
    :param psr_db: per-slot perturbation-to-signal ratio of the attack, dB (relative to the whole
        slot's signal power, also when `attack_res` is 'dmrs')
    :param attack_res: one of `dmrx.robust.attacks.ATTACK_RES`: the REs the attack may perturb
    :param attack_steps: PGD steps during training
    :param clean_weight: weight of the clean BCE in L_AT (0: Madry's pure adversarial loss)
    :param s2o_weight: weight of S2O's term: (1 - w) L_AT + w (KL_clean + KL_adv) / 2; 0.1 is
        the authors' value for AT+S2O
    :param s2o_diag: probability mass the S2O target keeps on the true class (authors: 0.2)
    :param explain_weight: weight of the saliency-stability term ('explain')
    :param explain_slots: slots of each batch whose saliency is compared (double backprop is
        costly: a sub-batch estimates the term)
    :param jammers: jammer kinds mixed into training (required for 'jammer')
    :param jsr_db: (low, high) JSR range of those jammers, dB
    :param jam_fraction: fraction of each batch's slots that are jammed
    """

    method: str
    attack: str | None = "pgd"
    psr_db: float = -20.0
    attack_res: str = "grid"
    attack_steps: int = 3
    clean_weight: float = 0.5
    s2o_weight: float = 0.1
    s2o_diag: float = 0.2
    explain_weight: float = 1.0
    explain_slots: int = 8
    jammers: tuple[str, ...] = ()
    jsr_db: tuple[float, float] = (-10.0, 10.0)
    jam_fraction: float = 0.5

    def __post_init__(self) -> None:
        bad = functools.partial(field_error, self)
        if self.method not in METHODS:
            raise bad("method", f"one of {METHODS}")
        if self.method == "jammer":
            if self.attack is not None:
                raise bad("attack", "None for method 'jammer' (it trains on jammers only)")
            if not self.jammers:
                raise bad("jammers", "at least one jammer kind for method 'jammer'")
        elif self.attack not in TRAIN_ATTACKS:
            raise bad("attack", f"one of {TRAIN_ATTACKS} for method {self.method!r}")
        if self.attack_res not in ATTACK_RES:
            raise bad("attack_res", f"one of {ATTACK_RES}")
        lo, hi = PSR_DB_LIMITS
        if isinstance(self.psr_db, bool) or not (
                isinstance(self.psr_db, int | float) and math.isfinite(self.psr_db)
                and lo <= self.psr_db <= hi):
            raise bad("psr_db", f"a PSR in {lo:g}..{hi:g} dB")
        if isinstance(self.attack_steps, bool) or not isinstance(self.attack_steps, int) \
                or self.attack_steps < 1:
            raise bad("attack_steps", "a positive integer")
        for name in ("clean_weight", "s2o_weight", "jam_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise bad(name, "in [0, 1]")
        if not 0 < self.s2o_diag < 1:
            raise bad("s2o_diag", "in (0, 1)")
        if not (math.isfinite(self.explain_weight) and self.explain_weight >= 0):
            raise bad("explain_weight", ">= 0")
        if isinstance(self.explain_slots, bool) or not isinstance(self.explain_slots, int) \
                or self.explain_slots < 1:
            raise bad("explain_slots", "a positive integer")
        object.__setattr__(self, "jammers", tuple(self.jammers))
        if any(k not in JAMMER_KINDS for k in self.jammers):
            raise bad("jammers", f"kinds among {list(JAMMER_KINDS)}")
        try:
            jlo, jhi = (float(v) for v in self.jsr_db)
        except (TypeError, ValueError):
            jlo, jhi = 1.0, 0.0
        if not -50 <= jlo <= jhi <= 50:
            raise bad("jsr_db", "(low, high) with -50 <= low <= high <= 50 dB")
        object.__setattr__(self, "jsr_db", (jlo, jhi))

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["jammers"], d["jsr_db"] = list(self.jammers), list(self.jsr_db)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RobustConfig:
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "jammers" in d:
            d["jammers"] = tuple(d["jammers"])
        if "jsr_db" in d:
            d["jsr_db"] = tuple(d["jsr_db"])
        return cls(**d)


# --- S2O --------------------------------------------------------------------------------------

def bit_labels(num_bits: int) -> torch.Tensor:
    """[2^k, k] float32: row s holds the bits of class s, most significant first."""
    s = torch.arange(2 ** num_bits)
    return ((s[:, None] >> torch.arange(num_bits - 1, -1, -1)) & 1).float()


def symbol_logits(llr: torch.Tensor, num_bits: int) -> torch.Tensor:
    """Class logits of the 2^k bit patterns of each RE from its k bit LLRs.

    With llr = log P(c=1)/P(c=0) and independent bits (the BMD model the receiver is trained
    for), P(pattern s) is proportional to exp(sum_j (b_j(s) - 1/2) llr_j): these are logits
    whose softmax is exactly the product of the bits' Bernoulli probabilities, so the 2^k-class
    cross-entropy equals the sum of the k BCEs of the RE. Softmax does not fix the logits'
    offset but S2O's output correlation does; the offset -1/2 sum_j llr_j centres them (they
    sum to 0 over the classes), the one choice that favours no bit pattern: with the
    uncentred sum_j b_j(s) llr_j the all-zero pattern's logit would be 0 for every RE, its row
    of the correlation all zeros, and the authors' normalisation would divide by zero.

    :param llr: [batch, num_coded_bits] float32, k consecutive LLRs per data RE
    :return: [batch * num_data_res, 2^k] float32
    """
    return llr.reshape(-1, num_bits) @ (bit_labels(num_bits).to(llr) - 0.5).T


def symbol_classes(c: torch.Tensor, num_bits: int) -> torch.Tensor:
    """[batch, num_coded_bits] bits -> [batch * num_data_res] int64 class (bits MSB first)."""
    w = 2 ** torch.arange(num_bits - 1, -1, -1, device=c.device)
    return (c.reshape(-1, num_bits).long() * w).sum(1)


@torch.no_grad()
def s2o_targets(logits: torch.Tensor, labels: torch.Tensor, diag: float = 0.2) -> torch.Tensor:
    """S2O's soft targets from the second-order statistics of the output layer.

    The paper bounds the robust generalisation gap with the second-order statistics
    (correlation) of the weights' posterior; the authors' code (github.com/Alexkael/S2O,
    CIFAR10_AT_S2O/train_S2O.py at 04eb478, `train`: criterion line ~107, targets lines
    ~123-150, KL terms ~156-157, weighting ~159; the same block in CIFAR10_AWP_S2O and
    CIFAR10_MART_S2O) estimates the correlation of the last layer's weight rows by the
    batch's uncentred output correlation aa = sum_n z_n z_n^T (= W (sum_n h_n h_n^T) W^T for
    logits z = W h), then builds a target per class: aa <- -|aa|, minus each row's minimum,
    zero diagonal, rows scaled to sum 0.8, the diagonal set to 0.2; the target of a sample is
    the row of its label. No gradient flows through the targets (no_grad there too).

    Adaptation to a receiver (the deviation, and why): a receiver has no softmax classes but k
    bit LLRs per RE. Its classes are the 2^k bit patterns of an RE (`symbol_logits`, which
    reproduces the BMD likelihood exactly), and its samples are the data REs of the batch, so
    aa is the 2^k x 2^k output correlation over all data REs of all slots. A row whose
    off-diagonal sum is 0 (all entries equally correlated) gets a uniform off-diagonal, where
    the original would divide by zero.

    :param logits: [n, K] float32
    :param labels: [n] int64 in 0..K-1
    :param diag: mass on the true class (authors: 0.2; the off-diagonal gets 1 - diag = 0.8)
    :return: [n, K] float32, rows summing to 1
    """
    z = logits.detach()
    aa = -(z.T @ z).abs()
    aa = aa - aa.min(1, keepdim=True).values
    eye = torch.eye(aa.shape[0], dtype=torch.bool, device=aa.device)
    aa = aa.masked_fill(eye, 0.0)
    rows = aa.sum(1, keepdim=True)
    uniform = (~eye).to(aa.dtype) / (aa.shape[0] - 1)
    aa = torch.where(rows > 0, aa / rows.clamp_min(1e-30), uniform) * (1.0 - diag)
    aa = aa.masked_fill(eye, diag)
    return aa[labels]


def s2o_term(logits: torch.Tensor, labels: torch.Tensor, diag: float = 0.2) -> torch.Tensor:
    """KL(targets || softmax(logits)) summed over classes, averaged over samples: the authors'
    `(1.0 / yy.size()[0]) * criterion_kl(F.log_softmax(output, dim=1), yy)` with
    `nn.KLDivLoss(size_average=False)`.

    :param logits: [n, K] float32 (gradient flows through these)
    :param labels: [n] int64
    :return: 0-d float32
    """
    yy = s2o_targets(logits, labels, diag)
    return F.kl_div(F.log_softmax(logits, dim=1), yy, reduction="sum") / logits.shape[0]


# --- explanation-guided -----------------------------------------------------------------------

def saliency(receiver, y: torch.Tensor, no: torch.Tensor, c: torch.Tensor,
             create_graph: bool = True) -> torch.Tensor:
    """Input-gradient saliency of the receiver's log-likelihood of the true coded bits: the
    energy |d log P(c | y) / d y|^2 per RE, summed over rx antennas and (Re, Im), normalised
    to sum 1 per slot. Differentiable in the receiver's weights with create_graph=True.

    :param y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :return: [batch, num_ofdm_symbols, fft_size] float32
    """
    d = torch.zeros(*y.shape, 2, device=y.device, requires_grad=True)
    with torch.enable_grad():
        ll = -F.binary_cross_entropy_with_logits(
            receiver(y.detach() + torch.view_as_complex(d), no), c, reduction="sum")
        (g,) = torch.autograd.grad(ll, d, create_graph=create_graph)
    e = g.square().sum(dim=(1, 2, -1))  # [batch, sym, sc]
    return e / e.flatten(1).sum(1).clamp_min(1e-30).reshape(-1, 1, 1)


def saliency_shift(receiver, y: torch.Tensor, y_adv: torch.Tensor, no: torch.Tensor,
                   c: torch.Tensor) -> torch.Tensor:
    """Mean over slots of the L1 distance between clean and perturbed saliency maps (0..2).

    :param y, y_adv: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :return: 0-d float32, differentiable in the receiver's weights
    """
    s = saliency(receiver, y, no, c)
    s_adv = saliency(receiver, y_adv, no, c)
    return (s - s_adv).abs().flatten(1).sum(1).mean()


# --- the training step ------------------------------------------------------------------------

class RobustLoss:
    """The per-step loss `dmrx.nn.train` calls when `TrainConfig.robust` is set.

    :param cfg: the robust settings
    :param link: the trained link
    """

    def __init__(self, cfg: RobustConfig, link: LinkConfig):
        self.cfg, self.link = cfg, link
        self.support = attack_support(link, cfg.attack_res)  # the REs the attack may touch

    def jam(self, y: torch.Tensor, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Pass the first `jam_fraction` of the slots through a jammer of a random kind and JSR
        (drawn from torch's global generator, which the training step seeds)."""
        cfg = self.cfg
        n = int(round(cfg.jam_fraction * y.shape[0]))
        if not cfg.jammers or n == 0:
            return y
        kind = cfg.jammers[int(torch.randint(len(cfg.jammers), ()))]
        lo, hi = cfg.jsr_db
        jsr = lo + (hi - lo) * float(torch.rand(()))
        jammed = make_jammer(kind, self.link, jsr)(y[:n], x[:n], h[:n])
        return torch.cat([jammed, y[n:]])

    def __call__(self, rx, y: torch.Tensor, no: torch.Tensor, c: torch.Tensor,
                 x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:param rx: the receiver in training
        :param y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
        :param no: [batch] float32
        :param c: [batch, num_coded_bits] float32
        :param x: [batch, 1, 1, num_ofdm_symbols, fft_size] complex64 transmitted grid
        :param h: [batch, 1, num_rx_ant, 1, 1, num_ofdm_symbols, fft_size] complex64
        :return: (loss to minimise, the data BCE that is logged: on the perturbed/jammed slots)
        """
        cfg = self.cfg
        with torch.no_grad():
            y = self.jam(y, x, h)
        if cfg.method == "jammer":
            loss = F.binary_cross_entropy_with_logits(rx(y, no), c)
            return loss, loss
        signal = slot_power(h[:, :, :, 0, 0] * x[:, :, 0:1])
        if cfg.attack == "pgd":
            d = pgd(rx, y, no, c, cfg.psr_db, steps=cfg.attack_steps, signal_power=signal,
                    support=self.support)
        else:
            d = fgsm(rx, y, no, c, cfg.psr_db, signal_power=signal, support=self.support)
        rx.train()
        y_adv = (y + d).detach()
        llr_adv = rx(y_adv, no)
        bce_adv = F.binary_cross_entropy_with_logits(llr_adv, c)
        need_clean = cfg.clean_weight > 0 or cfg.method == "s2o"
        llr = rx(y, no) if need_clean else None
        loss = (1 - cfg.clean_weight) * bce_adv
        if cfg.clean_weight > 0:
            loss = loss + cfg.clean_weight * F.binary_cross_entropy_with_logits(llr, c)
        if cfg.method == "s2o":
            # the authors' 0.9 L_AT + 0.1 * 0.5 (KL + KL_adv), in units of the 2^k-class
            # cross-entropy (k x the mean BCE); divided by k to stay in BCE units
            k = self.link.num_bits_per_symbol
            labels = symbol_classes(c, k)
            kl = s2o_term(symbol_logits(llr, k), labels, cfg.s2o_diag)
            kl_adv = s2o_term(symbol_logits(llr_adv, k), labels, cfg.s2o_diag)
            loss = ((1 - cfg.s2o_weight) * k * loss
                    + cfg.s2o_weight * 0.5 * (kl + kl_adv)) / k
        elif cfg.method == "explain" and cfg.explain_weight > 0:
            m = min(cfg.explain_slots, y.shape[0])
            loss = loss + cfg.explain_weight * saliency_shift(rx, y[:m], y_adv[:m], no[:m],
                                                              c[:m])
        return loss, bce_adv
