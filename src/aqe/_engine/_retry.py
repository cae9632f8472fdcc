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

import pytest

from .._compat import nodes
from .._verdicts import TRANSIENT as TRANSIENT
from .._verdicts import Retries as Retries
from .._verdicts import RetryPolicy as RetryPolicy


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
