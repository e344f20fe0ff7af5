"""Plugins: a user's regularizer, architecture or task from a file, a module, a matrix file
or an installed package's entry points; checked as it loads; loaded in every process that
runs cells; the code of each stored number recorded and compared with the code loaded now."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from regbench import matrix, plugins, registry
from regbench.errors import PluginError
from regbench.registry import ARCHS, REGULARIZERS, TASKS
from regbench.specs import Cell, RegSpec, TaskSpec
from regbench.store import Store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "regbench-example-plugin"

# The README's plugin file, exactly as a user writes it.
README_PLUGIN = '''\
import torch
from regbench import Regularizer, register_regularizer


@register_regularizer("orthogonal")
class Orthogonal(Regularizer):
    """Soft orthogonality: lambda * sum over weight matrices of ||W W^T - I||_F^2."""

    version = "1"
    strength_name = "lambda"
    default_strengths = (1e-4, 1e-3)
    full_strengths = (1e-5, 1e-4, 1e-3, 1e-2)

    def penalty(self, model):
        total = 0.0
        for w in (p for p in model.parameters() if p.dim() == 2):
            g = w @ w.T
            total = total + ((g - torch.eye(len(g), device=g.device)) ** 2).sum()
        return self.strength * total
'''

TINY = """\
seeds = 1
[[blocks]]
tasks = ["curve"]
archs = [{name = "mlp", width = 8, depth = 1}]
regularizers = ["none", "orthogonal"]
strengths = "first"
protocol = {epochs = 2}
"""


@pytest.fixture
def clean_plugins():
    """Registries and loaded plugins as they were before the test (plugins are global)."""
    registry._load_builtins()
    saved = [(r, dict(r._entries), dict(r._origins)) for r in (TASKS, ARCHS, REGULARIZERS)]
    state = (dict(plugins._loaded), dict(plugins._modules), plugins._autoloaded)
    mods = set(sys.modules)
    yield
    for r, entries, origins in saved:
        r._entries.clear()
        r._entries.update(entries)
        r._origins.clear()
        r._origins.update(origins)
    plugins._loaded.clear()
    plugins._loaded.update(state[0])
    plugins._modules.clear()
    plugins._modules.update(state[1])
    plugins._autoloaded = state[2]
    for name in set(sys.modules) - mods:
        if name.startswith("regbench_plugin_") or name.startswith("regbench_example_plugin"):
            del sys.modules[name]


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **extra}
    env["PYTHONPATH"] = os.pathsep.join(
        [*(extra.get("PYTHONPATH", "").split(os.pathsep) if extra.get("PYTHONPATH") else []),
         str(ROOT)])
    return env


def _cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=_env(**env),
                          capture_output=True, text=True, timeout=900)


# -- loading and the code identity ------------------------------------------------------
def test_readme_plugin_file_runs_a_cell_and_records_its_code(tmp_path, clean_plugins):
    from regbench.train import run_cell

    path = _write(tmp_path / "my_reg.py", README_PLUGIN)
    plugins.load([str(path)], autoload=False)
    assert REGULARIZERS.origin("orthogonal") == f"file {path.resolve()}"
    assert REGULARIZERS.origin("l2") == "built-in"
    assert REGULARIZERS.plugin_version("orthogonal") == "1"
    assert REGULARIZERS.plugin_version("l2") is None
    cell = next(c for c in matrix.Matrix.from_toml(_write(tmp_path / "m.toml", TINY))
                .expand().cells if c.reg.name == "orthogonal")
    assert cell.reg.version == "1"  # part of the id
    assert cell.cell_id != Cell(cell.task, cell.arch, RegSpec("orthogonal", cell.reg.strength),
                                cell.seed, cell.protocol).cell_id
    result = run_cell(cell)
    assert result.status == "ok", result.error
    code = json.loads(result.provenance["plugin_code"])
    assert code == [{
        "kind": "regularizer", "name": "orthogonal", "version": "1",
        "module": plugins.module_name(path), "file": str(path.resolve()),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "plugin": f"file {path.resolve()}"}]
    assert result.row()["plugin_code"] == result.provenance["plugin_code"]
    none = next(c for c in matrix.Matrix.from_toml(tmp_path / "m.toml").expand().cells
                if c.reg.name == "none")
    assert plugins.cell_code(none) is None  # built-ins only: NULL


def test_module_name_of_a_file_is_stable(tmp_path):
    a = plugins.module_name(tmp_path / "my_reg.py")
    assert a == plugins.module_name(tmp_path / "." / "my_reg.py")
    assert a.startswith("regbench_plugin_my_reg_")
    assert a != plugins.module_name(tmp_path / "sub" / "my_reg.py")


def test_matrix_file_plugins_are_relative_to_the_file(tmp_path, clean_plugins, monkeypatch):
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub" / "my_reg.py", README_PLUGIN)
    toml = _write(tmp_path / "sub" / "m.toml", 'plugins = ["my_reg.py"]\n' + TINY)
    monkeypatch.chdir(tmp_path)  # not the file's folder
    cells = matrix.Matrix.from_toml(toml).expand().cells
    assert {c.reg.name for c in cells} == {"none", "orthogonal"}
    assert REGULARIZERS.origin("orthogonal") == f"file {tmp_path / 'sub' / 'my_reg.py'}"


def test_a_module_plugin_loads_by_name(tmp_path, clean_plugins, monkeypatch):
    _write(tmp_path / "my_module_reg.py", README_PLUGIN.replace("orthogonal", "ortho_mod"))
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.load(["my_module_reg"], autoload=False)
    assert REGULARIZERS.origin("ortho_mod") == "module my_module_reg"
    plugins.load(["my_module_reg"], autoload=False)  # twice: a no-op


BAD = {
    "duplicate_builtin": ('''
        from regbench import Regularizer, register_regularizer

        @register_regularizer("l2")
        class L2(Regularizer):
            """mine"""
            version = "1"
        ''', "regularizer 'l2' is already registered by regbench (built-in)"),
    "no_version": ('''
        from regbench import Regularizer, register_regularizer

        @register_regularizer("noversion")
        class NoVersion(Regularizer):
            """mine"""
        ''', "regularizer 'noversion': declares no version"),
    "bad_hook": ('''
        from regbench import Regularizer, register_regularizer

        @register_regularizer("badhook")
        class BadHook(Regularizer):
            """mine"""
            version = "1"
            def penalty(self):
                return None
        ''', "regularizer 'badhook': penalty(self) should take (self, model)"),
    "task_without_arrays": ('''
        from regbench import Task, register_task

        @register_task("noarrays")
        class NoArrays(Task):
            """mine"""
            version = "1"
        ''', "task 'noarrays': lacks arrays; lacks protocol"),
    "arch_without_build": ('''
        from regbench import Arch, register_arch

        @register_arch("nobuild")
        class NoBuild(Arch):
            """mine"""
            version = "2"
        ''', "architecture 'nobuild': lacks build"),
    "not_a_classmethod": ('''
        from regbench import Regularizer, register_regularizer

        @register_regularizer("plainmethod")
        class Plain(Regularizer):
            """mine"""
            version = "1"
            def check_protocol(self, spec, protocol):
                pass
        ''', "regularizer 'plainmethod': check_protocol must be a classmethod"),
    "owns_a_string": ('''
        from regbench import Regularizer, register_regularizer

        @register_regularizer("ownsstr")
        class OwnsStr(Regularizer):
            """mine"""
            version = "1"
            owns = "optimizer"
        ''', "regularizer 'ownsstr': owns must be a set of names"),
    "keyword_only_hook": ('''
        from regbench import Regularizer, register_regularizer

        @register_regularizer("kwonly")
        class KwOnly(Regularizer):
            """mine"""
            version = "1"
            def penalty(self, *, model):
                return None
        ''', "regularizer 'kwonly': penalty: parameter 'model' is keyword-only"),
    "strengths_out_of_range": ('''
        from regbench import Regularizer, register_regularizer

        @register_regularizer("outside")
        class Outside(Regularizer):
            """mine"""
            version = "1"
            strength_range = (0.0, 1.0)
            default_strengths = (0.5, 2.0)
        ''', "default_strengths (0.5, 2.0) lie outside strength_range (0.0, 1.0)"),
    "arch_inputs_a_string": ('''
        from regbench import Arch, register_arch

        @register_arch("strinputs")
        class StrInputs(Arch):
            """mine"""
            version = "1"
            inputs = "vector"
            def build(self, spec, data, knobs):
                raise NotImplementedError
        ''', "architecture 'strinputs': inputs must be a set of names"),
    "task_with_zero_epochs": ('''
        from regbench import Protocol, Task, register_task

        @register_task("zeroepochs")
        class ZeroEpochs(Task):
            """mine"""
            version = "1"
            kind, metric = "regression", "rmse"
            protocol = Protocol(epochs=0, batch_size=0, optimizer="sgd", lr=0.1)
            def arrays(self, spec, seed, data_dir):
                raise NotImplementedError
        ''', "task 'zeroepochs': its protocol: protocol: epochs=0 is not allowed"),
    "registered_twice": ('''
        from regbench import Regularizer, register_regularizer

        @register_regularizer("twice")
        class One(Regularizer):
            """mine"""
            version = "1"

        @register_regularizer("twice")
        class Two(Regularizer):
            """mine"""
            version = "1"
        ''', "registers regularizer 'twice' twice (two classes under one name)"),
    "import_error": ('''
        import regbench_no_such_module
        ''', "failed to import: ModuleNotFoundError: No module named 'regbench_no_such_module'"),
    "syntax_error": ('''
        def broken(:
        ''', "failed to import: SyntaxError"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_plugin_is_one_line_naming_it(tmp_path, clean_plugins, case):
    text, expected = BAD[case]
    path = _write(tmp_path / f"{case}.py", text)
    with pytest.raises(PluginError) as info:
        plugins.load([str(path)], autoload=False)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"plugin file {path.resolve()}") and expected in msg, msg
    assert plugins.module_name(path) not in sys.modules


def test_a_name_two_plugins_register_names_the_first(tmp_path, clean_plugins):
    first = _write(tmp_path / "first.py", README_PLUGIN)
    second = _write(tmp_path / "second.py", README_PLUGIN)
    plugins.load([str(first)], autoload=False)
    with pytest.raises(PluginError, match=f"plugin file {second.resolve()}: regularizer "
                       f"'orthogonal' is already registered by file {first.resolve()}"):
        plugins.load([str(second)], autoload=False)


def test_a_failing_plugin_takes_back_what_it_registered(tmp_path, clean_plugins):
    path = _write(tmp_path / "half.py", README_PLUGIN + textwrap.dedent('''
        @register_regularizer("half_second")
        class Second(Regularizer):
            """no version"""
        '''))
    with pytest.raises(PluginError, match="half_second"):
        plugins.load([str(path)], autoload=False)
    assert "orthogonal" not in REGULARIZERS and "half_second" not in REGULARIZERS
    plugins.load([str(_write(tmp_path / "ok.py", README_PLUGIN))], autoload=False)  # free again


def test_cli_refuses_a_bad_plugin_before_the_store_is_opened(tmp_path):
    bad = _write(tmp_path / "bad.py", BAD["no_version"][0])
    store = tmp_path / "s.sqlite"
    r = _cli("regbench", "run", "--plugin", str(bad), "--matrix", "smoke", "--store",
             str(store), cwd=tmp_path, REGBENCH_DISABLE_PLUGIN_AUTOLOAD="1")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().count("\n") == 0
    assert "regularizer 'noversion': declares no version" in r.stderr
    assert not store.exists()


def test_a_missing_plugin_file_or_bad_name_is_refused(tmp_path):
    with pytest.raises(PluginError, match="plugin file .*no/such/file.py does not exist"):
        plugins.load(["no/such/file.py"], autoload=False)
    with pytest.raises(PluginError, match="'not a-module' is neither a .py file nor a module"):
        plugins.load(["not a-module"], autoload=False)


def test_add_regularizer_puts_it_beside_none_in_every_block(tmp_path, clean_plugins):
    plugins.load([str(_write(tmp_path / "my_reg.py", README_PLUGIN))], autoload=False)
    base = matrix.get("default")
    added = matrix.add_regularizers(base, ["orthogonal"])
    for old, new in zip(base.blocks, added.blocks):
        names = [e if isinstance(e, str) else e["name"] for e in old["regularizers"]]
        assert ("orthogonal" in [e if isinstance(e, str) else e["name"]
                                 for e in new["regularizers"]]) == ("none" in names)
    before, after = base.expand().cells, added.expand().cells
    assert {c.cell_id for c in before} <= {c.cell_id for c in after}  # built-ins unchanged
    new = [c for c in after if c.reg.name == "orthogonal"]
    assert len(after) - len(before) == len(new)
    assert {c.reg.strength for c in new} == {1e-4, 1e-3}
    assert {c.task.name for c in new} == {c.task.name for c in before if c.reg.name == "none"}


def test_check_and_report_see_cells_of_changed_plugin_code(tmp_path, clean_plugins):
    from regbench.specs import CellResult
    from regbench.store import Store
    from regbench.store.check import check_store

    path = _write(tmp_path / "my_reg.py", README_PLUGIN)
    plugins.load([str(path)], autoload=False)
    cells = [c for c in matrix.Matrix.from_toml(_write(tmp_path / "m.toml", TINY)).expand(
        seeds=2).cells if c.reg.name == "orthogonal"]
    now = json.loads(plugins.cell_code(cells[0]))
    old = json.dumps([{**now[0], "sha256": "0" * 64}], sort_keys=True)
    with Store(tmp_path / "s.sqlite") as store:
        store.add(CellResult(cells[0], "ok", provenance={"plugin_code": old}))
        store.add(CellResult(cells[1], "ok", provenance={"plugin_code": json.dumps(now)}))
        codes = list(store.cells_frame().plugin_code)
    changed = plugins.changed_code(codes)
    assert [(c.kind, c.name, c.version, c.cells) for c in changed] == [
        ("regularizer", "orthogonal", "1", 1)]
    report = check_store(tmp_path / "s.sqlite")
    assert any("1 stored cell(s) of regularizer 'orthogonal' version 1 were made by other "
               "source code" in p for p in report.problems())
    assert len(list(Store(tmp_path / "s.sqlite").cells_frame().cell_id)) == 2  # kept
    # another version's cells are another cell id, not a changed-code problem
    other = json.dumps([{**now[0], "version": "0", "sha256": "0" * 64}])
    assert plugins.changed_code([other]) == []
    # a plugin not loaded now cannot be compared: said, not flagged
    gone = json.dumps([{**now[0], "name": "not_loaded_now"}])
    assert plugins.not_loaded([gone]) == {"regularizer not_loaded_now": 1}


# -- through the CLI: a file with --plugin, the example package, Dask workers -----------------
def _report_check(out: Path, reg: str) -> None:
    tuned = (out / "tuned.csv").read_text()
    ranking = (out / "ranking.csv").read_text()
    assert f",{reg}," in tuned and ranking.splitlines()[1:] and any(
        line.startswith(f"{reg},") for line in ranking.splitlines())
    readme = (out / "README.md").read_text()
    assert f"regularizer `{reg}` version 1" in readme  # the plugin code is named


@pytest.mark.slow
def test_plugin_file_through_run_jobs_2_and_the_report(tmp_path):
    """`--plugin my_reg.py`: pool workers load it; the report tunes and ranks it."""
    _write(tmp_path / "my_reg.py", README_PLUGIN)
    toml = _write(tmp_path / "m.toml", TINY.replace('["curve"]', '["curve", "periodic"]')
                  .replace('"none", "orthogonal"', '"none", "orthogonal", "l2"')
                  .replace("seeds = 1", "seeds = 2"))
    env = {"REGBENCH_DISABLE_PLUGIN_AUTOLOAD": "1"}
    r = _cli("regbench", "run", "--plugin", "my_reg.py", "--matrix", str(toml), "--store",
             "s.sqlite", "--jobs", "2", "--no-progress", cwd=tmp_path, **env)
    assert r.returncode == 0, r.stderr
    assert "12 run now (12 ok" in r.stdout
    r = _cli("regbench.report", "--plugin", "my_reg.py", "--matrix", str(toml), "--store",
             "s.sqlite", "--out", "out", "--figure-formats", "png", "--formats", "md,csv",
             "--no-run", "--no-progress", cwd=tmp_path, **env)
    assert r.returncode == 0, r.stderr
    _report_check(tmp_path / "out", "orthogonal")
    # the plugin edited without a version bump: check says so, keeps the cells
    with open(tmp_path / "my_reg.py", "a") as f:
        f.write("# edited\n")
    r = _cli("regbench", "check", "--plugin", "my_reg.py", "--store", "s.sqlite",
             cwd=tmp_path, **env)
    assert r.returncode == 1
    assert "4 stored cell(s) of regularizer 'orthogonal' version 1 were made by other" \
        in r.stdout


@pytest.fixture(scope="module")
def example_installed(tmp_path_factory):
    """The example package installed into a temporary target, found through PYTHONPATH."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("src")
    import shutil

    src = shutil.copytree(EXAMPLE, build / "pkg")  # build outputs stay out of the tree
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                        "--no-build-isolation", "--no-index", "--target", str(target),
                        str(src)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return target


@pytest.mark.slow
def test_example_package_entry_points_run_and_report(tmp_path, example_installed):
    env = {"PYTHONPATH": str(example_installed)}
    r = _cli("regbench", "list", cwd=tmp_path, **env)
    assert r.returncode == 0, r.stderr
    origin = "(plugin: package regbench-example-plugin 0.1.0 (entry point regbench.{}:{}))"
    for group, name in (("regularizers", "group_lasso"), ("archs", "maxout"),
                        ("tasks", "spirals")):
        line = next(x for x in r.stdout.splitlines() if x.strip().startswith(name + " "))
        assert line.endswith(origin.format(group, name)), line
    r = _cli("regbench", "list", cwd=tmp_path, REGBENCH_DISABLE_PLUGIN_AUTOLOAD="1", **env)
    assert "group_lasso" not in r.stdout  # autoload off

    toml = _write(tmp_path / "m.toml", """\
        seeds = 2
        [[blocks]]
        tasks = [{name = "spirals", n = 200}, {name = "digits", n_train = 200}]
        archs = [{name = "maxout", width = 8, depth = 1}, {name = "mlp", width = 8, depth = 1}]
        regularizers = ["none", "group_lasso", "l2"]
        strengths = "first"
        protocol = {epochs = 2}
        """)
    r = _cli("regbench", "run", "--matrix", str(toml), "--store", "s.sqlite", "--jobs", "2",
             "--no-progress", cwd=tmp_path, **env)
    assert r.returncode == 0, r.stderr
    assert "24 run now (24 ok" in r.stdout
    r = _cli("regbench.report", "--matrix", str(toml), "--store", "s.sqlite", "--out", "out",
             "--figure-formats", "png", "--formats", "md,csv", "--no-run", "--no-progress",
             cwd=tmp_path, **env)
    assert r.returncode == 0, r.stderr
    _report_check(tmp_path / "out", "group_lasso")
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "task `spirals` version 1: package regbench-example-plugin 0.1.0" in readme
    from regbench.store import Store

    with Store(tmp_path / "s.sqlite") as store:
        df = store.cells_frame()
    code = json.loads(df[df.regularizer == "group_lasso"].plugin_code.iloc[0])
    assert {e["dist"] for e in code} == {"regbench-example-plugin"}
    assert {e["dist_version"] for e in code} == {"0.1.0"}


@pytest.mark.slow
def test_a_plugin_loads_in_dask_workers(tmp_path, clean_plugins):
    distributed = pytest.importorskip("distributed")
    from regbench.executors import run_cells
    from regbench.executors.dask import DaskExecutor
    from regbench.store import Store

    path = _write(tmp_path / "my_reg.py", README_PLUGIN)
    plugins.load([str(path)], autoload=False)
    cells = [c for c in matrix.Matrix.from_toml(_write(tmp_path / "m.toml", TINY)).expand(
        seeds=2).cells if c.reg.name == "orthogonal"]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cl, \
            Store(tmp_path / "s.sqlite") as store:
        summary = run_cells(cells, store, DaskExecutor(scheduler=cl.scheduler_address),
                            progress=False)
        df = store.cells_frame()
    assert summary.counts["ok"] == 2, summary.failures
    assert all(json.loads(c)[0]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
               for c in df.plugin_code)


def test_task_spec_version_comes_from_the_plugin(tmp_path, clean_plugins):
    sys.path.insert(0, str(EXAMPLE / "src"))
    try:
        plugins.load(["regbench_example_plugin.tasks"], autoload=False)
    finally:
        sys.path.remove(str(EXAMPLE / "src"))
    m = matrix.Matrix.from_dict({"seeds": 1, "blocks": [
        {"tasks": [{"name": "spirals", "n": 60}], "archs": ["mlp"], "regularizers": ["none"],
         "protocol": {"epochs": 1}}]})
    (cell,) = m.expand().cells
    assert cell.task == TaskSpec("spirals", (("n", 60),), "1")
    from regbench.train import run_cell

    result = run_cell(cell)
    assert result.status == "ok", result.error
    assert json.loads(result.provenance["plugin_code"])[0]["kind"] == "task"


def _tutorial_block(after: str, lang: str) -> str:
    """The first ```lang block after the line `after` in the own-regularizer tutorial."""
    text = (ROOT / "docs" / "tutorials" / "own-regularizer.md").read_text()
    rest = text[text.index(after):]
    start = rest.index(f"```{lang}\n") + len(f"```{lang}\n")
    return rest[start:rest.index("```", start)]


@pytest.mark.slow
def test_the_tutorials_loss_hook_plugin_stacks_with_sam_and_is_reported(tmp_path):
    """The tutorial's confidence penalty (loss_terms, not train_step): runs alone and under
    SAM's owned step, and is ranked in the report."""
    code = _tutorial_block("## A term of the outputs", "python")
    assert "def loss_terms" in code and "train_step" not in code
    assert len(code.strip().splitlines()) <= 16
    _write(tmp_path / "my_confidence.py", code)
    toml = _write(tmp_path / "sam.toml",
                  _tutorial_block("## A term of the outputs", "toml").replace(
                      "epochs = 10", "epochs = 3"))
    env = {"REGBENCH_DISABLE_PLUGIN_AUTOLOAD": "1"}
    r = _cli("regbench", "run", "--matrix", str(toml), "--store", "s.sqlite", "--seeds", "2",
             "--jobs", "1", "--no-progress", cwd=tmp_path, **env)
    assert r.returncode == 0, r.stderr
    assert "8 run now (8 ok" in r.stdout, r.stdout
    with Store(tmp_path / "s.sqlite") as st:
        cells = st.frame(["regularizer", "addons", "status"])
    under_sam = cells[(cells.regularizer == "sam") & cells.addons.str.contains("my_confidence")]
    assert len(under_sam) == 2 and set(under_sam.status) == {"ok"}
    r = _cli("regbench.report", "--matrix", str(toml), "--store", "s.sqlite", "--out", "out",
             "--figure-formats", "png", "--formats", "md,csv", "--no-run", "--no-progress",
             cwd=tmp_path, **env)
    assert r.returncode == 0, r.stderr
    _report_check(tmp_path / "out", "my_confidence")
