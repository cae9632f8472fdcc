"""Structure figures for aqe's source: the before/after table of issue 16.

Prints the largest module, the largest class (lines, methods, attributes), the longest
functions, how many function signatures use ``Any`` or ``dict[str, Any]``, and how many
modules import pytest's private ``_pytest`` package. It reads the source with ``ast``
and imports nothing, so it runs on any checkout: ``python benchmarks/structure.py
[SRC]`` (default ``src/aqe``).
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    name: str
    lines: int


def _span(node: ast.AST) -> int:
    end = getattr(node, "end_lineno", None) or 0
    start = getattr(node, "lineno", 0)
    decorators = getattr(node, "decorator_list", [])
    if decorators:
        start = min(start, *(d.lineno for d in decorators))
    return end - start + 1


def _annotation_texts(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    args = node.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    every += [a for a in (args.vararg, args.kwarg) if a is not None]
    texts = [ast.unparse(a.annotation) for a in every if a.annotation is not None]
    if node.returns is not None:
        texts.append(ast.unparse(node.returns))
    return texts


def _attributes(cls: ast.ClassDef) -> set[str]:
    """Names assigned on ``self`` anywhere in the class, plus class-level annotations."""
    names: set[str] = set()
    for node in ast.walk(cls):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        for target in targets:
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
            ):
                names.add(target.attr)
    for stmt in cls.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            names.add(stmt.target.id)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("src", nargs="?", type=Path, default=Path("src/aqe"))
    parser.add_argument("--top", type=int, default=5, help="rows per list (5)")
    options = parser.parse_args(argv)
    root: Path = options.src
    if not root.is_dir():
        print(f"structure: error: no such directory: {root}", file=sys.stderr)
        return 4
    modules: list[Figure] = []
    classes: list[tuple[Figure, int, int]] = []
    functions: list[Figure] = []
    any_signatures = dict_any_signatures = 0
    private_pytest: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).as_posix()
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        modules.append(Figure(rel, len(text.splitlines())))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                methods = sum(
                    isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) for s in node.body
                )
                classes.append(
                    (Figure(f"{rel}:{node.name}", _span(node)), methods, len(_attributes(node)))
                )
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.append(Figure(f"{rel}:{node.name}", _span(node)))
                texts = _annotation_texts(node)
                if any("Any" in t for t in texts):
                    any_signatures += 1
                if any("dict[str, Any]" in t or "Dict[str, Any]" in t for t in texts):
                    dict_any_signatures += 1
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("_pytest"):
                private_pytest.add(rel)
            elif isinstance(node, ast.Import) and any(
                a.name.startswith("_pytest") for a in node.names
            ):
                private_pytest.add(rel)
    top = options.top
    print(f"modules: {len(modules)}, lines: {sum(m.lines for m in modules)}")
    print("largest modules:")
    for m in sorted(modules, key=lambda m: -m.lines)[:top]:
        print(f"  {m.lines:6d}  {m.name}")
    print("largest classes (lines, methods, attributes):")
    for c, methods, attrs in sorted(classes, key=lambda c: -c[0].lines)[:top]:
        print(f"  {c.lines:6d}  {methods:3d}  {attrs:3d}  {c.name}")
    print("longest functions:")
    for f in sorted(functions, key=lambda f: -f.lines)[:top]:
        print(f"  {f.lines:6d}  {f.name}")
    lengths = sorted(f.lines for f in functions)
    print(f"functions: {len(functions)}, median length {lengths[len(lengths) // 2]} lines")
    print(f"signatures with Any: {any_signatures}; with dict[str, Any]: {dict_any_signatures}")
    print(f"modules importing _pytest: {len(private_pytest)}")
    for name in sorted(private_pytest):
        print(f"  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
