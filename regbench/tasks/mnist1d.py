"""MNIST-1D (Greydanus & Kobak, ICML 2024): ten 1-D digit templates, padded, scaled,
translated, sheared and noised into 40-sample signals. Generated locally with the `mnist1d`
package (no download); the dataset's own test split is the test set for every seed.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from regbench import seeding
from regbench.errors import RegbenchError
from regbench.params import Param
from regbench.registry import register_task
from regbench.specs import TaskSpec
from regbench.tasks.base import NOISE_KINDS, Protocol, Task, noisy_labels

SEQ_LEN = 40  # the package's final_seq_length: every signal has 40 samples
N_CLASSES = 10


@lru_cache(maxsize=8)
def generate(num_samples: int, train_split: float, shuffle_seq: bool, dataset_seed: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) of `mnist1d.data.make_dataset`, read-only arrays.

    The package seeds Python's and numpy's *global* generators (`set_seed`); both states
    are saved before and restored after, so generating leaves the caller's RNGs as they
    were. Cached per parameter set: generation takes seconds (about 3 s for 5000 samples).
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.train_split = num_samples, train_split
    args.shuffle_seq, args.seed = shuffle_seq, dataset_seed
    with seeding.kept_global_generators():  # the package seeds and draws from them
        d = make_dataset(args)
    out = (np.asarray(d["x"], dtype=np.float64), np.asarray(d["y"], dtype=np.int64),
           np.asarray(d["x_test"], dtype=np.float64), np.asarray(d["y_test"], dtype=np.int64))
    for a in out:
        a.setflags(write=False)
    return out


@register_task("mnist1d")
class Mnist1D(Task):
    """MNIST-1D: 40-sample 1-D digit signals, 10 classes; the paper's 4000/1000 split by default.

    Defaults give the canonical frozen dataset (5000 samples, train_split 0.8, dataset seed
    42). `val_fraction` carves a seeded stratified validation split out of the train split
    (0 trains on all of it, as the paper and the double-descent recipe do); the test split
    is the dataset's own, the same for every seed. `label_noise` resamples that fraction of
    train labels uniformly over the 10 classes (the deep-double-descent recipe's noise: a
    resampled label keeps its class with probability 1/10); `label_noise_kind = "flip"`
    moves each to a different class instead. Rows are 1x40 signals,
    normalized per channel on the train split.
    """

    kind = "classification"
    metric = "accuracy"
    inputs = frozenset({"vector", "signal"})
    params = {
        "num_samples": Param(5000, int, lo=20, hi=1_000_000,
                             doc="samples generated (train + test), 10 classes"),
        "train_split": Param(0.8, float, lo=0.0, hi=1.0, lo_open=True, hi_open=True,
                             doc="fraction of samples in the train split (the rest is test)"),
        "label_noise": Param(0.0, float, lo=0.0, hi=1.0,
                             doc="fraction of train labels made noisy (label_noise_kind)"),
        "label_noise_kind": Param("uniform", choices=NOISE_KINDS, omit_default=True,
                                  doc="uniform (the recipe's): resampled over the 10 classes; "
                                      "flip: moved to a different class"),
        "shuffle_seq": Param(False, bool, doc="permute the 40 time steps (one fixed permutation)"),
        "val_fraction": Param(0.1, float, lo=0.0, hi=0.5,
                              doc="seeded stratified validation carve-out from train (0: none)"),
        "dataset_seed": Param(42, int, lo=0, hi=2**32 - 1,
                              doc="the package's generation seed (42: the frozen dataset)"),
    }
    # The paper's optimizer and batch (Adam lr 1e-2, batch 100); 30 epochs keeps the default
    # matrix cheap; the `mnist1d-paper` matrix sets the paper's 8000 steps (200 epochs).
    protocol = Protocol(epochs=30, batch_size=100, optimizer="adam", lr=1e-2)

    def channel_shape(self) -> tuple[int, ...]:
        return (1, SEQ_LEN)

    def arrays(self, spec: TaskSpec, seed: int, data_dir: Path | None):
        xtr, ytr, xte, yte = generate(
            int(self.param(spec, "num_samples")), float(self.param(spec, "train_split")),
            bool(self.param(spec, "shuffle_seq")), int(self.param(spec, "dataset_seed")))
        if len(ytr) < 2 * N_CLASSES or len(yte) < 1:
            raise RegbenchError(
                f"task {spec.label()!r}: num_samples x train_split gives {len(ytr)} train and "
                f"{len(yte)} test samples; need >= {2 * N_CLASSES} train and >= 1 test")
        frac = float(self.param(spec, "val_fraction"))
        if frac == 0.0:
            xva, yva = xtr[:0], ytr[:0]
        else:
            from sklearn.model_selection import train_test_split  # lazy: see tasks/base.py

            rs = seeding.derive("data", seed, spec.label(), "split") % 2**32
            xtr, xva, ytr, yva = train_test_split(xtr, ytr, test_size=frac, random_state=rs,
                                                  stratify=ytr)
        return xtr, ytr, xva, yva, xte, yte

    def _noisy_labels(self, spec: TaskSpec, seed: int, y: np.ndarray, n_out: int) -> np.ndarray:
        """Resample round(label_noise * n) train labels uniformly over the 10 classes (or,
        with label_noise_kind = "flip", move each to a different class).

        This is the MNIST-1D deep-double-descent recipe (the mnist1d repository's notebook,
        Understanding Deep Learning 8.4): each noisy label is `int(random() * 10)`, which
        may equal the true class, so 15% noise leaves 13.5% of labels wrong in expectation.
        Here the count is exact (not Bernoulli) and the draw is seeded per seed index.
        """
        frac = float(self.param(spec, "label_noise"))
        if frac == 0.0:
            return y
        return noisy_labels(y, frac, self.param(spec, "label_noise_kind"), N_CLASSES,
                            seeding.numpy_rng("data", seed, spec.label(), "label_noise"))
