"""A file a command writes (`show --out`, `merge --into`, `archive --out`): checked before
anything is written, then built beside its final name and renamed over it at the end, so
an interrupted command leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from regbench.errors import RegbenchError


def existing_folder(path: Path) -> Path:
    """The folder `path` will be in, or its nearest ancestor that exists."""
    folder = path.absolute().parent
    while not folder.exists():
        folder = folder.parent
    return folder


def check_writable(path: Path, flag: str, force: bool | None = None) -> None:
    """Refuse, naming `flag` and `path`, a target that is a folder, exists (when `force` is
    False; None allows replacing it), or whose folder this user cannot write."""
    if path.is_dir():
        raise RegbenchError(f"{flag} {path} is a directory; give a file path")
    if force is False and (path.exists() or path.is_symlink()):
        raise RegbenchError(f"{flag} {path} exists; pass --force to replace it, or name a "
                            f"new file")
    folder = existing_folder(path)
    if not folder.is_dir():
        raise RegbenchError(f"{flag} {path}: {folder} is not a folder; give a path in a "
                            f"folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RegbenchError(f"cannot write {flag} {path}: the folder {folder} is not "
                            f"writable by this user; choose a file in a writable folder")


@contextmanager
def replacing(path: Path, suffix: str = ".part") -> Iterator[Path]:
    """An empty temporary file beside `path` (its folder made if missing) to write; renamed
    over `path` when the block ends normally, removed when it raises."""
    folder = path.absolute().parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=folder)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; a plain file is not
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
