"""Flaky or broken: a verdict per test from the outcomes the history holds.

A test is flaky only on evidence that cannot come from a code change: it failed
and then passed within one run (a retry), or it both passed and failed on the same
code (same clean git commit, or the same hash of the project's files). A test
that fails on every run since some commit (or on every run the window holds) is
broken, never flaky: a real regression must not be waved through as noise.

The score is the label's figure, the chance that a run of the current code fails
the test: 1 for a broken test, the share of attempts that failed on the evidence
runs for a flaky one (always strictly between 0 and 1), 0 for a stable one. So a
test that fails every time never shows 0.00 beside its label. Runs in which most
tests failed at once (an outage: a database down, a broken conftest) are set
aside as evidence of nothing, when another run of the same code shows they were
not the code's doing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .._store import RunRow

Label = Literal["flaky", "broken", "stable"]

FAILING = frozenset({"failed", "error", "crashed", "timeout"})
PASSING = frozenset({"passed", "flaky", "xfailed"})
#: A run is an outage when at least this share of its tests failed...
OUTAGE_SHARE = 0.5
#: ... and at least this many did.
OUTAGE_MIN = 5
#: Most runs looked at (the store binds one parameter per run).
MAX_WINDOW = 500


@dataclass(frozen=True, slots=True)
class Moment:
    """One run of one test: its final outcome, and its attempts' failures and passes."""

    run_id: str
    start: float
    commit: str | None
    outcome: str
    failed_attempts: int
    passed_attempts: int


@dataclass(frozen=True, slots=True)
class FlakyVerdict:
    """One test's verdict over the history's recent runs (``aqe flaky``)."""

    nodeid: str
    label: Label
    #: Chance that a run of the current code fails it: 1 when broken; when flaky the
    #: share of attempts that failed on the evidence runs (the same code, or runs with
    #: a retry); 0 when stable.
    score: float
    runs: int
    passed: int
    failed: int
    #: Runs in which it failed and then passed on a retry.
    retried: int
    #: Code identities on which it both passed and failed.
    same_code_mixed: int
    #: Share of consecutive runs whose pass/fail result changed.
    flip_rate: float
    #: Binary entropy (bits) of its pass/fail results over the window.
    entropy: float
    #: For a broken test: the commit (or code identity) of its first failing run in a
    #: row; None when it failed on every run of the window (it never passed there).
    broken_since: str | None
    last_outcome: str
    #: Its runs in the window, oldest first.
    timeline: tuple[Moment, ...] = ()

    def to_json(self, timeline: bool = False) -> dict[str, object]:
        """The ``tests[]`` entry of ``aqe flaky --json`` (with ``timeline``: one test's)."""
        data: dict[str, object] = {
            "nodeid": self.nodeid,
            "label": self.label,
            "score": self.score,
            "runs": self.runs,
            "passed": self.passed,
            "failed": self.failed,
            "retried": self.retried,
            "same_code_mixed": self.same_code_mixed,
            "flip_rate": self.flip_rate,
            "entropy": self.entropy,
            "broken_since": self.broken_since,
            "last_outcome": self.last_outcome,
        }
        if timeline:
            data["timeline"] = [
                {
                    "run_id": m.run_id,
                    "start": iso(m.start),
                    "git_commit": m.commit,
                    "outcome": m.outcome,
                    "failed_attempts": m.failed_attempts,
                    "passed_attempts": m.passed_attempts,
                }
                for m in self.timeline
            ]
        return data


def iso(epoch: float) -> str:
    """``epoch`` as ISO 8601 in UTC, to the second."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="seconds")


def code_of(run: RunRow) -> str:
    """The code identity of a run; a run without one shares code with no other."""
    if run.code_id:
        return run.code_id
    if run.git_commit and run.git_dirty is False:
        return f"git:{run.git_commit}"  # recorded before code identities existed
    return f"run:{run.run_id}"


def outages(runs: Sequence[RunRow], attempts: Mapping[str, Mapping[str, list[str]]]) -> set[str]:
    """Runs in which most tests failed at once while the same code, in another run,
    did not: a passing check proves the failures were not the code's.

    Mass failures that persist on the same code are not outages: that is a
    regression breaking most tests, and its tests must come out broken.
    """
    failing: dict[str, int] = {}
    total: dict[str, int] = {}
    for per_run in attempts.values():
        for run_id, outcomes in per_run.items():
            total[run_id] = total.get(run_id, 0) + 1
            if outcomes[-1] in FAILING:
                failing[run_id] = failing.get(run_id, 0) + 1
    mass = {
        run.run_id
        for run in runs
        if failing.get(run.run_id, 0) >= max(OUTAGE_MIN, OUTAGE_SHARE * total.get(run.run_id, 0))
    }
    healthy_codes = {code_of(run) for run in runs if run.run_id not in mass}
    return {run.run_id for run in runs if run.run_id in mass and code_of(run) in healthy_codes}


def analyse(
    runs: Sequence[RunRow], attempts: Mapping[str, Mapping[str, list[str]]]
) -> list[FlakyVerdict]:
    """A verdict for every test seen in ``runs`` (oldest first), worst first."""
    skip = outages(runs, attempts)
    kept = [run for run in runs if run.run_id not in skip]
    verdicts = [
        verdict
        for nodeid, per_run in attempts.items()
        if (verdict := judge(nodeid, kept, per_run)) is not None
    ]
    rank = {"flaky": 0, "broken": 1, "stable": 2}
    verdicts.sort(key=lambda v: (rank[v.label], -v.score, -v.failed, v.nodeid))
    return verdicts


def judge(
    nodeid: str, runs: Sequence[RunRow], per_run: Mapping[str, list[str]]
) -> FlakyVerdict | None:
    """One test's verdict from its attempts in ``runs`` (outages already left out)."""
    timeline: list[tuple[Moment, str]] = []
    for run in runs:
        outcomes = per_run.get(run.run_id)
        if not outcomes:
            continue
        final = outcomes[-1]
        if final not in FAILING and final not in PASSING:
            continue  # skipped, xpassed: says nothing about flakiness
        moment = Moment(
            run_id=run.run_id,
            start=run.start,
            commit=run.git_commit,
            outcome=final,
            failed_attempts=sum(o in FAILING for o in outcomes),
            passed_attempts=sum(o in PASSING for o in outcomes),
        )
        timeline.append((moment, code_of(run)))
    if not timeline:
        return None
    bad = [m.outcome in FAILING for m, _ in timeline]
    retried = sum(1 for m, _ in timeline if m.failed_attempts and m.passed_attempts)
    by_code: dict[str, list[Moment]] = {}
    for moment, code in timeline:
        by_code.setdefault(code, []).append(moment)
    mixed = [
        code
        for code, moments in by_code.items()
        if any(m.outcome in FAILING for m in moments) and any(m.passed_attempts for m in moments)
    ]
    evidence = [m for code in mixed for m in by_code[code]]
    evidence += [
        m for m, c in timeline if c not in mixed and m.failed_attempts and m.passed_attempts
    ]
    failed_attempts = sum(m.failed_attempts for m in evidence)
    all_attempts = failed_attempts + sum(m.passed_attempts for m in evidence)
    flips = sum(1 for a, b in itertools.pairwise(bad) if a != b)
    share = sum(bad) / len(bad)
    entropy = (
        0.0
        if share in (0.0, 1.0)
        else -(share * math.log2(share) + (1 - share) * math.log2(1 - share))
    )
    label: Label = "stable"
    broken_since = None
    if retried or mixed:
        label = "flaky"
    elif bad[-1]:
        label = "broken"
        if not all(bad):
            last_pass = len(bad) - 1 - bad[::-1].index(False)
            first, code = timeline[last_pass + 1]
            broken_since = first.commit or code
    score = {"flaky": failed_attempts / max(1, all_attempts), "broken": 1.0, "stable": 0.0}
    return FlakyVerdict(
        nodeid=nodeid,
        label=label,
        score=round(score[label], 4),
        runs=len(timeline),
        passed=len(bad) - sum(bad),
        failed=sum(bad),
        retried=retried,
        same_code_mixed=len(mixed),
        flip_rate=round(flips / max(1, len(bad) - 1), 4),
        entropy=round(entropy, 4),
        broken_since=broken_since,
        last_outcome=timeline[-1][0].outcome,
        timeline=tuple(m for m, _ in timeline),
    )
