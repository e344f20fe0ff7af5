"""The CIFAR ResNets of He et al. 2016 (sec. 4.2): depth 6n+2, three stages of n blocks.

A 3x3 conv of 16*widen channels, then three stages of n basic blocks at 16, 32 and 64
channels (times `widen`), the second and third starting with a stride-2 block, global
average pooling and a linear head: 20, 32, 44, 56, 110 layers for n = 3, 5, 7, 9, 18.
Shortcuts are option A of the paper (its CIFAR choice): identity, and where the shape
changes, stride-2 subsampling with the new channels zero-padded; no parameters.

BatchNorm after every conv is part of the architecture (the paper's), so the `none` cell
of a resnet already has it and the `batchnorm` regularizer is skipped on it. Dropout
(when a regularizer asks) sits between the two convs of each block, as in wide ResNets;
stochastic depth drops each block's residual branch per sample, with the linear decay of
Huang et al. 2016 (block i of L: p * i / L); ShakeDrop (when on) scales the branch first,
with the same decay.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from regbench.archs.base import Arch, Knobs
from regbench.archs.cnn import AsImage
from regbench.archs.resmlp import DropPath, shake_drop
from regbench.errors import RegbenchError
from regbench.params import Param
from regbench.registry import register_arch
from regbench.specs import ArchSpec
from regbench.tasks.base import TaskData


class GlobalAvgPool(nn.Module):
    """(N, C, H, W) -> (N, C) by a mean over the pixels (unlike AdaptiveAvgPool2d, its
    CUDA backward is deterministic)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class ShortcutA(nn.Module):
    """Option A: identity; on a shape change, subsample by `stride` and zero-pad channels."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.extra, self.stride = cout - cin, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra))
        return x


class BasicBlock(nn.Module):
    """relu(shortcut(x) + DropPath(ShakeDrop(conv-BN-relu-[dropout]-conv-BN (x))))."""

    def __init__(self, cin: int, cout: int, stride: int, knobs: Knobs, index: int,
                 p_drop_path: float, total: int = 1):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                                   nn.BatchNorm2d(cout), nn.ReLU()]
        if knobs.dropout > 0:
            layers.append(knobs.dropout_layer(knobs.dropout, index))
        layers += [nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)]
        self.branch = nn.Sequential(*layers)
        self.shortcut = ShortcutA(cin, cout, stride)
        self.shake = shake_drop(knobs, index, total)
        self.drop_path = DropPath(p_drop_path, knobs.drop_path_generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.shortcut(x) + self.drop_path(self.shake(self.branch(x))))


def blocks_per_stage(depth: int) -> int:
    """n of depth = 6n + 2, or a RegbenchError naming the allowed depths."""
    if depth < 8 or (depth - 2) % 6:
        raise RegbenchError(f"architecture 'resnet': depth={depth} is not allowed; allowed: "
                            "6n+2 for n >= 1 (8, 14, 20, 32, 44, 56, 110, ...)")
    return (depth - 2) // 6


@register_arch("resnet")
class ResNet(Arch):
    """He et al. 2016 CIFAR ResNet: depth 6n+2 (20/32/56), widen x 16/32/64 channels, option-A
    shortcuts, BatchNorm built in; hosts stochastic depth."""

    inputs = frozenset({"image"})
    # batchnorm is built in: the batchnorm regularizer does not apply (see regularizers)
    capabilities = frozenset({"hidden", "residual", "intrinsic_batchnorm"})
    params = {"depth": Param(20, int, lo=8, hi=1000, doc="6n+2: 20, 32, 44, 56, 110"),
              "widen": Param(1, int, lo=1, hi=64, doc="channel multiplier of 16/32/64")}

    def check(self, spec: ArchSpec) -> None:
        super().check(spec)
        blocks_per_stage(int(self.param(spec, "depth")))

    def build(self, spec: ArchSpec, data: TaskData, knobs: Knobs) -> nn.Module:
        assert data.image_shape is not None
        n = blocks_per_stage(int(self.param(spec, "depth")))
        k = int(self.param(spec, "widen"))
        widths = [16 * k, 32 * k, 64 * k]
        total = 3 * n
        layers: list[nn.Module] = [
            AsImage(data.image_shape),
            nn.Conv2d(data.image_shape[0], widths[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(widths[0]), nn.ReLU()]
        cin, index = widths[0], 0
        for stage, cout in enumerate(widths):
            for b in range(n):
                stride = 2 if stage > 0 and b == 0 else 1
                layers.append(BasicBlock(cin, cout, stride, knobs, index,
                                         knobs.drop_path * (index + 1) / total, total))
                cin, index = cout, index + 1
        layers += [GlobalAvgPool(), nn.Linear(cin, data.n_out)]
        return nn.Sequential(*layers)
