"""A process's seeded splits, cached: cells of one task and seed share them across
regularizers, within a memory cap ($REGBENCH_DATA_CACHE_MB)."""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from regbench.errors import RegbenchError
from regbench.interface import TaskData
from regbench.registry import TASKS
from regbench.specs import TaskSpec

DATA_CACHE_ENV = "REGBENCH_DATA_CACHE_MB"
DATA_CACHE_MB = 2048  # default cap of a process's cached splits (CIFAR-10: ~0.75 GB a split)
DATA_CACHE_ENTRIES = 16


def split_nbytes(data: TaskData) -> int:
    """Bytes of a split's six tensors."""
    return sum(t.numel() * t.element_size() for t in (
        data.x_train, data.y_train, data.x_val, data.y_val, data.x_test, data.y_test))


def data_cache_bytes() -> int:
    """$REGBENCH_DATA_CACHE_MB (default DATA_CACHE_MB) in bytes; RegbenchError naming the
    value when it is not a number."""
    raw = os.environ.get(DATA_CACHE_ENV, str(DATA_CACHE_MB))
    try:
        mb = float(raw)
    except ValueError:
        raise RegbenchError(f"${DATA_CACHE_ENV} must be a number of MiB, got {raw!r}") from None
    return int(max(mb, 0.0) * 2**20)


class SplitCache:
    """A process's seeded splits, least recently used evicted first: at most `entries` of
    them and `max_bytes` in all, except that the newest is always kept. Small tasks keep 16
    splits (cells share them across regularizers); a large one (CIFAR) keeps a few instead
    of ~12 GB a worker."""

    def __init__(self, entries: int, max_bytes: int | None = None):
        self.entries, self._max_bytes = entries, max_bytes
        self._items: collections.OrderedDict[tuple[Any, ...], tuple[TaskData, int]] = (
            collections.OrderedDict())
        self._lock = threading.Lock()

    @property
    def max_bytes(self) -> int:
        if self._max_bytes is None:
            self._max_bytes = data_cache_bytes()
        return self._max_bytes

    def nbytes(self) -> int:
        return sum(n for _, n in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: tuple[Any, ...], make: Callable[[], TaskData]) -> TaskData:
        with self._lock:  # Dask workers may run cells in threads of one process
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit[0]
        data = make()
        with self._lock:
            self._items[key] = (data, split_nbytes(data))
            while len(self._items) > 1 and (len(self._items) > self.entries
                                            or self.nbytes() > self.max_bytes):
                self._items.popitem(last=False)
        return data

    def clear(self) -> None:
        self._items.clear()

    def discard(self, key: tuple[Any, ...]) -> None:
        """Forget one split (a cell wrote to it: the next cell loads it afresh)."""
        with self._lock:
            self._items.pop(key, None)


_splits = SplitCache(DATA_CACHE_ENTRIES)


def load_data(spec: TaskSpec, seed: int, data_dir: str | None,
              standardize: str = "xy") -> TaskData:
    """The seeded split of a task, cached per process (cells share it across regularizers;
    see SplitCache, capped by $REGBENCH_DATA_CACHE_MB, default 2048)."""
    return _splits.get((spec, seed, data_dir, standardize), lambda: TASKS.get(spec.name)().load(
        spec, seed, Path(data_dir) if data_dir else None, standardize=standardize))


def drop_data(spec: TaskSpec, seed: int, data_dir: str | None, standardize: str = "xy") -> None:
    """Drop a split from the cache (it was written to in place)."""
    _splits.discard((spec, seed, data_dir, standardize))
