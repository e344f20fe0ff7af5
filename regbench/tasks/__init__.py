"""Tasks: seeded data splits with a metric and a training protocol. Cells never download:
the `openml` task reads a cache that `regbench fetch` (or `run`, before any cell) fills."""

from regbench.tasks import (  # noqa: F401  (register)
    bikes,
    curve,
    mnist1d,
    openml_task,
    periodic,
    table,
    tabular,
    vision,
)
from regbench.tasks.base import METRICS, Protocol, Task, TaskData

__all__ = ["METRICS", "Protocol", "Task", "TaskData"]
