"""How a plugin is found and identified, the same under `regbench` and `python -m
regbench`: a module beside the working directory, a module beside a plugin file
(whose source is part of the plugin's code identity), and a plugin that loads in the driver
but not in a worker (the run stops before any cell, one line)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = shutil.which("regbench", path=str(Path(sys.executable).parent))
ENTRY_POINTS = {"python -m regbench": [sys.executable, "-m", "regbench"],
                "regbench": [SCRIPT or "regbench"]}

PLUGIN = '''\
from helper_values import STRENGTHS

from regbench import Regularizer, register_regularizer


@register_regularizer("beside")
class Beside(Regularizer):
    """A regularizer whose strengths come from a module beside it."""

    version = "1"
    default_strengths = STRENGTHS
'''

MATRIX = '''\
seeds = 1
[[blocks]]
tasks = [{name = "digits", n_train = 100}]
archs = ["mlp"]
regularizers = ["none", "beside"]
strengths = "first"
protocol = {epochs = 1}
'''


def _cli(entry: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "REGBENCH_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("PYTHONPATH", None)
    return subprocess.run([*ENTRY_POINTS[entry], *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=600)


def _folder(tmp_path: Path) -> Path:
    (tmp_path / "helper_values.py").write_text("STRENGTHS = (0.5,)\n")
    (tmp_path / "beside.py").write_text(PLUGIN)
    (tmp_path / "m.toml").write_text(MATRIX)
    return tmp_path


@pytest.mark.skipif(SCRIPT is None, reason="the regbench console script is not installed")
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("plugin", ["beside.py", "beside"], ids=["file", "module"])
def test_both_entry_points_load_a_plugin_and_its_helper_the_same_way(tmp_path, entry, plugin):
    _folder(tmp_path)
    r = _cli(entry, "list", "regularizers", "--plugin", plugin, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.strip().startswith("beside"))
    assert "=0.5" in line


@pytest.mark.slow
def test_an_edited_module_beside_the_plugin_is_a_change_of_its_code(tmp_path):
    _folder(tmp_path)
    r = _cli("python -m regbench", "run", "--matrix", "m.toml", "--plugin", "beside.py",
             "--store", "s.sqlite", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    con = sqlite3.connect(tmp_path / "s.sqlite")
    (code,) = con.execute("SELECT plugin_code FROM cells WHERE regularizer = 'beside'").fetchone()
    con.close()
    assert "helper_values.py" in code
    r = _cli("python -m regbench", "check", "--plugin", "beside.py", "--store", "s.sqlite",
             cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    (tmp_path / "helper_values.py").write_text("STRENGTHS = (0.5,)  # edited\n")
    r = _cli("python -m regbench", "check", "--plugin", "beside.py", "--store", "s.sqlite",
             cwd=tmp_path)
    assert r.returncode == 1
    assert "1 stored cell(s) of regularizer 'beside' version 1 were made by other source" \
        in r.stdout


@pytest.mark.slow
@pytest.mark.parametrize("executor", [["--jobs", "2"], ["--executor", "dask", "--workers", "1"]],
                         ids=["local", "dask"])
def test_a_plugin_that_fails_only_in_workers_stops_the_run_with_one_line(tmp_path, executor):
    if executor[1] == "dask":
        pytest.importorskip("distributed")
    (tmp_path / "beside.py").write_text('''\
import multiprocessing

if multiprocessing.current_process().name != "MainProcess":
    raise ImportError("libfoo.so: cannot open shared object file")

from regbench import Regularizer, register_regularizer


@register_regularizer("beside")
class Beside(Regularizer):
    """Loads in the driver only."""

    version = "1"
    default_strengths = (0.5,)
''')
    (tmp_path / "m.toml").write_text(MATRIX)
    r = _cli("python -m regbench", "run", "--matrix", "m.toml", "--plugin", "beside.py",
             "--store", "s.sqlite", *executor, "--no-progress", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    err = [x for x in r.stderr.strip().splitlines() if x.startswith("regbench")]
    assert len(err) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "could not load the plugins the run loaded" in err[0]
    assert "libfoo.so: cannot open shared object file" in err[0]
    if (tmp_path / "s.sqlite").exists():
        con = sqlite3.connect(tmp_path / "s.sqlite")
        assert con.execute("SELECT COUNT(*) FROM cells").fetchone()[0] == 0
        con.close()


def test_a_directory_named_like_a_plugin_file_is_named_as_such(tmp_path):
    (tmp_path / "x.py").mkdir()
    r = _cli("python -m regbench", "list", "regularizers", "--plugin", "x.py", cwd=tmp_path)
    assert r.returncode == 2
    assert f"plugin file {tmp_path.resolve() / 'x.py'} is a directory, not a .py file" \
        in r.stderr


def test_ctrl_c_while_a_plugin_imports_under_list_mentions_no_store(tmp_path):
    (tmp_path / "slow.py").write_text("raise KeyboardInterrupt\n")
    r = _cli("python -m regbench", "list", "regularizers", "--plugin", "slow.py", cwd=tmp_path)
    assert r.returncode == 130
    assert r.stderr.strip() == "regbench: interrupted"
