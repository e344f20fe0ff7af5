"""The scikit-learn datasets that ship with the library (no downloads at run time)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from regbench.registry import register_task
from regbench.specs import TaskSpec
from regbench.tasks.base import LABEL_NOISE, LABEL_NOISE_KIND, N_TRAIN, Protocol, Task, split


@cache
def _sklearn(name: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled dataset `name` as float64 features and targets."""
    from sklearn import datasets  # lazy: see tasks/base.py

    bunch = getattr(datasets, f"load_{name}")()
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target)


class _SklearnTask(Task):
    dataset: str

    def arrays(self, spec: TaskSpec, seed: int, data_dir: Path | None):
        x, y = _sklearn(self.dataset)
        n_train = spec.get("n_train")
        return split(
            x, y, seed, spec.name, stratify=self.kind == "classification",
            n_train=None if n_train is None else int(n_train),
        )


@register_task("digits")
class Digits(_SklearnTask):
    """scikit-learn 8x8 digits, 10 classes: the MNIST stand-in of seed 002 (1797 images).

    Rows are 64-pixel vectors that image architectures view as 1x8x8. Options:
    `label_noise` (fraction of train labels flipped, seed 001 uses 0.15-0.2) and
    `n_train` (cap on the train split, for sample-size and double-descent sweeps).
    """

    dataset = "digits"
    kind = "classification"
    metric = "accuracy"
    inputs = frozenset({"vector", "image"})
    params = {"label_noise": LABEL_NOISE, "label_noise_kind": LABEL_NOISE_KIND, "n_train": N_TRAIN}
    protocol = Protocol(epochs=30, batch_size=64, optimizer="adam", lr=1e-3)

    def image_shape(self) -> tuple[int, ...]:
        return (1, 8, 8)


@register_task("breast_cancer")
class BreastCancer(_SklearnTask):
    """scikit-learn Wisconsin breast cancer: 569 samples, 30 features, binary."""

    dataset = "breast_cancer"
    kind = "classification"
    metric = "accuracy"
    params = {"label_noise": LABEL_NOISE, "label_noise_kind": LABEL_NOISE_KIND, "n_train": N_TRAIN}
    protocol = Protocol(epochs=40, batch_size=32, optimizer="adam", lr=1e-3)


@register_task("diabetes")
class Diabetes(_SklearnTask):
    """scikit-learn diabetes progression: 442 samples, 10 features, regression."""

    dataset = "diabetes"
    kind = "regression"
    metric = "rmse"
    params = {"n_train": N_TRAIN}
    protocol = Protocol(epochs=60, batch_size=32, optimizer="adam", lr=1e-3)
