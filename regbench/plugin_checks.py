"""What a plugin entry declares, checked when it registers: each problem is a phrase of
the one-line error that names the plugin and the entry (never a traceback later, when a
matrix is built or a cell runs)."""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any

CLASS_METHODS = {
    "regularizer": ("check", "check_protocol", "skip_reason", "search_space", "ownership"),
    "task": (),
    "architecture": (),
}
NAME_SETS = {"regularizer": ("owns", "provides", "requires"),
             "task": ("inputs",), "architecture": ("inputs", "capabilities")}


def _is_name_set(value: Any) -> bool:
    return isinstance(value, (set, frozenset)) and all(isinstance(v, str) for v in value)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


def declaration_problems(kind: str, entry: Any) -> list[str]:
    """Phrases for what `entry` (a class being registered as `kind`) declares wrongly."""
    problems = []
    for attr in CLASS_METHODS[kind]:
        raw = inspect.getattr_static(entry, attr, None)
        if raw is not None and not isinstance(raw, classmethod):
            problems.append(f"{attr} must be a classmethod (decorate it with @classmethod), "
                            f"got {type(raw).__name__}")
    for attr in NAME_SETS[kind]:
        value = getattr(entry, attr, frozenset())
        if not _is_name_set(value):
            problems.append(f"{attr} must be a set of names, e.g. frozenset({{\"x\"}}); got "
                            f"{value!r}")
    if kind == "regularizer":
        problems += _regularizer_problems(entry)
    if kind == "task" and getattr(entry, "protocol", None) is not None:
        problems += _protocol_problems(entry.protocol)
    return problems


def _regularizer_problems(entry: Any) -> list[str]:
    out = []
    lo_hi = getattr(entry, "strength_range", None)
    if not (isinstance(lo_hi, tuple) and len(lo_hi) == 2 and all(map(_number, lo_hi))
            and lo_hi[0] <= lo_hi[1]):
        out.append(f"strength_range must be a (lo, hi) tuple of numbers with lo <= hi; got "
                   f"{lo_hi!r}")
        return out
    for attr in ("default_strengths", "full_strengths"):
        values = getattr(entry, attr, ())
        if not isinstance(values, tuple) or not all(map(_number, values)):
            out.append(f"{attr} must be a tuple of numbers; got {values!r}")
        elif any(not lo_hi[0] <= v <= lo_hi[1] for v in values):
            out.append(f"{attr} {values!r} lie outside strength_range {lo_hi!r}")
    kind = getattr(entry, "needs_kind", None)
    if kind not in (None, "regression", "classification"):
        out.append(f"needs_kind must be None, \"regression\" or \"classification\"; got "
                   f"{kind!r}")
    if not isinstance(getattr(entry, "needs_capability", None), (str, type(None))):
        out.append(f"needs_capability must be a name or None; got {entry.needs_capability!r}")
    if getattr(entry, "seed_streams", {}):
        out.append("seed_streams is for the built-ins' pinned seeds; a plugin draws from "
                   "self.generator(stream)")
    if not isinstance(getattr(entry, "params", {}), dict):
        out.append(f"params must be a dict of regbench.Param; got {entry.params!r}")
    return out


def _protocol_problems(protocol: Any) -> list[str]:
    from regbench.errors import RegbenchError
    from regbench.interface import PROTOCOL_FIELDS, Protocol
    from regbench.params import check_values

    if not isinstance(protocol, Protocol):
        return [f"protocol must be a regbench.Protocol; got {type(protocol).__name__}"]
    try:
        check_values("protocol", "", dataclasses.asdict(protocol), PROTOCOL_FIELDS)
        protocol.override(())
    except RegbenchError as exc:
        return [f"its protocol: {exc}"]
    return []


def guarded(registry: Any, name: str, method: str, fn: Any, *args: Any) -> Any:
    """`fn(*args)`, a method of entry `name` called when a matrix is built: a RegbenchError
    passes through (a refusal is one line already); any other exception of a plugin's code
    becomes one MatrixError line naming the entry, where it comes from and the method."""
    from regbench.errors import MatrixError, RegbenchError

    try:
        return fn(*args)
    except RegbenchError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise MatrixError(f"{registry.kind} {name!r} ({origin(registry, name)}): its {method} "
                          f"raised {type(exc).__name__}: {first}") from None


def origin(registry: Any, name: str) -> str:
    """"built-in", or "plugin file PATH" (module, package): where entry `name` is from."""
    where = registry.origin(name)
    return where if where == "built-in" else f"plugin {where}"
