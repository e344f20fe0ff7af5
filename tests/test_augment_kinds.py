"""augment kind=rotate_crop (seed 002's MNIST transform) and kind=roll_scale (MNIST-1D),
against plain loop references; strength 0 adds no noise; skips; bitwise rerun."""

from __future__ import annotations

import math
from types import SimpleNamespace  # a context with the split, for augment(x, ctx)

import numpy as np
import pytest
import torch

from regbench.registry import ARCHS, REGULARIZERS, TASKS
from regbench.regularizers.augment import (
    resized_side,
    roll_scale_signals,
    rotate_crop_images,
    rotate_images,
)
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze
from regbench.train import run_cell


def bilinear_at(img: np.ndarray, y: float, x: float) -> float:
    """img (H, W) at real pixel coordinates (y, x); zero outside the image."""
    h, w = img.shape
    y0, x0 = math.floor(y), math.floor(x)
    out = 0.0
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                out += wy * wx * img[yy, xx]
    return out


def resize_ref(img: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """Bilinear resize with half-pixel centers, edge-clamped (PIL/torch align_corners=False)."""
    h, w = img.shape
    out = np.zeros((oh, ow))
    for i in range(oh):
        sy = min(max((i + 0.5) * h / oh - 0.5, 0.0), h - 1)
        for j in range(ow):
            sx = min(max((j + 0.5) * w / ow - 0.5, 0.0), w - 1)
            y0, x0 = min(int(sy), h - 2), min(int(sx), w - 2)
            fy, fx = sy - y0, sx - x0
            out[i, j] = ((1 - fy) * (1 - fx) * img[y0, x0] + (1 - fy) * fx * img[y0, x0 + 1]
                         + fy * (1 - fx) * img[y0 + 1, x0] + fy * fx * img[y0 + 1, x0 + 1])
    return out


def rotate_ref(img: np.ndarray, deg: float) -> np.ndarray:
    """Output (i, j) samples the source at R(deg) (j - cx, i - cy) + (cx, cy)."""
    h, w = img.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    out = np.zeros_like(img)
    for i in range(h):
        for j in range(w):
            dx, dy = j - cx, i - cy
            out[i, j] = bilinear_at(img, s * dx + c * dy + cy, c * dx - s * dy + cx)
    return out


def test_rotate_crop_matches_a_per_image_loop():
    n, shape = 6, (2, 7, 9)
    x = torch.rand(n, 2 * 7 * 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ours = rotate_crop_images(x, shape, torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    sh, sw = resized_side(7), resized_side(9)
    assert (sh, sw) == (8, 10) and resized_side(28) == 32
    dy = torch.randint(0, sh - 7 + 1, (n, 1), generator=gen)
    dx = torch.randint(0, sw - 9 + 1, (n, 1), generator=gen)
    ang = (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1) * 30
    imgs = x.view(n, *shape).numpy()
    for k in range(n):
        for ch in range(2):
            big = resize_ref(imgs[k, ch], sh, sw)
            crop = big[dy[k, 0]:dy[k, 0] + 7, dx[k, 0]:dx[k, 0] + 9]
            ref = rotate_ref(crop, float(ang[k]))
            np.testing.assert_allclose(ours.view(n, *shape)[k, ch].numpy(), ref, atol=1e-9)
    assert ang.abs().max() <= 30 and ang.min() < 0 < ang.max()


def test_rotation_by_90_degrees_is_counter_clockwise_on_screen():
    img = torch.zeros(1, 1, 5, 5)
    img[0, 0, 2, 4] = 1.0  # a dot right of the center
    out = rotate_images(img, torch.tensor([90.0]))
    assert out[0, 0, 0, 2] == pytest.approx(1.0, abs=1e-5)  # now above the center
    assert out.sum() == pytest.approx(1.0, abs=1e-5)


def test_roll_scale_matches_np_roll_and_scale():
    n, shape = 9, (2, 11)
    x = torch.randn(n, 22, generator=torch.Generator().manual_seed(1))
    ours = roll_scale_signals(x, shape, torch.Generator().manual_seed(4))
    gen = torch.Generator().manual_seed(4)
    offsets = torch.randint(0, 11, (n, 1), generator=gen)
    scales = 0.8 + 0.4 * torch.rand(n, 1, 1, generator=gen)
    for k in range(n):
        ref = np.roll(x[k].view(2, 11).numpy(), int(offsets[k, 0]), axis=1) * float(scales[k])
        np.testing.assert_allclose(ours[k].view(2, 11).numpy(), ref, rtol=1e-6)
    assert 0.8 <= scales.min() and scales.max() <= 1.2 and len(set(offsets.flatten().tolist())) > 3


def _augment(kind: str, sigma: float, task: str) -> tuple:
    spec = RegSpec("augment", sigma, freeze({"kind": kind}))
    c = Cell(TaskSpec(task), ArchSpec("mlp"), spec, 0)
    reg = REGULARIZERS.get("augment")(spec, c)
    return reg


@pytest.mark.parametrize("kind", ["rotate_crop", "roll_scale"])
def test_strength_zero_adds_no_noise_and_sigma_does(kind):
    from regbench.tasks.base import TaskData

    shape = (1, 8, 8) if kind == "rotate_crop" else (1, 40)
    d = int(np.prod(shape))
    x = torch.randn(5, d, generator=torch.Generator().manual_seed(2))
    data = TaskData(x, x, x, x, x, x, "regression", 1, "rmse",
                    image_shape=shape if kind == "rotate_crop" else None, channel_shape=shape,
                    x_center=np.full(d, 0.3), x_scale=np.full(d, 2.0))
    fn = rotate_crop_images if kind == "rotate_crop" else roll_scale_signals
    zero, noisy = _augment(kind, 0.0, "digits"), _augment(kind, 0.5, "digits")
    expected = (fn(x * 2.0 + 0.3, shape, torch.Generator().manual_seed(0)) - 0.3) / 2.0
    zero.gen.manual_seed(0)
    noisy.gen.manual_seed(0)
    ctx = SimpleNamespace(data=data)
    got0, got1 = zero.augment(x, ctx), noisy.augment(x, ctx)
    torch.testing.assert_close(got0, expected.float())
    resid = got1 - got0
    assert 0.3 < resid.std().item() < 0.7  # the noise of std 0.5 on top of the same transform


def test_skip_reasons():
    aug = REGULARIZERS.get("augment")
    spec = lambda k: RegSpec("augment", 0.0, freeze({"kind": k}))  # noqa: E731
    mlp = ARCHS.get("mlp")()
    assert aug.skip_reason(TASKS.get("diabetes")(), mlp, spec("rotate_crop")) == (
        "augment kind=rotate_crop needs image inputs; diabetes has none")
    assert aug.skip_reason(TASKS.get("digits")(), mlp, spec("roll_scale")) == (
        "augment kind=roll_scale needs 1-D signal inputs; digits has none")
    assert aug.skip_reason(TASKS.get("mnist1d")(), mlp, spec("roll_scale")) is None
    assert aug.skip_reason(TASKS.get("digits")(), mlp, spec("rotate_crop")) is None


@pytest.mark.parametrize("task,kind", [("digits", "rotate_crop"), ("mnist1d", "roll_scale")])
def test_a_cell_is_bitwise_reproducible(task, kind):
    tp = {"n_train": 150} if task == "digits" else {"num_samples": 400}
    c = Cell(TaskSpec(task, freeze(tp)), ArchSpec("mlp", freeze({"width": 16, "depth": 1})),
             RegSpec("augment", 0.0, freeze({"kind": kind})), 0, freeze({"epochs": 2}))
    a, b = run_cell(c), run_cell(c)
    assert a.status == "ok", a.error
    assert a.metrics["train_loss"] == b.metrics["train_loss"] and a.curves == b.curves
    none = run_cell(Cell(c.task, c.arch, RegSpec("none"), 0, c.protocol))
    assert none.curves != a.curves
