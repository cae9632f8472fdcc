"""aqe's plugin points, in one public module: adapters, reporters and history stores.

Everything a plugin needs is importable from here and nothing here names pytest:
an adapter for another test framework, a report writer or a history database is
written against these types alone (``docs/plugins.md`` walks through each). aqe
finds plugins through entry points, one group per kind (:data:`ADAPTERS`,
:data:`REPORTERS`, :data:`STORES`); a plugin that fails to load, lacks a method or
raises is reported as one ``aqe: error:`` line naming its entry point. A plugin
raises :class:`UsageError` for a project it cannot run (a tool missing, a config the
framework rejects): one ``aqe: error:`` line, exit 4.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeAlias, runtime_checkable

from aqe._engine._backend import BackendContext, BackendFactory, ExecutionBackend
from aqe._exceptions import UsageError
from aqe._model import FAILING_OUTCOMES, OUTCOMES, JunitOptions, Outcome, RunRecord, TestResult
from aqe._reporting.json_report import ShardInfo
from aqe._store import DurationEstimate, HistoryRow, RunRow, SimilarRow
from aqe._store import Store as HistoryStore
from aqe._verdicts import RetryPolicy

__all__ = [
    "ADAPTERS",
    "BACKENDS",
    "FAILING_OUTCOMES",
    "OUTCOMES",
    "REPORTERS",
    "STORES",
    "Adapter",
    "BackendContext",
    "BackendFactory",
    "CollectedTest",
    "CollectionFailed",
    "CollectionFinished",
    "DurationEstimate",
    "Event",
    "ExecutionBackend",
    "FilesCollected",
    "HistoryRow",
    "HistoryStore",
    "JunitOptions",
    "LiveReporter",
    "Outcome",
    "Reporter",
    "RetryRules",
    "RunEvents",
    "RunRecord",
    "RunRequest",
    "RunRow",
    "RunSummary",
    "Selection",
    "ShardInfo",
    "SimilarRow",
    "TestFinished",
    "TestResult",
    "TestStarted",
    "UsageError",
    "run_tests",
    "shard_files",
]

#: Entry-point groups, one per plugin kind.
ADAPTERS = "aqe.adapters"
REPORTERS = "aqe.reporters"
STORES = "aqe.stores"
#: Where the pytest engine's workers start (``--backend``): local processes now.
BACKENDS = "aqe.backends"


# -- what to run ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selection:
    """What to run, in framework-neutral terms (an adapter maps what it can)."""

    paths: tuple[str, ...] = ()
    keyword: str | None = None
    marker: str | None = None
    deselect: tuple[str, ...] = ()
    last_failed: bool = False
    failed_first: bool = False
    exitfirst: bool = False
    maxfail: int | None = None
    #: Arguments for the framework itself (after ``--`` on aqe's command line).
    extra_args: tuple[str, ...] = ()
    #: Only the I-th of N shards, 1-based (``--shard I/N``); an adapter that sets
    #: ``shards = True`` applies it and emits a :class:`ShardInfo`.
    shard: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class CollectedTest:
    """One test an adapter found: its id (stable across runs: history keys on it)."""

    __test__ = False  # not a pytest test class

    nodeid: str
    file: str
    line: int | None


#: When a failed test runs again (``--retries``, ``--retry-on``, ``--retry-except``,
#: the run's budget, backoff for transient errors): the same rules the pytest engine
#: applies, decided by the same code (``aqe._verdicts``).
RetryRules = RetryPolicy


@dataclass(frozen=True, slots=True)
class RunRequest:
    """One run, as aqe asks an adapter for it."""

    root: Path
    selection: Selection = field(default_factory=Selection)
    workers: int = 1
    verbosity: int = 0
    capture: bool = True
    live: bool = False
    #: Seconds a test may run; None for no limit.
    timeout: float | None = None
    #: Seconds the whole run may take; None for no limit.
    run_timeout: float | None = None
    retry: RetryRules = field(default_factory=RetryRules)
    #: A test that passed only on a retry fails the run.
    fail_on_flaky: bool = False
    #: Test ids in the project's quarantine: their failures do not fail the run.
    quarantined: frozenset[str] = frozenset()
    #: The run's id, as the history and ``aqe status`` know it.
    run_id: str = ""
    #: File to keep a live JSON snapshot of the run in, if the adapter can.
    status_path: str | None = None
    #: The adapter's own knobs, of a type it defines (the pytest adapter's: the
    #: engine's settings); an adapter ignores a value of a type it does not know.
    adapter_options: object = None


# -- what an adapter tells aqe -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CollectionFinished:
    """The tests the run will run, in the adapter's order."""

    tests: tuple[CollectedTest, ...]


@dataclass(frozen=True, slots=True)
class TestStarted:
    __test__ = False

    nodeid: str
    attempt: int = 1
    worker: int = 0


@dataclass(frozen=True, slots=True)
class TestFinished:
    """One attempt's result; every attempt of every test is emitted exactly once."""

    __test__ = False

    result: TestResult


@dataclass(frozen=True, slots=True)
class FilesCollected:
    """Seconds spent collecting each file, for the next run's plan."""

    seconds: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class CollectionFailed:
    """A file (or test id) that could not be collected, with the error's text."""

    location: str
    text: str


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What the adapter knows once its run ended; emitted last, at most once."""

    workers: int | None = None
    #: Test ids collected (after deselection), and how many of them ran.
    collected: int | None = None
    ran: int | None = None
    #: Seconds each worker sat idle at the end while others still worked.
    tail_idle: Mapping[int, float] = field(default_factory=dict)
    #: How JUnit XML should be shaped (pytest's ``junit_*`` options); None: defaults.
    junit: JunitOptions | None = None


#: Everything an adapter can tell aqe during a run (``ShardInfo``: the shard it kept).
Event: TypeAlias = (
    CollectionFinished
    | TestStarted
    | TestFinished
    | FilesCollected
    | CollectionFailed
    | RunSummary
    | ShardInfo
)


class RunEvents(Protocol):
    """Where an adapter sends its run's events, and reads the history's estimates."""

    def emit(self, *events: Event) -> None:
        """Record ``events``; those given in one call reach the history in one write.
        Call it from the thread that called :meth:`Adapter.run`."""

    def estimates(self) -> Mapping[str, DurationEstimate]:
        """Each known test's usual duration, from the history (empty without one)."""

    def file_estimates(self) -> Mapping[str, float]:
        """Each known file's usual collection seconds, from the history."""


# -- the plugin kinds ----------------------------------------------------------------


@runtime_checkable
class Adapter(Protocol):
    """A test framework: registered under ``aqe.adapters``, made with no arguments."""

    name: str

    def detect(self, root: Path) -> bool:
        """Whether this framework's tests live in ``root``; cheap, reads files only."""

    def collect(self, request: RunRequest) -> list[CollectedTest]:
        """The selected tests, in the framework's own order (``aqe list``)."""

    def run(self, request: RunRequest, events: RunEvents) -> int:
        """Run the selection, emitting every result; returns pytest's exit code."""


@runtime_checkable
class Reporter(Protocol):
    """A report of a finished run: registered under ``aqe.reporters``."""

    name: str

    def write(self, run: RunRecord, destination: Path | None) -> None:
        """Write the report; called once, after the run, even a failed or interrupted one."""


@runtime_checkable
class LiveReporter(Reporter, Protocol):
    """A reporter that also wants the run's events as they happen."""

    def event(self, event: Event) -> None: ...


# -- shared engine for adapters that run one test at a time --------------------------


def run_tests(
    request: RunRequest,
    events: RunEvents,
    tests: Sequence[CollectedTest],
    run_one: Callable[[CollectedTest], TestResult],
) -> int:
    """Run ``tests`` with aqe's own retries, flaky and quarantine verdicts.

    ``run_one`` runs one attempt of one test and returns its result (``attempt``,
    ``worker`` and ``quarantined`` are filled in by aqe). It is called from
    ``request.workers`` threads at once; events are emitted from the caller's thread.
    """
    from aqe._adapters._neutral import run_tests as run

    return run(request, events, tests, run_one)


def shard_files(
    seconds: Mapping[str, float | None],
    sizes: Mapping[str, int],
    shard: tuple[int, int],
    tests: Mapping[str, int] | None = None,
) -> tuple[tuple[str, ...], ShardInfo]:
    """``--shard I/N`` for an adapter whose unit of work is a file: the files of
    shard ``I`` (the same partition as pytest's shards, each file one unit, weighed
    by ``seconds`` from the history, else by ``sizes`` in bytes), and the
    :class:`ShardInfo` the adapter emits. It also prints the shard's opening line."""
    from aqe._adapters._shards import announce
    from aqe._adapters._shards import shard_files as split

    kept = split(seconds, sizes, shard, tests)
    announce(kept, len(seconds))
    return kept.files, kept.info
