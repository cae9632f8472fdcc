"""Failures grouped by root cause: a fingerprint per failure, and its searchable text.

When one bug breaks twenty tests, they fail in different ways: some with an
exception raised inside the buggy function, most with an assertion in the test on
what it returned. So a failure is blamed on a function:

* raised inside the project's own (non-test) code: the deepest such frame, the one
  that raised (or called the library that did). A public caller above it is shared
  by failures of every function it calls, so blaming it would merge unrelated bugs;
* raised in the test itself (an assertion on a wrong value): the project function
  called on the failing statement, or on the nearest line above it that calls one.

The fingerprint is that function's name, so an exception raised in ``total`` and an
assertion on what ``total()`` returned are one cause; a frame named like plumbing
(``__init__``, ``wrapper``) keeps its file too, as its name alone says nothing. No
line numbers. Failures with no function to blame fall back to the exception type
plus the test's own frame.
Messages are normalized (numbers, hex ids, paths, quoted values) for display and
for the similarity text, never for the key.
"""

from __future__ import annotations

import builtins
import hashlib
import keyword
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .._reporting.digest import CARETS, SEPARATOR

_LOCATION = re.compile(r"^(?P<path>[^\s:][^:]*?\.pyw?):(?P<line>\d+):(?: in (?P<func>\S+)|\s.*)?$")
_NATIVE = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)')
_DEF = re.compile(r"^\s*(?:async\s+)?def\s+(?P<name>\w+)\s*\(")
_CALL = re.compile(r"(?P<name>[A-Za-z_][\w.]*)\s*\(")

_BUILTINS = frozenset(dir(builtins)) | frozenset(keyword.kwlist)
#: Names that say nothing without their file (dunders, decorators' wrappers).
_PLUMBING = re.compile(r"^__\w+__$|^_?(?:wrapper|wrapped|inner|decorator|decorated|call)$")
_LOCAL = re.compile(r"^\s*(?:async\s+)?def\s+(\w+)|^\s*(\w+)\s*=[^=]")
_DEFINED = re.compile(r"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)", re.MULTILINE)
_SKIP_DIRS = frozenset({"__pycache__", "node_modules", "build", "dist", "site-packages"})
#: Calls on a failing line that are the check, not the code under test.
_CHECKS = re.compile(
    r"^(?:self\.)?(?:assert\w*|fail\w*|subTest)$|^pytest\.\w+$|^(?:approx|raises)$"
)


@dataclass(frozen=True, slots=True)
class Frame:
    path: str
    function: str
    #: The source lines pytest showed for the frame (its statement marked with ">").
    source: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Signature:
    #: Stable id of the cause (a short hash of ``cause``).
    key: str
    #: What the failures of this cause share, for people: "more.py::chunked" or
    #: "TypeError in tests/test_x.py::test_y".
    cause: str
    #: Normalized words for the similarity index.
    text: str
    #: The project function blamed, when it has a telling name.
    function: str | None = None
    #: Project functions on the failure's call path (the blamed one and its callers).
    path: frozenset[str] = frozenset()


def is_test_path(path: str) -> bool:
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    parts = path.replace("\\", "/").split("/")
    return (
        name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
        or any(part in ("tests", "test", "testing") for part in parts[:-1])
    )


def is_external(path: str) -> bool:
    """Not the project's code: the standard library, installed packages, pytest."""
    p = path.replace("\\", "/")
    return (
        p.startswith(("/", "<", "_pytest/", "pluggy/"))
        or "site-packages/" in p
        or "/lib/python" in p
    )


def frames(traceback: str) -> list[Frame]:
    """The frames of a pytest (long, short or native) traceback, outermost first."""
    found: list[Frame] = []
    block: list[str] = []
    native = [m for m in map(_NATIVE.match, traceback.splitlines()) if m]
    if native:
        return [Frame(m["path"], m["func"]) for m in native]
    for line in traceback.splitlines():
        if SEPARATOR.match(line):
            block = []
            continue
        match = _LOCATION.match(line.rstrip())
        if match:
            name = match["func"]
            if name is None:
                defs = [m["name"] for m in map(_DEF.match, block) if m]
                name = defs[0] if defs else "?"
            found.append(Frame(match["path"], name, tuple(block)))
            block = []
            continue
        block.append(line)
    return found


def _failing_statement(source: Iterable[str]) -> tuple[str, list[str]]:
    """The statement marked with ">" (with its continuation lines), and the lines above."""
    lines = list(source)
    for index, line in enumerate(lines):
        if line.startswith(">"):
            statement = [line[1:]]
            for more in lines[index + 1 :]:
                if more.startswith(("E ", ">")) or more == "E":
                    break
                if not CARETS.match(more):
                    statement.append(more)
            return "\n".join(statement), [ln.lstrip(">") for ln in lines[:index]]
    return "", []


def _called(text: str) -> list[str]:
    names = []
    for match in _CALL.finditer(text):
        full = match["name"]
        short = full.rsplit(".", 1)[-1]
        if full.startswith(("def ", "class ")) or short in _BUILTINS or _CHECKS.match(full):
            continue
        if short.startswith("assert"):
            continue
        names.append(short)
    return names


def project_sources(root: Path, limit: int = 5000) -> Iterator[tuple[str, str]]:
    """``(path, text)`` of the project's own (non-test) Python files, at most ``limit``."""
    seen = 0
    for directory, dirs, files in os.walk(root):
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith(".")
            and d not in _SKIP_DIRS
            and not os.path.exists(os.path.join(directory, d, "pyvenv.cfg"))
        ]
        for name in files:
            path = os.path.join(directory, name)
            if not name.endswith(".py") or is_test_path(os.path.relpath(path, root)):
                continue
            seen += 1
            if seen > limit:
                return
            try:
                with open(path, encoding="utf-8", errors="replace") as stream:
                    yield path, stream.read()
            except OSError:
                continue


def project_names(root: Path, limit: int = 5000) -> frozenset[str]:
    """Functions and classes defined in the project's own (non-test) code, so that a
    failing assertion is blamed on a call of the project, not of a library."""
    names: set[str] = set()
    for _path, text in project_sources(root, limit):
        names.update(_DEFINED.findall(text))
    return frozenset(names)


def blame(trace: list[Frame], known: frozenset[str] = frozenset()) -> tuple[str, str] | None:
    """``(function, where)`` of the project code a failure is blamed on, if any:
    ``where`` is ``path::function`` when the function's frame is in the traceback,
    else ``function()`` as the test called it. ``known``: the project's own names."""
    inside = [f for f in trace if not is_external(f.path) and not is_test_path(f.path)]
    if inside:
        raised = inside[-1]  # the frame that raised: its callers only passed through
        return raised.function, f"{raised.path}::{raised.function}"
    tests = [f for f in trace if not is_external(f.path)]
    if not tests:
        return None
    # Helpers and values the test defines itself are not the code under test.
    local = {
        name
        for frame in tests
        for line in frame.source[1:]
        for match in [_LOCAL.match(line.lstrip(">"))]
        if match
        for name in match.groups()
        if name
    }
    statement, above = _failing_statement(tests[-1].source)
    for text in (statement, *reversed([ln for ln in above if not _DEF.match(ln)])):
        names = [n for n in _called(text) if n not in local]
        ranked = (
            [n for n in names if n in known]
            or [n for n in names if not n.startswith("_") and not known]
            or ([] if known else names)
        )
        if ranked:
            return ranked[0], f"{ranked[0]}()"
    return None


def normalize(message: str) -> str:
    """A message with the parts that differ between runs of one cause replaced."""
    text = re.sub(r"0x[0-9a-fA-F]+", "<hex>", message)
    text = re.sub(r"(?:[A-Za-z]:)?(?:/[\w.\-]+){2,}/?", "<path>", text)
    text = re.sub(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f-]{14,}\b", "<uuid>", text)
    text = re.sub(r"'[^'\n]{0,200}'|\"[^\"\n]{0,200}\"", "<str>", text)
    text = re.sub(r"\b\d+(?:\.\d+)?\b", "<n>", text)
    return " ".join(text.split())


def signature(entry: Mapping[str, object], known: frozenset[str] = frozenset()) -> Signature:
    """The cause of one failed attempt (a ``tests[]`` entry of the JSON report, or the
    same fields of a stored result)."""
    traceback = str(entry.get("traceback") or "")
    error_type = str(entry.get("error_type") or entry.get("outcome") or "Error").rsplit(".", 1)[-1]
    message = str(entry.get("message") or "").split("\n", 1)[0]
    trace = frames(traceback)
    blamed = blame(trace, known)
    outcome = entry.get("outcome")
    nodeid = str(entry.get("nodeid") or "")
    if outcome in ("crashed", "timeout"):
        # A dead or stopped worker leaves no traceback of the test: the test is the cause.
        basis = cause = f"{outcome}: {nodeid.split('[', 1)[0]}"
    elif blamed is not None:
        named = blamed[1] if _PLUMBING.match(blamed[0]) else blamed[0]
        basis, cause = f"function {named}", blamed[1]
    else:
        own = [f for f in trace if not is_external(f.path)]
        where = f"{own[-1].path}::{own[-1].function}" if own else nodeid.split("[", 1)[0]
        basis = cause = f"{error_type} in {where}"
    words = [error_type, cause, normalize(message)]
    words += [f"{f.path}::{f.function}" for f in trace if not is_external(f.path)]
    statement = _failing_statement(trace[-1].source)[0] if trace else ""
    words += _called(statement)
    text = " ".join(re.findall(r"[A-Za-z_][\w]*", " ".join(words)))
    key = hashlib.sha1(basis.encode(), usedforsecurity=False).hexdigest()[:12]
    function = blamed[0] if blamed and basis.startswith("function ") else None
    if function is None or _PLUMBING.match(function):
        return Signature(key=key, cause=cause, text=text)
    path = frozenset(
        f.function
        for f in trace
        if not is_external(f.path) and not is_test_path(f.path) and not _PLUMBING.match(f.function)
    )
    return Signature(key, cause, text, function, path | {function})
