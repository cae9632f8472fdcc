"""Order constraints: files that keep their tests on one worker in pytest's order, and
serial groups whose tests never run at the same time."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from .._compat import TestCaseFunction, nodes


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


def register_depends(config: pytest.Config) -> None:
    """Declare ``depends`` unless pytest-depends handles it (in one process only)."""
    if config.pluginmanager.hasplugin("depends"):
        return
    config.addinivalue_line(
        "markers",
        "depends(on=[names or node ids]): aqe runs the test only after these passed, "
        "and skips it, naming the culprit, when one did not",
    )


def dependencies(item: nodes.Item) -> tuple[str, ...]:
    """The node ids (or node-id prefixes, for parametrized tests) a test waits for.

    ``on`` takes names as pytest-depends does: ``test_a`` (same class or module),
    ``TestX::test_a`` (same file) or a full node id ``tests/test_x.py::test_a``.
    """
    if item.config.pluginmanager.hasplugin("depends"):
        return ()
    marker = item.get_closest_marker("depends")
    if marker is None:
        return ()
    refs = marker.kwargs.get("on", marker.args)
    if isinstance(refs, str):
        refs = [refs]
    file = item.nodeid.split("::", 1)[0]
    scope = item.nodeid.rsplit("::", 1)[0]
    resolved = []
    for ref in map(str, refs):
        head = ref.split("::", 1)[0]
        if "::" in ref and (head.endswith(".py") or "/" in head):
            resolved.append(ref)
        elif "::" in ref:
            resolved.append(f"{file}::{ref}")
        else:
            resolved.append(f"{scope}::{ref}")
    return tuple(resolved)


def order_bound_files(items: Iterable[nodes.Item]) -> set[str]:
    """Files with ``unittest.TestCase`` tests.

    Such suites are written for unittest's runner, which runs a module's classes
    one after another in one process; they often lean on that (a class that turns
    on a global mode for the classes after it), so ``split=auto`` never cuts them.
    """
    return {item.nodeid.split("::", 1)[0] for item in items if isinstance(item, TestCaseFunction)}
