"""Per-layer allocation: the DP finds the exact optimum under the budget."""

import itertools

import pytest
import torch

from dmrx.nn import NeuralReceiver, ResNetConfig
from dmrx.quant import AllocationConfig, allocate
from dmrx.quant.allocate import LayerStats, choose


def _stats(seed):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(6):
        n = int(torch.randint(100, 1000, (), generator=g))
        st = LayerStats(f"l{i}", n, n * 10, 0.1)
        for fmt, b in (("mxfp4_e2m1", 4.25), ("mxfp6_e2m3", 6.25), ("mxfp8_e4m3", 8.25)):
            st.options[fmt] = {"bits_per_weight": b, "bits": b * n, "bops": n * 10 * b * 8,
                               "loss_increase": float(torch.rand((), generator=g)) / b ** 2}
        out.append(st)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("budget", [4.5, 5.5, 7.0])
def test_dp_matches_brute_force(seed, budget):
    stats = _stats(seed)
    cfg = AllocationConfig(("mxfp4", "mxfp6", "mxfp8"), budget)
    plan, cost, loss = choose(stats, cfg)
    n = sum(s.num_weights for s in stats)
    best = min((sum(s.options[f]["loss_increase"] for s, f in zip(stats, combo, strict=True)),
                combo) for combo in itertools.product(cfg.candidates, repeat=len(stats))
               if sum(s.options[f]["bits"] for s, f in zip(stats, combo, strict=True))
               <= budget * n)
    assert loss == pytest.approx(best[0])
    assert cost <= budget * n
    assert tuple(plan.values()) == best[1]


def test_infeasible_budget_is_refused():
    with pytest.raises(ValueError, match="below the cheapest"):
        choose(_stats(0), AllocationConfig(("mxfp4",), 4.0))
    with pytest.raises(ValueError, match="kind='flops'"):
        AllocationConfig(("mxfp4",), 4.0, kind="flops")


def test_allocate_spends_bits_where_the_loss_is_sensitive(ref_link):
    torch.manual_seed(0)
    rx = NeuralReceiver(ref_link, ResNetConfig(num_channels=8, num_blocks=1)).eval()
    x = torch.randn(2, 1, 1, 14, 48, dtype=torch.complex64)
    with torch.no_grad():
        ref = rx(x, 0.1)

    def loss(r):  # distance to the float output; the output layer matters most
        with torch.no_grad():
            return float((r(x, 0.1) - ref).square().mean())

    a = allocate(rx, AllocationConfig(("bbq2", "int8"), 3.5), loss, (14, 48))
    assert a.bits_per_weight() <= 3.5
    assert set(a.plan.values()) == {"bbq2", "int8"}
    rep = a.report()
    assert [layer["name"] for layer in rep["layers"]] == list(a.plan)
    for layer in rep["layers"]:
        assert layer["options"]["int8"]["weight_sqnr_db"] > layer["options"]["bbq2"][
            "weight_sqnr_db"]
    assert "average" in a.table()


def test_block_bbq_formats_form_their_own_allocation_family():
    from dmrx.quant.allocate import FAMILIES, family_of

    assert family_of("bbq3-g32") == "bbq-g32" and family_of("bbq3") == "bbq"
    assert all(family_of(f) in ("bbq-g32", "int") for f in FAMILIES["bbq-g32"])
