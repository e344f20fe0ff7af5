"""Double backpropagation: a penalty on the loss's gradient with respect to the inputs."""

from __future__ import annotations

import torch

from regbench.interface import Batch, Regularizer, TrainContext
from regbench.registry import register_regularizer
from regbench.tuning.space import LogUniform


@register_regularizer("input_gradient")
class InputGradient(Regularizer):
    """Double backpropagation: lambda times the squared norm of each example's input gradient.

    Drucker and LeCun 1992, "Improving generalization performance using double
    backpropagation" (IEEE TNN 3(6)): the loss plus lambda ||dL/dx||^2, differentiated
    through (create_graph), so the step descends on both. Per example: the gradient of that
    example's own loss (the minibatch loss's gradient times n under a mean reduction),
    squared and summed over the input's features, then reduced over the minibatch as the
    loss is (`ctx.reduce`). Classification and regression alike.
    """

    strength_range = (0.0, 1000.0)
    default_strengths = (1e-2, 1e-1)
    strength_space = LogUniform(1e-4, 1.0)
    full_strengths = (1e-3, 1e-2, 1e-1, 1.0)
    needs_input_grad = True

    def loss_terms(self, batch: Batch, outputs: torch.Tensor, ctx: TrainContext
                   ) -> torch.Tensor | None:
        assert ctx.inputs is not None
        loss = ctx.data_loss(batch, outputs)
        (grad,) = torch.autograd.grad(loss, ctx.inputs, create_graph=True)
        if ctx.protocol.loss_reduction == "mean":
            grad = grad * len(grad)  # each example's own loss gradient
        return self.strength * ctx.reduce(grad.pow(2).flatten(1).sum(1))
