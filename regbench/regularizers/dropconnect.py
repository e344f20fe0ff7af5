"""DropConnect: Bernoulli masks on the weights of the hidden layers."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from regbench import devices
from regbench.interface import Regularizer, TrainContext
from regbench.registry import register_regularizer
from regbench.regularizers.layers import hidden_layers
from regbench.specs import Cell, RegSpec
from regbench.tuning.space import Uniform


class DropConnectLayer(nn.Module):
    """A Linear/Conv layer whose weight is multiplied by a fresh Bernoulli(1 - p) mask / (1 - p)
    in every training forward; in eval mode it is the layer itself (the mean network)."""

    def __init__(self, layer: nn.Module, p: float, gen: torch.Generator):
        super().__init__()
        self.layer, self.p, self.gen = layer, p, gen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return self.layer(x)
        w = self.layer.weight
        keep = torch.rand(w.shape, generator=self.gen, device=w.device, dtype=w.dtype) >= self.p
        weight = w * keep / (1.0 - self.p)
        if isinstance(self.layer, nn.Linear):
            return F.linear(x, weight, self.layer.bias)
        return self.layer._conv_forward(x, weight, self.layer.bias)


@register_regularizer("dropconnect")
class DropConnect(Regularizer):
    """DropConnect: a Bernoulli mask on the weights of every hidden Linear/Conv.

    DropConnect (Wan et al., ICML 2013; seed 002): each weight of every hidden Linear/Conv
    layer (all but the output layer) is kept with probability 1 - p.

    One mask per layer per minibatch (the paper draws one per example; a shared mask keeps
    the cost of a plain step), scaled by 1/(1 - p) so that the expected weight is the
    weight; evaluation uses the plain weights, the mean network. Masks come from the cell's
    seeded stream, so reruns are bitwise identical.
    """

    strength_name = "p"
    strength_range = (0.0, 0.95)
    default_strengths = (0.1, 0.3)
    strength_space = Uniform(0.0, 0.5)
    full_strengths = (0.1, 0.2, 0.3, 0.5)
    needs_capability = "hidden"

    def __init__(self, spec: RegSpec, cell: Cell):
        super().__init__(spec, cell)
        self.gen = self.generator("mask", device=devices.generator_device(cell.device))

    def transform_model(self, model: nn.Module, ctx: TrainContext) -> nn.Module:
        targets = set(map(id, hidden_layers(model)))
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if id(child) in targets:
                    setattr(parent, name, DropConnectLayer(child, self.strength, self.gen))
        return model
