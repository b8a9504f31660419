"""Figures of merit read off BLER curves."""

from __future__ import annotations

import math
from collections.abc import Sequence


def snr_at_bler(snr_db: Sequence[float], bler: Sequence[float], target: float = 0.1) -> float:
    """SNR (dB) where the BLER curve crosses `target`, by linear interpolation of log10(BLER)
    between the two points that bracket it; NaN if the curve never crosses (a floor) or starts
    below it. Points with zero errors are treated as BLER 0 (below any target).

    :param snr_db: increasing SNR points
    :param bler: BLER at each point
    """
    pts = sorted(zip(snr_db, bler, strict=True))
    for (s0, b0), (s1, b1) in zip(pts, pts[1:], strict=False):
        if b0 >= target > b1:
            if b1 <= 0:  # no errors at s1: interpolate towards the 1-error floor is unknowable
                return s0 + (s1 - s0) * (b0 - target) / (b0 - b1)
            l0, l1, lt = math.log10(b0), math.log10(b1), math.log10(target)
            return s0 + (s1 - s0) * (l0 - lt) / (l0 - l1)
    return math.nan
