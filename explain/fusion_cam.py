"""Fusion-CAM (Dekdegue, Garouani, Mothe, Bernigaud, arXiv:2603.05386): an adaptive fusion of a
gradient-based map (Grad-CAM) and a region-based map (Score-CAM), following the authors' code
(github.com/codeforpaper64/Fusion-CAM, `fusioncam.py`):

1. denoise the gradient map G: values below its `percentile`-th percentile are set to zero,
   then G and the region map R are min-max normalised;
2. contribution weights: beta_X = target(y masked by X) - target(all noise) for X in {G, R},
   normalised to sum to one; L = minmax(beta_G G + beta_R R);
3. the same for the pair (L, R): beta_L, beta_R re-estimated and normalised, L1 = beta_L L,
   L2 = beta_R R; per RE the agreement sim = clip(1 - |L1 - L2|, 0, 1) sets how much of the
   fusion is the maximum (where both agree) and how much the mean (where they conflict):
   F = sim max(L1, L2) + (1 - sim) (L1 + L2) / 2, min-max normalised.

For receivers, "masked by X" keeps the REs in proportion to X and replaces the rest by noise of
the grid's power (`perturbation.py`), and target scores replace class probabilities. Where the
paper subtracts the score of a black image, we subtract the all-noise score. A receiver target
can fall below that baseline (a region can make a block look worse than noise), so each beta is
clamped at zero before normalising — a map that adds no evidence gets no say — and where
neither adds any, the map that loses less is kept alone (`pair_weights`). A map that is zero
everywhere (Score-CAM's, where every channel's score falls below the baseline: most slots of a
strongly jammed or failed block) ranks no RE, so it gets no weight against a map that does,
whatever the gains say: its gain is zero by construction (it keeps nothing), and comparing it
with the other map's would replace an explanation by an empty one. The paper's code gives the
other map all the weight there too (a negative gain over itself plus zero is 1).

What the weights are worth (`benchmarks/fusion_choice.py`, seeds 5-7, 200 slots each): on
clean slots the gains favour the map that the deletion curve calls more faithful on 0.915 of
the slots, so Fusion-CAM follows the better component; under a partial-band jammer at JSR 0 dB
they do so on 0.475-0.525, a coin, while Grad-CAM is the better map on about 0.7 of the slots.
There Fusion-CAM lands between its components, though a per-slot choice of the better map
would beat both.
"""

from __future__ import annotations

import torch
from torch import nn

from dmrx.explain.cam import (
    CAM,
    GradCAM,
    ScoreCAM,
    normalize_max,
    normalize_minmax,
    perturbed_scores,
    slot_no,
)


def denoise(maps: torch.Tensor, percentile: float) -> torch.Tensor:
    """Zero the values below each slot's `percentile`-th percentile.

    :param maps: [batch, sym, sc] float32
    :param percentile: 0..100 (0 keeps everything)
    :return: [batch, sym, sc]
    """
    if percentile <= 0:
        return maps
    thr = torch.quantile(maps.flatten(1), percentile / 100.0, dim=1)
    return torch.where(maps < thr[:, None, None], torch.zeros_like(maps), maps)


def pair_weights(a: torch.Tensor, b: torch.Tensor, empty_a: torch.Tensor | None = None,
                 empty_b: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Contribution gains of two maps -> fusion weights >= 0 that sum to one per slot.

    Where a gain is positive, the weights are the gains clamped at zero, normalised. Where
    neither is, neither map adds evidence and the one that loses less is kept alone (equal
    weights on a tie) — not the paper code's a / (a + b), which for a negative gain and a zero
    one gives the harmful map all the weight. Where one map is empty (zero everywhere: it
    ranks no RE), the other gets all the weight whatever the gains.

    :param a: [batch] float
    :param b: [batch] float
    :param empty_a: [batch] bool, the first map is zero everywhere (default: none is)
    :param empty_b: [batch] bool, the second map is zero everywhere
    :return: two [batch, 1, 1] weights
    """
    pa, pb = a.clamp_min(0.0), b.clamp_min(0.0)
    total = pa + pb
    share = pa / total.clamp_min(torch.finfo(a.dtype).tiny)
    pick = torch.where(a > b, 1.0, torch.where(a < b, 0.0, 0.5)).to(a.dtype)
    wa = torch.where(total > 0, share, pick)
    none = torch.zeros_like(a, dtype=torch.bool)
    ea = none if empty_a is None else empty_a
    eb = none if empty_b is None else empty_b
    wa = torch.where(ea & ~eb, 0.0, torch.where(eb & ~ea, 1.0, wa)).to(a.dtype)
    return wa[:, None, None], (1.0 - wa)[:, None, None]


def is_empty(maps: torch.Tensor) -> torch.Tensor:
    """[batch, ...] >= 0 -> [batch] bool: the slot's map is zero everywhere."""
    return maps.flatten(1).amax(dim=1) <= 0


class FusionCAM(CAM):
    """Fusion-CAM over one layer of a receiver (same call as every `CAM`).

    :param percentile: Grad-CAM denoising percentile, 0..100 (the paper finds 10..20 best; 10
        is its code's default)
    :param gradient: the gradient-based method (default Grad-CAM)
    :param region: the region-based method (default Score-CAM)
    Other parameters as `CAM`; the component methods share the layer, chunk and seed.
    :raises ValueError: percentile outside 0..100
    """

    name = "fusion-cam"
    #: after `fuse`: {'gradient': [batch] beta_G / (beta_G + beta_R) of step 2, 'combined':
    #: [batch] beta_L / (beta_L + beta_R) of step 3}, both after `pair_weights`
    last_weights: dict[str, torch.Tensor] | None = None

    def __init__(self, receiver: nn.Module, layer: str | nn.Module | None = None, *,
                 percentile: float = 10.0, gradient: type[CAM] = GradCAM,
                 region: type[CAM] = ScoreCAM, create_graph: bool = False, chunk: int = 128,
                 seed: int = 0, removal: str = "thermal"):
        super().__init__(receiver, layer, create_graph=create_graph, chunk=chunk, seed=seed,
                         removal=removal)
        if not 0.0 <= float(percentile) <= 100.0:
            raise ValueError(f"FusionCAM percentile={percentile!r} is not allowed: 0..100")
        self.percentile = float(percentile)
        kw = dict(create_graph=create_graph, chunk=chunk, seed=seed, removal=removal)
        self.gradient = gradient(receiver, self.layer_name, **kw)
        self.region = region(receiver, self.layer_name, **kw)

    def rebind(self, receiver: nn.Module) -> FusionCAM:
        other = super().rebind(receiver)
        other.gradient = self.gradient.rebind(receiver)
        other.region = self.region.rebind(receiver)
        return other

    def __call__(self, y: torch.Tensor, no: float | torch.Tensor, target,
                 c: torch.Tensor | None = None, noise: torch.Tensor | None = None
                 ) -> torch.Tensor:
        if noise is None:
            noise = self.removal_noise(y, no)
        g = self.gradient(y, no, target, c, noise)
        r = self.region(y, no, target, c, noise)
        return self.fuse(y, no, target, c, g, r, noise)

    def fuse(self, y: torch.Tensor, no: float | torch.Tensor, target, c: torch.Tensor | None,
             gradient_map: torch.Tensor, region_map: torch.Tensor,
             noise: torch.Tensor) -> torch.Tensor:
        """Fuse maps already computed by the component methods (on the same slots and noise).

        :param gradient_map: [batch, num_ofdm_symbols, fft_size] from the gradient method
        :param region_map: [batch, num_ofdm_symbols, fft_size] from the region method
        :return: [batch, num_ofdm_symbols, fft_size] float32 in [0, 1]
        """
        y = y.detach()
        no = slot_no(no, y.shape[0], y.device)
        lg = normalize_minmax(denoise(gradient_map, self.percentile))
        lr = normalize_minmax(region_map)

        def gains(*maps: torch.Tensor) -> list[torch.Tensor]:
            keep = torch.stack([torch.zeros_like(lr), *maps])  # all noise first: the baseline
            s = perturbed_scores(self.receiver, y, no, target, c, keep.detach(), noise,
                                 chunk=self.chunk)
            return [s[i] - s[0] for i in range(1, len(maps) + 1)]

        g_gain, r_gain = gains(lg, lr)
        wg, wr = pair_weights(g_gain, r_gain, is_empty(lg), is_empty(lr))
        ldr = normalize_minmax(wg * lg + wr * lr)
        (ldr_gain,) = gains(ldr)
        w1, w2 = pair_weights(ldr_gain, r_gain, is_empty(ldr), is_empty(lr))
        l1, l2 = w1 * ldr, w2 * lr
        # what the fusion did, per slot (read by the benchmark): the denoised gradient map's
        # share of the first-stage combination, and the combination's share against the region
        # map (wg == 0: the gradient map added no evidence, the fusion is the region map)
        self.last_weights = {"gradient": wg.flatten().detach(), "combined": w1.flatten().detach()}
        sim = (1.0 - (l1 - l2).abs()).clamp(0.0, 1.0)
        fused = sim * torch.maximum(l1, l2) + (1.0 - sim) * 0.5 * (l1 + l2)
        return normalize_max(normalize_minmax(fused))
