"""Run a sweep's points: on a local process pool (the default) or on a Ray cluster.

Both backends run the same task, `run_point`, on the same `SweepPoint`s; a point's numbers
depend only on the point (see `scenarios.sweep`), so the results table is the same whatever the
backend or the number of workers. Only the driver writes the table, one atomic part file per
finished point, as soon as the point comes back: an interrupted sweep loses at most the points
that were running, and rerunning it runs only the points not yet in the table.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import torch
from tqdm.auto import tqdm

from dmrx.scenarios.catalog import get_link, get_scenario
from dmrx.scenarios.receivers import build_receiver
from dmrx.scenarios.results import ResultsStore, point_rows
from dmrx.scenarios.simulate import simulate
from dmrx.scenarios.sweep import SweepPoint, SweepSpec

BACKENDS = ("local", "ray")

# Receivers built in this process, by (link, name, checkpoint, digest): a worker loads each
# checkpoint once, not once per point. Receivers are used under inference_mode and keep no
# state between calls, so sharing one across points does not couple the points.
_RECEIVERS: dict[tuple, torch.nn.Module] = {}


def _init_worker() -> None:
    # One torch thread per worker: the pool's processes are the parallelism, and torch's own
    # threads would fight them for the same cores.
    torch.set_num_threads(1)


def run_point(point: SweepPoint) -> list[dict]:
    """Simulate one point (all its receivers on the same slots) and return its table rows.

    The task function of every backend; runs in a worker process.
    """
    link = get_link(point.link)
    receivers = {}
    for r in point.receivers:
        key = (point.link, r.name, r.checkpoint, r.digest)
        if key not in _RECEIVERS:
            _RECEIVERS[key] = build_receiver(r.name, link, r.checkpoint)
        receivers[r.label] = _RECEIVERS[key]
    t0 = time.perf_counter()
    result = simulate(link, get_scenario(point.scenario), receivers, [point.snr_db], point.slots,
                      batch_size=point.batch_size, seed=point.seed,
                      max_block_errors=point.max_block_errors, progress=False)
    counts = {p.receiver: p.counts for p in result.points}
    return point_rows(point, counts, link, time.perf_counter() - t0)


def _ray_point(point: SweepPoint) -> list[dict]:
    _init_worker()
    return run_point(point)


@dataclass(frozen=True)
class SweepRun:
    """What one `run_sweep` call did.

    :param total: points in the spec's grid
    :param skipped: points already in the table when the call started
    :param ran: points run and stored by this call
    :param elapsed_s: wall time of the call, worker start-up included
    """

    spec_hash: str
    out: Path
    backend: str
    workers: int
    total: int
    skipped: int
    ran: int
    elapsed_s: float

    @property
    def points_per_s(self) -> float:
        return self.ran / self.elapsed_s if self.elapsed_s > 0 else float("nan")


def run_in_pool(fn: Callable, items: Iterable, workers: int,
                on_result: Callable[[object, object], None], *,
                initializer: Callable = _init_worker, initargs: tuple = ()) -> None:
    """fn(item) for every item in `workers` spawned processes (each first runs
    initializer(*initargs); by default: one torch thread), and on_result(item, result) in this
    process as each finishes, in finishing order. On an error the items not started are
    cancelled and the error is raised here.

    Spawn, not fork: the caller may already hold torch/OpenMP thread pools, which a forked
    child inherits in a broken state."""
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                             initializer=initializer, initargs=initargs) as pool:
        pending = {pool.submit(fn, item): item for item in items}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    on_result(pending.pop(f), f.result())
        except BaseException:
            for f in pending:
                f.cancel()
            raise


def _run_local(points: list[SweepPoint], workers: int,
               store_point: Callable[[list[dict]], None]) -> None:
    run_in_pool(run_point, points, workers, lambda _, rows: store_point(rows))


def _import_ray():
    """Ray, or a clear error before the sweep writes anything."""
    try:
        import ray
    except ImportError:
        raise ValueError("--backend ray needs Ray: pip install 'dmrx[ray]'") from None
    return ray


def _run_ray(points: list[SweepPoint], workers: int | None, address: str | None,
             store_point: Callable[[list[dict]], None]) -> None:
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        # No address: a local Ray cluster of `workers` CPUs. With an address the cluster
        # decides; its nodes need dmrx installed (same version) to import the task.
        kw = {"num_cpus": workers} if address is None else {}
        ray.init(address=address, include_dashboard=False, log_to_driver=False, **kw)
    try:
        task = ray.remote(num_cpus=1)(_ray_point)
        pending = [task.remote(p) for p in points]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            store_point(ray.get(done[0]))
    finally:
        if started:
            ray.shutdown()


def run_sweep(spec: SweepSpec, out: str | Path, *, backend: str = "local",
              workers: int | None = None, address: str | None = None,
              progress: bool = True, limit: int | None = None) -> SweepRun:
    """Run the spec's points that `out` does not hold yet and store each as it finishes.

    :param backend: 'local' (a process pool) or 'ray'
    :param workers: local: processes (default: every core); ray without address: CPUs of the
        local Ray cluster (default: every core); ray with address: ignored
    :param address: Ray cluster address ('auto', 'ray://host:10001'); None starts a local one
    :param limit: run at most this many of the missing points (None: all of them)
    :raises ValueError: unknown backend, bad worker count, Ray not installed
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not known: use one of {list(BACKENDS)}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if address is not None and backend != "ray":
        raise ValueError("--address is for --backend ray only")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if backend == "ray":
        _import_ray()
    t0 = time.perf_counter()
    workers = workers or os.cpu_count() or 1
    store = ResultsStore(out)
    store.write_spec(spec)
    grid = spec.points()
    finished = store.finished_ids()
    todo = [p for p in grid if p.point_id not in finished]
    skipped = len(grid) - len(todo)
    if limit is not None:
        todo = todo[:limit]
    bar = tqdm(total=len(grid), initial=skipped, unit="point", disable=not progress,
               desc=f"sweep {spec.name}")
    ran = 0

    def store_point(rows: list[dict]) -> None:
        nonlocal ran
        store.write_point(rows)
        ran += 1
        bar.update(1)

    try:
        if todo:
            if backend == "ray":
                _run_ray(todo, workers, address, store_point)
            else:
                _run_local(todo, min(workers, len(todo)), store_point)
    finally:
        bar.close()
    return SweepRun(spec.spec_hash, store.out, backend, workers, len(grid), skipped, ran,
                    time.perf_counter() - t0)

