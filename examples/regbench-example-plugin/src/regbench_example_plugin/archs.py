"""A maxout MLP: each hidden unit is the max of `pieces` linear functions."""

from __future__ import annotations

from torch import nn

from regbench import Arch, register_arch
from regbench.interface import Knobs, TaskData
from regbench.params import Param
from regbench.specs import ArchSpec


class Maxout(nn.Module):
    def __init__(self, n_in: int, n_out: int, pieces: int):
        super().__init__()
        self.pieces = pieces
        self.linear = nn.Linear(n_in, n_out * pieces)

    def forward(self, x):
        return self.linear(x).unflatten(-1, (-1, self.pieces)).amax(-1)


@register_arch("maxout")
class MaxoutMLP(Arch):
    """Maxout MLP (Goodfellow et al. 2013): `depth` layers of `width` units, `pieces` each."""

    version = "1"
    params = {"width": Param(32, int, lo=1, hi=4096), "depth": Param(2, int, lo=1, hi=16),
              "pieces": Param(2, int, lo=1, hi=16)}

    def build(self, spec: ArchSpec, data: TaskData, knobs: Knobs) -> nn.Module:
        width, pieces = int(self.param(spec, "width")), int(self.param(spec, "pieces"))
        layers: list[nn.Module] = [nn.Flatten()]
        n_in = data.n_features
        for i in range(int(self.param(spec, "depth"))):
            layers.append(Maxout(n_in, width, pieces))
            if knobs.batchnorm:
                layers.append(nn.BatchNorm1d(width))
            if knobs.dropout > 0:
                layers.append(knobs.dropout_layer(knobs.dropout, i))
            n_in = width
        return nn.Sequential(*layers, nn.Linear(n_in, data.n_out))
