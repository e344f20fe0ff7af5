"""What a task gives the trainer: standardized tensors, a metric and a training protocol."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from regbench import seeding
from regbench.errors import DataError, RegbenchError
from regbench.interface import (  # noqa: F401  (re-exported)
    PROTOCOL_FIELDS,
    STANDARDIZE,
    Protocol,
    TaskData,
)
from regbench.params import Param, check_values, default
from regbench.specs import TaskSpec
from regbench.task_checks import array_problems

# parameters many tasks share
N_TRAIN = Param(None, int, lo=1, optional=True, doc="cap on the train split")
LABEL_NOISE = Param(0.0, float, lo=0.0, hi=1.0, doc="fraction of train labels made noisy")
NOISE_KINDS = ("flip", "uniform")
LABEL_NOISE_KIND = Param(
    "flip", choices=NOISE_KINDS, omit_default=True,
    doc="flip: a noisy label moves to a different class; uniform: it is resampled over all "
        "classes (may keep its class; label_noise = 1 is then random labels)")
F32_MAX = float(np.finfo(np.float32).max)  # larger values become inf in a float32 tensor

NORMALIZE_CHUNK = 4096  # rows normalized at a time (bounds the float64 temporaries)

# metric name -> True when higher is better
METRICS: dict[str, bool] = {"accuracy": True, "rmse": False}


class Task:
    """Base of every task: subclasses set the class attributes and implement `arrays`."""

    name: ClassVar[str]
    kind: ClassVar[str] = "regression"
    metric: ClassVar[str] = "rmse"
    inputs: ClassVar[frozenset[str]] = frozenset({"vector"})
    one_dim: ClassVar[bool] = False  # 1-D input: the seed-004 prediction figures apply
    n_classes: ClassVar[int | None] = None  # declared class count (else the largest label + 1)
    params: ClassVar[dict[str, Any]] = {}
    protocol: ClassVar[Protocol]

    def check(self, spec: TaskSpec) -> None:
        """Raise a RegbenchError naming any unknown parameter."""
        check_values("task", spec.name, dict(spec.params), self.params)

    def bind(self, spec: TaskSpec) -> Task:
        """This task for `spec`: a task whose kind depends on its parameters (`table`)
        returns an instance with it settled; the others return themselves."""
        return self

    def has_validation(self, spec: TaskSpec) -> bool:
        """Whether `spec`'s splits include a validation split (a `val_fraction` parameter
        of 0 means none); early stopping is skipped on a task without one."""
        if "val_fraction" in self.params:
            return float(self.param(spec, "val_fraction")) > 0
        return True

    def check_available(self, data_dir: Path | None) -> None:
        """Raise a DataError if the task's data cannot be found (user-supplied files)."""

    def check_data(self, spec: TaskSpec, data_dir: Path | None,
                   standardize: frozenset[str] = frozenset({"xy"})) -> list[str]:
        """Problems in the task's data, found before any cell runs: one line each, naming
        the file, the column or record and what was found (empty when the data is sound).
        `standardize` holds the modes the matrix's cells use. A DataError when the data
        cannot be found. The default checks only that it can be found."""
        self.check_available(data_dir)
        return []

    def source(self, spec: TaskSpec, data_dir: Path | None) -> dict[str, Any] | None:
        """Where the data of `spec` comes from, stored with each cell (its `data_source`
        artifact) and listed in the report: e.g. a public dataset's ids, version, checksum
        and licence. None (the default): nothing beyond the task's own name and parameters."""
        return None

    def arrays(
        self, spec: TaskSpec, seed: int, data_dir: Path | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Raw (unstandardized) x/y for train, val and test."""
        raise NotImplementedError

    def param(self, spec: TaskSpec, key: str) -> Any:
        return spec.get(key, default(self.params[key]))

    def load(self, spec: TaskSpec, seed: int, data_dir: Path | None = None,
             standardize: str = "xy") -> TaskData:
        """Build the seeded split, standardized on the train split as `standardize` says.

        `standardize`: "xy" (inputs and regression targets), "x" (inputs only) or "none"
        (raw values, as a source document's own code feeds them). Inputs are standardized
        per feature for tabular rows and per channel (one mean/std over all train pixels
        of a channel) when the task has a `channel_shape`: the image convention, which keeps
        rarely-inked pixels from being blown up by a tiny per-pixel std.
        """
        if standardize not in STANDARDIZE:
            raise RegbenchError(f"standardize={standardize!r} is not allowed; "
                                f"allowed: one of {', '.join(map(repr, STANDARDIZE))}")
        self.check(spec)
        self.check_available(data_dir)
        arrays = self.arrays(spec, seed, data_dir)
        problems = array_problems(spec.label(), self.kind, self.n_classes, arrays)
        if problems:
            raise DataError("; ".join(problems))
        xtr, ytr, xva, yva, xte, yte = (np.asarray(a) for a in arrays)
        shape = self.channel_shape()
        n_features = int(np.prod(xtr.shape[1:]))
        if standardize == "none":
            center, scale = np.zeros(n_features), np.ones(n_features)
        elif shape is not None:
            per_channel = xtr.reshape(len(xtr), shape[0], -1)
            pixels = int(np.prod(shape[1:]))
            if np.issubdtype(xtr.dtype, np.integer):
                c_mean, c_std = _exact_channel_stats(per_channel)
            else:
                c_mean = per_channel.mean(axis=(0, 2))
                c_std = per_channel.std(axis=(0, 2))
            center = np.repeat(c_mean, pixels)
            scale = np.repeat(np.where(c_std > 0, c_std, 1.0), pixels)
        else:
            center = xtr.mean(axis=0)
            scale = xtr.std(axis=0)
            scale = np.where(scale > 0, scale, 1.0)
        if not (np.all(np.isfinite(center)) and np.all(np.isfinite(scale))):
            raise DataError(f"task {spec.label()!r}: the train split's feature mean or "
                            "standard deviation is not finite (a non-finite or huge value)")

        def fx(a: np.ndarray) -> torch.Tensor:
            # in row chunks: the float64 temporaries stay small for 50 000 x 3072 images,
            # and each element is computed exactly as in one pass
            out = np.empty((len(a), n_features), dtype=np.float32)
            flat = a.reshape(len(a), n_features)
            for i in range(0, len(a), NORMALIZE_CHUNK):
                out[i:i + NORMALIZE_CHUNK] = (flat[i:i + NORMALIZE_CHUNK] - center) / scale
            return torch.from_numpy(out)

        if self.kind == "classification":
            n_out = int(max(max(a.max() for a in (ytr, yva, yte) if len(a)),  # val may be empty
                            (self.n_classes or 0) - 1) + 1)
            ytr = self._noisy_labels(spec, seed, ytr, n_out)

            def fy(a: np.ndarray) -> torch.Tensor:
                return torch.from_numpy(a.astype(np.int64))

            y_scale = 1.0
        else:
            n_out = 1
            if standardize == "xy":
                with np.errstate(over="ignore", invalid="ignore"):
                    y_mean, y_scale = float(ytr.mean()), float(ytr.std()) or 1.0
                if not (math.isfinite(y_mean) and math.isfinite(y_scale)):
                    raise DataError(f"task {spec.label()!r}: the train split's target mean or "
                                    "standard deviation is not finite (a non-finite or huge "
                                    "value)")
            else:
                y_mean, y_scale = 0.0, 1.0

            def fy(a: np.ndarray) -> torch.Tensor:
                return torch.from_numpy(((a - y_mean) / y_scale).astype(np.float32)).view(-1, 1)

        return TaskData(
            fx(xtr), fy(ytr), fx(xva), fy(yva), fx(xte), fy(yte),
            kind=self.kind, n_out=n_out, metric=self.metric,
            image_shape=self.image_shape(), channel_shape=shape, y_scale=y_scale,
            x_center=center, x_scale=scale,
        )

    def channel_shape(self) -> tuple[int, ...] | None:
        """(C, ...) of one sample when rows are flattened channel-first images or signals
        (inputs are then normalized per channel); None for tabular rows."""
        return self.image_shape()

    def image_shape(self) -> tuple[int, ...] | None:
        return None

    def _noisy_labels(self, spec: TaskSpec, seed: int, y: np.ndarray, n_out: int) -> np.ndarray:
        """Make a `label_noise` fraction of train labels noisy, as `label_noise_kind` says:
        flip (to a different random class) or uniform (resampled over all classes)."""
        frac = float(spec.get("label_noise", 0.0))
        if not 0.0 <= frac <= 1.0:
            raise RegbenchError(f"label_noise must be in [0, 1], got {frac}")
        if frac == 0.0:
            return y
        kind = self.param(spec, "label_noise_kind") if "label_noise_kind" in self.params \
            else "flip"
        return noisy_labels(y, frac, kind, n_out,
                            seeding.numpy_rng("data", seed, spec.label(), "label_noise"))


def noisy_labels(y: np.ndarray, frac: float, kind: str, n_classes: int,
                 rng: np.random.Generator) -> np.ndarray:
    """`y` with round(frac * len(y)) labels, drawn without replacement, made noisy: `flip`
    adds 1..n_classes-1 (mod n_classes), so the label always changes; `uniform` draws a
    class in 0..n_classes-1, so a noisy label keeps its class with probability 1/n_classes
    and frac = 1 gives labels independent of the inputs."""
    if kind not in NOISE_KINDS:
        raise RegbenchError(f"label_noise_kind={kind!r} is not allowed; "
                            f"allowed: one of {', '.join(map(repr, NOISE_KINDS))}")
    y = y.copy()
    idx = rng.choice(len(y), size=int(round(frac * len(y))), replace=False)
    if kind == "flip":
        y[idx] = (y[idx] + rng.integers(1, n_classes, size=len(idx))) % n_classes
    else:
        y[idx] = rng.integers(0, n_classes, size=len(idx))
    return y


def column_problems(where: str, column: str, values: np.ndarray, missing_ok: bool,
                    raw: str | None = None) -> list[str]:
    """What is wrong with one numeric column, as lines naming `where` (the file), the column
    and the first row (counted from 1 after the header): a non-finite value (NaN too, unless
    `missing_ok`: a missing value that is imputed or dropped), a spread too large to
    standardize in float64, and with `raw` (the standardize mode that feeds the column
    unstandardized) a value beyond float32."""
    v = np.asarray(values, dtype=np.float64)
    bad = np.isinf(v) if missing_ok else ~np.isfinite(v)
    if bad.any():
        rows = np.flatnonzero(bad)
        more = f" and {len(rows) - 1} more row(s)" if len(rows) > 1 else ""
        return [f"{where}: column {column!r}: {v[rows[0]]} at row {rows[0] + 1}{more}; "
                "values must be finite" + (" (leave a missing value empty)" if missing_ok
                                           else "")]
    present = np.flatnonzero(np.isfinite(v))
    if not len(present):
        return []
    with np.errstate(over="ignore", invalid="ignore"):
        spread = float(v[present].std())
    big = int(present[np.argmax(np.abs(v[present]))])
    if not math.isfinite(spread):
        return [f"{where}: column {column!r}: {v[big]:.4g} at row {big + 1}: the values are "
                "too large to standardize (their standard deviation overflows float64); "
                "rescale the column"]
    if raw is not None and abs(v[big]) > F32_MAX:
        return [f"{where}: column {column!r}: {v[big]:.4g} at row {big + 1} does not fit "
                f"float32 (largest {F32_MAX:.4g}) and standardize={raw!r} feeds it "
                "unstandardized; rescale the column"]
    return []


def raw_mode(standardize: frozenset[str], target: bool) -> str | None:
    """The first mode in `standardize` that leaves features (or with `target`, regression
    targets) unstandardized, or None."""
    raw = ("none", "x") if target else ("none",)
    return next((m for m in sorted(standardize) if m in raw), None)


def _exact_channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of integer pixels (N, C, P) from exact integer sums.

    No float64 copy of the images (1.2 GB for CIFAR-10's train split) and no dependence
    on summation order: sum and sum of squares are exact integers.
    """
    n = x.shape[0] * x.shape[2]
    lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
    means, stds = [], []
    for c in range(x.shape[1]):
        counts = np.zeros(hi - lo + 1, dtype=np.int64)
        for i in range(0, x.shape[0], NORMALIZE_CHUNK):
            chunk = x[i:i + NORMALIZE_CHUNK, c, :].ravel().astype(np.int64) - lo
            counts += np.bincount(chunk, minlength=len(counts))
        values = [lo + v for v in range(len(counts))]
        total = sum(int(k) * v for k, v in zip(counts, values))
        squares = sum(int(k) * v * v for k, v in zip(counts, values))
        means.append(total / n)
        stds.append(math.sqrt(max(n * squares - total * total, 0)) / n)
    return np.array(means), np.array(stds)


def split(
    x: np.ndarray, y: np.ndarray, seed: int, scope: str, stratify: bool, n_train: int | None = None
) -> tuple[np.ndarray, ...]:
    """A seeded 60/20/20 train/val/test split (stratified for classification).

    `n_train` caps the training split (keeping val and test as they are), for
    sample-size sweeps such as double descent.
    """
    # imported on use: at import time its ~1 s would slow every command
    from sklearn.model_selection import train_test_split

    rs = seeding.derive("data", seed, scope, "split") % 2**32
    strat = y if stratify else None
    xtr, xrest, ytr, yrest = train_test_split(x, y, test_size=0.4, random_state=rs, stratify=strat)
    xva, xte, yva, yte = train_test_split(
        xrest, yrest, test_size=0.5, random_state=rs, stratify=yrest if stratify else None
    )
    if n_train is not None:
        if not 0 < n_train <= len(xtr):
            raise RegbenchError(f"n_train must be in [1, {len(xtr)}], got {n_train}")
        xtr, ytr = xtr[:n_train], ytr[:n_train]
    return xtr, ytr, xva, yva, xte, yte
