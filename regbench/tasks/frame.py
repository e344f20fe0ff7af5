"""A table in memory as a task's data: the code the `table` and `openml` tasks share.

From a DataFrame and its target column: the kind (classification or regression), the
data checks run before any cell (numeric features and a regression target finite and
small enough to standardize), and the seeded 60/20/20 split with preprocessing fitted on
the train rows only. Numeric columns get missing values replaced by the train median;
every other column (strings, categories) is categorical: missing values become the train
split's most frequent value, then the column is one-hot encoded over the categories seen
in train (a category seen only in validation or test encodes as all zeros). Rows whose
target is missing are dropped. `Task.load` then standardizes like every tabular task.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from regbench.errors import DataError
from regbench.tasks.base import Protocol, Task, column_problems, split

MAX_AUTO_CLASSES = 20  # auto: an integer-valued target with at most this many values is a class
MIN_ROWS = 5  # a train/validation/test split needs at least this many rows with a target


def is_numeric(col: pd.Series) -> bool:
    """Whether a column is numeric (booleans count as numbers)."""
    return pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)


def infer_kind(y: pd.Series) -> str:
    """auto: classification for a non-numeric/bool target or an integer-valued one with at
    most MAX_AUTO_CLASSES distinct values; regression otherwise."""
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return "classification"
    values = y.dropna().to_numpy(np.float64)
    if np.all(values == np.round(values)) and len(np.unique(values)) <= MAX_AUTO_CLASSES:
        return "classification"
    return "regression"


def fit_features(train: pd.DataFrame) -> list[tuple[str, str, Any]]:
    """The preprocessing fitted on the train rows: per column (name, kind, fill / categories)."""
    plan: list[tuple[str, str, Any]] = []
    for name in train.columns:
        col = train[name]
        if is_numeric(col):
            median = col.astype(np.float64).median()
            plan.append((name, "numeric", 0.0 if pd.isna(median) else float(median)))
        else:
            as_text = col.astype("string")
            mode = as_text.mode(dropna=True)
            fill = mode.iloc[0] if len(mode) else "missing"
            cats = sorted(as_text.fillna(fill).unique())
            plan.append((name, "categorical", (fill, cats)))
    return plan


def apply_features(df: pd.DataFrame, plan: list[tuple[str, str, Any]]) -> np.ndarray:
    """The feature matrix of `df` under a fitted plan (float64)."""
    blocks = []
    for name, kind, fitted in plan:
        col = df[name]
        if kind == "numeric":
            blocks.append(col.astype(np.float64).fillna(fitted).to_numpy()[:, None])
        else:
            fill, cats = fitted
            values = col.astype("string").fillna(fill).to_numpy()
            blocks.append((values[:, None] == np.asarray(cats, dtype=object)[None, :])
                          .astype(np.float64))
    return np.concatenate(blocks, axis=1)


def frame_problems(df: pd.DataFrame, where: str, target: str, drop: tuple[str, ...],
                   kind: str, raw_x: str | None, raw_y: str | None) -> list[str]:
    """What is wrong with the table's values, one line each naming `where` (the file or
    dataset), the column and the row: numeric features and a regression target must be
    finite (a missing value is imputed, or its row dropped, but inf is refused) and small
    enough to standardize (or, fed raw as `raw_x` / `raw_y` say, to fit float32)."""
    problems = []
    for name in df.columns:
        if name != target and name not in drop and is_numeric(df[name]):
            problems += column_problems(where, str(name), df[name].to_numpy(np.float64),
                                        missing_ok=True, raw=raw_x)
    y = df[target]
    if kind == "regression":
        if not is_numeric(y):
            problems.append(f"{where}: column {target!r}: kind='regression' needs a numeric "
                            f"target; found {y.dtype}")
        else:
            problems += column_problems(where, target, y.to_numpy(np.float64), missing_ok=True,
                                        raw=raw_y)
    if int(y.notna().sum()) < MIN_ROWS:
        problems.append(f"{where}: column {target!r}: {int(y.notna().sum())} rows with a "
                        f"target; need at least {MIN_ROWS} for a train/validation/test split")
    return problems


def frame_arrays(df: pd.DataFrame, where: str, target: str, drop: set[str] | tuple[str, ...],
                 kind: str, seed: int, scope: str, n_train: int | None
                 ) -> tuple[np.ndarray, ...]:
    """Raw x/y for train, val and test: rows without a target dropped, the seeded split
    (stratified when every class has 3 rows), features fitted on the train rows. `scope`
    names the split's seed stream, so two tasks never share a split by accident."""
    df = df[df[target].notna()].reset_index(drop=True)
    if len(df) < MIN_ROWS:
        raise DataError(f"{where}: {len(df)} rows with a target; need at least {MIN_ROWS} "
                        "for a train/validation/test split")
    features = df[[c for c in df.columns if c != target and c not in drop]]
    if kind == "classification":
        labels = df[target].astype("string") if not is_numeric(df[target]) else df[target]
        classes = sorted(labels.unique())
        y = labels.map({c: i for i, c in enumerate(classes)}).to_numpy(np.int64)
        counts = np.bincount(y)
        stratify = len(classes) > 1 and counts.min() >= 3
    else:
        if not is_numeric(df[target]):
            raise DataError(f"{where}: kind='regression' needs a numeric target; "
                            f"{target!r} is {df[target].dtype}")
        y = df[target].to_numpy(np.float64)
        stratify = False
    itr, ytr, iva, yva, ite, yte = split(np.arange(len(df)), y, seed, scope, stratify=stratify,
                                         n_train=n_train)
    plan = fit_features(features.iloc[itr])
    return (apply_features(features.iloc[itr], plan), ytr,
            apply_features(features.iloc[iva], plan), yva,
            apply_features(features.iloc[ite], plan), yte)


class FrameTask(Task):
    """Base of the tasks made from a data frame (`table`, `openml`): vector inputs, the
    same training protocol, and a kind settled per spec (`bind` returns `type(self)(kind)`)."""

    kind = "auto"  # until bound to a spec (see bind)
    metric = "auto"
    inputs = frozenset({"vector"})
    protocol = Protocol(epochs=30, batch_size=128, optimizer="adam", lr=1e-3)

    def __init__(self, kind: str | None = None):
        if kind is not None:
            self.kind = kind
            self.metric = "accuracy" if kind == "classification" else "rmse"
