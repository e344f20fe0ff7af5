"""Where cells run: `local.py` (this process or a process pool), `dask.py` (a Dask
cluster), and what they share: `base.py` (the registry and the driver loop
`run_cells`) and `leases.py` (drivers on one store share the work).
"""

from regbench.executors.base import (
    EXECUTORS,
    Interrupted,
    RunSummary,
    finish,
    make_executor,
    preflight,
    run_cells,
)
from regbench.executors.leases import Leases

__all__ = ["EXECUTORS", "Interrupted", "Leases", "LocalExecutor", "RunSummary", "finish",
           "make_executor", "preflight", "run_cells"]


def __getattr__(name: str) -> object:
    """`LocalExecutor` on demand (it imports torch via train.py)."""
    if name == "LocalExecutor":
        from regbench.executors.local import LocalExecutor

        return LocalExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
