"""Explaining a receiver on simulated slots: draw the slots (optionally jammed), compute the maps
of several CAM methods for one target, score them (mass on DMRS / jammed REs, deletion and
insertion AUC) and write the JSON summary and the figure. The `dmrx explain` command and the
benchmark call these functions; nothing here is reachable only from the CLI.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from dmrx.explain.cam import CAM, GradCAM, GradCAMPlusPlus, HiResCAM, ScoreCAM
from dmrx.explain.faithfulness import Curves, curve_generator, deletion_insertion, mass_share
from dmrx.explain.fusion_cam import FusionCAM
from dmrx.explain.perturbation import matched_noise
from dmrx.nn.checkpoint import atomic_write
from dmrx.ofdm import LinkConfig, Transmitter, dmrs_mask, seed_everything
from dmrx.scenarios.catalog import Scenario, make_channel
from dmrx.scenarios.simulate import check_snr_db

METHODS: dict[str, type[CAM]] = {
    "grad-cam": GradCAM, "grad-cam++": GradCAMPlusPlus, "hirescam": HiResCAM,
    "score-cam": ScoreCAM, "fusion-cam": FusionCAM,
}


def make_cam(method: str, receiver: nn.Module, layer: str | None = None, **options) -> CAM:
    """A CAM method by name (one of `METHODS`).

    :raises ValueError: unknown method or layer
    """
    if method not in METHODS:
        raise ValueError(f"CAM method {method!r} is not allowed: one of {sorted(METHODS)}")
    return METHODS[method](receiver, layer, **options)


def parse_methods(text: str) -> list[str]:
    """'fusion-cam' / 'grad-cam,score-cam' / 'all' -> method names.

    :raises ValueError: an unknown or repeated name
    """
    names = list(METHODS) if text.strip() == "all" else [
        n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in METHODS]
    if bad or not names or len(set(names)) != len(names):
        raise ValueError(f"--method {text!r}: expected 'all' or distinct comma-separated names "
                         f"of {sorted(METHODS)}")
    return names


def parse_range(text: str, what: str) -> tuple[int, int]:
    """'12:24' -> (12, 24) (stop exclusive).

    :raises ValueError: not two integers
    """
    try:
        start, stop = (int(v) for v in text.split(":"))
    except ValueError:
        raise ValueError(f"{what} {text!r}: expected start:stop (stop exclusive)") from None
    return start, stop


@dataclass(frozen=True)
class Slots:
    """Slots to explain.

    :ivar y: [slots, 1, num_rx_ant, num_ofdm_symbols, fft_size] complex64 received grids
    :ivar no: [slots] float32 noise variance
    :ivar c: [slots, num_coded_bits] float32 transmitted coded bits
    :ivar jammed: [num_ofdm_symbols, fft_size] bool jammed REs, None without a jammer
    """

    link: LinkConfig
    y: torch.Tensor
    no: torch.Tensor
    c: torch.Tensor
    snr_db: float
    jammed: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.y.shape[0]

    def batch(self, start: int, stop: int) -> Slots:
        return Slots(self.link, self.y[start:stop], self.no[start:stop], self.c[start:stop],
                     self.snr_db, self.jammed)


def draw_slots(link: LinkConfig, scenario: Scenario, snr_db: float, num_slots: int, *,
               jammer: nn.Module | None = None, seed: int = 0) -> Slots:
    """Simulate `num_slots` slots: transmitter -> channel (+ AWGN, + the scenario's jammer if
    its name has one) -> optional jammer.

    :param snr_db: Es/N0 per data RE, dB
    :param jammer: a jammer of `dmrx.robust.jammers` (called as `jammer(y, x, h)`)
    :return: `Slots`; `jammed` is the union over the slots of the REs the jammers hit (a
        scenario's reactive jammer, whose target depends on each slot, is left out of it)
    :raises ValueError: num_slots < 1 or SNR out of range
    """
    if isinstance(num_slots, bool) or not isinstance(num_slots, int) or num_slots < 1:
        raise ValueError(f"num_slots={num_slots!r} is not allowed: a positive integer")
    check_snr_db([snr_db])
    seed_everything(seed)
    no = 10.0 ** (-float(snr_db) / 10.0)
    with torch.no_grad():
        s = Transmitter(link)(num_slots)
        channel = make_channel(link, scenario)
        y, h = channel(s.x, no)
        masks = []
        inner = getattr(channel, "jammer", None)
        if inner is not None and inner.target is not None:
            masks.append(inner.target.clone())
        if jammer is not None:
            masks.append(jammer.target_mask(y, s.x, h).any(dim=0))
            y = jammer(y, s.x, h)
        jammed = None
        for m in masks:
            jammed = m if jammed is None else jammed | m
    return Slots(link, y, torch.full((num_slots,), no, dtype=torch.float32), s.c,
                 float(snr_db), jammed)


def compute_maps(receiver: nn.Module, slots: Slots, methods: list[str], target, *,
                 layer: str | None = None, seed: int = 0,
                 info: dict | None = None) -> dict[str, torch.Tensor]:
    """The maps of each method on the slots (a Fusion-CAM reuses the maps of its component
    methods when those are computed too, rather than computing them twice).

    :param info: if given, receives `info[name] = FusionCAM.last_weights` (the fusion weights
        per slot) for each Fusion-CAM among the methods
    :return: method -> [slots, num_ofdm_symbols, fft_size] float32 in [0, 1]
    """
    cams = {m: make_cam(m, receiver, layer, seed=seed) for m in methods}
    noise = next(iter(cams.values())).removal_noise(slots.y, slots.no)
    maps: dict[str, torch.Tensor] = {}
    for m in [m for m in methods if not isinstance(cams[m], FusionCAM)]:
        maps[m] = cams[m](slots.y, slots.no, target, slots.c, noise)
    for m in [m for m in methods if isinstance(cams[m], FusionCAM)]:
        f = cams[m]
        g = maps.get(f.gradient.name)
        g = g if g is not None else f.gradient(slots.y, slots.no, target, slots.c, noise)
        r = maps.get(f.region.name)
        r = r if r is not None else f.region(slots.y, slots.no, target, slots.c, noise)
        maps[m] = f.fuse(slots.y, slots.no, target, slots.c, g, r, noise)
        if info is not None:
            info[m] = f.last_weights
    return {m: maps[m] for m in methods}


def _nanmean(x: torch.Tensor) -> float:
    v = x[~torch.isnan(x)]
    return float(v.mean()) if v.numel() else math.nan


@dataclass
class ExplainResult:
    """Maps of several methods on the same slots, with their scores.

    :ivar maps: method -> [slots, num_ofdm_symbols, fft_size] float32
    :ivar curves: method -> deletion / insertion `Curves` (empty if not measured)
    :ivar setup: what a rerun needs to reproduce the result (the seed; for
        `explain_checkpoint` also the checkpoint, scenario and jammer), written to the JSON
    """

    link: LinkConfig
    target: str
    layer: str
    snr_db: float
    maps: dict[str, torch.Tensor]
    jammed: torch.Tensor | None = None
    curves: dict[str, Curves] = field(default_factory=dict)
    setup: dict = field(default_factory=dict)

    def zero_maps(self, method: str) -> int:
        """Slots whose map is zero everywhere (the method found no RE that adds evidence);
        the mass shares are means over the other slots."""
        return int((self.maps[method].flatten(1).sum(1) == 0).sum())

    def shares(self, method: str) -> dict:
        m = self.maps[method]
        out = {"dmrs": _nanmean(mass_share(m, dmrs_mask(self.link)))}
        if self.jammed is not None:
            out["jammed"] = _nanmean(mass_share(m, self.jammed))
        return out

    def as_dict(self) -> dict:
        dm = dmrs_mask(self.link)
        area = {"dmrs": float(dm.float().mean())}
        if self.jammed is not None:
            area["jammed"] = float(self.jammed.float().mean())
        return {
            "link": self.link.name, "target": self.target, "layer": self.layer,
            "snr_db": self.snr_db, "slots": int(next(iter(self.maps.values())).shape[0]),
            "setup": self.setup, "area_share": area,
            "methods": {m: {"mass_share": self.shares(m),
                            "zero_maps": self.zero_maps(m),
                            **({"faithfulness": self.curves[m].as_dict()}
                               if m in self.curves else {}),
                            "mean_map": self.maps[m].mean(0).tolist()}
                        for m in self.maps},
        }

    def table(self) -> str:
        n = next(iter(self.maps.values())).shape[0]
        zero = {m: self.zero_maps(m) for m in self.maps}
        rows = [f"{'method':<12} {'DMRS share':>10} {'jam share':>10} {'del AUC':>8} "
                f"{'ins AUC':>8} {'zero maps':>9}"]

        def cell(v: float | None, width: int) -> str:
            # '-': not measured (no jammer, or no faithfulness curves asked for)
            return f"{'-':>{width}}" if v is None else f"{v:>{width}.3f}"

        for m in self.maps:
            sh = self.shares(m)
            c = self.curves.get(m)
            rows.append(f"{m:<12} {cell(sh['dmrs'], 10)} {cell(sh.get('jammed'), 10)} "
                        f"{cell(c.deletion_auc if c else None, 8)} "
                        f"{cell(c.insertion_auc if c else None, 8)} "
                        f"{f'{zero[m]}/{n}':>9}")
        if any(zero.values()):
            rows.append("shares are means over the slots whose map is not zero everywhere")
        return "\n".join(rows)

    def write_json(self, path: str | Path) -> None:
        text = json.dumps(self.as_dict(), indent=2)
        atomic_write(Path(path), lambda p: p.write_text(text))

    def plot(self, path: str | Path) -> None:
        """Mean map per method over the slots, side by side (PNG/SVG by the suffix)."""
        from dmrx.explain.plot import plot_maps

        plot_maps({m: v.mean(0) for m, v in self.maps.items()}, self.link, path,
                  jammed=self.jammed,
                  title=f"{self.target} target, {self.layer}, {self.snr_db:g} dB, "
                        f"mean of {next(iter(self.maps.values())).shape[0]} slots")


def explain_slots(receiver: nn.Module, slots: Slots, methods: list[str], target, *,
                  target_name: str = "target", layer: str | None = None,
                  faithfulness_steps: int = 0, batch_size: int = 50, seed: int = 0,
                  progress: bool = False, info: dict | None = None) -> ExplainResult:
    """Maps of `methods` on `slots`, batch by batch, with deletion / insertion curves if
    `faithfulness_steps` > 0 (against the grid-power noise of `perturbation.matched_noise`).

    :param info: if given, receives for each Fusion-CAM among the methods its fusion weights
        over all the slots, `info[name][key]` [slots] (the keys of `FusionCAM.last_weights`)

    :raises ValueError: batch_size < 1, faithfulness_steps < 0, unknown method or layer
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} is not allowed: >= 1")
    if faithfulness_steps < 0:
        raise ValueError(f"faithfulness_steps={faithfulness_steps} is not allowed: >= 0")
    layer_name = make_cam(methods[0], receiver, layer).layer_name
    maps: dict[str, list[torch.Tensor]] = {m: [] for m in methods}
    curves: dict[str, Curves] = {}
    weights: dict[str, dict[str, list[torch.Tensor]]] = {}
    for start in tqdm(range(0, len(slots), batch_size), disable=not progress, unit="batch"):
        part = slots.batch(start, start + batch_size)
        part_info: dict = {}
        got = compute_maps(receiver, part, methods, target, layer=layer, seed=seed + start,
                           info=part_info)
        for m, w in part_info.items():
            for k, v in w.items():
                weights.setdefault(m, {}).setdefault(k, []).append(v)
        noise = (matched_noise(part.y, curve_generator(seed, start, "noise"))
                 if faithfulness_steps else None)
        for m, v in got.items():
            maps[m].append(v)
            if faithfulness_steps:
                cv = deletion_insertion(receiver, part.y, part.no, target, v, part.c,
                                        steps=faithfulness_steps, noise=noise,
                                        generator=curve_generator(seed, start, m))
                curves[m] = curves[m] + cv if m in curves else cv
    if info is not None:
        info.update({m: {k: torch.cat(v) for k, v in w.items()} for m, w in weights.items()})
    setup = {"seed": seed, "batch_size": batch_size, "faithfulness_steps": faithfulness_steps,
             # one stream per (seed, batch, method): `faithfulness.curve_generator`
             "curve_draws": "per-method"}
    return ExplainResult(slots.link, target_name, layer_name, slots.snr_db,
                         {m: torch.cat(v) for m, v in maps.items()}, slots.jammed, curves,
                         setup)


JAMMERS = ("partial-band",)


def explain_checkpoint(checkpoint: str | Path, *, scenario: str = "tdl-c-300ns-60kmh",
                       snr_db: float = 11.0, num_slots: int = 16, methods: str = "fusion-cam",
                       target: str = "block", target_kind: str = "log-likelihood",
                       symbol: int | None = None, subcarrier: int | None = None,
                       prb: int | None = None, layer: str | None = None,
                       jammer: str | None = None, jsr_db: float = 10.0,
                       jam_subcarriers: str = "12:24", jam_symbols: str | None = None,
                       faithfulness_steps: int = 0, batch_size: int = 50, seed: int = 0,
                       progress: bool = False) -> ExplainResult:
    """Explain a receiver checkpoint on simulated slots of a scenario (what `dmrx explain` runs).

    :param methods: 'all' or comma-separated names of `METHODS`
    :param target: a region of `targets.make_target` ('re', 'prb', 'symbol', 'block', 'error')
    :param jammer: None or 'partial-band' (`PartialBandJammer(jsr_db, jam_subcarriers,
        jam_symbols)`, ranges as 'start:stop', stop exclusive; no jam_symbols = whole slot)
    :raises ValueError: any bad name, index or range (the message names it)
    """
    from dmrx.explain.targets import make_target
    from dmrx.nn.checkpoint import load_receiver
    from dmrx.robust.jammers import PartialBandJammer
    from dmrx.scenarios.catalog import get_scenario

    names = parse_methods(methods)
    rx = load_receiver(checkpoint)
    rx.eval()
    link = rx.link
    tgt = make_target(link, target, kind=target_kind, symbol=symbol, subcarrier=subcarrier,
                      prb=prb)
    jam = None
    if jammer is not None:
        if jammer not in JAMMERS:
            raise ValueError(f"jammer {jammer!r} is not allowed: one of {JAMMERS}")
        syms = None
        if jam_symbols is not None:
            a, b = parse_range(jam_symbols, "jam symbols")
            syms = tuple(range(a, b))
        jam = PartialBandJammer(link, jsr_db, parse_range(jam_subcarriers, "jam subcarriers"),
                                syms)
    slots = draw_slots(link, get_scenario(scenario), snr_db, num_slots, jammer=jam, seed=seed)
    what = target if target == "error" else f"{target} {target_kind}"
    result = explain_slots(rx, slots, names, tgt, target_name=what, layer=layer,
                           faithfulness_steps=faithfulness_steps, batch_size=batch_size,
                           seed=seed, progress=progress)
    result.setup = {"checkpoint": str(checkpoint), "scenario": scenario,
                    "target_region": {"symbol": symbol, "subcarrier": subcarrier, "prb": prb},
                    "jammer": None if jam is None else {
                        "kind": jammer, "jsr_db": jsr_db, "subcarriers": jam_subcarriers,
                        "symbols": jam_symbols}} | result.setup
    return result
