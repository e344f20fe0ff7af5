"""Seed 000's overfitting example: a noisy Gaussian bump sampled at 21 points."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from regbench import seeding
from regbench.params import Param
from regbench.registry import register_task
from regbench.specs import TaskSpec
from regbench.tasks.base import Protocol, Task


def bump(x: np.ndarray, offset: float = 0.5, spread: float = 0.1, magnitude: float = 1.0):
    """The talk's `sample_curve`: magnitude * 2 ** (-(x - offset)**2 / spread)."""
    return magnitude * 2.0 ** (-((x - offset) ** 2) / spread)


@register_task("curve")
class Curve(Task):
    """Noisy Gaussian bump (seed 000): 21 train points on [0, 1], dense 201-point test grid.

    Train x = 0.05 * i (i = 0..20), validation at the 20 midpoints, test on a 201-point
    grid; targets carry N(0, noise^2) noise (noise = 0.05 as in the talk), fresh per split.
    """

    kind = "regression"
    metric = "rmse"
    one_dim = True
    params = {"noise": Param(0.05, float, lo=0.0)}
    protocol = Protocol(epochs=300, batch_size=0, optimizer="adam", lr=1e-2)

    def arrays(self, spec: TaskSpec, seed: int, data_dir: Path | None):
        noise = float(self.param(spec, "noise"))
        rng = seeding.numpy_rng("data", seed, spec.label())
        xtr = 0.05 * np.arange(21)
        xva = 0.025 + 0.05 * np.arange(20)
        xte = np.linspace(0.0, 1.0, 201)
        ys = [bump(x) + noise * rng.standard_normal(len(x)) for x in (xtr, xva, xte)]
        return xtr[:, None], ys[0], xva[:, None], ys[1], xte[:, None], ys[2]
