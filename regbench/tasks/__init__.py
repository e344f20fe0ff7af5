"""Tasks: seeded data splits with a metric and a training protocol. No downloads."""

from regbench.tasks import (  # noqa: F401  (register)
    bikes,
    curve,
    mnist1d,
    periodic,
    table,
    tabular,
    vision,
)
from regbench.tasks.base import METRICS, Protocol, Task, TaskData

__all__ = ["METRICS", "Protocol", "Task", "TaskData"]
