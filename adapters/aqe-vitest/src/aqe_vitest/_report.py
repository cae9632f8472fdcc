"""Vitest's JSON output as aqe's results: pure functions, no processes.

A test's id is its file (relative to the project, ``/``-separated) and the name
path of its ``describe``/``test`` blocks, joined by `` > `` as Vitest prints them:
``tests/math.test.ts > math > nested > squares``. ``.each`` cases have their own
names, so each case is its own id. A name path used twice in one file (both
frameworks run and report both copies under it) is kept apart by its place in the
file: the first copy's id is the name path, the n-th's ends in `` [n]``
(``tests/a.test.ts > adds [2]``), the same in every run, listing and ``-t`` re-run,
since both frameworks report a file's tests in the order they are defined.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from aqe.plugins import CollectedTest, Outcome, TestResult

SEPARATOR = " > "
#: Vitest's and Jest's own messages when a test outlives ``--testTimeout``.
_TIMED_OUT = re.compile(r"^Error: Test timed out in \d+ms|Exceeded timeout of \d+ ms for a test")
_COPY = re.compile(r" \[(?:[2-9]|[1-9]\d+)\]$")
_ERROR_HEAD = re.compile(r"^(?P<type>[A-Za-z_$][\w$.]*)(?:: (?P<message>.*))?$")


@dataclass(frozen=True, slots=True)
class Case:
    """One test as one Vitest run reported it."""

    nodeid: str
    file: str
    path: tuple[str, ...]
    line: int | None
    #: Vitest's status: passed, failed, skipped, todo, or pending (no result: the
    #: process ended before the test finished, or never ran it).
    status: str
    seconds: float
    failures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FileError:
    """A test file Vitest could not load or run (its tests have no result)."""

    file: str
    text: str


def nodeid(file: str, path: Sequence[str]) -> str:
    return SEPARATOR.join([file, *path])


def copy_id(nodeid: str, copy: int) -> str:
    """The id of the ``copy``-th test (from 1) of a file with this name path."""
    return nodeid if copy == 1 else f"{nodeid} [{copy}]"


def distinct(ids: Iterable[str]) -> list[str]:
    """``ids`` in the order the framework reported them, each copy of an id after
    the first made distinct by ``copy_id``."""
    seen: Counter[str] = Counter()
    out: list[str] = []
    for nodeid in ids:
        seen[nodeid] += 1
        out.append(copy_id(nodeid, seen[nodeid]))
    return out


def original(nodeid: str) -> str | None:
    """The name path a copy's id stands for (what ``-t`` must match), or None when
    the id does not end as a copy's does."""
    match = _COPY.search(nodeid)
    return nodeid[: match.start()] if match else None


def relative(root: Path, file: str) -> str:
    path = Path(file)
    try:
        return path.relative_to(root).as_posix() if path.is_absolute() else path.as_posix()
    except ValueError:
        return path.as_posix()


def parse_list(root: Path, text: str) -> list[CollectedTest]:
    """``vitest list --json=FILE``: ``[{"name": "a > b", "file": ..., "location"?}]``."""
    tests: list[CollectedTest] = []
    entries = cast(list[dict[str, object]], json.loads(text))
    names = [f"{relative(root, str(e['file']))}{SEPARATOR}{e['name']}" for e in entries]
    for entry, name in zip(entries, distinct(names), strict=True):
        location = entry.get("location")
        line = location.get("line") if isinstance(location, dict) else None
        tests.append(
            CollectedTest(
                nodeid=name,
                file=relative(root, str(entry["file"])),
                line=line if isinstance(line, int) else None,
            )
        )
    return tests


def parse_files(root: Path, text: str) -> list[str]:
    """``vitest list --filesOnly --json=FILE``: ``[{"file": ...}]``."""
    entries = cast(list[dict[str, object]], json.loads(text))
    return [relative(root, str(entry["file"])) for entry in entries]


def parse_run(root: Path, text: str) -> tuple[list[Case], list[FileError]]:
    """``vitest run --reporter=json --outputFile=FILE``: each test's case, and the
    files that failed without test results (an import error, a syntax error)."""
    cases: list[Case] = []
    errors: list[FileError] = []
    report = cast(dict[str, object], json.loads(text))
    for module in cast(list[dict[str, object]], report.get("testResults", [])):
        file = relative(root, str(module["name"]))
        results = cast(list[dict[str, object]], module.get("assertionResults", []))
        message = str(module.get("message") or "")
        if message and not any(r.get("status") in ("passed", "failed") for r in results):
            errors.append(FileError(file, message))
        found = [_case(file, result) for result in results]
        for case, name in zip(found, distinct(c.nodeid for c in found), strict=True):
            cases.append(case if name == case.nodeid else dataclasses.replace(case, nodeid=name))
    return cases, errors


def overheads(root: Path, text: str) -> dict[str, float]:
    """A server's report: each file's seconds outside its tests (its environment, its
    imports, setup files), which its tests' seconds leave out."""
    found: dict[str, float] = {}
    report = cast(dict[str, object], json.loads(text))
    for module in cast(list[dict[str, object]], report.get("testResults", [])):
        seconds = module.get("overhead")
        if isinstance(seconds, (int, float)) and seconds >= 0:
            found[relative(root, str(module["name"]))] = float(seconds)
    return found


def _case(file: str, result: Mapping[str, object]) -> Case:
    path = (*cast(list[str], result.get("ancestorTitles", [])), str(result["title"]))
    location = result.get("location")
    line = location.get("line") if isinstance(location, dict) else None
    duration = result.get("duration")
    return Case(
        nodeid=nodeid(file, path),
        file=file,
        path=path,
        line=line if isinstance(line, int) else None,
        status=str(result.get("status", "pending")),
        seconds=float(duration) / 1000 if isinstance(duration, (int, float)) else 0.0,
        failures=tuple(str(m) for m in cast(list[object], result.get("failureMessages", []))),
    )


def has_result(case: Case) -> bool:
    return case.status in ("passed", "failed", "skipped", "todo")


def to_result(
    case: Case, start: float, stop: float, stdout: str = "", stderr: str = "", tier: str = "hot"
) -> TestResult:
    """One case as aqe's result; ``start``/``stop`` are its batch's wall clock."""
    outcome: Outcome
    when: str | None = "call"
    error_type = message = traceback = None
    if case.status == "passed":
        outcome, when = "passed", None
    elif case.status in ("skipped", "todo"):
        outcome, error_type = "skipped", "Skipped"
        message = "todo" if case.status == "todo" else "skipped"
    else:
        text = "\n\n".join(case.failures)
        outcome = "timeout" if _TIMED_OUT.search(text) else "failed"
        error_type, message = _error_head(text)
        traceback = _own_frames(text)
    return TestResult(
        nodeid=case.nodeid,
        file=case.file,
        line=case.line,
        outcome=outcome,
        phases={"call": case.seconds},
        worker=0,
        when=when,
        error_type=error_type,
        message=message,
        traceback=traceback,
        stdout=stdout,
        stderr=stderr,
        start=start,
        stop=stop,
        tier=tier,
    )


def lost(
    test: CollectedTest, outcome: Outcome, cause: str, start: float, stop: float, output: str = ""
) -> TestResult:
    """A test whose Node process was killed (``timeout``) or died (``crashed``)."""
    return TestResult(
        nodeid=test.nodeid,
        file=test.file,
        line=test.line,
        outcome=outcome,
        phases={"call": stop - start},
        worker=0,
        when="call",
        error_type="Timeout" if outcome == "timeout" else "Crashed",
        message=cause,
        stderr=output,
        start=start,
        stop=stop,
        tier="cold",
    )


def _error_head(text: str) -> tuple[str | None, str | None]:
    """The error's type and message. Jest's first line is generic (``expect(received)
    .toBe(expected)``): its ``Expected:``/``Received:`` lines are added to it."""
    lines = text.strip().splitlines()
    first = lines[0] if lines else ""
    match = _ERROR_HEAD.match(first)
    if match is None:
        return None, first or None
    details = [
        line.strip()
        for line in lines[1:]
        if line.startswith(("Expected:", "Received:", "Expected ", "Received "))
    ]
    message = match["message"]
    if details and message:
        message = f"{message} ({', '.join(details)})"
    return match["type"], message


def _own_frames(text: str) -> str:
    """The failure text without Vitest's and Node's own stack frames."""
    keep = [
        line
        for line in text.splitlines()
        if not (line.lstrip().startswith("at ") and ("node_modules" in line or "node:" in line))
    ]
    return "\n".join(keep)


def console_lines(root: Path, text: str) -> dict[str, tuple[str, str]]:
    """The console reporter's JSON lines as (stdout, stderr) per test id."""
    return console_entries(root, [json.loads(raw) for raw in text.splitlines()])


def console_entries(root: Path, entries: Sequence[object]) -> dict[str, tuple[str, str]]:
    """Console entries (``{"file", "path", "type", "content"}``) as (stdout, stderr)
    per test id."""
    out: dict[str, list[str]] = {}
    err: dict[str, list[str]] = {}
    for raw in entries:
        entry = cast(dict[str, object], raw)
        if entry.get("file") is None:
            continue
        key = nodeid(relative(root, str(entry["file"])), cast(list[str], entry["path"]))
        (err if entry.get("type") == "stderr" else out).setdefault(key, []).append(
            str(entry["content"])
        )
    keys: Iterable[str] = {*out, *err}
    return {key: ("".join(out.get(key, ())), "".join(err.get(key, ()))) for key in keys}
