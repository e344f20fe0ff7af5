"""Registries for tasks, architectures and regularizers.

Entries register with a decorator (`@register_task("digits")`), are listed with
their one-line description, and are looked up with an error that lists the valid
choices. Tests parametrize over the registries, so a new entry is tested at once.

Each entry records its origin: built-in, or the plugin (a file, a module, or an installed
package's entry point; see `regbench.plugins`) that was loading when it registered. A
plugin entry is checked as it registers (a declared `version`, the hooks' signatures, the
attributes a task or architecture needs); any problem is a `PluginError` naming the
plugin, the entry and the problem.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from regbench.errors import PluginError, UnknownNameError

T = TypeVar("T")

BUILTIN = "built-in"
# The plugin being loaded now (set by regbench.plugins while it imports one), or None.
_loading: Any = None


class Registry(Generic[T]):
    """A name -> entry mapping with decorator registration and helpful lookup errors."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._origins: dict[str, Any] = {}  # name -> the plugin that registered it, or None

    def register(self, name: str) -> Callable[[T], T]:
        def deco(entry: T) -> T:
            plugin = _loading
            if plugin is not None:
                _load_builtins()  # a plugin's name is checked against every built-in
            if name in self._entries:
                who = self.origin(name)
                if plugin is not None and self._origins.get(name) is plugin:
                    raise PluginError(f"{_label(plugin)}: registers {self.kind} {name!r} "
                                      "twice (two classes under one name)")
                raise PluginError(
                    f"{_label(plugin)}: {self.kind} {name!r} is already registered by "
                    f"{'regbench (built-in)' if who == BUILTIN else who}")
            if plugin is not None:
                problems = _entry_problems(self.kind, entry)
                if problems:
                    raise PluginError(f"{_label(plugin)}: {self.kind} {name!r}: "
                                      + "; ".join(problems))
            self._entries[name] = entry
            self._origins[name] = plugin
            if plugin is not None:
                plugin.entries.append((self, name))
            try:
                entry.name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            return entry

        return deco

    def get(self, name: str) -> T:
        _load_builtins()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._entries) from None

    def names(self) -> list[str]:
        _load_builtins()
        return list(self._entries)

    def builtin_names(self) -> list[str]:
        """The names regbench itself ships (modules under `regbench.`), whatever else a
        plugin or a test module has registered in this process."""
        return [n for n in self.names()
                if getattr(self._entries[n], "__module__", "").startswith("regbench.")]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        _load_builtins()
        return name in self._entries

    def origin(self, name: str) -> str:
        """"built-in", or the plugin that registered `name` (file, module or package)."""
        self.get(name)
        plugin = self._origins.get(name)
        return BUILTIN if plugin is None else plugin.describe()

    def plugin(self, name: str) -> Any:
        """The `regbench.plugins.Plugin` that registered `name`, or None for a built-in."""
        self.get(name)
        return self._origins.get(name)

    def plugin_version(self, name: str) -> str | None:
        """The declared `version` of a plugin entry (part of its cells' ids); None for a
        built-in (SUITE_VERSION covers those)."""
        return None if self.plugin(name) is None else str(self.get(name).version)

    def unregister(self, name: str) -> None:
        """Drop `name` (a plugin that failed half-way takes back what it registered)."""
        self._entries.pop(name, None)
        self._origins.pop(name, None)

    def describe(self, name: str) -> str:
        """First line of the entry's docstring."""
        doc = (self.get(name).__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


TASKS: Registry[Any] = Registry("task")
ARCHS: Registry[Any] = Registry("architecture")
REGULARIZERS: Registry[Any] = Registry("regularizer")

register_task = TASKS.register
register_arch = ARCHS.register
register_regularizer = REGULARIZERS.register

_loaded = False


def _load_builtins() -> None:
    """Import the built-in entries once (they register themselves on import)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import regbench.archs  # noqa: F401
    import regbench.regularizers  # noqa: F401
    import regbench.tasks  # noqa: F401


def _label(plugin: Any) -> str:
    return "regbench" if plugin is None else f"plugin {plugin.describe()}"


# What a plugin task or architecture must define (the base classes leave them unset).
_REQUIRED = {"task": ("arrays", "protocol", "kind", "metric"), "architecture": ("build",)}


def _entry_problems(kind: str, entry: Any) -> list[str]:
    """What a plugin entry lacks: a `version`, a required attribute, a hook's signature,
    a well-formed declaration (plugin_checks.py)."""
    from regbench.plugin_checks import declaration_problems

    problems = []
    if isinstance(entry, type):
        problems += declaration_problems(kind, entry)
    version = getattr(entry, "version", None)
    if not isinstance(version, str) or not version.strip():
        problems.append(f"declares no version (set a class attribute version = \"1\", a "
                        f"non-empty string; got {version!r}); it is part of its cells' ids")
    if kind == "regularizer":
        from regbench.interface import Regularizer, hook_signature_problems

        if not (isinstance(entry, type) and issubclass(entry, Regularizer)):
            problems.append("is not a subclass of regbench.Regularizer")
        else:
            problems += hook_signature_problems(entry)
        return problems
    base = _base_class(kind)
    for attr in _REQUIRED[kind]:
        value = getattr(entry, attr, None)
        if value is None or (callable(value) and value is getattr(base, attr, object())):
            problems.append(f"lacks {attr}")
    if kind == "task" and not problems:
        from regbench.tasks.base import METRICS

        if entry.kind not in ("regression", "classification"):
            problems.append(f"kind {entry.kind!r} is not regression or classification")
        if entry.metric not in METRICS:
            problems.append(f"metric {entry.metric!r} is not one of {', '.join(METRICS)}")
    return problems


def _base_class(kind: str) -> type:
    if kind == "task":
        from regbench.tasks.base import Task

        return Task
    from regbench.archs.base import Arch

    return Arch
