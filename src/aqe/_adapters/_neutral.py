"""aqe's run loop for adapters that run one test at a time (``aqe.plugins.run_tests``).

Retries, flaky and quarantine verdicts and the exit code are aqe's, not the
adapter's, so every framework gets the same ones. The decision is one pure
function, :func:`attempt_verdict`; it stands in for the shared attempt verdicts
(``_verdicts.py``) until those exist. Tests run on threads: an adapter's test is
typically a child process, and a thread per worker slot waits on it cheaply.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import queue
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from .._model import FAILING_OUTCOMES, Outcome, TestResult
from ..plugins import (
    CollectedTest,
    CollectionFinished,
    RetryRules,
    RunEvents,
    RunRequest,
    RunSummary,
    TestFinished,
    TestStarted,
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one attempt means: the outcome to record, and whether the test runs again."""

    outcome: Outcome
    retry: bool


def retries_allowed(rules: RetryRules, tests: int) -> int:
    """The run's retry budget: a share of its tests, at least one."""
    return max(1, math.ceil(rules.budget * tests))


def attempt_verdict(
    result: TestResult, failed_before: bool, rules: RetryRules, spent: int, tests: int
) -> Verdict:
    """A pass after a failed attempt is ``flaky``; a failure runs again while the
    test's retries (``--retries``), the error filters and the run's budget allow."""
    if result.outcome == "passed" and failed_before:
        return Verdict("flaky", retry=False)
    if result.outcome not in FAILING_OUTCOMES or result.attempt > rules.retries:
        return Verdict(result.outcome, retry=False)
    error = f"{result.error_type or ''}: {result.message or ''}"
    if rules.retry_on is not None and not re.search(rules.retry_on, error):
        return Verdict(result.outcome, retry=False)
    if rules.retry_except is not None and re.search(rules.retry_except, error):
        return Verdict(result.outcome, retry=False)
    return Verdict(result.outcome, retry=spent < retries_allowed(rules, tests))


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
        self.failed: set[str] = set()
        self.final: dict[str, TestResult] = {}
        self.order = {test.nodeid: position for position, test in enumerate(tests)}
        self.spent = 0
        self.failures = 0
        self.stopping = False
        self.waiting: collections.deque[CollectedTest] = collections.deque()

    def _attempt(self, test: CollectedTest, attempt: int) -> TestResult:
        slot = self.slots.get()
        try:
            result = self.run_one(test)
        finally:
            self.slots.put(slot)
        return dataclasses.replace(
            result,
            attempt=attempt,
            worker=slot,
            quarantined=test.nodeid in self.request.quarantined,
        )

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
        running[pool.submit(self._attempt, test, attempt)] = test

    def _settle(
        self, running: dict[Future[TestResult], CollectedTest], done: set[Future[TestResult]]
    ) -> None:
        finished: list[TestFinished] = []
        again: list[CollectedTest] = []
        for future in sorted(done, key=lambda f: self.order[running[f].nodeid]):
            test = running.pop(future)
            result = future.result()  # an adapter's exception ends the run (a plugin error)
            verdict = attempt_verdict(
                result, test.nodeid in self.failed, self.request.retry, self.spent,
                len(self.tests),
            )  # fmt: skip
            if result.outcome in FAILING_OUTCOMES:
                self.failed.add(test.nodeid)
            result = dataclasses.replace(result, outcome=verdict.outcome)
            finished.append(TestFinished(result))
            if verdict.retry and not self.stopping:
                self.spent += 1
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
