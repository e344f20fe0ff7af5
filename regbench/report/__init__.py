"""`python -m regbench.report`: the report a paper can use, from the results store.

One module per job:

- `cli`: the command line (run the missing cells of a matrix, then write the report).
- `write`: `write_report`, which puts the pieces below into `--out`.
- `stats`: labels, Student-t CIs, paired tests, Holm, the all-strengths summary and ranking.
- `tuned`: the headline view, each regularizer at its validation-selected strength, and the
  agreement check of implementation variants (`stats.VARIANT_PARAMS`).
- `across`: across tasks on the tuned view: Friedman, Wilcoxon-Holm and mean ranks
  (scikit-posthocs), IQM and probability of improvement (rliable).
- `budget` and `budget_tables`: equal-budget tuning studies (tune cells, never in the grid
  views): the selected configurations with paired tests against `none`, across tasks,
  cocktails, tunability, expected validation performance and rank against the budget
  (`regbench.tuning.evp`), and their display tables; `fig_budget` draws the two curves.
- `kernels`: benchmark rows reduced to speed-up over native and fraction of copy bandwidth.
- `tables`, `latex`, `index`: display tables, their Markdown and LaTeX, and README.md.
- `plotting` and `fig_*`: the figures.
- `html_data` and `html`: `report.html`, the same frames as one interactive page that works
  offline (the JSON it embeds; the page, with plotly.js and DataTables inlined from their
  Python packages and its own script and style from `assets/`).

`main` and `write_report` are importable from here; the submodules load on first use (the
claims package imports `regbench.report.stats`, and the report imports the claims).
"""

from __future__ import annotations

from typing import Any

__all__ = ["main", "write_report", "build_parser", "Report"]


def __getattr__(name: str) -> Any:
    if name in ("main", "build_parser", "run"):
        from regbench.report import cli

        return getattr(cli, name)
    if name in ("write_report", "Report"):
        from regbench.report import write

        return getattr(write, name)
    raise AttributeError(f"module 'regbench.report' has no attribute {name!r}")
