"""Where OpenML data is kept, whether it may be downloaded, and regbench's records of it.

- The cache folder: `--data-dir DIR` gives `DIR/openml`, else `$REGBENCH_DATA_DIR/openml`,
  else the `openml` package's own cache directory (its configuration file or
  `$OPENML_CACHE_DIR`). The client files its downloads under a folder per server, so a
  private server or a mirror (the `server` of the client's configuration) has its own.
- Offline: `--offline` or `REGBENCH_OFFLINE=1` forbids every download; what is cached is
  read, and what is missing is an error that names the fetch command.
- Records: after a task or dataset is fetched and its checksum verified, regbench writes
  what it learned (`task-<id>.json`: type, dataset, target; `data-<id>.json`: name,
  version, md5, licence, columns and the cached files) into `regbench/` beside the
  client's files. A record whose files are gone counts as not cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regbench.errors import DataError, RegbenchError
from regbench.tasks.datadir import DATA_DIR_ENV

OFFLINE_ENV = "REGBENCH_OFFLINE"
OFFLINE_VALUES = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False,
                  "": False}
SUBDIR = "openml"  # under --data-dir / $REGBENCH_DATA_DIR
RECORDS = "regbench"  # regbench's records, in the client's folder for the server
CHUNK = 1 << 22


@dataclass(frozen=True)
class Settings:
    """The command's `--data-dir` and `--offline` (None / False: the environment's)."""

    data_dir: Path | None = None
    offline: bool = False


_active: Settings | None = None


def env_offline() -> bool:
    """$REGBENCH_OFFLINE as a flag (1/true/yes or 0/false/no; unset is false)."""
    value = os.environ.get(OFFLINE_ENV, "").strip().lower()
    if value not in OFFLINE_VALUES:
        raise RegbenchError(f"{OFFLINE_ENV}={os.environ[OFFLINE_ENV]!r} is not allowed; "
                            f"allowed: one of {', '.join(repr(v) for v in OFFLINE_VALUES if v)}")
    return OFFLINE_VALUES[value]


def current() -> Settings:
    """The settings of the running command (`use`), else those of the environment."""
    if _active is not None:
        return _active
    return Settings(None, env_offline())


@contextlib.contextmanager
def use(data_dir: Path | str | None, offline: bool = False) -> Iterator[Settings]:
    """Within the block, `current()` is (data_dir, offline or $REGBENCH_OFFLINE)."""
    global _active
    before = _active
    _active = Settings(Path(data_dir) if data_dir else None, bool(offline) or env_offline())
    try:
        yield _active
    finally:
        _active = before


def cache_root(data_dir: Path | str | None) -> Path | None:
    """`data_dir`/openml, else $REGBENCH_DATA_DIR/openml, else None (the client's own)."""
    if data_dir:
        return Path(data_dir).expanduser() / SUBDIR
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser() / SUBDIR
    return None


_client_default: Path | None = None  # the client's cache directory before regbench set one


def configure(data_dir: Path | str | None) -> Path:
    """Point the `openml` client's cache at `cache_root(data_dir)` (or back at its own) and
    return the folder it files the configured server's downloads in."""
    import openml

    global _client_default
    if _client_default is None:
        _client_default = Path(openml.config.get_config_as_dict()["cachedir"])
    root = cache_root(data_dir)
    openml.config.set_root_cache_directory(root.absolute() if root is not None
                                           else _client_default)
    return Path(openml.config.get_cache_directory())


def server() -> str:
    """The OpenML server the client is configured for."""
    import openml

    return str(openml.config.server)


def check_writable(folder: Path) -> None:
    """Create `folder` if needed; a DataError naming it when it cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".regbench-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DataError(f"the OpenML cache {folder} is not writable ({exc.strerror or exc}); "
                        f"pass --data-dir DIR (or set {DATA_DIR_ENV}) to a folder you can "
                        "write, or fix its permissions") from None


def record_file(folder: Path, kind: str, ident: int) -> Path:
    """`folder/regbench/<kind>-<id>.json` (kind: task or data)."""
    return folder / RECORDS / f"{kind}-{ident}.json"


def read_record(folder: Path, kind: str, ident: int) -> dict[str, Any] | None:
    """The record of a fetched task or dataset, or None when there is none, it cannot be
    read, or one of the files it lists is gone."""
    path = record_file(folder, kind, ident)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    files = record.get("files", {})
    if not all((folder / rel).is_file() for rel in files.values()):
        return None
    return record


def write_record(folder: Path, kind: str, ident: int, record: dict[str, Any]) -> None:
    """Write a record atomically (a reader never sees half of one)."""
    path = record_file(folder, kind, ident)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def md5_file(path: Path) -> str:
    """The md5 hex digest of a file, read in chunks (OpenML publishes md5 checksums)."""
    h = hashlib.md5()  # noqa: S324 - the checksum OpenML publishes, not a security use
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()
