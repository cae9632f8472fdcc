"""The ``terminal`` reporter: pytest's closing lines for a run no pytest printed.

pytest runs print their own summary (aqe's terminal reporter inside pytest); an
adapter for another framework gets this one: a line per failing test, then
``N failed, N passed in S s`` in pytest's order.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aqe._model import FAILING_OUTCOMES, OUTCOMES, RunRecord, TestResult


def summary_lines(run: RunRecord) -> list[str]:
    final = list(run.final().values())
    lines = [_failure_line(r) for r in final if r.outcome in FAILING_OUTCOMES]
    lines += [f"ERROR collecting {location}" for location, _ in run.collection_errors]
    counts = run.final_counts()
    parts = [f"{counts[name]} {name}" for name in OUTCOMES if counts[name]]
    elapsed = (run.end or run.start) - run.start
    lines.append(f"{', '.join(parts) or 'no tests ran'} in {elapsed:.2f}s")
    return lines


def _failure_line(result: TestResult) -> str:
    label = result.outcome.upper()
    if result.quarantined:
        label += " (quarantined)"
    message = (result.message or "").strip().splitlines()
    return f"{label} {result.nodeid}" + (f" - {message[0]}" if message else "")


class TerminalSummary:
    """Registered as ``terminal`` in ``aqe.reporters``; writes to stdout."""

    name = "terminal"

    def write(self, run: RunRecord, destination: Path | None) -> None:
        if run.exit_code in (3, 4) and not run.results and not run.collection_errors:
            return  # the error's own line says it all (a tool missing, a config rejected)
        text = "\n".join(summary_lines(run)) + "\n"
        if destination is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            destination.write_text(text, encoding="utf-8")
