"""A `tune` block made into studies when the matrix is built, every value checked first.

Each (task, architecture, entry) of a tuned block is one `Study`; a `cocktail` in the tune
table adds one more per setting. Everything that can be refused is refused here, before
anything runs: a bad tune table, an entry with its own `strengths`, a regularizer with no
search space, a space holding values the regularizer or the protocol refuses, a cocktail
member that is unknown, repeated or cannot apply to a setting, a task with no validation
split to select on.
"""

from __future__ import annotations

from typing import Any

from regbench.errors import MatrixError, RegbenchError
from regbench.registry import ARCHS, REGULARIZERS, TASKS
from regbench.specs import ArchSpec, Cell, RegSpec, TaskSpec, freeze, stack_label
from regbench.tasks.base import METRICS
from regbench.tuning.config import TuneConfig
from regbench.tuning.space import lr_space
from regbench.tuning.study import COCKTAIL, Member, Study


def member(name: str, fixed: dict[str, Any], where: str) -> Member:
    """A regularizer with its fixed parameters and the space of everything else."""
    cls = REGULARIZERS.get(name)
    try:
        space = cls.search_space(fixed=set(fixed))
    except RegbenchError as exc:
        raise MatrixError(f"{where}: {exc}") from None
    return Member(name, freeze(fixed), REGULARIZERS.plugin_version(name),
                  tuple(space.items()), cls.ownership())


def check_space(m: Member, protocol: Any, where: str) -> None:
    """Refuse a space holding a value the regularizer or the cell's protocol refuses (its
    range ends, or every value of a small discrete space)."""
    cls = REGULARIZERS.get(m.name)
    for key, space in m.space:
        for value in space.values():
            spec = m.spec({key: value})
            try:
                cls.check(spec)
                cls.check_protocol(spec, protocol)
            except RegbenchError as exc:
                raise MatrixError(f"{where}: {m.name}'s search space for {key} "
                                  f"({space.describe()}) holds {value!r}, which it refuses: "
                                  f"{exc}") from None


def block_studies(block: dict[str, Any], index: int, tasks: list[str] | None = None,
                  regularizers: list[str] | None = None) -> tuple[list[Study], list[Any]]:
    """The studies of tuned block `index` (and the combinations it skips, with reasons)."""
    from regbench.matrix.composition import check_composable
    from regbench.matrix.expand import Skip, _entry, _specs, _stack, _sweep, skip_reason

    where = f"block {index}"
    cfg = TuneConfig.parse(block["tune"], where)
    if "strengths" in block:
        raise MatrixError(f"{where}: tune and strengths cannot be given together (a tuned "
                          "block samples its strengths from each regularizer's space)")
    protocol = freeze(block.get("protocol", {}))
    base = _stack(block.get("base", []), f"{where} base")
    entries: list[tuple[Member, tuple[RegSpec, ...]]] = []
    for e in block["regularizers"]:
        name, params = _entry(e, "regularizer")
        REGULARIZERS.get(name)
        if "strengths" in params:
            raise MatrixError(f"{where}: regularizer {name!r} has strengths "
                              f"{params['strengths']!r} in a tuned block; allowed: no "
                              "strengths (tune samples them from its search space)")
        addons = _stack(params.pop("with", []), f"regularizer {name!r} with")
        for fixed in _sweep(params):
            cls = REGULARIZERS.get(name)
            cls.check(RegSpec(name, _any_strength(cls), freeze(fixed)))
            entries.append((member(name, fixed, where), addons))
    cocktail = _cocktail(cfg, where)
    studies, skipped, seen = [], [], set()
    for t in _specs(block["tasks"], TASKS, TaskSpec):
        if tasks and t.name not in tasks:
            continue
        task = TASKS.get(t.name)().bind(t)
        proto = task.protocol.override(protocol)
        for a in _specs(block["archs"], ARCHS, ArchSpec):
            arch = ARCHS.get(a.name)()
            setting = f"{t.label()} / {a.label()}"
            common = _common(t, a, task, proto, protocol, base, cfg, where)
            for m, addons in entries:
                if regularizers and m.name not in regularizers:
                    continue
                spec = m.spec({})
                stack = (*base, spec, *addons)
                check_composable(stack)
                reason = skip_reason(t, task, a, arch, stack)
                if reason:
                    label = " + ".join([spec.label(), *(s.label() for s in addons)])
                    skip = Skip(t.label(), a.label(), label, reason)
                    if skip not in skipped:
                        skipped.append(skip)
                    continue
                for s in (*base, *addons):
                    REGULARIZERS.get(s.name).check_protocol(s, proto)
                check_space(m, proto, f"{where} {setting}")
                entry = RegSpec(m.name, 0.0, m.fixed).label()
                name = _name(setting, entry, addons, base, protocol)
                if name in seen:
                    continue
                seen.add(name)
                studies.append(Study(name=name, entry=m.name, members=(m,), addons=addons,
                                     baseline=_baseline(m, t, a, protocol, base, addons,
                                                        cfg), **common))
            if cocktail and not (regularizers and COCKTAIL not in regularizers):
                if arch.skip_reason(a, task):
                    continue
                members = _cocktail_members(cocktail, task, arch, proto,
                                            f"{where} {setting} tune cocktail")
                label = "cocktail[" + ",".join(RegSpec(m.name, 0.0, m.fixed).label()
                                               for m in members) + "]"
                name = _name(setting, label, (), base, protocol)
                if name not in seen:
                    seen.add(name)
                    studies.append(Study(name=name, entry=COCKTAIL, members=members,
                                         addons=(), **common))
    return studies, skipped


def _any_strength(cls: Any) -> float:
    """A strength inside the class's range (for checking an entry's fixed parameters)."""
    if cls.default_strengths:
        return float(cls.default_strengths[0])
    return float(cls.strength_range[0])


def _common(t: TaskSpec, a: ArchSpec, task: Any, proto: Any, protocol: Any,
            base: tuple[RegSpec, ...], cfg: TuneConfig, where: str) -> dict[str, Any]:
    """The fields every study of one setting shares."""
    if t.get("val_fraction", None) == 0:
        raise MatrixError(f"{where}: task {t.label()!r} has no validation split "
                          "(val_fraction = 0); a tuned block selects on validation: give "
                          "the task a val_fraction > 0")
    lr = lr_space(proto.lr, list(cfg.lr) if cfg.lr else None, f"{where} tune")
    for end in (lr.lo, lr.hi):
        proto.override(freeze({"lr": end}))
    return {"task": t, "arch": a, "base": base, "protocol": protocol, "lr0": proto.lr,
            "adam_lr0": proto.adam_lr, "lr": lr, "config": cfg,
            "higher_is_better": METRICS.get(task.metric, True)}


def _name(setting: str, entry: str, addons: tuple[RegSpec, ...], base: tuple[RegSpec, ...],
          protocol: Any) -> str:
    """`digits / mlp / dropout` (+ with list, on base, {protocol}): stable and readable."""
    text = f"{setting} / {entry}"
    if addons:
        text += " + " + stack_label(addons)
    if base:
        text += " on " + stack_label(base)
    if protocol:
        text += " {" + ", ".join(f"{k}={v}" for k, v in protocol) + "}"
    return text


def _baseline(m: Member, t: TaskSpec, a: ArchSpec, protocol: Any, base: tuple[RegSpec, ...],
              addons: tuple[RegSpec, ...], cfg: TuneConfig) -> tuple[Cell, ...]:
    """The grid cells at the regularizer's first default strength and the protocol's lr on
    the test seeds: what tunability is measured against (none when it has no default)."""
    cls = REGULARIZERS.get(m.name)
    if not cls.default_strengths:
        return ()
    spec = RegSpec(m.name, float(cls.default_strengths[0]), m.fixed, m.version)
    return tuple(Cell(t, a, spec, s, protocol, base=base, addons=addons)
                 for s in cfg.test_seed_indices)


def _cocktail(cfg: TuneConfig, where: str) -> list[tuple[str, dict[str, Any]]]:
    """The cocktail's members as (name, fixed parameters): known, each once."""
    from regbench.matrix.expand import _entry

    out: list[tuple[str, dict[str, Any]]] = []
    for raw in cfg.cocktail:
        name, params = _entry(dict(raw) if isinstance(raw, tuple) else raw, "regularizer")
        REGULARIZERS.get(name)
        if name == "none":
            raise MatrixError(f"{where}: tune cocktail lists 'none'; a cocktail with every "
                              "member off is none already")
        if any(name == n for n, _ in out):
            raise MatrixError(f"{where}: tune cocktail lists {name!r} twice; each member "
                              "once")
        if "strengths" in params or "with" in params:
            raise MatrixError(f"{where}: tune cocktail member {name!r} takes fixed "
                              "parameters only (no strengths, no with)")
        out.append((name, params))
    return out


def _cocktail_members(cocktail: list[tuple[str, dict[str, Any]]], task: Any, arch: Any,
                      proto: Any, where: str) -> tuple[Member, ...]:
    members = []
    for name, fixed in cocktail:
        cls = REGULARIZERS.get(name)
        why = cls.skip_reason(task, arch, RegSpec(name, 0.0, freeze(fixed)))
        if why:
            raise MatrixError(f"{where}: member {name!r} cannot apply here ({why}); "
                              "list only members every setting of the block can run")
        m = member(name, fixed, where)
        check_space(m, proto, where)
        members.append(m)
    return tuple(members)
