"""Run cells on a Dask distributed cluster: `regbench run --executor dask`.

`--scheduler tcp://HOST:8786` connects to a running cluster (started by hand, by a
job script or by dask-jobqueue); `--workers N` starts a `LocalCluster` of N
single-threaded worker processes on 127.0.0.1 for this run.

The driver stays the only writer to the store: workers return `CellResult`s and
`map` yields each one as it lands (`distributed.as_completed`), so `run_cells`
commits it at once and the progress bar is live. `map` pulls cells lazily, two per
connected worker slot, so a driver leases (leases.py) only what its cluster is about
to run and a second driver on the same store takes the rest.

Failure handling:
- A worker that dies mid-cell (SIGKILL, OOM, lost node): the scheduler reschedules
  its task on another worker by itself (up to `distributed.scheduler.allowed-failures`,
  default 3, deaths per task). If a task still ends as `KilledWorker`, the driver
  resubmits it under a fresh key up to `resubmits` more times; a cell that keeps
  killing workers gets a `failed` result, "worker process died (Dask KilledWorker:
  ...)", as a dead local worker's cell does, and the run goes on (`--retry-failed`
  reruns it).
  `retries=` is not used: `run_cell` never raises for a problem inside a cell, so a
  task exception is an environment problem (e.g. a version mismatch) that a retry
  cannot fix.
- The store's primary key (`cell_id`) plus INSERT OR IGNORE make a second row for a
  cell impossible, whatever happens.
- Workers must run one task at a time (`--nthreads 1`): `run_cell` seeds torch's
  process-global generator and sets the process-wide torch thread count, so two cells
  sharing a process would make each other non-reproducible. Cell threads come from
  `--threads` and are recorded in every row.
- Versions: every worker present when the run starts is asked for regbench's
  SUITE_VERSION, `regbench.__version__`, `torch.__version__` and its thread count,
  and the run is refused if any differs from the driver. Workers that join later
  are checked by the task itself before it runs a cell; a mismatch stops the run
  with the same message (committed cells stay; fix the worker and rerun).

This module imports `distributed` only when an executor is created.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from regbench.errors import PluginError, RegbenchError
from regbench.specs import Cell, CellResult

if TYPE_CHECKING:
    from distributed import Client, LocalCluster


CONNECT_TIMEOUT_S = 10.0  # give up on an unreachable --scheduler after this many seconds
RESUBMITS = 1  # extra submissions of a cell whose task ended as KilledWorker
PER_SLOT = 2  # cells submitted ahead per worker thread: one running, one queued
INSTALL_HINT = "pip install -e '.[dist]'"
# Dask's nanny exports MALLOC_TRIM_THRESHOLD_=65536 to spawned workers; that fixes glibc's
# mmap threshold, so every large tensor is mmapped and page-faulted afresh: cnn cells ran
# 2.4x slower (3.8 s vs 1.6 s). None drops it for the workers of `--workers N`; for other
# clusters set DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON__MALLOC_TRIM_THRESHOLD_=None
# where the workers start (README).
WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


def _require_distributed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise RegbenchError(f"--executor dask needs Dask distributed ({exc}); "
                            f"install it with: {INSTALL_HINT}") from None


def make_dask_executor(**kwargs: Any) -> DaskExecutor:
    """The `EXECUTORS["dask"]` factory: a clear error if distributed is not installed."""
    _require_distributed()
    return DaskExecutor(**kwargs)


# -- versions --------------------------------------------------------------------------------
VERSION_KEYS = ("suite_version", "regbench", "torch")


def local_versions() -> dict[str, str]:
    """What must agree between the driver and every worker (read at call time)."""
    import torch

    import regbench
    from regbench import specs

    return {"suite_version": specs.SUITE_VERSION, "regbench": regbench.__version__,
            "torch": torch.__version__}


def _worker_report(dask_worker: Any = None) -> dict[str, Any]:
    """Run on a worker (via `Client.run` or inside a task): its versions and thread count."""
    if dask_worker is None:
        from distributed import get_worker

        dask_worker = get_worker()
    import socket

    return {**local_versions(), "nthreads": dask_worker.state.nthreads,
            "host": socket.gethostname()}


def version_problem(address: str, report: dict[str, Any], expected: dict[str, str]
                    ) -> str | None:
    """A one-line reason to refuse the worker at `address`, or None if it matches."""
    diffs = [f"{k} {report.get(k)!r} (driver {expected[k]!r})" for k in VERSION_KEYS
             if report.get(k) != expected[k]]
    if diffs:
        return (f"worker {address} on {report.get('host')} differs from the driver: "
                f"{', '.join(diffs)}; install the same regbench and torch on every worker")
    if report.get("nthreads") != 1:
        return (f"worker {address} on {report.get('host')} runs {report.get('nthreads')} "
                f"tasks at once; start workers with one thread each (`dask worker ... "
                f"--nthreads 1`, use --nworkers for more processes): cells seed torch's "
                f"process-wide generator and thread count")
    return None


class WorkerVersionError(RegbenchError):
    """Raised inside a task on a worker that does not match the driver."""


def _run_on_worker(cell: Cell, data_dir: str | None, threads: int,
                   expected: dict[str, str], plugin_sources: tuple[Any, ...] = ()
                   ) -> CellResult:
    """The task: check this worker against the driver, load the driver's plugins, then run
    the cell."""
    from distributed import get_worker

    from regbench import plugins
    from regbench.train import run_cell

    worker = get_worker()
    problem = version_problem(worker.address, _worker_report(worker), expected)
    if problem:
        raise WorkerVersionError(problem)
    try:
        plugins.worker_setup(plugin_sources)
    except PluginError as exc:  # loads in the driver, not here: the driver stops the run
        return plugins.SetupFailed(str(exc))  # type: ignore[return-value]
    return run_cell(cell, data_dir, threads)


# -- the executor -------------------------------------------------------------------------------
class DaskExecutor:
    """Runs cells on a Dask cluster; `map(cells)` yields results in completion order."""

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 threads: int = 1, data_dir: str | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT_S, resubmits: int = RESUBMITS,
                 **_: object):
        if scheduler and workers:
            raise RegbenchError("--executor dask takes either --scheduler ADDRESS or "
                                "--workers N, not both")
        if not scheduler and workers is None:
            raise RegbenchError("--executor dask needs --scheduler tcp://HOST:8786 (a running "
                                "Dask cluster) or --workers N (a local cluster of N processes)")
        if workers is not None and workers < 1:
            raise RegbenchError(f"--workers must be >= 1, got {workers}")
        if threads < 1:
            raise RegbenchError(f"--threads must be >= 1, got {threads}")
        if connect_timeout <= 0:
            raise RegbenchError(f"connect timeout must be > 0 s, got {connect_timeout}")
        self.scheduler, self.workers = scheduler, workers
        self.builds_here = scheduler is None  # a LocalCluster shares this machine's cache
        self.threads, self.data_dir = threads, data_dir
        self.connect_timeout, self.resubmits = connect_timeout, resubmits
        self.client: Client | None = None
        self.cluster: LocalCluster | None = None
        self.resubmitted: list[str] = []  # cell ids resubmitted after KilledWorker (last map)

    # -- connection -------------------------------------------------------------------
    def connect(self) -> Client:
        """Start the local cluster or connect to the scheduler, then check the workers."""
        if self.client is not None:
            return self.client
        _require_distributed()
        import dask
        from distributed import Client, LocalCluster

        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout=self.connect_timeout,
                                     set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                raise RegbenchError(
                    f"cannot reach the Dask scheduler at {self.scheduler} within "
                    f"{self.connect_timeout:g} s ({type(exc).__name__}: {exc}); is it running "
                    f"and is the address right (tcp://HOST:8786)?") from None
        else:
            try:
                with dask.config.set(WORKER_CONFIG):
                    self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                                processes=True, host="127.0.0.1",
                                                dashboard_address=None)
            except (RuntimeError, OSError, TimeoutError) as exc:
                raise RegbenchError(
                    f"could not start a local Dask cluster of {self.workers} worker(s) "
                    f"({type(exc).__name__}: {exc}); workers are spawned processes, so a "
                    f"script that calls this needs an `if __name__ == '__main__':` guard"
                ) from exc
            self.client = Client(self.cluster, set_as_default=False)
        try:
            self.check_workers()
        except BaseException:
            self.close()
            raise
        return self.client

    def check_workers(self) -> None:
        """Refuse the run if any connected worker differs from the driver."""
        assert self.client is not None
        expected = local_versions()
        reports = self.client.run(_worker_report)
        problems = [p for addr, rep in sorted(reports.items())
                    if (p := version_problem(addr, rep, expected))]
        if problems:
            raise RegbenchError("refusing to run on this cluster:\n  " + "\n  ".join(problems))

    def close(self) -> None:
        """Disconnect (and stop the local cluster if this executor started it)."""
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running ----------------------------------------------------------------------
    def map(self, cells: Iterable[Cell]) -> Iterator[CellResult]:
        """Yield results in completion order; the connection is closed when done.

        `cells` is pulled lazily: at most PER_SLOT cells per worker thread connected
        now are submitted and not yet yielded (workers that join later widen it)."""
        from distributed import KilledWorker, as_completed

        it = iter(cells)
        first = next(it, None)
        if first is None:
            return  # no cluster for nothing
        it = itertools.chain([first], it)
        client = self.connect()
        expected = local_versions()
        from regbench import plugins

        plugin_sources = tuple(plugins.sources())  # loaded by each task before its cell
        attempts: dict[str, int] = {}
        self.resubmitted = []

        def submit(cell: Cell) -> Any:
            n = attempts[cell.cell_id] = attempts.get(cell.cell_id, -1) + 1
            return client.submit(_run_on_worker, cell, self.data_dir, self.threads, expected,
                                 plugin_sources, key=f"cell-{cell.cell_id}-{n}", pure=False)

        live: dict[str, tuple[Any, Cell]] = {}  # key -> (future, cell) not yet yielded

        def fill() -> list[Any]:
            """Submit cells up to the window; the new futures."""
            slots = max(1, sum(client.nthreads().values())) * PER_SLOT
            new = []
            for cell in itertools.islice(it, max(0, slots - len(live))):
                fut = submit(cell)
                live[fut.key] = (fut, cell)
                new.append(fut)
            return new

        try:
            pending = as_completed(fill(), loop=client.loop)
            for fut in pending:
                _, cell = live.pop(fut.key)
                try:
                    result = fut.result()
                except KilledWorker as exc:
                    if attempts[cell.cell_id] < self.resubmits:
                        self.resubmitted.append(cell.cell_id)
                        new = submit(cell)
                        live[new.key] = (new, cell)
                        pending.add(new)
                    else:
                        result = _died(cell, exc, self.threads)
                        pending.update(fill())
                        yield result
                    continue
                except WorkerVersionError as exc:
                    raise RegbenchError(f"refusing to run on this cluster: {exc}") from None
                except (Exception, asyncio.CancelledError) as exc:
                    raise RegbenchError(
                        f"Dask lost the task of {cell.describe()} ({type(exc).__name__}: "
                        f"{exc}); committed cells are in the store, rerun to resume") from exc
                finally:
                    fut.release()
                if isinstance(result, plugins.SetupFailed):
                    raise result.error("a Dask worker")
                pending.update(fill())  # keep the workers busy while the caller commits
                yield result
        finally:
            if live and self.client is not None:
                self.client.cancel([f for f, _ in live.values()])
            self.close()


def _died(cell: Cell, exc: BaseException, threads: int) -> CellResult:
    """The failed result of a cell whose task kept killing its workers."""
    from regbench.provenance import now, provenance

    at = now()
    return CellResult(cell, "failed", error=f"worker process died (Dask KilledWorker: {exc}; "
                      f"likely out of memory)",
                      provenance={**provenance(threads, cell.device), "started_at": at,
                                  "finished_at": at})
