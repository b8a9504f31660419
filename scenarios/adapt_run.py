"""Run a drift schedule slot by slot and compare receivers on the same slots.

Every slot is drawn from a seed derived from (seed, slot index), so every receiver (static,
adaptive variants, LS, perfect CSI) sees the very same bits, fading and noise. Adaptive
receivers (`OnlineAdapter`) detect first and learn from the slot afterwards, as a real receiver
would; CRC-passed blocks are re-encoded for the adapters that use them as labels.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from dmrx.nn.adapt import OnlineAdapter
from dmrx.nn.checkpoint import atomic_write
from dmrx.ofdm import Decoder, LinkConfig, Transmitter, derive_seed, seed_everything
from dmrx.robust.jammers import JAMMER_KINDS, JammerSpec, make_jammer
from dmrx.scenarios.catalog import make_channel
from dmrx.scenarios.schedules import Schedule


@dataclass(frozen=True)
class JammerWindow:
    """A jammer of `dmrx.robust.JAMMER_KINDS` (DMRS-targeted by default) on slots
    [start, stop) at `jsr_db`, on top of the schedule's scenarios (jammed ones included).

    :raises ValueError: an empty or negative window, an unknown kind, a JSR out of -50..50 dB
    """

    start: int
    stop: int
    jsr_db: float
    kind: str = "dmrs"

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.stop:
            raise ValueError(f"jammer window [{self.start}, {self.stop}) is empty or negative")
        JammerSpec(self.kind, self.jsr_db)  # raises naming the kind or the JSR

    @classmethod
    def parse(cls, text: str) -> JammerWindow:
        """'dmrs:0db@400:500' -> a DMRS jammer at JSR 0 dB on slots 400..499; without
        '<kind>:' the jammer is DMRS-targeted ('0db@400:500'); a negative JSR as -5db or m5db.

        :raises ValueError: not of that form, or a bad kind, JSR or window
        """
        form = (f"--jammer {text!r}: expected '[<kind>:]<JSR>db@<start>:<stop>', e.g. "
                f"'dmrs:0db@400:500', kind one of {JAMMER_KINDS} (default dmrs)")
        kind, colon, rest = text.partition(":")
        if not colon or "@" in kind:
            kind, rest = "dmrs", text
        jsr, at, span = rest.partition("@")
        jsr = jsr.strip().lower()
        try:
            if not at or not jsr.endswith("db"):
                raise ValueError
            jsr = jsr.removesuffix("db")
            value = -float(jsr[1:]) if jsr[:1] == "m" else float(jsr)
            start, stop = (int(v) for v in span.split(":"))
        except ValueError:
            raise ValueError(form) from None
        try:
            return cls(start, stop, value, kind.strip())
        except ValueError as e:
            raise ValueError(f"--jammer {text!r}: {e}") from None


@dataclass
class AdaptRunResult:
    schedule: Schedule
    link: LinkConfig
    seed: int
    block_errors: dict[str, list[bool]]
    dmrs_loss: dict[str, list[float]]
    adapters: dict[str, dict]
    jammer: JammerWindow | None = None
    elapsed_s: dict[str, float] = field(default_factory=dict)

    def bler(self, name: str, start: int = 0, stop: int | None = None) -> float:
        e = self.block_errors[name][start:stop]
        return sum(e) / len(e) if e else float("nan")

    def as_dict(self) -> dict:
        bounds = [0, *self.schedule.boundaries, self.schedule.num_slots]
        out = {}
        for name in self.block_errors:
            out[name] = {
                "bler": self.bler(name),
                "segments": [{"scenario": seg.scenario, "snr_db": seg.snr_db, "slots": seg.slots,
                              "bler": self.bler(name, a, b)}
                             for seg, a, b in zip(self.schedule.segments, bounds[:-1], bounds[1:],
                                                  strict=True)],
                "updates": self.adapters.get(name, {}).get("updates", 0),
                "seconds": round(self.elapsed_s.get(name, 0.0), 2),
            }
            if name in self.adapters:
                out[name]["adapter"] = self.adapters[name]
        return {"link": self.link.as_dict(), "schedule": self.schedule.as_dict(),
                "seed": self.seed, "boundaries": self.schedule.boundaries,
                "jammer": None if self.jammer is None else vars(self.jammer),
                "receivers": out}

    def write_json(self, path: str | Path) -> None:
        text = json.dumps(self.as_dict(), indent=2)
        atomic_write(Path(path), lambda p: p.write_text(text))

    def table(self) -> str:
        segs = self.schedule.segments
        head = f"{'receiver':<24} {'BLER':>7} " + " ".join(
            f"{f'seg{i + 1}':>7}" for i in range(len(segs))) + f" {'updates':>8}"
        rows = [head, "-" * len(head)]
        d = self.as_dict()["receivers"]
        for name, r in d.items():
            rows.append(f"{name:<24} {r['bler']:>7.4f} " + " ".join(
                f"{s['bler']:>7.4f}" for s in r["segments"]) + f" {r['updates']:>8d}")
        rows.append("segments: " + ", ".join(f"seg{i + 1}={s.scenario}@{s.snr_db:g}dB"
                                             for i, s in enumerate(segs)))
        return "\n".join(rows)

    def plot(self, path: str | Path, window: int = 50) -> None:
        """Windowed BLER and DMRS loss over slots, segment boundaries dashed."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
        kernel = torch.ones(1, 1, window) / window
        # one colour per receiver in both panels (only adapters have a DMRS loss)
        color = {name: f"C{i % 10}" for i, name in enumerate(self.block_errors)}
        for name, errs in self.block_errors.items():
            e = torch.tensor(errs, dtype=torch.float32)[None, None]
            w = torch.nn.functional.conv1d(e, kernel)[0, 0]
            a1.plot(range(window - 1, len(errs)), w.numpy(), label=name, color=color[name])
        for name, losses in self.dmrs_loss.items():
            v = torch.tensor(losses)
            seen = torch.isfinite(v)  # adapters that monitor every n-th slot leave NaN between
            total = torch.nn.functional.conv1d(torch.where(seen, v, 0.0)[None, None], kernel)
            count = torch.nn.functional.conv1d(seen.float()[None, None], kernel)
            w = (total / count)[0, 0]  # NaN where a window holds no measurement
            a2.plot(range(window - 1, len(losses)), w.numpy(), label=name, color=color.get(name))
        for ax in (a1, a2):
            for b in self.schedule.boundaries:
                ax.axvline(b, color="0.5", ls="--", lw=0.8)
            if self.jammer is not None:
                ax.axvspan(self.jammer.start, self.jammer.stop, color="red", alpha=0.1)
            ax.grid(alpha=0.3)
        a1.set_ylabel(f"BLER ({window}-slot window)")
        a1.set_yscale("symlog", linthresh=0.01)
        a1.set_ylim(0, 1.05)
        a1.legend(fontsize=8)
        a2.set_ylabel("hidden-DMRS loss (BCE)")
        a2.set_xlabel("slot")
        a2.legend(fontsize=8)
        names = " -> ".join(s.scenario for s in self.schedule.segments)
        a1.set_title(f"{self.schedule.name}: {names}", fontsize=9)
        fig.tight_layout()
        atomic_write(Path(path), fig.savefig)
        plt.close(fig)


def run_schedule(schedule: Schedule, link: LinkConfig,
                 receivers: Mapping[str, torch.nn.Module], *, seed: int = 0,
                 jammer: JammerWindow | None = None, progress: bool = True,
                 metadata=None) -> AdaptRunResult:
    """Pass every slot of `schedule` through every receiver (adapters learn after detecting).

    :param receivers: name -> receiver (`receiver(y, no) -> llr`, perfect CSI with h) or
        an adapter (anything with `observe`: `OnlineAdapter`, `dmrx.explain.gate.GatedAdapter`)
    :param metadata: a `dmrx.explain.metadata.MetadataRecorder` that gets one record per slot
        and receiver (None: no records)
    :param jammer: a jammer window on top of the segments' scenarios (a segment's scenario may
        itself be jammed: 'tdl-c-300ns-60kmh+dmrs-jammer-0db')
    """
    tx, decoder = Transmitter(link), Decoder(link)
    channels = {s.scenario: make_channel(link, s.channel_scenario) for s in schedule.segments}
    jam = make_jammer(jammer.kind, link, jammer.jsr_db) if jammer is not None else None
    errors = {n: [] for n in receivers}
    learns = {n for n, r in receivers.items() if isinstance(r, OnlineAdapter)
              or callable(getattr(r, "observe", None))}
    losses = {n: [] for n in learns}
    seconds = dict.fromkeys(receivers, 0.0)
    bar = tqdm(total=schedule.num_slots, unit="slot", disable=not progress, desc=schedule.name)
    slot = 0
    for seg in schedule.segments:
        no = 10.0 ** (-seg.snr_db / 10.0)
        for _ in range(seg.slots):
            seed_everything(derive_seed(seed, "slot", slot))
            with torch.no_grad():
                s = tx(1)
                y, h = channels[seg.scenario](s.x, no)
                if jam is not None and jammer.start <= slot < jammer.stop:
                    y = jam(y, s.x, h)
            llrs = []
            for name, rx in receivers.items():
                t0 = time.perf_counter()
                with torch.no_grad():
                    llrs.append(rx(y, no, h=h) if getattr(rx, "requires_csi", False)
                                else rx(y, no))
                seconds[name] += time.perf_counter() - t0
            # one decoder call for all receivers: Sionna's BP decoder costs about as much for a
            # batch of a few blocks as for one, and decoding dominated the run slot by slot
            t0 = time.perf_counter()
            with torch.no_grad():
                b_all, crc_all = decoder(torch.cat(llrs))
            share = (time.perf_counter() - t0) / len(receivers)
            for i, (name, rx) in enumerate(receivers.items()):
                t0 = time.perf_counter()
                b_hat, crc_ok = b_all[i:i + 1], crc_all[i:i + 1]
                ok = bool(crc_ok[0]) and bool(torch.equal(b_hat, s.b))
                errors[name].append(not ok)
                info = None
                if name in learns:
                    c_hat = None
                    if rx.config.crc_labels and bool(crc_ok[0]):
                        with torch.no_grad():
                            c_hat = tx(b_hat).c
                    info = rx.observe(y, no, c_hat=c_hat, crc_ok=crc_ok)
                    losses[name].append(info["dmrs_loss"])
                seconds[name] += time.perf_counter() - t0 + share
                if metadata is not None:
                    _record(metadata, slot, seg, y, no, llrs[i], s, b_hat, crc_ok, name, info,
                            jammer if jam is not None and jammer.start <= slot < jammer.stop
                            else None)
            slot += 1
            bar.update(1)
    bar.close()
    adapters = {n: r.summary() for n, r in receivers.items() if n in learns}
    return AdaptRunResult(schedule, link, seed, errors, losses, adapters, jammer, seconds)


def _record(metadata, slot, seg, y, no, llr, s, b_hat, crc_ok, name, info, window) -> None:
    """One metadata record (`dmrx.explain.metadata`) of a receiver on a slot; the jammer is
    the window's when it is on, else the segment scenario's own (if any)."""
    scenario = seg.channel_scenario
    spec = window if window is not None else getattr(scenario, "jammer", None)
    metadata.record(slot=slot, y=y, no=no, llr=llr, b=s.b, b_hat=b_hat, crc_ok=crc_ok, c=s.c,
                    scenario=scenario, snr_db=seg.snr_db, receiver=name,
                    jammer_kind="none" if spec is None else spec.kind,
                    jsr_db=float("nan") if spec is None else spec.jsr_db,
                    adapter=None if info is None else [info],
                    gate_p=None if info is None or "gate_p" not in info else [info["gate_p"]])
