"""The types every task, architecture and regularizer is written against.

This module imports no task, architecture, optimizer or regularizer module, so a plugin
(and every built-in) can import it without pulling in the rest of the package:

- `Protocol` and `PROTOCOL_FIELDS`: how a task is trained (epochs, optimizer, lr, ...);
- `TaskData`: the tensors of one seeded split;
- `Knobs`: model-side switches an architecture builder honours (dropout, batchnorm, ...);
- `OptimConfig` and `decay_params`: the optimizer a cell trains with, weights vs the rest;
- `Batch` and `TrainContext`: what the training-step hooks see;
- `Regularizer`: the hook base class, one documented lifecycle (see its docstring); every
  hook declares, where it is defined (`hookspec`), how a stack combines it;
- `Stack`: a cell's regularizers in stack order, the one object the trainer, the matrix's
  ownership check and the memory estimate call.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn

from regbench import seeding
from regbench.errors import RegbenchError, UnknownNameError
from regbench.inits import INIT_SCHEMES
from regbench.params import Param, check_values, default, finite
from regbench.specs import Cell, Params, RegSpec

if TYPE_CHECKING:  # only for annotations: the bases of tasks and archs import this module
    from regbench.archs.base import Arch
    from regbench.tasks.base import Task

__all__ = [
    "COMBINE", "HOOKS", "HOOK_SPECS", "PARTS", "PROTOCOL_FIELDS", "Batch", "DropoutFactory",
    "HookSpec", "Knobs", "OptimConfig", "Protocol", "Regularizer", "Stack", "TaskData",
    "TrainContext", "decay_params", "hookspec", "native_dropout", "stack_conflict",
]

STANDARDIZE = ("xy", "x", "none")  # what is standardized on the train split

# Every protocol field, its type and range: a matrix's `protocol = {...}` is checked
# against this before anything runs. Optimizer names are checked against regbench.optim.
PROTOCOL_FIELDS: dict[str, Param] = {
    "epochs": Param(1, int, lo=1, hi=1_000_000, doc="passes over the train split"),
    "batch_size": Param(0, int, lo=0, hi=100_000_000, doc="0 means full batch"),
    "optimizer": Param("sgd", str, doc="a key of regbench.optim.OPTIMIZERS"),
    "lr": Param(1e-3, float, lo=0.0, lo_open=True),
    "momentum": Param(0.0, float, lo=0.0, hi=1.0, hi_open=True),
    "adam_lr": Param(1e-3, float, lo=0.0, lo_open=True,
                     doc="lr when a regularizer swaps in an Adam-family optimizer"),
    "loss_reduction": Param("mean", choices=("mean", "sum"),
                            doc="how the training loss sums over a minibatch"),
    "standardize": Param("xy", choices=STANDARDIZE,
                         doc="what is standardized on the train split (metrics stay in units)"),
    "init": Param("regbench", choices=tuple(INIT_SCHEMES),
                  doc="regbench: U(+-1/sqrt(fan_in)) from the init stream; torch: each "
                      "layer's reset_parameters under the init seed; he: kaiming_uniform_ "
                      "weights from the init stream, zero biases (the MNIST-1D notebooks)"),
    "init_scale": Param(1.0, float, lo=0.0, lo_open=True, hi=1000.0,
                        doc="multiplies every initial weight matrix and conv kernel (biases "
                            "and norm parameters unchanged) after the init scheme"),
    "lr_schedule": Param("constant", str, doc="a key of regbench.optim.schedules.SCHEDULES"),
    "lr_step_size": Param(30, int, lo=1, hi=1_000_000, doc="step: epochs between decays"),
    "lr_gamma": Param(0.1, float, lo=0.0, lo_open=True, hi=1.0, doc="step: decay factor"),
    "lr_min": Param(0.0, float, lo=0.0, doc="cosine: final lr"),
}


@dataclass(frozen=True)
class Protocol:
    """How a task is trained: the same for every architecture and regularizer.

    Every field can be overridden per matrix block (`protocol = {...}`); each is part of
    the cell and so of its id. See PROTOCOL_FIELDS for types and ranges.
    """

    epochs: int
    batch_size: int  # 0 means full batch
    optimizer: str  # key of regbench.optim.OPTIMIZERS
    lr: float
    momentum: float = 0.0
    adam_lr: float = 1e-3  # used when a regularizer swaps in an Adam-family optimizer
    loss_reduction: str = "mean"
    standardize: str = "xy"
    init: str = "regbench"
    init_scale: float = 1.0
    lr_schedule: str = "constant"
    lr_step_size: int = 30
    lr_gamma: float = 0.1
    lr_min: float = 0.0

    def override(self, params: Params) -> Protocol:
        """This protocol with `params` replaced, each checked for type and range."""
        given = dict(params)
        check_values("protocol", "", given, PROTOCOL_FIELDS)
        # imported here: the optimizers are looked up only when a protocol names one
        from regbench.optim import OPTIMIZERS
        from regbench.optim.schedules import SCHEDULES

        for key, registry in (("optimizer", OPTIMIZERS), ("lr_schedule", SCHEDULES)):
            if key in given and given[key] not in registry:
                raise UnknownNameError(f"protocol {key}", given[key], registry)
        return replace(self, **given)


@dataclass
class TaskData:
    """Tensors of one seeded split. Features are standardized on the train split only."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    kind: str  # "regression" | "classification"
    n_out: int
    metric: str
    image_shape: tuple[int, ...] | None = None  # (C, H, W) when the rows are images
    channel_shape: tuple[int, ...] | None = None  # (C, ...) when normalized per channel
    y_scale: float = 1.0  # regression targets were divided by this (to report rmse in units)
    # per-feature center / scale (per-channel values repeated over pixels): raw = x * scale
    # + center, for augmentation in raw space and for plotting raw x
    x_center: np.ndarray | None = None
    x_scale: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


DropoutFactory = Callable[[float, int], nn.Module]


def native_dropout(p: float, index: int) -> nn.Module:
    """`nn.Dropout(p)` (draws from torch's generator, which the trainer seeds per cell)."""
    return nn.Dropout(p)


@dataclass
class Knobs:
    """Model-side switches that regularizers turn on; every builder honours the ones it has."""

    dropout: float = 0.0
    dropout_layer: DropoutFactory = native_dropout  # (p, layer index) -> module
    batchnorm: bool = False
    batchnorm_position: str = "before"  # "before" | "after" the hidden activation
    drop_path: float = 0.0
    drop_path_generator: torch.Generator | None = None
    # ShakeDrop: the last block's drop probability and the generator of its draws
    shake_drop: float = 0.0
    shake_drop_generator: torch.Generator | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # a plugin's own switches


@dataclass
class OptimConfig:
    """The optimizer a cell trains with; regularizers may change it."""

    name: str
    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0  # applied to the weight group only (see decay_params)
    # Elastic net folded into the optimizer step (weight group only); needs fused = True.
    l1: float = 0.0
    l2: float = 0.0
    fused: bool = False  # regbench.optim's Fused* optimizers instead of torch.optim's


def decay_params(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(weights, others): weight matrices and conv kernels vs biases and norm parameters.

    Penalties and weight decay in regbench touch the weights only, the usual practice
    (seed 002 penalizes w, not b); biases and batchnorm's gamma/beta are left alone.
    """
    weights, others = [], []
    for p in model.parameters():
        (weights if p.dim() >= 2 else others).append(p)
    return weights, others


@dataclass
class Batch:
    """A training minibatch as the loss sees it.

    `targets` is None for the plain loss `criterion(model(x), y)`; a regularizer that mixes
    examples (mixup, cutmix) sets it to weighted targets through `mixed`, and the loss is
    then `sum(w * criterion(model(x), t) for w, t in targets)`.
    """

    x: torch.Tensor
    y: torch.Tensor
    targets: list[tuple[float | torch.Tensor, torch.Tensor]] | None = None

    def mixed(self, x: torch.Tensor, perm: torch.Tensor, lam: float) -> Batch:
        """This batch with inputs `x` in which example i is lam parts itself and 1 - lam
        parts example perm[i]: every target so far (the plain labels, or an earlier mix's
        weighted targets) becomes two, weighted w * lam and w * (1 - lam), so two mixing
        regularizers in one stack compose (mixup then CutMix: four targets)."""
        base = self.targets if self.targets is not None else [(1.0, self.y)]
        return Batch(x, self.y, [(w * lam, t) for w, t in base]
                     + [(w * (1.0 - lam), t[perm]) for w, t in base])


# -- how a stack combines each hook ----------------------------------------------------------
# Every hook of `Regularizer` declares one of these where it is defined (`hookspec`); `Stack`
# applies them, the step-API reference page's table is generated from them.
COMBINE: dict[str, str] = {
    "each": "called on every regularizer in stack order (a shared object is changed in place)",
    "chain": "each regularizer gets what the one before it returned",
    "sum": "the terms are added; None adds nothing, and no term at all gives None",
    "product": "the values are multiplied",
    "minimum": "the smallest value that is not None; None when every one is None",
    "merge": "the dictionaries are merged in stack order: a later key wins",
    "owner": "at most one regularizer of a stack overrides it (it owns that part of "
             "training); the base class's version runs when none does",
    "inner": "not called by the stack: the base class's version of another hook calls it",
}

# The parts of training a regularizer can own (`Regularizer.owns`, or an `owner` hook it
# overrides), in words for the error that refuses two owners of one part.
PARTS: dict[str, str] = {
    "step": "training step (train_step)",
    "eval": "evaluated model (eval_model)",
    "optimizer": "optimizer (it replaces the task's)",
    "weight_decay": "optimizer's weight decay",
    "lr_schedule": "learning-rate schedule",
    "optimizer_wrapper": "optimizer wrapper",
}


@dataclass(frozen=True)
class HookSpec:
    """What a hook is for: its lifecycle stage, how a stack combines it, the part of
    training its overrider owns (`owner` hooks only) and, for `inner`, which hook calls it."""

    stage: str
    combine: str
    part: str | None = None
    called_by: str | None = None

    def __post_init__(self) -> None:
        if self.combine not in COMBINE:
            raise ValueError(f"unknown combination {self.combine!r}; valid: {', '.join(COMBINE)}")
        if (self.combine == "owner") != (self.part is not None):
            raise ValueError("an `owner` hook names the part it owns, and only it")


def hookspec(stage: str, combine: str, part: str | None = None,
             called_by: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a `Regularizer` method a hook: its stage and how a stack combines it."""
    spec = HookSpec(stage, combine, part, called_by)

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.hookspec = spec  # type: ignore[attr-defined]
        return fn

    return mark


class TrainContext:
    """What the training-step hooks see: the cell, its split, model, optimizer and loss.

    The trainer creates one per cell and keeps its fields current (`epoch`, `step`,
    `model`, `optimizer`). `loss(batch)` is the forward pass and the loss as the cell's
    stack defines it (the data loss; the stack's `penalty` and `loss_terms`); a regularizer
    that owns the step (`train_step`) calls it as often as it needs, and calls `record`
    once per step with the loss it reports. `forward(x)` is one more pass of the model as
    the step's own pass runs it (training mode: dropout draws new masks, batchnorm uses and
    updates the batch statistics); `inputs` is the tensor the last `loss` fed the model.
    """

    def __init__(self, cell: Cell, protocol: Protocol, data: TaskData, device: torch.device,
                 regularizers: Stack | Sequence[Regularizer]):
        self.cell, self.protocol, self.data, self.device = cell, protocol, data, device
        self.stack = regularizers if isinstance(regularizers, Stack) else Stack(regularizers)
        self.regularizers = self.stack.members
        self.model: nn.Module = nn.Identity()
        self.optimizer: torch.optim.Optimizer | None = None
        self.criterion: nn.Module | None = None
        self.x_train: torch.Tensor = data.x_train  # the rows this cell trains on
        self.y_train: torch.Tensor = data.y_train
        self.epoch, self.step = 0, 0
        self.inputs: torch.Tensor | None = None
        self._output_checked = False
        self.record: Callable[[torch.Tensor, torch.Tensor | None, int], None] = (
            lambda loss, penalty, size: None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The model's outputs on `x`, as in the step's own pass (the first pass of a cell
        is checked: (batch, n_out) floating-point outputs)."""
        try:
            out = self.model(x)
        except BaseException as exc:
            if not hasattr(exc, "regbench_hook"):
                with contextlib.suppress(AttributeError, TypeError):
                    exc.regbench_hook = (  # type: ignore[attr-defined]
                        f"the forward pass of architecture {self.cell.arch.label()!r}")
            raise
        if not self._output_checked:
            self._check_output(out, len(x))
            self._output_checked = True
        return out

    def _check_output(self, out: Any, n: int) -> None:
        want = (n, self.data.n_out)
        if isinstance(out, torch.Tensor) and out.is_floating_point() and tuple(out.shape) == want:
            return
        got = (f"a {type(out).__name__}" if not isinstance(out, torch.Tensor)
               else f"outputs of shape {tuple(out.shape)} ({out.dtype})")
        raise RegbenchError(
            f"architecture {self.cell.arch.label()!r} gave {got} for a batch of {n}; "
            f"task {self.cell.task.label()!r} needs floating-point outputs of shape "
            f"{want} (batch, n_out)")

    def reduce(self, values: torch.Tensor) -> torch.Tensor:
        """Per-example values reduced over the minibatch as the data loss is (the
        protocol's `loss_reduction`: mean or sum), so a term scales like the loss."""
        return values.sum() if self.protocol.loss_reduction == "sum" else values.mean()

    def data_loss(self, batch: Batch, outputs: torch.Tensor) -> torch.Tensor:
        """The criterion on `outputs` against the batch's targets (weighted targets when a
        regularizer mixed them), without any regularization term."""
        assert self.criterion is not None
        if batch.targets is None:
            return self.criterion(outputs, batch.y)
        return sum(w * self.criterion(outputs, t) for w, t in batch.targets)  # type: ignore

    def loss(self, batch: Batch, x: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(data loss, penalty) of the model on `batch` (inputs `x` instead of batch.x if
        given); the penalty is the sum of the stack's `penalty` and `loss_terms`, or None."""
        x = batch.x if x is None else x
        if self.stack.needs_input_grad and not x.requires_grad:
            x = x.detach().requires_grad_(True)
        self.inputs = x
        out = self.forward(x)
        loss = self.data_loss(batch, out)
        penalty = self.stack.penalty(self.model)
        terms = self.stack.loss_terms(batch, out, self)
        if terms is not None:
            penalty = terms if penalty is None else penalty + terms
        return loss, penalty

    def backward(self, batch: Batch, record: bool = True
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The gradients of the stack's loss on `batch`, in `.grad` (zeroed first): the
        loss and penalty, recorded when `record`; returns them."""
        loss, penalty = self.loss(batch)
        if record:
            self.record(loss, penalty, len(batch.y))
        assert self.optimizer is not None
        self.optimizer.zero_grad(set_to_none=True)
        (loss if penalty is None else loss + penalty).backward()
        return loss, penalty

    def default_step(self, batch: Batch) -> None:
        """The plain step: loss and penalty, record, zero the gradients, backward, step."""
        self.backward(batch)
        assert self.optimizer is not None
        self.optimizer.step()


@functools.cache
def _augment_takes_data(cls: type) -> bool:
    """Whether `cls.augment` is the older `augment(x, data)` (given the split, not ctx)."""
    names = list(inspect.signature(cls.augment).parameters)
    return len(names) >= 3 and names[2] == "data"


class Regularizer:
    """The hook base class: every hook does nothing, so a subclass overrides what it changes.

    A cell's regularizers (a stack: the block's base recipe, the entry, its `with` list, in
    that order) are called through a `Stack`, in stack order, at each point of one
    lifecycle; each hook declares how a stack combines it (`hookspec`, `COMBINE`):

    1. build the model: `configure_model(knobs)` before the architecture is built,
       `transform_model(model, ctx)` after it is built and initialized;
    2. build the optimizer: `configure_optimizer(cfg, adam_lr)`, then
       `wrap_optimizer(optimizer, ctx)`; `loss_kwargs()` for the criterion;
       `train_fraction()` and `patience()` for the data used and early stopping;
    3. every epoch: `start_epoch(ctx)`; per batch: `batch(batch, ctx)` (which calls
       `augment(x, ctx)` by default); the step: `train_step(batch, ctx)` (one regularizer
       of a stack at most may override it), whose loss adds `penalty(model)` (a term of
       the weights) and `loss_terms(batch, outputs, ctx)` (a term of the batch and the
       model's outputs on it); `after_step(ctx)`; then `end_epoch(ctx)`;
    4. what is evaluated: `eval_model(ctx)` (one regularizer of a stack at most).

    Class attributes declare the strength, its range and sweeps, the parameters
    (`params = {name: Param(...)}`), what the regularizer needs of the task and
    architecture, and, for a plugin, its `version` (part of its cells' ids). Randomness
    comes from `self.generator(stream)` (`numpy_rng`, `seed` for other forms).
    """

    name: ClassVar[str]
    version: ClassVar[str | None] = None  # plugins must set it; built-ins use SUITE_VERSION
    strength_name: ClassVar[str] = "lambda"
    strength_range: ClassVar[tuple[float, float]] = (0.0, float("inf"))
    # where `tune` blocks sample the strength (regbench.tuning.space: LogUniform, Uniform,
    # IntUniform, Choice); None: uniform over strength_range when that range is finite
    strength_space: ClassVar[Any] = None
    default_strengths: ClassVar[tuple[float, ...]] = ()
    full_strengths: ClassVar[tuple[float, ...]] = ()
    needs_kind: ClassVar[str | None] = None  # e.g. "classification"
    needs_capability: ClassVar[str | None] = None  # e.g. "hidden", "residual"
    # True when `loss_terms` differentiates through the inputs: `ctx.loss` then feeds the
    # model inputs that require a gradient (`ctx.inputs`).
    needs_input_grad: ClassVar[bool] = False
    # True when it needs a validation split (early stopping): skipped on a task without one
    needs_validation: ClassVar[bool] = False
    params: ClassVar[dict[str, Any]] = {}
    # Exclusive parts of the training setup this regularizer takes over (keys of PARTS);
    # two regularizers of one stack may not own the same one. The part of an `owner` hook
    # (train_step: "step", eval_model: "eval") is added when the hook is overridden.
    owns: ClassVar[frozenset[str]] = frozenset()
    # What this regularizer puts in the model for others (dropout: "dropout"), and what it
    # needs another member of its stack to put there (r_drop: "dropout"); a stack that
    # lacks a required part is refused when the matrix is built.
    provides: ClassVar[frozenset[str]] = frozenset()
    requires: ClassVar[frozenset[str]] = frozenset()
    # A larger strength regularizes less (early stopping's patience, more data's fraction):
    # ties in validation selection go to the weaker regularization.
    larger_is_weaker: ClassVar[bool] = False
    # Streams whose seeds predate `generator`'s key: a stream name -> the cell-scoped
    # stream of seeding.py it draws from (built-ins only: their results are pinned).
    seed_streams: ClassVar[dict[str, str]] = {}

    def __init__(self, spec: RegSpec, cell: Cell):
        self.check(spec)
        self.spec, self.cell, self.strength = spec, cell, float(spec.strength)

    @classmethod
    def check(cls, spec: RegSpec) -> None:
        """Raise a RegbenchError naming a bad strength or parameter."""
        lo, hi = cls.strength_range
        if not finite(spec.strength) or not lo <= float(spec.strength) <= hi:
            raise RegbenchError(
                f"{spec.name} {cls.strength_name}={spec.strength} is outside [{lo}, {hi}]"
            )
        check_values("regularizer", spec.name, dict(spec.params), cls.params)

    @classmethod
    def check_protocol(cls, spec: RegSpec, protocol: Protocol) -> None:
        """Raise a RegbenchError for a strength or parameter the cell's training protocol
        cannot run (more snapshot cycles than the epochs make); called for every cell when
        a matrix is built, before anything runs."""

    @classmethod
    def skip_reason(cls, task: Task, arch: Arch, spec: RegSpec | None = None) -> str | None:
        """Why this regularizer (with `spec`'s parameters) cannot apply to (task, arch)."""
        if cls.needs_kind and task.kind != cls.needs_kind:
            return f"{cls.name} needs a {cls.needs_kind} task; {task.name} is {task.kind}"
        if cls.needs_capability and cls.needs_capability not in arch.capabilities:
            what = {"hidden": "hidden layers", "residual": "residual blocks"}.get(
                cls.needs_capability, cls.needs_capability)
            return f"{cls.name} needs {what}; {arch.name} has none"
        return None

    @classmethod
    def search_space(cls, fixed: Collection[str] = ()) -> dict[str, Any]:
        """What a `tune` block samples for this regularizer: "strength" (its
        `strength_space`; else uniform over `strength_range` when that is finite and not a
        single point; none for a single point, as for `none`) and every parameter with a
        declared `space` that is not in `fixed` (the entry's own values). A RegbenchError
        when the strength has neither a space nor a finite range."""
        from regbench.tuning.space import SPACE_TYPES, Uniform

        out: dict[str, Any] = {}
        lo, hi = cls.strength_range
        if cls.strength_space is not None:
            out["strength"] = cls.strength_space
        elif finite(lo) and finite(hi) and lo < hi:
            out["strength"] = Uniform(float(lo), float(hi))
        elif not (finite(lo) and lo == hi):
            raise RegbenchError(
                f"regularizer {cls.name!r} cannot be tuned: it declares no strength_space "
                f"and its {cls.strength_name} range [{lo}, {hi}] is not finite; declare "
                "strength_space = LogUniform(lo, hi) (or Uniform, IntUniform, Choice from "
                "regbench.tuning.space) on the class")
        for key, spec in cls.params.items():
            space = getattr(spec, "space", None)
            if space is not None and key not in fixed:
                out[key] = space
        for key, space in out.items():
            if not isinstance(space, SPACE_TYPES):
                raise RegbenchError(
                    f"regularizer {cls.name!r}: the search space of {key!r} is {space!r}; "
                    "allowed: LogUniform, Uniform, IntUniform or Choice from "
                    "regbench.tuning.space")
            space.check(f"regularizer {cls.name!r} search space of {key!r}")
        return out

    @classmethod
    def ownership(cls) -> frozenset[str]:
        """`owns`, plus the part of each `owner` hook the class overrides ("step" for
        train_step, "eval" for eval_model)."""
        extra = {HOOK_SPECS[hook].part for hook in HOOKS if HOOK_SPECS[hook].part
                 and getattr(cls, hook) is not getattr(Regularizer, hook)}
        return frozenset(cls.owns) | frozenset(p for p in extra if p is not None)

    def param(self, key: str) -> Any:
        """The value of parameter `key` in this cell (its declared default if not given)."""
        return self.spec.get(key, default(self.params[key]))

    def base_lrs(self, ctx: TrainContext) -> list[float]:
        """Each parameter group's learning rate as the optimizer was built (the protocol's
        lr, or adam_lr where a regularizer swapped in AdamW), before any schedule moved it.
        Read it from epoch 1 on; regularizers that set the lr scale this, not protocol.lr."""
        assert ctx.optimizer is not None
        if not hasattr(self, "_base_lrs"):
            self._base_lrs = [float(g.get("initial_lr", g["lr"]))
                              for g in ctx.optimizer.param_groups]
        return self._base_lrs

    # -- randomness: one key per (cell, regularizer, stream) --------------------------
    def _scope(self, stream: str) -> tuple[str, tuple[object, ...]]:
        legacy = self.seed_streams.get(stream)
        if legacy is not None:
            return legacy, (self.cell.cell_id,)
        return "regularizer", (self.cell.cell_id, self.spec.name, stream)

    def generator(self, stream: str, device: torch.device | str = "cpu") -> torch.Generator:
        """A torch.Generator for this regularizer in this cell, from `seeding.py`: a function
        of (stream, seed index, cell id, regularizer name) only."""
        kind, scope = self._scope(stream)
        return seeding.generator(kind, self.cell.seed, *scope, device=device)

    def numpy_rng(self, stream: str) -> np.random.Generator:
        """A numpy Generator keyed like `generator` (for draws numpy makes: Beta samples)."""
        kind, scope = self._scope(stream)
        return seeding.numpy_rng(kind, self.cell.seed, *scope)

    def seed(self, stream: str, *parts: object) -> int:
        """A 63-bit seed keyed like `generator`, and by `parts` (a layer's index): for a
        module that takes a seed rather than a generator (regbench.nn.FusedDropout)."""
        kind, scope = self._scope(stream)
        return seeding.derive(kind, self.cell.seed, *scope, *parts)

    # -- 1. build the model -----------------------------------------------------------
    @hookspec("build the model", "each")
    def configure_model(self, knobs: Knobs) -> None:
        """Turn on model-side knobs before the model is built (dropout, batchnorm,
        stochastic depth)."""

    @hookspec("build the model", "chain")
    def transform_model(self, model: nn.Module, ctx: TrainContext) -> nn.Module:
        """Change the built, initialized model (DropConnect on weights, spectral norm);
        returns the model to train."""
        return model

    # -- 2. build the optimizer -------------------------------------------------------
    @hookspec("build the optimizer", "each")
    def configure_optimizer(self, cfg: OptimConfig, adam_lr: float) -> None:
        """Change the optimizer before it is built (weight decay, AdamW, the fused step of
        l1/l2)."""

    @hookspec("build the optimizer", "chain")
    def wrap_optimizer(self, optimizer: torch.optim.Optimizer, ctx: TrainContext
                       ) -> torch.optim.Optimizer:
        """Wrap the built optimizer (lookahead); returns the optimizer the step uses."""
        return optimizer

    @hookspec("build the optimizer", "merge")
    def loss_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for the training criterion (label smoothing)."""
        return {}

    @hookspec("build the optimizer", "product")
    def train_fraction(self) -> float:
        """Fraction of the training split to use (more data: the learning curve)."""
        return 1.0

    @hookspec("build the optimizer", "minimum")
    def patience(self) -> int | None:
        """Early-stopping patience in epochs (early stopping), or None for a fixed budget."""
        return None

    # -- 3. every epoch, every batch, every step ---------------------------------------
    @hookspec("every epoch", "each")
    def start_epoch(self, ctx: TrainContext) -> None:
        """Called before each epoch's first batch (a learning-rate cycle: snapshot
        ensembles)."""

    @hookspec("every batch", "chain")
    def batch(self, batch: Batch, ctx: TrainContext) -> Batch:
        """Transform a training minibatch, inputs and targets together (mixup, cutmix,
        cutout); by default applies `augment` to the inputs."""
        x = self.augment(batch.x, ctx.data if _augment_takes_data(type(self)) else ctx)
        return batch if x is batch.x else replace(batch, x=x)

    @hookspec("every batch", "inner", called_by="batch")
    def augment(self, x: torch.Tensor, ctx: TrainContext) -> torch.Tensor:
        """Transform a training minibatch's inputs (input noise, shifts, crops). The older
        form `augment(self, x, data)`, given `ctx.data`, still works."""
        return x

    @hookspec("the step", "sum")
    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        """A term of the weights added to the training loss (l1, l2), or None."""
        return None

    @hookspec("the step", "sum")
    def loss_terms(self, batch: Batch, outputs: torch.Tensor, ctx: TrainContext
                   ) -> torch.Tensor | None:
        """A scalar term added to the training loss, from the batch and `outputs` (the
        model's outputs on `ctx.inputs`, before the criterion), or None. Called in every
        `ctx.loss`: the default step's and each pass of an owned step. `ctx.data_loss`
        gives the criterion on other outputs; `ctx.forward(x)` one more pass."""
        return None

    @hookspec("the step", "owner", part="step")
    def train_step(self, batch: Batch, ctx: TrainContext) -> None:
        """One optimizer step on `batch`. Override to own the step (SAM's two passes, FGSM's
        input gradient); call `ctx.loss` for the loss and `ctx.record(loss, penalty, n)` once.
        The default is `ctx.default_step(batch)`."""
        ctx.default_step(batch)

    @hookspec("the step", "each")
    def after_step(self, ctx: TrainContext) -> None:
        """Called after every optimizer step (max-norm projection, SWA's per-step average)."""

    @hookspec("every epoch", "each")
    def end_epoch(self, ctx: TrainContext) -> None:
        """Called after each epoch's last step, before validation (SWA's average,
        snapshots)."""

    # -- 4. what is evaluated ---------------------------------------------------------
    @hookspec("what is evaluated", "owner", part="eval")
    def eval_model(self, ctx: TrainContext) -> nn.Module | None:
        """The model whose metrics are reported after training (SWA's averaged model, a
        snapshot ensemble), or None for the trained model itself."""
        return None


# Every hook, in lifecycle order, and its declaration.
HOOK_SPECS: dict[str, HookSpec] = {
    name: fn.hookspec for name, fn in vars(Regularizer).items() if hasattr(fn, "hookspec")}
HOOKS: tuple[str, ...] = tuple(HOOK_SPECS)
# Older parameter lists a plugin's hook may still have (the name of each parameter).
LEGACY_SIGNATURES: dict[str, list[list[str]]] = {"augment": [["self", "x", "data"]]}


def hook_signature_problems(cls: type) -> list[str]:
    """Hooks of `cls` whose parameters differ from the base class's (a plugin's mistake
    caught before anything runs): one text per hook."""
    problems = []
    for hook in HOOKS:
        mine, base = getattr(cls, hook, None), getattr(Regularizer, hook)
        if mine is base:
            continue
        if not callable(mine):
            problems.append(f"{hook} is not a method")
            continue
        want = [p.name for p in inspect.signature(base).parameters.values()]
        params = list(inspect.signature(mine).parameters.values())
        got = [p.name for p in params
               if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        keyword_only = [p.name for p in params
                        if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
        if keyword_only:
            problems.append(f"{hook}: parameter {', '.join(map(repr, keyword_only))} is "
                            f"keyword-only; hooks are called with positional arguments "
                            f"({', '.join(want)})")
        elif len(got) != len(want):
            problems.append(f"{hook}({', '.join(got)}) should take "
                            f"({', '.join(want)})")
    return problems


def stack_conflict(members: Iterable[tuple[str, str, type[Regularizer]]]) -> str | None:
    """Why regularizers (name, label, class), in stack order, cannot form one stack: a
    name twice, two owners of one part of training (`none` composes with everything), or
    a part one requires that no other provides; None when they can."""
    seen: dict[str, str] = {}
    owners: dict[str, str] = {}
    members = list(members)
    provided = set().union(*(cls.provides for _, _, cls in members))
    for name, _, cls in members:
        missing = sorted(cls.requires - provided)
        if missing:
            from regbench.registry import REGULARIZERS  # the registry imports this module

            givers = sorted(n for n in REGULARIZERS.names()
                            if REGULARIZERS.get(n).provides & set(missing))
            return (f"{name!r} needs {' and '.join(missing)} in the model, which no member "
                    f"of its stack provides; stack one that does (with = [...]): "
                    f"{', '.join(givers) or 'none is registered'}")
    for name, label, cls in members:
        if name == "none":
            continue
        if name in seen:
            return f"regularizer stack has {name!r} twice ({seen[name]} and {label})"
        seen[name] = label
        for part in sorted(cls.ownership()):
            if part in owners:
                return (f"{owners[part]!r} and {name!r} cannot be stacked: both own the "
                        f"{PARTS.get(part, part)}")
            owners[part] = name
    return None


def _is_term(v: Any) -> bool:
    return v is None or (isinstance(v, torch.Tensor) and v.numel() == 1
                         and v.is_floating_point())


def _is_optimizer(v: Any) -> bool:
    return all(hasattr(v, a) for a in ("step", "zero_grad", "param_groups"))


# What each hook must return, checked on every call: a wrong value is one line naming the
# regularizer, the hook, what came back and what was expected (not a later AttributeError).
RETURNS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "transform_model": (lambda v: isinstance(v, nn.Module), "a torch.nn.Module"),
    "wrap_optimizer": (_is_optimizer, "an optimizer (step, zero_grad, param_groups)"),
    "loss_kwargs": (lambda v: isinstance(v, dict), "a dict of criterion keyword arguments"),
    "train_fraction": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                       and 0 < v <= 1, "a number in (0, 1]"),
    "patience": (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)
                                         and v >= 1), "None or an int >= 1"),
    "batch": (lambda v: isinstance(v, Batch), "a regbench.Batch"),
    "penalty": (_is_term, "None or a scalar floating-point torch.Tensor"),
    "loss_terms": (_is_term, "None or a scalar floating-point torch.Tensor"),
    "eval_model": (lambda v: v is None or isinstance(v, nn.Module),
                   "None or a torch.nn.Module"),
}
# (what the other hooks return is not used: `each` hooks and train_step change in place)


class Stack:
    """A cell's regularizers in stack order (base recipe, entry, `with`), combined at each
    hook as the hook declares (`HOOK_SPECS`): the one object the trainer calls.

    Every call is checked: what a hook returns (`RETURNS`), and, through `watch` (set by
    the trainer), that it left the shared split alone. An exception a hook raises carries
    `regbench_hook` ("after_step of regularizer 'x'") for the cell's error text."""

    def __init__(self, members: Sequence[Regularizer]):
        self.members = list(members)
        problem = stack_conflict((r.spec.name, r.spec.label(), type(r)) for r in self.members)
        if problem:
            raise RegbenchError(problem)
        self.needs_input_grad = any(type(r).needs_input_grad for r in self.members)
        self.watch: Callable[[str], None] | None = None

    def _call(self, reg: Regularizer, hook: str, *args: Any) -> Any:
        where = (f"{hook} of regularizer {reg.spec.name!r}" if reg is not _DEFAULT
                 else f"{hook} (the default)")
        try:
            value = getattr(reg, hook)(*args)
        except BaseException as exc:
            if reg is not _DEFAULT and not hasattr(exc, "regbench_hook"):
                with contextlib.suppress(AttributeError, TypeError):
                    exc.regbench_hook = where  # type: ignore[attr-defined]
            raise
        if self.watch is not None:
            self.watch(where)
        ok, expected = RETURNS.get(hook, (None, ""))
        if ok is not None and not ok(value):
            raise RegbenchError(f"{where} returned {type(value).__name__} "
                                f"{_short(value)}; expected {expected}")
        return value

    @classmethod
    def for_cell(cls, cell: Cell) -> Stack:
        """The cell's regularizers, instantiated from the registry in stack order."""
        from regbench.registry import REGULARIZERS  # the registry imports this module

        return cls([REGULARIZERS.get(spec.name)(spec, cell) for spec in cell.stack()])

    def owner(self, part: str) -> Regularizer | None:
        """The regularizer of the stack that owns `part` ("step", "eval", ...), if any."""
        return next((r for r in self.members if part in type(r).ownership()), None)

    def _combine(self, hook: str, *args: Any) -> Any:
        spec = HOOK_SPECS[hook]
        if spec.combine == "owner":
            assert spec.part is not None
            owner = self.owner(spec.part)
            return self._call(owner if owner is not None else _DEFAULT, hook, *args)
        if spec.combine == "chain":
            value, rest = args[0], args[1:]
            for reg in self.members:
                value = self._call(reg, hook, value, *rest)
            return value
        values = [self._call(reg, hook, *args) for reg in self.members]
        if spec.combine == "each":
            return None
        if spec.combine == "product":
            return math.prod(values)
        if spec.combine == "merge":
            merged: dict[str, Any] = {}
            for v in values:
                merged.update(v)
            return merged
        present = [v for v in values if v is not None]
        if spec.combine == "minimum":
            return min(present) if present else None
        if spec.combine == "sum":
            total = None
            for v in present:
                total = v if total is None else total + v
            return total
        raise RegbenchError(f"hook {hook!r} is not called by a stack ({spec.combine})")

    # 1. build the model
    def configure_model(self, knobs: Knobs) -> None:
        self._combine("configure_model", knobs)

    def transform_model(self, model: nn.Module, ctx: TrainContext) -> nn.Module:
        return self._combine("transform_model", model, ctx)

    # 2. build the optimizer
    def configure_optimizer(self, cfg: OptimConfig, adam_lr: float) -> None:
        self._combine("configure_optimizer", cfg, adam_lr)

    def wrap_optimizer(self, optimizer: torch.optim.Optimizer, ctx: TrainContext
                       ) -> torch.optim.Optimizer:
        return self._combine("wrap_optimizer", optimizer, ctx)

    def loss_kwargs(self) -> dict[str, Any]:
        return self._combine("loss_kwargs")

    def train_fraction(self) -> float:
        return self._combine("train_fraction")

    def patience(self) -> int | None:
        return self._combine("patience")

    # 3. every epoch, batch and step
    def start_epoch(self, ctx: TrainContext) -> None:
        self._combine("start_epoch", ctx)

    def batch(self, batch: Batch, ctx: TrainContext) -> Batch:
        return self._combine("batch", batch, ctx)

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        return self._combine("penalty", model)

    def loss_terms(self, batch: Batch, outputs: torch.Tensor, ctx: TrainContext
                   ) -> torch.Tensor | None:
        return self._combine("loss_terms", batch, outputs, ctx)

    def train_step(self, batch: Batch, ctx: TrainContext) -> None:
        self._combine("train_step", batch, ctx)

    def after_step(self, ctx: TrainContext) -> None:
        self._combine("after_step", ctx)

    def end_epoch(self, ctx: TrainContext) -> None:
        self._combine("end_epoch", ctx)

    # 4. what is evaluated
    def eval_model(self, ctx: TrainContext) -> nn.Module | None:
        return self._combine("eval_model", ctx)


_DEFAULT = Regularizer.__new__(Regularizer)  # the base class's hooks, for unowned parts


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
