"""Where cells run: in this process, in a local process pool, or on Dask (dask_executor.py).

The driver is the only writer to the store: executors hand back results as they
complete, and the driver commits each one at once in its own transaction.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from regbench.errors import RegbenchError, UnknownNameError
from regbench.registry import TASKS
from regbench.specs import Cell, CellResult
from regbench.store import Store
from regbench.train import run_cell


class LocalExecutor:
    """Runs cells in this process (jobs=1) or in a pool of `jobs` spawned processes."""

    def __init__(self, jobs: int = 1, threads: int = 1, data_dir: str | None = None,
                 scheduler: str | None = None, workers: int | None = None, **_: object):
        if scheduler or workers is not None:
            raise RegbenchError("--scheduler and --workers only apply to --executor dask "
                                "(the local executor takes --jobs)")
        if jobs < 1:
            raise RegbenchError(f"--jobs must be >= 1, got {jobs}")
        if threads < 1:
            raise RegbenchError(f"--threads must be >= 1, got {threads}")
        self.jobs, self.threads, self.data_dir = jobs, threads, data_dir

    def map(self, cells: list[Cell]) -> Iterator[CellResult]:
        """Yield results in completion order."""
        if self.jobs == 1:
            for cell in cells:
                yield run_cell(cell, self.data_dir, self.threads)
            return
        ctx = mp.get_context("spawn")  # no fork of a process that may hold torch threads
        with cf.ProcessPoolExecutor(self.jobs, mp_context=ctx) as pool:
            futures = [pool.submit(run_cell, c, self.data_dir, self.threads) for c in cells]
            try:
                for fut in cf.as_completed(futures):
                    yield fut.result()
            finally:
                for fut in futures:
                    fut.cancel()



def _dask_executor(**kwargs: object) -> object:
    """Lazy: `distributed` is an optional extra (pip install -e '.[dist]')."""
    try:
        from regbench.dask_executor import make_dask_executor
    except ImportError as exc:  # pragma: no cover - the module itself imports only regbench
        raise RegbenchError(f"--executor dask is unavailable ({exc}); "
                            "pip install -e '.[dist]'") from None
    return make_dask_executor(**kwargs)


EXECUTORS: dict[str, Callable[..., object]] = {"local": LocalExecutor, "dask": _dask_executor}


def make_executor(name: str, **kwargs: object):
    if name not in EXECUTORS:
        raise UnknownNameError("executor", name, EXECUTORS)
    return EXECUTORS[name](**kwargs)


@dataclass
class RunSummary:
    total: int = 0
    already: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {"ok": 0, "diverged": 0, "failed": 0})
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        c = self.counts
        return (f"{self.total} cells in matrix: {self.already} already stored, "
                f"{sum(c.values())} run now ({c['ok']} ok, {c['diverged']} diverged, "
                f"{c['failed']} failed)")


def preflight(cells: list[Cell], data_dir: str | None) -> None:
    """Fail before running anything if a task's data is missing."""
    for name in sorted({c.task.name for c in cells}):
        TASKS.get(name)().check_available(Path(data_dir) if data_dir else None)


def run_cells(cells: list[Cell], store: Store, executor, force: bool = False,
              progress: bool = True, retry_failed: bool = False) -> RunSummary:
    """Run the cells missing from `store` (all with `force`, failed ones too with
    `retry_failed`), committing each as it lands."""
    summary = RunSummary(total=len(cells))
    store.check_suite_versions({c.suite_version for c in cells})
    done = set() if force else store.done_ids(retry_failed)
    todo = [c for c in cells if c.cell_id not in done]
    summary.already = len(cells) - len(todo)
    if not todo:
        return summary
    preflight(todo, getattr(executor, "data_dir", None))
    bar = tqdm(total=len(todo), desc="cells", unit="cell", disable=not progress, smoothing=0.1)
    try:
        for result in executor.map(todo):
            store.add(result, replace=force or retry_failed)
            summary.counts[result.status] += 1
            if result.status == "failed":
                summary.failures.append(f"{result.cell.describe()}: "
                                        f"{(result.error or '').splitlines()[0]}")
            gap = result.metrics.get("gap_metric")
            bar.set_postfix_str(f"last: {result.cell.task.name}/{result.cell.reg.name} "
                                f"{result.status}" + (f" gap={gap:.4g}" if gap is not None else ""))
            bar.update(1)
    finally:
        bar.close()
    return summary
