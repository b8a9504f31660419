"""ADC quantization of IQ samples against quantization theory."""

import math

import pytest
import torch

from dmrx.quant import ADC, ADCConfig, QuantizedInput, gaussian_sqnr_db, optimal_clip_db
from dmrx.quant.adc import gaussian_quantizer_mse


def _sqnr_db(x, xq):
    return 10 * math.log10(x.square().mean() / (xq - x).square().mean())


def test_many_bits_is_nearly_identity():
    torch.manual_seed(0)
    y = torch.randn(4, 1, 2, 14, 48, dtype=torch.complex64) * 3e-3
    yq = ADC(ADCConfig(bits=16))(y)
    assert yq.shape == y.shape and yq.dtype == torch.complex64
    assert (yq - y).abs().max() / y.abs().max() < 1e-3


@pytest.mark.parametrize("bits", [6, 8, 10])
def test_full_scale_sine_gives_6_02_b_plus_1_76_db(bits):
    torch.manual_seed(bits)
    n = torch.arange(14 * 48, dtype=torch.float64).reshape(14, 48)
    f = torch.rand(64, 1, 1, 1, 1, dtype=torch.float64) * 0.4 + 0.05
    phase = torch.rand(64, 1, 1, 1, 1, dtype=torch.float64) * 2 * math.pi
    y = torch.exp(1j * (2 * math.pi * f * n + phase)).to(torch.complex64)
    # a unit complex exponential: each component peaks at sqrt(2) x its RMS, i.e. +3.01 dB
    yq = ADC(ADCConfig(bits=bits, clip_db=20 * math.log10(math.sqrt(2)) + 1e-6))(y)
    sqnr = _sqnr_db(y.real.double(), yq.real.double())
    assert sqnr == pytest.approx(6.02 * bits + 1.76, abs=0.5)


@pytest.mark.parametrize("bits", [3, 5, 8])
def test_gaussian_sqnr_matches_clipping_theory(bits):
    torch.manual_seed(bits)
    y = torch.randn(64, 1, 1, 14, 48, dtype=torch.complex64)
    adc = ADC(ADCConfig(bits=bits))
    yq = adc(y)
    theory = gaussian_sqnr_db(bits, adc.clip_db)
    measured = _sqnr_db(torch.view_as_real(y).double(), torch.view_as_real(yq).double())
    assert measured == pytest.approx(theory, abs=0.25)
    # clipping too hard costs SNR, as theory says
    assert gaussian_sqnr_db(bits, adc.clip_db - 6) < theory - 0.5


def test_optimal_clip_is_max_1960():
    # Max (1960), uniform quantizer on N(0, 1): 4 bits -> step 0.3352, clip 8 * step = 2.68
    clip = 10 ** (optimal_clip_db(4) / 20)
    assert clip == pytest.approx(16 * 0.3352 / 2, rel=0.01)
    # the closed form agrees with numerical integration
    x = torch.randn(2_000_000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    step = 2 * clip / 16
    xq = ((torch.floor(x / step).clamp(-8, 7)) + 0.5) * step
    assert (xq - x).square().mean().item() == pytest.approx(gaussian_quantizer_mse(4, clip),
                                                            rel=0.02)


def test_quantized_input_wraps_a_receiver():
    seen = {}

    def rx(y, no):
        seen["y"] = y
        return torch.zeros(y.shape[0], 3)

    adc = ADC(ADCConfig(bits=2, clip_db=0.0))
    y = torch.randn(2, 1, 1, 14, 48, dtype=torch.complex64)
    out = QuantizedInput(rx, adc)(y, 0.1)
    assert out.shape == (2, 3)
    assert seen["y"].real.unique().numel() <= 2 * 4  # 4 levels per slot scale, 2 slots


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="bits=0"):
        ADCConfig(bits=0)
    with pytest.raises(ValueError, match="clip_db=99"):
        ADCConfig(bits=8, clip_db=99)
    with pytest.raises(ValueError, match="complex"):
        ADC(ADCConfig(bits=8))(torch.randn(2, 1, 1, 14, 48))
