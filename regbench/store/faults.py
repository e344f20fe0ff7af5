"""One line for each SQLite or OS fault that reaches the command line: the path, what
happened, and what to do about it (the CLI prints it and exits 2, without a traceback)."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path


def sqlite_line(exc: sqlite3.Error, path: str | Path | None) -> str:
    """`exc` (raised on the store at `path`, None if unknown) as one line with advice."""
    msg = str(exc) or type(exc).__name__
    low = msg.lower()
    if path is None:
        return f"SQLite error ({msg}); run `regbench check --store PATH` on the store in use"
    p = Path(path)
    check = f"run `regbench check --store {p}`"
    if "disk is full" in low:
        return (f"store {p}: the disk is full ({msg}); free space on the disk holding "
                f"{p.parent} and rerun: cells committed so far are kept, the rest run then")
    if "disk i/o error" in low:
        return (f"store {p}: disk I/O error ({msg}): its {p.name}-wal or {p.name}-shm file was "
                f"removed, or the disk failed, while regbench used it; {check}, then rerun")
    if "readonly database" in low or "unable to open" in low:
        return (f"cannot write store {p} ({msg}): SQLite must write the file and create "
                f"{p.name}-wal and {p.name}-shm beside it in {p.parent}; make that folder "
                f"writable or pass --store in a writable folder")
    if "malformed" in low or "not a database" in low:
        return f"store {p} is damaged ({msg}); {check}"
    if "locked" in low or "busy" in low:
        return (f"store {p} is locked by another process ({msg}); wait for it to finish, "
                f"or stop it, and rerun")
    return f"store {p}: SQLite error ({msg}); {check}"


def os_line(exc: OSError) -> str:
    """An OS error (disk full, permission denied, ...) as one line naming the file."""
    what = exc.strerror or str(exc)
    name = exc.filename if exc.filename is not None else "(unknown file)"
    if exc.errno == errno.ENOSPC:
        advice = "free space on that disk and rerun"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        advice = "make it accessible to this user, or choose a path in a writable folder"
    else:
        advice = "check the path and rerun"
    return f"{name}: {what}; {advice}"
