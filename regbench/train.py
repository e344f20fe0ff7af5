"""Run one cell: a deterministic training loop, eval-mode metrics, the gap, timings.

Every random stream comes from `seeding.py`; torch's global generator (used by
nn.Dropout) is seeded per cell inside `fork_rng`, so the caller's state is untouched.
A NaN/inf loss ends the cell as `diverged` with its step; any exception ends it as
`failed` with the error text. Neither stops a run.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import functools
import math
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from regbench import devices, plugins, seeding
from regbench.errors import RegbenchError
from regbench.inits import init_model, scale_init
from regbench.interface import (
    Batch,
    Knobs,
    OptimConfig,
    Regularizer,
    TaskData,
    TrainContext,
    decay_params,
)
from regbench.optim import make_optimizer
from regbench.optim.schedules import make_schedule
from regbench.provenance import now, provenance
from regbench.registry import ARCHS, REGULARIZERS, TASKS
from regbench.specs import Cell, CellResult, TaskSpec
from regbench.tasks.base import METRICS

SNAPSHOT_SIZE = 2048  # parameter values kept before/after training for the density figures
EVAL_CHUNK = 8192


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


_splits = SplitCache(DATA_CACHE_ENTRIES)


def load_data(spec: TaskSpec, seed: int, data_dir: str | None,
              standardize: str = "xy") -> TaskData:
    """The seeded split of a task, cached per process (cells share it across regularizers;
    see SplitCache, capped by $REGBENCH_DATA_CACHE_MB, default 2048)."""
    return _splits.get((spec, seed, data_dir, standardize), lambda: TASKS.get(spec.name)().load(
        spec, seed, Path(data_dir) if data_dir else None, standardize=standardize))


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Diverged(Exception):
    def __init__(self, step: int, epoch: int, value: float):
        super().__init__(f"non-finite loss {value} at step {step} (epoch {epoch})")
        self.step, self.epoch = step, epoch


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Eval-mode outputs (dropout off, batchnorm running statistics), in chunks."""
    model.eval()
    return torch.cat([model(x[i : i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)])


def score(out: torch.Tensor, y: torch.Tensor, data: TaskData) -> tuple[float, float]:
    """(plain loss, metric): unsmoothed CE and accuracy, or MSE (standardized y) and rmse."""
    if data.kind == "classification":
        if out.is_cuda:
            loss = DeterministicCrossEntropy()(out, y).item()
        else:
            loss = F.cross_entropy(out, y).item()
        metric = (out.argmax(1) == y).double().mean().item()
    else:
        loss = F.mse_loss(out, y).item()
        metric = math.sqrt(loss) * data.y_scale
    return loss, metric


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, data: TaskData
             ) -> tuple[float | None, float | None]:
    """(plain loss, metric) of `model` on (x, y) in eval mode; (None, None) for no rows."""
    if len(x) == 0:
        return None, None
    return score(predict(model, x), y, data)


def make_criterion(kind: str, reduction: str, loss_kwargs: dict[str, Any],
                   device: torch.device | None = None) -> nn.Module:
    """The training loss: cross-entropy (with the regularizer's kwargs) or MSE, reduced by
    `reduction` ("mean" over the minibatch, or "sum" as seed 000's code does). On CUDA the
    cross-entropy is `DeterministicCrossEntropy` (torch lists NLLLoss on CUDA among the ops
    without a deterministic implementation)."""
    if kind == "classification":
        if device is not None and device.type == "cuda":
            return DeterministicCrossEntropy(reduction=reduction, **loss_kwargs)
        return nn.CrossEntropyLoss(reduction=reduction, **loss_kwargs)
    return nn.MSELoss(reduction=reduction)


class DeterministicCrossEntropy(nn.Module):
    """Cross-entropy with label smoothing from log_softmax and gather (both deterministic
    on CUDA): (1 - eps) * -log p_y + eps * mean_j(-log p_j), as nn.CrossEntropyLoss."""

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__()
        self.reduction, self.eps = reduction, float(label_smoothing)

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(out, dim=1)
        loss = -logp.gather(1, y.view(-1, 1)).squeeze(1)
        if self.eps > 0:
            loss = (1 - self.eps) * loss - self.eps * logp.mean(1)
        return loss.sum() if self.reduction == "sum" else loss.mean()


class HostLog:
    """Per-step loss accounting on the host (CPU cells): reads each loss, stops at the first
    non-finite one."""

    def __init__(self, reduction: str):
        self.reduction, self.running = reduction, 0.0

    def start_epoch(self) -> None:
        self.running = 0.0

    def add(self, step: int, epoch: int, loss: torch.Tensor, penalty: torch.Tensor | None,
            size: int) -> None:
        value = loss.item()
        self.running += value if self.reduction == "sum" else value * size
        if penalty is not None:
            value += penalty.item()
        if not math.isfinite(value):
            raise Diverged(step, epoch, value)

    def end_epoch(self, epoch: int) -> float:
        return self.running


class DeviceLog:
    """Per-step loss accounting on the device (CUDA cells): no host sync per step. The sum
    and the first non-finite step are kept on the device and read once per epoch."""

    def __init__(self, reduction: str, device: torch.device):
        self.reduction, self.device = reduction, device

    def start_epoch(self) -> None:
        self.running = torch.zeros((), dtype=torch.float64, device=self.device)
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=self.device)
        self.bad_value = torch.zeros((), dtype=torch.float64, device=self.device)

    def add(self, step: int, epoch: int, loss: torch.Tensor, penalty: torch.Tensor | None,
            size: int) -> None:
        value = loss.detach().double()
        self.running += value if self.reduction == "sum" else value * size
        if penalty is not None:
            value = value + penalty.detach().double()
        new_bad = ~torch.isfinite(value) & (self.first_bad < 0)
        self.first_bad = torch.where(new_bad, torch.full_like(self.first_bad, step),
                                     self.first_bad)
        self.bad_value = torch.where(new_bad, value, self.bad_value)

    def end_epoch(self, epoch: int) -> float:
        first, value, running = torch.stack(
            [self.first_bad.double(), self.bad_value, self.running]).tolist()
        if first >= 0:
            raise Diverged(int(first), epoch, value)
        return running


def cell_data(data: TaskData, device: torch.device) -> TaskData:
    """The split's tensors on `device` (the same object on the CPU)."""
    if device.type == "cpu":
        return data
    move = {k: getattr(data, k).to(device) for k in
            ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
    return dataclasses.replace(data, **move)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _snapshot(model: nn.Module) -> list[float]:
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    idx = torch.linspace(0, len(flat) - 1, min(SNAPSHOT_SIZE, len(flat))).long()
    return flat[idx].tolist()


def _batches(perm: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Minibatches of `perm`; a trailing batch of one sample joins the previous one
    (batchnorm cannot train on a single sample)."""
    parts = list(torch.split(perm, batch_size))
    if len(parts) > 1 and len(parts[-1]) == 1:
        parts[-2:] = [torch.cat(parts[-2:])]
    return parts


def weight_stats(model: nn.Module) -> dict[str, float]:
    weights, _ = decay_params(model)
    if not weights:
        return {"n": 0}
    flat = torch.cat([w.detach().flatten() for w in weights]).double()
    return {
        "n": int(flat.numel()),
        "l1": flat.abs().sum().item(),
        "l2": flat.norm().item(),
        "frac_abs_lt_1e-3": (flat.abs() < 1e-3).double().mean().item(),
        "frac_abs_lt_1e-2": (flat.abs() < 1e-2).double().mean().item(),
    }


def run_cell(cell: Cell, data_dir: str | None = None, threads: int = 1) -> CellResult:
    """Train and evaluate one cell; never raises for a problem inside the cell."""
    started = now()
    prov = provenance(threads, cell.device)
    try:
        cuda = [] if devices.torch_device(cell.device).type == "cpu" else [0]
        with devices.deterministic(cell.device), torch.random.fork_rng(devices=cuda), \
                num_threads(threads):
            torch.manual_seed(seeding.derive("torch", cell.seed, cell.cell_id))
            result = _train(cell, data_dir)
    except Exception as exc:  # noqa: BLE001 - a failing cell is a result, not a crash
        tb = traceback.format_exc(limit=-3)
        result = CellResult(cell, "failed", error=f"{type(exc).__name__}: {exc}\n{tb}")
    result.provenance = {**prov, "started_at": started, "finished_at": now(),
                         "plugin_code": plugins.cell_code(cell)}
    return result


def build_stack(cell: Cell) -> list[Regularizer]:
    """The cell's regularizers, instantiated in hook order (base, entry, with)."""
    return [REGULARIZERS.get(spec.name)(spec, cell) for spec in cell.stack()]


def _stack_patience(stack: list[Regularizer]) -> int | None:
    values = [p for p in (r.patience() for r in stack) if p is not None]
    return min(values) if values else None


def _owner(stack: list[Regularizer], resource: str) -> Regularizer | None:
    """The one regularizer of the stack that owns `resource` ("step", "eval"), if any."""
    owners = [r for r in stack if resource in type(r).ownership()]
    return owners[0] if owners else None


def _train(cell: Cell, data_dir: str | None) -> CellResult:
    t_cell = time.perf_counter()
    device = devices.torch_device(cell.device)
    task = TASKS.get(cell.task.name)()
    arch = ARCHS.get(cell.arch.name)()
    stack = build_stack(cell)
    proto = task.protocol.override(cell.protocol)
    data = cell_data(load_data(cell.task, cell.seed, data_dir, proto.standardize), device)
    ctx = TrainContext(cell, proto, data, device, stack)

    # 1. the model: knobs, build, seeded init, then the stack's transforms
    knobs = Knobs()
    for reg in stack:
        reg.configure_model(knobs)
    model = arch.build(cell.arch, data, knobs)
    init_model(model, proto.init,
               seeding.derive("init", cell.seed, cell.task.label(), cell.arch.label()))
    if proto.init_scale != 1.0:
        scale_init(model, proto.init_scale)
    model.to(device)  # initialized on the CPU: the same initial weights on every device
    ctx.model = model
    for reg in stack:
        ctx.model = model = reg.transform_model(model, ctx)
    artifacts: dict[str, Any] = {"model": {"n_params": n_params(model)}}
    source = task.source(cell.task, Path(data_dir) if data_dir else None)
    if source is not None:  # e.g. an OpenML dataset's ids, version and checksum
        artifacts["data_source"] = source
    if task.one_dim:
        artifacts["params_before"] = _snapshot(model)

    # 2. the optimizer, the criterion, the data used, the stopping rule
    cfg = OptimConfig(proto.optimizer, proto.lr, proto.momentum)
    for reg in stack:
        reg.configure_optimizer(cfg, proto.adam_lr)
    opt = make_optimizer(model, cfg)
    schedule = make_schedule(opt, proto)
    for reg in stack:
        opt = reg.wrap_optimizer(opt, ctx)
    ctx.optimizer = opt

    fraction = math.prod(r.train_fraction() for r in stack)
    n = max(1, math.ceil(fraction * len(data.x_train)))
    x_tr, y_tr = data.x_train[:n], data.y_train[:n]
    ctx.x_train, ctx.y_train = x_tr, y_tr
    reduction = proto.loss_reduction
    loss_kwargs: dict[str, Any] = {}
    for reg in stack:
        loss_kwargs.update(reg.loss_kwargs())
    ctx.criterion = make_criterion(data.kind, reduction, loss_kwargs, device)
    batch_size = proto.batch_size or n
    order = seeding.generator("order", cell.seed, cell.task.label())
    patience = _stack_patience(stack)
    has_val = len(data.x_val) > 0
    if patience is not None and not has_val:
        raise RegbenchError(f"{cell.reg.name} needs a validation split; "
                            f"{cell.task.label()} has none")
    stepper = _owner(stack, "step") or stack[-1]  # the base class's train_step: the plain step

    curves: list[dict[str, float]] = []
    best_loss, best_epoch, best_state = math.inf, 0, None
    epoch = 0
    log = HostLog(reduction) if device.type == "cpu" else DeviceLog(reduction, device)
    t_train = time.perf_counter()
    try:
        for epoch in range(1, proto.epochs + 1):
            ctx.epoch = epoch
            model.train()
            log.start_epoch()
            for reg in stack:
                reg.start_epoch(ctx)
            # the order comes from the CPU generator on every device (one copy per epoch)
            perm = torch.randperm(n, generator=order).to(device)
            for idx in _batches(perm, batch_size):
                batch = Batch(x_tr[idx], y_tr[idx])
                for reg in stack:
                    batch = reg.batch(batch, ctx)
                ctx.step += 1
                ctx.record = functools.partial(log.add, ctx.step, epoch)
                stepper.train_step(batch, ctx)
                for reg in stack:
                    reg.after_step(ctx)
            running = log.end_epoch(epoch)
            for reg in stack:
                reg.end_epoch(ctx)
            if schedule is not None:
                schedule.step()
            # the validation split only: the test set is scored once, after training
            val_loss, val_metric = evaluate(model, data.x_val, data.y_val, data)
            if val_loss is not None and not math.isfinite(val_loss):
                raise Diverged(ctx.step, epoch, val_loss)
            curves.append({"epoch": epoch, "train_loss": running / n,
                           "val_loss": val_loss, "val_metric": val_metric})
            if val_loss is None:
                best_epoch = epoch  # no validation split: the last epoch is the result
            elif val_loss < best_loss:
                best_loss, best_epoch = val_loss, epoch
                if patience is not None:
                    best_state = copy.deepcopy(model.state_dict())
            elif patience is not None and epoch - best_epoch >= patience:
                break
    except Diverged as d:
        return CellResult(cell, "diverged", curves=curves, error=str(d), metrics={
            "epochs": d.epoch, "best_epoch": best_epoch or None, "diverged_step": d.step,
            "metric_name": data.metric, "higher_is_better": METRICS[data.metric],
            "n_train": n, "wall_s": time.perf_counter() - t_cell})
    train_s = time.perf_counter() - t_train
    if best_state is not None:
        model.load_state_dict(best_state)
    evaluator = _owner(stack, "eval")
    if evaluator is not None:  # 4. what is evaluated: SWA's average, a snapshot ensemble
        model = evaluator.eval_model(ctx) or model

    train_loss, train_metric = evaluate(model, x_tr, y_tr, data)
    val_loss, val_metric = evaluate(model, data.x_val, data.y_val, data)
    test_loss, test_metric = evaluate(model, data.x_test, data.y_test, data)
    higher = METRICS[data.metric]
    artifacts["weight_stats"] = weight_stats(model)
    if task.one_dim:
        artifacts["params_after"] = _snapshot(model)
        with torch.no_grad():
            pred = model(data.x_test).flatten().tolist()
        raw = lambda x: (x.flatten().cpu().numpy() * data.x_scale[0]  # noqa: E731
                         + data.x_center[0]).tolist()
        artifacts["predictions"] = {
            "x": raw(data.x_test), "y": data.y_test.flatten().tolist(), "pred": pred,
            "x_train": raw(x_tr), "y_train": y_tr.flatten().tolist(),
            "units": ("targets standardized on the train split" if proto.standardize == "xy"
                      else "targets in the data's units"),
        }
    metrics = {
        "epochs": epoch, "best_epoch": best_epoch, "diverged_step": None,
        "train_loss": train_loss, "val_loss": val_loss, "test_loss": test_loss,
        "gap_loss": test_loss - train_loss,
        "train_metric": train_metric, "val_metric": val_metric, "test_metric": test_metric,
        "gap_metric": (train_metric - test_metric) if higher else (test_metric - train_metric),
        "metric_name": data.metric, "higher_is_better": higher, "n_train": n,
        "train_s": train_s, "wall_s": time.perf_counter() - t_cell,
        "samples_per_s": n * epoch / train_s if train_s > 0 else None,
    }
    return CellResult(cell, "ok", metrics=metrics, curves=curves, artifacts=artifacts)
