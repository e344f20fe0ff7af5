"""Seed 004's periodic signal: a sum of lagged sines with Gaussian-random coefficients."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from regbench import seeding
from regbench.params import Param
from regbench.registry import register_task
from regbench.specs import TaskSpec
from regbench.tasks.base import Protocol, Task, split


@register_task("periodic")
class Periodic(Task):
    """Sum of sines a_k sin(b_k x + c_k) with Gaussian a, b, c plus white noise (seed 004).

    x is uniform on [0, 20]; a ~ N(0, 1), b ~ N(1, 0.25^2), c ~ N(0, pi^2) for k = 1..terms,
    so similar waves are added with random lags; noise ~ N(0, noise^2). 60/20/20 split.
    The function itself is drawn once per seed from the `data` stream.
    """

    kind = "regression"
    metric = "rmse"
    one_dim = True
    params = {"n": Param(1000, int, lo=10, hi=10_000_000), "terms": Param(4, int, lo=1, hi=1000),
              "noise": Param(0.1, float, lo=0.0)}
    protocol = Protocol(epochs=60, batch_size=64, optimizer="adam", lr=1e-3)

    def arrays(self, spec: TaskSpec, seed: int, data_dir: Path | None):
        n, terms = int(self.param(spec, "n")), int(self.param(spec, "terms"))
        rng = seeding.numpy_rng("data", seed, spec.label())
        a = rng.normal(0.0, 1.0, terms)
        b = rng.normal(1.0, 0.25, terms)
        c = rng.normal(0.0, np.pi, terms)
        x = np.sort(rng.uniform(0.0, 20.0, n))
        clean = (a[None, :] * np.sin(b[None, :] * x[:, None] + c[None, :])).sum(axis=1)
        y = clean + float(self.param(spec, "noise")) * rng.standard_normal(n)
        xtr, ytr, xva, yva, xte, yte = split(x[:, None], y, seed, spec.label(), stratify=False)
        order = np.argsort(xte[:, 0])  # a sorted test set plots as a curve
        return xtr, ytr, xva, yva, xte[order], yte[order]
