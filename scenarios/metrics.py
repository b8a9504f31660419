"""Figures of merit read off BLER curves, and how a waterfall draws its error-free points."""

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


ZERO_POINTS_NOTE = "open triangles: no error counted, drawn at 0.5 / count"


def split_zero_points(snr_db, rates, counts) -> tuple[list, list, list, list]:
    """Measured points and error-free points of one curve, for a log axis.

    A point with no error has no rate to draw: it only bounds the rate by about 1 / count.
    It is returned apart, at 0.5 / count, to be drawn as an open marker without a line (the
    line would show a measured slope that is not there).

    :return: (snr, rate) of the points with errors, (snr, 0.5 / count) of those without
    """
    measured_x, measured_y, bound_x, bound_y = [], [], [], []
    for x, r, n in zip(snr_db, rates, counts, strict=True):
        if r > 0:
            measured_x.append(x)
            measured_y.append(r)
        else:
            bound_x.append(x)
            bound_y.append(0.5 / max(n, 1))
    return measured_x, measured_y, bound_x, bound_y


def draw_waterfall(ax, snr_db, rates, counts, *, color: str, label: str) -> bool:
    """One BLER or BER curve on a log axis: a line through the points with errors, open
    triangles at the error-free ones (`split_zero_points`).

    :param ax: a matplotlib axis
    :return: whether any error-free point was drawn (then say so: `ZERO_POINTS_NOTE`)
    """
    mx, my, bx, by = split_zero_points(snr_db, rates, counts)
    ax.semilogy(mx, my, marker="o", color=color, label=label)
    if bx:
        ax.semilogy(bx, by, marker="v", linestyle="none", color=color, fillstyle="none")
    return bool(bx)
