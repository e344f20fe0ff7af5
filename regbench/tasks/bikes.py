"""Seed 003's case study: hourly rental-bike counts from the UCI bike-sharing CSV."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from regbench.errors import DataError
from regbench.registry import register_task
from regbench.specs import TaskSpec
from regbench.tasks.base import N_TRAIN, Protocol, Task, split

FILENAME = "hour.csv"
CATEGORICAL = ["season", "mnth", "hr", "weekday", "weathersit"]
NUMERIC = ["yr", "holiday", "workingday", "temp", "atemp", "hum", "windspeed"]
TARGET = "cnt"
DATA_DIR_ENV = "REGBENCH_DATA_DIR"


def find_csv(data_dir: Path | None) -> Path:
    """Locate hour.csv in `data_dir` (or $REGBENCH_DATA_DIR), also one folder down."""
    root = data_dir or (Path(os.environ[DATA_DIR_ENV]) if DATA_DIR_ENV in os.environ else None)
    if root is None:
        raise DataError(
            f"task 'bikes' needs the UCI Bike Sharing file {FILENAME}: pass --data-dir DIR "
            f"(or set {DATA_DIR_ENV}) pointing at the folder that holds it"
        )
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


@register_task("bikes")
class Bikes(Task):
    """UCI hourly bike rentals (seed 003 case study) from --data-dir/hour.csv; predict cnt."""

    kind = "regression"
    metric = "rmse"
    params = {"n_train": N_TRAIN}
    protocol = Protocol(epochs=20, batch_size=256, optimizer="adam", lr=1e-3)

    def check_available(self, data_dir: Path | None) -> None:
        find_csv(data_dir)

    def arrays(self, spec: TaskSpec, seed: int, data_dir: Path | None):
        x, y = load_frame(find_csv(data_dir))
        n_train = spec.get("n_train")
        return split(x, y, seed, spec.name, stratify=False,
                     n_train=None if n_train is None else int(n_train))
