"""Residual MLP: the host of stochastic depth."""

from __future__ import annotations

import torch
from torch import nn

from regbench.archs.base import Arch, Knobs, depth, width
from regbench.registry import register_arch
from regbench.specs import ArchSpec
from regbench.tasks.base import TaskData


class DropPath(nn.Module):
    """Stochastic depth: drop a residual branch per sample with probability p (scaled 1/(1-p)).

    The mask comes from this module's own seeded generator, never the global one.
    """

    def __init__(self, p: float, generator: torch.Generator | None):
        super().__init__()
        self.p, self.generator = p, generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        u = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), generator=self.generator)
        return x * (u < keep).to(x.dtype) / keep


class ResBlock(nn.Module):
    """x + DropPath(Linear -> [BN] -> act -> [Dropout] -> Linear)."""

    def __init__(self, width: int, knobs: Knobs, index: int, p_drop_path: float):
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(width, width, bias=not knobs.batchnorm)]
        if knobs.batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU())
        if knobs.dropout > 0:
            layers.append(knobs.dropout_layer(knobs.dropout, index))
        layers.append(nn.Linear(width, width))
        self.branch = nn.Sequential(*layers)
        self.drop_path = DropPath(p_drop_path, knobs.drop_path_generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.branch(x))


@register_arch("resmlp")
class ResMLP(Arch):
    """Residual MLP: input projection, `depth` residual blocks of `width`, linear head.

    Stochastic depth drops block i with probability drop_path * (i + 1) / depth
    (the linear decay rule of Huang et al. 2016).
    """

    capabilities = frozenset({"hidden", "residual"})
    params = {"width": width(64), "depth": depth(4)}

    def build(self, spec: ArchSpec, data: TaskData, knobs: Knobs) -> nn.Module:
        width, depth = int(self.param(spec, "width")), int(self.param(spec, "depth"))
        blocks = [
            ResBlock(width, knobs, i, knobs.drop_path * (i + 1) / depth) for i in range(depth)
        ]
        return nn.Sequential(
            nn.Flatten(), nn.Linear(data.n_features, width), nn.ReLU(), *blocks,
            nn.Linear(width, data.n_out),
        )
