"""Removing resource elements from a received grid: the perturbation shared by the
region-based CAMs (Score-CAM, Fusion-CAM's contribution weights) and the faithfulness curves.

An image CAM removes a pixel by blacking it out; a receiver that sees an RE of zero power sees
a noiseless deep fade, something it never met in training. Here a removed RE is replaced by
complex Gaussian noise, of one of three powers:

- `matched_noise`: the slot's mean received power (signal, interference and noise together).
  The grid keeps its power and only loses information; the deletion and insertion curves use
  it, so a map is not rewarded for finding the REs whose *power* matters.
- `thermal_noise`: the receiver's noise variance `no` — what an RE that carries neither signal
  nor interference looks like. The region-based CAMs use it: their masks *keep* a region and
  ask what it alone says; with matched noise the rest of a jammed slot would carry the
  jammer's power everywhere (the receiver then answers confidently at random, and no region
  looks like it adds anything), while thermal noise lets a jammed band stand out as the region
  that, kept alone, makes the block fail.
- `local_noise`: the mean received power around the RE (a 3 x 3 box). Like matched noise it
  removes information and keeps power, but it keeps the power *where it is*: under a
  partial-band jammer the jammed band stays as loud and the clean band as quiet as received,
  whereas matched noise pours the jammer's power into every removed clean RE (then every
  ranking degrades the block alike and deletion curves cannot tell maps apart).

A soft mask keeps a fraction m of the RE's power from y and 1 - m from the noise
(sqrt(m) y + sqrt(1 - m) z), and m in {0, 1} is the hard replacement of the curves.
"""

from __future__ import annotations

import torch


def unit_noise(y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Circularly-symmetric complex Gaussian noise of unit variance, drawn on the CPU (so a
    CPU generator reproduces it on any device) and moved to `y`'s device and dtype.

    :param y: any complex tensor (for the shape, device and dtype)
    :return: same shape and dtype as `y`
    """
    re = torch.randn(y.shape, generator=generator, dtype=torch.float32)
    im = torch.randn(y.shape, generator=generator, dtype=torch.float32)
    return torch.complex(re, im).to(device=y.device, dtype=y.dtype) / 2 ** 0.5


def matched_noise(y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Complex Gaussian noise with, per slot, the mean power of `y` over its REs.

    :param y: [batch, num_rx, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :param generator: a CPU `torch.Generator` (None: torch's default one)
    :return: same shape and dtype as `y`
    """
    p = y.abs().square().mean(dim=tuple(range(1, y.dim())), keepdim=True)  # [batch, 1, ...]
    return unit_noise(y, generator) * p.sqrt()


def blend(y: torch.Tensor, keep: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """sqrt(keep) y + sqrt(1 - keep) noise, per RE.

    :param y: [batch, num_rx, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :param keep: [batch, num_ofdm_symbols, fft_size] float in [0, 1] (clamped): 1 keeps the RE,
        0 replaces it by the noise
    :param noise: like `y`, e.g. from `matched_noise(y)`
    :return: like `y`
    """
    k = keep.clamp(0.0, 1.0).to(y.real.dtype)[:, None, None]
    return k.sqrt() * y + (1.0 - k).sqrt() * noise


def thermal_noise(y: torch.Tensor, no: torch.Tensor,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Complex Gaussian noise of variance `no` per RE (the receiver's own noise).

    :param y: [batch, num_rx, num_rx_ant, num_ofdm_symbols, fft_size] complex64 (for the shape)
    :param no: [batch] float32 noise variance
    :return: same shape and dtype as `y`
    """
    return unit_noise(y, generator) * no.to(y.device).reshape(-1, *([1] * (y.dim() - 1))).sqrt()


def local_noise(y: torch.Tensor, span: tuple[int, int] = (3, 3),
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Complex Gaussian noise whose variance at each RE is the mean received power of the
    `span` (OFDM symbols x subcarriers) box around it, per slot and antenna (edges: the box's
    part inside the grid): "noise of the same power" as the RE it replaces. Unlike
    `matched_noise`, a jammed band keeps the jammer's power and the clean band the signal's,
    so removing an RE takes away only its information, also where interference makes the
    grid's power uneven; the box (not the RE's own |y|^2) keeps a symbol's amplitude from
    leaking into its replacement.

    :param y: [batch, num_rx, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :param span: odd box size (symbols, subcarriers)
    :return: same shape and dtype as `y`
    :raises ValueError: a span that is not two odd positive integers
    """
    if len(span) != 2 or any(not isinstance(k, int) or k < 1 or k % 2 == 0 for k in span):
        raise ValueError(f"local_noise span={span!r} is not allowed: two odd positive integers")
    p = y.abs().square().to(torch.float32)
    flat = p.reshape(-1, 1, *p.shape[-2:])
    local = torch.nn.functional.avg_pool2d(flat, span, stride=1,
                                           padding=(span[0] // 2, span[1] // 2),
                                           count_include_pad=False).reshape(p.shape)
    return unit_noise(y, generator) * local.sqrt().to(y.device)


REMOVALS = ("thermal", "matched", "local")


def removal_noise(kind: str, y: torch.Tensor, no: torch.Tensor,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """`thermal_noise`, `matched_noise` or `local_noise` (3 x 3 box) by name.

    :raises ValueError: unknown kind
    """
    if kind == "thermal":
        return thermal_noise(y, no, generator)
    if kind == "matched":
        return matched_noise(y, generator)
    if kind == "local":
        return local_noise(y, generator=generator)
    raise ValueError(f"removal={kind!r} is not allowed: one of {REMOVALS}")
