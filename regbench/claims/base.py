"""The claims' common parts: Outcome, the Claim base class, the registry, store access,
formatting helpers and the bikes-data check (used by the runner and the bikes claim).

Every claim module registers its claims into `CLAIMS` with `register_claim`; a claim's
`evaluate` returns an `Outcome` (one row of the claims table) from a `Context`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from regbench.errors import DataError
from regbench.registry import Registry
from regbench.report.stats import t_ci
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze
from regbench.store import Store

VERDICTS = ("yes", "no", "skipped", "not run")
COLUMNS = ["claim", "source", "claim_text", "statistic", "value", "ci_low", "ci_high",
           "n_seeds", "criterion", "reproduced", "numbers", "note"]

CLAIMS: Registry[Any] = Registry("claim")
register_claim = CLAIMS.register

CURVE_NOISE = 0.05  # the talk's noise sd (seed 000), also the `curve` task's default


# -- small helpers ---------------------------------------------------------------------------
def geo_ci(values: Sequence[float] | np.ndarray) -> tuple[float, float, float, int]:
    """Geometric mean with a t-interval computed on log10 (for ratios)."""
    x = np.asarray(values, dtype=float)
    m, lo, hi, n = t_ci(np.log10(x[x > 0]))
    return 10**m, 10**lo, 10**hi, n


def fmt(x: float, digits: int = 3) -> str:
    return "nan" if x is None or not np.isfinite(x) else f"{x:.{digits}g}"


def fmt_list(xs: Sequence[float], digits: int = 3) -> str:
    return "[" + ", ".join(fmt(float(x), digits) for x in xs) + "]"


def cell(task: str, arch: str, reg: str = "none", strength: float = 0.0, seed: int = 0,
         task_params: dict[str, Any] | None = None, arch_params: dict[str, Any] | None = None,
         protocol: dict[str, Any] | None = None) -> Cell:
    """A Cell from plain names and dicts."""
    return Cell(TaskSpec(task, freeze(task_params)), ArchSpec(arch, freeze(arch_params)),
                RegSpec(reg, float(strength)), seed, freeze(protocol))


def bikes_missing(data_dir: str | None) -> str | None:
    """Why the bikes data cannot be found (a clear note), or None when it is there."""
    from regbench.tasks.bikes import find_csv

    try:
        find_csv(Path(data_dir) if data_dir else None)
    except DataError as exc:
        return f"skipped: {exc}"
    return None


@dataclass
class Outcome:
    """One claim's verdict and the numbers behind it (one row of the claims table)."""

    statistic: str
    value: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    n_seeds: int = 0
    reproduced: str = "not run"
    numbers: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if self.reproduced not in VERDICTS:
            raise ValueError(f"verdict {self.reproduced!r} is not one of {VERDICTS}")


def verdict(ok: bool) -> str:
    return "yes" if ok else "no"


class Stored:
    """Read access to the store's rows, curves and artifacts by cell (loaded lazily).

    `device`: the claims' cells are looked up as run on this device ("cpu", or
    "cuda:<GPU name>"), so CPU and CUDA results of one claim are never mixed.
    """

    def __init__(self, store: Store, device: str = "cpu"):
        self.store, self.device = store, device
        self._rows: pd.DataFrame | None = None
        self._curves: dict[str, pd.DataFrame] = {}
        self._artifacts: dict[str, dict[str, Any]] = {}

    @property
    def rows(self) -> pd.DataFrame:
        if self._rows is None:
            self._rows = self.store.cells_frame().set_index("cell_id", drop=False)
        return self._rows

    def id(self, c: Cell) -> str:
        """The id of `c` on this Stored's device."""
        return c.cell_id if c.device == self.device else replace(c, device=self.device).cell_id

    def row(self, c: Cell) -> pd.Series | None:
        cid = self.id(c)
        return self.rows.loc[cid] if cid in self.rows.index else None

    def missing(self, cells: Sequence[Cell]) -> list[Cell]:
        return [c for c in cells if self.id(c) not in self.rows.index]

    def curve(self, c: Cell) -> pd.DataFrame:
        """The cell's per-epoch rows in epoch order (read from the store once per cell)."""
        cid = self.id(c)
        if cid not in self._curves:
            self._curves[cid] = self.store.curves([cid])
        return self._curves[cid]

    def artifact(self, name: str, c: Cell) -> Any:
        """The cell's stored artifact `name`, or None (read from the store once per cell)."""
        seen = self._artifacts.setdefault(name, {})
        cid = self.id(c)
        if cid not in seen:
            seen[cid] = self.store.artifacts(name, [cid]).get(cid)
        return seen[cid]


@dataclass
class Context:
    """What a claim may use while evaluating: the store, seeds, the data folder."""

    stored: Stored
    seeds: int
    data_dir: str | None = None


class Claim:
    """Base of every claim. Subclasses set the class attributes and `evaluate`.

    `kind` is "cells" (training runs through the store) or "direct" (a deterministic
    computation in the claim). `fast` claims run in the tests and with `--fast`.
    """

    name: ClassVar[str]
    source: ClassVar[str]
    text: ClassVar[str]
    criterion: ClassVar[str]
    kind: ClassVar[str] = "cells"
    fast: ClassVar[bool] = True
    seeds: ClassVar[int] = 5
    needs_data: ClassVar[bool] = False

    def cells(self, seeds: int) -> list[Cell]:
        """The cells this claim needs (empty for direct claims)."""
        return []

    def studies(self) -> list[Any]:
        """Equal-budget studies this claim needs (regbench.tuning): their cells depend on
        stored results, so they run round by round after `cells`."""
        return []

    def evaluate(self, ctx: Context) -> Outcome:
        raise NotImplementedError

    def missing(self, ctx: Context, statistic: str) -> Outcome | None:
        """A "not run" Outcome naming how many of the claim's cells the store lacks, or None
        when all are stored (for claims that judge diverged cells themselves)."""
        cells = self.cells(ctx.seeds)
        missing = ctx.stored.missing(cells)
        if not missing:
            return None
        return Outcome(statistic, reproduced="not run",
                       note=f"{len(missing)}/{len(cells)} cells missing from the store; "
                            f"run `regbench claims --only {self.name}`")

    def not_run(self, ctx: Context, statistic: str) -> Outcome | None:
        """An Outcome saying which cells are missing (`missing`), or "no" when a stored cell
        is not ok; None when all are stored and ok."""
        if (o := self.missing(ctx, statistic)) is not None:
            return o
        cells = self.cells(ctx.seeds)
        bad = [c for c in cells if ctx.stored.row(c)["status"] != "ok"]
        if bad:
            r = ctx.stored.row(bad[0])
            return Outcome(statistic, reproduced="no", numbers=(
                f"{len(bad)}/{len(cells)} cells not ok; first: {bad[0].describe()} "
                f"{r['status']}: {str(r['error']).splitlines()[0] if r['error'] else ''}"))
        return None

