"""Where user-supplied data files live: --data-dir, else $REGBENCH_DATA_DIR."""

from __future__ import annotations

import os
from pathlib import Path

from regbench.errors import DataError

DATA_DIR_ENV = "REGBENCH_DATA_DIR"


def data_root(data_dir: Path | None, task: str, what: str) -> Path:
    """The folder to search: `data_dir`, else $REGBENCH_DATA_DIR; a DataError saying how to
    set it (and what the task needs, `what`) when neither is given."""
    if data_dir is not None:
        return Path(data_dir)
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV])
    raise DataError(f"task {task!r} needs {what}: pass --data-dir DIR (or set {DATA_DIR_ENV}) "
                    "pointing at the folder that holds it")
