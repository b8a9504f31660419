"""Weight quantizers (MX, BBQ, uniform INT, none), the quantized convolution, and the one call
that turns a receiver's convolutions into quantized ones.

Every quantizer maps a float weight [out, in, kh, kw] to its dequantized value in the forward
pass and lets the gradient through with a straight-through estimator (STE), so the same module
serves post-training quantization and quantization-aware training; `encode` gives the packed
codes and scales that a checkpoint stores, and `decode` reproduces the forward value exactly.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from dmrx.quant.bbq import BBQ_BITS, BBQBlockWeight, BBQWeight
from dmrx.quant.formats import (
    DEFAULT_BLOCK_SIZE,
    MX_ALIASES,
    MX_FORMATS,
    SCALE_BITS,
    element_format,
)
from dmrx.quant.mx import (
    MXTensor,
    dequantize_mx,
    fake_quantize_mx,
    pack_bits,
    quantize_mx,
    unpack_bits,
)

UNIFORM_BITS = (4, 8)
#: BBQ with its bell fitted per block of this many input channels ('bbq4-g32'), beside the
#: paper's per-output-channel 'bbq4'
BBQ_BLOCK = 32
SCHEMES = ("fp32", *MX_FORMATS, *(f"bbq{b}" for b in BBQ_BITS),
           *(f"bbq{b}-g{BBQ_BLOCK}" for b in BBQ_BITS), *(f"int{b}" for b in UNIFORM_BITS))
#: the axis MX weight blocks run along: input channels, as the dot-product unit reduces them
MX_WEIGHT_AXIS = 1


def canonical_scheme(name: str) -> str:
    """'mxfp4' -> 'mxfp4_e2m1' etc.

    :raises ValueError: not a known scheme
    """
    name = MX_ALIASES.get(name, name)
    if name not in SCHEMES:
        raise ValueError(f"quantization format {name!r} is not allowed: one of "
                         f"{list(SCHEMES)} or {list(MX_ALIASES)}")
    return name


def ste(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """x_hat forward, identity gradient (straight-through estimator)."""
    return x + (x_hat - x).detach()


class FloatWeight(nn.Module):
    """No quantization ('fp32'): the weight stored as float32."""

    scheme = "fp32"

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w

    def encode(self, w: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict]:
        return {"values": w.detach().float().contiguous()}, {"scheme": "fp32",
                                                             "shape": list(w.shape)}

    @staticmethod
    def decode(tensors: dict[str, torch.Tensor], meta: dict) -> torch.Tensor:
        return tensors["values"].float()

    def bits_per_weight(self, shape: tuple[int, ...]) -> float:
        return 32.0


class MXWeight(nn.Module):
    """MX quantizer of a weight, blocks of `block_size` along the input channels."""

    def __init__(self, fmt: str, block_size: int = DEFAULT_BLOCK_SIZE):
        super().__init__()
        self.elem = element_format(fmt)
        self.scheme = self.elem.name
        self.block_size = block_size

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return ste(w, fake_quantize_mx(w.detach(), self.scheme, self.block_size,
                                       MX_WEIGHT_AXIS))

    def encode(self, w: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict]:
        t = quantize_mx(w.detach(), self.scheme, self.block_size, MX_WEIGHT_AXIS)
        meta = {"scheme": self.scheme, "shape": list(t.shape), "axis": t.axis,
                "block_size": t.block_size, "scales_shape": list(t.scales.shape)}
        return {"codes": t.packed, "scales": t.scales.reshape(-1)}, meta

    @staticmethod
    def decode(tensors: dict[str, torch.Tensor], meta: dict) -> torch.Tensor:
        t = MXTensor(tensors["codes"], tensors["scales"].reshape(meta["scales_shape"]),
                     meta["scheme"], tuple(meta["shape"]), int(meta["axis"]),
                     int(meta["block_size"]))
        return dequantize_mx(t)

    def bits_per_weight(self, shape: tuple[int, ...]) -> float:
        """Element bits plus one 8-bit scale per (possibly partial) block, per weight."""
        blocks = math.prod(shape) // shape[MX_WEIGHT_AXIS] * \
            math.ceil(shape[MX_WEIGHT_AXIS] / self.block_size)
        return self.elem.bits + blocks * SCALE_BITS / math.prod(shape)


class UniformWeight(nn.Module):
    """Baseline: symmetric uniform INT-b per output channel, scale = max|w| / (2^(b-1) - 1)
    stored as float32."""

    def __init__(self, bits: int):
        super().__init__()
        if bits not in UNIFORM_BITS:
            raise ValueError(f"uniform bits={bits!r} is not allowed: one of {UNIFORM_BITS}")
        self.bits = bits
        self.scheme = f"int{bits}"
        self.qmax = (1 << (bits - 1)) - 1

    def _scale(self, w: torch.Tensor) -> torch.Tensor:
        return (w.detach().flatten(1).abs().amax(1) / self.qmax).clamp_min(1e-12)

    def _codes(self, w: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        shape = (-1, *[1] * (w.dim() - 1))
        return torch.round(w.detach() / scale.reshape(shape)).clamp(-self.qmax, self.qmax)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        s = self._scale(w)
        return ste(w, self._codes(w, s) * s.reshape(-1, *[1] * (w.dim() - 1)))

    def encode(self, w: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict]:
        s = self._scale(w)
        k = self._codes(w, s).to(torch.int16).reshape(-1) & ((1 << self.bits) - 1)
        return ({"codes": pack_bits(k.to(torch.uint8), self.bits), "scales": s.float()},
                {"scheme": self.scheme, "shape": list(w.shape), "bits": self.bits})

    @staticmethod
    def decode(tensors: dict[str, torch.Tensor], meta: dict) -> torch.Tensor:
        shape, bits = tuple(meta["shape"]), int(meta["bits"])
        k = unpack_bits(tensors["codes"], bits, math.prod(shape)).to(torch.int16)
        k = torch.where(k >= 1 << (bits - 1), k - (1 << bits), k).float()  # sign-extend
        return k.reshape(shape) * tensors["scales"].float().reshape(-1, *[1] * (len(shape) - 1))

    def bits_per_weight(self, shape: tuple[int, ...]) -> float:
        return self.bits + 32 * shape[0] / math.prod(shape)


def weight_quantizer(scheme: str, weight: torch.Tensor,
                     block_size: int = DEFAULT_BLOCK_SIZE) -> nn.Module:
    """The quantizer of `scheme` for `weight` ([out, in, ...]; BBQ fits its scale to it)."""
    scheme = canonical_scheme(scheme)
    if scheme == "fp32":
        return FloatWeight()
    if scheme in MX_FORMATS:
        return MXWeight(scheme, block_size)
    if scheme.startswith("bbq") and "-g" in scheme:
        bits, block = scheme[3:].split("-g")
        return BBQBlockWeight(weight, int(bits), int(block))
    if scheme.startswith("bbq"):
        return BBQWeight(weight, int(scheme[3:]))
    return UniformWeight(int(scheme[3:]))


DECODERS = {"fp32": FloatWeight.decode, **{f: MXWeight.decode for f in MX_FORMATS},
            **{f"bbq{b}": BBQWeight.decode for b in BBQ_BITS},
            **{f"bbq{b}-g{BBQ_BLOCK}": BBQBlockWeight.decode for b in BBQ_BITS},
            **{f"int{b}": UniformWeight.decode for b in UNIFORM_BITS}}


def decode_weight(tensors: dict[str, torch.Tensor], meta: dict) -> torch.Tensor:
    """Dequantize a stored weight. :raises ValueError: unknown scheme"""
    scheme = meta.get("scheme")
    if scheme not in DECODERS:
        raise ValueError(f"stored weight has unknown scheme {scheme!r}")
    return DECODERS[scheme](tensors, meta)


class QuantConv2d(nn.Module):
    """A Conv2d with quantized weights (and optionally MX-quantized input activations).

    The float weight stays a parameter (the latent weight QAT updates); the forward pass uses
    its quantized value. Activations are blocked along the channel axis, the blocks the MX
    dot-product unit reads (see `dmrx.quant.mxdot`).

    :input x: [batch, in_channels, height, width] float32
    :output: [batch, out_channels, height', width'] float32
    """

    def __init__(self, conv: nn.Conv2d, scheme: str, act_fmt: str | None = None,
                 block_size: int = DEFAULT_BLOCK_SIZE):
        super().__init__()
        self.weight = nn.Parameter(conv.weight.detach().clone())
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone())
        self.stride, self.padding = conv.stride, conv.padding
        self.dilation, self.groups = conv.dilation, conv.groups
        self.wq = weight_quantizer(scheme, self.weight, block_size)
        if getattr(self.wq, "latent_init", None) == "nearest":
            # BBQ: the latent whose codes are the trained weight's nearest levels
            with torch.no_grad():
                self.weight.copy_(self.wq.nearest_latent(self.weight))
        self.act_fmt = None if act_fmt is None else element_format(act_fmt).name
        self.block_size = block_size

    @property
    def scheme(self) -> str:
        return self.wq.scheme

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.act_fmt is not None:
            x = ste(x, fake_quantize_mx(x.detach(), self.act_fmt, self.block_size, axis=1))
        return F.conv2d(x, self.wq(self.weight), self.bias, self.stride, self.padding,
                        self.dilation, self.groups)

    def encode(self) -> tuple[dict[str, torch.Tensor], dict]:
        return self.wq.encode(self.weight)

    def bits_per_weight(self) -> float:
        return self.wq.bits_per_weight(tuple(self.weight.shape))


def conv_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Name -> module of every Conv2d / QuantConv2d, in definition order."""
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d | QuantConv2d)}


def quantize_receiver(rx: nn.Module, plan: str | dict[str, str],
                      act_fmt: str | None = None,
                      block_size: int = DEFAULT_BLOCK_SIZE) -> nn.Module:
    """A copy of `rx` whose convolutions are `QuantConv2d`s; `rx` itself is left untouched.

    :param plan: one scheme for every layer, or layer name -> scheme (every conv layer named;
        see `conv_layers`); schemes as `SCHEMES` ('fp32' keeps a layer float)
    :param act_fmt: MX format of every conv layer's input activations, None: float
    :raises ValueError: unknown scheme, or a plan that misses or invents layers
    """
    layers = conv_layers(rx)
    if isinstance(plan, str):
        plan = dict.fromkeys(layers, plan)
    if set(plan) != set(layers):
        raise ValueError(f"plan must name exactly the conv layers {sorted(layers)}; missing "
                         f"{sorted(set(layers) - set(plan))}, unknown "
                         f"{sorted(set(plan) - set(layers))}")
    out = copy.deepcopy(rx)
    for name, scheme in plan.items():
        parent_name, _, attr = name.rpartition(".")
        parent = out.get_submodule(parent_name) if parent_name else out
        conv = getattr(parent, attr)
        if isinstance(conv, QuantConv2d):
            raise ValueError(f"layer {name!r} is quantized already")
        setattr(parent, attr, QuantConv2d(conv, scheme, act_fmt, block_size))
    return out


def quantization_plan(rx: nn.Module) -> dict[str, str]:
    """Layer name -> scheme of a quantized receiver."""
    return {n: m.scheme for n, m in conv_layers(rx).items() if isinstance(m, QuantConv2d)}


def bits_per_weight(rx: nn.Module) -> float:
    """Average stored bits per conv weight (scales included) of a quantized receiver."""
    layers = [m for m in conv_layers(rx).values() if isinstance(m, QuantConv2d)]
    total = sum(m.weight.numel() for m in layers)
    return sum(m.bits_per_weight() * m.weight.numel() for m in layers) / total
