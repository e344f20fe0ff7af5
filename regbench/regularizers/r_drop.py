"""R-Drop: two dropout passes kept consistent by a symmetric KL divergence."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from regbench.errors import RegbenchError
from regbench.interface import Batch, Regularizer, TrainContext
from regbench.registry import register_regularizer
from regbench.tuning.space import LogUniform


@register_regularizer("r_drop")
class RDrop(Regularizer):
    """R-Drop: a second dropout pass, and alpha times the symmetric KL between the two.

    Liang et al. 2021, "R-Drop: regularized dropout for neural networks" (NeurIPS), eq. 3:
    each batch goes through the model twice (two dropout masks, `ctx.forward`), the loss is
    the mean of the two passes' losses plus alpha/2 (KL(P1||P2) + KL(P2||P1)) of their
    predicted distributions, summed over classes and reduced over the minibatch as the
    loss is. The model must have dropout: a stack without a member that provides it
    (`dropout`) is refused when the matrix is built, and a cell whose model has no dropout
    layer with p > 0 fails and says so.
    """

    strength_name = "alpha"
    strength_range = (0.0, 100.0)
    default_strengths = (0.1, 1.0)
    strength_space = LogUniform(0.05, 5.0)
    full_strengths = (0.1, 0.3, 1.0, 3.0)
    needs_kind = "classification"
    needs_capability = "hidden"
    requires = frozenset({"dropout"})

    def transform_model(self, model: nn.Module, ctx: TrainContext) -> nn.Module:
        from regbench.nn import FusedDropout  # the kernels are only imported when asked for

        kinds = (nn.modules.dropout._DropoutNd, FusedDropout)
        if not any(isinstance(m, kinds) and m.p > 0 for m in model.modules()):
            raise RegbenchError(
                "r_drop needs dropout in the model (two passes with different masks); "
                f"{ctx.cell.arch.label()} has no dropout layer with p > 0 in this cell: "
                "stack dropout with it, e.g. {name = \"r_drop\", with = "
                "[{name = \"dropout\", strength = 0.1}]}")
        return model

    def loss_terms(self, batch: Batch, outputs: torch.Tensor, ctx: TrainContext
                   ) -> torch.Tensor | None:
        assert ctx.inputs is not None
        second = ctx.forward(ctx.inputs)
        logp, logq = F.log_softmax(outputs, dim=1), F.log_softmax(second, dim=1)
        sym_kl = 0.5 * ((logp.exp() - logq.exp()) * (logp - logq)).sum(1)
        mean_of_passes = 0.5 * (ctx.data_loss(batch, second) - ctx.data_loss(batch, outputs))
        return mean_of_passes + self.strength * ctx.reduce(sym_kl)
