"""FGSM adversarial training: half clean, half adversarial loss (owns the step)."""

from __future__ import annotations

import torch

from regbench.interface import Batch, Regularizer, TrainContext
from regbench.registry import register_regularizer
from regbench.tuning.space import LogUniform


@register_regularizer("adversarial")
class Adversarial(Regularizer):
    """FGSM adversarial training: half the loss on clean, half on FGSM inputs.

    FGSM adversarial training (Goodfellow et al., ICLR 2015, eq. 3, alpha = 0.5):
    loss = 0.5 L(x, y) + 0.5 L(x + eps sign(grad_x L(x, y)), y), with eps in normalized input
    units, as Regularization Cocktails does. The reported training loss is the clean one;
    the penalty of the stack is added once."""

    strength_name = "eps"
    strength_range = (0.0, 10.0)
    default_strengths = (0.01, 0.05)
    strength_space = LogUniform(0.005, 0.2)
    full_strengths = (0.005, 0.01, 0.02, 0.05, 0.1)

    def train_step(self, batch: Batch, ctx: TrainContext) -> None:
        opt = ctx.optimizer
        assert opt is not None
        x = batch.x.detach().requires_grad_(True)
        clean, penalty = ctx.loss(batch, x)
        ctx.record(clean, penalty, len(batch.y))
        (grad,) = torch.autograd.grad(clean, x, retain_graph=True)
        x_adv = (x + self.strength * grad.sign()).detach()
        adv, _ = ctx.loss(batch, x_adv)
        total = 0.5 * clean + 0.5 * adv
        if penalty is not None:
            total = total + penalty
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
