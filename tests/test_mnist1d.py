"""MNIST-1D: generation leaves the global RNGs alone and is bitwise stable; the test split is
the dataset's own for every seed; options are validated; the paper's architectures."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from regbench.archs.base import Knobs
from regbench.archs.signal import conv_out_len
from regbench.errors import RegbenchError
from regbench.registry import ARCHS, TASKS
from regbench.specs import ArchSpec, TaskSpec, freeze
from regbench.tasks import mnist1d

SMALL = {"num_samples": 600}  # 480 train / 120 test: fast to generate


def load(seed: int = 0, **params):
    return TASKS.get("mnist1d")().load(TaskSpec("mnist1d", freeze({**SMALL, **params})), seed)


def test_generation_leaves_global_rngs_as_they_were():
    mnist1d.generate.cache_clear()
    np.random.seed(7)
    random.seed(7)
    np_before, py_before = np.random.get_state(), random.getstate()
    mnist1d.generate(600, 0.8, False, 42)
    np_after = np.random.get_state()
    assert np_before[0] == np_after[0] and np.array_equal(np_before[1], np_after[1])
    assert np_before[2:] == np_after[2:]
    assert random.getstate() == py_before


@pytest.mark.slow
def test_generation_is_bitwise_stable_across_calls_and_processes():
    mnist1d.generate.cache_clear()
    a = mnist1d.generate(600, 0.8, False, 42)
    mnist1d.generate.cache_clear()
    b = mnist1d.generate(600, 0.8, False, 42)
    for u, v in zip(a, b):
        assert u.tobytes() == v.tobytes()
    code = ("import hashlib; from regbench.tasks.mnist1d import generate; "
            "print(hashlib.sha256(b''.join(a.tobytes() for a in generate(600, 0.8, False, 42)))"
            ".hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    import hashlib

    assert out == hashlib.sha256(b"".join(x.tobytes() for x in a)).hexdigest()
    assert not a[0].flags.writeable  # the cached arrays cannot be changed by a caller


def test_defaults_are_the_canonical_split():
    xtr, ytr, xte, yte = mnist1d.generate(5000, 0.8, False, 42)
    assert xtr.shape == (4000, 40) and xte.shape == (1000, 40)
    assert sorted(set(ytr.tolist())) == list(range(10))


def test_test_split_is_the_same_for_every_seed_and_val_is_carved_from_train():
    a, b = load(0), load(1)
    assert torch.equal(a.y_test, b.y_test)
    assert a.x_test.shape == (120, 40) and a.channel_shape == (1, 40)
    assert len(a.x_train) + len(a.x_val) == 480 and len(a.x_val) == 48
    assert not torch.equal(a.y_val, b.y_val)  # seeds vary the carve-out
    # stratified: every class in the validation split
    assert set(a.y_val.tolist()) == set(range(10))


def test_val_fraction_zero_trains_on_everything():
    d = load(0, val_fraction=0.0)
    assert d.x_train.shape == (480, 40) and d.x_val.shape == (0, 40) and d.n_out == 10


def test_label_noise_resamples_uniformly_and_only_train():
    clean, noisy = load(0, val_fraction=0.0), load(0, val_fraction=0.0, label_noise=0.5)
    changed = (clean.y_train != noisy.y_train).double().mean().item()
    # 240 labels resampled, each keeps its class with prob 1/10: ~45% change
    assert 0.35 < changed < 0.5
    assert torch.equal(clean.y_test, noisy.y_test)
    again = load(0, val_fraction=0.0, label_noise=0.5)
    assert torch.equal(noisy.y_train, again.y_train)


@pytest.mark.parametrize("params", [
    {"num_samples": 10}, {"train_split": 1.0}, {"train_split": 0.0}, {"label_noise": 1.5},
    {"val_fraction": 0.6}, {"val_fraction": -0.1}, {"shuffle_seq": 1}, {"num_samples": 5.5},
    {"nope": 1},
])
def test_bad_options_are_refused(params):
    with pytest.raises(RegbenchError):
        TASKS.get("mnist1d")().check(TaskSpec("mnist1d", freeze(params)))


def test_too_few_train_samples_is_an_error():
    with pytest.raises(RegbenchError, match="train"):
        load(0, num_samples=100, train_split=0.1)


def test_paper_architectures_have_the_papers_shapes():
    d = load(0)
    mlp = ARCHS.get("mlp_residual")().build(ArchSpec("mlp_residual"), d, Knobs())
    cnn = ARCHS.get("cnn1d")().build(ArchSpec("cnn1d"), d, Knobs())
    # 40*100+100 + 100*100+100 + 100*10+10 and conv 150 + 1900 + 1900 + linear 125*10+10
    assert sum(p.numel() for p in mlp.parameters()) == 15210
    assert sum(p.numel() for p in cnn.parameters()) == 5210
    assert conv_out_len(40) == 5
    assert mlp(d.x_train[:3]).shape == cnn(d.x_train[:3]).shape == (3, 10)


def test_knobs_add_batchnorm_and_dropout():
    d = load(0)
    for name in ("mlp_residual", "cnn1d"):
        model = ARCHS.get(name)().build(ArchSpec(name), d, Knobs(dropout=0.2, batchnorm=True))
        kinds = {type(m).__name__ for m in model.modules()}
        assert {"BatchNorm1d", "Dropout"} <= kinds, name


def test_cnn1d_is_skipped_on_vector_tasks():
    arch = ARCHS.get("cnn1d")()
    assert arch.skip_reason(ArchSpec("cnn1d"), TASKS.get("digits")()) is not None
    assert arch.skip_reason(ArchSpec("cnn1d"), TASKS.get("mnist1d")()) is None
