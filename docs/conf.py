"""Sphinx configuration of the regbench documentation.

Built with Sphinx, MyST (pages in Markdown) and the PyData theme; `.ci/run` builds it with
warnings as errors: ``python -m sphinx -W --keep-going -n -b html docs docs/_build/html``.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # document the checkout, not an installed copy
sys.path.insert(0, str(DOCS / "_ext"))

import regbench  # noqa: E402

project = "regbench"
author = "regbench contributors"
copyright = "regbench contributors"
release = regbench.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "regbench_docgen",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "reference/generated/store-schema.md",
                    "reference/generated/hooks.md"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# The reference is strict: every cross-reference must resolve (`-n`), with these
# exceptions for names of other libraries (no network at build time, so no intersphinx).
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|np|numpy|pd|pandas|nn|collections|typing|typing_extensions|argparse|"
               r"pathlib|dataclasses|concurrent|sqlite3|threading|types|contextlib|"
               r"distributed|dask|matplotlib|abc|_?io|os|enum)(\..*)?"),
    (r"py:.*", r"(Any|Callable|Iterator|Iterable|Sequence|Mapping|Generator|Path|Tensor|"
               r"Module|Parameter|Generator|ClassVar|TypeVar|T|Self|IO|ModuleType|"
               r"DataFrame|ndarray|Optimizer|Namespace|ArgumentParser|Connection)"),
    (r"py:.*", r"(int|float|str|bool|bytes|object|None|type|tuple|list|dict|set|frozenset)"
               r"(\[.*)?"),
    (r"py:.*", r".*\._[A-Za-z].*"),  # private helpers named in signatures
    (r"py:.*", r"regbench\.registry\.T"),  # the Registry's type variable
]

autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
smartquotes = False  # keep -- in options and quotes in code as written
default_role = "literal"  # `x` in a docstring is code, as in the rest of the project

html_theme = "pydata_sphinx_theme"
html_title = "regbench"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
    "navbar_end": ["navbar-icon-links"],
}
html_context = {"default_mode": "light"}  # without it the theme logs a console error
html_sidebars = {"index": [], "measurements": []}
html_show_sourcelink = False
html_last_updated_fmt = None
suppress_warnings: list[str] = []
