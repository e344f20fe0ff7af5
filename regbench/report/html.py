"""`report.html`: the report as one interactive page that opens offline (from `file://`).

Everything the page needs is inside it, taken from Python packages regbench installs:
plotly.js from `plotly` (`plotly.offline.get_plotlyjs()`), DataTables (with its Buttons,
for the CSV downloads) from the `itables` package's offline bundle (`itables.options.
dt_bundle`, an ES module the page imports from a Blob, as itables' own offline mode does),
and the page's script and style from `regbench/report/assets/`. The data are JSON from
`html_data` (the frames the Markdown report is built from). Same data in, same bytes out.
"""

from __future__ import annotations

import base64
import html
from functools import cache
from importlib import resources
from pathlib import Path

from regbench.report import html_data as hd

PAGE = "report.html"


@cache
def plotly_js() -> str:
    """plotly.min.js as shipped by the `plotly` package."""
    from plotly.offline import get_plotlyjs

    return _script_safe(get_plotlyjs())


@cache
def datatables() -> tuple[str, str]:
    """(the DataTables ES module as base64, its CSS) from the `itables` package."""
    from itables import options

    bundle = Path(options.dt_bundle)
    return (base64.b64encode(bundle.read_bytes()).decode("ascii"),
            bundle.with_suffix(".css").read_text(encoding="utf-8"))


def asset(name: str) -> str:
    """A file of `regbench/report/assets/` (the page's own script and style)."""
    return resources.files("regbench.report").joinpath("assets", name).read_text("utf-8")


def _script_safe(js: str) -> str:
    """Script text that cannot close its own `<script>` element early."""
    return js.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")


def render(data: dict, curves: str) -> str:
    """The page's HTML for `data` and `curves` (`html_data.build`)."""
    dt_module, dt_css = datatables()
    title = html.escape(data["title"])
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{dt_css}</style>
<style>{asset("report.css")}</style>
</head>
<body>
<header><h1>{title}</h1><p id="rb-summary"></p></header>
<nav id="rb-nav"></nav>
<main id="rb-main"><p id="rb-loading">Loading the report…</p></main>
<script type="application/json" id="rb-data">{hd.to_json(data)}</script>
<script type="text/plain" id="rb-curves">{curves}</script>
<script type="text/plain" id="rb-datatables">{dt_module}</script>
<script>{plotly_js()}</script>
<script>{_script_safe(asset("report.js"))}</script>
</body>
</html>
"""


def write_page(path: Path, frames: hd.Frames, info: object) -> Path:
    """Write the page for `frames` (and `index.RunInfo` `info`) to `path`."""
    data, curves = hd.build(frames, info)
    path.write_text(render(data, curves), encoding="utf-8")
    return path
