"""`regbench check`: is a store intact and complete? Read-only unless asked to repair.

Reports SQLite's integrity check, curve and artifact rows whose cell is gone
(orphans), cells of other suite versions (counted, never deleted), failed cells,
stale leases (their driver died: executors/leases.py), and cells a plugin entry made
with other source code than the plugin loaded now under the same version (counted,
never deleted). Healthy means none of these. Conflicts (a cell's second result from
another machine, kept by `regbench merge`) are listed; they are results, not damage.
`repair` deletes orphans and stale leases only, in one transaction, and then checks
again; a store that fails the integrity check is never written to.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from regbench.errors import StoreError
from regbench.plugins import ChangedCode
from regbench.store.db import (
    Store,
    connect_ro,
    empty_file,
    inspect,
    suite_version_counts,
    table_names,
    wal_file,
)
from regbench.store.merge import Conflict, describe, machine
from regbench.store.schema import SCHEMA_VERSION

SQLITE_MAGIC = b"SQLite format 3\x00"
MAX_INTEGRITY_LINES = 10

# table -> rows whose cell is gone (ON DELETE CASCADE prevents them unless a connection
# without foreign keys, e.g. the sqlite3 shell, deleted cells, or the file was patched)
# the rows, by kind, whose cell is gone, and the table each kind is in
_ORPHAN_TABLES = {"curve": "curves", "artifact": "artifacts", "conflict": "conflicts"}
_ORPHANS = {kind: f"FROM {table} WHERE cell_id NOT IN (SELECT cell_id FROM cells)"
            for kind, table in _ORPHAN_TABLES.items()}
MAX_CONFLICT_LINES = 10


@dataclass
class StaleLease:
    cell_id: str
    driver: str
    host: str
    pid: int
    expires_at: float


@dataclass
class CheckReport:
    """What `check_store` found; `problems()` is empty for a healthy store."""

    path: Path
    schema_version: int | None = None
    integrity: list[str] = field(default_factory=lambda: ["ok"])
    statuses: dict[str, int] = field(default_factory=dict)
    orphans: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_ORPHANS, 0))
    suite_version: str = ""
    other_suites: dict[str, int] = field(default_factory=dict)
    live_leases: int = 0
    stale_leases: list[StaleLease] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    readable: bool = True  # False: the cells could not be counted (a damaged file)
    wal_bytes: int = 0  # size of the -wal file beside the store when checked
    changed_plugins: list[ChangedCode] = field(default_factory=list)
    unloaded_plugins: dict[str, int] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)  # second results (merge)

    @property
    def intact(self) -> bool:
        return self.integrity == ["ok"]

    def problems(self) -> list[str]:
        """One phrase per problem, with what to do about it."""
        out = []
        if not self.intact:
            out.append("the SQLite integrity check failed (restore a copy, or try "
                       "`sqlite3 STORE .recover`)")
        for table, n in self.orphans.items():
            if n:
                out.append(f"{n} orphan {table} row(s) (regbench check --repair removes them)")
        if self.other_suites:
            n = sum(self.other_suites.values())
            versions = ", ".join(repr(v) for v in sorted(self.other_suites))
            out.append(f"{n} cell(s) of suite version {versions}, not this regbench's "
                       f"{self.suite_version!r} (kept; use a new --store for new runs)")
        failed = self.statuses.get("failed", 0)
        if failed:
            out.append(f"{failed} failed cell(s) (rerun them: regbench run --retry-failed)")
        if self.stale_leases:
            out.append(f"{len(self.stale_leases)} stale lease(s) of dead drivers (the next run "
                       f"takes them over; regbench check --repair removes them)")
        out += [c.line() for c in self.changed_plugins]
        return out

    def lines(self) -> list[str]:
        total = sum(self.statuses.values())
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.statuses.items()))
        version = "?" if self.schema_version is None else str(self.schema_version)
        if self.readable:
            cells = f"{total} cell(s)" + (f" ({counts})" if counts else "")
        else:
            cells = "cells not countable (the file is damaged)"
        out = [f"store {self.path}: schema version {version}, {cells}"]
        if self.schema_version is not None and self.schema_version < SCHEMA_VERSION:
            out.append(f"  schema {self.schema_version} is upgraded to {SCHEMA_VERSION} the next "
                       f"time regbench opens the store (after a backup copy)")
        out.append("  integrity: " + "; ".join(self.integrity[:MAX_INTEGRITY_LINES]))
        if self.wal_bytes:
            wal = wal_file(self.path).name
            out.append(f"  wal: {wal} holds {self.wal_bytes} bytes, possibly not yet in the "
                       f"store file (a driver is running, or one stopped without closing the "
                       f"store): copy {wal} and {self.path.name}-shm along with the store; "
                       f"the next `regbench run` folds them in")
        else:
            out.append("  wal: empty (everything is in the store file)")
        for table, n in self.orphans.items():
            out.append(f"  orphan {table} rows: {n}")
        other = sum(self.other_suites.values())
        out.append(f"  cells of other suite versions: {other} (this regbench: suite version "
                   f"{self.suite_version!r})")
        out.append(f"  failed cells: {self.statuses.get('failed', 0)}")
        out.append(f"  leases: {self.live_leases} live, {len(self.stale_leases)} stale")
        for s in self.stale_leases[:5]:
            out.append(f"    stale: cell {s.cell_id} held by {s.host}:{s.pid}")
        for c in self.changed_plugins:
            out.append(f"  changed plugin code: {c.line()}")
        for entry, n in self.unloaded_plugins.items():
            out.append(f"  plugin {entry} is not loaded: {n} stored cell(s) not compared with "
                       f"its code (pass --plugin)")
        out += self.conflict_lines()
        out += [f"  repaired: {r}" for r in self.repaired]
        problems = self.problems()
        out.append("not healthy: " + "; ".join(problems) if problems else "healthy")
        return out

    def conflict_lines(self) -> list[str]:
        """The cells `regbench merge` found a second result of (listed, not a problem)."""
        if not self.conflicts:
            return []
        out = [f"  conflicts: {len(self.conflicts)} second result(s) from other machines, kept "
               f"beside the first (the report uses the first)"]
        out += [f"    {c.line()}" for c in self.conflicts[:MAX_CONFLICT_LINES]]
        if len(self.conflicts) > MAX_CONFLICT_LINES:
            out.append(f"    ... and {len(self.conflicts) - MAX_CONFLICT_LINES} more")
        return out


def read_conflicts(con: sqlite3.Connection) -> list[Conflict]:
    """The `conflicts` rows with their kept cell (none in a store before schema 5)."""
    if "conflicts" not in table_names(con):
        return []
    out = []
    for row in con.execute(
            "SELECT c.cell_id, c.source, c.kept_source, c.hostname, c.cpu_model, c.differs, "
            "k.hostname, k.cpu_model, k.cell_json, k.task, k.regularizer "
            "FROM conflicts c JOIN cells k USING (cell_id) ORDER BY c.rowid"):
        cid, source, kept_source, host, cpu, differs, khost, kcpu, cell_json, task, reg = row
        out.append(Conflict(
            cid, describe({"cell_json": cell_json, "task": task, "regularizer": reg}),
            kept_source, machine(khost, kcpu), source, machine(host, cpu), differs.split(", ")))
    return out


def _read(con: sqlite3.Connection, report: CheckReport) -> None:
    from regbench.executors.leases import is_stale

    report.statuses = dict(con.execute("SELECT status, COUNT(*) FROM cells GROUP BY status"))
    tables = table_names(con)
    for kind, where in _ORPHANS.items():
        if _ORPHAN_TABLES[kind] in tables:
            report.orphans[kind] = con.execute(f"SELECT COUNT(*) {where}").fetchone()[0]
    report.other_suites = {v: n for v, n in suite_version_counts(con).items()
                           if v != report.suite_version}
    report.conflicts = read_conflicts(con)
    columns = {r[1] for r in con.execute("PRAGMA table_info(cells)")}
    if "plugin_code" in columns:  # schema 3
        from regbench import plugins

        codes = [r[0] for r in con.execute(
            "SELECT plugin_code FROM cells WHERE plugin_code IS NOT NULL")]
        report.changed_plugins = plugins.changed_code(codes)
        report.unloaded_plugins = plugins.not_loaded(codes)
    if "leases" in tables:  # schema 1 has none
        for row in con.execute("SELECT cell_id, driver, host, pid, expires_at FROM leases"):
            lease = StaleLease(*row)
            if is_stale(lease.host, lease.pid, lease.expires_at):
                report.stale_leases.append(lease)
            else:
                report.live_leases += 1


def _inspect(path: Path) -> CheckReport:
    from regbench.specs import SUITE_VERSION

    report = CheckReport(path, suite_version=SUITE_VERSION)
    wal = wal_file(path)
    report.wal_bytes = wal.stat().st_size if wal.exists() else 0
    try:
        con = connect_ro(path)
    except sqlite3.DatabaseError as exc:
        if not isinstance(exc, sqlite3.OperationalError):  # SQLITE_CORRUPT, SQLITE_NOTADB
            report.integrity, report.readable = [f"{exc}"], False
            return report
        raise StoreError(f"cannot open {path} read-only ({exc}); nothing was checked. "
                         f"Is it readable by this user?") from None
    try:
        try:
            rows = con.execute("PRAGMA integrity_check").fetchall()
            report.integrity = [r[0] for r in rows] or ["ok"]
        except sqlite3.DatabaseError as exc:
            report.integrity = [f"{exc}"]
        if not report.intact:
            _count_damaged(con, report)
            return report
        report.schema_version = inspect(path, verify=False)
        if report.schema_version is not None:
            _read(con, report)
    except sqlite3.DatabaseError as exc:
        report.integrity = [f"{exc}"]
        _count_damaged(con, report)
    finally:
        con.close()
    return report


def _count_damaged(con: sqlite3.Connection, report: CheckReport) -> None:
    """What can still be read of a store that fails the integrity check: its schema version
    and cell count by status (unknown if even that cannot be read)."""
    try:
        meta = dict(con.execute("SELECT key, value FROM meta"))
        report.schema_version = int(meta["schema_version"])
    except (sqlite3.Error, KeyError, ValueError):
        report.schema_version = None
    try:
        report.statuses = dict(con.execute(
            "SELECT status, COUNT(*) FROM cells GROUP BY status"))
        report.readable = True
    except sqlite3.Error:
        report.statuses, report.readable = {}, False


def _repair(path: Path, stale: list[StaleLease]) -> list[str]:
    """Delete orphans and the stale leases seen (unless renewed since) in one transaction."""
    done = []
    with Store(path) as store, store.transaction():
        for table, where in _ORPHANS.items():  # the store is current: every table exists
            n = store.con.execute(f"DELETE {where}").rowcount
            if n:
                done.append(f"removed {n} orphan {table} row(s)")
        n = sum(store.con.execute(
            "DELETE FROM leases WHERE cell_id = ? AND driver = ? AND expires_at = ?",
            (s.cell_id, s.driver, s.expires_at)).rowcount for s in stale)
        if n:
            done.append(f"removed {n} stale lease(s)")
    return done


def check_store(path: str | Path, repair: bool = False) -> CheckReport:
    """Check the store at `path` (read-only); with `repair`, fix what can be fixed first."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"no store at {path}; pass --store PATH")
    with open(path, "rb") as f:
        head = f.read(len(SQLITE_MAGIC))
    if not head:
        raise StoreError(empty_file(path))
    if head != SQLITE_MAGIC:
        raise StoreError(f"{path} is not a regbench store (not an SQLite file); left untouched")
    report = _inspect(path)
    if not repair or not report.intact or report.schema_version is None:
        return report
    if any(report.orphans.values()) or report.stale_leases:
        repaired = _repair(path, report.stale_leases)
        report = _inspect(path)
        report.repaired = repaired
    return report
