"""Cells in this process (`--jobs 1`) or in `--jobs N` spawned worker processes.

The worker pool is regbench's own (not concurrent.futures), so the driver knows which
cell each worker runs:
- a worker that dies mid-cell (the kernel's OOM killer, a segfault in an extension)
  gives its cell a `failed` result, "worker process died (signal 9 SIGKILL: likely out
  of memory)", a fresh worker takes its place and the run goes on;
- a worker ended by SIGTERM/SIGINT/SIGHUP (a scheduler stopping the job) stops the run
  as if the driver had been sent that signal (`Interrupted`; its cell is not stored);
- when the driver stops (SIGINT, SIGTERM, an error), every worker is terminated at once
  instead of finishing its cell.
Workers ignore SIGINT, from their first instruction on: Ctrl-C reaches the whole process
group, and the driver alone decides what happens (no worker traceback is printed).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

from regbench import plugins
from regbench.errors import RegbenchError
from regbench.executors.signals import interrupt, signal_name
from regbench.specs import Cell, CellResult

PARENT_POLL_S = 1.0
STOP_GRACE_S = 3.0  # a terminated worker gets this long before SIGKILL
# a worker ended by one of these was stopped on purpose: the run stops, the cell is not stored
STOPPED_BY = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
DEATH_HINTS = {signal.SIGKILL: "likely out of memory", signal.SIGSEGV: "segmentation fault",
               signal.SIGBUS: "bus error", signal.SIGABRT: "aborted",
               signal.SIGFPE: "arithmetic error", signal.SIGILL: "illegal instruction"}


def _exit_with_parent(ppid: int) -> None:
    """In a worker: end it once the driver is gone (even SIGKILLed), so no orphaned worker
    keeps training and holding memory (or the driver's stdout open)."""

    def watch() -> None:
        while os.getppid() == ppid:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="regbench-parent-watch", daemon=True).start()


def death_message(exitcode: int | None) -> str:
    """Why a worker process ended, for its cell's error text."""
    if exitcode is None:
        return "worker process died (no exit status)"
    if exitcode < 0:
        sig = -exitcode
        hint = DEATH_HINTS.get(sig)  # type: ignore[call-overload]
        return (f"worker process died (signal {sig} {signal_name(sig)}"
                + (f": {hint})" if hint else ")"))
    return f"worker process died (exit code {exitcode})"


def _worker_main(conn: Connection, ppid: int, data_dir: str | None, threads: int,
                 initializer: Callable[..., object] | None, initargs: tuple[Any, ...],
                 plugin_sources: Any = ()) -> None:
    """A worker: load the driver's plugins, then run the cells the driver sends, one at a
    time, until it sends None. A plugin that fails to load here is reported to the driver
    (no traceback on stderr) and the worker exits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # (inherited already; see _start)
    _exit_with_parent(ppid)
    try:
        plugins.worker_setup(plugin_sources)
        if initializer is not None:
            initializer(*initargs)
    except BaseException as exc:  # noqa: BLE001 - reported to the driver, which stops the run
        first = (str(exc).strip().splitlines() or [""])[0]
        with contextlib.suppress(OSError):
            conn.send(plugins.SetupFailed(f"{type(exc).__name__}: {first}" if not isinstance(
                exc, RegbenchError) else first))
        return
    from regbench.train import run_cell

    while True:
        try:
            cell = conn.recv()
        except (EOFError, OSError):
            return
        if cell is None:
            return
        conn.send(run_cell(cell, data_dir, threads))


class _Worker:
    def __init__(self, proc: Any, conn: Connection):
        self.proc, self.conn = proc, conn
        self.cell: Cell | None = None
        self.started_at = ""


class LocalExecutor:
    """Runs cells in this process (jobs=1) or in a pool of `jobs` spawned processes.

    `initializer(*initargs)` runs in each worker process before its first cell (e.g. to
    import a module that registers a regularizer); it must be picklable (a module-level
    function). The in-process path (jobs=1) does not call it.
    """

    builds_here = True  # the cells run on this machine: run_cells may prebuild the kernels

    def __init__(self, jobs: int = 1, threads: int = 1, data_dir: str | None = None,
                 scheduler: str | None = None, workers: int | None = None,
                 initializer: Callable[..., object] | None = None,
                 initargs: tuple[Any, ...] = (), **_: object):
        if scheduler or workers is not None:
            raise RegbenchError("--scheduler and --workers only apply to --executor dask "
                                "(the local executor takes --jobs)")
        if jobs < 1:
            raise RegbenchError(f"--jobs must be >= 1, got {jobs}")
        if threads < 1:
            raise RegbenchError(f"--threads must be >= 1, got {threads}")
        self.jobs, self.threads, self.data_dir = jobs, threads, data_dir
        self.initializer, self.initargs = initializer, tuple(initargs)
        # with keep_workers, idle workers outlive a `map` that ran to its end, for the next
        # `map` (a tuned matrix's rounds) until `close()`; otherwise each map stops its own
        self.keep_workers = False
        self._kept: list[_Worker] = []

    def close(self) -> None:
        """Stop the workers kept between maps (none unless keep_workers was set)."""
        kept, self._kept = self._kept, []
        self._stop(kept)

    def map(self, cells: Iterable[Cell]) -> Iterator[CellResult]:
        """Yield results in completion order. `cells` is pulled lazily, one cell per free
        worker, so a lazily claiming iterable (leases.py) claims only what runs now."""
        it = iter(cells)
        if self.jobs == 1:
            from regbench.train import run_cell

            for cell in it:
                yield run_cell(cell, self.data_dir, self.threads)
            return
        yield from self._pool(it)

    # -- the pool -----------------------------------------------------------------------
    def _start(self, ctx: Any) -> _Worker:
        here, there = ctx.Pipe()
        proc = ctx.Process(target=_worker_main, name="regbench-worker", daemon=True,
                           args=(there, os.getpid(), self.data_dir, self.threads,
                                 self.initializer, self.initargs, plugins.sources()))
        # An ignored SIGINT survives exec: the worker ignores Ctrl-C even while it is
        # still importing torch, before _worker_main runs.
        main = threading.current_thread() is threading.main_thread()
        old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            proc.start()
        finally:
            if main:
                signal.signal(signal.SIGINT, old)
        there.close()
        return _Worker(proc, here)

    def _pool(self, it: Iterator[Cell]) -> Iterator[CellResult]:
        from regbench.provenance import now

        ctx = mp.get_context("spawn")  # no fork of a process that may hold torch threads
        workers: list[_Worker] = [w for w in self._kept if w.proc.is_alive()]
        self._stop([w for w in self._kept if w not in workers])
        self._kept = []
        exhausted = finished = False

        def fill() -> None:
            """Hand a cell to each idle worker (starting workers up to --jobs)."""
            nonlocal exhausted
            while not exhausted:
                for w in [w for w in workers if w.cell is None and not w.proc.is_alive()]:
                    w.conn.close()  # an idle worker that exited: replaced, no cell blamed
                    workers.remove(w)
                idle = next((w for w in workers if w.cell is None), None)
                if idle is None and len(workers) >= self.jobs:
                    return
                cell = next(it, None)
                if cell is None:
                    exhausted = True
                    return
                if idle is None:
                    idle = self._start(ctx)
                    workers.append(idle)
                idle.cell, idle.started_at = cell, now()
                try:
                    idle.conn.send(cell)
                except OSError:
                    pass  # died before it could take it: seen as a death below

        try:
            fill()
            while True:
                busy = [w for w in workers if w.cell is not None]
                if not busy:
                    finished = True
                    return
                ready = set(wait([w.conn for w in busy] + [w.proc.sentinel for w in busy]))
                results = []
                for w in busy:
                    if w.conn not in ready and w.proc.sentinel not in ready:
                        continue
                    result = self._collect(w)
                    if result is None:
                        continue  # the sentinel fired first; the pipe is read next round
                    results.append(result)
                    if w.conn.closed:
                        workers.remove(w)
                fill()  # keep the workers busy while the caller commits
                for result in results:
                    yield result
        finally:
            if finished and self.keep_workers:
                self._kept = [w for w in workers if not w.conn.closed]
            else:
                self._stop(workers)

    def _collect(self, w: _Worker) -> CellResult | None:
        """The result of busy worker `w` if it sent one; a failed result if it died."""
        from regbench.provenance import now, provenance

        assert w.cell is not None
        try:
            if w.conn.poll():
                result: CellResult | plugins.SetupFailed = w.conn.recv()
                w.cell = None
                if isinstance(result, plugins.SetupFailed):
                    raise result.error("a worker process")
                return result
        except (EOFError, OSError):
            pass
        else:
            if w.proc.is_alive():
                return None
        # the worker is gone without a result
        w.proc.join(STOP_GRACE_S)
        code = w.proc.exitcode
        w.conn.close()
        cell, w.cell = w.cell, None
        if code is not None and code < 0 and -code in STOPPED_BY:
            raise interrupt(-code)
        prov = provenance(self.threads, cell.device)
        return CellResult(cell, "failed", error=death_message(code),
                          provenance={**prov, "started_at": w.started_at, "finished_at": now()})

    @staticmethod
    def _stop(workers: list[_Worker]) -> None:
        """Idle workers are told to exit; busy ones are terminated; none outlives this."""
        for w in workers:
            if w.cell is None and not w.conn.closed:
                try:
                    w.conn.send(None)
                except OSError:
                    pass
            elif w.proc.is_alive():
                w.proc.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for w in workers:
            w.proc.join(max(0.0, deadline - time.monotonic()))
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join()
            if not w.conn.closed:
                w.conn.close()
