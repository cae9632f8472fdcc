"""What a Python file is made of, for change detection: a fingerprint per function,
one for the module-level code, and which function each line belongs to.

Why fingerprints of the syntax tree, not of the text: a comment or a reformatting
changes no behaviour and should select no test. Why module-level code is one
fingerprint: it runs at import (class bodies, decorators, default values,
constants), before any test starts, so no test's recording sees it; a change there
is widened to every test that imports the module (see ``_select``).
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field

#: The pseudo-function that stands for everything outside function bodies.
MODULE = "<module>"

_Def = ast.FunctionDef | ast.AsyncFunctionDef


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Shape:
    """A parsed file: fingerprints by qualified name and each body line's function."""

    fingerprints: dict[str, str]
    lines: dict[int, str] = field(default_factory=dict)
    #: Names module-level code calls (calls and decorators run at import time).
    module_names: frozenset[str] = frozenset()


def _digest(node: ast.AST) -> str:
    return hashlib.blake2b(ast.dump(node).encode(), digest_size=12).hexdigest()


class _Walker(ast.NodeVisitor):
    def __init__(self, digests: bool = True) -> None:
        self.digests = digests
        self.prefix: list[str] = []
        self.fingerprints: dict[str, str] = {}
        self.lines: dict[int, str] = {}
        self.defs: list[_Def] = []

    def _function(self, node: _Def) -> None:
        name = ".".join([*self.prefix, node.name])
        if name in self.fingerprints:  # redefined (a property's setter): both count
            name = f"{name}@{node.lineno}"
        self.fingerprints[name] = _digest(node) if self.digests else ""
        self.defs.append(node)
        first = node.body[0].lineno
        last = node.end_lineno or first
        for line in range(first, last + 1):
            self.lines[line] = name  # an inner def overwrites below
        self.prefix.append(node.name)
        for child in node.body:
            self.visit(child)
        self.prefix.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.prefix.append(node.name)
        for child in node.body:
            self.visit(child)
        self.prefix.pop()


def shape_of(source: bytes | str) -> Shape | None:
    """The file's shape; None when it does not parse (then any change counts whole)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    walker = _Walker()
    walker.visit(tree)
    for function in walker.defs:  # what remains once bodies are gone is import-time code
        function.body = [ast.Pass()]
    names: set[str] = set()
    for node in ast.walk(tree):  # what import-time code calls: calls and decorators
        called: list[ast.expr] = []
        if isinstance(node, ast.Call):
            called.append(node.func)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            called.extend(node.decorator_list)
        for expr in called:
            if isinstance(expr, ast.Call):
                expr = expr.func
            if isinstance(expr, ast.Name):
                names.add(expr.id)
            elif isinstance(expr, ast.Attribute):
                names.add(expr.attr)
    walker.fingerprints[MODULE] = _digest(tree)
    return Shape(walker.fingerprints, walker.lines, frozenset(names))


def line_index(source: bytes | str) -> dict[int, str] | None:
    """Which function each body line belongs to (``Shape.lines``) without the
    fingerprints: what a recording worker needs, at a fraction of ``shape_of``'s cost
    (the run's merge fingerprints each file once)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    walker = _Walker(digests=False)
    walker.visit(tree)
    return walker.lines


def changed_functions(before: dict[str, str], after: dict[str, str]) -> frozenset[str]:
    """Functions added, removed or edited; ``MODULE`` when import-time code changed."""
    return frozenset(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )
