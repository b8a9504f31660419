"""Quantized-receiver checkpoints: the weights as stored on a chip, packed, with their scales.

A quantized checkpoint is a dmrx checkpoint directory (`dmrx.nn.checkpoint`) whose config.json
has a "quant" entry:
  {"version": "dmrx-quant-1", "act_fmt": null | MX format,
   "layers": {conv layer name: {"scheme", "shape", ...what its decoder needs}},
   "bits_per_weight": ..., "weight_bytes": ..., "model_bytes": ..., ...}
and whose model.safetensors holds, per quantized layer, `<layer>.weight.codes` (uint8, the
element codes packed at their real bit width) and `<layer>.weight.scales` (uint8 E8M0 codes for
MX, float32 per output channel for BBQ / INT, uint8 E4M3 codes per block followed by the
4 bytes of one float32 tensor scale for block BBQ), plus every other tensor (biases, norms) in
float32. `dmrx.nn.load_receiver` recognises the entry and rebuilds the receiver through
`load_quantized_weights`, so a quantized receiver evaluates like any other.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from dmrx.nn.checkpoint import (
    FORMAT,
    CheckpointError,
    atomic_write,
    learned_state,
    receiver_config,
)
from dmrx.quant.layers import QuantConv2d, conv_layers, decode_weight, quantize_receiver

QUANT_VERSION = "dmrx-quant-1"
_SUFFIXES = (".codes", ".scales", ".values")


def export_quantized(rx_q: torch.nn.Module) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors to store and the "quant" config entry of a quantized receiver.

    :return: ({name: tensor} for safetensors, {"layers": ..., "act_fmt": ...})
    """
    layers = {n: m for n, m in conv_layers(rx_q).items() if isinstance(m, QuantConv2d)}
    if not layers:
        raise ValueError("the receiver has no quantized layers: use dmrx.quant."
                         "quantize_receiver first")
    act = {m.act_fmt for m in layers.values()}
    if len(act) != 1:
        raise ValueError(f"mixed activation formats {sorted(map(str, act))} are not storable")
    tensors, meta_layers = {}, {}
    for name, m in layers.items():
        enc, meta = m.encode()
        for k, v in enc.items():
            tensors[f"{name}.weight.{k}"] = v.detach().cpu().contiguous()
        meta_layers[name] = meta
    quantizer_state = tuple(f"{n}.wq." for n in layers)
    for k, v in learned_state(rx_q).items():
        if k.endswith(".weight") and k[: -len(".weight")] in layers:
            continue  # the latent float weight: stored as codes above
        if k.startswith(quantizer_state):
            continue  # BBQ scales: stored as the layer's scales above
        tensors[k] = v.detach().float().cpu().contiguous()
    weight_bytes = sum(v.numel() * v.element_size() for k, v in tensors.items()
                       if k.endswith(tuple(f".weight{s}" for s in _SUFFIXES)))
    total_bytes = sum(v.numel() * v.element_size() for v in tensors.values())
    n_weights = sum(m.weight.numel() for m in layers.values())
    return tensors, {
        "version": QUANT_VERSION, "act_fmt": act.pop(), "layers": meta_layers,
        "num_weights": n_weights, "bits_per_weight": 8 * weight_bytes / n_weights,
        "weight_bytes": weight_bytes, "model_bytes": total_bytes,
    }


def save_quantized(path: str | Path, rx_q: torch.nn.Module, extra: dict | None = None) -> Path:
    """Write a quantized receiver as a checkpoint directory (atomically, config.json last).

    :param extra: JSON-able metadata stored under "quant" too (source checkpoint, QAT log,
        allocation report, ...)
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors, quant = export_quantized(rx_q)
    meta = {"format": FORMAT, **receiver_config(rx_q), "quant": quant | (extra or {})}
    atomic_write(path / "model.safetensors", lambda p: save_file(tensors, str(p)))
    atomic_write(path / "config.json", lambda p: p.write_text(json.dumps(meta, indent=2)))
    return path


def load_quantized_weights(path: str | Path, meta: dict,
                           rx: torch.nn.Module) -> torch.nn.Module:
    """Fill a freshly built float receiver with a quantized checkpoint's dequantized weights.

    :param rx: the receiver `meta` describes, untrained
    :return: `rx` with its conv weights set to the stored quantized values (wrapped as
        `QuantConv2d`s that quantize activations when the checkpoint says so)
    :raises CheckpointError: corrupt file, missing / unexpected tensors, wrong shapes
    """
    path = Path(path)
    quant = meta["quant"]
    try:
        tensors = load_file(str(path / "model.safetensors"))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: model.safetensors: "
                              f"{e}") from e
    if not isinstance(quant, dict) or quant.get("version") != QUANT_VERSION:
        raise CheckpointError(f"checkpoint {str(path)!r} has an unknown quantization entry "
                              f"(expected version {QUANT_VERSION!r})")
    convs = conv_layers(rx)
    layers = quant.get("layers", {})
    if set(layers) - set(convs):
        raise CheckpointError(f"checkpoint {str(path)!r} quantizes unknown layers "
                              f"{sorted(set(layers) - set(convs))}")
    state = {}
    for name, lmeta in layers.items():
        enc = {k.rpartition(".")[2]: v for k, v in tensors.items()
               if k.startswith(f"{name}.weight.") and k.endswith(_SUFFIXES)}
        try:
            w = decode_weight(enc, lmeta)
        except (KeyError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: layer {name!r}: "
                                  f"{e}") from e
        if tuple(w.shape) != tuple(convs[name].weight.shape):
            raise CheckpointError(f"checkpoint {str(path)!r}: layer {name!r} has shape "
                                  f"{list(w.shape)}, expected {list(convs[name].weight.shape)}")
        state[f"{name}.weight"] = w
    rest = {k: v for k, v in tensors.items()
            if not any(k.startswith(f"{n}.weight.") for n in layers)}
    own = learned_state(rx)
    state |= rest
    if set(state) != set(own):
        raise CheckpointError(f"checkpoint {str(path)!r} does not fit the receiver: missing "
                              f"{sorted(set(own) - set(state))[:5]}, unexpected "
                              f"{sorted(set(state) - set(own))[:5]}")
    for k, v in state.items():
        if v.shape != own[k].shape:
            raise CheckpointError(f"checkpoint {str(path)!r}: {k} has shape {list(v.shape)}, "
                                  f"expected {list(own[k].shape)}")
    rx.load_state_dict(state, strict=False)  # keys checked just above
    if quant.get("act_fmt"):
        rx = quantize_receiver(rx, "fp32", act_fmt=quant["act_fmt"])
    return rx
