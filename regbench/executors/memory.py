"""How much memory a cell needs, estimated before it runs, and the refusal of cells that
cannot fit in the memory this machine has available.

The estimate is meant to be an honest upper bound of what one CPU cell holds at its
peak, so that a `width = 200000` MLP is refused with a number instead of allocating
until the kernel's OOM killer ends it:

- parameters x 4 (the weights, their gradients and up to two optimizer state tensors
  each, as Adam keeps), counted on a model built on torch's `meta` device (no memory);
- activations: every leaf module's output for one batch (the protocol's `batch_size`,
  or the whole train split for full batch; at least one evaluation chunk), twice (kept
  for backward, and their gradients), from a forward pass on the meta device;
- the split's data: the raw arrays plus their float32 copies.

The task's arrays are read once per task (for their shapes). A cell whose estimate
cannot be made (a plugin model that needs real values to build) is not refused.
Only CPU cells are checked (a CUDA cell's tensors live in GPU memory).

Available memory is `MemAvailable` (psutil when installed, else /proc/meminfo), lowered
to the cgroup's limit when the process runs under one (a container, a batch job);
`$REGBENCH_MEMORY_LIMIT_MB` sets it by hand.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regbench.errors import RegbenchError
from regbench.specs import Cell

MEMORY_ENV = "REGBENCH_MEMORY_LIMIT_MB"
GIB = 2**30
SHOWN = 5  # cells named in the refusal


def _cgroup_room() -> int | None:
    """Bytes left under this process's cgroup v2 memory limit, or None."""
    try:
        rel = Path("/proc/self/cgroup").read_text().strip().split("::", 1)[1]
        base = Path("/sys/fs/cgroup") / rel.lstrip("/")
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((base / "memory.current").read_text())
    except (OSError, IndexError, ValueError):
        return None


def available_bytes() -> int | None:
    """Memory available to a new cell now, in bytes (None when it cannot be told)."""
    raw = os.environ.get(MEMORY_ENV)
    if raw is not None:
        try:
            mb = float(raw)
        except ValueError:
            raise RegbenchError(f"${MEMORY_ENV} must be a number of MiB, got {raw!r}") from None
        if not mb > 0 or not math.isfinite(mb):
            raise RegbenchError(f"${MEMORY_ENV} must be a number of MiB > 0, got {raw!r}")
        return int(mb * 2**20)
    avail: int | None = None
    try:
        import psutil

        avail = int(psutil.virtual_memory().available)
    except ImportError:
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
    room = _cgroup_room()
    if room is not None:
        avail = room if avail is None else min(avail, room)
    return avail


@dataclass
class Estimate:
    params: int  # bytes of the parameters alone
    activations: int
    data: int

    @property
    def total(self) -> int:
        return 4 * self.params + self.activations + self.data

    def text(self) -> str:
        return (f"~{self.total / GIB:.3g} GiB (parameters {self.params / GIB:.3g} GiB x4 with "
                f"gradients and optimizer state, activations {self.activations / GIB:.3g} GiB, "
                f"data {self.data / GIB:.3g} GiB)")


class _Shapes:
    """What a task's split looks like, read once per task: rows, features, outputs."""

    def __init__(self, n_train: int, n_rows: int, x_shape: tuple[int, ...], n_out: int,
                 raw_bytes: int):
        self.n_train, self.n_rows, self.x_shape = n_train, n_rows, x_shape
        self.n_out, self.raw_bytes = n_out, raw_bytes

    @property
    def n_features(self) -> int:
        return int(math.prod(self.x_shape))


def _shapes(cell: Cell, data_dir: str | None) -> _Shapes:
    import numpy as np

    from regbench.registry import TASKS

    task = TASKS.get(cell.task.name)().bind(cell.task)
    arrays = task.arrays(cell.task, cell.seed, Path(data_dir) if data_dir else None)
    xtr = arrays[0]
    n_rows = sum(len(a) for a in arrays[0::2])
    if task.kind == "classification":
        n_out = int(max(max(int(np.max(a)) for a in arrays[1::2] if len(a)),
                        (task.n_classes or 0) - 1) + 1)
    else:
        n_out = 1
    return _Shapes(len(xtr), n_rows, tuple(int(d) for d in xtr.shape[1:]), n_out,
                   sum(int(a.nbytes) for a in arrays))


def _meta_data(shapes: _Shapes, cell: Cell) -> Any:
    import torch

    from regbench.registry import TASKS
    from regbench.tasks.base import TaskData

    task = TASKS.get(cell.task.name)().bind(cell.task)
    x = torch.empty((0, shapes.n_features), device="meta")
    y = torch.empty((0,), dtype=torch.int64, device="meta")
    return TaskData(x, y, x, y, x, y, kind=task.kind, n_out=shapes.n_out, metric=task.metric,
                    image_shape=task.image_shape(), channel_shape=task.channel_shape())


def estimate(cell: Cell, shapes: _Shapes) -> Estimate:
    """The memory `cell` needs at its peak (see the module's docstring)."""
    import torch

    from regbench.evaluation import EVAL_CHUNK
    from regbench.interface import Knobs, Stack
    from regbench.registry import ARCHS, TASKS

    task = TASKS.get(cell.task.name)().bind(cell.task)
    proto = task.protocol.override(cell.protocol)
    knobs = Knobs()
    Stack.for_cell(cell).configure_model(knobs)  # the whole stack: base, entry and `with`
    with torch.device("meta"):
        model = ARCHS.get(cell.arch.name)().build(cell.arch, _meta_data(shapes, cell), knobs)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    params += sum(b.numel() * b.element_size() for b in model.buffers())
    rows = max(proto.batch_size or shapes.n_train, min(EVAL_CHUNK, shapes.n_rows))
    outputs = 0

    def hook(module: Any, inputs: Any, output: Any) -> None:
        nonlocal outputs
        if isinstance(output, torch.Tensor):
            outputs += output.numel() * output.element_size()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        model(torch.empty((rows, shapes.n_features), device="meta"))
    except Exception:  # noqa: BLE001 - a module without meta support: count the inputs
        outputs = rows * shapes.n_features * 4
    finally:
        for h in handles:
            h.remove()
    data = shapes.raw_bytes + shapes.n_rows * (shapes.n_features * 4 + 8)
    return Estimate(params=params, activations=2 * outputs, data=data)


def check_memory(cells: list[Cell], data_dir: str | None = None,
                 available: int | None = None) -> None:
    """Refuse (RegbenchError naming the cells and their estimates) the CPU cells whose
    estimate exceeds the memory available; one estimate per distinct cell shape."""
    cpu = [c for c in cells if c.device == "cpu"]
    if not cpu:
        return
    available = available_bytes() if available is None else available
    if available is None:
        return
    shapes: dict[Any, _Shapes | None] = {}
    seen: dict[Any, Estimate | None] = {}
    over: list[tuple[Cell, Estimate]] = []
    for cell in cpu:
        tkey = (cell.task, data_dir)
        if tkey not in shapes:
            try:
                shapes[tkey] = _shapes(cell, data_dir)
            except Exception:  # noqa: BLE001 - data problems are reported by the data checks
                shapes[tkey] = None
        if shapes[tkey] is None:
            continue
        key = (cell.task, cell.arch, cell.stack(), cell.protocol)
        if key not in seen:
            try:
                seen[key] = estimate(cell, shapes[tkey])
            except Exception:  # noqa: BLE001 - not estimable: the cell runs unchecked
                seen[key] = None
        est = seen[key]
        if est is not None and est.total > available:
            over.append((cell, est))
    if over:
        lines = "; ".join(f"{c.describe()} needs {e.text()}" for c, e in over[:SHOWN])
        more = f"; and {len(over) - SHOWN} more" if len(over) > SHOWN else ""
        raise RegbenchError(
            f"{len(over)} cell(s) need more memory than this machine has available "
            f"({available / GIB:.3g} GiB): {lines}{more}; make the model or batch smaller, "
            f"or run them where more memory is free (${MEMORY_ENV} overrides the limit)")
