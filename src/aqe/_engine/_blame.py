"""Results without reports of their own, and what a dead worker's death is blamed on.

A worker that dies with work in hand has what it was doing blamed, with its exit
code or signal: the test it ran (``crashed``), the test the coordinator stopped at
its time limit (``timeout``), or the file it was collecting (a batch of several is
collected again one file at a time). ``blame`` decides that from what the
coordinator knew of the worker, without touching it; the coordinator records the
result. The result builders make the ``TestResult`` of a test that never reached
pytest's reporting (a crash, a skip for a failed dependency, a skipped module).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .._compat import CollectReport
from .._model import Outcome, TestResult, cap_text
from ._limits import trim_stacks
from ._pool import WorkerConn


@dataclass(frozen=True, slots=True)
class Crash:
    """A test with no reports of its own: its worker died under it, or it never ran."""

    nodeid: str
    message: str
    worker: int
    outcome: Outcome = "failed"
    error_type: str = "WorkerCrashed"
    #: More text for its traceback (the worker's traceback, its threads' stacks).
    detail: str = ""
    seconds: float = 0.0
    tier: str = "hot"
    #: The last lines it wrote to stdout and stderr, if known.
    output: tuple[str, str] = ("", "")
    #: It may run again (a retry, the next tier); False when it never ran.
    retry: bool = True

    def text(self) -> str:
        """What pytest's hooks see as the failed call's report."""
        text = f"{self.message}\n\n{self.detail}" if self.detail else self.message
        for name, lines in zip(("stdout", "stderr"), self.output, strict=True):
            if lines:
                text += f"\n\nLast lines of its {name}:\n{lines}"
        return text

    def result(self) -> TestResult:
        now = time.time()
        return TestResult(
            nodeid=self.nodeid,
            file=self.nodeid.split("::", 1)[0],
            line=None,
            outcome=self.outcome,
            phases={"call": self.seconds} if self.seconds else {},
            worker=self.worker,
            when="call",
            error_type=self.error_type,
            message=self.message,
            traceback=cap_text(self.text()),
            stdout=self.output[0],
            stderr=self.output[1],
            start=now - self.seconds,
            stop=now,
            tier=self.tier,
        )


@dataclass(frozen=True, slots=True)
class FileCrash:
    """The worker died collecting this one file (an index into the run's files)."""

    index: int
    text: str


@dataclass(frozen=True, slots=True)
class BatchCrash:
    """The worker died collecting these files together: collect them one at a time."""

    files: tuple[int, ...]


Blame = Crash | FileCrash | BatchCrash | None


def blame(
    conn: WorkerConn, running: str | None, how: str, stacks: str, output: tuple[str, str]
) -> Blame:
    """What a worker that died (``how``: its exit, described) is to blame on;
    ``running``: the test at the head of its queue. None: nothing is (it was
    stopped or retired on purpose, or died in another file's import)."""
    if conn.timed_out is not None:
        nodeid, limit, ran = conn.timed_out
        # If the test finished just before the kill, the one after it is innocent:
        # it goes back to the queue with the rest.
        if running != nodeid:
            return None
        detail = ""
        if stacks:
            detail = f"Stacks of the worker's threads when it was stopped:\n{trim_stacks(stacks)}"
        message = (
            f"Timeout: still running after {limit:g}s; aqe killed worker {conn.worker} "
            f"(pid {conn.pid})"
        )
        return Crash(
            nodeid,
            message,
            conn.worker,
            "timeout",
            error_type="Timeout",
            detail=detail,
            seconds=ran,
            tier=conn.tier,
            output=output,
        )
    if conn.killed or conn.importing:
        return None
    if len(conn.collecting) > 1:
        return BatchCrash(conn.collecting)
    if conn.collecting:
        text = f"worker {conn.worker} (pid {conn.pid}) {how} while collecting this file"
        return FileCrash(conn.collecting[0], text + (f":\n{conn.failure}" if conn.failure else ""))
    if running is None:
        return None
    message = f"worker {conn.worker} (pid {conn.pid}) {how} while running this test"
    if conn.failure:  # e.g. the test raised KeyboardInterrupt or SystemExit past pytest
        message += ": " + conn.failure.strip().splitlines()[-1]
    seconds = max(0.0, time.monotonic() - conn.busy_since)
    return Crash(
        running,
        message,
        conn.worker,
        "crashed",
        detail=conn.failure,
        seconds=seconds,
        tier=conn.tier,
        output=output,
    )


def not_found(worker: int, nodeid: str) -> Crash:
    """A test the worker was sent and did not find where it collected it."""
    return Crash(
        nodeid,
        f"not run: worker {worker} collected {nodeid.split('::', 1)[0]} to run it and "
        "did not find it there (the file collects differently from one time to the next)",
        worker,
        "error",
        error_type="NotCollected",
        retry=False,
    )


def skipped(nodeid: str, reason: str) -> TestResult:
    """A test skipped without running (a dependency did not pass)."""
    now = time.time()
    return TestResult(
        nodeid=nodeid,
        file=nodeid.split("::", 1)[0],
        line=None,
        outcome="skipped",
        phases={},
        worker=-1,
        when="setup",
        error_type="Skipped",
        message=reason,
        start=now,
        stop=now,
    )


def collect_skipped(worker: int, report: CollectReport) -> TestResult:
    """A module or conftest skipped while collecting (``allow_module_level``,
    ``importorskip``): pytest's summary counts it as skipped, so its result does."""
    longrepr = report.longrepr
    reason = str(longrepr[2]) if isinstance(longrepr, (tuple, list)) else str(longrepr)
    text = str(tuple(longrepr)) if isinstance(longrepr, (tuple, list)) else str(longrepr)
    now = time.time()
    return TestResult(
        nodeid=report.nodeid,
        file=report.nodeid.split("::", 1)[0],
        line=None,
        outcome="skipped",
        phases={},
        worker=worker,
        when="collect",
        message=reason,
        traceback=text,  # what pytest's junitxml writes for it
        start=now,
        stop=now,
    )
