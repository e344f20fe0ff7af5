"""What a task gives the trainer: standardized tensors, a metric and a training protocol."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from regbench import seeding
from regbench.errors import RegbenchError, check_params
from regbench.specs import Params, TaskSpec

# metric name -> True when higher is better
METRICS: dict[str, bool] = {"accuracy": True, "rmse": False}


@dataclass(frozen=True)
class Protocol:
    """How a task is trained: the same for every architecture and regularizer."""

    epochs: int
    batch_size: int  # 0 means full batch
    optimizer: str  # key of regbench.optim.OPTIMIZERS
    lr: float
    momentum: float = 0.0
    adam_lr: float = 1e-3  # used when a regularizer swaps in an Adam-family optimizer

    def override(self, params: Params) -> Protocol:
        valid = set(self.__dataclass_fields__)
        bad = [k for k, _ in params if k not in valid]
        if bad:
            raise RegbenchError(
                f"unknown protocol field(s) {bad}; valid choices: {', '.join(sorted(valid))}"
            )
        return replace(self, **dict(params))


@dataclass
class TaskData:
    """Tensors of one seeded split. Features are standardized on the train split only."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    kind: str  # "regression" | "classification"
    n_out: int
    metric: str
    image_shape: tuple[int, ...] | None = None  # (C, H, W) when the rows are images
    y_scale: float = 1.0  # regression targets were divided by this (to report rmse in units)
    x_center: np.ndarray | None = None  # per-feature train mean / std, to plot raw x
    x_scale: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


class Task:
    """Base of every task: subclasses set the class attributes and implement `arrays`."""

    name: ClassVar[str]
    kind: ClassVar[str] = "regression"
    metric: ClassVar[str] = "rmse"
    inputs: ClassVar[frozenset[str]] = frozenset({"vector"})
    one_dim: ClassVar[bool] = False  # 1-D input: the seed-004 prediction figures apply
    params: ClassVar[dict[str, Any]] = {}
    protocol: ClassVar[Protocol]

    def check(self, spec: TaskSpec) -> None:
        """Raise a RegbenchError naming any unknown parameter."""
        check_params("task", spec.name, dict(spec.params), self.params)

    def check_available(self, data_dir: Path | None) -> None:
        """Raise a DataError if the task's data cannot be found (user-supplied files)."""

    def arrays(
        self, spec: TaskSpec, seed: int, data_dir: Path | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Raw (unstandardized) x/y for train, val and test."""
        raise NotImplementedError

    def param(self, spec: TaskSpec, key: str) -> Any:
        return spec.get(key, self.params[key])

    def load(self, spec: TaskSpec, seed: int, data_dir: Path | None = None) -> TaskData:
        """Build the seeded, standardized split."""
        self.check(spec)
        self.check_available(data_dir)
        xtr, ytr, xva, yva, xte, yte = self.arrays(spec, seed, data_dir)
        center = xtr.mean(axis=0)
        scale = xtr.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)

        def fx(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(((a - center) / scale).astype(np.float32))

        if self.kind == "classification":
            n_out = int(max(ytr.max(), yva.max(), yte.max()) + 1)
            ytr = self._noisy_labels(spec, seed, ytr, n_out)

            def fy(a: np.ndarray) -> torch.Tensor:
                return torch.from_numpy(a.astype(np.int64))

            y_scale = 1.0
        else:
            n_out = 1
            y_mean = float(ytr.mean())
            y_scale = float(ytr.std()) or 1.0

            def fy(a: np.ndarray) -> torch.Tensor:
                return torch.from_numpy(((a - y_mean) / y_scale).astype(np.float32)).view(-1, 1)

        return TaskData(
            fx(xtr), fy(ytr), fx(xva), fy(yva), fx(xte), fy(yte),
            kind=self.kind, n_out=n_out, metric=self.metric,
            image_shape=self.image_shape(), y_scale=y_scale, x_center=center, x_scale=scale,
        )

    def image_shape(self) -> tuple[int, ...] | None:
        return None

    def _noisy_labels(self, spec: TaskSpec, seed: int, y: np.ndarray, n_out: int) -> np.ndarray:
        """Replace a `label_noise` fraction of train labels by a different random class."""
        frac = float(spec.get("label_noise", 0.0))
        if not 0.0 <= frac <= 1.0:
            raise RegbenchError(f"label_noise must be in [0, 1], got {frac}")
        if frac == 0.0:
            return y
        rng = seeding.numpy_rng("data", seed, spec.label(), "label_noise")
        y = y.copy()
        idx = rng.choice(len(y), size=int(round(frac * len(y))), replace=False)
        y[idx] = (y[idx] + rng.integers(1, n_out, size=len(idx))) % n_out
        return y


def split(
    x: np.ndarray, y: np.ndarray, seed: int, scope: str, stratify: bool, n_train: int | None = None
) -> tuple[np.ndarray, ...]:
    """A seeded 60/20/20 train/val/test split (stratified for classification).

    `n_train` caps the training split (keeping val and test as they are), for
    sample-size sweeps such as double descent.
    """
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
