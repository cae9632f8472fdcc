"""Which project function calls which, read from the source: call paths that no
traceback shows.

Two causes of one run's failures may be one bug seen twice: an assertion on
``memoize()`` and one on ``is_arity()``, when ``memoize`` calls ``is_arity``. An
assertion leaves no frame of the project in its traceback, so only the source
tells. Names are bare (``obj.method()`` counts as a call of ``method``): a
same-named function elsewhere may stand in, so this is used only beside a past run
in which the causes' tests started failing together.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

from ._triage import project_sources

#: Calls followed from a function: beyond this a shared helper links everything.
DEPTH = 3


def project_calls(root: Path, limit: int = 5000) -> dict[str, frozenset[str]]:
    """Per function or class defined in the project's (non-test) code, the names it
    calls (a class: what its methods call, as ``Cart()`` in a test stands for them)."""
    calls: dict[str, set[str]] = {}
    for path, text in project_sources(root, limit):
        try:
            tree = ast.parse(text, filename=path)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                found = calls.setdefault(node.name, set())
                for inner in ast.walk(node):
                    if not isinstance(inner, ast.Call):
                        continue
                    if isinstance(inner.func, ast.Name):
                        found.add(inner.func.id)
                    # A method of a literal (", ".join) is never the project's function.
                    elif isinstance(inner.func, ast.Attribute):
                        if not isinstance(inner.func.value, ast.Constant):
                            found.add(inner.func.attr)
    return {name: frozenset(called) for name, called in calls.items()}


def reaches(calls: Mapping[str, frozenset[str]], caller: str, callee: str) -> bool:
    """Whether ``caller`` calls ``callee``, directly or through at most DEPTH calls."""
    frontier, seen = {caller}, {caller}
    for _ in range(DEPTH):
        frontier = {n for name in frontier for n in calls.get(name, ())} - seen
        if callee in frontier:
            return True
        seen |= frontier
    return False
