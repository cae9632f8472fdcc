"""Every error aqe raises on purpose, in one place.

    AqeError                 base; ``str(error)`` is one line a user can act on
    ├── UsageError           a wrong flag, argument or path (exit code 4)
    │   └── ConfigError      a bad ``[tool.aqe]`` key, ``AQE_*`` variable or value
    ├── StoreError           the history database cannot be opened, read or written
    ├── PluginError          an adapter entry point fails to load or is malformed
    └── WorkerError          a worker process misbehaved (crashed, lost its pipe)

The CLI catches ``AqeError`` at the top and prints ``aqe: error: <message>``, never
a traceback: these are the user's mistakes or environment's faults, not aqe bugs.
"""

from __future__ import annotations

__all__ = [
    "AqeError",
    "ConfigError",
    "PluginError",
    "StoreError",
    "UsageError",
    "WorkerError",
]


class AqeError(Exception):
    """Base of every error aqe reports to the user."""

    exit_code: int = 3


class UsageError(AqeError):
    """The command line asked for something impossible."""

    exit_code = 4


class ConfigError(UsageError):
    """A configuration value is unknown, mistyped or out of range."""


class StoreError(AqeError):
    """The history store cannot be used; the message names the file and a remedy."""

    exit_code = 3


class PluginError(AqeError):
    """An adapter could not be loaded."""


class WorkerError(AqeError):
    """A worker process failed in a way the coordinator could not attribute to a test."""
