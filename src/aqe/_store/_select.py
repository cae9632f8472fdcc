"""Which store a history location names: a path or ``sqlite://`` is SQLite, any
other ``scheme://`` the store registered under that name in ``aqe.stores``."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from aqe import _registry
from aqe._exceptions import AqeError, PluginError
from aqe._store._protocol import Store
from aqe._store._sqlite import HistoryStore

STORES = "aqe.stores"

_METHODS = ("close", "begin_run", "add_results", "finish_run", "estimates", "recent_runs")


def scheme_of(location: str | Path) -> str | None:
    """``postgresql`` for ``postgresql://...``; None for a plain path."""
    scheme, separator, _ = str(location).partition("://")
    return scheme if separator and scheme.isidentifier() else None


def open_history(location: str | Path) -> Store:
    text = str(location)
    scheme = scheme_of(text)
    if scheme is None:
        return HistoryStore(location)
    if scheme == "sqlite":
        return HistoryStore(text.partition("://")[2])
    entry = _registry.find(STORES, scheme)
    factory = _registry.load(entry)
    try:
        store = factory(text) if callable(factory) else None
    except AqeError:
        raise
    except Exception as exc:
        raise PluginError(
            f"{_registry.describe(entry)} failed to open {text}: {type(exc).__name__}: {exc}"
        ) from None
    _registry.check(entry, store, _METHODS)
    return cast(Store, store)
