"""BBQ — Bell Box Quantization (Yang & Aamodt, ICLR 2026; github.com/1733116199/bbq).

Two wishes that usually conflict: levels used equally often (maximum entropy, log2(levels) bits
of information per weight) and arithmetic on a uniform integer grid (cheap MACs). BBQ takes
them apart: the *decision* regions are equiprobable under the fitted bell (Gaussian) shape, the
*reconstruction* values stay uniformly spaced integers with one learnt scale per output channel.

    w_r = w H                        (block Hadamard rotation along the input channels: makes
                                      each row closer to Gaussian; orthogonal, so undone by H^T)
    rms = sqrt(mean(w_r^2)) per output channel           (the fitted bell: N(0, rms^2))
    k   = clip(round(Phi(w_r / rms) * n - 1/2), 0, n - 1)    (n = 2^bits equiprobable boxes)
    q   = k - (n/2 + zero_point)     (integers for zero_point = 0; half-integers for -1/2)
    w_hat = (s / (n/2)) * q H^T      (s: learnt per-channel scale, init 1.694 rms as the paper)

Because Phi(w_r / rms) is uniform on (0, 1) when the row is Gaussian, each k is equally likely.
A layer computes y = conv(x, w_hat) = (s / (n/2)) * conv(x H, q) per tap: a fast Walsh-Hadamard
transform of the input (additions only) and an integer (or, for zero_point = -1/2, odd-integer /
2) convolution, then one scale per output channel — the compute stays in the integer domain.

Training (QAT): the straight-through estimator passes the gradient through the rounding of the
CDF-transformed value (the paper's `x_forward.detach() + x - x.detach()`), so it reaches w
through Phi; s gets its gradient scaled by 1/sqrt(numel) as in the paper's code.

Quantizing a *trained* network (what dmrx does; the paper trains from scratch): the trained
weight used as the latent is mapped to its within-row rank, a quantile-warped copy of itself,
and the receiver breaks before QAT starts (post-training BLER 1 on ref-4prb). The latent is a
free parameter, though: `BBQWeight.nearest_latent` builds one whose codes are the trained
weight's nearest levels on BBQ's own grid (latent_init='nearest', the default), so QAT starts
from a good uniform quantization. The levels are then no longer equiprobable (their entropy is
that of the trained weights' rounding); what BBQ keeps is its map, its grid and its training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from dmrx.quant.formats import element_format
from dmrx.quant.mx import decode_elements, encode_elements, round_elements

BBQ_BITS = (2, 3, 4)
#: the paper trains from scratch with zero point -1/2 at 1-2 bits and 0 at 3-4 bits (integer
#: levels -n/2..n/2-1, its train_bbq.sh). Fine-tuning an already trained receiver, the
#: asymmetric levels shift every weight by half a step on average; the symmetric half-integer
#: levels q = k - n/2 + 1/2 (2q is an odd integer: the MACs stay integer, the scale halves)
#: ended 100 QAT steps on ref-4prb with 2-3x less loss increase
PAPER_ZERO_POINT = {2: -0.5, 3: 0.0, 4: 0.0}
DEFAULT_ZERO_POINT = {2: -0.5, 3: -0.5, 4: -0.5}
#: initial scale / rms of the paper's code (`sx = 1.694 * rms`)
SCALE_INIT = 1.694
MAX_HADAMARD = 32
SCALE_INITS = ("lsq", "paper")
#: where the latent weight of a layer quantized from a trained network starts: 'float' (the
#: trained weight itself, as the paper's from-scratch training has it) or 'nearest' (a latent
#: whose BBQ codes are the trained weight's nearest uniform levels; see `nearest_latent`)
LATENT_INITS = ("float", "nearest")
SCALE_FORMATS = ("fp32", "e4m3")
#: the block scales' format: OCP E4M3, coded by the MX element codec (`dmrx.quant.mx`)
E4M3 = element_format("mxfp8_e4m3")


def hadamard(n: int) -> torch.Tensor:
    """Orthonormal Sylvester Hadamard matrix, [n, n] float32 (n a power of two)."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"Hadamard size n={n} is not allowed: a power of two")
    h = torch.ones(1, 1)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h / math.sqrt(n)


def hadamard_block(channels: int, limit: int = MAX_HADAMARD) -> int:
    """Largest power of two dividing `channels`, at most `limit` (1: no rotation)."""
    return math.gcd(channels, limit)


def rotate(w: torch.Tensor, block: int) -> torch.Tensor:
    """Block-Hadamard rotation along axis 1 (input channels) of a weight; its own inverse
    (H is symmetric and orthonormal, H H = I).

    :param w: [out, in, ...] float, `in` a multiple of `block`
    :return: same shape
    """
    if block == 1:
        return w
    h = hadamard(block).to(w)
    o, c = w.shape[:2]
    v = w.reshape(o, c // block, block, *w.shape[2:])
    return torch.einsum("ogi...,ij->ogj...", v, h).reshape(w.shape)


class BBQWeight(nn.Module):
    """BBQ quantizer of one layer's weight [out, in, ...], with a learnt per-channel scale.

    :param weight: the float weight it is fitted to (initialises the scale)
    :param bits: 2, 3 or 4
    :param zero_point: None for the paper's default of that bitwidth
    :param hadamard_limit: largest Hadamard block (1 disables the rotation)
    :param scale_init: 'paper' (s = 1.694 rms, the paper's init for training from scratch) or
        'lsq' (per channel, the least-squares fit of the weights to their boxes' levels: a
        better start for quantizing a trained network, which the paper does not do)
    :param latent_init: one of `LATENT_INITS`, read by the layer that owns the latent weight
        (`dmrx.quant.layers.QuantConv2d`): 'nearest' (default) replaces a trained weight by
        `nearest_latent(weight)`, which also sets the scale; 'float' keeps the trained weight
        as the latent (the paper's from-scratch setting) with the `scale_init` scale
    :param scale_format: one of `SCALE_FORMATS`: how each row's scale is stored and applied:
        'fp32', or 'e4m3' (FP8 E4M3 relative to one float32 scale of the whole tensor, the
        max scale / 448, as NVFP4 stores its block scales; rounded in the forward pass with a
        straight-through gradient, so QAT sees what is stored)
    """

    def __init__(self, weight: torch.Tensor, bits: int, zero_point: float | None = None,
                 hadamard_limit: int = MAX_HADAMARD, scale_init: str = "lsq",
                 latent_init: str = "nearest", scale_format: str = "fp32"):
        super().__init__()
        if scale_format not in SCALE_FORMATS:
            raise ValueError(f"BBQ scale_format={scale_format!r} is not allowed: one of "
                             f"{SCALE_FORMATS}")
        self.scale_format = scale_format
        if bits not in BBQ_BITS:
            raise ValueError(f"BBQ bits={bits!r} is not allowed: one of {BBQ_BITS}")
        if latent_init not in LATENT_INITS:
            raise ValueError(f"BBQ latent_init={latent_init!r} is not allowed: one of "
                             f"{LATENT_INITS}")
        self.latent_init = latent_init
        if weight.dim() < 2:
            raise ValueError(f"BBQ quantizes weights [out, in, ...], got {list(weight.shape)}")
        self.bits = bits
        self.levels = 1 << bits
        self.zero_point = DEFAULT_ZERO_POINT[bits] if zero_point is None else float(zero_point)
        if scale_init not in SCALE_INITS:
            raise ValueError(f"BBQ scale_init={scale_init!r} is not allowed: one of "
                             f"{SCALE_INITS}")
        self.block = hadamard_block(weight.shape[1], hadamard_limit)
        with torch.no_grad():
            wr = rotate(weight.detach().float(), self.block)
            if scale_init == "paper":
                s = SCALE_INIT * self._rms(wr)
            else:
                # least squares: the step that best maps each box's weights to its level
                self.scale = nn.Parameter(torch.ones(weight.shape[0]))
                q = self.integer_levels(self._boxes(weight.detach().float())[1]).flatten(1)
                step = (wr.flatten(1) * q).sum(1) / q.square().sum(1).clamp_min(1e-12)
                s = step * (self.levels // 2)
        self.scale = nn.Parameter(s.clamp_min(1e-12))

    @property
    def scheme(self) -> str:
        return f"bbq{self.bits}"

    @staticmethod
    def _rms(wr: torch.Tensor) -> torch.Tensor:
        """[out] float32 RMS of each output channel's weights."""
        return wr.flatten(1).square().mean(1).sqrt().clamp_min(1e-12)

    def codes(self, w: torch.Tensor) -> torch.Tensor:
        """Box indices k in 0..levels-1, [w.shape] int64 (the rotated weight's)."""
        return self._boxes(w)[1].detach().long()

    def _boxes(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        wr = rotate(w, self.block)
        rms = self._rms(wr).reshape(-1, *[1] * (w.dim() - 1))
        u = 0.5 * (1 + torch.erf(wr / (rms * math.sqrt(2)))) * self.levels - 0.5
        # torch.round ties to even, so clip: u never leaves (-1/2, n - 1/2) by more than a tie
        k = torch.round(u).clamp(0, self.levels - 1)
        return u, k

    def integer_levels(self, k: torch.Tensor) -> torch.Tensor:
        """q = k - (n/2 + zero_point): the uniform levels the MACs use."""
        return k - (self.levels // 2 + self.zero_point)

    def stored_scale(self) -> torch.Tensor:
        """[out] the scale as stored ('e4m3': rounded, straight-through gradient)."""
        s = self.scale
        if self.scale_format == "fp32":
            return s
        q, g = _e4m3_split(s.detach())
        return s + (q.float() * g - s).detach()

    def step(self) -> torch.Tensor:
        """[out] spacing of the reconstruction levels (s / (n/2), s as stored)."""
        return self.stored_scale() / (self.levels // 2)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """:param w: [out, in, ...] float32 -> w_hat, same shape, differentiable (STE)"""
        u, k = self._boxes(w)
        k = k.detach() + u - u.detach()  # STE through the rounding, gradient via Phi
        s = self.stored_scale()
        s = s.detach() + (s - s.detach()) / math.sqrt(w.numel())  # the paper's gradient scale
        shape = (-1, *[1] * (w.dim() - 1))
        wr_hat = (s / (self.levels // 2)).reshape(shape) * self.integer_levels(k)
        return rotate(wr_hat, self.block)

    # --- storage -----------------------------------------------------------------------------
    def encode(self, w: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict]:
        """Packed codes (bits per weight) and the per-channel scale (float32)."""
        from dmrx.quant.mx import pack_bits

        k = self.codes(w).reshape(-1).to(torch.uint8)
        s = self.scale.detach().float()
        if self.scale_format == "e4m3":
            # E4M3 codes, then the float32 tensor scale as its 4 bytes: every stored bit counts
            q, g = _e4m3_split(s)
            scales = torch.cat([encode_elements(q, E4M3), g.reshape(1).view(torch.uint8)])
        else:
            scales = s
        tensors = {"codes": pack_bits(k, self.bits), "scales": scales.contiguous()}
        meta = {"scheme": f"bbq{self.bits}", "shape": list(w.shape), "bits": self.bits,
                "zero_point": self.zero_point, "hadamard_block": self.block,
                "scale_format": self.scale_format}
        return tensors, meta

    @staticmethod
    def decode(tensors: dict[str, torch.Tensor], meta: dict) -> torch.Tensor:
        from dmrx.quant.mx import unpack_bits

        shape, bits = tuple(meta["shape"]), int(meta["bits"])
        n = 1 << bits
        k = unpack_bits(tensors["codes"], bits, math.prod(shape)).reshape(shape).float()
        q = k - (n // 2 + float(meta["zero_point"]))
        scales = tensors["scales"]
        if meta.get("scale_format", "fp32") == "e4m3":
            if scales.dtype != torch.uint8 or scales.numel() != shape[0] + 4:
                raise ValueError(f"BBQ e4m3 scales: expected {shape[0] + 4} bytes, got "
                                 f"{scales.numel()} {scales.dtype}")
            g = scales[-4:].contiguous().view(torch.float32)
            scales = decode_elements(scales[:-4], E4M3).float() * g
        step = scales.float() / (n // 2)
        wr = step.reshape(-1, *[1] * (len(shape) - 1)) * q
        return rotate(wr, int(meta["hadamard_block"]))

    @torch.no_grad()
    def nearest_latent(self, weight: torch.Tensor) -> torch.Tensor:
        """A latent weight whose BBQ codes are the trained weight's nearest levels, and the
        per-channel scale set to match (the start for quantizing a trained network).

        BBQ's map from latent weight to level is the latent's rank within its row (boxes
        equiprobable under the row's fitted bell), so a trained weight used as the latent
        becomes a quantile-warped copy of itself: w_hat ~ 2 Phi(w / rms) - 1 keeps only
        sqrt(3 / pi) = 0.977 of its correlation with w (about 13 dB SQNR at any bit width),
        and the receiver breaks before QAT starts. Yet the levels BBQ can produce are any
        codes on its uniform grid: a latent that is not Gaussian puts them where it likes.
        This builds one: per output channel (rotated domain), the MSE-optimal step over a grid
        of clipping ratios, the nearest-level codes k of w, and then latent values inside box k
        of a bell whose RMS is the latent's own: inner boxes at a fraction of their probability
        width (at most the middle, so the bell's RMS is not exceeded), the two outermost boxes
        (unbounded) far enough out that the row's RMS is exactly that of the bell. A row whose
        outermost codes are unused keeps the float latent's boxes for those channels.

        :param weight: [out, in, ...] float32 trained weight
        :return: latent weight, same shape (rotated back into the weight's own domain)
        """
        n, off = self.levels, self.levels // 2 + self.zero_point
        wr = rotate(weight.detach().float(), self.block)
        flat = wr.flatten(1)
        amax = flat.abs().amax(1, keepdim=True).clamp_min(1e-12)
        hi_level = n - 1 - off

        def nearest(step: torch.Tensor) -> torch.Tensor:  # codes 0..n-1 of the nearest levels
            return torch.round(flat / step + off).clamp(0, n - 1)

        best_err = torch.full_like(amax, math.inf)
        best_step = amax / hi_level
        for r in torch.linspace(0.3, 1.0, 71):
            step = amax * r / hi_level
            err = (flat - step * (nearest(step) - off)).square().sum(1, keepdim=True)
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best_step = torch.where(better, step, best_step)
        k = nearest(best_step).long()  # [out, numel]
        p = torch.nn.functional.one_hot(k, n).float().mean(1)  # [out, n] code histogram
        j = torch.arange(n, dtype=torch.float32)
        upper, ext = j >= n // 2, (j == 0) | (j == n - 1)
        p_ext = (p * ext).sum(1, keepdim=True)
        edge = _ndtri(torch.tensor((n - 1) / n))  # inner edge of the outermost boxes

        def inner(frac: torch.Tensor) -> torch.Tensor:  # [out, 1] -> [out, n]
            pr = torch.where(upper, (j + frac) / n, (j + 1 - frac) / n)
            return _ndtri(pr.clamp(1e-7, 1 - 1e-7))

        lo, hi = torch.zeros_like(p_ext), torch.full_like(p_ext, 0.5)
        for _ in range(40):  # the largest inner position that leaves the outer boxes room
            mid = (lo + hi) / 2
            ok = (p * ~ext * inner(mid).square()).sum(1, keepdim=True) \
                + p_ext * (1.05 * edge) ** 2 <= 1
            lo, hi = torch.where(ok, mid, lo), torch.where(ok, hi, mid)
        m = inner(lo)
        rest = (1 - (p * ~ext * m.square()).sum(1, keepdim=True)).clamp_min(0)
        far = (rest / p_ext.clamp_min(1e-12)).sqrt()
        m = torch.where(ext, torch.where(upper, far, -far), m)
        z = m.gather(1, k)
        ok = (p_ext > 0).squeeze(1)
        latent = torch.where(ok[:, None], z * flat.square().mean(1, keepdim=True).sqrt(), flat)
        self.scale.copy_(torch.where(ok, best_step.squeeze(1) * (n // 2), self.scale))
        return rotate(latent.reshape(wr.shape), self.block)

    def bits_per_weight(self, shape: tuple[int, ...]) -> float:
        """Code bits plus the scale per output channel (float32, or E4M3 and one float32 for
        the tensor), per weight."""
        if self.scale_format == "e4m3":
            return self.bits + (8 * shape[0] + 32) / math.prod(shape)
        return self.bits + 32 * shape[0] / math.prod(shape)


class BBQBlockWeight(nn.Module):
    """BBQ with the bell fitted per block of `block_size` input channels at each kernel tap,
    instead of per output channel: the granularity of an MX block, at MX's storage cost.

    The weight [out, in, kh, kw] is viewed as rows [out * kh * kw * in / g, g] (g =
    block_size, or `in` if it is not a multiple), and each row is one `BBQWeight` row: Hadamard
    rotation within the row, its own RMS (the bell), equiprobable boxes, uniform levels, one
    scale per row, stored as E4M3 with a float32 scale per tensor (4 + 8 / 32 bits per weight
    at g = 32; MXFP4 stores 4 + 8 / 32 too). The rows are the blocks an MX dot-product unit
    reduces (input channels), so a layer is still an integer dot product per block, scaled
    and accumulated. The paper fits the bell per tensor or per output channel; this is the
    same quantizer at a finer granularity, offered beside the per-channel `BBQWeight`.

    :param weight: [out, in, ...] the float weight it is fitted to
    :param bits: 2, 3 or 4
    :param block_size: input channels per block (the paper: the whole row)
    """

    def __init__(self, weight: torch.Tensor, bits: int, block_size: int = 32,
                 latent_init: str = "nearest"):
        super().__init__()
        if weight.dim() < 2:
            raise ValueError(f"BBQ quantizes weights [out, in, ...], got {list(weight.shape)}")
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 2:
            raise ValueError(f"BBQ block_size={block_size!r} is not allowed: an integer >= 2")
        self.block_size = block_size
        self.group = block_size if weight.shape[1] % block_size == 0 else weight.shape[1]
        self.inner = BBQWeight(self.rows(weight.detach()), bits, latent_init=latent_init,
                               scale_format="e4m3")

    @property
    def bits(self) -> int:
        return self.inner.bits

    @property
    def latent_init(self) -> str:
        return self.inner.latent_init

    @property
    def scheme(self) -> str:
        return f"bbq{self.bits}-g{self.block_size}"

    def rows(self, w: torch.Tensor) -> torch.Tensor:
        """[out, in, *taps] -> [out * taps * in / g, g] (input channels last, in blocks)."""
        return w.movedim(1, -1).reshape(-1, self.group)

    @staticmethod
    def unrows(v: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        """Inverse of `rows` for a weight of `shape`."""
        out, cin, *taps = shape
        return v.reshape(out, *taps, cin).movedim(-1, 1)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """:param w: [out, in, ...] float32 -> w_hat, same shape, differentiable (STE)"""
        return self.unrows(self.inner(self.rows(w)), w.shape)

    def codes(self, w: torch.Tensor) -> torch.Tensor:
        """Box indices k, [rows, g] int64."""
        return self.inner.codes(self.rows(w))

    @torch.no_grad()
    def nearest_latent(self, weight: torch.Tensor) -> torch.Tensor:
        """`BBQWeight.nearest_latent` per block row; same shape as `weight`."""
        return self.unrows(self.inner.nearest_latent(self.rows(weight)), weight.shape)

    def encode(self, w: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict]:
        tensors, meta = self.inner.encode(self.rows(w))
        return tensors, meta | {"scheme": self.scheme, "weight_shape": list(w.shape)}

    @staticmethod
    def decode(tensors: dict[str, torch.Tensor], meta: dict) -> torch.Tensor:
        return BBQBlockWeight.unrows(BBQWeight.decode(tensors, meta), meta["weight_shape"])

    def bits_per_weight(self, shape: tuple[int, ...]) -> float:
        rows = math.prod(shape) // self.group
        return self.inner.bits_per_weight((rows, self.group))


def _e4m3_split(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row scales s ~ q g: q E4M3 values (float64, nearest even, saturating) and g the float32
    tensor scale that maps the largest row scale to E4M3's largest value.

    :param s: [rows] float32
    :return: q [rows] float64, g 0-d float32
    """
    g = (s.abs().max() / E4M3.max_value).clamp_min(1e-30).float()
    return round_elements((s / g).double(), E4M3), g


def _ndtri(p: torch.Tensor) -> torch.Tensor:
    """Inverse of the standard normal CDF."""
    return math.sqrt(2.0) * torch.erfinv(2.0 * p - 1.0)


def entropy_bits(codes: torch.Tensor, levels: int) -> float:
    """Empirical entropy (bits) of integer codes in 0..levels-1."""
    p = torch.bincount(codes.reshape(-1).long(), minlength=levels).double()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log2()).sum())
