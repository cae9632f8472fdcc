"""The selection made by ``--affected``/``--changed``, applied inside pytest: a
plugin (``-p``) that the coordinator and the workers load.

Left-out tests are deselected the way ``-k`` deselects (``pytest_deselected``), so
pytest's summary counts them ("N deselected") and plugins see them; files with no
selected test are not collected at all (cheaper), and their known tests are reported
deselected by the coordinator, with stand-in items, never silently absent.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from . import CHOICE_ENV
from ._select import Choice


class _LeftOut:
    """Stands in for a test of a file that was not collected, for pytest's counts."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.name = nodeid.rsplit("::", 1)[-1]


class SelectionPlugin:
    def __init__(self, choice: Choice, root: Path) -> None:
        self.choice = choice
        self.root = root.resolve()
        self.pid = os.getpid()
        self.pruned = {str(self.root / path) for path in choice.pruned}

    def pytest_ignore_collect(self, collection_path: Path) -> bool | None:
        if self.choice.everything is None and str(collection_path) in self.pruned:
            return True
        return None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[Any]) -> None:
        if os.getpid() == self.pid and getattr(config, "workerinput", None) is None:
            # The coordinator: the tests of files never collected are left out here.
            standing = [
                _LeftOut(nodeid)
                for nodeid in self.choice.left_out
                if nodeid.split("::", 1)[0] in self.choice.pruned
            ]
            if standing:
                config.hook.pytest_deselected(items=standing)
        if self.choice.everything is not None:
            return
        keep: list[Any] = []
        drop: list[Any] = []
        for item in items:
            (keep if self.choice.reason(item.nodeid) is not None else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep


def pytest_configure(config: pytest.Config) -> None:
    path = os.environ.get(CHOICE_ENV)
    if not path:
        return
    choice = Choice.from_json(Path(path).read_text(encoding="utf-8"))
    root = Path(os.environ.get(CHOICE_ENV + "_ROOT", str(config.rootpath)))
    config.pluginmanager.register(SelectionPlugin(choice, root), "aqe-selection")
