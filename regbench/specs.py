"""Frozen descriptions of what runs (Cell) and what a run returns (CellResult).

A cell is (task, arch, regularizer with its strength, seed index, protocol overrides,
suite version). Its id is a stable hash of exactly those fields, so the same cell
has the same id on every machine and in every store.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

# Bump whenever a task, architecture, regularizer or the training protocol changes in a
# way that changes results; cells of another suite version never satisfy a run.
SUITE_VERSION = "2"

Params = tuple[tuple[str, Any], ...]


def freeze(params: dict[str, Any] | Params | None) -> Params:
    """Turn a mapping into a sorted, hashable tuple of (key, value) pairs."""
    if not params:
        return ()
    items = params.items() if isinstance(params, dict) else params
    return tuple(sorted((str(k), _hashable(v)) for k, v in items))


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def _canon(value: Any) -> Any:
    """Canonical JSON-able form: numbers as floats when integral-valued floats, tuples as lists."""
    if isinstance(value, tuple):
        return [_canon(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"non-finite parameter value {value!r}")
        return int(value) if value.is_integer() else repr(value)
    return value


class _Named:
    """Lookup and display of a spec's (name, params); `version` is a plugin entry's declared
    code version (None for built-ins, which SUITE_VERSION covers)."""

    name: str
    params: Params
    version: str | None

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)

    def label(self) -> str:
        """`name` or `name[k=v,...]`: how tables and figures name the spec."""
        if not self.params:
            return self.name
        return self.name + "[" + ",".join(f"{k}={v}" for k, v in self.params) + "]"


@dataclass(frozen=True)
class TaskSpec(_Named):
    """A task by registry name plus data parameters (e.g. label_noise, n_train)."""

    name: str
    params: Params = ()
    version: str | None = None

    def key(self) -> list[Any]:
        return _versioned([self.name, _canon(self.params)], self.version)


@dataclass(frozen=True)
class ArchSpec(_Named):
    """An architecture by registry name plus builder parameters (width, depth, poly...)."""

    name: str
    params: Params = ()
    version: str | None = None

    def key(self) -> list[Any]:
        return _versioned([self.name, _canon(self.params)], self.version)


@dataclass(frozen=True)
class RegSpec(_Named):
    """A regularizer by registry name, its strength, and extra parameters (backend...)."""

    name: str
    strength: float = 0.0
    params: Params = ()
    version: str | None = None

    def key(self) -> list[Any]:
        return _versioned([self.name, _canon(float(self.strength)), _canon(self.params)],
                          self.version)

    def stack_label(self) -> str:
        """`name=strength` or `name[k=v,...]=strength`: one element of a stack."""
        return f"{self.label()}={self.strength:g}"


def _versioned(key: list[Any], version: str | None) -> list[Any]:
    """A spec's key, with a plugin's version appended (built-ins' keys never change)."""
    return key if version is None else [*key, {"version": version}]


def stack_label(specs: tuple[RegSpec, ...]) -> str:
    """`a=1 + b[k=v]=0.1`: how tables name a base recipe or a `with` list ('' if empty)."""
    return " + ".join(s.stack_label() for s in specs)


def _spec_json(spec: Any) -> dict[str, Any]:
    d = asdict(spec)
    if d.get("version") is None:
        d.pop("version", None)  # built-in specs serialize as before versions existed
    return d


def _reg_from(d: dict[str, Any]) -> RegSpec:
    return RegSpec(d["name"], float(d["strength"]), freeze(d["params"]), d.get("version"))


@dataclass(frozen=True)
class Cell:
    """One unit of work: a (task, arch, regularizer, seed) combination at a suite version."""

    task: TaskSpec
    arch: ArchSpec
    reg: RegSpec
    seed: int
    protocol: Params = ()  # overrides of the task's training protocol (epochs, lr, batch_size)
    suite_version: str = SUITE_VERSION
    # "cpu" or "cuda:<GPU name>"; left out of the id for "cpu", so CPU ids never changed
    device: str = "cpu"
    # A stack: the block's base recipe (applied before `reg`) and the entry's `with` list
    # (after it). Left out of the id when empty, so single-regularizer ids never changed.
    base: tuple[RegSpec, ...] = ()
    addons: tuple[RegSpec, ...] = ()
    # A cell of an equal-budget study (regbench.tuning): its study, trial and role ("trial"
    # or "final"). Left out of the id when empty, so grid cells' ids never changed.
    tune: Params = ()

    def key(self) -> dict[str, Any]:
        """The fields that define the cell, in canonical JSON-able form."""
        extra: dict[str, Any] = {} if self.device == "cpu" else {"device": self.device}
        if self.base:
            extra["base"] = [s.key() for s in self.base]
        if self.addons:
            extra["with"] = [s.key() for s in self.addons]
        if self.tune:
            extra["tune"] = _canon(self.tune)
        return {
            **extra,
            "suite_version": self.suite_version,
            "task": self.task.key(),
            "arch": self.arch.key(),
            "reg": self.reg.key(),
            "seed": int(self.seed),
            "protocol": _canon(self.protocol),
        }

    def stack(self) -> tuple[RegSpec, ...]:
        """The regularizers of the cell in the order their hooks run: base, entry, with."""
        return (*self.base, self.reg, *self.addons)

    def reg_label(self) -> str:
        """The entry and its `with` list, as tables name the regularizer column."""
        return " + ".join([self.reg.label(), *(s.stack_label() for s in self.addons)])

    @property
    def cell_id(self) -> str:
        blob = json.dumps(self.key(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def describe(self) -> str:
        reg = f"{self.reg.label()}={self.reg.strength:g}"
        if self.addons:
            reg += " + " + stack_label(self.addons)
        if self.base:
            reg += " on " + stack_label(self.base)
        return (
            f"{self.task.label()} / {self.arch.label()} / {reg} / seed {self.seed}"
            + ("" if self.device == "cpu" else f" / {self.device}")
        )

    def to_json(self) -> str:
        d: dict[str, Any] = {
            "task": _spec_json(self.task), "arch": _spec_json(self.arch),
            "reg": _spec_json(self.reg), "seed": self.seed, "protocol": self.protocol,
            "suite_version": self.suite_version,
        }
        if self.device != "cpu":  # CPU cells serialize as before the device field existed
            d["device"] = self.device
        if self.base:
            d["base"] = [_spec_json(s) for s in self.base]
        if self.addons:
            d["addons"] = [_spec_json(s) for s in self.addons]
        if self.tune:
            d["tune"] = dict(self.tune)
        return json.dumps(d, sort_keys=True)

    def tune_json(self) -> str:
        """The `tune` field as stored: JSON of study, trial, role... ('' for a grid cell)."""
        return json.dumps(dict(self.tune), sort_keys=True) if self.tune else ""

    @staticmethod
    def from_json(blob: str) -> Cell:
        d = json.loads(blob)
        return Cell(
            task=TaskSpec(d["task"]["name"], freeze(d["task"]["params"]),
                          d["task"].get("version")),
            arch=ArchSpec(d["arch"]["name"], freeze(d["arch"]["params"]),
                          d["arch"].get("version")),
            reg=_reg_from(d["reg"]),
            seed=int(d["seed"]),
            protocol=freeze(d["protocol"]),
            suite_version=d["suite_version"],
            device=d.get("device", "cpu"),
            base=tuple(_reg_from(s) for s in d.get("base", ())),
            addons=tuple(_reg_from(s) for s in d.get("addons", ())),
            tune=freeze(d.get("tune")),
        )


STATUSES = ("ok", "diverged", "failed")


@dataclass
class CellResult:
    """What running a cell returns: one row of the public schema plus curves and artifacts."""

    cell: Cell
    status: str
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    curves: list[dict[str, float]] = field(default_factory=list)
    artifacts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")

    def row(self) -> dict[str, Any]:
        """The flat row stored in the `cells` table."""
        c = self.cell
        return {
            "cell_id": c.cell_id,
            "suite_version": c.suite_version,
            "task": c.task.name,
            "task_params": json.dumps(dict(c.task.params), sort_keys=True),
            "arch": c.arch.name,
            "arch_params": json.dumps(dict(c.arch.params), sort_keys=True),
            "regularizer": c.reg.name,
            "strength": float(c.reg.strength),
            "reg_params": json.dumps(dict(c.reg.params), sort_keys=True),
            "base": stack_label(c.base),
            "addons": stack_label(c.addons),
            "tune": c.tune_json(),
            "seed": c.seed,
            "protocol": json.dumps(dict(c.protocol), sort_keys=True),
            "status": self.status,
            "error": self.error,
            "cell_json": c.to_json(),
            **self.metrics,
            **self.provenance,
        }
