"""The project's static import graph: which files import which, read with ``ast``.

Why static: ``--changed`` must answer without running anything, and a change to
module-level code must reach every test whose module imports it even if no test
executed a line of it. Why names resolve by suffix: a file's module name depends on
``sys.path`` (``src/`` layouts, test directories that pytest puts first), so a file
answers to every dotted name its path ends with; an import that could mean two files
means both. Dynamic imports (``importlib.import_module``, entry points) are not seen.
"""

from __future__ import annotations

import ast
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from pathlib import Path


def _dotted(relpath: str) -> list[str]:
    """Every dotted name ``a/b/c.py`` may be imported as: a.b.c, b.c, c."""
    parts = relpath[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return [".".join(parts[start:]) for start in range(len(parts))]


def _package(relpath: str) -> list[str]:
    parts = relpath[:-3].split("/")
    return parts[:-1]


def _imported(relpath: str, tree: ast.AST) -> set[str]:
    """Dotted names the file imports, relative ones made absolute from its path."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package(relpath)
                if relpath.endswith("__init__.py") or node.level > 1:
                    package = package[: len(package) - (node.level - 1)] or package[:0]
                base = ".".join([*package, node.module] if node.module else package)
            else:
                base = node.module or ""
            if base:
                found.add(base)
            for alias in node.names:
                if alias.name != "*" and base:
                    found.add(f"{base}.{alias.name}")
    return found


class ImportGraph:
    """Edges from each project file to the project files it imports."""

    def __init__(self, sources: Mapping[str, bytes]) -> None:
        self.by_name: dict[str, set[str]] = defaultdict(set)
        for relpath in sources:
            for name in _dotted(relpath):
                self.by_name[name].add(relpath)
        self.importers: dict[str, set[str]] = defaultdict(set)
        for relpath, data in sources.items():
            try:
                tree = ast.parse(data)
            except (SyntaxError, ValueError):
                continue
            for name in _imported(relpath, tree):
                for target in self._resolve(name):
                    if target != relpath:
                        self.importers[target].add(relpath)

    def _resolve(self, name: str) -> set[str]:
        """The files ``import name`` runs: the module and every package above it."""
        parts = name.split(".")
        targets: set[str] = set()
        for end in range(1, len(parts) + 1):
            targets |= self.by_name.get(".".join(parts[:end]), set())
        return targets

    def dependents(self, changed: Iterable[str]) -> dict[str, str]:
        """Every file that imports a changed file, directly or not, with the changed
        file it reaches (for explanations); changed files map to themselves."""
        reached: dict[str, str] = {}
        queue: deque[str] = deque()
        for path in changed:
            reached[path] = path
            queue.append(path)
        while queue:
            current = queue.popleft()
            for importer in self.importers.get(current, ()):
                if importer not in reached:
                    reached[importer] = reached[current]
                    queue.append(importer)
        return reached


def python_sources(root: Path, files: Iterable[str]) -> dict[str, bytes]:
    """The contents of the project's Python files (relative paths, ``/``-separated)."""
    sources: dict[str, bytes] = {}
    for relpath in files:
        if relpath.endswith(".py"):
            try:
                sources[relpath] = (root / relpath).read_bytes()
            except OSError:
                continue
    return sources
