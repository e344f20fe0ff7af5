"""The standard vision sets from their official files in a local folder (never downloaded).

MNIST and Fashion-MNIST: the four idx-ubyte files, gzipped or not. CIFAR-10 and CIFAR-100:
the python-pickle batches. Each task looks, under the data folder (--data-dir or
$REGBENCH_DATA_DIR), in the layout torchvision leaves behind (`MNIST/raw/`,
`FashionMNIST/raw/`, `cifar-10-batches-py/`, `cifar-100-python/`), then in a subfolder of
that name, then in the folder itself. The official test split is the test set for every
seed; validation is a seeded, stratified carve-out of the official train split.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from regbench import seeding
from regbench.errors import DataError, RegbenchError
from regbench.registry import register_task
from regbench.specs import TaskSpec
from regbench.tasks.base import LABEL_NOISE, LABEL_NOISE_KIND, N_TRAIN, Protocol, Task
from regbench.tasks.datadir import data_root
from regbench.tasks.formats import check_cifar_batch, check_idx, read_cifar_batch, read_idx

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x_train, y_train, x_test, y_test


@dataclass(frozen=True)
class Layout:
    """Which files a dataset is, where they may lie under the root, and where they come from."""

    title: str
    files: tuple[str, ...]
    folders: tuple[str, ...]  # relative to the root, searched in order ("." = the root)
    source: str
    gz: bool = False  # each file may also be NAME.gz

    def candidates(self, folder: Path, name: str) -> list[Path]:
        return [folder / name, folder / f"{name}.gz"] if self.gz else [folder / name]

    def present(self, folder: Path, name: str) -> Path | None:
        return next((p for p in self.candidates(folder, name) if p.is_file()), None)

    def find(self, root: Path, task: str) -> dict[str, Path]:
        """The files, from the first searched folder that holds any of them (all, or an
        error that names the missing ones)."""
        searched = [root / f if f != "." else root for f in self.folders]
        for folder in searched:
            found = {n: self.present(folder, n) for n in self.files}
            if any(found.values()):
                missing = [n for n, p in found.items() if p is None]
                if missing:
                    raise DataError(f"task {task!r}: {folder} holds part of {self.title} but "
                                    f"not {', '.join(self._names(missing))}; {self.source}")
                return {n: p for n, p in found.items() if p is not None}
        raise DataError(
            f"task {task!r}: no {self.title} files ({', '.join(self._names(self.files))}) in "
            f"any of {', '.join(str(f) for f in searched)}; {self.source}")

    def _names(self, names) -> list[str]:
        return [f"{n}[.gz]" if self.gz else n for n in names]


MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _stamp(paths: dict[str, Path]) -> tuple[tuple[str, str, int, int], ...]:
    """A cache key that changes when a file is replaced."""
    return tuple((k, str(p), p.stat().st_mtime_ns, p.stat().st_size) for k, p in paths.items())


@functools.lru_cache(maxsize=4)
def _read_mnist(stamp: tuple[tuple[str, str, int, int], ...], n_classes: int) -> Arrays:
    paths = {k: Path(p) for k, p, _, _ in stamp}
    out = []
    for split in ("train", "t10k"):
        img_path = paths[f"{split}-images-idx3-ubyte"]
        lab_path = paths[f"{split}-labels-idx1-ubyte"]
        images, labels = read_idx(img_path), read_idx(lab_path)
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(f"{img_path}: images are {images.shape}; expected N x 28 x 28")
        if labels.ndim != 1 or len(labels) != len(images):
            raise DataError(f"{lab_path}: {labels.shape} labels for {len(images)} images "
                            f"in {img_path.name}")
        _check_labels(lab_path, labels, n_classes)
        out += [images.reshape(len(images), -1), labels.astype(np.int64)]
    return out[0], out[1], out[2], out[3]


@functools.lru_cache(maxsize=2)
def _read_cifar(stamp: tuple[tuple[str, str, int, int], ...], train: tuple[str, ...],
                test: str, label_key: str, n_classes: int) -> Arrays:
    paths = {k: Path(p) for k, p, _, _ in stamp}
    per_batch = _cifar10_batch_size(paths.get("batches.meta"))
    parts = []
    for name in (*train, test):
        x, y = read_cifar_batch(paths[name], label_key)
        if per_batch is not None and len(x) != per_batch:
            raise DataError(f"{paths[name]}: {len(x)} images; batches.meta says "
                            f"{per_batch} per batch (a truncated or mixed-up file)")
        _check_labels(paths[name], y, n_classes)
        parts.append((x, y))
    x_train = np.concatenate([x for x, _ in parts[:-1]])
    y_train = np.concatenate([y for _, y in parts[:-1]])
    return x_train, y_train, parts[-1][0], parts[-1][1]


def _cifar10_batch_size(meta: Path | None) -> int | None:
    """num_cases_per_batch from CIFAR-10's batches.meta (None when there is no meta file)."""
    if meta is None:
        return None
    from regbench.tasks.formats import _ArrayUnpickler

    try:
        with meta.open("rb") as fh:
            d = _ArrayUnpickler(fh, encoding="bytes").load()
        d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
        return int(d["num_cases_per_batch"])
    except Exception as exc:  # noqa: BLE001 - any failure here is a broken meta file
        raise DataError(f"{meta}: not a readable CIFAR-10 batches.meta "
                        f"({type(exc).__name__}: {exc}); download it again") from None


# (what, path, size, mtime) -> the outcome of checking that file: each file is checked once
# per process while it is unchanged (a 100-cell matrix reads it once, a replaced file again)
_CHECKED: dict[tuple[Any, ...], Any] = {}


def checked(check: Callable[..., Any], path: Path, *args: Any) -> Any:
    """`check(path, *args)`, cached by (check, args, path, size, mtime)."""
    st = path.stat()
    key = (check.__name__, args, str(path), st.st_size, st.st_mtime_ns)
    if key not in _CHECKED:
        _CHECKED[key] = check(path, *args)
    return _CHECKED[key]


def _check_meta(meta: Path) -> tuple[int | None, list[str]]:
    try:
        return _cifar10_batch_size(meta), []
    except DataError as exc:
        return None, [str(exc)]


def _check_labels(path: Path, labels: np.ndarray, n_classes: int) -> None:
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(f"{path}: labels span {labels.min()}..{labels.max()}; "
                        f"expected 0..{n_classes - 1}")


class VisionTask(Task):
    """Base of the official-file vision tasks: find, read, carve out validation, cap n_train."""

    kind = "classification"
    metric = "accuracy"
    inputs = frozenset({"vector", "image"})
    params = {"label_noise": LABEL_NOISE, "label_noise_kind": LABEL_NOISE_KIND, "n_train": N_TRAIN}
    layout: ClassVar[Layout]
    shape: ClassVar[tuple[int, int, int]]
    n_classes: ClassVar[int]
    val_fraction: ClassVar[float]  # of the official train split

    def files(self, data_dir: Path | None) -> dict[str, Path]:
        root = data_root(data_dir, self.name, f"the {self.layout.title} files")
        return self.layout.find(root, self.name)

    def check_available(self, data_dir: Path | None) -> None:
        self.files(data_dir)

    def check_data(self, spec: TaskSpec, data_dir: Path | None,
                   standardize: frozenset[str] = frozenset({"xy"})) -> list[str]:
        """Every file read through: the magic number and header first, then the length
        (decompressed, for .gz) against the header, the structure and every label."""
        return self.check_files(self.files(data_dir))

    def check_files(self, files: dict[str, Path]) -> list[str]:
        raise NotImplementedError

    def read(self, files: dict[str, Path]) -> Arrays:
        raise NotImplementedError

    def image_shape(self) -> tuple[int, ...]:
        return self.shape

    def arrays(self, spec: TaskSpec, seed: int, data_dir: Path | None):
        """uint8 rows (flattened C x H x W) for the train/val carve-out and the official test."""
        x, y, x_test, y_test = self.read(self.files(data_dir))
        n_val = int(round(self.val_fraction * len(x)))
        if not 0 < n_val < len(x):
            raise DataError(f"task {self.name!r}: {len(x)} train images are too few for a "
                            f"validation carve-out")
        from sklearn.model_selection import train_test_split  # lazy: see tasks/base.py

        rs = seeding.derive("data", seed, spec.name, "split") % 2**32
        # stratified by class; a tiny subset that cannot be (fewer validation images than
        # classes, or a class with one image) is carved out at random instead
        counts = np.bincount(y, minlength=self.n_classes)
        stratify = y if n_val >= self.n_classes and counts[counts > 0].min() >= 2 else None
        idx_tr, idx_va = train_test_split(np.arange(len(x)), test_size=n_val,
                                          random_state=rs, stratify=stratify)
        n_train = spec.get("n_train")
        if n_train is not None:
            if not 0 < int(n_train) <= len(idx_tr):
                raise RegbenchError(f"task {self.name!r}: n_train must be in "
                                    f"[1, {len(idx_tr)}], got {n_train}")
            idx_tr = idx_tr[: int(n_train)]
        return x[idx_tr], y[idx_tr], x[idx_va], y[idx_va], x_test, y_test


class _MnistFamily(VisionTask):
    shape = (1, 28, 28)
    n_classes = 10
    val_fraction = 1 / 6  # 50 000 train / 10 000 validation of the official 60 000
    protocol = Protocol(epochs=10, batch_size=128, optimizer="adam", lr=1e-3)

    def read(self, files: dict[str, Path]) -> Arrays:
        return _read_mnist(_stamp(files), self.n_classes)

    def check_files(self, files: dict[str, Path]) -> list[str]:
        problems = []
        for split in ("train", "t10k"):
            img, lab = files[f"{split}-images-idx3-ubyte"], files[f"{split}-labels-idx1-ubyte"]
            dims, found = checked(check_idx, img)
            problems += found
            if dims is not None and (len(dims) != 3 or dims[1:] != (28, 28)):
                problems.append(f"{img}: images are {dims}; expected N x 28 x 28")
            labels, found = checked(check_idx, lab, self.n_classes)
            problems += found
            if labels is not None and len(labels) != 1:
                problems.append(f"{lab}: labels are {labels}; expected one dimension, N")
            elif labels is not None and dims is not None and labels[0] != dims[0]:
                problems.append(f"{lab}: {labels[0]} labels for {dims[0]} images in "
                                f"{img.name}")
        return problems


@register_task("mnist")
class MNIST(_MnistFamily):
    """MNIST handwritten digits (60 000 train / 10 000 test, 1x28x28) from the idx files."""

    layout = Layout(
        "MNIST", MNIST_FILES, ("MNIST/raw", "MNIST", "mnist", "."), gz=True,
        source="the files come from https://yann.lecun.com/exdb/mnist/ (or "
               "torchvision.datasets.MNIST(ROOT, download=True), which leaves them in "
               "ROOT/MNIST/raw)")


@register_task("fashion_mnist")
class FashionMNIST(_MnistFamily):
    """Fashion-MNIST (Zalando; 60 000 train / 10 000 test, 1x28x28) from the idx files."""

    layout = Layout(
        "Fashion-MNIST", MNIST_FILES,
        ("FashionMNIST/raw", "FashionMNIST", "fashion_mnist", "fashion-mnist", "."), gz=True,
        source="the files come from https://github.com/zalandoresearch/fashion-mnist (or "
               "torchvision.datasets.FashionMNIST(ROOT, download=True), which leaves them "
               "in ROOT/FashionMNIST/raw)")


class _Cifar(VisionTask):
    shape = (3, 32, 32)
    val_fraction = 0.1  # 45 000 train / 5 000 validation of the official 50 000
    protocol = Protocol(epochs=30, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9,
                        lr_schedule="cosine")
    train_files: ClassVar[tuple[str, ...]]
    test_file: ClassVar[str]
    label_key: ClassVar[str]

    def read(self, files: dict[str, Path]) -> Arrays:
        return _read_cifar(_stamp(files), self.train_files, self.test_file, self.label_key,
                           self.n_classes)

    def check_files(self, files: dict[str, Path]) -> list[str]:
        problems, per_batch = [], None
        meta = files.get("batches.meta")
        if meta is not None:
            per_batch, problems = checked(_check_meta, meta)
            problems = list(problems)
        for name in (*self.train_files, self.test_file):
            path = files[name]
            images, found = checked(check_cifar_batch, path, self.label_key, self.n_classes)
            problems += found
            if per_batch is not None and images is not None and images != per_batch:
                problems.append(f"{path}: {images} images; batches.meta says {per_batch} per "
                                "batch (a truncated or mixed-up file)")
        return problems


CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))


@register_task("cifar10")
class CIFAR10(_Cifar):
    """CIFAR-10 (50 000 train / 10 000 test, 3x32x32, 10 classes) from the python batches."""

    n_classes = 10
    train_files, test_file, label_key = CIFAR10_TRAIN, "test_batch", "labels"
    layout = Layout(
        "CIFAR-10 (python version)", (*CIFAR10_TRAIN, "test_batch", "batches.meta"),
        ("cifar-10-batches-py", "."),
        source="the files come from https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz "
               "(extract it, or torchvision.datasets.CIFAR10(ROOT, download=True) leaves "
               "ROOT/cifar-10-batches-py)")


@register_task("cifar100")
class CIFAR100(_Cifar):
    """CIFAR-100 (50 000 train / 10 000 test, 3x32x32, 100 fine classes) from the python files."""

    n_classes = 100
    train_files, test_file, label_key = ("train",), "test", "fine_labels"
    layout = Layout(
        "CIFAR-100 (python version)", ("train", "test", "meta"), ("cifar-100-python", "."),
        source="the files come from https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz "
               "(extract it, or torchvision.datasets.CIFAR100(ROOT, download=True) leaves "
               "ROOT/cifar-100-python)")
