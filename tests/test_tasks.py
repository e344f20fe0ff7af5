import numpy as np
import pytest
import torch
from data_files import task_spec

from regbench.errors import DataError, RegbenchError
from regbench.registry import TASKS
from regbench.specs import TaskSpec, freeze
from regbench.tasks.bikes import load_frame


@pytest.mark.parametrize("name", sorted(TASKS.builtin_names()))
def test_task_loads_standardized_split(name, bikes_dir):
    data = TASKS.get(name)().load(task_spec(name, bikes_dir), seed=0, data_dir=bikes_dir)
    for x in (data.x_train, data.x_val, data.x_test):
        assert x.dtype == torch.float32 and x.shape[1] == data.n_features
    # standardized on the train split only: per feature for tabular rows, per channel for
    # images and signals (each channel's pixels together have mean 0, std 1)
    x = data.x_train.double()
    if data.channel_shape is not None:
        x = x.view(len(x), data.channel_shape[0], -1).transpose(0, 1).reshape(
            data.channel_shape[0], -1).T
    mean, std = x.mean(0), x.std(0, unbiased=False)
    assert torch.allclose(mean, torch.zeros_like(mean), atol=1e-5)
    assert torch.all((std - 1).abs() < 1e-4) or torch.all(((std - 1).abs() < 1e-4) | (std < 1e-6))
    if data.kind == "classification":
        assert data.y_train.dtype == torch.int64 and data.n_out >= 2
    else:
        assert data.y_train.shape[1] == 1 and data.n_out == 1


@pytest.mark.parametrize("name", ["curve", "periodic", "digits"])
def test_task_data_is_seeded(name):
    t = TASKS.get(name)()
    a, b = t.load(TaskSpec(name), 1), t.load(TaskSpec(name), 1)
    c = t.load(TaskSpec(name), 2)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.y_train, c.y_train)


def test_curve_follows_seed_000():
    d = TASKS.get("curve")().load(TaskSpec("curve"), 0)
    assert len(d.x_train) == 21 and len(d.x_test) == 201
    raw = d.x_train.flatten().numpy() * d.x_scale[0] + d.x_center[0]
    assert np.allclose(raw, 0.05 * np.arange(21), atol=1e-6)


def test_label_noise_flips_the_requested_fraction():
    t = TASKS.get("digits")()
    clean = t.load(TaskSpec("digits"), 0)
    noisy = t.load(TaskSpec("digits", freeze({"label_noise": 0.2})), 0)
    flipped = (clean.y_train != noisy.y_train).double().mean().item()
    assert abs(flipped - 0.2) < 0.005
    assert torch.equal(clean.y_test, noisy.y_test)  # test labels stay clean
    with pytest.raises(RegbenchError, match="1.5"):
        t.load(TaskSpec("digits", freeze({"label_noise": 1.5})), 0)


def test_n_train_caps_the_training_split():
    d = TASKS.get("digits")().load(TaskSpec("digits", freeze({"n_train": 100})), 0)
    assert len(d.x_train) == 100


def test_bikes_loader_reads_uci_layout(bikes_dir):
    x, y = load_frame(bikes_dir / "hour.csv")
    assert x.shape[0] == y.shape[0] == 240
    # 7 numeric columns + one-hot season/mnth/hr/weekday/weathersit
    assert x.shape[1] > 7 + 24


def test_bikes_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("REGBENCH_DATA_DIR", raising=False)
    t = TASKS.get("bikes")()
    with pytest.raises(DataError, match="--data-dir"):
        t.load(TaskSpec("bikes"), 0, None)
    with pytest.raises(DataError, match="no hour.csv in"):
        t.load(TaskSpec("bikes"), 0, tmp_path)
    (tmp_path / "hour.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="missing column"):
        t.load(TaskSpec("bikes"), 0, tmp_path)


def test_unknown_task_param():
    with pytest.raises(RegbenchError, match="label_nois.*valid choices"):
        TASKS.get("digits")().load(TaskSpec("digits", freeze({"label_nois": 0.1})), 0)
