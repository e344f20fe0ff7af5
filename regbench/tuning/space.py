"""Search distributions: where a tunable knob may be sampled, declared beside the knob.

A regularizer declares `strength_space` and, per parameter, `Param(..., space=...)`; the
protocol's learning rate is searched over `lr_space(protocol)` unless a block gives a range.
Each distribution checks its own range (empty or non-finite ranges are refused when the
matrix is built), names itself in words (`regbench list regularizers`), and turns into the
Optuna distribution the samplers draw from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from regbench.errors import MatrixError


def _num(v: float) -> str:
    return f"{v:g}"


@dataclass(frozen=True)
class LogUniform:
    """A float drawn uniformly on a log scale in [lo, hi] (0 < lo <= hi)."""

    lo: float
    hi: float

    def check(self, where: str) -> None:
        if not (_finite(self.lo) and _finite(self.hi)) or not 0 < self.lo <= self.hi:
            raise MatrixError(f"{where}: log-uniform range [{self.lo!r}, {self.hi!r}] is not "
                              "allowed; allowed: finite numbers 0 < lo <= hi")

    def describe(self) -> str:
        return f"log-uniform [{_num(self.lo)}, {_num(self.hi)}]"

    def optuna(self) -> Any:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.lo, self.hi, log=True)

    def values(self) -> tuple[Any, ...]:
        """Representative values (the range's ends) for a check against a protocol."""
        return (self.lo, self.hi)


@dataclass(frozen=True)
class Uniform:
    """A float drawn uniformly in [lo, hi] (lo <= hi)."""

    lo: float
    hi: float

    def check(self, where: str) -> None:
        if not (_finite(self.lo) and _finite(self.hi)) or not self.lo <= self.hi:
            raise MatrixError(f"{where}: uniform range [{self.lo!r}, {self.hi!r}] is not "
                              "allowed; allowed: finite numbers lo <= hi")

    def describe(self) -> str:
        return f"uniform [{_num(self.lo)}, {_num(self.hi)}]"

    def optuna(self) -> Any:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.lo, self.hi)

    def values(self) -> tuple[Any, ...]:
        return (self.lo, self.hi)


@dataclass(frozen=True)
class IntUniform:
    """An integer drawn uniformly from lo..hi inclusive (on a log scale with `log`)."""

    lo: int
    hi: int
    log: bool = False

    def check(self, where: str) -> None:
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (self.lo, self.hi))
        if not ints or not self.lo <= self.hi or (self.log and self.lo < 1):
            raise MatrixError(f"{where}: integer range [{self.lo!r}, {self.hi!r}] is not "
                              f"allowed; allowed: integers lo <= hi"
                              + (" with lo >= 1 (log scale)" if self.log else ""))

    def describe(self) -> str:
        return f"integer{' log' if self.log else ''} {self.lo}..{self.hi}"

    def optuna(self) -> Any:
        from optuna.distributions import IntDistribution

        return IntDistribution(self.lo, self.hi, log=self.log)

    def values(self) -> tuple[Any, ...]:
        return tuple(range(self.lo, self.hi + 1)) if self.hi - self.lo < 64 else (
            self.lo, self.hi)


@dataclass(frozen=True)
class Choice:
    """One of `options` (numbers, strings or booleans), each equally likely."""

    options: tuple[Any, ...]

    def check(self, where: str) -> None:
        if not isinstance(self.options, tuple) or not self.options:
            raise MatrixError(f"{where}: a choice needs at least one option, got "
                              f"{self.options!r}")
        if len(set(self.options)) != len(self.options):
            raise MatrixError(f"{where}: choice options {list(self.options)!r} repeat a value")
        bad = [o for o in self.options if isinstance(o, float) and not math.isfinite(o)]
        if bad:
            raise MatrixError(f"{where}: choice option {bad[0]!r} is not finite")

    def describe(self) -> str:
        return "one of " + ", ".join(_num(o) if isinstance(o, float) else str(o)
                                     for o in self.options)

    def optuna(self) -> Any:
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(self.options)

    def values(self) -> tuple[Any, ...]:
        return self.options


Space = LogUniform | Uniform | IntUniform | Choice
SPACE_TYPES = (LogUniform, Uniform, IntUniform, Choice)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def lr_space(lr: float, given: Any = None, where: str = "tune") -> LogUniform:
    """The learning rate's search space: log-uniform over [lr / 10, 10 x lr] of the task's
    protocol, or the block's `lr = [lo, hi]`."""
    if given is None:
        return LogUniform(lr / 10, lr * 10)
    if (not isinstance(given, list) or len(given) != 2
            or not all(_finite(v) for v in given)):
        raise MatrixError(f"{where}: lr={given!r} is not allowed; allowed: [lo, hi], two "
                          "numbers 0 < lo <= hi (searched log-uniformly)")
    space = LogUniform(float(given[0]), float(given[1]))
    space.check(f"{where}: lr")
    return space
