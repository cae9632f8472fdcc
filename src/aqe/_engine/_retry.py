"""Retries: which failed attempt runs again, when, and how many the run can afford.

A retry hides a failure from the exit code, so it is rationed: per test (``--retries``
or the test's ``@pytest.mark.flaky(reruns=N)``), by the error's text (``--retry-on`` /
``--retry-except``), and per run (a budget, by default 5% of the tests, so retries
cannot turn a broken build green). Plain assertion failures are retried at once;
failures that look like a resource that was not ready yet (connection refused,
timeouts, "temporarily unavailable") wait with exponential backoff and jitter, so
the retry does not hit the same wall.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

import pytest

from .._compat import nodes

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


def register_marker(config: pytest.Config) -> None:
    """Declare ``flaky`` unless pytest-rerunfailures does (it then reruns by itself)."""
    if rerunfailures_active(config):
        return
    config.addinivalue_line(
        "markers", "flaky(reruns=N): aqe retries this test up to N times when it fails"
    )


def rerunfailures_active(config: pytest.Config) -> bool:
    return config.pluginmanager.hasplugin("rerunfailures")


def marker_reruns(item: nodes.Item) -> int | None:
    """``@pytest.mark.flaky(reruns=N)`` (pytest-rerunfailures' signature), or None."""
    if rerunfailures_active(item.config):
        return None  # pytest-rerunfailures reruns inside the worker itself
    marker = item.get_closest_marker("flaky")
    if marker is None:
        return None
    value = marker.kwargs.get("reruns", marker.args[0] if marker.args else 1)
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return None
