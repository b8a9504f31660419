"""What a CAM map explains: a scalar per slot computed from a receiver's LLRs.

A receiver's output is not a class score but `llr [batch, num_coded_bits]` (LLR = log P(c=1) /
P(c=0)), one group of `num_bits_per_symbol` consecutive LLRs per data RE, data REs row-major over
(OFDM symbol, subcarrier) — the order of Sionna's resource-grid mapper. A target picks the coded
bits of a *region* of the grid (one RE, a PRB, an OFDM symbol, the whole transport block) and
reduces them to one number per slot. Every CAM method works with every target (the
pytorch-grad-cam "target object" idea), and every target is differentiable in the LLRs.

With s = 2 c - 1 in {-1, +1} the sign of the transmitted coded bit c:

- `LLRMagnitude`:   sum |llr|                       confidence, needs no labels
- `LogLikelihood`:  sum log P(c) = -sum softplus(-s llr)   evidence for the right bits, <= 0
- `BlockError`:     the block-error event, a differentiable surrogate of "the block fails":
  'nll' = sum softplus(-s llr) (the negative correct-bit log-likelihood, i.e. the BCE a
  receiver is trained on), or 'wrong-bit' = sum sigmoid(-s llr) (the expected number of coded
  bit errors). 'nll' is the default because confidently wrong bits weigh more than uncertain
  ones (an erased bit costs log 2, a confidently wrong one much more), which is what breaks an
  LDPC decoder, and because it lets a region raise the score above that of pure noise (LLRs of
  noise cost about log 2 per bit), which region-based methods (Score-CAM) need to see the REs
  that drive an error.

Sums, not means: a region's score is the sum over its coded bits, so the block score is the sum
of its PRBs' scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from dmrx.ofdm import LinkConfig, data_mask

SURROGATES = ("nll", "wrong-bit")


def _grid(link: LinkConfig) -> tuple[int, int]:
    return link.num_ofdm_symbols, link.fft_size


def _check_index(what: str, value: int, size: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
        raise ValueError(f"{what}={value!r} is not allowed: an integer in 0..{size - 1}")
    return value


def re_region(link: LinkConfig, symbol: int, subcarrier: int) -> torch.Tensor:
    """One resource element.

    :return: [num_ofdm_symbols, fft_size] bool
    :raises ValueError: an index outside the grid
    """
    n_sym, n_sc = _grid(link)
    m = torch.zeros(n_sym, n_sc, dtype=torch.bool)
    m[_check_index("symbol", symbol, n_sym), _check_index("subcarrier", subcarrier, n_sc)] = True
    return m


def prb_region(link: LinkConfig, prb: int) -> torch.Tensor:
    """The 12 subcarriers of one PRB over the whole slot.

    :return: [num_ofdm_symbols, fft_size] bool
    :raises ValueError: prb outside 0..num_prbs-1
    """
    m = torch.zeros(_grid(link), dtype=torch.bool)
    p = _check_index("prb", prb, link.num_prbs)
    m[:, 12 * p: 12 * (p + 1)] = True
    return m


def symbol_region(link: LinkConfig, symbol: int) -> torch.Tensor:
    """All subcarriers of one OFDM symbol.

    :return: [num_ofdm_symbols, fft_size] bool
    :raises ValueError: symbol outside the grid
    """
    m = torch.zeros(_grid(link), dtype=torch.bool)
    m[_check_index("symbol", symbol, link.num_ofdm_symbols)] = True
    return m


def block_region(link: LinkConfig) -> torch.Tensor:
    """The whole grid (every data RE of the transport block).

    :return: [num_ofdm_symbols, fft_size] bool
    """
    return torch.ones(_grid(link), dtype=torch.bool)


def coded_bit_mask(link: LinkConfig, region: torch.Tensor) -> torch.Tensor:
    """The coded bits carried by the data REs of `region`, in the order of the LLRs.

    :param region: [num_ofdm_symbols, fft_size] bool
    :return: [num_coded_bits] bool
    :raises ValueError: wrong shape, or the region holds no data RE (e.g. only DMRS REs)
    """
    if tuple(region.shape) != _grid(link) or region.dtype != torch.bool:
        raise ValueError(f"region must be a bool tensor of shape {_grid(link)} "
                         f"(num_ofdm_symbols, fft_size), got {region.dtype} "
                         f"{tuple(region.shape)}")
    per_re = region.cpu()[data_mask(link)]  # [num_data_re], row-major like the LLRs
    if not per_re.any():
        raise ValueError("region holds no data RE (DMRS and empty REs carry no coded bits)")
    return per_re.repeat_interleave(link.num_bits_per_symbol)


@dataclass(frozen=True, eq=False)
class _BitTarget:
    """A region of the grid reduced to one score per slot from its coded bits' LLRs.

    :param link: the link whose LLR layout is read
    :param region: [num_ofdm_symbols, fft_size] bool, None = the whole block
    :input llr: [batch, num_coded_bits] float32, log P(c=1)/P(c=0)
    :input c: [batch, num_coded_bits] float32 in {0, 1}, the transmitted coded bits (required by
        targets that need labels, ignored by the others)
    :output: [batch] float32
    """

    link: LinkConfig
    region: torch.Tensor | None = None
    bits: torch.Tensor = field(init=False, repr=False, compare=False)
    needs_labels = True

    def __post_init__(self) -> None:
        region = block_region(self.link) if self.region is None else self.region
        object.__setattr__(self, "bits", coded_bit_mask(self.link, region))

    def per_bit(self, llr: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
        """[batch, bits] llr (and s = 2c-1) -> [batch, bits] per-bit contribution."""
        raise NotImplementedError

    def __call__(self, llr: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        n = self.link.num_coded_bits
        if llr.dim() != 2 or llr.shape[-1] != n:
            raise ValueError(f"llr must have shape [batch, {n}], got {tuple(llr.shape)}")
        sel = self.bits.to(llr.device)
        s = None
        if self.needs_labels:
            if c is None:
                raise ValueError(f"{type(self).__name__} needs the coded bits c "
                                 f"[batch, {n}]: pass c=...")
            if tuple(c.shape) != tuple(llr.shape):
                raise ValueError(f"c must have the shape of llr {tuple(llr.shape)}, got "
                                 f"{tuple(c.shape)}")
            s = (2 * c[:, sel] - 1).to(llr.dtype)
        return self.per_bit(llr[:, sel], s).sum(dim=-1)


@dataclass(frozen=True, eq=False)
class LLRMagnitude(_BitTarget):
    """sum over the region's coded bits of |llr|: how confident the receiver is there."""

    needs_labels = False

    def per_bit(self, llr: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
        return llr.abs()


@dataclass(frozen=True, eq=False)
class LogLikelihood(_BitTarget):
    """sum over the region's coded bits of log P(c = transmitted bit) = -softplus(-s llr)."""

    def per_bit(self, llr: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
        return -F.softplus(-s * llr)


@dataclass(frozen=True, eq=False)
class BlockError(_BitTarget):
    """The block-error event: 'nll' = sum softplus(-s llr), 'wrong-bit' = sum sigmoid(-s llr)
    over the region's coded bits (the whole block by default); larger = closer to failing.

    :param surrogate: 'nll' or 'wrong-bit' (see the module docstring for the choice)
    """

    surrogate: str = "nll"

    def __post_init__(self) -> None:
        if self.surrogate not in SURROGATES:
            raise ValueError(f"BlockError.surrogate={self.surrogate!r} is not allowed: one of "
                             f"{SURROGATES}")
        super().__post_init__()

    def per_bit(self, llr: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
        return F.softplus(-s * llr) if self.surrogate == "nll" else torch.sigmoid(-s * llr)


TARGET_REGIONS = ("re", "prb", "symbol", "block", "error")
TARGET_KINDS = ("log-likelihood", "llr-magnitude")


def make_target(link: LinkConfig, region: str = "block", *, kind: str = "log-likelihood",
                symbol: int | None = None, subcarrier: int | None = None,
                prb: int | None = None, surrogate: str = "nll") -> _BitTarget:
    """A target by name (what the CLI and scripts use).

    :param region: 're' (needs symbol, subcarrier), 'prb' (needs prb), 'symbol' (needs symbol),
        'block', or 'error' (the block-error event, `BlockError(surrogate)`)
    :param kind: for the regions: 'log-likelihood' or 'llr-magnitude'
    :raises ValueError: unknown region or kind, a missing or out-of-grid index
    """
    if region not in TARGET_REGIONS:
        raise ValueError(f"target region {region!r} is not allowed: one of {TARGET_REGIONS}")
    if region == "error":
        return BlockError(link, surrogate=surrogate)
    if kind not in TARGET_KINDS:
        raise ValueError(f"target kind {kind!r} is not allowed: one of {TARGET_KINDS}")

    def need(name: str, value: int | None) -> int:
        if value is None:
            raise ValueError(f"target region {region!r} needs {name}=...")
        return value

    mask = {
        "re": lambda: re_region(link, need("symbol", symbol), need("subcarrier", subcarrier)),
        "prb": lambda: prb_region(link, need("prb", prb)),
        "symbol": lambda: symbol_region(link, need("symbol", symbol)),
        "block": lambda: None,
    }[region]()
    cls = LogLikelihood if kind == "log-likelihood" else LLRMagnitude
    return cls(link, mask)
