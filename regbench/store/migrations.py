"""Upgrade an older store in place: one transaction, after a backup copy beside it.

`MIGRATIONS[v]` takes a store of schema version v to v + 1. `upgrade` holds the
store's write lock from before the backup until the commit, so no other process
writes in between, and a step that fails rolls every step back: the store is left
exactly as it was (and the backup, then identical to it, is removed).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from regbench.errors import StoreError
from regbench.store.schema import (
    CELL_COLUMNS,
    CONFLICTS_DDL,
    LEASES_DDL,
    SCHEMA_VERSION,
    V3_COLUMNS,
    V4_COLUMNS,
)

Migration = Callable[[sqlite3.Connection], None]


def _v1_to_v2(con: sqlite3.Connection) -> None:
    """Schema 2 adds the leases table (two drivers on one store share the work)."""
    con.execute(LEASES_DDL)


def _v2_to_v3(con: sqlite3.Connection) -> None:
    """Schema 3 adds a cell's regularizer stack (base recipe, `with` list) and the plugin
    code that made it; older cells are single regularizers of built-in code."""
    for col in V3_COLUMNS:
        con.execute(f"ALTER TABLE cells ADD COLUMN {col} {CELL_COLUMNS[col]}")


def _v3_to_v4(con: sqlite3.Connection) -> None:
    """Schema 4 adds a cell's tuning study, trial and role; older cells are grid cells."""
    for col in V4_COLUMNS:
        con.execute(f"ALTER TABLE cells ADD COLUMN {col} {CELL_COLUMNS[col]}")


def _v4_to_v5(con: sqlite3.Connection) -> None:
    """Schema 5 adds the conflicts table (a cell's second result, kept by `regbench merge`);
    an older store has none."""
    con.execute(CONFLICTS_DDL)


MIGRATIONS: dict[int, Migration] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5}


def stored_version(con: sqlite3.Connection) -> int:
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def backup_path(path: Path, version: int) -> Path:
    """`results.sqlite.v1.bak`, or `.v1.bak.2`, `.v1.bak.3`... if that name is taken."""
    bak = path.with_name(f"{path.name}.v{version}.bak")
    n = 2
    while bak.exists():
        bak = path.with_name(f"{path.name}.v{version}.bak.{n}")
        n += 1
    return bak


def _copy(path: Path, dest: Path) -> None:
    """A consistent copy through SQLite (includes what is still in the WAL file), as one
    self-contained file (rollback journal, not WAL)."""
    src, dst = sqlite3.connect(path), sqlite3.connect(dest)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


def upgrade(path: Path, log: Callable[[str], None]) -> None:
    """Upgrade the store at `path` to SCHEMA_VERSION (a no-op if it already is)."""
    con = sqlite3.connect(path, timeout=60, isolation_level=None)
    bak: Path | None = None
    try:
        con.execute("BEGIN IMMEDIATE")  # the write lock: nobody writes until COMMIT
        version = stored_version(con)
        if version >= SCHEMA_VERSION:  # another process upgraded it meanwhile
            con.execute("ROLLBACK")
            return
        steps = range(version, SCHEMA_VERSION)
        missing = [v for v in steps if v not in MIGRATIONS]
        if missing:
            raise StoreError(f"{path} has store schema version {version} and this regbench has "
                             f"no upgrade from version {missing[0]}; left untouched")
        bak = backup_path(path, version)
        _copy(path, bak)
        for v in steps:
            MIGRATIONS[v](con)
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                    (str(SCHEMA_VERSION),))
        con.execute("COMMIT")
    except BaseException as exc:
        if con.in_transaction:
            con.execute("ROLLBACK")
        if bak is not None:
            bak.unlink(missing_ok=True)
        if isinstance(exc, StoreError) or not isinstance(exc, Exception):
            raise
        raise StoreError(f"upgrading {path} to store schema version {SCHEMA_VERSION} failed "
                         f"({type(exc).__name__}: {exc}); the store is left untouched") from exc
    finally:
        con.close()
    log(f"upgraded store {path} from schema version {version} to {SCHEMA_VERSION} "
        f"(backup of the old file: {bak})")
