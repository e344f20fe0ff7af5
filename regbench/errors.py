"""User-facing errors: each names the bad value and the valid choices.

The CLI turns any `RegbenchError` into one line on stderr and exit status 2.
"""

from __future__ import annotations

from collections.abc import Iterable


class RegbenchError(Exception):
    """Base class of every error a user can cause (bad name, bad file, bad value)."""


class UnknownNameError(RegbenchError, KeyError):
    """A name that is not in a registry."""

    def __init__(self, kind: str, name: object, choices: Iterable[str]):
        self.kind, self.name, self.choices = kind, name, sorted(choices)
        super().__init__(f"unknown {kind} {name!r}; valid choices: {', '.join(self.choices)}")

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return self.args[0]


class StoreError(RegbenchError):
    """A results store that cannot be opened or written safely."""


class DataError(RegbenchError):
    """A data file that is missing or malformed."""


class MatrixError(RegbenchError):
    """A matrix definition (built-in or TOML) that is not valid."""


class PluginError(RegbenchError):
    """A plugin that cannot be loaded: it fails to import, registers a name that exists,
    lacks a required attribute, or has a hook with the wrong signature."""
