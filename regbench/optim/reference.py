"""The reference composition the fused optimizer steps must equal bit for bit.

grad' = grad + l2 * theta (+ l1 * sign(theta)) by `regbench.kernels.reference.l2_update_` (the
fused L2 contract), then torch.optim.SGD's / Adam's single-tensor update (`foreach=False`) on
grad'. The caller's `.grad` is left untouched (the update runs on copies), as the fused step
leaves it. This is also the fallback every backend uses for what it does not cover (fp16/bf16,
non-contiguous tensors, no C++ extension).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.optim.adam import adam as _torch_adam
from torch.optim.sgd import sgd as _torch_sgd

from regbench.kernels import reference as kref

__all__ = ["adamw_step_", "ieee_sqrt", "penalized_grads", "sgd_step_"]


def penalized_grads(
    grads: Sequence[Tensor], params: Sequence[Tensor], l2: float, l1: float
) -> list[Tensor]:
    """grad + l2*theta (+ l1*sign(theta)) as new tensors (the grads themselves when both are 0)."""
    if l2 == 0.0 and l1 == 0.0:
        return list(grads)
    out = [g.clone() for g in grads]
    kref.l2_update_(out, [p.detach() for p in params], l2, l1)
    return out


@torch.no_grad()
def sgd_step_(
    params: Sequence[Tensor], grads: Sequence[Tensor], bufs: Sequence[Tensor], *, lr: float,
    momentum: float, dampening: float, nesterov: bool, weight_decay: float, l2: float,
    l1: float, init_bufs: bool,
) -> None:
    """One SGD step in place on `params` (and the momentum `bufs`, written fresh when
    `init_bufs`: torch's first step clones the gradient into the buffer)."""
    params = list(params)
    g2 = penalized_grads(grads, params, l2, l1)
    mom: list[Tensor | None] = [None] * len(params)
    if momentum != 0.0 and not init_bufs:
        mom = list(bufs)
    _torch_sgd(params, g2, mom, foreach=False, weight_decay=weight_decay, momentum=momentum,
               lr=lr, dampening=dampening, nesterov=nesterov, maximize=False)
    if momentum != 0.0 and init_bufs:
        for b, m in zip(bufs, mom, strict=True):
            b.copy_(m)


def ieee_sqrt(x: Tensor) -> Tensor:
    """Correctly rounded sqrt (numpy's); torch.sqrt on CPU is MKL VML's where torch has MKL."""
    return torch.from_numpy(np.sqrt(x.detach().cpu().numpy())).to(x.device)


@torch.no_grad()
def adamw_step_(
    params: Sequence[Tensor], grads: Sequence[Tensor], exp_avgs: Sequence[Tensor],
    exp_avg_sqs: Sequence[Tensor], steps: Sequence[Tensor], *, lr: float, beta1: float,
    beta2: float, eps: float, weight_decay: float, decoupled: bool, l2: float, l1: float,
    torch_sqrt: bool = True,
) -> None:
    """One Adam (decoupled=False) / AdamW (decoupled=True) step in place; steps += 1.

    torch_sqrt=False: the same update op for op (torch's `_single_tensor_adam`, written out)
    with `ieee_sqrt` in place of torch.sqrt."""
    params = list(params)
    g2 = penalized_grads(grads, params, l2, l1)
    if not torch_sqrt:
        for p, g, m, v, st in zip(params, g2, exp_avgs, exp_avg_sqs, steps, strict=True):
            st += 1
            if weight_decay != 0:
                if decoupled:
                    p.mul_(1 - lr * weight_decay)
                else:
                    g = g.add(p, alpha=weight_decay)
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            step = st.item()
            step_size = lr / (1 - beta1**step)
            bc2_sqrt = (1 - beta2**step) ** 0.5
            p.addcdiv_(m, (ieee_sqrt(v) / bc2_sqrt).add_(eps), value=-step_size)
        return
    _torch_adam(params, g2, list(exp_avgs), list(exp_avg_sqs), [], list(steps), foreach=False,
                capturable=False, differentiable=False, fused=False,
                decoupled_weight_decay=decoupled, amsgrad=False, beta1=beta1, beta2=beta2,
                lr=lr, weight_decay=weight_decay, eps=eps, maximize=False)
