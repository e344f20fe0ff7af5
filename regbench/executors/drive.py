"""`run_cells`, the driver loop every executor shares.

The driver is the only writer to the store: executors hand back results as they
complete, and the driver commits each one at once in its own transaction. Cells are
leased before they run (leases.py), so drivers sharing a store share the work.
"""

from __future__ import annotations

from typing import Any

from regbench.executors.leases import Leases
from regbench.executors.preflight import needs_cpu_kernels, preflight
from regbench.executors.progress import Progress
from regbench.executors.signals import Interrupted, stop_on_signals
from regbench.executors.summary import RunSummary
from regbench.specs import Cell
from regbench.store import Store


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
