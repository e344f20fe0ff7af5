"""Stochastic weight averaging: the average of the late iterates is what is evaluated."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from regbench.interface import Regularizer, TrainContext
from regbench.params import Param
from regbench.registry import register_regularizer
from regbench.specs import Cell, RegSpec
from regbench.tuning.space import LogUniform, Uniform


@register_regularizer("swa")
class SWA(Regularizer):
    """Stochastic weight averaging: the average of the late epochs' weights is evaluated.

    Stochastic weight averaging (Izmailov et al., UAI 2018): the equal-weight average of
    the weights at the end of every epoch from epoch ceil(start x epochs) on is evaluated,
    with batchnorm statistics recomputed on the train split.

    Strength `start` is the fraction of the epochs after which averaging begins (a larger
    start averages fewer iterates: weaker). `lr_factor` sets a constant learning rate of
    lr_factor x the optimizer's initial lr during the averaging epochs (1 = unchanged). Batchnorm
    running statistics are recomputed as torch.optim.swa_utils.update_bn does: reset, then
    a cumulative average over one pass of the train split in minibatches, in train mode.
    Per-epoch validation curves are of the trained (not averaged) weights.
    """

    strength_name = "start"
    strength_range = (0.0, 1.0)
    default_strengths = (0.5, 0.75)
    strength_space = Uniform(0.25, 0.9)
    full_strengths = (0.25, 0.5, 0.75, 0.9)
    larger_is_weaker = True
    params = {"lr_factor": Param(1.0, float, lo=0.0, lo_open=True, hi=1000.0,
                                 doc="lr during the averaging epochs, x the initial lr",
                                 space=LogUniform(0.3, 3.0))}

    def __init__(self, spec: RegSpec, cell: Cell):
        super().__init__(spec, cell)
        self.average: list[torch.Tensor] | None = None
        self.n_averaged = 0

    def first_epoch(self, ctx: TrainContext) -> int:
        return max(1, math.ceil(self.strength * ctx.protocol.epochs))

    def start_epoch(self, ctx: TrainContext) -> None:
        self.base_lrs(ctx)  # the lr as built, before a protocol schedule moves it
        factor = self.param("lr_factor")
        if factor != 1.0 and ctx.epoch >= self.first_epoch(ctx):
            assert ctx.optimizer is not None
            for group, lr in zip(ctx.optimizer.param_groups, self.base_lrs(ctx)):
                group["lr"] = factor * lr

    def end_epoch(self, ctx: TrainContext) -> None:
        if ctx.epoch < self.first_epoch(ctx):
            return
        with torch.no_grad():
            params = [p.detach() for p in ctx.model.parameters()]
            if self.average is None:
                self.average = [p.clone() for p in params]
            else:
                n = self.n_averaged
                for a, p in zip(self.average, params):
                    a.add_((p - a) / (n + 1))
        self.n_averaged += 1

    def eval_model(self, ctx: TrainContext) -> nn.Module | None:
        if self.average is None:
            return None  # stopped before averaging began: the trained weights
        model = copy.deepcopy(ctx.model)
        with torch.no_grad():
            for p, a in zip(model.parameters(), self.average):
                p.copy_(a)
        recompute_batchnorm(model, ctx.x_train, ctx.protocol.batch_size or len(ctx.x_train))
        return model


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, x: torch.Tensor, batch_size: int) -> None:
    """Batchnorm running statistics as the cumulative average over `x` in minibatches."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    was_training = model.training
    model.train()
    for i in range(0, len(x), batch_size):
        model(x[i:i + batch_size])
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.train(was_training)
