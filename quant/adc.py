"""ADC quantization of the received IQ samples, as a channel stage.

Each slot and receive antenna has an AGC that scales its samples to a target RMS; the I and Q
ADCs are uniform mid-rise quantizers with 2^bits levels over [-A, A], the clipping level A set
`clip_db` above the RMS of one real component; samples beyond clip saturate to the outer level.
The output is scaled back by the AGC gain (the baseband knows its gain), so receivers see the
signal at its original level and the noise variance `no` keeps its meaning.

With `clip_db=None` the clipping level is the one minimising the mean-square error of a
Gaussian input (an OFDM signal is close to Gaussian), computed from the closed-form distortion
of a uniform quantizer on N(0, 1) (`gaussian_quantizer_mse`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.stats import norm

ADC_BITS = range(1, 17)


def gaussian_quantizer_mse(bits: int, clip: float) -> float:
    """MSE of the mid-rise uniform quantizer with 2^bits levels over [-clip, clip] on N(0, 1):
    sum over cells of E[(x - level)^2] (granular and overload noise, exactly).

    Uses, on a cell [a, b) with level c: int (x - c)^2 phi = (1 + c^2)(Phi(b) - Phi(a))
    + (a - 2c) phi(a) - (b - 2c) phi(b).
    """
    n = 1 << bits
    step = 2 * clip / n
    levels = -clip + step * (np.arange(n) + 0.5)
    edges = np.concatenate([[-np.inf], -clip + step * np.arange(1, n), [np.inf]])
    a, b = edges[:-1], edges[1:]
    pa, pb = norm.pdf(a), norm.pdf(b)
    a_pa = np.where(np.isfinite(a), a, 0.0) * pa  # x phi(x) -> 0 at +-inf
    b_pb = np.where(np.isfinite(b), b, 0.0) * pb
    mass = norm.cdf(b) - norm.cdf(a)
    return float(np.sum((1 + levels ** 2) * mass + a_pa - 2 * levels * pa - b_pb
                        + 2 * levels * pb))


def optimal_clip_db(bits: int) -> float:
    """Clipping level (dB above the RMS) minimising `gaussian_quantizer_mse`."""
    r = minimize_scalar(lambda c: gaussian_quantizer_mse(bits, c), bounds=(0.5, 8.0),
                        method="bounded", options={"xatol": 1e-6})
    return 20 * math.log10(r.x)


def gaussian_sqnr_db(bits: int, clip_db: float) -> float:
    """Theoretical SQNR (dB) of one real component of a Gaussian signal through the ADC."""
    return -10 * math.log10(gaussian_quantizer_mse(bits, 10 ** (clip_db / 20)))


@dataclass(frozen=True)
class ADCConfig:
    """:param bits: bits per real component (I and Q each), 1..16
    :param clip_db: clipping level in dB above the per-component RMS after the AGC; None:
        the Gaussian-MSE-optimal level for `bits`
    :param target_rms: RMS of the complex samples the AGC aims at (the ADC's full scale is
        `target_rms / sqrt(2) * 10^(clip_db / 20)` per component)
    """

    bits: int
    clip_db: float | None = None
    target_rms: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or self.bits not in ADC_BITS:
            raise ValueError(f"ADCConfig.bits={self.bits!r} is not allowed: an integer in "
                             "1..16")
        if self.clip_db is not None and not (-20.0 <= self.clip_db <= 40.0):
            raise ValueError(f"ADCConfig.clip_db={self.clip_db!r} is not allowed: -20..40 dB "
                             "or None")
        if not (self.target_rms > 0 and math.isfinite(self.target_rms)):
            raise ValueError(f"ADCConfig.target_rms={self.target_rms!r} is not allowed: a "
                             "positive number")

    @property
    def clip_level_db(self) -> float:
        return optimal_clip_db(self.bits) if self.clip_db is None else float(self.clip_db)


class ADC(torch.nn.Module):
    """AGC + I/Q uniform quantizers.

    :input y: [batch, num_rx, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :output: same shape and dtype, quantized (and scaled back by the AGC gain)
    """

    def __init__(self, cfg: ADCConfig):
        super().__init__()
        self.cfg = cfg
        self.clip_db = cfg.clip_level_db

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if not torch.is_complex(y) or y.dim() != 5:
            raise ValueError(f"y must be complex [batch, num_rx, num_rx_ant, num_ofdm_symbols, "
                             f"fft_size], got {y.dtype} {list(y.shape)}")
        # AGC per slot and antenna over the slot's samples
        rms = y.abs().square().mean(dim=(-2, -1), keepdim=True).sqrt().clamp_min(1e-30)
        gain = self.cfg.target_rms / rms
        clip = self.cfg.target_rms / math.sqrt(2) * 10 ** (self.clip_db / 20)
        n = 1 << self.cfg.bits
        step = 2 * clip / n

        def quantize(v: torch.Tensor) -> torch.Tensor:
            k = torch.floor(v / step).clamp(-n // 2, n // 2 - 1)
            return (k + 0.5) * step

        z = y * gain
        q = torch.complex(quantize(z.real), quantize(z.imag))
        return (q / gain).to(y.dtype)


class QuantizedInput(torch.nn.Module):
    """A receiver fed ADC-quantized samples: `rx(adc(y), no)`, same contract as `rx`.

    :input y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64, `no` as `rx` takes
    :output: what `rx` outputs (llr [batch, num_coded_bits] float32)
    """

    def __init__(self, receiver: torch.nn.Module, adc: ADC):
        super().__init__()
        self.receiver, self.adc = receiver, adc
        self.requires_csi = getattr(receiver, "requires_csi", False)
        self.kind = getattr(receiver, "kind", None)

    def forward(self, y: torch.Tensor, no, **kwargs) -> torch.Tensor:
        return self.receiver(self.adc(y), no, **kwargs)
