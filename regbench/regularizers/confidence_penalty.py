"""The confidence penalty: the loss minus beta times the predictions' entropy."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from regbench.interface import Batch, Regularizer, TrainContext
from regbench.registry import register_regularizer
from regbench.tuning.space import LogUniform


@register_regularizer("confidence_penalty")
class ConfidencePenalty(Regularizer):
    """Penalize confident predictions: the loss minus beta times their entropy.

    Pereyra et al. 2017, "Regularizing neural networks by penalizing confident output
    distributions" (ICLR workshop), eq. 2: L(theta) - beta H(p_theta(y|x)), H the entropy of
    the softmax of the outputs, reduced over the minibatch as the loss is (`ctx.reduce`).
    """

    strength_name = "beta"
    strength_range = (0.0, 10.0)
    default_strengths = (0.1, 1.0)
    strength_space = LogUniform(0.01, 4.0)
    full_strengths = (0.1, 0.3, 1.0, 2.0, 4.0)
    needs_kind = "classification"

    def loss_terms(self, batch: Batch, outputs: torch.Tensor, ctx: TrainContext
                   ) -> torch.Tensor | None:
        logp = F.log_softmax(outputs, dim=1)
        entropy = -(logp.exp() * logp).sum(1)
        return -self.strength * ctx.reduce(entropy)
