"""Data augmentation: input noise, random one-pixel shifts, the standard CIFAR crop + flip."""

from __future__ import annotations

import torch

from regbench import devices, seeding
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
    offsets = torch.randint(0, 3, (x.shape[0], 2), generator=gen, device=x.device)
    out = torch.empty(x.shape[0], c, h, w, dtype=x.dtype, device=x.device)
    for dy in range(3):
        for dx in range(3):
            sel = (offsets[:, 0] == dy) & (offsets[:, 1] == dx)
            out[sel] = img[sel, :, dy : dy + h, dx : dx + w]
    return out.view(x.shape[0], -1)


def crop_flip_images(x: torch.Tensor, shape: tuple[int, ...], gen: torch.Generator,
                     pad: int = 4) -> torch.Tensor:
    """The standard CIFAR augmentation: zero-pad by `pad` pixels, crop a random H x W
    window, flip it horizontally with probability 1/2 (per image, from `gen`).

    One gather with index tensors (no per-offset masks, no host sync on CUDA): output pixel
    (i, j) of image n reads padded pixel (dy_n + i, dx_n + j), or (dy_n + i, dx_n + W-1-j)
    when flipped.
    """
    c, h, w = shape
    n = x.shape[0]
    img = torch.nn.functional.pad(x.view(n, c, h, w), (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen, device=x.device)
    flip = torch.randint(0, 2, (n, 1), generator=gen, device=x.device).bool()
    rows = offsets[:, :1] + torch.arange(h, device=x.device)  # (n, h)
    j = torch.arange(w, device=x.device)
    cols = offsets[:, 1:] + torch.where(flip, w - 1 - j, j)  # (n, w)
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = img[batch, :, rows[:, :, None], cols[:, None, :]]  # (n, h, w, c)
    return out.permute(0, 3, 1, 2).reshape(n, -1)


SHIFTS = {"shift": shift_images, "both": shift_images, "crop_flip": crop_flip_images}
KINDS = ("noise", "shift", "both", "crop_flip")


@register_regularizer("augment")
class Augment(Regularizer):
    """Data augmentation: Gaussian input noise of std `sigma`, +-1 px image shifts, or both.

    `kind`: `noise` (every task), `shift` (images only; sigma is then unused), `both`
    (the default: shifts on image tasks, then noise) or `crop_flip` (images only: the
    standard CIFAR augmentation, 4-pixel zero pad, random crop, horizontal flip; then noise
    of std sigma when sigma > 0). Shifts act on the raw pixels (zero
    border) and the task's per-channel normalization is applied again afterwards, so a
    shifted input stays in the clean inputs' range; noise is added in normalized units.
    """

    strength_name = "sigma"
    default_strengths = (0.1, 0.3)
    full_strengths = (0.05, 0.1, 0.2, 0.3, 0.5)
    params = {"kind": Param("both", choices=KINDS)}

    def __init__(self, spec: RegSpec, cell: Cell):
        super().__init__(spec, cell)
        self.gen = seeding.generator("augment", cell.seed, cell.cell_id,
                                     device=devices.generator_device(cell.device))
        self.kind = self.param("kind")
        self._raw: tuple[int, torch.Tensor, torch.Tensor] | None = None

    @classmethod
    def skip_reason(cls, task: Task, arch: Arch, spec: RegSpec | None = None) -> str | None:
        kind = spec.get("kind", "both") if spec is not None else "both"
        if kind in ("shift", "crop_flip") and "image" not in task.inputs:
            return f"augment kind={kind} needs image inputs; {task.name} has none"
        return super().skip_reason(task, arch, spec)

    def augment(self, x: torch.Tensor, data: TaskData) -> torch.Tensor:
        if self.kind in SHIFTS and data.image_shape is not None:
            center, scale = self._raw_space(data, x)
            x = (SHIFTS[self.kind](x * scale + center, data.image_shape, self.gen)
                 - center) / scale
        if self.kind in ("noise", "both", "crop_flip") and self.strength > 0:
            x = x + self.strength * torch.randn(x.shape, generator=self.gen, dtype=x.dtype,
                                                device=x.device)
        return x

    def _raw_space(self, data: TaskData, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The task's (center, scale) as tensors on x's device, made once per split."""
        if self._raw is None or self._raw[0] != id(data):
            self._raw = (id(data), torch.as_tensor(data.x_center, dtype=x.dtype, device=x.device),
                         torch.as_tensor(data.x_scale, dtype=x.dtype, device=x.device))
        return self._raw[1], self._raw[2]
