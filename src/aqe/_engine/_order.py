"""Which files must keep all their tests on one worker, in pytest's order."""

from __future__ import annotations

from collections.abc import Iterable

from _pytest import nodes
from _pytest.unittest import TestCaseFunction


def order_bound_files(items: Iterable[nodes.Item]) -> set[str]:
    """Files with ``unittest.TestCase`` tests.

    Such suites are written for unittest's runner, which runs a module's classes
    one after another in one process; they often lean on that (a class that turns
    on a global mode for the classes after it), so ``split=auto`` never cuts them.
    """
    return {item.nodeid.split("::", 1)[0] for item in items if isinstance(item, TestCaseFunction)}
