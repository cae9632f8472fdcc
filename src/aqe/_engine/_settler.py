"""The settler: ``_verdicts``' decisions carried out for one run.

It numbers each ended attempt (flaky, quarantine, tier, a memory note), asks
``_verdicts.decide`` what becomes of it, and carries that out through the three
actions the coordinator gives it: start a worker for a test alone on a tier, stop
a hedged twin that is no longer needed, schedule a retry. It keeps what the run's
closing lines report (tests that passed only alone, memory breaches, quarantined
failures) and the retry budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from .._model import TestResult
from .._verdicts import (
    NEXT_TIER,
    Attempt,
    Attempts,
    Final,
    Hedges,
    Isolate,
    Retry,
    Situation,
    Verdict,
    decide,
    failing,
    final,
    memory_note,
    memory_verdict,
    passed,
)
from ._blame import Crash
from ._limits import EngineSettings
from ._retry import Retries


class Settler:
    def __init__(
        self,
        settings: EngineSettings,
        reruns: Mapping[str, int],
        *,
        spawn_alone: Callable[[str, str], int],
        cancel: Callable[[int], None],
        retry_later: Callable[[str, int, float], None],
    ) -> None:
        self.settings = settings
        #: Per-test retry counts from ``flaky(reruns=N)`` markers (the caller's, live).
        self.reruns = reruns
        self._spawn_alone = spawn_alone
        self._cancel = cancel
        self._retry_later = retry_later
        self.retries = Retries(settings.retry)
        self.attempts = Attempts(settings.quarantined)
        self.hedges = Hedges()
        #: Per test isolated for memory: (tier, resident MB after it) of each attempt
        #: that left its worker past --max-worker-memory.
        self.memory_breaches: dict[str, list[tuple[str, float]]] = {}
        #: Tests that failed on a shared worker and passed alone: (node id, tier).
        self.isolation_passes: list[tuple[str, str]] = []
        #: Quarantined tests whose final attempt failed (they do not fail the run).
        self.quarantined_failures: list[str] = []

    def attempt(
        self, result: TestResult, worker: int, tier: str, memory_mb: float | None
    ) -> TestResult | Crash:
        """A test's attempt as the coordinator records it; a ``Crash`` when it left
        its worker past the memory limit alone on the last tier (its verdict)."""
        if memory_mb is not None:
            breaches = self.memory_breaches.setdefault(result.nodeid, [])
            breaches.append((tier, memory_mb))
            limit = self.settings.max_worker_memory or 0.0
            if NEXT_TIER.get(tier) is None:
                return Crash(
                    result.nodeid,
                    memory_verdict(limit, breaches),
                    worker,
                    "crashed",
                    error_type="MemoryLimit",
                    seconds=result.duration,
                    tier=tier,
                    output=(result.stdout, result.stderr),
                    retry=False,
                )
            if not failing(result.outcome):  # (a failure's own message says more)
                note = memory_note(memory_mb, limit)
                result = self.attempts.number(
                    result, tier=tier, error_type="MemoryLimit", message=note
                )
                return self._note_pass_alone(result, tier)
        return self._note_pass_alone(self.attempts.number(result, tier=tier), tier)

    def _note_pass_alone(self, result: TestResult, tier: str) -> TestResult:
        if result.outcome == "flaky" and tier != "hot":
            self.isolation_passes.append((result.nodeid, tier))
        return result

    def settle(
        self,
        result: TestResult,
        worker: int,
        isolate_reason: str,
        may_repeat: bool,
        *,
        stopping: bool,
        known: int,
    ) -> Verdict:
        """The one path every ended attempt takes: ``_verdicts.decide``, carried out
        (a hedged twin stopped, workers started alone, a retry scheduled)."""
        nodeid = result.nodeid
        twins = False
        if may_repeat:
            twins, needless = self.hedges.ended(nodeid, worker, passed(result.outcome))
            for slot in needless:
                self._cancel(slot)
        attempt = Attempt(
            result.outcome, result.tier, result.quarantined, isolate_reason, may_repeat
        )
        situation = Situation(self.settings.isolate_on, stopping, nodeid in self.hedges, twins)
        verdict = decide(attempt, situation)
        if isinstance(verdict, Isolate):
            slots = [self._spawn_alone(nodeid, tier) for tier in verdict.tiers]
            self.hedges.start(nodeid, slots)
        elif isinstance(verdict, Retry) and not self._retry(result, worker, known):
            verdict = final(attempt)
        if isinstance(verdict, Final) and verdict.quarantined:
            self.quarantined_failures.append(nodeid)
        return verdict

    def _retry(self, result: TestResult, worker: int, known: int) -> bool:
        """Schedule another attempt of a failed one, if the retry policy allows it."""
        error = f"{result.error_type or ''}: {result.message or ''}"
        delay = self.retries.next_delay(
            result.attempt, self.reruns.get(result.nodeid), error, known
        )
        if delay is None:
            return False
        self._retry_later(result.nodeid, worker, time.monotonic() + delay)
        return True

    def budget_note(self, known: int) -> str | None:
        """The line saying failures went without a retry for the run's budget."""
        if not self.retries.refused_by_budget:
            return None
        return (
            f"aqe: retry budget spent: {self.retries.spent} retries "
            f"({self.settings.retry.budget:.0%} of {known} tests); "
            f"{self.retries.refused_by_budget} more failures were not retried"
        )
