"""L1 and L2 penalties added to the loss."""

from __future__ import annotations

import torch
from torch import nn

from regbench.registry import register_regularizer
from regbench.regularizers.base import Regularizer, decay_params

# seed 004's sweep: lambda in {0, 1e-4, 1e-3, 1e-2, 1e-1, 1}
LAMBDAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


@register_regularizer("l2")
class L2(Regularizer):
    """L2 penalty (lambda/2)*||w||^2 in the loss, on weights only (not biases, not norms).

    Its gradient is lambda*w, so with plain SGD it equals `weight_decay=lambda`.
    """

    default_strengths = (1e-4, 1e-2)
    full_strengths = LAMBDAS

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        weights, _ = decay_params(model)
        return 0.5 * self.strength * sum(w.pow(2).sum() for w in weights)


@register_regularizer("l1")
class L1(Regularizer):
    """L1 penalty lambda*||w||_1 in the loss, on weights only (not biases, not norms)."""

    default_strengths = (1e-4, 1e-3)
    full_strengths = LAMBDAS

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        weights, _ = decay_params(model)
        return self.strength * sum(w.abs().sum() for w in weights)
