"""The result data model shared by the engine, the history store and the reports.

A worker turns pytest's per-phase reports into one :class:`TestResult` per test
and attempt; the coordinator gathers them into a :class:`RunRecord`. The store and
every report writer read only these types, never pytest objects, so they work the
same for any adapter.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal[
    "passed", "failed", "skipped", "xfailed", "xpassed", "error", "crashed", "timeout", "flaky"
]

#: Every outcome, in the order the closing line lists them. ``crashed``: the test's
#: worker died under it; ``timeout``: aqe stopped it after its time limit; ``flaky``:
#: it passed on a retry after failing (the attempts before keep their own outcome).
OUTCOMES: tuple[Outcome, ...] = (
    "failed", "passed", "skipped", "xfailed", "xpassed", "error", "crashed", "timeout", "flaky"
)  # fmt: skip

#: Outcomes that make a run fail (exit code 1).
FAILING_OUTCOMES: frozenset[str] = frozenset({"failed", "error", "crashed", "timeout"})

#: Captured text is cut to this many characters per stream so that one chatty test
#: cannot blow up memory, the store or an agent's context.
OUTPUT_CAP = 64 * 1024


def cap_text(text: str, limit: int = OUTPUT_CAP) -> str:
    """Keep the head and tail of ``text`` when it exceeds ``limit`` characters."""
    if len(text) <= limit:
        return text
    half = limit // 2
    dropped = len(text) - 2 * half
    return f"{text[:half]}\n... [{dropped} characters cut by aqe] ...\n{text[-half:]}"


@dataclass(frozen=True)  # no __slots__: instances then pickle through the fast C path
class TestResult:
    """One attempt of one test, as the coordinator records it."""

    __test__ = False  # not a pytest test class

    nodeid: str
    file: str
    line: int | None
    outcome: Outcome
    #: Seconds per phase ("setup", "call", "teardown"); absent phases were not run.
    phases: dict[str, float]
    worker: int
    attempt: int = 1
    #: Phase in which the test failed or was skipped, if any.
    when: str | None = None
    error_type: str | None = None
    message: str | None = None
    traceback: str | None = None
    stdout: str = ""
    stderr: str = ""
    log: str = ""
    #: Wall-clock epoch seconds when the test started and finished on its worker.
    start: float = 0.0
    stop: float = 0.0
    #: Where the attempt ran: ``hot`` (a shared worker), ``warm`` (a fresh fork for
    #: this test alone) or ``cold`` (a fresh interpreter for this test alone).
    tier: str = "hot"
    #: Listed in the project's quarantine: a failure is recorded but does not fail the run.
    quarantined: bool = False
    #: For JUnit XML: ``record_property`` pairs, ``record_xml_attribute`` pairs, and the
    #: ``record_testsuite_property`` pairs recorded while this attempt ran (values as text).
    properties: tuple[tuple[str, str], ...] = ()
    xml_attributes: tuple[tuple[str, str], ...] = ()
    suite_properties: tuple[tuple[str, str], ...] = ()
    #: The test's markers' names (its own, its class's and module's), sorted, for the
    #: HTML report's filter; pytest's mechanics (parametrize, usefixtures,
    #: filterwarnings) left out. Not kept in the history.
    markers: tuple[str, ...] = ()

    @property
    def duration(self) -> float:
        return sum(self.phases.values())

    @property
    def output_size(self) -> int:
        return len(self.stdout) + len(self.stderr) + len(self.log)

    def to_dict(self) -> dict[str, object]:
        data = dataclasses.asdict(self)
        data["duration"] = self.duration
        if not self.markers:
            del data["markers"]  # as the JSON report writes it
        return data


def tier_figures(results: list[TestResult]) -> dict[str, dict[str, float]]:
    """Per tier: attempts run, failing attempts, median seconds, attempts sent on
    to the next tier, and distinct worker slots, in hot-warm-cold order."""
    figures: dict[str, dict[str, float]] = {}
    by_id: dict[str, list[TestResult]] = {}
    for result in results:
        by_id.setdefault(result.nodeid, []).append(result)
    for tier in ("hot", "warm", "cold"):
        runs = [r for r in results if r.tier == tier]
        if not runs:
            continue
        durations = sorted(r.duration for r in runs)
        middle = len(durations) // 2
        median = (
            durations[middle]
            if len(durations) % 2
            else (durations[middle - 1] + durations[middle]) / 2
        )
        sent_on = sum(
            1
            for r in runs
            if any(
                later.attempt == r.attempt + 1 and later.tier != r.tier for later in by_id[r.nodeid]
            )
        )
        figures[tier] = {
            "tests": len(runs),
            "failures": sum(r.outcome in FAILING_OUTCOMES for r in runs),
            "median_seconds": round(median, 4),
            "fallbacks": sent_on,
            "workers": len({r.worker for r in runs if r.worker >= 0}),  # -1: aqe's own verdict
        }
    return figures


@dataclass(frozen=True)
class JunitOptions:
    """pytest's ``junit_*`` ini options and ``--junitprefix``, as the run's config has them,
    so aqe's JUnit XML is shaped as ``pytest --junitxml`` would shape it."""

    #: ``None``: pytest's default name was left alone; aqe then names the suite ``aqe``.
    suite_name: str | None = None
    family: str = "xunit2"
    logging: str = "no"
    log_passing_tests: bool = True
    duration_report: str = "total"
    prefix: str | None = None


@dataclass(slots=True)
class RunRecord:
    """A whole run: metadata filled in at start, results appended as they arrive."""

    run_id: str
    start: float
    command: list[str]
    root: str
    workers: int
    end: float | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    #: What code ran: ``git:<commit>`` on a clean tree, else ``tree:<hash of the files>``.
    code_id: str | None = None
    exit_code: int | None = None
    results: list[TestResult] = field(default_factory=list)
    #: Seconds each worker sat idle at the end of the run while others still worked.
    tail_idle: dict[int, float] = field(default_factory=dict)
    #: Errors while collecting a file: (file or node id, traceback text).
    collection_errors: list[tuple[str, str]] = field(default_factory=list)
    #: Test ids pytest's collection gave (after deselection), and how many of them
    #: ran; None until the run's loop ended.
    collected: int | None = None
    ran: int | None = None
    junit: JunitOptions = field(default_factory=JunitOptions)
    #: Tests a selection (``--affected``/``--changed``) left out: node id -> why.
    deselected: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Attempts per outcome (a test retried twice counts three times)."""
        counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        for result in self.results:
            counts[result.outcome] += 1
        return counts

    def final(self) -> dict[str, TestResult]:
        """Each test's last attempt, which is its outcome."""
        last: dict[str, TestResult] = {}
        for result in self.results:
            known = last.get(result.nodeid)
            if known is None or result.attempt >= known.attempt:
                last[result.nodeid] = result
        return last

    def final_counts(self) -> dict[str, int]:
        """Tests per outcome, each test counted once by its last attempt."""
        counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        for result in self.final().values():
            counts[result.outcome] += 1
        return counts


@dataclass(slots=True)
class Progress:
    """A run's live state as the live view draws it (the coordinator makes one per tick)."""

    done: int
    known: int
    collecting: bool
    eta: float | None
    #: Worker slot -> node id of the test it runs now.
    running: dict[int, str]
    counts: dict[str, int]
