"""The ``-p`` plugin of a shard run's processes (see ``_select``); imported by
nothing else, so pytest can load it as a plugin module of its own."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ._select import current, keep_mine


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    plan = current()
    if plan is not None and os.getpid() != plan.pid and str(collection_path) in plan.dropped:
        return True
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[Any]) -> None:
    plan = current()
    if plan is None or os.getpid() == plan.pid or not plan.cut:
        return
    keep, drop = keep_mine(plan, items)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
