"""Declared parameters: a default, a type and an allowed range or set of choices.

Tasks, architectures, regularizers and the training protocol declare their parameters as
`{name: Param(...)}` (a bare default is shorthand for `Param(default)`, its type taken from
the default). A matrix is checked against these declarations when it is built, so a bad
value stops the run before anything trains or is written, with a message that names the
field, the value and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from regbench.errors import RegbenchError

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


@dataclass(frozen=True)
class Param:
    """One parameter: `default`, its `type` (int, float, str, bool), bounds, choices.

    `lo`/`hi` are inclusive unless `lo_open`/`hi_open`; `optional` lets the value be None
    (TOML cannot write None: it is the "not set" default, e.g. n_train = all).
    `omit_default`: a matrix entry that gives the default is built as one that leaves the
    parameter out, so adding such a parameter never changes an existing cell's id or result.
    `space`: the parameter's search distribution for `tune` blocks (None: not tuned).
    """

    default: Any
    type: type | None = None
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple[Any, ...] | None = None
    optional: bool = False
    omit_default: bool = False
    doc: str = ""
    # where equal-budget tuning samples it (a regbench.tuning.space distribution), or None:
    # the parameter keeps its default (or the entry's value) in every trial
    space: Any = None

    @property
    def kind(self) -> type:
        if self.type is not None:
            return self.type
        if self.choices:
            return type(self.choices[0])
        if self.default is None:
            raise TypeError("a Param with default None needs an explicit type")
        return type(self.default)

    def allowed(self) -> str:
        """What values are allowed, in words."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        text = _TYPE_NAMES.get(self.kind, self.kind.__name__)
        bounds = []
        if self.lo is not None:
            bounds.append(f"{'>' if self.lo_open else '>='} {_num(self.lo)}")
        if self.hi is not None:
            bounds.append(f"{'<' if self.hi_open else '<='} {_num(self.hi)}")
        if bounds:
            text += " " + " and ".join(bounds)
        return text + (" (or unset)" if self.optional else "")

    def validate(self, where: str, name: str, value: Any) -> Any:
        """`value` if it is allowed (ints accepted for floats), else a RegbenchError."""

        def bad() -> RegbenchError:
            return RegbenchError(f"{where}: {name}={value!r} is not allowed; "
                                 f"allowed: {self.allowed()}")

        if value is None:
            if self.optional:
                return None
            raise bad()
        kind = self.kind
        if kind is bool:
            if not isinstance(value, bool):
                raise bad()
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad()
        elif kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad()
            if not finite(value):
                raise bad()
        elif not isinstance(value, kind):
            raise bad()
        if self.choices is not None and value not in self.choices:
            raise bad()
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            raise bad()
        if self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi):
            raise bad()
        return value


def finite(value: Any) -> bool:
    """A real number (not bool) that is finite as a float (huge ints are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def as_param(spec: Any) -> Param:
    """A declared entry as a Param (a bare default becomes Param(default))."""
    return spec if isinstance(spec, Param) else Param(spec)


def default(spec: Any) -> Any:
    return as_param(spec).default


def without_defaults(given: Mapping[str, Any], declared: Mapping[str, Any]) -> dict[str, Any]:
    """`given` less the `omit_default` parameters that equal their default."""
    return {k: v for k, v in given.items()
            if not (k in declared and as_param(declared[k]).omit_default
                    and v == as_param(declared[k]).default)}


def check_values(kind: str, name: str, given: Mapping[str, Any],
                 declared: Mapping[str, Any]) -> None:
    """Refuse unknown parameters and values outside their declared type or range."""
    valid = sorted(declared)
    unknown = [k for k in given if k not in declared]
    if unknown:
        what = f"{kind} {name!r}" if name else kind
        raise RegbenchError(f"unknown parameter(s) {unknown} for {what}; "
                            f"valid choices: {', '.join(valid) or '(none)'}")
    for key, value in given.items():
        as_param(declared[key]).validate(f"{kind} {name!r}" if name else kind, key, value)
