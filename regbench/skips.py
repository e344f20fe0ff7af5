"""Where a regularizer cannot run, grouped for `regbench list regularizers`.

Every registered task (but those that need parameters, like `table`) and architecture is
built once per listing (`Pairs.build`), and each regularizer's `skip_reason` is asked
over the pairs that can run together; the reasons are then grouped by what they cover:
whole tasks (every architecture), whole architectures (every task), or single pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from regbench.errors import RegbenchError


@dataclass(frozen=True)
class Pairs:
    """The registered tasks and architectures, built once, and the (task, arch) pairs
    whose architecture accepts the task's inputs."""

    tasks: dict[str, Any]
    archs: dict[str, Any]
    valid: list[tuple[str, str]]

    @classmethod
    def build(cls) -> Pairs:
        """Instances of every task bound to its default spec and of every architecture."""
        from regbench.plugin_checks import guarded
        from regbench.registry import ARCHS, TASKS
        from regbench.specs import ArchSpec, TaskSpec

        tasks = {}
        for t in TASKS.names():
            try:
                tasks[t] = TASKS.get(t)().bind(TaskSpec(t))
            except RegbenchError:  # a task that needs parameters (table: its file and target)
                continue
        archs = {a: ARCHS.get(a)() for a in ARCHS.names()}
        valid = [(t, a) for t in tasks for a in archs
                 if guarded(ARCHS, a, "skip_reason", archs[a].skip_reason, ArchSpec(a),
                            tasks[t]) is None]
        return cls(tasks, archs, valid)


def regularizer_skips(name: str, pairs: Pairs | None = None) -> list[str]:
    """Where regularizer `name` (at its default parameters) cannot run, one line per reason:
    `      skips WHERE: REASON`. `pairs`: the tasks and architectures to ask about, built
    once for a listing of many regularizers (default: built now)."""
    from regbench.plugin_checks import guarded
    from regbench.registry import REGULARIZERS

    reg = REGULARIZERS.get(name)
    pairs = Pairs.build() if pairs is None else pairs
    tasks, archs, valid = pairs.tasks, pairs.archs, pairs.valid
    groups: dict[str, set[tuple[str, str]]] = {}
    for t, a in valid:
        why = guarded(REGULARIZERS, name, "skip_reason", reg.skip_reason, tasks[t], archs[a])
        if why:
            why = str(why)
            groups.setdefault(why.split(";")[0], set()).add((t, a))
    lines = []
    for why, where_pairs in groups.items():
        lines.append(f"      skips {_where(where_pairs, pairs)}: {why}")
    return lines


def _where(skipped: set[tuple[str, str]], pairs: Pairs) -> str:
    """The pairs `skipped` in words: whole tasks, whole architectures, or each pair."""
    valid = pairs.valid
    whole_tasks = [t for t in pairs.tasks
                   if all((t, a) in skipped for tt, a in valid if tt == t)
                   and any(tt == t for tt, _ in skipped)]
    whole_archs = [a for a in pairs.archs
                   if all((t, a) in skipped for t, aa in valid if aa == a)
                   and any(aa == a for _, aa in skipped)]
    if all(t in whole_tasks for t, _ in skipped):
        return ", ".join(whole_tasks) + " (every architecture)"
    if all(a in whole_archs for _, a in skipped):
        return ", ".join(whole_archs) + " (every task)"
    return ", ".join(f"{t} x {a}" for t, a in sorted(skipped))
