"""Registries for tasks, architectures and regularizers.

Entries register with a decorator (`@register_task("digits")`), are listed with
their one-line description, and are looked up with an error that lists the valid
choices. Tests parametrize over the registries, so a new entry is tested at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from regbench.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> entry mapping with decorator registration and helpful lookup errors."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
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

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        _load_builtins()
        return name in self._entries

    def plugin_version(self, name: str) -> str | None:
        """The declared `version` of a plugin's entry (part of its cells' ids); None for a
        built-in, whose code SUITE_VERSION names."""
        entry = self.get(name)
        if getattr(entry, "__module__", "").startswith("regbench."):
            return None
        version = getattr(entry, "version", None)
        return None if version is None else str(version)

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
