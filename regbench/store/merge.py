"""`regbench merge`: combine the stores of several machines into a new store.

The inputs are only read. The output is written to a temporary file in the target's folder
(`.NAME.*.merging`) and renamed over the target at the end, so a merge stopped at any
moment (even by SIGKILL) leaves the target as it was and every input untouched.

A cell id held by several inputs:

- with the same result (`RESULT_COLUMNS`, curves and artifacts, bit for bit) is kept once:
  the first input's row, with its provenance;
- with another result (another CPU's bits) keeps the first input's row in `cells` (the one
  the report uses) and each other result whole in `conflicts`, with the store and machine
  it came from; `regbench check` lists them;
- a `failed` cell is no result: a result from a later input replaces it, and a failure
  never displaces a result.

Inputs of another suite version or a newer schema are refused before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from regbench.errors import StoreError
from regbench.out_file import check_writable, replacing
from regbench.store.db import (
    Store,
    connect_ro,
    empty_file,
    insert_sql,
    inspect,
    shm_file,
    suite_version_counts,
    table_names,
    wal_file,
)
from regbench.store.faults import sqlite_line
from regbench.store.schema import (
    BENCH_COLUMNS,
    CELL_COLUMNS,
    CONFLICT_COLUMNS,
    RESULT_COLUMNS,
)

CONFLICTS_SHOWN = 10


@dataclass
class Conflict:
    """A cell with a second result: which store and machine each came from, what differs."""

    cell_id: str
    cell: str  # the cell in words (task / arch / regularizer / seed)
    kept_source: str
    kept_host: str
    source: str
    host: str
    differs: list[str]

    def line(self) -> str:
        return (f"cell {self.cell_id} ({self.cell}): the result from {self.kept_source} "
                f"(machine {self.kept_host}) is kept; the one from {self.source} (machine "
                f"{self.host}) differs in {', '.join(self.differs)}")


@dataclass
class MergeSummary:
    """What `merge` did: cells taken from each input, duplicates, conflicts."""

    into: Path
    added: dict[str, int] = field(default_factory=dict)  # input -> cells taken from it
    identical: int = 0  # cells also in an earlier input, with the same result
    conflicts: list[Conflict] = field(default_factory=list)
    failed_replaced: int = 0  # failed cells replaced by a later input's result
    failed_dropped: int = 0  # failed cells left out: an earlier input has the cell
    bench: int = 0  # kernel benchmark rows

    @property
    def cells(self) -> int:
        return sum(self.added.values())

    def lines(self) -> list[str]:
        taken = ", ".join(f"{n} from {s}" for s, n in self.added.items())
        out = [f"merged {len(self.added)} store(s) into {self.into}: {self.cells} cell(s) "
               f"({taken}); {self.identical} also in an earlier store with the same result, "
               f"kept once; {len(self.conflicts)} with another result, kept in conflicts"]
        if self.failed_replaced or self.failed_dropped:
            out.append(f"  failed cells: {self.failed_replaced} replaced by a later store's "
                       f"result, {self.failed_dropped} left out (an earlier store has the "
                       f"cell)")
        if self.bench:
            out.append(f"  kernel benchmark rows: {self.bench}")
        for c in self.conflicts[:CONFLICTS_SHOWN]:
            out.append(f"  conflict: {c.line()}")
        if len(self.conflicts) > CONFLICTS_SHOWN:
            out.append(f"  ... and {len(self.conflicts) - CONFLICTS_SHOWN} more "
                       f"(`regbench check --store {self.into}` lists every one)")
        return out


# -- checks before anything is written -----------------------------------------------------
def check_inputs(sources: list[Path], into: Path, force: bool) -> None:
    """Refuse, with one line naming the bad value, anything that would make the merge fail
    or lose data: a missing, damaged or foreign input, one of another suite version or a
    newer schema, an input given twice, the target among the inputs, a target that exists
    (without `force`), is open, is a folder or cannot be written."""
    from regbench.specs import SUITE_VERSION

    seen: dict[Path, Path] = {}
    for src in sources:
        if src.is_dir():
            raise StoreError(f"store {src} is a directory, not a store; nothing was merged")
        if not src.is_file():
            raise StoreError(f"no store at {src}; nothing was merged")
        real = src.resolve()
        if real in seen:
            raise StoreError(f"store {src} is given twice (also as {seen[real]}); name each "
                             f"store once")
        seen[real] = src
        if src.stat().st_size == 0:
            raise StoreError(empty_file(src))
        if inspect(src) is None:  # refuses a damaged, foreign or newer-schema store
            raise StoreError(f"{src} is an empty SQLite file, not a regbench store; nothing "
                             f"was merged")
        with _reading(src) as con:
            held = suite_version_counts(con)
        other = {v: n for v, n in held.items() if v != SUITE_VERSION}
        if other:
            have = ", ".join(f"{n} cell(s) of suite version {v!r}"
                             for v, n in sorted(other.items()))
            raise StoreError(f"store {src} holds {have}; this regbench is suite version "
                             f"{SUITE_VERSION!r} and merges only stores of its own suite "
                             f"version; nothing was merged")
    if into.resolve() in seen:
        raise StoreError(f"--into {into} is one of the stores to merge; a store cannot be "
                         f"merged into itself: merge into a new file")
    check_writable(into, "--into", force)
    wal, shm = wal_file(into), shm_file(into)
    if into.exists() and ((wal.exists() and wal.stat().st_size) or shm.exists()):
        raise StoreError(f"--into {into} is open: its {wal.name} or {shm.name} file exists (a "
                         f"driver is using it, or one stopped without closing it); stop it, "
                         f"or remove the store and those files, before replacing it")


@contextmanager
def _reading(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to an input, in one read transaction (a consistent snapshot
    even while a driver writes to it); SQLite errors name the store."""
    try:
        con = connect_ro(path)
    except sqlite3.Error as exc:
        raise StoreError(sqlite_line(exc, path)) from None
    try:
        con.execute("BEGIN")
        yield con
    except sqlite3.Error as exc:
        raise StoreError(sqlite_line(exc, path)) from None
    finally:
        con.close()


# -- results and their digest ------------------------------------------------------------------
def _canon(value: Any) -> Any:
    """A value as compared: floats by their bits (hex), everything else as stored."""
    return value.hex() if isinstance(value, float) else value


def result_digest(row: dict[str, Any], curves: list[tuple], artifacts: list[tuple]) -> str:
    """sha256 of what a cell computed: its RESULT_COLUMNS, curves and artifacts."""
    blob = json.dumps([[_canon(row.get(c)) for c in RESULT_COLUMNS],
                       [[_canon(v) for v in r] for r in curves], artifacts])
    return hashlib.sha256(blob.encode()).hexdigest()


def _differs(a: _Cell, b: _Cell) -> list[str]:
    out = [c for c in RESULT_COLUMNS if _canon(a.row.get(c)) != _canon(b.row.get(c))]
    if [[_canon(v) for v in r] for r in a.curves] != [[_canon(v) for v in r] for r in b.curves]:
        out.append("curves")
    if a.artifacts != b.artifacts:
        out.append("artifacts")
    return out


@dataclass
class _Cell:
    """One cell of an input: its row, curves and artifacts, and where it came from."""

    row: dict[str, Any]
    curves: list[tuple]
    artifacts: list[tuple]
    source: str

    @cached_property
    def digest(self) -> str:
        return result_digest(self.row, self.curves, self.artifacts)

    @property
    def failed(self) -> bool:
        return self.row.get("status") == "failed"

    @property
    def host(self) -> str:
        return machine(self.row.get("hostname"), self.row.get("cpu_model"))


def machine(host: str | None, cpu: str | None) -> str:
    """A result's machine in words: `host (cpu model)`, `?` for an unknown host."""
    return f"{host or '?'} ({cpu})" if cpu else (host or "?")


def describe(row: dict[str, Any]) -> str:
    """A stored cell in words, from its `cell_json` (its task and regularizer if unreadable)."""
    from regbench.specs import Cell

    try:
        return Cell.from_json(row["cell_json"]).describe()
    except (KeyError, TypeError, ValueError):
        return f"{row.get('task')} / {row.get('regularizer')}"


def _defaults() -> dict[str, Any]:
    """What a column an older schema lacks holds for its cells ('' or NULL)."""
    return {c: "" if "DEFAULT ''" in t else None for c, t in CELL_COLUMNS.items()}


def _cells(con: sqlite3.Connection, source: str) -> Iterator[_Cell]:
    have = [r[1] for r in con.execute("PRAGMA table_info(cells)") if r[1] in CELL_COLUMNS]
    defaults = _defaults()
    cur = con.execute(f"SELECT {', '.join(have)} FROM cells ORDER BY rowid")
    for values in cur.fetchall():
        row = {**defaults, **dict(zip(have, values))}
        cid = row["cell_id"]
        curves = con.execute("SELECT epoch, train_loss, val_loss, val_metric FROM curves "
                             "WHERE cell_id = ? ORDER BY epoch", (cid,)).fetchall()
        artifacts = con.execute("SELECT name, value FROM artifacts WHERE cell_id = ? "
                                "ORDER BY name", (cid,)).fetchall()
        yield _Cell(row, [tuple(r) for r in curves], [tuple(a) for a in artifacts], source)


def _stored_conflicts(con: sqlite3.Connection) -> list[dict[str, Any]]:
    """An input's own conflicts (a store that is itself a merge); none before schema 5."""
    if "conflicts" not in table_names(con):
        return []
    cols = list(CONFLICT_COLUMNS)
    return [dict(zip(cols, r)) for r in con.execute(
        f"SELECT {', '.join(cols)} FROM conflicts ORDER BY rowid")]


# -- the merge ---------------------------------------------------------------------------------
class _Target:
    """The output store being built: the kept cell of each id and what was written."""

    def __init__(self, store: Store, summary: MergeSummary):
        self.con = store.con
        self.summary = summary
        self.kept: dict[str, _Cell] = {}
        self.conflict_keys: set[tuple[str, str]] = set()
        self.bench_rows: set[tuple] = set()

    def insert(self, cell: _Cell) -> None:
        self.con.execute(insert_sql("cells", CELL_COLUMNS),
                         [cell.row.get(c) for c in CELL_COLUMNS])
        cid = cell.row["cell_id"]
        self.con.executemany("INSERT INTO curves (cell_id, epoch, train_loss, val_loss, "
                             "val_metric) VALUES (?, ?, ?, ?, ?)",
                             [(cid, *r) for r in cell.curves])
        self.con.executemany("INSERT INTO artifacts (cell_id, name, value) VALUES (?, ?, ?)",
                             [(cid, *a) for a in cell.artifacts])
        self.kept[cid] = cell

    def add(self, cell: _Cell) -> None:
        cid = cell.row["cell_id"]
        kept = self.kept.get(cid)
        if kept is None:
            self.insert(cell)
            self._count(cell.source)
        elif kept.failed and not cell.failed:
            self.con.execute("DELETE FROM cells WHERE cell_id = ?", (cid,))  # cascades
            self.insert(cell)
            self._count(kept.source, -1)
            self._count(cell.source)
            self.summary.failed_replaced += 1
        elif cell.failed:
            self.summary.failed_dropped += 1
        elif cell.digest == kept.digest:
            self.summary.identical += 1
        else:
            self.conflict(cell, kept)

    def _count(self, source: str, n: int = 1) -> None:
        self.summary.added[source] = self.summary.added.get(source, 0) + n

    def conflict(self, cell: _Cell, kept: _Cell) -> None:
        from regbench.provenance import now

        cid, digest = cell.row["cell_id"], cell.digest
        if (cid, digest) in self.conflict_keys:
            self.summary.identical += 1
            return
        differs = _differs(kept, cell)
        self._insert_conflict({
            "cell_id": cid, "digest": digest, "source": cell.source,
            "kept_source": kept.source, "hostname": cell.row.get("hostname"),
            "cpu_model": cell.row.get("cpu_model"), "differs": ", ".join(differs),
            "row_json": json.dumps(cell.row, sort_keys=True),
            "curves_json": json.dumps(cell.curves), "artifacts_json": json.dumps(cell.artifacts),
            "merged_at": now()})
        self.summary.conflicts.append(Conflict(cid, describe(cell.row), kept.source, kept.host,
                                               cell.source, cell.host, differs))

    def _insert_conflict(self, values: dict[str, Any]) -> None:
        self.con.execute(insert_sql("conflicts", CONFLICT_COLUMNS),
                         [values[c] for c in CONFLICT_COLUMNS])
        self.conflict_keys.add((values["cell_id"], values["digest"]))

    def carry_conflict(self, values: dict[str, Any]) -> None:
        """An input's own conflict: kept unless it is the result kept now, or known."""
        key = (values["cell_id"], values["digest"])
        kept = self.kept.get(values["cell_id"])
        if kept is None or kept.digest == key[1] or key in self.conflict_keys:
            return
        self._insert_conflict(values)
        row = json.loads(values["row_json"])
        self.summary.conflicts.append(Conflict(
            values["cell_id"], describe(row), kept.source, kept.host, values["source"],
            machine(row.get("hostname"), row.get("cpu_model")), values["differs"].split(", ")))

    def bench(self, con: sqlite3.Connection) -> None:
        have = [r[1] for r in con.execute("PRAGMA table_info(bench)") if r[1] in BENCH_COLUMNS]
        cols = list(BENCH_COLUMNS)
        for values in con.execute(f"SELECT {', '.join(have)} FROM bench ORDER BY id"):
            row = dict(zip(have, values))
            key = tuple(_canon(row.get(c)) for c in cols)
            if key in self.bench_rows:
                continue
            self.bench_rows.add(key)
            self.con.execute(insert_sql("bench", cols), [row.get(c) for c in cols])
            self.summary.bench += 1


def merge(sources: list[str | Path], into: str | Path, force: bool = False,
          log: Callable[[str], None] = lambda line: None) -> MergeSummary:
    """Merge the stores `sources` (in order: the first one's row of a cell is kept) into a
    new store `into`; with `force` an existing `into` is replaced. Checked first
    (`check_inputs`); written to a temporary file beside `into`, renamed at the end."""
    paths, target = [Path(s) for s in sources], Path(into)
    check_inputs(paths, target, force)
    summary = MergeSummary(target)
    try:
        with replacing(target, suffix=".merging") as tmp:
            try:
                with Store(tmp, log=log) as store:
                    out = _Target(store, summary)
                    with store.transaction():
                        for src in paths:
                            summary.added.setdefault(str(src), 0)
                            with _reading(src) as con:
                                for cell in _cells(con, str(src)):
                                    out.add(cell)
                                for values in _stored_conflicts(con):
                                    out.carry_conflict(values)
                                out.bench(con)
            finally:
                for extra in (wal_file(tmp), shm_file(tmp)):
                    extra.unlink(missing_ok=True)  # closed: everything is in the file
            wal_file(target).unlink(missing_ok=True)  # empty (checked), or the next open
            # would apply it to the new file
    except sqlite3.Error as exc:
        raise StoreError(sqlite_line(exc, target)) from None
    return summary
