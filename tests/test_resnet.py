"""The CIFAR ResNets of He et al. 2016 and the cnn on any (C, H, W)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from regbench.archs.base import Knobs
from regbench.errors import RegbenchError
from regbench.matrix import Matrix
from regbench.registry import ARCHS, REGULARIZERS, TASKS
from regbench.specs import ArchSpec, freeze
from regbench.tasks.base import TaskData


def data(shape=(3, 32, 32), n_out=10, n=4):
    z = torch.randn(n, int(torch.tensor(shape).prod()))
    y = torch.zeros(n, dtype=torch.int64)
    return TaskData(z, y, z, y, z, y, "classification", n_out, "accuracy", image_shape=shape)


def build(depth=20, widen=1, knobs=None, shape=(3, 32, 32)):
    spec = ArchSpec("resnet", freeze({"depth": depth, "widen": widen}))
    return ARCHS.get("resnet")().build(spec, data(shape), knobs or Knobs())


@pytest.mark.parametrize("depth,params", [(20, 0.27e6), (32, 0.46e6), (56, 0.85e6)])
def test_depth_and_parameter_count_follow_the_paper(depth, params):
    model = build(depth)
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == depth  # 6n+2 weighted layers, option-A shortcuts have none
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - params) / params < 0.02  # Table 6 of He et al. 2016
    assert all(isinstance(m, nn.BatchNorm2d) for m in model.modules()
               if isinstance(m, nn.BatchNorm2d))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == depth - 1


def test_widen_multiplies_the_channels():
    convs = [m for m in build(8, widen=2).modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 32, 64, 64, 128, 128]


def test_depth_must_be_6n_plus_2():
    with pytest.raises(RegbenchError, match="depth=21 is not allowed; allowed: 6n\\+2"):
        ARCHS.get("resnet")().check(ArchSpec("resnet", freeze({"depth": 21})))
    with pytest.raises(RegbenchError, match="widen=0"):
        ARCHS.get("resnet")().check(ArchSpec("resnet", freeze({"widen": 0})))


def test_stochastic_depth_drops_blocks_with_linear_decay():
    g = torch.Generator().manual_seed(0)
    model = build(20, knobs=Knobs(drop_path=0.5, drop_path_generator=g))
    rates = [m.drop_path.p for m in model.modules() if hasattr(m, "drop_path")]
    assert rates == pytest.approx([0.5 * (i + 1) / 9 for i in range(9)])
    x = torch.randn(8, 3072)
    model.eval()
    assert torch.equal(model(x), model(x))  # eval: no dropping


def test_dropout_sits_inside_each_block():
    model = build(8, knobs=Knobs(dropout=0.3))
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 3


def test_batchnorm_regularizer_is_skipped_on_resnet_and_says_why():
    reason = REGULARIZERS.get("batchnorm").skip_reason(TASKS.get("cifar10")(),
                                                       ARCHS.get("resnet")())
    assert reason and "part of resnet" in reason
    assert REGULARIZERS.get("stochastic_depth").skip_reason(
        TASKS.get("cifar10")(), ARCHS.get("resnet")()) is None
    m = Matrix.from_dict({"name": "x", "blocks": [
        {"tasks": ["cifar10"], "archs": ["resnet"], "regularizers": ["none", "batchnorm"]}]})
    assert [s.regularizer for s in m.expand().skipped] == ["batchnorm"]


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (2, 5, 7), (1, 1, 9), (4, 3, 1)])
@pytest.mark.parametrize("arch", ["cnn", "resnet"])
def test_image_archs_take_any_chw(arch, shape):
    spec = ArchSpec(arch, freeze({"depth": 8}) if arch == "resnet" else ())
    d = data(shape, n_out=7, n=3)
    model = ARCHS.get(arch)().build(spec, d, Knobs(batchnorm=True))
    out = model(d.x_train)
    assert out.shape == (3, 7)
    out.sum().backward()
