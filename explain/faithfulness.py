"""Is a map faithful to the receiver, and does it depend on the receiver at all?

- Deletion and insertion curves (Petsiuk et al., RISE, 2018): the grid's REs are ranked by the
  map; deletion replaces the most relevant ones, in order, by noise of the grid's power
  (`perturbation.py`) and follows the target; insertion starts from all noise and puts the
  most relevant REs back. A faithful map makes the deletion curve fall fast (low AUC) and the
  insertion curve rise fast (high AUC). Ties (e.g. the zeros of a ReLU'd map) are broken at
  random, so a flat map ranks like a random one rather than in memory order.
  AUCs are of the *normalised* mean curve (mean over slots of the target, mapped so the intact
  grid is 1 and the all-noise grid is 0), over the fraction of REs removed or inserted, so
  they are comparable between targets and slots: a random ranking gives about the area under
  a straight-ish line between the two ends. Meant for evidence-like targets (`LogLikelihood`,
  `LLRMagnitude`), whose score is higher for the intact grid than for noise.

  A limit of insertion for a receiver's block target (measured in
  `benchmarks/cam_faithfulness.py`): the block's score sums over *all* its coded bits, those of
  the REs still replaced by noise included. Noise of the grid's power looks like data, so once
  the DMRS are inserted the receiver knows the channel and demodulates the noise REs
  confidently — and wrongly: the score first falls below that of the all-noise grid, and rises
  only as the data REs come back. Rankings that know the receiver delete far faster than random
  and insert no faster (200 clean slots: DMRS first 0.127 / 0.126, data REs by their own bits'
  evidence 0.009 / 0.321, random 0.368 / 0.364 deletion / insertion AUC), so on clean slots the
  insertion AUC of a block target separates maps only weakly (the best CAMs gain a few
  hundredths over random) and must be read next to the deletion AUC. Thermal
  noise (variance no, the `removal='thermal'` of the CAMs) is no cure: a data RE of noise power
  next to known DMRS reads as a confident inner constellation point, the partial grids still
  fall below the all-noise one, and under a jammer the intact grid scores below the all-noise
  grid, which inverts the normalisation. So the curves keep noise of the grid's power (the
  issue's definition); `noise=` takes any other replacement.
- The model-randomisation sanity check (Adebayo et al. 2018): maps of a copy of the receiver
  with re-initialised weights must differ from the trained receiver's; we report the Spearman
  rank correlation per slot (near 1 = the map does not depend on what the network learned).
- The share of a map's mass on a set of REs (the DMRS, a jammed band), to be read against that
  set's share of the grid.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

from dmrx.explain.cam import CAM, perturbed_scores, slot_no
from dmrx.explain.perturbation import matched_noise
from dmrx.ofdm import derive_seed


def curve_generator(seed: int, batch_start: int, name: str) -> torch.Generator:
    """The generator of one draw of a faithfulness run: `name` is a method's (its curves'
    tie-breaks), 'noise' (the batch's removal noise), 'random' (the random maps), ...

    Each (seed, batch, name) has its own stream, so a method's curves depend on the user's seed
    and the slots only, not on which other methods run beside it or in what order (one shared
    generator drawn in turn made adding a method shift every later method's draws)."""
    return torch.Generator().manual_seed(derive_seed(seed, "faithfulness", batch_start, name))


def ranking(maps: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """REs from most to least relevant, ties in random order.

    :param maps: [batch, sym, sc] float
    :return: [batch, sym * sc] int64 indices into the flattened (row-major) grid
    """
    flat = maps.detach().flatten(1).cpu()
    perm = torch.argsort(torch.rand(flat.shape, generator=generator), dim=1)
    order = torch.argsort(flat.gather(1, perm), dim=1, descending=True, stable=True)
    return perm.gather(1, order).to(maps.device)


def random_maps(batch: int, grid: tuple[int, int],
                generator: torch.Generator | None = None) -> torch.Tensor:
    """The random-map baseline: i.i.d. uniform values, [batch, sym, sc] float32."""
    return torch.rand((batch, *grid), generator=generator)


@dataclass(frozen=True)
class Curves:
    """Deletion and insertion curves of a set of slots.

    :ivar fractions: [steps + 1] float, fraction of the grid's REs removed / inserted
    :ivar deletion: [slots, steps + 1] float, the target along the deletion
    :ivar insertion: [slots, steps + 1] float, the target along the insertion
    """

    fractions: torch.Tensor
    deletion: torch.Tensor
    insertion: torch.Tensor

    def __add__(self, other: Curves) -> Curves:
        """Curves of more slots (same steps)."""
        if not torch.equal(self.fractions, other.fractions):
            raise ValueError("cannot merge curves with different steps")
        return Curves(self.fractions, torch.cat([self.deletion, other.deletion]),
                      torch.cat([self.insertion, other.insertion]))

    def _normalized(self, curve: torch.Tensor) -> torch.Tensor:
        # both curves share their ends: deletion[0] = insertion[-1] = intact grid,
        # deletion[-1] = insertion[0] = all noise
        intact = self.deletion[:, 0].mean()
        noise = self.deletion[:, -1].mean()
        span = intact - noise
        if not torch.isfinite(span) or span == 0:
            raise ValueError("the target does not change between the intact and the all-noise "
                             "grid: its curves cannot be normalised")
        return (curve.mean(0) - noise) / span

    def normalized_deletion(self) -> torch.Tensor:
        """[steps + 1]: 1 at the intact grid, 0 at all noise."""
        return self._normalized(self.deletion)

    def normalized_insertion(self) -> torch.Tensor:
        """[steps + 1]: 0 at all noise, 1 at the intact grid."""
        return self._normalized(self.insertion)

    @property
    def deletion_auc(self) -> float:
        """Area under the normalised deletion curve (lower = more faithful)."""
        return float(torch.trapezoid(self.normalized_deletion(), self.fractions))

    @property
    def insertion_auc(self) -> float:
        """Area under the normalised insertion curve (higher = more faithful)."""
        return float(torch.trapezoid(self.normalized_insertion(), self.fractions))

    def as_dict(self) -> dict:
        return {"slots": int(self.deletion.shape[0]),
                "deletion_auc": self.deletion_auc, "insertion_auc": self.insertion_auc,
                "fractions": self.fractions.tolist(),
                "deletion": self.normalized_deletion().tolist(),
                "insertion": self.normalized_insertion().tolist()}


def deletion_insertion(receiver: nn.Module, y: torch.Tensor, no: float | torch.Tensor, target,
                       maps: torch.Tensor, c: torch.Tensor | None = None, *, steps: int = 24,
                       noise: torch.Tensor | None = None,
                       generator: torch.Generator | None = None,
                       chunk: int = 128) -> Curves:
    """Deletion and insertion curves of `maps` for `receiver` on a batch of slots.

    :param receiver: called as `receiver(y, no) -> llr [batch, num_coded_bits]`
    :param y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :param no: float, 0-d or [batch] float32
    :param target: a target of `targets.py`
    :param maps: [batch, num_ofdm_symbols, fft_size] relevance of each RE
    :param c: [batch, num_coded_bits] coded bits, for targets that need labels
    :param steps: points of the curve after its start (each removes about 1/steps of the REs)
    :param noise: like y, the replacement of removed REs (default: `matched_noise(y,
        generator)`); the same noise all along a curve, so the curve moves only with the map
    :param generator: for the noise and the tie-breaking
    :raises ValueError: steps < 1, or maps not of the grid's shape
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} is not allowed: a positive integer")
    b, grid = y.shape[0], tuple(y.shape[-2:])
    if tuple(maps.shape) != (b, *grid):
        raise ValueError(f"maps must have shape {(b, *grid)} [batch, num_ofdm_symbols, "
                         f"fft_size], got {tuple(maps.shape)}")
    y, no = y.detach(), slot_no(no, b, y.device)
    if noise is None:
        noise = matched_noise(y, generator)
    n = grid[0] * grid[1]
    order = ranking(maps, generator)  # [batch, n]
    counts = [round(i * n / steps) for i in range(steps + 1)]
    # rank of each RE in the order: RE is among the first k iff rank < k
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n, device=order.device).expand(b, n))
    top = torch.stack([(rank < k) for k in counts]).reshape(steps + 1, b, *grid).float()
    s = perturbed_scores(receiver, y, no, target, c, torch.cat([1.0 - top, top]), noise,
                         chunk=chunk)  # [2 (steps + 1), batch]
    fractions = torch.tensor(counts, dtype=torch.float64) / n
    return Curves(fractions, s[: steps + 1].T.double().cpu(), s[steps + 1:].T.double().cpu())


def mass_share(maps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Share of each map's mass on the REs of `mask`.

    :param maps: [batch, sym, sc] >= 0
    :param mask: [sym, sc] or [batch, sym, sc] bool
    :return: [batch] float in [0, 1]; NaN for a map that is zero everywhere
    """
    m = mask.to(maps.device, torch.bool).expand_as(maps)
    total = maps.flatten(1).sum(1)
    on = (maps * m).flatten(1).sum(1)
    return torch.where(total > 0, on / total.clamp_min(torch.finfo(maps.dtype).tiny),
                       torch.full_like(total, float("nan")))


def randomized_copy(receiver: nn.Module, seed: int = 0) -> nn.Module:
    """A deep copy of the receiver with every learned layer re-initialised (`reset_parameters`
    of each submodule: convolutions drawn afresh, norms back to identity), from `seed`; the
    original is not touched.
    """
    other = copy.deepcopy(receiver)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in other.modules():
            if m is not other and hasattr(m, "reset_parameters"):
                m.reset_parameters()
    return other


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation of two sets of maps, slot by slot (ties share their average
    rank).

    :param a: [batch, sym, sc]
    :param b: [batch, sym, sc]
    :return: [batch] float64 in [-1, 1]; NaN where a map is constant
    """
    ra = rankdata(a.detach().flatten(1).cpu().double().numpy(), axis=1)
    rb = rankdata(b.detach().flatten(1).cpu().double().numpy(), axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    den = np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, (ra * rb).sum(1) / den, np.nan)
    return torch.from_numpy(r)


def model_randomization_check(cam: CAM, y: torch.Tensor, no: float | torch.Tensor, target,
                              c: torch.Tensor | None = None, *, seed: int = 0,
                              noise: torch.Tensor | None = None) -> torch.Tensor:
    """Spearman correlation between the maps of `cam`'s receiver and of a re-initialised copy
    (`randomized_copy(receiver, seed)`), on the same slots and noise.

    :return: [batch] float64; a method passes when it is far from 1
    """
    if noise is None:
        noise = cam.removal_noise(y, no)
    trained = cam(y, no, target, c, noise)
    random = cam.rebind(randomized_copy(cam.receiver, seed))(y, no, target, c, noise)
    return rank_correlation(trained, random)
