"""What ``aqe generate`` prints: the file (dry run), a summary line, the per-function report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import Result
from ._mutate import Score


def summary(result: Result) -> str:
    where = "would write" if not result.written else "wrote"
    covered = ""
    if result.coverage:
        covered = (
            f"; {result.coverage['line_percent']:.0f}% of lines and "
            f"{result.coverage['branch_percent']:.0f}% of branches of {result.module}"
        )
    dropped = f", {len(result.dropped)} dropped" if result.dropped else ""
    if result.mutation is not None and result.mutation.percent is not None:
        covered += f", mutation score {result.mutation.percent:.0f}%"
    try:
        shown = result.out.relative_to(Path.cwd())
    except ValueError:
        shown = result.out
    return (
        f"aqe: {where} {shown} with {result.tests} tests "
        f"({result.cases} cases, {result.properties} properties{dropped}){covered}, "
        f"in {result.seconds:.1f} s"
    )


def report_lines(result: Result) -> list[str]:
    """Per target: lines and branches its tests ran, cases kept, and what was dropped."""
    lines = [f"{'target':38} {'lines':>9} {'branches':>9} {'calls':>6} {'kept':>5}  notes"]
    for report in sorted(result.functions, key=lambda r: r.span[:1] or [0]):
        figures = result.per_function.get(report.target)
        if figures:
            cov_lines = f"{figures['lines_hit']}/{figures['lines']}"
            cov_branches = f"{figures['branches_hit']}/{figures['branches']}"
        else:
            cov_lines = f"{report.lines_hit}/{report.lines_total}"
            cov_branches = f"{report.branches_hit}/{report.branches_total}"
        notes = []
        if report.skipped:
            notes.append(f"skipped: {report.skipped}")
        notes += [f"{n} dropped: {why}" for why, n in sorted(report.dropped.items())]
        if len(report.mutants) == 2 and report.mutants[1]:
            notes.append(f"search detected {report.mutants[0]}/{report.mutants[1]} mutants")
        lines.append(
            f"{report.target[:38]:38} {cov_lines:>9} {cov_branches:>9} "
            f"{report.calls:>6} {report.kept:>5}  {'; '.join(notes)}"
        )
    if result.dropped:
        lines.append("dropped after running the file:")
        lines += [f"  {name}: {why}" for name, why in result.dropped]
    if result.coverage:
        c = result.coverage
        lines.append(
            f"module: {c['line_percent']:.1f}% lines ({c['statements'] - c['missing']:.0f}/"
            f"{c['statements']:.0f}), {c['branch_percent']:.1f}% branches "
            f"({c['branches'] - c['partial']:.0f}/{c['branches']:.0f})"
        )
    if result.mutation is not None:
        lines.append(mutation_line(result.mutation))
    lines += [f"note: {note}" for note in result.notes]
    return lines


def mutation_line(score: Score) -> str:
    if score.percent is None:
        return f"mutation score: none ({score.baseline})"
    ran = score.killed + score.survived
    sampled = f", a sample of {score.sampled}" if score.sampled < score.total else ""
    unrun = f"; {score.not_run} not run within the time bound" if score.not_run else ""
    return (
        f"mutation score: {score.percent:.1f}% ({score.killed} of {ran} mutants killed, "
        f"{score.timeouts} by timeout; {score.total} mutants in the module{sampled}{unrun}, "
        f"{score.seconds:.1f} s)"
    )


def as_json(result: Result) -> dict[str, Any]:
    return {
        "module": result.module,
        "out": str(result.out),
        "written": result.written,
        "tests": result.tests,
        "cases": result.cases,
        "properties": result.properties,
        "coverage": result.coverage,
        "dropped": [{"test": name, "why": why} for name, why in result.dropped],
        "functions": [
            {
                "target": r.target,
                "calls": r.calls,
                "kept": r.kept,
                "skipped": r.skipped,
                "dropped": r.dropped,
                **result.per_function.get(r.target, {}),
            }
            for r in result.functions
        ],
        "seconds": round(result.seconds, 2),
        "warning": result.warning,
        "mutation": None if result.mutation is None else result.mutation.as_dict(),
        "notes": result.notes,
        "text": result.text,
    }
