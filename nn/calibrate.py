"""LLR calibration: one scale on a neural receiver's LLRs, fitted to minimise the BCE on clean
slots and folded into its output layer.

The LDPC decoder reads LLR magnitudes, not only signs. A receiver trained with a loss other
than the BCE on the coded bits (S2O's soft targets in `dmrx.robust.training`, which keep only
20 % of each RE's target mass on the true bit pattern) can make the right hard decisions with
under-confident LLRs, and the decoder then loses dB the detector did not. Scaling all LLRs by
one constant a and choosing a to minimise the mean BCE is temperature scaling (Guo et al.,
ICML 2017) on bit LLRs, the classic LLR correction for mismatched decoding: the BCE-optimal a
maximises the BMD rate 1 - BCE/ln 2 over all scaled versions. The hard decisions are unchanged.

Written here rather than taken from a library: the fit is a 1-D convex Newton iteration (a few
lines), and the fold needs the receiver's own output layer.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from dmrx.nn.checkpoint import (
    CheckpointError,
    derived_config,
    load_receiver,
    read_config,
    save_checkpoint,
)
from dmrx.nn.receiver import NeuralReceiver
from dmrx.nn.train import SlotStream, TrainConfig, bmd_rate, train_config_of


def fit_llr_scale(llr: torch.Tensor, c: torch.Tensor, iters: int = 50,
                  tol: float = 1e-7) -> float:
    """The a > 0 that minimises mean BCE(a * llr, c), by Newton's method (the BCE of a scaled
    LLR is convex in a).

    :param llr: [n] or [batch, num_coded_bits] float, log(P(c=1)/P(c=0))
    :param c: the same shape, coded bits in {0, 1}
    :raises ValueError: shapes differ, non-finite LLRs, or LLRs that carry no information
        (the BCE then falls without bound along a or has no minimum at a > 0)
    """
    if llr.shape != c.shape:
        raise ValueError(f"llr shape {tuple(llr.shape)} and bit shape {tuple(c.shape)} differ")
    if not torch.isfinite(llr).all():
        raise ValueError("the LLRs to calibrate contain NaN or Inf")
    m = (2.0 * c.double() - 1.0) * llr.double()  # > 0 where the LLR's sign is right
    if m.numel() == 0 or (m > 0).all():
        raise ValueError("cannot fit an LLR scale: every bit is decided right, so the BCE "
                         "keeps falling as the scale grows; use more or noisier slots")
    if (m.mean() <= 0).item():
        raise ValueError("cannot fit an LLR scale: the LLRs are no better than chance "
                         f"(mean signed LLR {m.mean().item():.3g} <= 0)")
    a = 1.0
    for _ in range(iters):
        s = torch.sigmoid(-a * m)
        grad = -(m * s).mean().item()                    # d/da mean softplus(-a m)
        hess = (m.square() * s * (1.0 - s)).mean().item()
        step = grad / max(hess, 1e-300)
        a_new = a - step
        if a_new <= 0:  # Newton overshoots from far right of the minimum: halve instead
            a_new = a / 2
        if abs(a_new - a) <= tol * a:
            return a_new
        a = a_new
    return a


@torch.no_grad()
def collect_llr(rx: torch.nn.Module, stream: SlotStream, num_batches: int,
                batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """LLRs and coded bits of `rx` on `num_batches` slot batches of `stream` (eval mode).

    :return: (llr [num_batches * batch_size, num_coded_bits] float32, c the same)
    """
    was = rx.training
    rx.eval()
    llrs, bits = [], []
    for i in range(num_batches):
        y, no, c = stream(i, batch_size)
        llrs.append(rx(y, no))
        bits.append(c)
    rx.train(was)
    return torch.cat(llrs), torch.cat(bits)


@torch.no_grad()
def fold_llr_scale(rx: torch.nn.Module, scale: float) -> None:
    """Multiply `rx`'s LLRs by `scale` in place, by scaling its output convolution (weights and
    bias): the receiver's function becomes `scale * rx(y, no)` with no extra layer.

    :raises TypeError: not a `NeuralReceiver` (a hybrid receiver's LLRs come from its demapper)
    :raises ValueError: the scale is not finite and positive
    """
    if not isinstance(rx, NeuralReceiver):
        raise TypeError(f"an LLR scale can only be folded into a NeuralReceiver, not "
                        f"{type(rx).__name__} (its LLRs do not come from one output layer)")
    if len(rx.refine):
        raise TypeError("an LLR scale cannot be folded into a receiver with data-aided passes: "
                        "each pass reads the previous pass's LLRs, so scaling one layer does "
                        "not scale the output")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"LLR scale {scale!r} is not allowed: a finite number > 0")
    out = rx.net.output_conv
    out.weight.mul_(scale)
    if out.bias is not None:
        out.bias.mul_(scale)


def calibrate_checkpoint(path: str | Path, out: str | Path, num_batches: int = 20,
                         batch_size: int = 64, seed: int = 0) -> dict:
    """Fit the BCE-optimal LLR scale of a neural checkpoint on clean slots drawn as it was
    trained (its link, scenarios without their jammers, and SNR range; `SlotStream` with the
    tag 'llr-calibration', a stream no training step draws from) and write the calibrated
    receiver to `out` as a new checkpoint. Its config records the scale and the fit.

    :return: {"scale", "bmd_rate_before", "bmd_rate_after", "num_slots", "seed"}
    :raises CheckpointError: unreadable, quantized or hybrid checkpoint, one with data-aided
        passes, or `out` == `path`
    """
    path, out = Path(path), Path(out)
    if out.resolve() == path.resolve():
        raise CheckpointError("write the calibrated receiver to a new directory: --out is the "
                              "checkpoint being calibrated")
    meta = read_config(path)
    if "quant" in meta:
        raise CheckpointError(f"checkpoint {str(path)!r} is quantized; calibrate the float "
                              "receiver, then quantize it")
    if meta.get("kind") != "neural":
        raise CheckpointError(f"checkpoint {str(path)!r} holds a {meta.get('kind')!r} "
                              "receiver; only a neural receiver's LLR scale can be folded")
    if (meta.get("net") or {}).get("data_aided_passes"):
        raise CheckpointError(f"checkpoint {str(path)!r} has data-aided passes, whose LLRs "
                              "feed the next pass: one output scale cannot be folded into it")
    cfg: TrainConfig = train_config_of(meta)
    rx = load_receiver(path)
    llr, c = collect_llr(rx, SlotStream(cfg, seed, tag="llr-calibration"), num_batches,
                         batch_size)
    scale = fit_llr_scale(llr, c)
    fold_llr_scale(rx, scale)
    bce = F.binary_cross_entropy_with_logits
    fit = {"scale": scale,
           "bmd_rate_before": bmd_rate(bce(llr, c).item()),
           "bmd_rate_after": bmd_rate(bce(scale * llr, c).item()),
           "num_slots": num_batches * batch_size, "seed": seed,
           "source": str(path)}
    config = derived_config(meta)
    previous = config.get("llr_scale", {}).get("scale", 1.0)
    config["llr_scale"] = fit | {"total_scale": previous * scale}
    save_checkpoint(out, rx, config)
    return fit
