"""What ``aqe generate api`` prints: a summary line, the bugs found, what was dropped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import Result


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def summary(result: Result) -> str:
    where = "wrote" if result.written else "would write"
    dropped = f", {len(result.dropped)} dropped as not reproducible" if result.dropped else ""
    failing = f"; {len(result.failing)} break the contract now" if result.failing else ""
    explored = f", {result.explored} found by --explore" if result.explored else ""
    return (
        f"aqe: {where} {len(result.files)} files to {_shown(result.out)}: "
        f"{result.cases} cases of {result.operations} operations and {result.flows} "
        f"sequences{explored}{dropped}{failing}, in {result.seconds:.1f} s"
    )


def report_lines(result: Result) -> list[str]:
    lines = []
    if result.failing:
        lines.append("breaking the contract now (these tests fail):")
        lines += [f"  {what}: {why}" for what, why in result.failing]
    if result.dropped:
        lines.append("dropped (two identical requests gave different verdicts):")
        lines += [f"  {what}: {why}" for what, why in result.dropped]
    return lines


def as_json(result: Result) -> dict[str, Any]:
    return {
        "out": str(result.out),
        "written": result.written,
        "files": sorted(result.files),
        "operations": result.operations,
        "cases": result.cases,
        "flows": result.flows,
        "explored": result.explored,
        "failing": [{"test": what, "why": why} for what, why in result.failing],
        "dropped": [{"test": what, "why": why} for what, why in result.dropped],
        "warnings": result.warnings,
        "seconds": round(result.seconds, 2),
        "text": result.files,
    }
