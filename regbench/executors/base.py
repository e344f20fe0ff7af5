"""The part every executor shares: the executor registry, and `run_cells`, the driver loop.

The driver is the only writer to the store: executors hand back results as they
complete, and the driver commits each one at once in its own transaction. Cells are
leased before they run (leases.py), so drivers sharing a store share the work.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from regbench.errors import DataError, RegbenchError, UnknownNameError
from regbench.executors.leases import Leases
from regbench.registry import TASKS
from regbench.specs import Cell
from regbench.store import Store


def _local_executor(**kwargs: Any) -> Any:
    from regbench.executors.local import LocalExecutor

    return LocalExecutor(**kwargs)


def _dask_executor(**kwargs: Any) -> Any:
    """Lazy: `distributed` is an optional extra (pip install -e '.[dist]')."""
    try:
        from regbench.executors.dask import make_dask_executor
    except ImportError as exc:  # pragma: no cover - the module itself imports only regbench
        raise RegbenchError(f"--executor dask is unavailable ({exc}); "
                            "pip install -e '.[dist]'") from None
    return make_dask_executor(**kwargs)


EXECUTORS: dict[str, Callable[..., Any]] = {"local": _local_executor, "dask": _dask_executor}


def make_executor(name: str, **kwargs: Any) -> Any:
    """The executor `name` (local or dask) built with the CLI's options."""
    if name not in EXECUTORS:
        raise UnknownNameError("executor", name, EXECUTORS)
    return EXECUTORS[name](**kwargs)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM reached the driver: the run stopped (workers terminated, leases
    dropped). `summary` holds what was done; the CLI exits 128 + the signal number."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.summary: RunSummary | None = None

    @property
    def name(self) -> str:
        return signal_name(self.signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


_stopping = threading.Event()  # set once a stop began: later signals are ignored


def interrupt(signum: int) -> Interrupted:
    """The exception that stops a run for `signum` (for an executor that learns of the
    signal itself, e.g. its worker was sent SIGTERM); later signals are then ignored."""
    _stopping.set()
    return Interrupted(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise `Interrupted` in the main thread (SIGTERM's default would
    kill the driver with its leases held); a second signal while stopping is ignored, so
    the clean-up (terminate workers, drop leases) runs to its end. Outside the main thread
    (where handlers cannot be set) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if not _stopping.is_set():
            raise interrupt(signum)

    _stopping.clear()
    old = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _stopping.clear()


PROGRESS_INTERVAL_S = 30.0  # without a terminal: a plain line at least this often
PROGRESS_STEP = 0.05  # ... and whenever another 5% of the cells are done


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _terminal_size(stream: TextIO) -> bool:
    """Whether the terminal reports a window size (a pty may say 0 x 0)."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return size.columns > 0 and size.lines > 0


class Progress:
    """The run's progress on stderr: a tqdm bar on a terminal; otherwise (a log file, a
    cluster job, CI) one plain line every PROGRESS_INTERVAL_S seconds or PROGRESS_STEP of
    the cells: done/total, rate, ETA and failures (no carriage-return frames)."""

    def __init__(self, total: int, enabled: bool = True, stream: TextIO | None = None,
                 interval: float = PROGRESS_INTERVAL_S, step: float = PROGRESS_STEP):
        self.total, self.done, self.failed = total, 0, 0
        self.stream = sys.stderr if stream is None else stream
        self.interval, self.step = interval, step
        self.bar: tqdm | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = self._last_t = time.monotonic()
        self._last_done = 0
        isatty = getattr(self.stream, "isatty", lambda: False)
        if not enabled:
            self.mode = "off"
        elif isatty():
            self.mode = "bar"
            # a pty without a window size (0 x 0) would hide the bar: assume 100 x 24
            sized = _terminal_size(self.stream)
            self.bar = tqdm(total=total, desc="cells", unit="cell", smoothing=0.1,
                            file=self.stream, ncols=None if sized else 100,
                            nrows=None if sized else 24)
        else:
            self.mode = "lines"
            self._thread = threading.Thread(target=self._tick, name="regbench-progress",
                                            daemon=True)
            self._thread.start()

    def line(self) -> str:
        elapsed = time.monotonic() - self._t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = self.total - self.done
        eta = _duration(left / rate) if rate > 0 else "?"
        pct = 100 * self.done / max(self.total, 1)
        return (f"cells: {self.done}/{self.total} done ({pct:.0f}%), {rate:.3g} cells/s, "
                f"elapsed {_duration(elapsed)}, ETA {eta}, "
                f"{self.failed} failed")

    def _emit(self) -> None:  # under the lock
        print(self.line(), file=self.stream, flush=True)
        self._last_t, self._last_done = time.monotonic(), self.done

    def _tick(self) -> None:
        while not self._stop.wait(self.interval / 4):
            with self._lock:
                if time.monotonic() - self._last_t >= self.interval:
                    self._emit()

    def update(self, n: int = 1, failed: int = 0, note: str | None = None) -> None:
        if n <= 0 and not failed:
            return
        with self._lock:
            self.done += n
            self.failed += failed
            if self.bar is not None:
                if note:
                    self.bar.set_postfix_str(note, refresh=False)
                self.bar.update(n)
            elif self.mode == "lines":
                step = max(1, int(self.total * self.step))
                if (self.done // step > self._last_done // step or self.done == self.total
                        or time.monotonic() - self._last_t >= self.interval):
                    self._emit()

    def note(self, text: str) -> None:
        """A status note: the bar's postfix on a terminal (plain lines carry none)."""
        if self.bar is not None:
            self.bar.set_postfix_str(text)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.bar is not None:
            self.bar.close()
        elif self.mode == "lines" and self.done != self._last_done:
            with self._lock:
                self._emit()


@dataclass
class RunSummary:
    total: int = 0
    already: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {"ok": 0, "diverged": 0, "failed": 0})
    failures: list[str] = field(default_factory=list)
    elsewhere: int = 0  # cells another driver on the same store ran meanwhile
    taken_over: list[str] = field(default_factory=list)  # leases of dead drivers taken over
    twice: int = 0  # cells run here that another driver had committed meanwhile (not stored)
    stored_failed: int = 0  # cells of the matrix stored as failed and not rerun
    interrupted: int | None = None  # the signal that stopped the run

    def line(self) -> str:
        c = self.counts
        text = (f"{self.total} cells in matrix: {self.already} already stored, "
                f"{sum(c.values())} run now ({c['ok']} ok, {c['diverged']} diverged, "
                f"{c['failed']} failed)")
        if self.elsewhere:
            text += f", {self.elsewhere} run by another driver"
        if self.taken_over:
            text += f", {len(self.taken_over)} taken over from a dead driver"
        if self.twice:
            text += f", {self.twice} also committed by another driver (kept theirs)"
        if self.interrupted is not None:
            text += f"; interrupted by {signal_name(self.interrupted)}"
        return text

    def exit_code(self) -> int:
        """128 + the signal when interrupted, 1 when a cell failed in this run, else 0
        (`diverged` is a result, not a failure)."""
        if self.interrupted is not None:
            return 128 + self.interrupted
        return 1 if self.counts["failed"] else 0

    def hints(self, retry: str = "rerun with --retry-failed") -> list[str]:
        """What to do next, one line each (for stderr). `retry`: how this command reruns
        failed cells."""
        out = []
        if self.counts["failed"]:
            out.append(f"{self.counts['failed']} cell(s) failed; after fixing the cause, "
                       f"{retry} to run them again")
        if self.stored_failed:
            out.append(f"{self.stored_failed} cell(s) stored as failed were not rerun; "
                       f"{retry} to rerun them")
        if self.interrupted is not None:
            out.append(f"interrupted by {signal_name(self.interrupted)}: finished cells are "
                       f"in the store, rerun to resume")
        return out


def finish(summary: RunSummary, head: str, tail: str = "",
           retry: str = "rerun with --retry-failed", out: TextIO | None = None,
           err: TextIO | None = None, max_failures: int = 10) -> int:
    """Print the summary line (stdout), then each failure and what to do (stderr); the
    exit status of the run (RunSummary.exit_code)."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    print(f"{head}: {summary.line()}{tail}", file=out, flush=True)
    for line in summary.failures[:max_failures]:
        print(f"  failed: {line}", file=err)
    if len(summary.failures) > max_failures:
        print(f"  ... and {len(summary.failures) - max_failures} more failed cell(s) "
              f"(`regbench show --all-columns` has every error)", file=err)
    for line in summary.hints(retry):
        print(f"regbench: {line}", file=err)
    err.flush()
    return summary.exit_code()


def preflight(cells: list[Cell], data_dir: str | None) -> None:
    """Fail before running anything if a task's data is missing or broken (a DataError with
    one line per problem found, naming the file, the column or record and what was found),
    or the split cache's $REGBENCH_DATA_CACHE_MB is not a number, or a cell needs more
    memory than is available (executors/memory.py)."""
    from regbench.data_cache import data_cache_bytes
    from regbench.executors.memory import check_memory

    data_cache_bytes()
    modes: dict[Any, set[str]] = {}  # task spec -> the standardize modes its cells use
    for c in cells:
        task = TASKS.get(c.task.name)()
        mode = dict(c.protocol).get("standardize", task.protocol.standardize)
        modes.setdefault(c.task, set()).add(mode)
    problems: list[str] = []
    folder = Path(data_dir) if data_dir else None
    for spec in sorted(modes, key=lambda s: s.label()):
        for line in TASKS.get(spec.name)().check_data(spec, folder, frozenset(modes[spec])):
            if line not in problems:  # two specs of one task share its files
                problems.append(line)
    if len(problems) == 1:
        raise DataError(f"{problems[0]}; nothing was run")
    if problems:
        raise DataError(f"{len(problems)} problems in the data; nothing was run:\n"
                        + "\n".join(f"  {line}" for line in problems))
    check_memory(cells, data_dir)


def needs_cpu_kernels(cell: Cell) -> bool:
    """True when the cell trains with regbench's C++ kernels (a fused backend on the CPU)."""
    return cell.device == "cpu" and dict(cell.reg.params).get("backend") == "fused"


def run_cells(cells: list[Cell], store: Store, executor: Any, force: bool = False,
              progress: bool = True, retry_failed: bool = False,
              lease_ttl: float | None = None, lease_poll: float | None = None) -> RunSummary:
    """Run the cells missing from `store` (all with `force`, failed ones too with
    `retry_failed`), committing each as it lands.

    Each cell is leased before it runs; cells another live driver holds are left to it
    and waited for at the end (taken over if that driver dies). `lease_ttl` and
    `lease_poll` (seconds) default to $REGBENCH_LEASE_TTL_S / $REGBENCH_LEASE_POLL_S.

    SIGINT or SIGTERM stops the run within seconds (the executor's workers terminated,
    the leases dropped) and raises `Interrupted`, whose `summary` says what was done.
    `progress`: a bar on a terminal, plain lines otherwise (see Progress).
    """
    summary = RunSummary(total=len(cells))
    store.check_suite_versions({c.suite_version for c in cells})
    done = set() if force else store.done_ids(retry_failed)
    todo = [c for c in cells if c.cell_id not in done]
    summary.already = len(cells) - len(todo)
    if not force and not retry_failed and summary.already:
        failed = store.done_ids(False) - store.done_ids(True)
        summary.stored_failed = sum(c.cell_id in failed for c in cells)
    if not todo:
        return summary
    preflight(todo, getattr(executor, "data_dir", None))
    if getattr(executor, "builds_here", False) and any(needs_cpu_kernels(c) for c in todo):
        # a fresh machine compiles the kernels once (~40 s): do it while other cells run
        # instead of in the first fused cell, with every other worker waiting on it
        from regbench.kernels._backend import build_in_background

        build_in_background()
    try:
        with stop_on_signals():
            _drive(todo, store, executor, summary, force, progress, retry_failed,
                   lease_ttl, lease_poll)
    except Interrupted as exc:
        summary.interrupted = exc.signum
        exc.summary = summary
        raise
    return summary


def _drive(todo: list[Cell], store: Store, executor: Any, summary: RunSummary, force: bool,
           progress: bool, retry_failed: bool, lease_ttl: float | None,
           lease_poll: float | None) -> None:
    """run_cells' loop: claim, run, commit, until every cell of `todo` is stored."""
    leases = Leases(store.path, lease_ttl, lease_poll, redo=force, retry_failed=retry_failed)
    bar = Progress(len(todo), enabled=progress)
    shown = 0  # cells done elsewhere already counted on the bar

    def show_elsewhere() -> None:
        nonlocal shown
        bar.update(leases.claims.elsewhere - shown)
        shown = leases.claims.elsewhere

    try:
        with leases:
            batch: Any = leases.claim_all(todo, store.con)
            while True:
                results = executor.map(batch)
                try:
                    for result in results:
                        if not store.add(result, replace=force or retry_failed,
                                         lease=leases.driver):
                            summary.twice += 1  # only after taking over a paused, live driver
                        summary.counts[result.status] += 1
                        if result.status == "failed":
                            summary.failures.append(f"{result.cell.describe()}: "
                                                    f"{(result.error or '').splitlines()[0]}")
                        gap = result.metrics.get("gap_metric")
                        bar.update(1, failed=int(result.status == "failed"), note=(
                            f"last: {result.cell.task.name}/{result.cell.reg.name} "
                            f"{result.status}" + (f" gap={gap:.4g}" if gap is not None else "")))
                        show_elsewhere()
                finally:
                    close = getattr(results, "close", None)
                    if close is not None:
                        close()  # a generator's clean-up (terminate its workers) runs now
                show_elsewhere()
                if leases.waiting:
                    bar.note(f"waiting for {leases.waiting} cell(s) other drivers are running")
                batch = leases.wait(store.con)
                show_elsewhere()
                if not batch:
                    break
    finally:
        bar.close()
        summary.elsewhere = leases.claims.elsewhere
        summary.taken_over = list(leases.claims.taken_over)
