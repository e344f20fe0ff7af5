"""The executor registry: the name `--executor` takes (local, dask) -> how to build it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from regbench.errors import RegbenchError, UnknownNameError


def _local_executor(**kwargs: Any) -> Any:
    from regbench.executors.local import LocalExecutor

    return LocalExecutor(**kwargs)


def _dask_executor(**kwargs: Any) -> Any:
    """Lazy: `distributed` is an optional extra (pip install -e '.[dist]')."""
    try:
        from regbench.executors.dask import make_dask_executor
    except ImportError as exc:  # pragma: no cover - the module itself imports only regbench
        raise RegbenchError(f"--executor dask is unavailable ({exc}); "
                            "pip install -e '.[dist]'") from None
    return make_dask_executor(**kwargs)


EXECUTORS: dict[str, Callable[..., Any]] = {"local": _local_executor, "dask": _dask_executor}


def make_executor(name: str, **kwargs: Any) -> Any:
    """The executor `name` (local or dask) built with the CLI's options."""
    if name not in EXECUTORS:
        raise UnknownNameError("executor", name, EXECUTORS)
    return EXECUTORS[name](**kwargs)
