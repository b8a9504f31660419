"""Sweep specifications: scenario x SNR x seed grids for one set of receivers, from TOML.

    name = "ref-waterfalls"
    link = "ref-4prb"
    scenarios = ["tdl-c-300ns-3kmh", "tdl-c-300ns-60kmh"]
    snr_db = "4:16:1"            # 'start:stop:step' (stop inclusive), or a list of numbers
    seeds = [0, 1]
    slots = 2000                 # slots per point, at most
    max_block_errors = 100       # a receiver stops counting at a point after this many errors
                                 # (0: never; TOML has no null)
    batch_size = 128
    receivers = ["ls", "perfect", "neural=../checkpoints/neural-ref-4prb"]
    # or tables: [[receiver]] name = "neural"  checkpoint = "..."  label = "nn-v2"

A point is (scenario, SNR, seed) with *all* receivers of the spec: they see the very same slots,
as in `simulate`, so their differences are not sampling noise. A point's slots depend only on
its own (seed, SNR, batch size): it gives the same numbers as `dmrx simulate --seed S --snr-db
SNR --batch-size B` and does not depend on the backend, the number of workers or which other
points run. Checkpoint paths are relative to the spec file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from dmrx.ofdm import field_error
from dmrx.scenarios.catalog import get_link, get_scenario
from dmrx.scenarios.receivers import LEARNED, RECEIVER_NAMES, build_receiver
from dmrx.scenarios.schedules import read_toml
from dmrx.scenarios.simulate import SNR_DB_LIMITS, parse_snr_db

_TOP_KEYS = {"name", "link", "scenarios", "snr_db", "seeds", "slots", "max_block_errors",
             "batch_size", "receivers", "receiver"}
_RECEIVER_KEYS = {"name", "checkpoint", "label"}


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def checkpoint_digest(path: str | Path) -> str:
    """SHA-256 of a checkpoint's config and weights, so a retrained checkpoint at the same path
    is a different receiver (and a different point) for the results table.

    :raises ValueError: the directory or its files cannot be read
    """
    path = Path(path)
    h = hashlib.sha256()
    try:
        for name in ("config.json", "model.safetensors"):
            h.update((path / name).read_bytes())
    except OSError as e:
        raise ValueError(f"checkpoint {str(path)!r} is unreadable: {e.strerror or e}") from None
    return h.hexdigest()


@dataclass(frozen=True)
class ReceiverSpec:
    """:param name: a receiver name of `scenarios.receivers` ('ls', 'perfect', 'neural', ...)
    :param checkpoint: checkpoint directory of a learned receiver (absolute, or relative to the
        working directory), None for a classic one
    :param label: the receiver's name in the results table (default: `name`)
    :param digest: SHA-256 of the checkpoint's files ('' for a classic receiver), set by
        `checked()`; it enters the point ids, not the label
    """

    name: str
    checkpoint: str | None = None
    label: str = ""
    digest: str = ""

    def __post_init__(self) -> None:
        if self.name not in RECEIVER_NAMES:
            raise ValueError(f"ReceiverSpec.name={self.name!r} is not a known receiver: use one "
                             f"of {list(RECEIVER_NAMES)}")
        if self.name in LEARNED and not self.checkpoint:
            raise ValueError(f"ReceiverSpec.checkpoint: receiver {self.name!r} needs one")
        if self.name not in LEARNED and self.checkpoint:
            raise ValueError(f"ReceiverSpec.checkpoint: receiver {self.name!r} takes none")
        if not self.label:
            object.__setattr__(self, "label", self.name)

    def checked(self, link_name: str) -> ReceiverSpec:
        """This spec with the checkpoint's digest, after loading it once for `link_name`.

        :raises ValueError: unreadable checkpoint, or one of another kind or link
        """
        if not self.checkpoint:
            return self
        digest = checkpoint_digest(self.checkpoint)
        build_receiver(self.name, get_link(link_name), self.checkpoint)
        return ReceiverSpec(self.name, self.checkpoint, self.label, digest)

    def as_dict(self) -> dict:
        return {"name": self.name, "label": self.label, "checkpoint": self.checkpoint,
                "digest": self.digest}


@dataclass(frozen=True)
class SweepPoint:
    """One unit of work: all receivers of the spec at one (scenario, SNR, seed).

    :param snr_db: Es/N0 per data RE, dB
    :param point_id: hex digest of everything that determines the point's numbers (link,
        scenario, receivers with their checkpoint digests, SNR, seed, slots, batch size, error
        limit); a finished point is found again by it, whatever spec it came from
    """

    spec_hash: str
    point_id: str
    link: str
    scenario: str
    receivers: tuple[ReceiverSpec, ...]
    snr_db: float
    seed: int
    slots: int
    batch_size: int
    max_block_errors: int | None


@dataclass(frozen=True)
class SweepSpec:
    """A grid of points; see the module docstring for the TOML form.

    :param snr_db: SNR points, Es/N0 per data RE in dB
    :param slots: slots per point at most (>= 1)
    :param max_block_errors: a receiver stops counting at a point after this many block
        errors; None: always `slots` (0 in TOML)
    """

    name: str
    link: str
    scenarios: tuple[str, ...]
    receivers: tuple[ReceiverSpec, ...]
    snr_db: tuple[float, ...]
    seeds: tuple[int, ...] = (0,)
    slots: int = 1000
    max_block_errors: int | None = 100
    batch_size: int = 128

    def __post_init__(self) -> None:
        bad = functools.partial(field_error, self)

        get_link(self.link)
        if not self.scenarios:
            raise bad("scenarios", "at least one scenario")
        for sc in self.scenarios:
            try:
                get_scenario(sc)
            except ValueError as e:
                raise ValueError(f"SweepSpec.scenarios: {e}") from None
        if not self.receivers:
            raise bad("receivers", "at least one receiver")
        labels = [r.label for r in self.receivers]
        if len(set(labels)) != len(labels):
            raise bad("receivers", "distinct labels (give two of a kind a 'label')")
        if not self.snr_db:
            raise bad("snr_db", "at least one SNR point")
        lo, hi = SNR_DB_LIMITS
        for v in self.snr_db:
            if not (isinstance(v, int | float) and math.isfinite(v) and lo <= v <= hi):
                raise bad("snr_db", f"numbers in {lo:g}..{hi:g} dB")
        if len(set(self.snr_db)) != len(self.snr_db):
            raise bad("snr_db", "distinct values")
        if not self.seeds or not all(_is_int(s) and s >= 0 for s in self.seeds):
            raise bad("seeds", "a non-empty list of non-negative integers")
        if len(set(self.seeds)) != len(self.seeds):
            raise bad("seeds", "distinct values")
        for name in ("slots", "batch_size"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise bad(name, "a positive integer")
        if self.max_block_errors is not None and (not _is_int(self.max_block_errors)
                                                  or self.max_block_errors < 1):
            raise bad("max_block_errors", "a positive integer, or None (0 in TOML) for no "
                      "early stop")

    def canonical(self) -> dict:
        """Everything that determines the results, JSON-able (the name is left out)."""
        return {"link": self.link, "scenarios": list(self.scenarios),
                "receivers": [r.as_dict() | {"checkpoint": None} for r in self.receivers],
                "snr_db": [float(v) for v in self.snr_db], "seeds": list(self.seeds),
                "slots": self.slots, "batch_size": self.batch_size,
                "max_block_errors": self.max_block_errors}

    @property
    def spec_hash(self) -> str:
        """16 hex digits of SHA-256 over `canonical()`: same grid, same hash (checkpoint paths
        do not count, their contents do)."""
        text = json.dumps(self.canonical(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def points(self) -> list[SweepPoint]:
        """The grid in a fixed order: scenario, then seed, then SNR."""
        spec_hash = self.spec_hash
        recv = [r.as_dict() | {"checkpoint": None} for r in self.receivers]
        out = []
        for sc in self.scenarios:
            for seed in self.seeds:
                for snr in self.snr_db:
                    key = {"link": self.link, "scenario": sc, "receivers": recv,
                           "snr_db": float(snr), "seed": seed, "slots": self.slots,
                           "batch_size": self.batch_size,
                           "max_block_errors": self.max_block_errors}
                    pid = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
                    out.append(SweepPoint(spec_hash, pid[:24], self.link, sc, self.receivers,
                                          float(snr), seed, self.slots, self.batch_size,
                                          self.max_block_errors))
        return out

    def as_dict(self) -> dict:
        return {"name": self.name, "spec_hash": self.spec_hash} | self.canonical() | {
            "receivers": [r.as_dict() for r in self.receivers]}


def _parse_receivers(raw: object, base: Path, where: str) -> list[ReceiverSpec]:
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{where}: 'receivers' must be a non-empty list of names "
                         "(e.g. [\"ls\", \"neural=ckpt/dir\"]) or [[receiver]] tables")
    out = []
    for i, r in enumerate(raw, start=1):
        if isinstance(r, str):
            name, _, ckpt = r.partition("=")
            r = {"name": name.strip()} | ({"checkpoint": ckpt.strip()} if ckpt else {})
        if not isinstance(r, dict):
            raise ValueError(f"{where}, receiver {i}: expected a name or a table, got {r!r}")
        extra = set(r) - _RECEIVER_KEYS
        if extra or "name" not in r:
            raise ValueError(f"{where}, receiver {i}: "
                             + ("missing 'name' " if "name" not in r else "")
                             + (f"unknown {sorted(extra)} " if extra else "")
                             + f"(allowed keys {sorted(_RECEIVER_KEYS)})")
        ckpt = r.get("checkpoint")
        if ckpt is not None:
            ckpt = str(Path(ckpt) if Path(ckpt).is_absolute() else base / ckpt)
        try:
            out.append(ReceiverSpec(r["name"], ckpt, r.get("label", "")))
        except ValueError as e:
            raise ValueError(f"{where}, receiver {i}: {e}") from None
    return out


def spec_from_dict(data: dict, base: str | Path = ".", where: str = "sweep spec") -> SweepSpec:
    """Build and check a spec from a TOML-like dict; learned receivers' checkpoints are loaded
    once, so an unreadable or mismatched checkpoint fails here and not in a worker.

    :param base: directory that relative checkpoint paths are taken from
    :raises ValueError: naming the field: unknown key, link, scenario or receiver, empty or bad
        SNR grid, bad counts, unreadable checkpoint
    """
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; allowed: "
                         f"{sorted(_TOP_KEYS - {'receiver'})} and [[receiver]] tables")
    for key in ("link", "scenarios", "snr_db"):
        if key not in data:
            raise ValueError(f"{where}: missing {key!r}")
    if "receivers" in data and "receiver" in data:
        raise ValueError(f"{where}: give 'receivers' or [[receiver]] tables, not both")
    receivers = _parse_receivers(data.get("receivers", data.get("receiver")), Path(base), where)
    snr = data["snr_db"]
    if isinstance(snr, str):
        try:
            snr = parse_snr_db(snr)
        except ValueError as e:
            raise ValueError(f"{where}: snr_db: {e}") from None
    elif not isinstance(snr, list):
        raise ValueError(f"{where}: snr_db must be 'start:stop:step' or a list of numbers, "
                         f"got {snr!r}")
    scenarios = data["scenarios"]
    if isinstance(scenarios, str):
        scenarios = [scenarios]
    seeds = data.get("seeds", [0])
    if _is_int(seeds):
        seeds = [seeds]
    if not isinstance(seeds, list):
        raise ValueError(f"{where}: seeds must be a list of non-negative integers, got {seeds!r}")
    max_errors = data.get("max_block_errors", 100)
    if _is_int(max_errors) and max_errors == 0:
        max_errors = None
    try:
        spec = SweepSpec(str(data.get("name", "sweep")), data["link"], tuple(scenarios),
                         tuple(receivers), tuple(snr), tuple(seeds), data.get("slots", 1000),
                         max_errors, data.get("batch_size", 128))
        checked = tuple(r.checked(spec.link) for r in spec.receivers)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    return SweepSpec(spec.name, spec.link, spec.scenarios, checked, spec.snr_db, spec.seeds,
                     spec.slots, spec.max_block_errors, spec.batch_size)


def load_spec(path: str | Path) -> SweepSpec:
    """Read a sweep spec from TOML (see the module docstring).

    :raises ValueError: missing file, invalid TOML, or an invalid spec (see `spec_from_dict`)
    """
    path = Path(path)
    data = read_toml(path, "sweep spec")
    data.setdefault("name", path.stem)
    return spec_from_dict(data, path.parent, f"sweep spec {str(path)!r}")
