"""One exception hierarchy for everything arb raises on purpose."""

from __future__ import annotations


class ArbError(Exception):
    """Base of every error arb raises on purpose; the CLI turns it into a message and exit code."""

    exit_code = 1


class SettingsError(ArbError):
    """A setting has a wrong key, type or value."""

    exit_code = 2

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key
        self.problem = problem


class PluginError(ArbError):
    """A plugin could not be found, loaded or started."""


class NoSuchPlugin(PluginError):
    """No installed plugin has that name (and kind): a setting or flag names one that is not there."""


class StorageError(ArbError):
    """The database could not be written during a run."""


class DataError(ArbError):
    """Input data (a recording, a CSV) cannot be read at all."""

    exit_code = 2
