"""The report's equal-budget section, end to end on a tiny tuned matrix (digits / mlp, none,
l2 and dropout at 4 trials, 3 epochs): one row per study at the trial the store's validation
scores select, the expected-validation-performance and rank figures, no tune cell in the grid
views, and no budget file for a store without tune cells. Figures at full size from
hand-made frames: never more than MAX_SERIES curves on one axes."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from regbench import report
from regbench.report import budget as bd
from regbench.report import fig_budget, plotting
from regbench.store import Store

TUNED = """\
name = "budget-test"
[[blocks]]
tasks = ["digits"]
archs = ["mlp"]
regularizers = ["none", "l2", "dropout"]
protocol = {epochs = 3}
tune = {trials = 4, batch = 2, tune_seeds = 1, test_seeds = 2}
"""
# The same setting as a grid at the first default strengths: exactly the tuned matrix's
# baseline cells, so it reports the tuned store's grid cells and nothing else.
GRID = """\
name = "budget-grid"
seeds = 2
[[blocks]]
tasks = ["digits"]
archs = ["mlp"]
regularizers = ["none", "l2", "dropout"]
strengths = "first"
protocol = {epochs = 3}
"""
BUDGET_FILES = ("budget.csv", "budget_across.csv", "tunability.csv", "evp.csv",
                "rank_budget.csv", "tables/budget_digits.md", "tables/budget_digits.tex",
                "tables/budget_across.md", "tables/tunability.md", "tables/tunability.tex",
                "figures/evp.png", "figures/evp.pdf", "figures/rank_budget.png",
                "figures/rank_budget.pdf")


def _report(matrix: Path, store: Path, out: Path) -> None:
    """`python -m regbench.report --matrix M --store S --out D --no-run`, in this process and
    without the claims table (the source documents' direct claims take a minute of CPU and
    are not what these tests check)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("regbench.claims.claims_frame", lambda *a, **k: pd.DataFrame())
        rc = report.main(["--matrix", str(matrix), "--store", str(store), "--out", str(out),
                          "--no-run"])
    assert rc == 0


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny tuned matrix run through the CLI, then reported (--no-run)."""
    root = tmp_path_factory.mktemp("budget")
    (root / "tuned.toml").write_text(TUNED)
    (root / "grid.toml").write_text(GRID)
    store, out = root / "s.sqlite", root / "r"
    proc = subprocess.run(
        [sys.executable, "-m", "regbench", "run", "--matrix", str(root / "tuned.toml"),
         "--store", str(store), "--jobs", "2", "--no-progress"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _report(root / "tuned.toml", store, out)
    return {"root": root, "store": store, "out": out}


@pytest.fixture(scope="module")
def stored(tuned: dict[str, Path]) -> pd.DataFrame:
    with Store(tuned["store"], readonly=True) as s:
        return s.cells_frame()


def _csv(x: float) -> object:
    """A number as the CSV files hold it (10 significant digits)."""
    return pytest.approx(x, rel=1e-9, abs=1e-12)


def _tags(cells: pd.DataFrame) -> pd.DataFrame:
    t = cells[cells.tune != ""]
    tags = pd.DataFrame([json.loads(x) for x in t.tune], index=t.index)
    return t.join(tags[["study", "role", "trial"]])


@pytest.mark.slow  # shares the module's ~20 s tuned run and report
def test_one_row_per_study_at_the_trial_validation_selects(tuned, stored) -> None:
    out = tuned["out"]
    for name in BUDGET_FILES:
        assert (out / name).is_file(), name
    budget = pd.read_csv(out / "budget.csv")
    tags = _tags(stored)
    studies = sorted(tags.study.unique())
    assert len(studies) == 3 and sorted(budget.study) == studies
    assert list(budget.regularizer) == ["none", "l2", "dropout"]
    for study, g in tags.groupby("study"):
        trials = g[g.role == "trial"]
        # independently of the report: mean val_metric per trial, best, earliest of ties
        scores = trials.groupby("trial").val_metric.mean()
        best = scores[scores == scores.max()].index.min()
        row = budget[budget.study == study].iloc[0]
        assert row.selected_trial == best, study
        assert row.val_selected == _csv(scores[best])
        assert set(g[g.role == "final"].trial) == {best}
        finals = g[(g.role == "final") & (g.status == "ok")]
        assert row.n_seeds == len(finals) == 2
        assert row.test_metric_mean == _csv(finals.test_metric.mean())
        assert row.lr == pytest.approx(json.loads(finals.protocol.iloc[0])["lr"])
        assert row.budget == 4 and row.n_trials == 4 and row.sampler == "tpe"
        if row.regularizer != "none":
            assert row.strength == pytest.approx(finals.strength.iloc[0])
            assert row.n_pairs == 2
            none = tags[(tags.study == study.replace(row.regularizer, "none"))
                        & (tags.role == "final")].sort_values("seed")
            d = finals.sort_values("seed").test_metric.to_numpy() - none.test_metric.to_numpy()
            assert row.delta_test_vs_none == _csv(d.mean())
    md = (out / "tables" / "budget_digits.md").read_text()
    assert "budget 4, sampler tpe" in md and md.count("\n| mlp |") == 3


@pytest.mark.slow  # shares the module's ~20 s tuned run and report
def test_evp_and_rank_files_follow_the_trials(tuned, stored) -> None:
    out = tuned["out"]
    curves = pd.read_csv(out / "evp.csv")
    tags = _tags(stored)
    for study, g in curves.groupby("study"):
        scores = tags[(tags.study == study) & (tags.role == "trial")].groupby(
            "trial").val_metric.mean()
        assert list(g.k) == [1, 2, 3, 4]
        assert g.expected_best.iloc[0] == _csv(scores.mean())
        assert g.expected_best.iloc[-1] == _csv(scores.max())
        assert g.sd.iloc[-1] == _csv(0.0)
    ranks = pd.read_csv(out / "rank_budget.csv")
    assert sorted(ranks.budget.unique()) == [1, 2, 4]
    assert set(ranks.regularizer) == {"none", "l2", "dropout"}
    assert ranks.groupby("budget").mean_rank.sum().tolist() == [6.0, 6.0, 6.0]  # 1 + 2 + 3
    for name in ("evp", "rank_budget"):
        with Image.open(out / "figures" / f"{name}.png") as im:
            im.verify()
        with Image.open(out / "figures" / f"{name}.png") as im:
            assert im.format == "PNG" and min(im.size) > 100
        assert (out / "figures" / f"{name}.pdf").read_bytes().startswith(b"%PDF")
    tun = pd.read_csv(out / "tunability.csv")
    assert list(tun.regularizer) == ["none", "l2", "dropout"] and (tun.n_pairs == 2).all()


@pytest.mark.slow  # shares the module's ~20 s tuned run and report
def test_the_grid_views_hold_no_tune_cell(tuned, stored) -> None:
    out = tuned["out"]
    grid = stored[stored.tune == ""]
    assert len(grid) == 6  # the baselines: first default strength, protocol lr, seeds 0-1
    summary = pd.read_csv(out / "summary.csv")
    assert (summary.n_seeds + summary.n_diverged + summary.n_failed).sum() == len(grid)
    assert set(summary.arch) == {"mlp"}  # no per-lr pseudo-setting
    tuned_view = pd.read_csv(out / "tuned.csv")
    assert sorted(tuned_view.regularizer) == ["dropout", "l2", "none"]
    assert (tuned_view.n_seeds == 2).all()
    readme = (out / "README.md").read_text()
    assert "strengths chosen from the grid at the protocol lr" in readme
    assert readme.index("## Tuned view") < readme.index("## Tuned at equal budget") \
        < readme.index("## Per-task results")
    assert "![Expected validation performance against the budget](figures/evp.png)" in readme
    assert "(figures/rank_budget.png)" in readme
    assert f"{len(stored)} in the matrix, {len(stored)} in this report" in readme
    for table in ("budget_digits", "tunability", "budget_across"):
        body = (out / "tables" / f"{table}.md").read_text().split("\n\n", 1)[1]
        assert body.split("\n*")[0] in readme, table
    assert "tables/budget_digits.tex" in (out / "tables.tex").read_text()


@pytest.mark.slow  # shares the module's ~20 s tuned run and report
def test_a_store_without_tune_cells_writes_no_budget_file(tuned) -> None:
    """The grid matrix names only the grid cells; rendered over a copy of the tuned report,
    every budget file of that render goes and the index has no budget section."""
    out = tuned["root"] / "grid_report"
    shutil.copytree(tuned["out"], out)
    _report(tuned["root"] / "grid.toml", tuned["store"], out)
    for name in BUDGET_FILES:
        assert not (out / name).exists(), name
    readme = (out / "README.md").read_text()
    assert "equal budget" not in readme and "Tuning studies" not in readme
    assert "strengths chosen from the grid" not in readme
    assert "6 in the matrix, 6 in this report" in readme
    first = pd.read_csv(tuned["out"] / "summary.csv")
    pd.testing.assert_frame_equal(pd.read_csv(out / "summary.csv"), first)


# -- figures at full size, from hand-made frames ---------------------------------------------
def _curves(regs: list[str], settings: list[str], n: int) -> pd.DataFrame:
    from regbench.tuning import evp

    rng = np.random.default_rng(0)
    rows = []
    for setting in settings:
        for reg in regs:
            values = rng.uniform(0.5, 1.0, n)
            values[rng.integers(n)] = math.nan  # a failed trial
            ks, m, s = evp.expected_max_curve(values)
            rows += [{"task": setting, "arch": "mlp", "regularizer": reg,
                      "study": f"{setting} / mlp / {reg}", "k": k, "expected_best": a, "sd": b,
                      "n_trials": n, "worst": np.nanmin(values), "best": np.nanmax(values),
                      "metric_name": "accuracy", "higher_is_better": True}
                     for k, a, b in zip(ks, m, s)]
    return pd.DataFrame(rows)


def test_figures_split_many_regularizers_over_panels(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int, int]] = []
    real = plotting.save

    def spy(fig, out_dir, name, formats, **kw):  # noqa: ANN001, ANN202
        counts = [plotting.series_count(a) for a in fig.axes if a.get_visible()]
        seen.append((name, max(counts), len(counts)))
        return real(fig, out_dir, name, formats, **kw)

    monkeypatch.setattr(fig_budget, "save", spy)
    regs = ["none", "l1", "l2", "weight_decay", "adamw", "dropout", "batchnorm",
            "label_smoothing", "cocktail"]
    curves = _curves(regs, ["digits", "breast_cancer", "mnist1d", "curve"], 16)
    figs = fig_budget.evp(curves, tmp_path, ["png"])
    ranks = bd.rank_by_budget(curves)
    assert sorted(ranks.budget.unique()) == [1, 2, 4, 8, 16]
    figs += fig_budget.rank_budget(ranks, tmp_path, ["png"])
    assert [f.name for f in figs] == ["evp", "rank_budget"]
    assert seen == [("evp", 6, 8), ("rank_budget", 6, 2)]  # 9 regularizers: 6 + 3 per setting
    for f in figs:
        assert f.note and "nan" not in f.note
        with Image.open(f.files[0]) as im:
            assert min(im.size) > 300
    assert fig_budget.evp(curves.iloc[0:0], tmp_path, ["png"]) == []
    assert fig_budget.rank_budget(ranks.iloc[0:0], tmp_path, ["png"]) == []


def test_split_name_keeps_the_base_with_the_setting() -> None:
    assert bd.split_name("digits / mlp / dropout") == ("digits", "mlp", "dropout", "")
    assert bd.split_name("digits[n_train=300] / mlp / l2 + augment=1 on dropout=0.1 "
                         "{epochs=3}") == ("digits[n_train=300]", "mlp on dropout=0.1",
                                           "l2 + augment=1", " {epochs=3}")
    assert bd.split_name("d / m / cocktail[dropout,l2] {epochs=3}")[2] == "cocktail[dropout,l2]"


def test_block_protocols_name_the_setting_only_where_they_differ() -> None:
    def cell(study: str) -> dict:
        tag = {"study": study, "role": "trial", "trial": 0, "sampler": "tpe", "tune_seeds": 1}
        return {"tune": json.dumps(tag), "protocol": "{}", "addons": "", "seed": 5}

    one = bd.tune_cells(pd.DataFrame([cell("d / mlp / l2 {epochs=3}")]))
    assert list(one.arch_label) == ["mlp"] and list(one.setting) == ["d / mlp"]
    two = bd.tune_cells(pd.DataFrame([cell("d / mlp / l2 {epochs=3}"),
                                      cell("d / mlp / l2 {epochs=5}")]))
    assert list(two.arch_label) == ["mlp {epochs=3}", "mlp {epochs=5}"]


@pytest.mark.slow  # shares the module's ~20 s tuned run and report
def test_a_store_of_tuning_studies_only_reports_the_budget_section(tuned, stored,
                                                                   tmp_path: Path) -> None:
    from regbench import matrix
    from regbench.report import index, write

    exp = matrix.get(str(tuned["root"] / "tuned.toml")).expand()
    only = stored[stored.tune != ""]
    info = index.RunInfo(matrix="budget-test", description="", command="test",
                         n_matrix=len(only))
    write.write_report(only, tmp_path, info, formats=["md", "csv"], figure_formats=["png"],
                       studies=[bd.StudyInfo.of(s) for s in exp.studies])
    readme = (tmp_path / "README.md").read_text()
    assert "No grid cell: every cell belongs to a tuning study." in readme
    assert "- Grid cells: none" in readme and "## Tuned at equal budget" in readme
    assert pd.read_csv(tmp_path / "budget.csv").shape[0] == 3
    assert not (tmp_path / "tunability.csv").exists()  # its baselines are grid cells


def test_rank_by_budget_ranks_only_regularizers_that_run_in_every_setting() -> None:
    """cutout runs on one of two settings: ranking it there against the others' mean over
    two settings would compare unlike things, so it is left out and named."""
    both = _curves(["none", "l2", "dropout"], ["digits", "mnist1d"], 4)
    one = _curves(["cutout"], ["digits"], 4)
    ranks = bd.rank_by_budget(pd.concat([both, one], ignore_index=True))
    assert set(ranks.regularizer) == {"none", "l2", "dropout"}
    assert ranks.attrs["left_out"] == ["cutout"]
    assert (ranks.n_settings == 2).all() and (ranks.n_competitors == 3).all()
    assert "left out: cutout" in fig_budget.rank_note(ranks)
