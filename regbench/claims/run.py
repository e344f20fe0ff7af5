"""Selecting, running and evaluating claims; the terminal table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from regbench.claims.base import (
    CLAIMS,
    COLUMNS,
    VERDICTS,
    Claim,
    Context,
    Outcome,
    Stored,
    bikes_missing,
    fmt,
)
from regbench.specs import Cell
from regbench.store import Store


def select(only: Sequence[str] | None = None) -> list[str]:
    """Claim names in registry order; unknown names raise UnknownNameError."""
    names = CLAIMS.names()
    if not only:
        return names
    for name in only:
        CLAIMS.get(name)
    return [n for n in names if n in set(only)]


def _row(claim: Claim, out: Outcome) -> dict[str, Any]:
    return {"claim": claim.name, "source": claim.source, "claim_text": claim.text,
            "statistic": out.statistic, "value": out.value, "ci_low": out.ci_low,
            "ci_high": out.ci_high, "n_seeds": out.n_seeds, "criterion": claim.criterion,
            "reproduced": out.reproduced, "numbers": out.numbers, "note": out.note}


def claims_frame(store: Store, only: Sequence[str] | None = None, seeds: int | None = None,
                 data_dir: str | None = None, fast: bool = False,
                 slow_direct: bool = False, device: str = "cpu") -> pd.DataFrame:
    """Evaluate claims from what `store` holds, running no cell (missing cells: "not run").

    Direct claims are computed here (deterministic, about a second in all), except the slow
    ones (the talk's 4000-step MLP) unless `slow_direct`. `fast` skips the slow claims.
    Columns: COLUMNS. `device`: whose cells the claims are evaluated on (the direct
    computations always run on the CPU).
    """
    stored = Stored(store, device)
    rows = []
    for name in select(only):
        claim = CLAIMS.get(name)()
        ctx = Context(stored, seeds or claim.seeds, data_dir)
        if fast and not claim.fast:
            out = Outcome("", reproduced="skipped", note="slow claim; left out by --fast")
        elif claim.kind == "direct" and not claim.fast and not slow_direct:
            out = Outcome("", reproduced="not run",
                          note="slow direct computation; run `regbench claims` to compute it")
        else:
            out = claim.evaluate(ctx)
        rows.append(_row(claim, out))
    return pd.DataFrame(rows, columns=COLUMNS)


def claim_cells(names: Sequence[str], seeds: int | None = None, data_dir: str | None = None,
                fast: bool = False, device: str = "cpu") -> list[Cell]:
    """The cells the named claims need (deduplicated; bikes left out without its data)."""
    out, seen = [], set()
    for name in names:
        claim = CLAIMS.get(name)()
        if fast and not claim.fast or claim.needs_data and bikes_missing(data_dir):
            continue
        for c in claim.cells(seeds or claim.seeds):
            c = c if device == "cpu" else replace(c, device=device)
            if c.cell_id not in seen:
                seen.add(c.cell_id)
                out.append(c)
    return out


def claim_studies(names: Sequence[str], fast: bool = False) -> list[Any]:
    """The equal-budget studies the named claims need (deduplicated by name)."""
    out: dict[str, Any] = {}
    for name in names:
        claim = CLAIMS.get(name)()
        if fast and not claim.fast:
            continue
        for s in claim.studies():
            out.setdefault(s.name, s)
    return list(out.values())


def run_claims(store: Store, only: Sequence[str] | None = None, seeds: int | None = None,
               jobs: int = 1, data_dir: str | None = None, fast: bool = False,
               progress: bool = True,
               log: Callable[[str], None] | None = None, device: str = "cpu",
               retry_failed: bool = False) -> pd.DataFrame:
    """Run the missing cells of the selected claims into `store`, then evaluate them all.

    The run's RunSummary is in the frame's `attrs["run_summary"]` (None when no cell was
    needed); its summary line, failures and hints go to `log`. SIGINT/SIGTERM raise
    `Interrupted` after logging them."""
    from regbench.executors import Interrupted, make_executor
    from regbench.matrix import Expansion
    from regbench.tuning.driver import run_matrix

    names = select(only)
    cells = claim_cells(names, seeds, data_dir, fast, device)
    studies = claim_studies(names, fast)
    summary = None
    if cells or studies:
        executor = make_executor("local", jobs=jobs, threads=1, data_dir=data_dir)
        try:
            summary = run_matrix(Expansion(cells=cells, studies=studies), store, executor,
                                 device, progress=progress, retry_failed=retry_failed,
                                 log=log)
        except Interrupted as exc:
            if log and exc.summary is not None:
                _log_summary(exc.summary, log)
            raise
        if log:
            _log_summary(summary, log)
    df = claims_frame(store, names, seeds, data_dir, fast=fast, slow_direct=True,
                      device=device)
    df.attrs["run_summary"] = summary
    return df


def _log_summary(summary: Any, log: Callable[[str], None]) -> None:
    import io

    from regbench.executors import finish

    out = io.StringIO()
    finish(summary, "claims", out=out, err=out)
    for line in out.getvalue().splitlines():
        log(line)


def render_table(df: pd.DataFrame) -> str:
    """The claims table for a terminal: statistic with its CI, verdict, numbers."""
    if df.empty:
        return "(no claims)\n"
    lines = []
    for r in df.itertuples():
        ci = (f"{fmt(r.value, 4)} [{fmt(r.ci_low, 4)}, {fmt(r.ci_high, 4)}] (n={r.n_seeds})"
              if np.isfinite(r.value) else "-")
        lines += [f"{r.claim}  [{r.source}]  reproduced: {r.reproduced}",
                  f"  claim:     {r.claim_text}",
                  f"  statistic: {r.statistic}: {ci}" if r.statistic else "  statistic: -",
                  f"  criterion: {r.criterion}"]
        if r.numbers:
            lines.append(f"  numbers:   {r.numbers}")
        if r.note:
            lines.append(f"  note:      {r.note}")
        lines.append("")
    counts = df.reproduced.value_counts()
    lines.append("summary: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS))
    return "\n".join(lines) + "\n"
