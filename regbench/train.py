"""Run one cell: a deterministic training loop, eval-mode metrics, the gap, timings.

Every random stream comes from `seeding.py`; torch's global generator (used by
nn.Dropout) is seeded per cell inside `fork_rng`, so the caller's state is untouched.
A NaN/inf loss ends the cell as `diverged` with its step; any exception ends it as
`failed` with the error text. Neither stops a run.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import random
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from regbench import devices, plugins, seeding
from regbench.data_cache import drop_data, load_data
from regbench.errors import RegbenchError
from regbench.evaluation import evaluate
from regbench.inits import init_model, scale_init
from regbench.interface import (
    Batch,
    Knobs,
    OptimConfig,
    Stack,
    TaskData,
    TrainContext,
    decay_params,
)
from regbench.loss_log import DeviceLog, Diverged, HostLog
from regbench.losses import make_criterion
from regbench.optim import make_optimizer
from regbench.optim.schedules import make_schedule
from regbench.provenance import now, provenance
from regbench.registry import ARCHS, TASKS
from regbench.specs import Cell, CellResult
from regbench.split_guard import SplitGuard
from regbench.tasks.base import METRICS

SNAPSHOT_SIZE = 2048  # parameter values kept before/after training for the density figures


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def cell_data(data: TaskData, device: torch.device) -> TaskData:
    """The cell's own view of the split: a new TaskData (so a hook that sets one of its
    fields changes nothing shared) whose tensors are the cached ones on the CPU, copies on
    another device."""
    if device.type == "cpu":
        return dataclasses.replace(data, extra=dict(data.extra))
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


@contextlib.contextmanager
def global_generators(cell: Cell) -> Iterator[None]:
    """numpy's and Python's global generators seeded from the cell (a plugin's
    `np.random` or `random` draws rerun bit for bit), restored afterwards."""
    with seeding.kept_global_generators():
        seed = seeding.derive("globals", cell.seed, cell.cell_id)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        yield


@contextlib.contextmanager
def signals_seen() -> Iterator[list[int]]:
    """The stop signals (SIGINT, SIGTERM) that reach this process while a cell runs, so
    that a KeyboardInterrupt a hook raises itself is told apart from the user's Ctrl-C.
    Only in the main thread, and only over a handler that is a Python function (a worker
    that ignores SIGINT keeps ignoring it)."""
    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for signum, handler in old.items():
        if callable(handler):
            def mark(s: int, frame: Any, handler: Any = handler) -> None:
                seen.append(s)
                handler(s, frame)
            signal.signal(signum, mark)
    try:
        yield seen
    finally:
        for signum, handler in old.items():
            if callable(handler):
                signal.signal(signum, handler)


def _failure(cell: Cell, exc: BaseException) -> CellResult:
    where = getattr(exc, "regbench_hook", None)
    text = type(exc).__name__ + (f": {exc}" if str(exc) else "") + (
        f" (raised in {where})" if where else "")
    tb = "".join(traceback.format_exception(exc, limit=-3))
    return CellResult(cell, "failed", error=f"{text}\n{tb}")


def run_cell(cell: Cell, data_dir: str | None = None, threads: int = 1) -> CellResult:
    """Train and evaluate one cell; never raises for a problem inside the cell: whatever a
    hook, a model or a task raises, SystemExit and KeyboardInterrupt included, is the
    cell's failure. Only a stop signal sent to the process (the user's Ctrl-C) propagates."""
    started = now()
    prov = provenance(threads, cell.device)
    with signals_seen() as seen:
        try:
            cuda = [] if devices.torch_device(cell.device).type == "cpu" else [0]
            with devices.deterministic(cell.device), torch.random.fork_rng(devices=cuda), \
                    num_threads(threads), global_generators(cell):
                torch.manual_seed(seeding.derive("torch", cell.seed, cell.cell_id))
                result = _train(cell, data_dir)
        except BaseException as exc:  # a failing cell is a result, not a crash
            if seen and isinstance(exc, KeyboardInterrupt):
                raise  # the user's (or the driver's) stop
            result = _failure(cell, exc)
    result.provenance = {**prov, "started_at": started, "finished_at": now(),
                         "plugin_code": plugins.cell_code(cell)}
    return result


def _train(cell: Cell, data_dir: str | None) -> CellResult:
    t_cell = time.perf_counter()
    device = devices.torch_device(cell.device)
    task = TASKS.get(cell.task.name)()
    arch = ARCHS.get(cell.arch.name)()
    stack = Stack.for_cell(cell)
    proto = task.protocol.override(cell.protocol)
    data = cell_data(load_data(cell.task, cell.seed, data_dir, proto.standardize), device)
    guard = SplitGuard(data)
    try:
        return _fit(cell, data_dir, task, arch, stack, proto, data, guard, t_cell)
    finally:
        if guard.written():  # a hook or the model wrote to it: later cells load it afresh
            drop_data(cell.task, cell.seed, data_dir, proto.standardize)


def _fit(cell: Cell, data_dir: str | None, task: Any, arch: Any, stack: Stack, proto: Any,
         data: TaskData, guard: SplitGuard, t_cell: float) -> CellResult:
    device = devices.torch_device(cell.device)
    ctx = TrainContext(cell, proto, data, device, stack)
    stack.watch = guard.check

    # 1. the model: knobs, build, seeded init, then the stack's transforms
    knobs = Knobs()
    stack.configure_model(knobs)
    model = arch.build(cell.arch, data, knobs)
    init_model(model, proto.init,
               seeding.derive("init", cell.seed, cell.task.label(), cell.arch.label()))
    if proto.init_scale != 1.0:
        scale_init(model, proto.init_scale)
    model.to(device)  # initialized on the CPU: the same initial weights on every device
    ctx.model = model
    ctx.model = model = stack.transform_model(model, ctx)
    artifacts: dict[str, Any] = {"model": {"n_params": n_params(model)}}
    source = task.source(cell.task, Path(data_dir) if data_dir else None)
    if source is not None:  # e.g. an OpenML dataset's ids, version and checksum
        artifacts["data_source"] = source
    if task.one_dim:
        artifacts["params_before"] = _snapshot(model)

    # 2. the optimizer, the criterion, the data used, the stopping rule
    cfg = OptimConfig(proto.optimizer, proto.lr, proto.momentum)
    stack.configure_optimizer(cfg, proto.adam_lr)
    opt = make_optimizer(model, cfg)
    schedule = make_schedule(opt, proto)
    ctx.optimizer = opt = stack.wrap_optimizer(opt, ctx)

    fraction = stack.train_fraction()
    n = max(1, math.ceil(fraction * len(data.x_train)))
    x_tr, y_tr = data.x_train[:n], data.y_train[:n]
    ctx.x_train, ctx.y_train = x_tr, y_tr
    reduction = proto.loss_reduction
    ctx.criterion = make_criterion(data.kind, reduction, stack.loss_kwargs(), device)
    batch_size = proto.batch_size or n
    order = seeding.generator("order", cell.seed, cell.task.label())
    patience = stack.patience()
    has_val = len(data.x_val) > 0
    if patience is not None and not has_val:
        who = next(r.spec.name for r in stack.members if r.patience() is not None)
        raise RegbenchError(f"{who} needs a validation split; {cell.task.label()} has none")

    owner = stack.owner("step")
    stepper = ("the default step" if owner is None
               else f"train_step of regularizer {owner.spec.name!r}")
    records: list[int] = []

    def record(loss: torch.Tensor, penalty: torch.Tensor | None, size: int) -> None:
        records.append(size)
        log.add(ctx.step, ctx.epoch, loss, penalty, size)

    ctx.record = record
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
            stack.start_epoch(ctx)
            # the order comes from the CPU generator on every device (one copy per epoch)
            perm = torch.randperm(n, generator=order).to(device)
            for idx in _batches(perm, batch_size):
                batch = Batch(x_tr[idx], y_tr[idx])
                batch = stack.batch(batch, ctx)
                ctx.step += 1
                records.clear()
                stack.train_step(batch, ctx)
                if len(records) != 1:
                    raise RegbenchError(f"{stepper} called ctx.record {len(records)} times in "
                                        f"step {ctx.step}; a step records its loss once "
                                        "(ctx.record(loss, penalty, batch size))")
                stack.after_step(ctx)
            running = log.end_epoch(epoch)
            stack.end_epoch(ctx)
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
    # 4. what is evaluated: SWA's average, a snapshot ensemble, else the trained model
    model = stack.eval_model(ctx) or model

    train_loss, train_metric = evaluate(model, x_tr, y_tr, data)
    val_loss, val_metric = evaluate(model, data.x_val, data.y_val, data)
    test_loss, test_metric = evaluate(model, data.x_test, data.y_test, data)
    guard.check_all(f"architecture {cell.arch.label()!r} or a hook")
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
