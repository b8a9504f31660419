"""The convolutional residual network over the resource grid that dmrx's receivers share."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

LS_INPUTS = ("none", "pilots", "smoothed")


@dataclass(frozen=True)
class ResNetConfig:
    """:param num_channels: width of the residual blocks
    :param num_blocks: residual blocks (two 3x3 convolutions each)
    :param dilations: per block, (time, frequency) dilation, cycled if shorter than num_blocks;
        dilation widens the receptive field so data far from the DMRS symbols sees them
    :param ls_input: channel-estimate features of the neural receiver: 'none'; 'pilots' (the
        raw LS estimate y/p on the DMRS REs, DeepRx-style); 'smoothed' (those, plus their
        normalised-convolution interpolation over the whole grid and the symbols it equalises)
    :param data_aided_passes: neural receiver only: refinement passes after the first
        detection; each re-estimates the channel from the previous pass's soft symbols (soft
        decision-directed, leave-one-out) and a further network of this shape corrects the LLRs
        (an unrolled iterative receiver: tracks a channel that changes between DMRS symbols)
    """

    num_channels: int = 32
    num_blocks: int = 4
    dilations: tuple[tuple[int, int], ...] = ((1, 1), (2, 2), (1, 3), (1, 1))
    ls_input: str = "smoothed"
    data_aided_passes: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.num_channels <= 1024:
            raise ValueError(f"ResNetConfig.num_channels={self.num_channels} is not "
                             "allowed: 1..1024")
        if not 1 <= self.num_blocks <= 64:
            raise ValueError(f"ResNetConfig.num_blocks={self.num_blocks} is not allowed: 1..64")
        try:
            dil = tuple(tuple(int(v) for v in d) for d in self.dilations)
        except (TypeError, ValueError):
            dil = ()
        if not dil or any(len(d) != 2 or min(d) < 1 for d in dil):
            raise ValueError(f"ResNetConfig.dilations={self.dilations} is not allowed: "
                             "non-empty pairs of positive (time, frequency) dilations")
        object.__setattr__(self, "dilations", dil)
        if self.ls_input not in LS_INPUTS:
            raise ValueError(f"ResNetConfig.ls_input={self.ls_input!r} is not allowed: one of "
                             f"{LS_INPUTS}")
        if not (isinstance(self.data_aided_passes, int) and 0 <= self.data_aided_passes <= 8):
            raise ValueError(f"ResNetConfig.data_aided_passes={self.data_aided_passes!r} is not "
                             "allowed: an integer in 0..8")

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if not d["data_aided_passes"]:  # absent when unused: older checkpoints' configs and
            del d["data_aided_passes"]  # resumable runs keep the same dict
        return d

    def replace(self, **changes) -> ResNetConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, d: dict) -> ResNetConfig:
        return cls(**{k: (tuple(map(tuple, v)) if k == "dilations" else v)
                      for k, v in d.items() if k in cls.__dataclass_fields__})


class ResidualBlock(nn.Module):
    """Pre-activation residual block: (GroupNorm -> ReLU -> conv 3x3) x 2 + skip.

    GroupNorm(1, C) normalises over channels, symbols and subcarriers like the LayerNorm of
    Sionna's neural-receiver tutorial, without tying the weights to one grid size.

    :input z: [batch, channels, num_ofdm_symbols, fft_size]
    """

    def __init__(self, channels: int, dilation: tuple[int, int]):
        super().__init__()
        self.norm1 = nn.GroupNorm(1, channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.norm2 = nn.GroupNorm(1, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv1(torch.relu(self.norm1(z)))
        return z + self.conv2(torch.relu(self.norm2(h)))


class GridResNet(nn.Module):
    """conv 3x3 -> residual blocks -> GroupNorm, ReLU, conv 3x3.

    :input: [batch, in_channels, num_ofdm_symbols, fft_size] float32
    :output: [batch, out_channels, num_ofdm_symbols, fft_size] float32
    """

    def __init__(self, in_channels: int, out_channels: int, config: ResNetConfig):
        super().__init__()
        c = config.num_channels
        self.input_conv = nn.Conv2d(in_channels, c, 3, padding=1)
        self.blocks = nn.ModuleList(
            ResidualBlock(c, config.dilations[i % len(config.dilations)])
            for i in range(config.num_blocks))
        self.output_norm = nn.GroupNorm(1, c)
        self.output_conv = nn.Conv2d(c, out_channels, 3, padding=1)
        self.adapter: nn.Module | None = None

    def add_adapter(self, rank: int = 4) -> nn.Module:
        """Insert a residual bottleneck (1x1 conv C -> rank -> C) before the output head, with a
        zero-initialised up-projection so the network's function is unchanged until trained.
        Online adaptation can then train only these few weights."""
        c = self.output_conv.in_channels
        up = nn.Conv2d(rank, c, 1)
        nn.init.zeros_(up.weight)
        nn.init.zeros_(up.bias)
        self.adapter = nn.Sequential(nn.Conv2d(c, rank, 1), nn.ReLU(), up)
        return self.adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.input_conv(x)
        for block in self.blocks:
            z = block(z)
        if self.adapter is not None:
            z = z + self.adapter(z)
        return self.output_conv(torch.relu(self.output_norm(z)))
