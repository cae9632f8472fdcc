"""Which store a history location names: a path or ``sqlite://`` is SQLite, any
other ``scheme://`` the store registered under that name in ``aqe.stores``.

Read-only commands must never create a history just to read it: a path that does not
exist has none (:func:`open_existing` returns None), while a URL names a database a
server already holds, so it is opened (its store creates its tables if need be).
"""

from __future__ import annotations

from pathlib import Path
from typing import cast
from urllib.parse import urlsplit, urlunsplit

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


def masked(location: str | Path) -> str:
    """How messages name a history: a path as is, a URL with its password hidden
    (in the authority or a ``password=`` parameter)."""
    text = str(location)
    if scheme_of(text) is None:
        return text
    try:
        parts = urlsplit(text)
        netloc = parts.netloc
        if parts.password is not None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.partition(':')[0]}:***@{host}"
        query = "&".join(
            "password=***" if item.lower().startswith("password=") else item
            for item in parts.query.split("&")
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return f"{text.partition('://')[0]}://***"


def open_existing(location: str | Path) -> Store | None:
    """The history at ``location`` if there is one: None for a path that does not
    exist, the opened store for a URL (a server's database exists by being named)."""
    if scheme_of(location) is None and not Path(location).exists():
        return None
    return open_history(location)


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
        secret = _password(text)
        detail = str(exc).replace(secret, "***") if secret else str(exc)
        raise PluginError(
            f"{_registry.describe(entry)} failed to open {masked(text)}:"
            f" {type(exc).__name__}: {detail}"
        ) from None
    _registry.check(entry, store, _METHODS)
    return cast(Store, store)


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password or None
    except ValueError:
        return None
