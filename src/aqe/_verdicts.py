"""What becomes of a test attempt once it ended: the final word, or another attempt.

Pure decisions over aqe's own types, no pytest and no processes, so any adapter's
engine can reuse them and they are tested without running a test. The engine
gathers the facts of an attempt (its outcome and tier, why it might run alone,
whether the run is stopping, whether a twin attempt on another tier still runs)
and asks ``decide``; it then carries the verdict out (starts a worker, schedules a
retry, replays the reports).

Attempts of a test that failed among others run again alone on the next tier: hot
(a shared worker), warm (a fresh fork for one test), cold (a fresh interpreter).
A hang costs a whole timeout per tier, so a timed-out test runs warm and cold side
by side (hedged); the first passing attempt, or the last one, is the verdict.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ._model import FAILING_OUTCOMES, TestResult

#: The tier a test goes to after it crashed, hung or took too much memory on one.
NEXT_TIER = {"hot": "warm", "warm": "cold"}
#: Outcomes that let a test that depends on this one run.
PASSING = frozenset({"passed", "flaky", "xpassed"})
#: Why an attempt may be run alone on the next tier (``--isolate-on``).
ISOLATE_REASONS = {"crashed": "crash", "timeout": "timeout"}


@dataclass(frozen=True, slots=True)
class Attempt:
    """The facts of one ended attempt that a verdict depends on."""

    outcome: str
    tier: str = "hot"
    quarantined: bool = False
    #: "crash", "timeout" or "memory" when it may deserve a run alone; else "".
    isolate_reason: str = ""
    #: False for an attempt that is final whatever happens (it never ran, or it
    #: went past the memory limit alone on the last tier).
    may_repeat: bool = True


@dataclass(frozen=True, slots=True)
class Situation:
    """The run around the attempt."""

    isolate_on: Collection[str] = frozenset({"crash", "timeout"})
    stopping: bool = False
    #: The test ran hedged (on several tiers at once): no tier is left after those.
    hedged: bool = False
    #: Another tier's attempt of this (hedged) test still runs.
    twins_running: bool = False


@dataclass(frozen=True, slots=True)
class AwaitTwin:
    """This attempt failed; another tier's attempt still runs and will decide."""


@dataclass(frozen=True, slots=True)
class Isolate:
    """Run the test again alone on these tiers (two: hedged)."""

    tiers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Retry:
    """Run the test again if the retry policy (per test, by error, budget) allows;
    if it refuses, the verdict is ``final(attempt)``."""


@dataclass(frozen=True, slots=True)
class Final:
    """No attempt of the test is left: this is its outcome."""

    outcome: str
    #: A failure of a quarantined test: recorded, shown apart, does not fail the run.
    quarantined: bool = False


Verdict = AwaitTwin | Isolate | Retry | Final


def failing(outcome: str) -> bool:
    return outcome in FAILING_OUTCOMES


def decide(attempt: Attempt, situation: Situation) -> Verdict:
    """The one decision every ended attempt goes through."""
    if not attempt.may_repeat:
        return final(attempt)
    if situation.twins_running and not passed(attempt.outcome):
        return AwaitTwin()
    tiers = isolation_tiers(attempt, situation)
    if tiers:
        return Isolate(tiers)
    if failing(attempt.outcome) and not situation.stopping:
        return Retry()
    return final(attempt)


def final(attempt: Attempt) -> Final:
    return Final(attempt.outcome, attempt.quarantined and failing(attempt.outcome))


def passed(outcome: str) -> bool:
    """Not a failure: the attempt stands (a hedged twin is then not needed)."""
    return not failing(outcome)


def isolation_tiers(attempt: Attempt, situation: Situation) -> tuple[str, ...]:
    """The tiers to run the test alone on next, or () when it does not go on."""
    if situation.hedged or situation.stopping:
        return ()
    tier = NEXT_TIER.get(attempt.tier)
    if tier is None or attempt.isolate_reason not in situation.isolate_on:
        return ()
    if attempt.isolate_reason == "timeout" and tier == "warm":
        return (tier, "cold")  # hedged: one timeout, not two in a row
    return (tier,)


def numbered(
    result: TestResult,
    attempt: int,
    failed_before: bool,
    quarantined: bool,
    *,
    tier: str = "hot",
    error_type: str | None = None,
    message: str | None = None,
) -> TestResult:
    """``result`` as the ``attempt``-th of its test, with what the coordinator knows
    and its worker did not (tier, quarantine, a memory note): one copy, or none when
    nothing changes. A pass after failed attempts is ``flaky``."""
    changes: dict[str, object] = {}
    if tier != result.tier:
        changes["tier"] = tier
    if quarantined and not result.quarantined:
        changes["quarantined"] = True
    if error_type is not None:
        changes["error_type"] = error_type
        changes["message"] = message
    if attempt != result.attempt:
        changes["attempt"] = attempt
        if result.outcome == "passed" and failed_before:
            changes["outcome"] = "flaky"
    return dataclasses.replace(result, **changes) if changes else result  # type: ignore[arg-type]


class Attempts:
    """How many attempts each test had, and which ever failed (for ``flaky``)."""

    def __init__(self, quarantined: Collection[str] = ()) -> None:
        self.quarantined = quarantined
        self._count: dict[str, int] = {}
        self._failed: set[str] = set()

    def number(
        self,
        result: TestResult,
        *,
        tier: str = "hot",
        error_type: str | None = None,
        message: str | None = None,
    ) -> TestResult:
        nodeid = result.nodeid
        attempt = self._count.get(nodeid, 0) + 1
        self._count[nodeid] = attempt
        failed_before = nodeid in self._failed
        if failing(result.outcome):
            self._failed.add(nodeid)
        return numbered(
            result,
            attempt,
            failed_before,
            nodeid in self.quarantined,
            tier=tier,
            error_type=error_type,
            message=message,
        )


class Hedges:
    """Tests running on several tiers at once: node id -> slots still running."""

    def __init__(self) -> None:
        self._running: dict[str, set[int]] = {}

    def start(self, nodeid: str, slots: Collection[int]) -> None:
        if len(slots) > 1:
            self._running[nodeid] = set(slots)

    def __contains__(self, nodeid: object) -> bool:
        return nodeid in self._running

    def ended(self, nodeid: str, slot: int, passing: bool) -> tuple[bool, list[int]]:
        """An attempt on ``slot`` ended: (does a twin still run and decide, slots
        to stop unrecorded). A passing attempt is the verdict at once; so is the
        last one. The entry stays, empty: no tier is left after these."""
        others = self._running.get(nodeid)
        if others is None:
            return False, []
        others.discard(slot)
        if others and not passing:
            return True, []
        cancel = sorted(others)
        others.clear()
        return False, cancel


def memory_note(mb: float, limit: float) -> str:
    """The message of a passing attempt that left its worker past the memory limit."""
    return (
        f"worker at {mb:.0f} MB after this test, past the {limit:g} MB limit (--max-worker-memory)"
    )


def memory_figures(breaches: Sequence[tuple[str, float]]) -> str:
    """ "234 MB hot, 239 MB warm": its worker's memory after each attempt past the limit."""
    return ", ".join(f"{mb:.0f} MB {tier}" for tier, mb in breaches)


def memory_verdict(limit: float, breaches: Sequence[tuple[str, float]]) -> str:
    """The message of a test past the memory limit alone on every tier."""
    return (
        f"MemoryLimit: needs more than the {limit:g} MB limit "
        "(--max-worker-memory) even alone; its worker's resident memory after it: "
        + memory_figures(breaches)
    )


#: Errors worth waiting for before the retry: the resource may come back.
TRANSIENT = re.compile(
    r"connection ?(refused|reset|aborted)|timed? ?out|timeout|temporar(il)?y unavailable"
    r"|try again|resource busy|too many requests|\b503\b|\b429\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 0
    retry_on: str | None = None
    retry_except: str | None = None
    #: Share of the run's tests that may be retried at all (at least one retry).
    budget: float = 0.05
    delay: float = 0.5
    backoff: float = 2.0
    max_delay: float = 10.0
    jitter: float = 0.25


class Retries:
    """The run's retry decisions and its budget."""

    def __init__(self, policy: RetryPolicy, seed: int | None = None) -> None:
        self.policy = policy
        self._on = re.compile(policy.retry_on) if policy.retry_on else None
        self._except = re.compile(policy.retry_except) if policy.retry_except else None
        self._random = random.Random(seed)
        self.spent = 0
        self.refused_by_budget = 0

    def allowed(self, known_tests: int) -> int:
        return max(1, math.ceil(self.policy.budget * known_tests))

    def next_delay(
        self, attempt: int, reruns: int | None, error: str, known_tests: int
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None for no retry.

        ``reruns``: the test's own ``flaky`` marker, which wins over ``--retries``.
        ``error``: "ErrorType: message" of the failed attempt.
        """
        limit = self.policy.retries if reruns is None else reruns
        if attempt > limit:
            return None
        if self._on is not None and not self._on.search(error):
            return None
        if self._except is not None and self._except.search(error):
            return None
        if self.spent >= self.allowed(known_tests):
            self.refused_by_budget += 1
            return None
        self.spent += 1
        if not TRANSIENT.search(error):
            return 0.0
        policy = self.policy
        base = min(policy.max_delay, policy.delay * policy.backoff ** (attempt - 1))
        spread = base * policy.jitter
        return max(0.0, base + self._random.uniform(-spread, spread))
