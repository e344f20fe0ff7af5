"""Every pair of built-in regularizers that may be stacked trains: at their first default
strengths, 4 epochs, on one setting of each kind (image MLP, residual MLP, CNN, tabular
regression, 1-D signals), each stacked cell finishes ok with finite losses. Catches hooks
that break each other (an owned step with a wrapped optimizer, mixed targets with a
penalty, an evaluated ensemble with batchnorm...)."""

from __future__ import annotations

import itertools
import math

import pytest

from regbench.errors import RegbenchError
from regbench.matrix import check_composable
from regbench.registry import ARCHS, REGULARIZERS, TASKS
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze
from regbench.train import run_cell

SETTINGS = [("digits", "mlp"), ("digits", "resmlp"), ("digits", "cnn"), ("diabetes", "mlp"),
            ("mnist1d", "mlp")]
PROTOCOL = freeze({"epochs": 4})


def _pairs(task_name: str, arch_name: str) -> list[tuple[RegSpec, RegSpec]]:
    t = TASKS.get(task_name)().bind(TaskSpec(task_name))
    a = ARCHS.get(arch_name)()
    proto = t.protocol.override(PROTOCOL)
    names = [n for n in REGULARIZERS.builtin_names() if n != "none"]
    out = []
    for x, y in itertools.combinations(names, 2):
        specs = tuple(RegSpec(n, float(REGULARIZERS.get(n).default_strengths[0]))
                      for n in (x, y))
        try:
            check_composable(specs)
            for s in specs:
                REGULARIZERS.get(s.name).check_protocol(s, proto)
        except RegbenchError:
            continue  # refused when a matrix is built: tested in test_stacks.py
        if any(REGULARIZERS.get(s.name).skip_reason(t, a, s) for s in specs):
            continue
        out.append(specs)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("task_name,arch_name", SETTINGS)
def test_every_stackable_pair_trains_to_finite_losses(task_name, arch_name):
    pairs = _pairs(task_name, arch_name)
    assert len(pairs) >= 100, len(pairs)  # most of the ~250 pairs apply everywhere
    task = TaskSpec(task_name, freeze({"n_train": 200}) if task_name == "digits" else ())
    bad = []
    for first, second in pairs:
        r = run_cell(Cell(task, ArchSpec(arch_name), first, 0, PROTOCOL, addons=(second,)))
        losses = [r.metrics.get(k) for k in ("train_loss", "val_loss", "test_loss")]
        if r.status != "ok" or not all(v is None or math.isfinite(v) for v in losses):
            bad.append(f"{first.label()} + {second.label()}: {r.status} "
                       f"{(r.error or '').splitlines()[:1]}")
    assert not bad, "\n".join(bad)
