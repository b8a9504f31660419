"""The results table of a sweep: one Parquet part file per finished point, never half a point.

Layout under the output directory:

    sweep-<spec_hash>.json         the spec that ran (one file per spec that wrote here)
    points/<point_id>.parquet      one row per receiver of one finished point

A part file is written under a temporary name, fsynced and renamed (`atomic_write`): a sweep
killed at any instant (SIGKILL included) leaves whole part files and at most a stray temporary
one, which readers ignore. A point's file name is its id, so a point can never be stored twice
and a rerun skips exactly the points whose file exists. `read_results` concatenates the parts
into one tidy table sorted by (link, scenario, receiver, SNR, seed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dmrx.nn.checkpoint import atomic_write
from dmrx.ofdm import ErrorCounts, LinkConfig
from dmrx.scenarios.sweep import ReceiverSpec, SweepPoint, SweepSpec

POINTS_DIR = "points"
# One row per (point, receiver). Counts are stored, rates are derived from them, so points
# merge across seeds and resumed runs by adding counts.
SCHEMA = pa.schema([
    ("spec_hash", pa.string()), ("point_id", pa.string()), ("link", pa.string()),
    ("scenario", pa.string()), ("receiver", pa.string()), ("snr_db", pa.float64()),
    ("seed", pa.int64()), ("max_slots", pa.int64()), ("slots", pa.int64()),
    ("bit_errors", pa.int64()), ("bits", pa.int64()), ("block_errors", pa.int64()),
    ("coded_bit_errors", pa.int64()), ("coded_bits", pa.int64()), ("ber", pa.float64()),
    ("bler", pa.float64()), ("coded_ber", pa.float64()), ("throughput_mbps", pa.float64()),
    ("elapsed_s", pa.float64()),
])
SORT_KEYS = [("link", "ascending"), ("scenario", "ascending"), ("receiver", "ascending"),
             ("snr_db", "ascending"), ("seed", "ascending")]
# Columns that measure the run, not the link: they differ between two runs of the same point.
TIMING_COLUMNS = ("elapsed_s",)


def point_rows(point: SweepPoint, counts: dict[str, ErrorCounts], link: LinkConfig,
               elapsed_s: float) -> list[dict]:
    """The table rows of one finished point: one per receiver label, in the spec's order."""
    rows = []
    for r in point.receivers:
        c = counts[r.label]
        rows.append({"spec_hash": point.spec_hash, "point_id": point.point_id,
                     "link": point.link, "scenario": point.scenario, "receiver": r.label,
                     "snr_db": point.snr_db, "seed": point.seed, "max_slots": point.slots,
                     "slots": c.blocks, "bit_errors": c.bit_errors, "bits": c.bits,
                     "block_errors": c.block_errors, "coded_bit_errors": c.coded_bit_errors,
                     "coded_bits": c.coded_bits, "ber": c.ber, "bler": c.bler,
                     "coded_ber": c.coded_ber,
                     "throughput_mbps": c.throughput_bps(link) / 1e6, "elapsed_s": elapsed_s})
    return rows


class ResultsStore:
    """A sweep's output directory (created on first write)."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"--out {str(self.out)!r} is a file, not a directory")

    @property
    def points_dir(self) -> Path:
        return self.out / POINTS_DIR

    def finished_ids(self) -> set[str]:
        """Ids of the points whose part file is complete (temporary files are not)."""
        if not self.points_dir.is_dir():
            return set()
        return {p.stem for p in self.points_dir.glob("*.parquet") if not p.name.startswith(".")}

    def write_spec(self, spec: SweepSpec) -> Path:
        self.points_dir.mkdir(parents=True, exist_ok=True)
        path = self.out / f"sweep-{spec.spec_hash}.json"
        text = json.dumps(spec.as_dict(), indent=2)
        atomic_write(path, lambda p: p.write_text(text))
        return path

    def write_point(self, rows: list[dict]) -> Path:
        """Store one point's rows atomically under its point id.

        :raises ValueError: rows of several points, or none
        """
        ids = {r["point_id"] for r in rows}
        if len(ids) != 1:
            raise ValueError(f"write_point takes the rows of exactly one point, got ids {ids}")
        self.points_dir.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
        path = self.points_dir / f"{ids.pop()}.parquet"
        atomic_write(path, lambda p: pq.write_table(table, p))
        return path


def read_results(out: str | Path, spec_hash: str | None = None) -> pa.Table:
    """All finished points under `out` as one table (schema `SCHEMA`), sorted by link,
    scenario, receiver, SNR and seed.

    :param spec_hash: keep only the points of the grid of this spec (a point written by an
        earlier spec that the grid also holds counts as this spec's)
    :raises ValueError: `out` holds no results directory
    """
    store = ResultsStore(out)
    if not store.points_dir.is_dir():
        raise ValueError(f"{str(out)!r} holds no sweep results (no {POINTS_DIR}/ directory)")
    files = sorted(p for p in store.points_dir.glob("*.parquet") if not p.name.startswith("."))
    tables = [pq.read_table(p, schema=SCHEMA) for p in files]
    table = pa.concat_tables(tables) if tables else SCHEMA.empty_table()
    if spec_hash is not None:
        spec_file = store.out / f"sweep-{spec_hash}.json"
        if not spec_file.exists():
            raise ValueError(f"{str(out)!r} holds no sweep with spec hash {spec_hash!r}")
        ids = {p.point_id for p in _spec_of(json.loads(spec_file.read_text())).points()}
        mask = pa.array([i in ids for i in table.column("point_id").to_pylist()])
        table = table.filter(mask)
    return table.sort_by(SORT_KEYS)


def _spec_of(spec_json: dict) -> SweepSpec:
    # Rebuild a stored spec without reloading its checkpoints: their stored digests are used.
    receivers = tuple(ReceiverSpec(r["name"], r["checkpoint"], r["label"], r["digest"])
                      for r in spec_json["receivers"])
    return SweepSpec(spec_json["name"], spec_json["link"], tuple(spec_json["scenarios"]),
                     receivers, tuple(spec_json["snr_db"]), tuple(spec_json["seeds"]),
                     spec_json["slots"], spec_json["max_block_errors"], spec_json["batch_size"])
