"""Fetch what the `openml` entries of a matrix need, before any cell runs.

`fetch` (the `regbench fetch` command) downloads every task and dataset that is missing,
verifies the md5 of every cached data file (a corrupt one is downloaded again), checks each
entry against what OpenML says (data id, version, kind, target), prints one line per dataset
and returns the outcomes; run again, it downloads nothing. `require` (for `run` and the
report) downloads what is missing when allowed, and otherwise stops with one line naming
the missing task ids and the command that fetches them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from regbench.errors import DataError
from regbench.openml_data import cache
from regbench.openml_data.source import Entry, NotCached, Source, resolve
from regbench.specs import TaskSpec

TASK = "openml"  # the registry name of the task whose entries these are
IDS_SHOWN = 100


@dataclass
class Outcome:
    """What fetching one entry did: cached (verified), downloaded, or failed (why)."""

    entry: Entry
    status: str  # cached | downloaded | failed
    line: str
    source: Source | None = None


def entries(specs: list[TaskSpec]) -> list[Entry]:
    """The distinct OpenML entries among task specs, in order (others are left out)."""
    out: dict[Entry, None] = {}
    for spec in specs:
        if spec.name == TASK:
            out.setdefault(Entry.of(dict(spec.params)), None)
    return list(out)


def _describe(src: Source) -> str:
    rows = src.data.get("n_rows")
    return f"{src.where()}, {rows} rows" if rows is not None else src.where()


def fetch_one(entry: Entry, folder: Path, offline: bool) -> Outcome:
    """Fetch (or, offline, find) one entry and check it; never raises a DataError."""
    try:
        try:
            src = resolve(entry, folder, download=False)
            status = "cached"
        except NotCached:
            if offline:
                raise
            src = resolve(entry, folder, download=True)
            status = "downloaded"
        try:
            src.verify()
        except DataError as exc:
            if offline:
                raise
            src = resolve(entry, folder, download=True, refresh=True)
            src.verify()
            status = f"downloaded again (the cached copy was corrupt: {exc})"
        problems = src.problems()
        if problems:
            return Outcome(entry, "failed", "; ".join(problems), src)
        src.kind()
    except DataError as exc:
        text = str(exc)
        return Outcome(entry, "failed", text if text.startswith("OpenML") else
                       f"{entry.label()}: {text}")
    md5 = "md5 verified" if src.data.get("md5") else "no published md5"
    word = "cached" if status == "cached" else status
    return Outcome(entry, "cached" if status == "cached" else "downloaded",
                   f"{_describe(src)}: {word}, {md5}", src)


def fetch(specs: list[TaskSpec], data_dir: Path | str | None, offline: bool = False,
          progress: TextIO | None = None) -> tuple[list[Outcome], Path]:
    """Fetch every OpenML entry of `specs`; (outcomes, the cache folder). Each outcome is
    printed to `progress` as it lands ([i/n] and its line)."""
    folder = cache.configure(data_dir)
    todo = entries(specs)
    if todo and not offline:
        cache.check_writable(folder)
    out = []
    for i, entry in enumerate(todo, 1):
        result = fetch_one(entry, folder, offline)
        out.append(result)
        if progress is not None:
            mark = "FAILED " if result.status == "failed" else ""
            print(f"fetch [{i}/{len(todo)}] {mark}{result.line}", file=progress, flush=True)
    return out, folder


def summary(outcomes: list[Outcome], folder: Path) -> str:
    """One line: how many were downloaded, already cached, failed; where the cache is."""
    n = {s: sum(o.status == s for o in outcomes) for s in ("downloaded", "cached", "failed")}
    return (f"{len(outcomes)} OpenML dataset{'s' * (len(outcomes) != 1)}: "
            f"{n['downloaded']} downloaded, {n['cached']} already cached, {n['failed']} failed; "
            f"cache {folder} (server {cache.server()})")


def _ids(items: list[Entry]) -> str:
    tasks = [str(e.task_id) for e in items if e.task_id is not None]
    data = [str(e.data_id) for e in items if e.task_id is None]
    parts = []
    for word, ids in (("task", tasks), ("dataset", data)):
        if ids:
            shown = ", ".join(ids[:IDS_SHOWN]) + (f" and {len(ids) - IDS_SHOWN} more"
                                                 if len(ids) > IDS_SHOWN else "")
            parts.append(f"OpenML {word}{'s' * (len(ids) != 1)} {shown}")
    return "; ".join(parts)


def require(specs: list[TaskSpec], data_dir: Path | str | None, offline: bool,
            fetch_command: str, progress: TextIO | None = None) -> None:
    """Make sure every OpenML entry of `specs` is cached: download what is missing unless
    `offline` (progress on stderr), else raise one DataError naming the missing ids and
    `fetch_command`. A download that fails is a DataError naming the id and the problem."""
    todo = entries(specs)
    if not todo:
        return
    folder = cache.configure(data_dir)
    missing = []
    for entry in todo:
        try:
            resolve(entry, folder, download=False)
        except NotCached:
            missing.append(entry)
    if not missing:
        return
    if offline:
        n = len(missing)
        raise DataError(f"{n} OpenML dataset{'s' * (n != 1)} of the matrix "
                        f"{'are' if n != 1 else 'is'} not in the cache {folder} and offline "
                        f"mode (--offline or {cache.OFFLINE_ENV}=1) forbids downloading: "
                        f"{_ids(missing)}; fetch them first with `{fetch_command}`")
    cache.check_writable(folder)
    stream = sys.stderr if progress is None else progress
    outcomes = []
    for i, entry in enumerate(missing, 1):
        result = fetch_one(entry, folder, offline=False)
        outcomes.append(result)
        print(f"fetch [{i}/{len(missing)}] {'FAILED ' if result.status == 'failed' else ''}"
              f"{result.line}", file=stream, flush=True)
    failed = [o for o in outcomes if o.status == "failed"]
    if len(failed) == 1:
        raise DataError(f"{failed[0].line}; nothing was run")
    if failed:
        raise DataError(f"{len(failed)} OpenML datasets could not be fetched; nothing was "
                        "run:\n" + "\n".join(f"  {o.line}" for o in failed))
