"""`python -m regbench.report`: end to end on smoke, byte-identical rerun, valid figures,
LaTeX structure, clear errors. (The tuned view and the across-task statistics:
test_report_tuned.py; the figures: test_report_figures.py; compiling the LaTeX:
test_report_latex.py.)"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from regbench import report
from regbench.report import fig_training, latex
from regbench.report import stats as rs
from regbench.store import Store

SUMMARY_COLUMNS = [
    "task", "arch", "regularizer", "strength", "n_seeds", "train_metric_mean",
    "test_metric_mean", "gap_metric_mean", "gap_metric_ci_low", "gap_metric_ci_high",
    "gap_loss_mean", "gap_loss_ci_low", "gap_loss_ci_high", "delta_gap_vs_none",
    "p_value_holm", "n_diverged", "n_failed",
]


def _files(folder: Path, patterns: tuple[str, ...]) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for pat in patterns for p in sorted(folder.glob(pat))}


@pytest.mark.slow
def test_end_to_end_writes_every_part(smoke) -> None:
    out = smoke["out"]
    for name in ("README.md", "summary.csv", "tuned.csv", "across.csv", "ranking.csv",
                 "tables.tex", "tables/ranking.md", "tables/ranking.tex", "tables/task_curve.tex",
                 "tables/tuned_curve.md", "tables/tuned_curve.tex", "tables/across_tasks.tex",
                 "figures/learning_curve.png", "figures/learning_curve.pdf",
                 "figures/critical_difference.png", "figures/critical_difference.pdf",
                 "figures/aggregates.png"):
        assert (out / name).is_file(), name
    tuned = pd.read_csv(out / "tuned.csv")
    assert list(tuned.columns[:12]) == [
        "task", "arch", "regularizer", "strength", "n_seeds", "val_metric_mean",
        "test_metric_mean", "test_metric_ci_low", "test_metric_ci_high", "gap_metric_mean",
        "gap_metric_ci_low", "gap_metric_ci_high"]
    assert len(tuned) == 47  # one row per (task, arch, regularizer): 19 + 25 + 3
    summary = pd.read_csv(out / "summary.csv")
    assert set(SUMMARY_COLUMNS) <= set(summary.columns)
    assert summary.n_seeds.sum() + summary.n_diverged.sum() + summary.n_failed.sum() == 94
    assert (summary[summary.regularizer == "none"].delta_gap_vs_none.isna()).all()
    assert summary.selected.sum() == len(tuned)
    readme = (out / "README.md").read_text()
    assert "94 ok, 0 diverged, 0 failed" in readme and "## Provenance" in readme
    assert readme.count("Strengths are selected on validation") == 1
    assert readme.index("## Tuned view") < readme.index("## Per-task results, all strengths")
    # the claims section: every registered claim, direct ones evaluated, cell ones "not run"
    from regbench.claims import CLAIMS

    assert "## Claims" in readme and (out / "tables" / "claims.tex").is_file()
    claims_md = (out / "tables" / "claims.md").read_text()
    assert all(f"| {name} |" in claims_md for name in CLAIMS.names())
    assert "| **yes** |" in claims_md and "| not run |" in claims_md
    for table in sorted((out / "tables").glob("*.md")):  # every table inline in the index
        body = table.read_text().split("\n\n")[1]
        assert body in readme, table.name
    # power: the across-task caption and the critical-difference note give the settings and
    # the smallest reachable p; smoke's few settings cannot separate any pair, and say so
    across_md = (out / "tables" / "across_tasks.md").read_text()
    assert "Power: " in across_md and " settings; Friedman's test" in across_md
    assert "exact two-sided Wilcoxon test p = 2/2^" in across_md
    assert "no pairwise test can reach p < 0.05, whatever the data" in across_md
    cd_note = readme.split("### Critical-difference diagram (tuned view)")[1].split("###")[0]
    assert "no pairwise test can reach p < 0.05" in cd_note and "settings would be needed" \
        in cd_note
    assert "Detectable with 2 paired seeds" in (out / "tables" / "tuned_curve.md").read_text()


@pytest.mark.slow
def test_byte_identical_rerun(smoke, capsys: pytest.CaptureFixture[str]) -> None:
    out2 = smoke["root"] / "r2"
    rc = report.main(["--matrix", "smoke", "--store", str(smoke["store"]), "--out", str(out2),
                      "--no-run"])
    assert rc == 0, capsys.readouterr().err
    patterns = ("*.md", "*.csv", "*.tex", "tables/*")
    first, second = _files(smoke["out"], patterns), _files(out2, patterns)
    assert first.keys() == second.keys() and len(first) >= 8
    for name in first:
        assert first[name] == second[name], f"{name} differs between two renders"


@pytest.mark.slow
def test_every_figure_exists_and_is_a_valid_image(smoke) -> None:
    out = smoke["out"]
    readme = (out / "README.md").read_text()
    embedded = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert len(embedded) >= 5
    names = {Path(e).stem for e in embedded}
    assert {"learning_curve", "seed004_curve_mlp_depth_2_width_32_l2",
            "seed004_curve_mlp_depth_2_width_32_dropout"} <= names
    assert any(n.startswith("gap_") for n in names)
    for rel in embedded:
        png = out / rel
        with Image.open(png) as im:
            im.verify()
        with Image.open(png) as im:
            assert im.format == "PNG" and min(im.size) > 100
        pdf = png.with_suffix(".pdf")
        assert pdf.read_bytes().startswith(b"%PDF"), pdf


@pytest.mark.slow
def test_latex_has_booktabs_and_escapes(smoke) -> None:
    out = smoke["out"]
    tex_files = sorted((out / "tables").glob("*.tex"))
    assert tex_files
    for f in tex_files:
        text = f.read_text()
        for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
            assert text.count(rule) == 1, (f.name, rule)
        assert re.search(r"(?<!\\)_", text) is None, f"unescaped underscore in {f.name}"
        assert "%" not in text.replace(r"\%", "")
    assert r"weight\_decay" in (out / "tables" / "task_curve.tex").read_text()
    wrapper = (out / "tables.tex").read_text()
    assert wrapper.startswith("%") and r"\usepackage{booktabs}" in wrapper
    assert wrapper.rstrip().endswith(r"\end{document}")
    for f in tex_files:
        assert r"\input{tables/" + f.name + "}" in wrapper


def _skip_without_tex() -> None:
    import shutil

    if latex.engine() is None:
        pytest.skip("no TeX engine (pdflatex, xelatex, lualatex) on this machine; .ci/run "
                    "installs Debian texlive-latex-recommended")
    if shutil.which("pdftoppm") is None:
        pytest.skip("no pdftoppm on this machine to render the PDF; .ci/run installs Debian "
                    "poppler-utils")


def _pages_with_ink(pdf: Path) -> list[float]:
    """Render every page to PNG (pdftoppm) and return each page's fraction of dark pixels."""
    subprocess.run(["pdftoppm", "-r", "40", "-png", pdf.name, "page"], cwd=pdf.parent,
                   check=True, capture_output=True, timeout=120)
    inks = []
    for png in sorted(pdf.parent.glob("page-*.png")):
        with Image.open(png) as im:
            gray = np.asarray(im.convert("L"))
        inks.append(float((gray < 128).mean()))
    return inks


@pytest.mark.slow
def test_latex_compiles_and_renders(smoke, tmp_path: Path) -> None:
    """tables.tex compiles standalone, one per-task table \\inputs into a small paper, and
    every page of both PDFs has ink on it."""
    import shutil

    _skip_without_tex()
    work = tmp_path / "tex"
    shutil.copytree(smoke["out"], work, ignore=shutil.ignore_patterns("figures"))
    proc = latex.compile_tex(work / "tables.tex")
    assert proc.returncode == 0, proc.stdout[-3000:]
    n_tables = (work / "tables.tex").read_text().count(r"\input{")
    inks = _pages_with_ink(work / "tables.pdf")
    assert len(inks) == n_tables >= 5
    assert min(inks) > 0.002, inks  # no blank page
    paper = work / "paper" / "paper.tex"
    paper.parent.mkdir()
    paper.write_text("\n".join([
        r"\documentclass{article}", r"\usepackage{booktabs}", r"\usepackage{graphicx}",
        r"\begin{document}", "A paper with one table of the report.",
        r"\begin{table}[h]\centering", r"\resizebox{\linewidth}{!}{\input{../tables/"
        r"tuned_curve.tex}}", r"\caption{Tuned view.}\end{table}", r"\end{document}", ""]))
    proc = latex.compile_tex(paper)
    assert proc.returncode == 0, proc.stdout[-3000:]
    (ink,) = _pages_with_ink(paper.with_suffix(".pdf"))
    assert ink > 0.002


def test_no_run_on_missing_or_empty_store_is_a_clear_message(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.sqlite"
    rc = report.main(["--matrix", "smoke", "--store", str(missing), "--out",
                      str(tmp_path / "r"), "--no-run"])
    err = capsys.readouterr().err
    assert rc == 2 and "no results store" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not missing.exists()
    empty = tmp_path / "empty.sqlite"
    Store(empty).close()
    rc = report.main(["--matrix", "smoke", "--store", str(empty), "--out", str(tmp_path / "r"),
                      "--no-run"])
    err = capsys.readouterr().err
    assert rc == 2 and "none of the 94 cells" in err and "without --no-run" in err
    assert not (tmp_path / "r" / "README.md").exists()


def test_bad_format_is_a_clear_message(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    rc = report.main(["--matrix", "smoke", "--store", str(tmp_path / "s.sqlite"),
                      "--formats", "md,docx", "--no-run"])
    err = capsys.readouterr().err
    assert rc == 2 and "docx" in err and "valid choices: md, tex, csv" in err


@pytest.mark.slow
def test_no_run_reports_missing_cells(smoke, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A partly stored matrix renders what is there and says how many cells are missing."""
    part = tmp_path / "part.sqlite"
    with Store(smoke["store"]) as src, Store(part) as dst:
        keep = src.cells_frame().cell_id.head(30).tolist()
        src.con.execute(f"ATTACH DATABASE '{part}' AS dst")
        for table in ("cells", "curves", "artifacts"):
            marks = ",".join("?" * len(keep))
            dst.con.execute(f"DELETE FROM {table}")
            src.con.execute(f"INSERT INTO dst.{table} SELECT * FROM {table} "
                            f"WHERE cell_id IN ({marks})", keep)
        src.con.execute("DETACH DATABASE dst")
    rc = report.main(["--matrix", "smoke", "--store", str(part), "--out", str(tmp_path / "r"),
                      "--no-run", "--figure-formats", "png", "--formats", "md"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "64 of 94 cells are missing" in captured.out
    assert "64 missing from the store" in (tmp_path / "r" / "README.md").read_text()


def test_failed_and_diverged_cells_are_counted_in_the_report(tmp_path: Path) -> None:
    """A task whose cells all failed still gets its row counts; nothing crashes or vanishes."""
    from regbench.report.index import RunInfo
    from regbench.specs import ArchSpec, Cell, CellResult, RegSpec, TaskSpec

    def result(task: str, reg: str, strength: float, seed: int, status: str) -> CellResult:
        cell = Cell(TaskSpec(task), ArchSpec("mlp"), RegSpec(reg, strength), seed)
        meta = {"metric_name": "accuracy", "higher_is_better": True}
        if status != "ok":
            return CellResult(cell, status, error=f"{status}: on purpose", metrics=meta)
        gap = 0.05 + 0.01 * seed - (0.02 + 0.007 * seed * seed if reg != "none" else 0.0)
        return CellResult(cell, "ok", metrics={
            **meta, "train_metric": 0.99, "test_metric": 0.99 - gap, "gap_metric": gap,
            "train_loss": 0.1, "test_loss": 0.1 + gap, "gap_loss": gap})

    with Store(tmp_path / "s.sqlite") as store:
        for seed in range(3):
            store.add(result("digits", "none", 0.0, seed, "ok"))
            store.add(result("digits", "more_data", 0.5, seed, "ok"))
            store.add(result("digits", "l2", 1e-3, seed, "diverged" if seed == 2 else "ok"))
            store.add(result("breast_cancer", "none", 0.0, seed, "failed"))
            store.add(result("breast_cancer", "dropout", 0.1, seed, "diverged"))
        cells = store.cells_frame()
    info = RunInfo(matrix="hand", description="hand-made", command="test", n_matrix=16)
    rep = report.write_report(cells, tmp_path / "out", info, figure_formats=["png"])
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    bc = summary[summary.task == "breast_cancer"]
    assert list(bc.n_seeds) == [0, 0] and bc.n_failed.sum() == 3 and bc.n_diverged.sum() == 3
    l2 = summary[summary.regularizer == "l2"].iloc[0]
    assert (l2.n_seeds, l2.n_diverged, l2.n_pairs) == (2, 1, 2)
    readme = rep.readme.read_text()
    assert "8 ok, 4 diverged, 3 failed" in readme and "1 missing from the store" in readme
    assert "`failed` breast_cancer / mlp / none=0 / seed 0: failed: on purpose" in readme
    assert "| mlp | none | 0 | 0 | — | — | — | — | — | — | 0/3 |" in readme
    for f in rep.figures:
        with Image.open(f) as im:
            im.verify()


def test_gap_figures_skip_the_points_of_an_architecture_sweep(tmp_path: Path) -> None:
    def rows(strengths: tuple[float, ...], widths: tuple[int, ...]) -> list[dict]:
        out = []
        for reg, ss in (("none", (0.0,)), ("weight_decay", strengths)):
            for s in ss:
                for width in widths:
                    for seed in range(2):
                        out.append({
                            "cell_id": f"{reg}{s}{width}{seed}", "status": "ok",
                            "task": "digits", "task_params": "{}", "arch": "mlp",
                            "reg_params": "{}", "protocol": "{}",
                            "arch_params": json.dumps({"depth": 1, "width": width}),
                            "regularizer": reg, "strength": s, "seed": seed,
                            "higher_is_better": 1, "metric_name": "accuracy",
                            "train_metric": 0.9 + 0.01 * seed, "test_metric": 0.8 - s,
                            "gap_metric": 0.1 + s + 0.01 * seed, "train_loss": 0.1,
                            "test_loss": 0.3 + s, "gap_loss": 0.2 + s})
        return out

    sweep = rs.summarize(pd.DataFrame(rows((1e-3,), (2, 8, 32))))
    assert fig_training.gap_vs_strength(sweep, tmp_path, ["png"]) == []
    strengths = rs.summarize(pd.DataFrame(rows((1e-3, 1e-2), (2, 8, 32))))
    assert len(fig_training.gap_vs_strength(strengths, tmp_path, ["png"])) == 3
    two_widths = rs.summarize(pd.DataFrame(rows((1e-3,), (2, 8))))
    assert len(fig_training.gap_vs_strength(two_widths, tmp_path, ["png"])) == 2


def test_claims_table_keeps_tiny_statistics_visible() -> None:
    from regbench.report.tables import MD, claims_table

    claims = pd.DataFrame([
        {"claim": "exact", "source": "002", "statistic": "max error", "value": 3.701e-16,
         "ci_low": 2.108e-16, "ci_high": 5.293e-16, "n_seeds": 3, "criterion": "< 1e-12",
         "reproduced": "yes"},
        {"claim": "plain", "source": "003", "statistic": "ratio", "value": 0.76667,
         "ci_low": 0.0, "ci_high": 0.85921, "n_seeds": 5, "criterion": "< 0.8",
         "reproduced": "no"},
    ])
    values = claims_table(claims, MD).frame["Value (95% CI)"].tolist()
    assert values == ["3.7e-16 [2.11e-16, 5.29e-16]", "0.7667 [0.0000, 0.8592]"]


def test_a_regularizer_that_never_acted_is_named_in_the_index(tmp_path: Path) -> None:
    """Cells equal to their seed's `none` cell in every loss and metric, on every seed, are
    listed (a max-norm radius no weight reaches); equal on some seeds only, they are not."""
    from regbench.report.index import RunInfo, noop_lines
    from regbench.specs import ArchSpec, Cell, CellResult, RegSpec, TaskSpec

    def result(reg: str, strength: float, seed: int, shift: float) -> CellResult:
        cell = Cell(TaskSpec("digits"), ArchSpec("mlp"), RegSpec(reg, strength), seed)
        loss = 0.1 + 0.01 * seed + shift
        return CellResult(cell, "ok", metrics={
            "metric_name": "accuracy", "higher_is_better": True, "train_loss": loss,
            "val_loss": loss + 0.05, "test_loss": loss + 0.1, "gap_loss": 0.1,
            "train_metric": 0.99, "val_metric": 0.95 - shift, "test_metric": 0.94 - shift,
            "gap_metric": 0.05})

    with Store(tmp_path / "s.sqlite") as store:
        for seed in range(3):
            store.add(result("none", 0.0, seed, 0.0))
            store.add(result("max_norm", 3.0, seed, 0.0))  # never acted
            store.add(result("max_norm", 1.0, seed, 0.0 if seed else 0.02))  # acted once
            store.add(result("l2", 1e-3, seed, 0.01))
        cells = store.cells_frame()
    assert noop_lines(cells) == ["- digits / mlp / max_norm=3: identical to none on all 3 seeds"]
    info = RunInfo(matrix="hand", description="hand-made", command="test", n_matrix=12)
    readme = report.write_report(cells, tmp_path / "out", info,
                                 figure_formats=["png"]).readme.read_text()
    assert "### Regularizers that changed nothing" in readme
    assert "- digits / mlp / max_norm=3: identical to none on all 3 seeds" in readme
    assert "max_norm=1: identical" not in readme


def _noop_frame(n_strengths: int, seeds: int = 3) -> pd.DataFrame:
    """A `cells_frame` of `none` and max_norm at `n_strengths` radii on digits / mlp: the
    lower half of the radii never act (equal to `none`), the upper half do."""
    out = []
    for reg, strengths in (("none", [0.0]), ("max_norm", range(1, n_strengths + 1))):
        for s in strengths:
            for seed in range(seeds):
                shift = 0.0 if s <= n_strengths // 2 else 0.01
                out.append({
                    "cell_id": f"{reg}{s}-{seed}", "status": "ok", "task": "digits",
                    "task_params": "{}", "arch": "mlp", "arch_params": "{}",
                    "reg_params": "{}", "protocol": "{}", "regularizer": reg,
                    "strength": float(s), "seed": seed, "higher_is_better": 1,
                    "metric_name": "accuracy", "train_loss": 0.1 + seed + shift,
                    "val_loss": 0.2, "test_loss": 0.3, "train_metric": 0.9,
                    "val_metric": 0.8, "test_metric": 0.7, "gap_loss": 0.2 - seed - shift,
                    "gap_metric": 0.2})
    return pd.DataFrame(out)


def test_the_noop_scan_compares_columns_once_not_once_per_group(monkeypatch) -> None:
    """`noop_lines` finds the groups in one pass: how many column comparisons it makes does
    not grow with the number of (task, arch, regularizer, strength) groups."""
    from regbench.report.index import noop_lines

    calls = []
    for op in ("__eq__", "__ne__"):
        original = getattr(pd.Series, op)

        def counted(self, other, _original=original):
            calls.append(1)
            return _original(self, other)

        monkeypatch.setattr(pd.Series, op, counted)
    work = {}
    for n in (4, 40):
        calls.clear()
        lines = noop_lines(_noop_frame(n))
        assert lines == [f"- digits / mlp / max_norm={s}: identical to none on all 3 seeds"
                         for s in range(1, n // 2 + 1)]
        work[n] = len(calls)
    assert work[40] == work[4], work


@pytest.mark.parametrize("description, line", [
    ("", "Made by `test`. Matrix: `hand`."),
    ("none and l2 on digits", "Made by `test`. Matrix: none and l2 on digits."),
])
def test_the_header_names_a_matrix_without_a_description(tmp_path: Path, description: str,
                                                         line: str) -> None:
    from regbench.report.index import RunInfo
    from regbench.specs import ArchSpec, Cell, CellResult, RegSpec, TaskSpec

    with Store(tmp_path / "s.sqlite") as store:
        for reg, strength in (("none", 0.0), ("l2", 1e-3)):
            for seed in range(2):
                cell = Cell(TaskSpec("digits"), ArchSpec("mlp"), RegSpec(reg, strength), seed)
                store.add(CellResult(cell, "ok", metrics={
                    "metric_name": "accuracy", "higher_is_better": True,
                    "train_loss": 0.1 + seed, "test_loss": 0.2, "gap_loss": 0.1 - seed,
                    "train_metric": 0.99, "test_metric": 0.9 - strength, "gap_metric": 0.09}))
        cells = store.cells_frame()
    info = RunInfo(matrix="hand", description=description, command="test", n_matrix=4)
    readme = report.write_report(cells, tmp_path / "out", info, formats=["md"],
                                 figure_formats=["png"]).readme.read_text()
    assert readme.splitlines()[2] == line
    assert ": ." not in readme
