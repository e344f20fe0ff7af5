"""Eval-mode metrics of a trained model: the plain loss and the task's metric, in chunks."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from regbench.interface import TaskData
from regbench.losses import DeterministicCrossEntropy

EVAL_CHUNK = 8192


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Eval-mode outputs (dropout off, batchnorm running statistics), in chunks."""
    model.eval()
    return torch.cat([model(x[i : i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)])


def score(out: torch.Tensor, y: torch.Tensor, data: TaskData) -> tuple[float, float]:
    """(plain loss, metric): unsmoothed CE and accuracy, or MSE (standardized y) and rmse."""
    if data.kind == "classification":
        if out.is_cuda:
            loss = DeterministicCrossEntropy()(out, y).item()
        else:
            loss = F.cross_entropy(out, y).item()
        metric = (out.argmax(1) == y).double().mean().item()
    else:
        loss = F.mse_loss(out, y).item()
        metric = math.sqrt(loss) * data.y_scale
    return loss, metric


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, data: TaskData
             ) -> tuple[float | None, float | None]:
    """(plain loss, metric) of `model` on (x, y) in eval mode; (None, None) for no rows."""
    if len(x) == 0:
        return None, None
    return score(predict(model, x), y, data)
