"""Adversarial perturbations of the received grid under a power budget: FGM/FGSM, PGD and a
universal (input-agnostic) perturbation — what a jammer that knows the receiver could send.

Power budget. The perturbation-to-signal ratio of one slot is

    PSR = sum |delta|^2 / sum |s|^2        (PSR_dB = 10 log10 PSR)

with both sums over every RE of that slot's grid (all rx antennas, OFDM symbols and
subcarriers, DMRS and empty REs included), `delta` the complex perturbation added to `y` and `s`
the noise-free received signal h x when the caller gives its power (`signal_power`), else the
received grid `y` itself (what an attacker observes; at 12 dB SNR the two differ by 0.27 dB).
Every attack here spends its budget *exactly*, per slot: ||delta||^2 = PSR * ||s||^2, like a
jammer at a fixed JSR (`dmrx.robust.jammers` uses the same per-slot convention over its REs).

Target. The attacker maximises the receiver's binary cross-entropy on the true coded bits
(`llr` is log P(c=1)/P(c=0)), i.e. it minimises the bit-metric-decoding rate the LDPC decoder
works with. The perturbation is handled as a real tensor [..., 2] (Re, Im), so the gradient
and the L2 geometry are those of R^2n, unambiguous for complex y.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from dmrx.ofdm import LinkConfig
from dmrx.ofdm.dmrs import dmrs_mask

ATTACKS = ("fgsm", "pgd", "universal")
PSR_DB_LIMITS = (-60.0, 20.0)
#: the REs FGSM / PGD may perturb: every RE, or only the DMRS REs (a pilot-targeted adversary,
#: the worst case of the DMRS jammer at the same power)
ATTACK_RES = ("grid", "dmrs")

Receiver = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_psr_db(psr_db: float) -> float:
    """:raises ValueError: not a finite number within -60..20 dB"""
    lo, hi = PSR_DB_LIMITS
    try:
        v = float(psr_db)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(psr_db, bool) or not (math.isfinite(v) and lo <= v <= hi):
        raise ValueError(f"psr_db={psr_db!r} is not allowed: a PSR in {lo:g}..{hi:g} dB")
    return v


def check_attack(name: str) -> str:
    """:raises ValueError: not one of `ATTACKS`"""
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}: use one of {list(ATTACKS)}")
    return name


def parse_psr_db(text: str) -> list[float]:
    """'-25:-10:5' -> [-25, -20, -15, -10] (stop inclusive); '-20' -> [-20].

    :raises ValueError: not numbers, step <= 0, backwards, or outside -60..20 dB
    """
    try:
        nums = [float(p) for p in text.split(":")]
    except ValueError:
        raise ValueError(f"--psr-db {text!r}: expected 'start:stop:step' or one value in "
                         "dB") from None
    if len(nums) == 3:
        start, stop, step = nums
        if step <= 0 or start > stop:
            raise ValueError(f"--psr-db {text!r}: need step > 0 and start <= stop")
        n = int(math.floor((stop - start) / step + 1e-9)) + 1
        nums = [round(start + i * step, 10) for i in range(n)]
    elif len(nums) != 1:
        raise ValueError(f"--psr-db {text!r}: expected 'start:stop:step' or one value")
    return [check_psr_db(v) for v in nums]


def slot_power(grid: torch.Tensor) -> torch.Tensor:
    """Sum of |grid|^2 per slot.

    :param grid: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :return: [batch] float32
    """
    return grid.abs().square().flatten(1).sum(1)


def budget_norm(y: torch.Tensor, psr_db: float,
                signal_power: torch.Tensor | None = None) -> torch.Tensor:
    """The L2 norm a perturbation of each slot must have: sqrt(PSR * sum|s|^2).

    :param y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :param signal_power: [batch] float32 sum |h x|^2 per slot; None: that of `y`
    :return: [batch] float32
    """
    p = slot_power(y.detach()) if signal_power is None else signal_power.detach()
    return torch.sqrt(p * 10.0 ** (check_psr_db(psr_db) / 10.0))


def _to_norm(d: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
    """Scale each slot of the real perturbation d [batch, ..., 2] to L2 norm `norm` [batch]."""
    n = d.flatten(1).norm(dim=1).clamp_min(1e-30)
    return d * (norm / n).reshape(-1, *([1] * (d.dim() - 1)))


def _project_ball(d: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
    n = d.flatten(1).norm(dim=1).clamp_min(1e-30)
    return d * torch.clamp(norm / n, max=1.0).reshape(-1, *([1] * (d.dim() - 1)))


def attack_loss(receiver: Receiver, y: torch.Tensor, no: torch.Tensor | float,
                c: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """The attacker's objective: BCE of `receiver(y, no)` against the coded bits.

    :param c: [batch, num_coded_bits] float32 in {0, 1}
    :param reduction: 'mean' (a scalar) or 'slot' ([batch] means per slot)
    """
    bce = F.binary_cross_entropy_with_logits(receiver(y, no), c, reduction="none")
    return bce.mean() if reduction == "mean" else bce.mean(1)


def _grad(receiver: Receiver, y: torch.Tensor, d: torch.Tensor, no, c) -> torch.Tensor:
    d = d.detach().requires_grad_(True)
    with torch.enable_grad():
        # summed over slots, so each slot's gradient is that of its own loss
        loss = attack_loss(receiver, y + torch.view_as_complex(d), no, c, "slot").sum()
        (g,) = torch.autograd.grad(loss, d)
    return g


def _with_eval(receiver):
    """Attacks see the receiver as it is deployed (eval mode); returns the mode to restore."""
    was = getattr(receiver, "training", False)
    if isinstance(receiver, torch.nn.Module):
        receiver.eval()
    return was


def attack_support(link: LinkConfig, attack_res: str) -> torch.Tensor | None:
    """The `support` of `fgsm` / `pgd` for one of `ATTACK_RES` (None: every RE).

    :return: [num_ofdm_symbols, fft_size] bool, or None
    :raises ValueError: attack_res not in `ATTACK_RES`
    """
    if attack_res not in ATTACK_RES:
        raise ValueError(f"attack_res={attack_res!r} is not allowed: one of {ATTACK_RES}")
    return dmrs_mask(link) if attack_res == "dmrs" else None


def _support(support: torch.Tensor | None, y: torch.Tensor) -> torch.Tensor | None:
    """[num_ofdm_symbols, fft_size] bool -> a float mask broadcast over [batch, 1, ant, sym, sc,
    2] (None: every RE)."""
    if support is None:
        return None
    if support.shape != y.shape[-2:] or support.dtype != torch.bool:
        raise ValueError(f"attack support must be a bool mask [num_ofdm_symbols, fft_size] = "
                         f"{list(y.shape[-2:])}, got {support.dtype} {list(support.shape)}")
    if not bool(support.any()):
        raise ValueError("attack support is empty: the attacker may touch no RE")
    return support.to(y.device, torch.float32)[..., None]


def fgsm(receiver: Receiver, y: torch.Tensor, no: torch.Tensor | float, c: torch.Tensor,
         psr_db: float, *, signal_power: torch.Tensor | None = None,
         support: torch.Tensor | None = None) -> torch.Tensor:
    """One L2 fast-gradient step (FGM, the L2 form of FGSM): delta = eps g / ||g|| per slot.

    :param y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64 clean received grid
    :param no: float or [batch] float32 noise variance (what the receiver is told)
    :param c: [batch, num_coded_bits] float32 true coded bits
    :param psr_db: per-slot perturbation-to-signal ratio, dB (module docstring)
    :param signal_power: [batch] float32 sum |h x|^2 per slot; None: that of `y`
    :param support: [num_ofdm_symbols, fft_size] bool, the REs the attacker may perturb (e.g.
        `dmrs_mask(link)`: a pilot-targeted attack); None: every RE. The budget stays PSR x
        the whole slot's signal power, spent on these REs only
    :return: delta, same shape and dtype as y, with ||delta||^2 = PSR * signal power per slot
    :raises ValueError: PSR out of -60..20 dB, a support of the wrong shape or empty
    """
    norm = budget_norm(y, psr_db, signal_power)
    m = _support(support, y)
    was = _with_eval(receiver)
    try:
        g = _grad(receiver, y.detach(), torch.zeros(*y.shape, 2, device=y.device), no, c)
    finally:
        if isinstance(receiver, torch.nn.Module):
            receiver.train(was)
    if m is not None:
        g = g * m
    return torch.view_as_complex(_to_norm(g, norm).contiguous())


def pgd(receiver: Receiver, y: torch.Tensor, no: torch.Tensor | float, c: torch.Tensor,
        psr_db: float, *, steps: int = 10, step_size: float = 2.5,
        signal_power: torch.Tensor | None = None, random_start: bool = True,
        generator: torch.Generator | None = None,
        support: torch.Tensor | None = None) -> torch.Tensor:
    """Projected gradient ascent on the BCE within the per-slot L2 ball (Madry et al. 2018).

    Each step moves `step_size * eps / steps` along the normalised gradient and projects back
    onto the ball ||delta|| <= eps; the result is scaled onto the sphere ||delta|| = eps (the
    loss grows with the power spent, and an attack at a given PSR spends it all).

    :param steps: gradient steps (>= 1)
    :param step_size: step length as a multiple of eps / steps (2.5: Madry's choice)
    :param random_start: start from a random point of the ball, drawn from `generator`
    :param generator: torch.Generator for the random start; the same seed, the same delta
    :param support: [num_ofdm_symbols, fft_size] bool, the REs the attacker may perturb (as in
        `fgsm`); None: every RE
    :return: delta [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64 with
        ||delta||^2 = PSR * signal power per slot, zero outside `support`
    :raises ValueError: PSR out of range, steps < 1, a support of the wrong shape or empty
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"pgd steps={steps!r} is not allowed: a positive integer")
    norm = budget_norm(y, psr_db, signal_power)
    m = _support(support, y)
    y = y.detach()
    shape = (*y.shape, 2)
    if random_start:
        d = torch.randn(shape, generator=generator).to(y.device)
        u = torch.rand(y.shape[0], generator=generator).to(y.device)
        dim = d[0].numel() if m is None else int(m.sum()) * 2 * y.shape[1] * y.shape[2]
        if m is not None:
            d = d * m
        d = _to_norm(d, norm * u.pow(1.0 / dim))  # uniform in the ball (of the support)
    else:
        d = torch.zeros(shape, device=y.device)
    alpha = step_size * norm / steps
    was = _with_eval(receiver)
    try:
        for _ in range(steps):
            g = _grad(receiver, y, d, no, c)
            if m is not None:
                g = g * m
            d = _project_ball(d + _to_norm(g, alpha), norm)
    finally:
        if isinstance(receiver, torch.nn.Module):
            receiver.train(was)
    return torch.view_as_complex(_to_norm(d, norm).contiguous())


class UniversalPerturbation(torch.nn.Module):
    """One perturbation pattern for every slot (input-agnostic, so a physical jammer can send it
    without seeing the slot), scaled per slot to the PSR.

    Applied to a slot, the pattern `u` is scaled so that ||delta||^2 = PSR * signal power of that
    slot: the budget is as exact as PGD's, and only the shape of delta is shared.

    :ivar pattern: [1, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64, unit power per RE
    :input y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :output delta: same shape, ||delta||^2 = PSR * signal power per slot
    """

    def __init__(self, pattern: torch.Tensor, psr_db: float):
        super().__init__()
        if pattern.dim() != 5 or pattern.shape[0] != 1 or not pattern.is_complex():
            raise ValueError("UniversalPerturbation pattern must be complex [1, 1, num_rx_ant, "
                             f"num_ofdm_symbols, fft_size], got {list(pattern.shape)}")
        p = pattern.detach().to(torch.complex64)
        self.register_buffer("pattern", p / p.abs().square().mean().sqrt().clamp_min(1e-30))
        self.psr_db = check_psr_db(psr_db)

    def forward(self, y: torch.Tensor, signal_power: torch.Tensor | None = None,
                psr_db: float | None = None) -> torch.Tensor:
        norm = budget_norm(y, self.psr_db if psr_db is None else psr_db, signal_power)
        u = torch.view_as_real(self.pattern.expand(y.shape[0], *self.pattern.shape[1:]))
        return torch.view_as_complex(_to_norm(u, norm).contiguous())

    def save(self, path: str | Path) -> None:
        """safetensors: the pattern as (Re, Im) float32 and the PSR it was trained for."""
        from safetensors.torch import save_file

        save_file({"pattern": torch.view_as_real(self.pattern).contiguous()}, str(path),
                  metadata={"psr_db": repr(self.psr_db)})

    @classmethod
    def load(cls, path: str | Path) -> UniversalPerturbation:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            pattern = torch.view_as_complex(f.get_tensor("pattern").contiguous())
            psr_db = float(f.metadata()["psr_db"])
        return cls(pattern, psr_db)


def train_universal(receiver: Receiver, slots: Callable[[int], tuple], psr_db: float, *,
                    iterations: int = 50, lr: float = 0.1,
                    generator: torch.Generator | None = None,
                    progress: bool = False) -> UniversalPerturbation:
    """Learn a universal perturbation by stochastic projected gradient ascent over many slots
    (the SGD form of Moosavi-Dezfooli et al. 2017, as Sadeghi & Larsson 2019 use it against
    modulation classifiers): the pattern moves along the normalised gradient of the BCE summed
    over a fresh batch of slots each iteration, then back to unit power per RE.

    :param slots: `slots(i)` -> (y, no, c, signal_power or None) for iteration i (fresh slots;
        the caller seeds them)
    :param iterations: gradient steps, each over one batch from `slots`
    :param lr: step length relative to the pattern's norm
    :param generator: torch.Generator of the random initial pattern
    :return: the perturbation, applied at `psr_db`
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations={iterations!r} is not allowed: a positive integer")
    check_psr_db(psr_db)
    y0 = slots(0)[0]
    u = torch.randn((1, *y0.shape[1:], 2), generator=generator).to(y0.device)
    was = _with_eval(receiver)
    try:
        for i in range(iterations):
            y, no, c, sp = slots(i)
            up = UniversalPerturbation(torch.view_as_complex(u.contiguous()), psr_db)
            u = torch.view_as_real(up.pattern).detach().requires_grad_(True)
            with torch.enable_grad():
                norm = budget_norm(y, psr_db, sp)
                scale = (norm / u.flatten().norm()).reshape(-1, 1, 1, 1, 1, 1)
                delta = torch.view_as_complex((u * scale).contiguous())
                loss = attack_loss(receiver, y.detach() + delta, no, c)
                (g,) = torch.autograd.grad(loss, u)
            u = (u + lr * u.norm() * g / g.norm().clamp_min(1e-30)).detach()
    finally:
        if isinstance(receiver, torch.nn.Module):
            receiver.train(was)
    return UniversalPerturbation(torch.view_as_complex(u.contiguous()), psr_db)


def perturb(attack: str, receiver: Receiver, y: torch.Tensor, no, c: torch.Tensor,
            psr_db: float, *, signal_power: torch.Tensor | None = None,
            universal: UniversalPerturbation | None = None, steps: int = 10,
            generator: torch.Generator | None = None,
            support: torch.Tensor | None = None) -> torch.Tensor:
    """The perturbed grid y + delta of one of `ATTACKS` ('universal' needs `universal`).

    :param support: REs FGSM / PGD may perturb (see `pgd`); None: every RE
    :return: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :raises ValueError: unknown attack, PSR out of range, 'universal' without a pattern or
        with a support
    """
    check_attack(attack)
    if attack == "fgsm":
        d = fgsm(receiver, y, no, c, psr_db, signal_power=signal_power, support=support)
    elif attack == "pgd":
        d = pgd(receiver, y, no, c, psr_db, steps=steps, signal_power=signal_power,
                generator=generator, support=support)
    else:
        if support is not None:
            raise ValueError("the 'universal' perturbation spans the grid; a support applies "
                             "to 'fgsm' and 'pgd'")
        if universal is None:
            raise ValueError("the 'universal' attack needs a trained UniversalPerturbation")
        d = universal(y, signal_power, psr_db)
    return (y + d).detach()
