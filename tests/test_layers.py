"""The layers of docs/ARCHITECTURE.md, checked on the real import graph.

Imports are read with ``ast`` (nothing is imported), every one counted: at module
level, inside functions and under ``TYPE_CHECKING``. A module may import from its
own layer or any layer below; the engine is reached from above only through the
adapters, but for the modules it publishes. ``python tests/test_layers.py`` prints
the package's import graph with each module's layer.
"""

from __future__ import annotations

import ast
import functools
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
ARCHITECTURE = SRC.parent / "docs" / "ARCHITECTURE.md"

#: Top to bottom, as docs/ARCHITECTURE.md draws them; a module belongs to the layer of
#: its longest listed prefix (whole dotted components).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("entry", ("aqe.__main__", "aqe._entry")),
    ("CLI", ("aqe._cli", "aqe._status_view")),
    ("Python API", ("aqe", "aqe._api")),
    ("agent server", ("aqe._mcp",)),
    ("generation", ("aqe._generate", "aqe._apigen")),
    ("run control", ("aqe._runner", "aqe._git", "aqe._affected")),
    ("adapters", ("aqe._adapters", "aqe.plugins", "aqe._sharding")),
    (
        "coordination",
        (
            "aqe._engine",
            "aqe._engine._plugin",
            "aqe._engine._coordinator",
            "aqe._engine._plan",
            "aqe._engine._deps",
            "aqe._engine._settler",
            "aqe._engine._blame",
            "aqe._engine._deadlines",
            "aqe._engine._stops",
            "aqe._engine._replay",
            "aqe._engine._recorder",
            "aqe._engine._summary",
            "aqe._engine._fork",
            "aqe._engine._spawn",
            "aqe._engine._status",
            "aqe._engine._ray",
        ),
    ),
    (
        "execution",
        (
            "aqe._engine._backend",
            "aqe._engine._pool",
            "aqe._engine._worker",
            "aqe._engine._convert",
            "aqe._engine._bytecode",
            "aqe._engine._coverage",
            "aqe._engine._django",
            "aqe._engine._identity",
            "aqe._engine._junitxml",
            "aqe._engine._limits",
            "aqe._engine._order",
            "aqe._engine._preimport",
            "aqe._engine._retry",
        ),
    ),
    ("messages", ("aqe._messages", "aqe._transport")),
    ("knowledge", ("aqe._knowledge",)),
    ("store", ("aqe._store",)),
    ("reporting", ("aqe._reporting",)),
    ("verdicts", ("aqe._verdicts",)),
    ("settings", ("aqe._options", "aqe._config")),
    (
        "model",
        (
            "aqe._model",
            "aqe._exceptions",
            "aqe._compat",
            "aqe._paths",
            "aqe._signals",
            "aqe._trace",
            "aqe._registry",
            "aqe._procs",
            "aqe._version",
        ),
    ),
]

#: The engine's modules that layers above the adapters may use: the settings the
#: adapter seam takes, the status file ``aqe status`` and ``aqe mcp`` read, and the
#: execution backend's Protocol that ``aqe.plugins`` publishes.
ENGINE_PUBLISHED = (
    "aqe._engine._limits",
    "aqe._engine._retry",
    "aqe._engine._status",
    "aqe._engine._backend",
)

#: Known violations, each with a comment saying why and when it goes (none now).
ALLOWED: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(name: str) -> bool:
    base = SRC.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement, nested ones too; expressions hold no imports, so are skipped."""
    for statement in body:
        yield statement
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            for child in getattr(statement, name, ()):
                yield from _statements(child.body if not isinstance(child, ast.stmt) else [child])


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every aqe module ``path`` imports, wherever the import is."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in _statements(ast.parse(path.read_text(encoding="utf-8"), str(path)).body):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # ``from . import _quarantine`` imports a module; ``from . import x`` a name.
            targets = [
                f"{module}.{alias.name}" if _exists(f"{module}.{alias.name}") else module
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target == "aqe" or target.startswith("aqe."):
                yield node.lineno, target


def layer_of(module: str) -> int:
    best, depth = -1, -1
    for index, (_name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and prefix.count(".") > depth:
                best, depth = index, prefix.count(".")
    return best


@functools.cache
def graph() -> list[tuple[str, int, str]]:
    """(importer, line, imported) for every import between two aqe modules."""
    edges = []
    for path in sorted((SRC / "aqe").rglob("*.py")):
        importer = module_name(path)
        edges.extend(
            (importer, line, target) for line, target in imports(path) if target != importer
        )
    return edges


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations() -> list[str]:
    found = []
    for importer, line, target in graph():
        where = f"{importer}:{line} imports {target}"
        upward = layer_of(target) < layer_of(importer)
        sealed = (
            _within(target, "aqe._engine")
            and not _within(importer, "aqe._engine")
            and not _within(importer, "aqe._adapters")
            # The shards reuse the planner's estimates and select in pytest's collection:
            # the pytest adapter's part, in a package of its own.
            and not _within(importer, "aqe._sharding")
            and not any(_within(target, published) for published in ENGINE_PUBLISHED)
        )
        if (upward or sealed) and (importer, target) not in ALLOWED:
            kind = "a higher layer" if upward else "the engine, not through the adapters"
            found.append(f"{where}: {kind} ({_layer_name(importer)} -> {_layer_name(target)})")
    return found


def _layer_name(module: str) -> str:
    return LAYERS[layer_of(module)][0]


def test_every_module_has_a_layer() -> None:
    modules = [module_name(path) for path in (SRC / "aqe").rglob("*.py")]
    assert [m for m in modules if layer_of(m) < 0] == []


def test_no_layer_imports_a_higher_one() -> None:
    assert violations() == []


def test_pytest_internals_only_through_compat() -> None:
    """``aqe._compat`` is the one register of what a pytest release could break."""
    found = []
    for path in sorted((SRC / "aqe").rglob("*.py")):
        if module_name(path) == "aqe._compat":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in _statements(tree.body):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            if any(name == "_pytest" or name.startswith("_pytest.") for name in names):
                found.append(f"{module_name(path)}:{node.lineno}")
    assert found == []


def test_allowed_violations_still_exist() -> None:
    """An entry fixed by its part must leave the allow-list with it."""
    present = {(importer, target) for importer, _line, target in graph()}
    assert ALLOWED <= present


def test_table_matches_the_architecture_diagram() -> None:
    """The layer names of the diagram in docs/ARCHITECTURE.md, top to bottom."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    diagram = text.split("```", 2)[1]
    drawn = [
        match.group(1).strip()
        for match in re.finditer(r"^([a-zA-Z][a-zA-Z ]*?)\s{2,}src/aqe/", diagram, re.MULTILINE)
    ]
    assert drawn == [name for name, _prefixes in LAYERS]


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet under `| head`
    for importer, line, target in graph():
        sys.stdout.write(
            f"{importer} -> {target}  ({_layer_name(importer)} -> {_layer_name(target)}, "
            f"line {line})\n"
        )
