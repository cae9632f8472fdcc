"""The recorder: where every attempt's result goes once the coordinator settled it.

One path for all of them (a test's reports, a crash, a skip without running, a
skipped collection): the run's record, the counts, the store (through the run
controller's sink, in batches), the live view and the status file other
processes read.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from .._model import FAILING_OUTCOMES, Progress, RunRecord, TestResult
from ._plan import Estimate, Planner
from ._pool import WorkerPool
from ._status import StatusFile, WorkerState, first_failures

#: Seconds between two frames of the live view.
VIEW_INTERVAL = 0.1
#: Results gathered before the sink gets them anyway (else twice a second).
_BATCH = 500


class RunSink(Protocol):
    """Where the coordinator sends what it learns; the CLI's run controller."""

    def estimates(self) -> tuple[Mapping[str, Estimate], Mapping[str, float]]: ...

    def record(self, results: Sequence[TestResult], collect_times: Mapping[str, float]) -> None: ...


class ProgressView(Protocol):
    """The terminal's live view; called from the loop, never from a thread."""

    def progress(self, snapshot: Progress) -> None: ...

    def test_output(self, result: TestResult, text: str) -> None: ...

    def flush(self) -> None: ...

    def started(self, workers: int, files: int, direct: int) -> None: ...

    def collected(self, nodeids: Sequence[str]) -> None: ...


class Recorder:
    def __init__(
        self,
        run: RunRecord,
        sink: RunSink,
        view: ProgressView | None,
        status: StatusFile | None,
    ) -> None:
        self.run = run
        self.sink = sink
        self.view = view
        self.status = status
        #: Attempts per outcome so far.
        self.counts: dict[str, int] = {}
        self._pending: list[TestResult] = []
        self._pending_collect: dict[str, float] = {}
        self._last_flush = time.monotonic()
        self._last_view = 0.0
        #: Attempts before this index are none of them failures (see ``_unscanned``).
        self._clean = 0

    def record(self, result: TestResult, raw_output: str = "") -> None:
        """One settled attempt (``raw_output``: what it wrote past pytest's capture)."""
        self.run.results.append(result)
        self._pending.append(result)
        self.counts[result.outcome] = self.counts.get(result.outcome, 0) + 1
        if result.outcome in FAILING_OUTCOMES:
            self._last_view = 0.0  # show the new count with the failure, not a tick later
        if raw_output and self.view is not None:
            self.view.test_output(result, raw_output)

    def _unscanned(self) -> list[TestResult]:
        """The attempts from the first failing one on: the status file lists the
        first failures twice a second, and scanning every attempt each time cost a
        tenth of the coordinator's CPU on 62,000 tests. Attempts are appended and
        never change, so a prefix without failures stays one."""
        results = self.run.results
        start = self._clean
        while start < len(results) and results[start].outcome not in FAILING_OUTCOMES:
            start += 1
        self._clean = start
        return results[start:]

    def collect_times(self, seconds: Mapping[str, float]) -> None:
        self._pending_collect.update(seconds)

    def flush(self, force: bool = False) -> None:
        """Hand what was recorded to the sink (the store), in batches."""
        now = time.monotonic()
        if not force and now - self._last_flush < 0.5 and len(self._pending) < _BATCH:
            return
        self._last_flush = now
        if self._pending or self._pending_collect:
            self.sink.record(list(self._pending), dict(self._pending_collect))
            self._pending.clear()
            self._pending_collect.clear()

    def refresh(
        self,
        snapshot: Callable[[], tuple[Progress, list[WorkerState]]],
        final: dict[str, str],
        state: str,
        last: bool = False,
    ) -> None:
        """Draw the live view and write the status file when each is due;
        ``snapshot`` is only asked then."""
        if self.view is None and self.status is None:
            return
        now = time.monotonic()
        show = self.view is not None and now - self._last_view >= VIEW_INTERVAL
        write = self.status is not None and (last or self.status.due(now))
        if not show and not write:
            return
        progress, workers = snapshot()
        if show and self.view is not None:
            self._last_view = now
            self.view.progress(progress)
        if write and self.status is not None:
            self.status.write(
                state="finished" if last else state,
                done=len(final),
                attempts=progress.done,
                known=progress.known,
                collecting=progress.collecting and not last,
                eta=None if last else progress.eta,
                counts=progress.counts,
                outcomes=dict(Counter(final.values())),
                workers=workers,
                failures=first_failures(self._unscanned(), final),
            )

    def frame(self) -> None:
        if self.view is not None:
            self.view.flush()


def snapshot(
    run: RunRecord, known: int, counts: Mapping[str, int], pool: WorkerPool, planner: Planner
) -> tuple[Progress, list[WorkerState]]:
    """The run as the live view draws it, and each live worker for the status file."""
    now = time.monotonic()
    live = pool.live()
    tests = {conn.worker: planner.running(conn.worker) for conn in live}
    running = {worker: test for worker, test in sorted(tests.items()) if test is not None}
    remaining = planner.remaining_est()
    collecting = planner.collecting_anywhere()
    done = len(run.results)
    progress = Progress(
        done=done,
        known=max(known, done),
        collecting=collecting,
        eta=None if collecting or remaining is None else remaining / (len(live) or 1),
        running=running,
        counts=dict(counts),
    )
    workers = [
        WorkerState(
            slot=conn.worker,
            pid=conn.pid,
            tier=conn.tier,
            test=running.get(conn.worker, ""),
            busy_for=now - conn.busy_since,
        )
        for conn in live
    ]
    return progress, workers
