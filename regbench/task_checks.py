"""What a task's arrays must be before they become a split, checked on every load (the
built-ins' and a plugin's alike): non-empty train and test splits, rows that match,
finite features and targets, and class labels that are integers in range. Each problem is
one line naming the task, the split and what was found."""

from __future__ import annotations

from typing import Any

import numpy as np

SPLITS = ("train", "val", "test")


def array_problems(task: str, kind: str, n_classes: int | None,
                   arrays: tuple[Any, ...]) -> list[str]:
    """Problems of (x_train, y_train, x_val, y_val, x_test, y_test) for a `kind` task."""
    out: list[str] = []
    if len(arrays) != 6:
        return [f"task {task!r}: arrays() returned {len(arrays)} arrays; expected 6 (x and y "
                "of train, val, test)"]
    for split, x, y in zip(SPLITS, arrays[0::2], arrays[1::2]):
        x, y = np.asarray(x), np.asarray(y)
        where = f"task {task!r}, {split} split"
        if len(x) != len(y):
            out.append(f"{where}: {len(x)} rows of x but {len(y)} of y")
            continue
        if len(x) == 0:
            if split != "val":
                out.append(f"{where}: no rows (only the validation split may be empty)")
            continue
        if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
            out.append(f"{where}: x is not all finite numbers "
                       f"({_count_bad(x)} non-finite or non-numeric)")
        if not np.issubdtype(y.dtype, np.number) or not np.all(np.isfinite(y)):
            out.append(f"{where}: y is not all finite numbers ({_count_bad(y)} bad)")
            continue
        if kind == "classification":
            fractional = y != np.round(y)
            if fractional.any():
                out.append(f"{where}: class labels must be integers; found "
                           f"{_first(y, fractional)}")
            elif y.min() < 0 or (n_classes is not None and y.max() >= n_classes):
                hi = f"{n_classes - 1}" if n_classes is not None else "any"
                out.append(f"{where}: class labels must lie in 0..{hi}; found "
                           f"{y.min():g}..{y.max():g}")
    return out


def _count_bad(a: np.ndarray) -> int:
    if not np.issubdtype(a.dtype, np.number):
        return int(a.size)
    return int((~np.isfinite(a)).sum())


def _first(a: np.ndarray, bad: np.ndarray) -> str:
    return f"{a[bad].flat[0]!r} ({int(bad.sum())} such)"


def plugin_task_problems(cells: list[Any], data_dir: str | None) -> list[str]:
    """The array problems of every plugin task's split that `cells` use (each seed once),
    found before any cell runs (a built-in task's data is checked by its own check_data);
    the splits land in the process's cache, where the first cells find them."""
    from regbench.data_cache import load_data
    from regbench.errors import DataError
    from regbench.registry import TASKS

    out: list[str] = []
    seen = set()
    for cell in cells:
        if TASKS.plugin(cell.task.name) is None:
            continue
        mode = dict(cell.protocol).get("standardize",
                                       TASKS.get(cell.task.name).protocol.standardize)
        key = (cell.task, cell.seed, mode)
        if key in seen:
            continue
        seen.add(key)
        try:
            load_data(cell.task, cell.seed, data_dir, mode)
        except DataError as exc:
            for line in str(exc).split("; "):
                if line not in out:
                    out.append(line)
        except Exception as exc:  # noqa: BLE001 - a plugin's own error, as one line
            first = (str(exc).strip().splitlines() or [""])[0]
            out.append(f"task {cell.task.label()!r} ({TASKS.origin(cell.task.name)}) failed "
                       f"to load seed {cell.seed}: {type(exc).__name__}: {first}")
    return out
