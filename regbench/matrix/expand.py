"""Expanding a matrix into cells: each block's tasks x archs x regularizers (at their
strengths, with their stacks) x seeds, every value checked, incompatible combinations
skipped with their reason; a tuned block becomes studies (regbench.tuning)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from regbench.errors import MatrixError, UnknownNameError
from regbench.matrix.composition import check_composable
from regbench.params import finite, without_defaults
from regbench.plugin_checks import guarded, origin
from regbench.registry import ARCHS, REGULARIZERS, TASKS, Registry
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze

if TYPE_CHECKING:
    from regbench.matrix.format import Matrix

STRENGTH_SETS = ("default", "full", "first")
MAX_SEEDS = 10_000


@dataclass(frozen=True)
class Skip:
    task: str
    arch: str
    regularizer: str
    reason: str


@dataclass
class Expansion:
    """A matrix's grid cells, its tuned blocks' studies (whose cells depend on stored
    results: `regbench.tuning.driver`) and the combinations it skips."""

    cells: list[Cell] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    studies: list[Any] = field(default_factory=list)  # regbench.tuning.study.Study

    def size(self) -> int:
        """Grid cells plus, per study, every trial, final and baseline cell it will make."""
        fixed = {c.cell_id for c in self.cells} | {
            c.cell_id for s in self.studies for c in s.baseline}  # baselines may be grid cells
        return len(fixed) + sum(s.config.trials * s.config.tune_seeds + s.config.test_seeds
                                for s in self.studies)


def expand(m: Matrix, seeds: int | None = None, tasks: list[str] | None = None,
           regularizers: list[str] | None = None) -> Expansion:
    """All cells of `m` (in a stable order) and the skipped combinations with reasons."""
    for name in tasks or []:
        TASKS.get(name)
    for name in regularizers or []:
        if name != "cocktail":  # a tuned block's cocktail study
            REGULARIZERS.get(name)
    n_seeds = m.seeds if seeds is None else seeds
    if not 1 <= n_seeds <= MAX_SEEDS:
        raise MatrixError(f"--seeds must be in [1, {MAX_SEEDS}], got {n_seeds}")
    m.check_size(f"matrix {m.name!r}", n_seeds)
    out, seen_skips, seen_cells = Expansion(), set(), set()
    for i, block in enumerate(m.blocks):
        if "tune" in block:
            from regbench.tuning.build import block_studies

            studies, skipped = block_studies(block, i, tasks, regularizers)
            known = {s.name for s in out.studies}
            out.studies += [s for s in studies if s.name not in known]
            out.skipped += [s for s in skipped if s not in seen_skips]
            seen_skips.update(skipped)
            continue
        protocol = freeze(block.get("protocol", {}))
        base = _stack(block.get("base", []), f"block {i} base")
        for t, a, (r, strengths, addons) in itertools.product(
            _specs(block["tasks"], TASKS, TaskSpec), _specs(block["archs"], ARCHS, ArchSpec),
            _reg_specs(block["regularizers"], block.get("strengths", "default")),
        ):
            if tasks and t.name not in tasks or regularizers and r.name not in regularizers:
                continue
            task, arch = TASKS.get(t.name)().bind(t), ARCHS.get(a.name)()
            reg_cls = REGULARIZERS.get(r.name)
            proto = task.protocol.override(protocol)
            check_composable((*base, r, *addons))
            reason = skip_reason(t, task, a, arch, (*base, r, *addons))
            if reason:
                label = " + ".join([r.label(), *(s.label() for s in addons)])
                if base:
                    label += " on " + " + ".join(s.label() for s in base)
                skip = Skip(t.label(), a.label(), label, reason)
                if skip not in seen_skips:
                    seen_skips.add(skip)
                    out.skipped.append(skip)
                continue
            for s in (*base, *addons):
                guarded(REGULARIZERS, s.name, "check_protocol",
                        REGULARIZERS.get(s.name).check_protocol, s, proto)
            for strength in strengths:
                spec = RegSpec(r.name, float(strength), r.params, r.version)
                guarded(REGULARIZERS, r.name, "check", reg_cls.check, spec)
                guarded(REGULARIZERS, r.name, "check_protocol", reg_cls.check_protocol,
                        spec, proto)
                for seed in range(n_seeds):
                    cell = Cell(t, a, spec, seed, protocol, base=base, addons=addons)
                    if cell.cell_id not in seen_cells:
                        seen_cells.add(cell.cell_id)
                        out.cells.append(cell)
    return out



def _entry(entry: str | dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    if isinstance(entry, str):
        return entry, {}
    if isinstance(entry, dict) and isinstance(entry.get("name"), str):
        params = {k: v for k, v in entry.items() if k != "name"}
        return entry["name"], params
    article = "an" if kind[:1] in "aeiou" else "a"
    raise MatrixError(f"{article} {kind} entry must be a name or a table with 'name', "
                      f"got {entry!r}")


def _sweep(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Cartesian product over list-valued parameters."""
    keys = list(params)
    values = [v if isinstance(v, list) else [v] for v in params.values()]
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def _specs(entries: list[Any], registry: Registry, spec_type: type) -> list[Any]:
    """Task or arch specs of a block, list-valued parameters swept, each one checked."""
    specs = []
    for e in entries:
        name, params = _entry(e, registry.kind)
        entry = registry.get(name)()
        for p in _sweep(params):
            entry.check(spec_type(name, freeze(p)))
            spec = spec_type(name, freeze(without_defaults(p, getattr(entry, "params", {}))),
                             version=registry.plugin_version(name))
            specs.append(spec)
    return specs


def _reg_specs(entries: list[Any], default_set: str
               ) -> list[tuple[RegSpec, tuple[float, ...], tuple[RegSpec, ...]]]:
    """(entry spec without strength, its strengths, its `with` stack) per swept entry."""
    out = []
    for e in entries:
        name, params = _entry(e, "regularizer")
        cls = REGULARIZERS.get(name)
        addons = _stack(params.pop("with", []), f"regularizer {name!r} with")
        chosen = params.pop("strengths", default_set)
        if isinstance(chosen, str):
            if chosen not in STRENGTH_SETS:
                raise UnknownNameError("strength set", chosen, STRENGTH_SETS)
            strengths = {"default": cls.default_strengths, "full": cls.full_strengths,
                         "first": cls.default_strengths[:1]}[chosen]
            if not strengths:
                which = "full_strengths" if chosen == "full" else "default_strengths"
                raise MatrixError(
                    f"regularizer {name!r} ({origin(REGULARIZERS, name)}) declares no "
                    f"{which}, so strengths = {chosen!r} gives it none: give it strengths = "
                    f"[...] in the matrix, or declare {which} on the class")
        else:
            values = chosen if isinstance(chosen, list) else [chosen]
            bad = [v for v in values if not finite(v)]
            if bad or not values:
                raise MatrixError(f"regularizer {name!r}: strengths must be a strength set "
                                  f"({', '.join(STRENGTH_SETS)}) or a non-empty list of "
                                  f"numbers, got {chosen!r}")
            strengths = tuple(float(s) for s in values)
        for swept in _sweep(params):  # a list-valued parameter sweeps, as for tasks/archs
            spec = RegSpec(name, 0.0, freeze(swept), REGULARIZERS.plugin_version(name))
            for s in strengths:
                cls.check(RegSpec(name, s, spec.params))
            out.append((spec, strengths, addons))
    return out


def _stack(entries: Any, where: str) -> tuple[RegSpec, ...]:
    """A base recipe or `with` list: regularizer tables with one `strength` each (a bare
    name takes the regularizer's first default strength)."""
    if not isinstance(entries, list):
        raise MatrixError(f"{where} must be a list of regularizer tables, got {entries!r}")
    specs = []
    for e in entries:
        name, params = _entry(e, "regularizer")
        cls = REGULARIZERS.get(name)
        if "strengths" in params:
            raise MatrixError(f"{where}: {name!r} takes one `strength`, not `strengths` "
                              "(a stack element is not swept)")
        if "with" in params:
            raise MatrixError(f"{where}: {name!r} cannot have its own `with` list")
        strength = params.pop("strength", (cls.default_strengths or (0.0,))[0])
        if not finite(strength):
            raise MatrixError(f"{where}: {name!r} strength must be a number, got {strength!r}")
        listed = [k for k, v in params.items() if isinstance(v, list)]
        if listed:
            raise MatrixError(f"{where}: {name!r} parameter(s) {listed} are lists; a stack "
                              "element has one value per parameter")
        spec = RegSpec(name, float(strength), freeze(params), REGULARIZERS.plugin_version(name))
        cls.check(spec)
        specs.append(spec)
    return tuple(specs)


def skip_reason(t: TaskSpec, task: Any, a: ArchSpec, arch: Any,
                stack: tuple[RegSpec, ...]) -> str | None:
    """Why task `t` on architecture `a` cannot run `stack`, or None: the architecture's
    reason, a member that needs a validation split the task lacks (named), or a member's
    own `skip_reason`. A plugin method that raises is one line naming it."""
    reason = guarded(ARCHS, a.name, "skip_reason", arch.skip_reason, a, task)
    if reason:
        return str(reason)
    for s in stack:
        cls = REGULARIZERS.get(s.name)
        if cls.needs_validation and not task.has_validation(t):
            return f"{s.name} needs a validation split; {t.label()} has none"
        why = guarded(REGULARIZERS, s.name, "skip_reason", cls.skip_reason, task, arch, s)
        if why:
            return str(why)
    return None
