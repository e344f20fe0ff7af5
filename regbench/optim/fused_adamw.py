"""`FusedAdamW` / `FusedAdam`: torch.optim.AdamW / Adam with an elastic-net gradient
`l2 * theta + l1 * sign(theta)` folded into the same pass."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.optim.optimizer import _get_scalar_dtype

from regbench.optim import fused_step
from regbench.optim._checks import (
    OptimizerArgError,
    check_coef,
    closure_loss,
    params_with_grads,
)

__all__ = ["SQRT_MODES", "FusedAdam", "FusedAdamW"]

SQRT_MODES = {"torch": True, "ieee": False}  # name -> use torch.sqrt's rounding


class FusedAdamW(torch.optim.Optimizer):
    """AdamW whose step is one pass per tensor group over (param, grad, exp_avg, exp_avg_sq).

    Per element it equals, bit for bit on CPU fp32/fp64 (`regbench.optim.reference`):
    `grad' = grad + (l2 * theta [+ sign(theta) * l1])` (coupled: the penalty's gradient enters
    both moments), then `torch.optim.AdamW(lr, betas, eps, weight_decay, foreach=False)` on
    grad' (decoupled decay `theta *= 1 - lr * weight_decay` before the moment update, bias
    corrections in float64 from the step count, `denom = sqrt(v) / sqrt(bc2) + eps`,
    `theta += (-step_size * m) / denom`). No operation is reordered. `.grad` is only read.
    `decoupled=False` is torch.optim.Adam's coupled `weight_decay` (see FusedAdam). State is
    torch's (`step` a CPU scalar tensor, `exp_avg`, `exp_avg_sq`). No amsgrad / maximize.

    `sqrt`: "torch" (default) is torch.sqrt's rounding. Where torch has MKL (x86 wheels) that
    is MKL VML's high-accuracy sqrt, which is not always correctly rounded and on some CPUs
    costs ~2 ns an element, the larger part of this step. "ieee" uses the correctly rounded
    sqrt instead (as torch's own `fused=True` kernel does): faster, and equal to the
    reference composition with torch.sqrt replaced by IEEE sqrt (`reference.ieee_sqrt`), so
    at most 1 ulp off torch.optim's denominator per element and step.
    """

    decoupled = True

    def __init__(self, params, lr: float = 1e-3,  # noqa: ANN001
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, *, l1: float = 0.0, l2: float = 0.0,
                 sqrt: str = "torch") -> None:
        owner = type(self).__name__
        if sqrt not in SQRT_MODES:
            raise OptimizerArgError(f"{owner}: sqrt must be one of {', '.join(SQRT_MODES)}, "
                                    f"got {sqrt!r}")
        for name, v in (("lr", lr), ("eps", eps), ("weight_decay", weight_decay), ("l1", l1),
                        ("l2", l2)):
            check_coef(owner, name, v)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise OptimizerArgError(f"{owner}: betas must be a pair of floats, got {betas!r}")
        for i, b in enumerate(betas):
            check_coef(owner, f"betas[{i}]", b, hi=1.0, open_hi=True)
        defaults = dict(lr=lr, betas=tuple(float(b) for b in betas), eps=eps,
                        weight_decay=weight_decay, l1=l1, l2=l2, amsgrad=False, maximize=False,
                        foreach=False, capturable=False, differentiable=False, fused=False,
                        decoupled_weight_decay=self.decoupled, sqrt=sqrt)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201
        """One fused step per parameter group; returns `closure()` when given."""
        loss = closure_loss(closure)
        for group in self.param_groups:
            ps: list[Tensor] = []
            gs: list[Tensor] = []
            ms: list[Tensor] = []
            vs: list[Tensor] = []
            steps: list[Tensor] = []
            for p, g in params_with_grads(group, type(self).__name__):
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = torch.tensor(0.0, dtype=_get_scalar_dtype())
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(
                        p, memory_format=torch.preserve_format)
                ps.append(p)
                gs.append(g)
                ms.append(state["exp_avg"])
                vs.append(state["exp_avg_sq"])
                steps.append(state["step"])
            if ps:
                beta1, beta2 = group["betas"]
                fused_step.adamw_step_(
                    ps, gs, ms, vs, steps, lr=group["lr"], beta1=beta1, beta2=beta2,
                    eps=group["eps"], weight_decay=group["weight_decay"],
                    decoupled=self.decoupled, l2=group["l2"], l1=group["l1"],
                    torch_sqrt=SQRT_MODES[group["sqrt"]])
        return loss


class FusedAdam(FusedAdamW):
    """torch.optim.Adam (coupled `weight_decay`: `grad += weight_decay * theta` with torch's
    fused multiply-add) plus the elastic-net gradient; otherwise as FusedAdamW."""

    decoupled = False

    def __init__(self, params, lr: float = 1e-3,  # noqa: ANN001
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, *, l1: float = 0.0, l2: float = 0.0,
                 sqrt: str = "torch") -> None:
        super().__init__(params, lr, betas, eps, weight_decay, l1=l1, l2=l2, sqrt=sqrt)
