"""aqe's run loop for adapters that run one test at a time (``aqe.plugins.run_tests``).

Retries, flaky and quarantine verdicts and the exit code are aqe's, not the
adapter's, so every framework gets the same ones: the pytest engine's own pure
decisions (``aqe._verdicts``: ``decide``, ``Attempts``, ``Retries``), without the
tiers (an adapter's test is already a process of its own). Tests run on threads:
an adapter's test is typically a child process, and a thread per slot waits on it.
"""

from __future__ import annotations

import collections
import dataclasses
import queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from .._model import FAILING_OUTCOMES, TestResult
from .._verdicts import Attempt, Attempts, Retries, Retry, Situation, decide
from ..plugins import (
    CollectedTest,
    CollectionFinished,
    RunEvents,
    RunRequest,
    RunSummary,
    TestFinished,
    TestStarted,
)


def next_attempt(result: TestResult, retries: Retries, tests: int, stopping: bool) -> float | None:
    """Seconds to wait before the test runs again, or None when this attempt is its
    last: the pytest engine's decision (``decide``) and retry rules (``Retries``:
    ``--retries``, the error filters, the run's budget, backoff for transient errors)."""
    facts = Attempt(result.outcome, quarantined=result.quarantined)
    if not isinstance(decide(facts, Situation(isolate_on=(), stopping=stopping)), Retry):
        return None
    error = f"{result.error_type or ''}: {result.message or ''}"
    return retries.next_delay(result.attempt, None, error, tests)


def exit_code(final: Sequence[TestResult], fail_on_flaky: bool, interrupted: bool) -> int:
    """pytest's exit codes over each test's last attempt."""
    if interrupted:
        return 2
    if not final:
        return 5
    if any(r.outcome in FAILING_OUTCOMES and not r.quarantined for r in final):
        return 1
    return 1 if fail_on_flaky and any(r.outcome == "flaky" for r in final) else 0


class _Loop:
    """One run's state; driven from the caller's thread, tests on the pool's."""

    def __init__(
        self,
        request: RunRequest,
        events: RunEvents,
        tests: Sequence[CollectedTest],
        run_one: Callable[[CollectedTest], TestResult],
    ) -> None:
        self.request = request
        self.events = events
        self.tests = tests
        self.run_one = run_one
        self.workers = max(1, min(request.workers, len(tests)))
        self.slots: queue.SimpleQueue[int] = queue.SimpleQueue()
        for slot in range(self.workers):
            self.slots.put(slot)
        self.attempts: dict[str, int] = {}
        #: Numbers each ended attempt, marks quarantine and a pass after a failure flaky.
        self.numbering = Attempts(request.quarantined)
        self.retries = Retries(request.retry)
        self.delays: dict[str, float] = {}
        self.final: dict[str, TestResult] = {}
        self.order = {test.nodeid: position for position, test in enumerate(tests)}
        self.spent = 0
        self.failures = 0
        self.stopping = False
        self.waiting: collections.deque[CollectedTest] = collections.deque()

    def _attempt(self, test: CollectedTest, delay: float) -> TestResult:
        if delay > 0:
            time.sleep(delay)  # a transient error's backoff before the retry
        slot = self.slots.get()
        try:
            result = self.run_one(test)
        finally:
            self.slots.put(slot)
        return dataclasses.replace(result, worker=slot)

    def _stop_after(self) -> int | None:
        selection = self.request.selection
        return 1 if selection.exitfirst else selection.maxfail

    def run(self) -> int:
        self.events.emit(CollectionFinished(tuple(self.tests)))
        deadline = (
            None if self.request.run_timeout is None
            else time.monotonic() + self.request.run_timeout
        )  # fmt: skip
        interrupted = False
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="aqe-test")
        running: dict[Future[TestResult], CollectedTest] = {}
        self.waiting.extend(self.tests)
        try:
            self._fill(pool, running)
            while running:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                done, _ = wait(running, timeout=left, return_when=FIRST_COMPLETED)
                if not done:  # the run's time limit: keep what finished
                    break
                self._settle(running, done)
                self._fill(pool, running)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        final = list(self.final.values())
        self.events.emit(
            RunSummary(workers=self.workers, collected=len(self.tests), ran=len(self.final))
        )
        return exit_code(final, self.request.fail_on_flaky, interrupted)

    def _fill(
        self, pool: ThreadPoolExecutor, running: dict[Future[TestResult], CollectedTest]
    ) -> None:
        """Hand out tests while a worker slot is free: a test starts when it is given."""
        while self.waiting and len(running) < self.workers and not self.stopping:
            self._submit(pool, running, self.waiting.popleft())

    def _submit(
        self,
        pool: ThreadPoolExecutor,
        running: dict[Future[TestResult], CollectedTest],
        test: CollectedTest,
    ) -> None:
        attempt = self.attempts.get(test.nodeid, 0) + 1
        self.attempts[test.nodeid] = attempt
        self.events.emit(TestStarted(test.nodeid, attempt))
        delay = self.delays.pop(test.nodeid, 0.0)
        running[pool.submit(self._attempt, test, delay)] = test

    def _settle(
        self, running: dict[Future[TestResult], CollectedTest], done: set[Future[TestResult]]
    ) -> None:
        finished: list[TestFinished] = []
        again: list[CollectedTest] = []
        for future in sorted(done, key=lambda f: self.order[running[f].nodeid]):
            test = running.pop(future)
            result = future.result()  # an adapter's exception ends the run (a plugin error)
            result = self.numbering.number(result, tier=result.tier)  # the adapter's tier
            finished.append(TestFinished(result))
            delay = next_attempt(result, self.retries, len(self.tests), self.stopping)
            if delay is not None:
                self.delays[test.nodeid] = delay
                again.append(test)
                continue
            self.final[test.nodeid] = result
            if result.outcome in FAILING_OUTCOMES and not result.quarantined:
                self.failures += 1
        self.events.emit(*finished)
        limit = self._stop_after()
        if limit is not None and self.failures >= limit:
            # -x/--maxfail: tests not started are dropped; running ones are reported.
            self.stopping = True
        self.waiting.extendleft(reversed(again))  # a retry goes first: its file is warm


def run_tests(
    request: RunRequest,
    events: RunEvents,
    tests: Sequence[CollectedTest],
    run_one: Callable[[CollectedTest], TestResult],
) -> int:
    return _Loop(request, events, tests, run_one).run()
