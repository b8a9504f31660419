"""Figures of maps over the time-frequency grid: OFDM symbol (time) on x, subcarrier
(frequency) on y, DMRS REs and jammed REs outlined, one panel per method."""

from __future__ import annotations

from pathlib import Path

import torch

from dmrx.nn.checkpoint import atomic_write
from dmrx.ofdm import LinkConfig, dmrs_mask


def _outline_segments(mask: torch.Tensor) -> list[tuple[tuple[float, float], ...]]:
    """Cell edges between REs inside and outside `mask` ([sym, sc] bool), in plot coordinates
    (x = symbol, y = subcarrier, cells centred on integers)."""
    m = mask.bool().cpu()
    n_sym, n_sc = m.shape
    pad = torch.zeros(n_sym + 2, n_sc + 2, dtype=torch.bool)
    pad[1:-1, 1:-1] = m
    segs = []
    # edges across time (between symbol i-1 and i): vertical lines at x = i - 0.5
    for i, j in (pad[1:, 1:-1] ^ pad[:-1, 1:-1]).nonzero().tolist():
        segs.append(((i - 0.5, j - 0.5), (i - 0.5, j + 0.5)))
    # edges across frequency (between subcarrier j-1 and j): horizontal lines at y = j - 0.5
    for i, j in (pad[1:-1, 1:] ^ pad[1:-1, :-1]).nonzero().tolist():
        segs.append(((i - 0.5, j - 0.5), (i + 0.5, j - 0.5)))
    return segs


def draw_map(ax, cam: torch.Tensor, link: LinkConfig, *, jammed: torch.Tensor | None = None,
             title: str | None = None, vmax: float | None = None):
    """Draw one map on a matplotlib axis.

    :param cam: [num_ofdm_symbols, fft_size] float
    :param jammed: [num_ofdm_symbols, fft_size] bool, outlined dashed
    :return: the image (for a colour bar)
    """
    from matplotlib.collections import LineCollection

    n_sym, n_sc = link.num_ofdm_symbols, link.fft_size
    if tuple(cam.shape) != (n_sym, n_sc):
        raise ValueError(f"map must have shape ({n_sym}, {n_sc}) (num_ofdm_symbols, fft_size), "
                         f"got {tuple(cam.shape)}")
    im = ax.imshow(cam.detach().cpu().float().T.numpy(), origin="lower", aspect="auto",
                   cmap="inferno", vmin=0.0, vmax=vmax,
                   extent=(-0.5, n_sym - 0.5, -0.5, n_sc - 0.5), interpolation="nearest")
    ax.add_collection(LineCollection(_outline_segments(dmrs_mask(link)), colors="cyan",
                                     linewidths=0.6, label="DMRS"))
    if jammed is not None:
        ax.add_collection(LineCollection(_outline_segments(jammed), colors="white",
                                         linewidths=1.4, linestyles="--", label="jammed"))
    ax.set_xlabel("OFDM symbol")
    ax.set_ylabel("subcarrier")
    if title:
        ax.set_title(title, fontsize=9)
    return im


def plot_maps(maps: dict[str, torch.Tensor], link: LinkConfig, path: str | Path, *,
              jammed: torch.Tensor | None = None, title: str | None = None) -> None:
    """Side-by-side maps (one panel per method, a shared colour scale), PNG/SVG by suffix.

    :param maps: name -> [num_ofdm_symbols, fft_size] float
    :raises ValueError: no map, or a map of the wrong shape
    """
    if not maps:
        raise ValueError("plot_maps needs at least one map")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vmax = max(float(m.max()) for m in maps.values()) or 1.0
    fig, axes = plt.subplots(1, len(maps), figsize=(2.6 * len(maps) + 1.0, 5.0), squeeze=False)
    fig.subplots_adjust(bottom=0.2, top=0.86)  # room for the legend below, the title above
    im = None
    for ax, (name, m) in zip(axes[0], maps.items(), strict=True):
        im = draw_map(ax, m, link, jammed=jammed, title=name, vmax=vmax)
    for ax in axes[0][1:]:
        ax.set_ylabel("")
    fig.colorbar(im, ax=list(axes[0]), shrink=0.8, label="relevance")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        # below the panels, clear of the title; a grey box: the jammed outline is white
        fig.legend(handles, labels, loc="lower left", fontsize=8, ncol=2, facecolor="0.55")
    if title:
        fig.suptitle(title, fontsize=10)
    atomic_write(Path(path), fig.savefig)
    plt.close(fig)
