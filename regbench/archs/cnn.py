"""A small convolutional net for images of any (C, H, W)."""

from __future__ import annotations

from torch import nn

from regbench.archs.base import Arch, Knobs, hidden_bias, normalized_activation, width
from regbench.registry import register_arch
from regbench.specs import ArchSpec
from regbench.tasks.base import TaskData


class AsImage(nn.Module):
    """Flattened rows -> (N, C, H, W) images."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.view(x.shape[0], *self.shape)


@register_arch("cnn")
class CNN(Arch):
    """Two 3x3 conv layers (width, 2*width channels), 2x2 max-pool, a hidden FC layer.

    Any (C, H, W) input: a side shorter than 2 pixels is not pooled (odd sides floor).
    """

    inputs = frozenset({"image"})
    params = {"width": width(16), "hidden": width(64)}

    def build(self, spec: ArchSpec, data: TaskData, knobs: Knobs) -> nn.Module:
        assert data.image_shape is not None
        c, h, w = data.image_shape
        width, hidden = int(self.param(spec, "width")), int(self.param(spec, "hidden"))

        def conv(cin: int, cout: int) -> list[nn.Module]:
            conv = nn.Conv2d(cin, cout, 3, padding=1, bias=hidden_bias(knobs))
            return [conv, *normalized_activation(nn.ReLU(), cout, knobs, nn.BatchNorm2d)]

        pool = (min(2, h), min(2, w))
        layers: list[nn.Module] = [AsImage(data.image_shape), *conv(c, width),
                                   *conv(width, 2 * width), nn.MaxPool2d(pool), nn.Flatten()]
        n_flat = 2 * width * (h // pool[0]) * (w // pool[1])
        if knobs.dropout > 0:
            layers.append(knobs.dropout_layer(knobs.dropout, 0))
        layers += [nn.Linear(n_flat, hidden, bias=hidden_bias(knobs)),
                   *normalized_activation(nn.ReLU(), hidden, knobs, nn.BatchNorm1d)]
        if knobs.dropout > 0:
            layers.append(knobs.dropout_layer(knobs.dropout, 1))
        layers.append(nn.Linear(hidden, data.n_out))
        return nn.Sequential(*layers)
