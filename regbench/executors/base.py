"""The part every executor shares: the executor registry, and `run_cells`, the driver loop.

The driver is the only writer to the store: executors hand back results as they
complete, and the driver commits each one at once in its own transaction. Cells are
leased before they run (leases.py), so drivers sharing a store share the work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass
class RunSummary:
    total: int = 0
    already: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {"ok": 0, "diverged": 0, "failed": 0})
    failures: list[str] = field(default_factory=list)
    elsewhere: int = 0  # cells another driver on the same store ran meanwhile
    taken_over: list[str] = field(default_factory=list)  # leases of dead drivers taken over
    twice: int = 0  # cells run here that another driver had committed meanwhile (not stored)

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
        return text


def preflight(cells: list[Cell], data_dir: str | None) -> None:
    """Fail before running anything if a task's data is missing or broken (a DataError with
    one line per problem found, naming the file, the column or record and what was found),
    or the split cache's $REGBENCH_DATA_CACHE_MB is not a number."""
    from regbench.train import data_cache_bytes

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
    """
    summary = RunSummary(total=len(cells))
    store.check_suite_versions({c.suite_version for c in cells})
    done = set() if force else store.done_ids(retry_failed)
    todo = [c for c in cells if c.cell_id not in done]
    summary.already = len(cells) - len(todo)
    if not todo:
        return summary
    preflight(todo, getattr(executor, "data_dir", None))
    if getattr(executor, "builds_here", False) and any(needs_cpu_kernels(c) for c in todo):
        # a fresh machine compiles the kernels once (~40 s): do it while other cells run
        # instead of in the first fused cell, with every other worker waiting on it
        from regbench.kernels._backend import build_in_background

        build_in_background()
    leases = Leases(store.path, lease_ttl, lease_poll, redo=force, retry_failed=retry_failed)
    bar = tqdm(total=len(todo), desc="cells", unit="cell", disable=not progress, smoothing=0.1)
    shown = 0  # cells done elsewhere already counted on the bar

    def show_elsewhere() -> None:
        nonlocal shown
        bar.update(leases.claims.elsewhere - shown)
        shown = leases.claims.elsewhere

    try:
        with leases:
            batch: Any = leases.claim_all(todo, store.con)
            while True:
                for result in executor.map(batch):
                    if not store.add(result, replace=force or retry_failed,
                                     lease=leases.driver):
                        summary.twice += 1  # only after taking over a paused, live driver
                    summary.counts[result.status] += 1
                    if result.status == "failed":
                        summary.failures.append(f"{result.cell.describe()}: "
                                                f"{(result.error or '').splitlines()[0]}")
                    gap = result.metrics.get("gap_metric")
                    bar.set_postfix_str(
                        f"last: {result.cell.task.name}/{result.cell.reg.name} {result.status}"
                        + (f" gap={gap:.4g}" if gap is not None else ""))
                    bar.update(1)
                    show_elsewhere()
                show_elsewhere()
                if leases.waiting:
                    bar.set_postfix_str(f"waiting for {leases.waiting} cell(s) other drivers "
                                        f"are running")
                batch = leases.wait(store.con)
                show_elsewhere()
                if not batch:
                    break
    finally:
        bar.close()
        summary.elsewhere = leases.claims.elsewhere
        summary.taken_over = list(leases.claims.taken_over)
    return summary
