"""Cell leases: two drivers on one store share the work instead of doing it twice.

A driver (one `run_cells` call) claims a cell in the store's `leases` table before
it hands the cell to its executor: a row with the driver's random id, host and pid
and an expiry that a background thread renews every `ttl / 3` seconds while the
driver lives. The claim is one write transaction that first checks the `cells`
table, so a cell another driver has committed meanwhile is never claimed. The
lease is dropped in the transaction that commits the cell's row (`Store.add`), and
every lease the driver still holds is dropped when it stops (error, Ctrl-C).

Another driver skips a cell with a live lease and comes back to it once it has run
out of other work. A lease is stale, and taken over, when it expired (its driver
died or hangs: on another host this is the only sign) or when its host is this host
and its pid is gone (a SIGKILLed driver on the same machine is seen at once).

A driver that is merely paused past its expiry (Ctrl-Z, a frozen VM) loses its
cells to the others; if it resumes, the store's primary key still keeps one row.

`REGBENCH_LEASE_TTL_S` (default 120) and `REGBENCH_LEASE_POLL_S` (default 5: how
often a driver with nothing else to do re-checks the cells others hold) override the
defaults; tests use short ones.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from regbench.errors import RegbenchError
from regbench.specs import Cell

LEASE_TTL_S = 120.0
LEASE_POLL_S = 5.0
TTL_ENV, POLL_ENV = "REGBENCH_LEASE_TTL_S", "REGBENCH_LEASE_POLL_S"


def _seconds(value: float | None, env: str, default: float) -> float:
    if value is None:
        text = os.environ.get(env)
        if text is None:
            return default
        try:
            value = float(text)
        except ValueError:
            raise RegbenchError(f"${env} must be a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise RegbenchError(f"lease time ({env}) must be a finite number of seconds > 0, "
                            f"got {value}")
    return float(value)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this host (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def is_stale(host: str, pid: int, expires_at: float, at: float | None = None,
             this_host: str | None = None) -> bool:
    """A lease is stale when it expired, or its driver's process on this host is gone."""
    at = time.time() if at is None else at
    this_host = socket.gethostname() if this_host is None else this_host
    return expires_at < at or (host == this_host and not pid_alive(pid))


@dataclass
class Claims:
    """What a driver's claiming found, for the run summary."""

    elsewhere: int = 0  # cells another driver committed while this one ran
    taken_over: list[str] = field(default_factory=list)  # "cell from host:pid"


class Leases:
    """One driver's leases on the store at `path`; a context manager that renews them
    in a thread and drops what is left on exit.

    `claim_all(cells, con)` yields the cells this driver won, lazily (an executor pulls
    one when it has a free slot); `wait(con)` then blocks until the cells other drivers
    held are committed (returns []) or some of their leases go stale (returns those,
    claimed). `con` is the caller's store connection: claims and commits share it.
    """

    def __init__(self, path: str | Path, ttl: float | None = None, poll: float | None = None,
                 redo: bool = False, retry_failed: bool = False):
        self.path = Path(path)
        self.ttl = _seconds(ttl, TTL_ENV, LEASE_TTL_S)
        self.poll = _seconds(poll, POLL_ENV, LEASE_POLL_S)
        self.redo, self.retry_failed = redo, retry_failed
        self.driver = uuid.uuid4().hex
        self.host, self.pid = socket.gethostname(), os.getpid()
        from regbench.provenance import now  # (imports torch: not at module import)

        self._now = now
        self.started_at = now()
        self.claims = Claims()
        self._busy: dict[str, Cell] = {}  # cells another live driver held when last tried
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifetime ---------------------------------------------------------------------
    def __enter__(self) -> Leases:
        self._thread = threading.Thread(target=self._renew_loop, name="regbench-leases",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        con = sqlite3.connect(self.path, timeout=60)
        try:
            with con:
                con.execute("DELETE FROM leases WHERE driver = ?", (self.driver,))
        finally:
            con.close()

    def _renew_loop(self) -> None:
        con = sqlite3.connect(self.path, timeout=self.ttl, isolation_level=None)
        try:
            while not self._stop.wait(self.ttl / 3):
                try:
                    con.execute("UPDATE leases SET expires_at = ? WHERE driver = ?",
                                (time.time() + self.ttl, self.driver))
                except sqlite3.Error:
                    pass  # store busy past the timeout: the next tick tries again
        finally:
            con.close()

    # -- claiming ---------------------------------------------------------------------
    def claim(self, cell: Cell, con: sqlite3.Connection) -> str:
        """Try to lease `cell`: "claimed", "done" (stored, nothing to do) or "busy"
        (another live driver holds it)."""
        seen_busy = cell.cell_id in self._busy
        con.execute("BEGIN IMMEDIATE")
        try:
            state = self._claim(cell.cell_id, con, seen_busy)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        if state == "busy":
            self._busy[cell.cell_id] = cell
        else:
            self._busy.pop(cell.cell_id, None)
            if state == "done":  # not done when the run began: another driver did it
                self.claims.elsewhere += 1
        return state

    def _claim(self, cell_id: str, con: sqlite3.Connection, seen_busy: bool) -> str:
        row = con.execute("SELECT status, started_at FROM cells WHERE cell_id = ?",
                          (cell_id,)).fetchone()
        if row is not None:
            status, started = row
            rerun = self.redo or (self.retry_failed and status == "failed")
            # A row another driver wrote during this run is done, whatever the flags say.
            fresh = seen_busy or (started is not None and started >= self.started_at)
            if fresh or not rerun:
                return "done"
        lease = con.execute("SELECT driver, host, pid, expires_at FROM leases WHERE cell_id = ?",
                            (cell_id,)).fetchone()
        if lease is not None and lease[0] != self.driver:
            driver, host, pid, expires = lease
            if not is_stale(host, pid, expires, this_host=self.host):
                return "busy"
            self.claims.taken_over.append(f"{cell_id} from {host}:{pid}")
        con.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?)",
                    (cell_id, self.driver, self.host, self.pid, self._now(),
                     time.time() + self.ttl))
        return "claimed"

    def claim_all(self, cells: Iterable[Cell], con: sqlite3.Connection) -> Iterator[Cell]:
        """The cells of `cells` this driver wins, claimed one at a time as pulled
        (`cells`: ones that were not done when the run began)."""
        for cell in cells:
            if self.claim(cell, con) == "claimed":
                yield cell

    def wait(self, con: sqlite3.Connection) -> list[Cell]:
        """Block until the cells others held are done ([]) or some are claimable (them)."""
        while self._busy:
            won = [c for c in list(self._busy.values()) if self.claim(c, con) == "claimed"]
            if won:
                return won
            if self._busy:
                self._stop.wait(self.poll)
        return []

    @property
    def waiting(self) -> int:
        """Cells held by other drivers that this driver still waits for."""
        return len(self._busy)
