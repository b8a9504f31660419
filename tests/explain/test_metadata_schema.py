"""The metadata table's schema is checked when read: a missing or mistyped column is an error
that names it."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from dmrx.explain.metadata import (
    CONCEPTS,
    FEATURES,
    LABELS,
    SCHEMA,
    MetadataRecorder,
    read_table,
    to_arrays,
    write_table,
)
from dmrx.scenarios import get_scenario


@pytest.fixture
def table(ref_link):
    """Six hand-made rows: two batches of three slots, the second an adaptation batch."""
    g = torch.Generator().manual_seed(0)
    link = ref_link
    rec = MetadataRecorder(link, run="test", source="adapt", seed=1)
    shape = (3, 1, link.num_rx_ant, link.num_ofdm_symbols, link.fft_size)
    for k in range(2):
        y = torch.complex(torch.randn(shape, generator=g), torch.randn(shape, generator=g))
        llr = torch.randn(3, link.num_coded_bits, generator=g) * 4
        b = torch.randint(0, 2, (3, link.tb_size), generator=g).float()
        c = torch.randint(0, 2, (3, link.num_coded_bits), generator=g).float()
        rec.record(slot=3 * k, y=y, no=0.1, llr=llr, b=b, b_hat=b, crc_ok=torch.ones(3,
                   dtype=torch.bool), c=c, scenario=get_scenario("tdl-c-300ns-60kmh"),
                   snr_db=10.0, receiver="neural",
                   should_adapt=None if k == 0 else [1, 0, -1],
                   adapt_gain=None if k == 0 else [0.1, -0.1, float("nan")])
    return rec.table()


def test_schema_names_features_concepts_and_labels():
    assert list(SCHEMA)[:3] == ["run", "source", "slot"]
    for name in (*FEATURES, *CONCEPTS, *LABELS, "jammer_kind"):
        assert name in SCHEMA
    assert SCHEMA["jammer_kind"][0] == pa.string()
    assert all(SCHEMA[c][0] == pa.bool_() for c in CONCEPTS)
    assert all(SCHEMA[f][0] == pa.float32() for f in FEATURES)
    # no ground truth among the features
    assert not {"snr_db", "speed_kmh", "delay_spread_ns", "jsr_db"} & set(FEATURES)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_written_table_reads_back_identical(table, tmp_path, suffix):
    path = write_table(table, tmp_path / f"t{suffix}")
    back = read_table(path)
    assert back.schema == table.schema
    assert back.column("snr_db").to_pylist() == table.column("snr_db").to_pylist()
    np.testing.assert_array_equal(back.column("llr_abs_mean").to_numpy(),
                                  table.column("llr_abs_mean").to_numpy())


def test_missing_column_is_named(table, tmp_path):
    pq.write_table(table.drop_columns(["snr_est_db"]), tmp_path / "t.parquet")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['snr_est_db'\]"):
        read_table(tmp_path / "t.parquet")


def test_mistyped_column_is_named(table, tmp_path):
    i = table.column_names.index("block_error")
    bad = table.set_column(i, "block_error", table.column("block_error").cast(pa.float64()))
    pq.write_table(bad, tmp_path / "t.parquet")
    with pytest.raises(ValueError, match="column 'block_error' has type double, expected int8"):
        read_table(tmp_path / "t.parquet")


def test_csv_column_that_does_not_parse_is_named(table, tmp_path):
    path = write_table(table, tmp_path / "t.csv")
    lines = path.read_text().splitlines()
    head = lines[0].split(",")
    col = head.index('"slot"') if '"slot"' in head else head.index("slot")
    row = lines[1].split(",")
    row[col] = "seven"
    lines[1] = ",".join(row)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="column 'slot' does not read as int64"):
        read_table(path)


def test_label_outside_its_domain_is_an_error(table, tmp_path):
    i = table.column_names.index("should_adapt")
    bad = table.set_column(i, "should_adapt", pa.array([0, 1, 2, 0, 1, -1], pa.int8()))
    pq.write_table(bad, tmp_path / "t.parquet")
    with pytest.raises(ValueError, match="'should_adapt' holds"):
        read_table(tmp_path / "t.parquet")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_table(tmp_path / "nope.parquet")


def test_to_arrays_keeps_rows_where_the_label_is_measured(table):
    X, C, y = to_arrays(table, "block_error")
    assert X.shape == (6, len(FEATURES)) and X.dtype == np.float32
    assert C.shape == (6, len(CONCEPTS)) and C.dtype == np.float32
    assert y.dtype == np.int64 and y.tolist() == [0] * 6
    X, C, y = to_arrays(table, "should_adapt")
    assert X.shape[0] == 2 and y.tolist() == [1, 0]
    with pytest.raises(ValueError, match="unknown label"):
        to_arrays(table, "snr_db")
