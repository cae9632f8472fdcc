"""Which lines and branches of one file a call ran, in coverage.py's terms.

The search measures every call it makes, so the tracer must be cheap: it traces only
frames of the target file and records line-to-line arcs the way coverage.py does
(entry ``-firstlineno -> line``, exit ``line -> -firstlineno``). The universe of arcs and
statements comes from coverage.py's own parser, so "covered" here means what
``coverage run --branch`` will report for the written tests.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

Arc = tuple[int, int]


@dataclass
class FileMap:
    """Statements, arcs and branch points of the target file (from coverage.py)."""

    statements: frozenset[int]
    arcs: frozenset[Arc]
    branch_lines: frozenset[int]
    first_line: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, path: str) -> FileMap:
        from coverage.parser import PythonParser

        parser = PythonParser(filename=path)
        parser.parse_source()
        exits = parser.exit_counts()
        first = {}
        for line in range(1, parser.text.count("\n") + 2):
            mapped = parser.first_line(line)
            if mapped != line:
                first[line] = mapped
        return cls(
            statements=frozenset(parser.statements),
            arcs=frozenset(parser.arcs()),
            branch_lines=frozenset(line for line, n in exits.items() if n > 1),
            first_line=first,
        )

    def branch_arcs(self, lines: range | None = None) -> set[Arc]:
        return {
            arc
            for arc in self.arcs
            if arc[0] in self.branch_lines and (lines is None or arc[0] in lines)
        }


class ArcTracer:
    """Records arcs of one file while active; ``run`` measures one call."""

    def __init__(self, path: str, filemap: FileMap) -> None:
        self._path = path
        self._first = filemap.first_line
        self.arcs: set[Arc] = set()
        self.lines: set[int] = set()

    def _global(self, frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != self._path:
            return None
        start = -frame.f_code.co_firstlineno
        first = self._first
        arcs = self.arcs
        lines = self.lines
        last = [start]

        def local(frame: FrameType, event: str, arg: Any) -> Any:
            if event == "line":
                line = first.get(frame.f_lineno, frame.f_lineno)
                if line != last[0]:
                    arcs.add((last[0], line))
                    lines.add(line)
                    last[0] = line
            elif event == "return":
                arcs.add((last[0], start))
            return local

        if event == "call":
            return local
        return None

    def run(self, func: Callable[[], Any]) -> tuple[Any, BaseException | None, set[Arc], set[int]]:
        """Call ``func`` traced; returns (value, exception, arcs, lines)."""
        self.arcs = set()
        self.lines = set()
        previous = sys.gettrace()
        sys.settrace(self._global)
        try:
            value = func()
            error: BaseException | None = None
        except Exception as exc:
            value, error = None, exc
        finally:
            sys.settrace(previous)
        return value, error, self.arcs, self.lines
