"""Equal-budget tuning: search spaces, the `tune` table, studies replayed from the store,
bad input refused before anything is written, and the same trial cells whatever runs them."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from space_plugins import SPACES_PLUGIN

from regbench import matrix
from regbench.__main__ import main
from regbench.errors import MatrixError, RegbenchError
from regbench.registry import REGULARIZERS
from regbench.tuning.config import TuneConfig
from regbench.tuning.space import Choice, IntUniform, LogUniform, Uniform, lr_space
from regbench.tuning.study import best, plan

TINY = """\
name = "tiny-tune"
[[blocks]]
tasks = [{name = "digits", n_train = 300}]
archs = [{name = "mlp", width = 16, depth = 1}]
regularizers = REGS
protocol = {epochs = 3}
tune = TUNE
"""


def tiny(tmp_path: Path, regs: str = '["none", "l2", "dropout", "mixup"]',
         tune: str = "{trials = 6, batch = 3, tune_seeds = 1, test_seeds = 2}",
         name: str = "m.toml") -> Path:
    p = tmp_path / name
    p.write_text(TINY.replace("REGS", regs).replace("TUNE", tune))
    return p


def regbench(*args: str, check: bool = True, cwd: Path | None = None
             ) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "regbench", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def rows(store: Path) -> dict[str, tuple]:
    con = sqlite3.connect(store)
    try:
        return {r[0]: r[1:] for r in con.execute(
            "SELECT cell_id, tune, status, val_metric, test_metric, train_loss, test_loss, "
            "protocol, strength, reg_params, seed, regularizer FROM cells")}
    finally:
        con.close()


# -- spaces --------------------------------------------------------------------------------------
def test_every_builtin_declares_a_space_and_none_tunes_only_the_lr():
    # built-ins only: test_run_faults registers fault regularizers when it is collected
    for name in REGULARIZERS.builtin_names():
        space = REGULARIZERS.get(name).search_space()
        if name == "none":
            assert space == {}
        else:
            assert "strength" in space, name
    assert set(REGULARIZERS.get("lookahead").search_space()) == {"strength", "k"}
    assert set(REGULARIZERS.get("lookahead").search_space(fixed={"k"})) == {"strength"}


@pytest.mark.parametrize("space", [LogUniform(0.0, 1.0), LogUniform(1.0, 0.5),
                                   Uniform(0.0, float("inf")), Uniform(2.0, 1.0),
                                   IntUniform(3, 2), IntUniform(0, 5, log=True),
                                   Choice(()), Choice((1.0, 1.0))])
def test_an_empty_or_non_finite_space_is_refused(space):
    with pytest.raises(MatrixError):
        space.check("here")


def test_lr_space_is_a_decade_each_side_or_the_blocks_range():
    assert lr_space(1e-3) == LogUniform(1e-3 / 10, 1e-3 * 10)
    assert lr_space(1e-3, [1e-4, 1e-1]) == LogUniform(1e-4, 1e-1)
    for bad in ([1e-3], [0.0, 1.0], [1.0, 0.1], "fast"):
        with pytest.raises(MatrixError, match="lr"):
            lr_space(1e-3, bad)


def test_tune_config_defaults_and_seeds_are_disjoint():
    cfg = TuneConfig.parse({"trials": 16}, "b")
    assert (cfg.sampler, cfg.batch, cfg.tune_seeds, cfg.test_seeds) == ("tpe", 4, 1, 5)
    assert set(cfg.tune_seed_indices).isdisjoint(cfg.test_seed_indices)


def test_best_takes_the_first_of_equal_scores():
    from regbench.tuning.study import Trial

    ts = [Trial(i, 0.1, (), [], v) for i, v in enumerate([0.5, None, 0.9, 0.9])]
    assert best(ts, True) == 2 and best(ts, False) == 0
    assert best([Trial(0, 0.1, (), [], None)], True) is None


# -- the studies of a block ---------------------------------------------------------------------
def test_a_block_makes_one_study_per_entry_and_setting_plus_the_cocktail(tmp_path):
    m = matrix.Matrix.from_toml(tiny(tmp_path, tune='{trials = 4, cocktail = ["dropout", '
                                     '"weight_decay", "adamw", "label_smoothing"]}'))
    exp = m.expand()
    assert exp.cells == []
    assert [s.entry for s in exp.studies] == ["none", "l2", "dropout", "mixup", "cocktail"]
    assert exp.studies[2].name == "digits[n_train=300] / mlp[depth=1,width=16] / dropout {epochs=3}"
    assert exp.size() == sum(4 + 5 + len(s.baseline) for s in exp.studies)
    assert all(len(s.baseline) == 5 for s in exp.studies[:4]) and not exp.studies[4].baseline


def test_a_cocktail_never_has_two_owners_of_one_part():
    """weight_decay and adamw both own the optimizer's weight decay: over many asked
    trials no configuration has both, and the compositions vary."""
    import optuna

    from regbench.matrix import check_composable

    m = matrix.Matrix.from_dict({"name": "c", "blocks": [{
        "tasks": ["digits"], "archs": ["mlp"], "regularizers": ["none"],
        "tune": {"trials": 40, "sampler": "random",
                 "cocktail": ["dropout", "weight_decay", "adamw", "mixup", "swa",
                              "lookahead"]}}]})
    study = next(s for s in m.expand().studies if s.entry == "cocktail")
    ost = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(40):
        lr, specs = study.suggest(ost.ask())
        check_composable(specs)  # raises on two owners
        seen.add(tuple(s.name for s in specs))
    assert len(seen) > 10
    assert not any({"weight_decay", "adamw"} <= set(names) for names in seen)


def test_plan_replays_the_same_trials_from_the_same_results(tmp_path):
    m = matrix.Matrix.from_toml(tiny(tmp_path))
    study = m.expand().studies[1]
    first = plan(study, {})
    assert len(first.trials) == 3 and len(first.pending) == 3  # batch 3, 1 tuning seed
    results = {c.cell_id: ("ok", 0.5 + 0.01 * t.index) for t in first.trials for c in t.cells}
    second, again = plan(study, results), plan(study, results)
    assert [c.cell_id for c in second.pending] == [c.cell_id for c in again.pending]
    assert [t.cells[0].cell_id for t in second.trials[:3]] == [
        t.cells[0].cell_id for t in first.trials]
    assert len(second.trials) == 6
    lrs = {dict(t.cells[0].protocol)["lr"] for t in second.trials}
    assert len(lrs) == 6


# -- bad input: one line, exit 2, nothing written ----------------------------------------------
BAD_TUNES = [
    ("{trials = 0}", "tune trials=0 is not allowed"),
    ("{trials = 4, batch = 0}", "tune batch=0 is not allowed"),
    ('{trials = 4, sampler = "grid"}', "tune sampler='grid' is not allowed; valid choices: "
                                       "random, qmc, tpe"),
    ("{trials = 4, budget = 3}", "unknown key(s) ['budget'] in block 0 tune"),
    ("{batch = 2}", "tune needs trials"),
    ('{trials = 4, cocktail = ["dropout", "nope"]}', "unknown regularizer 'nope'"),
    ('{trials = 4, cocktail = ["dropout", "dropout"]}', "tune cocktail lists 'dropout' twice"),
    ('{trials = 4, cocktail = ["cutout"]}', "member 'cutout' cannot apply here"),
    ("{trials = 4, lr = [0.1, 0.01]}", "log-uniform range"),
    ('"many"', "tune must be a table"),
]


@pytest.mark.parametrize("tune,message", BAD_TUNES, ids=[t for t, _ in BAD_TUNES])
def test_bad_tune_tables_exit_2_with_one_line_and_no_store(tmp_path, capsys, tune, message):
    regs = '["none"]' if "cutout" not in tune else '["none"]'
    m = tiny(tmp_path, regs=regs, tune=tune)
    if "cutout" in tune:  # breast_cancer's rows are not images
        m.write_text(m.read_text().replace('{name = "digits", n_train = 300}',
                                           '"breast_cancer"'))
    store = tmp_path / "s.sqlite"
    assert main(["run", "--matrix", str(m), "--store", str(store)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert not store.exists()


def test_tune_with_strengths_is_refused(tmp_path):
    for regs, tune_extra in (('[{name = "l2", strengths = [0.1]}]', ""),
                             ('["l2"]', 'strengths = "full"\n')):
        m = tiny(tmp_path, regs=regs, tune="{trials = 2}")
        m.write_text(m.read_text() + tune_extra if not tune_extra else
                     m.read_text().replace("protocol =", tune_extra + "protocol ="))
        with pytest.raises(MatrixError, match="strengths"):
            matrix.Matrix.from_toml(m)


def test_a_plugin_without_a_space_and_an_infinite_range_is_refused(tmp_path):
    plugin = tmp_path / "plug.py"
    plugin.write_text(SPACES_PLUGIN)
    m = tiny(tmp_path, regs='["none", "unbounded"]', tune="{trials = 2}")
    store = tmp_path / "s.sqlite"
    proc = regbench("run", "--plugin", str(plugin), "--matrix", str(m), "--store", str(store),
                    check=False)
    assert proc.returncode == 2 and not store.exists()
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "regularizer 'unbounded' cannot be tuned" in proc.stderr
    from regbench import plugins

    plugins.load([str(plugin)])
    assert REGULARIZERS.get("bounded").search_space() == {"strength": Uniform(0.0, 2.0)}
    with pytest.raises(RegbenchError, match="cannot be tuned"):
        REGULARIZERS.get("unbounded").search_space()


def test_a_task_without_a_validation_split_cannot_be_tuned(tmp_path):
    m = tiny(tmp_path, regs='["none"]', tune="{trials = 2}")
    m.write_text(m.read_text().replace('{name = "digits", n_train = 300}',
                                       '{name = "mnist1d", val_fraction = 0.0}'))
    with pytest.raises(MatrixError, match="no validation split"):
        matrix.Matrix.from_toml(m)


# -- running it ---------------------------------------------------------------------------------
def check_done_when(store: Path) -> None:
    """Each of none, l2, dropout, mixup: 6 trial cells with 6 distinct lrs, 2 final cells at
    the best trial's configuration, and the tune field in `show`."""
    by_study: dict[str, list] = {}
    for tune, _status, val, *_rest in rows(store).values():
        if tune:
            t = json.loads(tune)
            by_study.setdefault(t["study"], []).append((t, val, *_rest))
    assert len(by_study) == 4
    for name, cells in by_study.items():
        trials = [c for c in cells if c[0]["role"] == "trial"]
        finals = [c for c in cells if c[0]["role"] == "final"]
        assert len(trials) == 6 and len(finals) == 2, name
        lrs = {json.loads(c[5])["lr"] for c in trials}
        assert len(lrs) == 6, name
        best_trial = max(trials, key=lambda c: (c[1], -c[0]["trial"]))
        assert {c[0]["trial"] for c in finals} == {best_trial[0]["trial"]}
        assert {json.loads(c[5])["lr"] for c in finals} == {json.loads(best_trial[5])["lr"]}
        assert sorted(c[8] for c in finals) == [0, 1]
        assert {c[8] for c in trials} == {2}


@pytest.mark.slow  # 40 cells in 3 rounds through the CLI: about 20 s
def test_a_tuned_block_runs_to_its_final_cells_and_show_has_the_tune_field(tmp_path):
    m = tiny(tmp_path)
    store = tmp_path / "s.sqlite"
    out = regbench("run", "--matrix", str(m), "--store", str(store), "--jobs", "2",
                   "--no-progress")
    assert "40 cells in matrix: 0 already stored, 40 run now (40 ok" in out.stdout
    assert "tuning: round 3:" in out.stderr
    check_done_when(store)
    again = regbench("run", "--matrix", str(m), "--store", str(store), "--no-progress")
    assert "40 cells in matrix: 40 already stored, 0 run now" in again.stdout
    shown = json.loads(regbench("show", "--store", str(store), "--format", "json",
                                "--all-columns").stdout)
    tunes = [json.loads(r["tune"]) if r["tune"] else {} for r in shown]
    assert sum(t.get("role") == "trial" for t in tunes) == 24
    assert sum(not t for t in tunes) == 8  # the baselines are grid cells
    assert all({"study", "trial", "role"} <= set(t) for t in tunes if t)


def interrupted_run(m: Path, store: Path, after: int) -> None:
    """Start a run, SIGINT it once `after` cells are stored, then resume it to the end."""
    proc = subprocess.Popen([sys.executable, "-m", "regbench", "run", "--matrix", str(m),
                             "--store", str(store), "--jobs", "2", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
        try:
            if store.exists() and len(rows(store)) >= after:
                break
        except sqlite3.OperationalError:
            continue
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    n = len(rows(store))
    assert after <= n < 40, n
    regbench("run", "--matrix", str(m), "--store", str(store), "--jobs", "2", "--no-progress")


@pytest.mark.slow
def test_jobs_1_jobs_2_dask_and_a_resumed_interrupt_give_the_same_bits(tmp_path):
    m = tiny(tmp_path)
    stores = {k: tmp_path / f"{k}.sqlite" for k in ("j1", "j2", "dask", "resumed")}
    regbench("run", "--matrix", str(m), "--store", str(stores["j1"]), "--jobs", "1",
             "--no-progress")
    regbench("run", "--matrix", str(m), "--store", str(stores["j2"]), "--jobs", "2",
             "--no-progress")
    regbench("run", "--matrix", str(m), "--store", str(stores["dask"]), "--executor", "dask",
             "--workers", "2", "--no-progress")
    interrupted_run(m, stores["resumed"], after=12)
    reference = rows(stores["j1"])
    assert len(reference) == 40
    check_done_when(stores["j1"])
    for name in ("j2", "dask", "resumed"):
        got = rows(stores[name])
        assert set(got) == set(reference), name
        assert got == reference, name  # every metric bit for bit (floats compared exactly)


def test_a_cocktail_on_a_base_leaves_off_what_the_base_owns():
    """The base's weight decay is on in every trial: the cocktail's weight_decay and adamw
    (both own the optimizer's weight decay) stay off, and every stack composes."""
    import optuna

    from regbench.matrix import check_composable

    m = matrix.Matrix.from_dict({"name": "c", "blocks": [{
        "tasks": ["digits"], "archs": ["mlp"], "regularizers": ["none"],
        "base": [{"name": "weight_decay", "strength": 1e-4}],
        "tune": {"trials": 20, "sampler": "random",
                 "cocktail": ["dropout", "weight_decay", "adamw", "mixup"]}}]})
    study = next(s for s in m.expand().studies if s.entry == "cocktail")
    ost = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        _, specs = study.suggest(ost.ask())
        assert not {"weight_decay", "adamw"} & {s.name for s in specs}
        check_composable((*study.base, *specs))
