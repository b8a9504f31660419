"""dmrx.quant — number formats for baseband hardware, applied to the receiver: OCP MX formats
and their dot product, BBQ, per-layer bit allocation, ADC quantization of the IQ samples, and
packed quantized-receiver checkpoints."""

from dmrx.quant.adc import ADC, ADCConfig, QuantizedInput, gaussian_sqnr_db, optimal_clip_db
from dmrx.quant.allocate import FAMILIES, Allocation, AllocationConfig, allocate
from dmrx.quant.bbq import BBQBlockWeight, BBQWeight, entropy_bits
from dmrx.quant.checkpoint import export_quantized, save_quantized
from dmrx.quant.convert import QuantizeConfig, QuantizeResult, quantize_checkpoint
from dmrx.quant.formats import ELEMENT_FORMATS, MX_ALIASES, MX_FORMATS
from dmrx.quant.layers import (
    SCHEMES,
    QuantConv2d,
    bits_per_weight,
    conv_layers,
    quantization_plan,
    quantize_receiver,
)
from dmrx.quant.mx import MXTensor, dequantize_mx, fake_quantize_mx, quantize_mx
from dmrx.quant.mxdot import MXConv2d, MXLinear, mx_matmul
from dmrx.quant.qat import QATConfig, qat

__all__ = [
    "ADC", "ADCConfig", "QuantizedInput", "gaussian_sqnr_db", "optimal_clip_db", "FAMILIES",
    "Allocation", "AllocationConfig", "allocate", "BBQBlockWeight", "BBQWeight", "entropy_bits",
    "export_quantized", "save_quantized", "QuantizeConfig", "QuantizeResult",
    "quantize_checkpoint", "ELEMENT_FORMATS", "MX_ALIASES", "MX_FORMATS", "SCHEMES",
    "QuantConv2d", "bits_per_weight", "conv_layers", "quantization_plan", "quantize_receiver",
    "MXTensor", "dequantize_mx", "fake_quantize_mx", "quantize_mx", "MXConv2d", "MXLinear",
    "mx_matmul", "QATConfig", "qat",
]
