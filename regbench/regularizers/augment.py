"""Data augmentation: input noise for vectors, random one-pixel shifts for images."""

from __future__ import annotations

import torch

from regbench import seeding
from regbench.registry import register_regularizer
from regbench.regularizers.base import Regularizer
from regbench.specs import Cell, RegSpec
from regbench.tasks.base import TaskData


def shift_images(x: torch.Tensor, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Shift each image by a random (dy, dx) in {-1, 0, 1}^2, zero-filling the border."""
    c, h, w = shape
    img = torch.nn.functional.pad(x.view(-1, c, h, w), (1, 1, 1, 1))
    offsets = torch.randint(0, 3, (x.shape[0], 2), generator=gen)
    out = torch.empty(x.shape[0], c, h, w, dtype=x.dtype)
    for dy in range(3):
        for dx in range(3):
            sel = (offsets[:, 0] == dy) & (offsets[:, 1] == dx)
            out[sel] = img[sel, :, dy : dy + h, dx : dx + w]
    return out.view(x.shape[0], -1)


@register_regularizer("augment")
class Augment(Regularizer):
    """Gaussian input noise of std `sigma` (standardized units); images also get +-1 px shifts.

    Shifts act on the raw pixels (zero border), then inputs are re-standardized.
    """

    strength_name = "sigma"
    default_strengths = (0.1, 0.3)
    full_strengths = (0.05, 0.1, 0.2, 0.3, 0.5)

    def __init__(self, spec: RegSpec, cell: Cell):
        super().__init__(spec, cell)
        self.gen = seeding.generator("augment", cell.seed, cell.cell_id)

    def augment(self, x: torch.Tensor, data: TaskData) -> torch.Tensor:
        if data.image_shape is not None and data.x_center is not None:
            center = torch.as_tensor(data.x_center, dtype=x.dtype)
            scale = torch.as_tensor(data.x_scale, dtype=x.dtype)
            x = (shift_images(x * scale + center, data.image_shape, self.gen) - center) / scale
        if self.strength > 0:
            x = x + self.strength * torch.randn(x.shape, generator=self.gen, dtype=x.dtype)
        return x
