"""Stacks: a block's base recipe and an entry's `with` list are part of the cell and its id,
compose in a documented order, are refused at build time when they cannot compose, and the
report compares every stack with `none + base` on the same seeds."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from regbench import matrix
from regbench.errors import MatrixError
from regbench.specs import Cell, RegSpec
from regbench.train import run_cell

# the block of the stacks' documentation, on a smaller digits split and 3 epochs
ISSUE_TOML = (
    'name = "stacked"\nseeds = 2\n[[blocks]]\n'
    'tasks = [{name = "digits", n_train = 200}]\n'
    'archs = [{name = "mlp", width = 32, depth = 2}]\n'
    'base = [{name = "weight_decay", strength = 1e-4}]\n'
    'regularizers = ["none", {name = "dropout", strengths = [0.1, 0.3]},\n'
    '                {name = "dropout", strengths = [0.3], '
    'with = [{name = "augment", strength = 0.1, kind = "noise"}]}]\n'
    'protocol = {epochs = 3}\n'
)


def _matrix(tmp_path: Path, text: str) -> matrix.Matrix:
    path = tmp_path / "m.toml"
    path.write_text(textwrap.dedent(text))
    return matrix.Matrix.from_toml(path)


def test_base_and_with_expand_into_stacked_cells(tmp_path):
    cells = _matrix(tmp_path, ISSUE_TOML).expand().cells
    assert len(cells) == 4 * 2
    wd = RegSpec("weight_decay", 1e-4)
    assert all(c.base == (wd,) for c in cells)
    stacked = [c for c in cells if c.addons]
    assert {c.reg.label() for c in stacked} == {"dropout"}
    assert stacked[0].addons[0].name == "augment" and stacked[0].addons[0].strength == 0.1
    assert stacked[0].stack() == (wd, stacked[0].reg, stacked[0].addons[0])  # hook order
    # the stack is part of the id; a cell without one keeps the id it always had
    plain = Cell(cells[0].task, cells[0].arch, cells[0].reg, cells[0].seed, cells[0].protocol)
    assert plain.cell_id != cells[0].cell_id
    assert "base" not in plain.key() and "with" not in plain.key()
    assert len({c.cell_id for c in cells}) == len(cells)
    for c in cells:
        assert Cell.from_json(c.to_json()) == c and Cell.from_json(c.to_json()).cell_id == c.cell_id
    assert "on weight_decay=0.0001" in stacked[0].describe()
    assert "+ augment[kind=noise]=0.1" in stacked[0].describe()


def test_none_on_a_base_trains_exactly_as_the_base_alone(tmp_path):
    cells = _matrix(tmp_path, ISSUE_TOML).expand().cells
    none_on_base = next(c for c in cells if c.reg.name == "none" and c.seed == 0)
    alone = Cell(none_on_base.task, none_on_base.arch, RegSpec("weight_decay", 1e-4), 0,
                 none_on_base.protocol)
    a, b = run_cell(none_on_base), run_cell(alone)
    assert a.status == b.status == "ok"
    keys = ["train_loss", "val_loss", "test_loss", "test_metric"]
    assert [a.metrics[k] for k in keys] == [b.metrics[k] for k in keys]
    assert a.curves == b.curves


@pytest.mark.parametrize("block,message", [
    ('base = [{name = "weight_decay", strength = 1e-4}]\nregularizers = ["adamw"]',
     "'weight_decay' and 'adamw' cannot be stacked: both own the optimizer's weight decay"),
    ('regularizers = [{name = "dropout", with = [{name = "dropout", strength = 0.2}]}]',
     "regularizer stack has 'dropout' twice"),
    ('regularizers = [{name = "sam", with = [{name = "swa"}, {name = "sam"}]}]',
     "regularizer stack has 'sam' twice"),
    ('base = [{name = "dropout", strengths = [0.1, 0.2]}]\nregularizers = ["none"]',
     "takes one `strength`, not `strengths`"),
    ('base = [{name = "nope"}]\nregularizers = ["none"]', "unknown regularizer 'nope'"),
    ('base = "weight_decay"\nregularizers = ["none"]', "base must be a list"),
])
def test_stacks_that_cannot_compose_are_refused_at_build(tmp_path, block, message):
    text = ('[[blocks]]\ntasks = ["curve"]\narchs = ["mlp"]\n' + block + "\n")
    with pytest.raises(MatrixError if "unknown" not in message else Exception) as err:
        _matrix(tmp_path, text)
    assert message in str(err.value)


def test_two_owners_of_the_step_are_refused(monkeypatch):
    from regbench.interface import Regularizer
    from regbench.registry import REGULARIZERS

    class OtherStep(Regularizer):
        """A second regularizer that owns the step."""

        def train_step(self, batch, ctx):
            ctx.default_step(batch)

    OtherStep.name = "other_step"
    monkeypatch.setitem(REGULARIZERS._entries, "other_step", OtherStep)
    with pytest.raises(MatrixError, match="'sam' and 'other_step' cannot be stacked: both own "
                                          r"the training step \(train_step\)"):
        matrix.check_composable((RegSpec("sam", 0.1), RegSpec("other_step", 1.0)))


def test_cli_refuses_a_bad_stack_in_one_line_before_writing(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[blocks]]\ntasks = ["curve"]\narchs = ["mlp"]\n'
                    'base = [{name = "weight_decay", strength = 1e-4}]\n'
                    'regularizers = ["none", "adamw"]\n')
    store = tmp_path / "s.sqlite"
    proc = subprocess.run([sys.executable, "-m", "regbench", "run", "--matrix", str(path),
                           "--store", str(store)], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "'weight_decay' and 'adamw' cannot be stacked" in lines[0]
    assert "Traceback" not in proc.stderr and not store.exists()


@pytest.mark.slow
def test_report_names_stacks_and_pairs_them_with_none_on_the_base(tmp_path):
    path = tmp_path / "stacked.toml"
    path.write_text(ISSUE_TOML)
    store, out = tmp_path / "s.sqlite", tmp_path / "r"
    proc = subprocess.run([sys.executable, "-m", "regbench.report", "--matrix", str(path),
                           "--store", str(store), "--out", str(out), "--figure-formats", "png",
                           "--formats", "md,csv"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    tuned = pd.read_csv(out / "tuned.csv")
    assert set(tuned.regularizer) == {"none + base", "dropout + base",
                                      "dropout + augment[kind=noise]=0.1 + base"}
    assert set(tuned.arch) == {"mlp[depth=2,width=32] on base weight_decay=0.0001"}
    others = tuned[tuned.regularizer != "none + base"]
    assert (others.n_pairs == 2).all()  # paired with none + base on both seeds
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 4
