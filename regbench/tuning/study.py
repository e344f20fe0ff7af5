"""One equal-budget study: an entry of a `tune` block on one (task, architecture), its
trials and its final cells.

A study is rebuilt from the store every time it is planned: a fresh Optuna study with the
study's seeded sampler asks the trials batch by batch and is told each batch's stored
validation scores, in trial order, before the next batch is asked. The trials therefore
depend on the matrix and the stored numbers only (never on workers or timing), and a
resumed run asks exactly the trials an uninterrupted one asks. Regbench's store stays the
only record; Optuna's study lives in memory for the length of one plan.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from regbench import seeding
from regbench.params import without_defaults
from regbench.registry import REGULARIZERS
from regbench.specs import ArchSpec, Cell, Params, RegSpec, TaskSpec, freeze, stack_label
from regbench.tuning.config import TuneConfig
from regbench.tuning.samplers import SAMPLERS
from regbench.tuning.space import LogUniform, Space

COCKTAIL = "cocktail"  # the entry name of a block's cocktail study


@dataclass(frozen=True)
class Member:
    """A regularizer a study samples: its fixed parameters and its search space."""

    name: str
    fixed: Params
    version: str | None
    space: tuple[tuple[str, Space], ...]
    owns: frozenset[str]

    def spec(self, values: Mapping[str, Any]) -> RegSpec:
        """The RegSpec of sampled `values` ("strength" and parameters) on the fixed ones."""
        cls = REGULARIZERS.get(self.name)
        params = {**dict(self.fixed), **{k: v for k, v in values.items() if k != "strength"}}
        strength = float(values.get("strength", _single_strength(cls)))
        return RegSpec(self.name, strength, freeze(without_defaults(params, cls.params)),
                       self.version)


def _single_strength(cls: Any) -> float:
    """The strength of a regularizer with no strength dimension (range of one point)."""
    return float(cls.strength_range[0])


@dataclass(frozen=True)
class Study:
    """An entry of a tuned block on one setting: what is sampled and how cells are made."""

    name: str
    task: TaskSpec
    arch: ArchSpec
    entry: str  # the regularizer's name, or "cocktail"
    members: tuple[Member, ...]
    base: tuple[RegSpec, ...]
    addons: tuple[RegSpec, ...]
    protocol: Params  # the block's overrides
    lr0: float  # the protocol's lr (after the block's overrides)
    adam_lr0: float
    lr: LogUniform
    config: TuneConfig
    higher_is_better: bool
    baseline: tuple[Cell, ...] = ()  # the grid cells at the first default strength (tunability)

    @property
    def cocktail(self) -> bool:
        return self.entry == COCKTAIL

    def settings(self) -> dict[str, Any]:
        """What, besides the name, decides the trials: part of every cell's `tune` field."""
        c = self.config
        return {"study": self.name, "sampler": c.sampler, "batch": c.batch,
                "tune_seeds": c.tune_seeds, "lr": [self.lr.lo, self.lr.hi]}

    def seed(self) -> int:
        """The sampler's seed: a function of the study (its cells' settings and space)."""
        blob = json.dumps({**self.settings(), "space": self.space_lines()}, sort_keys=True)
        return seeding.derive("tune", 0, blob) % 2**32

    def space_lines(self) -> list[str]:
        """The search space in words, one line per dimension."""
        lines = [f"lr: {self.lr.describe()}"]
        for m in self.members:
            prefix = f"{m.name} " if self.cocktail else ""
            if self.cocktail:
                lines.append(f"{m.name}: on or off")
            lines += [f"{prefix}{k}: {s.describe()}" for k, s in m.space]
        return lines

    # -- sampling ---------------------------------------------------------------------------
    def suggest(self, trial: Any) -> tuple[float, tuple[RegSpec, ...]]:
        """(lr, the regularizers of the configuration) drawn through an Optuna trial. In a
        cocktail a member that owns a part of training an earlier member that is on owns
        too is left off (never two owners of one part)."""
        lr = trial.suggest_float("lr", self.lr.lo, self.lr.hi, log=True)
        specs: list[RegSpec] = []
        # the block's base recipe is on in every trial: what it owns stays its own
        owned: set[str] = set().union(*(REGULARIZERS.get(s.name).ownership()
                                        for s in self.base))
        taken = {s.name for s in self.base}
        for m in self.members:
            if self.cocktail:
                if (m.owns & owned or m.name in taken
                        or not trial.suggest_categorical(m.name, [False, True])):
                    continue
                owned |= m.owns
            prefix = f"{m.name}." if self.cocktail else ""
            values = {k: _suggest(trial, prefix + k, s) for k, s in m.space}
            specs.append(m.spec(values))
        return lr, tuple(specs)

    # -- cells ------------------------------------------------------------------------------
    def cells(self, lr: float, specs: tuple[RegSpec, ...], seeds: range, trial: int,
              role: str) -> list[Cell]:
        """The cells of one configuration on `seeds`, tagged with the study, trial and role."""
        adam_lr = lr if self.adam_lr0 == self.lr0 else self.adam_lr0 * (lr / self.lr0)
        protocol = freeze({**dict(self.protocol), "lr": lr, "adam_lr": adam_lr})
        tag = freeze({**self.settings(), "trial": trial, "role": role})
        if self.cocktail:
            reg, addons = RegSpec("none", 0.0), (*specs, *self.addons)
        else:
            reg, addons = specs[0], self.addons
        return [Cell(self.task, self.arch, reg, seed, protocol, base=self.base,
                     addons=addons, tune=tag) for seed in seeds]

    def label(self) -> str:
        """The study's entry as tables name it (`dropout`, `cocktail`, `x on base`)."""
        text = self.entry
        if self.addons:
            text += " + " + stack_label(self.addons)
        return text


def _suggest(trial: Any, name: str, space: Space) -> Any:
    from regbench.tuning.space import Choice, IntUniform, Uniform

    if isinstance(space, LogUniform):
        return trial.suggest_float(name, space.lo, space.hi, log=True)
    if isinstance(space, Uniform):
        return trial.suggest_float(name, space.lo, space.hi)
    if isinstance(space, IntUniform):
        return trial.suggest_int(name, space.lo, space.hi, log=space.log)
    assert isinstance(space, Choice)
    return trial.suggest_categorical(name, list(space.options))


# -- planning --------------------------------------------------------------------------------
@dataclass
class Trial:
    """One configuration of a study: its cells and, once they are stored, its score."""

    index: int
    lr: float
    specs: tuple[RegSpec, ...]
    cells: list[Cell]
    value: float | None = None  # mean validation metric over the tuning seeds; None: failed
    complete: bool = False


@dataclass
class Plan:
    """Where a study stands against the store."""

    study: Study
    trials: list[Trial] = field(default_factory=list)
    final: list[Cell] = field(default_factory=list)
    selected: int | None = None
    pending: list[Cell] = field(default_factory=list)  # determined, not stored yet
    baseline: list[Cell] = field(default_factory=list)  # the study's baseline, on the device

    @property
    def done(self) -> bool:
        return not self.pending and len(self.trials) == self.study.config.trials and all(
            t.complete for t in self.trials)

    def known(self) -> list[Cell]:
        """Every cell the study has determined so far: trials asked, finals, baselines."""
        return [c for t in self.trials for c in t.cells] + self.final + self.baseline


Results = Mapping[str, tuple[str, float | None]]  # cell id -> (status, validation metric)


def plan(study: Study, results: Results, device: str = "cpu") -> Plan:
    """Replay `study` against `results`: ask batch after batch, telling each stored batch's
    scores, until a batch has cells not stored (they are `pending`) or every trial is told;
    then the final cells of the best trial (ties: the earlier trial)."""
    import optuna
    from optuna.trial import TrialState

    on = (lambda cs: cs) if device == "cpu" else (
        lambda cs: [replace(c, device=device) for c in cs])
    out = Plan(study, baseline=on(list(study.baseline)))
    cfg = study.config
    optuna.logging.set_verbosity(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning for QMC's options
        ostudy = optuna.create_study(
            direction="maximize" if study.higher_is_better else "minimize",
            sampler=SAMPLERS[cfg.sampler](study.seed(), cfg.trials, cfg.batch))
        for start in range(0, cfg.trials, cfg.batch):
            asked = [ostudy.ask() for _ in range(min(cfg.batch, cfg.trials - start))]
            batch = []
            for i, t in enumerate(asked):
                lr, specs = study.suggest(t)
                cells = on(study.cells(lr, specs, cfg.tune_seed_indices, start + i, "trial"))
                batch.append(Trial(start + i, lr, specs, cells))
            out.trials += batch
            missing = [c for tr in batch for c in tr.cells if c.cell_id not in results]
            if missing:
                out.pending = missing
                return out
            for t, tr in zip(asked, batch):
                tr.value, tr.complete = _score(tr.cells, results), True
                if tr.value is None:
                    ostudy.tell(t, state=TrialState.FAIL)
                else:
                    ostudy.tell(t, tr.value)
    out.selected = best(out.trials, study.higher_is_better)
    if out.selected is not None:
        t = out.trials[out.selected]
        out.final = on(study.cells(t.lr, t.specs, cfg.test_seed_indices, t.index, "final"))
    out.pending = [c for c in [*out.final, *out.baseline] if c.cell_id not in results]
    return out


def _score(cells: list[Cell], results: Results) -> float | None:
    """Mean validation metric over a trial's seeds; None when a cell is not ok or has none."""
    values = []
    for c in cells:
        status, val = results[c.cell_id]
        if status != "ok" or val is None or not math.isfinite(val):
            return None
        values.append(float(val))
    return sum(values) / len(values)


def best(trials: list[Trial], higher_is_better: bool) -> int | None:
    """The index of the trial with the best score (the first of equals), or None."""
    scored = [t for t in trials if t.value is not None]
    if not scored:
        return None
    sign = -1.0 if higher_is_better else 1.0
    return min(scored, key=lambda t: (sign * t.value, t.index)).index
