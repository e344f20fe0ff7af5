"""Sharpness-aware minimization: the two-pass step (owns the training step)."""

from __future__ import annotations

import torch

from regbench.interface import Batch, Regularizer, TrainContext
from regbench.registry import register_regularizer
from regbench.tuning.space import LogUniform


@register_regularizer("sam")
class SAM(Regularizer):
    """Sharpness-aware minimization: the step takes the gradient at a rho-perturbed point.

    Sharpness-aware minimization (Foret et al., ICLR 2021, Algorithm 1): the gradient at
    w + rho g/||g||_2 drives the task's optimizer step from w.

    Each step: the loss and gradient g at w; every parameter moves by e = rho g / ||g||_2
    (the norm over all parameters together, eq. 2's first-order solution for p = 2); the
    loss is differentiated again there; w is restored and the optimizer steps with that
    second gradient. The reported training loss is the one at w. Batchnorm layers see both
    passes (as in the reference implementations).
    """

    strength_name = "rho"
    strength_range = (0.0, 10.0)
    default_strengths = (0.05, 0.2)
    strength_space = LogUniform(0.01, 0.5)
    full_strengths = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)

    def train_step(self, batch: Batch, ctx: TrainContext) -> None:
        opt = ctx.optimizer
        assert opt is not None
        ctx.backward(batch)
        params = [p for p in ctx.model.parameters() if p.grad is not None]
        with torch.no_grad():
            norm = torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
            scale = self.strength / (norm + 1e-12)
            shifts = [p.grad * scale for p in params]
            for p, e in zip(params, shifts):
                p.add_(e)
        ctx.backward(batch, record=False)
        with torch.no_grad():
            for p, e in zip(params, shifts):
                p.sub_(e)
        opt.step()
