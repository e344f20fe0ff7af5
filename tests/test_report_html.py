"""report.html: the report's frames as one page that works offline, checked in headless
Chromium (Debian's `chromium`, driven by pip's playwright; skipped without them).

The page is loaded from its file URL with every request that is not `file:`, `data:` or
`blob:` aborted and recorded: none may be attempted, no console error may appear, every
chart must be drawn, a filter must leave the expected rows, sorting must order a column,
choosing a cell must draw its curves, and the CSV and SVG buttons must download. The page
comes from a small synthetic store (tools/synthetic_store.py: a grid block, a tuned block
and kernel rows, so every section is there), from the report of the committed example
store (examples/results/smoke.sqlite: real cells of the `smoke` matrix, rendered without
running anything) and, in the slow run, from the `smoke` report made end to end (the
`smoke` fixture of conftest.py).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from regbench import report
from regbench.report import html as rh
from regbench.report import html_data as hd
from regbench.store import Store

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("synthetic_store",
                                               ROOT / "tools" / "synthetic_store.py")
synthetic_store = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic_store)

MATRIX = """\
name = "html-test"
seeds = 3
[[blocks]]
tasks = ["digits", "curve"]
archs = ["mlp"]
regularizers = ["none", "l2", "dropout", "label_smoothing"]

[[blocks]]
tasks = ["digits"]
archs = ["mlp"]
regularizers = ["none", "l2"]
tune = {trials = 4, batch = 2, tune_seeds = 1, test_seeds = 2}
"""
EXAMPLE_STORE = ROOT / "examples" / "results" / "smoke.sqlite"
LOCAL = ("file:", "data:", "blob:")
CHARTS = ("chart-gap", "chart-test", "chart-curves", "chart-aggregates", "chart-evp",
          "chart-rank-budget", "chart-gbps", "chart-speedup")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _render(matrix: Path, store: Path, out: Path, calls: list | None = None) -> Path:
    """The report of `store` without its claims table (they take a minute of CPU and are
    not on the page); `calls` gets write_report's arguments."""
    from regbench.report import cli, write

    def recording(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append((args, kwargs))
        return write.write_report(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("regbench.claims.claims_frame", lambda *a, **k: pd.DataFrame())
        if calls is not None:
            mp.setattr(cli, "write_report", recording)
        rc = report.main(["--matrix", str(matrix), "--store", str(store), "--out", str(out),
                          "--no-run", "--figure-formats", "png"])
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("html")
    matrix, store = root / "html-test.toml", root / "store.sqlite"
    matrix.write_text(MATRIX)
    synthetic_store.build(str(matrix), store, bench=True, diverged=0.05, failed=0.03)
    calls: list = []
    out = _render(matrix, store, root / "out", calls)
    return {"matrix": matrix, "store": store, "out": out, "call": calls[0]}


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The committed example store's report (a copy of the store: nothing runs, nothing in
    the repository is touched)."""
    root = tmp_path_factory.mktemp("example")
    store = root / "store.sqlite"
    shutil.copyfile(EXAMPLE_STORE, store)
    out = _render("smoke", store, root / "out")
    return {"store": store, "out": out}


def test_the_example_store_is_the_whole_smoke_matrix(example) -> None:
    """The example report holds every smoke cell, all ok, at one clean commit."""
    text = (example["out"] / "README.md").read_text()
    assert re.search(r"Cells: (\d+) in the matrix, \1 in this report \(\1 ok, 0 diverged, "
                     r"0 failed\)", text), text[:600]
    with Store(EXAMPLE_STORE, readonly=True) as s:
        commits = set(s.frame(["git_commit"])["git_commit"])
    assert len(commits) == 1 and re.fullmatch(r"[0-9a-f]{40}", commits.pop())


# -- the page as a file ---------------------------------------------------------------------
def test_page_holds_its_assets_and_names_no_remote_one(synthetic) -> None:
    text = (synthetic["out"] / "report.html").read_text()
    assert rh.plotly_js() in text  # plotly.js, inline, as the plotly package ships it
    module, css = rh.datatables()
    assert module in text and css in text  # DataTables from the itables package
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", text, flags=re.S)
    assert not re.search(r"<link\b", markup)
    assert not re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", markup)
    assert not re.findall(r"<script\b[^>]*\bsrc=", text)
    assert "report.html" in (synthetic["out"] / "README.md").read_text()


def test_tables_are_the_markdown_reports_frames(synthetic) -> None:
    """One source, two renderings: every tuned.csv row is a row of the page's tuned table,
    and its formatted cells are those of tables/tuned_<task>.md."""
    out = synthetic["out"]
    data = _data(out / "report.html")
    tables = {t["id"]: t for t in data["tables"]}
    assert {"tuned", "strengths", "ranking", "across", "budget", "bench"} <= set(tables)
    tuned = pd.read_csv(out / "tuned.csv")
    rows = tables["tuned"]["rows"]
    assert [(r[0], r[1], r[2]) for r in rows] == list(zip(tuned.task, tuned.arch,
                                                          tuned.regularizer))
    assert len(tables["strengths"]["rows"]) == len(pd.read_csv(out / "summary.csv"))
    assert len(tables["ranking"]["rows"]) == len(pd.read_csv(out / "ranking.csv"))
    md = (out / "tables" / "tuned_digits.md").read_text()
    for r in rows:
        if r[0] == "digits":
            assert f"| {r[8][0]} | {r[9][0]} | {r[10][0]} |" in md  # test, gap, Δ test
    cells = data["cells"]
    with Store(synthetic["store"], readonly=True) as s:
        grid = s.cells_frame().query("tune == ''")
    assert sorted(cells["id"]) == sorted(grid.cell_id)
    lines = (out / "report.html").read_text().split('id="rb-curves">')[1].split("</script>")[0]
    assert len(lines.split("\n")) == len(cells["id"])


def test_same_frames_give_the_same_page(synthetic, tmp_path: Path) -> None:
    from regbench.report import write

    args, kwargs = synthetic["call"]
    again = write.write_report(args[0], tmp_path / "again", *args[2:], **{
        **kwargs, "formats": ["html"], "figure_formats": []})
    assert again.html.read_bytes() == (synthetic["out"] / "report.html").read_bytes()
    assert not (tmp_path / "again" / "figures").exists()


def test_curves_are_strided_to_at_most_the_limit() -> None:
    curves = pd.DataFrame({"cell_id": "a", "epoch": range(1, 401), "train_loss": 1.0,
                           "val_loss": 2.0, "val_metric": float("nan")})
    (line,) = hd.curves_text(["a"], curves).split("\n")
    epochs, train, _, metric = json.loads(line)
    assert len(epochs) <= hd.CURVE_POINTS + 1 and epochs[0] == 1 and epochs[-1] == 400
    assert train == [1.0] * len(epochs) and metric == [None] * len(epochs)
    assert hd.curves_text(["b"], curves) == "[]"


def test_no_html_format_removes_an_earlier_page(synthetic, tmp_path: Path) -> None:
    from regbench.report import write

    out = tmp_path / "r"
    shutil.copytree(synthetic["out"], out)
    args, kwargs = synthetic["call"]
    done = write.write_report(args[0], out, *args[2:], **{**kwargs, "formats": ["md"],
                                                          "figure_formats": []})
    assert done.html is None and not (out / "report.html").exists()
    assert "report.html" not in (out / "README.md").read_text()


def _data(page: Path) -> dict:
    text = page.read_text()
    blob = text.split('id="rb-data">')[1].split("</script>")[0]
    return json.loads(blob.replace("<\\/", "</"))


# -- in the browser -------------------------------------------------------------------------
needs_chromium = pytest.mark.skipif(_chromium() is None, reason="no chromium (Debian: "
                                    "apt-get install -y chromium)")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright "
                                   "(in .[test])")
    if _chromium() is None:
        pytest.skip("no chromium (Debian: apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        yield b
        b.close()


class Loaded:
    """A page loaded offline, with what it tried to fetch and what it logged."""

    def __init__(self, browser, path: Path, downloads: Path) -> None:  # noqa: ANN001
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.downloads = downloads
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                           accept_downloads=True)
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text)
                     if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.failed.append(r.url))
        self.page.goto(path.resolve().as_uri())
        for stage in ("ready", "complete"):  # first screen, then every chart and table
            self.page.wait_for_function(f"document.documentElement.dataset.{stage}",
                                        timeout=120_000)

    def _route(self, route) -> None:  # noqa: ANN001
        if route.request.url.startswith(LOCAL):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def js(self, expr: str, arg: object = None) -> object:
        return self.page.evaluate(expr, arg)

    def shown(self, table: str) -> int:
        return self.js(f"regbench.tables[{table!r}].page.info().recordsDisplay")


@pytest.fixture(scope="module", params=["synthetic", "example",
                                        pytest.param("smoke", marks=pytest.mark.slow)])
def loaded(request, browser, tmp_path_factory):  # noqa: ANN001, ANN201
    """The synthetic store's page, the example store's, and (slow) the smoke report's."""
    page = request.getfixturevalue(request.param)["out"] / "report.html"
    lp = Loaded(browser, page, tmp_path_factory.mktemp("downloads"))
    lp.kind = request.param
    lp.path = page
    yield lp
    lp.context.close()


@needs_chromium
def test_loads_offline_without_errors(loaded) -> None:
    assert loaded.js("document.documentElement.dataset.ready") == "true"
    assert loaded.js("document.documentElement.dataset.complete") == "true"
    assert loaded.blocked == [], "the page tried to reach the network"
    assert loaded.failed == [] and loaded.errors == []
    assert loaded.js("typeof Plotly") == "object"
    assert 0 < loaded.js("window.regbenchReady") <= loaded.js("window.regbenchComplete")


@needs_chromium
def test_every_figure_is_drawn(loaded) -> None:
    data = _data(loaded.path)
    expected = {"chart-gap", "chart-test", "chart-curves"}
    if data["aggregates"]:
        expected.add("chart-aggregates")
    if data["budget"]:
        expected |= {"chart-evp", "chart-rank-budget"}
    if data["bench"]:
        expected |= {"chart-gbps", "chart-speedup"}
    if loaded.kind == "synthetic":
        assert expected == set(CHARTS)  # the synthetic store has every section
    drawn = loaded.js("""ids => ids.map(id => {
        const d = document.getElementById(id);
        if (!d) return [id, 0, 0, 0];
        const svg = d.querySelector('svg.main-svg');
        const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
        const marks = d.querySelectorAll('.scatterlayer .trace path, .scatterlayer .point');
        return [id, box.width, box.height, marks.length];
    })""", sorted(expected))
    for cid, width, height, marks in drawn:
        assert width > 300 and height > 150 and marks > 0, f"{cid} is not drawn: {drawn}"
    page_charts = loaded.js("Array.from(document.querySelectorAll('.rb-chart')).map(d => d.id)")
    assert set(page_charts) == expected
    if data["cd"]:
        width = loaded.js("document.querySelector('#figure-cd img').naturalWidth")
        assert width > 100


@needs_chromium
def test_filters_leave_the_expected_rows(loaded) -> None:
    data = _data(loaded.path)
    tables = {t["id"]: t for t in data["tables"]}
    tuned = tables["tuned"]["rows"]
    task = tuned[-1][0]
    page = loaded.page
    assert loaded.shown("tuned") == len(tuned)
    page.select_option("#filter-task", task)
    try:
        assert loaded.shown("tuned") == sum(r[0] == task for r in tuned)
        assert loaded.shown("strengths") == sum(r[0] == task for r in
                                                tables["strengths"]["rows"])
        assert loaded.shown("ranking") == len(tables["ranking"]["rows"])  # no task column
        cells = data["cells"]
        in_task = [cells["labels"]["task"][t] == task for t in cells["task"]]
        assert loaded.shown("cells") == sum(in_task)
        rows = page.locator("#table-tuned tbody tr")
        assert rows.count() == min(10, sum(r[0] == task for r in tuned))
        assert set(rows.locator("td:first-child").all_inner_texts()) == {task}
    finally:
        page.select_option("#filter-task", "")
    status = cells["labels"]["status"]
    bad = [s for s in ("diverged", "failed") if s in status]
    if loaded.kind == "synthetic":
        assert bad == ["diverged", "failed"]
    for s in bad:
        page.select_option("#filter-status", s)
        try:
            assert loaded.shown("cells") == sum(status[c] == s for c in cells["status"])
            assert loaded.shown("strengths") == sum(s in r[-1][3] for r in
                                                    tables["strengths"]["rows"])
        finally:
            page.select_option("#filter-status", "")
    assert loaded.shown("cells") == len(cells["id"])


SORTED = """([column, sign]) => {
    const v = regbench.tables.tuned.rows({order: 'applied'}).data().toArray()
        .map(r => r[column][1]).filter(x => x !== null);
    return v.length > 3 && v.every((x, i) => i === 0 || sign * (x - v[i - 1]) >= 0);
}"""


@needs_chromium
def test_clicking_a_header_sorts_by_that_column(loaded) -> None:
    page = loaded.page
    column = 8  # Test (95% CI): its sort value is the mean
    head = page.locator("#table-tuned thead th").nth(column)
    assert head.inner_text().startswith("Test (95% CI)")
    assert not loaded.js(SORTED, [column, 1]) and not loaded.js(SORTED, [column, -1])
    head.click()  # DataTables orders in a timeout after the click: wait for it
    page.wait_for_function(SORTED, arg=[column, 1], timeout=10_000)
    head.click()
    page.wait_for_function(SORTED, arg=[column, -1], timeout=10_000)
    top = max(r[column][1] for r in _data(loaded.path)["tables"][0]["rows"]
              if r[column][1] is not None)
    shown = page.locator("#table-tuned tbody tr:first-child td").nth(column).inner_text()
    assert shown.startswith(f"{top:.3f}")
    head.click()  # back to the frame's order


@needs_chromium
def test_choosing_a_cell_draws_its_curves(loaded) -> None:
    data = _data(loaded.path)
    cells = data["cells"]
    page = loaded.page
    page.select_option("#filter-task", cells["labels"]["task"][cells["task"][-1]])
    try:
        row = page.locator("#table-cells tbody tr").first
        cid = row.locator("td").first.inner_text()
        row.click()
    finally:
        page.select_option("#filter-task", "")
    page.wait_for_function(f"document.getElementById('chart-curves').dataset.cell === {cid!r}")
    with Store(loaded.path.parent.parent / "store.sqlite", readonly=True) as s:
        epochs = json.loads(hd.curves_text([cid], s.curves([cid])))[0]
    assert len(epochs) > 1
    traces = loaded.js("document.getElementById('chart-curves').data.map(t => [t.name, t.x])")
    assert [t[0] for t in traces][:2] == ["train loss", "val loss"] and len(traces) == 3
    assert all(t[1] == epochs for t in traces)
    drawn = loaded.js("document.querySelectorAll("
                      "'#chart-curves .scatterlayer .trace path.js-line').length")
    assert drawn == 3
    assert cid in page.locator("#cell-info").inner_text()
    # a point of the gap chart is a cell too: its click handler shows that cell
    other = loaded.js("""() => {
        const gd = document.getElementById('chart-gap');
        const i = gd.data[0].customdata[0];
        gd.emit('plotly_click', {points: [{customdata: i}]});
        return regbench.data.cells.id[i];
    }""")
    assert loaded.js("document.getElementById('chart-curves').dataset.cell") == other


@needs_chromium
def test_csv_and_svg_downloads(loaded, tmp_path: Path) -> None:
    page = loaded.page
    with page.expect_download() as info:
        page.locator("#sec-tuned button", has_text="Download CSV").click()
    csv = tmp_path / "tuned.csv"
    info.value.save_as(csv)
    frame = pd.read_csv(csv)
    assert "Test (95% CI)" in frame.columns and len(frame) == loaded.shown("tuned")
    page.locator("#chart-aggregates, #chart-gap").first.hover()
    with page.expect_download() as info:
        page.locator("#chart-gap .modebar-btn[data-title='Download plot as SVG']").click()
    svg = tmp_path / "gap.svg"
    info.value.save_as(svg)
    assert svg.read_text().lstrip().startswith("<svg")
    assert loaded.blocked == [] and loaded.errors == []
