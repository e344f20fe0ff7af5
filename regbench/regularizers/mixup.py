"""Mixup: convex combinations of example pairs and of their targets."""

from __future__ import annotations

import torch

from regbench.interface import Batch, Regularizer, TrainContext
from regbench.registry import register_regularizer
from regbench.specs import Cell, RegSpec
from regbench.tuning.space import LogUniform


@register_regularizer("mixup")
class Mixup(Regularizer):
    """Mixup (Zhang et al., ICLR 2018): x = lam x_i + (1 - lam) x_j, lam ~ Beta(alpha, alpha).

    One lam per minibatch and j a random permutation of the minibatch (the paper's
    implementation). Classification mixes the losses, lam CE(f(x), y_i) + (1 - lam)
    CE(f(x), y_j), which equals cross-entropy against the mixed one-hot target; regression
    mixes the targets. Inputs are mixed in normalized units, which is the same as mixing raw
    inputs (standardization is affine and the weights sum to 1). alpha = 0 does not mix.
    """

    strength_name = "alpha"
    strength_range = (0.0, 100.0)
    default_strengths = (0.2, 1.0)
    strength_space = LogUniform(0.05, 2.0)
    full_strengths = (0.1, 0.2, 0.4, 1.0, 2.0)

    def __init__(self, spec: RegSpec, cell: Cell):
        super().__init__(spec, cell)
        self.rng = self.numpy_rng("lam")
        self.perm_gen = self.generator("perm")

    def batch(self, batch: Batch, ctx: TrainContext) -> Batch:
        if self.strength == 0.0:
            return batch
        lam = float(self.rng.beta(self.strength, self.strength))
        perm = torch.randperm(len(batch.x), generator=self.perm_gen).to(batch.x.device)
        x = lam * batch.x + (1.0 - lam) * batch.x[perm]
        if ctx.data.kind == "classification" or batch.targets is not None:
            return batch.mixed(x, perm, lam)
        return Batch(x, lam * batch.y + (1.0 - lam) * batch.y[perm])
