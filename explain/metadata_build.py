"""The metadata dataset builder: scenarios x SNRs x jammers x ADC x receivers, and adapters
through random drift schedules, into train/val/test tables (`dmrx metadata build`).

Every point and every adaptation run is one task with its own seed, derived from the build's
seed, the split and the task's index. Each task runs on one torch thread, in this process
(`workers=1`) or in a pool of processes, and the tables are put together in task order. So the
tables depend on the seed and the arguments only, not on `workers` or on how many cores the
machine has. They did before: an adaptation run's trajectory follows float rounding, and torch
sums differently with 1 and 2 intra-op threads. One adaptation run built both ways differed in
its LLR statistics, bit errors and adaptation gains, and a rebuild on one thread of tables
first built with torch's default threads labelled about 1 % of the should-adapt positives
differently (`benchmarks/metadata_seeds.py`).

The same holds across machines only as far as their float kernels agree: torch picks its CPU
kernels by vector unit (`torch.backends.cpu.get_cpu_capability()`), and a library version can
change them too. Session 27 rebuilt session 14's train/val on a fresh machine (AMD EPYC,
AVX512) with the same command: the row counts matched, and 3 of 6984 val should-adapt labels
(at least) came out differently. dataset.json records torch's version and CPU capability.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from dmrx.explain.metadata import (
    ADAPT_HORIZON,
    ADAPT_MARGIN,
    ADAPT_WINDOW,
    CONCEPTS,
    FEATURES,
    LABELS,
    MetadataRecorder,
    concat_tables,
    data_bce,
    read_table,
    slot_features,
    soft_block_error,
    write_table,
)
from dmrx.ofdm import derive_seed, seed_everything
from dmrx.robust.jammers import make_jammer

SPLITS = ("train", "val", "test")
DEFAULT_SCENARIOS = ("tdl-a-30ns-3kmh", "tdl-b-100ns-30kmh", "tdl-c-300ns-60kmh",
                     "tdl-d-30ns-3kmh", "tdl-e-100ns-120kmh", "cdl-c-300ns-60kmh")
# (kind, JSR dB over the jammed REs); 'none' = no jammer. Half of the points draw 'none'.
DEFAULT_JAMMERS = (("dmrs", 0.0), ("partial-band", 0.0), ("barrage", -10.0), ("tone", 0.0),
                   ("multi-tone", 0.0), ("pulsed", 0.0), ("reactive", 0.0))
DEFAULT_RECEIVERS = ("neural=checkpoints/neural-ref-4prb-tdl-a", "ls")
DEFAULT_ADC_BITS = (3, 4, 6)


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block on one torch intra-op thread (the caller's count is restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclasses.dataclass(frozen=True)
class _Setup:
    """What every task needs, picklable: names and modules, not built channels."""

    link: str
    scenarios: tuple[str, ...]
    receivers: tuple[str, ...] | Mapping[str, torch.nn.Module]
    jammers: tuple[tuple[str, float], ...]
    adapt_checkpoint: str | Path | torch.nn.Module | None
    adapt_variant: str
    num_slots_per_point: int
    adapt_segments: int
    adapt_segment_slots: int
    adapt_snr_range: tuple[float, float]
    horizon: int
    window: int


class _Tasks:
    """The built link, receivers and channels of a `_Setup`, and the two kinds of task."""

    def __init__(self, setup: _Setup):
        from dmrx.nn import load_receiver
        from dmrx.ofdm import Channel, Decoder, Transmitter
        from dmrx.scenarios.catalog import get_link, get_scenario
        from dmrx.scenarios.receivers import build_receiver

        self.setup = setup
        self.link = lk = get_link(setup.link)
        self.scs = {name: get_scenario(name) for name in setup.scenarios}
        self.rxs = dict(setup.receivers) if isinstance(setup.receivers, Mapping) else {
            n.partition("=")[0]: build_receiver(n, lk) for n in setup.receivers}
        self.tx, self.decoder = Transmitter(lk), Decoder(lk)
        self.channels = {n: Channel(lk, s.channel) for n, s in self.scs.items()}
        static = setup.adapt_checkpoint
        self.static = load_receiver(static, lk) if isinstance(static, str | Path) else static

    def point(self, split_seed: int, run: str, i: int, point: tuple) -> pa.Table:
        """The rows of point i of a split: its slots through every receiver."""
        sc, snr, kind, jsr, bits = point
        n = self.setup.num_slots_per_point
        rec = MetadataRecorder(self.link, run=run, source="simulate", seed=split_seed)
        y, no, s = _slots(self.link, self.tx, self.channels, sc, n, snr, kind, jsr, bits,
                          derive_seed(split_seed, "point", i))
        yf = slot_features(self.link, y, no)
        with torch.no_grad():
            llrs = {name: rx(y, no) for name, rx in self.rxs.items()}
            b_all, ok_all = self.decoder(torch.cat(list(llrs.values())))
        for j, (name, llr) in enumerate(llrs.items()):
            sl = slice(j * y.shape[0], (j + 1) * y.shape[0])
            rec.record(slot=i * n, y=y, no=no, llr=llr, b=s.b, b_hat=b_all[sl],
                       crc_ok=ok_all[sl], c=s.c, scenario=self.scs[sc], snr_db=snr,
                       receiver=name, jammer_kind=kind, jsr_db=jsr, adc_bits=bits,
                       y_features=yf)
        return rec.table()

    def adapt(self, run_seed: int, run: str) -> pa.Table:
        """The rows of one adaptation run."""
        from dmrx.nn.adapt import OnlineAdapter, get_variant

        st = self.setup
        adapter = OnlineAdapter(self.static, get_variant(st.adapt_variant,
                                                         seed=run_seed % 2**31))
        return _adapt_run(self.link, self.tx, self.decoder, self.channels, self.scs, adapter,
                          run_seed, list(st.scenarios), list(st.jammers), st.adapt_segments,
                          st.adapt_segment_slots, st.adapt_snr_range, st.horizon, st.window,
                          run=run, receiver=f"adaptive-{st.adapt_variant}")

    def __call__(self, task: tuple) -> pa.Table:
        return self.point(*task[1:]) if task[0] == "point" else self.adapt(*task[1:])


_WORKER: _Tasks | None = None  # a pool worker's built setup


def _init_worker(setup: _Setup) -> None:
    global _WORKER
    # one thread per worker: the pool's processes are the parallelism, and one thread is what
    # makes a task's result independent of the machine (module docstring)
    torch.set_num_threads(1)
    _WORKER = _Tasks(setup)


def _run_task(item: tuple) -> pa.Table:
    """:param item: (split, index, task)"""
    return _WORKER(item[2])


def build_dataset(out_dir: str | Path, *, seed: int = 0, num_slots_per_point: int = 32,
                  num_points: Mapping[str, int] | None = None,
                  scenarios: Sequence[str] = DEFAULT_SCENARIOS,
                  receivers: Sequence[str] | Mapping[str, torch.nn.Module] = DEFAULT_RECEIVERS,
                  jammers: Sequence[tuple[str, float]] = DEFAULT_JAMMERS,
                  adc_bits: Sequence[int] = DEFAULT_ADC_BITS,
                  snr_range: tuple[float, float] = (2.0, 18.0),
                  adapt_checkpoint: str | Path | torch.nn.Module | None =
                  "checkpoints/neural-ref-4prb-tdl-a",
                  adapt_variant: str = "dmrs-crc",
                  adapt_runs: Mapping[str, int] | None = None,
                  adapt_segments: int = 4, adapt_segment_slots: int = 120,
                  adapt_snr_range: tuple[float, float] = (8.0, 16.0),
                  horizon: int = ADAPT_HORIZON, window: int = ADAPT_WINDOW,
                  link: str = "ref-4prb", workers: int = 1,
                  progress: bool = True) -> dict[str, Path]:
    """Sweep scenarios x SNRs x jammers x ADC x receivers, and run adapters through random
    drift schedules, into out_dir/{train,val,test}.parquet (plus dataset.json, the build's
    arguments).

    Each split has its own seed (`derive_seed(seed, 'metadata', split)`): its points (scenario,
    SNR uniform in `snr_range`, a jammer on half of them, ADC on 30 %), slots and schedules
    are drawn from it, so no slot or correlated run is shared between splits, and the same
    seed gives the same tables, whatever `workers` and the machine's core count (module
    docstring).

    - 'simulate' rows: `num_points[split]` points x `num_slots_per_point` slots x receivers
      (labels: block_error; should_adapt = -1).
    - 'adapt' rows: `adapt_runs[split]` runs of an `OnlineAdapter` (`adapt_variant`, from
      `adapt_checkpoint`) through `adapt_segments` random segments of `adapt_segment_slots`
      slots (scenario, SNR in `adapt_snr_range`, a jammer on a fifth of the segments); labels
      block_error and should_adapt (`dmrx.explain.metadata`'s docstring: H = `horizon`,
      W = `window`). None: no adapt rows.

    A split's table is written as soon as its tasks are done, so an interrupted build keeps
    the splits it finished.

    :param receivers: names as `dmrx simulate --receiver` takes them ('ls', 'neural=DIR'),
        or name -> receiver module (picklable, for workers > 1)
    :param adapt_checkpoint: the adapted receiver: a checkpoint directory or a
        `NeuralReceiver`; None: no adapt rows
    :param workers: processes, each on one torch thread (1: this process, on one thread);
        at most one per task
    :return: split -> path of its table
    :raises ValueError: a bad count, unknown scenario/receiver/jammer kind/adaptation variant
    :raises CheckpointError: an unreadable `adapt_checkpoint`
    """
    from tqdm.auto import tqdm

    from dmrx.nn.adapt import get_variant

    num_points = dict(num_points or {"train": 96, "val": 32, "test": 32})
    adapt_runs = dict(adapt_runs or {"train": 4, "val": 2, "test": 2})
    for what, d in (("num_points", num_points), ("adapt_runs", adapt_runs)):
        for split, v in d.items():
            if split not in SPLITS or isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{what}[{split!r}]={v!r}: splits {SPLITS}, counts >= 0")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"build_dataset seed={seed!r}: a non-negative integer")
    for name, v in (("num_slots_per_point", num_slots_per_point),
                    ("adapt_segments", adapt_segments),
                    ("adapt_segment_slots", adapt_segment_slots), ("horizon", horizon),
                    ("window", window), ("workers", workers)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"build_dataset {name}={v!r}: a positive integer")
    # everything a task could fail on is checked here, before any work (a pool worker would
    # fail on it less clearly): building the tasks' setup builds every scenario, receiver and
    # the adapter's start
    if not isinstance(receivers, Mapping):
        receivers = tuple(receivers)
    setup = _Setup(link, tuple(scenarios), receivers, tuple(tuple(j) for j in jammers),
                   adapt_checkpoint, adapt_variant, num_slots_per_point, adapt_segments,
                   adapt_segment_slots, tuple(adapt_snr_range), horizon, window)
    here = _Tasks(setup)
    lk = here.link
    jammed = [n for n, sc in here.scs.items() if sc.jammer is not None]
    if jammed:  # the builder draws the jammers itself and labels the rows with them
        raise ValueError(f"build_dataset scenarios={jammed!r}: name them without a jammer "
                         "suffix; the builder puts a jammer on half of the points itself")
    for kind, jsr in jammers:
        make_jammer(kind, lk, jsr, seed=0)
    if adapt_checkpoint is not None:
        get_variant(adapt_variant)

    tasks: dict[str, list[tuple]] = {}  # split -> its tasks, in table order
    for split in SPLITS:
        s_seed = derive_seed(seed, "metadata", split)
        rng = np.random.default_rng(s_seed)
        points = _draw_points(rng, num_points.get(split, 0), list(scenarios), list(jammers),
                              list(adc_bits), snr_range)
        tasks[split] = [("point", s_seed, f"metadata-{split} seed={seed}", i, p)
                        for i, p in enumerate(points)]
        if adapt_checkpoint is not None:
            tasks[split] += [("adapt", derive_seed(s_seed, "adapt-run", r),
                              f"metadata-{split} adapt {r} seed={seed}")
                             for r in range(adapt_runs.get(split, 0))]
    # no idle workers; one task is not worth a process
    workers = min(workers, sum(map(len, tasks.values())))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    done: dict[str, dict[int, pa.Table]] = {s: {} for s in SPLITS}
    bar = tqdm(total=sum(map(len, tasks.values())), desc=f"metadata build ({workers} "
               f"worker{'s' * (workers > 1)})", disable=not progress, unit="task")

    def finish(split: str, k: int, table: pa.Table) -> None:
        done[split][k] = table
        bar.update(1)
        if len(done[split]) == len(tasks[split]):
            tables = [done[split][j] for j in range(len(tasks[split]))]
            paths[split] = write_table(concat_tables(tables), out_dir / f"{split}.parquet")

    for split in SPLITS:  # a split without tasks is an empty table
        if not tasks[split]:
            paths[split] = write_table(MetadataRecorder(lk).table(), out_dir / f"{split}.parquet")
    if workers <= 1:
        with one_torch_thread():
            for split in SPLITS:
                for k, task in enumerate(tasks[split]):
                    finish(split, k, here(task))
    else:
        from dmrx.scenarios.runners import run_in_pool

        # (split, index, task), the long adaptation runs first so that no core idles at the end
        items = sorted(((split, k, t) for split in SPLITS for k, t in enumerate(tasks[split])),
                       key=lambda item: item[2][0] != "adapt")
        run_in_pool(_run_task, items, workers, lambda item, table: finish(*item[:2], table),
                    initializer=_init_worker, initargs=(setup,))
    bar.close()
    info = {"seed": seed, "num_slots_per_point": num_slots_per_point, "num_points": num_points,
            "scenarios": list(scenarios),
            "receivers": list(receivers) if isinstance(receivers, Mapping)
            else [n.partition("=")[0] for n in receivers],
            "jammers": [list(j) for j in jammers], "adc_bits": list(adc_bits),
            "snr_range": list(snr_range),
            "adapt_variant": adapt_variant, "adapt_runs": adapt_runs,
            "adapt_segments": adapt_segments, "adapt_segment_slots": adapt_segment_slots,
            "adapt_snr_range": list(adapt_snr_range), "horizon": horizon, "window": window,
            "adapt_margin": ADAPT_MARGIN,
            "link": link,
            "adapt_receiver": adapt_checkpoint if isinstance(adapt_checkpoint, str | None)
            else str(adapt_checkpoint) if isinstance(adapt_checkpoint, Path) else "module",
            "torch_threads_per_task": 1,
            # the rounding the adaptation runs follow (module docstring)
            "torch": torch.__version__,
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "rows": {s: read_table(p).num_rows for s, p in paths.items()},
            "features": list(FEATURES), "concepts": list(CONCEPTS), "labels": list(LABELS)}
    from dmrx.nn.checkpoint import atomic_write

    atomic_write(out_dir / "dataset.json", lambda p: p.write_text(json.dumps(info, indent=2)))
    return {s: paths[s] for s in SPLITS}


def _draw_points(rng: np.random.Generator, n: int, scenarios, jammers, adc_bits,
                 snr_range) -> list[tuple[str, float, str, float, int]]:
    """n random (scenario, snr_db, jammer kind, jsr_db, adc_bits) points."""
    out = []
    for _ in range(n):
        sc = scenarios[int(rng.integers(len(scenarios)))]
        snr = round(float(rng.uniform(*snr_range)), 1)
        kind, jsr = ("none", float("nan"))
        if jammers and rng.random() < 0.5:
            kind, jsr = jammers[int(rng.integers(len(jammers)))]
        bits = 0
        if adc_bits and rng.random() < 0.3:
            bits = int(adc_bits[int(rng.integers(len(adc_bits)))])
        out.append((sc, snr, kind, float(jsr), bits))
    return out


def _slots(link, tx, channels, scenario, n, snr_db, kind, jsr, bits, seed):
    """n slots of one point: (y as received after jammer and ADC, no, TxSlot)."""
    from dmrx.quant.adc import ADC, ADCConfig

    seed_everything(seed)
    no = 10.0 ** (-snr_db / 10.0)
    with torch.no_grad():
        s = tx(n)
        y, h = channels[scenario](s.x, no)
        if kind != "none":
            y = make_jammer(kind, link, jsr, seed=derive_seed(seed, "jammer"))(y, s.x, h)
        if bits:
            y = ADC(ADCConfig(bits))(y)
    return y, no, s


def _adapt_run(lk, tx, decoder, channels, scs, adapter, seed, scenarios, jammers, segments,
               segment_slots, snr_range, horizon, window, *, run: str,
               receiver: str) -> pa.Table:
    """One adapter through a random drift schedule, with the counterfactual should_adapt."""
    rng = np.random.default_rng(seed)
    rec = MetadataRecorder(lk, run=run, source="adapt", seed=seed)
    slot = 0
    prev = None
    params = list(adapter.rx.parameters())
    for k in range(segments):
        choices = [s for s in scenarios if s != prev] or scenarios
        sc = choices[int(rng.integers(len(choices)))]
        prev = sc
        snr = round(float(rng.uniform(*snr_range)), 1)
        kind, jsr = "none", float("nan")
        if jammers and rng.random() < 0.2:
            kind, jsr = jammers[int(rng.integers(len(jammers)))]
        y, no, s = _slots(lk, tx, channels, sc, segment_slots, snr, kind, jsr, 0,
                          derive_seed(seed, "segment", k))
        yf = slot_features(lk, y, no)
        c_true = s.c
        rows, snaps = [], {}
        gains = [(float("nan"), float("nan"))] * segment_slots
        for t in range(segment_slots):
            # the weights w_t before this slot's update, kept until slot t + horizon
            snaps[t] = [p.detach().clone() for p in params]
            u = t - horizon  # the slot whose label is measured now: frozen w_u vs adapted w_t
            w = slice(t, t + window)
            if u >= 0 and t + window <= segment_slots:
                adapted = _window_bce(adapter, y[w], no, c_true[w])
                live = [p.detach().clone() for p in params]
                _load(params, snaps[u])
                frozen = _window_bce(adapter, y[w], no, c_true[w])
                _load(params, live)
                gains[u] = (float((frozen - adapted).mean()),
                            float((soft_block_error(frozen) - soft_block_error(adapted)).mean()))
            snaps.pop(u, None)
            yt = y[t:t + 1]
            with torch.no_grad():
                llr = adapter(yt, no)
                b_hat, crc_ok = decoder(llr)
            c_hat = None
            if adapter.config.crc_labels and bool(crc_ok[0]):
                with torch.no_grad():
                    c_hat = tx(b_hat).c
            info = adapter.observe(yt, no, c_hat=c_hat, crc_ok=crc_ok)
            rows.append(dict(slot=slot, y=yt, no=no, llr=llr, b=s.b[t:t + 1], b_hat=b_hat,
                             crc_ok=crc_ok, c=c_true[t:t + 1], scenario=scs[sc], snr_db=snr,
                             receiver=receiver, jammer_kind=kind, jsr_db=jsr,
                             y_features={n: v[t:t + 1] for n, v in yf.items()},
                             adapter=[info]))
            slot += 1
        for r, (g, gb) in zip(rows, gains, strict=True):
            label = -1 if not math.isfinite(gb) else int(gb > ADAPT_MARGIN)
            rec.record(**r, should_adapt=[label], adapt_gain=[g], adapt_bler_gain=[gb])
    return rec.table()


def _load(params: list, values: list) -> None:
    with torch.no_grad():
        for p, v in zip(params, values, strict=True):
            p.copy_(v)


def _window_bce(adapter, y: torch.Tensor, no: float, c: torch.Tensor) -> torch.Tensor:
    """[slots] data BCE of the adapter's current weights on the slots y."""
    with torch.no_grad():
        return data_bce(adapter(y, no), c)
