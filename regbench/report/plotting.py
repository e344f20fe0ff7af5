"""What every report figure shares: the `Figure` record, the seaborn style, and `save`, which
writes PNG/PDF without timestamps and refuses a figure with more than `MAX_SERIES` series on
one axes (a reader cannot tell more apart; split the data into panels instead).

The figure modules: `fig_training` (seed 004's family, gap vs strength, learning curve),
`fig_double_descent`, `fig_kernels` (speed-up and fraction of copy bandwidth) and
`fig_across` (critical-difference diagram, IQM and probability of improvement).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

DPI = 110
MAX_SERIES = 6


@dataclass
class Figure:
    """A written figure: its name, title, one data-driven sentence and the files."""

    name: str
    title: str
    note: str
    files: list[Path] = field(default_factory=list)


@contextmanager
def style() -> Iterator[None]:
    """The report's look: seaborn whitegrid, paper context; matplotlib's UserWarnings quiet."""
    with sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.1), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def series_count(ax: plt.Axes) -> int:
    """Data series on one axes: labelled artists (lines, bars, scatters, error bars) plus
    unlabelled lines of more than two points (reference lines such as axhline have two)."""
    handles, _ = ax.get_legend_handles_labels()
    labelled = {id(h) for h in handles}
    unlabelled = [ln for ln in ax.lines if id(ln) not in labelled
                  and ln.get_label().startswith("_") and len(ln.get_xdata()) > 2
                  and not _in_container(ax, ln)]
    return len(handles) + len(unlabelled)


def _in_container(ax: plt.Axes, line: Line2D) -> bool:
    return any(line in c for c in ax.containers)


def save(fig: plt.Figure, out_dir: Path, name: str, formats: list[str], *,
         check_series: bool = True) -> list[Path]:
    """Write `fig` as out_dir/name.<fmt> for each format (no timestamps inside) and close it.

    Raises ValueError (a bug in the figure code, not a user error) when an axes holds more
    than MAX_SERIES series; `check_series=False` only for diagrams whose entries are labels,
    not series (the critical-difference diagram names every regularizer on one rank axis).
    """
    if check_series:
        worst = max((series_count(ax) for ax in fig.axes), default=0)
        if worst > MAX_SERIES:
            plt.close(fig)
            raise ValueError(f"figure {name}: {worst} series on one axes; at most {MAX_SERIES}")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        meta = {"CreationDate": None} if fmt == "pdf" else {"Software": None} if fmt == "png" \
            else None
        fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata=meta)
        if fmt == "png":
            _palette_png(path)
        paths.append(path)
    plt.close(fig)
    return paths


def _palette_png(path: Path) -> None:
    """Re-save a PNG with a 256-colour palette (a third of the size; plots have few colours)."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def shades(cmap: str, n: int) -> list[tuple[float, float, float]]:
    """n colours of a sequential palette, light to dark, skipping the near-white end."""
    return list(sns.color_palette(cmap, n + 2))[2:] if n else []


def legend_outside(ax: plt.Axes, **kw: object) -> None:
    """The legend to the right of the axes, off the data."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**{"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0,
                     "fontsize": 8, **kw})
