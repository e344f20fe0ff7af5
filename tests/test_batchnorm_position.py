"""batchnorm position="before"|"after" the activation: module order in every hidden-layer
architecture, the default's cell ids and models unchanged, a reference forward, bitwise rerun."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from regbench.archs.base import Knobs
from regbench.errors import RegbenchError
from regbench.registry import ARCHS, REGULARIZERS
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze
from regbench.tasks.base import TaskData
from regbench.train import run_cell

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
ACTS = (nn.ReLU, nn.LeakyReLU, nn.Tanh)


def _data(arch: str) -> TaskData:
    shape = {"cnn": (1, 8, 8), "cnn1d": (1, 40)}.get(arch)
    d = 64 if arch == "cnn" else 40
    x = torch.zeros(4, d)
    return TaskData(x, torch.zeros(4, dtype=torch.long), x, x, x, x, "classification", 3,
                    "accuracy", image_shape=shape if arch == "cnn" else None, channel_shape=shape)


def _knobs(position: str | None) -> Knobs:
    spec = RegSpec("batchnorm", 1.0, freeze({"position": position} if position else {}))
    knobs = Knobs()
    REGULARIZERS.get("batchnorm")(spec, Cell(TaskSpec("digits"), ArchSpec("mlp"), spec, 0)
                                  ).configure_model(knobs)
    return knobs


def _leaves(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if not list(m.children())]


@pytest.mark.parametrize("arch", ["mlp", "wide", "cnn", "resmlp", "mlp_residual", "cnn1d"])
def test_every_norm_sits_where_asked(arch):
    a = ARCHS.get(arch)()
    for position in ("before", "after"):
        leaves = _leaves(a.build(ArchSpec(arch), _data(arch), _knobs(position)))
        norms = [i for i, m in enumerate(leaves) if isinstance(m, NORMS)]
        assert norms
        for i in norms:
            if position == "before":  # layer (no bias) -> BN -> activation
                assert isinstance(leaves[i + 1], ACTS) and leaves[i - 1].bias is None
            else:  # layer (bias) -> activation -> BN
                assert isinstance(leaves[i - 1], ACTS) and leaves[i - 2].bias is not None


@pytest.mark.parametrize("arch", ["mlp", "cnn", "resmlp", "cnn1d"])
def test_the_default_builds_the_same_model_as_before_the_parameter(arch):
    a = ARCHS.get(arch)()
    plain = a.build(ArchSpec(arch), _data(arch), Knobs(batchnorm=True))
    named = a.build(ArchSpec(arch), _data(arch), _knobs("before"))
    default = a.build(ArchSpec(arch), _data(arch), _knobs(None))
    assert [type(m) for m in _leaves(plain)] == [type(m) for m in _leaves(named)] == [
        type(m) for m in _leaves(default)]


def test_cell_ids_of_cells_that_do_not_name_it_are_unchanged():
    c = Cell(TaskSpec("digits"), ArchSpec("mlp"), RegSpec("batchnorm", 1.0), 0)
    assert c.cell_id == "db156a955e9b3624"  # the id this cell had before `position` existed
    named = Cell(c.task, c.arch, RegSpec("batchnorm", 1.0, freeze({"position": "after"})), 0)
    assert named.cell_id != c.cell_id


def test_after_computes_act_then_batchnorm():
    torch.manual_seed(0)
    x = torch.randn(32, 5)
    model = ARCHS.get("mlp")().build(
        ArchSpec("mlp", freeze({"width": 4, "depth": 1, "activation": "relu"})),
        TaskData(x, x, x, x, x, x, "regression", 2, "rmse"), _knobs("after")).train()
    lin, head = model[1], model[-1]
    h = torch.relu(x @ lin.weight.T + lin.bias)
    h = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + 1e-5)  # BN, gamma 1, beta 0
    torch.testing.assert_close(model(x), h @ head.weight.T + head.bias)


def test_a_bad_position_is_refused():
    with pytest.raises(RegbenchError, match="position"):
        REGULARIZERS.get("batchnorm").check(RegSpec("batchnorm", 1.0,
                                                    freeze({"position": "inside"})))


def test_an_after_cell_is_bitwise_reproducible_and_differs_from_before():
    spec = RegSpec("batchnorm", 1.0, freeze({"position": "after"}))
    c = Cell(TaskSpec("digits", freeze({"n_train": 150})),
             ArchSpec("mlp", freeze({"width": 16, "depth": 2})), spec, 0, freeze({"epochs": 3}))
    a, b = run_cell(c), run_cell(c)
    assert a.status == "ok", a.error
    assert a.metrics["test_loss"] == b.metrics["test_loss"] and a.curves == b.curves
    before = run_cell(Cell(c.task, c.arch, RegSpec("batchnorm", 1.0), 0, c.protocol))
    assert before.curves != a.curves
