"""Run a sweep: expand points, skip finished ones, evaluate batches in parallel, store rows.

Three executors share one loop: ``serial`` (in this process), ``process`` (a local
``concurrent.futures.ProcessPoolExecutor``, the default) and ``dask`` (a Dask
``distributed`` cluster: the one at ``scheduler`` or a ``LocalCluster`` started here). The
unit of work is a *batch* of points, so per-task overhead (pickling, scheduling, one
Parquet part per batch) is paid once per batch, not per point. At most ``4 × workers``
batches are in flight, so memory stays flat on huge sweeps.

The point evaluator is a parameter (any picklable ``DesignPoint -> dict`` function); the
default is :func:`dse._evaluate.evaluate_point`, the real ``simulate_workload`` path.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor
from concurrent.futures import wait as cf_wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from archsim.errors import SweepError
from dse._check import MAX_POINTS, check_count, check_spec
from dse._evaluate import evaluate_point
from dse._points import DesignPoint, expand_points, jsonable
from dse._spec import SweepSpec, load_sweep
from dse._store import ResultStore

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client
    from tqdm import tqdm

__all__ = ["Evaluator", "SweepSummary", "run_sweep", "run_batch"]

log = logging.getLogger(__name__)

Evaluator = Callable[[DesignPoint], Mapping[str, object]]
ExecutorKind = Literal["serial", "process", "dask"]


@dataclass(frozen=True)
class SweepSummary:
    """What a :func:`run_sweep` call did.

    Attributes
    ----------
    out
        The store folder.
    total
        Points in the sweep.
    skipped
        Points already in the store (resumed), not recomputed.
    computed
        Points evaluated by this call.
    errors
        Of ``computed``, how many recorded an error.
    seconds
        Wall time of this call, in s.
    error_messages
        Error message -> number of the sweep's points stored with it (computed by this
        call or before); empty when every point ran ``ok``.
    """

    out: Path
    total: int
    skipped: int
    computed: int
    errors: int
    seconds: float
    error_messages: Mapping[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        """Points of the sweep stored as errors (this call's and earlier ones)."""
        return sum(self.error_messages.values())

    @property
    def points_per_s(self) -> float:
        """Computed points per second of wall time."""
        return self.computed / self.seconds if self.seconds > 0 else math.inf


def run_batch(evaluator: Evaluator, points: Sequence[DesignPoint]) -> list[dict[str, object]]:
    """Evaluate points one by one; a failing point becomes an ``error`` row, the rest go on."""
    rows: list[dict[str, object]] = []
    for point in points:
        row = point.input_columns()
        start = time.perf_counter()
        try:
            result = dict(evaluator(point))
            row.update(status="ok", error="")
            row.update({k: jsonable(v) for k, v in result.items()})
        except Exception as exc:  # noqa: BLE001 - a failing point must not stop the sweep
            where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            origin = f" [{Path(where.filename).name}:{where.lineno}]" if where else ""
            row.update(status="error", error=f"{type(exc).__name__}: {exc}{origin}"[:2000])
        row["eval_s"] = time.perf_counter() - start
        rows.append(row)
    return rows


def _usable_cpus() -> int:
    """CPUs this process may run on (affinity-aware where the OS tells)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def max_workers() -> int:
    """Most local workers a sweep may start: 4 × the machine's CPU count."""
    return 4 * (os.cpu_count() or 1)


def _batches(points: Sequence[DesignPoint], size: int) -> Iterator[list[DesignPoint]]:
    for i in range(0, len(points), size):
        yield list(points[i : i + size])


def _default_batch(n_points: int, workers: int) -> int:
    """About four batches per worker, 1..50 points each."""
    return max(1, min(50, math.ceil(n_points / max(1, 4 * workers))))


def run_sweep(
    spec: SweepSpec | str | Path,
    out: str | Path,
    *,
    workers: int | None = None,
    executor: ExecutorKind = "process",
    scheduler: str | None = None,
    client: Client | None = None,
    batch_size: int | None = None,
    evaluator: Evaluator | None = None,
    retry_errors: bool = False,
    progress: bool = False,
    max_points: int = MAX_POINTS,
    check: bool | None = None,
    connect_timeout: float = 10.0,
) -> SweepSummary:
    """Run (or resume) a sweep into the store folder ``out``.

    Parameters
    ----------
    spec
        A :class:`SweepSpec` or the path of a sweep YAML file.
    out
        Store folder; points already stored there are skipped (resume).
    workers
        Parallel workers (default: the CPUs this process may use); ``1`` with ``process``
        runs serially.
    executor
        ``process`` (local process pool), ``dask`` or ``serial``.
    scheduler
        Dask scheduler address (``tcp://host:8786``); implies ``executor="dask"``. Without
        it, ``dask`` starts a ``LocalCluster`` of ``workers`` processes on loopback.
    client
        An existing ``distributed.Client`` to use (implies ``executor="dask"``).
    batch_size
        Points per task (default: about four batches per worker, at most 50 points).
    evaluator
        Picklable ``DesignPoint -> dict`` (default: the real ``simulate_workload`` path).
    retry_errors
        Recompute points stored with ``status == "error"`` (the store is first rewritten
        without its error rows).
    progress
        Show a tqdm bar (points done / total, rate, ETA) on stderr.
    max_points
        Refuse a sweep with more points than this (:data:`dse._check.MAX_POINTS`).
    check
        Check the spec first (:func:`dse._check.check_spec`: every architecture, workload,
        parameter and dataflow resolvable, objectives known) and refuse it before running.
        Default: check when ``evaluator`` is the default one (a custom evaluator decides
        for itself what its points need); the point count is bounded either way.
    connect_timeout
        Seconds to wait for the Dask scheduler at ``scheduler``.

    Returns
    -------
    SweepSummary

    Raises
    ------
    SweepError
        Bad spec, too many points, bad executor, worker count (at most
        :func:`max_workers` local ones) or batch size; another sweep writing ``out``; an
        unreachable Dask scheduler; or a pool worker died (the points finished before stay
        stored, so re-running resumes).
    """
    t0 = time.perf_counter()
    source = ""
    if not isinstance(spec, SweepSpec):
        source = str(spec)
        spec = load_sweep(spec)
    if scheduler is not None or client is not None:
        executor = "dask"
    if executor not in ("serial", "process", "dask"):
        raise SweepError(
            "unknown executor", path="executor", expected="serial | process | dask", got=executor
        )
    workers = workers if workers is not None else _usable_cpus()
    if workers < 1:
        raise SweepError("need at least one worker", path="--workers", expected=">= 1", got=workers)
    if workers > max_workers() and executor != "serial" and scheduler is None and client is None:
        raise SweepError(
            "too many workers for this machine",
            path="--workers",
            expected=f"at most {max_workers()} (4 x {os.cpu_count()} CPUs)",
            got=workers,
        )
    if batch_size is not None and batch_size < 1:
        raise SweepError("bad batch size", path="--batch-size", expected=">= 1", got=batch_size)
    if check if check is not None else evaluator is None:
        check_spec(spec, max_points=max_points, source=source)
    else:
        check_count(spec, max_points)
    evaluator = evaluator or evaluate_point
    store = ResultStore(out)
    with store.lock():
        return _run_locked(
            spec, store, t0, workers, executor, scheduler, client, batch_size, evaluator,
            retry_errors, progress, connect_timeout,
        )  # fmt: skip


def _run_locked(
    spec: SweepSpec,
    store: ResultStore,
    t0: float,
    workers: int,
    executor: ExecutorKind,
    scheduler: str | None,
    client: Client | None,
    batch_size: int | None,
    evaluator: Evaluator,
    retry_errors: bool,
    progress: bool,
    connect_timeout: float,
) -> SweepSummary:
    """The body of :func:`run_sweep`, run while holding the store's writer lock."""
    points = expand_points(spec)
    store.open(_manifest(spec, len(points)))
    if retry_errors:
        _drop_error_rows(store)
    done = store.done_ids()
    todo = [p for p in points if p.point_id not in done]
    skipped = len(points) - len(todo)
    log.info(
        "sweep %s: %d points, %d already stored, %d to run",
        spec.name,
        len(points),
        skipped,
        len(todo),
    )
    size = batch_size or _default_batch(len(todo), workers)
    batches = list(_batches(todo, size))
    bar = _progress_bar(len(points), skipped, spec.name, progress)
    errors = 0

    def finished(rows: list[dict[str, object]]) -> None:
        nonlocal errors
        store.write_batch(rows)
        errors += sum(r["status"] != "ok" for r in rows)
        if bar is not None:
            bar.update(len(rows))

    try:
        if executor == "serial" or (executor == "process" and workers == 1):
            for batch in batches:
                finished(run_batch(evaluator, batch))
        elif executor == "process":
            _run_process_pool(evaluator, batches, workers, finished)
        else:
            _run_dask(evaluator, batches, workers, scheduler, client, finished, connect_timeout)
    finally:
        if bar is not None:
            bar.close()
    messages = store.error_counts({p.point_id for p in points}) if errors or skipped else {}
    return SweepSummary(
        store.root,
        len(points),
        skipped,
        len(todo),
        errors,
        time.perf_counter() - t0,
        dict(messages),
    )


def _progress_bar(total: int, initial: int, name: str, enabled: bool) -> tqdm | None:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=name, unit="pt", dynamic_ncols=True)


def _manifest(spec: SweepSpec, n_points: int) -> dict[str, object]:
    return {
        "name": spec.name,
        "n_points": n_points,
        "objectives": list(spec.objectives),
        "constraints": [str(c) for c in spec.constraints],
        "spec": jsonable(spec.model_dump(mode="json")),
    }


def _drop_error_rows(store: ResultStore) -> None:
    """Rewrite the store without its error rows (compacted), so they are recomputed."""
    df = store.load()
    if df.empty or (df["status"] == "ok").all():
        return
    parts = store.part_files()
    kept = df[df["status"] == "ok"].drop(columns=["feasible"])
    if len(kept):
        store.write_batch(kept.to_dict("records"))
    for part in parts:
        part.unlink(missing_ok=True)


def _drive(
    submit: Callable[[list[DesignPoint]], object],
    wait_any: Callable[[set], tuple[set, set]],
    batches: list[list[DesignPoint]],
    window: int,
    finished: Callable[[list[dict[str, object]]], None],
) -> None:
    """Keep ``window`` batches in flight; hand each finished one to ``finished``."""
    pending: set = set()
    queue = iter(batches)
    for batch in queue:
        pending.add(submit(batch))
        if len(pending) >= window:
            break
    while pending:
        done, pending = wait_any(pending)
        for future in done:
            finished(future.result())
            nxt = next(queue, None)
            if nxt is not None:
                pending.add(submit(nxt))


def _exit_with_parent(parent: int, period_s: float = 0.5) -> None:
    """Pool-worker initializer: a daemon thread ends the worker once the sweep process that
    started it is gone (killed), instead of leaving it orphaned and idle forever."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(period_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _run_process_pool(
    evaluator: Evaluator,
    batches: list[list[DesignPoint]],
    workers: int,
    finished: Callable[[list[dict[str, object]]], None],
) -> None:
    methods = multiprocessing.get_all_start_methods()
    # NOTE: fork (where available) reuses this process's imports, so workers start in ms.
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_exit_with_parent,
        initargs=(os.getpid(),),
    ) as pool:

        def wait_any(pending: set) -> tuple[set, set]:
            done, rest = cf_wait(pending, return_when=FIRST_COMPLETED)
            return set(done), set(rest)

        try:
            _drive(
                lambda b: pool.submit(run_batch, evaluator, b),
                wait_any,
                batches,
                4 * workers,
                finished,
            )
        except BrokenProcessPool as exc:
            raise SweepError(
                "a worker process died (out of memory or killed?); finished points are "
                "stored, so re-running the same command resumes",
                path="executor",
                expected="workers that live to finish their batches",
                got=str(exc),
            ) from None


def _run_dask(
    evaluator: Evaluator,
    batches: list[list[DesignPoint]],
    workers: int,
    scheduler: str | None,
    client: Client | None,
    finished: Callable[[list[dict[str, object]]], None],
    connect_timeout: float = 10.0,
) -> None:
    """Run batches on a Dask cluster: ``client``, else the one at ``scheduler`` (waiting at
    most ``connect_timeout`` s for it), else a ``LocalCluster`` of ``workers``
    single-threaded processes on loopback (closed after)."""
    try:
        from distributed import Client, LocalCluster
        from distributed import wait as dask_wait
    except ImportError as exc:  # pragma: no cover - dask is a dependency
        raise SweepError(
            "the dask executor needs dask[distributed]", path="executor", got=str(exc)
        ) from None
    with contextlib.ExitStack() as owned:
        if client is None and scheduler is not None:
            client = owned.enter_context(_connect(Client, scheduler, connect_timeout))
        elif client is None:
            cluster = owned.enter_context(
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    host="127.0.0.1",
                )
            )
            client = owned.enter_context(Client(cluster))
        cluster_workers = len(client.scheduler_info().get("workers", {})) or workers

        def wait_any(pending: set) -> tuple[set, set]:
            result = dask_wait(list(pending), return_when="FIRST_COMPLETED")
            return set(result.done), set(result.not_done)

        def submit(batch: list[DesignPoint]) -> object:
            return client.submit(run_batch, evaluator, batch, pure=False)

        _drive(submit, wait_any, batches, 4 * cluster_workers, finished)


def _connect(client_cls: type[Client], address: str, timeout: float) -> Client:
    """A ``distributed.Client`` for the scheduler at ``address``; one clear error if none
    answers within ``timeout`` s (or the address is malformed)."""
    try:
        return client_cls(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        what = (
            "bad Dask scheduler address"
            if isinstance(exc, (ValueError, TypeError))
            else f"cannot connect to the Dask scheduler within {timeout:g} s"
        )
        raise SweepError(
            f"{what} ({reason})",
            path="--scheduler",
            expected="the address of a running scheduler, e.g. tcp://host:8786 "
            "(--connect-timeout waits longer)",
            got=address,
        ) from None
