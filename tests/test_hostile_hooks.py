"""Hooks and architectures we did not write, run through the CLI as a user would, under
`--jobs 1` and `--jobs 2`: whatever they do wrong fails their own cell with one line naming
the hook (or the architecture), the other cells run and keep their bits, the run ends with
exit 1 and its summary. And two regularizers that mix examples compose their targets."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from regbench.interface import Batch, Stack, TrainContext
from regbench.registry import REGULARIZERS, TASKS
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze

HOSTILE = '''\
import random

import numpy as np
import torch
from torch import nn

from regbench import Arch, Regularizer, register_arch, register_regularizer


def _reg(name, **hooks):
    cls = type(name, (Regularizer,), {"version": "1", "default_strengths": (1.0,),
                                      "__doc__": f"hostile: {name}", **hooks})
    return register_regularizer(name)(cls)


def _raise(exc):
    def after_step(self, ctx):
        if ctx.step == 2:
            raise exc
    return after_step


_reg("exit0", after_step=_raise(SystemExit(0)))
_reg("exit3", after_step=_raise(SystemExit(3)))
_reg("ctrl_c", after_step=_raise(KeyboardInterrupt()))
_reg("writer", after_step=lambda self, ctx: ctx.y_train.zero_())
_reg("float_penalty", penalty=lambda self, model: 0.5)
_reg("no_optimizer", wrap_optimizer=lambda self, optimizer, ctx: None)


def _silent_step(self, batch, ctx):
    loss, penalty = ctx.loss(batch)
    ctx.optimizer.zero_grad()
    loss.backward()
    ctx.optimizer.step()


def _twice_step(self, batch, ctx):
    loss, penalty = ctx.loss(batch)
    ctx.record(loss, penalty, len(batch.y))
    ctx.record(loss, penalty, len(batch.y))
    ctx.optimizer.zero_grad()
    loss.backward()
    ctx.optimizer.step()


_reg("silent_step", train_step=_silent_step)
_reg("twice_step", train_step=_twice_step)
# draws from the global generators (the documented way is self.generator(stream))
_reg("np_noise", augment=lambda self, x, ctx: x + torch.as_tensor(
    np.random.normal(0, 0.1, tuple(x.shape)) + random.random() * 0.01, dtype=x.dtype))


@register_arch("flat")
class Flat(Arch):
    """hostile: one output per example, not (batch, n_out)"""

    version = "1"

    def build(self, spec, data, knobs):
        return nn.Sequential(nn.Linear(data.n_features, 1), nn.Flatten(0))
'''

MATRIX = '''\
plugins = ["hostile.py"]
seeds = 1
[[blocks]]
tasks = [{name = "digits", n_train = 100}]
archs = ["mlp"]
regularizers = REGS
strengths = "first"
protocol = {epochs = 2}
'''

BAD = {  # regularizer -> what its cell's error says
    "exit0": "SystemExit: 0 (raised in after_step of regularizer 'exit0')",
    "exit3": "SystemExit: 3 (raised in after_step of regularizer 'exit3')",
    "ctrl_c": "KeyboardInterrupt (raised in after_step of regularizer 'ctrl_c')",
    "writer": "after_step of regularizer 'writer' changed the task's split in place (y_train)",
    "float_penalty": "penalty of regularizer 'float_penalty' returned float 0.5; expected "
                     "None or a scalar floating-point torch.Tensor",
    "no_optimizer": "wrap_optimizer of regularizer 'no_optimizer' returned NoneType None; "
                    "expected an optimizer",
    "silent_step": "train_step of regularizer 'silent_step' called ctx.record 0 times in step 1",
    "twice_step": "train_step of regularizer 'twice_step' called ctx.record 2 times in step 1",
}


EXECUTORS = {1: ["--jobs", "1"], 2: ["--jobs", "2"],
             "dask": ["--executor", "dask", "--workers", "1"]}


def _run(folder: Path, regs: list[str], jobs: int | str, extra: str = ""
         ) -> subprocess.CompletedProcess:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hostile.py").write_text(HOSTILE)
    (folder / "m.toml").write_text(MATRIX.replace("REGS", repr(regs).replace("'", '"'))
                                   + extra)
    env = {**os.environ, "REGBENCH_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run([sys.executable, "-m", "regbench", "run", "--matrix", "m.toml",
                           "--store", "s.sqlite", *EXECUTORS[jobs], "--no-progress"],
                          cwd=folder, capture_output=True, text=True, env=env, timeout=600)


def _rows(store: Path) -> dict[str, tuple]:
    con = sqlite3.connect(store)
    try:
        return {r[0]: r[1:] for r in con.execute(
            "SELECT regularizer, status, error, test_metric, train_loss FROM cells")}
    finally:
        con.close()


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2, "dask"])
def test_every_hostile_hook_fails_only_its_cell_with_one_line(tmp_path, jobs):
    if jobs == "dask":
        pytest.importorskip("distributed")
    regs = ["none", *BAD, "l2"]
    proc = _run(tmp_path / "run", regs, jobs)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "Process regbench-worker" not in proc.stderr
    assert f"{len(regs)} cells in matrix" in proc.stdout  # the summary was printed
    rows = _rows(tmp_path / "run" / "s.sqlite")
    assert set(rows) == set(regs)  # every cell ran: none stopped the run
    for name, text in BAD.items():
        status, error = rows[name][:2]
        assert status == "failed" and text in error.splitlines()[0], (name, error)
    # the cells around them have the bits they have alone
    alone = _run(tmp_path / "alone", ["none", "l2"], 1)
    assert alone.returncode == 0, alone.stderr
    ref = _rows(tmp_path / "alone" / "s.sqlite")
    assert rows["none"] == ref["none"] and rows["l2"] == ref["l2"]


def test_a_write_to_the_split_fails_the_cell_and_later_cells_see_clean_data(tmp_path):
    proc = _run(tmp_path / "run", ["writer", "none"], 1)
    assert proc.returncode == 1
    rows = _rows(tmp_path / "run" / "s.sqlite")
    assert rows["writer"][0] == "failed" and "changed the task's split" in rows["writer"][1]
    assert _run(tmp_path / "alone", ["none"], 1).returncode == 0
    assert rows["none"] == _rows(tmp_path / "alone" / "s.sqlite")["none"]


@pytest.mark.slow
def test_global_numpy_and_random_draws_rerun_bit_for_bit(tmp_path):
    a, b = _run(tmp_path / "a", ["np_noise"], 1), _run(tmp_path / "b", ["np_noise"], 2)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    ra, rb = _rows(tmp_path / "a" / "s.sqlite"), _rows(tmp_path / "b" / "s.sqlite")
    assert ra == rb and ra["np_noise"][0] == "ok"


@pytest.mark.slow
def test_an_architecture_with_the_wrong_output_shape_fails_naming_it(tmp_path):
    proc = _run(tmp_path, ["none"], 1, extra='''
[[blocks]]
tasks = ["diabetes"]
archs = ["flat"]
regularizers = ["none"]
strengths = "first"
protocol = {epochs = 2}
''')
    assert proc.returncode == 1, proc.stdout + proc.stderr
    con = sqlite3.connect(tmp_path / "s.sqlite")
    (error,) = con.execute("SELECT error FROM cells WHERE arch = 'flat'").fetchone()
    con.close()
    assert error.startswith("RegbenchError: architecture 'flat' gave outputs of shape (")
    assert "task 'diabetes' needs floating-point outputs of shape" in error.splitlines()[0]


def test_mixup_then_cutmix_compose_four_weighted_targets():
    """The composed loss equals cross-entropy against soft labels mixed the same way:
    Y1 = lam Y + (1 - lam) Y[p1] (mixup), Y2 = k Y1 + (1 - k) Y1[p2] (CutMix keeps k)."""
    spec = TaskSpec("digits", freeze({"n_train": 64}))
    data = TASKS.get("digits")().load(spec, 0)
    cell = Cell(spec, ArchSpec("mlp"), RegSpec("mixup", 1.0), 0,
                addons=(RegSpec("cutmix", 1.0),))

    def fresh():
        return [REGULARIZERS.get(s.name)(s, cell) for s in cell.stack()]

    ctx = TrainContext(cell, TASKS.get("digits")().protocol, data, torch.device("cpu"),
                       Stack(fresh()))
    ctx.criterion = torch.nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(16, data.n_features, generator=g)  # continuous: no ties between images
    y = data.y_train[:16]
    batch = ctx.stack.batch(Batch(x, y), ctx)
    assert len(batch.targets) == 4
    out = torch.randn(16, data.n_out, generator=g)
    # the reference redraws the two permutations and reads the box off the pasted image
    mix, cut = fresh()
    lam = float(mix.rng.beta(1.0, 1.0))
    p1 = torch.randperm(16, generator=mix.perm_gen)
    float(cut.rng.beta(1.0, 1.0))
    p2 = torch.randperm(16, generator=cut.gen)
    xm = lam * x + (1 - lam) * x[p1]
    box = (batch.x != xm).any(0)  # the pixels pasted from another image, in every image
    kept = 1.0 - float(box.double().mean())
    assert 0 < kept < 1 and torch.equal(batch.x[:, box], xm[p2][:, box])
    onehot = F.one_hot(y, data.n_out).double()
    y1 = lam * onehot + (1 - lam) * onehot[p1]
    y2 = kept * y1 + (1 - kept) * y1[p2]
    want = -(y2 * F.log_softmax(out.double(), 1)).sum(1).mean()
    torch.testing.assert_close(ctx.data_loss(batch, out).double(), want, rtol=1e-5, atol=1e-6)


def test_the_hostile_plugin_is_well_formed():
    assert textwrap.dedent(HOSTILE) == HOSTILE
