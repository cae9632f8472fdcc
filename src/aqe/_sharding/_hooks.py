"""The ``-p`` plugin of a shard run's processes (see ``_select``); imported by
nothing else, so pytest can load it as a plugin module of its own."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ._select import current, import_what_they_import, keep_mine

_ignored: dict[int, frozenset[str]] = {}


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    plan = current()
    if plan is None or os.getpid() == plan.pid:
        return None
    if id(plan) not in _ignored:
        _ignored[id(plan)] = frozenset(plan.dropped)
    return True if str(collection_path) in _ignored[id(plan)] else None


def pytest_collection_finish(session: pytest.Session) -> None:
    # A spawned worker (a forked one inherits the coordinator's imports).
    plan = current()
    if plan is not None and os.getpid() != plan.pid and plan.dropped:
        paths = [Path(p) for p in plan.dropped]
        import_what_they_import(paths, plan.dropped, session.config.getini("python_files"))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[Any]) -> None:
    plan = current()
    if plan is None or os.getpid() == plan.pid or not plan.cut:
        return
    keep, drop = keep_mine(plan, items)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
