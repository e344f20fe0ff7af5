"""Test data: small files in the official formats of MNIST / Fashion-MNIST (idx-ubyte) and
CIFAR-10 / CIFAR-100 (python pickles) with random pixels, a mixed CSV table, and the task
spec the registry-wide tests use for each task."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

MNIST_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def idx_bytes(array: np.ndarray) -> bytes:
    """An idx file: 0x00 0x00, type 0x08 (ubyte), ndim, big-endian int32 dims, the bytes."""
    assert array.dtype == np.uint8
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_mnist(folder: Path, n_train: int = 240, n_test: int = 60, gz: bool = False,
                seed: int = 0) -> dict[str, np.ndarray]:
    """The four idx files (NAME or NAME.gz) in `folder`; returns the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        for name, arr in zip(MNIST_NAMES[split], (images, labels)):
            blob = idx_bytes(arr)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(blob, mtime=0))
            else:
                (folder / name).write_bytes(blob)
        out[f"{split}_images"], out[f"{split}_labels"] = images, labels
    return out


def _cifar_batch(rng, n: int, n_classes: int, label_key: bytes, label: bytes) -> dict:
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.permutation(np.arange(n) % n_classes)]
    d = {b"batch_label": label, b"data": data, label_key: labels,
         b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
    if label_key == b"fine_labels":
        d[b"coarse_labels"] = [v // 5 for v in labels]
    return d


def _dump(path: Path, obj: dict) -> None:
    with path.open("wb") as fh:
        pickle.dump(obj, fh, protocol=2)  # the official files are Python-2 protocol-2 pickles


def write_cifar10(folder: Path, per_batch: int = 48,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """data_batch_1..5, test_batch and batches.meta in `folder` (cifar-10-batches-py); as in
    the official files, every batch (the test batch too) holds num_cases_per_batch images."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    train = []
    for i in range(1, 6):
        d = _cifar_batch(rng, per_batch, 10, b"labels", f"training batch {i} of 5".encode())
        _dump(folder / f"data_batch_{i}", d)
        train.append(d)
    test = _cifar_batch(rng, per_batch, 10, b"labels", b"testing batch 1 of 1")
    _dump(folder / "test_batch", test)
    _dump(folder / "batches.meta", {b"num_cases_per_batch": per_batch, b"num_vis": 3072,
                                    b"label_names": [f"class{i}".encode() for i in range(10)]})
    return {"train_images": np.concatenate([d[b"data"] for d in train]),
            "train_labels": np.concatenate([d[b"labels"] for d in train]),
            "test_images": test[b"data"], "test_labels": np.asarray(test[b"labels"])}


def write_cifar100(folder: Path, n_train: int = 300, n_test: int = 100,
                   seed: int = 0) -> dict[str, np.ndarray]:
    """train, test and meta in `folder` (cifar-100-python)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    train = _cifar_batch(rng, n_train, 100, b"fine_labels", b"training batch 1 of 1")
    test = _cifar_batch(rng, n_test, 100, b"fine_labels", b"testing batch 1 of 1")
    _dump(folder / "train", train)
    _dump(folder / "test", test)
    _dump(folder / "meta", {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                            b"coarse_label_names": [f"c{i}".encode() for i in range(20)]})
    return {"train_images": train[b"data"], "train_labels": np.asarray(train[b"fine_labels"]),
            "test_images": test[b"data"], "test_labels": np.asarray(test[b"fine_labels"])}


def write_table_csv(path: Path, n: int = 200, seed: int = 0) -> Path:
    """A small mixed table: numeric and categorical columns with missing values, an id."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.uniform(0, 10, n)
    color = rng.choice(["red", "green", "blue"], n).astype(object)
    x2[rng.random(n) < 0.1] = np.nan
    color[rng.random(n) < 0.1] = None
    y = 2 * x1 + np.nan_to_num(x2, nan=5.0) * 0.3 + (color == "red") + rng.normal(0, 0.1, n)
    df = pd.DataFrame({"id": np.arange(n), "x1": x1, "x2": x2, "color": color, "y": y,
                       "label": np.where(y > np.median(y), "high", "low")})
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path


def write_all(root: Path) -> Path:
    """Every vision set in the torchvision layout (MNIST gzipped, Fashion-MNIST plain)."""
    write_mnist(root / "MNIST" / "raw", gz=True, seed=1)
    write_mnist(root / "FashionMNIST" / "raw", gz=False, seed=2)
    write_cifar10(root / "cifar-10-batches-py", per_batch=24, seed=3)
    write_cifar100(root / "cifar-100-python", n_train=200, n_test=50, seed=4)
    write_table_csv(root / "table.csv")
    return root


OPENML_TASK = 11  # the OpenML task the session's data folder caches (conftest.bikes_dir)


def openml_frame(n: int = 120, seed: int = 0):
    """A small classification table for a fake OpenML dataset: a numeric and a nominal
    feature with missing values, a two-class nominal target."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(size=n),
                       "b": rng.choice(["x", "y", "z"], size=n).astype(object),
                       "c": rng.normal(size=n)})
    df.loc[3, "a"] = np.nan
    df.loc[5, "b"] = None
    df["class"] = np.where(df.a.fillna(0) + 0.8 * (df.b == "x") > 0, "good", "bad")
    return df


def task_spec(name: str, data_dir: Path):
    """The spec the registry-wide tests use for `name` (the table task needs a file, the
    openml task its cached task)."""
    from regbench.specs import TaskSpec, freeze

    if name == "openml":
        return TaskSpec("openml", freeze({"task_id": OPENML_TASK}))
    if name == "table":
        return TaskSpec("table", freeze({"path": str(data_dir / "table.csv"), "target": "y",
                                         "drop": "id,label"}))
    return TaskSpec(name)


def write_hour_csv(path: Path, n: int = 240, seed: int = 0) -> Path:
    """A synthetic file with the UCI Bike Sharing hour.csv columns (counts depend on hour/temp)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    hr = np.arange(n) % 24
    temp = rng.uniform(0, 1, n)
    df = pd.DataFrame({
        "instant": np.arange(1, n + 1),
        "dteday": pd.date_range("2011-01-01", periods=n, freq="h").strftime("%Y-%m-%d"),
        "season": rng.integers(1, 5, n), "yr": rng.integers(0, 2, n),
        "mnth": rng.integers(1, 13, n), "hr": hr, "holiday": rng.integers(0, 2, n),
        "weekday": rng.integers(0, 7, n), "workingday": rng.integers(0, 2, n),
        "weathersit": rng.integers(1, 5, n), "temp": temp, "atemp": temp * 0.9,
        "hum": rng.uniform(0, 1, n), "windspeed": rng.uniform(0, 0.5, n),
    })
    cnt = (50 + 100 * np.sin(np.pi * hr / 24) + 80 * temp + rng.normal(0, 10, n)).round()
    df["casual"] = (cnt * 0.2).round().astype(int)
    df["registered"] = cnt.astype(int) - df["casual"]
    df["cnt"] = cnt.astype(int)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path
