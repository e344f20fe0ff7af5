"""Data augmentation: input noise, random one-pixel shifts, the standard CIFAR crop + flip,
seed 002's MNIST resize + crop + rotation, and MNIST-1D's circular shift + amplitude scale."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from regbench import devices
from regbench.archs.base import Arch
from regbench.interface import TrainContext
from regbench.params import Param
from regbench.registry import register_regularizer
from regbench.regularizers.base import Regularizer
from regbench.specs import Cell, RegSpec
from regbench.tasks.base import Task, TaskData
from regbench.tuning.space import Uniform


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


ROTATE_DEGREES = 30.0  # seed 002: RandomRotation(degrees=30)
RESIZE_RATIO = 32 / 28  # seed 002: Resize(32) then RandomCrop(28) on 28 x 28 MNIST


def resized_side(n: int) -> int:
    """The side a rotate_crop resizes an n-pixel side to before cropping n (28 -> 32)."""
    return max(n, round(RESIZE_RATIO * n))


def rotate_images(img: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each (C, H, W) image of `img` about its center by its angle in `degrees`
    (counter-clockwise on screen for a positive angle, as torchvision's rotate), bilinear,
    zero outside the source image. Output pixel (i, j) samples the source at
    R(angle) [j - (W-1)/2, i - (H-1)/2] + center (pixel units)."""
    n, _, h, w = img.shape
    rad = degrees.to(img.dtype) * (math.pi / 180.0)
    cos, sin = torch.cos(rad), torch.sin(rad)
    zero = torch.zeros_like(cos)
    # affine_grid works in [-1, 1] units per axis: convert the pixel-space rotation
    theta = torch.stack([torch.stack([cos, -sin * (h / w), zero], 1),
                         torch.stack([sin * (w / h), cos, zero], 1)], 1)
    grid = F.affine_grid(theta, [n, img.shape[1], h, w], align_corners=False)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def rotate_crop_images(x: torch.Tensor, shape: tuple[int, ...], gen: torch.Generator
                       ) -> torch.Tensor:
    """Seed 002's MNIST training transform in raw pixel space: resize H x W to
    round(32/28 H) x round(32/28 W) (bilinear, half-pixel centers), crop a random H x W
    window, rotate by a random angle in [-30, 30] degrees (bilinear, zero fill).

    Draws from `gen`, in this order: the crop offsets (n, 2), then the angles (n,).
    """
    c, h, w = shape
    n = x.shape[0]
    sh, sw = resized_side(h), resized_side(w)
    big = F.interpolate(x.view(n, c, h, w), size=(sh, sw), mode="bilinear",
                        align_corners=False)
    dy = torch.randint(0, sh - h + 1, (n, 1), generator=gen, device=x.device)
    dx = torch.randint(0, sw - w + 1, (n, 1), generator=gen, device=x.device)
    rows = dy + torch.arange(h, device=x.device)
    cols = dx + torch.arange(w, device=x.device)
    batch = torch.arange(n, device=x.device)[:, None, None]
    crop = big[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # (n,c,h,w)
    angles = (torch.rand(n, generator=gen, device=x.device, dtype=x.dtype) * 2 - 1
              ) * ROTATE_DEGREES
    return rotate_images(crop.contiguous(), angles).reshape(n, -1)


SCALE_RANGE = (0.8, 1.2)  # MNIST-1D notebook: amplitude scale ~ U[0.8, 1.2]


def roll_scale_signals(x: torch.Tensor, shape: tuple[int, ...], gen: torch.Generator
                       ) -> torch.Tensor:
    """Understanding Deep Learning's MNIST-1D augmentation, per signal: a circular shift by
    a random offset in {0, ..., L-1} (np.roll: sample t moves to t + offset mod L), then a
    random amplitude scale ~ U[0.8, 1.2], in raw units. `shape` is (C, L); every channel of
    a signal gets the same offset and scale. Draws from `gen`: offsets (n,), then scales (n,).
    """
    c, length = shape
    n = x.shape[0]
    offsets = torch.randint(0, length, (n, 1), generator=gen, device=x.device)
    lo, hi = SCALE_RANGE
    scales = lo + (hi - lo) * torch.rand(n, 1, 1, generator=gen, device=x.device,
                                         dtype=x.dtype)
    src = (torch.arange(length, device=x.device) - offsets) % length  # (n, L)
    sig = x.view(n, c, length)
    rolled = sig.gather(2, src[:, None, :].expand(n, c, length))
    return (rolled * scales).reshape(n, -1)


SHIFTS = {"shift": shift_images, "both": shift_images, "crop_flip": crop_flip_images,
          "rotate_crop": rotate_crop_images}
KINDS = ("noise", "shift", "both", "crop_flip", "rotate_crop", "roll_scale")
# kinds that add noise of std sigma after their transform (when sigma > 0)
NOISY = ("noise", "both", "crop_flip", "rotate_crop", "roll_scale")


@register_regularizer("augment")
class Augment(Regularizer):
    """Data augmentation: Gaussian input noise of std `sigma`, +-1 px image shifts, or both.

    `kind`: `noise` (every task), `shift` (images only; sigma is then unused), `both`
    (the default: shifts on image tasks, then noise) or `crop_flip` (images only: the
    standard CIFAR augmentation, 4-pixel zero pad, random crop, horizontal flip; then noise
    of std sigma when sigma > 0), `rotate_crop` (images only: seed 002's MNIST transform,
    resize 28 -> 32, random 28 x 28 crop, random rotation in [-30, 30] degrees, bilinear;
    other sizes scale the same way, H -> round(32/28 H) -> crop H; then noise when sigma > 0)
    or `roll_scale` (1-D signals only: Understanding Deep Learning's MNIST-1D augmentation,
    a random circular shift and a random amplitude scale in [0.8, 1.2]; then noise when
    sigma > 0). Shifts, crops, rotations and rolls act on the raw values (zero border) and
    the task's per-channel normalization is applied again afterwards, so a shifted input
    stays in the clean inputs' range; noise is added in normalized units.
    """

    strength_name = "sigma"
    default_strengths = (0.1, 0.3)
    strength_space = Uniform(0.0, 0.5)
    full_strengths = (0.05, 0.1, 0.2, 0.3, 0.5)
    params = {"kind": Param("both", choices=KINDS)}
    seed_streams = {"augment": "augment"}  # the draws' seeds as they always were

    def __init__(self, spec: RegSpec, cell: Cell):
        super().__init__(spec, cell)
        self.gen = self.generator("augment", devices.generator_device(cell.device))
        self.kind = self.param("kind")
        self._raw: tuple[int, torch.Tensor, torch.Tensor] | None = None

    @classmethod
    def skip_reason(cls, task: Task, arch: Arch, spec: RegSpec | None = None) -> str | None:
        kind = spec.get("kind", "both") if spec is not None else "both"
        if kind in ("shift", "crop_flip", "rotate_crop") and "image" not in task.inputs:
            return f"augment kind={kind} needs image inputs; {task.name} has none"
        if kind == "roll_scale" and "signal" not in task.inputs:
            return f"augment kind={kind} needs 1-D signal inputs; {task.name} has none"
        return super().skip_reason(task, arch, spec)

    def augment(self, x: torch.Tensor, ctx: TrainContext) -> torch.Tensor:
        data = ctx.data
        if self.kind in SHIFTS and data.image_shape is not None:
            center, scale = self._raw_space(data, x)
            x = (SHIFTS[self.kind](x * scale + center, data.image_shape, self.gen)
                 - center) / scale
        elif self.kind == "roll_scale" and data.channel_shape is not None \
                and len(data.channel_shape) == 2:
            center, scale = self._raw_space(data, x)
            x = (roll_scale_signals(x * scale + center, data.channel_shape, self.gen)
                 - center) / scale
        if self.kind in NOISY and self.strength > 0:
            x = x + self.strength * torch.randn(x.shape, generator=self.gen, dtype=x.dtype,
                                                device=x.device)
        return x

    def _raw_space(self, data: TaskData, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The task's (center, scale) as tensors on x's device, made once per split."""
        if self._raw is None or self._raw[0] != id(data):
            self._raw = (id(data), torch.as_tensor(data.x_center, dtype=x.dtype, device=x.device),
                         torch.as_tensor(data.x_scale, dtype=x.dtype, device=x.device))
        return self._raw[1], self._raw[2]
