import pytest
import torch
from torch import nn

from dmrx.ofdm import LinkConfig


class RegionReceiver(nn.Module):
    """A hand-built receiver whose every LLR is gain * Re(sum_S conj(s) y): it depends only on
    the REs of a known region S (s is a known unit-modulus pattern on S, zero elsewhere).

    Its explained layer `conv` is a fixed identity 1x1 convolution over three feature maps:
    0: Re(conj(s) y), non-zero on S only (what the output reads);
    1: |y|^2 off S, large (a distractor the output ignores);
    2: a constant (a distractor active everywhere).
    A method that weighted the channels wrongly would spread the map outside S.
    """

    kind = "test"

    def __init__(self, link: LinkConfig, region: torch.Tensor, gain: float = 0.05):
        super().__init__()
        self.link, self.gain = link, gain
        g = torch.Generator().manual_seed(7)
        phase = torch.rand(region.shape, generator=g) * 2 * torch.pi
        self.register_buffer("pattern", torch.polar(region.float(), phase))
        self.register_buffer("region", region)
        self.conv = nn.Conv2d(3, 3, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3)[:, :, None, None])

    def features(self, y: torch.Tensor) -> torch.Tensor:
        y0 = y[:, 0, 0]  # [batch, sym, sc]
        corr = (self.pattern.conj() * y0).real
        distract = y0.abs().square() * (~self.region)
        const = torch.ones_like(corr)
        return torch.stack([corr, distract, const], dim=1)

    def forward(self, y: torch.Tensor, no) -> torch.Tensor:
        a = self.conv(self.features(y))
        llr = self.gain * a[:, 0].sum(dim=(1, 2))  # [batch]
        return llr[:, None].expand(-1, self.link.num_coded_bits)

    def slots(self, batch: int, seed: int = 0, off_power: float = 10.0) -> torch.Tensor:
        """y = the pattern on S (so the LLRs are large and positive), strong random REs off S.

        :return: [batch, 1, 1, sym, sc] complex64
        """
        g = torch.Generator().manual_seed(seed)
        shape = (batch, *self.region.shape)
        off = torch.complex(torch.randn(shape, generator=g), torch.randn(shape, generator=g))
        y = torch.where(self.region, self.pattern.expand(shape), off * (off_power / 2) ** 0.5)
        return y[:, None, None].to(torch.complex64)


@pytest.fixture
def region(ref_link):
    m = torch.zeros(ref_link.num_ofdm_symbols, ref_link.fft_size, dtype=torch.bool)
    m[4:7, 20:28] = True
    return m


@pytest.fixture
def region_rx(ref_link, region):
    return RegionReceiver(ref_link, region)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models and small batches: one torch thread is faster than two and leaves the other
    core free. Restored afterwards, so other modules keep the root conftest's setting. Use as
    `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    from dmrx.explain.metadata_build import one_torch_thread

    with one_torch_thread():
        yield


class PerREReceiver(nn.Module):
    """A hand-built receiver with one LLR per RE, as a real one: the `num_bits_per_symbol` LLRs
    of each data RE are all gain * Re(y) there, so each RE's bits depend on that RE alone and
    their signs vary over the grid. Its explained layer `conv` is a fixed identity 1x1
    convolution of the single feature map Re(y)."""

    kind = "test"

    def __init__(self, link: LinkConfig, gain: float = 2.0):
        super().__init__()
        from dmrx.ofdm import data_mask

        self.link, self.gain = link, gain
        self.register_buffer("data", data_mask(link))
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.fill_(1.0)

    def forward(self, y: torch.Tensor, no) -> torch.Tensor:
        a = self.conv(y[:, 0, :1].real)[:, 0]  # [batch, sym, sc]
        per_re = self.gain * a[:, self.data]  # [batch, data REs], row-major as the mapper
        return per_re.repeat_interleave(self.link.num_bits_per_symbol, dim=1)


@pytest.fixture
def per_re_rx(ref_link):
    return PerREReceiver(ref_link)


def _medic_task(n: int, seed: int, n_features: int = 5):
    """A small synthetic table for MEDIC: y depends on x0 and the binary last column only;
    the columns between are noise. -> (X [n, n_features] float32, y [n] int64)"""
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    X[:, -1] = rng.integers(0, 2, n)
    y = ((X[:, 0] > 0.5) | ((X[:, -1] == 1) & (X[:, 0] > -0.7))).astype(np.int64)
    return X, y


@pytest.fixture(scope="session")
def medic_task():
    """`_medic_task(n, seed, n_features=5)`, shared by the MEDIC tests (the suite imports test
    modules in importlib mode, so they cannot import a helper from one another)."""
    return _medic_task
