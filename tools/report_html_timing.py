"""Time `report.html` to interactive in headless Chromium, offline, and optionally screenshot it.

Loads the page from its file URL with every request that is not `file:`, `data:` or `blob:`
aborted, waits until the page marks itself interactive (its first screen drawn:
`window.regbenchReady`, the time since navigation start in ms) and then complete (every
chart and table drawn: `window.regbenchComplete`), and prints both times, the wall time
from `goto` to interactive, the page's stages (its performance marks) and any console
error or blocked request. Needs pip's
`playwright` and Debian's `chromium` (`--chromium PATH` for another binary).

    python tools/report_html_timing.py reports/report.html --repeat 3
    python tools/report_html_timing.py reports/report.html --screenshots docs/screenshots

`--screenshots DIR` writes, from the last load, `report-html.png` (the first screen),
`report-html-strength.png` (the gap chart, one seed's point hovered) and
`report-html-cell.png` (the cell view of that point's cell, as a click on it shows it),
as 256-colour PNGs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

LOCAL = ("file:", "data:", "blob:")


def screenshots(page, out: Path) -> list[Path]:  # noqa: ANN001 - a playwright Page
    """The three documentation screenshots of a loaded, complete page."""
    out.mkdir(parents=True, exist_ok=True)
    shots = [out / "report-html.png", out / "report-html-strength.png",
             out / "report-html-cell.png"]
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots[0]))
    point = page.evaluate("""() => {
        const gd = document.getElementById('chart-gap');
        gd.scrollIntoView();
        window.scrollBy(0, -100);
        const pts = gd.data[0];
        const k = Math.floor(pts.x.length * 0.8);
        Plotly.Fx.hover(gd, [{curveNumber: 0, pointNumber: k}]);
        return pts.customdata[k];
    }""")
    page.wait_for_timeout(300)
    page.locator("#chart-gap").screenshot(path=str(shots[1]))
    page.evaluate("""i => {
        const gd = document.getElementById('chart-gap');
        Plotly.Fx.unhover(gd);
        gd.emit('plotly_click', {points: [{customdata: i}]});
        document.getElementById('sec-cell').scrollIntoView();
    }""", point)
    page.wait_for_timeout(500)
    page.locator("#sec-cell").screenshot(path=str(shots[2]))
    from PIL import Image

    for shot in shots:
        with Image.open(shot) as im:
            small = im.convert("RGB").quantize(colors=256, dither=Image.Dither.NONE)
        small.save(shot, optimize=True)
    return shots


def measure(page_path: Path, chromium: str, repeat: int = 1, screenshot: Path | None = None,
            width: int = 1400, height: int = 1000, shots: Path | None = None) -> dict:
    """Load the page `repeat` times (a fresh browser context each); the times and problems."""
    from playwright.sync_api import sync_playwright

    url = page_path.resolve().as_uri()
    ready, wall, complete, errors, blocked, marks = [], [], [], [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            for i in range(repeat):
                ctx = browser.new_context(viewport={"width": width, "height": height})
                ctx.route("**/*", lambda route: route.continue_()
                          if route.request.url.startswith(LOCAL)
                          else (blocked.append(route.request.url), route.abort()))
                page = ctx.new_page()
                page.on("console", lambda m: errors.append(m.text) if m.type == "error"
                        else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                t0 = time.perf_counter()
                page.goto(url, wait_until="commit")
                page.wait_for_function("document.documentElement.dataset.ready", timeout=120_000)
                wall.append(time.perf_counter() - t0)
                page.wait_for_function("document.documentElement.dataset.complete",
                                       timeout=120_000)
                complete.append(page.evaluate("window.regbenchComplete") / 1000.0)
                if page.evaluate("document.documentElement.dataset.ready") != "true":
                    errors.append("the page did not finish drawing")
                ready.append(page.evaluate("window.regbenchReady") / 1000.0)
                marks.append(page.evaluate(
                    "performance.getEntriesByType('mark').map(m => [m.name, m.startTime])"
                    ".concat(performance.getEntriesByType('measure')"
                    ".map(m => [m.name + ' (took)', m.duration]))"))
                if screenshot is not None and i == repeat - 1:
                    page.screenshot(path=str(screenshot), full_page=False)
                if shots is not None and i == repeat - 1:
                    screenshots(page, shots)
                ctx.close()
        finally:
            browser.close()
    return {"ready_s": ready, "wall_s": wall, "complete_s": complete, "errors": errors,
            "blocked": blocked, "marks": marks}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("page", type=Path, help="a report.html")
    ap.add_argument("--repeat", type=int, default=3, help="loads (default 3)")
    ap.add_argument("--chromium", default=shutil.which("chromium")
                    or shutil.which("chromium-browser"), help="Chromium binary")
    ap.add_argument("--screenshot", type=Path, help="PNG of the last load's first screen")
    ap.add_argument("--screenshots", type=Path, metavar="DIR",
                    help="the documentation's three screenshots, into DIR")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=1000)
    args = ap.parse_args(argv)
    if not args.chromium:
        print("no chromium found (Debian: apt-get install -y chromium)", file=sys.stderr)
        return 2
    r = measure(args.page, args.chromium, args.repeat, args.screenshot, args.width,
                args.height, args.screenshots)
    size = args.page.stat().st_size / 2**20
    print(f"{args.page} ({size:.1f} MiB): interactive (first screen drawn) after "
          + ", ".join(f"{t:.2f}" for t in r["ready_s"])
          + f" s (median {statistics.median(r['ready_s']):.2f} s since navigation start; "
          f"goto to ready {statistics.median(r['wall_s']):.2f} s); every chart and table "
          "drawn after " + ", ".join(f"{t:.2f}" for t in r["complete_s"])
          + f" s (median {statistics.median(r['complete_s']):.2f} s)")
    stages = {}
    for load in r["marks"]:
        for name, t in load:
            stages.setdefault(name, []).append(t / 1000.0)
    if stages:
        print("stages (median s since navigation start): " + ", ".join(
            f"{k.removeprefix('rb-')} {statistics.median(v):.2f}" for k, v in stages.items()))
    for e in r["errors"]:
        print(f"console error: {e}")
    for u in r["blocked"]:
        print(f"blocked request: {u}")
    return 1 if r["errors"] or r["blocked"] else 0


if __name__ == "__main__":
    sys.exit(main())
