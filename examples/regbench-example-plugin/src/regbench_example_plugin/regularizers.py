"""Group lasso over hidden units: lambda * sum_units ||w_unit||_2 (incoming weights)."""

from __future__ import annotations

import torch

from regbench import Regularizer, register_regularizer


@register_regularizer("group_lasso")
class GroupLasso(Regularizer):
    """Group lasso: lambda * sum over units of the L2 norm of each unit's incoming weights."""

    version = "1"
    strength_name = "lambda"
    default_strengths = (1e-4, 1e-3)
    full_strengths = (1e-5, 1e-4, 1e-3, 1e-2)

    def penalty(self, model: torch.nn.Module) -> torch.Tensor:
        total = torch.zeros(())
        for w in (p for p in model.parameters() if p.dim() >= 2):
            total = total + w.flatten(1).norm(dim=1).sum()
        return self.strength * total
