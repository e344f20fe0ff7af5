"""regbench: a benchmark and reproducibility suite for neural-network regularization.

The public API, stable across minor versions (everything a plugin needs)::

    from regbench import Regularizer, Arch, Task, register_regularizer, register_arch, \\
        register_task

- `Regularizer`, `Arch`, `Task`: the base classes of the three axes;
- `register_regularizer`, `register_arch`, `register_task`: their registry decorators;
- `Batch`, `TrainContext`, `Knobs`, `OptimConfig`, `Protocol`, `TaskData`, `decay_params`:
  what the hooks and builders receive; `Stack`: a cell's regularizers combined as each
  hook declares;
- `Param`: a declared, validated parameter; `TaskSpec`, `ArchSpec`, `RegSpec`, `Cell`,
  `CellResult`: what a cell is and what running it returns; `run_cell`: run one;
- `load`: a store's cells as a typed pandas DataFrame (`regbench.results_frame`);
- `SUITE_VERSION`, `__version__`.

Names resolve on first use, so `import regbench` stays cheap (the CLI's `--version`).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Regularizer": "regbench.interface",
    "Batch": "regbench.interface",
    "TrainContext": "regbench.interface",
    "Stack": "regbench.interface",
    "Knobs": "regbench.interface",
    "OptimConfig": "regbench.interface",
    "Protocol": "regbench.interface",
    "TaskData": "regbench.interface",
    "decay_params": "regbench.interface",
    "Arch": "regbench.archs.base",
    "Task": "regbench.tasks.base",
    "register_regularizer": "regbench.registry",
    "register_arch": "regbench.registry",
    "register_task": "regbench.registry",
    "Param": "regbench.params",
    "TaskSpec": "regbench.specs",
    "ArchSpec": "regbench.specs",
    "RegSpec": "regbench.specs",
    "Cell": "regbench.specs",
    "CellResult": "regbench.specs",
    "SUITE_VERSION": "regbench.specs",
    "run_cell": "regbench.train",
    "load": "regbench.results_frame",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'regbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
