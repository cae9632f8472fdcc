"""Typed messages between the coordinator and its workers.

One frozen dataclass per event, so a typo is a NameError at import and ``match``
lets mypy check that every case is handled -- the opposite of string events with
reflective dispatch. Messages travel pickled over a dedicated socket (see
``_transport``), never over a worker's stdout, so test output cannot corrupt them.
No ``__slots__``: a slotted dataclass unpickles through a Python-level
``__setstate__``, a measurable cost at thousands of results a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from ._model import TestResult

if TYPE_CHECKING:
    from ._compat import TestReport

# -- coordinator -> worker ---------------------------------------------------------


@dataclass(frozen=True)
class Collect:
    """Collect these deferred files (indexes into the coordinator's file list)."""

    files: tuple[int, ...]


@dataclass(frozen=True)
class RunTests:
    """Append these node ids to the worker's queue, to run in this order."""

    nodeids: tuple[str, ...]
    #: The coordinator holds more tests for this worker: keep the last queued test
    #: until they come (pytest tears fixtures down by the real next test). An empty
    #: ``RunTests`` with ``more=False`` takes that back (the rest was stolen).
    more: bool = False


@dataclass(frozen=True)
class Shutdown:
    """No more work will come: finish the queue, tear down, exit."""


@dataclass(frozen=True)
class Stop:
    """The run is being interrupted: finish the running test, drop the queue,
    tear fixtures down, exit."""


@dataclass(frozen=True)
class Limits:
    """When a worker must retire (finish its test, tear down, exit) to be replaced."""

    max_tests: int | None = None
    max_rss_mb: float | None = None
    #: Seconds a finished test's result may wait to leave with the next ones (0: each
    #: leaves at once). Sent only to a worker whose journal the coordinator can read.
    hold: float = 0.0


@dataclass(frozen=True)
class Proceed:
    """The coordinator counted the failure the worker waits on (``-x``/``--maxfail``)
    and the run goes on: run the next test."""


ToWorker = Collect | RunTests | Shutdown | Stop | Limits | Proceed

# -- worker -> coordinator ---------------------------------------------------------


@dataclass(frozen=True)
class WorkerReady:
    worker: int
    pid: int
    #: File the worker's faulthandler writes its stacks to on ``STACKS_SIGNAL``.
    stacks: str = ""
    #: Files that hold what the running test wrote (uncaptured, stdout, stderr), read
    #: by the coordinator when the worker dies under a test.
    outputs: tuple[str, ...] = ()
    #: File of the frames the worker holds unsent (``_transport.Journal``): what it
    #: finished before it died, read by the coordinator when it does.
    journal: str = ""


@dataclass(frozen=True)
class Retiring:
    """The worker reached a limit after its last test and exits; its queue is to be
    given to a replacement, and nothing is to blame."""

    worker: int
    reason: str
    #: The test that took a fresh worker past its memory limit on its own, if any.
    alone: str | None = None
    #: The reason is news to the user, not a limit they set.
    announce: bool = False


@dataclass(frozen=True)
class CollectedItem:
    nodeid: str
    file: str
    line: int | None
    location: tuple[str, int | None, str]
    #: Seconds from the test's ``timeout`` marker (0.0: no limit), if it has one.
    timeout: float | None = None
    #: Retries from the test's ``flaky(reruns=N)`` marker, if it has one.
    reruns: int | None = None
    #: The test's ``serial(group=...)`` group, if it has one.
    group: str | None = None
    #: Node ids (or prefixes of parametrized ones) the test must wait for.
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class CollectStarted:
    """Sent before a collection batch: if the worker dies now, these files did it."""

    worker: int
    files: tuple[int, ...]


@dataclass(frozen=True)
class Importing:
    """The worker starts (or has ended) making what other test files import
    (``_preimport``): a death meanwhile is no file's or test's to blame; under pytest
    the whole run would have died."""

    worker: int
    active: bool


@dataclass(frozen=True)
class Collected:
    """What a worker found in the files it was asked to collect."""

    worker: int
    files: tuple[int, ...]
    items: tuple[CollectedItem, ...]
    #: Serialized failed or skipped collect reports, replayed by the coordinator.
    reports: tuple[dict[str, Any], ...]
    deselected: tuple[str, ...]
    #: Seconds spent collecting each file, keyed by file path relative to rootdir.
    seconds: dict[str, float]
    #: Files whose tests are unittest.TestCase methods (kept whole by ``split=auto``).
    order_bound: tuple[str, ...] = ()
    #: Lines for the user: a file whose tests may differ from pytest's, and why.
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TestFinished:
    """One test ran through pytest's runtest protocol on a worker."""

    __test__ = False

    worker: int
    nodeid: str
    location: tuple[str, int | None, str]
    #: The setup/call/teardown reports, replayed through pytest's hooks: the objects
    #: themselves (pickled), or pytest's serialized form when they do not pickle.
    reports: tuple[TestReport | dict[str, Any], ...]
    result: TestResult
    #: Output the test wrote outside pytest's capture (e.g. with ``-s``).
    raw_output: str = ""
    #: The worker's resident MB after this test, when that was past its memory limit.
    memory_mb: float | None = None


@dataclass(frozen=True)
class NothingReported:
    """The runtest protocol ran without logging a report (a plugin took over)."""

    worker: int
    nodeid: str


@dataclass(frozen=True)
class TestInterrupted:
    """The test raised ``KeyboardInterrupt`` or called ``pytest.exit()``, either of
    which ends a pytest session: the worker ran nothing after it and leaves; the
    coordinator stops the run."""

    __test__ = False

    worker: int
    nodeid: str
    #: Where it was raised, as pytest shows it ("test_x.py:9").
    where: str
    #: ``pytest.exit(reason, returncode)``'s arguments; None for a KeyboardInterrupt.
    exit_reason: str | None = None
    exit_code: int | None = None


@dataclass(frozen=True)
class NotFound:
    """Tests the worker was sent that it never collected (their ids differ from one
    collection to the next): never run here, to be reported, not dropped."""

    worker: int
    nodeids: tuple[str, ...]


@dataclass(frozen=True)
class WarningRecorded:
    worker: int
    category: str
    message: str
    filename: str
    lineno: int
    when: str
    nodeid: str


@dataclass(frozen=True)
class WorkerFailed:
    """The worker hit an internal error it cannot recover from."""

    worker: int
    traceback: str


#: Everything a worker sends; the coordinator's ``_dispatch`` matches it exhaustively.
ToCoordinator = (
    WorkerReady
    | Retiring
    | CollectStarted
    | Importing
    | Collected
    | TestFinished
    | NotFound
    | NothingReported
    | TestInterrupted
    | WarningRecorded
    | WorkerFailed
)


def assert_never(value: NoReturn) -> NoReturn:
    """``typing.assert_never`` (3.11+): mypy fails where a message kind is unhandled."""
    raise TypeError(f"unexpected message {value!r}")
