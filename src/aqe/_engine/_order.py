"""Order constraints: files that keep their tests on one worker in pytest's order, and
serial groups whose tests never run at the same time."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from _pytest import nodes
from _pytest.unittest import TestCaseFunction


def register_marker(config: pytest.Config) -> None:
    """Declare ``serial`` unless a plugin already does, so ``--strict-markers`` accepts it."""
    known = config.getini("markers")
    if any(line.split("(", 1)[0].split(":", 1)[0].strip() == "serial" for line in known):
        return
    config.addinivalue_line(
        "markers",
        'serial(group="name"): aqe never runs two tests of the same group at the same time',
    )


def serial_group(item: nodes.Item) -> str | None:
    """``@pytest.mark.serial(group="db")`` (or ``serial("db")``); a bare ``serial``
    puts the test in one group of its own name, "serial"."""
    marker = item.get_closest_marker("serial")
    if marker is None:
        return None
    group = marker.kwargs.get("group", marker.args[0] if marker.args else "serial")
    return str(group)


def order_bound_files(items: Iterable[nodes.Item]) -> set[str]:
    """Files with ``unittest.TestCase`` tests.

    Such suites are written for unittest's runner, which runs a module's classes
    one after another in one process; they often lean on that (a class that turns
    on a global mode for the classes after it), so ``split=auto`` never cuts them.
    """
    return {item.nodeid.split("::", 1)[0] for item in items if isinstance(item, TestCaseFunction)}
