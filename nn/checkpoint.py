"""Checkpoints: safetensors for tensors plus a JSON file for everything else; never pickle.

A checkpoint is a directory:
  config.json        what to rebuild (kind, link, receiver config) + training metadata
  model.safetensors  the receiver's weights
  train.safetensors  optimizer / scheduler tensors (training checkpoints only)
Every file is written to a temporary name and renamed, so an interrupted write never leaves a
half-written checkpoint behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from dmrx.ofdm import LinkConfig

FORMAT = "dmrx-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or does not fit what it is loaded into."""


def atomic_write(path: Path, write) -> None:
    """Call `write(tmp_path)`, then rename the temporary file over `path`: readers see the old
    file or the new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    write(tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    tmp.replace(path)


def flatten_state(state: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested state dict into {dotted key: tensor} and a JSON-able skeleton."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(obj: Any, key: str) -> Any:
        if isinstance(obj, torch.Tensor):
            tensors[key] = obj.detach().cpu().contiguous()
            return {"__tensor__": key}
        if isinstance(obj, dict):
            return {"__dict__": [[walk(k, f"{key}/k{i}"), walk(v, f"{key}/{i}")]
                                 for i, (k, v) in enumerate(obj.items())]}
        if isinstance(obj, list | tuple):
            return {"__list__": [walk(v, f"{key}/{i}") for i, v in enumerate(obj)],
                    "tuple": isinstance(obj, tuple)}
        if obj is None or isinstance(obj, bool | int | float | str):
            return obj
        raise TypeError(f"cannot store {type(obj).__name__} at {key!r} in a checkpoint")

    return tensors, walk(state, prefix)


def unflatten_state(tensors: dict[str, torch.Tensor], skeleton: Any) -> Any:
    def walk(obj: Any) -> Any:
        if isinstance(obj, dict) and "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if isinstance(obj, dict) and "__dict__" in obj:
            return {walk(k): walk(v) for k, v in obj["__dict__"]}
        if isinstance(obj, dict) and "__list__" in obj:
            items = [walk(v) for v in obj["__list__"]]
            return tuple(items) if obj["tuple"] else items
        return obj

    return walk(skeleton)


def learned_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """`model.state_dict()` without the buffers of embedded Sionna blocks (pilot patterns,
    resource grids): they are rebuilt from the link config, and they alias one another, which
    safetensors rightly refuses to store."""
    from sionna.phy.object import Object

    skip = [name + "." for name, m in model.named_modules() if name and isinstance(m, Object)]
    return {k: v for k, v in model.state_dict().items()
            if not any(k.startswith(p) for p in skip)}


def save_checkpoint(path: str | Path, model: torch.nn.Module, config: dict,
                    train_state: dict | None = None) -> Path:
    """Write `model`'s weights, `config` (JSON-able) and optionally a training state.

    :param config: must hold "kind" and "link" (a `LinkConfig.as_dict()`)
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, **config}
    if train_state is not None:
        tensors, skeleton = flatten_state(train_state, "train")
        atomic_write(path / "train.safetensors", lambda p: save_file(tensors, str(p)))
        meta["train_state"] = skeleton
    weights = {k: v.detach().cpu().contiguous() for k, v in learned_state(model).items()}
    atomic_write(path / "model.safetensors", lambda p: save_file(weights, str(p)))
    # config.json last: it is what marks the checkpoint complete
    atomic_write(path / "config.json", lambda p: p.write_text(json.dumps(meta, indent=2)))
    return path


def read_config(path: str | Path) -> dict:
    """:raises CheckpointError: no checkpoint there, or its config.json is unreadable"""
    path = Path(path)
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise CheckpointError(f"no checkpoint at {str(path)!r}: config.json is missing")
    try:
        meta = json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: config.json: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {str(path)!r} is not a {FORMAT} checkpoint")
    return meta


def derived_config(meta: dict) -> dict:
    """The config a checkpoint derived from this one starts from (calibrated, adapted):
    `meta` (as `read_config` returns it) without its format tag, which `save_checkpoint`
    writes, and its training state, which the derived weights do not continue."""
    return {k: v for k, v in meta.items() if k not in ("format", "train_state")}


def link_of(meta: dict) -> LinkConfig:
    fields = {f for f in LinkConfig.__dataclass_fields__}
    try:
        return LinkConfig(**{k: v for k, v in meta["link"].items() if k in fields})
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint's link config is invalid: {e}") from e


def load_weights(path: str | Path, model: torch.nn.Module, *,
                 missing_ok: tuple[str, ...] = ()) -> None:
    """Load model.safetensors into `model`, refusing any mismatch with a clear error.

    :param missing_ok: prefixes of `model`'s weights the checkpoint may lack; those keep their
        current values (fine-tuning a receiver with data-aided passes from one without: 'refine.')
    """
    path = Path(path)
    try:
        weights = load_file(str(path / "model.safetensors"))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {str(path)!r} has no model.safetensors") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: model.safetensors: "
                              f"{e}") from e
    own = learned_state(model)
    missing = sorted(k for k in set(own) - set(weights) if not k.startswith(missing_ok))
    unexpected = sorted(set(weights) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"checkpoint {str(path)!r} does not fit this receiver: missing "
                              f"{missing[:5]}, unexpected {unexpected[:5]}")
    for k, v in weights.items():
        if v.shape != own[k].shape:
            raise CheckpointError(f"checkpoint {str(path)!r} does not fit this receiver: {k} "
                                  f"has shape {list(v.shape)}, expected {list(own[k].shape)}")
    model.load_state_dict(weights, strict=False)  # the keys were checked just above


def load_train_state(path: str | Path, meta: dict) -> dict:
    path = Path(path)
    try:
        tensors = load_file(str(path / "train.safetensors"))
        return unflatten_state(tensors, meta["train_state"])
    except (FileNotFoundError, KeyError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} has no training state to resume "
                              f"from: {e}") from e
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: train.safetensors: "
                              f"{e}") from e


# --- receivers ------------------------------------------------------------------------------

def _kinds() -> dict:
    from dmrx.nn.hybrid import HybridReceiver
    from dmrx.nn.receiver import NeuralReceiver

    return {"neural": NeuralReceiver, "hybrid": HybridReceiver}


def build_receiver(kind: str, link: LinkConfig, net: dict | None = None) -> torch.nn.Module:
    """A fresh (untrained) receiver of `kind` ('neural' or 'hybrid').

    :param net: a `ResNetConfig.as_dict()`; None for the kind's default
    """
    from dmrx.nn.resnet import ResNetConfig

    kinds = _kinds()
    if kind not in kinds:
        raise ValueError(f"unknown receiver kind {kind!r}: use one of {sorted(kinds)}")
    return kinds[kind](link, ResNetConfig.from_dict(net) if net is not None else None)


def receiver_config(rx: torch.nn.Module) -> dict:
    """What `load_receiver` needs to rebuild `rx`."""
    return {"kind": rx.kind, "link": rx.link.as_dict(), "net": rx.config.as_dict()}


def load_receiver(path: str | Path, link: LinkConfig | None = None) -> torch.nn.Module:
    """Rebuild a neural/hybrid receiver from a checkpoint directory, in eval mode.

    :param link: if given, the checkpoint must have been trained for this link
    :raises CheckpointError: missing, corrupt, or made for another link or architecture
    """
    meta = read_config(path)
    ck_link = link_of(meta)
    if link is not None and _link_key(ck_link) != _link_key(link):
        raise CheckpointError(f"checkpoint {str(path)!r} was trained for link "
                              f"{ck_link.name!r} ({_link_key(ck_link)}), not for "
                              f"{link.name!r} ({_link_key(link)})")
    try:
        rx = build_receiver(meta["kind"], ck_link, meta.get("net"))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} has an invalid receiver config: "
                              f"{e}") from e
    if "quant" in meta:  # packed low-bit weights: dmrx.quant decodes them
        from dmrx.quant.checkpoint import load_quantized_weights

        return load_quantized_weights(path, meta, rx).eval()
    load_weights(path, rx)
    return rx.eval()


def _link_key(link: LinkConfig) -> dict:
    """The fields that change the grid or the coded bits (not the label)."""
    d = dataclasses.asdict(link)
    d.pop("name")
    return d
