"""What a run did, as counts and failures (`RunSummary`), and how the CLI prints it and
picks its exit status (`finish`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

from regbench.executors.signals import signal_name


@dataclass
class RunSummary:
    """What one run did: cells in the matrix, already stored, run now by status, and what
    other drivers on the same store did meanwhile."""

    total: int = 0
    already: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {"ok": 0, "diverged": 0, "failed": 0})
    failures: list[str] = field(default_factory=list)
    elsewhere: int = 0  # cells another driver on the same store ran meanwhile
    taken_over: list[str] = field(default_factory=list)  # leases of dead drivers taken over
    twice: int = 0  # cells run here that another driver had committed meanwhile (not stored)
    stored_failed: int = 0  # cells of the matrix stored as failed and not rerun
    interrupted: int | None = None  # the signal that stopped the run

    def line(self) -> str:
        c = self.counts
        text = (f"{self.total} cells in matrix: {self.already} already stored, "
                f"{sum(c.values())} run now ({c['ok']} ok, {c['diverged']} diverged, "
                f"{c['failed']} failed)")
        if self.elsewhere:
            text += f", {self.elsewhere} run by another driver"
        if self.taken_over:
            text += f", {len(self.taken_over)} taken over from a dead driver"
        if self.twice:
            text += f", {self.twice} also committed by another driver (kept theirs)"
        if self.interrupted is not None:
            text += f"; interrupted by {signal_name(self.interrupted)}"
        return text

    def exit_code(self) -> int:
        """128 + the signal when interrupted, 1 when a cell failed in this run, else 0
        (`diverged` is a result, not a failure)."""
        if self.interrupted is not None:
            return 128 + self.interrupted
        return 1 if self.counts["failed"] else 0

    def hints(self, retry: str = "rerun with --retry-failed") -> list[str]:
        """What to do next, one line each (for stderr). `retry`: how this command reruns
        failed cells."""
        out = []
        if self.counts["failed"]:
            out.append(f"{self.counts['failed']} cell(s) failed; after fixing the cause, "
                       f"{retry} to run them again")
        if self.stored_failed:
            out.append(f"{self.stored_failed} cell(s) stored as failed were not rerun; "
                       f"{retry} to rerun them")
        if self.interrupted is not None:
            out.append(f"interrupted by {signal_name(self.interrupted)}: finished cells are "
                       f"in the store, rerun to resume")
        return out


def finish(summary: RunSummary, head: str, tail: str = "",
           retry: str = "rerun with --retry-failed", out: TextIO | None = None,
           err: TextIO | None = None, max_failures: int = 10) -> int:
    """Print the summary line (stdout), then each failure and what to do (stderr); the
    exit status of the run (RunSummary.exit_code)."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    print(f"{head}: {summary.line()}{tail}", file=out, flush=True)
    for line in summary.failures[:max_failures]:
        print(f"  failed: {line}", file=err)
    if len(summary.failures) > max_failures:
        print(f"  ... and {len(summary.failures) - max_failures} more failed cell(s) "
              f"(`regbench show --all-columns` has every error)", file=err)
    for line in summary.hints(retry):
        print(f"regbench: {line}", file=err)
    err.flush()
    return summary.exit_code()
