"""The training criterion: cross-entropy (deterministic on CUDA) or MSE."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


def make_criterion(kind: str, reduction: str, loss_kwargs: dict[str, Any],
                   device: torch.device | None = None) -> nn.Module:
    """The training loss: cross-entropy (with the regularizer's kwargs) or MSE, reduced by
    `reduction` ("mean" over the minibatch, or "sum" as seed 000's code does). On CUDA the
    cross-entropy is `DeterministicCrossEntropy` (torch lists NLLLoss on CUDA among the ops
    without a deterministic implementation)."""
    if kind == "classification":
        if device is not None and device.type == "cuda":
            return DeterministicCrossEntropy(reduction=reduction, **loss_kwargs)
        return nn.CrossEntropyLoss(reduction=reduction, **loss_kwargs)
    return nn.MSELoss(reduction=reduction)


class DeterministicCrossEntropy(nn.Module):
    """Cross-entropy with label smoothing from log_softmax and gather (both deterministic
    on CUDA): (1 - eps) * -log p_y + eps * mean_j(-log p_j), as nn.CrossEntropyLoss."""

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__()
        self.reduction, self.eps = reduction, float(label_smoothing)

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(out, dim=1)
        loss = -logp.gather(1, y.view(-1, 1)).squeeze(1)
        if self.eps > 0:
            loss = (1 - self.eps) * loss - self.eps * logp.mean(1)
        return loss.sum() if self.reduction == "sum" else loss.mean()
