"""Figures and tables of a sweep's results: BLER/BER waterfalls and SNR at a target BLER.

Points of the same (link, scenario, receiver, SNR) from several seeds are merged by adding
their error counts (more slots, not an average of rates). Figures are one PNG per (link,
scenario) with a BLER and a BER panel, one curve per receiver.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from dmrx.nn.checkpoint import atomic_write
from dmrx.scenarios.metrics import ZERO_POINTS_NOTE, draw_waterfall, snr_at_bler
from dmrx.scenarios.results import read_results

_COUNTS = ("slots", "bit_errors", "bits", "block_errors", "coded_bit_errors", "coded_bits")


@dataclass(frozen=True)
class Curve:
    """One receiver's waterfall on one scenario, seeds merged.

    :param snr_db: increasing SNR points, dB
    :param slots, block_errors, bit_errors, bits: summed over seeds, per point
    """

    link: str
    scenario: str
    receiver: str
    snr_db: tuple[float, ...]
    slots: tuple[int, ...]
    block_errors: tuple[int, ...]
    bit_errors: tuple[int, ...]
    bits: tuple[int, ...]
    seeds: int

    @property
    def bler(self) -> list[float]:
        return [e / n if n else math.nan for e, n in zip(self.block_errors, self.slots,
                                                          strict=True)]

    @property
    def ber(self) -> list[float]:
        return [e / n if n else math.nan for e, n in zip(self.bit_errors, self.bits,
                                                          strict=True)]

    def snr_at(self, target_bler: float) -> float:
        """SNR (dB) where the BLER crosses `target_bler`; NaN if it does not in the grid."""
        return snr_at_bler(self.snr_db, self.bler, target_bler)


def curves(out: str | Path, spec_hash: str | None = None) -> list[Curve]:
    """The waterfalls stored under a sweep output directory, sorted by link, scenario,
    receiver.

    :raises ValueError: no results there
    """
    rows = read_results(out, spec_hash).to_pylist()
    merged: dict[tuple, dict[float, dict]] = {}
    seeds: dict[tuple, set[int]] = {}
    for r in rows:
        key = (r["link"], r["scenario"], r["receiver"])
        acc = merged.setdefault(key, {}).setdefault(r["snr_db"], dict.fromkeys(_COUNTS, 0))
        for c in _COUNTS:
            acc[c] += r[c]
        seeds.setdefault(key, set()).add(r["seed"])
    out_curves = []
    for key in sorted(merged):
        pts = sorted(merged[key].items())
        out_curves.append(Curve(*key, tuple(s for s, _ in pts),
                                *(tuple(p[c] for _, p in pts) for c in
                                  ("slots", "block_errors", "bit_errors", "bits")),
                                seeds=len(seeds[key])))
    return out_curves


@dataclass
class Report:
    curves: list[Curve]
    target_bler: float
    files: list[Path]

    def table(self) -> str:
        """SNR at the target BLER per (link, scenario) and receiver, as text."""
        head = (f"{'link':<12} {'scenario':<22} {'receiver':<14} "
                f"{f'SNR@BLER={self.target_bler:g}':>15} {'points':>6} {'seeds':>5}")
        rows = [head, "-" * len(head)]
        for c in self.curves:
            snr = c.snr_at(self.target_bler)
            text = f"{snr:.2f} dB" if math.isfinite(snr) else "not crossed"
            rows.append(f"{c.link:<12} {c.scenario:<22} {c.receiver:<14} {text:>15} "
                        f"{len(c.snr_db):>6} {c.seeds:>5}")
        return "\n".join(rows)


def _plot(group: list[Curve], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a_bler, a_ber) = plt.subplots(1, 2, figsize=(10, 4))
    any_bound = False
    for i, c in enumerate(group):
        for ax, rates, counts in ((a_bler, c.bler, c.slots), (a_ber, c.ber, c.bits)):
            any_bound |= draw_waterfall(ax, c.snr_db, rates, counts, color=f"C{i % 10}",
                                        label=c.receiver)
    for ax, what in ((a_bler, "BLER"), (a_ber, "BER (information bits)")):
        ax.set_xlabel("SNR (Es/N0 per RE) [dB]")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    note = f"; {ZERO_POINTS_NOTE}" if any_bound else ""
    fig.suptitle(f"{group[0].link} on {group[0].scenario}{note}")
    fig.tight_layout()
    atomic_write(path, fig.savefig)
    plt.close(fig)


def write_report(out: str | Path, *, target_bler: float = 0.1, spec_hash: str | None = None,
                 to: str | Path | None = None) -> Report:
    """Draw the waterfalls and write the SNR-at-target table (CSV and JSON).

    :param out: a sweep output directory
    :param target_bler: BLER at which the SNR is read off, in (0, 1)
    :param to: directory of the figures and tables (default: `out`/report)
    :raises ValueError: bad target, or no results under `out`
    """
    if not 0 < target_bler < 1:
        raise ValueError(f"target_bler={target_bler!r} is not allowed: in (0, 1)")
    found = curves(out, spec_hash)
    if not found:
        raise ValueError(f"{str(out)!r} holds no finished point yet")
    dest = Path(to) if to is not None else Path(out) / "report"
    dest.mkdir(parents=True, exist_ok=True)
    files = []
    groups: dict[tuple[str, str], list[Curve]] = {}
    for c in found:
        groups.setdefault((c.link, c.scenario), []).append(c)
    for (link, scenario), group in groups.items():
        path = dest / f"waterfall-{link}-{scenario}.png"
        _plot(group, path)
        files.append(path)
    summary = [{"link": c.link, "scenario": c.scenario, "receiver": c.receiver,
                "snr_db_at_target": c.snr_at(target_bler), "target_bler": target_bler,
                "points": len(c.snr_db), "seeds": c.seeds} for c in found]

    def write_csv(p: Path) -> None:
        with open(p, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(summary[0]))
            w.writeheader()
            w.writerows(summary)

    atomic_write(dest / "snr_at_bler.csv", write_csv)
    text = json.dumps({"target_bler": target_bler, "summary": summary,
                       "curves": [{"link": c.link, "scenario": c.scenario,
                                   "receiver": c.receiver, "snr_db": list(c.snr_db),
                                   "bler": c.bler, "ber": c.ber, "slots": list(c.slots)}
                                  for c in found]}, indent=2)
    atomic_write(dest / "report.json", lambda p: p.write_text(text))
    files += [dest / "snr_at_bler.csv", dest / "report.json"]
    return Report(found, target_bler, files)
