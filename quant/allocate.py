"""Per-layer bit allocation under a hardware budget (SigmaQuant-style heterogeneous
quantization).

Per conv layer and candidate format the allocator measures:
  sigma        the layer's weight standard deviation (the statistic SigmaQuant starts from)
  weight SQNR  10 log10(|w|^2 / |w - Q(w)|^2), dB: how well the format fits that distribution
  sensitivity  the increase of the receiver's loss (BCE on fixed calibration slots) when that
               layer alone is quantized with that format
  cost         stored bits (elements + scales), or bit operations (MACs x weight bits x
               activation bits) per slot
and chooses one format per layer minimising the summed sensitivities subject to the budget
(average bits per weight incl. scales, or total BOPs), exactly, by dynamic programming over the
Pareto front of (cost, sensitivity) — the per-layer sensitivities are taken as additive, the
usual first-order assumption (HAWQ, SigmaQuant).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from dmrx.quant.layers import (
    BBQ_BLOCK,
    QuantConv2d,
    canonical_scheme,
    conv_layers,
    quantize_receiver,
    weight_quantizer,
)

#: candidate sets by family: a budget trades the family's precisions against each other
FAMILIES = {
    "mx": ("mxfp4_e2m1", "mxfp6_e2m3", "mxfp8_e4m3"),
    "bbq": ("bbq2", "bbq3", "bbq4", "int8"),
    f"bbq-g{BBQ_BLOCK}": (*(f"bbq{b}-g{BBQ_BLOCK}" for b in (2, 3, 4)), "int8"),
    "int": ("int4", "int8"),
}
BUDGET_KINDS = ("bits", "bops")


def family_of(scheme: str) -> str:
    """'mxfp4' -> 'mx', 'bbq3' -> 'bbq', 'bbq3-g32' -> 'bbq-g32', 'int8' -> 'int'."""
    scheme = canonical_scheme(scheme)
    if scheme.startswith("bbq") and scheme.endswith(f"-g{BBQ_BLOCK}"):
        return f"bbq-g{BBQ_BLOCK}"
    for fam in ("mx", "bbq", "int"):
        if scheme.startswith(fam):
            return fam
    raise ValueError(f"format {scheme!r} has no allocation family: use one of "
                     f"{[f for fs in FAMILIES.values() for f in fs]}")


@dataclass(frozen=True)
class AllocationConfig:
    """:param candidates: formats each layer may take
    :param budget: average bits per weight incl. scales ('bits'), or BOPs per slot ('bops')
    :param kind: 'bits' or 'bops'
    :param act_bits: activation bits assumed in BOPs (the activations' format)
    """

    candidates: tuple[str, ...]
    budget: float
    kind: str = "bits"
    act_bits: int = 8

    def __post_init__(self) -> None:
        if not self.candidates:
            raise ValueError("AllocationConfig.candidates=() is not allowed: at least one "
                             "format")
        object.__setattr__(self, "candidates",
                           tuple(canonical_scheme(c) for c in self.candidates))
        if self.kind not in BUDGET_KINDS:
            raise ValueError(f"AllocationConfig.kind={self.kind!r} is not allowed: one of "
                             f"{BUDGET_KINDS}")
        if not (self.budget > 0 and math.isfinite(self.budget)):
            raise ValueError(f"AllocationConfig.budget={self.budget!r} is not allowed: a "
                             "positive number")
        if not 1 <= self.act_bits <= 32:
            raise ValueError(f"AllocationConfig.act_bits={self.act_bits!r} is not allowed: "
                             "1..32")


@dataclass
class LayerStats:
    name: str
    num_weights: int
    macs: int
    sigma: float
    options: dict[str, dict] = field(default_factory=dict)  # format -> bits, cost, sqnr, loss


@dataclass
class Allocation:
    plan: dict[str, str]
    layers: list[LayerStats]
    config: AllocationConfig
    base_loss: float
    cost: float
    predicted_loss_increase: float

    def bits_per_weight(self) -> float:
        n = sum(s.num_weights for s in self.layers)
        return sum(s.options[self.plan[s.name]]["bits_per_weight"] * s.num_weights
                   for s in self.layers) / n

    def report(self) -> dict:
        """JSON-able: the chosen format per layer with the statistics it was chosen from."""
        return {
            "budget": self.config.budget, "budget_kind": self.config.kind,
            "candidates": list(self.config.candidates), "cost": self.cost,
            "bits_per_weight": self.bits_per_weight(), "base_loss": self.base_loss,
            "predicted_loss_increase": self.predicted_loss_increase,
            "layers": [{"name": s.name, "format": self.plan[s.name], "weights": s.num_weights,
                        "sigma": s.sigma, "options": s.options} for s in self.layers],
        }

    def table(self) -> str:
        head = f"{'layer':<22} {'weights':>8} {'sigma':>7} {'format':<12} {'bits/w':>7} " \
               f"{'dLoss':>9}"
        rows = [head, "-" * len(head)]
        for s in self.layers:
            o = s.options[self.plan[s.name]]
            rows.append(f"{s.name:<22} {s.num_weights:>8d} {s.sigma:>7.4f} "
                        f"{self.plan[s.name]:<12} {o['bits_per_weight']:>7.3f} "
                        f"{o['loss_increase']:>9.2e}")
        rows.append(f"average {self.bits_per_weight():.3f} bits/weight, cost {self.cost:.4g} "
                    f"({self.config.kind}), budget {self.config.budget:g}")
        return "\n".join(rows)


def layer_stats(rx: torch.nn.Module, candidates: tuple[str, ...], loss_fn,
                grid: tuple[int, int], act_bits: int = 8) -> tuple[list[LayerStats], float]:
    """Measure every conv layer under every candidate format.

    :param loss_fn: receiver -> loss (float) on fixed calibration data
    :param grid: (num_ofdm_symbols, fft_size): output positions per slot, for MACs
    :return: (stats per layer, the float receiver's loss)
    """
    base = loss_fn(rx)
    layers = conv_layers(rx)
    out = []
    for name, conv in layers.items():
        w = conv.weight.detach()
        macs = w.numel() * grid[0] * grid[1]
        st = LayerStats(name, w.numel(), macs, float(w.std()))
        for fmt in candidates:
            wq = weight_quantizer(fmt, w)
            with torch.no_grad():
                err = (wq(w) - w).square().sum()
            bpw = wq.bits_per_weight(tuple(w.shape))
            plan = {n: (fmt if n == name else "fp32") for n in layers}
            st.options[fmt] = {
                "bits_per_weight": bpw,
                "weight_sqnr_db": float(10 * torch.log10(w.square().sum() / err.clamp_min(
                    1e-30))),
                "loss_increase": loss_fn(quantize_receiver(rx, plan)) - base,
                "bits": bpw * w.numel(),
                # BOPs count element bits only: the scale multiply is once per block/channel
                "bops": macs * math.floor(bpw) * act_bits,
            }
        out.append(st)
    return out, base


def choose(stats: list[LayerStats], cfg: AllocationConfig) -> tuple[dict[str, str], float,
                                                                      float]:
    """Exact minimum of summed loss increases under the budget (Pareto-front DP).

    :return: (plan, cost, predicted loss increase)
    :raises ValueError: even the cheapest formats exceed the budget
    """
    key = "bits" if cfg.kind == "bits" else "bops"
    n_weights = sum(s.num_weights for s in stats)
    limit = cfg.budget * n_weights if cfg.kind == "bits" else cfg.budget
    front: list[tuple[float, float, tuple[str, ...]]] = [(0.0, 0.0, ())]
    for s in stats:
        cand = [(c + s.options[f][key], loss + s.options[f]["loss_increase"], plan + (f,))
                for c, loss, plan in front for f in cfg.candidates]
        cand = [x for x in cand if x[0] <= limit * (1 + 1e-12)]
        cand.sort(key=lambda x: (x[0], x[1]))
        front, best = [], math.inf
        for x in cand:  # keep only points no cheaper point beats on loss
            if x[1] < best:
                front.append(x)
                best = x[1]
        if not front:
            cheapest = sum(min(o[key] for o in st.options.values()) for st in stats)
            what = cheapest / n_weights if cfg.kind == "bits" else cheapest
            raise ValueError(f"budget {cfg.budget:g} ({cfg.kind}) is below the cheapest "
                             f"allocation of {list(cfg.candidates)}: {what:.4g}")
    cost, loss, plan = min(front, key=lambda x: x[1])
    return dict(zip((s.name for s in stats), plan, strict=True)), cost, loss


def allocate(rx: torch.nn.Module, cfg: AllocationConfig, loss_fn,
             grid: tuple[int, int]) -> Allocation:
    """Measure the layers and choose a format per layer under the budget.

    :param rx: a float receiver (its convs not yet quantized)
    :param loss_fn: receiver -> float, e.g. `dmrx.quant.qat.calibration_loss` bound to slots
    """
    if any(isinstance(m, QuantConv2d) for m in conv_layers(rx).values()):
        raise ValueError("allocate needs the float receiver, not a quantized one")
    # the cost needs no measurement: refuse an impossible budget before measuring the loss
    stub = []
    for name, conv in conv_layers(rx).items():
        w = conv.weight.detach()
        st = LayerStats(name, w.numel(), w.numel() * grid[0] * grid[1], 0.0)
        for f in cfg.candidates:
            bpw = weight_quantizer(f, w).bits_per_weight(tuple(w.shape))
            st.options[f] = {"bits": bpw * w.numel(), "loss_increase": 0.0,
                             "bops": st.macs * math.floor(bpw) * cfg.act_bits}
        stub.append(st)
    choose(stub, cfg)
    stats, base = layer_stats(rx, cfg.candidates, loss_fn, grid, cfg.act_bits)
    plan, cost, loss = choose(stats, cfg)
    out_cost = cost / sum(s.num_weights for s in stats) if cfg.kind == "bits" else cost
    return Allocation(plan, stats, cfg, base, out_cost, loss)
