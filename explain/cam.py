"""Class activation maps of receiver decisions over the resource grid: Grad-CAM, Grad-CAM++,
HiResCAM, Score-CAM (Fusion-CAM, which combines them, is in `fusion_cam.py`).

The grid is the image: a neural receiver's convolutional layers see [batch, channels,
num_ofdm_symbols, fft_size], so a map lives on the OFDM symbol x subcarrier grid.

Why not pytorch-grad-cam (or captum): its targets are class scores of a model called on one
input tensor, while a receiver is called as `receiver(y, no)` on a complex grid and explained by a
target over its LLRs and the transmitted bits; its region-based methods mask that input by
multiplication (a zeroed RE is a noiseless fade to a receiver, see `perturbation.py`); and it
goes through NumPy, so maps cannot stay differentiable for explanation-guided training. What we
keep is its design: one base class captures a layer's activations (a forward hook) and the
target's gradients w.r.t. them; each method only says how to weight the activation maps, and a
separate target object (`targets.py`) says what is explained.

All maps are [batch, num_ofdm_symbols, fft_size] float32, >= 0, scaled so each slot's maximum
is 1 (a map that is zero everywhere stays zero). Scaling by the maximum (not min-max) keeps the
ratios between REs, so the share of a map's mass on a set of REs does not depend on it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from dmrx.explain.perturbation import REMOVALS, blend, removal_noise

INPUT_SUFFIX = ":in"


def default_layer(receiver: nn.Module) -> str:
    """The layer CAM maps look at when none is named: for a `GridResNet` receiver, the input
    of its output convolution, `'net.output_conv:in'` = ReLU(GroupNorm(last residual block)):
    the rectified feature maps its LLR head reads, at full grid resolution. This is the layer
    Grad-CAM is defined on (the last convolutional feature maps, after their ReLU, that a
    linear head turns into the score; Selvaraju et al. 2017, Sec. 3).

    Not the output of the last residual block (`'net.blocks.3'`, the default until the
    faithfulness benchmark found it broken): that residual stream feeds only GroupNorms, which
    are invariant to shifting (and, for the last block, scaling) their input, so the target's
    gradient g there satisfies sum_{k,ij} g_kij = 0 (and sum g_kij A_kij = 0) exactly. Grad-CAM's
    weights w_k = mean_ij g_kij then sum to zero over the channels, and the map
    L = sum_k w_k A_k sums over the grid to minus the spatial covariance of g and A (the part
    of the gradient the averaging discards): an offset set by the slot, not by the RE. Under a
    jammer that offset dominated: the block log-likelihood's raw map was positive on every RE
    and the block-error event's (its negative) negative on every RE, so ReLU left 195 of 200
    error maps zero everywhere.
    Features after a ReLU are >= 0, as Grad-CAM's and Score-CAM's derivations assume.

    :raises ValueError: the receiver has no `net.output_conv` to read
    """
    net = getattr(receiver, "net", None)
    if not isinstance(getattr(net, "output_conv", None), nn.Module):
        raise ValueError(f"{type(receiver).__name__} has no net.output_conv: name the layer to "
                         "explain (e.g. layer='net.input_conv')")
    return "net.output_conv" + INPUT_SUFFIX


def normalize_max(maps: torch.Tensor) -> torch.Tensor:
    """[batch, ...] >= 0 -> divided by each slot's maximum (zero maps stay zero)."""
    peak = maps.flatten(1).amax(dim=1).clamp_min(torch.finfo(maps.dtype).tiny)
    return maps / peak.reshape(-1, *([1] * (maps.dim() - 1)))


def normalize_minmax(maps: torch.Tensor) -> torch.Tensor:
    """[batch, ...] -> (m - min) / (max - min) per slot, 0 where the slot's map is constant."""
    flat = maps.flatten(1)
    lo = flat.amin(dim=1).reshape(-1, *([1] * (maps.dim() - 1)))
    span = (flat.amax(dim=1) - flat.amin(dim=1)).reshape(lo.shape)
    return torch.where(span > 0, (maps - lo) / span.clamp_min(torch.finfo(maps.dtype).tiny),
                       torch.zeros_like(maps))


@dataclass
class Evaluation:
    """What a CAM method's weighting may use for one batch of slots.

    :ivar y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :ivar no: [batch] float32
    :ivar c: [batch, num_coded_bits] float32 or None
    :ivar activations: [batch, channels, h, w] float32 of the explained layer
    :ivar score: [batch] float32, the target on the unperturbed slots
    :ivar noise: like y, the replacement of removed REs (`perturbation.matched_noise`)
    """

    cam: CAM
    y: torch.Tensor
    no: torch.Tensor
    target: object
    c: torch.Tensor | None
    activations: torch.Tensor
    score: torch.Tensor
    noise: torch.Tensor
    _gradients: torch.Tensor | None = field(default=None, repr=False)

    @property
    def gradients(self) -> torch.Tensor:
        """d score / d activations, [batch, channels, h, w] (slots are independent, so the
        gradient of the batch sum is each slot's own gradient)."""
        if self._gradients is None:
            (self._gradients,) = torch.autograd.grad(
                self.score.sum(), self.activations, create_graph=self.cam.create_graph)
        return self._gradients

    def grid_maps(self, maps: torch.Tensor) -> torch.Tensor:
        """[batch, k, h, w] -> [batch, k, num_ofdm_symbols, fft_size] (bilinear if the layer's
        resolution differs from the grid's)."""
        return self.cam.to_grid(maps, self.y.shape[-2:])

    def scores(self, keep: torch.Tensor) -> torch.Tensor:
        """The target with REs replaced by noise.

        :param keep: [k, batch, num_ofdm_symbols, fft_size] in [0, 1], k masks per slot
        :return: [k, batch] float32, no gradient
        """
        return self.cam.perturbed_scores(self.y, self.no, self.target, self.c, keep,
                                         self.noise)


class CAM:
    """Base of the CAM methods: runs the receiver with a forward hook on `layer`, evaluates the
    target, asks the method for one weight per channel and per slot, and returns
    ReLU(sum_k w_k A_k) on the grid, scaled to a maximum of 1 per slot.

    :param receiver: a module called as `receiver(y, no) -> llr [batch, num_coded_bits]`
    :param layer: the explained layer: a dotted name (`'net.blocks.3.conv2'`: the module's
        output), a dotted name with the suffix `':in'` (`'net.output_conv:in'`: the module's
        first input, for features computed by a functional op such as `torch.relu`), a module
        of the receiver, or None for `default_layer(receiver)`; the explained tensor must be
        [batch, channels, h, w] and the module must run once per call of the receiver
    :param create_graph: keep the maps differentiable (gradient methods), for explanation-guided
        training
    :param chunk: perturbed forward passes are batched this many slot-copies at a time (on a
        CPU, batches of about a hundred grids run faster per slot than much larger ones)
    :param seed: seeds the noise that replaces removed REs when the caller gives none
    :param removal: that noise: 'thermal' (variance no, the default) or 'matched' (the grid's
        power); see `perturbation.py` for why region-based masks use thermal noise
    :raises ValueError: the layer is not found in the receiver, an unknown removal

    :input y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :input no: float, 0-d or [batch] float32 noise variance
    :input target: a target of `targets.py` (called as `target(llr, c) -> [batch]`)
    :input c: [batch, num_coded_bits] float32 coded bits, for targets that need labels
    :input noise: optional, like y: the noise replacing removed REs (default: `removal`
        noise drawn from `seed`)
    :output: [batch, num_ofdm_symbols, fft_size] float32 maps in [0, 1]
    """

    name = "cam"

    def __init__(self, receiver: nn.Module, layer: str | nn.Module | None = None, *,
                 create_graph: bool = False, chunk: int = 128, seed: int = 0,
                 removal: str = "thermal"):
        if chunk < 1:
            raise ValueError(f"chunk={chunk} is not allowed: >= 1")
        if removal not in REMOVALS:
            raise ValueError(f"removal={removal!r} is not allowed: one of {REMOVALS}")
        self.receiver = receiver
        self.layer_name = self._layer_name(receiver, layer)
        self.create_graph, self.chunk, self.seed = create_graph, int(chunk), int(seed)
        self.removal = removal

    def removal_noise(self, y: torch.Tensor, no: float | torch.Tensor) -> torch.Tensor:
        """The noise that replaces removed REs when the caller gives none (from `seed`)."""
        return removal_noise(self.removal, y.detach(), slot_no(no, y.shape[0], y.device),
                             torch.Generator().manual_seed(self.seed))

    @staticmethod
    def _layer_name(receiver: nn.Module, layer: str | nn.Module | None) -> str:
        if layer is None:
            return default_layer(receiver)
        if isinstance(layer, nn.Module):
            for name, m in receiver.named_modules():
                if m is layer:
                    return name
            raise ValueError(f"layer {type(layer).__name__} is not a module of "
                             f"{type(receiver).__name__}")
        module = layer[: -len(INPUT_SUFFIX)] if layer.endswith(INPUT_SUFFIX) else layer
        try:
            receiver.get_submodule(module)
        except AttributeError:
            names = [n for n, m in receiver.named_modules() if isinstance(m, nn.Conv2d)]
            raise ValueError(f"layer={layer!r} is not a module of {type(receiver).__name__}; "
                             f"its Conv2d layers are {names}") from None
        return layer

    @property
    def reads_input(self) -> bool:
        """True: the explained tensor is the layer module's input, not its output."""
        return self.layer_name.endswith(INPUT_SUFFIX)

    @property
    def layer(self) -> nn.Module:
        """The module whose output (or, for a `':in'` name, input) is explained."""
        name = self.layer_name
        return self.receiver.get_submodule(name[: -len(INPUT_SUFFIX)] if self.reads_input
                                           else name)

    def rebind(self, receiver: nn.Module) -> CAM:
        """The same method and layer on another receiver (e.g. a re-initialised copy)."""
        other = copy.copy(self)
        other.receiver = receiver
        return other

    # --- what every method shares -------------------------------------------------------

    @staticmethod
    def to_grid(maps: torch.Tensor, grid: tuple[int, int] | torch.Size) -> torch.Tensor:
        if tuple(maps.shape[-2:]) == tuple(grid):
            return maps
        return F.interpolate(maps, size=tuple(grid), mode="bilinear", align_corners=False)

    def _forward(self, y: torch.Tensor, no: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the receiver once; return (llr, the layer's activations)."""
        seen: list[torch.Tensor] = []
        if self.reads_input:
            handle = self.layer.register_forward_pre_hook(lambda m, i: seen.append(i[0]))
        else:
            handle = self.layer.register_forward_hook(lambda m, i, o: seen.append(o))
        try:
            llr = self.receiver(y, no)
        finally:
            handle.remove()
        if len(seen) != 1:
            raise ValueError(f"layer {self.layer_name!r} ran {len(seen)} times in one call of "
                             "the receiver; CAM needs a layer that runs exactly once")
        a = seen[0]
        if not isinstance(a, torch.Tensor) or a.dim() != 4 or a.shape[0] != y.shape[0]:
            shape = tuple(a.shape) if isinstance(a, torch.Tensor) else type(a).__name__
            raise ValueError(f"layer {self.layer_name!r} outputs {shape}; CAM needs "
                             "[batch, channels, h, w]")
        return llr, a

    def perturbed_scores(self, y: torch.Tensor, no: torch.Tensor, target, c: torch.Tensor | None,
                         keep: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The target on copies of the slots with REs replaced by noise.

        :param keep: [k, batch, num_ofdm_symbols, fft_size] in [0, 1]
        :return: [k, batch] float32 (no gradient)
        """
        return perturbed_scores(self.receiver, y, no, target, c, keep, noise, chunk=self.chunk)

    def __call__(self, y: torch.Tensor, no: float | torch.Tensor, target,
                 c: torch.Tensor | None = None, noise: torch.Tensor | None = None
                 ) -> torch.Tensor:
        y, no = y.detach(), slot_no(no, y.shape[0], y.device)
        if noise is None:
            noise = self.removal_noise(y, no)
        with torch.enable_grad():
            # y as a leaf that requires grad: activations then carry a graph even when the
            # receiver's weights are frozen
            llr, a = self._forward(y.clone().requires_grad_(True), no)
            ev = Evaluation(self, y, no, target, c, a, target(llr, c), noise)
            maps = self.combine(ev)
        if not self.create_graph:
            maps = maps.detach()
        return normalize_max(maps)

    def combine(self, ev: Evaluation) -> torch.Tensor:
        """ReLU(sum_k w_k A_k) on the grid, [batch, num_ofdm_symbols, fft_size]."""
        w = self.channel_weights(ev)  # [batch, channels]
        a = ev.activations if self.create_graph else ev.activations.detach()
        cam = torch.relu(torch.einsum("bk,bkhw->bhw", w, a))
        return ev.grid_maps(cam[:, None])[:, 0]

    def channel_weights(self, ev: Evaluation) -> torch.Tensor:
        """The method: one weight per channel and slot, [batch, channels]."""
        raise NotImplementedError


def slot_no(no: float | torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    """A float, 0-d or [batch] noise variance -> [batch] float32.

    :raises ValueError: a tensor of another shape
    """
    no = torch.as_tensor(no, dtype=torch.float32, device=device)
    if no.dim() == 0:
        return no.expand(batch)
    if tuple(no.shape) != (batch,):
        raise ValueError(f"no must be a float, 0-d or [batch={batch}], got {tuple(no.shape)}")
    return no


def perturbed_scores(receiver: nn.Module, y: torch.Tensor, no: torch.Tensor, target,
                     c: torch.Tensor | None, keep: torch.Tensor, noise: torch.Tensor, *,
                     chunk: int = 128) -> torch.Tensor:
    """`target(receiver(blend(y, keep_i, noise), no), c)` for k masks at once.

    :param y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :param no: [batch] float32
    :param keep: [k, batch, num_ofdm_symbols, fft_size] in [0, 1]
    :param chunk: forward passes take at most this many slot-copies
    :return: [k, batch] float32
    """
    k, b = keep.shape[:2]
    flat_keep = keep.reshape(k * b, *keep.shape[2:])
    out = []
    with torch.no_grad():
        for s in range(0, k * b, chunk):
            idx = torch.arange(s, min(s + chunk, k * b), device=y.device)
            slot = idx % b  # copy i of slot j sits at i * b + j
            llr = receiver(blend(y[slot], flat_keep[idx], noise[slot]), no[slot])
            out.append(target(llr, None if c is None else c[slot]))
    return torch.cat(out).reshape(k, b)


class GradCAM(CAM):
    """Grad-CAM (Selvaraju et al. 2017): w_k = mean over the grid of d target / d A_k."""

    name = "grad-cam"

    def channel_weights(self, ev: Evaluation) -> torch.Tensor:
        return ev.gradients.mean(dim=(2, 3))


class GradCAMPlusPlus(CAM):
    """Grad-CAM++ (Chattopadhyay et al. 2018): w_k = sum_ij alpha_kij ReLU(g_kij) with
    alpha = g^2 / (2 g^2 + sum_ij(A_k) g^3), the closed form the paper derives for an
    exponential of the score, written with first-order gradients g only."""

    name = "grad-cam++"

    def channel_weights(self, ev: Evaluation) -> torch.Tensor:
        g = ev.gradients
        a = ev.activations if self.create_graph else ev.activations.detach()
        g2, g3 = g.square(), g.pow(3)
        den = 2 * g2 + a.sum(dim=(2, 3), keepdim=True) * g3
        alpha = torch.where(g != 0, g2 / torch.where(den != 0, den, torch.ones_like(den)),
                            torch.zeros_like(g))
        return (alpha * torch.relu(g)).sum(dim=(2, 3))


class HiResCAM(CAM):
    """HiResCAM (Draelos & Carin, "Use HiResCAM instead of Grad-CAM for faithful explanations of
    convolutional neural networks", arXiv:2011.08891): map = ReLU(sum_k g_k * A_k) element-wise,
    the gradient multiplied by the activation on each RE before summing over channels, instead
    of Grad-CAM's gradient averaged over the grid first (pytorch-grad-cam's `HiResCAM` does the
    same on images).

    Why receivers need it: Grad-CAM's average presumes one score whose gradient has a sign per
    channel. A receiver target sums per-RE terms whose gradients carry the sign of each RE's own
    transmitted bits, so the average over the grid cancels them, and the map reflects a
    channel's mean activity rather than what each RE contributed. With dmrx's LLR head, linear
    in the explained features, sum_k g_k * A_k at an RE is that RE's term of the first-order
    expansion of the target in the features (the raw map sums over the grid to <grad, A>), so
    an RE whose confidently wrong bits drive a block error gets the mass. No channel weights:
    the method overrides `combine`.
    """

    name = "hirescam"

    def combine(self, ev: Evaluation) -> torch.Tensor:
        a = ev.activations if self.create_graph else ev.activations.detach()
        cam = torch.relu((ev.gradients * a).sum(dim=1))
        return ev.grid_maps(cam[:, None])[:, 0]


class ScoreCAM(CAM):
    """Score-CAM (Wang et al. 2020), gradient-free: each channel's activation map, upsampled to
    the grid and min-max normalised to [0, 1], is a soft mask that keeps those REs of y and
    replaces the rest by noise; w_k = target(masked by A_k) - target(all noise), the paper's
    "increase of confidence" over the no-information baseline. The raw increase, not a softmax
    over channels as in pytorch-grad-cam: a receiver target is a sum over thousands of bits, so
    its differences are tens to hundreds of nats and a softmax would keep one channel only.
    One forward pass per channel (batched `chunk` slot-copies at a time).

    On the default layer (rectified features, A_k >= 0) a map is zero everywhere when every
    channel's kept region scores below the all-noise grid: e.g. the block log-likelihood of a
    slot under a strong jammer, where any region kept with thermal noise elsewhere makes the
    receiver confidently wrong, while the all-noise grid only erases (LLRs near 0). That is the
    method's answer ("no region adds evidence"), not a failure of the code; such maps rank REs
    at random in the faithfulness curves. The block-error event has the same limit from the
    other side: the all-noise grid is an erasure, and the error it scores is the one to beat, so
    a region enters the map only if its bits cost more than erased ones. Under a partial-band
    jammer at JSR -5 dB (half the blocks fail) the band's bits cost what erased bits cost (0.771
    nats each, `benchmarks/cam_faithfulness.py` seed 4) and 184 of 200 error maps are zero,
    though the band drives the failures; at 0 dB (2.2 times) 27 are. HiResCAM sees the band at
    every power.
    """

    name = "score-cam"

    def channel_weights(self, ev: Evaluation) -> torch.Tensor:
        grid = ev.grid_maps(ev.activations.detach())  # [batch, channels, sym, sc]
        b, k = grid.shape[:2]
        masks = normalize_minmax(grid.reshape(b * k, *grid.shape[2:])).reshape(grid.shape)
        masks = masks.transpose(0, 1)  # [channels, batch, sym, sc]: one mask per channel
        zero = torch.zeros_like(masks[:1])
        s = ev.scores(torch.cat([zero, masks]))  # [1 + channels, batch]
        return (s[1:] - s[:1]).T
