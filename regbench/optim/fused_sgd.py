"""`FusedSGD`: torch.optim.SGD (momentum, dampening, nesterov, coupled weight decay) with an
elastic-net gradient `l2 * theta + l1 * sign(theta)` folded into the same pass."""

from __future__ import annotations

import torch
from torch import Tensor

from regbench.optim import fused_step
from regbench.optim._checks import (
    OptimizerArgError,
    check_coef,
    closure_loss,
    params_with_grads,
)

__all__ = ["FusedSGD"]


class FusedSGD(torch.optim.Optimizer):
    """SGD whose step is one pass per tensor group over (param, grad, momentum buffer).

    Per element it equals, bit for bit on CPU fp32/fp64 (`regbench.optim.reference`):
    `grad' = grad + (l2 * theta [+ sign(theta) * l1])` (the fused L2 contract's rounding), then
    `torch.optim.SGD(lr, momentum, dampening, weight_decay, nesterov, foreach=False)` on grad'.
    No operation is reordered. Unlike that composition, `.grad` is only read, never written.
    State is torch's (`momentum_buffer`), so state dicts load into either optimizer.
    `l2` is the L2 penalty's coefficient (gradient of `(l2 / 2) * ||theta||^2`) and equals
    `weight_decay`, rounded once less: torch adds `weight_decay * theta` with a fused
    multiply-add, the penalty with a multiply and an add.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0,  # noqa: ANN001
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False, *,
                 l1: float = 0.0, l2: float = 0.0) -> None:
        for name, v in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay),
                        ("l1", l1), ("l2", l2)):
            check_coef("FusedSGD", name, v)
        check_coef("FusedSGD", "dampening", dampening)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise OptimizerArgError("FusedSGD: nesterov needs momentum > 0 and dampening = 0, got "
                             f"momentum={momentum!r}, dampening={dampening!r}")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, l1=l1, l2=l2,
                        maximize=False, foreach=False, differentiable=False, fused=False)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201
        """One fused step per parameter group; returns `closure()` when given."""
        loss = closure_loss(closure)
        for group in self.param_groups:
            mom = group["momentum"] != 0
            ps: list[Tensor] = []
            gs: list[Tensor] = []
            bs: list[Tensor] = []
            new_ps: list[Tensor] = []
            new_gs: list[Tensor] = []
            new_bs: list[Tensor] = []
            for p, g in params_with_grads(group, "FusedSGD"):
                if not mom:
                    ps.append(p)
                    gs.append(g)
                    continue
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:  # torch's first step: the buffer starts as the gradient
                    buf = state["momentum_buffer"] = torch.empty_like(
                        p, memory_format=torch.preserve_format)
                    new_ps.append(p)
                    new_gs.append(g)
                    new_bs.append(buf)
                else:
                    ps.append(p)
                    gs.append(g)
                    bs.append(buf)
            for lp, lg, lb, new in ((ps, gs, bs, False), (new_ps, new_gs, new_bs, True)):
                if lp:
                    fused_step.sgd_step_(
                        lp, lg, lb, lr=group["lr"], momentum=group["momentum"],
                        dampening=group["dampening"], nesterov=group["nesterov"],
                        weight_decay=group["weight_decay"], l2=group["l2"], l1=group["l1"],
                        init_bufs=new)
        return loss
