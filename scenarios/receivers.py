"""Receivers by name, for the CLI and sweep specs: 'ls', 'ls-nn', 'ls-time-avg', 'perfect'."""

from __future__ import annotations

from collections.abc import Callable

import torch
from dmrx.ofdm import LinkConfig, LSReceiver, PerfectCSIReceiver

_BUILDERS: dict[str, Callable[[LinkConfig], torch.nn.Module]] = {
    "ls": lambda link: LSReceiver(link, interpolation="lin"),
    "ls-nn": lambda link: LSReceiver(link, interpolation="nn"),
    "ls-time-avg": lambda link: LSReceiver(link, interpolation="lin_time_avg"),
    "perfect": PerfectCSIReceiver,
}
RECEIVER_NAMES = tuple(_BUILDERS)


def build_receiver(name: str, link: LinkConfig) -> torch.nn.Module:
    """:raises ValueError: unknown receiver name"""
    if name not in _BUILDERS:
        raise ValueError(f"unknown receiver {name!r}: use one of {list(RECEIVER_NAMES)}")
    return _BUILDERS[name](link)
