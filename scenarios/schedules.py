"""Drift schedules: a sequence of (scenario, slots, SNR) segments a receiver lives through.

Named schedules sit in `SCHEDULES`; user-defined ones come from TOML:

    name = "my-drift"
    [[segment]]
    scenario = "tdl-a-30ns-3kmh"
    slots = 300
    snr_db = 12.0
    [[segment]]
    scenario = "tdl-c-300ns-60kmh"
    slots = 300
    snr_db = 12.0
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from dmrx.scenarios.catalog import Scenario, get_scenario

SNR_DB_LIMITS = (-30.0, 60.0)
_SEGMENT_KEYS = {"scenario", "slots", "snr_db"}


@dataclass(frozen=True)
class Segment:
    """:param scenario: a scenario name (catalog or TDL/CDL pattern)
    :param slots: slots the segment lasts, >= 1
    :param snr_db: SNR of every slot of the segment (Es/N0 per data RE, dB)
    """

    scenario: str
    slots: int
    snr_db: float

    def __post_init__(self) -> None:
        get_scenario(self.scenario)  # raises a ValueError naming the allowed scenarios
        if isinstance(self.slots, bool) or not isinstance(self.slots, int) or self.slots < 1:
            raise ValueError(f"Segment.slots={self.slots!r} is not allowed: an integer >= 1")
        lo, hi = SNR_DB_LIMITS
        if not (isinstance(self.snr_db, int | float) and math.isfinite(self.snr_db)
                and lo <= self.snr_db <= hi):
            raise ValueError(f"Segment.snr_db={self.snr_db!r} is not allowed: {lo:g}..{hi:g} dB")

    @property
    def channel_scenario(self) -> Scenario:
        return get_scenario(self.scenario)


@dataclass(frozen=True)
class Schedule:
    name: str
    segments: tuple[Segment, ...]

    def __post_init__(self) -> None:
        if not self.segments:
            raise ValueError(f"schedule {self.name!r} has no segment")

    @property
    def num_slots(self) -> int:
        return sum(s.slots for s in self.segments)

    @property
    def boundaries(self) -> list[int]:
        """Index of the first slot of every segment after the first."""
        out, n = [], 0
        for s in self.segments[:-1]:
            n += s.slots
            out.append(n)
        return out

    def segment_of(self, slot: int) -> int:
        """Index of the segment that slot number `slot` (0-based) belongs to."""
        n = 0
        for i, s in enumerate(self.segments):
            n += s.slots
            if slot < n:
                return i
        raise ValueError(f"slot {slot} is beyond the schedule's {self.num_slots} slots")

    def as_dict(self) -> dict:
        return {"name": self.name, "segments": [
            {"scenario": s.scenario, "slots": s.slots, "snr_db": s.snr_db}
            for s in self.segments]}


def _drift_default() -> Schedule:
    a = "tdl-a-30ns-3kmh"
    return Schedule("drift-default", tuple(
        Segment(sc, 300, 12.0) for sc in (a, "tdl-c-300ns-60kmh", "tdl-e-100ns-120kmh", a)))


SCHEDULES: dict[str, Schedule] = {s.name: s for s in [_drift_default()]}


def read_toml(path: str | Path, what: str) -> dict:
    """The table in a TOML file; `what` names the file in errors ('schedule file', ...).

    :raises ValueError: the file does not exist or is not valid TOML
    """
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{what} {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{what} {str(path)!r} is not valid TOML: {e}") from e


def load_schedule(path: str | Path) -> Schedule:
    """Read a schedule from TOML (see the module docstring).

    :raises ValueError: unreadable TOML, or a segment that is missing a key, has an unknown one,
        names an unknown scenario, or has a bad slot count or SNR (the message names the
        segment and the field)
    """
    path = Path(path)
    data = read_toml(path, "schedule file")
    unknown = set(data) - {"name", "segment"}
    if unknown:
        raise ValueError(f"schedule {str(path)!r}: unknown top-level keys {sorted(unknown)}; "
                         "allowed: name, [[segment]]")
    raw = data.get("segment")
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"schedule {str(path)!r} has no [[segment]] table")
    segments = []
    for i, seg in enumerate(raw, start=1):
        missing, extra = _SEGMENT_KEYS - set(seg), set(seg) - _SEGMENT_KEYS
        if missing or extra:
            raise ValueError(f"schedule {str(path)!r}, segment {i}: "
                             + (f"missing {sorted(missing)} " if missing else "")
                             + (f"unknown {sorted(extra)} " if extra else "")
                             + f"(each segment has {sorted(_SEGMENT_KEYS)})")
        try:
            segments.append(Segment(seg["scenario"], seg["slots"], seg["snr_db"]))
        except ValueError as e:
            raise ValueError(f"schedule {str(path)!r}, segment {i}: {e}") from None
    return Schedule(str(data.get("name", path.stem)), tuple(segments))


def get_schedule(name_or_path: str) -> Schedule:
    """A named schedule, or one read from a .toml file.

    :raises ValueError: neither a known name nor a readable schedule file
    """
    if name_or_path in SCHEDULES:
        return SCHEDULES[name_or_path]
    if name_or_path.endswith(".toml"):
        return load_schedule(name_or_path)
    raise ValueError(f"unknown schedule {name_or_path!r}: use one of {sorted(SCHEDULES)} or "
                     "a path to a .toml file")
