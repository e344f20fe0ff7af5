"""Where cells run: `local.py` (this process or a process pool), `dask.py` (a Dask
cluster), and what they share, one job per module: `registry.py` (executor names),
`drive.py` (the driver loop `run_cells`), `preflight.py` (data and memory checks before
anything runs), `signals.py` (SIGINT/SIGTERM stop a run cleanly), `progress.py` (the
progress bar or lines), `summary.py` (what a run did and its exit status), `memory.py`
(memory estimates) and `leases.py` (drivers on one store share the work).
"""

from regbench.executors.drive import run_cells
from regbench.executors.leases import Leases
from regbench.executors.preflight import preflight
from regbench.executors.registry import EXECUTORS, make_executor
from regbench.executors.signals import Interrupted
from regbench.executors.summary import RunSummary, finish

__all__ = ["EXECUTORS", "Interrupted", "Leases", "LocalExecutor", "RunSummary", "finish",
           "make_executor", "preflight", "run_cells"]


def __getattr__(name: str) -> object:
    """`LocalExecutor` on demand (it imports torch via train.py)."""
    if name == "LocalExecutor":
        from regbench.executors.local import LocalExecutor

        return LocalExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
