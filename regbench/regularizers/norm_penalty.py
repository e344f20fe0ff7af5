"""L1 and L2 penalties: added to the loss (`backend = "native"`), or folded into the
optimizer's step (`backend = "fused"`, regbench.optim's Fused* optimizers)."""

from __future__ import annotations

import torch
from torch import nn

from regbench.params import Param
from regbench.registry import register_regularizer
from regbench.regularizers.base import OptimConfig, Regularizer, decay_params
from regbench.tuning.space import LogUniform

# seed 004's sweep: lambda in {0, 1e-4, 1e-3, 1e-2, 1e-1, 1}
LAMBDAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)

# Where a penalty / decay is applied. native: the loss (autograd) or torch.optim's own
# weight_decay; fused: the fused optimizer step (one pass over param, grad and state).
# Same training up to floating-point rounding (tests/test_optim_fused.py states how close).
BACKENDS: dict[str, bool] = {"native": False, "fused": True}  # name -> uses the fused step
BACKEND_PARAM = Param("native", choices=tuple(BACKENDS))


class OptimBackend(Regularizer):
    """A regularizer with a `backend` param (native | fused); `fused` is True for the latter."""

    params = {"backend": BACKEND_PARAM}

    @property
    def fused(self) -> bool:
        return BACKENDS[self.param("backend")]


@register_regularizer("l2")
class L2(OptimBackend):
    """L2 penalty (lambda/2)*||w||^2 in the loss, on weights only (not biases, not norms).

    Its gradient is lambda*w, so with plain SGD it equals `weight_decay=lambda`. With
    `backend = "fused"` the optimizer step adds lambda*w itself (no penalty in the loss, so
    the per-step divergence check sees the loss without it).
    """

    default_strengths = (1e-4, 1e-2)
    strength_space = LogUniform(1e-6, 1e-1)
    full_strengths = LAMBDAS

    def configure_optimizer(self, cfg: OptimConfig, adam_lr: float) -> None:
        if self.fused:
            cfg.fused, cfg.l2 = True, self.strength

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        if self.fused:
            return None
        weights, _ = decay_params(model)
        return 0.5 * self.strength * sum(w.pow(2).sum() for w in weights)


@register_regularizer("l1")
class L1(OptimBackend):
    """L1 penalty lambda*||w||_1 in the loss, on weights only (not biases, not norms).

    With `backend = "fused"` the optimizer step adds lambda*sign(w) (autograd's subgradient of
    |w|: 0 at w = 0) itself, with no penalty in the loss.
    """

    default_strengths = (1e-4, 1e-3)
    strength_space = LogUniform(1e-6, 1e-2)
    full_strengths = LAMBDAS

    def configure_optimizer(self, cfg: OptimConfig, adam_lr: float) -> None:
        if self.fused:
            cfg.fused, cfg.l1 = True, self.strength

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        if self.fused:
            return None
        weights, _ = decay_params(model)
        return self.strength * sum(w.abs().sum() for w in weights)
