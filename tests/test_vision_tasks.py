"""The vision loaders read small files written in the exact official formats."""

from __future__ import annotations

import gzip
import pickle
import shutil

import numpy as np
import pytest
import torch
from data_files import idx_bytes, write_cifar10, write_cifar100, write_mnist

from regbench.errors import DataError
from regbench.registry import TASKS
from regbench.specs import TaskSpec, freeze
from regbench.tasks.formats import read_cifar_batch, read_idx


def _raw(data, split):
    """Undo the per-channel normalization: the uint8 pixels the loader read."""
    x = getattr(data, f"x_{split}").double().numpy()
    return np.rint(x * data.x_scale + data.x_center).astype(np.int64)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    arr = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    path = tmp_path / ("a.gz" if gz else "a")
    blob = idx_bytes(arr)
    assert blob[:4] == b"\x00\x00\x08\x03" and int.from_bytes(blob[4:8], "big") == 7
    path.write_bytes(gzip.compress(blob) if gz else blob)
    assert np.array_equal(read_idx(path), arr)


@pytest.mark.parametrize("layout", ["direct", "torchvision"])
@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_both_layouts(tmp_path, layout, gz):
    folder = tmp_path / "MNIST" / "raw" if layout == "torchvision" else tmp_path
    written = write_mnist(folder, n_train=120, n_test=30, gz=gz)
    data = TASKS.get("mnist")().load(TaskSpec("mnist"), 0, tmp_path)
    assert data.image_shape == (1, 28, 28) and data.n_out == 10
    # the official test split, in file order, for every seed
    assert np.array_equal(_raw(data, "test"), written["test_images"].reshape(30, -1))
    assert torch.equal(data.y_test, torch.from_numpy(written["test_labels"].astype(np.int64)))
    # validation is 1/6 of the official train split, disjoint from train
    assert len(data.x_val) == 20 and len(data.x_train) == 100
    train_rows = {r.tobytes() for r in written["train_images"].reshape(120, -1)}
    seen = [r.tobytes() for r in np.concatenate([_raw(data, "train"), _raw(data, "val")])
            .astype(np.uint8)]
    assert set(seen) == train_rows and len(seen) == 120


def test_fashion_mnist_and_mnist_under_one_root(tmp_path):
    a = write_mnist(tmp_path / "MNIST" / "raw", n_train=60, n_test=20, seed=1)
    b = write_mnist(tmp_path / "FashionMNIST" / "raw", n_train=60, n_test=20, seed=2)
    m = TASKS.get("mnist")().load(TaskSpec("mnist"), 0, tmp_path)
    f = TASKS.get("fashion_mnist")().load(TaskSpec("fashion_mnist"), 0, tmp_path)
    assert np.array_equal(_raw(m, "test"), a["test_images"].reshape(20, -1))
    assert np.array_equal(_raw(f, "test"), b["test_images"].reshape(20, -1))


def test_validation_carve_out_is_seeded_and_stratified(tmp_path):
    write_mnist(tmp_path, n_train=600, n_test=20)
    t = TASKS.get("mnist")()
    a, b, c = (t.load(TaskSpec("mnist"), s, tmp_path) for s in (0, 0, 1))
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.x_train, b.x_train)
    assert not torch.equal(a.y_val, c.y_val)
    assert np.array_equal(_raw(a, "test"), _raw(c, "test"))  # the official test split
    assert torch.equal(a.y_test, c.y_test)
    # 60 of each class in train -> exactly 10 of each in validation
    assert torch.equal(torch.bincount(a.y_val), torch.full((10,), 10))


def test_normalization_is_per_channel_on_train(tmp_path):
    write_cifar10(tmp_path / "cifar-10-batches-py", per_batch=20)
    d = TASKS.get("cifar10")().load(TaskSpec("cifar10"), 0, tmp_path)
    assert d.channel_shape == (3, 32, 32) and d.x_train.shape[1] == 3072
    x = d.x_train.double().view(len(d.x_train), 3, -1)
    assert torch.allclose(x.mean((0, 2)), torch.zeros(3, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(x.std((0, 2), unbiased=False), torch.ones(3, dtype=torch.float64),
                          atol=1e-5)
    raw = _raw(d, "train").reshape(-1, 3, 1024)
    expect = raw.transpose(1, 0, 2).reshape(3, -1)
    assert np.allclose(d.x_center[::1024], expect.mean(1), rtol=0, atol=1e-12)
    assert np.allclose(d.x_scale[::1024], expect.std(1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("layout", ["direct", "torchvision"])
def test_cifar10_reads_the_python_batches(tmp_path, layout):
    folder = tmp_path / "cifar-10-batches-py" if layout == "torchvision" else tmp_path
    written = write_cifar10(folder, per_batch=30)
    d = TASKS.get("cifar10")().load(TaskSpec("cifar10"), 0, tmp_path)
    assert len(d.x_train) + len(d.x_val) == 150 and len(d.x_val) == 15
    assert np.array_equal(_raw(d, "test"), written["test_images"])
    assert torch.equal(d.y_test, torch.from_numpy(written["test_labels"].astype(np.int64)))


@pytest.mark.parametrize("layout", ["direct", "torchvision"])
def test_cifar100_reads_fine_labels(tmp_path, layout):
    folder = tmp_path / "cifar-100-python" if layout == "torchvision" else tmp_path
    written = write_cifar100(folder, n_train=200, n_test=50)
    d = TASKS.get("cifar100")().load(TaskSpec("cifar100"), 0, tmp_path)
    assert d.n_out == 100 and len(d.x_val) == 20
    assert torch.equal(d.y_test, torch.from_numpy(written["test_labels"].astype(np.int64)))
    assert np.array_equal(_raw(d, "test"), written["test_images"])


def test_n_train_and_label_noise(tmp_path):
    write_mnist(tmp_path, n_train=240, n_test=20)
    t = TASKS.get("mnist")()
    clean = t.load(TaskSpec("mnist"), 0, tmp_path)
    small = t.load(TaskSpec("mnist", freeze({"n_train": 50})), 0, tmp_path)
    noisy = t.load(TaskSpec("mnist", freeze({"label_noise": 0.5})), 0, tmp_path)
    # the same carve-out; normalized with the smaller train split's statistics
    assert len(small.x_train) == 50
    assert np.array_equal(_raw(small, "val"), _raw(clean, "val"))
    assert torch.equal(small.y_train, clean.y_train[:50])
    assert (noisy.y_train != clean.y_train).double().mean().item() == pytest.approx(0.5)
    assert torch.equal(noisy.y_test, clean.y_test)


# -- errors ----------------------------------------------------------------------------
def test_missing_files_name_the_files_folders_and_source(tmp_path, monkeypatch):
    monkeypatch.delenv("REGBENCH_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="--data-dir"):
        TASKS.get("cifar10")().load(TaskSpec("cifar10"), 0, None)
    with pytest.raises(DataError) as info:
        TASKS.get("mnist")().load(TaskSpec("mnist"), 0, tmp_path)
    msg = str(info.value)
    assert "train-images-idx3-ubyte[.gz]" in msg and str(tmp_path / "MNIST" / "raw") in msg
    assert "yann.lecun.com" in msg
    with pytest.raises(DataError, match="cifar-100-python.tar.gz"):
        TASKS.get("cifar100")().check_available(tmp_path)


def test_env_var_is_the_fallback_data_dir(tmp_path, monkeypatch):
    write_mnist(tmp_path / "FashionMNIST" / "raw", n_train=60, n_test=10)
    monkeypatch.setenv("REGBENCH_DATA_DIR", str(tmp_path))
    d = TASKS.get("fashion_mnist")().load(TaskSpec("fashion_mnist"), 0, None)
    assert len(d.x_test) == 10


def test_partial_folder_names_the_missing_file(tmp_path):
    write_mnist(tmp_path, n_train=60, n_test=10)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"not t10k-labels-idx1-ubyte\[\.gz\]"):
        TASKS.get("mnist")().load(TaskSpec("mnist"), 0, tmp_path)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_idx_file_is_detected(tmp_path, gz):
    write_mnist(tmp_path, n_train=60, n_test=10, gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    path = tmp_path / name
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=name.replace(".", r"\.") + ".*(truncated|cannot be read)"):
        TASKS.get("mnist")().load(TaskSpec("mnist"), 0, tmp_path)


def test_bad_idx_magic_and_shape(tmp_path):
    (tmp_path / "x").write_bytes(b"\x00\x01\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(DataError, match="not an idx file"):
        read_idx(tmp_path / "x")
    (tmp_path / "y").write_bytes(idx_bytes(np.zeros((3, 3), np.uint8)) + b"\x00")
    with pytest.raises(DataError, match="longer than its header"):
        read_idx(tmp_path / "y")
    write_mnist(tmp_path / "m", n_train=60, n_test=10)
    (tmp_path / "m" / "t10k-images-idx3-ubyte").write_bytes(
        idx_bytes(np.zeros((10, 27, 28), np.uint8)))
    with pytest.raises(DataError, match="expected N x 28 x 28"):
        TASKS.get("mnist")().load(TaskSpec("mnist"), 0, tmp_path / "m")


def test_truncated_cifar_batch_is_detected(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder, per_batch=20)
    path = folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(DataError, match="data_batch_3.*truncated"):
        TASKS.get("cifar10")().load(TaskSpec("cifar10"), 0, tmp_path)


def test_short_cifar_batch_is_detected_against_batches_meta(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder, per_batch=20)
    with (folder / "data_batch_2").open("rb") as fh:
        d = pickle.load(fh, encoding="bytes")
    d[b"data"], d[b"labels"] = d[b"data"][:19], d[b"labels"][:19]
    with (folder / "data_batch_2").open("wb") as fh:
        pickle.dump(d, fh, protocol=2)
    with pytest.raises(DataError, match="data_batch_2: 19 images; batches.meta says 20"):
        TASKS.get("cifar10")().load(TaskSpec("cifar10"), 0, tmp_path)


def test_cifar_pickle_cannot_run_code(tmp_path):
    path = tmp_path / "data_batch_1"
    with path.open("wb") as fh:
        pickle.dump({"data": shutil.rmtree}, fh, protocol=2)
    with pytest.raises(DataError, match="refusing to load shutil"):
        read_cifar_batch(path, "labels")


def test_cifar_missing_key_lists_the_keys(tmp_path):
    path = tmp_path / "test"
    with path.open("wb") as fh:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}, fh, protocol=2)
    with pytest.raises(DataError, match="no 'fine_labels' entry; found"):
        read_cifar_batch(path, "fine_labels")
