"""The gated-adaptation benchmark's threshold rule (`select_threshold`): chosen on selection
runs, the largest update reduction whose loss stays within the budget, by both loss figures."""

import pytest


@pytest.fixture(scope="module")
def gated(load_benchmark):
    return load_benchmark("gated_adaptation")


def _sweep(rows: dict) -> dict:
    return {"receivers": {f"gated@{rule}": {
        "updates": u, "updates_reduction": r, "bler": 0.02,
        "loss_db": {"from_bler": lb, "from_mean_bce": lc}}
        for rule, (u, r, lb, lc) in rows.items()}}


def test_largest_reduction_within_budget_by_both_loss_figures(gated):
    cands = {"base-rate": 0.044, "0.06": 0.06, "0.08": 0.08, "0.1": 0.1}
    res = _sweep({"base-rate": (1900, 0.47, 0.02, 0.01),
                  "0.06": (1300, 0.64, 0.05, 0.07),
                  "0.08": (900, 0.75, 0.06, 0.09),    # BCE loss over budget
                  "0.1": (100, 0.97, None, 0.01)})    # BLER loss beyond the measured curve
    chosen, table = gated.select_threshold(res, cands, budget_db=0.08)
    assert chosen == "0.06"
    assert [r["within_budget"] for r in table] == [True, True, False, False]
    chosen, _ = gated.select_threshold(res, cands, budget_db=0.1)
    assert chosen == "0.08"


def test_nothing_within_budget_falls_back_to_the_base_rate(gated):
    cands = {"0.06": 0.06, "base-rate": 0.044}
    res = _sweep({"0.06": (1300, 0.64, 0.3, 0.2), "base-rate": (1900, 0.47, 0.2, 0.2)})
    assert gated.select_threshold(res, cands, budget_db=0.08)[0] == "base-rate"
