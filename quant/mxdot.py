"""The MX dot product as a VMXDOTP-style vector unit computes it, and layers built on it.

For two MX vectors blocked alike along the reduction axis (OCP MX v1.0 section 6.2):

    dot(A, B) = sum_j 2^(sA_j + sB_j) * sum_i a_ji * b_ji

The per-block sum of element products is exact (element products have at most 8 significant
bits and 32 of them fit float64's mantissa for every element format but E5M2's widest spans);
the block results, scaled by both shared exponents, are accumulated block after block in FP32,
as the unit's FP32 accumulator does.

`MXLinear` / `MXConv2d` quantize weights (and optionally activations) and reduce with that
dot product. The convolution unfolds the input and orders its reduction axis (kernel tap, input
channel), channels innermost, so each 32-block is the channels of one input pixel: the blocks of
activations along the channel axis of the feature map are exactly the blocks the unit reads, and
`fake_quantize_mx(x, fmt, axis=1)` followed by an ordinary convolution gives the same numbers up
to FP32 summation order (used for speed in `dmrx.quant.layers`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dmrx.quant.formats import DEFAULT_BLOCK_SIZE
from dmrx.quant.mx import mx_elements


def mx_operand(x: torch.Tensor, fmt: str, block_size: int = DEFAULT_BLOCK_SIZE):
    """Quantize along the last axis into the unit's operand form.

    :param x: [..., K] float
    :return: (elements [..., num_blocks, block_size] float64 element values, exponents
        [..., num_blocks] int32, finite [..., num_blocks] bool)
    """
    _, _, q, e, finite = mx_elements(x, fmt, block_size, -1)
    return q, e, finite


def mx_block_dot(qa: torch.Tensor, ea: torch.Tensor, fa: torch.Tensor, qb: torch.Tensor,
                 eb: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    """All-pairs MX dot products of blocked operands.

    :param qa: [M, J, block] float64 elements, `ea` [M, J] int32 exponents, `fa` [M, J] bool
    :param qb: [N, J, block], `eb` [N, J], `fb` [N, J], blocked like `qa`
    :return: [M, N] float32: per-block exact products, scaled by 2^(ea + eb), accumulated over
        the J blocks in order in FP32; NaN where a block scale is NaN
    """
    if qa.shape[1:] != qb.shape[1:]:
        raise ValueError(f"operands are blocked differently: {list(qa.shape[1:])} vs "
                         f"{list(qb.shape[1:])}")
    blocks = torch.einsum("mjk,njk->mnj", qa, qb)  # exact per-block sums, float64
    scale = torch.exp2((ea.unsqueeze(1) + eb.unsqueeze(0)).to(torch.float64))
    # the scaled block result enters the FP32 accumulator: round it to FP32 there
    terms = (blocks * scale).to(torch.float32)
    terms = torch.where(fa.unsqueeze(1) & fb.unsqueeze(0), terms, torch.nan)
    acc = torch.zeros(terms.shape[:2], dtype=torch.float32)
    for j in range(terms.shape[-1]):  # the unit accumulates block after block
        acc = acc + terms[..., j]
    return acc


def mx_matmul(a: torch.Tensor, b: torch.Tensor, fmt_a: str, fmt_b: str | None = None,
              block_size: int = DEFAULT_BLOCK_SIZE) -> torch.Tensor:
    """a @ b.T with both operands MX-quantized along K.

    :param a: [M, K] float
    :param b: [N, K] float
    :return: [M, N] float32
    """
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"mx_matmul needs [M, K] and [N, K], got {list(a.shape)} and "
                         f"{list(b.shape)}")
    return mx_block_dot(*mx_operand(a, fmt_a, block_size),
                        *mx_operand(b, fmt_b or fmt_a, block_size))


class MXLinear(nn.Module):
    """A linear layer whose products run on the emulated MX dot-product unit.

    :param linear: the float layer, its weight [out, in] is quantized along `in`
    :param weight_fmt: MX format of the weights
    :param act_fmt: MX format of the inputs (None: the weight format)
    :input x: [..., in] float32
    :output: [..., out] float32
    """

    def __init__(self, linear: nn.Linear, weight_fmt: str, act_fmt: str | None = None,
                 block_size: int = DEFAULT_BLOCK_SIZE):
        super().__init__()
        self.weight_fmt, self.act_fmt = weight_fmt, act_fmt or weight_fmt
        self.block_size = block_size
        self.register_buffer("weight", linear.weight.detach().clone())
        self.register_buffer("bias", None if linear.bias is None else
                             linear.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        out = mx_matmul(x.reshape(-1, x.shape[-1]), self.weight, self.act_fmt,
                        self.weight_fmt, self.block_size)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*lead, -1)


class MXConv2d(nn.Module):
    """A 2-D convolution on the emulated MX dot-product unit (unfold, then `mx_block_dot`).

    Reduction order (kernel tap, input channel): blocks of `block_size` input channels per tap,
    the channels zero-padded to whole blocks per tap.

    :param conv: the float layer (any padding / dilation / stride, groups = 1)
    :input x: [batch, in_channels, height, width] float32
    :output: [batch, out_channels, height', width'] float32
    """

    def __init__(self, conv: nn.Conv2d, weight_fmt: str, act_fmt: str | None = None,
                 block_size: int = DEFAULT_BLOCK_SIZE):
        super().__init__()
        if conv.groups != 1 or isinstance(conv.padding, str):
            raise ValueError("MXConv2d supports groups=1 and numeric padding")
        self.weight_fmt, self.act_fmt = weight_fmt, act_fmt or weight_fmt
        self.block_size = block_size
        self.kernel_size, self.padding = conv.kernel_size, conv.padding
        self.dilation, self.stride = conv.dilation, conv.stride
        self.register_buffer("weight", conv.weight.detach().clone())
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        o = self.weight.shape[0]
        taps = self.kernel_size[0] * self.kernel_size[1]
        cols = F.unfold(x, self.kernel_size, dilation=self.dilation, padding=self.padding,
                        stride=self.stride)  # [b, c * taps, L], channel-major
        length = cols.shape[-1]
        a = cols.reshape(b, c, taps, length).permute(0, 3, 2, 1).reshape(b * length, taps, c)
        wt = self.weight.reshape(o, c, taps).permute(0, 2, 1)  # [o, taps, c]
        qa, ea, fa = mx_operand(a, self.act_fmt, self.block_size)  # [bL, taps, nb, k]
        qw, ew, fw = mx_operand(wt, self.weight_fmt, self.block_size)
        out = mx_block_dot(qa.flatten(1, 2), ea.flatten(1), fa.flatten(1),
                           qw.flatten(1, 2), ew.flatten(1), fw.flatten(1))  # [bL, o]
        if self.bias is not None:
            out = out + self.bias
        h_out = (h + 2 * self.padding[0] - self.dilation[0] * (self.kernel_size[0] - 1) - 1) \
            // self.stride[0] + 1
        w_out = length // h_out
        return out.reshape(b, h_out, w_out, o).permute(0, 3, 1, 2)
