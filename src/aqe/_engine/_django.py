"""pytest-django's test databases follow the items a worker collects later.

pytest-django creates the test databases once per session, for the aliases the
items in ``session.items`` use at that moment (``django_db_setup``). A pytest-xdist
worker has collected the whole suite by then; an aqe worker has only the files dealt
to it, and collects more between tests (a stolen file, a retried test). A later item
on a database alias the setup left out would run on that alias's configured database:
the project's own data. So before such an item starts, the worker tears
``django_db_setup`` down (pytest finishes what depends on it too) and the item's
request sets it up again, from a ``session.items`` that now holds it. Between two
tests of different files or classes only session fixtures are up, and a class's
databases are the same for all its tests, so nothing that is running is cut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pytest

#: (aliases, aliases serialized) the items need, as pytest-django computes it.
Needs = tuple[frozenset[str], frozenset[str]]
Rule = Callable[[Sequence[pytest.Item]], tuple[Iterable[str], Iterable[str]]]

_SETUP = "django_db_setup"


def _databases_for() -> Rule:
    """pytest-django's own rule (private; versions before it set up every alias)."""
    from pytest_django.fixtures import _get_databases_for_setup

    return _get_databases_for_setup


class DatabasesFollowItems:
    """Worker plugin: set ``django_db_setup`` up again when an item needs more."""

    def __init__(self, rule: Rule) -> None:
        self._rule = rule
        #: pytest-django's setup while it is up: its definition, request and cover.
        self._fixturedef: Any = None
        self._request: Any = None
        self._covered: Needs = (frozenset(), frozenset())

    def _needs(self, items: Sequence[pytest.Item]) -> Needs:
        aliases, serialized = self._rule(items)
        return frozenset(aliases), frozenset(serialized)

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: Any) -> Any:
        __tracebackhide__ = True  # a fixture's error shows the fixture, not this hook
        result = yield
        if fixturedef.argname == _SETUP and fixturedef.func.__module__.startswith("pytest_django"):
            self._fixturedef, self._request = fixturedef, request
            self._covered = self._needs(request.session.items)
        return result

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        fixturedef = self._fixturedef
        if fixturedef is None or fixturedef.cached_result is None:
            return
        aliases, serialized = self._needs([item])
        if aliases <= self._covered[0] and serialized <= self._covered[1]:
            return
        fixturedef.finish(self._request)
        self._fixturedef = self._request = None


def register(config: pytest.Config) -> None:
    """In a worker, when pytest-django is there and decides from ``session.items``."""
    pm = config.pluginmanager
    if not pm.hasplugin("django"):
        return
    try:
        from pytest_django.lazy_django import django_settings_is_configured

        rule = _databases_for()
    except ImportError:
        return
    if not django_settings_is_configured():
        return  # installed, but this project does not use Django
    pm.register(DatabasesFollowItems(rule), "aqe-django-databases")
