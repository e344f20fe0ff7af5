import dataclasses
import math

import pytest
import torch
from data_files import task_spec

from regbench.registry import ARCHS, REGULARIZERS, TASKS
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze
from regbench.train import run_cell


def combos():
    for t in TASKS.builtin_names():
        task = TASKS.get(t)()
        for a in ARCHS.builtin_names():
            arch = ARCHS.get(a)()
            if arch.skip_reason(ArchSpec(a), task):
                continue
            for r in REGULARIZERS.builtin_names():
                reg = REGULARIZERS.get(r)
                if reg.skip_reason(task, arch) is None:
                    yield t, a, r


# The official-file vision tasks share one code path per format (idx, CIFAR pickles): every
# arch runs `none` on each of them, and every regularizer runs on one arch (mnist: cnn,
# cifar10: resnet). Their full cross product (~365 more cells, ~3 min here) is left out.
FULL_VISION_ARCH = {"mnist": "cnn", "cifar10": "resnet", "openml": "mlp"}
VISION = ("mnist", "fashion_mnist", "cifar10", "cifar100")
# `openml` trains on what `table` trains on (the same preprocessing; `table` runs every
# combination): every arch runs `none` on it, every regularizer runs on the mlp
COMBOS = [(t, a, r) for t, a, r in combos()
          if t not in (*VISION, "openml") or r == "none" or FULL_VISION_ARCH.get(t) == a]


SMALL_ARCH = {"wide": {"width": 32}, "resnet": {"depth": 8}}  # fast enough for every combo


def providers(reg):
    """A built-in that provides each part `reg` requires (r_drop: dropout), as a `with`."""
    need = REGULARIZERS.get(reg).requires
    return tuple(RegSpec(n, REGULARIZERS.get(n).default_strengths[0])
                 for n in REGULARIZERS.builtin_names() if REGULARIZERS.get(n).provides & need)


def one_epoch(task, arch, reg, strength=None, seed=0, **proto):
    s = REGULARIZERS.get(reg).default_strengths[0] if strength is None else strength
    arch_spec = ArchSpec(arch, freeze(SMALL_ARCH.get(arch, {})))
    return Cell(TaskSpec(task), arch_spec, RegSpec(reg, s), seed,
                freeze({"epochs": 1, **proto}), addons=providers(reg))


def test_combo_count():
    assert len(COMBOS) > 150  # every task x compatible arch x regularizer


@pytest.mark.parametrize("task,arch,reg", COMBOS, ids=["-".join(c) for c in COMBOS])
def test_every_combination_runs_one_epoch(task, arch, reg, bikes_dir):
    cell = dataclasses.replace(one_epoch(task, arch, reg), task=task_spec(task, bikes_dir))
    r = run_cell(cell, data_dir=str(bikes_dir))
    assert r.status == "ok", r.error
    m = r.metrics
    assert m["epochs"] == 1 and len(r.curves) == 1
    for k in ("train_loss", "test_loss", "train_metric", "test_metric"):
        assert math.isfinite(m[k])
    assert m["gap_loss"] == pytest.approx(m["test_loss"] - m["train_loss"])
    sign = 1 if m["higher_is_better"] else -1
    assert m["gap_metric"] == pytest.approx(sign * (m["train_metric"] - m["test_metric"]))
    assert m["metric_name"] in ("accuracy", "rmse")
    assert r.provenance["threads"] == 1 and r.provenance["torch_version"] == torch.__version__


@pytest.mark.parametrize("reg,strength", [("dropout", 0.5), ("augment", 0.3), ("none", 0.0),
                                          ("stochastic_depth", 0.3), ("batchnorm", 1.0)])
def test_same_cell_twice_is_bitwise_identical(reg, strength):
    arch = "resmlp" if reg == "stochastic_depth" else "mlp"
    cell = Cell(TaskSpec("digits"), ArchSpec(arch), RegSpec(reg, strength), 3,
                freeze({"epochs": 3}))
    a, b = run_cell(cell), run_cell(cell)
    keys = ["train_loss", "test_loss", "val_loss", "train_metric", "test_metric", "best_epoch"]
    assert [a.metrics[k] for k in keys] == [b.metrics[k] for k in keys]  # exact equality
    assert a.curves == b.curves


def test_global_rng_is_left_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    run_cell(one_epoch("digits", "mlp", "dropout", 0.5))
    assert torch.equal(before, torch.get_rng_state())


def test_paired_cells_share_data_and_init():
    """Cells that differ only in the regularizer start from the same weights and data."""
    from regbench import seeding

    a = run_cell(one_epoch("curve", "mlp", "none", epochs=1))
    b = run_cell(one_epoch("curve", "mlp", "l2", 1e-3, epochs=1))
    assert a.artifacts["params_before"] == b.artifacts["params_before"]
    assert a.artifacts["predictions"]["y"] == b.artifacts["predictions"]["y"]
    assert seeding.derive("init", 0, "curve", "mlp") == seeding.derive("init", 0, "curve", "mlp")


def test_l2_penalty_matches_sgd_weight_decay():
    """(lambda/2)||w||^2 in the loss and SGD(weight_decay=lambda) give the same trajectory.

    The two differ only in float32 rounding order (grad + lambda*w summed by autograd vs
    inside SGD), so after 5 epochs x 10 steps we allow a relative difference of 1e-4.
    """
    proto = {"epochs": 5, "optimizer": "sgd", "lr": 0.05, "momentum": 0.0}
    penalty = run_cell(one_epoch("periodic", "mlp", "l2", 1e-2, **proto))
    decay = run_cell(one_epoch("periodic", "mlp", "weight_decay", 1e-2, **proto))
    plain = run_cell(one_epoch("periodic", "mlp", "none", 0.0, **proto))
    for k in ("train_loss", "test_loss"):
        assert penalty.metrics[k] == pytest.approx(decay.metrics[k], rel=1e-4)
    assert penalty.metrics["train_loss"] != plain.metrics["train_loss"]
    for cp, cd in zip(penalty.curves, decay.curves):
        assert cp["val_loss"] == pytest.approx(cd["val_loss"], rel=1e-4)


def test_early_stopping_restores_best_epoch():
    cell = Cell(TaskSpec("diabetes"), ArchSpec("mlp"), RegSpec("early_stopping", 3.0), 0,
                freeze({"epochs": 200, "lr": 1e-2}))
    r = run_cell(cell)
    assert r.status == "ok"
    m = r.metrics
    val = [c["val_loss"] for c in r.curves]
    assert m["epochs"] < 200  # it stopped
    assert m["epochs"] - m["best_epoch"] == 3
    assert m["best_epoch"] == 1 + val.index(min(val))
    assert m["val_loss"] == min(val)  # the weights of the best epoch were restored


def test_divergence_is_a_status_not_a_crash():
    cell = Cell(TaskSpec("diabetes"), ArchSpec("mlp"), RegSpec("none"), 0,
                freeze({"epochs": 5, "optimizer": "sgd", "lr": 1e6}))
    r = run_cell(cell)
    assert r.status == "diverged"
    assert r.metrics["diverged_step"] >= 1
    assert "non-finite loss" in r.error


def test_exception_is_a_failed_cell(monkeypatch):
    from regbench.archs import mlp

    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(mlp.MLP, "build", boom)
    r = run_cell(one_epoch("digits", "mlp", "none"))
    assert r.status == "failed" and "kaboom" in r.error


def test_more_data_uses_nested_fraction():
    r = run_cell(one_epoch("digits", "mlp", "more_data", 0.25))
    full = run_cell(one_epoch("digits", "mlp", "none", 0.0))
    assert r.metrics["n_train"] == math.ceil(0.25 * full.metrics["n_train"])


def test_label_smoothing_changes_training_not_metric_definition():
    r = run_cell(one_epoch("digits", "mlp", "label_smoothing", 0.2, epochs=2))
    assert r.status == "ok" and 0 <= r.metrics["train_metric"] <= 1


def test_split_cache_evicts_least_recent_by_count_and_bytes(monkeypatch):
    from regbench.data_cache import SplitCache, load_data, split_nbytes
    from regbench.specs import TaskSpec

    one = load_data(TaskSpec("curve"), 0, None)
    size = split_nbytes(one)
    made: list[int] = []

    def maker(i):
        def make():
            made.append(i)
            return one
        return make

    by_count = SplitCache(entries=2, max_bytes=10**12)
    for i in (0, 1, 0, 2, 0, 1):  # 0 stays recent; 1 is evicted by 2, then made again
        by_count.get((i,), maker(i))
    assert made == [0, 1, 2, 1] and len(by_count) == 2

    made.clear()
    by_bytes = SplitCache(entries=16, max_bytes=2 * size)
    for i in (0, 1, 2, 0):
        by_bytes.get((i,), maker(i))
    assert made == [0, 1, 2, 0] and len(by_bytes) == 2 and by_bytes.nbytes() == 2 * size

    tiny = SplitCache(entries=16, max_bytes=1)  # the newest split is kept whatever its size
    assert tiny.get(("a",), maker(9)) is one and len(tiny) == 1

    monkeypatch.setenv("REGBENCH_DATA_CACHE_MB", "0.5")
    assert SplitCache(4).max_bytes == 2**19


@pytest.mark.slow  # over 10 s on 2 cores
def test_bad_data_cache_variable_is_refused_before_anything_runs(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("REGBENCH_DATA_CACHE_MB", "lots")
    store = tmp_path / "r.sqlite"
    proc = subprocess.run([sys.executable, "-m", "regbench", "run", "--matrix", "smoke",
                           "--store", str(store), "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "REGBENCH_DATA_CACHE_MB" in proc.stderr and "'lots'" in proc.stderr
    assert "Traceback" not in proc.stderr
    if store.exists():  # the CLI may have opened the store: it holds no cell
        import sqlite3

        with sqlite3.connect(store) as con:
            assert con.execute("SELECT COUNT(*) FROM cells").fetchone()[0] == 0
