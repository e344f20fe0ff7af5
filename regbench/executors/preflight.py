"""Checks before any cell runs: the tasks' data and the memory the cells need, so a run that
cannot finish is refused before anything is trained or written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from regbench.errors import DataError
from regbench.registry import TASKS
from regbench.specs import Cell


def preflight(cells: list[Cell], data_dir: str | None) -> None:
    """Fail before running anything if a task's data is missing or broken (a DataError with
    one line per problem found, naming the file, the column or record and what was found),
    or the split cache's $REGBENCH_DATA_CACHE_MB is not a number, or a cell needs more
    memory than is available (executors/memory.py)."""
    from regbench.data_cache import data_cache_bytes
    from regbench.executors.memory import check_memory
    from regbench.task_checks import plugin_task_problems

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
    if not problems:  # a plugin task's arrays, each seed once (the built-ins': check_data)
        problems = plugin_task_problems(cells, data_dir)
    if len(problems) == 1:
        raise DataError(f"{problems[0]}; nothing was run")
    if problems:
        raise DataError(f"{len(problems)} problems in the data; nothing was run:\n"
                        + "\n".join(f"  {line}" for line in problems))
    check_memory(cells, data_dir)


def needs_cpu_kernels(cell: Cell) -> bool:
    """True when the cell trains with regbench's C++ kernels: a fused backend on the CPU,
    anywhere in its stack (base recipe, entry, `with`)."""
    return cell.device == "cpu" and any(dict(s.params).get("backend") == "fused"
                                        for s in cell.stack())
