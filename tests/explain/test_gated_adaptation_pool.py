"""`benchmarks/gated_adaptation_pool.py`: one gate over several gated_adaptation runs on
disjoint seeds — sums, the seed-weighted always-adapt curve, the loss read off it, and the
seed-bootstrap interval."""

import math

import pytest

GATE = "gated@base-rate"
SLOTS = 100  # per seed, one segment


@pytest.fixture(scope="module")
def pool(load_benchmark):
    return load_benchmark("gated_adaptation_pool")


def _run(errors: dict[int, tuple[int, int]], curve_bler, *, checkpoint="ck") -> dict:
    """A gated_adaptation result: {seed: (always's block errors, the gate's)}, always-adapt's
    BLER at offsets 0, -0.25, -0.5 dB; the gate updates on half the slots."""
    n = len(errors)
    a = sum(v[0] for v in errors.values())
    g = sum(v[1] for v in errors.values())

    def rx(err: int, updates: int, bce: float) -> dict:
        return {"bler": err / (n * SLOTS), "mean_bce": bce, "updates": updates,
                "segments": [{"scenario": "tdl-c", "bler": err / (n * SLOTS)}],
                "discordant_slots": {"gated_only_errors": 2 * n, "always_only_errors": n}}

    return {
        "setup": {"checkpoint": checkpoint, "variant": "dmrs-crc", "data": "d", "model": "hicem",
                  "offsets_db": [-0.25, -0.5],
                  "schedule": {"segments": [{"scenario": "tdl-c", "slots": SLOTS}]}},
        "receivers": {"always": rx(a, n * SLOTS, 0.10), GATE: rx(g, n * SLOTS // 2, 0.11),
                      "static": rx(a + g, 0, 0.2)},
        "always_adapt_snr_curve": [{"offset_db": d, "bler": b, "mean_bce": 0.10 + 0.04 * -d}
                                   for d, b in zip((0.0, -0.25, -0.5), curve_bler,
                                                   strict=True)],
        "traces": {str(s): {"error_slots": {"always": list(range(ea)), GATE: list(range(eg)),
                                            "static": []}}
                   for s, (ea, eg) in errors.items()},
    }


def test_pooled_sums_and_the_loss_read_off_the_seed_weighted_curve(pool, load_benchmark):
    loss_db = load_benchmark("gated_adaptation").loss_db
    r1 = _run({1: (10, 12), 2: (10, 12)}, (0.10, 0.12, 0.15))           # 2 seeds
    r2 = _run({3: (10, 11), 4: (10, 11), 5: (10, 11), 6: (10, 11)}, (0.10, 0.13, 0.16))
    out = pool.pool_runs([r1, r2], GATE, draws=200)
    assert out["seeds"] == [1, 2, 3, 4, 5, 6]
    assert out["block_errors"] == {GATE: 24 + 44, "always": 60}
    assert out["updates"] == {GATE: 300, "always": 600}
    assert out["updates_reduction"] == pytest.approx(0.5)
    assert out["discordant_slots"] == {"gated_only_errors": 12, "always_only_errors": 6}
    # the curve weighs each run by its seeds: 1/3 and 2/3
    curve = [c["bler"] for c in out["always_adapt_snr_curve"]]
    assert curve == pytest.approx([0.10, (0.12 + 2 * 0.13) / 3, (0.15 + 2 * 0.16) / 3])
    bler_gate = (0.12 + 2 * 0.11) / 3
    assert out["bler"][GATE] == pytest.approx(bler_gate)
    expected = loss_db([0.0, -0.25, -0.5], curve, bler_gate, log=True)
    assert out["loss_db"]["from_bler"] == pytest.approx(expected)
    assert 0 < expected < 0.25
    lo, hi = out["loss_db"]["from_bler_interval"]
    assert lo < expected < hi


def test_interval_collapses_when_every_seed_has_the_same_ratio(pool):
    # every seed: 10 errors always-adapt, 12 with the gate -> every resample has ratio 1.2
    r = _run({s: (10, 12) for s in range(8)}, (0.10, 0.13, 0.16))
    out = pool.pool_runs([r], GATE, draws=100)
    lo, hi = out["loss_db"]["from_bler_interval"]
    point = out["loss_db"]["from_bler"]
    assert lo == pytest.approx(point) and hi == pytest.approx(point)
    # log-linear between 0 and -0.25 dB: 0.25 * ln 1.2 / ln 1.3
    assert point == pytest.approx(0.25 * math.log(1.2) / math.log(1.3))


def test_interval_keeps_zero_losses_and_widens_beyond_the_curve(pool):
    # equal errors with and without the gate: a loss of exactly 0 dB is a loss, not a gap
    out = pool.pool_runs([_run({s: (10, 10) for s in range(6)}, (0.10, 0.13, 0.16))], GATE,
                         draws=50)
    assert out["loss_db"]["from_bler_interval"] == pytest.approx([0.0, 0.0])
    assert out["loss_db"]["beyond_curve_fraction"] == 0.0
    # twice the errors: beyond the curve's -0.5 dB (1.6x), so the loss is unbounded above
    out = pool.pool_runs([_run({s: (10, 20) for s in range(6)}, (0.10, 0.13, 0.16))], GATE,
                         draws=50)
    assert out["loss_db"]["from_bler"] is None
    assert out["loss_db"]["from_bler_interval"][1] == math.inf
    assert out["loss_db"]["beyond_curve_fraction"] == 1.0


def test_bad_runs_are_named(pool):
    r1 = _run({1: (10, 12)}, (0.10, 0.12, 0.15))
    with pytest.raises(ValueError, match=r"share seeds: \[1\]"):
        pool.pool_runs([r1, _run({1: (9, 9)}, (0.10, 0.12, 0.15))], GATE)
    with pytest.raises(ValueError, match=r"differs from run 0 in \['checkpoint'\]"):
        pool.pool_runs([r1, _run({2: (9, 9)}, (0.10, 0.12, 0.15), checkpoint="other")], GATE)
    with pytest.raises(ValueError, match="no receiver 'gated@x'"):
        pool.pool_runs([r1], "gated@x")
