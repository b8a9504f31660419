"""BLER/BER vs SNR of one or several receivers on the same slots of a scenario.

Every receiver sees the very same slots (bits, fading and noise), so differences between them
are not sampling noise. Each SNR point draws from its own seed derived from the user's seed and
the SNR, so a point's numbers do not depend on which other points run or in which order (they
do depend on the batch size, which sets the order of the draws).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from dmrx.nn.checkpoint import atomic_write
from dmrx.ofdm import (
    Decoder,
    ErrorCounts,
    LinkConfig,
    Transmitter,
    count_errors,
    derive_seed,
    seed_everything,
)
from dmrx.scenarios.catalog import Scenario, make_channel
from dmrx.scenarios.metrics import ZERO_POINTS_NOTE, draw_waterfall

SNR_DB_LIMITS = (-30.0, 60.0)


def parse_db_range(text: str, option: str = "--snr-db") -> tuple[float, float]:
    """'0:18' -> (0.0, 18.0): a low:high range in dB (SNR or JSR drawn uniformly per slot);
    a single value gives (value, value).

    :param option: the command-line option it came from, for the error
    :raises ValueError: not numbers
    """
    lo_hi = text.split(":")
    try:
        return float(lo_hi[0]), float(lo_hi[-1])
    except ValueError:
        raise ValueError(f"{option} {text!r}: expected low:high in dB") from None


def parse_snr_db(text: str) -> list[float]:
    """'6:14:2' -> [6, 8, 10, 12, 14] (stop inclusive); '10' -> [10].

    :raises ValueError: not numbers, step <= 0, range backwards, or outside -30..60 dB
    """
    parts = text.split(":")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"--snr-db {text!r}: expected 'start:stop:step' or a single value "
                         "in dB") from None
    if len(nums) == 1:
        values = nums
    elif len(nums) == 3:
        start, stop, step = nums
        if step <= 0:
            raise ValueError(f"--snr-db {text!r}: step must be > 0, got {step:g}")
        if start > stop:
            raise ValueError(f"--snr-db {text!r}: range is backwards (start {start:g} > "
                             f"stop {stop:g})")
        n = int(math.floor((stop - start) / step + 1e-9)) + 1
        values = [round(start + i * step, 10) for i in range(n)]
    else:
        raise ValueError(f"--snr-db {text!r}: expected 'start:stop:step' or a single value")
    check_snr_db(values)
    return values


def check_snr_db(values: Sequence[float]) -> None:
    lo, hi = SNR_DB_LIMITS
    for v in values:
        if not (math.isfinite(v) and lo <= v <= hi):
            raise ValueError(f"SNR {v} dB is out of range: allowed {lo:g}..{hi:g} dB")


@dataclass(frozen=True)
class SnrPoint:
    receiver: str
    snr_db: float
    counts: ErrorCounts

    @property
    def slots(self) -> int:
        return self.counts.blocks

    def as_dict(self, link: LinkConfig) -> dict:
        c = self.counts
        return {"receiver": self.receiver, "snr_db": self.snr_db, "slots": c.blocks,
                "bit_errors": c.bit_errors, "bits": c.bits, "block_errors": c.block_errors,
                "coded_bit_errors": c.coded_bit_errors, "coded_bits": c.coded_bits,
                "ber": c.ber, "bler": c.bler, "coded_ber": c.coded_ber,
                "throughput_mbps": c.throughput_bps(link) / 1e6}


@dataclass
class SimulationResult:
    link: LinkConfig
    scenario: Scenario
    receivers: list[str]
    seed: int
    points: list[SnrPoint] = field(default_factory=list)
    elapsed_s: float = 0.0

    def as_dict(self) -> dict:
        return {
            "link": self.link.as_dict(),
            "scenario": self.scenario.as_dict(),
            "receiver": self.receivers[0] if len(self.receivers) == 1 else self.receivers,
            "seed": self.seed,
            "snr_convention": "Es/N0 per data RE: unit-energy QAM, unit-average-gain channel, "
                              "no = 10**(-snr_db/10)",
            "points": [p.as_dict(self.link) for p in self.points],
            "elapsed_s": self.elapsed_s,
        }

    def write_json(self, path: str | Path) -> None:
        text = json.dumps(self.as_dict(), indent=2)
        atomic_write(Path(path), lambda p: p.write_text(text))

    def table(self) -> str:
        head = f"{'receiver':<10} {'SNR dB':>7} {'slots':>7} {'BLER':>10} {'BER':>10} " \
               f"{'coded BER':>10} {'Mbit/s':>8}"
        rows = [head, "-" * len(head)]
        for p in self.points:
            c = p.counts
            rows.append(f"{p.receiver:<10} {p.snr_db:>7.2f} {c.blocks:>7d} {c.bler:>10.4g} "
                        f"{c.ber:>10.4g} {c.coded_ber:>10.4g} "
                        f"{c.throughput_bps(self.link) / 1e6:>8.3f}")
        return "\n".join(rows)

    def plot(self, path: str | Path) -> None:
        """BLER vs SNR, one curve per receiver, written as PNG/SVG by the file's suffix."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5.5, 4))
        any_bound = False
        for i, name in enumerate(self.receivers):
            pts = [p for p in self.points if p.receiver == name]
            any_bound |= draw_waterfall(ax, [p.snr_db for p in pts],
                                        [p.counts.bler for p in pts], [p.slots for p in pts],
                                        color=f"C{i % 10}", label=name)
        if any_bound:
            ax.text(0.02, 0.02, ZERO_POINTS_NOTE, transform=ax.transAxes, fontsize=8,
                    color="0.4")
        ax.set_xlabel("SNR (Es/N0 per RE) [dB]")
        ax.set_ylabel("BLER")
        ax.set_title(f"{self.link.name} on {self.scenario.name}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        atomic_write(Path(path), fig.savefig)
        plt.close(fig)


def simulate(
    link: LinkConfig,
    scenario: Scenario,
    receivers: Mapping[str, Callable[..., torch.Tensor]],
    snr_db: Sequence[float],
    num_slots: int,
    *,
    batch_size: int = 128,
    seed: int = 0,
    max_block_errors: int | None = None,
    progress: bool = True,
    metadata=None,
) -> SimulationResult:
    """Run `num_slots` slots per SNR point through tx -> channel (and the scenario's jammer,
    if any: `make_channel`) -> each receiver -> decoder.

    :param receivers: name -> receiver, each callable as `receiver(y, no) -> llr`
        ([batch, num_coded_bits]); one with `requires_csi = True` is called `(y, no, h=h)`
    :param snr_db: SNR points, Es/N0 per data RE in dB
    :param num_slots: slots per SNR point (> 0)
    :param max_block_errors: a receiver stops counting at a point once it has this many block
        errors (the usual 100-error rule; None: never); the point ends when all have stopped
    :param metadata: a `dmrx.explain.metadata.MetadataRecorder` that gets one record per slot
        and receiver ('slot' counts over the points in order); None: no records
    :raises ValueError: no receiver, slots or batch size < 1, SNR out of range
    """
    if not receivers:
        raise ValueError("simulate needs at least one receiver")
    if isinstance(num_slots, bool) or not isinstance(num_slots, int) or num_slots < 1:
        raise ValueError(f"num_slots must be a positive integer, got {num_slots!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_block_errors is not None and max_block_errors < 1:
        raise ValueError(f"max_block_errors must be >= 1 or None, got {max_block_errors}")
    check_snr_db(snr_db)

    tx, channel, decoder = Transmitter(link), make_channel(link, scenario), Decoder(link)
    result = SimulationResult(link, scenario, list(receivers), seed)
    t0 = time.perf_counter()
    bar = tqdm(total=num_slots * len(snr_db), unit="slot", disable=not progress,
               desc=f"{link.name} {scenario.name}")
    with torch.inference_mode():
        for point, snr in enumerate(snr_db):
            seed_everything(derive_seed(seed, float(snr)))
            no = 10.0 ** (-float(snr) / 10.0)
            totals = {name: ErrorCounts() for name in receivers}
            active = list(receivers)  # receivers still counting at this point
            done = 0
            while done < num_slots and active:
                n = min(batch_size, num_slots - done)
                s = tx(n)
                y, h = channel(s.x, no)
                for name in list(active):
                    rx = receivers[name]
                    llr = rx(y, no, h=h) if getattr(rx, "requires_csi", False) else rx(y, no)
                    b_hat, crc_ok = decoder(llr)
                    totals[name] += count_errors(s.b, b_hat, crc_ok, s.c, llr)
                    if metadata is not None:
                        adc = getattr(rx, "adc", None)  # quant.QuantizedInput: what rx sees
                        metadata.record(slot=point * num_slots + done, y=y if adc is None
                                        else adc(y), no=no, llr=llr, b=s.b, b_hat=b_hat,
                                        crc_ok=crc_ok, c=s.c, scenario=scenario,
                                        snr_db=float(snr), receiver=name,
                                        adc_bits=0 if adc is None else adc.cfg.bits)
                    if max_block_errors and totals[name].block_errors >= max_block_errors:
                        active.remove(name)
                done += n
                bar.update(n)
            bar.update(num_slots - done)
            result.points.extend(SnrPoint(name, float(snr), totals[name]) for name in receivers)
    bar.close()
    result.elapsed_s = time.perf_counter() - t0
    return result
