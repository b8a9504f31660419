"""The dataset builder: the same seed gives the same tables, in this process or in a pool of
workers; splits come from independent seeds; adaptation rows carry the counterfactual
should_adapt label."""

import math

import numpy as np
import pytest
import torch

from dmrx.explain.metadata import (
    ADAPT_MARGIN,
    label_should_adapt,
    read_table,
    to_arrays,
)
from dmrx.explain.metadata_build import build_dataset
from dmrx.nn import NeuralReceiver, ResNetConfig
from dmrx.scenarios import build_receiver


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from dmrx.scenarios import get_link

    link = get_link("ref-4prb")
    torch.manual_seed(0)
    net = NeuralReceiver(link, ResNetConfig(num_channels=8, num_blocks=1))
    kw = dict(num_slots_per_point=3, num_points={"train": 2, "val": 1, "test": 1},
              scenarios=("tdl-a-30ns-3kmh", "tdl-e-100ns-120kmh"),
              receivers={"ls": build_receiver("ls", link)}, jammers=(("dmrs", 0.0),),
              adapt_checkpoint=net, adapt_variant="dmrs-crc",
              adapt_runs={"train": 1, "val": 1, "test": 1}, adapt_segments=2,
              adapt_segment_slots=5, horizon=2, window=2, progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the caller's count must neither matter nor change
    try:
        a = build_dataset(tmp_path_factory.mktemp("a"), seed=5, **kw)
        after = torch.get_num_threads()
        b = build_dataset(tmp_path_factory.mktemp("b"), seed=5, workers=2, **kw)
    finally:
        torch.set_num_threads(threads)
    return a, b, after


def test_same_seed_same_tables_in_this_process_and_in_two_workers(tiny):
    # every task runs on one torch thread, so the adapters' float rounding (which follows the
    # thread count) is the same in a worker as here
    a, b, threads_after = tiny
    assert threads_after == 2
    for split in ("train", "val", "test"):
        ta, tb = read_table(a[split]), read_table(b[split])
        for name in ta.column_names:  # NaN == NaN here (pyarrow's equals says no)
            np.testing.assert_array_equal(ta.column(name).to_numpy(zero_copy_only=False),
                                          tb.column(name).to_numpy(zero_copy_only=False),
                                          err_msg=f"{split} {name}")


def test_splits_are_drawn_from_independent_seeds(tiny):
    a = tiny[0]
    tables = {s: read_table(p) for s, p in a.items()}
    seeds = {s: set(t.column("seed").to_pylist()) for s, t in tables.items()}
    assert all(not (seeds[x] & seeds[y]) for x in seeds for y in seeds if x < y)
    rows = {s: {tuple(r) for r in to_arrays(t, "block_error")[0].tolist()}
            for s, t in tables.items()}
    assert not (rows["train"] & rows["val"]) and not (rows["train"] & rows["test"])
    # 2 points x 3 slots x 1 receiver + 1 run x 2 segments x 5 slots
    assert tables["train"].num_rows == 2 * 3 + 2 * 5


def test_adapt_rows_carry_the_counterfactual_label(tiny):
    t = read_table(tiny[0]["train"])
    src = np.array(t.column("source").to_pylist())
    lab = np.array(t.column("should_adapt").to_pylist())
    gain = np.array(t.column("adapt_bler_gain").to_pylist())
    assert np.all(lab[src == "simulate"] == -1)
    ad = src == "adapt"
    # horizon 2 + window 2: the first 2 of each 5-slot segment are measured (frozen at t vs
    # adapted over t, t+1, both scored on t+2, t+3), the last 3 have no window left
    assert (lab[ad] >= 0).tolist() == [True, True, False, False, False] * 2
    measured = ad & (lab >= 0)
    assert measured.sum() == 4
    assert np.all(lab[measured] == (gain[measured] > ADAPT_MARGIN))
    relabelled = label_should_adapt(t, margin=-1.0)  # every measured gain clears it
    assert np.all(np.array(relabelled.column("should_adapt").to_pylist())[measured] == 1)
    assert all(math.isnan(g) for g in gain[~measured])
    bce_gain = np.array(t.column("adapt_gain").to_pylist())
    assert np.isfinite(bce_gain[measured]).all() and np.isnan(bce_gain[~measured]).all()
    assert any(t.column("updated").to_pylist())


def test_bad_counts_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="num_slots_per_point"):
        build_dataset(tmp_path, num_slots_per_point=0, progress=False)
    with pytest.raises(ValueError, match="num_points"):
        build_dataset(tmp_path, num_points={"train": -1}, progress=False)
    with pytest.raises(ValueError, match="seed"):
        build_dataset(tmp_path, seed=-1, progress=False)
    with pytest.raises(ValueError, match="workers"):
        build_dataset(tmp_path, workers=0, progress=False)


def test_a_bad_adapter_is_refused_before_any_work(tmp_path):
    from dmrx.nn.checkpoint import CheckpointError

    with pytest.raises(CheckpointError):
        build_dataset(tmp_path, adapt_checkpoint=tmp_path / "missing", workers=2,
                      progress=False)
    with pytest.raises(ValueError, match="unknown adaptation variant 'dmrs-typo'"):
        build_dataset(tmp_path, adapt_variant="dmrs-typo", workers=2, progress=False)
    assert not list(tmp_path.iterdir())  # nothing written


def test_jammed_scenario_names_are_refused(tmp_path):
    # the builder draws and labels the jammers itself; a suffix would jam rows labelled clean
    with pytest.raises(ValueError, match="without a jammer suffix"):
        build_dataset(tmp_path, scenarios=["awgn+dmrs-jammer-0db"], progress=False)
