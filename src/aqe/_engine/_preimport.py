"""Reproduce the import side effects of the test modules a worker does not collect.

pytest imports every test module before the first test runs, so a module-level
``import pkg.sub`` in one test file leaves ``pkg.sub`` set for the tests of every
other file. Real suites lean on this without knowing it (click's own tests do). An
aqe worker collects only its share of the files, so it makes what the other test
modules import at module level, unless they are test modules themselves, in
pytest's order: before it imports a file, what the files before it import (a
module parametrized over a registry's subclasses sees the same ones, as
SQLAlchemy's test_compare.py does), and the rest before its first test. Those
imports are the cheap part of collection; the expensive part, rewriting and
collecting the test modules, stays split between workers.

Only statements at column 0 count: an import inside a function, an ``if
TYPE_CHECKING:`` block or a ``try:`` is not a module-level side effect to copy.
"""

from __future__ import annotations

import fnmatch
import importlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

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
