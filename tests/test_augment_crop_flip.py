"""augment kind=crop_flip: the standard CIFAR pad-4 random crop and horizontal flip."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from regbench.registry import ARCHS, REGULARIZERS, TASKS
from regbench.regularizers.augment import crop_flip_images
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze
from regbench.train import run_cell


def reference(x, shape, gen, pad=4):
    """Per image: draw (dy, dx) and flip exactly as crop_flip_images does, then slice."""
    c, h, w = shape
    n = len(x)
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen)
    flip = torch.randint(0, 2, (n, 1), generator=gen).bool()
    img = F.pad(x.view(n, c, h, w), (pad, pad, pad, pad))
    out = []
    for i in range(n):
        dy, dx = offsets[i].tolist()
        crop = img[i, :, dy:dy + h, dx:dx + w]
        out.append(crop.flip(-1) if flip[i, 0] else crop)
    return torch.stack(out).reshape(n, -1), offsets, flip


def test_crop_flip_matches_a_per_image_loop_bitwise():
    x = torch.randn(64, 3 * 32 * 32, generator=torch.Generator().manual_seed(1))
    ours = crop_flip_images(x, (3, 32, 32), torch.Generator().manual_seed(7))
    ref, offsets, flip = reference(x, (3, 32, 32), torch.Generator().manual_seed(7))
    assert torch.equal(ours, ref)
    assert 0 < flip.sum() < 64 and offsets.min() == 0 and offsets.max() == 8


def test_without_padding_each_image_is_kept_or_mirrored():
    x = torch.arange(40 * 2 * 5 * 6, dtype=torch.float32).view(40, -1)
    out = crop_flip_images(x, (2, 5, 6), torch.Generator().manual_seed(3), pad=0)
    img, got = x.view(40, 2, 5, 6), out.view(40, 2, 5, 6)
    same = [torch.equal(got[i], img[i]) for i in range(40)]
    mirrored = [torch.equal(got[i], img[i].flip(-1)) for i in range(40)]
    assert all(a or b for a, b in zip(same, mirrored)) and any(same) and any(mirrored)


def test_crop_flip_needs_images():
    reason = REGULARIZERS.get("augment").skip_reason(
        TASKS.get("diabetes")(), ARCHS.get("mlp")(), RegSpec("augment", 0.0,
                                                            freeze({"kind": "crop_flip"})))
    assert reason and "kind=crop_flip needs image inputs" in reason


def test_a_cifar_cell_with_crop_flip_is_bitwise_reproducible(bikes_dir):
    c = Cell(TaskSpec("cifar10"), ArchSpec("resnet", freeze({"depth": 8})),
             RegSpec("augment", 0.0, freeze({"kind": "crop_flip"})), 0, freeze({"epochs": 2}))
    a, b = run_cell(c, str(bikes_dir)), run_cell(c, str(bikes_dir))
    assert a.status == "ok", a.error
    none = run_cell(Cell(c.task, c.arch, RegSpec("none"), 0, c.protocol), str(bikes_dir))
    for k in ("train_loss", "test_loss", "train_metric", "test_metric"):
        assert a.metrics[k] == b.metrics[k]
    assert a.metrics["train_loss"] != none.metrics["train_loss"]
