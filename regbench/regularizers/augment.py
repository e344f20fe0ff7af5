"""Data augmentation: input noise for vectors, random one-pixel shifts for images."""

from __future__ import annotations

import torch

from regbench import seeding
from regbench.archs.base import Arch
from regbench.params import Param
from regbench.registry import register_regularizer
from regbench.regularizers.base import Regularizer
from regbench.specs import Cell, RegSpec
from regbench.tasks.base import Task, TaskData


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


KINDS = ("noise", "shift", "both")


@register_regularizer("augment")
class Augment(Regularizer):
    """Data augmentation: Gaussian input noise of std `sigma`, +-1 px image shifts, or both.

    `kind`: `noise` (every task), `shift` (images only; sigma is then unused) or `both`
    (the default: shifts on image tasks, then noise). Shifts act on the raw pixels (zero
    border) and the task's per-channel normalization is applied again afterwards, so a
    shifted input stays in the clean inputs' range; noise is added in normalized units.
    """

    strength_name = "sigma"
    default_strengths = (0.1, 0.3)
    full_strengths = (0.05, 0.1, 0.2, 0.3, 0.5)
    params = {"kind": Param("both", choices=KINDS)}

    def __init__(self, spec: RegSpec, cell: Cell):
        super().__init__(spec, cell)
        self.gen = seeding.generator("augment", cell.seed, cell.cell_id)
        self.kind = self.param("kind")

    @classmethod
    def skip_reason(cls, task: Task, arch: Arch, spec: RegSpec | None = None) -> str | None:
        kind = spec.get("kind", "both") if spec is not None else "both"
        if kind == "shift" and "image" not in task.inputs:
            return f"augment kind=shift needs image inputs; {task.name} has none"
        return super().skip_reason(task, arch, spec)

    def augment(self, x: torch.Tensor, data: TaskData) -> torch.Tensor:
        if self.kind in ("shift", "both") and data.image_shape is not None:
            center = torch.as_tensor(data.x_center, dtype=x.dtype)
            scale = torch.as_tensor(data.x_scale, dtype=x.dtype)
            x = (shift_images(x * scale + center, data.image_shape, self.gen) - center) / scale
        if self.kind in ("noise", "both") and self.strength > 0:
            x = x + self.strength * torch.randn(x.shape, generator=self.gen, dtype=x.dtype)
        return x
