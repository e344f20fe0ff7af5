"""The SQLite results store: WAL mode, a schema version, one transaction per cell.

A run killed at any moment (even SIGKILL) loses no committed cell and leaves no
partial row: a cell's row, curves and artifacts are written in one transaction.
`cell_id` is the primary key, so a cell can never have two rows.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from regbench.errors import StoreError
from regbench.specs import CellResult
from regbench.store import migrations
from regbench.store.schema import (
    APPLICATION,
    BENCH_COLUMNS,
    CELL_COLUMNS,
    DDL,
    DEFAULT_STORE,
    PUBLIC_COLUMNS,
    SCHEMA_VERSION,
)


def inspect(path: Path) -> int | None:
    """The schema version of the store at `path` (None: an empty SQLite file), read
    without writing anything; a file that is not a regbench store is refused."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            query = "SELECT name FROM sqlite_master WHERE type='table'"
            tables = {r[0] for r in con.execute(query)}
            if not tables:
                return None  # an empty SQLite file: fine to initialise
            if "meta" not in tables:
                raise StoreError(f"{path} is an SQLite file but not a regbench store "
                                 f"(tables: {', '.join(sorted(tables))}); left untouched")
            meta = dict(con.execute("SELECT key, value FROM meta"))
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a regbench store ({exc}); left untouched") from None
    if meta.get("application") != APPLICATION:
        raise StoreError(f"{path} is not a regbench store (no application marker); left untouched")
    try:
        version = int(meta.get("schema_version", "0"))
    except ValueError:
        version = 0
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path} has store schema version {version}, newer than this regbench "
                         f"understands ({SCHEMA_VERSION}); upgrade regbench. Left untouched")
    if version < 1:
        raise StoreError(f"{path} is a regbench store without a valid schema version "
                         f"({meta.get('schema_version')!r}); left untouched")
    return version


def _stderr(line: str) -> None:
    print(f"regbench: {line}", file=sys.stderr)


class Store:
    """A results store at `path` (created with its parent folder if missing).

    A store of an older schema is upgraded in place first (`migrations.py`: one
    transaction, after a backup copy beside it); `log` gets the one-line notice.
    """

    def __init__(self, path: str | Path = DEFAULT_STORE, log: Callable[[str], None] = _stderr):
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(f"store path {self.path} is a directory; give a file path")
        if self.path.exists() and self.path.stat().st_size > 0:
            version = inspect(self.path)
            if version is not None and version < SCHEMA_VERSION:
                migrations.upgrade(self.path, log)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=NORMAL")
        self.con.execute("PRAGMA foreign_keys=ON")
        with self.transaction():
            for ddl in DDL:
                self.con.execute(ddl)
            self.con.execute("INSERT OR IGNORE INTO meta VALUES ('application', ?)", (APPLICATION,))
            self.con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                             (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> _Transaction:
        return _Transaction(self.con)

    # -- cells ------------------------------------------------------------------------
    def done_ids(self, retry_failed: bool = False) -> set[str]:
        """Ids of stored cells (with `retry_failed`, the failed ones do not count as done)."""
        where = " WHERE status != 'failed'" if retry_failed else ""
        return {r[0] for r in self.con.execute(f"SELECT cell_id FROM cells{where}")}

    def add(self, result: CellResult, replace: bool = False, lease: str | None = None) -> bool:
        """Commit one cell (row, curves, artifacts) atomically; False if already stored.

        `lease`: the id of the driver whose lease on this cell is dropped in the same
        transaction (executors/leases.py), so no moment has both or neither."""
        row = {k: v for k, v in result.row().items() if k in CELL_COLUMNS}
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self.transaction():
            if lease is not None:
                self.con.execute("DELETE FROM leases WHERE cell_id = ? AND driver = ?",
                                 (row["cell_id"], lease))
            if replace:
                self.con.execute("DELETE FROM cells WHERE cell_id = ?", (row["cell_id"],))
            cur = self.con.execute(f"INSERT OR IGNORE INTO cells ({cols}) VALUES ({marks})",
                                   [_sql(v) for v in row.values()])
            if cur.rowcount == 0:
                return False
            self.con.executemany(
                "INSERT INTO curves (cell_id, epoch, train_loss, val_loss, val_metric) "
                "VALUES (?, ?, ?, ?, ?)",
                [(row["cell_id"], c["epoch"], c.get("train_loss"), c.get("val_loss"),
                  c.get("val_metric")) for c in result.curves])
            self.con.executemany(
                "INSERT INTO artifacts VALUES (?, ?, ?)",
                [(row["cell_id"], k, json.dumps(v)) for k, v in result.artifacts.items()])
        return True

    def check_suite_versions(self, versions: Iterable[str]) -> None:
        """Refuse to add cells of `versions` to a store that holds cells of another version."""
        wanted = set(versions)
        held = dict(self.con.execute(
            "SELECT suite_version, COUNT(*) FROM cells GROUP BY suite_version"))
        other = {v: n for v, n in held.items() if v not in wanted}
        if other:
            have = ", ".join(f"{n} cells of suite version {v!r}" for v, n in sorted(other.items()))
            raise StoreError(
                f"store {self.path} holds {have}, but this run is suite version "
                f"{', '.join(repr(v) for v in sorted(wanted))}; one store never mixes suite "
                f"versions: pass a new --store (or move the old one away)")

    def frame(self, columns: list[str] | None = None) -> pd.DataFrame:
        """All cells as a tidy frame, one row per cell, sorted for stable output."""
        cols = columns or PUBLIC_COLUMNS
        df = pd.read_sql_query(f"SELECT {', '.join(cols)} FROM cells", self.con)
        keys = [c for c in ("task", "arch", "regularizer", "strength", "seed", "cell_id")
                if c in df.columns]
        return df.sort_values(keys, kind="stable").reset_index(drop=True)

    def cells_frame(self) -> pd.DataFrame:
        """Every stored column (parameters, provenance, errors) of every cell."""
        return self.frame(list(CELL_COLUMNS))

    def _ids_table(self, cell_ids: Iterable[str]) -> str:
        """Load ids into a temporary table so filters run in SQL, not in Python."""
        self.con.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (cell_id TEXT PRIMARY KEY)")
        self.con.execute("DELETE FROM wanted")
        self.con.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", ((i,) for i in cell_ids))
        return "AND cell_id IN (SELECT cell_id FROM wanted)"

    def curves(self, cell_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """Per-epoch rows (train/val loss, val metric), optionally of some cells only."""
        where = "" if cell_ids is None else self._ids_table(cell_ids)
        return pd.read_sql_query(
            f"SELECT * FROM curves WHERE 1 {where} ORDER BY cell_id, epoch", self.con)

    def artifacts(self, name: str, cell_ids: Iterable[str] | None = None) -> dict[str, Any]:
        """{cell_id: value} of one artifact kind (predictions, params_before, ...)."""
        where = "" if cell_ids is None else self._ids_table(cell_ids)
        rows = self.con.execute(
            f"SELECT cell_id, value FROM artifacts WHERE name = ? {where} ORDER BY cell_id",
            (name,))
        return {cid: json.loads(v) for cid, v in rows}

    # -- kernel benchmarks ------------------------------------------------------------------
    def add_bench(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append benchmark rows (keys from BENCH_COLUMNS) in one transaction."""
        from regbench.provenance import git_commit, now
        from regbench.specs import SUITE_VERSION

        rows = list(rows)
        for r in rows:
            unknown = set(r) - set(BENCH_COLUMNS)
            if unknown:
                raise StoreError(f"unknown bench column(s) {sorted(unknown)}; "
                                 f"valid choices: {', '.join(BENCH_COLUMNS)}")
        defaults = {"suite_version": SUITE_VERSION, "git_commit": git_commit(), "created_at": now()}
        cols = list(BENCH_COLUMNS)
        with self.transaction():
            self.con.executemany(
                f"INSERT INTO bench ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                [[_sql({**defaults, **r}.get(c)) for c in cols] for r in rows])
        return len(rows)

    def bench_frame(self) -> pd.DataFrame:
        df = pd.read_sql_query("SELECT * FROM bench ORDER BY id", self.con)
        return df


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""

    def __init__(self, con: sqlite3.Connection):
        self.con = con

    def __enter__(self) -> None:
        self.con.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.con.execute("ROLLBACK" if exc_type else "COMMIT")


def _sql(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float) and value != value:  # NaN is stored as NULL
        return None
    return value
