"""OCP Microscaling (MX v1.0) quantization: blocks of elements sharing one E8M0 scale.

Per block of `block_size` elements along `axis` (zero-padded when the axis is not a multiple):
  shared exponent  e = floor(log2(max|x|)) - emax_elem, clamped to -127..127 (all zeros: -127)
  elements         x / 2^e rounded to the nearest element value, ties to even, subnormals
                   included, magnitudes beyond the element maximum saturated to it
  NaN / Inf        any in the block makes the scale NaN (code 0xFF): the block decodes to NaN
The arithmetic runs in float64, where scaling by 2^e and rounding to <= 4 mantissa bits are
exact, so the results are bit-exact with the spec for float32/bfloat16/float16 inputs.

Codes are the element bit patterns (sign | exponent | mantissa; MXINT8 two's complement) and are
stored packed: 4-bit elements two per byte, 6-bit elements four per three bytes, little-endian
(element i at bit 6*i of a 24-bit word).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dmrx.quant.formats import (
    DEFAULT_BLOCK_SIZE,
    SCALE_BIAS,
    SCALE_EXP_MAX,
    SCALE_EXP_MIN,
    SCALE_NAN_CODE,
    ElementFormat,
    element_format,
)


def _check(x: torch.Tensor, block_size: int, axis: int) -> int:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got "
                         f"{getattr(x, 'dtype', type(x).__name__)}")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size={block_size!r} is not allowed: a positive integer")
    if x.dim() == 0:
        raise ValueError("x must have at least one dimension to block along")
    if not -x.dim() <= axis < x.dim():
        raise ValueError(f"axis={axis} is out of range for a {x.dim()}-d tensor")
    return axis % x.dim()


def to_blocks(x: torch.Tensor, block_size: int, axis: int) -> torch.Tensor:
    """[..., n (at axis), ...] -> [..., ceil(n / block_size), block_size] float64, the blocked
    axis moved last and zero-padded (zeros never raise a block's max, so padding is neutral)."""
    x = x.movedim(axis, -1).to(torch.float64)
    pad = (-x.shape[-1]) % block_size
    if pad:
        x = F.pad(x, (0, pad))
    return x.reshape(*x.shape[:-1], -1, block_size)


def from_blocks(b: torch.Tensor, n: int, axis: int) -> torch.Tensor:
    """Inverse of `to_blocks`: drop the padding and move the axis back."""
    return b.reshape(*b.shape[:-2], -1)[..., :n].movedim(-1, axis)


def shared_exponents(blocks: torch.Tensor, elem: ElementFormat) -> tuple[torch.Tensor,
                                                                          torch.Tensor]:
    """Shared scale exponent per block.

    :param blocks: [..., num_blocks, block_size] float64
    :return: (exponent [..., num_blocks] int32 in -127..127, finite [..., num_blocks] bool:
        False where the block holds NaN/Inf and its scale is NaN)
    """
    finite = torch.isfinite(blocks).all(-1)
    amax = torch.where(torch.isfinite(blocks), blocks.abs(), 0.0).amax(-1)
    # frexp: amax = m * 2^k with m in [0.5, 1), so floor(log2(amax)) = k - 1 exactly
    _, k = torch.frexp(amax)
    e = torch.where(amax > 0, k.to(torch.int32) - 1 - elem.emax, SCALE_EXP_MIN)
    return e.clamp(SCALE_EXP_MIN, SCALE_EXP_MAX).to(torch.int32), finite


def round_elements(v: torch.Tensor, elem: ElementFormat) -> torch.Tensor:
    """Round already-scaled values to the element format: nearest, ties to even, saturating.

    :param v: float64, any shape, finite
    :return: float64, same shape, every value representable in `elem`
    """
    if elem.kind == "int":
        step = 2.0 ** -elem.mbits
        return torch.round(v / step).clamp(-elem.int_max, elem.int_max) * step
    a = v.abs()
    _, k = torch.frexp(a)
    # below the smallest normal the spacing stays that of the smallest binade (subnormals)
    e = (k - 1).clamp_min(elem.min_normal_exp).to(torch.float64)
    step = torch.exp2(e - elem.mbits)
    q = (torch.round(a / step) * step).clamp_max(elem.max_value)  # torch.round: ties to even
    return torch.copysign(q, v)


def mx_elements(x: torch.Tensor, fmt: str, block_size: int, axis: int):
    """The parts of an MX tensor before encoding.

    :return: (element format, axis (non-negative), elements [..., num_blocks, block_size]
        float64 element values, exponents [..., num_blocks] int32, finite [..., num_blocks]
        bool), the blocked axis moved last
    """
    elem = element_format(fmt)
    axis = _check(x, block_size, axis)
    blocks = to_blocks(x, block_size, axis)
    e, finite = shared_exponents(blocks, elem)
    safe = torch.where(torch.isfinite(blocks), blocks, 0.0)
    q = round_elements(safe * torch.exp2(-e.to(torch.float64)).unsqueeze(-1), elem)
    return elem, axis, q, e, finite


def fake_quantize_mx(x: torch.Tensor, fmt: str, block_size: int = DEFAULT_BLOCK_SIZE,
                     axis: int = -1) -> torch.Tensor:
    """Quantize to MX and back (not differentiable; see `dmrx.quant.layers` for the STE).

    :param x: floating-point tensor, any shape
    :param fmt: one of 'mxfp8_e4m3', 'mxfp8_e5m2', 'mxfp6_e3m2', 'mxfp6_e2m3', 'mxfp4_e2m1',
        'mxint8' (or the aliases 'mxfp8', 'mxfp6', 'mxfp4')
    :param block_size: elements per shared scale (the spec's k = 32)
    :param axis: the axis blocks run along; a partial last block is zero-padded
    :return: x's shape and dtype; NaN for every element of a block holding NaN or Inf
    :raises ValueError: unknown format, non-float x, bad block_size or axis
    """
    _, axis, q, e, finite = mx_elements(x, fmt, block_size, axis)
    out = q * torch.exp2(e.to(torch.float64)).unsqueeze(-1)
    out = torch.where(finite.unsqueeze(-1), out, math.nan)
    return from_blocks(out, x.shape[axis], axis).to(x.dtype)


# --- element codes and bit packing ------------------------------------------------------------

def encode_elements(q: torch.Tensor, elem: ElementFormat) -> torch.Tensor:
    """Bit patterns of element values (as `round_elements` returns them).

    :param q: float64, representable in `elem`
    :return: uint8, same shape, the low `elem.bits` bits used
    """
    if elem.kind == "int":
        k = torch.round(q * 2.0 ** elem.mbits).to(torch.int16)
        return (k & 0xFF).to(torch.uint8)  # two's complement in 8 bits
    sign = torch.signbit(q).to(torch.int16)
    a = q.abs()
    _, k = torch.frexp(a)
    e = (k - 1).to(torch.int16)
    sub = a < 2.0 ** elem.min_normal_exp
    exp_field = torch.where(sub, 0, e + elem.bias)
    mant = torch.where(sub, a * 2.0 ** (elem.mbits - elem.min_normal_exp),
                       (a * torch.exp2(-e.to(torch.float64)) - 1) * 2.0 ** elem.mbits)
    code = (sign << (elem.bits - 1)) | (exp_field << elem.mbits) | mant.round().to(torch.int16)
    return code.to(torch.uint8)


def decode_elements(codes: torch.Tensor, elem: ElementFormat) -> torch.Tensor:
    """Values of element bit patterns (every code, incl. the specials of E4M3/E5M2).

    :param codes: uint8, any shape
    :return: float64, same shape
    """
    c = codes.to(torch.int16)
    if elem.kind == "int":
        k = torch.where(c >= 128, c - 256, c)
        return k.to(torch.float64) * 2.0 ** -elem.mbits
    sign = torch.where((c >> (elem.bits - 1)) & 1 == 1, -1.0, 1.0).to(torch.float64)
    ef = (c >> elem.mbits) & ((1 << elem.ebits) - 1)
    m = (c & ((1 << elem.mbits) - 1)).to(torch.float64)
    val = torch.where(ef == 0, m * 2.0 ** (elem.min_normal_exp - elem.mbits),
                      (1 + m * 2.0 ** -elem.mbits) * torch.exp2((ef - elem.bias).to(
                          torch.float64)))
    top = ef == (1 << elem.ebits) - 1
    if elem.name == "mxfp8_e4m3":  # S.1111.111 is NaN, no Inf
        val = torch.where(top & (m == (1 << elem.mbits) - 1), math.nan, val)
    elif elem.name == "mxfp8_e5m2":  # IEEE-like: exponent 31 is Inf (m = 0) or NaN
        val = torch.where(top, torch.where(m == 0, math.inf, math.nan), val)
    return sign * val


def pack_bits(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack the low `bits` bits of each code densely, little-endian.

    :param codes: uint8 [n]
    :return: uint8 [ceil(n * bits / 8)]
    """
    if bits not in range(1, 9):
        raise ValueError(f"bits={bits} is not allowed: 1..8")
    codes = codes.reshape(-1)
    n = codes.numel()
    word_bits = math.lcm(bits, 8)  # a whole number of elements and of bytes
    per_word, word_bytes = word_bits // bits, word_bits // 8
    c = F.pad(codes.to(torch.int64), (0, (-n) % per_word)).reshape(-1, per_word)
    c = c & ((1 << bits) - 1)
    word = (c << (bits * torch.arange(per_word))).sum(-1)
    out = (word.unsqueeze(-1) >> (8 * torch.arange(word_bytes))) & 0xFF
    return out.reshape(-1)[: math.ceil(n * bits / 8)].to(torch.uint8)


def unpack_bits(packed: torch.Tensor, bits: int, n: int) -> torch.Tensor:
    """Inverse of `pack_bits`: uint8 [ceil(n * bits / 8)] -> uint8 [n]."""
    if bits not in range(1, 9):
        raise ValueError(f"bits={bits} is not allowed: 1..8")
    if packed.numel() != math.ceil(n * bits / 8):
        raise ValueError(f"packed holds {packed.numel()} bytes, {n} codes of {bits} bits need "
                         f"{math.ceil(n * bits / 8)}")
    word_bits = math.lcm(bits, 8)
    per_word, word_bytes = word_bits // bits, word_bits // 8
    b = F.pad(packed.reshape(-1).to(torch.int64), (0, (-packed.numel()) % word_bytes))
    word = (b.reshape(-1, word_bytes) << (8 * torch.arange(word_bytes))).sum(-1)
    c = (word.unsqueeze(-1) >> (bits * torch.arange(per_word))) & ((1 << bits) - 1)
    return c.reshape(-1)[:n].to(torch.uint8)


@dataclass(frozen=True)
class MXTensor:
    """An MX-quantized tensor as stored: packed element codes plus E8M0 scale codes.

    :param packed: uint8 [ceil(num_elements * bits / 8)], the element codes with the blocked
        axis moved last (block padding not stored), packed
    :param scales: uint8 [..., num_blocks] E8M0 codes (exponent + 127; 0xFF = NaN)
    :param shape: the original tensor's shape
    """

    packed: torch.Tensor
    scales: torch.Tensor
    fmt: str
    shape: tuple[int, ...]
    axis: int
    block_size: int

    @property
    def num_elements(self) -> int:
        """Elements stored (the tensor's, without block padding)."""
        return math.prod(self.shape)

    def nbytes(self) -> int:
        """Bytes of storage: packed elements and scales."""
        return self.packed.numel() + self.scales.numel()


def quantize_mx(x: torch.Tensor, fmt: str, block_size: int = DEFAULT_BLOCK_SIZE,
                axis: int = -1) -> MXTensor:
    """MX-quantize `x` to packed codes and scales; `dequantize_mx` gives `fake_quantize_mx(x)`.

    :raises ValueError: as `fake_quantize_mx`
    """
    elem, axis, q, e, finite = mx_elements(x, fmt, block_size, axis)
    scales = torch.where(finite, e + SCALE_BIAS, SCALE_NAN_CODE).to(torch.uint8)
    # only the real elements are stored: the padding of a partial block is implied (zeros)
    codes = encode_elements(q, elem).reshape(*q.shape[:-2], -1)[..., : x.shape[axis]]
    packed = pack_bits(codes.reshape(-1), elem.bits)
    return MXTensor(packed, scales, elem.name, tuple(x.shape), axis, block_size)


def dequantize_mx(t: MXTensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """:return: [t.shape] `dtype`"""
    elem = element_format(t.fmt)
    n = t.shape[t.axis]
    codes = unpack_bits(t.packed, elem.bits, t.num_elements).reshape(*t.scales.shape[:-1], n)
    codes = F.pad(codes, (0, t.scales.shape[-1] * t.block_size - n))
    q = decode_elements(codes, elem).reshape(*t.scales.shape, t.block_size)
    s = t.scales.to(torch.int32)
    out = q * torch.exp2((s - SCALE_BIAS).to(torch.float64)).unsqueeze(-1)
    out = torch.where((s != SCALE_NAN_CODE).unsqueeze(-1), out, math.nan)
    return from_blocks(out, t.shape[t.axis], t.axis).to(dtype)
