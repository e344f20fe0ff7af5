"""A cell's guard over the split it trains on: the tensors come from the process's split
cache (`data_cache.py`) and are shared with every later cell of that task and seed, so an
in-place write by a hook or a model would change other cells' numbers. Each tensor's
version counter (bumped by every in-place operation on it or a view of it) is compared
after every hook call; the per-feature center and scale arrays at the end of the cell."""

from __future__ import annotations

import hashlib

from regbench.errors import RegbenchError
from regbench.interface import TaskData

SPLIT_TENSORS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


class SplitWritten(RegbenchError):
    """A hook or a model wrote to the shared split in place: the cell fails."""


def _versions(data: TaskData) -> tuple[int, ...]:
    return tuple(getattr(data, k)._version for k in SPLIT_TENSORS)


def _arrays(data: TaskData) -> str:
    h = hashlib.sha256()
    for a in (data.x_center, data.x_scale):
        h.update(b"-" if a is None else a.tobytes())
    return h.hexdigest()


class SplitGuard:
    """Remembers a split's state; `check(where)` raises SplitWritten naming `where` and the
    tensors written since."""

    def __init__(self, data: TaskData):
        self.data = data
        self.versions, self.arrays = _versions(data), _arrays(data)

    def written(self) -> list[str]:
        """The split's fields written in place since the guard was made."""
        now = _versions(self.data)
        out = [k for k, a, b in zip(SPLIT_TENSORS, self.versions, now) if a != b]
        if _arrays(self.data) != self.arrays:
            out.append("x_center/x_scale")
        return out

    def check(self, where: str) -> None:
        if _versions(self.data) != self.versions:
            self._raise(where)

    def check_all(self, where: str) -> None:
        if self.written():
            self._raise(where)

    def _raise(self, where: str) -> None:
        raise SplitWritten(
            f"{where} changed the task's split in place ({', '.join(self.written())}); the "
            "split is shared with the other cells of this task and seed, so hooks and "
            "models must not write to ctx.data, ctx.x_train or ctx.y_train (copy a tensor "
            "before changing it); the cached split was dropped")
