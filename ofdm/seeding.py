"""One seed for every random draw of a simulation.

Sionna draws bits, fading and noise from its global generators (`sionna.phy.config`); we seed
those and torch's, so the same seed gives the same slots.
"""

from __future__ import annotations

import hashlib

import numpy as np
import sionna.phy
import torch


def seed_everything(seed: int) -> None:
    """Seed Sionna's generators (bits, channel, noise) and torch's default generator."""
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    sionna.phy.config.seed = int(seed)
    torch.manual_seed(int(seed))


def derive_seed(seed: int, *keys: float | int | str) -> int:
    """A seed for one piece of work (an SNR point, a worker, a segment) that depends only on the
    user's seed and the keys, not on the order in which the work runs."""
    words = [int(seed)] + [int.from_bytes(hashlib.sha256(repr(k).encode()).digest()[:4], "little")
                           for k in keys]
    return int(np.random.SeedSequence(words).generate_state(1)[0])
