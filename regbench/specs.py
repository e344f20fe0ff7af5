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
    """Lookup and display of a spec's (name, params)."""

    name: str
    params: Params

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



@dataclass(frozen=True)
class ArchSpec(_Named):
    """An architecture by registry name plus builder parameters (width, depth, poly...)."""

    name: str
    params: Params = ()



@dataclass(frozen=True)
class RegSpec(_Named):
    """A regularizer by registry name, its strength, and extra parameters (backend...)."""

    name: str
    strength: float = 0.0
    params: Params = ()



@dataclass(frozen=True)
class Cell:
    """One unit of work: a (task, arch, regularizer, seed) combination at a suite version."""

    task: TaskSpec
    arch: ArchSpec
    reg: RegSpec
    seed: int
    protocol: Params = ()  # overrides of the task's training protocol (epochs, lr, batch_size)
    suite_version: str = SUITE_VERSION

    def key(self) -> dict[str, Any]:
        """The fields that define the cell, in canonical JSON-able form."""
        return {
            "suite_version": self.suite_version,
            "task": [self.task.name, _canon(self.task.params)],
            "arch": [self.arch.name, _canon(self.arch.params)],
            "reg": [self.reg.name, _canon(float(self.reg.strength)), _canon(self.reg.params)],
            "seed": int(self.seed),
            "protocol": _canon(self.protocol),
        }

    @property
    def cell_id(self) -> str:
        blob = json.dumps(self.key(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def describe(self) -> str:
        return (
            f"{self.task.label()} / {self.arch.label()} / {self.reg.label()}"
            f"={self.reg.strength:g} / seed {self.seed}"
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def from_json(blob: str) -> Cell:
        d = json.loads(blob)
        return Cell(
            task=TaskSpec(d["task"]["name"], freeze(d["task"]["params"])),
            arch=ArchSpec(d["arch"]["name"], freeze(d["arch"]["params"])),
            reg=RegSpec(d["reg"]["name"], float(d["reg"]["strength"]), freeze(d["reg"]["params"])),
            seed=int(d["seed"]),
            protocol=freeze(d["protocol"]),
            suite_version=d["suite_version"],
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
            "seed": c.seed,
            "protocol": json.dumps(dict(c.protocol), sort_keys=True),
            "status": self.status,
            "error": self.error,
            "cell_json": c.to_json(),
            **self.metrics,
            **self.provenance,
        }
