"""A convolutional residual receiver over the resource grid (DeepRx; Sionna's neural-receiver
tutorial), keeping the contract `receiver(y, no) -> llr`.

Input features per RE (channels of an image over OFDM symbols x subcarriers):
  Re/Im y per rx antenna, log10(no), the DMRS mask, Re/Im of the known DMRS value, and
  (`ls_input`) Re/Im of the raw LS estimate y/p on the DMRS REs per antenna (zero elsewhere);
  with 'smoothed' also that estimate interpolated over the grid by normalised convolution
  (a fixed triangular kernel; Knutsson & Westin 1993) and the symbols it equalises, so a small
  network starts from a classic receiver's view instead of learning interpolation from scratch.
  The interpolation only uses the DMRS the network is allowed to see (`dmrs_keep`).
Data-aided passes (`ResNetConfig.data_aided_passes`): after the first network's LLRs, each pass
turns them into soft symbols (Sionna's LLRs2SymbolLogits -> SymbolLogits2Moments), re-estimates
the channel at every RE from the neighbouring REs' y * conj(x_soft) (soft decision-directed,
normalised convolution over +-2 OFDM symbols and +-6 subcarriers, leaving the RE itself out so
a wrong decision does not confirm itself), equalises with it, and a further network of the same
shape adds a correction to the LLRs. With one DMRS symbol at high Doppler, the pilots alone
cannot say what the channel is at the far end of the slot; the detected data can.
Output: `num_bits_per_symbol` LLRs per RE; the data REs are read out in the order Sionna's
resource-grid mapper fills them (row-major over symbol, subcarrier), the order of the coded bits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sionna.phy.mapping import LLRs2SymbolLogits, SymbolLogits2Moments
from torch import nn

from dmrx.nn.resnet import GridResNet, ResNetConfig
from dmrx.ofdm import LinkConfig, check_receiver_inputs, data_mask, dmrs_mask, dmrs_values


def _triangular_factors(link: LinkConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Triangular weights spanning the slot in time and +-6 subcarriers (about half the
    coherence bandwidth of TDL-C 300 ns at 30 kHz) in frequency.

    :return: wt [2 * num_ofdm_symbols - 1], wf [13] float32; the kernel is their outer product
    """
    t = torch.arange(-(link.num_ofdm_symbols - 1), link.num_ofdm_symbols, dtype=torch.float32)
    f = torch.arange(-6, 7, dtype=torch.float32)
    return 1 - t.abs() / link.num_ofdm_symbols, 1 - f.abs() / 7


def _data_aided_factors() -> tuple[torch.Tensor, torch.Tensor]:
    """Triangular weights over +-2 OFDM symbols (the channel of a 300 km/h link decorrelates
    within the slot) and +-6 subcarriers; the kernel is their outer product with the centre tap
    zeroed (leave-one-out).

    :return: wt [5], wf [13] float32
    """
    wt = 1 - torch.arange(-2, 3, dtype=torch.float32).abs() / 3
    wf = 1 - torch.arange(-6, 7, dtype=torch.float32).abs() / 7
    return wt, wf


def _outer(wt: torch.Tensor, wf: torch.Tensor, leave_one_out: bool = False) -> torch.Tensor:
    """[1, 1, kt, kf] kernel wt x wf, its centre tap zeroed if `leave_one_out`."""
    k = wt[:, None] * wf[None, :]
    if leave_one_out:
        k[wt.numel() // 2, wf.numel() // 2] = 0.0
    return k[None, None]


def separable_conv(x: torch.Tensor, wt: torch.Tensor, wf: torch.Tensor,
                   leave_one_out: bool = False) -> torch.Tensor:
    """Zero-padded 2-D correlation of `x` with the kernel `_outer(wt, wf, leave_one_out)`, as
    two 1-D passes (kt + kf multiplies per output instead of kt * kf: 40 instead of 351 for the
    slot kernel), the centre tap's share taken off afterwards for `leave_one_out`.

    We do not call conv2d with the full kernel: besides the 9x work, oneDNN (torch's CPU
    convolution backend) takes a slow path for these one-channel convolutions, ~4x slower than
    torch's own on an AVX2 CPU.

    :param x: [n, 1, num_ofdm_symbols, fft_size] float32
    :param wt, wf: [kt], [kf] odd lengths
    :return: like x
    """
    y = F.conv2d(x, wt.view(1, 1, -1, 1), padding=(wt.numel() // 2, 0))
    y = F.conv2d(y, wf.view(1, 1, 1, -1), padding=(0, wf.numel() // 2))
    if leave_one_out:
        y = y - wt[wt.numel() // 2] * wf[wf.numel() // 2] * x
    return y


def per_slot_no(no: torch.Tensor, batch: int) -> torch.Tensor:
    """[batch] noise variances from a validated scalar or [batch] `no`."""
    return no.expand(batch) if no.dim() == 0 else no


class NeuralReceiver(nn.Module):
    """Fully convolutional neural receiver for one link.

    :input y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
    :input no: float, 0-d or [batch] float32 noise variance
    :output llr: [batch, num_coded_bits] float32, log(P(c=1)/P(c=0))
    """

    kind = "neural"
    requires_csi = False

    def __init__(self, link: LinkConfig, config: ResNetConfig | None = None):
        super().__init__()
        self.link = link
        self.config = config or ResNetConfig()
        self.register_buffer("dmrs_mask", dmrs_mask(link), persistent=False)
        self.register_buffer("dmrs_values", dmrs_values(link), persistent=False)
        self.register_buffer("data_mask", data_mask(link), persistent=False)
        n_ant = link.num_rx_ant
        n_in = 2 * n_ant + 4 + {"none": 0, "pilots": 2 * n_ant,
                                "smoothed": 4 * n_ant + 2}[self.config.ls_input]
        self.net = GridResNet(n_in, link.num_bits_per_symbol, self.config)
        wt, wf = _triangular_factors(link)
        self.register_buffer("smoothing_wt", wt, persistent=False)
        self.register_buffer("smoothing_wf", wf, persistent=False)
        self.refine = nn.ModuleList()
        if self.config.data_aided_passes:
            nb = link.num_bits_per_symbol
            self.llr_to_logits = LLRs2SymbolLogits(nb)
            self.soft_symbols = SymbolLogits2Moments("qam", nb)
            wt, wf = _data_aided_factors()
            self.register_buffer("data_aided_wt", wt, persistent=False)
            self.register_buffer("data_aided_wf", wf, persistent=False)
            # the 2-D kernel, for its sum and for reference (the convolution is separable_conv)
            self.register_buffer("data_aided_kernel", _outer(wt, wf, leave_one_out=True),
                                 persistent=False)
            for _ in range(self.config.data_aided_passes):
                # in: the first pass's features, Re/Im h_da per antenna, Re/Im of the symbol it
                # equalises, the soft-symbol energy around the RE, tanh(llr / 2) per bit
                net = GridResNet(n_in + 2 * n_ant + 3 + nb, nb, self.config)
                nn.init.zeros_(net.output_conv.weight)  # a pass starts as "no correction"
                nn.init.zeros_(net.output_conv.bias)
                self.refine.append(net)

    def features(self, y: torch.Tensor, no: torch.Tensor,
                 dmrs_keep: torch.Tensor | None = None) -> torch.Tensor:
        """The network's input image.

        :param y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
        :param no: [batch] float32
        :param dmrs_keep: optional [batch, num_ofdm_symbols, fft_size] bool: DMRS REs whose
            pilot the network may see; on the others the DMRS mask, value and LS estimate are
            zeroed, so they look like data REs (online adaptation hides them to use as labels)
        :return: [batch, features, num_ofdm_symbols, fft_size] float32
        """
        b = y.shape[0]
        y = y[:, 0]  # [batch, ant, sym, sc]
        mask = self.dmrs_mask.expand(b, -1, -1)
        if dmrs_keep is not None:
            mask = mask & dmrs_keep
        p = self.dmrs_values * mask
        no_db = torch.log10(no).reshape(-1, 1, 1, 1).expand(b, 1, *y.shape[-2:])
        feats = [y.real, y.imag, no_db, mask.unsqueeze(1).float(), p.real.unsqueeze(1),
                 p.imag.unsqueeze(1)]
        if self.config.ls_input != "none":
            # raw LS estimate y / p on the visible DMRS REs, zero elsewhere
            ls = y * (p.conj() / self.dmrs_values.abs().square().clamp_min(1e-9)).unsqueeze(1)
            feats += [ls.real, ls.imag]
        if self.config.ls_input == "smoothed":
            h = self._normalized_conv(ls, mask)  # [batch, ant, sym, sc]
            x_hat = (h.conj() * y).sum(1) / (h.abs().square().sum(1) + no.reshape(-1, 1, 1))
            feats += [h.real, h.imag, x_hat.real.unsqueeze(1), x_hat.imag.unsqueeze(1)]
        return torch.cat(feats, dim=1)

    def _normalized_conv(self, ls: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """sum_w(mask * ls) / sum_w(mask): interpolates and smooths the pilots' LS estimates.

        :param ls: [batch, ant, sym, sc] complex64, zero off the visible DMRS
        :param mask: [batch, sym, sc] bool, the visible DMRS
        """
        b, n_ant = ls.shape[:2]
        wt, wf = self.smoothing_wt, self.smoothing_wf
        num = separable_conv(
            torch.view_as_real(ls).permute(0, 1, 4, 2, 3).reshape(b * n_ant * 2, 1,
                                                                  *ls.shape[-2:]), wt, wf
        ).reshape(b, n_ant, 2, *ls.shape[-2:])
        den = separable_conv(mask.unsqueeze(1).float(), wt, wf)
        num = num / den.clamp_min(1e-6).unsqueeze(2)
        return torch.complex(num[:, :, 0], num[:, :, 1])

    def grid_llr(self, y: torch.Tensor, no: torch.Tensor,
                 dmrs_keep: torch.Tensor | None = None) -> torch.Tensor:
        """LLRs of every RE of the grid (data, DMRS and empty REs alike).

        :return: [batch, num_ofdm_symbols, fft_size, num_bits_per_symbol] float32
        """
        feats = self.features(y, no, dmrs_keep)
        grid = self.net(feats)
        for net in self.refine:
            grid = grid + net(torch.cat([feats, self.data_aided_features(y, no, grid, dmrs_keep)],
                                        dim=1))
        return grid.permute(0, 2, 3, 1)

    def data_aided_features(self, y: torch.Tensor, no: torch.Tensor, grid: torch.Tensor,
                            dmrs_keep: torch.Tensor | None = None) -> torch.Tensor:
        """Channel re-estimated from a pass's soft symbols, the symbols it equalises, the local
        soft-symbol energy, and the pass's bit beliefs. Pilots enter only where visible: a
        hidden DMRS RE contributes nothing (its value is the label online adaptation trains on).

        :param y: [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64
        :param no: [batch] float32
        :param grid: [batch, num_bits_per_symbol, num_ofdm_symbols, fft_size] LLRs of a pass
        :return: [batch, 2 * num_rx_ant + 3 + num_bits_per_symbol, num_ofdm_symbols, fft_size]
        """
        b = y.shape[0]
        y = y[:, 0]
        mask = self.dmrs_mask.expand(b, -1, -1)
        if dmrs_keep is not None:
            mask = mask & dmrs_keep
        x_soft, _ = self.soft_symbols(self.llr_to_logits(grid.permute(0, 2, 3, 1)))
        x_soft = torch.where(self.data_mask, x_soft, 0) + self.dmrs_values * mask
        z = y * x_soft.conj().unsqueeze(1)  # [batch, ant, sym, sc]: y * conj(x) = |x|^2 h + ...
        wt, wf, k = self.data_aided_wt, self.data_aided_wf, self.data_aided_kernel
        n_ant = y.shape[1]
        num = separable_conv(torch.view_as_real(z).permute(0, 1, 4, 2, 3)
                             .reshape(b * n_ant * 2, 1, *z.shape[-2:]), wt, wf, True)
        num = num.reshape(b, n_ant, 2, *z.shape[-2:])
        den = separable_conv(x_soft.abs().square().unsqueeze(1), wt, wf, True)  # [batch, 1, ..]
        # +1 (about 5 % of the kernel's full weight): where the soft symbols are all unsure,
        # h_da shrinks toward 0 instead of dividing noise by noise
        h = torch.complex(num[:, :, 0], num[:, :, 1]) / (den + 1.0)
        x_hat = (h.conj() * y).sum(1) / (h.abs().square().sum(1) + no.reshape(-1, 1, 1))
        return torch.cat([h.real, h.imag, x_hat.real.unsqueeze(1), x_hat.imag.unsqueeze(1),
                          den / k.sum(), torch.tanh(grid / 2)], dim=1)

    def data_llr(self, grid: torch.Tensor) -> torch.Tensor:
        """[batch, sym, sc, bits] grid LLRs -> [batch, num_coded_bits], data REs row-major."""
        return grid[:, self.data_mask].reshape(grid.shape[0], -1)

    def hidden_dmrs_bce(self, grid: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """BCE of the sign-bit LLRs at hidden DMRS REs against the known pilots.

        The DMRS is QPSK, so a hidden pilot fixes the two sign bits of the QAM Gray mapping
        (38.211 5.1: b0 <-> Re < 0, b1 <-> Im < 0), the bits the network outputs for a data RE
        there: detecting it from the visible DMRS is the computation of detecting data.

        :param grid: [batch, sym, sc, bits] from `grid_llr(..., dmrs_keep=dmrs_mask & ~hidden)`
        :param hidden: [batch, sym, sc] bool, a subset of the DMRS REs
        """
        p = self.dmrs_values.expand(grid.shape[0], -1, -1)[hidden]
        labels = torch.stack([p.real < 0, p.imag < 0], dim=-1).float()
        return F.binary_cross_entropy_with_logits(grid[..., :2][hidden], labels)

    def hide_dmrs(self, batch: int, fraction: float,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """A random subset (each DMRS RE with probability `fraction`) of the DMRS REs.

        :return: [batch, num_ofdm_symbols, fft_size] bool, True = hidden
        """
        r = torch.rand((batch, *self.dmrs_mask.shape), generator=generator,
                       device=self.dmrs_mask.device)
        return (r < fraction) & self.dmrs_mask

    def forward(self, y: torch.Tensor, no: float | torch.Tensor) -> torch.Tensor:
        no = per_slot_no(check_receiver_inputs(self.link, y, no), y.shape[0])
        return self.data_llr(self.grid_llr(y, no))
