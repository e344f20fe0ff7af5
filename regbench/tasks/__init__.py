"""Tasks: seeded data splits with a metric and a training protocol. No downloads."""

from regbench.tasks import bikes, curve, mnist1d, periodic, tabular  # noqa: F401  (register)
from regbench.tasks.base import METRICS, Protocol, Task, TaskData

__all__ = ["METRICS", "Protocol", "Task", "TaskData"]
