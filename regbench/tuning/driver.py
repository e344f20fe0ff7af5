"""Running a matrix with tuned blocks: rounds of `run_cells` until every study is done.

Each round plans every study against the store (`study.plan`): the cells of the batches
asked so far, the final cells once all trials are told, the baselines. Whatever of that is
not stored runs in the round, on any executor, all studies' batches together; the next
round plans again. A matrix without tuned blocks is one round, exactly `run_cells`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from regbench.executors.drive import run_cells
from regbench.executors.signals import Interrupted
from regbench.executors.summary import RunSummary
from regbench.specs import Cell
from regbench.store import Store
from regbench.tuning.study import Plan, plan


def stored_results(store: Store) -> dict[str, tuple[str, float | None]]:
    """Every stored cell's status and validation metric, by id (what plans are told)."""
    rows = store.con.execute("SELECT cell_id, status, val_metric FROM cells").fetchall()
    return {cid: (status, val) for cid, status, val in rows}


def plans(studies: list[Any], store: Store, device: str = "cpu") -> list[Plan]:
    """Where each study stands against `store`."""
    results = stored_results(store)
    return [plan(s, results, device) for s in studies]


def matrix_cells(exp: Any, store: Store, device: str = "cpu") -> list[Cell]:
    """Every cell of the expansion known from `store`: the grid cells and, per study, the
    trials asked so far, its final cells and its baselines (for the report)."""
    from regbench import devices

    out = {c.cell_id: c for c in devices.on(exp.cells, device)}
    for p in plans(exp.studies, store, device):
        out.update((c.cell_id, c) for c in p.known())
    return list(out.values())


def _merge(total: RunSummary, part: RunSummary) -> None:
    total.total += part.total
    total.already += part.already
    for k, v in part.counts.items():
        total.counts[k] += v
    total.failures += part.failures
    total.elsewhere += part.elsewhere
    total.taken_over += part.taken_over
    total.twice += part.twice
    total.stored_failed += part.stored_failed
    total.interrupted = part.interrupted


def _round_line(n: int, ps: list[Plan], todo: list[Cell]) -> str:
    roles: dict[str, int] = {}
    for c in todo:
        role = dict(c.tune).get("role", "grid" if not c.tune else "?")
        roles[role] = roles.get(role, 0) + 1
    done = sum(p.done for p in ps)
    told = sum(not p.done and len(p.trials) == p.study.config.trials
               and all(t.complete for t in p.trials) for p in ps)
    what = ", ".join(f"{v} {k}" for k, v in sorted(roles.items()))
    return (f"tuning: round {n}: {len(todo)} cells ({what}); of {len(ps)} studies "
            f"{len(ps) - done - told} in their trials, {told} at their final cells, "
            f"{done} done")


def run_matrix(exp: Any, store: Store, executor: Any, device: str = "cpu", *,
               force: bool = False, progress: bool = True, retry_failed: bool = False,
               log: Callable[[str], None] | None = None) -> RunSummary:
    """Run the expansion's missing grid cells and its studies to the end, round by round;
    the summary of all rounds (an `Interrupted` carries it too)."""
    from regbench import devices

    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    if not exp.studies:
        return run_cells(devices.on(exp.cells, device), store, executor, force=force,
                         progress=progress, retry_failed=retry_failed)
    keeps = hasattr(executor, "keep_workers")
    if keeps:  # one pool of workers for every round, not a fresh one (and torch import) each
        executor.keep_workers = True
    try:
        return _rounds(exp, store, executor, device, force, progress, retry_failed, log)
    finally:
        if keeps:
            executor.keep_workers = False
            executor.close()


def _rounds(exp: Any, store: Store, executor: Any, device: str, force: bool, progress: bool,
            retry_failed: bool, log: Callable[[str], None]) -> RunSummary:
    from regbench import devices

    summary = RunSummary()
    ran: set[str] = set()
    grid = devices.on(exp.cells, device)
    n = 0
    while True:
        ps = plans(exp.studies, store, device)
        cells = {c.cell_id: c for c in (grid if n == 0 else [])}
        for p in ps:
            cells.update((c.cell_id, c) for c in p.known())
        todo = [c for cid, c in cells.items() if cid not in ran]
        if not todo:
            break
        n += 1
        log(_round_line(n, ps, todo))
        try:
            part = run_cells(todo, store, executor, force=force, progress=progress,
                             retry_failed=retry_failed)
        except Interrupted as exc:
            if exc.summary is not None:
                _merge(summary, exc.summary)
            exc.summary = summary
            raise
        _merge(summary, part)
        ran.update(c.cell_id for c in todo)
    return summary
