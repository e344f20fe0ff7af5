"""Spectral decoupling: an L2 penalty on the logits."""

from __future__ import annotations

import torch

from regbench.interface import Batch, Regularizer, TrainContext
from regbench.registry import register_regularizer
from regbench.tuning.space import LogUniform


@register_regularizer("logit_penalty")
class LogitPenalty(Regularizer):
    """Spectral decoupling: lambda/2 times the squared norm of each example's logits.

    Pezeshki et al. 2021, "Gradient starvation: a learning proclivity in neural networks"
    (NeurIPS), eq. 6: the cross-entropy plus lambda/2 ||y_hat||^2, y_hat the logits (the
    outputs before the softmax), reduced over the minibatch as the loss is (`ctx.reduce`).
    """

    strength_range = (0.0, 100.0)
    default_strengths = (1e-3, 1e-2)
    strength_space = LogUniform(1e-4, 1e-1)
    full_strengths = (1e-4, 1e-3, 1e-2, 1e-1)
    needs_kind = "classification"

    def loss_terms(self, batch: Batch, outputs: torch.Tensor, ctx: TrainContext
                   ) -> torch.Tensor | None:
        return 0.5 * self.strength * ctx.reduce(outputs.pow(2).sum(1))
