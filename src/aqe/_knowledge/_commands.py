"""What ``aqe flaky``, ``aqe quarantine`` and ``aqe failures`` know, as typed results,
and the text they print.

Kept apart from the CLI's argument parsing so the MCP server, the Python API and
tests call the same functions and get the same data; each result's ``to_json`` is
its ``--json`` document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .._exceptions import UsageError
from .._model import FAILING_OUTCOMES, TestResult
from .._options import Config
from .._store import Store as HistoryStore  # any registered store (the protocol)
from . import _quarantine
from ._flaky import MAX_WINDOW, FlakyVerdict, analyse, iso
from ._reports import (
    Cause,
    FailureCauses,
    FailureExample,
    SimilarFailure,
    SimilarFailures,
)

if TYPE_CHECKING:
    from ._triage import Signature

#: A failed attempt as the JSON report's ``tests[]`` holds it (or a stored result's
#: ``to_dict()``): the JSON boundary the grouping reads.
Entry = Mapping[str, object]

#: ``aqe flaky --json`` and ``aqe quarantine list --json`` schema versions.
FLAKY_SCHEMA = ("aqe-flaky", 1)
QUARANTINE_SCHEMA = ("aqe-quarantine", 1)


def verdicts(store: HistoryStore, window: int) -> tuple[list[FlakyVerdict], int]:
    """Every test's verdict over the last ``window`` finished runs, and how many runs."""
    runs, attempts = store.attempts_by_run(min(window, MAX_WINDOW))
    return analyse(runs, attempts), len(runs)


@dataclass(frozen=True, slots=True)
class FlakyReport:
    """What ``aqe flaky`` shows: the flaky and broken verdicts (all with ``--all``)."""

    window_runs: int
    tests: tuple[FlakyVerdict, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "schema": FLAKY_SCHEMA[0],
            "version": FLAKY_SCHEMA[1],
            "window_runs": self.window_runs,
            "tests": [v.to_json() for v in self.tests],
        }


def flaky_report(verdicts_: list[FlakyVerdict], runs: int, show_all: bool) -> FlakyReport:
    shown = tuple(v for v in verdicts_ if show_all or v.label in ("flaky", "broken"))
    return FlakyReport(window_runs=runs, tests=shown)


def flaky_lines(report: FlakyReport) -> list[str]:
    tests = report.tests
    if not tests:
        return [f"no flaky or broken tests in the last {report.window_runs} runs"]
    lines = [
        f"{'label':8} {'score':>5} {'runs':>4} {'pass':>4} {'fail':>4} {'retry':>5} "
        f"{'flips':>5}  test"
    ]
    for t in tests:
        since = f"  (since {str(t.broken_since)[:12]})" if t.broken_since else ""
        if t.label == "broken" and not t.broken_since:
            since = "  (failed in every run)"
        lines.append(
            f"{t.label:8} {t.score:5.2f} {t.runs:4d} {t.passed:4d} {t.failed:4d} "
            f"{t.retried:5d} {t.flip_rate:5.2f}  {t.nodeid}{since}"
        )
    counts = {label: sum(t.label == label for t in tests) for label in ("flaky", "broken")}
    lines.append(
        f"{counts['flaky']} flaky, {counts['broken']} broken in the last "
        f"{report.window_runs} runs (score: chance of failing on the current code, "
        "see aqe flaky --help)"
    )
    return lines


def timeline_lines(verdict: FlakyVerdict) -> list[str]:
    lines = [
        f"{verdict.nodeid}: {verdict.label}, score {verdict.score:.2f}, {verdict.runs} runs, "
        f"{verdict.failed} failed, {verdict.retried} passed on a retry"
    ]
    for m in verdict.timeline:
        commit = (m.commit or "-")[:8]
        attempts = f"  ({m.failed_attempts} failed attempts)" if m.failed_attempts else ""
        lines.append(f"  {iso(m.start)}  {m.run_id}  {commit:8}  {m.outcome}{attempts}")
    return lines


@dataclass(frozen=True, slots=True)
class Listed:
    entry: _quarantine.Entry
    #: Passes in a row since it was quarantined (its latest runs first).
    passing_streak: int
    release_proposed: bool


def quarantine_status(root: Path, store: HistoryStore | None, config: Config) -> list[Listed]:
    entries = _quarantine.load(root)
    if not entries:
        return []
    streaks: dict[str, int] = {}
    if store is not None:
        runs, attempts = store.attempts_by_run(MAX_WINDOW)
        starts = {run.run_id: run.start for run in runs}
        for entry in entries:
            per_run = attempts.get(entry.id, {})
            since = [
                outcomes[-1]
                for run_id, outcomes in sorted(per_run.items(), key=lambda kv: starts[kv[0]])
                if starts[run_id] >= entry.added_epoch
            ]
            streak = 0
            for outcome in reversed(since):
                if outcome != "passed":
                    break
                streak += 1
            streaks[entry.id] = streak
    return [
        Listed(
            entry=entry,
            passing_streak=streaks.get(entry.id, 0),
            release_proposed=streaks.get(entry.id, 0) >= config.quarantine_release_runs,
        )
        for entry in entries
    ]


def quarantine_json(listed: list[Listed], path: Path) -> dict[str, object]:
    return {
        "schema": QUARANTINE_SCHEMA[0],
        "version": QUARANTINE_SCHEMA[1],
        "file": str(path),
        "tests": [
            {
                "nodeid": item.entry.id,
                "reason": item.entry.reason,
                "added": item.entry.added,
                "by": item.entry.by,
                "passing_streak": item.passing_streak,
                "release_proposed": item.release_proposed,
            }
            for item in listed
        ],
    }


def quarantine_lines(listed: list[Listed], path: Path, release_runs: int) -> list[str]:
    if not listed:
        return [f"no tests in quarantine ({path} lists none)"]
    lines = []
    for item in listed:
        note = (
            f"  -> passed {item.passing_streak} runs in a row: propose release "
            f"(aqe quarantine remove {item.entry.id})"
            if item.release_proposed
            else f"  ({item.passing_streak}/{release_runs} passes in a row)"
        )
        lines.append(f"{item.entry.id}  added {item.entry.added} by {item.entry.by}{note}")
        if item.entry.reason:
            lines.append(f"    {item.entry.reason}")
    lines.append(f"{len(listed)} tests in quarantine ({path})")
    return lines


def auto_candidates(
    verdicts_: list[FlakyVerdict], config: Config, listed: set[str]
) -> list[FlakyVerdict]:
    """Flaky tests that pass the configured bar and are not quarantined yet."""
    return [
        v
        for v in verdicts_
        if v.label == "flaky"
        and v.score >= config.quarantine_threshold
        and v.runs >= config.quarantine_min_runs
        and v.nodeid not in listed
    ]


def reason_for(verdict: FlakyVerdict) -> str:
    evidence = []
    if verdict.same_code_mixed:
        evidence.append(f"passed and failed on the same code ({verdict.same_code_mixed} versions)")
    if verdict.retried:
        evidence.append(f"passed on a retry in {verdict.retried} runs")
    return (
        f"flaky: {'; '.join(evidence)}; failure rate {verdict.score:.2f} over {verdict.runs} runs"
    )


def find(verdicts_: list[FlakyVerdict], nodeid: str) -> FlakyVerdict:
    for verdict in verdicts_:
        if verdict.nodeid == nodeid:
            return verdict
    raise UsageError(f"test {nodeid!r} has no pass or failure in the history's recent runs")


# -- failure clusters and similar failures -------------------------------------------------


def pick_run(store: HistoryStore, run_id: str | None) -> str:
    if run_id is not None:
        if not store.results_for_run(run_id) and run_id not in {
            r.run_id for r in store.recent_runs(MAX_WINDOW)
        }:
            raise UsageError(f"no run {run_id!r} in the history (aqe history lists them)")
        return run_id
    runs = store.recent_runs(1)
    if not runs:
        raise UsageError("no runs in the history yet: run aqe run first")
    return runs[0].run_id


def final_failures(results: list[TestResult]) -> list[TestResult]:
    last: dict[str, TestResult] = {}
    for result in results:
        known = last.get(result.nodeid)
        if known is None or result.attempt >= known.attempt:
            last[result.nodeid] = result
    return [r for r in last.values() if r.outcome in FAILING_OUTCOMES]


#: A past run in which more tests than this started failing says nothing about causes.
MAX_TRANSITION = 50
#: Past runs in which two causes' tests must have started failing together to be
#: merged: one such run is as often one commit with two bugs as one bug.
MIN_SHARED_RUNS = 2


def past_transitions(store: HistoryStore, exclude_run: str, window: int = 50) -> list[set[str]]:
    """Per past run, the tests that started failing in it (they had passed before, or
    were new), when there were 1 to MAX_TRANSITION of them: tests that broke in
    different runs broke for different reasons, and tests that broke together (in
    several runs, or in one on one call path) for one. Flaky tests are left out: they
    fail along with anything."""
    from ._flaky import FAILING, analyse

    runs, attempts = store.attempts_by_run(window)
    runs = [run for run in runs if run.run_id != exclude_run]
    flaky = {v.nodeid for v in analyse(runs, attempts) if v.label == "flaky"}
    before: dict[str, str] = {}
    found: list[set[str]] = []
    for run in runs:
        started: set[str] = set()
        for nodeid, per_run in attempts.items():
            outcomes = per_run.get(run.run_id)
            if not outcomes:
                continue
            if outcomes[-1] in FAILING and before.get(nodeid) not in FAILING:
                started.add(nodeid)
            before[nodeid] = outcomes[-1]
        started -= flaky
        if 1 <= len(started) <= MAX_TRANSITION:
            found.append(started)
    return found


def _origins(transitions: list[set[str]]) -> dict[str, int]:
    """Per test, the past run it started failing in: the one where the fewest tests
    started failing with it when there were several (a big breakage says less about
    the cause than a small one). A tie between two runs of that size leaves it out."""
    best: dict[str, tuple[int, int]] = {}
    tied: set[str] = set()
    for index, members in enumerate(transitions):
        for nodeid in members:
            known = best.get(nodeid)
            if known is None or len(members) < known[0]:
                best[nodeid] = (len(members), index)
                tied.discard(nodeid)
            elif len(members) == known[0]:
                tied.add(nodeid)
    return {nodeid: index for nodeid, (_, index) in best.items() if nodeid not in tied}


@dataclass(slots=True)
class _Group:
    """A cause group while it is built, split and merged (``Cause`` once settled)."""

    key: str
    cause: str
    example: FailureExample
    count: int = 0
    error_types: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)
    also: list[str] = field(default_factory=list)

    def settled(self) -> Cause:
        return Cause(
            key=self.key,
            cause=self.cause,
            count=self.count,
            error_types=tuple(self.error_types),
            tests=tuple(self.tests),
            example=self.example,
            also=tuple(self.also),
        )


def _split(groups: list[_Group], origin: dict[str, int]) -> list[_Group]:
    """Split a cause group whose tests all started failing before, but in different
    past runs: one symptom (an assertion on the same function) with two bugs behind
    it, each seen alone. Only a group covered entirely by tests with a known origin is
    split; anything less is no evidence and the group stays."""
    result: list[_Group] = []
    for group in groups:
        runs = [origin.get(n) for n in group.tests]
        if None in runs or len(set(runs)) < 2:
            result.append(group)
            continue
        for part, run in enumerate(sorted(set(runs), key=runs.index)):
            tests = [n for n, r in zip(group.tests, runs, strict=True) if r == run]
            result.append(
                replace(
                    group,
                    key=f"{group.key}-{part + 1}",
                    count=len(tests),
                    tests=tests,
                    error_types=list(group.error_types),
                    also=list(group.also),
                )
            )
    return result


def _link(
    groups: list[_Group],
    transitions: list[set[str]],
    found: Mapping[str, Signature],
    root: str | None,
) -> list[_Group]:
    """Merge cause groups whose tests started failing together in at least
    MIN_SHARED_RUNS past runs (broken together, fixed, and broken together again), or
    in one when they are on one call path: one blames a function the other's failures
    passed through (an exception raised in ``_price`` under ``checkout``, and an
    assertion on what ``checkout()`` returned) or that calls the other's in the
    project's source (``_calls``), and neither calls two causes that are not on one
    path. Two causes that shared a single past run and no call path
    (two sibling frames, an exception and an unrelated assertion) stay apart: one
    commit often brings two bugs."""
    parent = list(range(len(groups)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    runs_of = [
        {run for run, members in enumerate(transitions) if not members.isdisjoint(group.tests)}
        for group in groups
    ]
    blamed = [found[group.tests[0]].function for group in groups]
    paths = [frozenset().union(*(found[n].path for n in group.tests)) for group in groups]

    from ._calls import project_calls, reaches

    graph: dict[str, frozenset[str]] | None = None

    def calls(a: int, b: int) -> bool:
        """Whether ``a``'s function is a caller on ``b``'s failure path, or in the source."""
        nonlocal graph
        caller, callee = blamed[a], blamed[b]
        if caller is None or callee is None or caller == callee:
            return False
        if caller in paths[b]:
            return True
        if graph is None:  # read the source only when two causes shared a run
            graph = project_calls(Path(root)) if root else {}
        return reaches(graph, caller, callee)

    def on_one_path(a: int, b: int) -> bool:
        return calls(a, b) or calls(b, a)

    partners: dict[int, set[int]] = {}
    for index, runs in enumerate(runs_of):
        for other in range(index):
            shared = len(runs & runs_of[other])
            if shared >= MIN_SHARED_RUNS:
                parent[find(index)] = find(other)
            elif shared and on_one_path(index, other):
                partners.setdefault(index, set()).add(other)
                partners.setdefault(other, set()).add(index)
    # An assertion on checkout() beside exceptions in _price and in _tax could be
    # either bug: a caller of two causes that are not on one path is left alone
    # (two callers of one cause are fine: its bug shows through both; so are two
    # parts of one function's cause that _split set apart).
    unsure = {
        member
        for member, found_with in partners.items()
        if any(
            calls(member, a)
            and calls(member, b)
            and blamed[a] != blamed[b]
            and not on_one_path(a, b)
            for a in found_with
            for b in found_with
            if a < b
        )
    }
    for member, found_with in partners.items():
        for other in found_with - unsure if member not in unsure else ():
            parent[find(member)] = find(other)
    merged: dict[int, _Group] = {}
    for i, group in sorted(enumerate(groups), key=lambda item: -item[1].count):
        top = find(i)
        if top not in merged:
            merged[top] = replace(
                group, tests=list(group.tests), error_types=list(group.error_types), also=[]
            )
            continue
        target = merged[top]
        target.count += group.count
        target.tests += group.tests
        target.also.append(group.cause)
        for kind in group.error_types:
            if kind not in target.error_types:
                target.error_types.append(kind)
    return list(merged.values())


def clusters(
    run_id: str,
    results: list[TestResult],
    root: str | None,
    transitions: list[set[str]] | None = None,
) -> FailureCauses:
    """The run's failures grouped by cause, largest group first; groups whose tests
    started failing together in several past runs (``transitions``) are one cause."""
    failures = final_failures(results)
    return FailureCauses(
        run_id=run_id,
        failures=len(failures),
        causes=tuple(group_failures([r.to_dict() for r in failures], root, transitions)),
    )


def group_failures(
    entries: Sequence[Entry], root: str | None, transitions: list[set[str]] | None = None
) -> list[Cause]:
    """Failed attempts (``tests[]`` entries or stored results) grouped by cause."""
    from .._reporting.digest import clean, project_frames
    from ._triage import project_names, signature

    def example(entry: Entry) -> FailureExample:
        return FailureExample(
            nodeid=str(entry["nodeid"]),
            message=clean(str(entry.get("message") or "").split("\n", 1)[0], 300),
            traceback=clean(project_frames(str(entry.get("traceback") or ""), root), 2000),
        )

    groups: dict[str, _Group] = {}
    entry_of: dict[str, Entry] = {}
    found_of: dict[str, Signature] = {}
    known = project_names(Path(root)) if root and entries else frozenset()
    for entry in entries:
        nodeid = str(entry["nodeid"])
        found = signature(entry, known)
        entry_of.setdefault(nodeid, entry)
        found_of.setdefault(nodeid, found)
        if found.key not in groups:
            groups[found.key] = _Group(key=found.key, cause=found.cause, example=example(entry))
        group = groups[found.key]
        group.count += 1
        group.tests.append(nodeid)
        kind = entry.get("error_type")
        if kind and kind not in group.error_types:
            group.error_types.append(str(kind))
    origin = _origins(transitions or [])
    split = _split(list(groups.values()), origin)
    for group in split:
        if group.example.nodeid in group.tests:
            continue
        # A part of a split group: its own failures' example and error types.
        group.example = example(entry_of[group.tests[0]])
        kinds = (entry_of[n].get("error_type") for n in group.tests)
        group.error_types = list(dict.fromkeys(str(k) for k in kinds if k))
    linked = _link(split, transitions or [], found_of, root)
    return [g.settled() for g in sorted(linked, key=lambda g: (-g.count, g.cause))]


def cluster_lines(report: FailureCauses, show_tests: int = 5) -> list[str]:
    if not report.causes:
        return [f"run {report.run_id}: no failures"]
    lines = [
        f"run {report.run_id}: {report.failures} failures in "
        f"{len(report.causes)} causes, largest first"
    ]
    for group in report.causes:
        kinds = ", ".join(group.error_types) or "-"
        lines.append("")
        lines.append(f"{group.count:4d}  {group.cause}  [{kinds}]  ({group.key})")
        if group.also:
            lines.append(f"      with {', '.join(group.also)}: they broke together before")
        for nodeid in group.tests[:show_tests]:
            lines.append(f"      {nodeid}")
        if group.count > show_tests:
            lines.append(f"      ... and {group.count - show_tests} more")
        if group.example.message:
            lines.append(f"      e.g. {group.example.message}")
    return lines


def similar(
    store: HistoryStore, nodeid: str, run_id: str | None, limit: int, root: Path | None = None
) -> SimilarFailures:
    """The nearest past failures (other runs) of ``nodeid``'s failure in ``run_id``."""
    from ._triage import project_names, signature

    run = pick_run(store, run_id)
    attempts = [r for r in store.results_for_run(run) if r.nodeid == nodeid]
    failing = [r for r in attempts if r.outcome in FAILING_OUTCOMES]
    if not failing:
        raise UsageError(f"test {nodeid!r} did not fail in run {run} (pass --run ID)")
    found = signature(failing[-1].to_dict(), project_names(root) if root else frozenset())
    if not store.has_failure_index():
        raise UsageError("this SQLite has no FTS5: similar-failure search is unavailable")
    rows = store.similar_failures(found.text.split(), exclude_run=run, limit=limit)
    return SimilarFailures(
        run_id=run,
        nodeid=nodeid,
        cause=found.cause,
        similar=tuple(
            SimilarFailure(
                run_id=row.run_id,
                nodeid=row.nodeid,
                attempt=row.attempt,
                cause=row.cause,
                same_cause=row.cause_key == found.key,
                score=row.score,
                start=None if row.start is None else iso(row.start),
                git_commit=row.git_commit,
            )
            for row in rows
        ),
    )


def similar_lines(report: SimilarFailures) -> list[str]:
    lines = [f"{report.nodeid} in run {report.run_id}: {report.cause}"]
    if not report.similar:
        lines.append("no similar failure in other runs")
    for row in report.similar:
        same = "same cause" if row.same_cause else row.cause
        commit = (row.git_commit or "-")[:8]
        lines.append(
            f"  {row.score:7.2f}  {row.start or '-'}  {commit:8}  {row.run_id}  "
            f"{row.nodeid}  ({same})"
        )
    return lines
