"""Reproduce the import side effects of the test modules a worker does not collect.

pytest imports every test module before the first test runs, so a module-level
``import pkg.sub`` in one test file leaves ``pkg.sub`` set for the tests of every
other file. Real suites lean on this without knowing it (click's own tests do). An
aqe worker collects only its share of the files, so it makes what the other test
modules import at module level, unless they are test modules themselves, in
pytest's order: before it imports a file, what the files before it import, and
the rest before its first test. Those imports are the cheap part of collection;
the expensive part, rewriting and collecting the test modules, stays split
between workers.

Only statements at column 0 count: an import inside a function, an ``if
TYPE_CHECKING:`` block or a ``try:`` is not a module-level side effect to copy.

The test modules themselves have side effects too: a module that defines
subclasses at import fills a registry (``Base.__subclasses__()``, a dict an
``__init_subclass__`` fills) that a module collected after it parametrizes over
(SQLAlchemy's test_compare.py over every ``HasCacheKey`` subclass, some of which
other test modules define). A worker cannot know that before it imports a file,
so it looks at what the file collected: a parametrization over classes of other
modules, or over an empty set, may have been read off such a registry
(``reads_registries``). Then the worker imports every test module before it, as
pytest's process has, and collects the file again from a fresh node with the
module forgotten (``forget``). Files without such parametrizations cost nothing.
"""

from __future__ import annotations

import fnmatch
import gc
import importlib
import re
import sys
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from .._compat import NOTSET, nodes

_FROM = re.compile(r"from\s+([A-Za-z_][\w.]*)\s+import\s+(.*)")
_IMPORT = re.compile(r"import\s+(.*)")
_NAME = re.compile(r"[A-Za-z_]\w*")

#: (module, names imported from it); empty names for a plain ``import module``.
Import = tuple[str, tuple[str, ...]]


def imports_by_file(
    paths: Sequence[Path | None], test_patterns: Sequence[str]
) -> list[list[Import]]:
    """For each file (None: not a file), the module-level imports it is the first of
    these files to make, in order."""
    # ``from tests import helpers``: pytest imports the test tree under names of its
    # own (rootdir, import mode); importing it first, perhaps as some other
    # ``tests`` package on sys.path, could break that. Left to collection.
    test_dirs = {path.parent.name for path in paths if path is not None}
    seen: set[Import] = set()
    result: list[list[Import]] = []
    for path in paths:
        found: list[Import] = []
        result.append(found)
        try:
            text = path.read_text(encoding="utf-8", errors="replace") if path else ""
        except OSError:
            continue
        for module, names in _scan(text):
            if module.split(".", 1)[0] in test_dirs or _is_test_module(module, test_patterns):
                continue
            # ``from tests import test_helpers`` would import a test module.
            entry = (module, tuple(n for n in names if not _is_test_module(n, test_patterns)))
            if entry not in seen:
                seen.add(entry)
                found.append(entry)
    return result


def _scan(text: str) -> Iterable[Import]:
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.startswith(("from", "import")):
            continue
        line = line.split("#", 1)[0].rstrip()
        if match := _FROM.fullmatch(line):
            module, rest = match.groups()
            if module == "__future__":
                continue
            if rest.startswith("(") and ")" not in rest:
                while index < len(lines) and ")" not in rest:
                    rest += " " + lines[index].split("#", 1)[0]
                    index += 1
            names = tuple(
                name
                for part in rest.strip("() \\").split(",")
                if (name := _first_name(part)) and name != "*"
            )
            yield module, names
        elif match := _IMPORT.fullmatch(line):
            for part in match.group(1).split(","):
                dotted = part.strip().split(" ", 1)[0]
                if dotted and all(_NAME.fullmatch(p) for p in dotted.split(".")):
                    yield dotted, ()


def _first_name(part: str) -> str:
    words = part.split()
    return words[0] if words else ""


def _is_test_module(module: str, patterns: Sequence[str]) -> bool:
    for component in module.split("."):
        filename = component + ".py"
        if component == "conftest" or any(fnmatch.fnmatch(filename, p) for p in patterns):
            return True
    return False


def preimport(imports: Iterable[Import]) -> None:
    """Import each one as its statement would; an import that fails is left to the
    collection of the file that wants it, which reports it where pytest would."""
    for module, names in imports:
        try:
            if names:
                loaded = importlib.import_module(module)
                for name in names:
                    if not hasattr(loaded, name):
                        # ``from pkg import sub`` imports the submodule pkg.sub.
                        importlib.import_module(f"{module}.{name}")
            else:
                importlib.import_module(module)
        except KeyboardInterrupt:
            raise
        except BaseException:
            continue


def reads_registries(items: Sequence[nodes.Item], module: object) -> bool:
    """Whether a file's parametrization may have been read off what other test
    modules define at import: it parametrizes over classes that are or derive from
    classes of other modules (builtins aside), or over an empty set (what fills it
    may be elsewhere)."""
    own = getattr(module, "__name__", None)
    for item in items:
        for value in _params(item):
            if value is NOTSET:
                return True
            if isinstance(value, type) and any(
                getattr(cls, "__module__", None) not in (own, "builtins") for cls in value.__mro__
            ):
                return True
    return False


def not_imported(files: Sequence[nodes.Collector]) -> list[pytest.Module]:
    """The test modules among ``files`` this process has not imported."""
    return [
        node
        for node in files
        if isinstance(node, pytest.Module) and getattr(node, "_obj", None) is None
    ]


def import_test_modules(modules: Iterable[pytest.Module]) -> None:
    """Import test modules as pytest's collection does (import mode, assertion
    rewriting, ``pytest_plugins``), in order. One that fails is left to the worker
    that collects it, which reports it where pytest would."""
    for node in modules:
        try:
            node.obj  # noqa: B018 - the import is the point
        except KeyboardInterrupt:
            raise
        except BaseException:
            continue


def forget(
    node: pytest.Module, items: list[nodes.Item]
) -> tuple[pytest.Module | None, Callable[[Sequence[nodes.Item]], list[str]]]:
    """A new node for an imported test module, with the module forgotten, so that
    collecting it imports it again as if for the first time. ``items`` (what the
    node yielded) is emptied: they keep the old module alive. With it comes a check
    for what the new node yields: the classes of the first import that some
    parametrization still holds (a registry kept them: they count twice). None,
    and nothing changed, when no new node can be made."""
    try:
        fresh = type(node).from_parent(node.parent, path=node.path)
    except Exception:
        return None, _nothing_stale
    if fresh.nodeid != node.nodeid:
        return None, _nothing_stale
    items.clear()
    module = getattr(node, "_obj", None)
    if module is None:
        return fresh, _nothing_stale
    name = module.__name__
    classes = [
        weakref.ref(value)
        for value in vars(module).values()
        if isinstance(value, type) and value.__module__ == name
    ]
    if sys.modules.get(name) is module:
        del sys.modules[name]
    _drop_fixtures(node)
    cache = getattr(node.session, "_collection_cache", None)  # its report holds the items
    if isinstance(cache, dict):
        cache.pop(node, None)
    setattr(node, "_obj", None)  # noqa: B010 - pytest's cache of the module
    del module
    gc.collect()
    alive = [ref for ref in classes if ref() is not None]

    def stale(found: Sequence[nodes.Item]) -> list[str]:
        old = {id(cls) for ref in alive if (cls := ref()) is not None}
        return sorted(
            {
                value.__name__
                for item in found
                for value in _params(item)
                if isinstance(value, type) and id(value) in old
            }
        )

    return fresh, stale


def _nothing_stale(found: Sequence[nodes.Item]) -> list[str]:
    return []


def _params(item: nodes.Item) -> Iterable[object]:
    callspec = getattr(item, "callspec", None)
    return () if callspec is None else callspec.params.values()


def _drop_fixtures(node: nodes.Node) -> None:
    """Forget the fixtures collecting ``node`` registered: their functions would
    keep the old module, and its classes, alive. pytest's private tables, by node
    (pytest 9) or by node id (earlier); left alone if neither is there."""
    manager: Any = getattr(node.session, "_fixturemanager", None)
    prefix = node.nodeid

    def under(key: object) -> bool:
        if isinstance(key, nodes.Node):
            return key is node or node in key.listchain()
        return isinstance(key, str) and (key == prefix or key.startswith(prefix + "::"))

    for table in ("_arg2node2fixturedefs", "_arg2nodeid2fixturedefs"):
        for by_key in getattr(manager, table, {}).values():
            for key in [key for key in by_key if under(key)]:
                del by_key[key]
    for table in ("_node_autousenames", "_nodeid_autousenames"):
        by_key = getattr(manager, table, {})
        for key in [key for key in by_key if under(key)]:
            del by_key[key]
    for defs in getattr(manager, "_arg2fixturedefs", {}).values():
        if isinstance(defs, list):
            defs[:] = [d for d in defs if not under(getattr(d, "baseid", None))]
    seen = getattr(manager, "_holderobjseen", None)
    if isinstance(seen, set):
        module = getattr(node, "_obj", None)
        name = getattr(module, "__name__", None)
        seen -= {obj for obj in seen if obj is module or getattr(obj, "__module__", 0) == name}
