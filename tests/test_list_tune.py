"""`regbench list`: each regularizer's search space under its row (or why it has none), and
the matrices' sizes counting the cells of their tuned blocks' studies."""

from __future__ import annotations

import subprocess
import sys

from space_plugins import SPACES_PLUGIN

from regbench import matrix
from regbench.__main__ import main


def listed(capsys, *args: str) -> list[str]:
    assert main(["list", *args]) == 0
    return capsys.readouterr().out.splitlines()


def tune_line(lines: list[str], name: str) -> str:
    """The one `tune:` line under regularizer `name`'s row (after its `skips` lines)."""
    row = next(i for i, line in enumerate(lines) if line.split()[:1] == [name])
    end = next((i for i in range(row + 1, len(lines)) if not lines[i].startswith("      ")),
               len(lines))
    below = [line.strip() for line in lines[row + 1:end]]
    tune = [line for line in below if line.startswith("tune: ")]
    assert len(tune) == 1 and below[-1] == tune[0], below
    return tune[0]


def test_each_regularizer_shows_its_search_space(capsys):
    lines = listed(capsys, "regularizers")
    assert tune_line(lines, "dropout") == "tune: p uniform [0, 0.8]"
    assert tune_line(lines, "lookahead") == "tune: alpha uniform [0.2, 0.9]; k integer 2..10"
    assert tune_line(lines, "l2") == "tune: lambda log-uniform [1e-06, 0.1]"
    assert tune_line(lines, "snapshot_ensemble") == "tune: cycles one of 2, 3, 4"
    assert tune_line(lines, "none") == "tune: lr only"
    # every regularizer has exactly one, the last line of its group
    rows = [line for line in lines[1:] if not line.startswith("      ")]
    assert sum(line.startswith("      tune: ") for line in lines) == len(rows)


def test_a_plain_list_keeps_one_line_per_regularizer(capsys):
    assert not any("tune:" in line for line in listed(capsys))


def test_a_plugin_without_a_space_shows_the_refusal(tmp_path):
    plugin = tmp_path / "plug.py"
    plugin.write_text(SPACES_PLUGIN)
    proc = subprocess.run([sys.executable, "-m", "regbench", "list", "regularizers",
                           "--plugin", str(plugin)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    refusal = tune_line(lines, "unbounded")
    assert refusal.startswith("tune: regularizer 'unbounded' cannot be tuned: it declares "
                              "no strength_space"), refusal
    assert "strength_space = LogUniform(lo, hi)" in refusal
    assert tune_line(lines, "bounded") == "tune: lambda uniform [0, 2]"
    assert tune_line(lines, "declared") == "tune: lam log-uniform [1e-05, 0.1]; k integer 2..10"
    assert tune_line(lines, "dropout") == "tune: p uniform [0, 0.8]"  # the rest still listed


GRID_BLOCK = '''description = "a grid block and a tuned one"
seeds = 2

[[blocks]]
tasks = [{name = "digits", n_train = 300}]
archs = ["mlp"]
regularizers = ["none", {name = "l2", strengths = [1e-3]}]
'''
TUNED = GRID_BLOCK + '''
[[blocks]]
tasks = [{name = "digits", n_train = 300}]
archs = ["mlp"]
regularizers = ["none", "l2", "dropout"]
[blocks.tune]
trials = 5
batch = 2
tune_seeds = 2
test_seeds = 3
'''


def test_matrices_count_the_cells_of_their_studies(capsys, monkeypatch, tmp_path):
    (tmp_path / "grid-only.toml").write_text(GRID_BLOCK)
    (tmp_path / "tuned.toml").write_text(TUNED)
    monkeypatch.setattr("regbench.matrix.builtin._folder", lambda: tmp_path)
    exp = matrix.get("tuned").expand()
    # 4 grid cells; per study 5 x 2 trial cells, 3 final cells, 3 baseline cells, of which
    # none's seeds 0 and 1 are grid cells already (counted once)
    assert len(exp.cells) == 4 and len(exp.studies) == 3
    assert exp.size() == 4 + 3 * (10 + 3 + 3) - 2 == 50
    lines = listed(capsys, "matrices")
    # the known built-in names first, in their order, then the others
    assert lines[2].split() == ["grid-only", "4", "cells,", "2", "seeds:", "a", "grid",
                                "block", "and", "a", "tuned", "one"]
    assert lines[1].startswith("  tuned            (3 studies, up to 50 cells), 2 seeds: "
                               "a grid block"), lines[1]


def test_list_regularizers_builds_each_task_and_arch_once(capsys, monkeypatch):
    """The skip groups of every regularizer are computed over one set of task and
    architecture instances, not a fresh set per regularizer."""
    from regbench.registry import ARCHS, TASKS

    gets: dict[str, int] = {}
    for registry, kind in ((TASKS, "task"), (ARCHS, "arch")):
        def counted(name, _get=registry.get, _kind=kind):
            gets[f"{_kind} {name}"] = gets.get(f"{_kind} {name}", 0) + 1
            return _get(name)

        monkeypatch.setattr(registry, "get", counted)
    listed(capsys, "regularizers")
    assert gets and max(gets.values()) == 1, gets


def test_list_imports_no_scikit_learn():
    """`regbench list` (every command's start) does not pay for importing scikit-learn; the
    tasks import it when they split data."""
    code = ("import sys; from regbench.__main__ import main; main(['list', 'regularizers']); "
            "print('sklearn' in sys.modules, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stderr.strip() == "False"
