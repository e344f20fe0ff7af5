"""The types every task, architecture and regularizer is written against.

This module imports no task, architecture, optimizer or regularizer module, so a plugin
(and every built-in) can import it without pulling in the rest of the package:

- `Protocol` and `PROTOCOL_FIELDS`: how a task is trained (epochs, optimizer, lr, ...);
- `TaskData`: the tensors of one seeded split;
- `Knobs`: model-side switches an architecture builder honours (dropout, batchnorm, ...);
- `OptimConfig` and `decay_params`: the optimizer a cell trains with, weights vs the rest;
- `Batch` and `TrainContext`: what the training-step hooks see;
- `Regularizer`: the hook base class, one documented lifecycle (see its docstring).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
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
    "PROTOCOL_FIELDS", "Batch", "DropoutFactory", "Knobs", "OptimConfig", "Protocol",
    "Regularizer", "TaskData", "TrainContext", "decay_params", "native_dropout",
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
    drop_path: float = 0.0
    drop_path_generator: torch.Generator | None = None
    extra: dict[str, Any] = field(default_factory=dict)


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
    examples (mixup, cutmix) sets it to weighted targets, and the loss is then
    `sum(w * criterion(model(x), t) for w, t in targets)`.
    """

    x: torch.Tensor
    y: torch.Tensor
    targets: list[tuple[float | torch.Tensor, torch.Tensor]] | None = None


class TrainContext:
    """What the training-step hooks see: the cell, its split, model, optimizer and loss.

    The trainer creates one per cell and keeps its fields current (`epoch`, `step`,
    `model`, `optimizer`). `loss(batch)` is the forward pass and the loss as the cell's
    stack defines it; a regularizer that owns the step (`train_step`) calls it as often
    as it needs, and calls `record` once per step with the loss it reports.
    """

    def __init__(self, cell: Cell, protocol: Protocol, data: TaskData, device: torch.device,
                 regularizers: list[Regularizer]):
        self.cell, self.protocol, self.data, self.device = cell, protocol, data, device
        self.regularizers = regularizers
        self.model: nn.Module = nn.Identity()
        self.optimizer: torch.optim.Optimizer | None = None
        self.criterion: nn.Module | None = None
        self.x_train: torch.Tensor = data.x_train  # the rows this cell trains on
        self.y_train: torch.Tensor = data.y_train
        self.epoch, self.step = 0, 0
        self.record: Callable[[torch.Tensor, torch.Tensor | None, int], None] = (
            lambda loss, penalty, size: None)

    def loss(self, batch: Batch, x: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(data loss, penalty) of the model on `batch` (inputs `x` instead of batch.x if
        given); the penalty is the sum of the stack's `penalty` terms, or None."""
        assert self.criterion is not None
        out = self.model(batch.x if x is None else x)
        if batch.targets is None:
            loss = self.criterion(out, batch.y)
        else:
            loss = sum(w * self.criterion(out, t) for w, t in batch.targets)
        penalty = None
        for reg in self.regularizers:
            term = reg.penalty(self.model)
            if term is not None:
                penalty = term if penalty is None else penalty + term
        return loss, penalty

    def default_step(self, batch: Batch) -> None:
        """The plain step: loss and penalty, record, zero the gradients, backward, step."""
        loss, penalty = self.loss(batch)
        self.record(loss, penalty, len(batch.y))
        total = loss if penalty is None else loss + penalty
        assert self.optimizer is not None
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()


class Regularizer:
    """The hook base class: every hook does nothing, so a subclass overrides what it changes.

    A cell's regularizers (a stack: the block's base recipe, the entry, its `with` list, in
    that order) are called in stack order at each point of one lifecycle:

    1. build the model: `configure_model(knobs)` before the architecture is built,
       `transform_model(model, ctx)` after it is built and initialized;
    2. build the optimizer: `configure_optimizer(cfg, adam_lr)`, then
       `wrap_optimizer(optimizer, ctx)`; `loss_kwargs()` for the criterion;
       `train_fraction()` and `patience()` for the data used and early stopping;
    3. every epoch: `start_epoch(ctx)`; per batch: `batch(batch, ctx)` (which calls
       `augment(x, data)` by default); the step: `train_step(batch, ctx)` (one regularizer
       of a stack at most may override it); `after_step(ctx)`; then `end_epoch(ctx)`;
    4. what is evaluated: `eval_model(ctx)` (one regularizer of a stack at most).

    Class attributes declare the strength, its range and sweeps, the parameters
    (`params = {name: Param(...)}`), what the regularizer needs of the task and
    architecture, and, for a plugin, its `version` (part of its cells' ids).
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
    params: ClassVar[dict[str, Any]] = {}
    # Exclusive parts of the training setup this regularizer takes over; two regularizers of
    # one stack may not own the same one. "step" and "eval" are added automatically when
    # train_step / eval_model are overridden.
    owns: ClassVar[frozenset[str]] = frozenset()
    # A larger strength regularizes less (early stopping's patience, more data's fraction):
    # ties in validation selection go to the weaker regularization.
    larger_is_weaker: ClassVar[bool] = False

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
        """`owns`, plus "step" / "eval" when train_step / eval_model are overridden."""
        extra = {res for res, hook in (("step", "train_step"), ("eval", "eval_model"))
                 if getattr(cls, hook) is not getattr(Regularizer, hook)}
        return frozenset(cls.owns) | extra

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

    def generator(self, stream: str, device: torch.device | str = "cpu") -> torch.Generator:
        """A torch.Generator for this regularizer in this cell, from `seeding.py`: a function
        of (stream, seed index, cell id, regularizer name) only."""
        return seeding.generator("regularizer", self.cell.seed, self.cell.cell_id,
                                 self.spec.name, stream, device=device)

    # -- 1. build the model -----------------------------------------------------------
    def configure_model(self, knobs: Knobs) -> None:
        """Turn on model-side knobs before the model is built (dropout, batchnorm,
        stochastic depth)."""

    def transform_model(self, model: nn.Module, ctx: TrainContext) -> nn.Module:
        """Change the built, initialized model (DropConnect on weights, spectral norm);
        returns the model to train."""
        return model

    # -- 2. build the optimizer -------------------------------------------------------
    def configure_optimizer(self, cfg: OptimConfig, adam_lr: float) -> None:
        """Change the optimizer before it is built (weight decay, AdamW, the fused step of
        l1/l2)."""

    def wrap_optimizer(self, optimizer: torch.optim.Optimizer, ctx: TrainContext
                       ) -> torch.optim.Optimizer:
        """Wrap the built optimizer (lookahead); returns the optimizer the step uses."""
        return optimizer

    def loss_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for the training criterion (label smoothing)."""
        return {}

    def train_fraction(self) -> float:
        """Fraction of the training split to use (more data: the learning curve)."""
        return 1.0

    def patience(self) -> int | None:
        """Early-stopping patience in epochs (early stopping), or None for a fixed budget."""
        return None

    # -- 3. every epoch, every batch, every step ---------------------------------------
    def start_epoch(self, ctx: TrainContext) -> None:
        """Called before each epoch's first batch (a learning-rate cycle: snapshot
        ensembles)."""

    def batch(self, batch: Batch, ctx: TrainContext) -> Batch:
        """Transform a training minibatch, inputs and targets together (mixup, cutmix,
        cutout); by default applies `augment` to the inputs."""
        x = self.augment(batch.x, ctx.data)
        return batch if x is batch.x else replace(batch, x=x)

    def augment(self, x: torch.Tensor, data: TaskData) -> torch.Tensor:
        """Transform a training minibatch's inputs (input noise, shifts, crops)."""
        return x

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        """A term added to the training loss (l1, l2), or None."""
        return None

    def train_step(self, batch: Batch, ctx: TrainContext) -> None:
        """One optimizer step on `batch`. Override to own the step (SAM's two passes, FGSM's
        input gradient); call `ctx.loss` for the loss and `ctx.record(loss, penalty, n)` once.
        The default is `ctx.default_step(batch)`."""
        ctx.default_step(batch)

    def after_step(self, ctx: TrainContext) -> None:
        """Called after every optimizer step (max-norm projection, SWA's per-step average)."""

    def end_epoch(self, ctx: TrainContext) -> None:
        """Called after each epoch's last step, before validation (SWA's average,
        snapshots)."""

    # -- 4. what is evaluated ---------------------------------------------------------
    def eval_model(self, ctx: TrainContext) -> nn.Module | None:
        """The model whose metrics are reported after training (SWA's averaged model, a
        snapshot ensemble), or None for the trained model itself."""
        return None


HOOKS: tuple[str, ...] = (
    "configure_model", "transform_model", "configure_optimizer", "wrap_optimizer",
    "loss_kwargs", "train_fraction", "patience", "start_epoch", "batch", "augment", "penalty",
    "train_step", "after_step", "end_epoch", "eval_model",
)


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
        got = [p.name for p in inspect.signature(mine).parameters.values()
               if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(got) != len(want):
            problems.append(f"{hook}({', '.join(got)}) should take "
                            f"({', '.join(want)})")
    return problems
