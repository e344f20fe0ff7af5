"""label_noise_kind: `flip` (to a different class) or `uniform` (resampled over all classes)
on every classification task; the defaults keep every existing cell id and label."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_files import task_spec, write_mnist, write_table_csv

from regbench import matrix, seeding
from regbench.errors import RegbenchError
from regbench.registry import TASKS
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze
from regbench.train import run_cell

CLASSIFICATION = ["digits", "breast_cancer", "mnist1d", "mnist", "fashion_mnist", "cifar10",
                  "cifar100", "table"]


def cells_of(tasks: list) -> list[Cell]:
    m = matrix.Matrix.from_dict({"name": "t", "blocks": [
        {"tasks": tasks, "archs": ["mlp"], "regularizers": ["none"], "strengths": "first"}]})
    return m.expand().cells


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_every_classification_task_takes_label_noise_kind(name):
    declared = TASKS.get(name)().params["label_noise_kind"]
    assert declared.choices == ("flip", "uniform")
    assert declared.default == ("uniform" if name == "mnist1d" else "flip")


def test_uniform_resamples_over_all_classes_and_flip_always_changes_the_label():
    t = TASKS.get("digits")()
    clean = t.load(TaskSpec("digits"), 0).y_train
    flip = t.load(TaskSpec("digits", freeze({"label_noise": 1.0})), 0).y_train
    uniform = t.load(TaskSpec("digits", freeze({"label_noise": 1.0,
                                                "label_noise_kind": "uniform"})), 0).y_train
    assert bool((flip != clean).all())
    kept = (uniform == clean).double().mean().item()
    assert 0.06 < kept < 0.14  # 1078 labels, each kept with probability 1/10
    assert set(uniform.tolist()) == set(range(10))


def test_the_defaults_change_no_cell_id_and_no_label():
    """An entry that names the default kind is the cell it always was; flip draws as before."""
    assert cells_of([{"name": "digits", "label_noise": 0.3, "label_noise_kind": "flip"}]) == \
        cells_of([{"name": "digits", "label_noise": 0.3}])
    assert cells_of([{"name": "mnist1d", "label_noise": 0.3, "label_noise_kind": "uniform"}]) \
        == cells_of([{"name": "mnist1d", "label_noise": 0.3}])
    assert cells_of([{"name": "digits", "label_noise": 0.3, "label_noise_kind": "uniform"}]) \
        != cells_of([{"name": "digits", "label_noise": 0.3}])
    # the labels of the default (flip) as this task has always drawn them
    spec = TaskSpec("digits", freeze({"label_noise": 0.3}))
    t = TASKS.get("digits")()
    y = t.load(TaskSpec("digits"), 2).y_train.numpy().copy()
    rng = seeding.numpy_rng("data", 2, "digits[label_noise=0.3]", "label_noise")
    idx = rng.choice(len(y), size=int(round(0.3 * len(y))), replace=False)
    y[idx] = (y[idx] + rng.integers(1, 10, size=len(idx))) % 10
    assert np.array_equal(t.load(spec, 2).y_train.numpy(), y)


def test_mnist1d_can_flip():
    t = TASKS.get("mnist1d")()
    base = {"num_samples": 200, "val_fraction": 0.0}
    clean = t.load(TaskSpec("mnist1d", freeze(base)), 0).y_train
    flip = t.load(TaskSpec("mnist1d", freeze({**base, "label_noise": 1.0,
                                              "label_noise_kind": "flip"})), 0).y_train
    uniform = t.load(TaskSpec("mnist1d", freeze({**base, "label_noise": 1.0})), 0).y_train
    assert bool((flip != clean).all()) and bool((uniform == clean).any())


@pytest.mark.parametrize("name", ["mnist", "table"])
def test_uniform_noise_on_file_tasks(tmp_path, name):
    write_mnist(tmp_path, n_train=300, n_test=20)
    write_table_csv(tmp_path / "table.csv", n=300)
    spec = task_spec(name, tmp_path)
    if name == "table":  # the two-class `label` column
        spec = TaskSpec("table", freeze({**dict(spec.params), "target": "label",
                                         "drop": "id,y"}))
    t = TASKS.get(name)()
    clean = t.load(spec, 0, tmp_path).y_train
    noisy = t.load(TaskSpec(name, freeze({**dict(spec.params), "label_noise": 1.0,
                                          "label_noise_kind": "uniform"})), 0, tmp_path)
    kept = (noisy.y_train == clean).double().mean().item()
    chance = 1 / noisy.n_out
    assert abs(kept - chance) < 0.12 and kept < 1


def test_an_unknown_kind_names_the_choices():
    with pytest.raises(RegbenchError, match=r"label_noise_kind='shuffle' is not allowed; "
                                            r"allowed: one of 'flip', 'uniform'"):
        cells_of([{"name": "digits", "label_noise_kind": "shuffle"}])


@pytest.mark.slow
def test_random_labels_are_memorized_and_score_chance_on_test():
    """Zhang et al. (2017): with every train label resampled uniformly a wide MLP still fits
    the train split, and scores chance on test; flipped labels score below chance."""
    def run(kind: str) -> dict:
        task = TaskSpec("digits", freeze({"label_noise": 1.0, "label_noise_kind": kind,
                                          "n_train": 300}))
        cell = Cell(task, ArchSpec("wide", freeze({"width": 512})), RegSpec("none"), 0,
                    freeze({"epochs": 60, "batch_size": 32, "lr": 3e-3}))
        result = run_cell(cell)
        assert result.status == "ok", result.error
        return result.metrics

    uniform = run("uniform")
    assert uniform["train_metric"] > 0.95
    assert 0.02 < uniform["test_metric"] < 0.2  # chance is 0.1 (360 test images)
    assert run("flip")["test_metric"] < 0.05  # the true class is never a train label


def test_noise_kinds_differ_only_in_the_drawn_labels():
    t = TASKS.get("breast_cancer")()
    a = t.load(TaskSpec("breast_cancer", freeze({"label_noise": 0.5})), 0)
    b = t.load(TaskSpec("breast_cancer", freeze({"label_noise": 0.5,
                                                 "label_noise_kind": "uniform"})), 0)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_train, b.y_train)
