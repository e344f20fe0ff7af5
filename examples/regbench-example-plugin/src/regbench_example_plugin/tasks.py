"""Two interleaved noisy spirals in the plane (a classic toy classification task)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from regbench import Task, register_task, seeding
from regbench.interface import Protocol
from regbench.params import Param
from regbench.specs import TaskSpec


@register_task("spirals")
class Spirals(Task):
    """Two interleaved spirals, `n` points, Gaussian noise; 60/20/20 split from the seed."""

    version = "1"
    kind = "classification"
    metric = "accuracy"
    n_classes = 2
    params = {"n": Param(600, int, lo=30, hi=1_000_000), "noise": Param(0.3, float, lo=0.0),
              "turns": Param(1.5, float, lo=0.25, hi=10.0)}
    protocol = Protocol(epochs=40, batch_size=64, optimizer="adam", lr=1e-2)

    def arrays(self, spec: TaskSpec, seed: int, data_dir: Path | None):
        n, noise = int(self.param(spec, "n")), float(self.param(spec, "noise"))
        rng = seeding.numpy_rng("data", seed, spec.label())
        y = rng.integers(0, 2, n)
        t = rng.uniform(0.25, 1.0, n) * float(self.param(spec, "turns")) * 2 * np.pi
        x = np.stack([t * np.cos(t + np.pi * y), t * np.sin(t + np.pi * y)], axis=1)
        x = x + noise * rng.standard_normal(x.shape)
        order = rng.permutation(n)
        x, y = x[order], y[order]
        a, b = int(0.6 * n), int(0.8 * n)
        return x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:]
