"""Receivers by name, for the CLI and sweep specs.

Classic: 'ls' (linear interpolation), 'ls-nn', 'ls-time-avg', 'perfect'.
Learned: 'neural' and 'hybrid', loaded from a checkpoint directory (`name=path`, or the
`checkpoint` argument).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dmrx.nn import load_receiver
from dmrx.ofdm import LinkConfig, LSReceiver, PerfectCSIReceiver

_CLASSIC: dict[str, Callable[[LinkConfig], torch.nn.Module]] = {
    "ls": lambda link: LSReceiver(link, interpolation="lin"),
    "ls-nn": lambda link: LSReceiver(link, interpolation="nn"),
    "ls-time-avg": lambda link: LSReceiver(link, interpolation="lin_time_avg"),
    "perfect": PerfectCSIReceiver,
}
LEARNED = ("neural", "hybrid")
RECEIVER_NAMES = (*_CLASSIC, *LEARNED)


def build_receiver(name: str, link: LinkConfig,
                   checkpoint: str | None = None) -> torch.nn.Module:
    """:param name: a classic name, or 'neural' / 'hybrid' (optionally 'neural=<checkpoint>')
    :raises ValueError: unknown name, learned receiver without a checkpoint, or a checkpoint
        of another kind or link (`CheckpointError` is a ValueError)
    """
    name, _, path = name.partition("=")
    if name in _CLASSIC:
        if path:
            raise ValueError(f"receiver {name!r} takes no checkpoint")
        return _CLASSIC[name](link)
    if name not in LEARNED:
        raise ValueError(f"unknown receiver {name!r}: use one of {list(RECEIVER_NAMES)}")
    path = path or checkpoint
    if not path:
        raise ValueError(f"receiver {name!r} needs a checkpoint: --checkpoint DIR or "
                         f"{name}=DIR")
    rx = load_receiver(path, link)
    if rx.kind != name:
        raise ValueError(f"checkpoint {path!r} holds a {rx.kind!r} receiver, not {name!r}")
    return rx
