"""Calls found in docstring examples: valid inputs the author chose, ready to reuse.

``>>> str(semver.Version.parse("0.1.4").next_version("prerelease"))`` yields, for
``Version.next_version``, the receiver ``Version.parse('0.1.4')`` and the argument
``'prerelease'``; for ``Version.parse``, the argument ``'0.1.4'``. Package prefixes are
rewritten to the names the test file imports, and calls that need an earlier example's
variables are skipped.
"""

from __future__ import annotations

import ast
import doctest
import inspect
import sys
import types
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DocCall:
    receiver: str | None
    args: list[str]
    keywords: dict[str, str] = field(default_factory=dict)


def doc_calls(module: types.ModuleType, namespace: dict[str, Any]) -> dict[str, list[DocCall]]:
    """Target name ("func", "Class", "Class.method") to the calls its examples make."""
    scope = dict(namespace)
    root = module.__name__.split(".", 1)[0]
    if root in sys.modules:
        scope.setdefault(root, sys.modules[root])
    found: dict[str, list[DocCall]] = {}
    parser = doctest.DocTestParser()
    for text in _docstrings(module):
        try:
            examples = parser.get_examples(text)
        except ValueError:
            continue
        for example in examples:
            try:
                tree = ast.parse(example.source)
            except SyntaxError:
                continue
            tree = _Unprefix(scope, namespace).visit(tree)
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    _record(node, scope, namespace, found)
    return found


def _docstrings(module: types.ModuleType) -> list[str]:
    texts = [module.__doc__ or ""]
    for value in vars(module).values():
        if getattr(value, "__module__", None) != module.__name__:
            continue
        texts.append(inspect.getdoc(value) or "")
        if inspect.isclass(value):
            for attr in vars(value).values():
                func = getattr(attr, "__func__", None) or getattr(attr, "fget", None) or attr
                texts.append(inspect.getdoc(func) or "" if callable(func) else "")
    return [t for t in texts if ">>>" in t]


class _Unprefix(ast.NodeTransformer):
    """``semver.version.Version`` -> ``Version`` when the test file imports it by name."""

    def __init__(self, scope: dict[str, Any], namespace: dict[str, Any]) -> None:
        self.scope = scope
        self.namespace = namespace

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        try:
            value = eval(ast.unparse(node), dict(self.scope))
        except Exception:
            return self.generic_visit(node)
        name = getattr(value, "__name__", None)
        if isinstance(name, str) and self.namespace.get(name) is value:
            return ast.copy_location(ast.Name(id=name, ctx=ast.Load()), node)
        return self.generic_visit(node)


def _record(
    node: ast.Call,
    scope: dict[str, Any],
    namespace: dict[str, Any],
    found: dict[str, list[DocCall]],
) -> None:
    args = [ast.unparse(a) for a in node.args if not isinstance(a, ast.Starred)]
    if len(args) != len(node.args) or any(k.arg is None for k in node.keywords):
        return
    keywords = {str(k.arg): ast.unparse(k.value) for k in node.keywords}
    for source in [*args, *keywords.values()]:
        if not _evaluates(source, namespace):
            return
    func = node.func
    if isinstance(func, ast.Name) and func.id in namespace:
        found.setdefault(func.id, []).append(DocCall(None, args, keywords))
    elif isinstance(func, ast.Attribute):
        receiver = ast.unparse(func.value)
        try:
            owner = eval(receiver, dict(namespace))
        except Exception:
            return
        if isinstance(owner, type):
            found.setdefault(f"{owner.__name__}.{func.attr}", []).append(
                DocCall(None, args, keywords)
            )
        else:
            found.setdefault(f"{type(owner).__name__}.{func.attr}", []).append(
                DocCall(receiver, args, keywords)
            )


def _evaluates(source: str, namespace: dict[str, Any]) -> bool:
    try:
        eval(source, dict(namespace))
    except Exception:
        return False
    return True
