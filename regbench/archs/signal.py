"""The MNIST-1D paper's baselines (Greydanus & Kobak, ICML 2024; the mnist1d repository's
notebooks/models.py): an MLP whose second hidden layer is residual, and a 3-layer 1-D CNN.
"""

from __future__ import annotations

import torch
from torch import nn

from regbench.archs.base import Arch, Knobs, hidden_bias, normalized_activation, width
from regbench.registry import register_arch
from regbench.specs import ArchSpec
from regbench.tasks.base import TaskData


def _hidden(layer: nn.Module, n: int, knobs: Knobs, index: int, norm: type[nn.Module]
            ) -> list[nn.Module]:
    """layer -> [BatchNorm] -> ReLU -> [Dropout]: the knobs around one hidden layer
    (BatchNorm after the ReLU when the knobs say so)."""
    out: list[nn.Module] = [layer, *normalized_activation(nn.ReLU(), n, knobs, norm)]
    if knobs.dropout > 0:
        out.append(knobs.dropout_layer(knobs.dropout, index))
    return out


class _Residual(nn.Module):
    def __init__(self, branch: nn.Module):
        super().__init__()
        self.branch = branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


@register_arch("mlp_residual")
class MLPResidual(Arch):
    """The MNIST-1D paper's MLP: h = relu(W1 x); h = h + relu(W2 h); W3 h (100 hidden units).

    BatchNorm (when on) sits before each ReLU, with the preceding layer's bias off; dropout
    after each ReLU (inside the residual branch for the second layer).
    """

    params = {"width": width(100)}

    def build(self, spec: ArchSpec, data: TaskData, knobs: Knobs) -> nn.Module:
        w = int(self.param(spec, "width"))
        bias = hidden_bias(knobs)
        first = _hidden(nn.Linear(data.n_features, w, bias=bias), w, knobs, 0, nn.BatchNorm1d)
        branch = _hidden(nn.Linear(w, w, bias=bias), w, knobs, 1, nn.BatchNorm1d)
        return nn.Sequential(nn.Flatten(), *first, _Residual(nn.Sequential(*branch)),
                             nn.Linear(w, data.n_out))


class _AsSignal(nn.Module):
    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], *self.shape)


# (kernel, stride, padding) of the paper's three conv layers
CONV_LAYERS = ((5, 2, 1), (3, 2, 1), (3, 2, 1))


def conv_out_len(n: int) -> int:
    """Signal length after CONV_LAYERS (40 -> 19 -> 10 -> 5, so 25 channels x 5 = 125)."""
    for k, s, p in CONV_LAYERS:
        n = (n + 2 * p - k) // s + 1
    return n


@register_arch("cnn1d")
class CNN1D(Arch):
    """The MNIST-1D paper's CNN: 3 Conv1d (k 5/3/3, stride 2, pad 1, ReLU), `channels` 25, linear.

    BatchNorm1d (when on) follows each conv, whose bias is then off; dropout follows each
    conv's ReLU.
    """

    inputs = frozenset({"signal"})
    params = {"channels": width(25)}

    def build(self, spec: ArchSpec, data: TaskData, knobs: Knobs) -> nn.Module:
        assert data.channel_shape is not None and len(data.channel_shape) == 2
        c_in, length = data.channel_shape
        ch = int(self.param(spec, "channels"))
        layers: list[nn.Module] = [_AsSignal(data.channel_shape)]
        for i, (k, s, p) in enumerate(CONV_LAYERS):
            conv = nn.Conv1d(c_in if i == 0 else ch, ch, k, stride=s, padding=p,
                             bias=hidden_bias(knobs))
            layers += _hidden(conv, ch, knobs, i, nn.BatchNorm1d)
        n_flat = ch * conv_out_len(length)
        if n_flat < 1:
            raise ValueError(f"cnn1d needs a longer signal than {length} samples")
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(n_flat, data.n_out))
