"""Output for AI coding agents: the failures, the flaky tests and the closing line.

An agent reads a run's output into its context, where pytest's progress dots,
headers and full tracebacks cost tokens and hide the one line that matters. Under
an agent (``CLAUDECODE``, ``CODEX_THREAD_ID`` or ``AI_AGENT`` set, or ``--reporter
agent``) the run control holds pytest's terminal output back and this reporter
prints instead: each failure with its assertion and the project's own frames
(cleaned and capped by :mod:`aqe._reporting.digest`), bounded in number, then the
flaky tests and pytest's closing line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aqe._model import FAILING_OUTCOMES, RunRecord, TestResult
from aqe._reporting.digest import clean, digest
from aqe._reporting.github import failing_line
from aqe._reporting.summary import summary_lines

__all__ = ["AgentReporter", "agent_lines"]

#: Failures shown with their frames; the next ones get one line each, up to MAX_LISTED.
MAX_DETAILED = 5
MAX_LISTED = 30
#: Characters of frames per failure, and lines of captured output kept.
FRAMES_LIMIT = 1500
OUTPUT_LINES = 5


def _detailed(result: TestResult, root: str) -> list[str]:
    found = digest(result.to_dict(), root, output_lines=OUTPUT_LINES, limit=FRAMES_LIMIT)
    line = failing_line(result)  # where it failed, else where the test starts
    where = f" ({clean(result.file, 500)}:{line})" if line is not None else ""
    lines = [f"{result.outcome.upper()} {found.nodeid}{where}"]
    if found.assertion:
        lines += ["  " + line for line in found.assertion.splitlines()]
    elif found.message:
        lines.append(f"  {found.error_type or 'error'}: {found.message}")
    if found.traceback:
        lines += ["  | " + line for line in found.traceback.splitlines()]
    for stream, text in (("stdout", found.stdout_tail), ("stderr", found.stderr_tail)):
        if text.strip():
            lines.append(f"  captured {stream} (last lines):")
            lines += ["  > " + line for line in text.rstrip("\n").splitlines()]
    return lines


def _brief(result: TestResult) -> str:
    message = clean(result.message or "", 2000).strip()
    first = message.splitlines()[0][:200] if message else ""
    line = f"{result.outcome.upper()} {clean(result.nodeid, 500)}"
    return f"{line} - {first}" if first else line


def agent_lines(run: RunRecord) -> list[str]:
    final = list(run.final().values())
    failing = [r for r in final if r.outcome in FAILING_OUTCOMES and not r.quarantined]
    lines: list[str] = []
    for location, text in run.collection_errors[:MAX_DETAILED]:
        lines.append(f"ERROR collecting {clean(location, 500)}")
        lines += ["  | " + line for line in clean(text, 100_000).strip().splitlines()[-15:]]
    for result in failing[:MAX_DETAILED]:
        lines += _detailed(result, run.root)
    lines += [_brief(result) for result in failing[MAX_DETAILED:MAX_LISTED]]
    if len(failing) > MAX_LISTED:
        lines.append(f"... {len(failing) - MAX_LISTED} more failures: aqe failures --json")
    quarantined = [r for r in final if r.outcome in FAILING_OUTCOMES and r.quarantined]
    if quarantined:
        lines.append(f"quarantined failures (do not fail the run): {len(quarantined)}")
    flaky = [r for r in final if r.outcome == "flaky"]
    for result in flaky[:MAX_LISTED]:
        lines.append(f"FLAKY {clean(result.nodeid, 500)} (passed on attempt {result.attempt})")
    lines.append(summary_lines(run)[-1])
    return lines


class AgentReporter:
    """Registered as ``agent`` in ``aqe.reporters``: replaces pytest's terminal output."""

    name = "agent"
    #: The run control holds the adapter's own console output back while it runs.
    replaces_terminal = True

    def write(self, run: RunRecord, destination: Path | None) -> None:
        text = "\n".join(agent_lines(run)) + "\n"
        if destination is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            destination.write_text(text, encoding="utf-8")
