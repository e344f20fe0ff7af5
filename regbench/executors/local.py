"""Cells in this process (`--jobs 1`) or in a pool of `--jobs N` spawned processes."""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Iterable, Iterator

from regbench import plugins
from regbench.errors import RegbenchError
from regbench.specs import Cell, CellResult
from regbench.train import run_cell

PARENT_POLL_S = 1.0


def _exit_with_parent(ppid: int) -> None:
    """Pool initializer: end this worker once the driver is gone (even SIGKILLed), so no
    orphaned worker keeps training and holding memory (or the driver's stdout open)."""

    def watch() -> None:
        while os.getppid() == ppid:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="regbench-parent-watch", daemon=True).start()


class LocalExecutor:
    """Runs cells in this process (jobs=1) or in a pool of `jobs` spawned processes."""

    builds_here = True  # the cells run on this machine: run_cells may prebuild the kernels

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

    def map(self, cells: Iterable[Cell]) -> Iterator[CellResult]:
        """Yield results in completion order. `cells` is pulled lazily, one cell per free
        worker, so a lazily claiming iterable (leases.py) claims only what runs now."""
        it = iter(cells)
        if self.jobs == 1:
            for cell in it:
                yield run_cell(cell, self.data_dir, self.threads)
            return
        first = next(it, None)
        if first is None:
            return  # no pool for nothing
        it = itertools.chain([first], it)
        ctx = mp.get_context("spawn")  # no fork of a process that may hold torch threads
        srcs = plugins.sources()  # each worker loads the driver's plugins before a cell
        with cf.ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=_exit_with_parent,
                                    initargs=(os.getpid(),)) as pool:
            running: set[cf.Future[CellResult]] = set()

            def fill() -> None:
                for cell in itertools.islice(it, self.jobs - len(running)):
                    running.add(pool.submit(plugins.run_cell, srcs, cell, self.data_dir,
                                            self.threads))

            try:
                fill()
                while running:
                    done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                    running -= done
                    fill()  # keep the workers busy while the caller commits
                    for fut in done:
                        yield fut.result()
            finally:
                for fut in running:
                    fut.cancel()
