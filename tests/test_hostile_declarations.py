"""A plugin's methods that raise while a matrix is built, a regularizer with no strengths
to run, a regularizer that needs a validation split on a task without one, a matrix whose
every combination is skipped: each is one line (or the skips and one line), exit 2, through
the CLI as a user runs it; nothing is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from regbench import matrix

PLUGIN = '''\
from regbench import Regularizer, register_regularizer


@register_regularizer("raises_check")
class RaisesCheck(Regularizer):
    """check_protocol raises a ValueError"""

    version = "1"
    default_strengths = (1.0,)

    @classmethod
    def check_protocol(cls, spec, protocol):
        raise ValueError("epochs must be even")


@register_regularizer("raises_skip")
class RaisesSkip(Regularizer):
    """skip_reason raises a KeyError"""

    version = "1"
    default_strengths = (1.0,)

    @classmethod
    def skip_reason(cls, task, arch, spec=None):
        raise KeyError("width")


@register_regularizer("no_strengths")
class NoStrengths(Regularizer):
    """declares no default strengths"""

    version = "1"
'''


def _run(tmp_path: Path, regs: str, *args: str, tasks: str = '["digits"]',
         extra: str = "") -> subprocess.CompletedProcess:
    (tmp_path / "hostile.py").write_text(PLUGIN)
    (tmp_path / "m.toml").write_text(f'''plugins = ["hostile.py"]
[[blocks]]
tasks = {tasks}
archs = ["mlp"]
regularizers = {regs}
{extra}
''')
    env = {**os.environ, "REGBENCH_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run([sys.executable, "-m", "regbench", *args, "--matrix", "m.toml",
                           "--store", "s.sqlite", "--no-progress"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=300)


def _one_line(r: subprocess.CompletedProcess, text: str, tmp_path: Path) -> None:
    assert r.returncode == 2, r.stdout + r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in r.stderr, r.stderr
    assert text in err[0], err[0]
    assert not (tmp_path / "s.sqlite").exists()


def test_a_plugin_check_protocol_that_raises_is_one_line(tmp_path):
    r = _run(tmp_path, '["none", "raises_check"]', "run")
    _one_line(r, "regularizer 'raises_check' (plugin file ", tmp_path)
    assert "its check_protocol raised ValueError: epochs must be even" in r.stderr


def test_a_plugin_skip_reason_that_raises_is_one_line_in_run_and_list(tmp_path):
    r = _run(tmp_path, '["none", "raises_skip"]', "run")
    _one_line(r, "its skip_reason raised KeyError: 'width'", tmp_path)
    env = {**os.environ, "REGBENCH_DISABLE_PLUGIN_AUTOLOAD": "1"}
    r = subprocess.run([sys.executable, "-m", "regbench", "list", "regularizers", "--plugin",
                        "hostile.py"], cwd=tmp_path, capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "regularizer 'raises_skip'" in r.stderr and "its skip_reason raised KeyError" \
        in r.stderr


def test_a_bare_regularizer_without_default_strengths_is_refused(tmp_path):
    r = _run(tmp_path, '["none", "no_strengths"]', "run")
    _one_line(r, "regularizer 'no_strengths' (plugin file ", tmp_path)
    assert "declares no default_strengths, so strengths = 'default' gives it none" in r.stderr


def test_early_stopping_without_a_validation_split_is_skipped_under_its_own_name(tmp_path):
    m = matrix.Matrix.from_dict({"name": "x", "blocks": [
        {"tasks": [{"name": "mnist1d", "val_fraction": 0.0}], "archs": ["mlp"],
         "regularizers": ["none", "early_stopping"], "strengths": "first"},
        {"tasks": [{"name": "mnist1d", "val_fraction": 0.0}], "archs": ["mlp"],
         "base": [{"name": "early_stopping", "strength": 3}],
         "regularizers": ["none", "l2"], "strengths": "first"}]})
    exp = m.expand()
    assert {c.reg.name for c in exp.cells} == {"none"} and not any(c.base for c in exp.cells)
    reasons = {s.reason for s in exp.skipped}
    assert reasons == {"early_stopping needs a validation split; mnist1d[val_fraction=0.0] "
                       "has none"}
    assert len(exp.skipped) == 3  # early_stopping alone; none and l2 on it as a base


def test_a_matrix_whose_every_combination_is_skipped_prints_the_skips(tmp_path):
    r = _run(tmp_path, '["none", "l2"]', "run", tasks='["diabetes"]',
             extra='base = [{name = "label_smoothing", strength = 0.1}]')
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[-1] == ("regbench: error: matrix 'm' has no cells: every combination of its "
                         "blocks is skipped (2, reasons above)")
    assert sum("label_smoothing needs a classification task" in x for x in lines) == 2
    assert "for the given filters" not in r.stderr
    assert not (tmp_path / "s.sqlite").exists()
