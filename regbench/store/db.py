"""The SQLite results store: WAL mode, a schema version, one transaction per cell.

A run killed at any moment (even SIGKILL) loses no committed cell and leaves no
partial row: a cell's row, curves and artifacts are written in one transaction.
`cell_id` is the primary key, so a cell can never have two rows.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from regbench.errors import StoreError
from regbench.specs import CellResult
from regbench.store import migrations
from regbench.store.faults import sqlite_line
from regbench.store.schema import (
    APPLICATION,
    BENCH_COLUMNS,
    CELL_COLUMNS,
    DDL,
    DEFAULT_STORE,
    PUBLIC_COLUMNS,
    SCHEMA_VERSION,
)


def uri(path: str | Path, **params: str) -> str:
    """An SQLite URI naming exactly the file `path`: percent-quoted, so that `#`, `?`, `%`,
    spaces and non-ASCII characters in the name are part of the file name."""
    quoted = urllib.parse.quote(os.fsencode(Path(path).absolute()), safe="/")
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"file:{quoted}" + (f"?{query}" if query else "")


def wal_file(path: str | Path) -> Path:
    """The WAL file SQLite keeps beside the store (`results.sqlite-wal`)."""
    p = Path(path)
    return p.with_name(p.name + "-wal")


def shm_file(path: str | Path) -> Path:
    """The shared-memory index SQLite keeps beside a WAL store (`results.sqlite-shm`)."""
    p = Path(path)
    return p.with_name(p.name + "-shm")


def connect_ro(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to the existing file `path`: never creates or writes a file.

    Opening a WAL-mode store, even read-only, makes SQLite create its `-wal` and `-shm`
    files, and a reader cannot remove them again. So a store whose data is all in the main
    file (no `-wal`, or an empty one without `-shm`: no connection has it open) is read
    `immutable=1`, which touches nothing beside it. A store with a `-wal` and `-shm` (a
    driver has it open, or one stopped without closing it) is read through them; in a
    folder this user cannot write, such a store with an empty `-wal` is read immutable too.
    Anything else raises `sqlite3.Error`."""
    wal, shm = wal_file(path), shm_file(path)
    wal_bytes = wal.stat().st_size if wal.exists() else 0
    if not wal.exists() or (wal_bytes == 0 and not shm.exists()):
        return _connect_immutable(path)
    con = sqlite3.connect(uri(path, mode="ro"), uri=True)
    try:
        con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return con
    except sqlite3.OperationalError as exc:
        con.close()
        low = str(exc).lower()
        if "readonly" not in low and "unable to open" not in low:
            raise
        if wal_bytes > 0:
            raise StoreError(f"cannot read store {path} ({exc}): {wal.name} holds data not yet "
                             f"in the store file, and SQLite cannot create {Path(path).name}-shm "
                             f"in {Path(path).parent}; make that folder writable, or copy the "
                             f"store with its -wal and -shm files to a writable folder") from None
    return _connect_immutable(path)


def _connect_immutable(path: str | Path) -> sqlite3.Connection:
    """`path` opened read-only as a file nothing else changes: no locks, no -wal or -shm."""
    con = sqlite3.connect(uri(path, mode="ro", immutable="1"), uri=True)
    try:
        con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except BaseException:
        con.close()
        raise
    return con


def quick_check(con: sqlite3.Connection) -> list[str]:
    """SQLite's `PRAGMA quick_check` (the integrity check without the index-content
    comparison: linear in the file size); [] if the file is intact."""
    try:
        rows = [r[0] for r in con.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    return [] if rows == ["ok"] else rows or ["no result"]


def damaged(path: str | Path, problems: list[str]) -> str:
    return (f"store {path} fails SQLite's integrity check (quick_check: {problems[0]}); "
            f"nothing was written. Run `regbench check --store {path}` for what to do")


def empty_file(path: str | Path) -> str:
    return (f"{path} is an empty file (0 bytes), not a regbench store yet; left untouched "
            f"(`regbench run --store {path}` makes it one)")


def table_names(con: sqlite3.Connection) -> set[str]:
    """The tables of the database `con` is open on (an older schema lacks some)."""
    return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def suite_version_counts(con: sqlite3.Connection) -> dict[str, int]:
    """{suite version: stored cells of it}."""
    return dict(con.execute("SELECT suite_version, COUNT(*) FROM cells GROUP BY suite_version"))


def insert_sql(table: str, columns: Iterable[str]) -> str:
    """`INSERT INTO table (a, b) VALUES (?, ?)` for `columns`, in their order."""
    cols = list(columns)
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"


def inspect(path: Path, verify: bool = True) -> int | None:
    """The schema version of the store at `path` (None: an empty SQLite file), read
    without writing anything; a file that is not a regbench store is refused, and with
    `verify` so is one that fails SQLite's quick check (a damaged store)."""
    try:
        con = connect_ro(path)
        try:
            problems = quick_check(con) if verify else []
            if problems:
                raise StoreError(damaged(path, problems))
            tables = table_names(con)
            if not tables:
                return None  # an empty SQLite file: fine to initialise
            if "meta" not in tables:
                raise StoreError(f"{path} is an SQLite file but not a regbench store "
                                 f"(tables: {', '.join(sorted(tables))}); left untouched")
            meta = dict(con.execute("SELECT key, value FROM meta"))
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        low = str(exc).lower()
        if "not a database" in low:
            raise StoreError(f"{path} is not a regbench store ({exc}); left untouched") from None
        if "malformed" in low:
            raise StoreError(damaged(path, [str(exc)])) from None
        raise StoreError(sqlite_line(exc, path)) from None
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
    transaction, after a backup copy beside it); `log` gets the one-line notice. A store
    that fails SQLite's quick check is refused before anything is written.

    `create=False` (readers: `show`, `report --no-run`): a missing or empty (0-byte) file
    is refused instead of made a store. `readonly=True` (implies `create=False`): after any
    upgrade, the connection is read-only, so reading works in a folder this user cannot
    write. `close()` checkpoints the WAL, so a closed store is one self-contained file.
    """

    def __init__(self, path: str | Path = DEFAULT_STORE, log: Callable[[str], None] = _stderr,
                 create: bool = True, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        if self.path.is_dir():
            raise StoreError(f"store path {self.path} is a directory; give a file path")
        size = self.path.stat().st_size if self.path.exists() else None
        if (readonly or not create) and not size:
            raise StoreError(empty_file(self.path) if size == 0 else
                             f"no store at {self.path}; run `regbench run` first or pass --store")
        version = None
        if size:
            version = inspect(self.path)
            if version is not None and version < SCHEMA_VERSION:
                try:
                    migrations.upgrade(self.path, log)
                except sqlite3.Error as exc:
                    raise StoreError(sqlite_line(exc, self.path)) from None
        if (readonly or not create) and version is None:
            raise StoreError(f"{self.path} is an empty SQLite file, not a regbench store yet; "
                             f"left untouched (`regbench run --store {self.path}` makes it one)")
        if readonly:
            try:
                self.con = connect_ro(self.path)
            except sqlite3.Error as exc:
                raise StoreError(sqlite_line(exc, self.path)) from None
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder {exc.filename} for store {self.path} "
                             f"({exc.strerror}); pass --store in a writable folder") from None
        try:
            self.con = sqlite3.connect(uri(self.path), uri=True, timeout=60,
                                       isolation_level=None)
            self.con.execute("PRAGMA journal_mode=WAL")
            self.con.execute("PRAGMA synchronous=NORMAL")
            self.con.execute("PRAGMA foreign_keys=ON")
            with self.transaction():
                for ddl in DDL:
                    self.con.execute(ddl)
                self.con.execute("INSERT OR IGNORE INTO meta VALUES ('application', ?)",
                                 (APPLICATION,))
                self.con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                                 (str(SCHEMA_VERSION),))
        except sqlite3.Error as exc:
            if hasattr(self, "con"):
                self.con.close()
            raise StoreError(sqlite_line(exc, self.path)) from None

    def close(self) -> None:
        """Checkpoint the WAL into the store file (and truncate it), then close: after a
        clean exit the store is one file. Another process still using the store keeps its
        part of the WAL; the last one to close folds it in."""
        if not self.readonly:
            try:
                self.con.execute("PRAGMA busy_timeout = 2000")
                self.con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error:
                pass  # the data is safe in the WAL; the next open folds it in
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
        held = suite_version_counts(self.con)
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
        df = _read_sql(f"SELECT {', '.join(cols)} FROM cells", self.con)
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
        return _read_sql(
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
            self.con.executemany(insert_sql("bench", cols),
                                 [[_sql({**defaults, **r}.get(c)) for c in cols] for r in rows])
        return len(rows)

    def bench_frame(self) -> pd.DataFrame:
        df = _read_sql("SELECT * FROM bench ORDER BY id", self.con)
        return df


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""

    def __init__(self, con: sqlite3.Connection):
        self.con = con

    def __enter__(self) -> None:
        self.con.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if not exc_type:
            self.con.execute("COMMIT")
        elif self.con.in_transaction:  # SQLite may have rolled back already (disk full)
            self.con.execute("ROLLBACK")


def _read_sql(query: str, con: sqlite3.Connection) -> pd.DataFrame:
    """`pd.read_sql_query`, raising SQLite's own error (pandas wraps it in its own class)."""
    try:
        return pd.read_sql_query(query, con)
    except pd.errors.DatabaseError as exc:
        if isinstance(exc.__cause__, sqlite3.Error):
            raise exc.__cause__ from None
        raise


def _sql(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float) and value != value:  # NaN is stored as NULL
        return None
    return value
