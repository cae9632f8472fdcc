"""GitHub Actions output: an annotation at each failing line and a job summary.

On GitHub Actions (``GITHUB_ACTIONS=true``) a failure is found fastest where the
code is: an ``::error file=...,line=...`` workflow command puts it on the pull
request's diff, and Markdown appended to ``$GITHUB_STEP_SUMMARY`` is the page the
run opens on. Both are bounded: GitHub shows a few annotations per step anyway, and
a summary has a size limit (1 MiB).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from aqe._model import FAILING_OUTCOMES, OUTCOMES, RunRecord, TestResult
from aqe._reporting.json_report import ShardInfo

__all__ = [
    "GithubReporter",
    "annotation_lines",
    "escape_data",
    "escape_property",
    "failing_line",
    "summary",
]

#: Annotations written at most (GitHub shows 10 errors per step and 50 per job).
MAX_ANNOTATIONS = 50
#: Failures listed in the job summary.
MAX_LISTED = 50
_MESSAGE_CAP = 2000
#: ``path/to/file.py:12: AssertionError``: where pytest's long report says it failed.
_LOCATION = re.compile(r"^([^\s:][^:\n]*\.py):(\d+): ", re.MULTILINE)


def escape_data(text: str) -> str:
    """A workflow command's message: ``%``, CR and LF escaped as GitHub requires."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: also ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def failing_line(result: TestResult) -> int | None:
    """The line the test failed at: the last frame in the test's own file in the
    traceback, else the last frame of a relative path (the project's), else the
    test's definition."""
    found = _LOCATION.findall(result.traceback or "")
    for path, line in reversed(found):
        if path == result.file:
            return int(line)
    for path, line in reversed(found):
        if not os.path.isabs(path):
            return int(line)
    return result.line


def _annotation(kind: str, file: str, line: int | None, title: str, message: str) -> str:
    where = f"file={escape_property(file)}" + (f",line={line}" if line is not None else "")
    return f"::{kind} {where},title={escape_property(title)}::{escape_data(message)}"


def _message(result: TestResult) -> str:
    text = (result.message or result.error_type or result.outcome).strip()
    return text if len(text) <= _MESSAGE_CAP else text[:_MESSAGE_CAP] + " ..."


def annotation_lines(run: RunRecord) -> list[str]:
    """One ``::error`` per failing test (``::warning`` when quarantined or flaky) and
    per collection error, at most :data:`MAX_ANNOTATIONS`."""
    lines = [
        _annotation("error", location.split("::", 1)[0], None, f"collecting {location}",
                    text.strip().splitlines()[-1] if text.strip() else "collection error")
        for location, text in run.collection_errors
    ]  # fmt: skip
    for result in run.final().values():
        if result.outcome in FAILING_OUTCOMES:
            kind = "warning" if result.quarantined else "error"
            title = f"{result.outcome}: {result.nodeid}"
            lines.append(
                _annotation(kind, result.file, failing_line(result), title, _message(result))
            )
        elif result.outcome == "flaky":
            failed = [
                r for r in run.results if r.nodeid == result.nodeid and r.attempt < result.attempt
            ]
            why = _message(failed[-1]) if failed else "passed only on a retry"
            title = f"flaky: {result.nodeid}"
            lines.append(_annotation("warning", result.file, result.line, title, why))
    if len(lines) > MAX_ANNOTATIONS:
        more = len(lines) - MAX_ANNOTATIONS
        lines = [*lines[:MAX_ANNOTATIONS], f"::notice::aqe: {more} more failures not annotated"]
    return lines


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell and inline code."""
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ").strip()


def _shard_lines(run: RunRecord, shard: ShardInfo) -> list[str]:
    """A shard job's balance: its predicted and actual seconds beside the plan's."""
    actual = sum(result.duration for result in run.results)
    planned = shard.planned or (shard.predicted,)
    mean = sum(planned) / len(planned)
    worst = max(planned) / mean if mean > 0 else 1.0
    return [
        f"#### Shard {shard.index}/{shard.count}", "",
        f"{shard.tests} of {shard.total} tests; predicted {shard.predicted:.2f}s, took "
        f"{actual:.2f}s (its tests, every attempt). The plan's shards: "
        f"{' / '.join(f'{p:.2f}' for p in planned)} s, the slowest {worst:.2f}x the mean "
        f"(plan {shard.digest}).", "",
    ]  # fmt: skip


def summary(run: RunRecord, shard: ShardInfo | None = None) -> str:
    """The job summary: counts, failures, flaky tests and the slowest tests, as Markdown;
    for a shard (``--shard I/N``), its balance."""
    final = run.final()
    counts = run.final_counts()
    took = (run.end or run.start) - run.start
    verdict = "passed" if run.exit_code == 0 else f"exit {run.exit_code}"
    out = [f"### aqe: {verdict} in {took:.2f}s on {run.workers} workers", ""]
    shown = [name for name in OUTCOMES if counts[name]]
    if shown:
        out += ["| " + " | ".join(shown) + " |", "|" + "---:|" * len(shown)]
        out += ["| " + " | ".join(str(counts[name]) for name in shown) + " |", ""]
    failing = [r for r in final.values() if r.outcome in FAILING_OUTCOMES]
    if failing or run.collection_errors:
        out += ["#### Failures", ""]
        out += [f"- collection error in `{_cell(loc)}`" for loc, _ in run.collection_errors]
        for result in failing[:MAX_LISTED]:
            where = f"{result.file}:{failing_line(result) or ''}".rstrip(":")
            label = result.outcome + (" (quarantined)" if result.quarantined else "")
            first = _message(result).splitlines()[0] if _message(result) else ""
            out.append(
                f"- **{label}** `{_cell(result.nodeid)}` at `{_cell(where)}`: {_cell(first)[:300]}"
            )
        if len(failing) > MAX_LISTED:
            out.append(f"- ... and {len(failing) - MAX_LISTED} more")
        out.append("")
    flaky = [r for r in final.values() if r.outcome == "flaky"]
    if flaky:
        out += ["#### Flaky (passed on a retry)", ""]
        out += [f"- `{_cell(r.nodeid)}` (attempt {r.attempt})" for r in flaky[:MAX_LISTED]]
        out.append("")
    if shard is not None:
        out += _shard_lines(run, shard)
    slowest = sorted(run.results, key=lambda r: r.duration, reverse=True)[:10]
    if slowest:
        out += ["#### Slowest tests", "", "| seconds | test |", "|---:|---|"]
        out += [f"| {r.duration:.2f} | `{_cell(r.nodeid)}` |" for r in slowest]
        out.append("")
    return "\n".join(out) + "\n"


class GithubReporter:
    """Registered as ``github`` in ``aqe.reporters``; chosen on its own when
    ``GITHUB_ACTIONS=true``. Annotations go to stdout (or ``destination``)."""

    name = "github"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ
        #: Set by the run control for ``aqe run --shard I/N``.
        self.shard: ShardInfo | None = None

    def write(self, run: RunRecord, destination: Path | None) -> None:
        text = "".join(line + "\n" for line in annotation_lines(run))
        if destination is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            destination.write_text(text, encoding="utf-8")
        target = self.environ.get("GITHUB_STEP_SUMMARY")
        if target:
            with open(target, "a", encoding="utf-8") as handle:
                handle.write(summary(run, self.shard))
