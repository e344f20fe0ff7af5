"""Regularizers that misbehave on purpose, for the run-loop fault tests.

Imported by the test process and by every worker (through `LocalExecutor(initializer=
fault_plugin.setup)`, or as the driver script's import that spawned workers repeat).

- `kill_worker`: its worker process SIGKILLs itself (as the OOM killer would) at seed 1.
- `fail_seed`: raises a DataError at seed 1 while the file named by $REGBENCH_TEST_FAIL_FILE
  exists (a data problem that a user then fixes).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from regbench.errors import DataError
from regbench.registry import REGULARIZERS, register_regularizer
from regbench.regularizers.base import Regularizer

FAIL_FILE_ENV = "REGBENCH_TEST_FAIL_FILE"


def setup() -> None:
    """A worker initializer: importing this module registered the regularizers."""


class _Plain(Regularizer):
    strength_range = (0.0, 0.0)
    default_strengths = (0.0,)
    full_strengths = (0.0,)


if "kill_worker" not in REGULARIZERS.names():

    @register_regularizer("kill_worker")
    class KillWorker(_Plain):
        """SIGKILLs its own process at seed 1 (a stand-in for the OOM killer)."""

        def configure_model(self, knobs) -> None:
            if self.cell.seed == 1:
                os.kill(os.getpid(), signal.SIGKILL)

    @register_regularizer("fail_seed")
    class FailSeed(_Plain):
        """A data error at seed 1 while $REGBENCH_TEST_FAIL_FILE exists."""

        def configure_model(self, knobs) -> None:
            path = os.environ.get(FAIL_FILE_ENV)
            if self.cell.seed == 1 and path and Path(path).exists():
                raise DataError(f"{path}: bad value in row 3 (test)")
