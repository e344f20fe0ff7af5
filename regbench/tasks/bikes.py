"""Seed 003's case study: hourly rental-bike counts from the UCI bike-sharing CSV."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from regbench.errors import DataError
from regbench.registry import register_task
from regbench.specs import TaskSpec
from regbench.tasks.base import N_TRAIN, Protocol, Task, column_problems, raw_mode, split
from regbench.tasks.datadir import DATA_DIR_ENV, data_root

FILENAME = "hour.csv"
CATEGORICAL = ["season", "mnth", "hr", "weekday", "weathersit"]
NUMERIC = ["yr", "holiday", "workingday", "temp", "atemp", "hum", "windspeed"]
TARGET = "cnt"
__all__ = ["DATA_DIR_ENV", "find_csv", "load_frame"]


def find_csv(data_dir: Path | None) -> Path:
    """Locate hour.csv in `data_dir` (or $REGBENCH_DATA_DIR), also one folder down."""
    root = data_root(data_dir, "bikes", f"the UCI Bike Sharing file {FILENAME}")
    for candidate in (root / FILENAME, *sorted(root.glob(f"*/{FILENAME}"))):
        if candidate.is_file():
            return candidate
    raise DataError(f"task 'bikes': no {FILENAME} in {root} (nor one folder below it)")


def load_frame(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features (one-hot calendar/weather fields + numeric columns) and the hourly count."""
    df = pd.read_csv(path)
    missing = [c for c in CATEGORICAL + NUMERIC + [TARGET] if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected the UCI hour.csv layout")
    if df.empty:
        raise DataError(f"{path}: no rows")
    onehot = pd.get_dummies(df[CATEGORICAL].astype("category"), dtype=np.float64)
    x = np.concatenate([df[NUMERIC].to_numpy(np.float64), onehot.to_numpy()], axis=1)
    return x, df[TARGET].to_numpy(np.float64)


@functools.lru_cache(maxsize=4)
def _problems(path: str, mtime_ns: int, size: int, raw_x: str | None,
              raw_y: str | None) -> tuple[str, ...]:
    """Bikes.check_data for one file version (cached: a matrix checks the file once)."""
    try:
        df = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - any parser failure is a bad file
        return (f"{path}: cannot be read as CSV ({type(exc).__name__}: {exc})",)
    missing = [c for c in CATEGORICAL + NUMERIC + [TARGET] if c not in df.columns]
    if missing:
        return (f"{path}: missing column(s) {missing}; expected the UCI hour.csv layout",)
    if df.empty:
        return (f"{path}: no rows",)
    problems = []
    for name in NUMERIC + [TARGET]:
        col = df[name]
        numbers = pd.to_numeric(col, errors="coerce")
        text = np.flatnonzero(numbers.isna() & col.notna())
        if len(text):
            more = f" and {len(text) - 1} more row(s)" if len(text) > 1 else ""
            problems.append(f"{path}: column {name!r}: {col.iloc[text[0]]!r} at row "
                            f"{text[0] + 1}{more} is not a number")
            continue
        problems += column_problems(path, name, numbers.to_numpy(np.float64),
                                    missing_ok=False, raw=raw_y if name == TARGET else raw_x)
    return tuple(problems)


@register_task("bikes")
class Bikes(Task):
    """UCI hourly bike rentals (seed 003 case study) from --data-dir/hour.csv; predict cnt."""

    kind = "regression"
    metric = "rmse"
    params = {"n_train": N_TRAIN}
    protocol = Protocol(epochs=20, batch_size=256, optimizer="adam", lr=1e-3)

    def check_available(self, data_dir: Path | None) -> None:
        find_csv(data_dir)

    def check_data(self, spec: TaskSpec, data_dir: Path | None,
                   standardize: frozenset[str] = frozenset({"xy"})) -> list[str]:
        """The layout, and every numeric column and the count numeric and finite (no missing
        values: this task imputes nothing) and small enough to standardize."""
        path = find_csv(data_dir)
        st = path.stat()
        return list(_problems(str(path), st.st_mtime_ns, st.st_size,
                              raw_mode(standardize, target=False),
                              raw_mode(standardize, target=True)))

    def arrays(self, spec: TaskSpec, seed: int, data_dir: Path | None):
        x, y = load_frame(find_csv(data_dir))
        n_train = spec.get("n_train")
        return split(x, y, seed, spec.name, stratify=False,
                     n_train=None if n_train is None else int(n_train))
