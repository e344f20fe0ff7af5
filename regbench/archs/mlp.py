"""Fully connected architectures: linear (with polynomial features), mlp and wide."""

from __future__ import annotations

import torch
from torch import nn

from regbench.archs.base import Arch, Knobs, depth, hidden_stack, width
from regbench.params import Param
from regbench.registry import register_arch
from regbench.specs import ArchSpec
from regbench.tasks.base import Task, TaskData

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh}


class PolyFeatures(nn.Module):
    """x -> [x, x^2, ..., x^K] for a single input feature."""

    def __init__(self, degree: int):
        super().__init__()
        self.register_buffer("powers", torch.arange(1, degree + 1, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.pow(self.powers)


class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


@register_arch("linear")
class Linear(Arch):
    """Linear model; `poly=K` expands a 1-D input to K polynomial features (seed 000's fits)."""

    capabilities = frozenset()
    params = {"poly": Param(1, int, lo=1, hi=100)}

    def skip_reason(self, spec: ArchSpec, task: Task) -> str | None:
        reason = super().skip_reason(spec, task)
        if reason is None and int(self.param(spec, "poly")) > 1 and not task.one_dim:
            return f"linear with poly>1 needs a 1-D input; {task.name} has several features"
        return reason

    def build(self, spec: ArchSpec, data: TaskData, knobs: Knobs) -> nn.Module:
        k = int(self.param(spec, "poly"))
        if k > 1:
            return nn.Sequential(PolyFeatures(k), nn.Linear(k, data.n_out))
        return nn.Sequential(Flatten(), nn.Linear(data.n_features, data.n_out))


class _MLP(Arch):
    def build(self, spec: ArchSpec, data: TaskData, knobs: Knobs) -> nn.Module:
        act = ACTIVATIONS[self.param(spec, "activation")]
        widths = [int(self.param(spec, "width"))] * int(self.param(spec, "depth"))
        layers, n = hidden_stack(data.n_features, widths, act, knobs)
        return nn.Sequential(Flatten(), *layers, nn.Linear(n, data.n_out))



@register_arch("mlp")
class MLP(_MLP):
    """MLP of seed 004: 3 hidden layers x 64 units, LeakyReLU (width/depth sweepable)."""

    params = {"width": width(64), "depth": depth(3),
              "activation": Param("leaky_relu", choices=tuple(ACTIVATIONS))}


@register_arch("wide")
class Wide(_MLP):
    """The wide MLP of seed 000: 2 hidden layers x 1000 units, ReLU."""

    params = {"width": width(1000), "depth": depth(2),
              "activation": Param("relu", choices=tuple(ACTIVATIONS))}
