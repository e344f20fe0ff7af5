"""A small convolutional net for 8x8 digit images."""

from __future__ import annotations

from torch import nn

from regbench.archs.base import Arch, Knobs, width
from regbench.registry import register_arch
from regbench.specs import ArchSpec
from regbench.tasks.base import TaskData


class _AsImage(nn.Module):
    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.view(x.shape[0], *self.shape)


@register_arch("cnn")
class CNN(Arch):
    """Two 3x3 conv layers (width, 2*width channels), 2x2 max-pool, a hidden FC layer."""

    inputs = frozenset({"image"})
    params = {"width": width(16), "hidden": width(64)}

    def build(self, spec: ArchSpec, data: TaskData, knobs: Knobs) -> nn.Module:
        assert data.image_shape is not None
        c, h, w = data.image_shape
        width, hidden = int(self.param(spec, "width")), int(self.param(spec, "hidden"))

        def conv(cin: int, cout: int) -> list[nn.Module]:
            block: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=not knobs.batchnorm)]
            if knobs.batchnorm:
                block.append(nn.BatchNorm2d(cout))
            return [*block, nn.ReLU()]

        layers: list[nn.Module] = [_AsImage(data.image_shape), *conv(c, width),
                                   *conv(width, 2 * width), nn.MaxPool2d(2), nn.Flatten()]
        n_flat = 2 * width * (h // 2) * (w // 2)
        if knobs.dropout > 0:
            layers.append(knobs.dropout_layer(knobs.dropout, 0))
        layers += [nn.Linear(n_flat, hidden, bias=not knobs.batchnorm)]
        if knobs.batchnorm:
            layers.append(nn.BatchNorm1d(hidden))
        layers.append(nn.ReLU())
        if knobs.dropout > 0:
            layers.append(knobs.dropout_layer(knobs.dropout, 1))
        layers.append(nn.Linear(hidden, data.n_out))
        return nn.Sequential(*layers)
