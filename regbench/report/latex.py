"""LaTeX tables: `pandas.Styler.to_latex` with booktabs rules, escaped names, one `.tex`
per table (a bare `tabular` to `\\input` into a paper's own table) and a `tables.tex`
wrapper that compiles standalone (`pdflatex tables.tex` in the report folder)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from regbench.report.tables import DisplayTable

_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
            "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
            "±": r"$\pm$", "Δ": r"$\Delta$", "—": "--", "–": "--", "<": r"$<$", ">": r"$>$"}


def escape(text: str) -> str:
    """Plain text to LaTeX: specials escaped, the few non-ASCII symbols we use as math."""
    return "".join(_SPECIAL.get(ch, ch) for ch in str(text))


def to_latex(table: DisplayTable) -> str:
    """A booktabs `tabular` of a display table (built with the TEX style)."""
    frame = table.frame.copy()
    frame.columns = [escape(c) for c in frame.columns]
    names = [escape(c) for c in table.name_columns]
    bold = table.bold.copy()
    bold.columns = frame.columns
    styler = frame.style.hide(axis="index")
    if names:
        styler = styler.format(escape="latex", subset=names)
    styler = styler.apply(
        lambda _: bold.replace({True: "textbf:--rwrap;", False: ""}).astype(str), axis=None)
    fmt = "".join("l" if c in names else "r" for c in frame.columns)
    return styler.to_latex(hrules=True, column_format=fmt)


def wrapper(tables: list[tuple[DisplayTable, str]], title: str) -> str:
    """A standalone document that `\\input`s each table (path relative to the wrapper)."""
    lines = [
        "% regbench report tables; compile with `pdflatex tables.tex` in this folder.",
        "% Each tables/*.tex is a bare booktabs tabular to \\input into a paper.",
        r"\documentclass{article}",
        r"\usepackage[T1]{fontenc}",
        r"\usepackage{booktabs}",
        r"\usepackage{graphicx}",
        r"\usepackage[margin=1.5cm,landscape]{geometry}",
        r"\begin{document}",
        r"\section*{" + escape(title) + "}",
    ]
    for table, path in tables:
        lines += [
            r"\begin{table}[!htbp]",
            r"\centering",
            r"\caption{" + escape(table.caption) + "}",
            r"\label{tab:" + table.name + "}",
            r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{\input{"
            + path + "}}",
            r"\end{table}",
            r"\clearpage",
        ]
    lines.append(r"\end{document}")
    return "\n".join(lines) + "\n"


def engine() -> str | None:
    """The first TeX engine on PATH (pdflatex, xelatex, lualatex), or None."""
    for name in ("pdflatex", "xelatex", "lualatex"):
        if shutil.which(name):
            return name
    return None


def compile_tex(path: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Compile a .tex file in its own folder with the first available engine."""
    exe = engine()
    if exe is None:
        raise FileNotFoundError("no TeX engine (pdflatex, xelatex, lualatex) on PATH")
    return subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error", path.name],
                          cwd=path.parent, capture_output=True, text=True, timeout=timeout)
