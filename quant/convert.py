"""Checkpoint in, quantized checkpoint out: the one call behind `dmrx quantize`.

float checkpoint -> (optional) per-layer allocation under a budget -> quantized receiver ->
(optional) quantization-aware fine-tuning -> packed quantized checkpoint.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dmrx.nn.checkpoint import CheckpointError, load_receiver, read_config
from dmrx.quant.allocate import FAMILIES, AllocationConfig, allocate, family_of
from dmrx.quant.checkpoint import save_quantized
from dmrx.quant.formats import DEFAULT_BLOCK_SIZE, element_format
from dmrx.quant.layers import (
    bits_per_weight,
    canonical_scheme,
    quantization_plan,
    quantize_receiver,
)
from dmrx.quant.qat import QATConfig, SlotStream, calibration_loss, qat, train_config_of


@dataclass(frozen=True)
class QuantizeConfig:
    """:param format: weight format of every layer ('mxfp4', 'bbq4', 'int8', ... see
        `dmrx.quant.SCHEMES`); with `allocate`, it names the family the allocator picks from
    :param qat: fine-tuning after quantization (steps=0: post-training only)
    :param act_fmt: MX format of the conv layers' input activations, None: float
    :param allocate: choose a format per layer under `budget`
    :param budget: average bits per weight incl. scales ('bits') or BOPs per slot ('bops')
    :param calibration_batches: slots (in batches of `qat.batch_size`) the allocator measures
        sensitivities on, drawn from their own seed
    """

    format: str
    qat: QATConfig = field(default_factory=lambda: QATConfig(steps=0))
    act_fmt: str | None = None
    allocate: bool = False
    budget: float | None = None
    budget_kind: str = "bits"
    calibration_batches: int = 4
    block_size: int = DEFAULT_BLOCK_SIZE

    def __post_init__(self) -> None:
        object.__setattr__(self, "format", canonical_scheme(self.format))
        if self.act_fmt is not None:
            object.__setattr__(self, "act_fmt", element_format(self.act_fmt).name)
        if self.allocate and self.budget is None:
            raise ValueError("QuantizeConfig.budget=None is not allowed with allocate: give "
                             "--budget-bits")
        if self.allocate:
            family_of(self.format)  # raises for 'fp32'
        if self.calibration_batches < 1:
            raise ValueError(f"QuantizeConfig.calibration_batches={self.calibration_batches}"
                             " is not allowed: >= 1")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class QuantizeResult:
    path: Path
    receiver: torch.nn.Module
    plan: dict[str, str]
    bits_per_weight: float
    qat_log: list[dict]
    allocation: dict | None


def quantize_checkpoint(src: str | Path, out: str | Path, cfg: QuantizeConfig,
                        progress: bool = False) -> QuantizeResult:
    """Quantize a float receiver checkpoint and write the packed quantized checkpoint.

    :raises CheckpointError: `src` is missing, corrupt, already quantized, or records no
        training config (QAT and allocation draw their slots from it)
    :raises ValueError: the budget is below the cheapest allocation
    """
    meta = read_config(src)
    if "quant" in meta:
        raise CheckpointError(f"checkpoint {str(src)!r} is quantized already; quantize its "
                              "float source")
    rx = load_receiver(src)
    needs_slots = cfg.allocate or cfg.qat.steps > 0
    train_cfg = train_config_of(meta) if needs_slots else None
    report = None
    if cfg.allocate:
        stream = SlotStream(train_cfg, cfg.qat.seed, tag="calibration")
        batches = [stream(i, cfg.qat.batch_size) for i in range(cfg.calibration_batches)]
        alloc = allocate(rx, AllocationConfig(FAMILIES[family_of(cfg.format)], cfg.budget,
                                              cfg.budget_kind),
                         lambda r: calibration_loss(r, batches),
                         (rx.link.num_ofdm_symbols, rx.link.fft_size))
        plan, report = alloc.plan, alloc.report()
    else:
        plan = cfg.format
    rx_q = quantize_receiver(rx, plan, cfg.act_fmt, cfg.block_size)
    log = qat(rx_q, train_cfg, cfg.qat, progress=progress) if cfg.qat.steps else []
    extra = {"source": str(src), "config": cfg.as_dict(), "qat_log": log,
             "allocation": report}
    path = save_quantized(out, rx_q, extra)
    return QuantizeResult(path, rx_q.eval(), quantization_plan(rx_q), bits_per_weight(rx_q),
                          log, report)
