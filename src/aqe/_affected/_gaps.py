"""``aqe gaps``: the code no test reaches, by function, ranked by how much it matters.

From the coverage data the last covered run left (``.coverage``, as pytest-cov and
``coverage run`` write it, combined over aqe's workers): the lines never run and,
when branches were measured (``--cov-branch``), the partial branches (a line that
ran but never went one of its ways: an ``if`` never false, a loop never skipped).
Why these ranks: a gap in
code that changes often (git churn) breaks more often; one with many branches hides
more behaviour; one whose neighbours (the other functions of its file) many tests
reach sits in code the project cares about, and is the cheapest to test from there.
"""

from __future__ import annotations

import ast
import math
import subprocess
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from .._exceptions import UsageError
from ._source import MODULE, shape_of

_BRANCHES = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.Try, ast.IfExp, ast.BoolOp, ast.Match)


@dataclass(frozen=True, slots=True)
class Gap:
    file: str
    function: str
    lines: tuple[int, ...]
    branches: int
    churn: int
    neighbour_tests: int
    score: float
    #: Partial branches: (line, the line it never went to; 0 for leaving the function).
    missed_branches: tuple[tuple[int, int], ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            **asdict(self),
            "lines": list(self.lines),
            "missed_branches": [list(arc) for arc in self.missed_branches],
        }


def git_churn(root: Path) -> Callable[[str], int]:
    """Commits that touched a file among the last 500 (0 outside git)."""

    def churn(relpath: str) -> int:
        try:
            done = subprocess.run(
                ["git", "log", "--oneline", "-n", "500", "--", relpath],
                cwd=root, capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return 0
        return len(done.stdout.splitlines()) if done.returncode == 0 else 0

    return churn


def _branches(tree: ast.AST) -> dict[str, int]:
    """Branch points per function (qualified as ``_source`` names them)."""
    counts: dict[str, int] = {}

    def walk(node: ast.AST, prefix: list[str], owner: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = ".".join([*prefix, child.name])
                counts.setdefault(name, 0)
                walk(child, [*prefix, child.name], name)
            elif isinstance(child, ast.ClassDef):
                walk(child, [*prefix, child.name], owner)
            else:
                if isinstance(child, _BRANCHES):
                    counts[owner] = counts.get(owner, 0) + 1
                walk(child, prefix, owner)

    walk(tree, [], MODULE)
    return counts


def find_gaps(
    root: Path,
    missing: Mapping[str, set[int]],
    churn: Callable[[str], int],
    reached_by: Mapping[str, Mapping[str, Collection[str]]] | None = None,
    partial: Mapping[str, set[tuple[int, int]]] | None = None,
) -> list[Gap]:
    """Gaps per function from each file's missing lines (relative path -> lines) and
    partial branches (relative path -> (line, line not gone to)), best first; an
    untaken branch weighs as a missing line. ``reached_by``: per file, per function,
    which tests ran it."""
    found = []
    partial = partial or {}
    for relpath in sorted(missing.keys() | partial.keys()):
        lines = missing.get(relpath, set())
        arcs = partial.get(relpath, set())
        if not lines and not arcs:
            continue
        try:
            source = (root / relpath).read_bytes()
        except OSError:
            continue
        shape = shape_of(source)
        if shape is None:
            continue
        branches = _branches(ast.parse(source))
        grouped: dict[str, list[int]] = {}
        for line in sorted(lines):
            grouped.setdefault(shape.lines.get(line, MODULE), []).append(line)
        untaken: dict[str, list[tuple[int, int]]] = {}
        for arc in sorted(arcs):
            untaken.setdefault(shape.lines.get(arc[0], MODULE), []).append(arc)
        changes = churn(relpath)
        tests = (reached_by or {}).get(relpath, {})
        for function in sorted(grouped.keys() | untaken.keys()):
            gap_lines = grouped.get(function, [])
            missed = untaken.get(function, [])
            neighbours = len(set().union(*(t for name, t in tests.items() if name != function)))
            score = (
                (len(gap_lines) + len(missed))
                * (1 + branches.get(function, 0))
                * (1 + math.log1p(changes))
                * (1 + math.log1p(neighbours))
            )
            found.append(
                Gap(
                    relpath,
                    function,
                    tuple(gap_lines),
                    branches.get(function, 0),
                    changes,
                    neighbours,
                    round(score, 2),
                    tuple(missed),
                )
            )
    return sorted(found, key=lambda gap: (-gap.score, gap.file, gap.function))


def missing_lines(root: Path, under: str | None = None) -> dict[str, set[int]]:
    """Each measured project file's unreached lines, from the project's coverage data."""
    return measured_gaps(root, under)[0]


def measured_gaps(
    root: Path, under: str | None = None
) -> tuple[dict[str, set[int]], dict[str, set[tuple[int, int]]]]:
    """Each measured project file's unreached lines and, when the data has branches,
    its partial branches (from a line that ran; 0 for "out of the function")."""
    try:
        import coverage
        from coverage.exceptions import CoverageException
    except ImportError:
        raise UsageError("aqe gaps needs coverage.py: pip install 'coverage>=7.6'") from None
    cov = coverage.Coverage(data_file=str(root / ".coverage"))
    data_file = Path(cov.config.data_file)
    if not data_file.is_absolute():
        data_file = root / data_file
    if not data_file.exists():
        raise UsageError(
            f"no coverage data in {data_file}: run with coverage first "
            "(aqe run -- --cov=PKG, or coverage run -m aqe run)"
        )
    cov = coverage.Coverage(data_file=str(data_file))
    cov.load()
    with_branches = cov.get_data().has_arcs()
    found: dict[str, set[int]] = {}
    partial: dict[str, set[tuple[int, int]]] = {}
    resolved = root.resolve()
    for filename in cov.get_data().measured_files():
        path = Path(filename)
        try:
            relpath = path.resolve().relative_to(resolved).as_posix()
        except ValueError:
            continue
        if under is not None and not (
            relpath == under or relpath.startswith(under.rstrip("/") + "/")
        ):
            continue
        try:
            _, _, _, missing, _ = cov.analysis2(filename)
            arcs = _partial_branches(cov, filename) if with_branches else {}
        except (CoverageException, OSError):
            continue
        found[relpath] = set(missing)
        partial[relpath] = {
            (line, max(to, 0))
            for line, targets in arcs.items()
            if line not in found[relpath]
            for to in targets
        }
    return found, partial


def _partial_branches(cov: object, filename: str) -> dict[int, list[int]]:
    """coverage.py's missed branch arcs by line (its analysis object: the same
    numbers its own report prints as partial branches)."""
    analyze = getattr(cov, "_analyze", None)
    if analyze is None:  # a coverage.py without it: lines only
        return {}
    arcs = analyze(filename).missing_branch_arcs()
    return {int(line): [int(to) for to in targets] for line, targets in arcs.items()}


def reached_from(tests: Mapping[str, object]) -> dict[str, dict[str, set[str]]]:
    """Per file, per function: the recorded tests that ran it (the dependency map);
    a test reaching several neighbours counts once."""
    found: dict[str, dict[str, set[str]]] = {}
    for nodeid, deps in tests.items():
        for relpath, (_, functions) in getattr(deps, "python", {}).items():
            per_file = found.setdefault(relpath, {})
            for function in functions:
                per_file.setdefault(function, set()).add(nodeid)
    return found


def command(root: Path, under: str | None, store: object | None, limit: int) -> list[Gap]:
    """``aqe gaps``: the top ``limit`` gaps under ``under`` (a path relative to root)."""
    reached: dict[str, dict[str, set[str]]] = {}
    if store is not None:
        from . import _mapstore

        reached = reached_from(_mapstore.load(store).tests)
    lines, partial = measured_gaps(root, under)
    gaps = find_gaps(root, lines, git_churn(root), reached, partial)
    return gaps[:limit]


def text(gaps: list[Gap]) -> list[str]:
    rows = []
    for gap in gaps:
        where = [f"lines {_ranges(gap.lines)}"] if gap.lines else []
        if gap.missed_branches:
            arcs = ",".join(f"{a}->{b or 'exit'}" for a, b in gap.missed_branches)
            where.append(f"branches {arcs} never taken")
        rows.append(
            f"{gap.score:8.1f}  {gap.file}::{gap.function}  {', '.join(where)}  "
            f"({gap.branches} branches, {gap.churn} commits, {gap.neighbour_tests} tests nearby)"
        )
    return rows


def _ranges(lines: tuple[int, ...]) -> str:
    parts: list[str] = []
    start = previous = lines[0]
    for line in (*lines[1:], None):
        if line is not None and line == previous + 1:
            previous = line
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if line is not None:
            start = previous = line
    return ",".join(parts)


def top_function(root: Path, target: str) -> Gap | None:
    """The best-ranked gap of a module (``MODULE_OR_PATH``) that ``aqe generate`` can
    aim at: a public module-level function or a public method of a public class."""
    path = Path(target)
    if not path.suffix == ".py":
        import importlib.util

        try:
            spec = importlib.util.find_spec(target)
        except (ImportError, ValueError):
            spec = None
        if spec is None or spec.origin is None:
            raise UsageError(f"aqe generate --gaps: cannot find module {target!r}")
        path = Path(spec.origin)
    try:
        relpath = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise UsageError(f"aqe generate --gaps: {path} is not in the project {root}") from None
    lines, partial = measured_gaps(root, relpath)
    gaps = find_gaps(root, lines, git_churn(root), None, partial)
    for gap in gaps:
        parts = gap.function.split(".")
        if (
            gap.function != MODULE
            and "@" not in gap.function
            and len(parts) <= 2
            and not any(part.startswith("_") for part in parts)  # generate aims at public API
        ):
            return gap
    return None
