"""Inputs: images and signals are normalized per channel on the train split, and
augmentation works in raw pixel space before the same normalization."""

from __future__ import annotations

from types import SimpleNamespace  # a context with the split, for augment(x, ctx)

import numpy as np
import pytest
import torch

from regbench.matrix import Matrix
from regbench.registry import REGULARIZERS, TASKS
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze
from regbench.train import run_cell


def test_digits_is_normalized_with_one_mean_and_std_per_channel():
    task = TASKS.get("digits")()
    raw = task.arrays(TaskSpec("digits"), 0, None)[0]
    data = task.load(TaskSpec("digits"), 0)
    assert data.channel_shape == (1, 8, 8)
    # one scale for all 64 pixels: the train split's pixel mean and std
    assert np.all(data.x_center == raw.mean()) and np.all(data.x_scale == raw.std())
    x = data.x_train.double()
    assert abs(float(x.mean())) < 1e-6 and abs(float(x.std(unbiased=False)) - 1) < 1e-5
    # per-pixel standardization blew rarely-inked pixels up to |x| = 33; per channel the
    # largest clean input is (16 - mean) / std, about 2.4
    assert float(data.x_train.abs().max()) < 3.0


@pytest.mark.parametrize("kind", ["shift", "both", "noise"])
def test_augmented_inputs_stay_within_the_clean_range_plus_a_few_sigma(kind):
    sigma = 0.3
    cell = Cell(TaskSpec("digits"), ArchSpec("mlp"), RegSpec("augment", sigma,
                freeze({"kind": kind})), 0)
    reg = REGULARIZERS.get("augment")(cell.reg, cell)
    data = TASKS.get("digits")().load(TaskSpec("digits"), 0)
    clean_max = float(data.x_train.abs().max())
    out = torch.cat([reg.augment(data.x_train[i:i + 256], SimpleNamespace(data=data))
                     for i in range(0, len(data.x_train), 256)])
    bound = clean_max + (0 if kind == "shift" else 6 * sigma)
    assert float(out.abs().max()) <= bound + 1e-5
    if kind != "noise":  # shifts moved ink: not the identity
        assert not torch.equal(out, data.x_train)
    if kind == "shift":  # a pure shift only moves raw pixel values around (and zero-fills)
        raw = out * float(data.x_scale[0]) + float(data.x_center[0])
        assert torch.allclose(raw, raw.round(), atol=1e-4) and float(raw.min()) > -1e-4


def test_augment_kind_is_part_of_the_cell_and_shift_needs_images():
    ids = {Cell(TaskSpec("digits"), ArchSpec("mlp"), RegSpec("augment", 0.1,
                freeze({"kind": k})), 0).cell_id for k in ("noise", "shift", "both")}
    assert len(ids) == 3
    m = Matrix.from_dict({"blocks": [{
        "tasks": ["digits", "diabetes"], "archs": ["mlp"],
        "regularizers": [{"name": "augment", "kind": "shift", "strengths": [0.1]}]}]})
    exp = m.expand()
    assert {c.task.name for c in exp.cells} == {"digits"}
    assert any("kind=shift needs image inputs" in s.reason for s in exp.skipped)
    # a list-valued regularizer parameter sweeps, as task and arch parameters do
    swept = Matrix.from_dict({"blocks": [{
        "tasks": ["digits"], "archs": ["mlp"],
        "regularizers": [{"name": "augment", "kind": ["noise", "shift", "both"],
                          "strengths": [0.1]}]}]}).expand()
    assert sorted(c.reg.get("kind") for c in swept.cells) == ["both", "noise", "shift"]


def test_noise_only_augment_on_images_is_not_shifted():
    cell = Cell(TaskSpec("digits"), ArchSpec("mlp"), RegSpec("augment", 0.0,
                freeze({"kind": "noise"})), 0)
    reg = REGULARIZERS.get("augment")(cell.reg, cell)
    data = TASKS.get("digits")().load(TaskSpec("digits"), 0)
    x = data.x_train[:50]
    assert torch.equal(reg.augment(x, SimpleNamespace(data=data)), x)


def test_augmented_digits_cell_trains():
    cell = Cell(TaskSpec("digits", freeze({"n_train": 300})), ArchSpec("mlp"),
                RegSpec("augment", 0.1, freeze({"kind": "shift"})), 0, freeze({"epochs": 20}))
    r = run_cell(cell)
    assert r.status == "ok" and r.metrics["test_metric"] > 0.5  # chance is 0.1
