"""Cutout and CutMix: rectangular patches of images, erased or pasted from another image."""

from __future__ import annotations

import math

import torch

from regbench import devices
from regbench.archs.base import Arch
from regbench.interface import Batch, Regularizer, TrainContext
from regbench.registry import register_regularizer
from regbench.specs import Cell, RegSpec
from regbench.tasks.base import Task
from regbench.tuning.space import LogUniform, Uniform


def box_mask(n: int, h: int, w: int, cut_h: int, cut_w: int, gen: torch.Generator,
             device: torch.device) -> torch.Tensor:
    """(n, h, w) booleans: True inside a cut_h x cut_w box per image, centered at a uniform
    random pixel and clipped at the border (the papers' sampling)."""
    cy = torch.randint(0, h, (n, 1, 1), generator=gen, device=device)
    cx = torch.randint(0, w, (n, 1, 1), generator=gen, device=device)
    rows = torch.arange(h, device=device).view(1, h, 1)
    cols = torch.arange(w, device=device).view(1, 1, w)
    y0, x0 = cy - cut_h // 2, cx - cut_w // 2
    return ((rows >= y0) & (rows < y0 + cut_h)) & ((cols >= x0) & (cols < x0 + cut_w))


class _ImageOnly(Regularizer):
    def __init__(self, spec: RegSpec, cell: Cell):
        super().__init__(spec, cell)
        self.gen = self.generator("cut", device=devices.generator_device(cell.device))

    @classmethod
    def skip_reason(cls, task: Task, arch: Arch, spec: RegSpec | None = None) -> str | None:
        if "image" not in task.inputs:
            return f"{cls.name} needs image inputs; {task.name} has none"
        return super().skip_reason(task, arch, spec)

    def _images(self, ctx: TrainContext) -> tuple[int, int, int] | None:
        """(C, H, W) of the task's images, or None when this batch is left as it is (no
        images, or strength 0)."""
        if ctx.data.image_shape is None or self.strength == 0.0:
            return None
        c, h, w = ctx.data.image_shape
        return c, h, w


@register_regularizer("cutout")
class Cutout(_ImageOnly):
    """Cutout: a random square of each training image set to 0 in raw pixel space.

    Cutout (DeVries & Taylor 2017): a square of side round(size x image side) at a uniform
    random center (clipped at the border) is set to 0 in raw pixel space, in every channel,
    then the task's per-channel normalization applies again (like `augment`)."""

    strength_name = "size"
    strength_range = (0.0, 1.0)
    default_strengths = (0.25, 0.5)
    strength_space = Uniform(0.1, 0.6)
    full_strengths = (0.125, 0.25, 0.375, 0.5)

    def batch(self, batch: Batch, ctx: TrainContext) -> Batch:
        if (shape := self._images(ctx)) is None:
            return batch
        c, h, w = shape
        data, n, x = ctx.data, len(batch.x), batch.x
        side_h, side_w = round(self.strength * h), round(self.strength * w)
        mask = box_mask(n, h, w, side_h, side_w, self.gen, x.device)  # (n, h, w)
        center = torch.as_tensor(data.x_center, dtype=x.dtype, device=x.device)
        scale = torch.as_tensor(data.x_scale, dtype=x.dtype, device=x.device)
        raw = (x * scale + center).view(n, c, h, w)
        raw = raw.masked_fill(mask[:, None], 0.0)
        return Batch((raw.reshape(n, -1) - center) / scale, batch.y, batch.targets)


@register_regularizer("cutmix")
class CutMix(_ImageOnly):
    """CutMix: a box pasted from another image; the labels mixed by the area kept.

    CutMix (Yun et al., ICCV 2019): lam ~ Beta(alpha, alpha); a box of area (1 - lam) of
    the image (sides sqrt(1 - lam) x H, W, uniform random center, clipped) is pasted from
    another image of the minibatch (one random permutation, one box per minibatch as the
    paper's code); the loss is lam' CE(y_i) + (1 - lam') CE(y_j) with lam' the area actually
    kept. Pasting normalized pixels equals pasting raw ones (the normalization is the same
    per-pixel affine map for both images). Classification with image inputs only."""

    strength_name = "alpha"
    strength_range = (0.0, 100.0)
    default_strengths = (0.5, 1.0)
    strength_space = LogUniform(0.1, 2.0)
    full_strengths = (0.2, 0.5, 1.0, 2.0)
    needs_kind = "classification"

    def __init__(self, spec: RegSpec, cell: Cell):
        super().__init__(spec, cell)
        self.rng = self.numpy_rng("lam")

    def batch(self, batch: Batch, ctx: TrainContext) -> Batch:
        if (shape := self._images(ctx)) is None:
            return batch
        c, h, w = shape
        n, x = len(batch.x), batch.x
        lam = float(self.rng.beta(self.strength, self.strength))
        perm = torch.randperm(n, generator=self.gen, device=self.gen.device).to(x.device)
        cut = math.sqrt(1.0 - lam)
        one = box_mask(1, h, w, int(h * cut), int(w * cut), self.gen, x.device)  # (1, h, w)
        mixed = torch.where(one[:, None], x.view(n, c, h, w)[perm], x.view(n, c, h, w))
        kept = 1.0 - one.sum().item() / (h * w)
        return batch.mixed(mixed.reshape(n, -1), perm, kept)
