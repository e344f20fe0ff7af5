"""The documentation site: it builds strictly, and its pages render in a real browser.

The site is taken from `$REGBENCH_DOCS_HTML`, else `docs/_build/html` (what `.ci/run`
builds with `python -m sphinx -W --keep-going -n -b html docs docs/_build/html`), else it
is built here, strictly, when Sphinx is installed (`pip install -e '.[docs]'`). The browser
checks need Debian's `chromium` (headless) and skip without it: the front page and one
reference page must load with no console message other than the theme's own notes, every
image on them must have loaded (a natural width above 0), and a screenshot of each is
written to `$REGBENCH_DOCS_SCREENSHOTS` (default: the test's temporary folder).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = {"front": "index.html", "reference": "reference/generated/registries.html"}
# Console lines of the theme that are notes, not errors (its mode switch logs one).
BENIGN = (re.compile(r'^"\[PST\]: '),)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _build(out: Path) -> None:
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html",
           str(ROOT / "docs"), str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"strict docs build failed:\n{res.stderr[-4000:]}"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    env = os.environ.get("REGBENCH_DOCS_HTML")
    built = Path(env) if env else ROOT / "docs" / "_build" / "html"
    if (built / "index.html").exists():
        return built
    pytest.importorskip("sphinx", reason="the docs tools are not installed: "
                        "pip install -e '.[docs]'")
    pytest.importorskip("myst_parser")
    pytest.importorskip("pydata_sphinx_theme")
    out = tmp_path_factory.mktemp("html")
    _build(out)
    return out


def test_the_site_has_every_section(site):
    for page in ("index.html", "tutorials/first-report.html", "howto/matrix-file.html",
                 "reference/generated/cli.html", "reference/generated/registries.html",
                 "reference/api.html", "explanation/kernels.html", "measurements.html"):
        assert (site / page).exists(), f"{page} is missing from the built site"
    cli = (site / "reference/generated/cli.html").read_text()
    for command in ("regbench run", "regbench doctor", "python -m regbench.report"):
        assert command in cli


def _run(args: list[str], timeout: int = 120) -> subprocess.CompletedProcess[str]:
    base = [_chromium() or "chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
            "--no-first-run", "--hide-scrollbars", "--allow-file-access-from-files"]
    return subprocess.run(base + args, capture_output=True, text=True, timeout=timeout)


def console_messages(stderr: str) -> list[str]:
    """The page's console messages from Chromium's `--enable-logging=stderr` output."""
    return [m.group(1) for m in re.finditer(r":CONSOLE(?:\(\d+\))?:?\d*\] (.*)", stderr)]


def console_errors(stderr: str) -> list[str]:
    return [m for m in console_messages(stderr) if not any(b.search(m) for b in BENIGN)]


def images(page: Path, tmp: Path) -> list[tuple[str, bool, int]]:
    """(src, complete, naturalWidth) of every image of `page`, after it loaded."""
    wrapper = tmp / f"images-{page.stem}.html"
    wrapper.write_text(f"""<!doctype html><html><body>
<iframe id="f" src="{page.resolve().as_uri()}" width="1280" height="1400"></iframe>
<script>
document.getElementById("f").onload = function () {{
  var d = this.contentDocument, out = [];
  for (var i = 0; i < d.images.length; i++) {{
    var im = d.images[i];
    out.push([im.getAttribute("src"), im.complete, im.naturalWidth]);
  }}
  var pre = document.createElement("pre"); pre.id = "result";
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
}};
</script></body></html>""")
    res = _run(["--virtual-time-budget=15000", "--dump-dom", wrapper.as_uri()])
    m = re.search(r'<pre id="result">(.*?)</pre>', res.stdout, re.S)
    assert m, f"the page did not load in Chromium:\n{res.stderr[-2000:]}"
    return [tuple(x) for x in json.loads(m.group(1).replace("&quot;", '"'))]


needs_chromium = pytest.mark.skipif(_chromium() is None, reason="no chromium (Debian: "
                                    "apt-get install -y chromium)")


@needs_chromium
@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_without_console_errors_and_its_figures_load(site, name, tmp_path):
    page = site / PAGES[name]
    out = Path(os.environ.get("REGBENCH_DOCS_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    shot = out / f"docs-{name}.png"
    res = _run(["--enable-logging=stderr", "--v=0", "--window-size=1280,1400",
                "--virtual-time-budget=10000", f"--screenshot={shot}", page.as_uri()])
    assert shot.exists() and shot.stat().st_size > 10_000, res.stderr[-2000:]
    assert console_errors(res.stderr) == [], f"console messages on {page}"
    imgs = images(page, tmp_path)
    broken = [src for src, complete, width in imgs if not complete or width == 0]
    assert not broken, f"images that did not load on {page}: {broken}"
    if name == "front":
        assert any("critical_difference" in src for src, _, _ in imgs)


@needs_chromium
def test_the_checks_catch_a_broken_page(tmp_path):
    # the same checks on a page with a script error and a missing image must fail
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><script>throw new Error("boom")</script>'
                   '<img src="missing.png"><img src="data:image/gif;base64,'
                   'R0lGODlhAQABAAAAACwAAAAAAQABAAA="></body></html>')
    res = _run(["--enable-logging=stderr", "--v=0", f"--screenshot={tmp_path / 'b.png'}",
                bad.as_uri()])
    assert any("boom" in m for m in console_errors(res.stderr))
    imgs = images(bad, tmp_path)
    assert [(src, w > 0) for src, _, w in imgs] == [("missing.png", False),
                                                    (imgs[1][0], True)]
